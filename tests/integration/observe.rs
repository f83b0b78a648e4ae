//! Watching runs: JSON logs, `renew --output json`, metrics (file and a real Pushgateway,
//! checked by promtool), and deploy hooks.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::harness::*;

/// An environment with one certificate `web` (two names) issued through the hooks.
fn with_cert(tag: &str, extra: &[&str]) -> (Env, String) {
    let e = Env::ready(tag);
    let d = domain("o");
    e.issue("web", &[&d, &format!("*.{d}")], extra).ok();
    (e, d)
}

/// A certificate whose auth hook fails when BREAK is set.
fn add_breakable(e: &Env, name: &str, domain: &str) {
    e.issue_with_auth_hook(name, &[domain], &breakable_auth_hook())
        .ok();
}

fn breaking(e: &Env) -> Env {
    e.with_var("BREAK", "1")
}

fn promtool_check_metrics(text: &str) {
    let mut child = Command::new(env("PROMTOOL"))
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run promtool");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- metrics:\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of the one sample of `series` (name plus exact label text) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

fn unix(rfc3339: &str) -> f64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp() as f64
}

#[test]
fn json_logs_are_one_object_per_line_with_stable_keys_and_no_secret() {
    let (mut e, _) = with_cert("jsonlog", &[]);
    e.extra.push(("CERTVAULT_LOG_FORMAT".into(), "json".into()));
    let run = e.run(&["renew", "--force", "-vv"]).ok();
    let lines: Vec<&str> = run.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty(), "no log lines");
    let mut saw_cert = false;
    for line in &lines {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("not a JSON object per line ({err}): {line}"));
        for key in ["ts", "level", "msg"] {
            assert!(v[key].is_string(), "{key} missing: {line}");
        }
        time::OffsetDateTime::parse(
            v["ts"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("ts is RFC 3339");
        assert!(
            ["error", "warn", "info", "debug", "trace"].contains(&v["level"].as_str().unwrap()),
            "{line}"
        );
        if v["msg"] == "stored certificate" {
            assert_eq!(v["cert"], "web", "{line}");
            assert!(v["version"].is_u64(), "{line}");
            saw_cert = true;
        }
    }
    assert!(saw_cert, "no 'stored certificate' event:\n{}", run.stderr);
    let (doc, _) = vault_read(&e.cert_path("web")).unwrap();
    let key = doc["privkey"].as_str().unwrap();
    let key_body = key.lines().nth(1).unwrap();
    assert!(!run.all().contains(&e.token), "the Vault token leaked");
    assert!(!run.all().contains(key_body), "the private key leaked");

    // The flag works as well as the variable; text stays the default.
    e.extra.retain(|(k, _)| k != "CERTVAULT_LOG_FORMAT");
    let text = e.run(&["renew"]).ok();
    assert!(
        text.stderr.lines().all(|l| !l.starts_with('{')),
        "{}",
        text.stderr
    );
    let json = e.run(&["--log-format", "json", "list"]).ok();
    assert!(
        json.stderr.lines().all(|l| l.starts_with('{')),
        "{}",
        json.stderr
    );
}

#[test]
fn renew_output_json_reports_each_certificate_and_the_totals() {
    let (e, d) = with_cert("outjson", &[]);
    add_breakable(&e, "flaky", &format!("f.{d}"));
    let (web, v_web) = vault_read(&e.cert_path("web")).unwrap();

    let run = e.run(&["renew", "--output", "json"]).ok();
    let v: Value = serde_json::from_str(&run.stdout).expect("stdout is JSON");
    let certs = v["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 2);
    let w = certs.iter().find(|c| c["name"] == "web").unwrap();
    assert_eq!(w["verdict"], "not_due");
    assert_eq!(w["version"], v_web);
    assert_eq!(w["not_after"], web["not_after"]);
    assert!(w["reason"].as_str().unwrap().contains("1/3 of lifetime"));
    assert!(w["error"].is_null());
    assert_eq!(v["totals"]["not_due"], 2);
    assert_eq!(v["failed"], false);

    // One renews, one fails: exit 1, each reported with its verdict and error.
    e.fresh_account();
    let run = breaking(&e).run(&["renew", "--force", "--output", "json"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let v: Value = serde_json::from_str(&run.stdout).expect("stdout is JSON");
    let certs = v["certificates"].as_array().unwrap();
    let w = certs.iter().find(|c| c["name"] == "web").unwrap();
    let f = certs.iter().find(|c| c["name"] == "flaky").unwrap();
    let (web2, v_web2) = vault_read(&e.cert_path("web")).unwrap();
    assert_eq!(w["verdict"], "renewed");
    assert_eq!(w["reason"], "forced");
    assert_eq!(w["version"], v_web2);
    assert_eq!(v_web2, v_web + 1);
    assert_eq!(w["not_after"], web2["not_after"]);
    assert_eq!(f["verdict"], "failed");
    assert!(
        f["error"].as_str().unwrap().contains("dns api said no"),
        "{f}"
    );
    assert_eq!(v["totals"]["renewed"], 1);
    assert_eq!(v["totals"]["failed"], 1);
    assert_eq!(v["failed"], true);
}

#[test]
fn metrics_file_passes_promtool_and_a_failed_run_keeps_the_last_success() {
    let (e, d) = with_cert("mfile", &[]);
    add_breakable(&e, "flaky", &format!("f.{d}"));
    let dir = tempdir("metrics");
    let file = dir.join("certvault.prom");
    let file_arg = file.display().to_string();

    let run = e.run(&["renew", "--metrics-file", &file_arg]).ok();
    let text = std::fs::read_to_string(&file).unwrap();
    promtool_check_metrics(&text);
    let (web, _) = vault_read(&e.cert_path("web")).unwrap();
    assert_eq!(
        sample(
            &text,
            "certvault_certificate_expiration_timestamp_seconds{name=\"web\"}"
        ),
        Some(unix(web["not_after"].as_str().unwrap())),
        "{text}"
    );
    assert!(sample(
        &text,
        "certvault_certificate_renewal_timestamp_seconds{name=\"web\"}"
    )
    .is_some());
    assert_eq!(
        sample(
            &text,
            "certvault_certificate_ready_status{condition=\"True\",name=\"web\"}"
        ),
        Some(1.0)
    );
    let first_success = sample(&text, "certvault_run_last_success_timestamp_seconds")
        .expect("a successful run records its time");
    assert!(sample(&text, "certvault_run_duration_seconds").is_some());
    assert_eq!(
        sample(&text, "certvault_renewals_total{result=\"renewed\"}"),
        Some(0.0)
    );
    drop(run);

    // A failed run: the failing certificate is False, the last success time is kept, and
    // no temporary file is left next to the metrics file.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    e.fresh_account();
    let mut b = breaking(&e);
    b.extra
        .push(("CERTVAULT_METRICS_FILE".into(), file_arg.clone()));
    let run = b.run(&["renew", "--force"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let text = std::fs::read_to_string(&file).unwrap();
    promtool_check_metrics(&text);
    assert_eq!(
        sample(
            &text,
            "certvault_certificate_ready_status{condition=\"False\",name=\"flaky\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "certvault_run_last_success_timestamp_seconds"),
        Some(first_success),
        "a failed run must not move the last success time"
    );
    assert_eq!(
        sample(&text, "certvault_renewals_total{result=\"failed\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "certvault_renewals_total{result=\"renewed\"}"),
        Some(1.0)
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("certvault.prom")]);

    // A metrics file that cannot be written is an error (exit 1), and the run still ran.
    let bad = e.run(&["renew", "--metrics-file", "/nonexistent-dir/x.prom"]);
    fails_with(
        &bad,
        1,
        "cannot write the metrics file /nonexistent-dir/x.prom",
    );
    assert_contains(&bad.stdout, "summary:");
}

/// The current metrics of the group job=certvault, instance="" from the Pushgateway.
fn pushed(job_instance: &str) -> String {
    let body = http()
        .get(format!("{}/metrics", env("CERTVAULT_TEST_PUSHGATEWAY")))
        .send()
        .unwrap()
        .text()
        .unwrap();
    body.lines()
        .filter(|l| l.contains(job_instance) || l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn pushgateway_gets_the_metrics_and_a_failed_run_keeps_the_last_success() {
    // The Pushgateway is shared: this is the only test that pushes.
    let (e, d) = with_cert("push", &[]);
    add_breakable(&e, "flaky", &format!("f.{d}"));
    let gw = env("CERTVAULT_TEST_PUSHGATEWAY");
    // The Pushgateway adds instance and job, and sorts the labels by name.
    let series = |name: &str, labels: &str| {
        let mut all: Vec<&str> = labels.split(',').filter(|l| !l.is_empty()).collect();
        all.extend(["instance=\"\"", "job=\"certvault\""]);
        all.sort();
        format!("{name}{{{}}}", all.join(","))
    };

    e.run(&["renew", "--pushgateway", &gw]).ok();
    let text = pushed("job=\"certvault\"");
    promtool_check_metrics(&text);
    let (web, _) = vault_read(&e.cert_path("web")).unwrap();
    assert_eq!(
        sample(
            &text,
            &series(
                "certvault_certificate_expiration_timestamp_seconds",
                "name=\"web\","
            )
        ),
        Some(unix(web["not_after"].as_str().unwrap())),
        "{text}"
    );
    let success = sample(
        &text,
        &series("certvault_run_last_success_timestamp_seconds", ""),
    )
    .expect("last success pushed");

    std::thread::sleep(std::time::Duration::from_millis(1100));
    e.fresh_account();
    let mut b = breaking(&e);
    b.extra.push(("CERTVAULT_PUSHGATEWAY".into(), gw.clone()));
    let run = b.run(&["renew", "--force"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let text = pushed("job=\"certvault\"");
    assert_eq!(
        sample(
            &text,
            &series(
                "certvault_certificate_ready_status",
                "condition=\"False\",name=\"flaky\","
            )
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &series("certvault_run_last_success_timestamp_seconds", "")
        ),
        Some(success),
        "a failed run must not overwrite the last success time"
    );
    assert_eq!(
        sample(
            &text,
            &series("certvault_renewals_total", "result=\"failed\",")
        ),
        Some(1.0)
    );

    // An unreachable Pushgateway is reported, exit 1.
    let bad = e.run(&["renew", "--pushgateway", "http://127.0.0.1:9"]);
    fails_with(
        &bad,
        1,
        "cannot push metrics to the Pushgateway at http://127.0.0.1:9",
    );
    // Basic-auth credentials in the URL never reach the message.
    let bad = e.run(&[
        "renew",
        "--pushgateway",
        "http://pushuser:push-s3cret@127.0.0.1:9",
    ]);
    fails_with(
        &bad,
        1,
        "cannot push metrics to the Pushgateway at http://127.0.0.1:9",
    );
    assert!(!bad.all().contains("push-s3cret"), "{}", bad.all());
    let bad = e.run(&["renew", "--pushgateway", "localhost:9091"]);
    assert_eq!(bad.code, 2, "{}", bad.all());
}

fn read_env_file(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn deploy_hook_runs_after_the_write_with_its_variables_and_no_credentials() {
    let dir = tempdir("deploy");
    let out = dir.join("env");
    let hook = format!(
        "env | grep -E '^(CERTVAULT|RENEWED|VAULT|BAO)_' >> {}; echo --- >> {}",
        out.display(),
        out.display()
    );
    let (mut e, d) = with_cert("deploy", &["--deploy-hook", &hook]);
    e.extra.push(("BAO_TOKEN".into(), e.token.clone()));
    let (doc, v1) = vault_read(&e.cert_path("web")).unwrap();
    assert_eq!(doc["spec"]["deploy_hook"], hook, "stored in the spec");
    let first = read_env_file(&out);
    let get = |vars: &[(String, String)], k: &str| {
        vars.iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{k} not set: {vars:?}"))
    };
    assert_eq!(get(&first, "CERTVAULT_NAME"), "web");
    assert_eq!(get(&first, "CERTVAULT_VERSION"), v1.to_string());
    assert_eq!(get(&first, "CERTVAULT_DOMAINS"), format!("{d} *.{d}"));
    assert_eq!(get(&first, "RENEWED_DOMAINS"), format!("{d} *.{d}"));
    assert_eq!(
        get(&first, "CERTVAULT_VAULT_PATH"),
        format!("secret/{}", e.cert_path("web"))
    );

    // A no-op renew does not run it; a renewal does, with the new version.
    e.run(&["renew"]).ok();
    assert_eq!(read_env_file(&out).len(), first.len());
    e.run(&["renew", "--force"]).ok();
    let second = read_env_file(&out);
    assert_eq!(get(&second, "CERTVAULT_VERSION"), (v1 + 1).to_string());
    let all = std::fs::read_to_string(&out).unwrap();
    assert!(
        !all.contains(&e.token),
        "a credential reached the hook: {all}"
    );
    assert!(
        !all.contains("VAULT_TOKEN") && !all.contains("BAO_TOKEN"),
        "{all}"
    );
    assert!(
        all.contains("VAULT_ADDR="),
        "non-secret settings pass: {all}"
    );
}

#[test]
fn a_failing_deploy_hook_fails_the_run_and_keeps_the_new_certificate() {
    let e = Env::ready("deployfail");
    let d = domain("o");
    let hook_fails = ["--deploy-hook", "echo reload refused >&2; exit 4"];
    // issue reports it, and exits 1 with the certificate stored.
    let run = e.issue("web", &[&d], &hook_fails);
    assert_eq!(run.code, 1, "{}", run.all());
    assert_contains(&run.stdout, "FAILED: the deploy hook failed");
    let (_, v1) = vault_read(&e.cert_path("web")).expect("stored despite the hook");
    e.issue("other", &[&format!("o.{d}")], &[]).ok();

    let run = e.run(&["renew", "--force"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let (doc, v2) = vault_read(&e.cert_path("web")).unwrap();
    assert_eq!(v2, v1 + 1, "the renewed certificate is stored");
    assert_contains(&run.stdout, "renewed  web: forced");
    assert_contains(&run.stdout, "renewed  other");
    let failed = run
        .stdout
        .lines()
        .find(|l| l.starts_with("FAILED   web:"))
        .unwrap_or_else(|| panic!("no FAILED line: {}", run.stdout));
    assert!(failed.contains("deploy hook failed"), "{failed}");
    assert!(failed.contains("reload refused"), "{failed}");
    assert!(failed.contains(&format!("(version {v2})")), "{failed}");
    verify_record(&doc, &[&d]);

    // In JSON: renewed, with the error.
    let run = e.run(&["renew", "--force", "--output", "json", "web"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    let w = &v["certificates"][0];
    assert_eq!(w["verdict"], "renewed");
    assert!(w["error"].as_str().unwrap().contains("deploy hook failed"));
}

/// `-q` for cron: silent on success; on failure only what failed and the summary.
#[test]
fn quiet_prints_nothing_on_success_and_only_failures_on_failure() {
    let (e, d) = with_cert("quiet", &[]);
    add_breakable(&e, "flaky", &format!("f.{d}"));
    let run = e.run(&["-q", "renew"]).ok();
    assert_eq!(run.stdout, "", "quiet success prints nothing");
    assert_eq!(run.stderr, "", "quiet success logs nothing");

    e.fresh_account();
    let run = breaking(&e).run(&["renew", "--force", "--quiet"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert!(lines[0].starts_with("FAILED   flaky:"), "{}", run.stdout);
    assert!(
        lines[1].starts_with("summary: 1 renewed, 0 not due, 1 failed"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.lines().all(|l| l.contains("ERROR")),
        "only errors are logged: {}",
        run.stderr
    );
}
