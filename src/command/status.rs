//! The key-free status document of a certificate (`status/<NAME>`): what the last attempt
//! did and how many failed in a row. A monitoring token reads these instead of the records.
//!
//! Written only when something happened (an issuance, a renewal, a failure, a migration);
//! a run with nothing due writes nothing. A status that cannot be written is logged: it
//! never fails the certificate.

use time::OffsetDateTime;

use super::context::Context;
use crate::model::{CertName, Issued, SCHEMA_VERSION};
use crate::records::StatusRecord;

/// What happened to a certificate.
pub(super) enum Attempt<'a> {
    /// A new certificate was stored as `version`.
    Stored { issued: &'a Issued, version: u64 },
    /// An attempt failed; `current` is the material still stored, at `version`.
    Failed {
        current: &'a Issued,
        version: u64,
        error: &'a str,
    },
    /// `migrate`: record the facts of the stored certificate, no attempt.
    Existing { issued: &'a Issued, version: u64 },
    /// `import`: a certificate stored as it was; `needs` says why it cannot renew yet.
    Imported {
        issued: &'a Issued,
        version: u64,
        needs: Option<&'a str>,
    },
}

pub(super) async fn record(
    ctx: &Context,
    name: &CertName,
    attempt: Attempt<'_>,
    now: OffsetDateTime,
) {
    let read = match ctx.store.load_status_for_repair(name).await {
        Ok((r, corrupt)) => {
            if let Some(e) = corrupt {
                tracing::warn!(cert = %name, "replacing a status document that is not valid: {e}");
            }
            r
        }
        Err(e) => {
            tracing::warn!(cert = %name, "could not read the status document: {}", crate::text::chain(&e));
            return;
        }
    };
    let previous = read.doc.as_ref().map(|d| &d.data);
    let (issued, version) = match &attempt {
        Attempt::Stored { issued, version }
        | Attempt::Existing { issued, version }
        | Attempt::Imported {
            issued, version, ..
        }
        | Attempt::Failed {
            current: issued,
            version,
            ..
        } => (*issued, *version),
    };
    let mut status = StatusRecord {
        schema: SCHEMA_VERSION,
        not_before: issued.not_before,
        not_after: issued.not_after,
        serial: issued.serial.clone(),
        cert_version: version,
        last_result: "renewed".into(),
        last_attempt_at: now,
        failures: 0,
        last_error: None,
        last_failure_at: None,
        ari: None,
        revoked_at: None,
        // Set by `leftovers` after the lock is released.
        dns_leftovers: previous.map_or(0, |p| p.dns_leftovers),
    };
    match attempt {
        Attempt::Stored { .. } => {}
        Attempt::Existing { .. } => {
            if let Some(p) = previous {
                return tracing::debug!(cert = %name, "status already recorded (version {})", p.cert_version);
            }
            status.last_result = "imported".into();
        }
        Attempt::Imported { needs, .. } => {
            status.last_result = "imported".into();
            status.last_error = needs.map(str::to_string);
        }
        Attempt::Failed { error, .. } => {
            status.ari = previous.and_then(|p| p.ari.clone());
            status.revoked_at = previous.and_then(|p| p.revoked_at);
            status.last_result = "failed".into();
            status.failures = previous.map_or(0, |p| p.failures).saturating_add(1);
            status.last_error = Some(error.to_string());
            status.last_failure_at = Some(now);
        }
    }
    if let Err(e) = ctx.store.save_status(name, &status, read.expect).await {
        tracing::warn!(cert = %name, "could not write the status document: {}", crate::text::chain(&e));
    }
}

/// Record how many DNS-01 values are left in DNS for `name` (listed in its released lock),
/// when that changed: the index then makes the next run read the record and remove them.
pub(super) async fn leftovers(ctx: &Context, name: &CertName, count: usize) {
    let read = match ctx.store.load_status_for_repair(name).await {
        Ok((r, corrupt)) => {
            if let Some(e) = corrupt {
                tracing::warn!(cert = %name, "replacing a status document that is not valid: {e}");
            }
            r
        }
        Err(e) => {
            tracing::warn!(cert = %name, "could not read the status document: {}", crate::text::chain(&e));
            return;
        }
    };
    let count = u32::try_from(count).unwrap_or(u32::MAX);
    let Some(mut status) = read.doc.map(|d| d.data) else {
        // No status yet (a first issuance that failed): the lock still lists them.
        return;
    };
    if status.dns_leftovers == count {
        return;
    }
    status.dns_leftovers = count;
    if let Err(e) = ctx.store.save_status(name, &status, read.expect).await {
        tracing::warn!(cert = %name, "could not write the status document: {}", crate::text::chain(&e));
    }
}
