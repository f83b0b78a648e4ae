//! The ACME side: accounts and the DNS-01 order flow, on instant-acme.
//!
//! instant-acme talks HTTP through the project's one reqwest client (rustls), so a private
//! CA's certificate (`--acme-ca-cert`) and proxies work the same for ACME as for the rest.

use instant_acme::Problem;

use crate::dns;
use crate::model::KeyType;
use crate::x509;

/// How many more times an ACME step is repeated after instant-acme's own three attempts all
/// got `badNonce` (Pebble rejects 5 % of nonces by default; busy CAs do it too). Every step
/// repeated here is safe to send again.
const NONCE_RETRIES: u32 = 8;

fn is_bad_nonce(e: &instant_acme::Error) -> bool {
    matches!(e, instant_acme::Error::Api(p)
        if p.r#type.as_deref().is_some_and(|t| t.ends_with(":badNonce")))
}

/// Evaluate an ACME step again while it fails with `badNonce` (bounded).
macro_rules! nonce_retry {
    ($step:expr) => {{
        let mut left = NONCE_RETRIES;
        loop {
            match $step {
                Err(e) if left > 0 && is_bad_nonce(&e) => {
                    left -= 1;
                    tracing::debug!("badNonce from the CA; sending the request again");
                }
                other => break other,
            }
        }
    }};
}

mod account;
pub mod keychange;
mod order;
mod transport;

pub use account::*;
pub use order::*;
pub use transport::*;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the ACME CA certificate {path:?}")]
    CaCert {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the ACME CA certificate {path:?} holds no PEM certificate")]
    CaCertEmpty { path: String },
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error(
        "cannot reach the ACME directory {url}; check the URL, the network and --acme-ca-cert"
    )]
    Directory {
        url: String,
        #[source]
        source: instant_acme::Error,
    },
    #[error("cannot reach the ACME CA at {url} ({reason}); check the URL, the network and --acme-ca-cert")]
    Unreachable { url: String, reason: String },
    #[error("the CA at {directory} knows no account for this key (asked with onlyReturnExisting); nothing was registered. Check the directory URL, or register a new account with `certvault init` without --account-key")]
    AccountKeyUnknown { directory: String },
    #[error("the ACME account stored in Vault is not known to the CA at {directory} (deactivated, or the CA was reset); run `certvault init --force` to register a new account")]
    AccountUnknown { directory: String },
    #[error("the CA refused {op}: {}", problem_text(.problem))]
    Refused { op: &'static str, problem: Problem },
    #[error("ACME {op} failed")]
    Protocol {
        op: &'static str,
        #[source]
        source: instant_acme::Error,
    },
    #[error("the ACME account stored in Vault has unreadable credentials ({reason}); run `certvault init --force` to register a new account, or restore the document from KV history")]
    BadCredentials { reason: String },
    #[error("the CA offers no dns-01 challenge for {domain}")]
    NoDnsChallenge { domain: String },
    #[error("DNS-01 validation failed for {}", .failures.join("; "))]
    Validation { failures: Vec<String> },
    #[error("the order did not become {wanted} within {seconds}s (last status: {status})")]
    Timeout {
        wanted: &'static str,
        seconds: u64,
        status: String,
    },
    #[error(transparent)]
    Dns(#[from] dns::Error),
    #[error("interrupted by a signal; {}", match .cleanup_failed { None => "the DNS-01 records were cleaned up".to_string(), Some(why) => format!("removing its DNS-01 records failed ({why}); remove those TXT records by hand") })]
    Interrupted { cleanup_failed: Option<String> },
    #[error("cannot generate a {key_type} key")]
    Key {
        key_type: KeyType,
        #[source]
        source: rcgen::Error,
    },
    #[error("the CA returned an unusable certificate")]
    Certificate(#[from] x509::Invalid),
    #[error("invalid EAB HMAC key: it must be base64url")]
    EabKey,
}

/// A CA problem as one line: detail (type); subproblems.
pub fn problem_summary(p: &Problem) -> String {
    problem_text(p)
}

fn problem_text(p: &Problem) -> String {
    let mut s = p.detail.clone().unwrap_or_else(|| "no detail".into());
    if let Some(t) = &p.r#type {
        s.push_str(&format!(
            " ({})",
            t.trim_start_matches("urn:ietf:params:acme:error:")
        ));
    }
    for sub in &p.subproblems {
        if let Some(d) = &sub.detail {
            s.push_str(&format!("; {d}"));
        }
    }
    s
}

pub(crate) fn is_account_unknown(p: &Problem) -> bool {
    p.r#type
        .as_deref()
        .is_some_and(|t| t.ends_with(":accountDoesNotExist"))
}
