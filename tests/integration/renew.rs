use serde_json::json;

use crate::harness::*;

#[test]
fn noop_renew_writes_nothing_and_force_adds_exactly_one_version() {
    let e = Env::ready("noop");
    let d = domain("n");
    e.issue("n", &[&d, &format!("*.{d}")], &[]).ok();
    let (before, v1) = vault_read(&e.cert_path("n")).unwrap();

    let noop = e.run(&["renew"]).ok();
    assert_contains(&noop.stdout, "not due  n");
    assert_contains(&noop.stdout, "summary: 0 renewed, 1 not due, 0 failed");
    assert_eq!(vault_read(&e.cert_path("n")).unwrap().1, v1);

    let forced = e.run(&["renew", "--force"]).ok();
    assert_contains(&forced.stdout, "renewed  n: forced");
    let (after, v2) = vault_read(&e.cert_path("n")).unwrap();
    assert_eq!(v2, v1 + 1);
    assert_ne!(after["serial"], before["serial"]);
    assert_ne!(
        after["privkey"], before["privkey"],
        "a new key at every issuance"
    );
    assert_eq!(after["spec"], before["spec"]);
    verify_record(&after, &[&d]);
    assert!(record_key_matches(&after));
}

/// Make `name` (issued through the challtestsrv hooks for `domains`) due `secs` seconds
/// after its notBefore: `--renew-before` of its lifetime minus `secs` (a settings-only
/// change), then wait until then. Pebble issues ~5-year certificates, and a renew_before
/// at or above the lifetime is refused.
pub fn make_due(e: &Env, name: &str, domains: &[&str], secs: i64) {
    let (doc, _) = vault_read(&e.cert_path(name)).unwrap();
    let t = |k: &str| {
        time::OffsetDateTime::parse(
            doc[k].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let (nb, na) = (t("not_before"), t("not_after"));
    let before = format!("{}s", (na - nb).whole_seconds() - secs);
    e.issue(name, domains, &["--renew-before", &before]).ok();
    let due_at = nb + time::Duration::seconds(secs);
    while time::OffsetDateTime::now_utc() < due_at {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn due_by_renew_before_is_renewed_and_only_that_one() {
    let e = Env::ready("due");
    let d = domain("d");
    let due = format!("a.{d}");
    e.issue("due", &[&due], &[]).ok();
    make_due(&e, "due", &[&due], 2);
    e.issue("fresh", &[&format!("b.{d}")], &[]).ok();
    let run = e.run(&["renew"]).ok();
    assert_contains(&run.stdout, "renewed  due: renewal point");
    assert_contains(&run.stdout, "not due  fresh");
    // Version 1 issued, 2 the renew_before setting, 3 the renewal.
    assert_eq!(vault_read(&e.cert_path("due")).unwrap().1, 3);
    assert_eq!(vault_read(&e.cert_path("fresh")).unwrap().1, 1);
    // Naming certificates restricts the run.
    let only = e.run(&["renew", "--force", "fresh"]).ok();
    assert_contains(&only.stdout, "summary: 1 renewed, 0 not due, 0 failed");
    assert_eq!(vault_read(&e.cert_path("due")).unwrap().1, 3);
    assert_eq!(vault_read(&e.cert_path("fresh")).unwrap().1, 2);
}

#[test]
fn a_concurrent_write_is_detected_not_overwritten() {
    let e = Env::ready("cas");
    let d = domain("c");
    let path = e.cert_path("race");
    // The auth hook writes the record itself when RACE is set: between certvault's read
    // and its write. Hooks get no VAULT_* variable and no credential the spec does not
    // name, so the spec names RACE_TOKEN and the address comes as RACE_ADDR.
    let racer = format!(
        "{} && if [ -n \"${{RACE:-}}\" ]; then curl -fsS -o /dev/null -H \"X-Vault-Token: $RACE_TOKEN\" \
         -X POST \"$RACE_ADDR/v1/secret/data/{path}\" -d '{{\"data\":{{\"schema\":1,\"marker\":\"concurrent\"}}}}'; fi",
        hook("challtestsrv-auth")
    );
    e.run(&[
        "issue",
        "race",
        "-d",
        &d,
        "--dns",
        "exec",
        "--auth-hook",
        &racer,
        "--cleanup-hook",
        &hook("challtestsrv-cleanup"),
        "--hook-env",
        "RACE_TOKEN",
    ])
    .ok();
    assert_eq!(vault_read(&path).unwrap().1, 1);
    let mut racing = Env {
        extra: vec![
            ("RACE".into(), "1".into()),
            ("RACE_TOKEN".into(), env("VAULT_TOKEN")),
            ("RACE_ADDR".into(), env("VAULT_ADDR")),
        ],
        ..Env::new("x")
    };
    racing.prefix = e.prefix.clone();
    e.fresh_account();
    let run = racing.run(&["renew", "--force"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert_contains(&run.stdout, "FAILED   race");
    assert_contains(&run.stdout, "changed by another writer");
    let (doc, v) = vault_read(&path).unwrap();
    assert_eq!(v, 2, "only the concurrent write happened");
    assert_eq!(doc, json!({"schema": 1, "marker": "concurrent"}));
}

#[test]
fn a_failing_certificate_keeps_its_old_material_and_others_still_renew() {
    let e = Env::ready("isolate");
    let d = domain("i");
    e.issue_with_auth_hook("broken", &[&format!("a.{d}")], &breakable_auth_hook())
        .ok();
    e.issue("healthy", &[&format!("b.{d}")], &[]).ok();
    let (old, v_old) = vault_read(&e.cert_path("broken")).unwrap();

    let breaking = e.with_var("BREAK", "1");
    e.fresh_account();
    let run = breaking.run(&["renew", "--force"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert_contains(&run.stdout, "FAILED   broken");
    assert_contains(&run.stdout, "auth hook for a.");
    assert_contains(&run.stdout, "dns api said no");
    assert_contains(&run.stdout, "renewed  healthy");
    assert_contains(&run.stdout, "summary: 1 renewed, 0 not due, 1 failed");
    let (now, v_now) = vault_read(&e.cert_path("broken")).unwrap();
    assert_eq!((v_now, &now), (v_old, &old), "old material untouched");
    assert!(record_key_matches(&now));
    assert_eq!(vault_read(&e.cert_path("healthy")).unwrap().1, 2);
}

#[test]
fn cleanup_runs_after_a_failed_validation_with_the_auth_output() {
    let e = Env::ready("cleanup");
    let d = domain("v");
    let marks_dir = tempdir("marks");
    let marks = marks_dir.join("cleanup.log");
    // The auth hook publishes nothing: Pebble's validation fails.
    let cleanup = format!(
        "echo \"$CERTBOT_DOMAIN $CERTBOT_AUTH_OUTPUT\" >> {}",
        marks.display()
    );
    let run = e.run(&[
        "issue",
        "nope",
        "-d",
        &d,
        "-d",
        &format!("*.{d}"),
        "--auth-hook",
        "echo token-$CERTBOT_DOMAIN",
        "--cleanup-hook",
        &cleanup,
    ]);
    fails_with(&run, 1, "DNS-01 validation failed");
    assert_contains(&run.stderr, &format!("_acme-challenge.{d}"));
    let log = std::fs::read_to_string(&marks).expect("cleanup hook ran");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines, [format!("{d} token-{d}"), format!("{d} token-{d}")]);
    assert!(vault_read(&e.cert_path("nope")).is_none(), "nothing stored");
}

#[test]
fn works_without_local_disk() {
    let e = Env::new("nodisk");
    let cwd = tempdir("cwd");
    let home = tempdir("home");
    let mut e2 = Env {
        cwd: Some(cwd.clone()),
        extra: vec![("HOME".into(), home.display().to_string())],
        ..Env::new("x")
    };
    e2.prefix = e.prefix.clone();
    e2.init().ok();
    let d = domain("nd");
    e2.issue("nd", &[&d], &[]).ok();
    e2.run(&["renew", "--force"]).ok();
    e2.run(&["list"]).ok();
    assert!(
        is_empty_dir(&cwd),
        "certvault wrote into its working directory"
    );
    assert!(is_empty_dir(&home), "certvault wrote into HOME");
}

#[test]
fn a_stored_account_unknown_to_the_ca_is_explained() {
    let (e, _) = Env::with_cert("ghost", "g");
    // Point the stored credentials at an account the CA never created (as after a CA reset).
    let path = format!("{}/accounts/default", e.prefix);
    let (mut doc, _) = vault_read(&path).unwrap();
    let id = doc["credentials"]["id"].as_str().unwrap().to_string();
    doc["credentials"]["id"] = json!(format!("{}ffff", &id[..id.rfind('/').unwrap() + 1]));
    vault_write(&path, &doc);
    let run = e.run(&["renew", "--force"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert_contains(&run.stdout, "not known to the CA");
    assert_contains(&run.stdout, "certvault init --force");
    assert_eq!(vault_read(&e.cert_path("g")).unwrap().1, 1);
    // init --force registers a new account, and renewing works again.
    let again = e.init_with(&["--agree-tos", "--force"]).ok();
    assert_contains(&again.stdout, "registered ACME account");
    e.run(&["renew", "--force"]).ok();
    assert_eq!(vault_read(&e.cert_path("g")).unwrap().1, 2);
}

/// A Pebble of the test's own that rejects half of all nonces (certbot 2.1 finishes 2 of
/// 10 orders against it): every order still completes.
#[test]
fn survives_a_ca_that_rejects_half_the_nonces() {
    let pebble = Pebble::start(&[("PEBBLE_WFE_NONCEREJECT", "50")], json!({}));
    let directory = pebble.directory.clone();
    let e = Env::new("nonce50");
    e.run(&["init", "--directory", &directory, "--agree-tos"])
        .ok();
    let d = domain("n50");
    for i in 0..5 {
        let host = format!("c{i}.{d}");
        e.issue(&format!("c{i}"), &[&host, &format!("*.{host}")], &[])
            .ok();
    }
    let run = e.run(&["renew", "--force"]).ok();
    assert_contains(&run.stdout, "summary: 5 renewed, 0 not due, 0 failed");
}

/// `vault kv delete` of a record: `renew` says so instead of skipping it silently, and
/// `issue` recreates it on top of the deleted version (check-and-set on that version).
#[test]
fn a_deleted_record_is_reported_and_can_be_issued_again() {
    let (e, d) = Env::with_cert("deleted", "gone");
    let path = format!("secret/data/{}", e.cert_path("gone"));
    let (status, _) = vault_call(&env("VAULT_TOKEN"), reqwest::Method::DELETE, &path, None);
    assert_eq!(status, 204);
    assert!(vault_read(&e.cert_path("gone")).is_none());

    let run = e.run(&["renew", "--force"]).ok();
    assert_contains(&run.stdout, "deleted  gone");
    assert_contains(&run.stdout, "summary: 0 renewed, 0 not due, 0 failed");

    let again = e.issue("gone", &[&d], &[]).ok();
    assert_contains(&again.stdout, "issued gone");
    assert_eq!(
        vault_read(&e.cert_path("gone")).unwrap().1,
        2,
        "written on top of version 1"
    );
}

/// Overlapping runs: a certificate whose lock another run holds is skipped (not failed, not
/// ordered); a stale lock (its holder died) is taken over; the lock is released after use.
#[test]
fn the_per_certificate_lock_keeps_overlapping_runs_apart() {
    let (e, d) = Env::with_cert("lock", "web");
    let lock = format!("{}/locks/web", e.prefix);
    // A normal issue took and released the lock: its latest version is deleted.
    assert!(vault_read(&lock).is_none(), "lock left behind after issue");

    // A live lease (within the longest a lease can be: 10 minutes).
    let in_five_minutes = time::OffsetDateTime::now_utc() + time::Duration::minutes(5);
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    vault_write(
        &lock,
        &json!({"schema": 1, "holder": "certvault pid 4242", "acquired_at": fmt(time::OffsetDateTime::now_utc()), "expires_at": fmt(in_five_minutes)}),
    );
    let run = e.run(&["renew", "--force"]).ok();
    assert_contains(
        &run.stdout,
        "skipped  web: web is locked by another certvault run (certvault pid 4242)",
    );
    assert_contains(&run.stdout, "summary: 0 renewed, 0 not due, 0 failed");
    assert_eq!(vault_read(&e.cert_path("web")).unwrap().1, 1, "not ordered");
    // issue refuses too, naming the holder.
    let refused = e.issue("web", &[&d], &["--force"]);
    fails_with(&refused, 1, "locked by another certvault run");

    // `unlock` breaks it, naming the holder.
    let unlocked = e.run(&["unlock", "web"]).ok();
    assert!(
        unlocked
            .stdout
            .contains("removed the lock of web held by certvault pid 4242"),
        "{}",
        unlocked.stdout
    );
    assert!(vault_read(&lock).is_none(), "lock removed");
    let again = e.run(&["unlock", "web"]).ok();
    assert_contains(&again.stdout, "web is not locked");

    // A lock that claims more than the longest possible lease (a skewed or hostile
    // clock) does not bind: it is taken over.
    let in_an_hour = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    vault_write(
        &lock,
        &json!({"schema": 1, "holder": "certvault pid 4242", "acquired_at": fmt(time::OffsetDateTime::now_utc()), "expires_at": fmt(in_an_hour)}),
    );
    let run = e.run(&["renew", "--force"]).ok();
    assert_contains(&run.stdout, "renewed  web");
    e.run(&["renew", "--force"]).ok();
    let skewed_renewals = 2;

    // A stale lock is taken over.
    let an_hour_ago = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    vault_write(
        &lock,
        &json!({"schema": 1, "holder": "certvault pid 4242", "acquired_at": fmt(an_hour_ago), "expires_at": fmt(an_hour_ago)}),
    );
    let run = e.run(&["renew", "--force"]).ok();
    assert_contains(&run.stdout, "renewed  web");
    assert_eq!(
        vault_read(&e.cert_path("web")).unwrap().1,
        2 + skewed_renewals
    );
    assert!(vault_read(&lock).is_none(), "lock released");
    // And taken again by the next run (check-and-set on the deleted version).
    e.run(&["renew", "--force"]).ok();
    assert_eq!(
        vault_read(&e.cert_path("web")).unwrap().1,
        3 + skewed_renewals
    );
}
