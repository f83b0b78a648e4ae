//! certbot-compatible manual hooks (`--manual-auth-hook` / `--manual-cleanup-hook`).
//!
//! Each hook runs as `sh -c <command>` with certbot's variables: `CERTBOT_DOMAIN` (without
//! `*.`), `CERTBOT_VALIDATION`, `CERTBOT_REMAINING_CHALLENGES`, `CERTBOT_ALL_DOMAINS`, and for
//! cleanup `CERTBOT_AUTH_OUTPUT` (the auth hook's standard output). Vault credentials in the
//! environment are removed before a hook runs: a hook never sees certvault's token.

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::process::Command;

use super::{Error, Presented, Provider, TxtRecord};

/// How long a hook may run before it is killed.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(300);

/// Environment variables never passed to a hook.
fn is_credential(name: &str) -> bool {
    name == "VAULT_TOKEN"
        || (name.starts_with("VAULT_") || name.starts_with("CERTVAULT_"))
            && [
                "TOKEN",
                "SECRET",
                "SECRET_ID",
                "ROLE_ID",
                "JWT",
                "HMAC",
                "KEY",
                "PASSWORD",
                "TOKEN_FILE",
                "SECRET_ID_FILE",
                "ROLE_ID_FILE",
                "JWT_FILE",
            ]
            .iter()
            .any(|s| name.ends_with(s))
}

pub struct Hooks {
    auth: String,
    cleanup: String,
    all_domains: String,
    remaining: AtomicUsize,
    timeout: Duration,
}

impl Hooks {
    pub fn new(auth: String, cleanup: String, all_domains: String, challenges: usize) -> Self {
        Self {
            auth,
            cleanup,
            all_domains,
            remaining: AtomicUsize::new(challenges),
            timeout: HOOK_TIMEOUT,
        }
    }

    async fn run(
        &self,
        hook: &'static str,
        command: &str,
        record: &TxtRecord,
        remaining: usize,
        auth_output: Option<&str>,
    ) -> Result<String, Error> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .env("CERTBOT_DOMAIN", &record.domain)
            .env("CERTBOT_VALIDATION", &record.value)
            .env("CERTBOT_REMAINING_CHALLENGES", remaining.to_string())
            .env("CERTBOT_ALL_DOMAINS", &self.all_domains);
        if let Some(out) = auth_output {
            cmd.env("CERTBOT_AUTH_OUTPUT", out);
        }
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(is_credential) {
                cmd.env_remove(name);
            }
        }
        let child = cmd.spawn().map_err(|source| Error::HookSpawn {
            hook,
            domain: record.domain.clone(),
            source,
        })?;
        let output = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(result) => result.map_err(|source| Error::HookSpawn {
                hook,
                domain: record.domain.clone(),
                source,
            })?,
            Err(_) => {
                return Err(Error::HookTimeout {
                    hook,
                    domain: record.domain.clone(),
                    seconds: self.timeout.as_secs(),
                })
            }
        };
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last: Vec<&str> = stderr.lines().rev().take(3).collect();
            let mut tail: String = last.into_iter().rev().collect::<Vec<_>>().join(" | ");
            tail.truncate(400);
            return Err(Error::HookFailed {
                hook,
                domain: record.domain.clone(),
                status: output.status.to_string(),
                stderr: tail,
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_string())
    }
}

impl Provider for Hooks {
    async fn present(&self, record: &TxtRecord) -> Result<Presented, Error> {
        let remaining = self
            .remaining
            .fetch_sub(1, Ordering::Relaxed)
            .saturating_sub(1);
        let out = self
            .run("auth", &self.auth, record, remaining, None)
            .await?;
        Ok(Presented {
            record: record.clone(),
            handle: Some(out),
        })
    }

    async fn cleanup(&self, presented: &Presented) -> Result<(), Error> {
        if self.cleanup.trim().is_empty() {
            return Ok(());
        }
        self.run(
            "cleanup",
            &self.cleanup,
            &presented.record,
            0,
            Some(presented.handle.as_deref().unwrap_or_default()),
        )
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(domain: &str, value: &str) -> TxtRecord {
        TxtRecord {
            domain: domain.into(),
            name: format!("_acme-challenge.{domain}"),
            zone: String::new(),
            value: value.into(),
        }
    }

    #[test]
    fn credentials_are_recognised() {
        for n in [
            "VAULT_TOKEN",
            "CERTVAULT_EAB_HMAC",
            "CERTVAULT_EAB_HMAC_KEY",
            "CERTVAULT_DNS_SECRET",
            "VAULT_SECRET_ID",
            "CERTVAULT_ROLE_ID",
            "VAULT_ROLE_ID",
            "VAULT_TOKEN_FILE",
            "VAULT_SECRET_ID_FILE",
            "VAULT_ROLE_ID_FILE",
            "CERTVAULT_JWT",
            "CERTVAULT_JWT_FILE",
        ] {
            assert!(is_credential(n), "{n}");
        }
        for n in ["VAULT_ADDR", "PATH", "CERTVAULT_MOUNT", "HOME"] {
            assert!(!is_credential(n), "{n}");
        }
    }

    #[tokio::test]
    async fn hooks_get_certbot_variables_and_auth_output() {
        let h = Hooks::new(
            r#"test "$CERTBOT_DOMAIN" = example.com && test "$CERTBOT_VALIDATION" = v1 && test "$CERTBOT_REMAINING_CHALLENGES" = 1 && echo "out-$CERTBOT_ALL_DOMAINS""#.into(),
            r#"test "$CERTBOT_AUTH_OUTPUT" = "out-example.com,*.example.com""#.into(),
            "example.com,*.example.com".into(),
            2,
        );
        let p = h.present(&record("example.com", "v1")).await.unwrap();
        assert_eq!(p.handle.as_deref(), Some("out-example.com,*.example.com"));
        h.cleanup(&p).await.unwrap();
    }

    #[tokio::test]
    async fn failing_hook_reports_status_and_stderr() {
        let h = Hooks::new(
            "echo boom >&2; exit 3".into(),
            "true".into(),
            "a.example.com".into(),
            1,
        );
        let err = h.present(&record("a.example.com", "v")).await.unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("auth hook for a.example.com exited with exit status: 3: boom"),
            "{msg}"
        );
    }
}
