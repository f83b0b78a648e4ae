//! The renewal index: what `renew` and `list` need to know about every certificate without
//! reading its record, kept in Vault as [`SHARDS`] documents under `<prefix>/index/`.
//!
//! **The record stays the source of truth.** An entry is a cache of facts computed from a
//! record (`certs/<NAME>`) and its spec (`specs/<NAME>`) at given KV versions. A run loads a
//! record only when its entry says it is due, or the entry is missing, or it is stale (the
//! record's or the spec's version differs from the one the entry was made from). Anything
//! lost from the index is found again: a name in the LIST of `certs/` without an entry is
//! loaded and its entry written.
//!
//! **The hash.** A certificate's hash is the first 8 bytes of SHA-256 of its name (the UTF-8
//! bytes of `NAME` in `certs/NAME`), read as a big-endian unsigned 64-bit integer. Its index
//! document is number `hash mod S`, where S is the layout's document count: 256
//! (`index/000` … `index/255`, the only layout before the index could grow) or a larger power
//! of two named in `index/layout` (`index/<S>/<n>`, e.g. `index/4096/0017`). `renew --shard
//! I/N` handles the names whose hash mod N is I.
//!
//! **Growing.** A document must stay well below Raft's 1 MiB entry limit, so the layout
//! doubles (as often as needed) when the fleet has more than [`GROW_ABOVE`] certificates per
//! document on average; see [`Layout::wanted`]. It never shrinks.
//!
//! Nothing here does I/O or reads the clock; [`sync`] does the Vault side.

pub mod journal;
pub mod row;

pub use journal::{facts, Journal};

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::model::{CertName, InvalidInput, SCHEMA_VERSION};
use crate::renew::{Basis, Schedule};

/// How many index documents the first layout has (and every store had before the index
/// could grow): `index/000` … `index/255`.
pub const SHARDS: u16 = 256;

/// The largest layout: 65,536 documents (16 million certificates at [`GROW_ABOVE`]).
pub const MAX_SHARDS: u32 = 65_536;

/// A run grows the layout when the fleet has more certificates than this per document on
/// average (see [`crate::defaults::INDEX_GROW_ABOVE`]). Growing doubles the count until the
/// average is at most half this.
pub const GROW_ABOVE: u64 = crate::defaults::INDEX_GROW_ABOVE;

/// How many index documents there are, and so which one holds a name. Absent
/// `index/layout` means [`Layout::FIRST`]. An absent document is an empty shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Layout {
    shards: u32,
}

impl Layout {
    /// The layout of every store before the index could grow.
    pub const FIRST: Layout = Layout {
        shards: SHARDS as u32,
    };

    /// A layout of `shards` documents: a power of two from 256 to [`MAX_SHARDS`].
    pub fn new(shards: u32) -> Option<Layout> {
        (shards.is_power_of_two() && (u32::from(SHARDS)..=MAX_SHARDS).contains(&shards))
            .then_some(Layout { shards })
    }

    pub fn shards(self) -> u32 {
        self.shards
    }

    /// The document numbers, `0..shards`.
    pub fn all(self) -> impl Iterator<Item = u16> {
        (0..self.shards).map(|s| s as u16)
    }

    /// The document that holds `name`.
    pub fn shard_of(self, name: &str) -> u16 {
        (hash(name) % u64::from(self.shards)) as u16
    }

    /// `names` of `part`, grouped by the document that holds each, in the order given
    /// within each.
    pub fn group(
        self,
        names: impl IntoIterator<Item = CertName>,
        part: Part,
    ) -> BTreeMap<u16, Vec<CertName>> {
        let mut out: BTreeMap<u16, Vec<CertName>> = BTreeMap::new();
        for name in names {
            if part.contains(name.as_str()) {
                out.entry(self.shard_of(name.as_str()))
                    .or_default()
                    .push(name);
            }
        }
        out
    }

    /// The layout a fleet of `certificates` needs, starting from this one: this one while
    /// the average stays at most `grow_above` a document ([`GROW_ABOVE`] by default), else
    /// doubled until it is at most half that (capped at [`MAX_SHARDS`]). Never smaller
    /// than this one.
    pub fn wanted(self, certificates: usize, grow_above: u64) -> Layout {
        let n = certificates as u64;
        if n <= u64::from(self.shards) * grow_above {
            return self;
        }
        let mut shards = self.shards;
        while u64::from(shards) * (grow_above / 2).max(1) < n && shards < MAX_SHARDS {
            shards *= 2;
        }
        Layout { shards }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} documents", self.shards)
    }
}

/// `index/layout`: how many documents the index has, written by the run that grew it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutRecord {
    pub schema: u32,
    pub shards: u32,
    /// The layout it replaced (its documents are left empty).
    #[serde(default)]
    pub previous: u32,
    /// When (Unix seconds), and for how many certificates.
    #[serde(default)]
    pub grown_at: i64,
    #[serde(default)]
    pub certificates: u64,
}

impl LayoutRecord {
    /// The layout it names, or why it cannot be used.
    pub fn layout(&self) -> Result<Layout, String> {
        Layout::new(self.shards).ok_or_else(|| {
            format!(
                "shards is {}; it must be a power of two from {SHARDS} to {MAX_SHARDS}",
                self.shards
            )
        })
    }
}

/// How long a shard's entries may go without their versions being checked against the
/// records' metadata (see [`to_verify`]).
pub const VERIFY_EVERY: time::Duration = time::Duration::days(7);

/// How long a shard's entries may go without their dates being checked against the
/// records themselves (see [`to_date_check`]): the longest a forged entry (the renew role
/// can write the index) can hide a due certificate after it was written.
pub const DATE_CHECK_EVERY: time::Duration = time::Duration::days(7);

/// How far a claimed check time may be ahead of Vault's own time of the write that
/// stored it (clock skew between certvault and Vault) before the claim is ignored.
pub const CLAIM_SKEW: i64 = 300;

/// A run checks the versions of at least this many entries (whole shards, the ones checked
/// longest ago first): a fleet this small is checked completely by every run.
pub const VERIFY_AT_LEAST: usize = 1024;

/// The stable hash of a certificate name (see the module documentation).
pub fn hash(name: &str) -> u64 {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, name.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    u64::from_be_bytes(first)
}

/// `--shard I/N`: this run handles the names whose hash mod N is I (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub index: u64,
    pub count: u64,
}

impl Part {
    pub const ALL: Part = Part { index: 0, count: 1 };

    pub fn contains(&self, name: &str) -> bool {
        hash(name) % self.count == self.index
    }

    /// Whether index document `shard` of `layout` can hold names of this part. When N
    /// divides the document count S, a part needs only S/N documents; otherwise every one.
    pub fn touches(&self, shard: u16, layout: Layout) -> bool {
        u64::from(layout.shards) % self.count != 0 || u64::from(shard) % self.count == self.index
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Part {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| InvalidInput {
            what: "shard",
            value: s.into(),
            reason,
        };
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| bad("use I/N, e.g. 0/4: shard I (0-based) of N"))?;
        let parse = |t: &str| t.trim().parse::<u64>().ok();
        let (Some(index), Some(count)) = (parse(i), parse(n)) else {
            return Err(bad("use I/N with whole numbers, e.g. 0/4"));
        };
        if count == 0 || count > 65536 {
            return Err(bad("N must be between 1 and 65536"));
        }
        if index >= count {
            return Err(bad(
                "I is 0-based and must be below N (shards 0/N .. N-1/N)",
            ));
        }
        Ok(Part { index, count })
    }
}

/// One certificate in the index. Times are Unix seconds.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Entry {
    /// The KV version of `certs/<NAME>` these facts were computed from.
    pub version: u64,
    /// The KV version of `specs/<NAME>` (0: no spec document).
    pub spec_version: u64,
    /// The record's latest version is deleted: nothing to renew.
    #[serde(skip_serializing_if = "is_false")]
    pub deleted: bool,
    pub not_before: i64,
    pub not_after: i64,
    /// When the renewal rule makes it due (`renew_before` or the lifetime fraction).
    pub renew_at: i64,
    /// The ARI chosen time (`ari.chosen_at` of the record), when there is one for this
    /// certificate.
    pub ari_at: Option<i64>,
    /// When the CA may be asked about ARI again (`ari.retry_after` of the record).
    pub ari_check_at: Option<i64>,
    /// Why `renew_at` is where it is (the rule), kept as the text `list` prints ("" when
    /// due whatever the time).
    #[serialize_always]
    #[serde(with = "basis_text")]
    pub basis: Option<Basis>,
    /// Due whatever the time, and why (damaged, names or key type changed, not migrated).
    pub due_now: Option<String>,
    pub domains: Vec<String>,
    pub key_type: String,
    pub serial: String,
    /// The ACME account the spec orders with.
    pub account: String,
    /// The CA profile the spec orders.
    pub profile: Option<String>,
    /// The record's ARI state for this certificate (`list` reads such records itself).
    pub ari: Option<crate::ari::AriState>,
    /// From `status/<NAME>` when known: the last attempt, failures in a row, last error.
    pub status: Option<Status>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The key-free facts of `status/<NAME>` that `list` shows.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub last_result: String,
    #[serde(default)]
    pub failures: u32,
    #[serde(default)]
    pub last_error: Option<String>,
    /// DNS-01 values left in DNS, for the next run to remove (the record is then read).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dns_leftovers: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Entry {
    /// The entry's schedule: the rule it was built with (`renew_before` or the lifetime
    /// fraction) with the ARI window it holds for this certificate over it, by the one rule
    /// [`Schedule::with_ari`] that `decide` uses.
    pub fn schedule(&self) -> Schedule {
        let at =
            |t: i64| OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let lifetime = Schedule {
            renew_at: at(self.renew_at),
            basis: self
                .basis
                .clone()
                .unwrap_or(Basis::LifetimeFraction { short: false }),
            not_after: at(self.not_after),
        };
        lifetime.with_ari(at(self.not_before), self.ari.as_ref())
    }

    /// The first moment at which a run must look at the record: the renewal point, the ARI
    /// chosen time, the next ARI check, expiry. `i64::MIN` when due now whatever the time.
    pub fn look_at(&self) -> i64 {
        if self.due_now.is_some() {
            return i64::MIN;
        }
        [
            Some(self.renew_at),
            Some(self.schedule().renew_at.unix_timestamp()),
            self.ari_at,
            self.ari_check_at,
            Some(self.not_after),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(i64::MIN)
    }

    /// Whether a run at `now` must load the record.
    pub fn due(&self, now: OffsetDateTime) -> bool {
        !self.deleted && (now.unix_timestamp() >= self.look_at() || self.has_leftovers())
    }

    /// Whether DNS-01 values were left in DNS for a run to remove.
    pub fn has_leftovers(&self) -> bool {
        self.status.as_ref().is_some_and(|s| s.dns_leftovers > 0)
    }

    /// Whether this entry still describes the record and spec at these versions.
    pub fn matches(&self, version: u64, spec_version: u64) -> bool {
        self.version == version && self.spec_version == spec_version
    }
}

/// How index documents store their entries: 2, rows ([`row`]); documents without a
/// `format` are 1, objects with field names. Every document is written in this format; one
/// read in an older one is rewritten by the run that read it (if it may write the index).
pub const FORMAT: u32 = 2;

/// One index document, `index/NNN`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shard {
    pub schema: u32,
    /// The format its entries were read in; always written as [`FORMAT`].
    #[serde(default = "format_one", serialize_with = "format_now")]
    pub format: u32,
    /// Which shard this is, and of how many (a document with other numbers is ignored).
    pub shard: u16,
    pub of: u32,
    /// When the entries' versions were last checked against the records' metadata.
    pub verified_at: i64,
    /// When the entries' dates were last checked against the records (every record of
    /// the shard loaded); absent in documents of older versions (then `verified_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dated_at: Option<i64>,
    /// Stored as one JSON text (a string holding the object name → entry): Vault refuses
    /// request bodies with many JSON strings ("high complexity"), and a shard of a large
    /// fleet has hundreds of entries of a dozen fields each.
    #[serde(with = "packed")]
    pub entries: BTreeMap<CertName, Entry>,
}

fn format_one() -> u32 {
    1
}

fn format_now<S: serde::Serializer>(_: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u32(FORMAT)
}

/// A basis as its text, "" for none: the stored form of earlier versions.
mod basis_text {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    use crate::renew::Basis;

    pub fn serialize<S: Serializer>(b: &Option<Basis>, s: S) -> Result<S::Ok, S::Error> {
        match b {
            Some(b) => s.collect_str(b),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Basis>, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(D::Error::custom)
    }
}

/// The entries of a shard as one JSON text of an object name → entry, each entry a
/// [`row::Row`] (format 1 entries, objects, are read too; so is the object not packed in
/// a text).
mod packed {
    use std::collections::BTreeMap;

    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    use super::row::{Row, Stored};
    use super::Entry;
    use crate::model::CertName;

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<CertName, Entry>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let rows: BTreeMap<&CertName, Row<'_>> = m.iter().map(|(n, e)| (n, Row(e))).collect();
        let text = serde_json::to_string(&rows).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<CertName, Entry>, D::Error> {
        let stored: BTreeMap<CertName, Stored> = match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(text) => {
                serde_json::from_str(&text).map_err(D::Error::custom)?
            }
            other => serde_json::from_value(other).map_err(D::Error::custom)?,
        };
        Ok(stored.into_iter().map(|(n, e)| (n, e.0)).collect())
    }
}

impl Shard {
    pub fn empty(shard: u16, layout: Layout, verified_at: i64) -> Self {
        Shard {
            schema: SCHEMA_VERSION,
            format: FORMAT,
            shard,
            of: layout.shards,
            verified_at,
            dated_at: Some(verified_at),
            entries: BTreeMap::new(),
        }
    }

    /// The check times this document claims, as far as they can be believed: a time
    /// later than Vault's own time of the write that stored the document (`written_at`,
    /// give or take [`CLAIM_SKEW`]) or than `now` was not written by a check, and counts
    /// as never checked. (versions, dates)
    pub fn checked_at(&self, written_at: Option<i64>, now: OffsetDateTime) -> (i64, i64) {
        let limit = written_at
            .unwrap_or(i64::MAX)
            .min(now.unix_timestamp())
            .saturating_add(CLAIM_SKEW);
        let believe = |t: i64| if t > limit { i64::MIN } else { t };
        (
            believe(self.verified_at),
            believe(self.dated_at.unwrap_or(self.verified_at)),
        )
    }

    /// Why a document read as document `shard` of `layout` cannot be used, if it cannot.
    pub fn problem(&self, shard: u16, layout: Layout) -> Option<String> {
        if self.shard != shard || self.of != layout.shards {
            return Some(format!(
                "it says shard {} of {}, expected {shard} of {}",
                self.shard, self.of, layout.shards
            ));
        }
        if let Some(wrong) = self
            .entries
            .keys()
            .find(|n| layout.shard_of(n.as_str()) != shard)
        {
            return Some(format!("{wrong} does not belong in it"));
        }
        None
    }
}

/// What a run learned about one certificate, to be merged into its shard.
#[derive(Debug, Clone, Default)]
pub struct Noted {
    /// Facts computed from the record (and the spec at `spec_version` inside).
    pub entry: Option<Entry>,
    /// The spec was written at this version by this run (`issue`, `edit`).
    pub spec_written: Option<u64>,
    /// The status document was written.
    pub status: Option<Status>,
    /// The certificate was retired (`certvault delete`): drop the entry.
    pub removed: bool,
    /// The spec `entry` was computed from, when this run wrote the record (so a spec this
    /// run writes afterwards with the same content completes the entry).
    pub from_spec: Option<crate::model::Spec>,
}

impl Noted {
    /// Fold a later note about the same certificate into this one.
    pub fn absorb(&mut self, later: Noted) {
        if later.entry.is_some() {
            self.from_spec = later.from_spec.clone();
        }
        if let Some(e) = later.entry {
            let keep_status = e.status.is_none();
            let old_status = self.entry.take().and_then(|o| o.status);
            let mut e = e;
            if keep_status {
                e.status = old_status;
            }
            self.entry = Some(e);
        }
        if later.spec_written.is_some() {
            self.spec_written = later.spec_written;
        }
        if later.status.is_some() {
            self.status = later.status;
        }
        self.removed |= later.removed;
    }
}

/// Merge a run's note into the stored entry of the same name; `None` drops the entry (the
/// next run that needs it loads the record). Never replaces facts of a newer record version
/// with older ones, so two runs flushing in any order converge.
pub fn merge(stored: Option<&Entry>, noted: &Noted) -> Option<Entry> {
    if noted.removed {
        return None;
    }
    let mut out = match (&noted.entry, stored) {
        (Some(new), Some(old))
            if old.version > new.version || old.spec_version > new.spec_version =>
        {
            // Another run saw a newer record or spec: its entry wins if it is whole.
            if old.version >= new.version && old.spec_version >= new.spec_version {
                old.clone()
            } else {
                return None;
            }
        }
        (Some(new), old) => {
            let mut e = new.clone();
            if e.status.is_none() && old.is_some_and(|o| o.version == e.version) {
                e.status = old.and_then(|o| o.status.clone());
            }
            e
        }
        (None, Some(old)) => old.clone(),
        (None, None) => return None,
    };
    if let Some(v) = noted.spec_written {
        if v != out.spec_version {
            // A new spec changes the renewal rule: recompute from the record next time.
            return None;
        }
    }
    if let Some(s) = &noted.status {
        out.status = Some(s.clone());
    }
    Some(out)
}

/// Which of the shards read this run get their versions checked against the records'
/// metadata: every one not verified for [`VERIFY_EVERY`], and then the ones verified
/// longest ago until they hold at least [`VERIFY_AT_LEAST`] entries (at least one shard).
/// `verified` is (shard, verified_at, entries). A new shard counts as verified when written.
pub fn to_verify(verified: &[(u16, i64, usize)], now: OffsetDateTime) -> Vec<u16> {
    let limit = (now - VERIFY_EVERY).unix_timestamp();
    let mut by_age: Vec<&(u16, i64, usize)> = verified.iter().collect();
    by_age.sort_by_key(|(s, at, _)| (*at, *s));
    let mut out = Vec::new();
    let mut entries = 0;
    for (s, at, n) in by_age {
        if *at <= limit || out.is_empty() || entries < VERIFY_AT_LEAST {
            out.push(*s);
            entries += n;
        }
    }
    out.sort_unstable();
    out
}

/// Whether a shard date-checked at `dated_at` gets every entry's dates checked against its
/// record this run (the record loaded as if due): after [`DATE_CHECK_EVERY`].
pub fn date_check_due(dated_at: i64, now: OffsetDateTime) -> bool {
    dated_at <= (now - DATE_CHECK_EVERY).unix_timestamp()
}

/// The `verified_at` a rebuild gives shard `shard`: spread over the last [`VERIFY_EVERY`],
/// so that afterwards about the same number of shards comes due for checking each day
/// instead of all of them at once.
pub fn staggered(shard: u16, layout: Layout, now: OffsetDateTime) -> i64 {
    let step = VERIFY_EVERY.whole_seconds() / i64::from(layout.shards);
    now.unix_timestamp() - i64::from(shard) * step
}

#[cfg(test)]
mod tests;
