//! Data kept in Vault and the validated names that lead to it.
//!
//! Nothing here does I/O or reads the clock.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

/// Version of the documents certvault writes. A reader refuses newer ones.
pub const SCHEMA_VERSION: u32 = 1;

/// A string that never shows up in `Debug` or `Display` output (private keys).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Self(s)
    }
    /// The secret text; call only where it is written to Vault or parsed.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Input that failed validation; the message says what is wrong and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct InvalidInput {
    pub what: &'static str,
    pub value: String,
    pub reason: &'static str,
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

impl CertName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

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

impl TryFrom<String> for CertName {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<CertName> for String {
    fn from(n: CertName) -> String {
        n.0
    }
}

impl fmt::Display for CertName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of a stored ACME account: `<prefix>/accounts/<AccountName>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountName(String);

impl FromStr for AccountName {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<CertName>()
            .map(|n| AccountName(n.to_string()))
            .map_err(|_| {
                invalid(
                    "account name",
                    s,
                    "use 1 to 128 characters of a-z, A-Z, 0-9, '.', '_' or '-', not starting with '.' or '-'",
                )
            })
    }
}

impl AccountName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A DNS identifier for a certificate: a lower-case host name, optionally `*.` + a host name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DomainName(String);

impl DomainName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
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

impl TryFrom<String> for DomainName {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<DomainName> for String {
    fn from(n: DomainName) -> String {
        n.0
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
    Exec(crate::dns::exec::Config),
    /// Solvers stored in Vault (`<prefix>/dns/<solver>`), chosen per record name: the
    /// longest matching zone in `zones`, else `default`.
    Solvers {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        zones: BTreeMap<String, String>,
    },
}

impl SolverSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            SolverSpec::Exec(_) => "exec",
            SolverSpec::Solvers { .. } => "solvers",
        }
    }

    /// The stored solvers this spec may use.
    pub fn solver_names(&self) -> Vec<String> {
        match self {
            SolverSpec::Exec(_) => Vec::new(),
            SolverSpec::Solvers { default, zones } => {
                let mut names: Vec<String> =
                    zones.values().cloned().chain(default.clone()).collect();
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
            return Ok(SolverSpec::Exec(crate::dns::exec::Config {
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
                    zones.insert(zone.to_string(), solver.to_string());
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
                    if default.replace(solver.to_string()).is_some() {
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

/// The name of a stored DNS solver: `<prefix>/dns/<SolverName>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SolverName(String);

impl FromStr for SolverName {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<CertName>()
            .map(|n| SolverName(n.to_string()))
            .map_err(|_| {
                invalid(
                    "solver name",
                    s,
                    "use 1 to 128 characters of a-z, A-Z, 0-9, '.', '_' or '-'",
                )
            })
    }
}

impl SolverName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SolverName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_true(b: &bool) -> bool {
    *b
}

fn yes() -> bool {
    true
}

/// What a certificate should be: everything `renew` needs to reproduce it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// The first name is the subject CN.
    pub domains: Vec<DomainName>,
    #[serde(default)]
    pub key_type: KeyType,
    pub dns: SolverSpec,
    /// Renew this long before expiry; if absent, when 1/3 of the lifetime is left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_before: Option<HumanDuration>,
    /// Which ACME account (`<prefix>/accounts/<account>`) issues it.
    pub account: String,
    /// Follow a CNAME at `_acme-challenge.<name>` and write the record at its target.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub follow_cname: bool,
    /// Wait until every authoritative nameserver serves the record before validation.
    /// Default: on for stored solvers, off for `--dns exec` hooks (as certbot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation_check: Option<bool>,
    /// Run after every new certificate is stored (certbot's `--deploy-hook`), with `sh -c`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_hook: Option<String>,
    /// Consumer fields written with the material (`issue --layout`); empty: certbot's only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layouts: Vec<RecordLayout>,
    /// The CA profile orders ask for (`issue --profile`, checked against the directory's
    /// `meta.profiles`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Keep the private key across renewals (`issue --reuse-key`); default: a new key each time.
    #[serde(default, skip_serializing_if = "is_false")]
    pub reuse_key: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Which fields a certificate document carries besides certbot's (`issue --layout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordLayout {
    /// `cert`, `chain`, `fullchain`, `privkey` (always written).
    Certbot,
    /// Also `tls.crt` (fullchain), `tls.key` and `ca.crt` (the chain), as a Kubernetes TLS
    /// Secret names them.
    Kubernetes,
    /// Also `combined`: the private key and the full chain in one PEM (HAProxy).
    Combined,
}

impl FromStr for RecordLayout {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "certbot" => Ok(Self::Certbot),
            "kubernetes" => Ok(Self::Kubernetes),
            "combined" => Ok(Self::Combined),
            _ => Err(invalid("layout", s, "use certbot, kubernetes or combined")),
        }
    }
}

/// The consumer fields of [`RecordLayout`]s, derived from the material at every write.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LayoutFields {
    #[serde(rename = "tls.crt", default, skip_serializing_if = "Option::is_none")]
    pub tls_crt: Option<String>,
    #[serde(rename = "tls.key", default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<Secret>,
    #[serde(rename = "ca.crt", default, skip_serializing_if = "Option::is_none")]
    pub ca_crt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combined: Option<Secret>,
}

impl LayoutFields {
    /// The fields `layouts` ask for, from `issued`.
    pub fn new(layouts: &[RecordLayout], issued: &Issued) -> Self {
        let mut out = Self::default();
        for layout in layouts {
            match layout {
                RecordLayout::Certbot => {}
                RecordLayout::Kubernetes => {
                    out.tls_crt = Some(issued.fullchain.clone());
                    out.tls_key = Some(issued.privkey.clone());
                    out.ca_crt = Some(issued.chain.clone());
                }
                RecordLayout::Combined => {
                    let mut pem = issued.privkey.expose().to_string();
                    if !pem.ends_with('\n') {
                        pem.push('\n');
                    }
                    pem.push_str(&issued.fullchain);
                    out.combined = Some(Secret::new(pem));
                }
            }
        }
        out
    }
}

/// The issued material, with certbot's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issued {
    pub cert: String,
    pub chain: String,
    pub fullchain: String,
    pub privkey: Secret,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Hex, upper case, no separators.
    pub serial: String,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
}

/// One KV v2 document per certificate at `<prefix>/certs/<name>`: the material, and a copy
/// of the spec it was issued for (for people and tools reading the record). `renew` never
/// trusts this copy: the renew policy may write this document, so what a renewal orders and
/// runs comes from [`SpecRecord`] at `specs/<name>`, which only the admin policy may write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertRecord {
    pub schema: u32,
    pub spec: Spec,
    #[serde(flatten)]
    pub issued: Issued,
    /// The consumer fields the spec's layouts ask for (rewritten with the material).
    #[serde(flatten)]
    pub layout: LayoutFields,
    /// What certvault learned from the CA about this certificate (ARI, lineage,
    /// revocation): written by `renew` and `revoke`, never trusted as a definition.
    #[serde(flatten)]
    pub facts: CaFacts,
    /// Fields a user added to the document: kept through renewals.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Runtime facts from the CA kept in the certificate document (`certs/<NAME>`), which the
/// renew token may write. A document without them loads (all default).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CaFacts {
    /// ACME Renewal Information (RFC 9773) for this certificate; absent when the CA has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ari: Option<crate::ari::AriState>,
    /// The ACME account URL that ordered this certificate (`replaces` must come from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordered_by: Option<String>,
    /// The ARI identifier of the certificate this one replaced (sent as `replaces`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<String>,
    /// Why this certificate was ordered without `replaces` although it replaced one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces_dropped: Option<String>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke_reason: Option<String>,
}

/// A CA paused for `renew` (it rate-limited new orders) at `<prefix>/pauses/<account>`:
/// the next run honours it too. Key-free, so the renew token may write it without being
/// able to change the account document (and its key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseRecord {
    pub schema: u32,
    pub directory: String,
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

/// The admin-only definition of a certificate at `<prefix>/specs/<name>`: which names are
/// ordered, how DNS-01 is solved (hooks included) and what runs after a renewal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecRecord {
    pub schema: u32,
    #[serde(flatten)]
    pub spec: Spec,
}

/// What the last runs did with a certificate, at `<prefix>/status/<name>`: no key
/// material, so a monitoring token may read it. Written only when something happened
/// (a renewal, a failure), never by a run with nothing due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRecord {
    pub schema: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub serial: String,
    /// The KV version of `certs/<name>` these facts describe.
    pub cert_version: u64,
    /// The last attempt: `renewed` or `failed`.
    pub last_result: String,
    #[serde(with = "time::serde::rfc3339")]
    pub last_attempt_at: OffsetDateTime,
    /// Failures since the last success.
    #[serde(default)]
    pub failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_failure_at: Option<OffsetDateTime>,
    /// The certificate's ARI facts, as in `certs/<NAME>` (for monitors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ari: Option<crate::ari::AriState>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub revoked_at: Option<OffsetDateTime>,
}

/// A DNS solver at `<prefix>/dns/<name>`: its kind, options and credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SolverRecord {
    pub schema: u32,
    #[serde(flatten)]
    pub config: crate::dns::Config,
}

/// A per-certificate lock at `<prefix>/locks/<name>`, held while a run orders and writes
/// that certificate, so overlapping runs (a CronJob that starts again before the last one
/// ended) do not order the same certificate twice. It is a short lease that its holder
/// renews while it works, so a killed run blocks the certificate for about a minute.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockRecord {
    pub schema: u32,
    /// Who holds it: host (pod) name, pid and run id (for the message another run prints).
    pub holder: String,
    #[serde(with = "time::serde::rfc3339")]
    pub acquired_at: OffsetDateTime,
    /// After this the lease has lapsed (its holder died or lost Vault) and may be taken over.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The run that holds it (also in `holder`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    /// DNS-01 values the holder has presented and not yet removed: a run that takes the
    /// lease over from a dead holder removes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub presented: Vec<crate::dns::Leftover>,
}

/// The ACME account at `<prefix>/accounts/<name>`.
#[derive(Clone, Serialize, Deserialize)]
pub struct AccountRecord {
    pub schema: u32,
    pub directory: String,
    #[serde(default)]
    pub contact: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eab_kid: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// instant-acme's opaque credentials (account URL and private key), stored verbatim.
    pub credentials: serde_json::Value,
    /// Set by `certvault account deactivate`: the CA no longer accepts this account.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub deactivated_at: Option<OffsetDateTime>,
}

impl fmt::Debug for AccountRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountRecord")
            .field("directory", &self.directory)
            .field("contact", &self.contact)
            .field("credentials", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names() {
        assert_eq!(
            "Example.COM.".parse::<DomainName>().unwrap().as_str(),
            "example.com"
        );
        let w: DomainName = "*.example.com".parse().unwrap();
        assert!(w.is_wildcard());
        assert_eq!(w.base(), "example.com");
        for bad in [
            "",
            "com",
            "a..b",
            "exa mple.com",
            "*.*.example.com",
            "a.*.example.com",
            "-a.example.com",
            "a_b.example.com",
            "192.0.2.1",
            "*.10.0.0.1",
            "2001:db8::1",
            &format!("{}.com", "a".repeat(64)),
        ] {
            assert!(bad.parse::<DomainName>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn cert_names() {
        assert!("web-1.prod_x".parse::<CertName>().is_ok());
        for bad in ["", ".x", "-x", "a/b", "a b", &"a".repeat(129)] {
            assert!(bad.parse::<CertName>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn key_types_round_trip() {
        for k in KeyType::ALL {
            assert_eq!(k.as_str().parse::<KeyType>().unwrap(), k);
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::json!(k.as_str())
            );
        }
        assert!("rsa1024".parse::<KeyType>().is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(
            "30d".parse::<HumanDuration>().unwrap().0,
            Duration::from_secs(30 * 86400)
        );
        assert!("0s".parse::<HumanDuration>().is_err());
        assert!("soon".parse::<HumanDuration>().is_err());
    }

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new("-----BEGIN PRIVATE KEY-----abc".into());
        assert!(!format!("{s:?}").contains("BEGIN"));
    }
}
