//! One order's DNS-01 challenges: choose the solver of each record, present every value,
//! wait until all are visible, and always clean up.

use std::collections::BTreeMap;

use crate::model::{DomainName, SolverName};

use super::*;

/// The solver for a record name: the longest configured zone that is a suffix of `name`
/// (cert-manager's per-zone selector), else the default.
pub fn choose<'a>(
    default: Option<&'a SolverName>,
    zones: &'a BTreeMap<DomainName, SolverName>,
    name: &str,
) -> Option<&'a SolverName> {
    zones
        .iter()
        .filter(|(zone, _)| name == zone.as_str() || name.ends_with(&format!(".{zone}")))
        .max_by_key(|(zone, _)| zone.as_str().len())
        .map(|(_, solver)| solver)
        .or(default)
}

/// DNS settings of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub lookup: zone::Lookup,
    pub polling: Polling,
}

/// The solvers an order may use: the run's settings and the configurations loaded from Vault.
pub struct Solvers<'a> {
    pub settings: &'a Settings,
    pub http: &'a reqwest::Client,
    /// Loaded solver configurations by name (missing ones fail with `UnknownSolver`).
    pub configs: &'a BTreeMap<String, Config>,
    /// Solvers whose configuration could not be read, with the read error's text.
    pub broken: &'a BTreeMap<String, String>,
    /// Where a missing configuration was looked for: `<mount>/<prefix>/dns/`.
    pub folder: String,
    /// Told what an order has presented and not yet cleaned up, after each change (the
    /// lock lease records it).
    pub presented: Option<tokio::sync::watch::Sender<Vec<Leftover>>>,
}

impl Solvers<'_> {
    /// The error of a solver whose stored configuration could not be read.
    /// [`Error::Config`] carries its reason as text (the DNS errors hold no storage
    /// errors): the loader printed the read error.
    pub fn unreadable(solver: &str, reason: &str) -> Error {
        Error::Config {
            solver: solver.to_string(),
            reason: reason.to_string(),
        }
    }

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

/// What [`Session::cleanup_leftovers`] did with a lease's leftovers.
#[derive(Debug, Default)]
pub struct LeftoverCleanup {
    pub removed: usize,
    /// Not this certificate's (or the provider's record is not that value): left alone.
    pub refused: usize,
    /// Could not be removed now (DNS or the provider's API failed): for the next run.
    pub kept: Vec<Leftover>,
}

/// Whether `value` has the shape of a DNS-01 TXT value: base64url (no padding) of a
/// SHA-256 digest, 43 characters.
pub fn is_dns01_value(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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
                    return Err(Solvers::unreadable(solver, &self.solvers.broken[solver]))
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
                    hook_env: &self.spec.hook_env,
                },
            )?;
            self.providers.insert(solver.to_string(), p);
        }
        Ok(&self.providers[solver])
    }

    /// The solver the spec picks for `name` (`exec` for inline hooks), if any.
    pub fn solver_for(&self, name: &Fqdn) -> Option<String> {
        self.choose_solver(name).ok()
    }

    fn choose_solver(&self, name: &Fqdn) -> Result<String, Error> {
        match &self.spec.dns {
            SolverSpec::Exec(_) => Ok(INLINE_EXEC.to_string()),
            SolverSpec::Solvers { default, zones } => {
                choose(default.as_ref(), zones, name.as_str())
                    .map(SolverName::to_string)
                    .ok_or_else(|| Error::NoSolverFor {
                        name: name.to_string(),
                        zones: zones
                            .keys()
                            .map(DomainName::as_str)
                            .collect::<Vec<_>>()
                            .join(", "),
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

    /// Remove values a dead run presented (from its lease). The lease is a document the
    /// renew role can write, so each leftover is only a claim: it is removed only when it
    /// could be a value of this certificate (see [`Session::vet`]), through the solver this
    /// spec and the stored solvers give its name now, at the record name and zone a fresh
    /// placement gives; an exec hook never gets the lease's `CERTBOT_AUTH_OUTPUT`. What is
    /// refused is logged and dropped; what could not be removed (DNS or API down) is
    /// returned, to be kept for the next run.
    pub async fn cleanup_leftovers(&mut self, leftovers: Vec<Leftover>) -> LeftoverCleanup {
        let mut outcome = LeftoverCleanup::default();
        for l in leftovers {
            let presented = match self.vet(&l).await {
                Ok(p) => p,
                Err(e @ Error::NotOurs { .. }) => {
                    tracing::warn!(solver = %l.solver, "a lock lease names a DNS-01 value this certificate's spec does not: {e}");
                    outcome.refused += 1;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(name = %l.record.name, solver = %l.solver, "could not place a value a dead run left, keeping it for the next run: {e}");
                    outcome.kept.push(l);
                    continue;
                }
            };
            let result = match self.provider(&l.solver) {
                Ok(p) => p.cleanup(&presented).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => outcome.removed += 1,
                Err(e @ Error::NotOurs { .. }) => {
                    tracing::warn!(name = %presented.record.name, solver = %l.solver, "{e}");
                    outcome.refused += 1;
                }
                Err(e) => {
                    tracing::warn!(name = %presented.record.name, solver = %l.solver, "could not remove a value a dead run left, keeping it for the next run: {e}");
                    outcome.kept.push(Leftover {
                        solver: l.solver,
                        record: presented.record,
                        handle: presented.handle,
                    });
                }
            }
        }
        outcome
    }

    /// What may be removed for a leftover `l`, if it can be this certificate's: its domain
    /// is one of the spec's names, its value has the shape of a DNS-01 value, and a fresh
    /// placement of `_acme-challenge.<domain>` gives its record name and its solver. The
    /// record is rebuilt from those checked parts (the zone from the placement, not the
    /// lease); an exec hook's output is not carried over.
    async fn vet(&self, l: &Leftover) -> Result<Presented, Error> {
        let refuse = |reason: String| Error::NotOurs {
            solver: l.solver.clone(),
            name: l.record.name.to_string(),
            reason,
        };
        let domain = &l.record.domain;
        if !self
            .spec
            .domains
            .iter()
            .any(|d| d.base().eq_ignore_ascii_case(domain.as_str()))
        {
            return Err(refuse(format!("{domain} is not a name of the certificate")));
        }
        if !is_dns01_value(&l.record.value) {
            return Err(refuse(
                "the value is not a DNS-01 value (43 base64url characters)".into(),
            ));
        }
        let start = Fqdn::parse("name", &format!("_acme-challenge.{domain}"))
            .map_err(|e| refuse(e.to_string()))?;
        let placed = self.place(&start).await?;
        if placed.name != l.record.name {
            return Err(refuse(format!(
                "the record for {domain} is {} now",
                placed.name
            )));
        }
        if placed.solver != l.solver {
            return Err(refuse(format!(
                "the spec gives {} to solver {} now",
                placed.name, placed.solver
            )));
        }
        let handle = match &l.handle {
            Handle::Exec(_) => Handle::Exec(String::new()),
            other => other.clone(),
        };
        Ok(Presented {
            record: TxtRecord {
                domain: domain.clone(),
                name: placed.name,
                zone: placed.zone,
                value: l.record.value.clone(),
            },
            handle,
        })
    }

    /// Remove every presented value (in reverse order); returns the failures. The values
    /// that could not be removed stay presented (and are told to the lease), so the run
    /// can keep them for the next one.
    pub async fn cleanup(&mut self) -> Vec<Error> {
        let mut errors = Vec::new();
        let presented_all = std::mem::take(&mut self.presented);
        let mut left = Vec::new();
        for (solver, presented) in presented_all.into_iter().rev() {
            if let Some(p) = self.providers.get(&solver) {
                if let Err(e) = p.cleanup(&presented).await {
                    tracing::warn!(name = %presented.record.name, %solver, "cleanup failed: {e}");
                    errors.push(e);
                    left.push((solver, presented));
                }
            }
        }
        left.reverse();
        self.presented = left;
        if let Some(tx) = &self.solvers.presented {
            let _ = tx.send(self.leftovers());
        }
        errors
    }
}
