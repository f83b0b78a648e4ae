//! The rows of `certvault list` and `certvault index show`: what is stored, when each
//! certificate renews, and why, built from the index, the records or the status
//! documents, and printed as a table or JSON (streamed).
//!
//! With a token that may read the records (admin, renew), the facts come from each
//! certificate itself, as `renew` sees them. With the monitor policy (no private keys), they
//! come from the key-free status documents (`status/<NAME>`) and the specs.

use futures::StreamExt;
use serde::Serialize;
use time::OffsetDateTime;

use super::context::{Context, Outcome};
use crate::ari::AriState;
use crate::model::{CertName, Spec};
use crate::records::StatusRecord;
use crate::renew::{decide, rfc3339, Basis, Current, Decision, Facts, Reason};
use crate::store::{Api, Entry, Key};
use crate::text::relative;
use crate::{x509, Error};

/// One row of `list --output json`. Times are RFC 3339.
#[derive(Debug, Serialize)]
pub struct Row {
    pub name: String,
    pub domains: Vec<String>,
    pub key_type: String,
    pub not_before: String,
    pub not_after: String,
    pub serial: String,
    pub renew_at: String,
    pub due: bool,
    pub reason: String,
    pub version: u64,
    /// The last attempt (`renewed`, `failed`, `imported`) and failures since the last success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_result: Option<String>,
    pub failures: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The CA profile the spec orders (null: the CA's default).
    pub profile: Option<String>,
    /// The stored ACME renewal information (null when the CA has none).
    pub ari: Option<crate::ari::AriView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// The ACME account the spec orders with.
    pub account: String,
    /// New orders of this account's CA are paused (a stored rate limit): until when and
    /// why, as `renew` honours it (never longer than a day after it was stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct Broken {
    pub name: String,
    #[serde(serialize_with = "display")]
    pub error: Unreadable,
}

/// Why a certificate has no row.
#[derive(Debug)]
pub(super) enum Unreadable {
    /// Its documents could not be read.
    Read(crate::store::Error),
    /// Its stored certificate cannot be used (what the inspection found).
    Damaged(String),
    /// Monitor view: no spec document yet.
    NoSpec,
    /// Monitor view: no status document yet.
    NoStatus,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreadable::Read(e) => f.write_str(&crate::text::chain(e)),
            Unreadable::Damaged(why) => f.write_str(why),
            Unreadable::NoSpec => {
                f.write_str("no spec document yet: an admin runs `certvault migrate`")
            }
            Unreadable::NoStatus => f.write_str(
                "no status document yet (written at its next issuance, renewal or `certvault migrate`)",
            ),
        }
    }
}

fn display<S: serde::Serializer>(e: &Unreadable, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(e)
}

/// The renewal point and the reason, as `decide` sees it.
pub(crate) fn schedule(
    now: OffsetDateTime,
    spec: &Spec,
    current: &Current,
    damage: Option<&str>,
    ari: Option<&AriState>,
    revoked_at: Option<OffsetDateTime>,
) -> (OffsetDateTime, Decision) {
    let decision = decide(
        now,
        &Facts {
            wanted: spec,
            current: Some(current),
            damage,
            force: false,
            ari,
            revoked_at,
        },
    );
    (point(&decision, now), decision)
}

/// The time `list` shows as `renew_at` for a decision.
fn point(decision: &Decision, now: OffsetDateTime) -> OffsetDateTime {
    match decision {
        Decision::Keep { renew_at, .. } => *renew_at,
        Decision::Renew(Reason::Due { renew_at, .. }) => *renew_at,
        Decision::Renew(Reason::Expired { not_after }) => *not_after,
        Decision::Renew(_) => now,
    }
}

fn reason(decision: &Decision) -> String {
    match decision {
        Decision::Keep { basis, .. } => basis.to_string(),
        // The public contract: when ARI decides, `reason` is `ari`.
        Decision::Renew(
            r @ Reason::Due {
                basis: Basis::Ari, ..
            },
        ) => r.to_string(),
        Decision::Renew(r) => format!("due: {r}"),
    }
}

/// A row from the certificate itself (and its status, when readable).
pub(super) fn full_row(
    name: &CertName,
    entry: &Entry,
    status: Option<&StatusRecord>,
    now: OffsetDateTime,
) -> Result<Row, String> {
    let spec = &entry.spec.as_ref().map(|s| &s.data.spec);
    let record = &entry.cert.data;
    let issued = &record.issued;
    let inspection = x509::inspect(&issued.cert, &issued.chain, issued.privkey.expose());
    let current = inspection
        .current
        .ok_or_else(|| inspection.damage.clone().unwrap_or_default())?;
    let (spec, migrated) = match spec {
        Some(spec) => (*spec, true),
        None => (&record.spec, false),
    };
    let facts = &record.facts;
    // When the CA may be asked again can be newer in the status document.
    let ari = facts
        .ari
        .as_ref()
        .map(|a| a.with_timing_of(status.and_then(|s| s.ari.as_ref())));
    let (renew_at, decision) = schedule(
        now,
        spec,
        &current,
        inspection.damage.as_deref(),
        ari.as_ref(),
        facts.revoked_at,
    );
    let mut why = reason(&decision);
    if !migrated {
        why.push_str(&format!(
            "; NOT RENEWED until `certvault migrate` moves its spec to specs/{name}"
        ));
    }
    let (domains, key_type) = (&spec.domains, spec.key_type);
    Ok(Row {
        name: name.to_string(),
        domains: domains.iter().map(|d| d.to_string()).collect(),
        key_type: key_type.to_string(),
        // The certificate's own dates: what `decide` uses.
        not_before: rfc3339(current.not_before),
        not_after: rfc3339(current.not_after),
        serial: record.issued.serial.clone(),
        renew_at: rfc3339(renew_at),
        due: decision.is_due(),
        reason: why,
        version: entry.cert.version,
        last_result: status.map(|s| s.last_result.clone()),
        failures: status.map_or(0, |s| s.failures),
        last_error: status.and_then(|s| s.last_error.clone()),
        profile: spec.profile.clone(),
        ari: ari.as_ref().map(AriState::view),
        revoked_at: facts.revoked_at.map(rfc3339),
        account: spec.account.clone(),
        paused: None,
    })
}

/// A row from the spec and the key-free status document (monitor policy).
fn status_row(name: &CertName, spec: &Spec, status: &StatusRecord, now: OffsetDateTime) -> Row {
    let current = Current {
        not_before: status.not_before,
        not_after: status.not_after,
        domains: spec.domains.iter().cloned().collect(),
        key_type: Some(spec.key_type),
    };
    let (renew_at, decision) = schedule(
        now,
        spec,
        &current,
        None,
        status.ari.as_ref(),
        status.revoked_at,
    );
    Row {
        name: name.to_string(),
        domains: spec.domains.iter().map(|d| d.to_string()).collect(),
        key_type: spec.key_type.to_string(),
        not_before: rfc3339(status.not_before),
        not_after: rfc3339(status.not_after),
        serial: status.serial.clone(),
        renew_at: rfc3339(renew_at),
        due: decision.is_due(),
        reason: reason(&decision),
        version: status.cert_version,
        last_result: Some(status.last_result.clone()),
        failures: status.failures,
        last_error: status.last_error.clone(),
        profile: spec.profile.clone(),
        ari: status.ari.as_ref().map(AriState::view),
        revoked_at: status.revoked_at.map(rfc3339),
        account: spec.account.clone(),
        paused: None,
    }
}

/// What `list` prints when nothing is stored.
const EMPTY: &str = "no certificates stored yet; add one with `certvault issue`\n";

/// The rows of `list`, each kept as it is printed (its table text or compact JSON) rather
/// than as a [`Row`]: over 100,000 certificates that is about a third of the memory, and
/// the output is streamed from them, never built whole.
pub(super) struct Rendered {
    json: bool,
    now: OffsetDateTime,
    /// The accounts the rows order with (a row keeps its index here).
    pub(super) accounts: Vec<String>,
    items: Vec<Item>,
}

struct Item {
    name: Box<str>,
    account: u16,
    /// Where the line or field of a CA pause goes (it is known only after every row).
    split: u32,
    text: Box<str>,
}

impl Item {
    /// The CA pause of the row's account, from the pauses by account.
    fn pause<'a>(&self, pauses: &'a [Option<String>]) -> Option<&'a String> {
        pauses
            .get(usize::from(self.account))
            .and_then(Option::as_ref)
    }
}

impl Rendered {
    pub(super) fn new(json: bool, now: OffsetDateTime) -> Self {
        Rendered {
            json,
            now,
            accounts: Vec::new(),
            items: Vec::new(),
        }
    }

    /// Drop the rows of `names` (their index entries turned out stale: they are read).
    pub(super) fn drop_rows(&mut self, names: &[CertName]) {
        if names.is_empty() {
            return;
        }
        let stale: std::collections::BTreeSet<&str> = names.iter().map(|n| n.as_str()).collect();
        self.items.retain(|r| !stale.contains(&*r.name));
    }

    pub(super) fn push(&mut self, row: Row) {
        let account = match self.accounts.iter().position(|a| *a == row.account) {
            Some(i) => i,
            None => {
                self.accounts.push(row.account.clone());
                self.accounts.len() - 1
            }
        };
        let (text, split) = if self.json {
            // `paused` is the last field of a row: it goes before the closing brace.
            let text = pack(&serde_json::to_string(&row).unwrap_or_default());
            let split = text.len().saturating_sub(1);
            (text, split)
        } else {
            let mut text = row_head(&row, self.now);
            let split = text.len();
            text.push_str(&row_tail(&row));
            (text, split)
        };
        self.items.push(Item {
            name: row.name.into_boxed_str(),
            account: u16::try_from(account).unwrap_or(u16::MAX),
            split: u32::try_from(split).unwrap_or(0),
            text: text.into_boxed_str(),
        });
    }

    /// The outcome, printed in name order from the kept rows; `pauses` by account.
    pub(super) fn finish(mut self, pauses: Vec<Option<String>>, broken: Vec<Broken>) -> Outcome {
        self.items.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let failed = !broken.is_empty();
        let json = self.json;
        let write = move |out: &mut dyn std::io::Write| -> std::io::Result<()> {
            if json {
                return write_json(out, &self.items, &pauses, &broken);
            }
            if self.items.is_empty() && broken.is_empty() {
                out.write_all(EMPTY.as_bytes())?;
            }
            for item in &self.items {
                let (head, tail) = item.text.split_at(item.split as usize);
                out.write_all(head.as_bytes())?;
                if let Some(p) = item.pause(&pauses) {
                    writeln!(out, "  DEFERRED: {}", crate::text::one_line(p))?;
                }
                out.write_all(tail.as_bytes())?;
            }
            for b in &broken {
                out.write_all(broken_line(b).as_bytes())?;
            }
            Ok(())
        };
        Outcome::streamed(failed, write)
    }
}

/// `list --output json`: one pretty JSON array of the rows, then the unreadable ones.
fn write_json(
    out: &mut dyn std::io::Write,
    items: &[Item],
    pauses: &[Option<String>],
    broken: &[Broken],
) -> std::io::Result<()> {
    use serde::ser::SerializeSeq;
    struct All<'a> {
        items: &'a [Item],
        pauses: &'a [Option<String>],
        broken: &'a [Broken],
    }
    impl Serialize for All<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(self.items.len() + self.broken.len()))?;
            for item in self.items {
                let text = match item.pause(self.pauses) {
                    None => unpack(&item.text),
                    Some(p) => {
                        let (head, tail) = item.text.split_at(item.split as usize);
                        let p = serde_json::to_string(p).unwrap_or_default();
                        let whole = format!("{head},\"paused\":{p}{tail}");
                        std::borrow::Cow::Owned(unpack(&whole).into_owned())
                    }
                };
                let mut de = serde_json::Deserializer::from_str(&text);
                seq.serialize_element(&serde_transcode::Transcoder::new(&mut de))?;
            }
            for b in self.broken {
                seq.serialize_element(b)?;
            }
            seq.end()
        }
    }
    serde_json::to_writer_pretty(
        &mut *out,
        &All {
            items,
            pauses,
            broken,
        },
    )?;
    out.write_all(b"\n")
}

/// The keys of a JSON row, each kept as one control character (which compact JSON never
/// holds raw: inside strings serde_json escapes it, and a key's quotes cannot occur
/// unescaped inside a string), so 100,000 rows do not keep 100,000 copies of them.
const KEYS: [&str; 19] = [
    "name",
    "domains",
    "key_type",
    "not_before",
    "not_after",
    "serial",
    "renew_at",
    "due",
    "reason",
    "version",
    "last_result",
    "failures",
    "last_error",
    "profile",
    "ari",
    "revoked_at",
    "account",
    "window_start",
    "window_end",
];

/// Compact JSON with each key of [`KEYS`] (a string followed by `:`) as its one control
/// character, in one pass: outside strings a `"` starts a string, which ends at the next
/// unescaped `"`.
fn pack(json: &str) -> String {
    let bytes = json.as_bytes();
    let mut out = String::with_capacity(json.len());
    let (mut i, mut copied) = (0, 0);
    while i < bytes.len() {
        if bytes[i] != b'"' {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < bytes.len() && bytes[i] != b'"' {
            i += if bytes[i] == b'\\' { 2 } else { 1 };
        }
        if i >= bytes.len() {
            break; // not JSON serde_json writes: kept as it is
        }
        // `i` is at the closing quote; a key is followed by `:`.
        let text = &bytes[start + 1..i];
        i += 1;
        if bytes.get(i) != Some(&b':') {
            continue;
        }
        if let Some(k) = KEYS.iter().position(|k| k.as_bytes() == text) {
            out.push_str(&json[copied..start]);
            out.push(char::from(1 + k as u8));
            copied = i + 1;
        }
    }
    out.push_str(&json[copied..]);
    out
}

fn unpack(packed: &str) -> std::borrow::Cow<'_, str> {
    if !packed.bytes().any(|b| (1..=KEYS.len() as u8).contains(&b)) {
        return std::borrow::Cow::Borrowed(packed);
    }
    let mut out = String::with_capacity(packed.len() * 2);
    for c in packed.chars() {
        match (c as usize).checked_sub(1).and_then(|i| KEYS.get(i)) {
            Some(key) => {
                out.push('"');
                out.push_str(key);
                out.push_str("\":");
            }
            _ => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The text of the CA pause of each account (`None`: not paused), by the account's index.
/// One read per account; a token that may not read pauses, such as an older monitor
/// policy, shows none.
pub(super) async fn pauses(
    ctx: &Context,
    accounts: &[String],
    now: OffsetDateTime,
) -> Vec<Option<String>> {
    let mut texts = Vec::with_capacity(accounts.len());
    for account in accounts {
        texts.push(pause_text(ctx, account, now).await);
    }
    texts
}

async fn pause_text(ctx: &Context, account: &str, now: OffsetDateTime) -> Option<String> {
    let pause = match ctx.store.load_pause(account).await {
        Ok(p) => p?,
        Err(e) => {
            tracing::debug!(
                account,
                "cannot read the CA pause: {}",
                crate::text::chain(&e)
            );
            return None;
        }
    };
    let until = super::gate::pause_binds(&pause.data, pause.written_at, now)?;
    Some(format!(
        "new orders paused until {} ({}), stored {}",
        rfc3339(until),
        pause.data.reason,
        rfc3339(pause.data.since)
    ))
}

/// A row from an index entry (no document read): its schedule at `now`, by the rule
/// `renew` decides with.
pub(super) fn index_row(name: &CertName, e: &crate::index::Entry, now: OffsetDateTime) -> Row {
    let at = |t: i64| OffsetDateTime::from_unix_timestamp(t).unwrap_or(now);
    let decision = e.schedule().at(now);
    let (renew_at, due, reason) = (point(&decision, now), decision.is_due(), reason(&decision));
    let not_after = at(e.not_after);
    let status = e.status.as_ref();
    Row {
        name: name.to_string(),
        domains: e.domains.clone(),
        key_type: e.key_type.clone(),
        not_before: rfc3339(at(e.not_before)),
        not_after: rfc3339(not_after),
        serial: e.serial.clone(),
        renew_at: rfc3339(renew_at),
        due,
        reason,
        version: e.version,
        last_result: status.map(|s| s.last_result.clone()),
        failures: status.map_or(0, |s| s.failures),
        last_error: status.and_then(|s| s.last_error.clone()),
        profile: e.profile.clone(),
        ari: e.ari.as_ref().map(AriState::view),
        revoked_at: None,
        account: e.account.clone(),
        paused: None,
    }
}

/// Rows of `names` read from their documents: the record and spec (admin, renew), or the
/// spec and status (monitor); and the certificates that could not be read.
pub(super) async fn rows_from_records(
    ctx: &Context,
    names: Vec<CertName>,
    now: OffsetDateTime,
) -> Result<(Vec<Row>, Vec<Broken>), Error> {
    if names.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    // May this token read the records? If not (monitor policy), read the status documents.
    let certs = ctx.store.api_path(Key::AnyCert, Api::Data);
    let records_readable = ctx
        .store
        .kv()
        .capabilities(std::slice::from_ref(&certs))
        .await
        .map_err(crate::store::Error::from)?
        .get(&certs)
        .is_some_and(|caps| caps.iter().any(|c| c == "read" || c == "root"));
    let mut rows = Vec::new();
    let mut broken = Vec::new();
    let fail = |name: &CertName, error: Unreadable| Broken {
        name: name.to_string(),
        error,
    };
    // Reads for 16 certificates at a time, in name order.
    let loaded: Vec<_> = futures::stream::iter(names)
        .map(|name| async move {
            // A readable record comes with its status; the monitor reads spec and status.
            if records_readable {
                let entry = ctx.store.load_entry(&name).await;
                return (name, None, Some(entry), None);
            }
            let (status, spec) =
                futures::join!(ctx.store.load_status(&name), ctx.store.load_spec(&name));
            (name, Some(status), None, Some(spec))
        })
        .buffered(16)
        .collect()
        .await;
    for (name, status, entry, spec) in loaded {
        if let Some(entry) = entry {
            match entry {
                Ok(Some(entry)) => match full_row(&name, &entry, entry.status.as_ref(), now) {
                    Ok(row) => rows.push(row),
                    Err(why) => broken.push(fail(&name, Unreadable::Damaged(why))),
                },
                Ok(None) => {} // deleted between list and read
                Err(e) => broken.push(fail(&name, Unreadable::Read(e))),
            }
            continue;
        }
        let (Some(spec), Some(status)) = (spec, status) else {
            continue;
        };
        let status = match status {
            Ok(r) => r.doc.map(|d| d.data),
            Err(e) => {
                broken.push(fail(&name, Unreadable::Read(e)));
                continue;
            }
        };
        let spec = match spec {
            Ok(r) => r.doc.map(|d| d.data.spec),
            Err(e) => {
                broken.push(fail(&name, Unreadable::Read(e)));
                continue;
            }
        };
        match (spec, status) {
            (Some(spec), Some(status)) => rows.push(status_row(&name, &spec, &status, now)),
            (None, _) => broken.push(fail(&name, Unreadable::NoSpec)),
            (Some(_), None) => broken.push(fail(&name, Unreadable::NoStatus)),
        }
    }
    Ok((rows, broken))
}

/// The text or JSON of `list`; failed if any certificate could not be read.
pub(super) fn output(
    rows: Vec<Row>,
    broken: Vec<Broken>,
    json: bool,
    now: OffsetDateTime,
) -> Outcome {
    if json {
        #[derive(Serialize)]
        #[serde(untagged)]
        enum Item<'a> {
            Row(&'a Row),
            Broken(&'a Broken),
        }
        let entries: Vec<Item> = rows
            .iter()
            .map(Item::Row)
            .chain(broken.iter().map(Item::Broken))
            .collect();
        let text = serde_json::to_string_pretty(&entries).unwrap_or_default() + "\n";
        return Outcome {
            text,
            failed: !broken.is_empty(),
            ..Default::default()
        };
    }
    Outcome {
        text: table(&rows, &broken, now),
        failed: !broken.is_empty(),
        ..Default::default()
    }
}

fn table(rows: &[Row], broken: &[Broken], now: OffsetDateTime) -> String {
    let mut text = String::new();
    if rows.is_empty() && broken.is_empty() {
        text.push_str(EMPTY);
    }
    for r in rows {
        text.push_str(&row_head(r, now));
        if let Some(p) = &r.paused {
            text.push_str(&format!("  DEFERRED: {}\n", crate::text::one_line(p)));
        }
        text.push_str(&row_tail(r));
    }
    for b in broken {
        text.push_str(&broken_line(b));
    }
    text
}

/// The lines of a row before its CA pause: names, expiry, when it renews.
fn row_head(r: &Row, now: OffsetDateTime) -> String {
    let parse = |t: &str| {
        OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap_or(now)
    };
    use crate::text::one_line as clean;
    format!(
        "{}  [{}]\n  expires {} ({})\n  {}\n",
        r.name,
        clean(&r.domains.join(", ")),
        clean(&r.not_after),
        relative(now, parse(&r.not_after)),
        if r.due {
            format!(
                "renews at the next run: {}",
                clean(r.reason.trim_start_matches("due: "))
            )
        } else {
            format!(
                "renews {} ({}; {})",
                clean(&r.renew_at),
                relative(now, parse(&r.renew_at)),
                clean(&r.reason)
            )
        }
    )
}

/// The line of a row after its CA pause: the failures in a row, if any.
fn row_tail(r: &Row) -> String {
    if r.failures == 0 {
        return String::new();
    }
    format!(
        "  LAST ATTEMPT FAILED ({} in a row): {}\n",
        r.failures,
        crate::text::one_line(r.last_error.as_deref().unwrap_or("unknown"))
    )
}

fn broken_line(b: &Broken) -> String {
    format!(
        "{}  UNREADABLE: {}\n",
        b.name,
        crate::text::one_line(&b.error.to_string())
    )
}

#[cfg(test)]
mod agree;

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, account: &str, failures: u32) -> Row {
        Row {
            name: name.into(),
            domains: vec![
                format!("{name}.example.com"),
                format!("*.{name}.example.com"),
            ],
            key_type: "ecdsa-p256".into(),
            not_before: "2026-11-01T00:00:00Z".into(),
            not_after: "2027-01-30T00:00:00Z".into(),
            serial: "0a1b".into(),
            renew_at: "2026-12-31T00:00:00Z".into(),
            due: false,
            reason: "2/3 of the lifetime".into(),
            version: 3,
            last_result: Some("renewed".into()),
            failures,
            last_error: (failures > 0).then(|| "CA said \"name\": \"no\"\n\u{1b}[2J\u{1}".into()),
            profile: None,
            ari: (failures == 1).then(|| crate::ari::AriView {
                window_start: Some("2026-12-20T00:00:00Z".into()),
                window_end: Some("2026-12-21T00:00:00Z".into()),
                chosen_at: None,
                retry_after: None,
                explanation_url: Some("https://ca.example/\"name\":".into()),
                fetched_at: None,
            }),
            revoked_at: None,
            account: account.into(),
            paused: None,
        }
    }

    /// Packed rows read back as serde_json wrote them, whatever their values hold.
    #[test]
    fn packed_json_rows_read_back_byte_for_byte() {
        let mut r = row("web", "default", 1);
        r.domains = vec!["name".into(), "\"name\":".into(), "a\\".into()];
        r.reason = "ends in a backslash \\".into();
        r.last_error = Some("\"reason\": \u{1}\u{7} \"due\":true é".into());
        r.profile = Some("\\\"".into());
        r.ari = Some(AriState::default().view());
        let json = serde_json::to_string(&r).unwrap();
        let packed = pack(&json);
        for key in KEYS {
            assert!(
                !packed.contains(&format!("\"{key}\":")),
                "{key} left in {packed}"
            );
        }
        assert!(packed.len() < json.len());
        assert_eq!(unpack(&packed), json);
        // Not what serde_json writes: kept as it is.
        for odd in ["\"name", "\"", "{\"name\\", "x\"\\"] {
            assert_eq!(unpack(&pack(odd)), odd);
        }
    }

    /// The streamed list prints exactly what the whole-text form printed, pauses and the
    /// unreadable included, in name order.
    #[test]
    fn the_streamed_list_is_the_same_text_and_json_as_the_whole_one() {
        let now = OffsetDateTime::from_unix_timestamp(1_796_000_000).unwrap();
        let pause = "new orders paused until 2026-12-08T00:00:00Z (rate limit)".to_string();
        for json in [false, true] {
            let rows = || {
                vec![
                    row("web", "default", 0),
                    row("api", "other", 2),
                    row("db", "default", 1),
                ]
            };
            let broken = || {
                vec![Broken {
                    name: "old".into(),
                    error: Unreadable::NoSpec,
                }]
            };
            let mut streamed = Rendered::new(json, now);
            rows().into_iter().for_each(|r| streamed.push(r));
            let pauses: Vec<Option<String>> = streamed
                .accounts
                .iter()
                .map(|a| (a == "other").then(|| pause.clone()))
                .collect();
            let outcome = streamed.finish(pauses, broken());
            assert!(outcome.failed);
            let mut got = Vec::new();
            outcome.write_to(&mut got).unwrap();

            let mut whole = rows();
            whole.sort_by(|a, b| a.name.cmp(&b.name));
            whole[0].paused = Some(pause.clone());
            let want = output(whole, broken(), json, now).text;
            assert_eq!(String::from_utf8(got).unwrap(), want, "json: {json}");
            assert!(want.contains("paused") || want.contains("DEFERRED"));
        }
        let empty = Rendered::new(false, now).finish(Vec::new(), Vec::new());
        let mut got = Vec::new();
        empty.write_to(&mut got).unwrap();
        assert_eq!(
            String::from_utf8(got).unwrap(),
            output(Vec::new(), Vec::new(), false, now).text
        );
        let empty = Rendered::new(true, now).finish(Vec::new(), Vec::new());
        let mut got = Vec::new();
        empty.write_to(&mut got).unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), "[]\n");
    }
}
