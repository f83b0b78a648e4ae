//! Order one certificate and store it: the step `issue` and `renew` share. Under the
//! certificate's lock lease it re-checks the record, orders from the CA, writes the new
//! version with check-and-set, records the attempt and runs the deploy hook.

use time::OffsetDateTime;

use super::context::{Context, LoadedSolvers};
use super::deploy::deploy;
use super::lease::{clean_leftovers, keep_lease, release, take_lock};
use super::status;
use crate::hook::DeployFailed;
use crate::model::{CertName, LayoutFields, Secret, Spec, SCHEMA_VERSION};
use crate::records::CertRecord;
use crate::renew::rfc3339;
use crate::store::Lock;
use crate::vault::Expect;
use crate::{acme, x509, Error};

/// What to order and where to write it.
pub(super) struct Order {
    pub name: CertName,
    /// The trusted spec (from `specs/<name>`, or the one `issue` was given).
    pub spec: Spec,
    /// What the certificate write expects (check-and-set).
    pub expect: Expect,
    /// Fields a user added to the record, kept in the new version.
    pub extra: std::collections::BTreeMap<String, serde_json::Value>,
    /// What the new record says about its lineage (who ordered it, what it replaced).
    pub facts: crate::records::CaFacts,
    /// `replaces` and a kept key.
    pub options: acme::OrderOptions,
}

/// A certificate written to Vault, and how its deploy hook went (`Ok` when there is none).
pub(super) struct Stored {
    pub version: u64,
    pub record: CertRecord,
    pub deploy: Result<(), DeployFailed>,
}

/// `--reuse-key`: the stored private key, when the spec keeps it, it is of the wanted type,
/// the certificate was not revoked (a compromised key must not come back) and the record is
/// not damaged (the key must belong to the certificate).
pub(super) fn kept_key(record: &CertRecord, spec: &Spec) -> Option<Secret> {
    let issued = &record.issued;
    let inspected = x509::inspect(&issued.cert, &issued.chain, issued.privkey.expose());
    let fits = inspected
        .current
        .is_some_and(|c| c.key_type == Some(spec.key_type));
    (spec.reuse_key && fits && inspected.damage.is_none() && record.facts.revoked_at.is_none())
        .then(|| issued.privkey.clone())
}

/// Obtain a certificate for `spec` and write it with check-and-set. Vault keeps the old
/// version readable until this single write succeeds.
pub(super) async fn obtain_and_save(
    ctx: &Context,
    solvers: &LoadedSolvers,
    account: &instant_acme::Account,
    directory: &str,
    order: Order,
    now: fn() -> OffsetDateTime,
) -> Result<Stored, Error> {
    let Order {
        name,
        spec,
        expect,
        extra,
        facts,
        options,
    } = order;
    let name = &name;
    // Hold the certificate's lease while ordering and writing, so an overlapping run does
    // not order it too. The lease is short and renewed while this works: a killed run
    // blocks the certificate for one lease at most.
    let lease = match take_lock(ctx, name, now).await? {
        Lock::Held { holder, until } => {
            return Err(Error::Locked {
                name: name.clone(),
                holder,
                until,
            })
        }
        Lock::Taken { version, leftovers } => {
            let left = !leftovers.is_empty();
            let kept = if left {
                clean_leftovers(ctx, solvers, name, &spec, leftovers).await
            } else {
                Vec::new()
            };
            (version, kept, left)
        }
    };
    let (lease, inherited, write_now) = lease;
    let (presented_tx, presented_rx) = tokio::sync::watch::channel(Vec::new());
    let still_presented = presented_rx.clone();
    let committed = std::sync::atomic::AtomicBool::new(false);
    let work = async {
        // Re-check under the lock: another run may have written the record since it was read.
        if ctx.store.load_cert_for_write(name).await?.expect != expect {
            return Err(Error::ChangedMeanwhile {
                name: name.clone(),
                path: ctx.store.display(crate::store::Key::Cert(name)),
            });
        }
        tracing::info!(cert = %name, names = spec.domains.len(), "ordering certificate");
        let http = ctx.http()?;
        let dns_solvers = solvers.for_orders(ctx, &http, Some(presented_tx));
        let env = acme::Env {
            timeouts: ctx.settings.timeouts,
            solvers: &dns_solvers,
            shutdown: ctx.shutdown.clone(),
            committed: &committed,
        };
        let (issued, url) = acme::obtain(account, directory, &spec, &options, &env, now).await?;
        let record = CertRecord {
            schema: SCHEMA_VERSION,
            layout: LayoutFields::new(&spec.layouts, &issued),
            spec,
            issued,
            facts,
            extra,
        };
        let version = ctx
            .store
            .save_cert(name, &record, expect)
            .await
            .map_err(|e| {
                let serial = record.issued.serial.clone();
                let url = url.clone();
                let name = name.clone();
                match e {
                    crate::store::Error::Vault(e @ crate::vault::Error::Unconfirmed { .. }) => {
                        Error::NotConfirmed {
                            name,
                            serial,
                            url,
                            source: Box::new(crate::store::Error::Vault(e).into()),
                        }
                    }
                    e => Error::NotStored {
                        name,
                        serial,
                        url,
                        source: Box::new(e.into()),
                    },
                }
            })?;
        tracing::info!(cert = %name, version, not_after = %rfc3339(record.issued.not_after), "stored certificate");
        Ok((version, record))
    };
    tokio::pin!(work);
    let mut lease_lost = false;
    let result = tokio::select! {
        r = &mut work => r,
        e = keep_lease(ctx, name, lease, &inherited, write_now, presented_rx, now) => {
            lease_lost = true;
            if committed.load(std::sync::atomic::Ordering::SeqCst) {
                // The CA was asked to issue: the certificate may exist, and only this run
                // has its key. It is stored (the record's check-and-set keeps a second
                // writer out) or reported with its serial.
                tracing::warn!(cert = %name, "the lock lease was lost after the CA was asked to issue; finishing the order and its write");
                work.await
            } else {
                Err(e)
            }
        }
    };
    // A lost lease is another run's lock now: releasing it would delete that run's lock.
    // A write that may have landed keeps the lock: it lapses within one lease, and the
    // next run finds it there and checks the record.
    match &result {
        _ if lease_lost => {}
        Err(Error::NotConfirmed { .. }) => {}
        _ => {
            // DNS-01 values that could not be removed stay listed in the released lease.
            let mut left = inherited;
            left.extend(still_presented.borrow().iter().cloned());
            release(ctx, name, &left, write_now, now).await;
        }
    }
    // The deploy hook runs once the lock is released: a slow reload holds up no other run.
    let (version, record) = result?;
    let stored = status::Attempt::Stored {
        issued: &record.issued,
        version,
    };
    status::record(ctx, name, stored, now()).await;
    let deploy = deploy(ctx, name, &record, version).await;
    Ok(Stored {
        version,
        record,
        deploy,
    })
}
