//! `certvault renew`: load every record, decide, reissue exactly the due ones, write each
//! back with check-and-set. One failure never stops the others; the exit code says if any
//! failed, and a summary ends every run.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use futures::StreamExt;
use time::OffsetDateTime;

use super::issue::obtain_and_save;
use super::{relative, Context, Outcome};
use crate::model::{CertName, CertRecord};
use crate::renew::{decide, rfc3339, Decision, Facts, Reason};
use crate::store::Key;
use crate::vault::{Expect, Versioned};
use crate::{x509, Error};

enum Verdict {
    Renewed {
        reason: Reason,
        version: u64,
        not_after: OffsetDateTime,
    },
    NotDue {
        renew_at: OffsetDateTime,
        basis: String,
    },
    Failed(String),
    Deleted,
    /// Not this run's to do: another run holds its lock or has just written it.
    Skipped(String),
}

pub(super) async fn run(
    ctx: &Context,
    force: bool,
    names: Vec<CertName>,
    now: fn() -> OffsetDateTime,
) -> Result<Outcome, Error> {
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
    let mut results: BTreeMap<CertName, Verdict> = BTreeMap::new();
    let mut due: Vec<(CertName, Versioned<CertRecord>, Reason)> = Vec::new();
    for (name, loaded) in loaded {
        let record = match loaded {
            Ok(Some(r)) => r,
            Ok(None) => {
                // Listed but its latest version is deleted: nothing to renew.
                results.insert(name, Verdict::Deleted);
                continue;
            }
            Err(e) => {
                results.insert(name, Verdict::Failed(crate::error::chain(&e)));
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
                results.insert(
                    name,
                    Verdict::NotDue {
                        renew_at,
                        basis: basis.to_string(),
                    },
                );
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
        let done: Vec<(CertName, Verdict)> = futures::stream::iter(due)
            .map(|(name, record, reason)| async move {
                tracing::info!(cert = %name, %reason, "renewing");
                let outcome = match &accounts[&record.data.spec.account] {
                    Err(e) => Verdict::Failed(e.clone()),
                    Ok((account, directory)) => {
                        match obtain_and_save(
                            ctx,
                            solvers,
                            account,
                            directory,
                            &name,
                            record.data.spec,
                            Expect::Version(record.version),
                            now,
                        )
                        .await
                        {
                            Ok((version, rec)) => Verdict::Renewed {
                                reason,
                                version,
                                not_after: rec.issued.not_after,
                            },
                            Err(e @ (Error::Locked { .. } | Error::ChangedMeanwhile { .. })) => {
                                tracing::info!(cert = %name, "skipped: {e}");
                                Verdict::Skipped(e.to_string())
                            }
                            Err(e) => {
                                let text = crate::error::chain(&e);
                                tracing::error!(cert = %name, "renewal failed: {text}");
                                Verdict::Failed(text)
                            }
                        }
                    }
                };
                (name, outcome)
            })
            .buffer_unordered(ctx.settings.concurrency.max(1))
            .collect()
            .await;
        results.extend(done);
    }

    // Summary.
    let (mut renewed, mut not_due, mut failed) = (0, 0, 0);
    let mut text = String::new();
    let end = now();
    for (name, r) in &results {
        match r {
            Verdict::Renewed {
                reason,
                version,
                not_after,
            } => {
                renewed += 1;
                let _ = writeln!(
                    text,
                    "renewed  {name}: {reason}; now valid until {} (version {version})",
                    rfc3339(*not_after)
                );
            }
            Verdict::NotDue { renew_at, basis } => {
                not_due += 1;
                let _ = writeln!(
                    text,
                    "not due  {name}: renews {} ({}; {basis})",
                    rfc3339(*renew_at),
                    relative(end, *renew_at)
                );
            }
            Verdict::Skipped(why) => {
                let _ = writeln!(text, "skipped  {name}: {why}");
            }
            Verdict::Deleted => {
                let _ = writeln!(
                    text,
                    "deleted  {name}: its latest version is deleted in Vault, so it is not renewed; `certvault issue {name} ...` recreates it"
                );
            }
            Verdict::Failed(why) => {
                failed += 1;
                let _ = writeln!(text, "FAILED   {name}: {why}");
            }
        }
    }
    let _ = writeln!(
        text,
        "summary: {renewed} renewed, {not_due} not due, {failed} failed"
    );
    Ok(Outcome {
        text,
        failed: failed > 0,
    })
}
