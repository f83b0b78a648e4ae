//! How certvault gets its Vault token: a given token (env or file), or a login with AppRole,
//! Kubernetes or JWT. A token obtained by login belongs to this run: it is renewed while the
//! run lasts and revoked when it ends.

use std::path::PathBuf;
use std::time::Duration;

use crate::model::Secret;

/// The default path of a Kubernetes service-account token inside a pod.
pub const KUBERNETES_JWT_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// A secret given directly (environment) or as a file that holds it (a Vault Agent sink, a
/// mounted Kubernetes secret). Files are read when the login happens.
#[derive(Debug, Clone)]
pub enum Credential {
    Value(Secret),
    File(PathBuf),
}

/// How to authenticate to Vault (`--auth` / `CERTVAULT_AUTH`).
#[derive(Debug, Clone)]
pub enum Method {
    /// `VAULT_TOKEN` (or `BAO_TOKEN`), `VAULT_TOKEN_FILE`, or `~/.vault-token`. Renewed while
    /// the run lasts if renewable, never revoked: it belongs to the caller.
    Token { token: Option<Credential> },
    /// `auth/<mount>/login` with a role id and a secret id.
    AppRole {
        mount: String,
        role_id: Credential,
        secret_id: Credential,
    },
    /// `auth/<mount>/login` with a service-account JWT and a role.
    Kubernetes {
        mount: String,
        role: String,
        jwt: Credential,
    },
    /// `auth/<mount>/login` with a JWT and an optional role (else the mount's default role).
    Jwt {
        mount: String,
        role: Option<String>,
        jwt: Credential,
    },
}

impl Method {
    /// The name used in settings and messages.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Token { .. } => "token",
            Method::AppRole { .. } => "approle",
            Method::Kubernetes { .. } => "kubernetes",
            Method::Jwt { .. } => "jwt",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no Vault token: set VAULT_TOKEN (or BAO_TOKEN) or VAULT_TOKEN_FILE, or log in with `vault login` / `bao login` (~/.vault-token), or with --auth approle|kubernetes|jwt (CERTVAULT_AUTH)")]
    NoToken,
    #[error("cannot read the {what} file {path:?}; check the path ({setting}) and that certvault may read it")]
    File {
        what: &'static str,
        setting: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the {what} file {path:?} is empty ({setting})")]
    EmptyFile {
        what: &'static str,
        setting: &'static str,
        path: PathBuf,
    },
    #[error("{what} is missing: set {setting}")]
    Missing {
        what: &'static str,
        setting: &'static str,
    },
}

impl Credential {
    /// The secret, with surrounding whitespace (a file's trailing newline) removed.
    pub fn read(&self, what: &'static str, setting: &'static str) -> Result<Secret, Error> {
        match self {
            Credential::Value(s) if s.expose().trim().is_empty() => {
                Err(Error::Missing { what, setting })
            }
            Credential::Value(s) => Ok(Secret::new(s.expose().trim().to_string())),
            Credential::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| Error::File {
                    what,
                    setting,
                    path: path.clone(),
                    source,
                })?;
                let text = text.trim();
                if text.is_empty() {
                    return Err(Error::EmptyFile {
                        what,
                        setting,
                        path: path.clone(),
                    });
                }
                Ok(Secret::new(text.to_string()))
            }
        }
    }
}

/// When to renew a token that has `ttl` left: at two thirds of it, so a failed renewal still
/// leaves time before expiry. `None` for a token that does not expire (ttl 0).
pub fn renew_delay(ttl: Duration) -> Option<Duration> {
    if ttl.is_zero() {
        return None;
    }
    Some((ttl * 2 / 3).max(Duration::from_secs(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renews_at_two_thirds_of_the_ttl() {
        assert_eq!(renew_delay(Duration::ZERO), None);
        assert_eq!(
            renew_delay(Duration::from_secs(3600)),
            Some(Duration::from_secs(2400))
        );
        assert_eq!(
            renew_delay(Duration::from_secs(30)),
            Some(Duration::from_secs(20))
        );
        assert_eq!(
            renew_delay(Duration::from_secs(1)),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn credentials_from_files_are_trimmed_and_never_shown() {
        let dir = std::env::temp_dir().join(format!("certvault-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("tok");
        std::fs::write(&f, "s.abc\n").unwrap();
        let c = Credential::File(f.clone());
        assert_eq!(
            c.read("token", "VAULT_TOKEN_FILE").unwrap().expose(),
            "s.abc"
        );
        std::fs::write(&f, "\n").unwrap();
        assert!(matches!(
            c.read("token", "VAULT_TOKEN_FILE"),
            Err(Error::EmptyFile { .. })
        ));
        let missing = Credential::File(dir.join("nope"));
        let e = missing.read("JWT", "CERTVAULT_JWT_FILE").unwrap_err();
        assert!(e.to_string().contains("CERTVAULT_JWT_FILE"), "{e}");
        let v = Credential::Value(Secret::new("hunter2".into()));
        assert!(!format!("{v:?}").contains("hunter2"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
