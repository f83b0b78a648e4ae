//! What a run notes while it reads and writes records, for the renewal index: the facts
//! of each record it loaded or wrote ([`facts`]), specs and status documents it wrote,
//! certificates it retired, shards it verified. [`crate::store::Store::flush_index`]
//! writes them.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{Entry, Noted, Status};
use crate::model::{CertName, SCHEMA_VERSION};
use crate::records::{CertRecord, SpecRecord, StatusRecord};
use crate::renew::{due_now, renewal_point, Facts};
use crate::vault::{Expect, Versioned};

/// Flush early when this many certificates are noted (a first run over a large fleet).
pub const FLUSH_AT: usize = 20_000;

/// What this run learned, by certificate, and which shards it verified (and when).
#[derive(Default)]
pub struct Journal {
    notes: Mutex<BTreeMap<CertName, Noted>>,
    verified: Mutex<BTreeMap<u16, Checked>>,
    /// The layout the verified shard numbers are of (the one the run's scan read).
    layout: Mutex<Option<super::Layout>>,
}

/// When this run checked a shard's entries: their versions against the records' metadata,
/// and their dates against the records themselves (Unix seconds).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub versions: Option<i64>,
    pub dates: Option<i64>,
}

impl Journal {
    fn note(&self, name: &CertName, noted: Noted) {
        let mut notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        notes.entry(name.clone()).or_default().absorb(noted);
    }

    pub fn len(&self) -> usize {
        self.notes.lock().map(|n| n.len()).unwrap_or(0)
    }

    /// A record and its spec as loaded.
    pub fn note_loaded(
        &self,
        name: &CertName,
        entry: &crate::records::Entry,
        status: Option<&StatusRecord>,
    ) {
        let spec_version = entry.spec.as_ref().map_or(0, |s| s.version);
        let spec = entry.spec.as_ref().map(|s| &s.data);
        let mut facts = facts(&entry.cert, spec, spec_version);
        if let Some(s) = status {
            merge_status_ari(&mut facts, s);
        }
        facts.status = status.map(status_of);
        self.note(
            name,
            Noted {
                entry: Some(facts),
                ..Default::default()
            },
        );
    }

    /// A record whose latest version is deleted (`expect` carries that version).
    pub fn note_deleted(
        &self,
        name: &CertName,
        expect: Expect,
        spec: Option<&Versioned<SpecRecord>>,
    ) {
        let Expect::Version(version) = expect else {
            return;
        };
        let mut e = blank(version, spec.map_or(0, |s| s.version));
        e.deleted = true;
        self.note(
            name,
            Noted {
                entry: Some(e),
                ..Default::default()
            },
        );
    }

    /// A record this run wrote, at `version`, from the spec at `spec_version`.
    pub fn note_saved(
        &self,
        name: &CertName,
        record: &CertRecord,
        version: u64,
        spec_version: u64,
    ) {
        let cert = Versioned {
            data: record.clone(),
            version,
            written_at: None,
        };
        let spec = SpecRecord {
            schema: SCHEMA_VERSION,
            spec: record.spec.clone(),
        };
        self.note(
            name,
            Noted {
                entry: Some(facts(&cert, Some(&spec), spec_version)),
                from_spec: Some(record.spec.clone()),
                ..Default::default()
            },
        );
    }

    /// A spec this run wrote. When the record this run wrote was made from exactly this
    /// spec (`issue`), its entry now names this spec version; otherwise the entry is
    /// dropped at the flush (the renewal rule may have changed) and rebuilt by a later run.
    pub fn note_spec(&self, name: &CertName, version: u64, spec: &crate::model::Spec) {
        {
            let mut notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = notes.get_mut(name) {
                if n.from_spec.as_ref() == Some(spec) {
                    if let Some(e) = n.entry.as_mut() {
                        e.spec_version = version;
                        n.spec_written = None;
                        return;
                    }
                }
            }
        }
        self.note(
            name,
            Noted {
                spec_written: Some(version),
                ..Default::default()
            },
        );
    }

    pub fn note_status(&self, name: &CertName, status: &StatusRecord) {
        {
            let mut notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(e) = notes.get_mut(name).and_then(|n| n.entry.as_mut()) {
                merge_status_ari(e, status);
            }
        }
        self.note(
            name,
            Noted {
                status: Some(status_of(status)),
                ..Default::default()
            },
        );
    }

    pub fn note_removed(&self, name: &CertName) {
        self.note(
            name,
            Noted {
                removed: true,
                ..Default::default()
            },
        );
    }

    /// The scan reads the index in `layout`.
    pub fn use_layout(&self, layout: super::Layout) {
        *self.layout.lock().unwrap_or_else(|p| p.into_inner()) = Some(layout);
    }

    pub fn note_verified(&self, shard: u16, at: i64) {
        if let Ok(mut v) = self.verified.lock() {
            v.entry(shard).or_default().versions = Some(at);
        }
    }

    /// `shard` was read in an older format ([`super::FORMAT`]): the flush rewrites it.
    pub fn note_rewrite(&self, shard: u16) {
        if let Ok(mut v) = self.verified.lock() {
            v.entry(shard).or_default();
        }
    }

    /// Every entry of `shard` was checked against its record (the record was loaded).
    pub fn note_dated(&self, shard: u16, at: i64) {
        if let Ok(mut v) = self.verified.lock() {
            v.entry(shard).or_default().dates = Some(at);
        }
    }

    /// The spec version this run knows for `name` (written, or loaded with the record).
    pub fn spec_version(&self, name: &CertName) -> Option<u64> {
        let notes = self.notes.lock().ok()?;
        let n = notes.get(name)?;
        n.spec_written.or(n.entry.as_ref().map(|e| e.spec_version))
    }

    /// Forget what was noted (commands that only read: `list --verify`, `index rebuild`).
    pub fn discard(&self) {
        drop(self.take());
    }

    /// The notes, the verified shards, and the layout those shard numbers are of.
    pub(crate) fn take(&self) -> (BTreeMap<CertName, Noted>, Verified, Option<super::Layout>) {
        let notes = std::mem::take(&mut *self.notes.lock().unwrap_or_else(|p| p.into_inner()));
        let verified =
            std::mem::take(&mut *self.verified.lock().unwrap_or_else(|p| p.into_inner()));
        let layout = *self.layout.lock().unwrap_or_else(|p| p.into_inner());
        (notes, verified, layout)
    }
}

/// Shards verified this run, and when.
pub(crate) type Verified = BTreeMap<u16, Checked>;

impl Journal {}

/// The ARI state of an entry's certificate: its chosen time, and the next query at its
/// Retry-After (now when none is known).
fn apply_ari(e: &mut Entry, ari: &crate::ari::AriState) {
    e.ari_at = ari.chosen_at.map(|t| t.unix_timestamp());
    e.ari_check_at = Some(ari.retry_after.map_or(i64::MIN, |t| t.unix_timestamp()));
    e.ari = Some(super::row::ari_kept(ari));
}

/// The record's ARI state in `e`, with the newer fetch timing of the status document (which
/// keeps it when only that changed).
fn merge_status_ari(e: &mut Entry, status: &StatusRecord) {
    if let Some(ari) = e.ari.as_ref() {
        let merged = ari.with_timing_of(status.ari.as_ref());
        apply_ari(e, &merged);
    }
}

/// What the index keeps of a status document.
pub fn status_of(status: &StatusRecord) -> Status {
    Status {
        last_result: status.last_result.clone(),
        failures: status.failures,
        last_error: status.last_error.clone(),
        dns_leftovers: status.dns_leftovers,
    }
}

/// An entry with only its versions set.
pub fn blank(version: u64, spec_version: u64) -> Entry {
    Entry {
        version,
        spec_version,
        deleted: false,
        not_before: 0,
        not_after: 0,
        renew_at: 0,
        ari_at: None,
        ari_check_at: None,
        basis: None,
        due_now: None,
        domains: Vec::new(),
        key_type: String::new(),
        serial: String::new(),
        account: String::new(),
        profile: None,
        ari: None,
        status: None,
    }
}

/// The index entry of a record and its spec (`None`: not migrated yet), with no clock:
/// what makes it due whatever the time (`due_now`), and the lifetime rule's renewal point.
pub fn facts(cert: &Versioned<CertRecord>, spec: Option<&SpecRecord>, spec_version: u64) -> Entry {
    let record = &cert.data;
    let issued = &record.issued;
    let mut e = blank(cert.version, spec_version);
    e.not_before = issued.not_before.unix_timestamp();
    e.not_after = issued.not_after.unix_timestamp();
    e.serial = issued.serial.clone();
    // ARI facts about this very certificate (a state for an earlier serial is stale). With
    // none, the lifetime rule decides when the record is next read.
    if let Some(ari) = record
        .facts
        .ari
        .as_ref()
        .filter(|a| a.serial == issued.serial)
    {
        apply_ari(&mut e, ari);
    }
    let Some(spec) = spec.map(|s| &s.spec) else {
        e.due_now = Some("its spec is not migrated yet (`certvault migrate`)".into());
        return e;
    };
    e.domains = spec.domains.iter().map(|d| d.to_string()).collect();
    e.key_type = spec.key_type.to_string();
    e.profile = spec.profile.clone();
    e.account = spec.account.clone();
    let inspection = crate::x509::inspect(&issued.cert, &issued.chain, issued.privkey.expose());
    let Some(current) = inspection.current else {
        e.due_now = Some(inspection.damage.unwrap_or_else(|| "unreadable".into()));
        return e;
    };
    e.not_before = current.not_before.unix_timestamp();
    e.not_after = current.not_after.unix_timestamp();
    let facts = Facts {
        wanted: spec,
        current: Some(&current),
        damage: inspection.damage.as_deref(),
        force: false,
        ari: None,
        revoked_at: record.facts.revoked_at,
    };
    // Only the clock-free rules are decided here; the schedule is the entry's (see
    // `Entry::schedule`), with the ARI window it keeps.
    let (renew_at, basis) = renewal_point(&current, spec.renew_before.as_ref());
    e.renew_at = renew_at.unix_timestamp();
    e.basis = Some(basis);
    if let Err(reason) = due_now(&facts) {
        e.due_now = Some(reason.to_string());
    }
    e
}
