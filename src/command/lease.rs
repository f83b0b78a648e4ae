//! A certificate's lock lease while an order runs: renewed every third of its length, with
//! the DNS-01 values presented so far; and the cleanup of what a dead holder left.

use time::OffsetDateTime;

use super::{Context, LoadedSolvers};
use crate::model::{CertName, Spec};
use crate::Error;

/// Renew the lease of `name` every third of its length while the order runs. Returns only
/// when the lease is lost (another run took it over after it lapsed, or an admin broke it):
/// the order then stops before it writes. A failed renewal is retried until the lease lapses.
/// The lease also records, as soon as they change, the DNS-01 values the order has
/// presented and not yet removed, for whoever takes the lease over if this run dies.
pub(super) async fn keep_lease(
    ctx: &Context,
    name: &CertName,
    mut version: u64,
    mut presented: tokio::sync::watch::Receiver<Vec<crate::dns::Leftover>>,
    now: fn() -> OffsetDateTime,
) -> Error {
    let lease = ctx.settings.lock_lease;
    let every = lease / 3;
    let mut lapses = now() + lease;
    let mut watching = true;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            changed = presented.changed(), if watching => {
                if changed.is_err() {
                    watching = false;
                    continue;
                }
            }
        }
        let values = presented.borrow_and_update().clone();
        match ctx
            .store
            .renew_lease(name, version, now(), lease, &values)
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
                tracing::error!(cert = %name, "could not renew the lock lease: {}", crate::error::chain(&e));
                return Error::LeaseLost { name: name.clone() };
            }
            Err(e) => {
                tracing::warn!(cert = %name, "could not renew the lock lease, retrying: {}", crate::error::chain(&e))
            }
        }
    }
}

/// Remove the DNS-01 values a dead run left presented (recorded in the lease it held).
pub(super) async fn clean_leftovers(
    ctx: &Context,
    solvers: &LoadedSolvers,
    name: &CertName,
    spec: &Spec,
    leftovers: Vec<crate::dns::Leftover>,
) {
    let Ok(http) = ctx.http() else { return };
    let dns_solvers = solvers.for_orders(ctx, &http, None);
    let count = leftovers.len();
    let mut session = crate::dns::Session::new(&dns_solvers, spec, count);
    let failed = session.cleanup_leftovers(leftovers).await.len();
    tracing::info!(
        cert = %name,
        removed = count - failed,
        failed,
        "removed DNS-01 values a dead run left presented"
    );
}
