//! What a stolen renew token can make certvault do through the documents it may write
//! (`locks/`, `index/`, `pauses/`, `status/`, `certs/`): each attempt is written with a
//! token of the printed renew policy, then an admin's run shows what certvault *did*
//! (hooks run, records deleted, orders placed), not only what it read.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::*;

/// Write `data` to `secret/data/<path>` as `token` (check-and-set `cas` when given).
pub fn put_as(token: &str, path: &str, data: &Value, cas: Option<u64>) -> u16 {
    let body = match cas {
        Some(cas) => json!({ "data": data, "options": { "cas": cas } }),
        None => json!({ "data": data }),
    };
    vault_call(
        token,
        Method::POST,
        &format!("secret/data/{path}"),
        Some(&body),
    )
    .0
}

/// RFC 3339 text of now + `secs`.
pub fn at(secs: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::seconds(secs))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// A lapsed lease "left by a dead run" that lists `presented`, as a renew token writes it.
pub fn forged_lock(presented: Value) -> Value {
    json!({
        "schema": 1,
        "holder": "certvault on dead-host, pid 1, run dead",
        "acquired_at": at(-600),
        "expires_at": at(-540),
        "run_id": "dead",
        "presented": presented,
    })
}

/// One leftover as the lease stores it.
pub fn leftover(
    solver: &str,
    domain: &str,
    name: &str,
    zone: Option<&str>,
    value: &str,
    handle: Value,
) -> Value {
    json!({
        "solver": solver,
        "record": { "domain": domain, "name": name, "zone": zone, "value": value },
        "handle": handle,
    })
}

/// A value of the DNS-01 shape (43 base64url characters) that no order presented.
pub fn shaped_value(seed: &str) -> String {
    let mut v: String = seed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .chain(std::iter::repeat('A'))
        .take(43)
        .collect();
    v.replace_range(0..1, "Z");
    v
}

/// The newcomer's reproduction: a renew token lists forged "DNS-01 values a dead run left"
/// in the lock; the admin's next run must not hand them to its cleanup hook.
#[test]
fn forged_lock_leftovers_never_reach_the_cleanup_hook() {
    let e = Env::ready("forgedlock");
    let dir = tempdir("forgedlock");
    let log = dir.join("cleanup.log");
    let marker = dir.join("pwned");
    let d = domain("fl");
    let cleanup = format!(
        "printf '%s|%s|%s\\n' \"$CERTBOT_DOMAIN\" \"$CERTBOT_VALIDATION\" \"$CERTBOT_AUTH_OUTPUT\" >> {}; {}",
        log.display(),
        hook("challtestsrv-cleanup")
    );
    e.run(&[
        "issue",
        "web",
        "-d",
        &d,
        "--auth-hook",
        &hook("challtestsrv-auth"),
        "--cleanup-hook",
        &cleanup,
    ])
    .ok();
    std::fs::write(&log, "").unwrap();

    let renew = e.as_policy(&["renew"]);
    let evil = format!("record-id-12345; touch {}", marker.display());
    let ours = shaped_value("ours");
    let presented = json!([
        // Not a name of the certificate.
        leftover(
            "exec",
            "prod.example.com",
            "_acme-challenge.prod.example.com",
            None,
            "attacker",
            json!({"Exec": evil})
        ),
        // A name of the certificate, but not a DNS-01 value.
        leftover(
            "exec",
            &d,
            &format!("_acme-challenge.{d}"),
            None,
            &format!("x; touch {}", marker.display()),
            json!({"Exec": evil})
        ),
        // A name of the certificate at another record name.
        leftover(
            "exec",
            &d,
            "_acme-challenge.prod.example.com",
            None,
            &ours,
            json!({"Exec": evil})
        ),
        // Plausible: our name, a value of the right shape; only its handle is forged.
        leftover(
            "exec",
            &d,
            &format!("_acme-challenge.{d}"),
            None,
            &ours,
            json!({"Exec": evil})
        ),
    ]);
    let lock = format!("{}/locks/web", e.prefix);
    assert_eq!(
        put_as(&renew.token, &lock, &forged_lock(presented), None),
        200,
        "the renew policy writes locks"
    );

    e.fresh_account();
    let run = e.run(&["renew", "--force", "web"]).ok();
    assert_contains(&run.stdout, "renewed  web");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(!marker.exists(), "a forged value ran as a command");
    for forged in ["prod.example.com", "attacker", "record-id-12345", "touch"] {
        assert!(
            !calls.contains(forged),
            "the cleanup hook got {forged:?}:\n{calls}"
        );
    }
    // The plausible one is removed, without the forged auth output.
    assert!(
        calls.lines().any(|l| l == format!("{d}|{ours}|")),
        "the leftover of the right shape was not removed (or got an auth output):\n{calls}"
    );
    assert_eq!(
        run.stderr.matches("refused to remove").count(),
        3,
        "each forged leftover is refused by name: {}",
        run.stderr
    );
    assert!(vault_read(&lock).is_none(), "the lock is released");
}

/// `index/NNN` of `name` (first 8 bytes of SHA-256, computed outside certvault, mod 256).
fn shard_path(e: &Env, name: &str) -> String {
    let out = std::process::Command::new("sh")
        .args(["-c", &format!("printf %s '{name}' | sha256sum")])
        .output()
        .unwrap();
    let hex = String::from_utf8(out.stdout).unwrap();
    let hash = u64::from_str_radix(&hex[..16], 16).unwrap();
    format!("{}/index/{:03}", e.prefix, hash % 256)
}

/// Rewrite `name`'s index entry as a renew token would to hide it (same versions, dates in
/// 2099/2100, nothing due now) and claim the shard was checked at `checked` (Unix seconds).
fn hide_in_index(e: &Env, token: &str, name: &str, checked: i64) {
    let path = shard_path(e, name);
    let (mut doc, _) = vault_read(&path).expect("the index holds the certificate");
    let mut entries = index_entries(&doc);
    let entry = &mut entries[name];
    assert!(entry["version"].as_u64().is_some(), "{entry}");
    entry["renew_at"] = json!(4_070_908_800i64);
    entry["not_after"] = json!(4_102_444_800i64);
    let obj = entry.as_object_mut().unwrap();
    for k in ["due_now", "ari_at", "ari_check_at", "ari"] {
        obj.remove(k);
    }
    set_index_entries(&mut doc, &entries);
    doc["verified_at"] = json!(checked);
    doc["dated_at"] = json!(checked);
    assert_eq!(
        put_as(token, &path, &doc, None),
        200,
        "the renew policy writes the index"
    );
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A forged index entry hides a due certificate for at most the documented week: a claim
/// of a later check than Vault's own write time is ignored at once, and a plausible one
/// lasts until the shard's weekly check of its entries against the records.
#[test]
fn a_forged_index_entry_hides_a_due_certificate_for_one_week_at_most() {
    // Due a second after issue: Pebble backdates its certificates by a day and they live 1825 days after.
    let due = ["--renew-before", "1825d 23h 59m 58s"];
    let (e, _) = Env::with_cert_args("forgedidx", "due1", &due);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let renew = e.as_policy(&["renew"]);
    let versions = || vault_read(&e.cert_path("due1")).unwrap().1;
    let before = versions();

    // A claim of a check in the future (and dates in 2099): ignored, the record is read.
    hide_in_index(&e, &renew.token, "due1", 4_070_908_800);
    let run = e.run(&["renew"]).ok();
    assert_contains(&run.stdout, "renewed  due1");
    assert_eq!(versions(), before + 1, "one new version");

    // A plausible claim (checked just now): hidden, within the documented bound ...
    hide_in_index(&e, &renew.token, "due1", now_unix());
    let run = e.run(&["renew"]).ok();
    assert_contains(&run.stdout, "not due  due1: renews 2099-01-01");
    assert_eq!(versions(), before + 1);
    // ... until a week has passed since that check: then every entry of the shard is
    // checked against its record, and the certificate is renewed.
    std::thread::sleep(std::time::Duration::from_secs(2));
    hide_in_index(&e, &renew.token, "due1", now_unix() - 7 * 86_400 - 60);
    let run = e.run(&["renew"]).ok();
    assert_contains(&run.stderr, "weekly check of index entries");
    assert_contains(&run.stdout, "renewed  due1");
    assert_eq!(versions(), before + 2);
    // The entry is the record's again.
    let (doc, _) = vault_read(&shard_path(&e, "due1")).unwrap();
    let entries = index_entries(&doc);
    assert!(
        entries["due1"]["renew_at"].as_i64().unwrap() < now_unix() + 60,
        "{}",
        entries["due1"]
    );
    assert!(
        doc["dated_at"].as_i64().unwrap() >= now_unix() - 600,
        "{doc}"
    );
}

/// A forged CA pause ("until 2099") defers orders for a day at most from when Vault stored
/// it, and `list` (also with the monitor policy) shows it.
#[test]
fn a_forged_pause_defers_for_a_day_at_most_and_list_shows_it() {
    let (e, _) = Env::with_cert("forgedpause", "web");
    let renew = e.as_policy(&["renew"]);
    let pause = json!({
        "schema": 1,
        "directory": "https://localhost:14000/dir",
        "until": "2099-01-01T00:00:00Z",
        "reason": "rateLimited (forged)",
        "since": at(0),
    });
    let path = format!("{}/pauses/default", e.prefix);
    assert_eq!(
        put_as(&renew.token, &path, &pause, None),
        200,
        "the renew policy writes pauses"
    );

    let metrics = tempdir("forgedpause-metrics");
    let file = metrics.join("certvault.prom");
    let run = e.run(&[
        "renew",
        "--force",
        "--output",
        "json",
        "--metrics-file",
        &file.display().to_string(),
    ]);
    let report: Value = serde_json::from_str(&run.stdout).expect("JSON report");
    let web = report["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "web")
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(web["verdict"], "deferred", "{web}");
    let reason = web["reason"].as_str().unwrap();
    assert!(
        !reason.contains("2099"),
        "honoured past the bound: {reason}"
    );
    let tomorrow = (time::OffsetDateTime::now_utc() + time::Duration::days(1)).date();
    assert!(
        reason.contains(&tomorrow.to_string()),
        "until a day after it was stored: {reason}"
    );
    assert_contains(&run.stderr, "longest pause certvault honours");

    // Not silent: the shipped alert fires on what this run wrote, when every run of a day
    // writes the same (the attacker rewriting the pause daily).
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.lines()
            .any(|l| l == "certvault_renewals_total{result=\"deferred\"} 1"),
        "{text}"
    );
    let fired = replay_alerts(&metrics, &text, "25h");
    assert!(
        fired.contains("CertvaultRenewalsDeferred"),
        "the shipped rules stay quiet on a run that defers: {fired}"
    );
    assert!(
        !replay_alerts(&metrics, &text, "23h").contains("CertvaultRenewalsDeferred"),
        "fires within the day a pause may last"
    );

    for who in [e.with_token(e.token.clone()), e.as_policy(&["monitor"])] {
        let list = who.run(&["list"]).ok();
        assert_contains(&list.stdout, "DEFERRED: new orders paused until");
        let rows: Value =
            serde_json::from_str(&who.run(&["list", "--output", "json"]).ok().stdout).unwrap();
        assert!(
            rows[0]["paused"]
                .as_str()
                .unwrap()
                .contains(&tomorrow.to_string()),
            "{rows}"
        );
        assert_eq!(rows[0]["account"], "default");
    }
}

/// A retired certificate stays retired: after `delete gone --yes`, a renew token writes a
/// new version of the soft-deleted record with a spec of its own (a hook and a name of its
/// choosing). `renew` reports it deleted and runs nothing; `migrate` takes no spec from it;
/// the spec stays deleted.
#[test]
fn a_retired_certificate_is_not_revived_by_a_renew_token() {
    let e = Env::ready("revive");
    let dir = tempdir("revive");
    let marker = dir.join("pwned");
    let d = domain("revive");
    e.issue("gone", &[&d], &[]).ok();
    let (old, _) = vault_read(&e.cert_path("gone")).unwrap();
    e.run(&["delete", "gone", "--yes"]).ok();
    let renew = e.as_policy(&["renew"]);
    // The soft-deleted record's metadata is still there: the renew token may "update" it.
    let (meta, _) = vault_call(
        &env("VAULT_TOKEN"),
        Method::GET,
        &format!("secret/metadata/{}", e.cert_path("gone")),
        None,
    );
    assert_eq!(meta, 200);
    let mut forged = old.clone();
    forged["spec"]["domains"] = json!(["attacker-chosen.example.com"]);
    forged["spec"]["dns"] = json!({ "kind": "exec", "auth_hook": format!("touch {}", marker.display()), "cleanup_hook": "true" });
    assert_eq!(
        put_as(&renew.token, &e.cert_path("gone"), &forged, None),
        200
    );

    let run = e.run(&["renew"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_contains(&run.stdout, "deleted  gone");
    assert!(!run.stdout.contains("migrate"), "{}", run.stdout);
    let run = e.run(&["migrate"]).ok();
    assert!(
        !run.stdout.contains("gone"),
        "migrate took the forged spec: {}",
        run.stdout
    );
    assert!(vault_read(&format!("{}/specs/gone", e.prefix)).is_none());
    let run = e.run(&["renew", "--force"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_contains(&run.stdout, "deleted  gone");
    assert!(!marker.exists(), "the forged hook ran");
}

/// `migrate` takes a spec only from a record an older certvault wrote: one written after
/// the store's first spec document (the upgrade) is refused, even as a new version of a
/// record that was legacy. A record from before the upgrade is moved.
#[test]
fn migrate_refuses_a_spec_written_after_the_upgrade() {
    let e = Env::ready("postupgrade");
    let dir = tempdir("postupgrade");
    let marker = dir.join("pwned");
    let d = domain("postupgrade");
    let legacy = |name: &str| {
        e.issue(name, &[&format!("{name}.{d}")], &[]).ok();
        vault_root(
            Method::DELETE,
            &format!("secret/metadata/{}/specs/{name}", e.prefix),
            None,
        );
    };
    // Two records as an older certvault left them; then the upgrade (a first spec).
    legacy("old");
    legacy("forged");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    e.issue("new", &[&format!("new.{d}")], &[]).ok();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // A renew token rewrites one of them with a spec of its choosing.
    let renew = e.as_policy(&["renew"]);
    let (mut doc, version) = vault_read(&e.cert_path("forged")).unwrap();
    doc["spec"]["dns"] = json!({ "kind": "exec", "auth_hook": format!("touch {}", marker.display()), "cleanup_hook": "true" });
    assert_eq!(
        put_as(&renew.token, &e.cert_path("forged"), &doc, Some(version)),
        200
    );

    let run = e.run(&["migrate"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert_contains(&run.stdout, "moved    old");
    assert_contains(&run.stdout, "REFUSED  forged: its record was written at");
    assert_contains(&run.stdout, "summary: 1 moved, 0 failed, 1 refused");
    assert!(vault_read(&format!("{}/specs/forged", e.prefix)).is_none());
    assert!(vault_read(&format!("{}/specs/old", e.prefix)).is_some());
    let run = e.run(&["renew", "--force", "forged"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert_contains(&run.stdout, "FAILED   forged:");
    assert!(!marker.exists(), "the forged hook ran");
}

/// The renew role cannot revoke or deactivate through certvault: the capability check
/// refuses `revoke` and `account deactivate` before anything reaches the CA.
#[test]
fn a_renew_token_cannot_revoke_or_deactivate_through_certvault() {
    let (e, _) = Env::with_cert("norevoke", "web");
    let renew = e.as_policy(&["renew"]);
    let run = renew.run(&["revoke", "web"]);
    fails_with(&run, 1, "update on secret/data/");
    assert_contains(&run.stderr, "certvault policy admin");
    let (doc, _) = vault_read(&e.cert_path("web")).unwrap();
    assert!(doc["revoked_at"].is_null(), "{doc}");
    let serial = pebble_serial(doc["serial"].as_str().unwrap());
    let status: Value = http()
        .get(format!(
            "{}/cert-status-by-serial/{serial}",
            env("CERTVAULT_TEST_PEBBLE_MGMT")
        ))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(status["Status"], "Valid", "{status}");
    let run = renew.run(&["account", "deactivate", "--yes"]);
    assert_ne!(run.code, 0, "{}", run.all());
    assert_contains(&run.all(), "certvault policy admin");
    // The account still works: a renewal with it succeeds.
    renew.run(&["renew", "--force"]).ok();
}

/// Text a renew token writes into `status/` and `locks/` reaches no terminal as control
/// characters: `list`, `show` and the renew summary show escape sequences, carriage returns
/// and newlines escaped, so no fake line appears and nothing repaints the screen.
#[test]
fn control_characters_from_renew_writable_documents_never_reach_a_terminal() {
    let (e, _) = Env::with_cert("ctrl", "web");
    let renew = e.as_policy(&["renew"]);
    let evil = "\u{1b}[2J\u{1b}]0;pwned\u{7}\r\nrenewed  evil: forged line\u{9b}31m\u{202e}";
    let status_path = format!("{}/status/web", e.prefix);
    let (mut status, version) = vault_read(&status_path).unwrap();
    status["last_result"] = json!("failed");
    status["failures"] = json!(3);
    status["last_error"] = json!(evil);
    assert_eq!(
        put_as(&renew.token, &status_path, &status, Some(version)),
        200
    );
    // The index entry `list` reads: the same text in its status and its basis.
    let path = shard_path(&e, "web");
    let (mut doc, _) = vault_read(&path).expect("the index holds the certificate");
    let mut entries = index_entries(&doc);
    entries["web"]["status"] =
        json!({ "last_result": "failed", "failures": 3, "last_error": evil });
    entries["web"]["basis"] = json!(evil);
    set_index_entries(&mut doc, &entries);
    assert_eq!(put_as(&renew.token, &path, &doc, None), 200);
    let mut lock = forged_lock(json!([]));
    lock["holder"] = json!(evil);
    lock["expires_at"] = json!(at(30));
    assert_eq!(
        put_as(
            &renew.token,
            &format!("{}/locks/web", e.prefix),
            &lock,
            None
        ),
        200
    );
    let clean = |what: &str, out: &str| {
        assert!(
            !out.chars()
                .any(|c| c.is_control() && c != '\n' || ('\u{202a}'..='\u{202e}').contains(&c)),
            "{what}: a control character reached the terminal: {out:?}"
        );
        assert!(
            !out.lines().any(|l| l.starts_with("renewed  evil")),
            "{what}: a forged line: {out}"
        );
    };
    let monitor = e.as_policy(&["monitor"]);
    let list = monitor.run(&["list"]).ok();
    assert_contains(&list.stdout, "LAST ATTEMPT FAILED (3 in a row)");
    assert_contains(&list.stdout, "\\u001b[2J");
    clean("list", &list.stdout);
    let show = e.run(&["show", "web"]).ok();
    clean("show", &show.stdout);
    let run = e.run(&["renew", "--force", "--lock-lease", "3s"]);
    assert_contains(&run.stdout, "skipped  web");
    clean("renew", &run.stdout);
    clean("renew log", &run.stderr);
}

/// Hooks get no credential of certvault's environment: not certvault's own token, not a
/// cloud key or session token, not a URL with a password (the Pushgateway's). A variable the
/// admin named in the spec (`--hook-env`) passes; certvault's own credentials cannot be named.
/// The renew token's run hands its hooks no more than the admin's.
#[test]
fn no_credential_reaches_a_hook_unless_the_spec_names_it() {
    let e = Env::ready("hookenv");
    let dir = tempdir("hookenv");
    let d = domain("hookenv");
    let gw = env("CERTVAULT_TEST_PUSHGATEWAY").replacen("://", "://pushuser:push-planted-pw@", 1);
    let planted = [
        ("AWS_SECRET_ACCESS_KEY", "aws-planted-secret"),
        ("AWS_SESSION_TOKEN", "aws-planted-session"),
        ("DNS_API_TOKEN", "dns-planted-token"),
        (
            "UPSTREAM_URL",
            "https://user:url-planted-pw@upstream.example/x",
        ),
    ];
    let with_vars = |base: &Env| {
        let mut e = base.with_var("CERTVAULT_PUSHGATEWAY", &gw);
        for (k, v) in planted {
            e = e.with_var(k, v);
        }
        e.with_var("BAO_TOKEN", &base.token)
            .with_var("PASSED_TOKEN", "passed-by-the-admin")
    };
    let admin = with_vars(&e);
    let dump = |what: &str| format!("env > {}/{what}.$$", dir.display());
    let auth = format!("{}; {}", dump("auth"), hook("challtestsrv-auth"));
    let deploy = dump("deploy");
    // certvault's own credentials can never be let through.
    for name in ["VAULT_TOKEN", "BAO_SECRET_ID", "CERTVAULT_PUSHGATEWAY"] {
        let bad = admin.run(&[
            "issue",
            "web",
            "-d",
            &d,
            "--auth-hook",
            &auth,
            "--hook-env",
            name,
        ]);
        assert_eq!(bad.code, 2, "{name}: {}", bad.all());
        assert_contains(&bad.stderr, "hook variable");
        assert_contains(&bad.stderr, "never reach a hook");
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cleanup = hook("challtestsrv-cleanup");
    admin
        .run(&[
            "issue",
            "web",
            "-d",
            &d,
            "--auth-hook",
            &auth,
            "--cleanup-hook",
            &cleanup,
            "--deploy-hook",
            &deploy,
            "--hook-env",
            "PASSED_TOKEN",
        ])
        .ok();
    let spec = vault_read(&format!("{}/specs/web", e.prefix)).unwrap().0;
    assert_eq!(spec["hook_env"], json!(["PASSED_TOKEN"]), "{spec}");
    let renew = with_vars(&e.as_policy(&["renew"]));
    let run = renew.run(&["renew", "--force"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_contains(&run.stdout, "renewed  web");

    let mut dumps = Vec::new();
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap().path();
        dumps.push((
            f.display().to_string(),
            std::fs::read_to_string(&f).unwrap(),
        ));
    }
    let kinds = |k: &str| dumps.iter().filter(|(p, _)| p.contains(k)).count();
    assert!(
        kinds("/auth.") >= 2 && kinds("/deploy.") >= 2,
        "hooks ran: {dumps:?}"
    );
    for (path, text) in &dumps {
        for secret in [
            "aws-planted",
            "dns-planted-token",
            "url-planted-pw",
            "push-planted-pw",
            renew.token.as_str(),
        ] {
            assert!(
                !text.contains(secret),
                "{path}: {secret} reached the hook:\n{text}"
            );
        }
        for name in ["CERTVAULT_PUSHGATEWAY=", "BAO_TOKEN=", "VAULT_TOKEN="] {
            assert!(!text.lines().any(|l| l.starts_with(name)), "{path}: {text}");
        }
        assert_contains(text, "PASSED_TOKEN=passed-by-the-admin");
        assert_contains(text, "VAULT_ADDR=");
    }
}

/// The alerts of deploy/prometheus/certvault-alerts.yml that fire at `at` when the metrics
/// `text` (one run's exposition) are scraped every minute from the start: promtool runs a
/// test that expects none, and its failure lists the alerts that fired.
fn replay_alerts(dir: &std::path::Path, text: &str, at: &str) -> String {
    let series: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            let series = match series.split_once('{') {
                Some((name, labels)) => format!("{name}{{job=\"certvault\",{labels}"),
                None => format!("{series}{{job=\"certvault\"}}"),
            };
            format!("      - series: '{series}'\n        values: '{value}+0x1800'\n")
        })
        .collect();
    let rules = repo().join("deploy/prometheus/certvault-alerts.yml");
    let mut test = format!(
        "rule_files:\n  - {}\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n{}    alert_rule_test:\n",
        rules.display(),
        series.concat()
    );
    for alert in [
        "CertvaultCertificateExpiresSoon",
        "CertvaultNoSuccessfulRun",
        "CertvaultCertificateNotReady",
        "CertvaultRenewalsDeferred",
    ] {
        test.push_str(&format!(
            "      - eval_time: {at}\n        alertname: {alert}\n        exp_alerts: []\n"
        ));
    }
    let file = dir.join(format!("replay-{at}.test.yml"));
    std::fs::write(&file, test).unwrap();
    let out = std::process::Command::new(env("PROMTOOL"))
        .args(["test", "rules", &file.display().to_string()])
        .output()
        .expect("run promtool");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() || all.contains("FAILED:"),
        "promtool could not run the replay: {all}"
    );
    // Only the alerts promtool says it got.
    all.split("alertname: ")
        .skip(1)
        .filter(|block| block.contains("got:[\n") || block.contains("got:[\r\n"))
        .map(|block| block.split(',').next().unwrap_or_default().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The smaller findings: a status or lock document a renew token made unparsable never stops
/// `show` or the certificate (the next run takes the lock over and rewrites the status), the
/// messages name the field and its fault, and the flags that would sleep for millennia or put a
/// secret in shell history are refused with what to do instead.
#[test]
fn broken_notes_heal_and_bad_flags_name_the_fix() {
    let (e, d) = Env::with_cert("smaller", "web");
    let renew = e.as_policy(&["renew"]);
    let status_path = format!("{}/status/web", e.prefix);
    let lock_path = format!("{}/locks/web", e.prefix);
    // The schema field of the wrong type, and a lock whose holder is a number.
    let (mut status, _) = vault_read(&status_path).unwrap();
    status["schema"] = json!("1");
    assert_eq!(put_as(&renew.token, &status_path, &status, None), 200);
    let mut lock = forged_lock(json!([]));
    lock["holder"] = json!(5);
    lock["expires_at"] = json!(at(300));
    assert_eq!(put_as(&renew.token, &lock_path, &lock, None), 200);

    let show = e.run(&["show", "web"]).ok();
    assert_contains(
        &show.stdout,
        "its schema field is a string, not a whole number",
    );
    assert_contains(&show.stdout, "field holder: invalid type: integer");
    assert!(!show.all().contains("no schema field"), "{}", show.all());

    // A lock that is not valid binds nobody: the run takes it over and renews.
    let (before, _) = vault_read(&e.cert_path("web")).unwrap();
    let run = e.run(&["renew", "--force", "--output", "json", "web"]).ok();
    assert_eq!(
        verdicts(&run.json()),
        vec![("web".to_string(), "renewed".to_string())],
        "{}",
        run.all()
    );
    assert_contains(&run.stderr, "taking over a lock that is not valid");
    let (after, _) = vault_read(&e.cert_path("web")).unwrap();
    assert_ne!(before["serial"], after["serial"]);
    verify_record(&after, &[&d]);
    assert!(vault_read(&lock_path).is_none(), "the lock stays");
    // The status is rewritten whole, and `show` reads it again.
    let (status, _) = vault_read(&status_path).unwrap();
    assert_eq!(status["schema"], json!(1));
    assert_eq!(status["serial"], after["serial"]);
    assert_eq!(status["last_result"], "renewed");
    let show = e.run(&["show", "web"]).ok();
    assert_contains(&show.stdout, "last attempt renewed");
    assert!(!show.stdout.contains("not valid"), "{}", show.stdout);

    // A lock that is not valid on a certificate that is not due: `unlock` removes it.
    assert_eq!(put_as(&renew.token, &lock_path, &lock, None), 200);
    let unlock = e.run(&["unlock", "web"]).ok();
    assert_contains(&unlock.stdout, "which was not a valid lock");
    assert!(vault_read(&lock_path).is_none());

    // Flags.
    fails_with(&renew.run(&["renew", "--jitter", "999y"]), 2, "at most 1h");
    fails_with(
        &renew.run(&["renew", "--max-orders", "-5"]),
        2,
        "negative numbers are not accepted",
    );
    fails_with(
        &renew.run(&["renew", "--concurrency", "-1"]),
        2,
        "negative numbers are not accepted",
    );
    fails_with(
        &e.run(&["edit", "web", "--renew-before", "-5d"]),
        2,
        "write a positive duration",
    );
    let init = e.run(&[
        "init",
        "--directory",
        "https://localhost:14000/dir",
        "--eab-kid",
        "kid",
        "--eab-hmac-key",
        "hmac-SECRET-in-history",
    ]);
    fails_with(
        &init,
        2,
        "set CERTVAULT_EAB_HMAC_KEY or pass --eab-hmac-key-file",
    );
    assert!(!init.all().contains("SECRET-in-history"), "{}", init.all());
}
