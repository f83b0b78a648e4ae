//! Data kept in Vault and the validated names that lead to it.
//!
//! Nothing here does I/O or reads the clock.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod spec;

pub use crate::secret::Secret;
pub use spec::*;

/// The hooks, stored at `<prefix>/dns/<solver>` with `"kind": "exec"`, and inline in a
/// certificate's spec for `issue --dns exec` (the same JSON in both places).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecConfig {
    pub auth_hook: String,
    /// Empty: nothing to clean up.
    #[serde(default)]
    pub cleanup_hook: String,
}

/// Version of the documents certvault writes. A reader refuses newer ones.
pub const SCHEMA_VERSION: u32 = 1;

/// Input that failed validation; the message says what is wrong and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct InvalidInput {
    pub what: &'static str,
    pub value: String,
    pub reason: &'static str,
}

/// A validated name kept as its text: `as_str`, `Display`, and (for names stored in
/// documents) the `String` conversions serde's `try_from`/`into` use.
macro_rules! name_type {
    ($($t:ident),*) => {$(
        impl $t {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $t {
            type Error = InvalidInput;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl From<$t> for String {
            fn from(n: $t) -> String {
                n.0
            }
        }
    )*};
}

/// Names stored in Vault paths that follow the certificate-name rules.
macro_rules! cert_like_name {
    ($($(#[$doc:meta])* $t:ident => $what:literal),*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $t(String);

        impl FromStr for $t {
            type Err = InvalidInput;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                cert_like($what, s).map($t)
            }
        }
    )*};
}

cert_like_name! {
    /// The name of a stored ACME account: `<prefix>/accounts/<AccountName>`.
    AccountName => "account name",
    /// The name of a stored DNS solver: `<prefix>/dns/<SolverName>`.
    SolverName => "solver name"
}

name_type!(CertName, AccountName, DomainName, SolverName, EnvName);

/// An environment variable an admin lets through to a certificate's hooks (`issue
/// --hook-env NAME`), although it looks like a credential. certvault's own settings and
/// credentials (`VAULT_*`, `BAO_*`, `CERTVAULT_*`) can never be named.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EnvName(String);

impl FromStr for EnvName {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let shaped = !s.is_empty()
            && s.len() <= 128
            && !s.as_bytes()[0].is_ascii_digit()
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !shaped {
            return Err(invalid(
                "hook variable",
                s,
                "use 1 to 128 characters of A-Z, a-z, 0-9 or '_', not starting with a digit",
            ));
        }
        let upper = s.to_ascii_uppercase();
        if ["VAULT_", "BAO_", "CERTVAULT_"]
            .iter()
            .any(|p| upper.starts_with(p))
        {
            return Err(invalid(
                "hook variable",
                s,
                "certvault's own settings and Vault credentials never reach a hook; give the hook what it needs under another name",
            ));
        }
        Ok(Self(s.to_string()))
    }
}

/// `s` if it is valid as a certificate name (the same rules), else an error naming `what`.
fn cert_like(what: &'static str, s: &str) -> Result<String, InvalidInput> {
    s.parse::<CertName>().map(String::from).map_err(|_| {
        invalid(
            what,
            s,
            "use 1 to 128 characters of a-z, A-Z, 0-9, '.', '_' or '-', not starting with '.' or '-'",
        )
    })
}

fn invalid(what: &'static str, value: &str, reason: &'static str) -> InvalidInput {
    InvalidInput {
        what,
        value: value.to_string(),
        reason,
    }
}

/// The name of one certificate record: `<prefix>/certs/<CertName>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CertName(String);

impl FromStr for CertName {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const REASON: &str =
            "use 1 to 128 characters of a-z, A-Z, 0-9, '.', '_' or '-', not starting with '.' or '-'";
        let ok = !s.is_empty()
            && s.len() <= 128
            && !s.starts_with(['.', '-'])
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(invalid("certificate name", s, REASON))
        }
    }
}

/// A DNS identifier for a certificate: a lower-case host name, optionally `*.` + a host name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DomainName(String);

impl DomainName {
    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }
    /// The name without a leading `*.`: the one DNS-01 proves control of.
    pub fn base(&self) -> &str {
        self.0.strip_prefix("*.").unwrap_or(&self.0)
    }
}

impl FromStr for DomainName {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim_end_matches('.').to_ascii_lowercase();
        let base = lower.strip_prefix("*.").unwrap_or(&lower);
        if base.len() > 253 || base.is_empty() {
            return Err(invalid("domain name", s, "must be 1 to 253 characters"));
        }
        if !base.contains('.') {
            return Err(invalid(
                "domain name",
                s,
                "must have at least two labels, like example.com",
            ));
        }
        if base
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
            || base.contains(':')
        {
            return Err(invalid(
                "domain name",
                s,
                "is an IP address: DNS-01 proves control of names only; use a DNS name",
            ));
        }
        for label in base.split('.') {
            let ldh = label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if label.is_empty() || label.len() > 63 || !ldh {
                return Err(invalid(
                    "domain name",
                    s,
                    "each label must be 1 to 63 letters, digits or '-' (a wildcard only as a leading '*.')",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(invalid(
                    "domain name",
                    s,
                    "a label must not start or end with '-'",
                ));
            }
        }
        Ok(Self(lower))
    }
}

/// The private key algorithm of a certificate. A new key is made at every issuance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    #[default]
    EcdsaP256,
    EcdsaP384,
    Rsa2048,
    Rsa3072,
    Rsa4096,
}

impl KeyType {
    pub const ALL: [KeyType; 5] = [
        KeyType::EcdsaP256,
        KeyType::EcdsaP384,
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::EcdsaP384 => "ecdsa-p384",
            KeyType::Rsa2048 => "rsa2048",
            KeyType::Rsa3072 => "rsa3072",
            KeyType::Rsa4096 => "rsa4096",
        }
    }
}

impl FromStr for KeyType {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyType::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                invalid(
                    "key type",
                    s,
                    "use ecdsa-p256, ecdsa-p384, rsa2048, rsa3072 or rsa4096",
                )
            })
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A duration written like `30d`, `12h`, `1w 2d` (humantime syntax). It keeps the text as
/// the user typed it, for messages and the stored spec; two durations are equal when they
/// last as long.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HumanDuration(pub Duration, String);

impl PartialEq for HumanDuration {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for HumanDuration {}

impl FromStr for HumanDuration {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match humantime::parse_duration(s) {
            Ok(d) if !d.is_zero() => Ok(Self(d, s.trim().to_string())),
            _ => Err(invalid(
                "duration",
                s,
                "write a positive duration like 30d, 12h or 1w 2d",
            )),
        }
    }
}

impl From<Duration> for HumanDuration {
    /// A default setting, written as humantime writes it (`300s` → `5m`).
    fn from(d: Duration) -> Self {
        Self(d, humantime::format_duration(d).to_string())
    }
}

impl TryFrom<String> for HumanDuration {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<HumanDuration> for String {
    fn from(d: HumanDuration) -> String {
        d.to_string()
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.1)
    }
}

/// How DNS-01 challenges of a certificate are solved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SolverSpec {
    /// certbot-compatible manual hooks, run with `sh -c` (the same document as a stored
    /// `exec` solver).
    Exec(ExecConfig),
    /// Solvers stored in Vault (`<prefix>/dns/<solver>`), chosen per record name: the
    /// longest matching zone in `zones`, else `default`.
    Solvers {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<SolverName>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        zones: BTreeMap<DomainName, SolverName>,
    },
}

impl SolverSpec {
    /// The stored solvers this spec may use.
    pub fn solver_names(&self) -> Vec<String> {
        match self {
            SolverSpec::Exec(_) => Vec::new(),
            SolverSpec::Solvers { default, zones } => {
                let mut names: Vec<String> = zones
                    .values()
                    .chain(default)
                    .map(SolverName::to_string)
                    .collect();
                names.sort();
                names.dedup();
                names
            }
        }
    }

    /// Parse `--dns` values: `exec` (with hooks), or `<solver>` (the default) and
    /// `<zone>=<solver>` entries.
    pub fn from_args(
        values: &[String],
        auth_hook: Option<String>,
        cleanup_hook: Option<String>,
    ) -> Result<Self, InvalidInput> {
        if values.is_empty() || values == ["exec"] {
            let auth_hook = auth_hook.filter(|h| !h.trim().is_empty()).ok_or_else(|| {
                invalid(
                    "--dns exec",
                    "",
                    "needs --auth-hook <command> (and usually --cleanup-hook)",
                )
            })?;
            return Ok(SolverSpec::Exec(ExecConfig {
                auth_hook,
                cleanup_hook: cleanup_hook.unwrap_or_default(),
            }));
        }
        if auth_hook.is_some() || cleanup_hook.is_some() {
            return Err(invalid(
                "--auth-hook/--cleanup-hook",
                "",
                "hooks go with --dns exec only; for stored solvers put hooks in `certvault dns add exec NAME`",
            ));
        }
        let mut default = None;
        let mut zones = BTreeMap::new();
        for v in values {
            match v.split_once('=') {
                Some((zone, solver)) => {
                    let zone: DomainName = zone.parse().map_err(|_| {
                        invalid(
                            "--dns zone",
                            zone,
                            "write <zone>=<solver>, like example.com=cloudflare",
                        )
                    })?;
                    let solver: SolverName = solver.parse()?;
                    zones.insert(zone, solver);
                }
                None if v == "exec" => {
                    return Err(invalid(
                        "--dns",
                        v,
                        "exec cannot be combined with stored solvers",
                    ))
                }
                None => {
                    let solver: SolverName = v.parse()?;
                    if default.replace(solver).is_some() {
                        return Err(invalid(
                            "--dns",
                            v,
                            "give at most one default solver (the others as <zone>=<solver>)",
                        ));
                    }
                }
            }
        }
        Ok(SolverSpec::Solvers { default, zones })
    }
}

#[cfg(test)]
mod tests;
