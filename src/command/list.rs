//! `certvault list`: what is stored, when each certificate renews, and why.

use serde::Serialize;
use time::OffsetDateTime;

use super::{relative, Context, Outcome};
use crate::model::CertRecord;
use crate::renew::{decide, rfc3339, Decision, Facts, Reason};
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
}

#[derive(Debug, Serialize)]
struct Broken {
    name: String,
    error: String,
}

/// The renewal point and the reason, as `decide` sees it.
pub(crate) fn schedule(
    now: OffsetDateTime,
    record: &CertRecord,
) -> Result<(OffsetDateTime, Decision), x509::Invalid> {
    let current = x509::current(&record.issued.cert)?;
    let decision = decide(
        now,
        &Facts {
            wanted: &record.spec,
            current: Some(&current),
            force: false,
        },
    );
    let at = match &decision {
        Decision::Keep { renew_at, .. } => *renew_at,
        Decision::Renew(Reason::Due { renew_at, .. }) => *renew_at,
        Decision::Renew(Reason::Expired { not_after }) => *not_after,
        Decision::Renew(_) => now,
    };
    Ok((at, decision))
}

pub(super) async fn run(ctx: &Context, json: bool, now: OffsetDateTime) -> Result<Outcome, Error> {
    // A wrong --prefix / --mount is an error naming the paths, not an empty list.
    ctx.store.ensure_in_use(&ctx.settings.account).await?;
    let names = ctx.store.list_certs().await?;
    let loaded = ctx.store.load_certs(names).await;
    let mut rows = Vec::new();
    let mut broken = Vec::new();
    for (name, result) in loaded {
        let record = match result {
            Ok(Some(r)) => r,
            Ok(None) => continue, // deleted between list and read
            Err(e) => {
                broken.push(Broken {
                    name: name.to_string(),
                    error: crate::error::chain(&e),
                });
                continue;
            }
        };
        match schedule(now, &record.data) {
            Ok((renew_at, decision)) => {
                let issued = &record.data.issued;
                rows.push(Row {
                    name: name.to_string(),
                    domains: record
                        .data
                        .spec
                        .domains
                        .iter()
                        .map(|d| d.to_string())
                        .collect(),
                    key_type: record.data.spec.key_type.to_string(),
                    not_before: rfc3339(issued.not_before),
                    not_after: rfc3339(issued.not_after),
                    serial: issued.serial.clone(),
                    renew_at: rfc3339(renew_at),
                    due: decision.is_due(),
                    reason: match &decision {
                        Decision::Keep { basis, .. } => basis.to_string(),
                        Decision::Renew(r) => format!("due: {r}"),
                    },
                    version: record.version,
                });
            }
            Err(e) => broken.push(Broken {
                name: name.to_string(),
                error: e.to_string(),
            }),
        }
    }
    if json {
        #[derive(Serialize)]
        #[serde(untagged)]
        enum Entry<'a> {
            Row(&'a Row),
            Broken(&'a Broken),
        }
        let entries: Vec<Entry> = rows
            .iter()
            .map(Entry::Row)
            .chain(broken.iter().map(Entry::Broken))
            .collect();
        let text = serde_json::to_string_pretty(&entries).expect("plain data") + "\n";
        return Ok(Outcome {
            text,
            failed: !broken.is_empty(),
        });
    }
    let mut text = String::new();
    if rows.is_empty() && broken.is_empty() {
        text.push_str("no certificates stored yet; add one with `certvault issue`\n");
    }
    for r in &rows {
        let not_after =
            OffsetDateTime::parse(&r.not_after, &time::format_description::well_known::Rfc3339)
                .unwrap_or(now);
        let renew_at =
            OffsetDateTime::parse(&r.renew_at, &time::format_description::well_known::Rfc3339)
                .unwrap_or(now);
        text.push_str(&format!(
            "{}  [{}]\n  expires {} ({})\n  {}\n",
            r.name,
            r.domains.join(", "),
            r.not_after,
            relative(now, not_after),
            if r.due {
                format!(
                    "renews at the next run: {}",
                    r.reason.trim_start_matches("due: ")
                )
            } else {
                format!(
                    "renews {} ({}; {})",
                    r.renew_at,
                    relative(now, renew_at),
                    r.reason
                )
            }
        ));
    }
    for b in &broken {
        text.push_str(&format!("{}  UNREADABLE: {}\n", b.name, b.error));
    }
    Ok(Outcome {
        text,
        failed: !broken.is_empty(),
    })
}
