//! `certvault doctor` against the test bed's BIND (CAA and CNAME records written with
//! nsupdate), Pebble, and OpenBao: a healthy setup passes every check; a CAA record that
//! forbids every CA, a dangling `_acme-challenge` CNAME, an account key the CA does not
//! know, a wrong TSIG secret and an unreachable Vault each fail their own check, and one
//! broken certificate does not hide the others.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::harness::*;

/// Send `updates` (nsupdate lines) for example.test to the primary BIND, signed with the
/// test key.
fn nsupdate(updates: &[String]) {
    let bind = env("CERTVAULT_TEST_BIND1");
    let (host, port) = bind.rsplit_once(':').unwrap();
    let mut script = format!("server {host} {port}\nzone example.test\n");
    for u in updates {
        script.push_str(u);
        script.push('\n');
    }
    script.push_str("send\n");
    let mut child = Command::new("nsupdate")
        .arg("-y")
        .arg(format!(
            "hmac-sha256:{}:{}",
            env("CERTVAULT_TEST_TSIG_NAME"),
            env("CERTVAULT_TEST_TSIG_SECRET")
        ))
        .args(["-t", "10"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nsupdate");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "nsupdate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Records a test added, deleted again when it ends.
struct Added(Vec<String>);

impl Drop for Added {
    fn drop(&mut self) {
        let deletes: Vec<String> = self
            .0
            .iter()
            .map(|n| format!("update delete {n}."))
            .collect();
        if !deletes.is_empty() {
            nsupdate(&deletes);
        }
    }
}

fn bind_env(tag: &str) -> Env {
    let e = Env::bind(tag);
    e.init_bind().ok();
    e.add_bind_solver("bind");
    e
}

fn issue(e: &Env, name: &str, domain: &str, solver: &str) {
    e.run(&["issue", name, "-d", domain, "--dns", solver]).ok();
}

/// The rows of `doctor --output json` whose check is `check` and whose subject contains
/// `subject`.
fn rows(doc: &Value, check: &str, subject: &str) -> Vec<Value> {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["check"] == check && r["subject"].as_str().unwrap().contains(subject))
        .cloned()
        .collect()
}

#[track_caller]
fn one(doc: &Value, check: &str, subject: &str, status: &str) -> String {
    let found = rows(doc, check, subject);
    assert_eq!(found.len(), 1, "{check} {subject}: {found:?}\n{doc:#}");
    assert_eq!(found[0]["status"], status, "{check} {subject}: {doc:#}");
    found[0]["detail"].as_str().unwrap().to_string()
}

#[test]
fn doctor_passes_every_check_of_a_healthy_certificate() {
    let e = bind_env("doctor-ok");
    let d = format!("{}.example.test", unique("dok"));
    issue(&e, "web", &d, "bind");
    let run = e.run(&["doctor", "--output", "json"]).ok();
    let doc = run.json();
    assert_eq!(doc["ok"], true, "{doc:#}");
    for r in doc["checks"].as_array().unwrap() {
        assert_eq!(r["status"], "ok", "{r}");
    }
    assert_contains(&one(&doc, "token", "", "ok"), "role admin");
    assert_contains(&one(&doc, "ca", "https://localhost:", "ok"), "no ARI");
    assert_contains(&one(&doc, "account", "default", "ok"), "known to the CA");
    assert_contains(&one(&doc, "caa", &d, "ok"), "no CAA records");
    assert_contains(
        &one(&doc, "cname", &format!("_acme-challenge.{d}"), "ok"),
        "in zone example.test (solver bind)",
    );
    assert_contains(
        &one(&doc, "nameservers", "example.test", "ok"),
        "authoritative",
    );
    assert_contains(
        &one(&doc, "solver", &d, "ok"),
        "seen on every authoritative server",
    );
    // The probe is gone again.
    assert!(dig_txt(
        &env("CERTVAULT_TEST_BIND1"),
        &format!("_acme-challenge.{d}")
    )
    .is_empty());

    // The table says the same, and a renew token is reported as such.
    let run = e.run(&["doctor", "--no-probe"]).ok();
    assert_contains(&run.stdout, "checks passed");
    assert!(
        !run.stdout
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("solver")),
        "--no-probe writes no probe: {}",
        run.stdout
    );
    let mut renew = e.as_policy(&["renew"]);
    renew.extra = e.extra.clone();
    let doc = renew
        .run(&["doctor", "--output", "json", "--no-probe"])
        .ok()
        .json();
    assert_contains(&one(&doc, "token", "", "ok"), "role renew");
}

#[test]
fn doctor_names_a_forbidding_caa_a_broken_cname_an_unknown_account_and_a_wrong_secret() {
    let e = bind_env("doctor-bad");
    let u = unique("dbad");
    let (ok, caa, cname, wrong) = (
        format!("ok-{u}.example.test"),
        format!("caa-{u}.example.test"),
        format!("cn-{u}.example.test"),
        format!("wk-{u}.example.test"),
    );
    e.add_bind_solver("wk");
    issue(&e, "ok", &ok, "bind");
    issue(&e, "caa", &caa, "bind");
    issue(&e, "cname", &cname, "bind");
    issue(&e, "wk", &wrong, "wk");
    // Break each in its own way after issuance.
    let _added = Added(vec![caa.clone(), format!("_acme-challenge.{cname}")]);
    nsupdate(&[
        format!("update add {caa}. 60 CAA 0 issue \";\""),
        format!("update add _acme-challenge.{cname}. 60 CNAME x.nowhere.invalid."),
    ]);
    let args = bind_solver_args();
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("--force");
    e.dns_add("wk", "d3JvbmcgYnV0IHdlbGwgZm9ybWVkIHNlY3JldCE=", &args)
        .ok();
    // A key the CA has never seen, in place of the account's.
    let path = format!("{}/accounts/default", e.prefix);
    let (mut account, _) = vault_read(&path).unwrap();
    let url = account["credentials"]["id"].as_str().unwrap().to_string();
    let stranger = rcgen::KeyPair::generate().unwrap();
    use base64::Engine;
    account["credentials"]["key_pkcs8"] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(stranger.serialize_der())
        .into();
    vault_write(&path, &account);

    let run = e.run(&["doctor", "--output", "json"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let doc = run.json();
    assert_eq!(doc["ok"], false);
    assert_contains(
        &one(&doc, "ca", "https://localhost:", "ok"),
        "directory reachable",
    );
    let account = one(&doc, "account", "default", "fail");
    assert_contains(&account, "not known to the CA");
    assert!(
        !account.contains(&url) || account.contains("init"),
        "{account}"
    );
    assert_contains(
        &one(&doc, "caa", &caa, "fail"),
        &format!("CAA at {caa} forbids this CA: issue \";\""),
    );
    assert_contains(
        &one(&doc, "cname", &format!("_acme-challenge.{cname}"), "fail"),
        "x.nowhere.invalid",
    );
    let solver = one(&doc, "solver", &wrong, "fail");
    assert_contains(&solver, "wk:");
    // The healthy certificate still gets every check, all passing.
    for check in ["caa", "cname", "solver"] {
        one(&doc, check, &ok, "ok");
    }
    assert!(!run.all().contains("d3JvbmcgYnV0"), "{}", run.all());

    let text = e.run(&["doctor"]);
    println!("{}", text.stdout);
    for row in [
        "FAIL  account",
        "FAIL  caa",
        "FAIL  cname",
        "FAIL  solver",
        "ok    solver",
    ] {
        assert_contains(&text.stdout, row);
    }
    assert_contains(&text.stdout, "4 failed");

    // Only the certificate asked for, and an unknown one named as such.
    let run = e.run(&[
        "doctor",
        "--name",
        "ok",
        "--name",
        "nope",
        "--no-probe",
        "--output",
        "json",
    ]);
    let doc = run.json();
    assert!(rows(&doc, "caa", &caa).is_empty(), "{doc:#}");
    assert_contains(
        &one(&doc, "certificate", "nope", "fail"),
        "no certificate at",
    );

    // Vault down: the report says so, exit 1.
    let down = e.with_var("VAULT_ADDR", &format!("http://127.0.0.1:{}", free_port()));
    let run = down.run(&["doctor"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert_contains(&run.stdout, "FAIL  vault");
}
