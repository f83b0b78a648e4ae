//! `certvault migrate [--dry-run]`: move the specs of records written by an older certvault
//! into their admin-only documents (`specs/<NAME>`), and record each certificate's status.
//!
//! Older versions kept the spec (names, solver, hooks) inside the certificate record, which
//! the renew policy may write. `renew` no longer trusts that copy, so such a record is not
//! renewed until an admin runs this. The command prints every spec it moves, hooks
//! included, so the admin can see what `renew` will run from now on.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use futures::StreamExt;
use time::OffsetDateTime;

use super::context::{Context, Outcome};
use super::spec_text::{describe, settings};
use super::status;
use crate::model::{CertName, SCHEMA_VERSION};
use crate::records::SpecRecord;
use crate::store::Key;
use crate::vault::Expect;
use crate::Error;

/// Certificates worked on at once (each: a record, spec and status read, a spec write and
/// a status write).
const CONCURRENCY: usize = 64;
/// The renewal index is written every this many certificates, so what migrate noted for it
/// is never the whole fleet in memory.
const INDEX_EVERY: usize = 5000;
/// Up to this many moved certificates are also listed one per line in the text output;
/// above it, only the distinct settings with their counts (`--output json` lists all).
const LIST_EACH: usize = 100;

/// What became of one certificate.
enum Done {
    Moved {
        name: CertName,
        version: Option<u64>,
        settings: String,
        what: String,
    },
    Refused(String),
    Failed(String),
    Nothing,
}

pub(super) async fn run(
    ctx: &Context,
    dry_run: bool,
    json: bool,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    // The records without a spec document: those an older certvault wrote. A certificate
    // listed in specs/ is migrated already, or retired (its spec deleted): never touched.
    let specs = ctx.store.list_specs().await?;
    let names: Vec<CertName> = ctx
        .store
        .list_certs()
        .await?
        .into_iter()
        .filter(|n| !specs.contains(n))
        .collect();
    // When this store got its first spec: the upgrade. A record written after it was not
    // written by an older certvault: a renew token may have chosen the spec it holds.
    // (Read only when there is something to migrate: a run with nothing to move reads no
    // spec.)
    let upgrade = if names.is_empty() {
        None
    } else {
        first_spec(ctx, &specs).await
    };
    drop(specs);
    let mut text = String::new();
    let (mut moved, mut failed, mut refused) = (0usize, 0usize, 0usize);
    // Distinct settings (solver, hooks, account) of the moved specs: count and first names.
    let mut groups: BTreeMap<String, (usize, Vec<CertName>)> = BTreeMap::new();
    let mut each = Vec::new();
    let mut rows = Vec::new();
    let mut since_flush = 0;
    let mut done = futures::stream::iter(names.iter())
        .map(|name| one(ctx, name, upgrade, dry_run, now))
        .buffered(CONCURRENCY);
    while let Some(d) = done.next().await {
        match d {
            Done::Moved {
                name,
                version,
                settings,
                what,
            } => {
                moved += 1;
                let g = groups.entry(settings).or_default();
                g.0 += 1;
                if g.1.len() < 3 {
                    g.1.push(name.clone());
                }
                let path = ctx.store.display(Key::Spec(&name));
                if json {
                    rows.push(serde_json::json!({
                        "name": name.as_str(),
                        "spec": path,
                        "version": version,
                        "moved": what,
                    }));
                } else if each.len() < LIST_EACH {
                    each.push(match version {
                        Some(v) => format!("moved    {name} -> {path} (version {v}): {what}"),
                        None => format!("would move {name} -> {path}: {what}"),
                    });
                }
            }
            Done::Refused(line) => {
                refused += 1;
                let _ = writeln!(text, "{line}");
            }
            Done::Failed(line) => {
                failed += 1;
                let _ = writeln!(text, "{line}");
            }
            Done::Nothing => {}
        }
        since_flush += 1;
        if since_flush >= INDEX_EVERY && !dry_run {
            since_flush = 0;
            super::context::flush_index(ctx, now).await;
        }
    }
    drop(done);
    if json {
        let out = serde_json::json!({
            "dry_run": dry_run,
            "moved": rows,
            "settings": groups.iter().map(|(s, (n, _))| serde_json::json!({
                "settings": s,
                "certificates": n,
            })).collect::<Vec<_>>(),
            "totals": { "moved": moved, "failed": failed, "refused": refused },
            "messages": text.lines().collect::<Vec<_>>(),
        });
        return Ok(Outcome {
            text: format!("{out}\n"),
            failed: failed > 0 || refused > 0,
            ..Default::default()
        });
    }
    if moved <= LIST_EACH {
        for line in &each {
            let _ = writeln!(text, "{line}");
        }
    }
    if !groups.is_empty() {
        let verb = if dry_run { "would move" } else { "moved" };
        let _ = writeln!(
            text,
            "settings {verb} into specs/, by distinct account, solver and hooks:"
        );
        for (settings, (n, first)) in &groups {
            let first: Vec<&str> = first.iter().map(CertName::as_str).collect();
            let more = if *n > first.len() { ", ..." } else { "" };
            let _ = writeln!(
                text,
                "  {n:>7} x {settings} (e.g. {}{more})",
                first.join(", ")
            );
        }
    }
    let verb = if dry_run { "would move" } else { "moved" };
    let _ = write!(text, "summary: {moved} {verb}, {failed} failed");
    if refused > 0 {
        let _ = write!(text, ", {refused} refused");
    }
    text.push('\n');
    if moved > 0 && !dry_run {
        text.push_str("Check the hooks above: `renew` runs exactly these from now on.\n");
    }
    Ok(Outcome {
        text,
        failed: failed > 0 || refused > 0,
        ..Default::default()
    })
}

/// The time of the earliest spec document of these certificates, if any.
async fn first_spec(ctx: &Context, names: &std::collections::BTreeSet<CertName>) -> Option<i64> {
    futures::stream::iter(names)
        .map(|n| ctx.store.load_spec(n))
        .buffer_unordered(CONCURRENCY)
        .fold(None, |first: Option<i64>, read| async move {
            match read.ok().and_then(|r| r.doc).and_then(|d| d.written_at) {
                Some(t) => Some(first.map_or(t, |f| f.min(t))),
                None => first,
            }
        })
        .await
}

/// Migrate one certificate: read it, and move the spec of a record an older certvault wrote.
async fn one(
    ctx: &Context,
    name: &CertName,
    upgrade: Option<i64>,
    dry_run: bool,
    now: OffsetDateTime,
) -> Done {
    let failed = |e: &(dyn std::error::Error + 'static)| {
        Done::Failed(format!("FAILED   {name}: {}", crate::text::chain(e)))
    };
    let cert = match ctx.store.load_cert(name).await {
        Ok(Some(cert)) => cert,
        // Its latest version is deleted: nothing to migrate.
        Ok(None) => return Done::Nothing,
        Err(e) => return failed(&e),
    };
    if let (Some(u), Some(w)) = (upgrade, cert.written_at) {
        if w > u {
            return Done::Refused(format!(
                "REFUSED  {name}: its record was written at {}, after this store's first spec ({}), so not by an older certvault: a renew token may have chosen the spec inside it; read it (`certvault show {name}`) and define the certificate with `certvault issue {name} ...`",
                at(w),
                at(u)
            ));
        }
    }
    let spec = &cert.data.spec;
    let (what, settings) = (describe(spec), settings(spec));
    if dry_run {
        return Done::Moved {
            name: name.clone(),
            version: None,
            settings,
            what,
        };
    }
    let record = SpecRecord {
        schema: SCHEMA_VERSION,
        spec: spec.clone(),
    };
    // The status first: a run killed between the two writes leaves no spec, so the next
    // run takes this certificate again (a spec without its status would be skipped).
    let existing = status::Attempt::Existing {
        issued: &cert.data.issued,
        version: cert.version,
    };
    status::record(ctx, name, existing, now).await;
    // Never written (a deleted one is a retired certificate, above): check-and-set on
    // absent, so a spec an admin wrote meanwhile is never overwritten.
    match ctx.store.save_spec(name, &record, Expect::Absent).await {
        Ok(version) => Done::Moved {
            name: name.clone(),
            version: Some(version),
            settings,
            what,
        },
        // Written meanwhile (an admin's `issue`, or another migrate): not ours to replace.
        Err(crate::store::Error::Vault(
            crate::vault::Error::CasConflict { .. } | crate::vault::Error::AlreadyExists { .. },
        )) => Done::Nothing,
        Err(e) => failed(&e),
    }
}

/// A KV v2 `created_time` (Unix seconds) as RFC 3339.
fn at(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .map(crate::text::rfc3339)
        .unwrap_or_else(|_| t.to_string())
}
