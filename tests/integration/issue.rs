use serde_json::json;

use crate::harness::*;

#[test]
fn init_twice_changes_nothing() {
    let e = Env::new("init");
    let first = e.init().ok();
    assert_contains(&first.stdout, "registered ACME account");
    let path = format!("{}/accounts/default", e.prefix);
    let (doc, v1) = vault_read(&path).expect("account stored");
    assert_eq!(v1, 1);
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["directory"], env("CERTVAULT_TEST_DIRECTORY"));
    assert_eq!(doc["contact"], json!(["ops@example.com"]));
    assert!(doc["credentials"]["id"]
        .as_str()
        .unwrap()
        .starts_with("https://localhost"));
    let second = e.init().ok();
    assert_contains(&second.stdout, "nothing changed");
    assert_eq!(
        vault_read(&path).unwrap().1,
        1,
        "second init wrote to Vault"
    );
}

#[test]
fn issue_stores_a_chain_that_verifies_against_pebbles_root() {
    let e = Env::ready("issue");
    let base = domain("web");
    let wild = format!("*.{base}");
    let run = e.issue("web", &[&base, &wild], &[]).ok();
    assert_contains(&run.stdout, "issued web");

    let (doc, version) = vault_read(&e.cert_path("web")).expect("record stored");
    assert_eq!(version, 1);
    for field in [
        "schema",
        "cert",
        "chain",
        "fullchain",
        "privkey",
        "not_before",
        "not_after",
        "serial",
        "issued_at",
        "spec",
    ] {
        assert!(!doc[field].is_null(), "field {field} missing");
    }
    assert_eq!(doc["schema"], 1);
    assert_eq!(
        doc["spec"],
        json!({
            "domains": [base, wild],
            "key_type": "ecdsa-p256",
            "dns": {"kind": "exec", "auth_hook": hook("challtestsrv-auth"), "cleanup_hook": hook("challtestsrv-cleanup")},
            "account": "default",
        })
    );
    let cert = doc["cert"].as_str().unwrap();
    let chain = doc["chain"].as_str().unwrap();
    assert_eq!(doc["fullchain"].as_str().unwrap(), format!("{cert}{chain}"));
    assert_eq!(pem_ders(cert).len(), 1);
    assert!(!pem_ders(chain).is_empty());
    verify_chain(cert, chain, &[&base, &wild]);
    let mut want = vec![base.clone(), wild.clone()];
    want.sort();
    assert_eq!(sans(cert), want);
    let privkey = doc["privkey"].as_str().unwrap();
    assert!(privkey.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(key_matches(privkey, cert), "privkey does not match cert");

    // The stored times and serial are the certificate's.
    let der = pem_ders(cert).remove(0);
    let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
    let not_after = x.validity().not_after.to_datetime();
    let stored = time::OffsetDateTime::parse(
        doc["not_after"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(stored, not_after);
    let serial: String = x
        .raw_serial()
        .iter()
        .skip_while(|b| **b == 0)
        .map(|b| format!("{b:02X}"))
        .collect();
    assert_eq!(doc["serial"].as_str().unwrap(), serial);
}

#[test]
fn every_key_type_is_issued_with_a_matching_key() {
    let e = Env::ready("keys");
    for (kt, oid_hint) in [
        ("ecdsa-p384", "P-384"),
        ("rsa2048", "2048"),
        ("rsa3072", "3072"),
        ("rsa4096", "4096"),
    ] {
        let d = format!("{}.example.org", unique(kt));
        e.issue(kt, &[&d], &["--key-type", kt]).ok();
        let (doc, _) = vault_read(&e.cert_path(kt)).unwrap();
        assert_eq!(doc["spec"]["key_type"], kt);
        let cert = doc["cert"].as_str().unwrap();
        assert!(key_matches(doc["privkey"].as_str().unwrap(), cert), "{kt}");
        let der = pem_ders(cert).remove(0);
        let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
        let pk = x.public_key().parsed().unwrap();
        let bits = pk.key_size();
        match oid_hint {
            "P-384" => assert_eq!(bits, 384, "{kt}"),
            n => assert_eq!(bits.to_string(), n, "{kt}"),
        }
        verify_chain(cert, doc["chain"].as_str().unwrap(), &[&d]);
    }
}

#[test]
fn issue_again_keeps_an_up_to_date_certificate_and_reissues_on_new_names() {
    let e = Env::ready("reissue");
    let a = format!("{}.example.net", unique("a"));
    let b = format!("{}.example.net", unique("b"));
    e.issue("site", &[&a], &[]).ok();
    let again = e.issue("site", &[&a], &[]).ok();
    assert_contains(&again.stdout, "up to date");
    assert_eq!(vault_read(&e.cert_path("site")).unwrap().1, 1);

    let grown = e.issue("site", &[&a, &b], &[]).ok();
    assert_contains(&grown.stdout, "issued site");
    let (doc, v) = vault_read(&e.cert_path("site")).unwrap();
    assert_eq!(v, 2);
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(sans(doc["cert"].as_str().unwrap()), want);

    // A settings-only change (renew_before) is stored without reissuing.
    let serial = doc["serial"].clone();
    let tuned = e.issue("site", &[&a, &b], &["--renew-before", "20d"]).ok();
    assert_contains(&tuned.stdout, "settings updated");
    let (doc, v) = vault_read(&e.cert_path("site")).unwrap();
    assert_eq!(v, 3);
    assert_eq!(doc["serial"], serial);
    assert_eq!(doc["spec"]["renew_before"], "20d", "as typed");
}

#[test]
fn list_json_reports_schedule() {
    let (e, d) = Env::with_cert("list", "one");
    let two = format!("x.{d}");
    e.issue("two", &[&two], &[]).ok();
    crate::renew::make_due(&e, "two", &[&two], 2);
    let out = e.run(&["list", "--output", "json"]).ok();
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["name"], "one");
    assert_eq!(rows[0]["domains"], json!([d]));
    assert_eq!(rows[0]["due"], false);
    assert_eq!(rows[1]["due"], true);
    let (doc, _) = vault_read(&e.cert_path("one")).unwrap();
    assert_eq!(rows[0]["not_after"], doc["not_after"]);
    let nb = time::OffsetDateTime::parse(
        rows[0]["not_before"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let na = time::OffsetDateTime::parse(
        rows[0]["not_after"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let at = time::OffsetDateTime::parse(
        rows[0]["renew_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expected = na - (na - nb) / 3;
    let diff: time::Duration = at - expected;
    assert!(
        diff.abs() <= time::Duration::seconds(1),
        "renew_at {at} vs {expected}"
    );
    let table = e.run(&["list"]).ok();
    assert_contains(&table.stdout, "1/3 of lifetime left");
    assert_contains(&table.stdout, "renews at the next run");
}

/// External account binding (ZeroSSL, Google): a CA that requires it refuses `init`
/// without it, accepts the right key id and HMAC, and the HMAC is never stored or printed.
#[test]
fn init_with_external_account_binding() {
    let hmac = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    let pebble = Pebble::start(
        &[],
        json!({ "externalAccountBindingRequired": true, "externalAccountMACKeys": { "kid-cv": hmac } }),
    );
    let e = Env::new("eab");
    let init = |extra: &[(&str, &str)], args: &[&str]| {
        let mut x = Env::new("eab");
        x.prefix = e.prefix.clone();
        x.extra = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut all = vec!["init", "--directory", &pebble.directory, "--agree-tos"];
        all.extend_from_slice(args);
        x.run(&all)
    };
    let run = init(&[], &[]);
    fails_with(&run, 1, "the CA refused the account registration");
    assert_contains(&run.stderr, "externalAccountRequired");

    let wrong = "AAAAZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    let run = init(
        &[("CERTVAULT_EAB_HMAC_KEY", wrong)],
        &["--eab-kid", "kid-cv"],
    );
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(vault_read(&format!("{}/accounts/default", e.prefix)).is_none());

    let run = init(
        &[("CERTVAULT_EAB_HMAC_KEY", hmac)],
        &["--eab-kid", "kid-cv"],
    )
    .ok();
    assert_contains(&run.stdout, "registered ACME account");
    assert!(!run.all().contains(hmac));
    let (doc, _) = vault_read(&format!("{}/accounts/default", e.prefix)).unwrap();
    assert_eq!(doc["eab_kid"], "kid-cv");
    assert!(!doc.to_string().contains(hmac), "the HMAC key was stored");

    // The account issues, and the chain leads to this Pebble's root.
    let d = domain("eab");
    e.issue("web", &[&d], &[]).ok();
    let (doc, _) = vault_read(&e.cert_path("web")).unwrap();
    let root = http()
        .get(format!("{}/roots/0", pebble.mgmt))
        .send()
        .unwrap()
        .text()
        .unwrap();
    verify_record_to(&root, &doc, &[&d]);
}

/// A renew_before the certificate's lifetime cannot satisfy: refused at issue (exit 2, the
/// certificate kept), and the default rule at renew (with a warning), echoed as typed.
#[test]
fn an_unsatisfiable_renew_before_is_refused_and_falls_back() {
    let e = Env::ready("rb");
    let d = domain("rb");
    // A new certificate: its lifetime is known once issued; it stays, with the default rule.
    let run = e.issue("new", &[&d], &["--renew-before", "1900d"]);
    fails_with(
        &run,
        2,
        "--renew-before 1900d can never be satisfied: the certificate lives 182",
    );
    let (_, v1) = vault_read(&e.cert_path("new")).expect("the certificate is kept");
    let (spec, _) = vault_read(&format!("{}/specs/new", e.prefix)).unwrap();
    assert!(spec.get("renew_before").is_none(), "{spec}");
    // An existing certificate: refused before anything is ordered or written.
    let run = e.issue("new", &[&d], &["--renew-before", "1900d"]);
    fails_with(&run, 2, "nothing was changed");
    assert_eq!(vault_read(&e.cert_path("new")).unwrap().1, v1);

    // A spec that says so anyway (written by hand): renew uses the default rule, warns,
    // and does not renew on every run.
    let spec_path = format!("{}/specs/new", e.prefix);
    let mut hand = spec.clone();
    hand["renew_before"] = json!("1900d");
    vault_write(&spec_path, &hand);
    let run = e.run(&["renew"]).ok();
    assert_contains(&run.stdout, "not due  new");
    assert_contains(
        &run.stdout,
        "renew_before 1900d is not shorter than the certificate's lifetime",
    );
    assert_contains(&run.stderr, "WARN");
    assert_eq!(vault_read(&e.cert_path("new")).unwrap().1, v1);
}

/// A relative hook path is made absolute at issue time and must be an executable file;
/// renew then runs it from anywhere (a scheduler's working folder is not the user's).
#[test]
fn hook_paths_are_resolved_and_checked_at_issue() {
    use std::os::unix::fs::PermissionsExt;
    let mut e = Env::new("hookpath");
    e.init().ok();
    let dir = tempdir("hookpath");
    let script = dir.join("auth.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nexec {} \"$@\"\n", hook("challtestsrv-auth")),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("plain.sh"), "#!/bin/sh\n").unwrap();
    e.cwd = Some(dir.clone());
    let d = domain("hp");
    let issue = |auth: &str| e.issue_with_auth_hook("web", &[&d], auth);
    let missing = issue("./nosuch.sh --flag");
    assert_eq!(missing.code, 2, "{}", missing.all());
    assert!(
        missing
            .stderr
            .contains(&format!("{}", dir.join("nosuch.sh").display()))
            && missing.stderr.contains("does not exist"),
        "{}",
        missing.stderr
    );
    let plain = issue("./plain.sh");
    fails_with(&plain, 2, "not executable");

    issue("./auth.sh").ok();
    let (spec, _) = vault_read(&format!("{}/specs/web", e.prefix)).unwrap();
    assert_eq!(
        spec["dns"]["auth_hook"],
        script.display().to_string(),
        "stored as an absolute path"
    );
    e.cwd = None;
    e.fresh_account();
    e.run(&["renew", "--force"]).ok();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `edit` changes one setting: a renewal setting is stored without reissuing, a name change
/// reissues, as with `issue`; the account stays the certificate's own.
#[test]
fn edit_changes_one_setting_with_issues_rules() {
    let (e, d) = Env::with_cert_args("edit", "web", &["--deploy-hook", "true"]);
    let (first, v1) = vault_read(&e.cert_path("web")).unwrap();
    let spec_path = format!("{}/specs/web", e.prefix);

    let run = e.run(&["edit", "web", "--renew-before", "30d"]).ok();
    assert_contains(&run.stdout, "settings updated");
    let (doc, v2) = vault_read(&e.cert_path("web")).unwrap();
    assert_eq!(
        (v2, &doc["serial"]),
        (v1 + 1, &first["serial"]),
        "not reissued"
    );
    let (spec, _) = vault_read(&spec_path).unwrap();
    assert_eq!(spec["renew_before"], "30d");
    assert_eq!(spec["deploy_hook"], "true", "other settings kept");
    assert_eq!(spec["dns"], first["spec"]["dns"]);

    let run = e
        .run(&[
            "edit",
            "web",
            "--add-domain",
            &format!("www.{d}"),
            "--no-deploy-hook",
        ])
        .ok();
    assert_contains(&run.stdout, "issued web");
    let (doc, _) = vault_read(&e.cert_path("web")).unwrap();
    let mut want = vec![d.clone(), format!("www.{d}")];
    want.sort();
    assert_eq!(sans(doc["cert"].as_str().unwrap()), want);
    let (spec, _) = vault_read(&spec_path).unwrap();
    assert!(spec.get("deploy_hook").is_none(), "{spec}");
    assert_eq!(spec["renew_before"], "30d");

    let again = e.run(&["edit", "web", "--default-renewal"]).ok();
    assert_contains(&again.stdout, "settings updated");
    assert!(vault_read(&spec_path)
        .unwrap()
        .0
        .get("renew_before")
        .is_none());
    let unknown = e.run(&["edit", "nosuch", "--renew-before", "30d"]);
    assert_eq!(unknown.code, 2, "{}", unknown.all());
}
