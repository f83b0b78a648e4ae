//! A DNS server that dies mid-run: the DNS-01 values the run could not remove are kept in
//! the certificate's released lock and counted in the summary, and the next run (with
//! nothing due) removes them once the server is back. A BIND of the test's own (killed and
//! restarted here) and a Pebble of the test's own validating against it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::harness::*;

const ZONE: &str = "outage.test";
const KEY: &str = "outage-key.";
/// A test-only TSIG secret (base64 of 32 bytes).
const SECRET: &str = "dGVzdC1vdXRhZ2UtdHNpZy1rZXktMzItYnl0ZXMhISE=";

/// A primary BIND for `outage.test` on a free port of 127.0.0.1, accepting TSIG-signed
/// updates; stopped on drop. Dynamic updates are journaled, so a record survives a kill.
struct PrivateBind {
    child: Option<Child>,
    dir: TempDir,
    port: u16,
}

impl PrivateBind {
    fn start() -> Self {
        let dir = tempdir("outage-bind");
        let port = free_port();
        let d = dir.display();
        std::fs::write(
            dir.join("named.conf"),
            format!(
                "key \"{KEY}\" {{ algorithm hmac-sha256; secret \"{SECRET}\"; }};\n\
                 options {{ directory \"{d}\"; pid-file \"{d}/named.pid\"; lock-file \"{d}/named.lock\";\n\
                 session-keyfile \"{d}/session.key\"; managed-keys-directory \"{d}\";\n\
                 listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }}; recursion no;\n\
                 dnssec-validation no; empty-zones-enable no; allow-query {{ any; }}; notify no; }};\n\
                 zone \"{ZONE}\" {{ type primary; file \"{ZONE}.db\"; allow-update {{ key \"{KEY}\"; }}; }};\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{ZONE}.db")),
            format!(
                "$ORIGIN {ZONE}.\n$TTL 60\n@ IN SOA ns1.{ZONE}. hostmaster.{ZONE}. ( 1 60 10 1209600 1 )\n\
                 \tIN NS ns1.{ZONE}.\nns1 IN A 127.0.0.1\n"
            ),
        )
        .unwrap();
        let mut b = PrivateBind {
            child: None,
            dir,
            port,
        };
        b.restart();
        b
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn conf(&self) -> PathBuf {
        self.dir.join("named.conf")
    }

    /// Start (again) on the same port, configuration and journal.
    fn restart(&mut self) {
        let child = Command::new("named")
            .args(["-g", "-u", "root", "-c"])
            .arg(self.conf())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start named");
        self.child = Some(child);
        let addr = self.addr();
        wait_until("the test's BIND answers", 20, || {
            Command::new("dig")
                .args([
                    "@127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "+short",
                    "+norec",
                    "SOA",
                    ZONE,
                ])
                .output()
                .is_ok_and(|o| o.status.success() && !o.stdout.is_empty())
        });
        let _ = addr;
    }

    /// SIGKILL, as a crash.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateBind {
    fn drop(&mut self) {
        self.kill();
    }
}

/// certbot-style hooks that update the test's BIND with nsupdate (TSIG). With `DIR/block`
/// present the auth hook waits, once its value is in BIND, until `DIR/go` exists.
fn hooks(bind: &PrivateBind, dir: &std::path::Path) -> (String, String) {
    let nsupdate = |op: &str| {
        format!(
            "printf 'server 127.0.0.1 {}\\nzone {ZONE}\\nupdate {op} _acme-challenge.%s. {}TXT \"%s\"\\nsend\\n' \"$CERTBOT_DOMAIN\" \"$CERTBOT_VALIDATION\" | nsupdate -t 2 -u 1 -r 0 -y hmac-sha256:{KEY}:{SECRET}",
            bind.port,
            if op == "add" { "60 " } else { "" }
        )
    };
    let d = dir.display();
    let auth = dir.join("auth.sh");
    std::fs::write(
        &auth,
        format!(
            "#!/bin/sh\nset -e\n{}\nif [ -f {d}/block ]; then touch {d}/presented; while [ ! -f {d}/go ]; do sleep 0.05; done; fi\n",
            nsupdate("add")
        ),
    )
    .unwrap();
    let cleanup = dir.join("cleanup.sh");
    std::fs::write(
        &cleanup,
        format!("#!/bin/sh\nset -e\n{}\n", nsupdate("delete")),
    )
    .unwrap();
    (
        format!("sh {}", auth.display()),
        format!("sh {}", cleanup.display()),
    )
}

#[test]
fn values_left_by_a_dns_outage_are_counted_and_removed_by_the_next_run() {
    let mut bind = PrivateBind::start();
    let pebble = Pebble::start_with_dns(&[], serde_json::json!({}), &bind.addr());
    let dir = tempdir("dnsout");
    let e = Env::new("dnsout");
    e.run(&["init", "--directory", &pebble.directory, "--agree-tos"])
        .ok();
    let (auth, cleanup) = hooks(&bind, &dir);
    let host = format!("{}.{ZONE}", unique("w"));
    e.run(&[
        "issue",
        "web",
        "-d",
        &host,
        "--auth-hook",
        &auth,
        "--cleanup-hook",
        &cleanup,
    ])
    .ok();
    let name = format!("_acme-challenge.{host}");
    assert!(dig_txt(&bind.addr(), &name).is_empty(), "issue cleaned up");

    // A forced renewal; BIND dies once the challenge value is in it.
    std::fs::write(dir.join("block"), "").unwrap();
    e.fresh_account();
    let mut cmd = e.command(&["renew", "--force", "web"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    wait_until("the value presented", 30, || dir.join("presented").exists());
    assert_eq!(
        dig_txt(&bind.addr(), &name).len(),
        1,
        "the value is in BIND"
    );
    bind.kill();
    std::fs::write(dir.join("go"), "").unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_contains(&stdout, "1 DNS-01 value left in DNS");
    let lock = format!("{}/locks/web", e.prefix);
    let (doc, _) = vault_read(&lock).expect("the released lock keeps what is left");
    assert_eq!(doc["presented"].as_array().map(Vec::len), Some(1), "{doc}");
    let (status, _) = vault_read(&format!("{}/status/web", e.prefix)).unwrap();
    assert_eq!(status["dns_leftovers"], 1, "{status}");

    // Back: the value is still there (BIND journaled it) ...
    std::fs::remove_file(dir.join("block")).unwrap();
    bind.restart();
    let left = dig_txt(&bind.addr(), &name);
    assert_eq!(left.len(), 1, "{left:?}");
    // ... and the next run, with nothing due, removes it.
    let run = e.run(&["renew"]).ok();
    assert_contains(&run.stdout, "not due  web");
    assert_contains(&run.stdout, "1 DNS-01 value left by an earlier run removed");
    assert!(
        dig_txt(&bind.addr(), &name).is_empty(),
        "the leftover is gone"
    );
    assert!(vault_read(&lock).is_none(), "the lock is released");
    let (status, _): (Value, _) = vault_read(&format!("{}/status/web", e.prefix)).unwrap();
    assert!(status.get("dns_leftovers").is_none(), "{status}");
    // A run after that has nothing to remove and says nothing about it.
    let run = e.run(&["renew"]).ok();
    assert!(!run.stdout.contains("DNS-01 value"), "{}", run.stdout);
}
