//! The Vault side of the renewal index: what a run notes while it reads and writes records
//! ([`Journal`]), reading the index to find what to load ([`Store::scan_index`]), checking
//! a rotating slice of entries against the records' metadata, and writing each touched
//! document once per run with check-and-set, re-reading and merging on a conflict
//! ([`Store::flush_index`]).

use std::collections::BTreeMap;

use futures::StreamExt;
use time::OffsetDateTime;

use crate::index::journal::Checked;
use crate::index::{
    date_check_due, merge, shard_of, staggered, to_verify, Entry, Noted, Part, Shard,
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
    async fn read_shard(&self, shard: u16) -> Result<ReadShard, Error> {
        let key = Key::Index(shard);
        tracing::debug!(target: "certvault::reads", "read {}", self.display(key));
        let read = self.kv().read(&key.path(self.prefix())).await?;
        let Some(doc) = read.doc else {
            return Ok(ReadShard {
                shard: Shard::empty(shard, i64::MIN),
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
                .and_then(|s| s.problem(shard).map_or(Ok(s), Err)),
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
                    shard: Shard::empty(shard, i64::MIN),
                    expect: read.expect,
                    absent: true,
                    written_at,
                })
            }
        }
    }

    /// Names of `part`, grouped by index document, in name order within each.
    pub async fn names_by_shard(&self, part: Part) -> Result<BTreeMap<u16, Vec<CertName>>, Error> {
        let mut buckets: BTreeMap<u16, Vec<CertName>> = BTreeMap::new();
        for name in self.list_certs().await? {
            if part.contains(name.as_str()) {
                buckets
                    .entry(shard_of(name.as_str()))
                    .or_default()
                    .push(name);
            }
        }
        Ok(buckets)
    }

    /// Read the index documents that hold `buckets` (streamed, [`PARALLEL`] at a time) and
    /// sort each certificate: `settled(name, entry)` for those whose entry is good and
    /// does not need the record (`needs_record` false), the rest into [`Scan::load`]. With
    /// `verify`, the shards due for it get their versions checked against the metadata of
    /// the records and specs: a stale entry's name goes to `load` and to
    /// [`Scan::unsettled`].
    pub async fn scan_index(
        &self,
        buckets: &BTreeMap<u16, Vec<CertName>>,
        now: OffsetDateTime,
        verify: bool,
        needs_record: impl Fn(&Entry) -> bool,
        mut settled: impl FnMut(&CertName, &Entry),
    ) -> Result<Scan, Error> {
        let mut scan = Scan::default();
        let mut verified_at: Vec<(u16, i64, usize)> = Vec::new();
        let (mut absent, mut read) = (0usize, 0usize);
        let mut dated_shards: Vec<u16> = Vec::new();
        let mut docs = futures::stream::iter(buckets.keys().copied())
            .map(|s| async move { (s, self.read_shard(s).await) })
            .buffer_unordered(PARALLEL);
        while let Some((s, doc)) = docs.next().await {
            let doc = doc?;
            read += 1;
            // The index is renew-writable: its entries may only make a run look at a
            // record sooner. Once a week (claims of a later check than Vault's own write
            // time do not count) every entry of a shard is checked against its record.
            let (versions_at, dates_at) = doc.shard.checked_at(doc.written_at, now);
            let date_check = verify && !doc.absent && date_check_due(dates_at, now);
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
                let stale = self.verify_shard(s, &buckets[&s], &needs_record).await?;
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
        s: u16,
        names: &[CertName],
        needs_record: &impl Fn(&Entry) -> bool,
    ) -> Result<Vec<CertName>, Error> {
        let doc = self.read_shard(s).await?;
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
    /// documents were written.
    pub async fn flush_index(&self, now: OffsetDateTime) -> Result<usize, Error> {
        let (notes, verified) = self.journal.take();
        if notes.is_empty() && verified.is_empty() {
            return Ok(0);
        }
        let mut by_shard: BTreeMap<u16, Vec<(CertName, Noted)>> = BTreeMap::new();
        for (name, noted) in notes {
            by_shard
                .entry(shard_of(name.as_str()))
                .or_default()
                .push((name, noted));
        }
        for s in verified.keys() {
            by_shard.entry(*s).or_default();
        }
        let verified = &verified;
        let results: Vec<Result<bool, Error>> =
            futures::stream::iter(by_shard)
                .map(|(s, notes)| async move {
                    self.flush_shard(s, &notes, verified.get(&s), now).await
                })
                .buffer_unordered(PARALLEL)
                .collect()
                .await;
        let mut written = 0;
        for r in results {
            written += usize::from(r?);
        }
        Ok(written)
    }

    async fn flush_shard(
        &self,
        s: u16,
        notes: &[(CertName, Noted)],
        verified: Option<&Checked>,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        for _ in 0..8 {
            let doc = self.read_shard(s).await?;
            let mut shard = doc.shard;
            let before = shard.clone();
            if doc.absent {
                // A new document: its entries are all fresh from their records. Its date
                // checks are spread over the week, as a rebuild spreads them.
                shard.verified_at = now.unix_timestamp();
                shard.dated_at = Some(staggered(s, now));
            } else {
                // Claims no check made are not carried on.
                let (versions, dates) = shard.checked_at(doc.written_at, now);
                shard.verified_at = versions;
                shard.dated_at = Some(dates);
            }
            if let Some(at) = verified.and_then(|c| c.versions) {
                shard.verified_at = shard.verified_at.max(at);
            }
            if let Some(at) = verified.and_then(|c| c.dates) {
                shard.dated_at = shard.dated_at.max(Some(at));
            }
            for (name, noted) in notes {
                match merge(shard.entries.get(name), noted) {
                    Some(e) => shard.entries.insert(name.clone(), e),
                    None => shard.entries.remove(name),
                };
            }
            if shard == before && !doc.absent {
                return Ok(false);
            }
            if shard.entries.is_empty() && doc.absent {
                return Ok(false);
            }
            match self.save(Key::Index(s), &shard, doc.expect).await {
                Ok(_) => return Ok(true),
                Err(Error::Vault(
                    vault::Error::CasConflict { .. } | vault::Error::AlreadyExists { .. },
                )) => {
                    tracing::debug!(shard = s, "index document changed meanwhile: merging again");
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        tracing::warn!(
            "{} kept changing while this run wrote it; the entries it missed are rebuilt by a later run",
            self.display(Key::Index(s))
        );
        Ok(false)
    }

    /// Write index document `s` as exactly `shard` (a rebuild), over whatever is there.
    pub async fn replace_shard(&self, s: u16, shard: &Shard) -> Result<(), Error> {
        for _ in 0..8 {
            let doc = self.read_shard(s).await?;
            if shard.entries.is_empty() {
                self.delete(Key::Index(s)).await?;
                return Ok(());
            }
            match self.save(Key::Index(s), shard, doc.expect).await {
                Ok(_) => return Ok(()),
                Err(Error::Vault(
                    vault::Error::CasConflict { .. } | vault::Error::AlreadyExists { .. },
                )) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Vault(vault::Error::CasConflict {
            path: self.display(Key::Index(s)),
            expected: 0,
        }))
    }

    /// The index document of shard `s` as stored (an empty one if absent or unusable).
    pub async fn load_shard(&self, s: u16) -> Result<Shard, Error> {
        Ok(self.read_shard(s).await?.shard)
    }
}
