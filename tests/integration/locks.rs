//! Lock leases: a run killed with SIGKILL blocks its certificates for one lease at most,
//! and a live run keeps its lease while it works.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

/// A child process killed (SIGKILL) and reaped when dropped, unless taken.
struct Killed(Option<Child>);

impl Killed {
    fn get(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Kill the process group whose leader's pid is in `file` (a hook left behind by a
/// SIGKILLed certvault keeps running, as it would under a real scheduler).
fn kill_group_in(file: &Path) {
    if let Ok(pid) = std::fs::read_to_string(file) {
        if let Ok(pid) = pid.trim().parse::<i32>() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
    }
}

/// An installation with `web`, whose auth hook sleeps `SLOW` seconds first when set (and
/// records its pid in PIDFILE).
fn slow_installation(tag: &str) -> (Env, TempDir) {
    let e = Env::ready(tag);
    let dir = tempdir(tag);
    let d = domain(tag);
    let slow = format!(
        "if [ -n \"${{SLOW:-}}\" ]; then echo $$ > {}; sleep \"$SLOW\"; fi; {}",
        dir.join("hook.pid").display(),
        hook("challtestsrv-auth")
    );
    e.issue_with_auth_hook("web", &[&d], &slow).ok();
    (e, dir)
}

fn slow(e: &Env, seconds: &str) -> Env {
    e.with_var("SLOW", seconds)
}

/// Wait until the lock of `web` exists; its holder text.
fn wait_for_lock(e: &Env) -> String {
    let lock = format!("{}/locks/web", e.prefix);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some((doc, _)) = vault_read(&lock) {
            return doc["holder"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "the run never took the lock");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_sigkilled_run_blocks_its_certificate_for_one_lease_only() {
    let (e, dir) = slow_installation("killed");
    e.fresh_account();
    let mut cmd = slow(&e, "30").command(&["renew", "--force", "--lock-lease", "3s"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = Killed(Some(cmd.spawn().unwrap()));
    let holder = wait_for_lock(&e);
    assert!(
        holder.starts_with("certvault on ") && holder.contains(", run "),
        "the holder names host, pid and run: {holder}"
    );
    child.get().kill().unwrap(); // SIGKILL: no cleanup, no unlock
    child.get().wait().unwrap();
    kill_group_in(&dir.join("hook.pid"));

    // The next run finds the dead run's lease, waits for it to lapse, and renews.
    let started = Instant::now();
    let run = e.run(&["renew", "--force", "--lock-lease", "3s"]).ok();
    let took = started.elapsed();
    assert_contains(&run.stdout, "renewed  web");
    assert!(!run.stdout.contains("skipped"), "{}", run.stdout);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_contains(&run.stderr, "waiting");
    assert_contains(&run.stderr, "lock leases");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An installation whose `web` a `renew --force --lock-lease 3s` is renewing now (its hook
/// takes `seconds`): the record's version before, and that run (output piped).
fn holding_the_lock(tag: &str, seconds: &str) -> (Env, TempDir, u64, Killed) {
    let (e, dir) = slow_installation(tag);
    e.fresh_account();
    let (_, v1) = vault_read(&e.cert_path("web")).unwrap();
    let mut cmd = slow(&e, seconds).command(&["renew", "--force", "--lock-lease", "3s"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = Killed(Some(cmd.spawn().unwrap()));
    wait_for_lock(&e);
    (e, dir, v1, child)
}

#[test]
fn a_live_run_keeps_its_lease_and_the_other_run_skips() {
    let (e, dir, v1, mut child) = holding_the_lock("live", "7");

    // Meanwhile: the lease is renewed every second, so after waiting for it this run
    // still finds it held and skips (exit 0: the other run does it).
    let run = e.run(&["renew", "--force", "--lock-lease", "3s"]).ok();
    assert_contains(&run.stdout, "skipped  web");
    assert_contains(
        &run.stdout,
        "skipped because another run holds their lock: 1 (web)",
    );
    assert_contains(
        &run.stdout,
        "summary: 0 renewed, 0 not due, 0 failed, 1 skipped",
    );

    let out = child.0.take().unwrap().wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("renewed  web"), "{stdout}");
    assert_eq!(
        vault_read(&e.cert_path("web")).unwrap().1,
        v1 + 1,
        "ordered once"
    );
    assert!(
        vault_read(&format!("{}/locks/web", e.prefix)).is_none(),
        "released"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A run killed after presenting a DNS-01 value leaves it in DNS; the run that takes its
/// lease over removes it (the lease records what was presented).
#[test]
fn the_run_that_takes_over_removes_what_a_dead_run_left_in_dns() {
    let e = Env::ready("leftover");
    let dir = tempdir("leftover");
    let log = dir.join("cleanup.log");
    let pidfile = dir.join("hook.pid");
    let d = domain("lo");
    // The last challenge's hook hangs when SLOW is set, after the first was presented.
    let auth = format!(
        "{}; if [ -n \"${{SLOW:-}}\" ] && [ \"$CERTBOT_REMAINING_CHALLENGES\" = 0 ]; then echo $$ > {}; sleep 30; fi",
        hook("challtestsrv-auth"),
        pidfile.display()
    );
    let cleanup = format!(
        "echo \"$CERTBOT_DOMAIN $CERTBOT_VALIDATION\" >> {}; {}",
        log.display(),
        hook("challtestsrv-cleanup")
    );
    e.run(&[
        "issue",
        "web",
        "-d",
        &format!("a.{d}"),
        "-d",
        &format!("b.{d}"),
        "--auth-hook",
        &auth,
        "--cleanup-hook",
        &cleanup,
    ])
    .ok();
    e.fresh_account();
    let mut cmd = slow(&e, "1").command(&["renew", "--force", "--lock-lease", "3s"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = Killed(Some(cmd.spawn().unwrap()));
    let lock = format!("{}/locks/web", e.prefix);
    let deadline = Instant::now() + Duration::from_secs(20);
    let left = loop {
        if let Some((doc, _)) = vault_read(&lock) {
            if let Some(p) = doc["presented"].as_array().filter(|p| !p.is_empty()) {
                break p[0].clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "the lease never recorded a presented value"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // Wait for the hanging hook, then kill the run and what it started.
    while !pidfile.exists() {
        assert!(Instant::now() < deadline, "the second hook never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.get().kill().unwrap();
    child.get().wait().unwrap();
    kill_group_in(&pidfile);
    std::fs::write(&log, "").unwrap();

    let run = e.run(&["renew", "--force", "--lock-lease", "3s"]).ok();
    assert_contains(&run.stdout, "renewed  web");
    assert_contains(
        &run.stderr,
        "removed DNS-01 values a dead run left presented",
    );
    let cleaned = std::fs::read_to_string(&log).unwrap();
    let want = format!(
        "{} {}",
        left["record"]["domain"].as_str().unwrap(),
        left["record"]["value"].as_str().unwrap()
    );
    assert!(
        cleaned.lines().any(|l| l == want),
        "the dead run's value {want:?} was not removed:\n{cleaned}"
    );
}

/// A run whose lease another run took over stops before writing, and leaves the new
/// holder's lock alone (deleting it would let a third run order the same certificate).
#[test]
fn a_run_that_lost_its_lease_leaves_the_new_holders_lock() {
    let (e, dir, v1, mut child) = holding_the_lock("lostlease", "6");

    // Another run takes the lock over (a write the holder's next renewal cannot match).
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let now = time::OffsetDateTime::now_utc();
    let other = "certvault on elsewhere, pid 1, run other";
    let lock = format!("{}/locks/web", e.prefix);
    vault_write(
        &lock,
        &serde_json::json!({
            "schema": 1, "holder": other, "run_id": "other",
            "acquired_at": fmt(now), "expires_at": fmt(now + time::Duration::minutes(5)),
        }),
    );

    let out = child.0.take().unwrap().wait_with_output().unwrap();
    kill_group_in(&dir.join("hook.pid"));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_contains(&text, "lost its lock lease");
    let (held, _) = vault_read(&lock).expect("the new holder's lock was deleted");
    assert_eq!(held["holder"], other);
    assert_eq!(
        vault_read(&e.cert_path("web")).unwrap().1,
        v1,
        "nothing written"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One and then two more `renew --force` runs overlap one that holds the lock: each waits
/// for the lock, goes on within a second of its release (not after the whole 30 s lease),
/// sees that the holder wrote the record meanwhile and orders nothing: exactly one new
/// version and exactly one certificate issued by the CA (Pebble's log and management API)
/// per round, and none of the waiting runs reports an order (renewed or failed).
#[test]
fn overlapping_forced_runs_renew_once_and_go_on_when_the_lock_is_released() {
    let (e, dir) = slow_installation("overlap");
    let counted = e.with_var("SLOW", "2");
    e.fresh_account();
    let (doc, _) = vault_read(&e.cert_path("web")).unwrap();
    let domain = sans(doc["cert"].as_str().unwrap()).remove(0);
    for runs in [2, 3] {
        let pebble = PebbleLog::mark();
        let (_, v1) = vault_read(&e.cert_path("web")).unwrap();
        let mut holder = counted.command(&["renew", "--force", "--lock-lease", "30s"]);
        holder.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut holder = Killed(Some(holder.spawn().unwrap()));
        wait_for_lock(&e);
        let start = Instant::now();
        let mut waiting: Vec<Killed> = (1..runs)
            .map(|_| {
                let mut c = e.command(&["renew", "--force", "--lock-lease", "30s"]);
                c.stdout(Stdio::piped()).stderr(Stdio::piped());
                Killed(Some(c.spawn().unwrap()))
            })
            .collect();
        let out_a = holder.0.take().unwrap().wait_with_output().unwrap();
        let released = Instant::now();
        let outs: Vec<std::process::Output> = waiting
            .iter_mut()
            .map(|w| w.0.take().unwrap().wait_with_output().unwrap())
            .collect();
        let done = Instant::now();
        let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).to_string();
        assert_contains(&text(&out_a), "renewed  web");
        for o in &outs {
            assert!(o.status.success(), "{}", text(o));
            assert_contains(&text(o), "renewed meanwhile by the run that held its lock");
            assert!(!text(o).contains("renewed  web"), "{}", text(o));
        }
        let (doc, v2) = vault_read(&e.cert_path("web")).unwrap();
        assert_eq!(v2, v1 + 1, "{runs} runs: exactly one new version");
        let issued = pebble.issued_for(&domain);
        assert_eq!(
            issued.len(),
            1,
            "{runs} runs: one order at the CA: {issued:?}"
        );
        assert_eq!(
            issued[0],
            pebble_serial(doc["serial"].as_str().unwrap()),
            "the stored certificate is the one the CA issued"
        );
        assert!(
            done - released < Duration::from_secs(1),
            "{runs} runs: the waiting runs ended {:?} after the holder released (lease 30 s)",
            done - released
        );
        assert!(start.elapsed() < Duration::from_secs(25));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
