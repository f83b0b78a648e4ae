//! `certvault renew`: load every record, decide, reissue exactly the due ones, write each
//! back with check-and-set. One failure never stops the others; the exit code says if any
//! failed, and a summary ends every run.

use std::collections::BTreeMap;

use futures::StreamExt;
use time::OffsetDateTime;

use super::issue::{obtain_and_save, Order};
use super::report::{CertResult, Report, Verdict};
use super::{status, Context, Outcome};
use crate::model::{CertName, CertRecord, Spec};
use crate::renew::{decide, renewal_point, Decision, Facts, Reason};
use crate::store::Entry;
use crate::store::Key;
use crate::vault::{Expect, Versioned};
use crate::{metrics, x509, Error};

pub(super) async fn run(
    ctx: &Context,
    force: bool,
    names: Vec<CertName>,
    now: fn() -> OffsetDateTime,
) -> Result<Report, Error> {
    // A wrong --prefix / --mount is an error naming the paths, not "0 renewed".
    ctx.store.ensure_in_use(&ctx.settings.account).await?;
    let names = select(ctx, names).await?;
    let started = now();
    let (mut results, due) = plan(ctx, names, force, started).await;
    results.extend(act(ctx, due, now).await);

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
            let (decided, due) = plan(ctx, again, force, started).await;
            results.extend(decided);
            results.extend(act(ctx, due, now).await);
        }
    }
    Ok(Report::new(results, started, now()))
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

/// One certificate to order: its record, its trusted spec and why.
struct Due {
    name: CertName,
    record: Versioned<CertRecord>,
    spec: Spec,
    reason: Reason,
}

/// Load each certificate and decide: the results for those not due (or unreadable), and
/// the ones to order.
async fn plan(
    ctx: &Context,
    names: Vec<CertName>,
    force: bool,
    now: OffsetDateTime,
) -> (Vec<CertResult>, Vec<Due>) {
    let mut results: Vec<CertResult> = Vec::new();
    let mut due = Vec::new();
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
        let facts = Facts {
            wanted: &spec,
            current: current.as_ref(),
            damage: inspection.damage.as_deref(),
            force,
        };
        if let (Some(c), Some(before)) = (&current, &spec.renew_before) {
            if !crate::renew::renew_before_fits(c, before) {
                tracing::warn!(cert = %name, "renew_before {before} is not shorter than the certificate's lifetime: the default rule applies; change it with `certvault issue`");
            }
        }
        match decide(now, &facts) {
            Decision::Keep { renew_at, basis } => {
                let mut r = CertResult::new(name, Verdict::NotDue);
                r.reason = Some(basis.to_string());
                r.renew_at = Some(renew_at);
                r.not_after = current.map(|c| c.not_after);
                r.version = Some(record.version);
                results.push(r);
            }
            Decision::Renew(reason) => due.push(Due {
                name,
                record,
                spec,
                reason,
            }),
        }
    }
    (results, due)
}

/// Order the due certificates, `--concurrency` at a time. Only when something is due is
/// the CA contacted.
async fn act(ctx: &Context, due: Vec<Due>, now: fn() -> OffsetDateTime) -> Vec<CertResult> {
    if due.is_empty() {
        return Vec::new();
    }
    let http = match ctx.http() {
        Ok(h) => h,
        Err(e) => {
            let text = crate::error::chain(&e);
            return due
                .into_iter()
                .map(|d| {
                    let mut r = CertResult::new(d.name, Verdict::Failed);
                    r.error = Some(text.clone());
                    r
                })
                .collect();
        }
    };
    let mut accounts = BTreeMap::new();
    for d in &due {
        let acct = &d.spec.account;
        if !accounts.contains_key(acct) {
            let loaded = ctx
                .account(&http, acct)
                .await
                .map_err(|e| crate::error::chain(&e));
            accounts.insert(acct.clone(), loaded);
        }
    }
    let accounts = &accounts;
    let solvers = &ctx
        .load_solvers(due.iter().flat_map(|d| d.spec.dns.solver_names()))
        .await;
    futures::stream::iter(due)
        .map(|d| async move {
            let Due {
                name,
                record,
                spec,
                reason,
            } = d;
            tracing::info!(cert = %name, %reason, "renewing");
            let mut r = CertResult::new(name.clone(), Verdict::Failed);
            r.reason = Some(reason.to_string());
            r.not_after = Some(record.data.issued.not_after);
            r.version = Some(record.version);
            let order = Order {
                name: name.clone(),
                spec,
                expect: Expect::Version(record.version),
                extra: record.data.extra.clone(),
            };
            let stored = match &accounts[&order.spec.account] {
                Err(e) => Err(Err(e.clone())),
                Ok((account, directory)) => {
                    obtain_and_save(ctx, solvers, account, directory, order, now)
                        .await
                        .map_err(Ok)
                }
            };
            match stored {
                Ok(stored) => {
                    r.verdict = Verdict::Renewed;
                    r.version = Some(stored.version);
                    r.not_after = Some(stored.record.issued.not_after);
                    r.renew_at = x509::current(&stored.record.issued.cert)
                        .ok()
                        .map(|c| renewal_point(&c, stored.record.spec.renew_before.as_ref()).0);
                    r.error = stored.deploy.err().map(|e| crate::error::chain(&e));
                }
                Err(Ok(e @ (Error::Locked { .. } | Error::ChangedMeanwhile { .. }))) => {
                    tracing::info!(cert = %name, "skipped: {e}");
                    if let Error::Locked { until, .. } = &e {
                        r.locked_until = Some(*until);
                    }
                    r.verdict = Verdict::Skipped;
                    r.reason = Some(e.to_string());
                }
                Err(e) => {
                    let text = match e {
                        Ok(e) => crate::error::chain(&e),
                        Err(text) => text,
                    };
                    tracing::error!(cert = %name, "renewal failed: {text}");
                    let failed = status::Attempt::Failed {
                        current: &record.data.issued,
                        version: record.version,
                        error: &text,
                    };
                    status::record(ctx, &name, failed, now()).await;
                    r.error = Some(text);
                }
            }
            r
        })
        .buffer_unordered(ctx.settings.concurrency.max(1))
        .collect()
        .await
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
