//! DNS-01: the provider trait, the solvers, and the per-order session that presents every
//! challenge, waits until all are visible, and always cleans up.
//!
//! A provider publishes one TXT value and later removes exactly that value. It must leave
//! other values at the same name alone: an apex and its wildcard share `_acme-challenge`.
//! A cleanup handle may come back from a lock lease the renew role can write, so a
//! provider that deletes by id reads the record first and deletes it only if it is that
//! TXT value at that name ([`Error::NotOurs`] otherwise).

mod api;
mod error;
pub mod name;
pub mod propagation;
mod provider;
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
pub use error::{Error, TsigRejection, UpdateFailure};
pub use name::{Fqdn, Zone};
use propagation::{Check, Polling};
pub use provider::{Provider, TxtRecord};
pub use registry::{Build, Kind, SecretSource};

/// The TTL of an API provider's challenge records when its solver sets none.
pub(crate) fn record_ttl() -> u32 {
    crate::defaults::RECORD_TTL
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

/// A random TXT value shaped like a real DNS-01 challenge value: 43 base64url characters
/// (acme-dns accepts only those). What `dns test` and `doctor` present to probe a solver.
pub fn probe_value() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::random::bytes::<32>())
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
