//! How an index entry is stored since index format 2: one JSON array per certificate, its
//! fields by position, instead of an object that repeats every field name.
//!
//! The field names were about half of the index (an entry of the benchmark took 370 bytes
//! as stored, 189 as a row), and every run that reads the index makes Vault decode and
//! encode all of it: about 480 MiB at a million certificates in format 1. The order puts
//! the fields every entry has first; the ones most entries lack come last and are left out
//! when they and all after them are empty:
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

use std::borrow::Cow;
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

/// `status` in row order; the same type writes (borrowed) and reads (owned).
type StatusRow<'a> = (Cow<'a, str>, u32, Option<Cow<'a, str>>, u32);

fn status_row(s: &Status) -> StatusRow<'_> {
    (
        Cow::from(&s.last_result),
        s.failures,
        s.last_error.as_deref().map(Cow::from),
        s.dns_leftovers,
    )
}

fn status_of((last_result, failures, last_error, dns_leftovers): StatusRow<'_>) -> Status {
    Status {
        last_result: last_result.into_owned(),
        failures,
        last_error: last_error.map(Cow::into_owned),
        dns_leftovers,
    }
}

/// The ARI state's fields in row order, times in Unix seconds; writes and reads.
type AriRow<'a> = (
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<Cow<'a, str>>,
    u32,
    Option<i64>,
    Option<Cow<'a, str>>,
);

fn ari_row(a: &AriState) -> AriRow<'_> {
    let secs = |t: Option<OffsetDateTime>| t.map(OffsetDateTime::unix_timestamp);
    (
        secs(a.window_start),
        secs(a.window_end),
        secs(a.chosen_at),
        secs(a.retry_after),
        secs(a.fetched_at),
        a.explanation_url.as_deref().map(Cow::from),
        a.failures,
        secs(a.last_failure_at),
        a.last_error.as_deref().map(Cow::from),
    )
}

/// The ARI state of a row, about the certificate `serial`.
fn ari_of(a: AriRow<'_>, serial: &str) -> Result<AriState, time::error::ComponentRange> {
    let at = |t: Option<i64>| t.map(OffsetDateTime::from_unix_timestamp).transpose();
    Ok(AriState {
        window_start: at(a.0)?,
        window_end: at(a.1)?,
        chosen_at: at(a.2)?,
        retry_after: at(a.3)?,
        fetched_at: at(a.4)?,
        explanation_url: a.5.map(Cow::into_owned),
        failures: a.6,
        last_failure_at: at(a.7)?,
        last_error: a.8.map(Cow::into_owned),
        serial: serial.to_string(),
    })
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
        // The ten fields every row has.
        macro_rules! need {
            ($n:expr) => {
                row.next_element()?
                    .ok_or_else(|| de::Error::invalid_length($n, &"at least 10 fields"))?
            };
        }
        // The rest: a row that ends leaves them empty.
        macro_rules! or_end {
            ($t:ty) => {
                match row.next_element::<$t>()? {
                    Some(v) => v,
                    None => return Ok(Stored(e)),
                }
            };
        }
        e.version = need!(0);
        e.spec_version = need!(1);
        e.not_before = need!(2);
        e.not_after = need!(3);
        e.renew_at = need!(4);
        let basis: String = need!(5);
        e.basis = match basis.as_str() {
            "" => None,
            code => Some(from_code(code).map_err(de::Error::custom)?),
        };
        e.domains = need!(6);
        e.key_type = need!(7);
        e.serial = need!(8);
        e.account = need!(9);
        e.status = or_end!(Option<StatusRow>).map(status_of);
        e.due_now = or_end!(Option<String>);
        e.deleted = or_end!(u8) != 0;
        e.ari_at = or_end!(Option<i64>);
        e.ari_check_at = or_end!(Option<i64>);
        e.profile = or_end!(Option<String>);
        if let Some(a) = or_end!(Option<AriRow>) {
            e.ari = Some(ari_of(a, &e.serial).map_err(de::Error::custom)?);
        }
        // Fields of a later format.
        while row.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Stored(e))
    }
}
