//! `certvault list`: what is stored, when each certificate renews, and why.
//!
//! With a token that may read the records (admin, renew), the facts come from each
//! certificate itself, as `renew` sees them. With the monitor policy (no private keys), they
//! come from the key-free status documents (`status/<NAME>`) and the specs.

use futures::StreamExt;
use serde::Serialize;
use time::OffsetDateTime;

use super::context::{Context, Outcome};
use crate::ari::AriState;
use crate::index::Part;
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
    let at = match &decision {
        Decision::Keep { renew_at, .. } => *renew_at,
        Decision::Renew(Reason::Due { renew_at, .. }) => *renew_at,
        Decision::Renew(Reason::Expired { not_after }) => *not_after,
        Decision::Renew(_) => now,
    };
    (at, decision)
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

pub(super) async fn run(ctx: &Context, json: bool, now: OffsetDateTime) -> Result<Outcome, Error> {
    // A wrong --prefix / --mount is an error naming the paths, not an empty list.
    ctx.store.ensure_in_use(&ctx.settings.account).await?;
    // The index gives the rows of certificates with an entry; the others (no entry yet,
    // due whatever the time: damaged, names changed) are read one by one.
    let buckets = ctx.store.names_by_shard(Part::ALL, None).await?;
    let mut rows = Vec::new();
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
    if !scan.unsettled.is_empty() {
        let stale: std::collections::BTreeSet<String> =
            scan.unsettled.iter().map(|n| n.to_string()).collect();
        rows.retain(|r| !stale.contains(&r.name));
    }
    // `list` writes nothing: what reading noted for the index is dropped.
    ctx.store.journal.discard();
    let (more, broken) = rows_from_records(ctx, scan.load, now).await?;
    rows.extend(more);
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    show_pauses(ctx, &mut rows, now).await;
    Ok(output(rows, broken, json, now))
}

/// Mark the rows whose CA has paused new orders (one read per account; a token that may
/// not read pauses, such as an older monitor policy, shows none).
async fn show_pauses(ctx: &Context, rows: &mut [Row], now: OffsetDateTime) {
    let accounts: std::collections::BTreeSet<String> =
        rows.iter().map(|r| r.account.clone()).collect();
    for account in accounts {
        let pause = match ctx.store.load_pause(&account).await {
            Ok(Some(p)) => p,
            Ok(None) => continue,
            Err(e) => {
                tracing::debug!(
                    account,
                    "cannot read the CA pause: {}",
                    crate::text::chain(&e)
                );
                continue;
            }
        };
        let Some(until) = super::gate::pause_binds(&pause.data, pause.written_at, now) else {
            continue;
        };
        let text = format!(
            "new orders paused until {} ({}), stored {}",
            rfc3339(until),
            pause.data.reason,
            rfc3339(pause.data.since)
        );
        for r in rows.iter_mut().filter(|r| r.account == account) {
            r.paused = Some(text.clone());
        }
    }
}

/// A row from an index entry (no document read).
fn index_row(name: &CertName, e: &crate::index::Entry, now: OffsetDateTime) -> Row {
    let at = |t: i64| OffsetDateTime::from_unix_timestamp(t).unwrap_or(now);
    let (point, basis) = e.point();
    let (not_after, renew_at) = (at(e.not_after), at(point));
    let (renew_at, due, reason) = if now >= not_after {
        (
            not_after,
            true,
            format!("due: expired at {}", rfc3339(not_after)),
        )
    } else if now >= renew_at {
        // The public contract: when ARI decides, `reason` is `ari`.
        let r = if basis == crate::renew::Basis::Ari.to_string() {
            basis
        } else {
            format!("due: renewal point {} reached ({basis})", rfc3339(renew_at))
        };
        (renew_at, true, r)
    } else {
        (renew_at, false, basis)
    };
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
        };
    }
    Outcome {
        text: table(&rows, &broken, now),
        failed: !broken.is_empty(),
    }
}

fn table(rows: &[Row], broken: &[Broken], now: OffsetDateTime) -> String {
    let parse = |t: &str| {
        OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap_or(now)
    };
    let mut text = String::new();
    if rows.is_empty() && broken.is_empty() {
        text.push_str("no certificates stored yet; add one with `certvault issue`\n");
    }
    use crate::text::one_line as clean;
    for r in rows {
        text.push_str(&format!(
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
        ));
        if let Some(p) = &r.paused {
            text.push_str(&format!("  DEFERRED: {}\n", clean(p)));
        }
        if r.failures > 0 {
            text.push_str(&format!(
                "  LAST ATTEMPT FAILED ({} in a row): {}\n",
                r.failures,
                clean(r.last_error.as_deref().unwrap_or("unknown"))
            ));
        }
    }
    for b in broken {
        text.push_str(&format!(
            "{}  UNREADABLE: {}\n",
            b.name,
            clean(&b.error.to_string())
        ));
    }
    text
}
