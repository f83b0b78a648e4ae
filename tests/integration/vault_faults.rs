//! Mistakes and faults on the Vault side: a wrong mount or prefix, a token that would not
//! last, Vault sealed or restarted in the middle of a renewal, an answer lost on the way.
//! Against the test bed's OpenBao, or an OpenBao server of the test's own (Raft storage,
//! sealed and unsealed for real).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::*;

#[test]
fn a_wrong_prefix_or_mount_is_an_error_naming_the_path() {
    let (e, _) = Env::with_cert("wrongplace", "web");

    let mut typo = Env::new("unused");
    typo.prefix = format!("{}-typo", e.prefix);
    for args in [&["renew"][..], &["list"][..], &["renew", "--force"][..]] {
        let run = typo.run(args);
        fails_with(&run, 1, &format!(
                "no ACME account at secret/{0}/accounts/default and no certificate in secret/{0}/certs/",
                typo.prefix
            ),
        );
        assert!(!run.stdout.contains("summary"), "{}", run.stdout);
    }

    let nomount = e.with_var("CERTVAULT_MOUNT", "nosuchmount");
    for args in [&["renew"][..], &["list"][..]] {
        let run = nomount.run(args);
        fails_with(&run, 1, "no KV mount nosuchmount/ at");
        assert!(!run.stderr.contains("KV version"), "{}", run.stderr);
    }

    // Under AppRole with the renew policy: the mount is named, not the policy blamed.
    let (mount, role_id, secret_id) = approle_with_ttl(&e.apply_policy(&["renew"]), "1h");
    let a = e
        .approle_login(&mount, &role_id, &secret_id)
        .with_var("CERTVAULT_MOUNT", "nosuchmount");
    let run = a.run(&["renew"]);
    fails_with(&run, 1, "no KV mount nosuchmount/ at");
    assert_contains(&run.stderr, "the KV mounts it can see: secret/");
    assert!(!run.stderr.contains("Missing:"), "{}", run.stderr);
    let errors = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .count();
    assert_eq!(errors, 1, "{}", run.stderr);
}

/// A token of the caller's (root creates it): `ttl`, renewable or not.
fn caller_token(ttl: &str, renewable: bool) -> String {
    let rsp = vault_root(
        Method::POST,
        "auth/token/create",
        Some(
            &json!({ "policies": ["root"], "ttl": ttl, "explicit_max_ttl": "2h", "renewable": renewable }),
        ),
    );
    rsp["auth"]["client_token"].as_str().unwrap().to_string()
}

fn token_ttl(token: &str) -> Option<u64> {
    let (status, rsp) = vault_call(token, Method::GET, "auth/token/lookup-self", None);
    (status == 200).then(|| rsp["data"]["ttl"].as_u64().unwrap())
}

#[test]
fn a_caller_token_is_checked_against_the_run_and_renewed_never_revoked() {
    let (e, d) = Env::with_cert("callertok", "web");

    // Not renewable and shorter than one order (5m + 5m + 5m by default): refused.
    let mut short = e.with_token(caller_token("60s", false));
    let run = short.run(&["renew", "--force"]);
    fails_with(&run, 1, "less than one ACME order may take (900s");
    assert_contains(&run.stderr, "cannot be renewed");
    assert_eq!(
        vault_read(&e.cert_path("web")).unwrap().1,
        1,
        "nothing ordered"
    );
    // `list` orders nothing: the same token is fine there.
    short.run(&["list"]).ok();

    // Long enough for one order, not for storing it through an outage: a warning.
    short.token = caller_token("400s", false);
    let run = short
        .run(&[
            "renew",
            "--validation-timeout",
            "30s",
            "--propagation-timeout",
            "30s",
        ])
        .ok();
    assert_contains(&run.stderr, "the Vault token expires in");

    // Renewable with 3 s left, and a renewal that takes 4 s: renewed up front, the
    // certificate is stored, and the token outlives the run.
    let slow = format!("sleep 4 && {}", hook("challtestsrv-auth"));
    e.issue_with_auth_hook("web", &[&d], &slow).ok();
    e.fresh_account();
    let before = vault_read(&e.cert_path("web")).unwrap().1;
    let renewable = e.with_token(caller_token("3s", true));
    let run = renewable.run(&["renew", "--force"]).ok();
    assert_contains(&run.stdout, "renewed  web");
    assert_eq!(vault_read(&e.cert_path("web")).unwrap().1, before + 1);
    let left = token_ttl(&renewable.token).expect("the caller's token was not revoked");
    assert!(left > 60, "not renewed: {left}s left");
}

/// A one-node OpenBao server with integrated storage on a free port (sealed and unsealed for real),
/// stopped on drop; its directory is removed.
struct Bao {
    child: Option<Child>,
    dir: TempDir,
    port: u16,
    addr: String,
    unseal_key: String,
    root: String,
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Bao {
    fn start() -> Bao {
        let dir = tempdir("bao-raft");
        let (port, cluster) = (free_port(), free_port());
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(
            dir.join("config.hcl"),
            format!(
                "storage \"raft\" {{\n  path = \"{}\"\n  node_id = \"n1\"\n}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  cluster_address = \"127.0.0.1:{cluster}\"\n  tls_disable = true\n}}\napi_addr = \"http://127.0.0.1:{port}\"\ncluster_addr = \"http://127.0.0.1:{cluster}\"\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let mut bao = Bao {
            child: None,
            dir,
            port,
            addr: format!("http://127.0.0.1:{port}"),
            unseal_key: String::new(),
            root: String::new(),
        };
        bao.spawn();
        let init = bao.call(
            "",
            Method::PUT,
            "sys/init",
            Some(json!({ "secret_shares": 1, "secret_threshold": 1 })),
        );
        bao.unseal_key = init["keys"][0].as_str().unwrap().to_string();
        bao.root = init["root_token"].as_str().unwrap().to_string();
        bao.unseal();
        bao.call(
            &bao.root,
            Method::POST,
            "sys/mounts/secret",
            Some(json!({ "type": "kv-v2" })),
        );
        bao
    }

    fn spawn(&mut self) {
        let child = Command::new(env("BAO_BIN"))
            .args([
                "server",
                &format!("-config={}", self.dir.join("config.hcl").display()),
            ])
            .env("HOME", &self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bao server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "bao did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn call(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut req = reqwest::blocking::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .request(method, format!("{}/v1/{path}", self.addr));
        if !token.is_empty() {
            req = req.header("X-Vault-Token", token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let rsp = req.send().unwrap();
        let status = rsp.status();
        let body = rsp.json().unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    fn unseal(&self) {
        self.call(
            "",
            Method::PUT,
            "sys/unseal",
            Some(json!({ "key": self.unseal_key })),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let rsp = reqwest::blocking::get(format!("{}/v1/sys/health", self.addr));
            if rsp.is_ok_and(|r| r.status() == 200) {
                return;
            }
            assert!(Instant::now() < deadline, "bao did not become active");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn seal(&self) {
        self.call(&self.root, Method::PUT, "sys/seal", None);
    }
}

/// A certvault run in the background whose stderr is collected line by line.
struct Background {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Background {
    fn start(mut cmd: Command) -> Background {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Background { child, stderr }
    }

    /// Wait (bounded) until stderr shows `needle`.
    #[track_caller]
    fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.stderr.lock().unwrap().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in:\n{}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn finish(mut self) -> Run {
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        let status = self.child.wait().unwrap();
        // The reader thread ends at EOF, right after the exit.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&self.stderr) > 1 {
            assert!(Instant::now() < deadline, "stderr was not read to its end");
            std::thread::sleep(Duration::from_millis(10));
        }
        let stderr = self.stderr.lock().unwrap().clone();
        Run {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr,
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The renewed certificate is not lost when Vault is sealed, or stopped and restarted,
/// while the order runs: its write waits for Vault (within --vault-retry-timeout).
#[test]
fn a_renewal_rides_through_a_sealed_and_a_restarted_vault() {
    let mut bao = Bao::start();
    let mut e = Env::new("sealed");
    e.token = bao.root.clone();
    e.extra.push(("VAULT_ADDR".into(), bao.addr.clone()));
    e.init().ok();
    let d = domain("sealed");
    e.issue("web", &[&d], &[]).ok();
    let marker = bao.dir.join("in-hook");
    let hook_cmd = format!(
        "touch {} && sleep 1 && {}",
        marker.display(),
        hook("challtestsrv-auth")
    );
    e.issue_with_auth_hook("web", &[&d], &hook_cmd).ok();
    let version = |bao: &Bao| {
        bao.call(
            &bao.root,
            Method::GET,
            &format!("secret/data/{}", e.cert_path("web")),
            None,
        )["data"]["metadata"]["version"]
            .as_u64()
            .unwrap()
    };
    let mut v0 = version(&bao);
    // A `renew --force` whose auth hook has started. Pebble reuses a valid authorization
    // about 1 time in 100 even with PEBBLE_AUTHZREUSE=0 (its check is
    // `rand.Intn(100) > percent`): such a run renews without a challenge, so no hook runs.
    // It is let finish (one more version) and the run started again.
    let renew_in_hook = |v0: &mut u64| -> Background {
        for _ in 0..3 {
            let mut run = Background::start(e.command(&["renew", "--force"]));
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if marker.exists() {
                    std::fs::remove_file(&marker).unwrap();
                    return run;
                }
                if let Ok(Some(status)) = run.child.try_wait() {
                    let stderr = run.stderr.lock().unwrap().clone();
                    assert!(
                        status.success() && stderr.contains("stored certificate"),
                        "the run ended ({status}) before its hook ran:\n{stderr}"
                    );
                    *v0 += 1;
                    break;
                }
                assert!(Instant::now() < deadline, "the hook never ran");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("three renewals in a row ran no hook");
    };

    // Sealed while the hook runs: the write waits until it is unsealed.
    let run = renew_in_hook(&mut v0);
    bao.seal();
    run.wait_for("Vault unavailable on");
    bao.unseal();
    let out = run.finish();
    assert_eq!(out.code, 0, "{}", out.all());
    assert_contains(&out.stdout, "renewed  web");
    assert_eq!(version(&bao), v0 + 1);
    v0 += 1;

    // Stopped (connection refused) while the hook runs, restarted and unsealed.
    let run = renew_in_hook(&mut v0);
    bao.kill();
    run.wait_for("Vault unavailable on");
    bao.spawn();
    bao.unseal();
    let out = run.finish();
    assert_eq!(out.code, 0, "{}", out.all());
    assert_contains(&out.stdout, "renewed  web");
    assert_eq!(version(&bao), v0 + 1);
    // The lock was released once Vault was back: removed with its history.
    let lock = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!(
            "{}/v1/secret/metadata/{}/locks/web",
            bao.addr, e.prefix
        ))
        .header("X-Vault-Token", &bao.root)
        .send()
        .unwrap();
    assert_eq!(lock.status(), 404, "lock left in place: {:?}", lock.text());
}

/// A TCP proxy in front of the test bed's Vault that forwards every request and answer,
/// except that it swallows the answer to the first write whose path contains `victim`
/// (the write reaches Vault and lands; the client sees the connection close).
struct LossyProxy {
    addr: String,
    dropped: Arc<AtomicBool>,
}

/// What the proxy does to the first write whose path contains its victim.
#[derive(Clone, Copy)]
enum Fault {
    /// Forwarded (it lands), and its answer is lost.
    LoseAnswer,
    /// Not forwarded: answered with the check-and-set mismatch a just-elected Raft leader
    /// gives before it has applied the last writes (the document is where the write
    /// expects it).
    StaleMismatch,
}

fn fault_proxy(victim: String, fault: Fault) -> LossyProxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let upstream = env("VAULT_ADDR").trim_start_matches("http://").to_string();
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = dropped.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let (upstream, victim, flag) = (upstream.clone(), victim.clone(), flag.clone());
            std::thread::spawn(move || {
                let _ = relay(client, &upstream, &victim, &flag, fault);
            });
        }
    });
    LossyProxy {
        addr: format!("http://127.0.0.1:{port}"),
        dropped,
    }
}

/// One request per connection: forward it with `Connection: close`, relay the answer.
fn relay(
    mut client: TcpStream,
    upstream: &str,
    victim: &str,
    dropped: &AtomicBool,
    fault: Fault,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = String::new();
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
            if k.eq_ignore_ascii_case("connection") {
                continue;
            }
        }
        head.push_str(&line);
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let is_write = head.starts_with("POST ") || head.starts_with("PUT ");
    let hit = is_write && head.lines().next().unwrap_or("").contains(victim);
    if hit && matches!(fault, Fault::StaleMismatch) && !dropped.swap(true, Ordering::SeqCst) {
        let body = r#"{"errors":["check-and-set parameter did not match the current version"]}"#;
        let answer = format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        client.write_all(answer.as_bytes())?;
        return client.shutdown(std::net::Shutdown::Both);
    }
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(head.as_bytes())?;
    up.write_all(b"Connection: close\r\n\r\n")?;
    up.write_all(&body)?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    if hit && matches!(fault, Fault::LoseAnswer) && !dropped.swap(true, Ordering::SeqCst) {
        // The write landed; its answer is lost.
        return client.shutdown(std::net::Shutdown::Both);
    }
    client.write_all(&answer)?;
    client.shutdown(std::net::Shutdown::Both)
}

/// `renew --force` through a proxy that applies `fault` to the first write of `victim`
/// (below the prefix): it must have met the fault, and renewed `web`.
fn renew_through(e: &Env, victim: &str, fault: Fault) -> Run {
    let proxy = fault_proxy(format!("/v1/secret/data/{}/{victim}", e.prefix), fault);
    let p = e.with_var("VAULT_ADDR", &proxy.addr);
    let run = p.run(&["renew", "--force"]);
    assert!(
        proxy.dropped.load(Ordering::SeqCst),
        "no write of {victim} was intercepted"
    );
    assert_eq!(run.code, 0, "{victim}: {}", run.all());
    assert_contains(&run.stdout, "renewed  web");
    run
}

/// A certificate write whose answer is lost is retried; the retry finds its own content
/// already stored and reports success with that version, instead of a check-and-set
/// conflict (or a second write).
#[test]
fn a_write_whose_answer_was_lost_is_recognised_as_landed() {
    let (e, _) = Env::with_cert("lost", "web");
    let run = renew_through(&e, "certs/web", Fault::LoseAnswer);
    assert_contains(&run.stderr, "an earlier attempt of this write landed");
    // Exactly one new version: the retried write did not land a second time.
    assert_eq!(vault_read(&e.cert_path("web")).unwrap().1, 2);
}

/// A check-and-set mismatch that Vault's own state contradicts (a just-elected Raft leader
/// answers from storage that has not applied the last writes yet) is read back and the
/// write tried again: the certificate is stored once, not reported as changed meanwhile.
/// The same holds for the lock lease (the renewal's lock writes).
#[test]
fn a_check_and_set_mismatch_that_a_read_contradicts_is_tried_again() {
    for victim in ["certs/web", "locks/web"] {
        let (e, _) = Env::with_cert("stale", "web");
        let run = renew_through(&e, victim, Fault::StaleMismatch);
        assert_contains(
            &run.stderr,
            "Vault refused the check-and-set on the version it then read; writing again",
        );
        assert_eq!(vault_read(&e.cert_path("web")).unwrap().1, 2, "{victim}");
        // The lock was released: nothing is left for the next run.
        assert!(
            vault_read(&format!("{}/locks/web", e.prefix)).is_none(),
            "{victim}: lock left"
        );
    }
}

/// Vault stalled (SIGSTOP) past the retry budget while four renewals are being written:
/// the run gives up on Vault within its bound (the budget plus one attempt), and no
/// certificate that Vault then stored is reported FAILED: it is renewed, or UNKNOWN with
/// its serial. After Vault resumes, the next run reads the records whose locks were left:
/// `status/` names the stored certificate of every record, and no lock is left.
#[test]
fn a_stalled_vault_never_turns_a_stored_certificate_into_a_failure() {
    let bao = Bao::start();
    let mut e = Env::new("stalled");
    e.token = bao.root.clone();
    e.extra.push(("VAULT_ADDR".into(), bao.addr.clone()));
    e.init().ok();
    let marker = bao.dir.join("in-hook");
    let hook_cmd = format!(
        "touch {} && sleep 1 && {}",
        marker.display(),
        hook("challtestsrv-auth")
    );
    let names = ["s0", "s1", "s2", "s3"];
    let mut domains = Vec::new();
    for n in names {
        let d = domain(n);
        e.issue_with_auth_hook(n, &[&d], &hook_cmd).ok();
        domains.push(d);
    }
    let _ = std::fs::remove_file(&marker);
    let read = |name: &str| {
        let doc = bao.call(
            &bao.root,
            Method::GET,
            &format!("secret/data/{}", e.cert_path(name)),
            None,
        );
        (
            doc["data"]["metadata"]["version"].as_u64().unwrap(),
            doc["data"]["data"]["serial"].as_str().unwrap().to_string(),
        )
    };
    let before: Vec<u64> = names.iter().map(|n| read(n).0).collect();
    let pebble = PebbleLog::mark();
    let mut run = Background::start(e.command(&[
        "renew",
        "--force",
        "--vault-retry-timeout",
        "3s",
        "--lock-lease",
        "3s",
    ]));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !marker.exists() {
        assert!(
            run.child.try_wait().unwrap().is_none(),
            "the run ended before its hook ran"
        );
        assert!(Instant::now() < deadline, "the hook never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = bao.child.as_ref().unwrap().id().to_string();
    let signal = |sig: &str| {
        assert!(Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success())
    };
    signal("-STOP");
    let stopped = Instant::now();
    let deadline = stopped + Duration::from_secs(40);
    while run.child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            signal("-CONT");
            panic!("the run did not end within 40 s of the stall");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = stopped.elapsed();
    signal("-CONT");
    let out = run.finish();
    // Budget 3 s, one attempt at most 3 s, the hooks' 1 s, and margin.
    assert!(
        took < Duration::from_secs(15),
        "the run took {took:?} after the stall:\n{}",
        out.all()
    );
    assert_ne!(out.code, 0, "{}", out.all());
    assert_contains(&out.stderr, "gives up on Vault");
    // Vault took the writes it had received before it stopped.
    std::thread::sleep(Duration::from_secs(1));
    let mut written = 0;
    for (i, n) in names.iter().enumerate() {
        let (version, serial) = read(n);
        if version > before[i] {
            written += 1;
            assert!(
                !out.stdout.contains(&format!("FAILED   {n}:")),
                "{n} was stored (version {version}) but reported FAILED:\n{}",
                out.all()
            );
            let renewed = out.stdout.contains(&format!("renewed  {n}:"));
            let unknown = out
                .stdout
                .lines()
                .any(|l| l.starts_with(&format!("UNKNOWN  {n}:")) && l.contains(&serial));
            assert!(
                renewed || unknown,
                "{n}: stored, neither renewed nor UNKNOWN with serial {serial}:\n{}",
                out.all()
            );
        }
    }
    // Every certificate the CA issued is stored, or printed with its serial.
    for d in &domains {
        for serial in pebble.issued_for(d) {
            let stored = names.iter().any(|n| pebble_serial(&read(n).1) == serial);
            let printed = out.stdout.to_lowercase().contains(&serial);
            assert!(
                stored || printed,
                "serial {serial} of {d} neither stored nor printed:\n{}",
                out.all()
            );
        }
    }
    eprintln!("stall: the run ended {took:?} after it; {written} of 4 written by Vault");
    // The next run (locks lapse within one lease; 1 s here) repairs status and locks.
    std::thread::sleep(Duration::from_secs(4));
    let next = e.run(&["renew", "--lock-lease", "3s"]);
    assert_eq!(next.code, 0, "{}", next.all());
    for n in names {
        let (version, serial) = read(n);
        let status = bao.call(
            &bao.root,
            Method::GET,
            &format!("secret/data/{}/status/{n}", e.prefix),
            None,
        );
        let s = &status["data"]["data"];
        assert_eq!(
            s["serial"].as_str().unwrap(),
            serial,
            "{n}: status disagrees with the record: {s}"
        );
        assert_eq!(s["cert_version"].as_u64().unwrap(), version, "{n}: {s}");
    }
    let locks = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .request(
            Method::from_bytes(b"LIST").unwrap(),
            format!("{}/v1/secret/metadata/{}/locks", bao.addr, e.prefix),
        )
        .header("X-Vault-Token", &bao.root)
        .send()
        .unwrap();
    assert_eq!(locks.status(), 404, "locks left: {:?}", locks.text());
}
