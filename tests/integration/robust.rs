//! Bad stored data and bad input: damaged records are found and reissued, extra fields kept,
//! a broken account fails only its own certificates, no error quotes key material, and no
//! input (stored documents or command-line values) makes certvault panic.

use serde_json::{json, Value};

use crate::harness::*;

/// The exit code of a panic in Rust is 101; a signal has none.
#[track_caller]
fn no_panic(run: &Run, what: &str) {
    assert!(
        matches!(run.code, 0..=2),
        "{what}: exit {} (a panic is 101)\n{}",
        run.code,
        run.all()
    );
    assert!(!run.stderr.contains("panicked"), "{what}: {}", run.stderr);
}

/// No panic, exit `code`, and `out` (the run's stdout or stderr) holds `needle`.
#[track_caller]
fn exits_saying(run: &Run, what: &str, code: i32, out: &str, needle: &str) {
    no_panic(run, what);
    assert_eq!(run.code, code, "{what}: {}", run.all());
    assert!(out.contains(needle), "{what}: {needle:?} not in:\n{out}");
}

fn key_line(pem: &str) -> String {
    pem.lines().nth(1).unwrap().to_string()
}

#[test]
fn damaged_records_are_reissued_and_extra_fields_kept() {
    let e = Env::ready("damaged");
    let d = domain("dmg");
    for n in ["swapped", "garbled", "badchain", "healthy"] {
        e.issue(n, &[&format!("{n}.{d}")], &[]).ok();
    }
    let (healthy, _) = vault_read(&e.cert_path("healthy")).unwrap();
    let edit = |name: &str, f: &dyn Fn(&mut Value)| {
        let (mut doc, _) = vault_read(&e.cert_path(name)).unwrap();
        f(&mut doc);
        vault_write(&e.cert_path(name), &doc);
    };
    edit("swapped", &|doc| {
        doc["privkey"] = healthy["privkey"].clone()
    });
    edit("garbled", &|doc| {
        doc["privkey"] =
            json!("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n");
        doc["owner"] = json!("team-a");
    });
    edit("badchain", &|doc| doc["chain"] = json!("garbage"));
    edit("healthy", &|doc| doc["owner"] = json!("team-b"));

    let list = e.run(&["list", "--output", "json"]).ok();
    let rows: Value = serde_json::from_str(&list.stdout).unwrap();
    for r in rows.as_array().unwrap() {
        let due = r["name"] != "healthy";
        assert_eq!(r["due"], due, "{r}");
    }

    // `issue` again with the same settings reissues a damaged record too (as renew does).
    let swapped_serial = vault_read(&e.cert_path("swapped")).unwrap().0["serial"].clone();
    let again = e.issue("swapped", &[&format!("swapped.{d}")], &[]).ok();
    assert!(!again.stdout.contains("up to date"), "{}", again.stdout);
    let (reissued, _) = vault_read(&e.cert_path("swapped")).unwrap();
    assert_ne!(reissued["serial"], swapped_serial);
    assert!(record_key_matches(&reissued));
    edit("swapped", &|doc| {
        doc["privkey"] = healthy["privkey"].clone()
    });

    e.fresh_account();
    let run = e.run(&["renew"]).ok();
    for (n, why) in [
        ("swapped", "privkey does not belong to cert"),
        ("garbled", "privkey is not a readable private key"),
        ("badchain", "chain is not a list of PEM certificates"),
    ] {
        assert_contains(
            &run.stdout,
            &format!("renewed  {n}: the stored record is damaged: {why}"),
        );
        let (doc, _) = vault_read(&e.cert_path(n)).unwrap();
        assert!(record_key_matches(&doc));
    }
    assert_contains(&run.stdout, "not due  healthy");
    assert!(!run
        .all()
        .contains(&key_line(healthy["privkey"].as_str().unwrap())));
    // A field a user added stays through renewals.
    assert_eq!(
        vault_read(&e.cert_path("garbled")).unwrap().0["owner"],
        "team-a"
    );
    e.run(&["renew", "--force", "healthy"]).ok();
    assert_eq!(
        vault_read(&e.cert_path("healthy")).unwrap().0["owner"],
        "team-b"
    );
}

#[test]
fn a_broken_account_fails_only_its_certificates_and_quotes_no_key() {
    let e = Env::ready("badacct");
    let d = domain("ba");
    e.issue("good", &[&format!("g.{d}")], &[]).ok();
    // A second account, then broken in two ways a person with `kv put` easily makes.
    let mut other = Env::new("x");
    other.prefix = e.prefix.clone();
    other
        .extra
        .push(("CERTVAULT_ACCOUNT".into(), "other".into()));
    other.init().ok();
    other.issue("bad", &[&format!("b.{d}")], &[]).ok();
    let path = format!("{}/accounts/other", e.prefix);
    let (account, _) = vault_read(&path).unwrap();
    let key = account["credentials"]["key_pkcs8"]
        .as_str()
        .unwrap()
        .to_string();
    let as_string = account["credentials"].to_string();

    for (case, credentials) in [
        ("credentials as a JSON string", json!(as_string)),
        ("a malformed directory", {
            let mut c = account["credentials"].clone();
            c["directory"] = json!("http://[::1");
            c
        }),
    ] {
        let mut broken = account.clone();
        broken["credentials"] = credentials;
        vault_write(&path, &broken);
        let run = e.run(&["renew", "--force"]);
        exits_saying(&run, case, 1, &run.stdout, "renewed  good");
        let failed = run
            .stdout
            .lines()
            .find(|l| l.starts_with("FAILED   bad:"))
            .unwrap_or_else(|| panic!("{case}: {}", run.stdout));
        assert!(
            failed.contains("unreadable credentials"),
            "{case}: {failed}"
        );
        assert!(!run.all().contains(&key), "{case}: the account key leaked");
    }
}

#[test]
fn init_refuses_a_directory_that_is_not_a_url() {
    let e = Env::new("baddir");
    for bad in [
        "not a url",
        "localhost:14000/dir",
        "https://",
        "http://[::1",
    ] {
        let run = e.run(&["init", "--directory", bad, "--agree-tos"]);
        exits_saying(&run, bad, 2, &run.stderr, "invalid --directory");
    }
}

/// A small deterministic generator: the same documents every run, different per index.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() as usize) % items.len()]
    }
}

/// Mutate one field of `doc` to a hostile value.
fn mutate(doc: &mut Value, rng: &mut Lcg) {
    let values = [
        json!(null),
        json!(""),
        json!(-1),
        json!(1e300),
        json!(u64::MAX),
        json!([]),
        json!({}),
        json!("\u{0}\u{ffff}"),
        json!("x".repeat(70_000)),
        json!("2031-13-45T99:99:99Z"),
        json!({"kind": "nosuch"}),
        json!(["*.*", "-", "a..b"]),
    ];
    let Some(obj) = doc.as_object_mut() else {
        return;
    };
    let keys: Vec<String> = obj.keys().cloned().collect();
    if keys.is_empty() {
        return;
    }
    let key = rng.pick(&keys).clone();
    match rng.next() % 3 {
        0 => {
            obj.remove(&key);
        }
        1 => {
            obj.insert(key, rng.pick(&values).clone());
        }
        _ => {
            if let Some(inner) = obj.get_mut(&key) {
                mutate(inner, rng);
            }
        }
    }
}

#[test]
fn no_stored_document_or_command_line_value_makes_it_panic() {
    let e = Env::ready("fuzz");
    let d = domain("fz");
    e.issue("seed", &[&format!("s.{d}")], &[]).ok();
    let (cert, _) = vault_read(&e.cert_path("seed")).unwrap();
    let (spec, _) = vault_read(&format!("{}/specs/seed", e.prefix)).unwrap();
    let (status, _) = vault_read(&format!("{}/status/seed", e.prefix)).unwrap();
    let secret = key_line(cert["privkey"].as_str().unwrap());
    let mut rng = Lcg(7);
    // 24 records, each with one to three hostile mutations of its certificate, spec or
    // status document (written as the record's own documents).
    for i in 0..24 {
        let name = format!("f{i}");
        let (mut c, mut s, mut st) = (cert.clone(), spec.clone(), status.clone());
        for _ in 0..=(rng.next() % 3) {
            let target = match rng.next() % 3 {
                0 => &mut c,
                1 => &mut s,
                _ => &mut st,
            };
            mutate(target, &mut rng);
        }
        vault_write(&e.cert_path(&name), &c);
        vault_write(&format!("{}/specs/{name}", e.prefix), &s);
        vault_write(&format!("{}/status/{name}", e.prefix), &st);
    }
    for args in [
        vec!["list"],
        vec!["list", "--output", "json"],
        vec!["renew"],
        vec!["renew", "--output", "json"],
        vec!["show", "f3"],
    ] {
        let run = e.run(&args);
        no_panic(&run, &args.join(" "));
        assert!(
            !run.all().contains(&secret),
            "{args:?}: a private key leaked"
        );
    }
    // The seed record still renews: one broken record never stops the others.
    let run = e.run(&["renew", "--force", "seed"]).ok();
    assert_contains(&run.stdout, "renewed  seed");

    // Hostile command-line values: a clear error (exit 2) or a normal run, never a panic.
    let huge = "9".repeat(40);
    let cases: Vec<Vec<String>> = vec![
        vec!["renew".into(), "--lock-lease".into(), "0s".into()],
        vec!["renew".into(), "--lock-lease".into(), format!("{huge}d")],
        vec!["renew".into(), "--concurrency".into(), "0".into()],
        vec!["renew".into(), "--concurrency".into(), huge.clone()],
        vec!["issue".into(), "x".into(), "-d".into(), "".into()],
        vec![
            "issue".into(),
            "x".into(),
            "-d".into(),
            "ü.example.com".into(),
        ],
        vec![
            "issue".into(),
            "../x".into(),
            "-d".into(),
            "a.example.com".into(),
        ],
        vec![
            "issue".into(),
            "x".into(),
            "-d".into(),
            "a.example.com".into(),
            "--renew-before".into(),
            format!("{huge}d"),
        ],
        vec!["--account".into(), "../certs/victim".into(), "list".into()],
        vec!["--prefix".into(), "../..".into(), "list".into()],
        vec![
            "--validation-timeout".into(),
            format!("{huge}y"),
            "list".into(),
        ],
        vec!["--dns-resolver".into(), "not-an-ip".into(), "list".into()],
        vec![
            "--vault-addr".into(),
            "http://127.0.0.1:99999".into(),
            "list".into(),
        ],
        vec!["show".into(), "nosuch".into()],
        vec!["delete".into(), "seed".into()],
        vec!["unlock".into(), "nosuch".into()],
        vec!["policy".into(), "nosuch".into()],
        vec!["renew".into(), "--pushgateway".into(), "ftp://x".into()],
    ];
    for args in cases {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = e.run(&refs);
        no_panic(&run, &args.join(" "));
    }
    // An account name becomes part of a Vault path: validated like a certificate name.
    let run = e.run(&["--account", "../certs/victim", "list"]);
    fails_with(&run, 2, "invalid account name");
}
