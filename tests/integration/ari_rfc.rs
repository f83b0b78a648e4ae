//! What only the RFC 9773 test server (`ari_server.rs`) can show: `replaces` from the
//! account that ordered the certificate, by a fresh process; `alreadyReplaced`; a CA that
//! rate-limits or fails newOrder; the dry run's "no ordering endpoint".

use serde_json::Value;

use crate::ari_server::{ari_id, AriServer};
use crate::harness::*;

/// An installation whose account is at the test server, and `n` issued certificates.
fn setup(server: &AriServer, tag: &str, n: usize) -> Env {
    let e = Env::new(tag);
    e.run(&["init", "--directory", &server.directory(), "--agree-tos"])
        .ok();
    for i in 0..n {
        e.issue(&format!("c{i}"), &[&format!("c{i}.{tag}.example.com")], &[])
            .ok();
    }
    e
}

fn record(e: &Env, name: &str) -> (Value, u64) {
    vault_read(&e.cert_path(name)).expect("record")
}

#[test]
fn a_fresh_process_renews_with_replaces_from_the_account_that_ordered_it() {
    let server = AriServer::start();
    let mut e = setup(&server, "lineage", 1);
    let (old, v1) = record(&e, "c0");
    let old_id = ari_id(old["cert"].as_str().unwrap()).unwrap();
    let account_url = old["ordered_by"].as_str().expect("ordered_by").to_string();
    // Another "container": its own empty working directory and HOME; only Vault is shared.
    let fresh = tempdir("fresh");
    e.cwd = Some(fresh.clone());
    e.extra.push(("HOME".into(), fresh.display().to_string()));
    let run = e.run(&["renew", "--force", "--output", "json"]).ok();
    assert_eq!(verdicts(&run.json()), [("c0".into(), "renewed".into())]);
    let orders = server.new_orders();
    assert_eq!(orders.len(), 2, "{orders:?}");
    assert_eq!(
        orders[0].get("replaces"),
        None,
        "the first issuance replaces nothing"
    );
    assert_eq!(orders[1]["replaces"], old_id.as_str(), "{orders:?}");
    assert!(
        old.get("ari").is_some(),
        "issue asked for the window: {old}"
    );
    let (new, v2) = record(&e, "c0");
    // The window was fetched by `issue` (its Retry-After holds): the renewal is one write.
    assert_eq!(v2, v1 + 1);
    assert_eq!(new["replaced"], old_id.as_str());
    assert_eq!(new["ordered_by"], account_url.as_str());
    assert!(
        new.get("ari").is_none(),
        "a new certificate starts without ARI facts"
    );
    assert_ne!(new["serial"], old["serial"]);
    verify_record_to(server.ca_pem(), &new, &["c0.lineage.example.com"]);
    assert!(is_empty_dir(&fresh));
    let _ = std::fs::remove_dir_all(fresh);
}

#[test]
fn already_replaced_gets_one_retry_without_replaces_and_the_record_says_why() {
    let server = AriServer::start();
    let e = setup(&server, "replaced", 1);
    let (old, _) = record(&e, "c0");
    let old_id = ari_id(old["cert"].as_str().unwrap()).unwrap();
    server.mark_replaced(&old_id);
    let run = e.run(&["renew", "--force", "--output", "json"]).ok();
    let report = run.json();
    assert_eq!(verdicts(&report), [("c0".into(), "renewed".into())]);
    assert_eq!(report["certificates"][0]["reason"], "forced");
    assert_contains(&run.stderr, "alreadyReplaced");
    let orders = server.new_orders();
    assert_eq!(orders.len(), 3, "issue, with replaces, without: {orders:?}");
    assert_eq!(orders[1]["replaces"], old_id.as_str());
    assert_eq!(orders[2].get("replaces"), None);
    let (new, _) = record(&e, "c0");
    assert_eq!(new["replaced"], old_id.as_str());
    let why = new["replaces_dropped"].as_str().expect("replaces_dropped");
    assert!(why.contains("alreadyReplaced"), "{why}");
}

#[test]
fn a_rate_limited_ca_is_paused_and_the_next_run_honours_it_with_the_renew_policy() {
    let server = AriServer::start();
    let e = setup(&server, "ratelimit", 3);
    // From here on, the renew token: it may store the pause, not touch the account.
    let renew = e.as_policy(&["renew"]);
    let (account_before, account_version) =
        vault_read(&format!("{}/accounts/default", e.prefix)).unwrap();
    server.knobs.lock().unwrap().rate_limit = Some(900);
    let started = now_secs();
    let run = renew.run(&["renew", "--force", "--concurrency", "1", "--output", "json"]);
    assert_eq!(
        run.code,
        0,
        "a run that only deferred exits 0: {}",
        run.all()
    );
    let report = run.json();
    assert!(
        verdicts(&report).iter().all(|(_, v)| v == "deferred"),
        "{report}"
    );
    assert_eq!(report["totals"]["deferred"], 3);
    assert_eq!(report["totals"]["failed"], 0);
    let reason = report["certificates"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("rate-limited"), "{reason}");
    assert_eq!(
        server.new_orders().len(),
        3 + 1,
        "one refused order, then none"
    );
    let (pause, _) = vault_read(&format!("{}/pauses/default", e.prefix)).expect("pause stored");
    let until = time::OffsetDateTime::parse(
        pause["until"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp() as u64;
    assert!(
        until >= started + 890 && until <= now_secs() + 901,
        "{pause}"
    );
    assert_eq!(pause["directory"], server.directory().as_str());
    // The account document is untouched.
    let (account_after, v) = vault_read(&format!("{}/accounts/default", e.prefix)).unwrap();
    // (compared whole, but printed only as versions: the document holds the account key)
    assert!(
        account_after == account_before && v == account_version,
        "the account document changed: version {account_version} -> {v}"
    );
    // The next run honours the stored pause: no order at all.
    server.knobs.lock().unwrap().rate_limit = None;
    let again = renew.run(&["renew", "--force", "--output", "json"]).ok();
    assert_eq!(again.json()["totals"]["deferred"], 3);
    assert_eq!(server.new_orders().len(), 4);
    let text = renew.run(&["renew", "--force"]).ok().stdout;
    assert!(text.contains("3 deferred"), "{text}");
}

#[test]
fn a_failing_ca_is_paused_for_the_run_and_the_run_exits_non_zero() {
    let server = AriServer::start();
    let e = setup(&server, "failing", 4);
    server.knobs.lock().unwrap().unavailable = true;
    let run = e.run(&[
        "renew",
        "--force",
        "--concurrency",
        "1",
        "--ca-failures",
        "2",
        "--output",
        "json",
    ]);
    assert_eq!(run.code, 1, "{}", run.all());
    let report = run.json();
    assert_eq!(report["totals"]["failed"], 2, "{report}");
    assert_eq!(report["totals"]["deferred"], 2, "{report}");
    assert_eq!(server.new_orders().len(), 4 + 2);
    let deferred: Vec<&Value> = report["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "deferred")
        .collect();
    for c in deferred {
        assert!(
            c["reason"]
                .as_str()
                .unwrap()
                .contains("failed 2 orders in a row"),
            "{c}"
        );
    }
}

#[test]
fn dry_run_fetches_ari_plans_everything_and_orders_or_writes_nothing() {
    let server = AriServer::start();
    let e = setup(&server, "dryrun", 3);
    // Records without renewal information yet (as from a version before `issue` asked).
    for i in 0..3 {
        let (mut doc, _) = record(&e, &format!("c{i}"));
        doc.as_object_mut().unwrap().remove("ari");
        vault_write(&e.cert_path(&format!("c{i}")), &doc);
    }
    let asked = server.renewal_info_requests();
    assert_eq!(asked, 3, "issue asked once each");
    let before: Vec<u64> = (0..3).map(|i| record(&e, &format!("c{i}")).1).collect();
    let orders = server.new_orders().len();
    let run = e
        .run(&[
            "renew",
            "--dry-run",
            "--force",
            "--max-orders",
            "2",
            "--output",
            "json",
        ])
        .ok();
    let report = run.json();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["totals"]["due"], 2, "{report}");
    assert_eq!(report["totals"]["deferred"], 1, "{report}");
    assert_eq!(report["totals"]["renewed"], 0);
    assert_eq!(server.renewal_info_requests(), asked + 3, "ARI is fetched");
    assert_eq!(server.new_orders().len(), orders, "no ordering endpoint");
    let after: Vec<u64> = (0..3).map(|i| record(&e, &format!("c{i}")).1).collect();
    assert_eq!(before, after, "nothing written");
    for i in 0..3 {
        assert!(record(&e, &format!("c{i}")).0.get("ari").is_none());
        assert!(vault_read(&format!("{}/locks/c{i}", e.prefix)).is_none());
    }
    // Text: the plan, what is due and why, what is deferred.
    let text = e.run(&["renew", "--dry-run"]).ok().stdout;
    assert!(
        text.contains("dry run (nothing ordered or written): 0 due now, 0 renewed, 3 not due"),
        "{text}"
    );
    assert!(text.contains("(in "), "{text}");
    assert!(!text.contains("BEGIN"), "{text}");
}
