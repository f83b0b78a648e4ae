//! Notifications of a `renew` run without Prometheus (`--notify URL`): after a run with
//! failed, unconfirmed or deferred certificates, or certificates that expire within
//! `--notify-expiring`, one JSON document is POSTed to each URL.
//!
//! Two forms:
//! - `http(s)://…`: a generic JSON webhook; the body is [`Notification`] (`schema`
//!   `certvault.notify/v1`).
//! - `alertmanager+http(s)://host:port`: the Alertmanager API (`POST /api/v2/alerts`), one
//!   alert per certificate concerned, so Alertmanager's routes, silences and receivers
//!   (email, Slack, PagerDuty, …) take it from there.
//!
//! The body holds what the report holds (names, verdicts, reasons, errors): no key, token or
//! hook environment. A URL is only ever shown as scheme, host and port: Basic-auth
//! credentials and the path (Slack and Teams put their secret there) never appear. A failed
//! notification is reported and makes the exit code 1; it never changes what was stored.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use crate::report::{CertError, CertResult, Report, Totals, Verdict};
use crate::text::rfc3339;

/// Where notifications go, and what counts as expiring.
#[derive(Debug, Clone, Default)]
pub struct Notify {
    pub targets: Vec<Target>,
    /// A certificate whose notAfter is this close (after the run) is reported as expiring.
    pub expiring: Duration,
}

/// One `--notify` URL.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    kind: Kind,
    /// The URL requests go to (credentials included: reqwest sends them as Basic auth).
    url: reqwest::Url,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Json,
    Alertmanager,
}

/// A `--notify` value that is not a URL certvault can send to.
#[derive(Debug, thiserror::Error)]
#[error("write an http:// or https:// URL (a JSON webhook) or alertmanager+http(s)://HOST:PORT (the Alertmanager API)")]
pub struct BadTarget;

impl Target {
    pub fn parse(s: &str) -> Result<Self, BadTarget> {
        let s = s.trim();
        let (kind, rest) = match s.strip_prefix("alertmanager+") {
            Some(rest) => (Kind::Alertmanager, rest),
            None => (Kind::Json, s),
        };
        let mut url = reqwest::Url::parse(rest).map_err(|_| BadTarget)?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(BadTarget);
        }
        if kind == Kind::Alertmanager {
            let base = url.path().trim_end_matches('/').to_string();
            url.set_path(&format!("{base}/api/v2/alerts"));
        }
        Ok(Self { kind, url })
    }
}

/// Scheme, host and port only: never credentials, path or query.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = match self.kind {
            Kind::Json => "",
            Kind::Alertmanager => "alertmanager+",
        };
        let host = self.url.host_str().unwrap_or_default();
        match self.url.port() {
            Some(port) => write!(f, "{prefix}{}://{host}:{port}/…", self.url.scheme()),
            None => write!(f, "{prefix}{}://{host}/…", self.url.scheme()),
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({self})")
    }
}

/// Why a certificate is in a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Concern {
    /// The certificate failed (or its deploy hook did).
    Failed,
    /// Issued but Vault did not confirm the write: the next run tells whether it is stored.
    Unconfirmed,
    /// Due, left for a later run (order budget spent, or its CA paused).
    Deferred,
    /// Expires within `--notify-expiring` of the run's end.
    Expiring,
}

/// The JSON document a webhook receives.
#[derive(Debug, Serialize)]
pub struct Notification<'a> {
    /// `certvault.notify/v1`: fields are only ever added to this version.
    pub schema: &'static str,
    /// One line for people: what the run found.
    pub summary: String,
    pub started_at: String,
    pub duration_seconds: f64,
    /// The part of the fleet this run covered (`--shard I/N`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// The run's exit code was (or will be) 1.
    pub failed: bool,
    /// Counts of the whole run, as in `renew --output json`.
    pub totals: Totals,
    /// `--notify-expiring`, in seconds.
    pub expiring_within_seconds: u64,
    /// Only the certificates concerned.
    pub certificates: Vec<Concerned<'a>>,
}

/// One certificate of a notification.
#[derive(Debug, Serialize)]
pub struct Concerned<'a> {
    pub name: &'a str,
    pub verdict: Verdict,
    pub concerns: Vec<Concern>,
    pub reason: Option<&'a str>,
    pub error: Option<&'a CertError>,
    pub not_after: Option<String>,
    pub renew_at: Option<String>,
}

fn concerns(c: &CertResult, expiring_before: OffsetDateTime) -> Vec<Concern> {
    let mut out = Vec::new();
    match c.verdict {
        Verdict::Unconfirmed => out.push(Concern::Unconfirmed),
        Verdict::Deferred => out.push(Concern::Deferred),
        _ if c.is_failure() => out.push(Concern::Failed),
        _ => {}
    }
    let live = !matches!(c.verdict, Verdict::Deleted | Verdict::Skipped);
    if live && c.not_after.is_some_and(|t| t <= expiring_before) {
        out.push(Concern::Expiring);
    }
    out
}

/// What a run would send, or `None` when nothing concerns anyone.
pub fn notification<'a>(
    report: &'a Report,
    expiring: Duration,
    now: OffsetDateTime,
) -> Option<Notification<'a>> {
    let before = now + expiring;
    let certificates: Vec<Concerned> = report
        .certificates
        .iter()
        .filter_map(|c| {
            let concerns = concerns(c, before);
            (!concerns.is_empty()).then(|| Concerned {
                name: c.name.as_str(),
                verdict: c.verdict,
                concerns,
                reason: c.reason.as_deref(),
                error: c.error.as_ref(),
                not_after: c.not_after.map(rfc3339),
                renew_at: c.renew_at.map(rfc3339),
            })
        })
        .collect();
    if certificates.is_empty() {
        return None;
    }
    let count = |k: Concern| {
        certificates
            .iter()
            .filter(|c| c.concerns.contains(&k))
            .count()
    };
    let days = expiring.as_secs() / 86_400;
    let mut parts = Vec::new();
    for (k, what) in [
        (Concern::Failed, "failed".to_string()),
        (Concern::Unconfirmed, "unconfirmed".to_string()),
        (Concern::Deferred, "deferred".to_string()),
        (Concern::Expiring, format!("expiring within {days}d")),
    ] {
        let n = count(k);
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    let shard = report.shard.map(|p| p.to_string());
    let summary = match &shard {
        Some(s) => format!("certvault renew (shard {s}): {}", parts.join(", ")),
        None => format!("certvault renew: {}", parts.join(", ")),
    };
    Some(Notification {
        schema: "certvault.notify/v1",
        summary,
        started_at: rfc3339(report.started_at),
        duration_seconds: report.duration_seconds,
        shard,
        failed: report.failed,
        totals: report.totals,
        expiring_within_seconds: expiring.as_secs(),
        certificates,
    })
}

/// The Alertmanager API form: one alert per certificate concerned, active for a day unless
/// a later run sends it again.
fn alerts(n: &Notification, now: OffsetDateTime) -> serde_json::Value {
    let ends = rfc3339(now + Duration::from_secs(86_400));
    let alerts: Vec<serde_json::Value> = n
        .certificates
        .iter()
        .map(|c| {
            let (alertname, severity) = match c.concerns[0] {
                Concern::Failed | Concern::Unconfirmed => {
                    ("CertvaultCertificateFailed", "critical")
                }
                Concern::Deferred => ("CertvaultCertificateDeferred", "warning"),
                Concern::Expiring => ("CertvaultCertificateExpiring", "critical"),
            };
            let mut labels = serde_json::json!({
                "alertname": alertname,
                "severity": severity,
                "name": c.name,
                "job": "certvault",
            });
            if let Some(s) = &n.shard {
                labels["shard"] = s.clone().into();
            }
            let detail = c
                .error
                .map(|e| crate::text::one_line(&e.to_string()).into_owned())
                .or(c.reason.map(str::to_string))
                .unwrap_or_default();
            serde_json::json!({
                "labels": labels,
                "annotations": {
                    "summary": format!("certificate {} {}", c.name, words(&c.concerns)),
                    "description": detail,
                    "not_after": c.not_after.clone().unwrap_or_default(),
                },
                "startsAt": rfc3339(now),
                "endsAt": ends,
            })
        })
        .collect();
    serde_json::Value::Array(alerts)
}

fn words(concerns: &[Concern]) -> String {
    concerns
        .iter()
        .map(|c| match c {
            Concern::Failed => "failed",
            Concern::Unconfirmed => "was not confirmed by Vault",
            Concern::Deferred => "was deferred",
            Concern::Expiring => "expires soon",
        })
        .collect::<Vec<_>>()
        .join(" and ")
}

/// A notification that was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot send the notification to {target}: cannot reach it ({})", crate::text::chain(.failure))]
    Unreachable {
        target: String,
        failure: reqwest::Error,
    },
    #[error("cannot send the notification to {target}: HTTP {status}: {body}")]
    Status {
        target: String,
        status: reqwest::StatusCode,
        body: String,
    },
}

/// Send the run's notification to every target; the errors of those that failed.
pub async fn send(
    http: &reqwest::Client,
    notify: &Notify,
    report: &Report,
    now: OffsetDateTime,
) -> Vec<Error> {
    let Some(n) = notification(report, notify.expiring, now) else {
        return Vec::new();
    };
    let json = serde_json::to_value(&n).unwrap_or_default();
    let mut errors = Vec::new();
    for target in &notify.targets {
        let body = match target.kind {
            Kind::Json => &json,
            Kind::Alertmanager => &alerts(&n, now),
        };
        match post(http, target, body).await {
            Ok(()) => {
                tracing::info!(target = %target, certificates = n.certificates.len(), "sent notification")
            }
            Err(e) => errors.push(e),
        }
    }
    errors
}

async fn post(
    http: &reqwest::Client,
    target: &Target,
    body: &serde_json::Value,
) -> Result<(), Error> {
    let response = http
        .post(target.url.clone())
        .json(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| Error::Unreachable {
            target: target.to_string(),
            failure: e.without_url(),
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let mut body = response.text().await.unwrap_or_default().trim().to_string();
    body.truncate(300);
    Err(Error::Status {
        target: target.to_string(),
        status,
        body: crate::text::one_line(&body).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_never_shows_credentials_or_path() {
        let t =
            Target::parse("https://user:s3cret@hooks.example:8443/services/T0/B0/XYZ?k=v").unwrap();
        assert_eq!(t.to_string(), "https://hooks.example:8443/…");
        assert!(!format!("{t:?}").contains("s3cret"));
        let a = Target::parse("alertmanager+http://am:9093/").unwrap();
        assert_eq!(a.url.as_str(), "http://am:9093/api/v2/alerts");
        assert_eq!(a.to_string(), "alertmanager+http://am:9093/…");
        for bad in ["", "ftp://x", "hooks.example/x", "alertmanager+", "http://"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
