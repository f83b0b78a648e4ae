//! certbot-compatible manual hooks (`--manual-auth-hook` / `--manual-cleanup-hook`).
//!
//! Each hook runs as `sh -c <command>` with certbot's variables: `CERTBOT_DOMAIN` (without
//! `*.`), `CERTBOT_VALIDATION`, `CERTBOT_REMAINING_CHALLENGES`, `CERTBOT_ALL_DOMAINS`, and for
//! cleanup `CERTBOT_AUTH_OUTPUT` (the auth hook's standard output). Vault credentials in the
//! environment are removed before a hook runs: a hook never sees certvault's token.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{Error, Presented, Provider, TxtRecord};
use crate::hook::{self, Failure, HOOK_TIMEOUT};

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
        let mut vars = vec![
            ("CERTBOT_DOMAIN", record.domain.clone()),
            ("CERTBOT_VALIDATION", record.value.clone()),
            ("CERTBOT_REMAINING_CHALLENGES", remaining.to_string()),
            ("CERTBOT_ALL_DOMAINS", self.all_domains.clone()),
        ];
        if let Some(out) = auth_output {
            vars.push(("CERTBOT_AUTH_OUTPUT", out.to_string()));
        }
        let domain = || record.domain.clone();
        hook::run(command, &vars, self.timeout)
            .await
            .map_err(|f| match f {
                Failure::Exited { status, stderr } => Error::HookFailed {
                    hook,
                    domain: domain(),
                    status,
                    stderr,
                },
                Failure::TimedOut { seconds } => Error::HookTimeout {
                    hook,
                    domain: domain(),
                    seconds,
                },
                Failure::Spawn(source) => Error::HookSpawn {
                    hook,
                    domain: domain(),
                    source,
                },
            })
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
