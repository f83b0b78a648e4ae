//! `certvault list`: what is stored, when each certificate renews, and why (the rows
//! are in [`super::rows`]).
//!
//! With a token that may read the records (admin, renew), the facts come from each
//! certificate itself, as `renew` sees them. With the monitor policy (no private keys), they
//! come from the key-free status documents (`status/<NAME>`) and the specs.

use time::OffsetDateTime;

use super::context::{Context, Outcome};
use super::rows::{index_row, pauses, rows_from_records, Rendered};
use crate::index::Part;
use crate::Error;

pub(super) async fn run(ctx: &Context, json: bool, now: OffsetDateTime) -> Result<Outcome, Error> {
    // A wrong --prefix / --mount is an error naming the paths, not an empty list.
    ctx.store.ensure_in_use(&ctx.settings.account).await?;
    // The index gives the rows of certificates with an entry; the others (no entry yet,
    // due whatever the time: damaged, names changed) are read one by one.
    let buckets = ctx.store.names_by_shard(Part::ALL, None).await?;
    let mut rows = Rendered::new(json, now);
    let scan = ctx
        .store
        .scan_index(
            &buckets,
            now,
            true,
            // ARI and revocation shape the row: read such records themselves.
            |e| e.due_now.is_some() || e.ari.is_some(),
            |name, e| {
                if !e.deleted {
                    rows.push(index_row(name, e, now))
                }
            },
        )
        .await?;
    drop(buckets);
    rows.drop_rows(&scan.unsettled);
    // `list` writes nothing: what reading noted for the index is dropped.
    ctx.store.journal.discard();
    let (more, broken) = rows_from_records(ctx, scan.load, now).await?;
    more.into_iter().for_each(|r| rows.push(r));
    let pauses = pauses(ctx, &rows.accounts, now).await;
    Ok(rows.finish(pauses, broken))
}
