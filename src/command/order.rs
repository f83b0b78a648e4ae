//! The ordering step of `renew`: the due certificates, `--concurrency` at a time, each with
//! `replaces` (RFC 9773 §5) when its CA has renewal information, its profile and key policy.
//! A paused CA gets no new orders (its certificates are `deferred`).

use futures::StreamExt;
use time::OffsetDateTime;

use super::ari::Accounts;
use super::context::Context;
use super::gate::{Gate, DEFAULT_PAUSE};
use super::obtain::{obtain_and_save, Order};
use super::status;
use crate::acme::OrderOptions;
use crate::ca::{self, Trouble};
use crate::model::Spec;
use crate::records::{CaFacts, CertRecord};
use crate::renew::Schedule;
use crate::report::{CertError, CertResult, Verdict};
use crate::vault::{Expect, Versioned};
use crate::{x509, Error};

/// What `act` orders: a certificate, its record and why.
pub(super) struct Ordered {
    pub name: crate::model::CertName,
    pub record: Versioned<CertRecord>,
    pub spec: Spec,
    pub reason: String,
}

/// Order the due certificates, `--concurrency` at a time.
pub(super) async fn act(
    ctx: &Context,
    due: Vec<Ordered>,
    accounts: &Accounts,
    gate: &Gate,
    now: fn() -> OffsetDateTime,
) -> Vec<CertResult> {
    if due.is_empty() {
        return Vec::new();
    }
    let solvers = &ctx
        .load_solvers(due.iter().flat_map(|d| d.spec.dns.solver_names()))
        .await;
    futures::stream::iter(due)
        .map(|d| async move {
            let Ordered {
                name,
                record,
                spec,
                reason,
            } = d;
            let mut r = CertResult::new(name.clone(), Verdict::Failed);
            r.reason = Some(reason.clone().into());
            r.not_after = Some(record.data.issued.not_after);
            r.version = Some(record.version);
            let acct = spec.account.clone();
            if let Some(p) = gate.paused(&acct) {
                tracing::info!(cert = %name, "{}", p.reason);
                r.verdict = Verdict::Deferred;
                r.reason = Some(p.reason.into());
                return r;
            }
            let connected = match accounts.0.get(&acct) {
                Some(Ok(c)) => c,
                Some(Err(e)) => return failed(ctx, r, &record, e.clone(), now).await,
                None => return failed(ctx, r, &record, Error::AccountNotLoaded.into(), now).await,
            };
            tracing::info!(cert = %name, %reason, "renewing");
            // `replaces` only when the CA has renewal information, and the certificate was
            // ordered by this account (RFC 9773 §5: the replaced certificate must be the
            // requester's).
            let own = record
                .data
                .facts
                .ordered_by
                .as_deref()
                .is_none_or(|url| url == connected.account.id());
            let replaces = (record.data.facts.ari.is_some() && own && !gate.replaces_ignored(&acct))
                .then(|| ca::cert_id(&record.data.issued.cert))
                .flatten();
            let key = super::obtain::kept_key(&record.data, &spec);
            let mut result = order(ctx, solvers, connected, &name, &spec, &record, replaces.clone(), key.clone(), None, now).await;
            if let (Err(e), Some(id)) = (&result, &replaces) {
                let why = match trouble(e) {
                    Trouble::AlreadyReplaced => Some(format!("the CA answered alreadyReplaced for {id} ({}); ordered once more without replaces", crate::text::chain(e))),
                    Trouble::ReplacesIgnored => {
                        gate.ignore_replaces(&acct);
                        Some(format!("the CA did not reflect replaces {id} in the order (RFC 9773 section 5); ordered once more without it"))
                    }
                    _ => None,
                };
                if let Some(why) = why {
                    tracing::warn!(cert = %name, "{why}");
                    result = order(ctx, solvers, connected, &name, &spec, &record, None, key, Some(why), now).await;
                }
            }
            match result {
                Ok(stored) => {
                    gate.succeeded(&acct);
                    r.verdict = Verdict::Renewed;
                    r.version = Some(stored.version);
                    r.not_after = Some(stored.record.issued.not_after);
                    r.renew_at = x509::current(&stored.record.issued.cert)
                        .ok()
                        .map(|c| Schedule::of(&c, spec.renew_before.as_ref(), None).renew_at);
                    r.error = stored.deploy.err().map(|e| Error::from(e).into());
                    // The reason stays the decision's (`ari` when ARI decided); why the
                    // order went without `replaces` is in the log and the record.
                    r
                }
                Err(e @ (Error::Locked { .. } | Error::ChangedMeanwhile { .. })) => {
                    tracing::info!(cert = %name, "skipped: {e}");
                    if let Error::Locked { until, .. } = &e {
                        r.locked_until = Some(*until);
                    }
                    r.verdict = Verdict::Skipped;
                    r.reason = Some(e.to_string().into());
                    r
                }
                Err(e @ Error::NotConfirmed { .. }) => {
                    // No status written: it may not agree with the record. The lock stays
                    // and makes the next run check the record.
                    tracing::error!(cert = %name, "{e}");
                    r.verdict = Verdict::Unconfirmed;
                    r.error = Some(e.into());
                    r
                }
                Err(e) => {
                    match trouble(&e) {
                        Trouble::RateLimited => {
                            let until = connected
                                .hint
                                .lock()
                                .ok()
                                .and_then(|h| *h)
                                .map(OffsetDateTime::from)
                                .filter(|t| *t > now())
                                .unwrap_or(now() + DEFAULT_PAUSE);
                            gate.rate_limited(ctx, &acct, &connected.directory, until, &e, now()).await;
                            r.verdict = Verdict::Deferred;
                            r.reason = gate.paused(&acct).map(|p| p.reason.into());
                            return r;
                        }
                        Trouble::Unavailable => gate.unavailable(&acct, &connected.directory),
                        _ => {}
                    }
                    failed(ctx, r, &record, e.into(), now).await
                }
            }
        })
        .buffer_unordered(ctx.settings.concurrency.max(1))
        .collect()
        .await
}

/// One order of `name` and its write; `dropped` says why it carries no `replaces`.
#[allow(clippy::too_many_arguments)]
async fn order(
    ctx: &Context,
    solvers: &super::context::LoadedSolvers,
    connected: &super::ari::Connected,
    name: &crate::model::CertName,
    spec: &Spec,
    record: &Versioned<CertRecord>,
    replaces: Option<String>,
    key: Option<crate::model::Secret>,
    dropped: Option<String>,
    now: fn() -> OffsetDateTime,
) -> Result<super::obtain::Stored, Error> {
    let order = Order {
        name: name.clone(),
        spec: spec.clone(),
        expect: Expect::Version(record.version),
        extra: record.data.extra.clone(),
        facts: CaFacts {
            ordered_by: Some(connected.account.id().to_string()),
            replaced: replaces.clone().or_else(|| {
                dropped
                    .as_ref()
                    .and_then(|_| ca::cert_id(&record.data.issued.cert))
            }),
            replaces_dropped: dropped,
            ..CaFacts::default()
        },
        options: OrderOptions { replaces, key },
    };
    obtain_and_save(
        ctx,
        solvers,
        &connected.account,
        &connected.directory,
        order,
        now,
    )
    .await
}

/// Record a failed certificate (status document, where the error is stored as text) and
/// report it.
async fn failed(
    ctx: &Context,
    mut r: CertResult,
    record: &Versioned<CertRecord>,
    error: CertError,
    now: fn() -> OffsetDateTime,
) -> CertResult {
    let text = error.to_string();
    tracing::error!(cert = %r.name, "renewal failed: {text}");
    let attempt = status::Attempt::Failed {
        current: &record.data.issued,
        version: record.version,
        error: &text,
    };
    status::record(ctx, &r.name, attempt, now()).await;
    r.error = Some(error);
    r
}

/// What an order's error means for pausing the CA or ordering again (only ACME errors
/// mean anything).
fn trouble(e: &Error) -> Trouble {
    match e {
        Error::Acme(e) => ca::trouble(e),
        _ => Trouble::Other,
    }
}
