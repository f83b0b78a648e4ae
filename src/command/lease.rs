//! A certificate's lock lease while an order runs: renewed every third of its length, with
//! the DNS-01 values presented so far; and the cleanup of what a dead holder left.

use time::OffsetDateTime;

use super::context::{Context, LoadedSolvers};
use crate::model::{CertName, Spec};
use crate::Error;

/// Renew the lease of `name` every third of its length while the order runs. Returns only
/// when the lease is lost (another run took it over after it lapsed, or an admin broke it):
/// the order then stops before it writes. A failed renewal is retried until the lease lapses.
/// The lease also records, as soon as they change, the DNS-01 values the order has
/// presented and not yet removed, for whoever takes the lease over if this run dies.
///
/// `inherited` are values a dead holder left that could not be removed yet: they stay in
/// the lease beside this order's own; with `write_now` the lease is written at once (the
/// lease as taken still lists what the dead holder left).
pub(super) async fn keep_lease(
    ctx: &Context,
    name: &CertName,
    mut version: u64,
    inherited: &[crate::dns::Leftover],
    write_now: bool,
    mut presented: tokio::sync::watch::Receiver<Vec<crate::dns::Leftover>>,
    now: fn() -> OffsetDateTime,
) -> Error {
    let lease = ctx.settings.lock_lease;
    let every = lease / 3;
    let mut lapses = now() + lease;
    let mut watching = true;
    let mut first = write_now;
    loop {
        if !std::mem::take(&mut first) {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                changed = presented.changed(), if watching => {
                    if changed.is_err() {
                        watching = false;
                        continue;
                    }
                }
            }
        }
        let mut values = inherited.to_vec();
        values.extend(presented.borrow_and_update().iter().cloned());
        match ctx
            .store
            .renew_lease(name, &ctx.run.id, version, now(), lease, &values)
            .await
        {
            Ok(v) => {
                version = v;
                lapses = now() + lease;
            }
            Err(crate::store::Error::Vault(crate::vault::Error::CasConflict { .. })) => {
                return Error::LeaseLost { name: name.clone() }
            }
            Err(e) if now() + every >= lapses => {
                tracing::error!(cert = %name, "could not renew the lock lease: {}", crate::text::chain(&e));
                return Error::LeaseLost { name: name.clone() };
            }
            Err(e) => {
                tracing::warn!(cert = %name, "could not renew the lock lease, retrying: {}", crate::text::chain(&e))
            }
        }
    }
}

/// Remove the DNS-01 values a dead run left presented (recorded in the lease it held).
/// The lease is renew-writable, so its list is only a claim: see
/// [`crate::dns::Session::cleanup_leftovers`] for what is removed. Returns the values that
/// could not be removed now, to be kept in this run's lease for the next run.
pub(super) async fn clean_leftovers(
    ctx: &Context,
    solvers: &LoadedSolvers,
    name: &CertName,
    spec: &Spec,
    leftovers: Vec<crate::dns::Leftover>,
) -> Vec<crate::dns::Leftover> {
    let http = match ctx.http() {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(cert = %name, "cannot remove the DNS-01 values a dead run left: {}", crate::text::chain(&e));
            return leftovers;
        }
    };
    let dns_solvers = solvers.for_orders(ctx, &http, None);
    let count = leftovers.len();
    let mut session = crate::dns::Session::new(&dns_solvers, spec, count);
    let done = session.cleanup_leftovers(leftovers).await;
    ctx.dns_tally.add_cleared(count - done.kept.len());
    tracing::info!(
        cert = %name,
        removed = done.removed,
        refused = done.refused,
        kept = done.kept.len(),
        "removed DNS-01 values a dead run left presented"
    );
    done.kept
}

/// Take the lease of `name` for this run (see [`crate::store::Store::lock_cert`]).
pub(super) async fn take_lock(
    ctx: &Context,
    name: &CertName,
    now: fn() -> OffsetDateTime,
) -> Result<crate::store::Lock, Error> {
    Ok(ctx
        .store
        .lock_cert(
            name,
            &ctx.run.holder,
            &ctx.run.id,
            now(),
            ctx.settings.lock_lease,
        )
        .await?)
}

/// Release this run's lock of `name`, keeping `left` (DNS-01 values still in DNS) listed
/// in it for the next run, counted in the run's tally, and in the status document when
/// the count may have changed (`had_leftovers`: the lock listed some when taken).
pub(super) async fn release(
    ctx: &Context,
    name: &CertName,
    left: &[crate::dns::Leftover],
    had_leftovers: bool,
    now: fn() -> OffsetDateTime,
) {
    if let Err(e) = ctx.store.release_lock(name, &ctx.run.id, now(), left).await {
        tracing::warn!(cert = %name, "could not release the lock (it expires by itself): {}", crate::text::chain(&e));
    }
    if !left.is_empty() {
        tracing::warn!(cert = %name, values = left.len(), "DNS-01 values are left in DNS; the lock lists them and the next run removes them");
    }
    ctx.dns_tally.add_left(left.len());
    if !left.is_empty() || had_leftovers {
        super::status::leftovers(ctx, name, left.len()).await;
    }
}

/// Remove the DNS-01 values an earlier run left for `name` (listed in its released or
/// lapsed lock; the status document counts them), without ordering: take the lock, remove
/// what can be proved to be the certificate's, release it keeping what still cannot be
/// removed. `false` when another run holds the lock now (it removes them).
pub(super) async fn tidy(
    ctx: &Context,
    solvers: &LoadedSolvers,
    name: &CertName,
    spec: &Spec,
    now: fn() -> OffsetDateTime,
) -> Result<bool, Error> {
    let crate::store::Lock::Taken { leftovers, .. } = take_lock(ctx, name, now).await? else {
        return Ok(false);
    };
    let kept = if leftovers.is_empty() {
        Vec::new()
    } else {
        clean_leftovers(ctx, solvers, name, spec, leftovers).await
    };
    release(ctx, name, &kept, true, now).await;
    Ok(true)
}

/// [`tidy`] each of `items` (certificates whose status says DNS-01 values were left), with
/// the solvers their specs name. Failures are logged: the values stay listed.
pub(super) async fn tidy_all(
    ctx: &Context,
    items: Vec<(CertName, Spec)>,
    now: fn() -> OffsetDateTime,
) {
    if items.is_empty() {
        return;
    }
    let solvers = ctx
        .load_solvers(items.iter().flat_map(|(_, s)| s.dns.solver_names()))
        .await;
    for (name, spec) in items {
        match tidy(ctx, &solvers, &name, &spec, now).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(cert = %name, "another run holds the lock: it removes the DNS-01 values left")
            }
            Err(e) => {
                tracing::warn!(cert = %name, "could not remove the DNS-01 values an earlier run left: {}", crate::text::chain(&e))
            }
        }
    }
}

/// The most left locks one run looks at (the rest wait for the next runs).
const MAX_LEFT_LOCKS: usize = 1000;

/// The certificates of `part` whose lock another run left behind, lapsed: it died, or lost
/// Vault before it could write or confirm a certificate. This run reads their records, so
/// their status and index entries agree with what is stored, and removes the lock (with
/// the DNS-01 values it lists, verified as any leftovers). Held locks are their holders'.
/// A lock an older version released (latest version deleted) is removed with its history.
/// One list request when there are none; a policy without list on `locks/` (printed by
/// an older version) skips this with a warning.
pub(super) async fn left_locks(
    ctx: &Context,
    part: &crate::index::Part,
    now: OffsetDateTime,
) -> Vec<CertName> {
    use futures::StreamExt;
    let names = match ctx.store.list_locks().await {
        Ok(n) => n,
        Err(crate::store::Error::Vault(crate::vault::Error::Forbidden { path, .. })) => {
            tracing::warn!("cannot list {path}: locks left by runs that died are not looked at; print the policy again (`certvault policy renew`) and update it in Vault");
            return Vec::new();
        }
        Err(e) => {
            tracing::warn!(
                "cannot list the locks (left ones are looked at by a later run): {}",
                crate::text::chain(&e)
            );
            return Vec::new();
        }
    };
    let mine: Vec<CertName> = names
        .into_iter()
        .filter(|n| part.contains(n.as_str()))
        .take(MAX_LEFT_LOCKS)
        .collect();
    let looked: Vec<(CertName, Option<bool>)> = futures::stream::iter(mine)
        .map(|n| async move {
            let left = match ctx.store.load_lock(&n).await {
                Ok(None) => {
                    if let Err(e) = ctx.store.forget_lock(&n).await {
                        tracing::debug!(cert = %n, "could not remove a released lock's history: {}", crate::text::chain(&e));
                    }
                    None
                }
                Ok(Some(l)) => Some(
                    l.data.run_id != ctx.run.id
                        && !crate::store::lease_binds(l.data.expires_at, now),
                ),
                // Not a valid lock: taken over (and so removed) like a left one.
                Err(e @ crate::store::Error::Corrupt { .. }) => {
                    tracing::warn!(cert = %n, "{e}: taking it over");
                    Some(true)
                }
                Err(e) => {
                    tracing::debug!(cert = %n, "could not read its lock: {}", crate::text::chain(&e));
                    None
                }
            };
            (n, left)
        })
        .buffered(16)
        .collect()
        .await;
    let left: Vec<CertName> = looked
        .into_iter()
        .filter_map(|(n, l)| l.unwrap_or(false).then_some(n))
        .collect();
    if !left.is_empty() {
        tracing::info!(
            certificates = left.len(),
            "locks left by earlier runs: reading their records again"
        );
    }
    left
}
