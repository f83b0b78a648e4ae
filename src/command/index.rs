//! `certvault index rebuild` and `certvault list --verify`: the full check of the renewal
//! index against the records (which stay the source of truth). Both go one index document
//! at a time, so memory holds one shard's records, not the fleet's.

use time::OffsetDateTime;

use super::context::{Context, Outcome};
use super::rows::{self, Broken, Unreadable};
use crate::index::{self, Entry, Layout, Part, Shard};
use crate::model::CertName;
use crate::store::{Key, LoadedEntry};
use crate::Error;

/// Load the records, specs and statuses of `names`: (name, record+spec, status).
async fn load(
    ctx: &Context,
    names: Vec<CertName>,
) -> Vec<(CertName, LoadedEntry, Option<crate::records::StatusRecord>)> {
    let loaded = ctx.store.load_entries(names).await;
    // What loading noted for the index is not written by these commands.
    ctx.store.journal.discard();
    // The status came with each entry (one read per document).
    loaded
        .into_iter()
        .map(|(n, e)| {
            let status = e.as_ref().ok().and_then(|e| e.as_ref()?.status.clone());
            (n, e, status)
        })
        .collect()
}

/// The entry a record makes, with its status.
fn fresh(entry: &crate::store::Entry, status: Option<&crate::records::StatusRecord>) -> Entry {
    let mut e = index::facts(
        &entry.cert,
        entry.spec.as_ref().map(|s| &s.data),
        entry.spec.as_ref().map_or(0, |s| s.version),
    );
    e.status = status.map(index::journal::status_of);
    e
}

/// How an index entry disagrees with the record, if it does (the status is informational
/// and not compared).
fn disagreement(stored: Option<&Entry>, fresh: &Entry) -> Option<String> {
    let Some(stored) = stored else {
        return Some("no index entry".into());
    };
    if !stored.matches(fresh.version, fresh.spec_version) {
        return Some(format!(
            "index entry is for record version {} and spec version {}, stored are {} and {}",
            stored.version, stored.spec_version, fresh.version, fresh.spec_version
        ));
    }
    let mut a = stored.clone();
    let mut b = fresh.clone();
    a.status = None;
    b.status = None;
    (a != b).then(|| {
        let at = |t: i64| {
            OffsetDateTime::from_unix_timestamp(t)
                .map(crate::text::rfc3339)
                .unwrap_or_else(|_| t.to_string())
        };
        format!(
            "index entry says not after {}, renews at {}{}; the record says {}, {}{}",
            at(a.not_after),
            at(a.renew_at),
            a.due_now
                .map(|d| format!(", due now ({d})"))
                .unwrap_or_default(),
            at(b.not_after),
            at(b.renew_at),
            b.due_now
                .map(|d| format!(", due now ({d})"))
                .unwrap_or_default(),
        )
    })
}

/// `list --verify`: the list as read from every record, then each disagreement of the index.
pub(super) async fn verify(
    ctx: &Context,
    json: bool,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    ctx.store.ensure_in_use(&ctx.settings.account).await?;
    let buckets = ctx.store.names_by_shard(Part::ALL, None).await?;
    let mut rows = Vec::new();
    let mut broken = Vec::new();
    let mut disagree: Vec<(String, String)> = Vec::new();
    for s in buckets.layout.all() {
        let names = buckets.by_shard.get(&s).cloned().unwrap_or_default();
        let shard = ctx.store.load_shard(buckets.layout, s).await?;
        for name in shard.entries.keys() {
            if names.binary_search(name).is_err() {
                disagree.push((
                    name.to_string(),
                    "index entry for a certificate that is not stored".into(),
                ));
            }
        }
        for (name, loaded, status) in load(ctx, names).await {
            let stored = shard.entries.get(&name);
            let entry = match loaded {
                Ok(None) => {
                    if !stored.is_some_and(|e| e.deleted) {
                        disagree.push((
                            name.to_string(),
                            "the record's latest version is deleted; the index does not say so"
                                .into(),
                        ));
                    }
                    continue;
                }
                Err(e) => {
                    broken.push(Broken {
                        name: name.to_string(),
                        error: Unreadable::Read(e),
                    });
                    continue;
                }
                Ok(Some(entry)) => entry,
            };
            match rows::full_row(&name, &entry, status.as_ref(), now) {
                Ok(row) => rows.push(row),
                Err(why) => broken.push(Broken {
                    name: name.to_string(),
                    error: Unreadable::Damaged(why),
                }),
            }
            if let Some(d) = disagreement(stored, &fresh(&entry, status.as_ref())) {
                disagree.push((name.to_string(), d));
            }
        }
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    disagree.sort();
    let mut out = rows::output(rows, broken, json, now);
    if json {
        // One JSON document: the list, then the disagreements as {name, index} items.
        let mut all: Vec<serde_json::Value> = serde_json::from_str(&out.text).unwrap_or_default();
        all.extend(
            disagree
                .iter()
                .map(|(n, d)| serde_json::json!({ "name": n, "index": d })),
        );
        out.text = serde_json::to_string_pretty(&all).unwrap_or_default() + "\n";
    } else {
        for (name, d) in &disagree {
            out.text
                .push_str(&format!("{name}  INDEX DISAGREES: {d}\n"));
        }
        if disagree.is_empty() {
            out.text.push_str("index: agrees with every record\n");
        } else {
            out.text.push_str(&format!(
                "index: {} disagreement(s); the records are right: `certvault index rebuild` (or the next renew, for most) repairs it\n",
                disagree.len()
            ));
        }
    }
    out.failed |= !disagree.is_empty();
    Ok(out)
}

/// `index rebuild`: every index document rewritten from the records, one at a time.
pub(super) async fn rebuild(ctx: &Context, now: fn() -> OffsetDateTime) -> Result<Outcome, Error> {
    // The layout the fleet needs (never smaller than the stored one): a grown fleet's
    // rebuild is also its move to the larger layout.
    let at = now();
    let names = ctx.store.list_certs().await?;
    let stored = ctx.store.index_layout().await?;
    let certificates = names.len();
    let layout = stored
        .layout
        .wanted(certificates, ctx.store.index_grow_above());
    let buckets = layout.group(names, Part::ALL);
    let (mut entries, mut documents, mut unreadable) = (0usize, 0usize, Vec::new());
    for s in layout.all() {
        let names = buckets.get(&s).cloned().unwrap_or_default();
        let mut shard = Shard::empty(s, layout, index::staggered(s, layout, at));
        for (name, loaded, status) in load(ctx, names).await {
            match loaded {
                Ok(Some(entry)) => {
                    shard.entries.insert(name, fresh(&entry, status.as_ref()));
                }
                Ok(None) => {
                    // Latest version deleted: remembered so renew does not load it.
                    if let Ok(Some((version, _))) = ctx
                        .store
                        .kv()
                        .current_version(&Key::Cert(&name).path(ctx.store.prefix()))
                        .await
                    {
                        let mut e = index::journal::blank(version, 0);
                        e.deleted = true;
                        shard.entries.insert(name, e);
                    }
                }
                Err(e) => unreadable.push((name, e)),
            }
        }
        entries += shard.entries.len();
        documents += usize::from(!shard.entries.is_empty());
        ctx.store.replace_shard(layout, s, &shard).await?;
    }
    if layout != stored.layout {
        ctx.store
            .save_layout(stored, layout, certificates, at)
            .await?;
    }
    // The documents of the layout this one replaced (by this rebuild or a growing run).
    let mut removed = 0;
    for old in [Some(stored.layout), stored.previous] {
        match old {
            Some(old) if old < layout => removed += remove_layout(ctx, old).await?,
            _ => {}
        }
    }
    let mut text = format!(
        "rebuilt the renewal index at {}/: {entries} entries in {documents} documents (layout of {} documents{})\n",
        ctx.store.display(Key::Indexes),
        layout.shards(),
        if removed > 0 {
            format!("; {removed} documents of a smaller layout deleted")
        } else {
            String::new()
        }
    );
    for (name, e) in &unreadable {
        text.push_str(&format!(
            "UNREADABLE (no entry; renew loads it every run until fixed): {name}: {}\n",
            crate::text::chain(e)
        ));
    }
    Ok(Outcome {
        text,
        failed: !unreadable.is_empty(),
        ..Default::default()
    })
}

/// Delete every document of `old` (left empty when the index grew from it). Returns how
/// many there were.
async fn remove_layout(ctx: &Context, old: Layout) -> Result<usize, Error> {
    let mut removed = 0;
    for s in old.all() {
        let empty = Shard::empty(s, old, 0);
        removed += usize::from(ctx.store.replace_shard(old, s, &empty).await?);
    }
    Ok(removed)
}
