//! The Vault side of the renewal index: what a run notes while it reads and writes records
//! ([`Journal`]), reading the index to find what to load ([`Store::scan_index`]), checking
//! a rotating slice of entries against the records' metadata, and writing each touched
//! document once per run with check-and-set, re-reading and merging on a conflict
//! ([`Store::flush_index`]), and growing the layout with the fleet ([`Store::names_by_shard`]).

use std::collections::BTreeMap;

use futures::StreamExt;
use time::OffsetDateTime;

use crate::index::journal::Checked;
use crate::index::{
    date_check_due, merge, staggered, to_verify, Entry, Layout, LayoutRecord, Noted, Part, Shard,
    FORMAT,
};
use crate::model::{CertName, SCHEMA_VERSION};
use crate::store::{self, Error, Key, Store};
use crate::vault::{self, Expect};

/// How many index documents are read or written at once.
const PARALLEL: usize = 16;

/// What a pass over the index found: the certificates to load, and how many entries it
/// was missing, held stale, or could not use.
#[derive(Debug, Default)]
pub struct Scan {
    pub load: Vec<CertName>,
    pub missing: usize,
    pub stale: usize,
    pub due: usize,
    /// Loaded for the weekly check of entries against their records.
    pub dated: usize,
    /// The names of [`Scan::load`] found stale by the verification (their entries were
    /// settled before).
    pub unsettled: Vec<CertName>,
}

/// The names of a run's part, grouped by the index document of `layout` that holds them.
#[derive(Debug)]
pub struct Buckets {
    pub layout: Layout,
    pub by_shard: BTreeMap<u16, Vec<CertName>>,
}

/// `index/layout` as read: the layout in use, the one it grew from, and what a write
/// replacing it must expect.
#[derive(Debug, Clone, Copy)]
pub struct StoredLayout {
    pub layout: Layout,
    pub previous: Option<Layout>,
    pub expect: Expect,
}

/// Why a flush started over: another run grew the layout meanwhile.
struct LayoutChanged;

/// A shard as read: the document (an empty one if absent or unusable) and its version.
struct ReadShard {
    shard: Shard,
    expect: Expect,
    /// Absent, or present but unusable (the warning is given).
    absent: bool,
    /// When Vault wrote the version read (KV v2), to weigh the check times it claims.
    written_at: Option<i64>,
}

impl Store {
    /// The layout `index/layout` names (the first one when absent or unusable).
    pub async fn index_layout(&self) -> Result<StoredLayout, Error> {
        let (read, bad) = self
            .load_read_replaceable::<LayoutRecord>(Key::IndexLayout)
            .await?;
        let unusable = |why: String| {
            tracing::warn!(
                "{} is not usable ({why}): using the first layout",
                self.display(Key::IndexLayout)
            );
            Layout::FIRST
        };
        if let Some(e) = bad {
            unusable(crate::text::chain(&e));
        }
        let (layout, previous) = match read.doc {
            None => (Layout::FIRST, None),
            Some(d) => (
                d.data.layout().unwrap_or_else(unusable),
                Layout::new(d.data.previous),
            ),
        };
        Ok(StoredLayout {
            layout,
            previous,
            expect: read.expect,
        })
    }

    async fn read_shard(&self, layout: Layout, shard: u16) -> Result<ReadShard, Error> {
        let key = Key::Index(layout, shard);
        tracing::debug!(target: "certvault::reads", "read {}", self.display(key));
        let read = self.kv().read(&key.path(self.prefix())).await?;
        let Some(doc) = read.doc else {
            return Ok(ReadShard {
                shard: Shard::empty(shard, layout, i64::MIN),
                expect: read.expect,
                absent: true,
                written_at: None,
            });
        };
        let written_at = doc.written_at;
        let parsed = match doc.data.get("schema").and_then(|v| v.as_u64()) {
            Some(found) if found > u64::from(SCHEMA_VERSION) => {
                return Err(Error::NewerSchema {
                    path: self.display(key),
                    found,
                })
            }
            _ => serde_json::from_value::<Shard>(doc.data)
                .map_err(|e| store::redact_quoted(&e.to_string()))
                .and_then(|s| s.problem(shard, layout).map_or(Ok(s), Err)),
        };
        match parsed {
            Ok(s) => Ok(ReadShard {
                shard: s,
                expect: read.expect,
                absent: false,
                written_at,
            }),
            Err(why) => {
                tracing::warn!(
                    "index document {} is not usable ({why}): rebuilding it from its records",
                    self.display(key)
                );
                Ok(ReadShard {
                    shard: Shard::empty(shard, layout, i64::MIN),
                    expect: read.expect,
                    absent: true,
                    written_at,
                })
            }
        }
    }

    /// Names of `part`, grouped by index document, in name order within each. With `grow`
    /// (a run that may write the index), a fleet grown past its layout first gets a larger
    /// one ([`Layout::wanted`]).
    pub async fn names_by_shard(
        &self,
        part: Part,
        grow: Option<OffsetDateTime>,
    ) -> Result<Buckets, Error> {
        let names = self.list_certs().await?;
        let stored = self.index_layout().await?;
        let mut layout = stored.layout;
        if let Some(now) = grow {
            let wanted = layout.wanted(names.len(), self.index_grow_above);
            if wanted != layout {
                // The index is a cache: a growth that fails leaves the old layout in use
                // and never stops the renewals.
                match self
                    .grow_index(layout, stored.expect, wanted, names.len(), now)
                    .await
                {
                    Ok(l) => layout = l,
                    Err(e) => tracing::warn!(
                        "the renewal index could not grow to {wanted} ({}): this run uses {layout}; the next run tries again",
                        crate::text::chain(&e)
                    ),
                }
            }
        }
        Ok(Buckets {
            layout,
            by_shard: layout.group(names, part),
        })
    }

    /// Move the index from layout `from` to the larger `to`: each document's entries into
    /// the documents of `to` that now hold them (their check times carried over), then
    /// `index/layout` (check-and-set: if another run grew it meanwhile, its layout is used),
    /// then each old document emptied, after merging what a run that still used `from`
    /// flushed into it meanwhile. Returns the layout in use afterwards.
    async fn grow_index(
        &self,
        from: Layout,
        expect: Expect,
        to: Layout,
        certificates: usize,
        now: OffsetDateTime,
    ) -> Result<Layout, Error> {
        tracing::info!(
            certificates,
            "the renewal index grows from {from} to {to} (at most {} certificates a document on average)",
            self.index_grow_above
        );
        let moved: Vec<Result<Expect, Error>> = futures::stream::iter(from.all())
            .map(|s| async move { self.move_shard(from, s, to, now).await })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        for r in moved {
            r?;
        }
        let record = LayoutRecord {
            schema: SCHEMA_VERSION,
            shards: to.shards(),
            previous: from.shards(),
            grown_at: now.unix_timestamp(),
            certificates: certificates as u64,
        };
        match self.save(Key::IndexLayout, &record, expect).await {
            Ok(_) => {}
            Err(Error::Vault(
                vault::Error::CasConflict { .. } | vault::Error::AlreadyExists { .. },
            )) => {
                let now_in_use = self.index_layout().await?.layout;
                tracing::info!(
                    "another run changed the index layout meanwhile: using {now_in_use}"
                );
                return Ok(now_in_use);
            }
            Err(e) => return Err(e),
        }
        // A run that read `from` before the switch may have flushed into an old document
        // since it was moved: move it again, then leave it empty (a run flushing into it
        // afterwards meets a conflict and reads the layout again).
        let emptied: Vec<Result<(), Error>> = futures::stream::iter(from.all())
            .map(|s| async move { self.empty_old_shard(from, s, to, now).await })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        emptied.into_iter().collect::<Result<(), Error>>()?;
        Ok(to)
    }

    /// Copy the entries of document `s` of `from` into the documents of `to` (merged with
    /// what is there, newer versions winning). Returns the version of `s` read.
    async fn move_shard(
        &self,
        from: Layout,
        s: u16,
        to: Layout,
        now: OffsetDateTime,
    ) -> Result<Expect, Error> {
        let doc = self.read_shard(from, s).await?;
        if doc.absent {
            return Ok(doc.expect);
        }
        let (versions, dates) = doc.shard.checked_at(doc.written_at, now);
        let checked = Checked {
            versions: Some(versions),
            dates: Some(dates),
        };
        let mut parts: BTreeMap<u16, Vec<(CertName, Noted)>> = BTreeMap::new();
        for (name, e) in doc.shard.entries {
            parts.entry(to.shard_of(name.as_str())).or_default().push((
                name,
                Noted {
                    entry: Some(e),
                    ..Default::default()
                },
            ));
        }
        for (t, notes) in parts {
            // Never `LayoutChanged`: a move does not look at the layout.
            let _ = self
                .flush_shard(to, t, &notes, Some(&checked), now, true)
                .await?;
        }
        Ok(doc.expect)
    }

    /// After the switch to `to`: move document `s` of `from` once more and write it empty,
    /// until the write meets no conflict.
    async fn empty_old_shard(
        &self,
        from: Layout,
        s: u16,
        to: Layout,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        for _ in 0..8 {
            let expect = self.move_shard(from, s, to, now).await?;
            if expect == Expect::Absent {
                return Ok(());
            }
            match self
                .save(
                    Key::Index(from, s),
                    &Shard::empty(s, from, now.unix_timestamp()),
                    expect,
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(Error::Vault(
                    vault::Error::CasConflict { .. } | vault::Error::AlreadyExists { .. },
                )) => continue,
                Err(e) => return Err(e),
            }
        }
        tracing::warn!(
            "{} kept changing while the index grew; its entries are rebuilt from the records by later runs",
            self.display(Key::Index(from, s))
        );
        Ok(())
    }

    /// Read the index documents that hold `buckets` (streamed, [`PARALLEL`] at a time) and
    /// sort each certificate: `settled(name, entry)` for those whose entry is good and
    /// does not need the record (`needs_record` false), the rest into [`Scan::load`]. With
    /// `verify`, the shards due for it get their versions checked against the metadata of
    /// the records and specs: a stale entry's name goes to `load` and to
    /// [`Scan::unsettled`].
    pub async fn scan_index(
        &self,
        buckets: &Buckets,
        now: OffsetDateTime,
        verify: bool,
        needs_record: impl Fn(&Entry) -> bool,
        mut settled: impl FnMut(&CertName, &Entry),
    ) -> Result<Scan, Error> {
        let mut scan = Scan::default();
        let mut verified_at: Vec<(u16, i64, usize)> = Vec::new();
        let (mut absent, mut read) = (0usize, 0usize);
        let mut dated_shards: Vec<u16> = Vec::new();
        let layout = buckets.layout;
        self.journal.use_layout(layout);
        let buckets = &buckets.by_shard;
        let mut docs = futures::stream::iter(buckets.keys().copied())
            .map(|s| async move { (s, self.read_shard(layout, s).await) })
            .buffer_unordered(PARALLEL);
        while let Some((s, doc)) = docs.next().await {
            let doc = doc?;
            read += 1;
            // The index is renew-writable: its entries may only make a run look at a
            // record sooner. Once a week (claims of a later check than Vault's own write
            // time do not count) every entry of a shard is checked against its record.
            let (versions_at, dates_at) = doc.shard.checked_at(doc.written_at, now);
            let date_check = verify && !doc.absent && date_check_due(dates_at, now);
            if !doc.absent && doc.shard.format < FORMAT {
                self.journal.note_rewrite(s);
            }
            if doc.absent {
                absent += 1;
            } else {
                verified_at.push((s, versions_at, buckets[&s].len()));
            }
            if date_check {
                // Every record loaded: its versions are checked as well.
                self.journal.note_dated(s, now.unix_timestamp());
                self.journal.note_verified(s, now.unix_timestamp());
                dated_shards.push(s);
            }
            for name in &buckets[&s] {
                match doc.shard.entries.get(name) {
                    None => {
                        scan.missing += 1;
                        scan.load.push(name.clone());
                    }
                    Some(e) if needs_record(e) => {
                        scan.due += 1;
                        scan.load.push(name.clone());
                    }
                    Some(_) if date_check => {
                        scan.dated += 1;
                        scan.load.push(name.clone());
                    }
                    Some(e) => settled(name, e),
                }
            }
        }
        drop(docs);
        let names: usize = buckets.values().map(Vec::len).sum();
        if read > 0 && absent == read && names > 0 {
            tracing::warn!(
                "no renewal index at {}/ yet (or it was lost): building it from the {names} records; later runs read only what is due",
                self.display(Key::Indexes)
            );
        } else if scan.missing > 0 {
            tracing::info!(
                missing = scan.missing,
                "certificates without an index entry (new, imported, written by hand or by an older certvault): loading them"
            );
        }
        if scan.dated > 0 {
            tracing::info!(
                certificates = scan.dated,
                "weekly check of index entries against their records: loading them"
            );
        }
        if verify {
            // Shards whose every record is loaded this run need no version check.
            verified_at.retain(|(s, _, _)| !dated_shards.contains(s));
            for s in to_verify(&verified_at, now) {
                let stale = self
                    .verify_shard(layout, s, &buckets[&s], &needs_record)
                    .await?;
                self.journal.note_verified(s, now.unix_timestamp());
                scan.stale += stale.len();
                scan.load.extend(stale.iter().cloned());
                scan.unsettled.extend(stale);
            }
        }
        Ok(scan)
    }

    /// The settled names of shard `s` whose entry no longer matches the versions in the
    /// metadata of their record or spec.
    async fn verify_shard(
        &self,
        layout: Layout,
        s: u16,
        names: &[CertName],
        needs_record: &impl Fn(&Entry) -> bool,
    ) -> Result<Vec<CertName>, Error> {
        let doc = self.read_shard(layout, s).await?;
        let entries = &doc.shard.entries;
        let checked: Vec<(CertName, bool)> = futures::stream::iter(
            names
                .iter()
                .filter_map(|n| Some((n, entries.get(n)?)))
                .filter(|(_, e)| !needs_record(e)),
        )
        .map(|(n, e)| async move {
            let (cert_path, spec_path) = (
                Key::Cert(n).path(self.prefix()),
                Key::Spec(n).path(self.prefix()),
            );
            let (cert, spec) = futures::join!(
                self.kv().current_version(&cert_path),
                self.kv().current_version(&spec_path)
            );
            let fresh = match (cert, spec) {
                (Ok(Some((v, deleted))), Ok(spec)) => {
                    let spec = spec.map_or(0, |(v, d)| if d { 0 } else { v });
                    e.matches(v, spec) && e.deleted == deleted
                }
                // No record any more (destroyed): its entry is ignored, and dropped when
                // the shard is rebuilt. Errors: checked again next time.
                _ => true,
            };
            (n.clone(), fresh)
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
        let stale: Vec<CertName> = checked
            .into_iter()
            .filter(|(_, fresh)| !fresh)
            .map(|(n, _)| n)
            .collect();
        for n in &stale {
            tracing::warn!(cert = %n, "index entry is stale (the record or spec changed without certvault updating the index): reloading it");
        }
        tracing::debug!(
            shard = s,
            checked = names.len(),
            stale = stale.len(),
            "verified an index shard"
        );
        Ok(stale)
    }

    /// Write what this run noted: each touched document once, merged into what is stored,
    /// with check-and-set (a conflict re-reads and merges again). Returns how many
    /// documents were written. The layout is read again first: if another run grew it
    /// since this one read the index, the notes go into the new documents (and the
    /// shards this run verified, which were of the old layout, are not marked).
    pub async fn flush_index(&self, now: OffsetDateTime) -> Result<usize, Error> {
        let (notes, verified, scanned) = self.journal.take();
        if notes.is_empty() && verified.is_empty() {
            return Ok(0);
        }
        let mut written = 0;
        for _ in 0..4 {
            let layout = self.index_layout().await?.layout;
            let verified = if scanned.is_none_or(|l| l == layout) {
                verified.clone()
            } else {
                Default::default()
            };
            let mut by_shard: BTreeMap<u16, Vec<(CertName, Noted)>> = BTreeMap::new();
            for (name, noted) in &notes {
                by_shard
                    .entry(layout.shard_of(name.as_str()))
                    .or_default()
                    .push((name.clone(), noted.clone()));
            }
            for s in verified.keys() {
                by_shard.entry(*s).or_default();
            }
            let verified = &verified;
            let results: Vec<Result<Result<bool, LayoutChanged>, Error>> =
                futures::stream::iter(by_shard)
                    .map(|(s, notes)| async move {
                        self.flush_shard(layout, s, &notes, verified.get(&s), now, false)
                            .await
                    })
                    .buffer_unordered(PARALLEL)
                    .collect()
                    .await;
            let mut changed = false;
            for r in results {
                match r? {
                    Ok(w) => written += usize::from(w),
                    Err(LayoutChanged) => changed = true,
                }
            }
            if !changed {
                break;
            }
            tracing::debug!("the index layout changed while this run wrote it: writing again");
        }
        Ok(written)
    }

    /// Merge `notes` into document `s` of `layout`. On a conflict, the document is read and
    /// merged again; unless `moving` (the layout is being grown by this run), the layout is
    /// read too, and if it changed, nothing more is written here.
    async fn flush_shard(
        &self,
        layout: Layout,
        s: u16,
        notes: &[(CertName, Noted)],
        verified: Option<&Checked>,
        now: OffsetDateTime,
        moving: bool,
    ) -> Result<Result<bool, LayoutChanged>, Error> {
        for _ in 0..8 {
            let doc = self.read_shard(layout, s).await?;
            let mut shard = doc.shard;
            let before = shard.clone();
            shard.format = FORMAT;
            if doc.absent && moving {
                // Filled from a document of the smaller layout: its check times carry over.
                shard.verified_at = i64::MAX;
                shard.dated_at = Some(i64::MAX);
            } else if doc.absent {
                // A new document: its entries are all fresh from their records. Its date
                // checks are spread over the week, as a rebuild spreads them.
                shard.verified_at = now.unix_timestamp();
                shard.dated_at = Some(staggered(s, layout, now));
            } else {
                // Claims no check made are not carried on.
                let (versions, dates) = shard.checked_at(doc.written_at, now);
                shard.verified_at = versions;
                shard.dated_at = Some(dates);
            }
            if moving {
                // The document holds entries of several old documents: the oldest check
                // counts.
                if let Some(at) = verified.and_then(|c| c.versions) {
                    shard.verified_at = shard.verified_at.min(at);
                }
                if let Some(at) = verified.and_then(|c| c.dates) {
                    shard.dated_at = shard.dated_at.min(Some(at));
                }
            } else {
                if let Some(at) = verified.and_then(|c| c.versions) {
                    shard.verified_at = shard.verified_at.max(at);
                }
                if let Some(at) = verified.and_then(|c| c.dates) {
                    shard.dated_at = shard.dated_at.max(Some(at));
                }
            }
            for (name, noted) in notes {
                match merge(shard.entries.get(name), noted) {
                    Some(e) => shard.entries.insert(name.clone(), e),
                    None => shard.entries.remove(name),
                };
            }
            if shard == before && !doc.absent {
                return Ok(Ok(false));
            }
            if shard.entries.is_empty() && doc.absent {
                return Ok(Ok(false));
            }
            match self.save(Key::Index(layout, s), &shard, doc.expect).await {
                Ok(_) => return Ok(Ok(true)),
                Err(Error::Vault(
                    vault::Error::CasConflict { .. } | vault::Error::AlreadyExists { .. },
                )) => {
                    tracing::debug!(shard = s, "index document changed meanwhile: merging again");
                    if !moving && self.index_layout().await?.layout != layout {
                        return Ok(Err(LayoutChanged));
                    }
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        tracing::warn!(
            "{} kept changing while this run wrote it; the entries it missed are rebuilt by a later run",
            self.display(Key::Index(layout, s))
        );
        Ok(Ok(false))
    }

    /// Write document `s` of `layout` as exactly `shard` (a rebuild), over whatever is
    /// there; an empty one is deleted. Returns whether a document was there.
    pub async fn replace_shard(
        &self,
        layout: Layout,
        s: u16,
        shard: &Shard,
    ) -> Result<bool, Error> {
        for _ in 0..8 {
            let doc = self.read_shard(layout, s).await?;
            let there = !doc.absent || doc.written_at.is_some();
            if shard.entries.is_empty() {
                if there {
                    self.delete(Key::Index(layout, s)).await?;
                }
                return Ok(there);
            }
            match self.save(Key::Index(layout, s), shard, doc.expect).await {
                Ok(_) => return Ok(there),
                Err(Error::Vault(
                    vault::Error::CasConflict { .. } | vault::Error::AlreadyExists { .. },
                )) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Vault(vault::Error::CasConflict {
            path: self.display(Key::Index(layout, s)),
            expected: 0,
        }))
    }

    /// Document `s` of `layout` as stored (an empty one if absent or unusable).
    pub async fn load_shard(&self, layout: Layout, s: u16) -> Result<Shard, Error> {
        Ok(self.read_shard(layout, s).await?.shard)
    }

    /// Write `index/layout` over `stored` (a rebuild that chose `layout` for
    /// `certificates`).
    pub async fn save_layout(
        &self,
        stored: StoredLayout,
        layout: Layout,
        certificates: usize,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let (previous, expect) = (stored.layout, stored.expect);
        let record = LayoutRecord {
            schema: SCHEMA_VERSION,
            shards: layout.shards(),
            previous: previous.shards(),
            grown_at: now.unix_timestamp(),
            certificates: certificates as u64,
        };
        self.save(Key::IndexLayout, &record, expect).await?;
        Ok(())
    }
}
