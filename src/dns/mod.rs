//! DNS-01: the provider trait, the solvers, and the per-order session that presents every
//! challenge, waits until all are visible, and always cleans up.
//!
//! A provider publishes one TXT value and later removes exactly that value. It must leave
//! other values at the same name alone: an apex and its wildcard share `_acme-challenge`.

mod api;
pub mod name;
pub mod propagation;
#[macro_use]
pub mod registry;
pub mod wire;
pub mod zone;

// The providers. Adding one: its module, plus one line here.
registry::registry! {
    "cloudflare" => Cloudflare(cloudflare),
    "dnsimple" => Dnsimple(dnsimple),
    "rfc2136" => Rfc2136(rfc2136),
    "exec" => Exec(exec),
    "powerdns" => Powerdns(powerdns),
    "route53" => Route53(route53),
    "acme-dns" => AcmeDns(acme_dns),
}

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{SolverSpec, Spec};
pub use name::{BadName, Fqdn, Zone};
use propagation::{Check, Polling};
pub use registry::{Build, CommonArgs, Kind, SecretSource};

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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SolverSettings {
    /// The zone the solver writes to: no SOA lookup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<Zone>,
    /// Resolvers for CNAME, SOA and NS lookups of this solver's records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolver: Vec<SocketAddr>,
    /// Port of the zone's authoritative servers (53 in real DNS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

/// The solver for a record name: the longest configured zone that is a suffix of `name`
/// (cert-manager's per-zone selector), else the default.
pub fn choose<'a>(
    default: Option<&'a str>,
    zones: &'a BTreeMap<String, String>,
    name: &str,
) -> Option<&'a str> {
    zones
        .iter()
        .filter(|(zone, _)| name == zone.as_str() || name.ends_with(&format!(".{zone}")))
        .max_by_key(|(zone, _)| zone.len())
        .map(|(_, solver)| solver.as_str())
        .or(default)
}

/// DNS settings of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub lookup: zone::Lookup,
    pub polling: Polling,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            lookup: zone::Lookup {
                resolvers: zone::Lookup::system_resolvers(),
                authoritative_port: 53,
                timeout: Duration::from_secs(3),
            },
            polling: Polling {
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(300),
            },
        }
    }
}

/// The solvers an order may use: the run's settings and the configurations loaded from Vault.
pub struct Solvers<'a> {
    pub settings: &'a Settings,
    pub http: &'a reqwest::Client,
    /// Loaded solver configurations by name (missing ones fail with `UnknownSolver`).
    pub configs: &'a BTreeMap<String, Config>,
    /// Solvers whose configuration could not be read, with the reason.
    pub broken: &'a BTreeMap<String, String>,
    /// Where a missing configuration was looked for: `<mount>/<prefix>/dns/`.
    pub folder: String,
    /// Told what an order has presented and not yet cleaned up, after each change (the
    /// lock lease records it).
    pub presented: Option<tokio::sync::watch::Sender<Vec<Leftover>>>,
}

impl Solvers<'_> {
    /// The run's lookup settings with the solver's own resolver and port on top.
    pub fn lookup_for(&self, solver: Option<&str>) -> zone::Lookup {
        let mut lookup = self.settings.lookup.clone();
        if let Some(s) = solver.and_then(|s| self.configs.get(s)) {
            if !s.settings.resolver.is_empty() {
                lookup.resolvers = s.settings.resolver.clone();
            }
            if let Some(p) = s.settings.authoritative_port {
                lookup.authoritative_port = p;
            }
        }
        lookup
    }
}

/// One order's challenges: present each, wait for all, clean up all.
pub struct Session<'a> {
    solvers: &'a Solvers<'a>,
    spec: &'a Spec,
    all_domains: String,
    challenges: usize,
    providers: BTreeMap<String, AnyProvider>,
    presented: Vec<(String, Presented)>,
    checks: Vec<(String, Check)>,
}

/// The name used for the inline `--dns exec` hooks.
const INLINE_EXEC: &str = "exec";

/// Where one record goes, as `Session::place` found it.
pub struct Placed {
    pub solver: String,
    pub name: Fqdn,
    pub zone: Option<Zone>,
    pub nameservers: Vec<zone::Nameserver>,
}

impl<'a> Session<'a> {
    pub fn new(solvers: &'a Solvers<'a>, spec: &'a Spec, challenges: usize) -> Self {
        let all_domains = spec
            .domains
            .iter()
            .map(|d| d.as_str())
            .collect::<Vec<_>>()
            .join(",");
        Self {
            solvers,
            spec,
            all_domains,
            challenges,
            providers: BTreeMap::new(),
            presented: Vec::new(),
            checks: Vec::new(),
        }
    }

    fn check_propagation(&self) -> bool {
        self.spec.propagation_check.unwrap_or(match self.spec.dns {
            // certbot's manual hooks are trusted to return once the record is live.
            SolverSpec::Exec(_) => false,
            SolverSpec::Solvers { .. } => true,
        })
    }

    fn provider(&mut self, solver: &str) -> Result<&AnyProvider, Error> {
        if !self.providers.contains_key(solver) {
            let config = match &self.spec.dns {
                SolverSpec::Exec(hooks) if solver == INLINE_EXEC => {
                    Config::from(ProviderConfig::Exec(hooks.clone()))
                }
                _ if self.solvers.broken.contains_key(solver) => {
                    return Err(Error::Config {
                        solver: solver.to_string(),
                        reason: self.solvers.broken[solver].clone(),
                    })
                }
                _ => self.solvers.configs.get(solver).cloned().ok_or_else(|| {
                    Error::UnknownSolver {
                        solver: solver.to_string(),
                        path: format!("{}{solver}", self.solvers.folder),
                    }
                })?,
            };
            let p = AnyProvider::new(
                &config.provider,
                &Build {
                    solver,
                    http: self.solvers.http,
                    all_domains: &self.all_domains,
                    challenges: self.challenges,
                },
            )?;
            self.providers.insert(solver.to_string(), p);
        }
        Ok(&self.providers[solver])
    }

    fn choose_solver(&self, name: &Fqdn) -> Result<String, Error> {
        match &self.spec.dns {
            SolverSpec::Exec(_) => Ok(INLINE_EXEC.to_string()),
            SolverSpec::Solvers { default, zones } => {
                choose(default.as_deref(), zones, name.as_str())
                    .map(str::to_string)
                    .ok_or_else(|| Error::NoSolverFor {
                        name: name.to_string(),
                        zones: zones.keys().cloned().collect::<Vec<_>>().join(", "),
                    })
            }
        }
    }

    /// Follow CNAMEs, choose the solver, find the zone (the solver's own, else via SOA)
    /// and its nameservers (when the propagation check runs).
    pub async fn place(&self, start: &Fqdn) -> Result<Placed, Error> {
        let check = self.check_propagation();
        let needs_placement = check || matches!(self.spec.dns, SolverSpec::Solvers { .. });
        if !needs_placement {
            return Ok(Placed {
                solver: self.choose_solver(start)?,
                name: start.clone(),
                zone: None,
                nameservers: Vec::new(),
            });
        }
        let first = self.choose_solver(start).ok();
        let lookup = self.solvers.lookup_for(first.as_deref());
        let fail = |solver: &str, lookup: &zone::Lookup, name: &Fqdn, source| Error::Placement {
            name: name.to_string(),
            solver: solver.to_string(),
            resolvers: lookup.describe(),
            source: Box::new(source),
        };
        let name = if self.spec.follow_cname {
            zone::follow_cnames(&lookup, start)
                .await
                .map_err(|e| fail(first.as_deref().unwrap_or("?"), &lookup, start, e))?
        } else {
            start.clone()
        };
        let solver = self.choose_solver(&name)?;
        let lookup = self.solvers.lookup_for(Some(&solver));
        let configured = self
            .solvers
            .configs
            .get(&solver)
            .and_then(|c| c.settings.zone.clone())
            .filter(|z| name.is_in(z));
        let zone = match configured {
            Some(z) => z,
            None => zone::find_zone(&lookup, &name)
                .await
                .map_err(|e| fail(&solver, &lookup, &name, e))?,
        };
        let nameservers = if check {
            zone::nameservers(&lookup, &zone)
                .await
                .map_err(|e| fail(&solver, &lookup, &name, e))?
        } else {
            Vec::new()
        };
        Ok(Placed {
            solver,
            name,
            zone: Some(zone),
            nameservers,
        })
    }

    /// Place, choose the solver for, and publish one challenge value.
    pub async fn present(&mut self, domain: &str, value: String) -> Result<Placed, Error> {
        let domain = Fqdn::parse("domain", domain).map_err(|source| Error::BadName {
            solver: "?".into(),
            source,
        })?;
        let start =
            Fqdn::parse("name", &format!("_acme-challenge.{domain}")).map_err(|source| {
                Error::BadName {
                    solver: "?".into(),
                    source,
                }
            })?;
        let placed = self.place(&start).await?;
        let record = TxtRecord {
            domain,
            name: placed.name.clone(),
            zone: placed.zone.clone(),
            value,
        };
        let solver = placed.solver.clone();
        tracing::debug!(name = %record.name, zone = %record.zone_text(), %solver, "presenting DNS-01 challenge");
        let presented = self.provider(&solver)?.present(&record).await?;
        self.presented.push((solver.clone(), presented));
        if let Some(tx) = &self.solvers.presented {
            let _ = tx.send(self.leftovers());
        }
        if self.check_propagation() {
            self.checks.push((
                solver,
                Check {
                    name: placed.name.clone(),
                    value: record.value,
                    nameservers: placed.nameservers.clone(),
                },
            ));
        }
        Ok(placed)
    }

    /// Wait until every presented value is served by every authoritative nameserver.
    pub async fn wait(&self) -> Result<(), Error> {
        if self.checks.is_empty() {
            return Ok(());
        }
        let checks: Vec<Check> = self.checks.iter().map(|(_, c)| c.clone()).collect();
        propagation::wait_until_visible(&checks, self.solvers.settings.polling)
            .await
            .map_err(|source| {
                let (solver, zone) = self
                    .checks
                    .iter()
                    .zip(self.presented.iter())
                    .find(|((_, c), _)| c.name == source.name)
                    .map(|((s, _), (_, p))| (s.clone(), p.record.zone_text()))
                    .unwrap_or_default();
                Error::NotPropagated {
                    solver,
                    zone,
                    source: Box::new(source),
                }
            })
    }

    /// What this order has presented and not yet cleaned up.
    pub fn leftovers(&self) -> Vec<Leftover> {
        self.presented
            .iter()
            .map(|(solver, p)| Leftover {
                solver: solver.clone(),
                record: p.record.clone(),
                handle: p.handle.clone(),
            })
            .collect()
    }

    /// Remove values a dead run presented (from its lease): each through its solver, as
    /// this spec and the stored solvers define it now. Returns the failures.
    pub async fn cleanup_leftovers(&mut self, leftovers: Vec<Leftover>) -> Vec<Error> {
        let mut errors = Vec::new();
        for l in leftovers {
            let presented = Presented {
                record: l.record,
                handle: l.handle,
            };
            let result = match self.provider(&l.solver) {
                Ok(p) => p.cleanup(&presented).await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                tracing::warn!(name = %presented.record.name, solver = %l.solver, "could not remove a value a dead run left: {e}");
                errors.push(e);
            }
        }
        errors
    }

    /// Remove every presented value (in reverse order); returns the failures.
    pub async fn cleanup(&mut self) -> Vec<Error> {
        let mut errors = Vec::new();
        let presented_all = std::mem::take(&mut self.presented);
        if let Some(tx) = &self.solvers.presented {
            let _ = tx.send(Vec::new());
        }
        for (solver, presented) in presented_all.iter().rev() {
            if let Some(p) = self.providers.get(solver) {
                if let Err(e) = p.cleanup(presented).await {
                    tracing::warn!(name = %presented.record.name, %solver, "cleanup failed: {e}");
                    errors.push(e);
                }
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_zone_suffix_wins() {
        let zones: BTreeMap<String, String> = [
            ("example.com", "cf"),
            ("dev.example.com", "bind"),
            ("example.org", "dnsimple"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
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
            assert_eq!(choose(Some("fallback"), &zones, name), want, "{name}");
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
            let record: crate::model::SolverRecord =
                serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{doc}: {e}"));
            assert_eq!(serde_json::to_value(&record).unwrap(), value, "{doc}");
            record.config.validate("old").unwrap();
        }
        let r: crate::model::SolverRecord = serde_json::from_str(docs[5]).unwrap();
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
