//! How an index entry is stored since index format 2: one JSON array per certificate, its
//! fields by position, instead of an object that repeats every field name.
//!
//! The field names were about half of the index (an entry of the benchmark took 370 bytes
//! as stored, 189 as a row), and every run that reads the index makes Vault decode and
//! encode all of it: about 480 MiB at a million certificates in format 1. The order puts the fields every entry
//! has first; the ones most entries lack come last and are left out when they and all
//! after them are empty:
//!
//! | # | field | | # | field |
//! |---|---|---|---|---|
//! | 0 | `version` | | 9 | `account` |
//! | 1 | `spec_version` | | 10 | `status`: `[last_result, failures, last_error, dns_leftovers]` |
//! | 2 | `not_before` | | 11 | `due_now` |
//! | 3 | `not_after` | | 12 | `deleted` (0 or 1) |
//! | 4 | `renew_at` | | 13 | `ari_at` |
//! | 5 | `basis` (a code, below; "" for none) | | 14 | `ari_check_at` |
//! | 6 | `domains` | | 15 | `profile` |
//! | 7 | `key_type` | | 16 | `ari`: `[window_start, window_end, chosen_at, retry_after, fetched_at, explanation_url, failures, last_failure_at, last_error]` |
//! | 8 | `serial` | | | |
//!
//! The basis codes: `L` 1/3 of the lifetime left, `H` 1/2 (short-lived), `R<d>`
//! `renew_before` d, `T<d>` / `U<d>` `renew_before` d not shorter than the lifetime so 1/3 /
//! 1/2 applies, `A` the ARI window, `S` the safety net (the text `list` prints is read too).
//!
//! Times are Unix seconds; the ARI state's are kept to the whole second (its serial is the
//! entry's own). A row may end early (the rest are empty) or go on (fields of a later
//! format, ignored). An entry stored as an object (format 1) is read as before.

use std::fmt;

use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use super::{Entry, Status};
use crate::ari::AriState;
use crate::model::HumanDuration;
use crate::renew::Basis;

/// An entry written as a row.
pub struct Row<'a>(pub &'a Entry);

/// An entry read from a row or from an object.
pub struct Stored(pub Entry);

/// How many fields every row has (0 ..= 9); the rest only up to the last non-empty one.
const ALWAYS: usize = 10;

impl Serialize for Row<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let empty = [
            e.status.is_none(),
            e.due_now.is_none(),
            !e.deleted,
            e.ari_at.is_none(),
            e.ari_check_at.is_none(),
            e.profile.is_none(),
            e.ari.is_none(),
        ];
        let len = ALWAYS + empty.iter().rposition(|empty| !empty).map_or(0, |i| i + 1);
        let mut row = s.serialize_seq(Some(len))?;
        row.serialize_element(&e.version)?;
        row.serialize_element(&e.spec_version)?;
        row.serialize_element(&e.not_before)?;
        row.serialize_element(&e.not_after)?;
        row.serialize_element(&e.renew_at)?;
        row.serialize_element(&e.basis.as_ref().map(code).unwrap_or_default())?;
        row.serialize_element(&e.domains)?;
        row.serialize_element(&e.key_type)?;
        row.serialize_element(&e.serial)?;
        row.serialize_element(&e.account)?;
        let more = len - ALWAYS;
        if more > 0 {
            row.serialize_element(&e.status.as_ref().map(status_row))?;
        }
        if more > 1 {
            row.serialize_element(&e.due_now)?;
        }
        if more > 2 {
            row.serialize_element(&u8::from(e.deleted))?;
        }
        if more > 3 {
            row.serialize_element(&e.ari_at)?;
        }
        if more > 4 {
            row.serialize_element(&e.ari_check_at)?;
        }
        if more > 5 {
            row.serialize_element(&e.profile)?;
        }
        if more > 6 {
            row.serialize_element(&e.ari.as_ref().map(ari_row))?;
        }
        row.end()
    }
}

/// A basis as its row code (see the module documentation).
fn code(b: &Basis) -> String {
    match b {
        Basis::LifetimeFraction { short: false } => "L".into(),
        Basis::LifetimeFraction { short: true } => "H".into(),
        Basis::RenewBefore(d) => format!("R{d}"),
        Basis::RenewBeforeTooLong {
            renew_before,
            short,
        } => format!("{}{renew_before}", if *short { 'U' } else { 'T' }),
        Basis::Ari => "A".into(),
        Basis::SafetyNet => "S".into(),
    }
}

fn from_code(text: &str) -> Result<Basis, String> {
    let duration = |d: &str| d.parse::<HumanDuration>().ok();
    let (first, rest) = text.split_at(text.chars().next().map_or(0, char::len_utf8));
    let basis = match (first, rest) {
        ("L", "") => Some(Basis::LifetimeFraction { short: false }),
        ("H", "") => Some(Basis::LifetimeFraction { short: true }),
        ("A", "") => Some(Basis::Ari),
        ("S", "") => Some(Basis::SafetyNet),
        ("R", d) => duration(d).map(Basis::RenewBefore),
        ("T" | "U", d) => duration(d).map(|renew_before| Basis::RenewBeforeTooLong {
            renew_before,
            short: first == "U",
        }),
        _ => None,
    };
    basis.map_or_else(|| text.parse(), Ok)
}

type StatusRow<'a> = (&'a str, u32, Option<&'a str>, u32);

fn status_row(s: &Status) -> StatusRow<'_> {
    (
        &s.last_result,
        s.failures,
        s.last_error.as_deref(),
        s.dns_leftovers,
    )
}

/// The ARI state's fields in row order, times in Unix seconds.
type AriRow<'a> = (
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<&'a str>,
    u32,
    Option<i64>,
    Option<&'a str>,
);

fn ari_row(a: &AriState) -> AriRow<'_> {
    let secs = |t: Option<OffsetDateTime>| t.map(OffsetDateTime::unix_timestamp);
    (
        secs(a.window_start),
        secs(a.window_end),
        secs(a.chosen_at),
        secs(a.retry_after),
        secs(a.fetched_at),
        a.explanation_url.as_deref(),
        a.failures,
        secs(a.last_failure_at),
        a.last_error.as_deref(),
    )
}

/// The ARI state as the index keeps it: what [`Row`] writes and reads back (whole
/// seconds). Entries are built through this, so an entry made from a record equals the
/// same entry read from the index.
pub fn ari_kept(a: &AriState) -> AriState {
    let whole = |t: Option<OffsetDateTime>| t.map(|t| t.replace_nanosecond(0).unwrap_or(t));
    AriState {
        window_start: whole(a.window_start),
        window_end: whole(a.window_end),
        chosen_at: whole(a.chosen_at),
        retry_after: whole(a.retry_after),
        fetched_at: whole(a.fetched_at),
        last_failure_at: whole(a.last_failure_at),
        ..a.clone()
    }
}

impl<'de> Deserialize<'de> for Stored {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StoredVisitor)
    }
}

struct StoredVisitor;

impl<'de> Visitor<'de> for StoredVisitor {
    type Value = Stored;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an index entry (an array, or an object in format 1)")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Stored, A::Error> {
        Entry::deserialize(de::value::MapAccessDeserializer::new(map)).map(Stored)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut row: A) -> Result<Stored, A::Error> {
        let mut e = Entry::default();
        let short = |n| de::Error::invalid_length(n, &"at least 10 fields");
        e.version = row.next_element()?.ok_or_else(|| short(0))?;
        e.spec_version = row.next_element()?.ok_or_else(|| short(1))?;
        e.not_before = row.next_element()?.ok_or_else(|| short(2))?;
        e.not_after = row.next_element()?.ok_or_else(|| short(3))?;
        e.renew_at = row.next_element()?.ok_or_else(|| short(4))?;
        let basis: String = row.next_element()?.ok_or_else(|| short(5))?;
        e.basis = if basis.is_empty() {
            None
        } else {
            Some(from_code(&basis).map_err(de::Error::custom)?)
        };
        e.domains = row.next_element()?.ok_or_else(|| short(6))?;
        e.key_type = row.next_element()?.ok_or_else(|| short(7))?;
        e.serial = row.next_element()?.ok_or_else(|| short(8))?;
        e.account = row.next_element()?.ok_or_else(|| short(9))?;
        if let Some(status) = row.next_element::<Option<(String, u32, Option<String>, u32)>>()? {
            e.status = status.map(
                |(last_result, failures, last_error, dns_leftovers)| Status {
                    last_result,
                    failures,
                    last_error,
                    dns_leftovers,
                },
            );
        } else {
            return Ok(Stored(e));
        }
        let Some(due_now) = row.next_element()? else {
            return Ok(Stored(e));
        };
        e.due_now = due_now;
        let Some(deleted) = row.next_element::<u8>()? else {
            return Ok(Stored(e));
        };
        e.deleted = deleted != 0;
        let Some(ari_at) = row.next_element()? else {
            return Ok(Stored(e));
        };
        e.ari_at = ari_at;
        let Some(ari_check_at) = row.next_element()? else {
            return Ok(Stored(e));
        };
        e.ari_check_at = ari_check_at;
        let Some(profile) = row.next_element()? else {
            return Ok(Stored(e));
        };
        e.profile = profile;
        type Read = (
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<String>,
            u32,
            Option<i64>,
            Option<String>,
        );
        if let Some(Some(a)) = row.next_element::<Option<Read>>()? {
            let at = |t: Option<i64>| -> Result<Option<OffsetDateTime>, A::Error> {
                t.map(|t| OffsetDateTime::from_unix_timestamp(t).map_err(de::Error::custom))
                    .transpose()
            };
            e.ari = Some(AriState {
                window_start: at(a.0)?,
                window_end: at(a.1)?,
                chosen_at: at(a.2)?,
                retry_after: at(a.3)?,
                fetched_at: at(a.4)?,
                explanation_url: a.5,
                failures: a.6,
                last_failure_at: at(a.7)?,
                last_error: a.8,
                serial: e.serial.clone(),
            });
        }
        // Fields of a later format.
        while row.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Stored(e))
    }
}
