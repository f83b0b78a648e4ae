//! `certvault renew`: load every record, decide, reissue exactly the due ones, write each
//! back with check-and-set. One failure never stops the others; the exit code says if any
//! failed, and a summary ends every run.

use std::collections::BTreeMap;

use futures::StreamExt;
use time::OffsetDateTime;

use super::issue::{obtain_and_save, Order};
use super::report::{CertResult, Report, Verdict};
use super::{status, Context, Outcome};
use crate::index::Part;
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
    part: Part,
    now: fn() -> OffsetDateTime,
) -> Result<Report, Error> {
    // A wrong --prefix / --mount is an error naming the paths, not "0 renewed".
    ctx.store.ensure_in_use(&ctx.settings.account).await?;
    let started = now();
    let (mut results, names) = select(ctx, names, force, part, started).await?;
    let mut due = Vec::new();
    // A few hundred records at a time: memory holds only what is due.
    for chunk in names.chunks(256) {
        let (decided, more) = plan(ctx, chunk.to_vec(), force, started).await;
        results.extend(decided);
        due.extend(more);
        if ctx.store.journal.len() >= crate::index::journal::FLUSH_AT {
            flush_index(ctx, now()).await;
        }
    }
    drop(names);
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

/// The certificates a run loads, and the results of those the index says are not due.
/// With `--force` or NAMEs (all must exist) every selected record is loaded; otherwise the
/// index decides (see [`crate::index`]). `--shard` keeps the names of its part only.
async fn select(
    ctx: &Context,
    names: Vec<CertName>,
    force: bool,
    part: Part,
    now: OffsetDateTime,
) -> Result<(Vec<CertResult>, Vec<CertName>), Error> {
    if force || !names.is_empty() {
        let stored = ctx.store.list_certs().await?;
        let names = if names.is_empty() {
            stored
        } else {
            let unknown: Vec<CertName> = names
                .iter()
                .filter(|n| stored.binary_search(n).is_err())
                .cloned()
                .collect();
            if !unknown.is_empty() {
                return Err(Error::UnknownCerts {
                    names: unknown,
                    path: ctx.store.display(Key::Certs),
                });
            }
            names
        };
        let (mine, others): (Vec<CertName>, Vec<CertName>) =
            names.into_iter().partition(|n| part.contains(n.as_str()));
        if !others.is_empty() {
            tracing::info!(shard = %part, skipped = others.len(), "names outside this shard are left to the other shards");
        }
        return Ok((Vec::new(), mine));
    }
    let buckets = ctx.store.names_by_shard(part).await?;
    let mut results = Vec::new();
    let scan = ctx
        .store
        .scan_index(
            &buckets,
            now,
            true,
            |e| e.due(now),
            |name, e| results.push(settled(name, e)),
        )
        .await?;
    drop(buckets);
    if !scan.unsettled.is_empty() {
        let stale: std::collections::BTreeSet<&CertName> = scan.unsettled.iter().collect();
        results.retain(|r| !stale.contains(&r.name));
    }
    tracing::debug!(
        not_due = results.len(),
        due = scan.due,
        missing = scan.missing,
        stale = scan.stale,
        "read the renewal index"
    );
    Ok((results, scan.load))
}

/// The result of a certificate the index says needs nothing this run.
fn settled(name: &CertName, e: &crate::index::Entry) -> CertResult {
    if e.deleted {
        return CertResult::new(name.clone(), Verdict::Deleted);
    }
    let at = |t: i64| OffsetDateTime::from_unix_timestamp(t).ok();
    let mut r = CertResult::new(name.clone(), Verdict::NotDue);
    r.reason = Some(e.basis.clone());
    r.renew_at = at(e.ari_at.map_or(e.renew_at, |a| a.min(e.renew_at)));
    r.not_after = at(e.not_after);
    r.version = Some(e.version);
    r
}

/// Write what this run learned to the index. The index is a cache of the records: a write
/// that fails is logged, and a later run repairs what it missed.
pub(super) async fn flush_index(ctx: &Context, now: OffsetDateTime) {
    match ctx.store.flush_index(now).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(documents = n, "updated the renewal index"),
        Err(e) => tracing::warn!(
            "could not update the renewal index (the next run repairs it): {}",
            crate::error::chain(&e)
        ),
    }
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
