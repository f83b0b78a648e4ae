//! `certvault renew`: load every record, decide, reissue exactly the due ones, write each
//! back with check-and-set. One failure never stops the others; the exit code says if any
//! failed, and a summary ends every run.

use std::collections::BTreeMap;

use futures::StreamExt;
use time::OffsetDateTime;

use super::issue::obtain_and_save;
use super::report::{CertResult, Report, Verdict};
use super::{Context, Outcome};
use crate::model::{CertName, CertRecord};
use crate::renew::{decide, renewal_point, Decision, Facts, Reason};
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
    let stored = ctx.store.list_certs().await?;
    let names = if names.is_empty() {
        stored
    } else {
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
        names
    };

    // Load and decide.
    let started = now();
    let loaded = ctx.store.load_certs(names).await;
    let mut results: Vec<CertResult> = Vec::new();
    let mut due: Vec<(CertName, Versioned<CertRecord>, Reason)> = Vec::new();
    for (name, loaded) in loaded {
        let record = match loaded {
            Ok(Some(r)) => r,
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
        let current = match x509::current(&record.data.issued.cert) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(cert = %name, "stored certificate unreadable, reissuing: {e}");
                None
            }
        };
        match decide(
            started,
            &Facts {
                wanted: &record.data.spec,
                current: current.as_ref(),
                force,
            },
        ) {
            Decision::Keep { renew_at, basis } => {
                let mut r = CertResult::new(name, Verdict::NotDue);
                r.reason = Some(basis.to_string());
                r.renew_at = Some(renew_at);
                r.not_after = current.map(|c| c.not_after);
                r.version = Some(record.version);
                results.push(r);
            }
            Decision::Renew(reason) => due.push((name, record, reason)),
        }
    }

    // Act: only when something is due is the CA contacted.
    if !due.is_empty() {
        let http = ctx.http()?;
        let mut accounts = BTreeMap::new();
        for (_, record, _) in &due {
            let acct = &record.data.spec.account;
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
            .load_solvers(
                due.iter()
                    .flat_map(|(_, r, _)| r.data.spec.dns.solver_names()),
            )
            .await;
        let done: Vec<CertResult> = futures::stream::iter(due)
            .map(|(name, record, reason)| async move {
                tracing::info!(cert = %name, %reason, "renewing");
                let old_not_after = record.data.issued.not_after;
                let old_version = record.version;
                let mut r = CertResult::new(name.clone(), Verdict::Failed);
                r.reason = Some(reason.to_string());
                r.not_after = Some(old_not_after);
                r.version = Some(old_version);
                let stored = match &accounts[&record.data.spec.account] {
                    Err(e) => Err(e.clone()),
                    Ok((account, directory)) => obtain_and_save(
                        ctx,
                        solvers,
                        account,
                        directory,
                        &name,
                        record.data.spec,
                        Expect::Version(old_version),
                        now,
                    )
                    .await
                    .map_err(|e| match e {
                        Error::Locked { .. } | Error::ChangedMeanwhile { .. } => {
                            tracing::info!(cert = %name, "skipped: {e}");
                            r.verdict = Verdict::Skipped;
                            r.reason = Some(e.to_string());
                            String::new()
                        }
                        e => {
                            let text = crate::error::chain(&e);
                            tracing::error!(cert = %name, "renewal failed: {text}");
                            text
                        }
                    }),
                };
                match stored {
                    Ok(stored) => {
                        r.verdict = Verdict::Renewed;
                        r.version = Some(stored.version);
                        r.not_after = Some(stored.record.issued.not_after);
                        r.renew_at = x509::current(&stored.record.issued.cert).ok().map(|c| {
                            renewal_point(&c, stored.record.spec.renew_before.map(|d| d.0)).0
                        });
                        r.error = stored.deploy.err().map(|e| crate::error::chain(&e));
                    }
                    Err(text) if r.verdict == Verdict::Failed => r.error = Some(text),
                    Err(_) => {}
                }
                r
            })
            .buffer_unordered(ctx.settings.concurrency.max(1))
            .collect()
            .await;
        results.extend(done);
    }
    Ok(Report::new(results, started, now()))
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
        } else {
            report.text(now)
        },
        failed,
    })
}
