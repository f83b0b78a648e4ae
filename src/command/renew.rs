//! `certvault renew`: load every record, decide, reissue exactly the due ones, write each
//! back with check-and-set. One failure never stops the others; the exit code says if any
//! failed, and a summary ends every run.

use time::OffsetDateTime;

use super::ari::{self, Accounts, Candidate, SystemDice};
use super::gate::Gate;
use super::order::{act, Ordered};
use super::report::{CertResult, Report, Verdict};
use super::{Context, Outcome};
use crate::ari::Dice;
use crate::model::{CertName, CertRecord, Spec};
use crate::renew::{decide, Decision, Facts, Reason};
use crate::store::{Entry, Key};
use crate::vault::Versioned;
use crate::{metrics, x509, Error};

/// What a `renew` run is asked to do (besides `--force` and the names).
#[derive(Debug, Clone, Default)]
pub struct RenewArgs {
    pub force: bool,
    /// Decide everything and fetch ARI, but order nothing and write nothing.
    pub dry_run: bool,
    /// At most this many orders, the most urgent first; the rest are `deferred`.
    pub max_orders: Option<usize>,
    /// A random delay of up to this long before the run starts.
    pub jitter: std::time::Duration,
    /// Timeouts or 5xx answers in a row after which a CA gets no new orders this run.
    pub ca_failures: u32,
}

pub(super) async fn run(
    ctx: &Context,
    args: &RenewArgs,
    names: Vec<CertName>,
    now: fn() -> OffsetDateTime,
) -> Result<Report, Error> {
    // A wrong --prefix / --mount is an error naming the paths, not "0 renewed".
    ctx.store.ensure_in_use(&ctx.settings.account).await?;
    let names = select(ctx, names).await?;
    let mut dice = SystemDice::new();
    if !args.dry_run && !args.jitter.is_zero() {
        let millis = dice.below(args.jitter.as_millis() as u64 + 1);
        tracing::info!("waiting {millis} ms (--jitter) before the run starts");
        let mut shutdown = ctx.shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(millis)) => {},
            _ = shutdown.wait_for(|s| *s) => return Err(Error::Interrupted { signal: "SIGTERM/SIGINT" }),
        }
    }
    let started = now();
    let gate = Gate::new(args.ca_failures);
    let mut accounts = Accounts::default();
    let mut results = pass(ctx, args, names, &gate, &mut accounts, &mut dice, now).await;

    // A certificate skipped because another run's lease held it is looked at again once
    // that lease lapses (its holder renews it while it works, so a live run keeps it; a
    // dead one loses it within one lease).
    let lapse_by = now() + ctx.settings.lock_lease + time::Duration::seconds(5);
    let lapsing: Vec<(CertName, OffsetDateTime)> = results
        .iter()
        .filter_map(|r| Some((r.name.clone(), r.locked_until.filter(|t| *t <= lapse_by)?)))
        .collect();
    if let Some(last) = lapsing.iter().map(|(_, t)| *t).max() {
        let wait = (last - now()).max(time::Duration::ZERO) + time::Duration::seconds(1);
        tracing::info!(
            certificates = lapsing.len(),
            "waiting {}s for lock leases of other runs to lapse or be renewed",
            wait.whole_seconds()
        );
        let mut shutdown = ctx.shutdown.clone();
        let stopped = tokio::select! {
            _ = tokio::time::sleep(wait.unsigned_abs()) => false,
            _ = shutdown.wait_for(|s| *s) => true,
        };
        if !stopped {
            let again: Vec<CertName> = lapsing.into_iter().map(|(n, _)| n).collect();
            results.retain(|r| !again.contains(&r.name));
            let mut args = args.clone();
            // The budget was spent on the first pass.
            let spent = results
                .iter()
                .filter(|r| r.verdict == Verdict::Renewed)
                .count();
            args.max_orders = args.max_orders.map(|m| m.saturating_sub(spent));
            results.extend(pass(ctx, &args, again, &gate, &mut accounts, &mut dice, now).await);
        }
    }
    let paused_failing = gate.any_failing();
    let mut report = Report::new(results, started, now());
    report.dry_run = args.dry_run;
    report.failed |= paused_failing;
    Ok(report)
}

/// Load, ask ARI, decide, budget, order: one pass over `names`.
async fn pass(
    ctx: &Context,
    args: &RenewArgs,
    names: Vec<CertName>,
    gate: &Gate,
    accounts: &mut Accounts,
    dice: &mut SystemDice,
    now: fn() -> OffsetDateTime,
) -> Vec<CertResult> {
    let (mut results, mut candidates) = load(ctx, names).await;
    let at = now();
    ari::refresh(ctx, &mut candidates, accounts, at, args.dry_run, dice).await;
    let (decided, mut due) = decide_all(candidates, args.force, at);
    results.extend(decided);
    // Most urgent first: expired (and revoked, unreadable, new) first, then the earliest
    // renewal point; the name breaks ties so runs agree.
    due.sort_by(|a, b| a.urgency.cmp(&b.urgency).then_with(|| a.name.cmp(&b.name)));
    if let Some(max) = args.max_orders {
        if due.len() > max {
            for d in due.split_off(max) {
                let mut r = CertResult::new(d.name, Verdict::Deferred);
                r.reason = Some(format!(
                    "deferred: --max-orders {max} reached (due: {})",
                    d.reason
                ));
                r.renew_at = Some(d.urgency.1);
                r.not_after = Some(d.record.data.issued.not_after);
                r.version = Some(d.record.version);
                results.push(r);
            }
        }
    }
    if args.dry_run {
        for d in due {
            let mut r = CertResult::new(d.name, Verdict::Due);
            let paused = gate_reason(ctx, gate, &d.spec.account, at).await;
            if let Some(p) = paused {
                r.verdict = Verdict::Deferred;
                r.reason = Some(p.reason);
            } else {
                r.reason = Some(d.reason.to_string());
            }
            r.renew_at = Some(d.urgency.1);
            r.not_after = Some(d.record.data.issued.not_after);
            r.version = Some(d.record.version);
            results.push(r);
        }
        return results;
    }
    for d in &due {
        accounts.connect(ctx, &d.spec.account).await;
    }
    let mut loaded = std::collections::BTreeSet::new();
    for d in &due {
        if loaded.insert(d.spec.account.clone()) {
            gate.load(ctx, &d.spec.account, at).await;
        }
    }
    let due = due
        .into_iter()
        .map(|d| Ordered {
            name: d.name,
            record: d.record,
            spec: d.spec,
            reason: d.reason.to_string(),
        })
        .collect();
    results.extend(act(ctx, due, accounts, gate, now).await);
    results
}

/// A stored pause of the account's CA that binds now (for the dry run's plan).
async fn gate_reason(
    ctx: &Context,
    gate: &Gate,
    account: &str,
    now: OffsetDateTime,
) -> Option<super::gate::Paused> {
    if gate.paused(account).is_none() {
        gate.load(ctx, account, now).await;
    }
    gate.paused(account)
}

/// The certificates a run looks at: every stored one, or the NAMEs given (all must exist).
async fn select(ctx: &Context, names: Vec<CertName>) -> Result<Vec<CertName>, Error> {
    let stored = ctx.store.list_certs().await?;
    if names.is_empty() {
        return Ok(stored);
    }
    let unknown: Vec<CertName> = names
        .iter()
        .filter(|n| !stored.contains(n))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(Error::UnknownCerts {
            names: unknown,
            path: ctx.store.display(Key::Certs),
        });
    }
    Ok(names)
}

/// One certificate to order: its record, its trusted spec, why, and how urgent.
struct Due {
    name: CertName,
    record: Versioned<CertRecord>,
    spec: Spec,
    reason: Reason,
    /// (0: expired, revoked, unreadable or new; 1: otherwise) and the renewal point.
    urgency: (u8, OffsetDateTime),
}

/// Load each certificate with its trusted spec: the results for those that cannot be
/// renewed, and the candidates.
async fn load(ctx: &Context, names: Vec<CertName>) -> (Vec<CertResult>, Vec<Candidate>) {
    let mut results: Vec<CertResult> = Vec::new();
    let mut candidates = Vec::new();
    for (name, loaded) in ctx.store.load_entries(names).await {
        let (record, spec) = match loaded {
            Ok(Some(Entry {
                cert,
                spec: Some(spec),
            })) => (cert, spec.data.spec),
            Ok(Some(Entry { spec: None, cert })) => {
                // Written before specs moved to their own admin-only documents: the spec
                // in the record may have been changed by a renew token, so it is not used.
                let mut r = CertResult::new(name.clone(), Verdict::Failed);
                r.error = Some(
                    Error::NotMigrated {
                        name: name.clone(),
                        path: ctx.store.display(Key::Spec(&name)),
                    }
                    .to_string(),
                );
                r.not_after = Some(cert.data.issued.not_after);
                r.version = Some(cert.version);
                results.push(r);
                continue;
            }
            Ok(None) => {
                // Listed but its latest version is deleted: nothing to renew.
                results.push(CertResult::new(name, Verdict::Deleted));
                continue;
            }
            Err(e) => {
                let mut r = CertResult::new(name, Verdict::Failed);
                r.error = Some(crate::error::chain(&e));
                results.push(r);
                continue;
            }
        };
        let issued = &record.data.issued;
        let inspection = x509::inspect(&issued.cert, &issued.chain, issued.privkey.expose());
        if let Some(damage) = &inspection.damage {
            tracing::warn!(cert = %name, "stored record damaged, reissuing: {damage}");
        }
        let current = inspection.current;
        let damage = inspection.damage;
        if let (Some(c), Some(before)) = (&current, &spec.renew_before) {
            if !crate::renew::renew_before_fits(c, before) {
                tracing::warn!(cert = %name, "renew_before {before} is not shorter than the certificate's lifetime: the default rule applies; change it with `certvault issue`");
            }
        }
        candidates.push(Candidate {
            name,
            record,
            spec,
            current,
            damage,
        });
    }
    (results, candidates)
}

/// Decide each candidate: the results of those not due, and the ones to order.
fn decide_all(
    candidates: Vec<Candidate>,
    force: bool,
    now: OffsetDateTime,
) -> (Vec<CertResult>, Vec<Due>) {
    let mut results = Vec::new();
    let mut due = Vec::new();
    for c in candidates {
        let Candidate {
            name,
            record,
            spec,
            current,
            damage,
        } = c;
        let facts = Facts {
            wanted: &spec,
            current: current.as_ref(),
            damage: damage.as_deref(),
            force,
            ari: record.data.facts.ari.as_ref(),
            revoked_at: record.data.facts.revoked_at,
        };
        match decide(now, &facts) {
            Decision::Keep { renew_at, basis } => {
                let mut r = CertResult::new(name, Verdict::NotDue);
                r.reason = Some(basis.to_string());
                r.renew_at = Some(renew_at);
                r.not_after = current.map(|c| c.not_after);
                r.version = Some(record.version);
                results.push(r);
            }
            Decision::Renew(reason) => {
                let urgency = match &reason {
                    Reason::Expired { not_after } => (0, *not_after),
                    Reason::Revoked { at } => (0, *at),
                    Reason::NotIssued | Reason::Damaged(_) => (0, now),
                    Reason::Due { renew_at, .. } => (1, *renew_at),
                    _ => (1, now),
                };
                due.push(Due {
                    name,
                    record,
                    spec,
                    reason,
                    urgency,
                })
            }
        }
    }
    (results, due)
}

/// Print the report (text or JSON) and write the metrics the user asked for. A metrics
/// output that fails is reported and makes the exit code 1; the renewals stand.
pub(super) async fn publish(
    ctx: &Context,
    report: &Report,
    json: bool,
    sinks: &metrics::Sinks,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    let mut failed = report.failed;
    if !sinks.is_empty() {
        let end = now.unix_timestamp_nanos() as f64 / 1e9;
        let success = !report.failed;
        let mut errors = Vec::new();
        if let Some(path) = &sinks.file {
            let last = if success {
                Some(end)
            } else {
                metrics::previous_last_success(path)
            };
            if let Err(e) = metrics::write_file(path, &metrics::exposition(report, end, last)) {
                errors.push(e);
            }
        }
        if let Some(url) = &sinks.pushgateway {
            let text = metrics::exposition(report, end, success.then_some(end));
            if let Err(e) = metrics::push(&ctx.http()?, url, text, success).await {
                errors.push(e);
            }
        }
        for e in errors {
            tracing::error!("{e}");
            failed = true;
        }
    }
    Ok(Outcome {
        text: if json {
            report.json()
        } else if ctx.settings.quiet {
            report.failures(now)
        } else {
            report.text(now)
        },
        failed,
    })
}
