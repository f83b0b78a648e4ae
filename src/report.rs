//! What a `renew` run did, per certificate: the text summary, `--output json`, and the
//! facts the metrics are made from.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use serde::{Serialize, Serializer};
use time::OffsetDateTime;

use crate::model::CertName;
use crate::text::relative;
use crate::text::rfc3339;
use crate::Error;

/// What went wrong with a certificate: the error itself, shared (results and failed account
/// connections are cloned), printed with its causes (`a: b: c`) in the summary and the JSON.
#[derive(Debug, Clone)]
pub struct CertError(Arc<Error>);

impl CertError {
    pub fn error(&self) -> &Error {
        &self.0
    }
}

impl From<Error> for CertError {
    fn from(e: Error) -> Self {
        Self(Arc::new(e))
    }
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::text::chain(self.error()))
    }
}

impl Serialize for CertError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What happened to one certificate in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Renewed,
    NotDue,
    Failed,
    /// Not this run's to do: another run holds its lock or has just written it.
    Skipped,
    /// The latest version is deleted in Vault: not renewed.
    Deleted,
    /// Due, but left for a later run: the `--max-orders` budget was spent, or its CA is
    /// paused (rate limit, or failing). The reason says which.
    Deferred,
    /// `renew --dry-run`: would be ordered now.
    Due,
    /// Issued by the CA and sent to Vault, which did not confirm the write (it stopped
    /// answering): it may be stored. The error names the serial; the next run reads the
    /// record and reports which. Counts as a failure for the exit code.
    Unconfirmed,
}

/// One certificate's line of the report (`renew --output json` prints these).
#[derive(Debug, Clone, Serialize)]
pub struct CertResult {
    pub name: CertName,
    pub verdict: Verdict,
    /// Why it renewed, or why it is not due yet (the renewal rule), or why it was skipped.
    /// The fixed texts of the renewal rule are not copied per certificate (a no-op run over
    /// a million keeps a million of these).
    pub reason: Option<std::borrow::Cow<'static, str>>,
    /// The certificate's notAfter after this run (the new one when renewed).
    #[serde(serialize_with = "opt_time")]
    pub not_after: Option<OffsetDateTime>,
    /// When it will renew (not-due and renewed certificates).
    #[serde(serialize_with = "opt_time")]
    pub renew_at: Option<OffsetDateTime>,
    /// The record's KV version after this run.
    pub version: Option<u64>,
    /// What went wrong: a failure, or a deploy hook that failed after the renewal.
    pub error: Option<CertError>,
    /// Skipped because another run's lock lease holds it until then.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_time")]
    pub locked_until: Option<OffsetDateTime>,
}

impl CertResult {
    pub fn new(name: CertName, verdict: Verdict) -> Self {
        Self {
            name,
            verdict,
            reason: None,
            not_after: None,
            renew_at: None,
            version: None,
            error: None,
            locked_until: None,
        }
    }

    /// A certificate that failed with `error`.
    pub fn failed(name: CertName, error: impl Into<CertError>) -> Self {
        let mut r = Self::new(name, Verdict::Failed);
        r.error = Some(error.into());
        r
    }

    /// A failed certificate, or a renewed one whose deploy hook failed: the run exits 1.
    pub fn is_failure(&self) -> bool {
        matches!(self.verdict, Verdict::Failed | Verdict::Unconfirmed) || self.error.is_some()
    }
}

fn opt_time<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}

/// Counts of a run, by verdict.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Totals {
    pub renewed: usize,
    pub not_due: usize,
    pub failed: usize,
    pub skipped: usize,
    pub deleted: usize,
    pub deferred: usize,
    /// `--dry-run`: certificates that would be ordered now.
    #[serde(skip_serializing_if = "is_zero")]
    pub due: usize,
    /// Issued, sent to Vault, and not confirmed by it: may be stored (the next run tells).
    #[serde(skip_serializing_if = "is_zero")]
    pub unconfirmed: usize,
    /// DNS-01 values this run could not remove (DNS server or API down): listed in the
    /// released locks, the next run removes them.
    #[serde(skip_serializing_if = "is_zero")]
    pub dns_left: usize,
    /// DNS-01 values earlier runs left that this run removed (or dropped as not the
    /// certificate's).
    #[serde(skip_serializing_if = "is_zero")]
    pub dns_cleared: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A whole run.
#[derive(Debug, Serialize)]
pub struct Report {
    pub certificates: Vec<CertResult>,
    pub totals: Totals,
    #[serde(serialize_with = "time_str")]
    pub started_at: OffsetDateTime,
    pub duration_seconds: f64,
    /// Any certificate failed (or its deploy hook did), or a CA was paused because it
    /// failed: the exit code is 1.
    pub failed: bool,
    /// `--dry-run`: nothing was ordered or written.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// `--shard I/N` (or `auto`): the part this run covered, as `I/N`.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_display"
    )]
    pub shard: Option<crate::index::Part>,
}

fn opt_display<S: Serializer, T: std::fmt::Display>(
    v: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

fn time_str<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*t))
}

impl Report {
    pub fn new(
        mut certificates: Vec<CertResult>,
        started_at: OffsetDateTime,
        ended_at: OffsetDateTime,
    ) -> Self {
        // Names are unique: an unstable sort orders them the same, in place (a stable one
        // allocates half the results again).
        certificates.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let mut totals = Totals::default();
        for c in &certificates {
            *match c.verdict {
                Verdict::Renewed => &mut totals.renewed,
                Verdict::NotDue => &mut totals.not_due,
                Verdict::Failed => &mut totals.failed,
                Verdict::Skipped => &mut totals.skipped,
                Verdict::Deleted => &mut totals.deleted,
                Verdict::Deferred => &mut totals.deferred,
                Verdict::Due => &mut totals.due,
                Verdict::Unconfirmed => &mut totals.unconfirmed,
            } += 1;
        }
        let failed = certificates.iter().any(CertResult::is_failure);
        Self {
            certificates,
            totals,
            started_at,
            duration_seconds: (ended_at - started_at).as_seconds_f64().max(0.0),
            failed,
            dry_run: false,
            shard: None,
        }
    }

    /// The human summary, one line per certificate (`only_failures`: for `-q`, only the
    /// failed ones), then the totals: written to `out` a line at a time, so a large
    /// fleet's report is never held whole.
    pub fn write_lines(
        &self,
        out: &mut dyn std::io::Write,
        now: OffsetDateTime,
        only_failures: bool,
    ) -> std::io::Result<()> {
        let mut text = String::new();
        for c in self
            .certificates
            .iter()
            .filter(|c| !only_failures || c.is_failure())
        {
            text.clear();
            let name = &c.name;
            // Reasons and errors may quote renew-writable documents: one line each.
            let reason = crate::text::one_line(c.reason.as_deref().unwrap_or_default());
            let error = c
                .error
                .as_ref()
                .map(|e| crate::text::one_line(&e.to_string()).into_owned())
                .unwrap_or_default();
            let _ = match c.verdict {
                Verdict::Renewed => writeln!(
                    text,
                    "renewed  {name}: {reason}; now valid until {} (version {})",
                    c.not_after.map(rfc3339).unwrap_or_default(),
                    c.version.unwrap_or_default()
                ),
                Verdict::NotDue => {
                    let at = c.renew_at.unwrap_or(now);
                    writeln!(
                        text,
                        "not due  {name}: renews {} ({}; {reason})",
                        rfc3339(at),
                        relative(now, at)
                    )
                }
                Verdict::Skipped => writeln!(text, "skipped  {name}: {reason}"),
                Verdict::Deleted => writeln!(
                    text,
                    "deleted  {name}: its latest version is deleted in Vault, so it is not renewed; `certvault issue {name} ...` recreates it"
                ),
                Verdict::Failed => writeln!(text, "FAILED   {name}: {error}"),
                Verdict::Deferred => writeln!(text, "deferred {name}: {reason}"),
                Verdict::Due => writeln!(text, "due      {name}: would renew now: {reason}"),
                Verdict::Unconfirmed => writeln!(text, "UNKNOWN  {name}: {error}"),
            };
            if c.verdict == Verdict::Renewed && !error.is_empty() {
                let _ = writeln!(text, "FAILED   {name}: {error}");
            }
            out.write_all(text.as_bytes())?;
        }
        text.clear();
        let t = &self.totals;
        if self.dry_run {
            let _ = write!(
                text,
                "dry run (nothing ordered or written): {} due now, ",
                t.due
            );
        } else {
            text.push_str("summary: ");
        }
        let _ = write!(
            text,
            "{} renewed, {} not due, {} failed",
            t.renewed, t.not_due, t.failed
        );
        if t.unconfirmed > 0 {
            let _ = write!(text, ", {} not confirmed by Vault", t.unconfirmed);
        }
        if t.deferred > 0 {
            let _ = write!(text, ", {} deferred", t.deferred);
        }
        if t.skipped > 0 {
            let _ = write!(text, ", {} skipped", t.skipped);
        }
        if t.deleted > 0 {
            let _ = write!(text, ", {} deleted", t.deleted);
        }
        text.push('\n');
        let values = |n: usize| if n == 1 { "value" } else { "values" };
        if t.dns_left > 0 {
            let _ = writeln!(
                text,
                "{} DNS-01 {} left in DNS (its DNS server or API failed); the certificate's lock lists them and the next run removes them",
                t.dns_left,
                values(t.dns_left)
            );
        }
        if t.dns_cleared > 0 {
            let _ = writeln!(
                text,
                "{} DNS-01 {} left by an earlier run removed",
                t.dns_cleared,
                values(t.dns_cleared)
            );
        }
        let locked: Vec<&str> = self
            .certificates
            .iter()
            .filter(|c| c.locked_until.is_some())
            .map(|c| c.name.as_str())
            .collect();
        if !locked.is_empty() {
            let _ = writeln!(
                text,
                "skipped because another run holds their lock: {} ({}); that run does them, or `certvault unlock NAME` if it is gone",
                locked.len(),
                locked.join(", ")
            );
        }
        out.write_all(text.as_bytes())
    }

    /// `--output json` written to `out`.
    pub fn write_json(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, self)?;
        out.write_all(b"\n")
    }
}
