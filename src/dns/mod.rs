//! DNS-01: the provider trait, the solvers, and the per-order session that presents every
//! challenge, waits until all are visible, and always cleans up.
//!
//! A provider publishes one TXT value and later removes exactly that value. It must leave
//! other values at the same name alone: an apex and its wildcard share `_acme-challenge`.
//! A cleanup handle may come back from a lock lease the renew role can write, so a
//! provider that deletes by id reads the record first and deletes it only if it is that
//! TXT value at that name ([`Error::NotOurs`] otherwise).

mod api;
pub mod name;
pub mod propagation;
#[macro_use]
pub mod registry;
mod session;
pub mod wire;
pub mod zone;

// The providers. Adding one: its module, plus one line here.
pub use session::{Session, Settings, Solvers};

registry::registry! {
    "cloudflare" => Cloudflare(cloudflare),
    "dnsimple" => Dnsimple(dnsimple),
    "rfc2136" => Rfc2136(rfc2136),
    "exec" => Exec(exec),
    "powerdns" => Powerdns(powerdns),
    "route53" => Route53(route53),
    "acme-dns" => AcmeDns(acme_dns),
}

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::model::{SolverSpec, Spec};
pub use name::{BadName, Fqdn, Zone};
use propagation::{Check, Polling};
pub use registry::{Build, Kind, SecretSource};

/// The TTL of an API provider's challenge records when its solver sets none.
pub(crate) fn record_ttl() -> u32 {
    crate::defaults::RECORD_TTL
}

/// One DNS-01 value to publish, with the zone that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxtRecord {
    /// The identifier being validated, without `*.` (certbot's `CERTBOT_DOMAIN`).
    pub domain: Fqdn,
    /// Where the value goes: `_acme-challenge.<domain>`, or the CNAME target.
    pub name: Fqdn,
    /// The zone apex that holds `name`; `None` only where nothing was looked up (exec
    /// hooks without the propagation check).
    pub zone: Option<Zone>,
    /// base64url(SHA-256(key authorization)): public, it is published in DNS.
    pub value: String,
}

impl TxtRecord {
    /// The zone, for providers that need one (all but exec).
    pub fn zone(&self, solver: &str) -> Result<&Zone, Error> {
        self.zone.as_ref().ok_or_else(|| Error::Config {
            solver: solver.to_string(),
            reason: format!("no zone is known for {}", self.name),
        })
    }

    /// The zone as text for messages (`?` when unknown).
    pub fn zone_text(&self) -> String {
        self.zone
            .as_ref()
            .map(|z| z.to_string())
            .unwrap_or_else(|| "?".into())
    }
}

/// What `present` created: enough for `cleanup` to remove exactly that value.
#[derive(Debug, Clone)]
pub struct Presented {
    pub record: TxtRecord,
    pub handle: Handle,
}

/// A value an order presented, with the solver that presented it: recorded in the
/// certificate's lock lease, so the run that takes over a dead holder's lease removes what
/// the dead run left in DNS. Public data only (record names, challenge values, record ids).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Leftover {
    pub solver: String,
    pub record: TxtRecord,
    pub handle: Handle,
}

/// A provider. Challenges are presented one after another, then validated together, then
/// cleaned up (always, also after a failure).
#[allow(async_fn_in_trait)]
pub trait Provider {
    /// What `cleanup` needs to remove exactly the presented value (a record id, ...).
    type Handle: Clone + std::fmt::Debug + Serialize + serde::de::DeserializeOwned;
    /// Publish `record`, leaving other values at the same name alone.
    async fn present(&self, record: &TxtRecord) -> Result<Self::Handle, Error>;
    /// Remove exactly what `present` published; succeed if it is already gone.
    async fn cleanup(&self, record: &TxtRecord, handle: &Self::Handle) -> Result<(), Error>;
}

/// Settings every solver may carry besides its provider's options (all optional; the run's
/// flags are the defaults).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SolverSettings {
    /// The zone the solver writes to: no SOA lookup.
    #[serde(default)]
    pub zone: Option<Zone>,
    /// Resolvers for CNAME, SOA and NS lookups of this solver's records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolver: Vec<SocketAddr>,
    /// Port of the zone's authoritative servers (53 in real DNS).
    #[serde(default)]
    pub authoritative_port: Option<u16>,
}

/// A solver configuration, stored at `<prefix>/dns/<solver>`; `kind` picks the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub settings: SolverSettings,
    #[serde(flatten)]
    pub provider: ProviderConfig,
}

impl Config {
    pub fn kind(&self) -> &'static str {
        self.provider.kind()
    }

    /// Check what can be checked without the network (names a bad field).
    pub fn validate(&self, solver: &str) -> Result<(), Error> {
        self.provider.validate(solver)
    }

    /// One line for `dns list`, without secrets.
    pub fn describe(&self) -> String {
        let mut s = self.provider.describe();
        if let Some(z) = &self.settings.zone {
            s.push_str(&format!(" zone {z}"));
        }
        if !self.settings.resolver.is_empty() {
            let r: Vec<String> = self
                .settings
                .resolver
                .iter()
                .map(|a| a.to_string())
                .collect();
            s.push_str(&format!(" resolver {}", r.join(",")));
        }
        if let Some(p) = self.settings.authoritative_port {
            s.push_str(&format!(" authoritative port {p}"));
        }
        s
    }
}

impl From<ProviderConfig> for Config {
    fn from(provider: ProviderConfig) -> Self {
        Config {
            settings: SolverSettings::default(),
            provider,
        }
    }
}

/// Why a TSIG-signed update was rejected, from the server's TSIG error or response code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// The names of RFC 8945's TSIG errors: BADSIG, BADKEY, BADTIME.
#[allow(clippy::enum_variant_names)]
pub enum TsigRejection {
    BadSig,
    BadKey,
    BadTime,
}

/// What went wrong talking to an RFC 2136 server, by kind.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpdateFailure {
    #[error("the server rejected the TSIG signature of key {key} ({code:?}): check the secret of solver {solver}", code = DisplayTsig(*.rejection))]
    TsigRejected {
        key: String,
        solver: String,
        rejection: TsigRejection,
    },
    #[error("the server rejected the TSIG signature of key {key} (BADSIG/BADKEY: its answer carried no valid signature): check the secret of solver {solver} (and its key name and algorithm)")]
    UnsignedAnswer { key: String, solver: String },
    #[error("no answer within {seconds}s (is the server reachable?)")]
    NoAnswer { seconds: u64 },
    #[error("the server refused the update ({code}): the TSIG key is not allowed to update this zone, or the server is not the primary for it")]
    Refused { code: String },
    #[error("{name} is not in zone {zone} on this server")]
    NotZone { name: String, zone: String },
    #[error("cannot resolve the server's name: {0}")]
    Resolve(String),
    #[error("the server answered {0}")]
    Answered(String),
    #[error("{0}")]
    Other(String),
}

struct DisplayTsig(TsigRejection);
impl std::fmt::Debug for DisplayTsig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            TsigRejection::BadSig => "BADSIG",
            TsigRejection::BadKey => "BADKEY",
            TsigRejection::BadTime => "BADTIME",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{hook} hook for {domain} exited with {status}{}", tail(.stderr))]
    HookFailed {
        hook: &'static str,
        domain: String,
        status: String,
        stderr: String,
    },
    #[error("{hook} hook for {domain} did not finish within {seconds}s and was killed")]
    HookTimeout {
        hook: &'static str,
        domain: String,
        seconds: u64,
    },
    #[error("cannot run {hook} hook for {domain}")]
    HookSpawn {
        hook: &'static str,
        domain: String,
        #[source]
        source: std::io::Error,
    },
    #[error("DNS solver {solver} (zone {zone}): {operation} failed with HTTP {status}: {message}{}", auth_hint(*.status))]
    Api {
        solver: String,
        zone: String,
        operation: &'static str,
        status: u16,
        message: String,
    },
    #[error("DNS solver {solver} (zone {zone}): {operation} failed: cannot reach the API")]
    Http {
        solver: String,
        zone: String,
        operation: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("DNS solver {solver}: zone {zone} is not in this account; check the token's zones or choose another solver for it")]
    ZoneNotFound { solver: String, zone: String },
    #[error("DNS solver {solver} (zone {zone}, server {server}): {failure}")]
    Rfc2136 {
        solver: String,
        zone: String,
        server: String,
        failure: Box<UpdateFailure>,
    },
    #[error("DNS solver {solver} is misconfigured: {reason}")]
    Config { solver: String, reason: String },
    #[error("DNS solver {solver} is misconfigured")]
    BadName {
        solver: String,
        #[source]
        source: BadName,
    },
    #[error("DNS solver {solver} (zone {zone}): {reason}")]
    Provider {
        solver: String,
        zone: String,
        reason: String,
    },
    #[error("no DNS solver named {solver} in Vault (looked at {path}); add it with `certvault dns add <kind> {solver} ...`")]
    UnknownSolver { solver: String, path: String },
    #[error("DNS solver {solver} is used by certificate(s) {certs}: change their --dns first (`certvault issue NAME … --dns OTHER`)")]
    InUse { solver: String, certs: String },
    #[error("no DNS solver for {name}: configured zones are [{zones}] and there is no default; add one with --dns <zone>=<solver> or --dns <solver>")]
    NoSolverFor { name: String, zones: String },
    #[error("cannot place the record {name} (solver {solver}, resolver {resolvers})")]
    Placement {
        name: String,
        solver: String,
        resolvers: String,
        #[source]
        source: Box<zone::Error>,
    },
    #[error("DNS propagation check failed (solver {solver}, zone {zone})")]
    NotPropagated {
        solver: String,
        zone: String,
        #[source]
        source: Box<propagation::NotPropagated>,
    },
    /// A cleanup that would remove something certvault cannot prove it presented: the
    /// provider's record behind the handle is not that TXT value at that name, or a
    /// leftover from a lease names what the certificate's spec does not. Nothing was
    /// deleted.
    #[error("DNS solver {solver}: refused to remove {name}: {reason}; nothing was deleted")]
    NotOurs {
        solver: String,
        name: String,
        reason: String,
    },
}

fn tail(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", stderr.trim())
    }
}

fn auth_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => " (check the solver's API credentials and their permissions)",
        429 => " (rate limited; try again later)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::session::choose;
    use super::*;
    use crate::model::{DomainName, SolverName};
    use std::collections::BTreeMap;

    #[test]
    fn longest_zone_suffix_wins() {
        let zones: BTreeMap<DomainName, SolverName> = [
            ("example.com", "cf"),
            ("dev.example.com", "bind"),
            ("example.org", "dnsimple"),
        ]
        .into_iter()
        .map(|(a, b)| (a.parse().unwrap(), b.parse().unwrap()))
        .collect();
        let fallback: SolverName = "fallback".parse().unwrap();
        let table = [
            ("_acme-challenge.example.com", Some("cf")),
            ("_acme-challenge.www.example.com", Some("cf")),
            ("_acme-challenge.dev.example.com", Some("bind")),
            ("_acme-challenge.a.dev.example.com", Some("bind")),
            ("_acme-challenge.example.org", Some("dnsimple")),
            ("_acme-challenge.notexample.com", Some("fallback")),
            ("x.delegated.test", Some("fallback")),
        ];
        for (name, want) in table {
            let got = choose(Some(&fallback), &zones, name).map(SolverName::as_str);
            assert_eq!(got, want, "{name}");
        }
        assert_eq!(choose(None, &zones, "_acme-challenge.other.net"), None);
    }

    #[test]
    fn configs_are_tagged_by_kind_and_hide_secrets() {
        let c: Config = serde_json::from_value(serde_json::json!({
            "kind": "cloudflare", "api_token": "cf-secret-token"
        }))
        .unwrap();
        assert_eq!(c.kind(), "cloudflare");
        assert!(!format!("{c:?}").contains("cf-secret-token"));
        assert!(!c.describe().contains("cf-secret-token"));
        let r: Config = serde_json::from_value(serde_json::json!({
            "kind": "rfc2136", "server": "127.0.0.1:5300", "tsig_key": "k.", "tsig_secret": "c2VjcmV0"
        }))
        .unwrap();
        assert!(r.validate("bind").is_ok());
        let bad: Config = serde_json::from_value(serde_json::json!({
            "kind": "rfc2136", "server": "127.0.0.1:5300", "tsig_key": "k.", "tsig_secret": "c2VjcmV0", "tsig_algorithm": "hmac-md5"
        }))
        .unwrap();
        assert!(bad
            .validate("bind")
            .unwrap_err()
            .to_string()
            .contains("hmac-md5"));
    }

    /// Documents exactly as the previous version wrote them (`dns add --kind …`) load, and
    /// are written back unchanged.
    #[test]
    fn documents_of_the_previous_version_load_unchanged() {
        let docs = [
            r#"{"schema":1,"kind":"cloudflare","api_token":"cf-tok","base_url":"https://api.cloudflare.com/client/v4","ttl":120}"#,
            r#"{"schema":1,"kind":"cloudflare","api_token":"cf-tok","base_url":"http://127.0.0.1:1/client/v4","zone_id":"0123abcd","ttl":120}"#,
            r#"{"schema":1,"kind":"dnsimple","token":"ds-tok","sandbox":false,"ttl":60}"#,
            r#"{"schema":1,"kind":"dnsimple","token":"ds-tok","account_id":1234,"sandbox":true,"base_url":"http://127.0.0.1:1","ttl":60}"#,
            r#"{"schema":1,"kind":"rfc2136","server":"127.0.0.1:5300","tsig_key":"certvault-test.","tsig_algorithm":"hmac-sha256","tsig_secret":"c2VjcmV0","ttl":60}"#,
            r#"{"schema":1,"kind":"rfc2136","server":"ns1.example.net:53","zone":"example.net","tsig_key":"k.","tsig_algorithm":"hmac-sha512","tsig_secret":"c2VjcmV0","ttl":60}"#,
            r#"{"schema":1,"kind":"exec","auth_hook":"/usr/local/bin/auth","cleanup_hook":""}"#,
            r#"{"schema":1,"kind":"exec","auth_hook":"/usr/local/bin/auth","cleanup_hook":"/usr/local/bin/clean"}"#,
        ];
        for doc in docs {
            let value: serde_json::Value = serde_json::from_str(doc).unwrap();
            let record: crate::records::SolverRecord =
                serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{doc}: {e}"));
            assert_eq!(serde_json::to_value(&record).unwrap(), value, "{doc}");
            record.config.validate("old").unwrap();
        }
        let r: crate::records::SolverRecord = serde_json::from_str(docs[5]).unwrap();
        assert_eq!(r.config.settings.zone.unwrap().as_str(), "example.net");
        // A minimal exec document (no cleanup hook) still loads.
        let e: Config = serde_json::from_str(r#"{"kind":"exec","auth_hook":"/bin/true"}"#).unwrap();
        assert_eq!(e.kind(), "exec");
    }

    #[test]
    fn a_zone_that_is_not_a_name_is_refused_naming_the_field() {
        let e = serde_json::from_str::<Config>(
            r#"{"kind":"rfc2136","server":"127.0.0.1:53","zone":"bad zone","tsig_key":"k.","tsig_secret":"c2VjcmV0"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("zone \"bad zone\" is not a DNS name"), "{e}");
    }
}
