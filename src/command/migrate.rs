//! `certvault migrate [--dry-run]`: move the specs of records written by an older certvault
//! into their admin-only documents (`specs/<NAME>`), and record each certificate's status.
//!
//! Older versions kept the spec (names, solver, hooks) inside the certificate record, which
//! the renew policy may write. `renew` no longer trusts that copy, so such a record is not
//! renewed until an admin runs this. The command prints every spec it moves, hooks
//! included, so the admin can see what `renew` will run from now on.

use std::fmt::Write as _;

use time::OffsetDateTime;

use super::{status, Context, Outcome};
use crate::model::{SolverSpec, Spec, SpecRecord, SCHEMA_VERSION};
use crate::store::{Entry, Key};
use crate::Error;

pub(super) async fn run(
    ctx: &Context,
    dry_run: bool,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    let names = ctx.store.list_certs().await?;
    let mut text = String::new();
    let (mut moved, mut failed, mut refused) = (0, 0, 0);
    // First pass: the records an older certvault wrote (no spec document), and when this
    // store got its first spec: the upgrade. A record written after it was not written by
    // an older certvault: a renew token may have chosen the spec it holds.
    let mut legacy = Vec::new();
    let mut upgrade: Option<i64> = None;
    for (name, loaded) in ctx.store.load_entries(names).await {
        match loaded {
            Ok(Some(Entry {
                spec: None, cert, ..
            })) => legacy.push((name, cert.written_at)),
            Ok(Some(Entry {
                spec: Some(spec), ..
            })) => {
                if let Some(t) = spec.written_at {
                    upgrade = Some(upgrade.map_or(t, |u| u.min(t)));
                }
            }
            // Deleted, or retired (its spec deleted): never migrated.
            Ok(None) => {}
            Err(e) => {
                failed += 1;
                let _ = writeln!(text, "FAILED   {name}: {}", crate::error::chain(&e));
            }
        }
    }
    for (name, written_at) in legacy {
        if let (Some(u), Some(w)) = (upgrade, written_at) {
            if w > u {
                refused += 1;
                let _ = writeln!(
                    text,
                    "REFUSED  {name}: its record was written at {}, after this store's first spec ({}), so not by an older certvault: a renew token may have chosen the spec inside it; read it (`certvault show {name}`) and define the certificate with `certvault issue {name} ...`",
                    at(w),
                    at(u)
                );
                continue;
            }
        }
        let entry = match ctx.store.load_entry(&name).await {
            Ok(Some(Entry {
                spec: None, cert, ..
            })) if cert.written_at == written_at => cert,
            Ok(Some(Entry { spec: None, .. })) => {
                refused += 1;
                let _ = writeln!(
                    text,
                    "REFUSED  {name}: its record changed while migrate ran; run migrate again"
                );
                continue;
            }
            Ok(_) => continue,
            Err(e) => {
                failed += 1;
                let _ = writeln!(text, "FAILED   {name}: {}", crate::error::chain(&e));
                continue;
            }
        };
        let path = ctx.store.display(Key::Spec(&name));
        let what = describe(&entry.data.spec);
        if dry_run {
            let _ = writeln!(text, "would move {name} -> {path}: {what}");
            moved += 1;
            continue;
        }
        let record = SpecRecord {
            schema: SCHEMA_VERSION,
            spec: entry.data.spec.clone(),
        };
        let expect = match ctx.store.load_spec(&name).await {
            Ok(read) => read.expect,
            Err(e) => {
                failed += 1;
                let _ = writeln!(text, "FAILED   {name}: {}", crate::error::chain(&e));
                continue;
            }
        };
        match ctx.store.save_spec(&name, &record, expect).await {
            Ok(version) => {
                moved += 1;
                let _ = writeln!(
                    text,
                    "moved    {name} -> {path} (version {version}): {what}"
                );
                let existing = status::Attempt::Existing {
                    issued: &entry.data.issued,
                    version: entry.version,
                };
                status::record(ctx, &name, existing, now).await;
            }
            Err(e) => {
                failed += 1;
                let _ = writeln!(text, "FAILED   {name}: {}", crate::error::chain(&e));
            }
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
    })
}

/// A KV v2 `created_time` (Unix seconds) as RFC 3339.
fn at(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .map(crate::renew::rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// The parts of a spec that decide what `renew` orders and runs.
pub(super) fn describe(spec: &Spec) -> String {
    let names: Vec<&str> = spec.domains.iter().map(|d| d.as_str()).collect();
    let mut out = format!("names [{}], account {}", names.join(", "), spec.account);
    match &spec.dns {
        SolverSpec::Exec(crate::dns::exec::Config {
            auth_hook,
            cleanup_hook,
        }) => {
            let _ = write!(out, ", dns exec (auth hook {auth_hook:?}");
            if !cleanup_hook.is_empty() {
                let _ = write!(out, ", cleanup hook {cleanup_hook:?}");
            }
            out.push(')');
        }
        SolverSpec::Solvers { default, zones } => {
            let mut parts: Vec<String> = default.iter().map(|d| d.to_string()).collect();
            parts.extend(zones.iter().map(|(z, s)| format!("{z}={s}")));
            let _ = write!(out, ", dns solvers [{}]", parts.join(", "));
        }
    }
    if let Some(hook) = &spec.deploy_hook {
        let _ = write!(out, ", deploy hook {hook:?}");
    }
    out
}
