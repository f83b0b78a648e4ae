//! certbot-compatible manual hooks (`--manual-auth-hook` / `--manual-cleanup-hook`).
//!
//! Each hook runs as `sh -c <command>` with certbot's variables: `CERTBOT_DOMAIN` (without
//! `*.`), `CERTBOT_VALIDATION`, `CERTBOT_REMAINING_CHALLENGES`, `CERTBOT_ALL_DOMAINS`, and for
//! cleanup `CERTBOT_AUTH_OUTPUT` (the auth hook's standard output). Credentials in the
//! environment are removed before a hook runs ([`hook::is_credential`]), except those the
//! spec's `hook_env` names: a hook never sees certvault's token.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;



use super::registry::{Build, Kind, SecretSource};
use super::{Error, Provider, TxtRecord};
use crate::hook::{self, Failure, HOOK_TIMEOUT};
use crate::model::{EnvName, InvalidInput};

pub use crate::model::ExecConfig as Config;

/// `certvault dns add exec NAME --auth-hook CMD [--cleanup-hook CMD]`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// certbot-compatible auth hook.
    #[arg(long)]
    auth_hook: String,
    /// certbot-compatible cleanup hook.
    #[arg(long)]
    cleanup_hook: Option<String>,
}

impl Kind for Config {
    const ABOUT: &'static str = "certbot-compatible auth/cleanup hooks";
    type Args = Args;
    type Client = Hooks;

    fn from_args(args: Args, _: &SecretSource<'_>) -> Result<Self, InvalidInput> {
        if args.auth_hook.trim().is_empty() {
            return Err(InvalidInput {
                what: "--auth-hook",
                value: String::new(),
                reason: "exec needs --auth-hook CMD",
            });
        }
        Ok(Config {
            auth_hook: args.auth_hook,
            cleanup_hook: args.cleanup_hook.unwrap_or_default(),
        })
    }

    fn describe(&self) -> String {
        format!("exec  auth hook {}", self.auth_hook)
    }

    fn build(&self, b: &Build<'_>) -> Result<Hooks, Error> {
        Ok(Hooks::new(
            self.auth_hook.clone(),
            self.cleanup_hook.clone(),
            b.all_domains.to_string(),
            b.challenges,
        )
        .passing(b.hook_env.to_vec()))
    }
}

pub struct Hooks {
    auth: String,
    cleanup: String,
    all_domains: String,
    remaining: AtomicUsize,
    timeout: Duration,
    pass: Vec<EnvName>,
}

impl Hooks {
    pub fn new(auth: String, cleanup: String, all_domains: String, challenges: usize) -> Self {
        Self {
            auth,
            cleanup,
            all_domains,
            remaining: AtomicUsize::new(challenges),
            timeout: HOOK_TIMEOUT,
            pass: Vec::new(),
        }
    }

    /// Let these variables of certvault's environment through to the hooks.
    pub fn passing(mut self, pass: Vec<EnvName>) -> Self {
        self.pass = pass;
        self
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
            ("CERTBOT_DOMAIN", record.domain.to_string()),
            ("CERTBOT_VALIDATION", record.value.clone()),
            ("CERTBOT_REMAINING_CHALLENGES", remaining.to_string()),
            ("CERTBOT_ALL_DOMAINS", self.all_domains.clone()),
        ];
        if let Some(out) = auth_output {
            vars.push(("CERTBOT_AUTH_OUTPUT", out.to_string()));
        }
        let domain = || record.domain.to_string();
        hook::run(command, &vars, &self.pass, self.timeout)
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
    /// The auth hook's standard output (`CERTBOT_AUTH_OUTPUT` of the cleanup hook).
    type Handle = String;

    async fn present(&self, record: &TxtRecord) -> Result<String, Error> {
        let remaining = self
            .remaining
            .fetch_sub(1, Ordering::Relaxed)
            .saturating_sub(1);
        let out = self
            .run("auth", &self.auth, record, remaining, None)
            .await?;
        Ok(out)
    }

    async fn cleanup(&self, record: &TxtRecord, auth_output: &String) -> Result<(), Error> {
        if self.cleanup.trim().is_empty() {
            return Ok(());
        }
        self.run(
            "cleanup",
            &self.cleanup,
            record,
            0,
            Some(auth_output),
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
            domain: domain.parse().unwrap(),
            name: format!("_acme-challenge.{domain}").parse().unwrap(),
            zone: None,
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
        assert_eq!(p, "out-example.com,*.example.com");
        h.cleanup(&record("example.com", "v1"), &p).await.unwrap();
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
