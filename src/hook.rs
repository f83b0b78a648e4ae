//! Running a user's command (DNS-01 exec hooks, deploy hooks) as `sh -c <command>`.
//!
//! Every hook gets the same treatment:
//! - an environment without credentials ([`is_credential`]: certvault's own `VAULT_TOKEN`,
//!   `BAO_TOKEN`, `*_SECRET_ID`, `*_JWT`, and any `*_TOKEN`, `*_SECRET`, `*_KEY`, `*PASSWORD`
//!   or URL with a password, such as `AWS_SECRET_ACCESS_KEY` or `CERTVAULT_PUSHGATEWAY`), except
//!   the variables the admin named in the spec's `hook_env`;
//! - its own process group, killed as a whole at the timeout or when the run drops the hook
//!   (on SIGTERM), so a `sleep 400` started by the hook does not outlive it;
//! - a timeout ([`HOOK_TIMEOUT`]).

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::model::EnvName;

pub use crate::defaults::HOOK_TIMEOUT;

/// Whether a variable of certvault's environment is kept from hooks: its name says it
/// holds a credential (`*TOKEN`, `*SECRET`, `*_KEY`, `*PASSWORD`, `*_SECRET_ID`, `*JWT`, …,
/// with or without `_FILE`), whatever its prefix (`VAULT_TOKEN`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`, `CF_API_TOKEN`), or its value is a URL with a user name or password
/// in it (`CERTVAULT_PUSHGATEWAY=https://user:pass@…`, a proxy with credentials).
pub fn is_credential(name: &str, value: &str) -> bool {
    credential_name(name) || url_with_userinfo(value)
}

fn credential_name(name: &str) -> bool {
    /// Anywhere at the end of the name.
    const ENDS: [&str; 10] = [
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "PASSPHRASE",
        "CREDENTIALS",
        "CREDENTIAL",
        "JWT",
        "HMAC",
        "APIKEY",
    ];
    /// The last word of the name (after `_`), or the whole name.
    const WORDS: [&str; 6] = ["KEY", "PASS", "AUTH", "SECRET_ID", "ROLE_ID", "PAT"];
    let upper = name.to_ascii_uppercase();
    let name = upper.strip_suffix("_FILE").unwrap_or(&upper);
    ENDS.iter().any(|s| name.ends_with(s))
        || WORDS
            .iter()
            .any(|w| name == *w || name.strip_suffix(w).is_some_and(|h| h.ends_with('_')))
}

/// `scheme://user[:password]@host…` anywhere in the value.
fn url_with_userinfo(value: &str) -> bool {
    value.match_indices("://").any(|(at, _)| {
        let rest = &value[at + 3..];
        let authority = rest.split(['/', '?', '#', ' ', ',']).next().unwrap_or("");
        authority.contains('@')
    })
}

/// Why a hook did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("exited with {status}{}", tail(.stderr))]
    Exited { status: String, stderr: String },
    #[error("did not finish within {seconds}s and was killed")]
    TimedOut { seconds: u64 },
    #[error("could not be started")]
    Spawn(#[source] std::io::Error),
}

fn tail(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

/// Kills the hook's whole process group when dropped before the hook was reaped.
struct Group(Option<i32>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            // SAFETY: kill(2) with a negative pid signals the process group we created for
            // the hook (process_group(0) makes the child its leader); no memory is touched.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// Run `command` with `sh -c` and the given variables; its trimmed standard output on
/// success.
///
/// Credentials of certvault's environment ([`is_credential`]) are removed unless named in
/// `pass` (the spec's `hook_env`); `vars` are set last and win.
pub async fn run(
    command: &str,
    vars: &[(&str, String)],
    pass: &[EnvName],
    timeout: Duration,
) -> Result<String, Failure> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    for (name, value) in std::env::vars_os() {
        let passed = name
            .to_str()
            .is_some_and(|n| pass.iter().any(|p| p.as_str() == n));
        if !passed && is_credential(&name.to_string_lossy(), &value.to_string_lossy()) {
            cmd.env_remove(name);
        }
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let child = cmd.spawn().map_err(Failure::Spawn)?;
    let mut group = Group(child.id().and_then(|id| i32::try_from(id).ok()));
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(result) => result.map_err(Failure::Spawn)?,
        // Dropping `group` kills what the hook started, too.
        Err(_) => {
            return Err(Failure::TimedOut {
                seconds: timeout.as_secs(),
            })
        }
    };
    // The hook finished (and closed its output): leave what it chose to start alone.
    group.0 = None;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last: Vec<&str> = stderr.lines().rev().take(3).collect();
        let mut tail: String = last.into_iter().rev().collect::<Vec<_>>().join(" | ");
        tail.truncate(400);
        return Err(Failure::Exited {
            status: output.status.to_string(),
            stderr: tail,
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_string())
}

/// The deploy hook of a stored certificate failed; the certificate stays stored.
#[derive(Debug)]
pub struct DeployFailed {
    pub path: String,
    pub version: u64,
    pub failure: Failure,
}

impl std::fmt::Display for DeployFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the deploy hook failed ({}); the new certificate is stored at {} (version {}) and stays there",
            self.failure, self.path, self.version
        )
    }
}

/// The hook's failure is part of the message: its cause (why it could not be started) is
/// the next one, so no cause is printed twice.
impl std::error::Error for DeployFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_recognised() {
        for n in [
            "VAULT_TOKEN",
            "BAO_TOKEN",
            "BAO_SECRET_ID",
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
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "CF_API_TOKEN",
            "DNSIMPLE_TOKEN",
            "PDNS_API_KEY",
            "PGPASSWORD",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "github_pat",
            "KEY",
        ] {
            assert!(is_credential(n, "x"), "{n}");
        }
        for n in [
            "VAULT_ADDR",
            "BAO_ADDR",
            "PATH",
            "CERTVAULT_MOUNT",
            "HOME",
            "AWS_REGION",
            "AWS_ACCESS_KEY_ID",
            "MONKEY",
            "COMPASS",
            "SSH_AUTH_SOCK",
        ] {
            assert!(!is_credential(n, "x"), "{n}");
        }
    }

    #[test]
    fn urls_with_credentials_are_recognised_by_value() {
        for v in [
            "https://user:pass@push.example:9091",
            "http://token@proxy.local",
            "a,https://u:p@h/x",
        ] {
            assert!(is_credential("CERTVAULT_PUSHGATEWAY", v), "{v}");
        }
        for v in [
            "https://push.example:9091/metrics",
            "mail me at a@b.example",
            "https://h.example/path@v2",
            "",
        ] {
            assert!(!is_credential("CERTVAULT_PUSHGATEWAY", v), "{v}");
        }
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_process_group() {
        let dir = std::env::temp_dir().join(format!("certvault-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("child.pid");
        let cmd = format!("sleep 400 & echo $! > {}; wait", pidfile.display());
        let err = run(&cmd, &[], &[], Duration::from_millis(500))
            .await
            .unwrap_err();
        assert!(matches!(err, Failure::TimedOut { .. }), "{err}");
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        // The grandchild is gone (or a zombie about to be reaped by init).
        let mut gone = false;
        for _ in 0..50 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z ") {
                gone = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(gone, "sleep 400 (pid {pid}) survived the hook's timeout");
    }

    #[tokio::test]
    async fn output_and_failure() {
        let out = run("echo \"$X\"", &[("X", "hello".into())], &[], HOOK_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(out, "hello");
        let err = run("echo boom >&2; exit 3", &[], &[], HOOK_TIMEOUT)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "exited with exit status: 3: boom");
    }
}
