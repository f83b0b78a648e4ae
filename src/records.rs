//! The documents certvault keeps in Vault, one layer above the vocabulary (`model`), DNS
//! (solver configurations, lock leftovers) and ARI (the stored window).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::model::{Issued, LayoutFields, Spec};

/// One KV v2 document per certificate at `<prefix>/certs/<name>`: the material, and a copy
/// of the spec it was issued for (for people and tools reading the record). `renew` never
/// trusts this copy: the renew policy may write this document, so what a renewal orders and
/// runs comes from [`SpecRecord`] at `specs/<name>`, which only the admin policy may write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertRecord {
    pub schema: u32,
    pub spec: Spec,
    #[serde(flatten)]
    pub issued: Issued,
    /// The consumer fields the spec's layouts ask for (rewritten with the material).
    #[serde(flatten)]
    pub layout: LayoutFields,
    /// What certvault learned from the CA about this certificate (ARI, lineage,
    /// revocation): written by `renew` and `revoke`, never trusted as a definition.
    #[serde(flatten)]
    pub facts: CaFacts,
    /// Fields a user added to the document: kept through renewals.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Runtime facts from the CA kept in the certificate document (`certs/<NAME>`), which the
/// renew token may write. A document without them loads (all default).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CaFacts {
    /// ACME Renewal Information (RFC 9773) for this certificate; absent when the CA has none.
    pub ari: Option<crate::ari::AriState>,
    /// The ACME account URL that ordered this certificate (`replaces` must come from it).
    pub ordered_by: Option<String>,
    /// The ARI identifier of the certificate this one replaced (sent as `replaces`).
    pub replaced: Option<String>,
    /// Why this certificate was ordered without `replaces` although it replaced one.
    pub replaces_dropped: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    pub revoke_reason: Option<String>,
}

/// A CA paused for `renew` (it rate-limited new orders) at `<prefix>/pauses/<account>`:
/// the next run honours it too. Key-free, so the renew token may write it without being
/// able to change the account document (and its key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseRecord {
    pub schema: u32,
    pub directory: String,
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

/// The admin-only definition of a certificate at `<prefix>/specs/<name>`: which names are
/// ordered, how DNS-01 is solved (hooks included) and what runs after a renewal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecRecord {
    pub schema: u32,
    #[serde(flatten)]
    pub spec: Spec,
}

/// What the last runs did with a certificate, at `<prefix>/status/<name>`: no key
/// material, so a monitoring token may read it. Written only when something happened
/// (a renewal, a failure), never by a run with nothing due.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRecord {
    pub schema: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub serial: String,
    /// The KV version of `certs/<name>` these facts describe.
    pub cert_version: u64,
    /// The last attempt: `renewed` or `failed`.
    pub last_result: String,
    #[serde(with = "time::serde::rfc3339")]
    pub last_attempt_at: OffsetDateTime,
    /// Failures since the last success.
    #[serde(default)]
    pub failures: u32,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_failure_at: Option<OffsetDateTime>,
    /// The certificate's ARI facts, as in `certs/<NAME>` (for monitors).
    #[serde(default)]
    pub ari: Option<crate::ari::AriState>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub revoked_at: Option<OffsetDateTime>,
    /// DNS-01 values a run could not remove (its DNS server or API was down): they are
    /// listed in the released lock `locks/<name>`, and the next run removes them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dns_leftovers: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A DNS solver at `<prefix>/dns/<name>`: its kind, options and credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SolverRecord {
    pub schema: u32,
    #[serde(flatten)]
    pub config: crate::dns::Config,
}

/// A per-certificate lock at `<prefix>/locks/<name>`, held while a run orders and writes
/// that certificate, so overlapping runs (a CronJob that starts again before the last one
/// ended) do not order the same certificate twice. It is a short lease that its holder
/// renews while it works, so a killed run blocks the certificate for about a minute.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockRecord {
    pub schema: u32,
    /// Who holds it: host (pod) name, pid and run id (for the message another run prints).
    pub holder: String,
    #[serde(with = "time::serde::rfc3339")]
    pub acquired_at: OffsetDateTime,
    /// After this the lease has lapsed (its holder died or lost Vault) and may be taken over.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The run that holds it (also in `holder`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    /// DNS-01 values the holder has presented and not yet removed: a run that takes the
    /// lease over from a dead holder removes them (after checking each: the renew role
    /// can write this document). An entry that does not parse is dropped, with a warning,
    /// so it cannot make the lock unreadable.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient_leftovers"
    )]
    pub presented: Vec<crate::dns::Leftover>,
}

/// The leftovers of a lease, each parsed on its own; what does not parse is dropped.
fn lenient_leftovers<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<crate::dns::Leftover>, D::Error> {
    let raw = Vec::<serde_json::Value>::deserialize(d)?;
    let total = raw.len();
    let parsed: Vec<crate::dns::Leftover> = raw
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    if parsed.len() < total {
        tracing::warn!(
            dropped = total - parsed.len(),
            "a lock lease lists DNS-01 values that do not parse; they are ignored"
        );
    }
    Ok(parsed)
}

/// The ACME account at `<prefix>/accounts/<name>`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Serialize, Deserialize)]
pub struct AccountRecord {
    pub schema: u32,
    pub directory: String,
    #[serde(default)]
    pub contact: Vec<String>,
    #[serde(default)]
    pub eab_kid: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// instant-acme's opaque credentials (account URL and private key), stored verbatim.
    pub credentials: serde_json::Value,
    /// Set by `certvault account deactivate`: the CA no longer accepts this account.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub deactivated_at: Option<OffsetDateTime>,
}

impl fmt::Debug for AccountRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountRecord")
            .field("directory", &self.directory)
            .field("contact", &self.contact)
            .field("credentials", &"<redacted>")
            .finish()
    }
}

/// A certificate as `renew` and `list` see it: its record and its admin-only spec (`None`
/// for a record written before specs had their own documents: `certvault migrate`).
#[derive(Debug)]
pub struct Entry {
    pub cert: crate::vault::Versioned<CertRecord>,
    pub spec: Option<crate::vault::Versioned<SpecRecord>>,
    /// The key-free status document, when there is a readable one.
    pub status: Option<StatusRecord>,
}
