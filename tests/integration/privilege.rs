//! Least privilege tested from outside: what a token with each printed policy can make
//! certvault do. The renew token cannot choose what renew orders or runs; the monitor token
//! sees expiry and failures but no key; records written by an older certvault are migrated.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::*;

/// Write `data` to `secret/data/<path>` with check-and-set `cas`, as `token`.
fn kv_put_cas(token: &str, path: &str, data: &Value, cas: u64) -> u16 {
    vault_call(
        token,
        Method::POST,
        &format!("secret/data/{path}"),
        Some(&json!({ "data": data, "options": { "cas": cas } })),
    )
    .0
}

#[test]
fn a_renew_token_cannot_change_what_renew_runs_or_orders() {
    let (e, d) = Env::with_cert("rce", "rel");
    let renew = e.as_policy(&["renew"]);
    let dir = tempdir("rce");
    let marker = dir.join("pwned");

    // The newcomer's reproduction: with the renew policy, replace the hooks (and the names
    // and deploy hook) in the certificate record with check-and-set on its version.
    let (mut doc, version) = vault_read(&e.cert_path("rel")).unwrap();
    let injected = format!("touch {}", marker.display());
    doc["spec"]["dns"]["auth_hook"] = json!(injected);
    doc["spec"]["deploy_hook"] = json!(injected);
    doc["spec"]["domains"] = json!([format!("evil.{d}")]);
    assert_eq!(
        kv_put_cas(&renew.token, &e.cert_path("rel"), &doc, version),
        200,
        "the renew policy may write certificate material"
    );
    // The spec document is what renew uses, and the renew policy cannot write it.
    let spec_path = format!("{}/specs/rel", e.prefix);
    let (spec, spec_version) = vault_read(&spec_path).expect("issue wrote the spec");
    let mut evil = spec.clone();
    evil["dns"]["auth_hook"] = json!(injected);
    assert_eq!(
        kv_put_cas(&renew.token, &spec_path, &evil, spec_version),
        403
    );

    e.fresh_account();
    let run = renew.run(&["renew", "--force", "rel"]).ok();
    assert_contains(&run.stdout, "renewed  rel");
    assert!(!marker.exists(), "the injected command ran");
    let (after, _) = vault_read(&e.cert_path("rel")).unwrap();
    assert_eq!(
        sans(after["cert"].as_str().unwrap()),
        vec![d.clone()],
        "renew ordered the admin's names, not the injected ones"
    );
    let mut expected = spec.clone();
    expected.as_object_mut().unwrap().remove("schema");
    assert_eq!(
        after["spec"], expected,
        "the record's spec copy is restored"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    // What the printed policy says the role can still do.
    let hcl = e.run(&["policy", "renew"]).ok().stdout;
    assert!(
        hcl.contains("What this role can still do: write certificate material"),
        "{hcl}"
    );
}

#[test]
fn a_record_from_an_older_version_is_not_renewed_until_migrated() {
    let (e, _) = Env::with_cert("legacy", "old");
    // As an older certvault left it: the spec only inside the record.
    vault_root(
        Method::DELETE,
        &format!("secret/metadata/{}/specs/old", e.prefix),
        None,
    );
    vault_root(
        Method::DELETE,
        &format!("secret/metadata/{}/status/old", e.prefix),
        None,
    );
    let (before, v1) = vault_read(&e.cert_path("old")).unwrap();

    let run = e.run(&["renew", "--force"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert_contains(&run.stdout, "FAILED   old:");
    assert_contains(&run.stdout, "run `certvault migrate` with the admin policy");
    assert_eq!(vault_read(&e.cert_path("old")).unwrap().1, v1);

    // A renew token cannot migrate; an admin can, and sees the hooks it moves.
    let renew = e.as_policy(&["renew"]);
    let run = renew.run(&["migrate"]);
    fails_with(&run, 1, "specs/*");
    let dry = e.run(&["migrate", "--dry-run"]).ok();
    assert_contains(&dry.stdout, "would move old");
    assert!(vault_read(&format!("{}/specs/old", e.prefix)).is_none());
    let run = e.run(&["migrate"]).ok();
    assert_contains(&run.stdout, "moved    old");
    assert!(
        run.stdout.contains(&hook("challtestsrv-auth")),
        "the admin sees the hook it trusts: {}",
        run.stdout
    );
    let (spec, _) = vault_read(&format!("{}/specs/old", e.prefix)).unwrap();
    assert_eq!(spec["domains"], before["spec"]["domains"]);
    assert_eq!(spec["dns"], before["spec"]["dns"]);
    assert_eq!(spec["schema"], 1);
    let again = e.run(&["migrate"]).ok();
    assert_contains(&again.stdout, "summary: 0 moved, 0 failed");

    e.fresh_account();
    let run = renew.run(&["renew", "--force"]).ok();
    assert_contains(&run.stdout, "renewed  old");
}

#[test]
fn a_monitor_token_lists_expiry_and_failures_but_reads_no_key() {
    let e = Env::ready("monitor");
    let d = domain("mon");
    e.issue("good", &[&format!("g.{d}")], &[]).ok();
    e.issue_with_auth_hook("bad", &[&format!("b.{d}")], &breakable_auth_hook())
        .ok();
    let breaking = e.with_var("BREAK", "1");
    e.fresh_account();
    assert_eq!(breaking.run(&["renew", "--force", "bad"]).code, 1);

    let monitor = e.as_policy(&["monitor"]);
    let run = monitor.run(&["list", "--output", "json"]).ok();
    let rows: Value = serde_json::from_str(&run.stdout).unwrap();
    let row = |n: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == n)
            .unwrap()
            .clone()
    };
    let (good, v_good) = vault_read(&e.cert_path("good")).unwrap();
    assert_eq!(row("good")["not_after"], good["not_after"]);
    assert_eq!(row("good")["version"], v_good);
    assert_eq!(row("good")["failures"], 0);
    assert_eq!(row("bad")["failures"], 1);
    assert_eq!(row("bad")["last_result"], "failed");
    assert!(
        row("bad")["last_error"]
            .as_str()
            .unwrap()
            .contains("dns api said no"),
        "{}",
        row("bad")
    );
    let text = monitor.run(&["list"]).ok();
    assert_contains(&text.stdout, "LAST ATTEMPT FAILED (1 in a row)");
    // No key: the record itself is forbidden, and renew is refused before any work.
    let (status, _) = vault_call(
        &monitor.token,
        Method::GET,
        &format!("secret/data/{}", e.cert_path("good")),
        None,
    );
    assert_eq!(status, 403);
    let run = monitor.run(&["renew"]);
    fails_with(&run, 1, "Missing:");
    assert!(!run
        .all()
        .contains(good["privkey"].as_str().unwrap().lines().nth(1).unwrap()));
}

/// `show` tells everything about one certificate but no secret; `delete` retires it (renew
/// stops) only with --yes and keeps KV history; only the admin policy may delete.
#[test]
fn show_and_delete_one_certificate() {
    let (e, d) = Env::with_cert_args("showdel", "web", &["--deploy-hook", "true"]);
    let (doc, version) = vault_read(&e.cert_path("web")).unwrap();
    let shown = e.run(&["show", "web"]).ok();
    for want in [
        format!("record   secret/{}", e.cert_path("web")),
        format!(
            "version {version}, serial {}",
            doc["serial"].as_str().unwrap()
        ),
        format!("spec     secret/{}/specs/web", e.prefix),
        format!("names [{d}]"),
        "deploy hook \"true\"".to_string(),
        "last attempt renewed".to_string(),
    ] {
        assert!(
            shown.stdout.contains(&want),
            "{want:?} in\n{}",
            shown.stdout
        );
    }
    let key = doc["privkey"].as_str().unwrap();
    assert!(!shown.all().contains(key.lines().nth(1).unwrap()), "no key");

    let renew = e.as_policy(&["renew"]);
    let refused = renew.run(&["delete", "web", "--yes"]);
    fails_with(&refused, 1, "certvault policy admin");
    let unconfirmed = e.run(&["delete", "web"]);
    fails_with(&unconfirmed, 2, "pass --yes");
    assert!(vault_read(&e.cert_path("web")).is_some());

    e.run(&["delete", "web", "--yes"]).ok();
    assert!(
        vault_read(&e.cert_path("web")).is_none(),
        "latest version deleted"
    );
    let run = e.run(&["renew", "--force"]).ok();
    assert_contains(&run.stdout, "deleted  web");
    // History is kept: the version is still there, deleted, not destroyed.
    let meta = vault_root(
        Method::GET,
        &format!("secret/metadata/{}", e.cert_path("web")),
        None,
    );
    let v = &meta["data"]["versions"][version.to_string()];
    assert!(!v["deletion_time"].as_str().unwrap().is_empty(), "{meta}");
    assert_eq!(v["destroyed"], false);
}

/// Small input rules: more than 100 names is refused; help shows a command's own options
/// first and lists key types; `policy reader NAME` suggests a name with NAME in it.
#[test]
fn help_names_and_policy_names() {
    let e = Env::new("small");
    let mut args = vec![
        "issue".to_string(),
        "many".to_string(),
        "--auth-hook".to_string(),
        "true".to_string(),
    ];
    for i in 0..101 {
        args.extend(["-d".to_string(), format!("n{i}.example.com")]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = e.run(&refs);
    assert_eq!(run.code, 2, "{}", run.all());
    assert_contains(
        &run.stderr,
        "101 names given; a certificate holds at most 100",
    );
    let ip = e.run(&["issue", "x", "-d", "192.0.2.1", "--auth-hook", "true"]);
    fails_with(&ip, 2, "is an IP address");

    let help = e.run(&["issue", "--help"]).ok().stdout;
    let own = help.find("--domain").unwrap();
    let global = help.find("Global options").unwrap();
    assert!(
        own < global && help.find("--vault-addr").unwrap() > global,
        "{help}"
    );
    assert!(
        help.contains("ecdsa-p256, ecdsa-p384, rsa2048, rsa3072 or rsa4096"),
        "{help}"
    );
    let hcl = e.run(&["policy", "reader", "web"]).ok().stdout;
    assert!(
        hcl.contains("vault policy write certvault-reader-web"),
        "{hcl}"
    );
}

/// `migrate` killed (SIGKILL) part-way through 1,500 records an older certvault left, then run
/// again: it moves exactly the rest, and ends as one uninterrupted run would (a spec and a
/// status for every record, each spec the record's own); a third run moves nothing. The
/// text output lists the distinct settings with their counts; `--output json` every one.
#[test]
fn migrate_killed_mid_way_resumes_and_ends_the_same() {
    const N: usize = 1500;
    let (e, _) = Env::with_cert("mresume", "seed");
    let (seed, _) = vault_read(&e.cert_path("seed")).unwrap();
    for kind in ["certs", "specs", "status"] {
        vault_root(
            Method::DELETE,
            &format!("secret/metadata/{}/{kind}/seed", e.prefix),
            None,
        );
    }
    let name = |i: usize| format!("r{i:04}");
    for i in 0..N {
        vault_write(&e.cert_path(&name(i)), &seed);
    }
    let specs = || -> usize {
        let (_, listed) = vault_call(
            &env("VAULT_TOKEN"),
            Method::from_bytes(b"LIST").unwrap(),
            &format!("secret/metadata/{}/specs", e.prefix),
            None,
        );
        listed["data"]["keys"].as_array().map_or(0, Vec::len)
    };
    let mut child = e.command(&["migrate"]).spawn().expect("start migrate");
    wait_until("migrate moves its first specs", 60, || specs() >= 50);
    assert!(
        child.try_wait().unwrap().is_none(),
        "migrate ended before it could be killed"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // A write the killed run had already sent may still land: let Vault finish it.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let done = specs();
    assert!(done > 0 && done < N, "killed part-way: {done} of {N}");

    let again = e.run(&["migrate"]).ok();
    assert_contains(
        &again.stdout,
        &format!("summary: {} moved, 0 failed", N - done),
    );
    // Many moved: the distinct settings with their counts, not a line per certificate.
    assert_contains(&again.stdout, &format!("{:>7} x account default", N - done));
    assert!(
        again.stdout.matches("moved    r").count() == 0,
        "{}",
        again.stdout
    );
    assert_eq!(specs(), N);
    for i in 0..N {
        let (spec, _) = vault_read(&format!("{}/specs/{}", e.prefix, name(i))).unwrap();
        assert_eq!(spec["domains"], seed["spec"]["domains"], "{}", name(i));
        assert_eq!(spec["dns"], seed["spec"]["dns"]);
        let (status, _) = vault_read(&format!("{}/status/{}", e.prefix, name(i)))
            .unwrap_or_else(|| panic!("no status for {}", name(i)));
        assert_eq!(status["serial"], seed["serial"]);
    }
    let third = e.run(&["migrate", "--output", "json"]).ok();
    let report: Value = serde_json::from_str(&third.stdout).unwrap();
    assert_eq!(report["totals"]["moved"], 0, "{report}");
    assert_eq!(report["moved"], json!([]));
}
