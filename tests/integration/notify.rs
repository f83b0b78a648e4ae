//! `renew --notify`: the run's notification reaches real receivers, the webhook server of
//! Debian's `webhook` package (a generic JSON webhook that checks Basic auth) and
//! Prometheus Alertmanager's API; it holds the failing and the expiring certificates and no
//! secret; a failing receiver is reported without its credentials and changes nothing stored.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::harness::*;

/// The webhook's Basic-auth user and password (`user:s3cret`).
const AUTH: &str = "dXNlcjpzM2NyZXQ=";

/// A running `webhook` whose hook `certvault` saves each payload to a file when the request
/// carries the Basic auth `user:s3cret`, and answers 401 otherwise.
struct Webhook {
    _server: KillOnDrop,
    port: u16,
    out: PathBuf,
    _dir: TempDir,
}

impl Webhook {
    fn start() -> Self {
        let dir = tempdir("webhook");
        let out = dir.join("received");
        std::fs::create_dir_all(&out).unwrap();
        let script = dir.join("save.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nprintf '%s' \"$1\" > '{}/'\"$(date +%s%N)\".json\n",
                out.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let hooks = serde_json::json!([{
            "id": "certvault",
            "execute-command": script,
            "command-working-directory": dir.path(),
            "include-command-output-in-response": true,
            "http-methods": ["POST"],
            "pass-arguments-to-command": [{"source": "entire-payload"}],
            "trigger-rule": {"match": {
                "type": "value",
                "value": format!("Basic {AUTH}"),
                "parameter": {"source": "header", "name": "Authorization"},
            }},
            "trigger-rule-mismatch-http-response-code": 401,
        }]);
        let hooks_file = dir.join("hooks.json");
        std::fs::write(&hooks_file, hooks.to_string()).unwrap();
        let port = free_port();
        let server = KillOnDrop(
            Command::new(env("CERTVAULT_TEST_WEBHOOK"))
                .arg("-hooks")
                .arg(&hooks_file)
                .args(["-ip", "127.0.0.1", "-port", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start webhook"),
        );
        wait_until("webhook listens", 20, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Self {
            _server: server,
            port,
            out,
            _dir: dir,
        }
    }

    fn url(&self, credentials: &str) -> String {
        format!(
            "http://{credentials}@127.0.0.1:{}/hooks/certvault",
            self.port
        )
    }

    /// The raw payloads received, oldest first.
    fn received(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect()
    }
}

/// A running Alertmanager with one receiver that sends nowhere.
struct Alertmanager {
    _server: KillOnDrop,
    port: u16,
    _dir: TempDir,
}

impl Alertmanager {
    fn start() -> Self {
        let dir = tempdir("alertmanager");
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: nowhere\nreceivers:\n  - name: nowhere\n",
        )
        .unwrap();
        let port = free_port();
        let server = KillOnDrop(
            Command::new(env("CERTVAULT_TEST_ALERTMANAGER"))
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.path={}", dir.join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start alertmanager"),
        );
        let me = Self {
            _server: server,
            port,
            _dir: dir,
        };
        wait_until("alertmanager is ready", 30, || {
            http()
                .get(format!("http://127.0.0.1:{port}/-/ready"))
                .send()
                .is_ok_and(|r| r.status().is_success())
        });
        me
    }

    fn alerts(&self) -> Vec<Value> {
        let v: Value = http()
            .get(format!("http://127.0.0.1:{}/api/v2/alerts", self.port))
            .send()
            .unwrap()
            .json()
            .unwrap();
        v.as_array().cloned().unwrap_or_default()
    }
}

/// Whole days from now until `rfc3339`, rounded up.
fn days_until(rfc3339: &str) -> i64 {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap();
    ((t - time::OffsetDateTime::now_utc()).whole_seconds() + 86_399) / 86_400
}

/// An installation with `web` (renews) and `api` (its auth hook fails under BREAK).
fn two_certificates(tag: &str) -> (Env, String) {
    let e = Env::ready(tag);
    let d = domain(tag);
    e.issue("web", &[&format!("web.{d}")], &[]).ok();
    e.issue_with_auth_hook("api", &[&format!("api.{d}")], &breakable_auth_hook())
        .ok();
    let list = e.run(&["list", "--output", "json"]).ok().json();
    let not_after = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "web")
        .map(|c| c["not_after"].as_str().unwrap().to_string())
        .unwrap();
    (e, not_after)
}

#[test]
fn failing_and_expiring_certificates_reach_a_webhook_and_alertmanager_without_secrets() {
    let hook = Webhook::start();
    let am = Alertmanager::start();
    let (e, not_after) = two_certificates("notify");
    // A window one day longer than the certificates' lifetime: both expire within it.
    let window = format!("{}d", days_until(&not_after) + 1);
    let run = e.with_var("BREAK", "1").run(&[
        "renew",
        "--force",
        "--notify",
        &hook.url("user:s3cret"),
        "--notify",
        &format!("alertmanager+http://127.0.0.1:{}", am.port),
        "--notify-expiring",
        &window,
    ]);
    assert_eq!(run.code, 1, "api failed: {}", run.all());
    assert!(!run.all().contains("s3cret"), "{}", run.all());

    let received = hook.received();
    assert_eq!(received.len(), 1, "one notification per run: {received:?}");
    let body = &received[0];
    for secret in ["PRIVATE KEY", "s3cret", &e.token] {
        assert!(
            !body.contains(secret),
            "{secret} in the notification: {body}"
        );
    }
    let n: Value = serde_json::from_str(body).unwrap();
    assert_eq!(n["schema"], "certvault.notify/v1");
    assert_eq!(n["failed"], true);
    assert_eq!(n["totals"]["failed"], 1, "{n}");
    assert_eq!(n["totals"]["renewed"], 1, "{n}");
    assert_contains(n["summary"].as_str().unwrap(), "1 failed");
    let certs = n["certificates"].as_array().unwrap();
    let of = |name: &str| certs.iter().find(|c| c["name"] == name).cloned().unwrap();
    let api = of("api");
    assert_eq!(api["verdict"], "failed");
    assert_eq!(api["concerns"], serde_json::json!(["failed", "expiring"]));
    assert_contains(api["error"].as_str().unwrap(), "dns api said no");
    let web = of("web");
    assert_eq!(web["verdict"], "renewed");
    assert_eq!(web["concerns"], serde_json::json!(["expiring"]));
    assert!(web["not_after"].is_string());

    let alerts = am.alerts();
    let alert = |name: &str| {
        alerts
            .iter()
            .find(|a| a["labels"]["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no alert for {name}: {alerts:?}"))
    };
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    let api = alert("api");
    assert_eq!(api["labels"]["alertname"], "CertvaultCertificateFailed");
    assert_eq!(api["labels"]["severity"], "critical");
    assert_contains(
        api["annotations"]["description"].as_str().unwrap(),
        "dns api said no",
    );
    assert_eq!(api["status"]["state"], "active");
    assert_eq!(
        alert("web")["labels"]["alertname"],
        "CertvaultCertificateExpiring"
    );
}

#[test]
fn nothing_is_sent_when_all_is_well_and_a_failing_receiver_changes_nothing_stored() {
    let hook = Webhook::start();
    let (e, not_after) = two_certificates("notify-quiet");
    let url = hook.url("user:s3cret");

    // Renewed and far from expiry: no notification, exit 0.
    e.run(&[
        "renew",
        "--force",
        "--notify",
        &url,
        "--notify-expiring",
        "1d",
    ])
    .ok();
    assert!(hook.received().is_empty(), "{:?}", hook.received());

    // The receiver refuses (wrong password) and another is down: the run says so, names
    // neither credentials nor path, exits 1, and the renewal is stored all the same.
    let path = e.cert_path("web");
    let (_, before) = vault_read(&path).unwrap();
    let down = free_port();
    let window = format!("{}d", days_until(&not_after) + 1);
    let run = e
        .with_var(
            "CERTVAULT_NOTIFY",
            &format!(
                "{} http://user:s3cret@127.0.0.1:{down}/x",
                hook.url("user:wrong-pass")
            ),
        )
        .run(&["renew", "--force", "web", "--notify-expiring", &window]);
    assert_eq!(run.code, 1, "{}", run.all());
    let port = hook.port;
    assert_contains(
        &run.stderr,
        &format!("cannot send the notification to http://127.0.0.1:{port}/…: HTTP 401"),
    );
    assert_contains(
        &run.stderr,
        &format!("cannot send the notification to http://127.0.0.1:{down}/…: cannot reach it"),
    );
    for secret in ["wrong-pass", "s3cret", "/hooks/certvault"] {
        assert!(!run.all().contains(secret), "{secret}: {}", run.all());
    }
    assert!(hook.received().is_empty());
    let (_, after) = vault_read(&path).unwrap();
    assert_eq!(after, before + 1, "the renewal is stored: {}", run.all());
    assert_contains(&run.stdout, "renewed  web");

    // A value that is no URL: exit 2 before anything runs, credentials not echoed.
    let run = e.run(&["renew", "--notify", "smtp://user:s3cret@mail.example"]);
    fails_with(&run, 2, "--notify");
    assert!(!run.all().contains("s3cret"), "{}", run.all());
}
