//! End to end against acme2certifier, a real ACME CA with renewal information (RFC 9773),
//! profiles and short lifetimes (each test starts its own, since it reads its configuration
//! at start only).

use serde_json::Value;

use crate::harness::*;

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|err| panic!("{err}: {}", run.all()))
}

fn t(v: &Value) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(
        v.as_str().unwrap_or_else(|| panic!("not a time: {v}")),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

/// The safety net of a record and the reason `decide` gives it: ARI decides, unless the time
/// it chose (uniformly in a window that reaches notAfter) lies in the last 1/20 of the
/// lifetime, where the safety net comes first.
fn ari_reason(doc: &Value) -> (time::OffsetDateTime, &'static str) {
    let (nb, na) = (t(&doc["not_before"]), t(&doc["not_after"]));
    let safety = na - (na - nb) / 20;
    if t(&doc["ari"]["chosen_at"]) <= safety {
        (safety, "ari")
    } else {
        (safety, "safety net: 1/20 of lifetime left")
    }
}

fn ari_requests(a2c: &Acme2certifier) -> usize {
    a2c.requests()
        .iter()
        .filter(|r| r.starts_with("GET /acme/renewal-info/"))
        .count()
}

#[test]
fn a_future_window_is_not_renewed_even_with_the_lifetime_rule_relaxed_and_retry_after_holds() {
    let a2c = Acme2certifier::start(&[("CAhandler", "cert_validity_days: 90")]);
    let e = a2c.env("a2cwin");
    // Renew 10 s after notBefore by the lifetime rule: "due" once that has passed.
    let issued_run = e
        .issue(
            "w",
            &["w.a2c.example.com"],
            &["--renew-before", "89d 23h 59m 50s"],
        )
        .ok();
    // The window is asked for right after the certificate is stored: one request, one more
    // version, and `list` shows the ARI renewal point from the first minute.
    assert_eq!(ari_requests(&a2c), 1);
    assert_contains(&issued_run.stdout, "(inside the CA's renewal window, ARI)");
    let (issued, v2) = vault_read(&e.cert_path("w")).unwrap();
    assert_eq!(v2, 2, "the certificate, then its ARI facts");
    let first = json(&e.run(&["list", "--output", "json"]).ok());
    assert!(first[0]["ari"]["chosen_at"].is_string(), "{first}");
    assert_eq!(first[0]["reason"], ari_reason(&issued).1, "{first}");
    let due_by_lifetime = t(&issued["not_after"]) - time::Duration::seconds(90 * 86400 - 10);
    let wait = due_by_lifetime + time::Duration::seconds(1) - time::OffsetDateTime::now_utc();
    std::thread::sleep(wait.try_into().unwrap_or_default());
    let run = e.run(&["renew", "--output", "json"]).ok();
    let c = &json(&run)["certificates"][0];
    assert_eq!(c["verdict"], "not_due", "{c}\n{}", run.stderr);
    assert_eq!(ari_requests(&a2c), 1, "Retry-After holds");
    let (doc, v) = vault_read(&e.cert_path("w")).unwrap();
    assert_eq!(v, v2, "nothing new to write");
    // ARI decides, unless the time it chose (uniformly in a window that reaches notAfter)
    // lies in the last 1/20 of the lifetime: then the safety net comes first.
    let (safety, want) = ari_reason(&doc);
    let by_ari = want == "ari";
    assert_eq!(c["reason"], want, "{c}\n{}", run.stderr);
    let ari = &doc["ari"];
    let (nb, na) = (t(&doc["not_before"]), t(&doc["not_after"]));
    let (start, end, chosen) = (
        t(&ari["window_start"]),
        t(&ari["window_end"]),
        t(&ari["chosen_at"]),
    );
    assert!(
        nb <= start && start < end && end <= na + time::Duration::days(1),
        "{ari}"
    );
    assert!(start <= chosen && chosen <= end, "{ari}");
    assert_eq!(t(&c["renew_at"]), if by_ari { chosen } else { safety });
    assert!(t(&ari["retry_after"]) > t(&ari["fetched_at"]), "{ari}");
    // list shows the contract object.
    let listed = json(&e.run(&["list", "--output", "json"]).ok());
    let row = &listed[0];
    assert_eq!(row["reason"], want);
    assert_eq!(row["due"], false);
    assert_eq!(row["profile"], Value::Null);
    let keys: Vec<&String> = row["ari"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "chosen_at",
            "explanation_url",
            "fetched_at",
            "retry_after",
            "window_end",
            "window_start"
        ]
    );
    assert_eq!(row["ari"]["chosen_at"], ari["chosen_at"]);
    // A second run honours Retry-After: no request, no write.
    let again = e.run(&["renew", "--output", "json"]).ok();
    assert_eq!(json(&again)["certificates"][0]["verdict"], "not_due");
    assert_eq!(ari_requests(&a2c), 1, "{:?}", a2c.requests());
    assert_eq!(vault_read(&e.cert_path("w")).unwrap().1, v2);

    // Its Retry-After passed (written here as a day later would see it): the CA is asked
    // again and says the same window. Only the key-free status document changes; the
    // record keeps its version (no KV history spent on when to ask next).
    let (mut aged, _) = vault_read(&e.cert_path("w")).unwrap();
    aged["ari"]["retry_after"] = aged["ari"]["fetched_at"].clone();
    let v3 = vault_write(&e.cert_path("w"), &aged);
    let status_path = format!("{}/status/w", e.prefix);
    let (_, s1) = vault_read(&status_path).unwrap();
    let refetch = e.run(&["renew", "--output", "json"]).ok();
    assert_eq!(json(&refetch)["certificates"][0]["verdict"], "not_due");
    assert_eq!(ari_requests(&a2c), 2, "{:?}", a2c.requests());
    let (record, v) = vault_read(&e.cert_path("w")).unwrap();
    assert_eq!(v, v3, "the same window is not written to the record again");
    assert_eq!(record["ari"]["chosen_at"], aged["ari"]["chosen_at"]);
    let (status, s2) = vault_read(&status_path).unwrap();
    assert_eq!(s2, s1 + 1, "the status document keeps the new timing");
    assert!(
        t(&status["ari"]["fetched_at"]) > t(&aged["ari"]["fetched_at"]),
        "{status}"
    );
    assert_eq!(status["ari"]["chosen_at"], aged["ari"]["chosen_at"]);
    // list shows the newer timing; the next run honours it (no request).
    let listed = json(&e.run(&["list", "--output", "json"]).ok());
    let second = |v: &Value| t(v).replace_nanosecond(0).unwrap();
    assert_eq!(
        second(&listed[0]["ari"]["fetched_at"]),
        second(&status["ari"]["fetched_at"])
    );
    let monitor = json(
        &e.as_policy(&["monitor"])
            .run(&["list", "--output", "json"])
            .ok(),
    );
    assert_eq!(
        second(&monitor[0]["ari"]["retry_after"]),
        second(&status["ari"]["retry_after"])
    );
    e.run(&["renew"]).ok();
    assert_eq!(ari_requests(&a2c), 2, "the status's Retry-After holds");
    assert_eq!(vault_read(&e.cert_path("w")).unwrap().1, v3);
}

#[test]
fn a_server_restarted_with_renewal_force_makes_a_plain_renew_renew_with_reason_ari() {
    let mut a2c = Acme2certifier::start(&[]);
    let e = a2c.env("a2cforce");
    e.issue("f", &["f.a2c.example.com"], &[]).ok();
    // `issue` asked for the window already; a day later (its Retry-After passed, written
    // here as an admin would see it then) the CA is asked again.
    let (mut old, _) = vault_read(&e.cert_path("f")).unwrap();
    assert!(old["ari"]["chosen_at"].is_string(), "{old}");
    let listed = json(
        &e.as_policy(&["monitor"])
            .run(&["list", "--output", "json"])
            .ok(),
    );
    assert_eq!(
        listed[0]["reason"],
        ari_reason(&old).1,
        "the monitor's list from the index: {listed}"
    );
    assert_eq!(
        listed[0]["ari"]["chosen_at"], old["ari"]["chosen_at"],
        "{listed}"
    );
    old["ari"]["retry_after"] = old["ari"]["fetched_at"].clone();
    let v1 = vault_write(&e.cert_path("f"), &old);
    a2c.restart(&[("Renewalinfo", "renewal_force: True")]);
    let run = e.run(&["renew", "--output", "json"]).ok();
    let c = &json(&run)["certificates"][0];
    assert_eq!(c["verdict"], "renewed", "{}", run.all());
    assert_eq!(c["reason"], "ari", "{c}");
    let (new, v2) = vault_read(&e.cert_path("f")).unwrap();
    assert_eq!(v2, v1 + 2, "the ARI facts, then the new certificate");
    assert_ne!(new["serial"], old["serial"]);
    assert!(record_key_matches(&new));
    verify_record_to(&a2c.ca_pem(), &new, &["f.a2c.example.com"]);
}

#[test]
fn profiles_are_chosen_stored_and_an_unknown_one_fails_with_the_offered_ones() {
    let a2c = Acme2certifier::start(&[(
        "Order",
        r#"profiles: {"classic": "the default", "shortlived": "a few days"}"#,
    )]);
    let e = a2c.env("a2cprof");
    let bad = e.issue("p", &["p.a2c.example.com"], &["--profile", "tlsserver"]);
    fails_with(&bad, 2, "offers: classic, shortlived");
    assert!(vault_read(&e.cert_path("p")).is_none(), "nothing stored");
    assert!(
        !a2c.requests().iter().any(|r| r.contains("neworders")),
        "nothing ordered"
    );
    e.issue(
        "p",
        &["p.a2c.example.com"],
        &["--profile", "shortlived", "--reuse-key"],
    )
    .ok();
    let (spec, _) = vault_read(&format!("{}/specs/p", e.prefix)).unwrap();
    assert_eq!(spec["profile"], "shortlived");
    assert_eq!(spec["reuse_key"], true);
    let row = &json(&e.run(&["list", "--output", "json"]).ok())[0];
    assert_eq!(row["profile"], "shortlived");
    // --reuse-key: a renewal keeps the key.
    let (before, _) = vault_read(&e.cert_path("p")).unwrap();
    e.run(&["renew", "--force"]).ok();
    let (after, _) = vault_read(&e.cert_path("p")).unwrap();
    assert_ne!(after["serial"], before["serial"]);
    assert_eq!(after["privkey"], before["privkey"]);
    assert!(record_key_matches(&after));
}

#[test]
fn a_short_lived_certificate_renews_at_half_its_life() {
    // A CA that expires in 40 s, and certificates clamped to it; no ARI, so the lifetime
    // rule (1/2 for certificates of 10 days or less) decides.
    let dir = tempdir("a2c-short");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = ca_params("certvault short-lived test CA");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(1);
    params.not_after = now + time::Duration::seconds(40);
    std::fs::write(dir.join("ca.pem"), params.self_signed(&key).unwrap().pem()).unwrap();
    std::fs::write(dir.join("ca.key"), key.serialize_pem()).unwrap();
    let a2c = Acme2certifier::start_in(
        dir,
        &[
            ("CAhandler", "cert_validity_days: 1"),
            ("CAhandler", "cert_validity_adjust: True"),
            ("Renewalinfo", "renewalinfo_disable: True"),
        ],
    );
    let e = a2c.env("a2cshort");
    e.issue("s", &["s.a2c.example.com"], &[]).ok();
    let (doc, v1) = vault_read(&e.cert_path("s")).unwrap();
    let (nb, na) = (t(&doc["not_before"]), t(&doc["not_after"]));
    assert!(
        na - nb < time::Duration::minutes(2),
        "short-lived: {nb} .. {na}"
    );
    let half: time::OffsetDateTime = nb + (na - nb) / 2i32;
    let run = e.run(&["renew", "--output", "json"]).ok();
    let c = &json(&run)["certificates"][0];
    assert_eq!(c["verdict"], "not_due", "{c}");
    assert_eq!(t(&c["renew_at"]), half.replace_nanosecond(0).unwrap());
    assert_eq!(
        json(&e.run(&["list", "--output", "json"]).ok())[0]["ari"],
        Value::Null
    );
    let wait = half + time::Duration::seconds(1) - time::OffsetDateTime::now_utc();
    std::thread::sleep(wait.try_into().unwrap_or_default());
    let run = e.run(&["renew", "--output", "json"]).ok();
    let c = &json(&run)["certificates"][0];
    assert_eq!(c["verdict"], "renewed", "{c}");
    assert!(
        c["reason"]
            .as_str()
            .unwrap()
            .contains("1/2 of lifetime left (short-lived certificate)"),
        "{c}"
    );
    let (new, v2) = vault_read(&e.cert_path("s")).unwrap();
    assert_eq!(v2, v1 + 1, "no ARI: only the renewal is written");
    verify_record_to(&a2c.ca_pem(), &new, &["s.a2c.example.com"]);
}
