//! DNS-01: the provider trait, the solvers, and the per-order session that presents every
//! challenge, waits until all are visible, and always cleans up.
//!
//! A provider publishes one TXT value and later removes exactly that value. It must leave
//! other values at the same name alone: an apex and its wildcard share `_acme-challenge`.

mod api;
pub mod cloudflare;
pub mod dnsimple;
pub mod exec;
pub mod propagation;
pub mod rfc2136;
pub mod wire;
pub mod zone;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{SolverSpec, Spec};
use propagation::{Check, Polling};

/// One DNS-01 value to publish, with the zone that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxtRecord {
    /// The identifier being validated, without `*.` (certbot's `CERTBOT_DOMAIN`).
    pub domain: String,
    /// Where the value goes: `_acme-challenge.<domain>`, or the CNAME target (no trailing dot).
    pub name: String,
    /// The zone apex that holds `name` (empty when not looked up: exec hooks, no check).
    pub zone: String,
    /// base64url(SHA-256(key authorization)): public, it is published in DNS.
    pub value: String,
}

/// What `present` created: enough for `cleanup` to remove exactly that value.
#[derive(Debug, Clone)]
pub struct Presented {
    pub record: TxtRecord,
    /// Provider data for the cleanup: a record id, or the exec auth hook's output.
    pub handle: Option<String>,
}

/// A solver configuration, stored at `<prefix>/dns/<solver>`; `kind` picks the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Config {
    Cloudflare(cloudflare::Config),
    Dnsimple(dnsimple::Config),
    Rfc2136(rfc2136::Config),
    Exec {
        auth_hook: String,
        #[serde(default)]
        cleanup_hook: String,
    },
}

impl Config {
    pub fn kind(&self) -> &'static str {
        match self {
            Config::Cloudflare(_) => "cloudflare",
            Config::Dnsimple(_) => "dnsimple",
            Config::Rfc2136(_) => "rfc2136",
            Config::Exec { .. } => "exec",
        }
    }

    /// Check what can be checked without the network (names a bad field).
    pub fn validate(&self, solver: &str) -> Result<(), Error> {
        match self {
            Config::Rfc2136(c) => rfc2136::Client::new(solver, c).map(drop),
            _ => Ok(()),
        }
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
    #[error("DNS solver {solver} (zone {zone}, server {server}): {reason}")]
    Rfc2136 {
        solver: String,
        zone: String,
        server: String,
        reason: String,
    },
    #[error("DNS solver {solver} is misconfigured: {reason}")]
    Config { solver: String, reason: String },
    #[error("no DNS solver named {solver} in Vault (looked at {path}); add it with `certvault dns add {solver} ...`")]
    UnknownSolver { solver: String, path: String },
    #[error("no DNS solver for {name}: configured zones are [{zones}] and there is no default; add one with --dns <zone>=<solver> or --dns <solver>")]
    NoSolverFor { name: String, zones: String },
    #[error("cannot place the record {name}")]
    Placement {
        name: String,
        #[source]
        source: zone::Error,
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
        401 | 403 => " (check the solver's API token and its permissions)",
        429 => " (rate limited; try again later)",
        _ => "",
    }
}

/// A DNS-01 solver. Challenges are presented one after another, then validated together,
/// then cleaned up (always, also after a failure).
#[allow(async_fn_in_trait)]
pub trait Provider {
    /// Publish `record`, leaving other values at the same name alone.
    async fn present(&self, record: &TxtRecord) -> Result<Presented, Error>;
    /// Remove exactly what `present` published; succeed if it is already gone.
    async fn cleanup(&self, presented: &Presented) -> Result<(), Error>;
}

/// Every provider, dispatched by `match` (no trait objects).
pub enum AnyProvider {
    Exec(exec::Hooks),
    Cloudflare(cloudflare::Client),
    Dnsimple(dnsimple::Client),
    Rfc2136(rfc2136::Client),
}

impl AnyProvider {
    /// Build the provider for one order (exec hooks count the order's challenges).
    pub fn build(
        solver: &str,
        config: &Config,
        http: &reqwest::Client,
        all_domains: &str,
        challenges: usize,
    ) -> Result<Self, Error> {
        Ok(match config {
            Config::Exec {
                auth_hook,
                cleanup_hook,
            } => AnyProvider::Exec(exec::Hooks::new(
                auth_hook.clone(),
                cleanup_hook.clone(),
                all_domains.to_string(),
                challenges,
            )),
            Config::Cloudflare(c) => {
                AnyProvider::Cloudflare(cloudflare::Client::new(solver, c, http.clone()))
            }
            Config::Dnsimple(c) => {
                AnyProvider::Dnsimple(dnsimple::Client::new(solver, c, http.clone()))
            }
            Config::Rfc2136(c) => AnyProvider::Rfc2136(rfc2136::Client::new(solver, c)?),
        })
    }
}

impl Provider for AnyProvider {
    async fn present(&self, record: &TxtRecord) -> Result<Presented, Error> {
        match self {
            AnyProvider::Exec(p) => p.present(record).await,
            AnyProvider::Cloudflare(p) => p.present(record).await,
            AnyProvider::Dnsimple(p) => p.present(record).await,
            AnyProvider::Rfc2136(p) => p.present(record).await,
        }
    }
    async fn cleanup(&self, presented: &Presented) -> Result<(), Error> {
        match self {
            AnyProvider::Exec(p) => p.cleanup(presented).await,
            AnyProvider::Cloudflare(p) => p.cleanup(presented).await,
            AnyProvider::Dnsimple(p) => p.cleanup(presented).await,
            AnyProvider::Rfc2136(p) => p.cleanup(presented).await,
        }
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
            SolverSpec::Exec { .. } => false,
            SolverSpec::Solvers { .. } => true,
        })
    }

    fn provider(&mut self, solver: &str) -> Result<&AnyProvider, Error> {
        if !self.providers.contains_key(solver) {
            let config = match &self.spec.dns {
                SolverSpec::Exec {
                    auth_hook,
                    cleanup_hook,
                } if solver == INLINE_EXEC => Config::Exec {
                    auth_hook: auth_hook.clone(),
                    cleanup_hook: cleanup_hook.clone(),
                },
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
            let p = AnyProvider::build(
                solver,
                &config,
                self.solvers.http,
                &self.all_domains,
                self.challenges,
            )?;
            self.providers.insert(solver.to_string(), p);
        }
        Ok(&self.providers[solver])
    }

    /// Place, choose the solver for, and publish one challenge value.
    pub async fn present(&mut self, domain: &str, value: String) -> Result<(), Error> {
        let start = format!("_acme-challenge.{domain}");
        let check = self.check_propagation();
        let needs_placement = check || matches!(self.spec.dns, SolverSpec::Solvers { .. });
        let placement = if needs_placement {
            zone::resolve(
                &self.solvers.settings.lookup,
                &start,
                self.spec.follow_cname,
            )
            .await
            .map_err(|source| Error::Placement {
                name: start.clone(),
                source,
            })?
        } else {
            zone::Placement {
                name: start.clone(),
                zone: String::new(),
                nameservers: Vec::new(),
            }
        };
        let solver = match &self.spec.dns {
            SolverSpec::Exec { .. } => INLINE_EXEC.to_string(),
            SolverSpec::Solvers { default, zones } => {
                choose(default.as_deref(), zones, &placement.name)
                    .ok_or_else(|| Error::NoSolverFor {
                        name: placement.name.clone(),
                        zones: zones.keys().cloned().collect::<Vec<_>>().join(", "),
                    })?
                    .to_string()
            }
        };
        let record = TxtRecord {
            domain: domain.to_string(),
            name: placement.name.clone(),
            zone: placement.zone.clone(),
            value,
        };
        tracing::debug!(name = %record.name, zone = %record.zone, %solver, "presenting DNS-01 challenge");
        let presented = self.provider(&solver)?.present(&record).await?;
        self.presented.push((solver.clone(), presented));
        if check {
            self.checks.push((
                solver,
                Check {
                    name: placement.name,
                    value: record.value,
                    nameservers: placement.nameservers,
                },
            ));
        }
        Ok(())
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
                    .map(|((s, _), (_, p))| (s.clone(), p.record.zone.clone()))
                    .unwrap_or_default();
                Error::NotPropagated {
                    solver,
                    zone,
                    source: Box::new(source),
                }
            })
    }

    /// Remove every presented value (in reverse order); returns the failures.
    pub async fn cleanup(&mut self) -> Vec<Error> {
        let mut errors = Vec::new();
        for (solver, presented) in std::mem::take(&mut self.presented).iter().rev() {
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
}
