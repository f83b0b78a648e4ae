//! Prometheus metrics of a `renew` run: a text file for node_exporter's textfile collector
//! (`--metrics-file`) and a push to a Pushgateway (`--pushgateway`).
//!
//! Names follow cert-manager where they mean the same thing. Both outputs are what the user
//! asked for, not state: nothing is read back, except the last-success time of the previous
//! file, which a failed run keeps.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::report::{CertResult, Report, Verdict};

/// Where a run's metrics go.
#[derive(Clone, Default)]
pub struct Sinks {
    pub file: Option<PathBuf>,
    /// Pushgateway base URL; metrics go to `<url>/metrics/job/certvault`.
    pub pushgateway: Option<String>,
}

/// The Pushgateway URL may carry Basic-auth credentials: only its host is shown.
impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let gw = self.pushgateway.as_deref().map(|u| {
            reqwest::Url::parse(u)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| "<unparsable>".into())
        });
        f.debug_struct("Sinks")
            .field("file", &self.file)
            .field("pushgateway_host", &gw)
            .finish()
    }
}

impl Sinks {
    pub fn is_empty(&self) -> bool {
        self.file.is_none() && self.pushgateway.is_none()
    }
}

pub const LAST_SUCCESS: &str = "certvault_run_last_success_timestamp_seconds";

/// A metrics output that failed. The failure is part of the message (not a separate cause).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write the metrics file {path}: {failure}; check that its folder exists and is writable")]
    File {
        path: PathBuf,
        failure: std::io::Error,
    },
    #[error("cannot push metrics to the Pushgateway at {url}: {failure}")]
    Push { url: String, failure: PushFailure },
}

/// Why a push did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum PushFailure {
    #[error("cannot reach it ({})", crate::text::chain(.0))]
    Unreachable(reqwest::Error),
    #[error("HTTP {status}: {body}")]
    Status {
        status: reqwest::StatusCode,
        /// The start of the answer's body.
        body: String,
    },
}

/// The Prometheus text exposition of a run. `last_success` is the time of the last
/// successful run: this one's end if it succeeded, else the previous one (if known).
pub fn exposition(report: &Report, ended_at: f64, last_success: Option<f64>) -> String {
    let per_cert = |value: &dyn Fn(&CertResult) -> Option<i64>| -> Vec<String> {
        report
            .certificates
            .iter()
            .filter_map(|c| {
                Some(format!(
                    "{{name=\"{}\"}} {}",
                    label(c.name.as_str()),
                    value(c)?
                ))
            })
            .collect()
    };
    let mut ready = Vec::new();
    for c in &report.certificates {
        let condition = match c.verdict {
            Verdict::Deleted => continue,
            Verdict::Failed => "False",
            Verdict::Skipped | Verdict::Unconfirmed => "Unknown",
            Verdict::Renewed | Verdict::NotDue | Verdict::Deferred | Verdict::Due => {
                match c.not_after {
                    Some(t) if t.unix_timestamp() as f64 > ended_at => "True",
                    _ => "False",
                }
            }
        };
        for cond in ["True", "False", "Unknown"] {
            ready.push(format!(
                "{{condition=\"{cond}\",name=\"{}\"}} {}",
                label(c.name.as_str()),
                u8::from(cond == condition)
            ));
        }
    }
    let t = &report.totals;
    let families: [(&str, &str, &str, Vec<String>); 7] = [
        (
            "certvault_certificate_expiration_timestamp_seconds",
            "gauge",
            "The date after which the certificate expires (notAfter), as a Unix timestamp.",
            per_cert(&|c| c.not_after.map(|t| t.unix_timestamp())),
        ),
        (
            "certvault_certificate_renewal_timestamp_seconds",
            "gauge",
            "The time from which the certificate is due for renewal, as a Unix timestamp.",
            per_cert(&|c| c.renew_at.map(|t| t.unix_timestamp())),
        ),
        (
            "certvault_certificate_ready_status",
            "gauge",
            "The ready status of the certificate after the last run (1 for its current condition).",
            ready,
        ),
        (
            LAST_SUCCESS,
            "gauge",
            "When the last run in which no certificate failed ended, as a Unix timestamp.",
            last_success
                .map(|t| format!(" {}", seconds(t)))
                .into_iter()
                .collect(),
        ),
        (
            "certvault_run_duration_seconds",
            "gauge",
            "How long the last run took.",
            vec![format!(" {}", seconds(report.duration_seconds))],
        ),
        (
            "certvault_renewals_total",
            "counter",
            "Certificates of the last run, by result (renewed, failed, skipped, deferred, unconfirmed).",
            [
                ("deferred", t.deferred),
                ("failed", t.failed),
                ("renewed", t.renewed),
                ("skipped", t.skipped),
                ("unconfirmed", t.unconfirmed),
            ]
            .iter()
            .map(|(result, n)| format!("{{result=\"{result}\"}} {n}"))
            .collect(),
        ),
        (
            "certvault_dns_leftovers",
            "gauge",
            "DNS-01 values the last run could not remove from DNS (the next run removes them).",
            vec![format!(" {}", t.dns_left)],
        ),
    ];
    // A sharded run labels every sample with its part, so N jobs' series stay apart.
    let shard = report
        .shard
        .map(|p| format!("shard=\"{}\"", label(&p.to_string())));
    let mut out = String::new();
    for (name, kind, help, samples) in families {
        if samples.is_empty() {
            continue;
        }
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for s in samples {
            let _ = match (&shard, s.strip_prefix('{')) {
                (None, _) => writeln!(out, "{name}{s}"),
                (Some(l), Some(rest)) => writeln!(out, "{name}{{{l},{rest}"),
                (Some(l), None) => writeln!(out, "{name}{{{l}}}{s}"),
            };
        }
    }
    out
}

/// The Pushgateway group of a run: `job=certvault`, plus `shard` for a sharded run (its
/// value base64url-encoded in the path, as the Pushgateway reads `shard@base64`), so the
/// shards of one fleet never replace each other's metrics.
pub fn push_url(base: &str, shard: Option<crate::index::Part>) -> String {
    use base64::Engine as _;
    let mut url = format!("{}/metrics/job/certvault", base.trim_end_matches('/'));
    if let Some(p) = shard {
        let value = base64::engine::general_purpose::URL_SAFE.encode(p.to_string());
        let _ = write!(url, "/shard@base64/{value}");
    }
    url
}

fn seconds(t: f64) -> String {
    format!("{t:.3}")
}

/// Escape a label value (certificate names are plain, but stay correct).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The last-success time recorded in an earlier metrics file, if any.
pub fn previous_last_success(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(LAST_SUCCESS)?;
            // With or without labels: a sharded run writes `{shard="I/N"}`.
            let rest = match rest.strip_prefix('{') {
                Some(labels) => &labels[labels.find('}')? + 1..],
                None => rest,
            };
            rest.strip_prefix(' ')
        })
        .and_then(|v| v.trim().parse().ok())
}

/// Write `text` to `path` atomically: a temporary file in the same folder, then a rename,
/// so the textfile collector never reads half a file.
pub fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    let err = |failure| Error::File {
        path: path.to_path_buf(),
        failure,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| err(std::io::Error::other("the path names no file")))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(e)
        })
}

/// Push to a Pushgateway under `job=certvault`. A successful run replaces the group (PUT);
/// a failed one only updates the metrics it sends (POST), so the last-success time stays.
pub async fn push(
    http: &reqwest::Client,
    url: &str,
    text: String,
    success: bool,
) -> Result<(), Error> {
    // The URL may carry Basic-auth credentials (user:password@): never in a message.
    let shown = match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => url.to_string(),
    };
    let err = |failure| Error::Push {
        url: shown.clone(),
        failure,
    };
    let request = if success {
        http.put(url)
    } else {
        http.post(url)
    };
    let response = request
        .header("Content-Type", "text/plain; version=0.0.4")
        .timeout(std::time::Duration::from_secs(10))
        .body(text)
        .send()
        .await
        .map_err(|e| err(PushFailure::Unreachable(e.without_url())))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        let body = response.text().await.unwrap_or_default();
        let mut body = body.trim().to_string();
        body.truncate(300);
        Err(err(PushFailure::Status { status, body }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_failed_run_keeps_the_previous_success_time() {
        let start = datetime!(2026-11-26 10:00 UTC);
        let mut ok = CertResult::new("web".parse().unwrap(), Verdict::NotDue);
        ok.not_after = Some(datetime!(2027-01-01 0:00 UTC));
        ok.renew_at = Some(datetime!(2026-12-01 0:00 UTC));
        let mut bad = CertResult::new("api".parse().unwrap(), Verdict::Failed);
        bad.not_after = Some(datetime!(2026-11-30 0:00 UTC));
        let report = Report::new(vec![ok, bad], start, start + time::Duration::seconds(2));
        let end = (start.unix_timestamp() + 2) as f64;
        let text = exposition(&report, end, None);
        assert!(!text.contains(LAST_SUCCESS), "{text}");
        assert!(
            text.contains("certvault_certificate_ready_status{condition=\"False\",name=\"api\"} 1")
        );
        assert!(
            text.contains("certvault_certificate_ready_status{condition=\"True\",name=\"web\"} 1")
        );
        assert!(text.contains(
            "certvault_certificate_expiration_timestamp_seconds{name=\"web\"} 1798761600"
        ));
        assert!(text.contains("certvault_renewals_total{result=\"failed\"} 1"));

        let dir = std::env::temp_dir().join(format!("certvault-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("certvault.prom");
        write_file(&path, &exposition(&report, end, Some(1234.5))).unwrap();
        assert_eq!(previous_last_success(&path), Some(1234.5));
        // A sharded run's file: the sample carries the shard label.
        let mut sharded = report;
        sharded.shard = "1/4".parse().ok();
        assert!(sharded.shard.is_some());
        write_file(&path, &exposition(&sharded, end, Some(99.0))).unwrap();
        assert_contains_shard(&std::fs::read_to_string(&path).unwrap());
        assert_eq!(previous_last_success(&path), Some(99.0));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn assert_contains_shard(text: &str) {
        assert!(
            text.contains(&format!("{LAST_SUCCESS}{{shard=\"1/4\"}} 99")),
            "{text}"
        );
    }
}
