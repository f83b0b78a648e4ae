//! The renewal index (`<prefix>/index/NNN`): a run with nothing due reads no record; records
//! written behind certvault's back (by hand, an older version, an import) are found and
//! repaired; a lost or corrupt index rebuilds itself with a warning; `--shard` selects by
//! the documented hash; overlapping shards are kept apart by the lock; `list --verify`
//! reports a planted disagreement; `index rebuild` needs the admin policy.

use std::process::Stdio;

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::*;

/// `sha256sum` of the name: first 8 bytes big-endian (computed outside certvault).
fn documented_hash(name: &str) -> u64 {
    let out = std::process::Command::new("sh")
        .args(["-c", &format!("printf %s '{name}' | sha256sum")])
        .output()
        .unwrap();
    let hex = String::from_utf8(out.stdout).unwrap();
    u64::from_str_radix(&hex[..16], 16).unwrap()
}

fn shard_doc(e: &Env, name: &str) -> String {
    format!("{}/index/{:03}", e.prefix, documented_hash(name) % 256)
}

/// The index document holding `name`, its entries unpacked (they are stored as one JSON
/// text).
fn read_shard(e: &Env, name: &str) -> Option<Value> {
    let (mut doc, _) = vault_read(&shard_doc(e, name))?;
    doc["entries"] = index_entries(&doc);
    Some(doc)
}

/// Write a document read by `read_shard` back (packing its entries).
fn write_shard(e: &Env, name: &str, doc: &Value) {
    let mut doc = doc.clone();
    let entries = doc["entries"].clone();
    set_index_entries(&mut doc, &entries);
    vault_write(&shard_doc(e, name), &doc);
}

/// The index entry of `name`, if any.
fn entry(e: &Env, name: &str) -> Option<Value> {
    read_shard(e, name)?["entries"].get(name).cloned()
}

/// Copy the record and spec of `from` to `to` by hand (no index entry), as an import or an
/// older certvault would write them.
fn copy_by_hand(e: &Env, from: &str, to: &str) -> u64 {
    let (spec, _) = vault_read(&format!("{}/specs/{from}", e.prefix)).unwrap();
    vault_write(&format!("{}/specs/{to}", e.prefix), &spec);
    let (record, _) = vault_read(&e.cert_path(from)).unwrap();
    vault_write(&e.cert_path(to), &record)
}

/// `renew` logging every document it reads; (run, the record paths it read).
fn renew_logged(e: &Env, args: &[&str]) -> (Run, Vec<String>) {
    let logged = e.with_var("CERTVAULT_LOG", "info,certvault::reads=debug");
    let mut all = vec!["renew"];
    all.extend_from_slice(args);
    let run = logged.run(&all);
    let certs = format!("secret/{}/certs/", e.prefix);
    let reads = run
        .stderr
        .lines()
        .filter(|l| l.contains("read ") && l.contains(&certs))
        .map(String::from)
        .collect();
    (run, reads)
}

fn delete_all(path: &str) {
    vault_root(Method::DELETE, &format!("secret/metadata/{path}"), None);
}

/// An installation with one issued certificate `web` and `n` hand-made copies `c0..`.
fn fleet(tag: &str, n: usize) -> Env {
    let (e, _) = Env::with_cert(tag, "web");
    for i in 0..n {
        copy_by_hand(&e, "web", &format!("c{i}"));
    }
    e
}

#[test]
fn a_noop_renew_reads_no_record_and_hand_written_records_are_repaired() {
    let e = fleet("idx-noop", 3);
    // `issue` wrote the entry of web; the hand-made copies have none: loaded and repaired.
    assert_eq!(entry(&e, "web").unwrap()["version"], 1);
    assert!(entry(&e, "c0").is_none());
    let (run, reads) = renew_logged(&e, &[]);
    let run = run.ok();
    assert_contains(&run.stdout, "0 renewed, 4 not due, 0 failed");
    for c in ["c0", "c1", "c2"] {
        assert!(
            reads.iter().any(|r| r.ends_with(&format!("/certs/{c}"))),
            "{reads:?}"
        );
        let (_, version) = vault_read(&e.cert_path(c)).unwrap();
        assert_eq!(entry(&e, c).unwrap()["version"], version, "{c}");
    }
    assert!(
        !reads.iter().any(|r| r.ends_with("/certs/web")),
        "{reads:?}"
    );
    // Now nothing is due and every entry is there: not one record is read.
    let (run, reads) = renew_logged(&e, &[]);
    let run = run.ok();
    assert_contains(&run.stdout, "0 renewed, 4 not due, 0 failed");
    assert_contains(&run.stdout, "not due  c1: renews ");
    assert!(reads.is_empty(), "{reads:?}");
    // The log does show reads (of the index), so the assertion above can fail.
    assert_contains(&run.stderr, "/index/");
    // A due entry (renew_before longer than... planted: renews now) makes its record read.
    let mut shard = read_shard(&e, "c2").unwrap();
    shard["entries"]["c2"]["renew_at"] = json!(0);
    write_shard(&e, "c2", &shard);
    let (run, reads) = renew_logged(&e, &[]);
    run.ok();
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert!(reads[0].ends_with("/certs/c2"));
    // ... and its entry is repaired from the record.
    assert_ne!(entry(&e, "c2").unwrap()["renew_at"], 0);
}

/// An index document as versions before index format 2 wrote it: no `format`, each entry
/// an object with field names (`deleted` a boolean, left out when false).
fn as_format_1(doc: &Value) -> Value {
    let mut old = doc.clone();
    old.as_object_mut().unwrap().remove("format");
    let mut entries = index_entries(doc);
    for e in entries.as_object_mut().unwrap().values_mut() {
        let obj = e.as_object_mut().unwrap();
        let deleted = obj.remove("deleted").is_some_and(|d| d == 1);
        if deleted {
            obj.insert("deleted".into(), json!(true));
        }
        obj.retain(|_, v| !v.is_null());
        // Format 1 kept the basis as the text `list` prints.
        assert_eq!(obj["basis"], "L", "the lifetime rule's code");
        obj.insert("basis".into(), json!("1/3 of lifetime left"));
    }
    old["entries"] = json!(entries.to_string());
    old
}

#[test]
fn an_index_of_format_1_is_used_as_it_is_and_rewritten_as_rows() {
    let e = fleet("idx-format1", 3);
    renew_logged(&e, &[]).0.ok();
    let listed = |e: &Env| e.run(&["list", "--output", "json"]).ok().stdout;
    let before = listed(&e);
    // Every document the fleet has, written back the way the previous version wrote it.
    let docs: Vec<(String, Value)> = (0..256)
        .filter_map(|s| {
            let path = format!("{}/index/{s:03}", e.prefix);
            vault_read(&path).map(|(doc, _)| (path, doc))
        })
        .collect();
    assert!(!docs.is_empty());
    for (path, doc) in &docs {
        let old = as_format_1(doc);
        assert!(
            old["entries"].as_str().unwrap().contains("\"version\":"),
            "{old}"
        );
        vault_write(path, &old);
    }
    // `list` (read-only) and a no-op `renew` with the renew policy read it as before:
    // nothing due, no record read.
    let (run, reads) = renew_logged(&e, &["--dry-run"]);
    assert!(reads.is_empty(), "{reads:?}\n{}", run.stderr);
    assert_eq!(listed(&e), before);
    let (path, _) = &docs[0];
    assert!(
        vault_read(path).unwrap().0["format"].is_null(),
        "dry run writes nothing"
    );
    let renew = e.as_policy(&["renew"]);
    let (run, reads) = renew_logged(&renew, &[]);
    let run = run.ok();
    assert_contains(&run.stdout, "0 renewed, 4 not due, 0 failed");
    assert!(reads.is_empty(), "{reads:?}\n{}", run.stderr);
    // That run rewrote each document as rows, with the same entries.
    for (path, doc) in &docs {
        let (now, _) = vault_read(path).unwrap();
        assert_eq!(now["format"], 2, "{path}: {now}");
        assert_eq!(index_entries(&now), index_entries(doc), "{path}");
        assert!(!now["entries"].as_str().unwrap().contains("\"version\":"));
    }
    assert_eq!(listed(&e), before);
}

#[test]
fn a_stale_version_is_found_by_the_metadata_check_and_repaired() {
    let e = fleet("idx-stale", 1);
    renew_logged(&e, &[]).0.ok();
    // Rewritten by hand: same content, a new version. The entry still names the old one.
    let (record, _) = vault_read(&e.cert_path("c0")).unwrap();
    let version = vault_write(&e.cert_path("c0"), &record);
    assert_eq!(entry(&e, "c0").unwrap()["version"], version - 1);
    // Its shard is due for the check (as if a week had passed since the last one).
    let doc = shard_doc(&e, "c0");
    let mut shard = read_shard(&e, "c0").unwrap();
    shard["verified_at"] = json!(0);
    write_shard(&e, "c0", &shard);
    let (run, reads) = renew_logged(&e, &[]);
    let run = run.ok();
    assert_contains(&run.stderr, "index entry is stale");
    assert!(reads.iter().any(|r| r.ends_with("/certs/c0")), "{reads:?}");
    assert_eq!(entry(&e, "c0").unwrap()["version"], version);
    let (shard, _) = vault_read(&doc).unwrap();
    assert!(shard["verified_at"].as_i64().unwrap() > now_secs() as i64 - 600);
}

#[test]
fn a_lost_or_corrupt_index_rebuilds_itself_with_a_warning() {
    let e = fleet("idx-lost", 2);
    renew_logged(&e, &[]).0.ok();
    let docs: Vec<String> = ["web", "c0", "c1"]
        .iter()
        .map(|n| shard_doc(&e, n))
        .collect();
    for d in &docs {
        delete_all(d);
    }
    let (run, reads) = renew_logged(&e, &[]);
    let run = run.ok();
    assert_contains(&run.stderr, "no renewal index");
    assert_eq!(reads.len(), 3, "{reads:?}");
    for n in ["web", "c0", "c1"] {
        assert!(entry(&e, n).is_some(), "{n}");
    }
    // Garbage in one document: a warning, and it is written again from its records.
    vault_write(&docs[1], &json!({"schema": 1, "entries": "garbage"}));
    let (run, reads) = renew_logged(&e, &[]);
    let run = run.ok();
    assert_contains(&run.stderr, "is not usable");
    assert!(reads.iter().any(|r| r.ends_with("/certs/c0")), "{reads:?}");
    assert!(entry(&e, "c0").is_some());
    assert_contains(&run.stdout, "0 renewed, 3 not due, 0 failed");
}

#[test]
fn shard_selects_by_the_documented_hash() {
    let e = fleet("idx-shard", 7);
    let names: Vec<String> = std::iter::once("web".to_string())
        .chain((0..7).map(|i| format!("c{i}")))
        .collect();
    for i in 0..3u64 {
        let run = e.run(&["renew", "--shard", &format!("{i}/3")]).ok();
        let mut got: Vec<&str> = run
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("not due  "))
            .map(|l| l.split(':').next().unwrap())
            .collect();
        got.sort();
        let mut want: Vec<&str> = names
            .iter()
            .filter(|n| documented_hash(n) % 3 == i)
            .map(String::as_str)
            .collect();
        want.sort();
        assert_eq!(got, want, "shard {i}/3\n{}", run.stdout);
    }
    // The environment variable does the same; a bad value exits 2.
    let env_shard = e.with_var("CERTVAULT_SHARD", "1/2");
    let run = env_shard.run(&["renew"]).ok();
    let count = names.iter().filter(|n| documented_hash(n) % 2 == 1).count();
    assert_contains(&run.stdout, &format!("{count} not due"));
    for bad in ["2/2", "x", "0/0"] {
        assert_eq!(e.run(&["renew", "--shard", bad]).code, 2, "{bad}");
    }
}

#[test]
fn indexed_job_shards_renew_every_due_certificate_exactly_once() {
    // As a Kubernetes Indexed Job runs them: N pods at once, each with its
    // JOB_COMPLETION_INDEX, CERTVAULT_SHARD=auto and CERTVAULT_SHARD_COUNT=N.
    const N: u64 = 3;
    let (e, d) = Env::with_cert("idx-auto", "web");
    let names: Vec<String> = std::iter::once("web".to_string())
        .chain((0..7).map(|i| format!("c{i}")))
        .collect();
    // Each its own name: the pods order at once, and the challtestsrv cleanup hook clears
    // every TXT value of a name.
    let domains: Vec<String> = std::iter::once(d.clone())
        .chain((0..7).map(|i| format!("c{i}.{d}")))
        .collect();
    for (n, dn) in names.iter().zip(&domains).skip(1) {
        e.issue(n, &[dn], &[]).ok();
    }
    for (n, dn) in names.iter().zip(&domains) {
        crate::renew::make_due(&e, n, &[dn], 1);
    }
    // `make_due` reissues: wait until the last one's renewal point has passed too.
    wait_until("every certificate is due", 20, || {
        let list = e.run(&["list", "--output", "json"]).ok().json();
        list.as_array().unwrap().iter().all(|c| c["due"] == true)
    });
    let before: Vec<u64> = names
        .iter()
        .map(|n| vault_read(&e.cert_path(n)).unwrap().1)
        .collect();
    let dir = tempdir("idx-auto");
    let gw = env("CERTVAULT_TEST_PUSHGATEWAY");
    let pods: Vec<_> = (0..N)
        .map(|i| {
            e.with_var("CERTVAULT_SHARD", "auto")
                .with_var("CERTVAULT_SHARD_COUNT", &N.to_string())
                .with_var("JOB_COMPLETION_INDEX", &i.to_string())
                .command(&[
                    "renew",
                    "--metrics-file",
                    &dir.join(format!("{i}.prom")).display().to_string(),
                    "--pushgateway",
                    &gw,
                    "--output",
                    "json",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut renewed: Vec<String> = Vec::new();
    for (i, pod) in pods.into_iter().enumerate() {
        let out = pod.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(report["shard"], format!("{i}/{N}"), "{text}");
        let mine: Vec<String> = report["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                assert_eq!(c["verdict"], "renewed", "{text}");
                c["name"].as_str().unwrap().to_string()
            })
            .collect();
        let want: Vec<String> = names
            .iter()
            .filter(|n| documented_hash(n) % N == i as u64)
            .cloned()
            .collect();
        let mut got = mine.clone();
        got.sort();
        let mut want = want;
        want.sort();
        assert_eq!(got, want, "pod {i}\n{text}");
        renewed.extend(mine);
        // Every sample of the pod's metrics names its shard.
        let metrics = std::fs::read_to_string(dir.join(format!("{i}.prom"))).unwrap();
        let label = format!("shard=\"{i}/{N}\"");
        for l in metrics.lines().filter(|l| !l.starts_with('#')) {
            assert!(l.contains(&label), "{l}");
        }
    }
    renewed.sort();
    let mut all = names.clone();
    all.sort();
    assert_eq!(renewed, all, "every due certificate, each once");
    for (n, v) in names.iter().zip(before) {
        assert_eq!(vault_read(&e.cert_path(n)).unwrap().1, v + 1, "{n}");
    }
    // Each shard pushed to its own group: none replaced another's metrics.
    let pushed = http()
        .get(format!("{gw}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    for i in 0..N {
        let series = format!(
            "certvault_run_last_success_timestamp_seconds{{instance=\"\",job=\"certvault\",shard=\"{i}/{N}\"}} "
        );
        assert!(pushed.contains(&series), "{series}\n{pushed}");
        let group = format!(
            "{gw}/metrics/job/certvault/shard@base64/{}",
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE,
                format!("{i}/{N}")
            )
        );
        let gone = http().delete(&group).send().unwrap();
        assert!(gone.status().is_success(), "{group}");
    }
    // Outside an Indexed Job, or with the count missing or wrong: exit 2, naming the fix.
    let auto = e.with_var("CERTVAULT_SHARD", "auto");
    for (vars, says) in [
        (vec![("CERTVAULT_SHARD_COUNT", "3")], "JOB_COMPLETION_INDEX"),
        (vec![("JOB_COMPLETION_INDEX", "0")], "spec.completions"),
        (
            vec![
                ("JOB_COMPLETION_INDEX", "3"),
                ("CERTVAULT_SHARD_COUNT", "3"),
            ],
            "below the count",
        ),
        (
            vec![
                ("JOB_COMPLETION_INDEX", "x"),
                ("CERTVAULT_SHARD_COUNT", "3"),
            ],
            "whole number",
        ),
    ] {
        let env = vars
            .iter()
            .fold(auto.with_var("CERTVAULT_LOG", "warn"), |e, (k, v)| {
                e.with_var(k, v)
            });
        let run = env.run(&["renew"]);
        assert_eq!(run.code, 2, "{}", run.all());
        assert_contains(&run.stderr, says);
    }
    let run = e
        .with_var("CERTVAULT_SHARD_COUNT", "3")
        .run(&["renew", "--shard", "0/3"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert_contains(&run.stderr, "only read with --shard auto");
}

#[test]
fn two_overlapping_shards_renew_each_certificate_once() {
    // Two names in different halves of --shard I/2 (by the documented hash).
    let pick = |parity: u64| {
        (0..)
            .map(|i| format!("o{i}"))
            .find(|n| documented_hash(n) % 2 == parity)
            .unwrap()
    };
    let (both, only_b) = (pick(0), pick(1));
    let e = Env::ready("idx-overlap");
    // Each order's hook sleeps, so the two jobs really overlap.
    let slow = format!("sleep 2; {}", hook("challtestsrv-auth"));
    for name in [&both, &only_b] {
        let d = format!("{}.example.com", unique(name));
        e.run(&[
            "issue",
            name,
            "-d",
            &d,
            "--auth-hook",
            &slow,
            "--cleanup-hook",
            &hook("challtestsrv-cleanup"),
        ])
        .ok();
        // Made due by hand: one more name in its spec (and its index entry dropped, as
        // the metadata check would find it).
        let spec_path = format!("{}/specs/{name}", e.prefix);
        let (mut spec, _) = vault_read(&spec_path).unwrap();
        let extra = format!("more.{d}");
        spec["domains"].as_array_mut().unwrap().push(json!(extra));
        vault_write(&spec_path, &spec);
        delete_all(&shard_doc(&e, name));
    }
    // Misconfigured: one job takes shard 0/2, the other everything (0/1).
    let spawn = |shard: &str| {
        e.command(&["renew", "--shard", shard, "--lock-lease", "5s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("0/2"), spawn("0/1"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let text = format!(
        "{}\n{}\n{}\n{}",
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stdout),
        String::from_utf8_lossy(&b.stderr)
    );
    assert!(a.status.success() && b.status.success(), "{text}");
    // `both` is in both shards: renewed by exactly one job; the other found it locked,
    // waited for the lease and then found it renewed.
    assert_eq!(
        text.matches(&format!("renewed  {both}:")).count(),
        1,
        "{text}"
    );
    assert_eq!(
        text.matches(&format!("renewed  {only_b}:")).count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("is locked by another certvault run"),
        "{text}"
    );
    assert!(
        !String::from_utf8_lossy(&a.stdout).contains(&only_b),
        "{text}"
    );
    for n in [&both, &only_b] {
        let (_, version) = vault_read(&e.cert_path(n)).unwrap();
        assert_eq!(version, 2, "{n} renewed once\n{text}");
        assert_eq!(entry(&e, n).unwrap()["version"], 2, "{n}");
        assert!(vault_read(&format!("{}/locks/{n}", e.prefix)).is_none());
    }
}

#[test]
fn list_verify_reports_a_planted_disagreement_and_rebuild_needs_admin() {
    let e = fleet("idx-verify", 2);
    renew_logged(&e, &[]).0.ok();
    let clean = e.run(&["list", "--verify"]).ok();
    assert_contains(&clean.stdout, "index: agrees with every record");
    // Plant: web's entry says it expires in 2099.
    let doc = shard_doc(&e, "web");
    let mut shard = read_shard(&e, "web").unwrap();
    shard["entries"]["web"]["not_after"] = json!(4_070_908_800i64);
    write_shard(&e, "web", &shard);
    let planted = vault_read(&doc).unwrap().0;
    // `list` reads the index, so it shows the planted date...
    let listed = e.run(&["list", "--output", "json"]).ok();
    let rows: Vec<Value> = serde_json::from_str(&listed.stdout).unwrap();
    let web = rows.iter().find(|r| r["name"] == "web").unwrap();
    assert_eq!(web["not_after"], "2099-01-01T00:00:00Z", "{web}");
    // ... `list --verify` reads the records and reports it (exit 1).
    let run = e.run(&["list", "--verify"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert_contains(&run.stdout, "web  INDEX DISAGREES");
    assert_contains(&run.stdout, "2099-01-01");
    assert!(
        !run.stdout.contains("c0  INDEX DISAGREES"),
        "{}",
        run.stdout
    );
    let json_run = e.run(&["list", "--verify", "--output", "json"]);
    let items: Vec<Value> = serde_json::from_str(&json_run.stdout).unwrap();
    assert!(items
        .iter()
        .any(|i| i["name"] == "web" && i["index"].is_string()));

    // A renew token may not rebuild (least privilege: no delete on index/*).
    let renew = e.as_policy(&["renew"]);
    let refused = renew.run(&["index", "rebuild"]);
    assert_ne!(refused.code, 0, "{}", refused.all());
    assert_contains(&refused.stderr, "delete on secret/data/");
    assert_contains(&refused.stderr, "certvault policy admin");
    assert_eq!(vault_read(&doc).unwrap().0, planted, "unchanged");
    // The admin policy is enough for both.
    let admin = e.as_policy(&["admin"]);
    let rebuilt = admin.run(&["index", "rebuild"]).ok();
    assert_contains(&rebuilt.stdout, "3 entries");
    admin.run(&["list", "--verify"]).ok();
    assert_ne!(entry(&e, "web").unwrap()["not_after"], 4_070_908_800i64);
    // The renew and monitor tokens pass their start-up checks with the index paths.
    renew.run(&["renew"]).ok();
    let monitor = e.as_policy(&["monitor"]);
    // (The hand-made copies have no status document, which a monitor token needs.)
    let listed = monitor.run(&["list"]);
    assert_contains(&listed.stdout, "web  [");
    assert!(!listed.all().contains("denied"), "{}", listed.all());
}

/// Every entry of the documents of a layout of `shards` (`index/NNN` for 256, else
/// `index/<shards>/<n>`), by name, with the document each is in.
fn entries_of_layout(e: &Env, shards: u64) -> Vec<(String, u64, Value)> {
    let width = (shards - 1).to_string().len();
    let mut out = Vec::new();
    for s in 0..shards {
        let path = if shards == 256 {
            format!("{}/index/{s:03}", e.prefix)
        } else {
            format!("{}/index/{shards}/{s:0width$}", e.prefix)
        };
        let Some((doc, _)) = vault_read(&path) else {
            continue;
        };
        assert_eq!(doc["of"], shards, "{path}");
        assert_eq!(doc["shard"], s, "{path}");
        let Value::Object(entries) = index_entries(&doc) else {
            unreachable!()
        };
        for (name, entry) in entries {
            out.push((name, s, entry));
        }
    }
    out
}

#[test]
fn the_index_grows_with_the_fleet_and_a_renew_token_moves_it_without_reading_records() {
    // 300 certificates. Grown from the first layout (256 documents) once the average
    // passes CERTVAULT_INDEX_GROW_ABOVE (320 by default; 1 here, so 300 is enough).
    let e = fleet("idx-grow", 299);
    renew_logged(&e, &[]).0.ok();
    let layout = format!("{}/index/layout", e.prefix);
    assert!(
        vault_read(&layout).is_none(),
        "the first layout has no layout document"
    );
    let first = entries_of_layout(&e, 256);
    assert_eq!(first.len(), 300);
    let listed = |env: &Env| -> Vec<Value> {
        let mut rows: Vec<Value> =
            serde_json::from_str(&env.run(&["list", "--output", "json"]).ok().stdout).unwrap();
        for r in &mut rows {
            // Relative to the clock; the rest must not change.
            r.as_object_mut().unwrap().remove("due");
        }
        rows
    };
    let before = listed(&e);
    assert_eq!(before.len(), 300);

    // A renew token grows it, reading no record.
    let renew = e
        .as_policy(&["renew"])
        .with_var("CERTVAULT_INDEX_GROW_ABOVE", "1");
    let (run, reads) = renew_logged(&renew, &[]);
    let run = run.ok();
    assert_contains(&run.stdout, "0 renewed, 300 not due, 0 failed");
    assert_contains(
        &run.stderr,
        "the renewal index grows from 256 documents to 512 documents",
    );
    assert!(reads.is_empty(), "{reads:?}");
    let (record, version) = vault_read(&layout).unwrap();
    assert_eq!(version, 1);
    assert_eq!(record["shards"], 512);
    assert_eq!(record["previous"], 256);
    assert_eq!(record["certificates"], 300);
    // Every entry moved, to the document of hash mod 512, unchanged.
    let grown = entries_of_layout(&e, 512);
    assert_eq!(grown.len(), 300);
    for (name, s, entry) in &grown {
        assert_eq!(*s, documented_hash(name) % 512, "{name}");
        let old = first.iter().find(|(n, _, _)| n == name).unwrap();
        assert_eq!(&old.2, entry, "{name}");
    }
    // The old documents are left empty.
    assert!(entries_of_layout(&e, 256).is_empty());
    assert!(vault_read(&format!("{}/index/000", e.prefix)).is_some());

    // The next runs use it, with or without the setting (it never shrinks): no record read,
    // no growth, the same list.
    for env in [&renew, &e] {
        let (run, reads) = renew_logged(env, &[]);
        let run = run.ok();
        assert_contains(&run.stdout, "0 renewed, 300 not due, 0 failed");
        assert!(!run.stderr.contains("grows"), "{}", run.stderr);
        assert!(reads.is_empty(), "{reads:?}");
    }
    assert_eq!(vault_read(&layout).unwrap().1, 1);
    same_rows(&listed(&e), &before);
    assert_contains(
        &e.run(&["list", "--verify"]).ok().stdout,
        "index: agrees with every record",
    );
    // A record changed behind certvault's back lands in its new document.
    copy_by_hand(&e, "web", "c7");
    renew_logged(&e, &[]).0.ok();
    let (_, version) = vault_read(&e.cert_path("c7")).unwrap();
    let c7 = entries_of_layout(&e, 512)
        .into_iter()
        .find(|(n, _, _)| n == "c7")
        .unwrap();
    assert_eq!(c7.2["version"], version);
    let before = listed(&e);

    // `index rebuild` keeps the layout and deletes the emptied documents of the old one.
    let admin = e.as_policy(&["admin"]);
    let rebuilt = admin.run(&["index", "rebuild"]).ok();
    assert_contains(&rebuilt.stdout, "300 entries");
    assert_contains(&rebuilt.stdout, "layout of 512 documents");
    assert_contains(&rebuilt.stdout, "documents of a smaller layout deleted");
    assert!(vault_read(&format!("{}/index/000", e.prefix)).is_none());
    assert_eq!(entries_of_layout(&e, 512).len(), 300);
    same_rows(&listed(&e), &before);
}

/// The rows are the same (the first difference shown, not all 300 rows).
fn same_rows(got: &[Value], want: &[Value]) {
    assert_eq!(got.len(), want.len());
    if let Some((g, w)) = got.iter().zip(want).find(|(g, w)| g != w) {
        panic!("rows differ:\n got {g}\nwant {w}");
    }
}

#[test]
fn a_growth_the_token_may_not_write_warns_and_the_run_renews_on_the_old_layout() {
    // A renew token that may not create the grown documents (here: denied index/512/*).
    let e = fleet("idx-nogrow", 299);
    renew_logged(&e, &[]).0.ok();
    let layout = format!("{}/index/layout", e.prefix);
    let hcl = e.run(&["policy", "renew"]).ok().stdout
        + &format!(
            "\npath \"secret/data/{}/index/512/*\" {{\n  capabilities = [\"deny\"]\n}}\n",
            e.prefix
        );
    let policy = unique("cv-renew-nogrow");
    vault_policy(&policy, &hcl);
    let denied = e
        .as_token(&policy)
        .with_var("CERTVAULT_INDEX_GROW_ABOVE", "1");
    let version = copy_by_hand(&e, "web", "c7");

    let (run, _) = renew_logged(&denied, &[]);
    let run = run.ok();
    assert_contains(&run.stdout, "0 renewed, 300 not due, 0 failed");
    assert_contains(
        &run.stderr,
        "the renewal index could not grow to 512 documents (",
    );
    assert_contains(
        &run.stderr,
        "this run uses 256 documents; the next run tries again",
    );
    assert!(vault_read(&layout).is_none(), "no layout document written");
    // The old layout stays whole, and this run's notes reached it.
    let first = entries_of_layout(&e, 256);
    assert_eq!(first.len(), 300);
    let c7 = first.iter().find(|(n, _, _)| n == "c7").unwrap();
    assert_eq!(c7.2["version"], version);
    assert!(entries_of_layout(&e, 512).is_empty());

    // A token that may grows it on the next run.
    let renew = e
        .as_policy(&["renew"])
        .with_var("CERTVAULT_INDEX_GROW_ABOVE", "1");
    let run = renew_logged(&renew, &[]).0.ok();
    assert_contains(
        &run.stderr,
        "the renewal index grows from 256 documents to 512 documents",
    );
    assert_eq!(vault_read(&layout).unwrap().0["shards"], 512);
    assert_eq!(entries_of_layout(&e, 512).len(), 300);
}
