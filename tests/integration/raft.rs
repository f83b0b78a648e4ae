//! Vault as a highly available cluster: the leader of a 3-node OpenBao Raft cluster
//! (`scripts/testbed raft up`) is SIGKILLed in the middle of a `renew --force` of 20
//! certificates sent to a standby. The run rides through the election (or fails cleanly),
//! no record is half written or lost, no lock is left behind, and the next run converges.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use crate::harness::*;

/// The cluster, started for this test and stopped (its data removed) on drop.
struct Cluster {
    vars: HashMap<String, String>,
}

/// One cluster at a time: `scripts/testbed raft` keeps one state folder.
static ONE_CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Cluster {
    fn up() -> Cluster {
        let out = output_ok(
            Command::new(repo().join("scripts/testbed"))
                .args(["raft", "up"])
                .env("CERTVAULT_TESTBED_DIR", env("CERTVAULT_TESTBED_DIR")),
            "scripts/testbed raft up",
        );
        let vars = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Cluster { vars }
    }

    fn addrs(&self) -> Vec<String> {
        self.vars["CERTVAULT_RAFT_ADDRS"]
            .split(',')
            .map(String::from)
            .collect()
    }

    fn token(&self) -> String {
        self.vars["CERTVAULT_RAFT_TOKEN"].clone()
    }

    fn pid_of(&self, addr: &str) -> u32 {
        let i = self.addrs().iter().position(|a| a == addr).unwrap();
        self.vars["CERTVAULT_RAFT_PIDS"]
            .split(',')
            .nth(i)
            .unwrap()
            .parse()
            .unwrap()
    }

    /// (status, body) of a request to node `addr`.
    fn call(&self, addr: &str, method: Method, path: &str) -> (u16, Value) {
        let rsp = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
            .request(method, format!("{addr}/v1/{path}"))
            .header("X-Vault-Token", self.token())
            .send();
        match rsp {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.json().unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    fn leader(&self) -> String {
        let (_, body) = self.call(&self.addrs()[0], Method::GET, "sys/leader");
        body["leader_address"].as_str().unwrap().to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/testbed"))
            .args(["raft", "down"])
            .env("CERTVAULT_TESTBED_DIR", env("CERTVAULT_TESTBED_DIR"))
            .output();
    }
}

#[test]
fn renewals_ride_through_the_loss_of_the_raft_leader() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|p| p.into_inner());
    let cluster = Cluster::up();
    let leader = cluster.leader();
    let standby = cluster.addrs().into_iter().find(|a| *a != leader).unwrap();
    let mut e = Env::new("raft");
    e.token = cluster.token();
    e.extra.push(("VAULT_ADDR".into(), standby.clone()));
    e.init().ok();
    let names: Vec<String> = (0..20).map(|i| format!("c{i:02}")).collect();
    for name in &names {
        let d = format!("{}.example.com", unique(name));
        e.issue(name, &[&d], &[]).ok();
    }
    let version = |addr: &str, name: &str| -> Option<u64> {
        let (status, body) = cluster.call(
            addr,
            Method::GET,
            &format!("secret/data/{}", e.cert_path(name)),
        );
        (status == 200).then(|| body["data"]["metadata"]["version"].as_u64().unwrap())
    };
    let before: Vec<u64> = names
        .iter()
        .map(|n| version(&standby, n).unwrap())
        .collect();

    let mut child = e
        .command(&["renew", "--force"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // In the middle: as soon as the first renewed record is stored.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !names
        .iter()
        .zip(&before)
        .any(|(n, v)| version(&standby, n).is_some_and(|now| now > *v))
    {
        assert!(Instant::now() < deadline, "no renewal was stored");
        std::thread::sleep(Duration::from_millis(10));
    }
    let killed_at = Instant::now();
    let pid = cluster.pid_of(&leader).to_string();
    assert!(Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap()
        .success());
    let out = {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if child.try_wait().unwrap().is_some() {
                break child.wait_with_output().unwrap();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("renew did not finish within 120 s of the kill");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let renewed = stdout.lines().filter(|l| l.starts_with("renewed ")).count();
    eprintln!(
        "raft failover: renewed {renewed} of 20, run ended {:.1}s after the kill, exit {:?}",
        killed_at.elapsed().as_secs_f32(),
        out.status.code()
    );
    // Completed after the election, or failed cleanly (named, exit 1): never a panic.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{stdout}\n{stderr}"
    );
    // Every certificate renewed, or failed cleanly: named with the serial the CA issued
    // (a write whose fate the election hid is reported, never guessed).
    let failed: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("FAILED ") || l.starts_with("UNKNOWN "))
        .collect();
    assert_eq!(
        renewed + failed.len(),
        20,
        "the run should ride through the election:\n{stdout}\n{stderr}"
    );
    assert!(renewed >= 15, "most ride through:\n{stdout}\n{stderr}");
    for f in &failed {
        assert!(
            f.contains("serial"),
            "failed without naming the serial: {f}"
        );
    }

    // A new leader, then every record whole: each version moved by exactly one (none lost,
    // none written twice), and a list reads them all.
    let survivor = standby.clone();
    let deadline = Instant::now() + Duration::from_secs(120);
    while cluster.call(&survivor, Method::GET, "sys/leader").1["leader_address"]
        .as_str()
        .is_none_or(|l| l == leader)
    {
        assert!(Instant::now() < deadline, "no new leader");
        std::thread::sleep(Duration::from_millis(100));
    }
    for (name, v) in names.iter().zip(&before) {
        // Renewed: exactly one new version. Failed: the old one kept, or the one write that
        // landed unseen; never two, never lost.
        let now = version(&survivor, name);
        if failed.iter().any(|f| {
            f.starts_with(&format!("FAILED   {name}:"))
                || f.starts_with(&format!("UNKNOWN  {name}:"))
        }) {
            assert!(now == Some(*v) || now == Some(v + 1), "{name}: {now:?}");
        } else {
            assert_eq!(now, Some(v + 1), "{name}");
        }
        let (status, lock) = cluster.call(
            &survivor,
            Method::GET,
            &format!("secret/data/{}/locks/{name}", e.prefix),
        );
        assert_eq!(
            status, 404,
            "lock of {name} left behind: {lock}\n{stdout}\n{stderr}"
        );
    }
    let listed = e.run(&["list"]).ok();
    assert!(!listed.stdout.contains("UNREADABLE"), "{}", listed.stdout);
    assert_eq!(
        listed.stdout.lines().filter(|l| l.starts_with('c')).count(),
        20,
        "{}",
        listed.stdout
    );
    // The next run converges: nothing due, nothing failed.
    let next = e.run(&["renew"]).ok();
    assert_contains(&next.stdout, "0 renewed, 20 not due, 0 failed");
}

/// The run talks to the leader itself (VAULT_ADDR is the leader's address), and the leader
/// is SIGKILLed in the middle of a `renew --force` of 12: nothing answers at that address
/// any more. The run gives up on Vault within its bound (`--vault-retry-timeout` plus one
/// attempt); every certificate the CA issued (Pebble's log) is stored or printed with its
/// serial; after one lease the next run, sent to a survivor after the election, leaves no
/// lock and makes `status/` agree with every record.
#[test]
fn issued_certificates_are_stored_or_named_when_the_leader_the_run_talks_to_dies() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|p| p.into_inner());
    let cluster = Cluster::up();
    let leader = cluster.leader();
    let survivor = cluster.addrs().into_iter().find(|a| *a != leader).unwrap();
    let mut e = Env::new("raftdirect");
    e.token = cluster.token();
    e.extra.push(("VAULT_ADDR".into(), leader.clone()));
    e.init().ok();
    let names: Vec<String> = (0..12).map(|i| format!("d{i:02}")).collect();
    let mut domains = Vec::new();
    // Each order waits a second in its auth hook, and four run at once: when the first
    // renewal is stored, eight are still to come, so the kill lands in the middle of the
    // run (without the wait all twelve could be stored before the kill).
    let slow = format!("sleep 1 && {}", hook("challtestsrv-auth"));
    for name in &names {
        let d = format!("{}.example.com", unique(name));
        e.issue_with_auth_hook(name, &[&d], &slow).ok();
        domains.push(d);
    }
    let read = |addr: &str, name: &str| -> Option<(u64, String)> {
        let (status, body) = cluster.call(
            addr,
            Method::GET,
            &format!("secret/data/{}", e.cert_path(name)),
        );
        (status == 200).then(|| {
            (
                body["data"]["metadata"]["version"].as_u64().unwrap(),
                body["data"]["data"]["serial"].as_str().unwrap().to_string(),
            )
        })
    };
    let before: Vec<u64> = names.iter().map(|n| read(&leader, n).unwrap().0).collect();
    let pebble = PebbleLog::mark();
    let mut child = e
        .command(&[
            "renew",
            "--force",
            "--vault-retry-timeout",
            "8s",
            "--lock-lease",
            "6s",
            "--concurrency",
            "4",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !names
        .iter()
        .zip(&before)
        .any(|(n, v)| read(&leader, n).is_some_and(|(now, _)| now > *v))
    {
        assert!(Instant::now() < deadline, "no renewal was stored");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = cluster.pid_of(&leader).to_string();
    assert!(Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap()
        .success());
    let killed_at = Instant::now();
    let out = loop {
        if child.try_wait().unwrap().is_some() {
            break child.wait_with_output().unwrap();
        }
        if killed_at.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("renew did not end within 60 s of the kill");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = killed_at.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    // The bound: the budget (8 s) plus one attempt (8 s at most), with margin for the
    // orders in flight.
    assert!(
        took < Duration::from_secs(30),
        "the run ended {took:?} after the kill:\n{stdout}\n{stderr}"
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    // A new leader among the survivors.
    let deadline = Instant::now() + Duration::from_secs(120);
    while cluster.call(&survivor, Method::GET, "sys/leader").1["leader_address"]
        .as_str()
        .is_none_or(|l| l == leader || l.is_empty())
    {
        assert!(Instant::now() < deadline, "no new leader");
        std::thread::sleep(Duration::from_millis(100));
    }
    let printed = stdout.to_lowercase();
    let mut stored = 0;
    let mut named = 0;
    for (name, d) in names.iter().zip(&domains) {
        let (_, serial) = read(&survivor, name).unwrap();
        for issued in pebble.issued_for(d) {
            if pebble_serial(&serial) == issued {
                stored += 1;
            } else {
                assert!(printed.contains(&issued), "{name}: serial {issued} issued by the CA, neither stored nor printed:\n{stdout}\n{stderr}");
                named += 1;
            }
        }
    }
    eprintln!("raft leader killed under a direct run: ended {:.1}s after the kill; {stored} issued and stored, {named} issued and named", took.as_secs_f32());
    assert!(stored >= 1, "the first renewal was stored before the kill");
    // After one lease (6 s) every lock left has lapsed: the next run removes them all.
    std::thread::sleep(Duration::from_secs(7));
    let next = e.with_var("VAULT_ADDR", &survivor).run(&["renew"]);
    assert!(matches!(next.code, 0 | 1), "{}", next.all());
    for name in &names {
        let (version, serial) = read(&survivor, name).unwrap();
        let (_, status) = cluster.call(
            &survivor,
            Method::GET,
            &format!("secret/data/{}/status/{name}", e.prefix),
        );
        let s = &status["data"]["data"];
        assert_eq!(
            s["serial"].as_str(),
            Some(serial.as_str()),
            "{name}: status disagrees with the record: {s}"
        );
        assert_eq!(s["cert_version"].as_u64(), Some(version), "{name}: {s}");
        let (code, lock) = cluster.call(
            &survivor,
            Method::GET,
            &format!("secret/data/{}/locks/{name}", e.prefix),
        );
        assert_eq!(code, 404, "lock of {name} left beyond one lease: {lock}");
    }
}
