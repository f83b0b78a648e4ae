//! What went wrong talking to Vault, and the one mapping of a failed request to it.

use std::path::PathBuf;
use std::time::Duration;

use crate::auth::{self};

use super::http::{self, Cause};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid Vault address {addr:?}: {reason}; set VAULT_ADDR to a URL like https://vault.example.com:8200")]
    BadAddress { addr: String, reason: String },
    #[error(transparent)]
    Auth(#[from] auth::Error),
    #[error("Vault refused the {method} login at auth/{mount}/login ({code}: {detail}); check the {method} settings ({hint}) and the role in Vault")]
    Login {
        method: &'static str,
        mount: String,
        code: u16,
        detail: String,
        hint: &'static str,
    },
    #[error("{method} login at auth/{mount}/login failed")]
    LoginFailed {
        method: &'static str,
        mount: String,
        #[source]
        source: Cause,
    },
    #[error("Vault rejected the token when checking its capabilities (403 on sys/capabilities-self): the token is expired, revoked or invalid, or it lacks Vault's `default` policy; get a new token (or check the login settings)")]
    TokenRejected,
    #[error("the Vault token expires in {}s, less than one ACME order may take ({}s: validation, propagation and issuance timeouts){}; use a token that lives longer, or shorten those timeouts", .ttl.as_secs(), .needed.as_secs(), if *.renewable { " even after renewing it" } else { " and it cannot be renewed" })]
    TokenTooShort {
        ttl: Duration,
        needed: Duration,
        renewable: bool,
    },
    #[error("cannot use VAULT_CACERT {path:?}")]
    CaCert {
        path: PathBuf,
        #[source]
        source: Cause,
    },
    #[error(
        "cannot reach Vault at {addr}; check VAULT_ADDR and that Vault is running and unsealed"
    )]
    Unreachable {
        addr: String,
        #[source]
        source: Cause,
    },
    #[error("{addr} speaks plain HTTP, not TLS: VAULT_ADDR says https:// but the server answered the TLS handshake in plain HTTP; use http:// (or enable TLS on the server)")]
    PlainHttp { addr: String },
    #[error("{addr} is not a Vault or OpenBao server: GET /v1/sys/health answered {answer}; check VAULT_ADDR (host, port, and no path)")]
    NotVault { addr: String, answer: String },
    #[error(
        "Vault at {addr} is sealed; unseal it (`bao operator unseal` / `vault operator unseal`)"
    )]
    Sealed { addr: String },
    #[error("no KV mount {mount}/ at {addr}{}; check --mount / CERTVAULT_MOUNT", visible_mounts(.visible))]
    NoSuchMount {
        mount: String,
        addr: String,
        /// The KV mounts this token can see; `None` if it can see all (it would see this one).
        visible: Option<Vec<String>>,
    },
    #[error("{mount}/ at {addr} is a {kind} mount, not a KV secrets engine; check --mount / CERTVAULT_MOUNT")]
    NotKv {
        mount: String,
        addr: String,
        kind: String,
    },
    #[error("Vault denied {op} on {path} (403 permission denied): the Vault token (VAULT_TOKEN or the login of --auth) is invalid or expired, or its policy does not grant {op} on this path (`certvault policy` prints the right one)")]
    Forbidden { op: &'static str, path: String },
    #[error("{path} was changed by another writer since it was read (expected version {expected}); nothing was overwritten")]
    CasConflict { path: String, expected: u64 },
    #[error("{path} already exists; nothing was overwritten")]
    AlreadyExists { path: String },
    #[error("Vault answered {code} on {op} {path}: {detail}")]
    Api {
        op: &'static str,
        path: String,
        code: u16,
        detail: String,
    },
    #[error("Vault request {op} {path} failed")]
    Other {
        op: &'static str,
        path: String,
        #[source]
        source: Cause,
    },
    #[error("Vault at {addr} has not answered for {}s (--vault-retry-timeout): this run gave up on it and sent nothing more; the next run goes on from what is stored", .waited.as_secs())]
    GaveUpOnVault { addr: String, waited: Duration },
    #[error("the write of {path} may have landed: Vault received it but did not answer, and could not be asked again; the next run reads it and goes on from what is stored")]
    Unconfirmed {
        path: String,
        #[source]
        source: Box<Error>,
    },
    #[error("gave up on Vault after retrying for {}s", .waited.as_secs())]
    GaveUp {
        waited: Duration,
        #[source]
        source: Box<Error>,
    },
}

fn visible_mounts(v: &Option<Vec<String>>) -> String {
    match v {
        None => String::new(),
        Some(v) if v.is_empty() => {
            " (or this token has no access to it: it sees no KV mount at all)".into()
        }
        Some(v) => format!(
            " (or this token has no access to it; the KV mounts it can see: {})",
            v.join(", ")
        ),
    }
}

impl Error {
    /// A setting the user did not give (exit code 2, like every missing setting).
    pub fn is_missing_setting(&self) -> bool {
        matches!(
            self,
            Error::Auth(auth::Error::Missing { .. } | auth::Error::NoToken)
        )
    }
}

/// The one mapping of a failed request to an error (logins have their own wording).
pub(super) fn failed(addr: &str, op: &'static str, path: String, failure: http::Failure) -> Error {
    match failure {
        http::Failure::Status { code: 403, .. } => Error::Forbidden { op, path },
        http::Failure::Status { code, detail, .. } => Error::Api {
            op,
            path,
            code,
            detail,
        },
        http::Failure::NoAnswer { why, source } => unreachable(addr, why, source),
        http::Failure::Other(source) => Error::Other { op, path, source },
        http::Failure::Abandoned { waited } => Error::GaveUpOnVault {
            addr: addr.into(),
            waited,
        },
    }
}

/// The error for a request nothing answered.
pub(super) fn unreachable(addr: &str, why: http::NoAnswer, source: Cause) -> Error {
    match why {
        http::NoAnswer::PlainHttp => Error::PlainHttp { addr: addr.into() },
        _ => Error::Unreachable {
            addr: addr.into(),
            source,
        },
    }
}
