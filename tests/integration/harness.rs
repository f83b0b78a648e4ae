//! The test bed (started by `scripts/testbed up`), the certvault binary, and checks that
//! read Vault and Pebble directly over HTTP (never through certvault's own code).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_certvault");

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `needle` is in `haystack`, or the test fails showing both.
#[track_caller]
pub fn assert_contains(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "{needle:?} not found in:\n{haystack}"
    );
}

/// The running test bed's settings, from `.testbed/env` (started once if needed).
pub fn bed() -> &'static HashMap<String, String> {
    static BED: OnceLock<HashMap<String, String>> = OnceLock::new();
    BED.get_or_init(|| {
        let status = Command::new(repo().join("scripts/testbed"))
            .arg("up")
            .status()
            .expect("run scripts/testbed up");
        assert!(status.success(), "scripts/testbed up failed");
        let dir = std::env::var("CERTVAULT_TESTBED_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo().join(".testbed"));
        let text = std::fs::read_to_string(dir.join("env")).expect("read .testbed/env");
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| {
                let v = v.split(" #").next().unwrap().trim().trim_matches('"');
                (k.to_string(), v.to_string())
            })
            .collect()
    })
}

pub fn env(name: &str) -> String {
    bed()
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing in .testbed/env"))
        .clone()
}

/// A unique suffix per test and process, so tests share one test bed safely.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{tag}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 100_000
    )
}

/// A unique name below example.com (`<tag>-…-….example.com`).
pub fn domain(tag: &str) -> String {
    format!("{}.example.com", unique(tag))
}

/// A free TCP port on 127.0.0.1 (free when asked; a server of the test's own binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Poll `cond` every 100 ms until it holds; fail naming `what` after `secs` seconds.
#[track_caller]
pub fn wait_until(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {secs}s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The run exited with `code` and its stderr holds `needle`.
#[track_caller]
pub fn fails_with(run: &Run, code: i32, needle: &str) {
    assert_eq!(run.code, code, "{}", run.all());
    assert!(
        run.stderr.contains(needle),
        "missing {needle:?} in:\n{}",
        run.stderr
    );
}

/// Run `cmd` to its end; it must succeed, or the test fails naming `what` with its output.
#[track_caller]
pub fn output_ok(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The `dns add NAME` options of the RFC 2136 solver for the BIND test bed (primary, TSIG
/// key name); its secret goes in CERTVAULT_DNS_SECRET = CERTVAULT_TEST_TSIG_SECRET.
pub fn bind_solver_args() -> Vec<String> {
    [
        "--kind",
        "rfc2136",
        "--server",
        &env("CERTVAULT_TEST_BIND1"),
        "--tsig-key",
        &env("CERTVAULT_TEST_TSIG_NAME"),
    ]
    .map(String::from)
    .to_vec()
}

/// A child process of the test's own (a server), killed and reaped on drop.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn hook(name: &str) -> String {
    repo()
        .join("scripts/hooks")
        .join(name)
        .display()
        .to_string()
}

/// One isolated certvault installation: its own Vault prefix and ACME account.
pub struct Env {
    pub prefix: String,
    pub token: String,
    pub extra: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
    /// Stdout parsed as JSON (`--output json`), or the test fails showing the run.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|err| panic!("{err}: {}", self.all()))
    }
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

impl Env {
    pub fn new(tag: &str) -> Self {
        Self {
            prefix: format!("t/{}", unique(tag)),
            token: env("VAULT_TOKEN"),
            extra: Vec::new(),
            cwd: None,
        }
    }

    /// Run the binary with a clean environment: only the test bed's settings and `extra`.
    pub fn run(&self, args: &[&str]) -> Run {
        output(self.command(args).output().expect("run certvault"))
    }

    /// The command `run` executes, to start it in the background.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("VAULT_ADDR", env("VAULT_ADDR"))
            .env("VAULT_TOKEN", &self.token)
            .env("CERTVAULT_PREFIX", &self.prefix)
            .env("CERTVAULT_ACME_CA_CERT", env("CERTVAULT_ACME_CA_CERT"))
            .env(
                "CERTVAULT_TEST_CHALLTESTSRV",
                env("CERTVAULT_TEST_CHALLTESTSRV"),
            )
            // What the challtestsrv hooks read (hooks get no CERTVAULT_* variable).
            .env("CHALLTESTSRV_URL", env("CERTVAULT_TEST_CHALLTESTSRV"));
        for (k, v) in &self.extra {
            cmd.env(k, v);
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd
    }

    /// A new installation with an ACME account at the test bed's Pebble.
    pub fn ready(tag: &str) -> Self {
        let e = Self::new(tag);
        e.init().ok();
        e
    }

    /// A new installation with an account and certificate `name` issued for a unique name
    /// (returned) through the challtestsrv hooks.
    pub fn with_cert(tag: &str, name: &str) -> (Self, String) {
        Self::with_cert_args(tag, name, &[])
    }

    /// The same, issued with `extra` options.
    pub fn with_cert_args(tag: &str, name: &str, extra: &[&str]) -> (Self, String) {
        let e = Self::ready(tag);
        let d = domain(tag);
        e.issue(name, &[&d], extra).ok();
        (e, d)
    }

    /// The same installation (prefix) with `token` and none of the other settings.
    pub fn with_token(&self, token: String) -> Env {
        Env {
            prefix: self.prefix.clone(),
            token,
            extra: Vec::new(),
            cwd: None,
        }
    }

    /// The same installation (prefix) without a token: it logs in with `settings` only.
    pub fn logging_in(&self, settings: &[(&str, &str)]) -> Env {
        let mut e = self.with_token(String::new());
        e.extra = settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        e
    }

    /// The same installation logging in with AppRole at `mount`.
    pub fn approle_login(&self, mount: &str, role_id: &str, secret_id: &str) -> Env {
        self.logging_in(&[
            ("CERTVAULT_AUTH", "approle"),
            ("CERTVAULT_AUTH_MOUNT", mount),
            ("VAULT_ROLE_ID", role_id),
            ("VAULT_SECRET_ID", secret_id),
        ])
    }

    /// The policy `certvault policy ARGS` prints for this installation, applied under a
    /// unique name (returned).
    pub fn apply_policy(&self, args: &[&str]) -> String {
        let mut all = vec!["policy"];
        all.extend_from_slice(args);
        let hcl = self.run(&all).ok().stdout;
        let name = unique(&format!("cv-{}", args[0]));
        vault_policy(&name, &hcl);
        name
    }

    /// The same installation used with a token holding only `policy`.
    pub fn as_token(&self, policy: &str) -> Env {
        self.with_token(vault_token(&unique("tok"), &[policy]))
    }

    /// The same installation used with a token holding only what `certvault policy ARGS`
    /// grants.
    pub fn as_policy(&self, args: &[&str]) -> Env {
        self.as_token(&self.apply_policy(args))
    }

    /// An installation that issues through the BIND test bed: Pebble #2 resolves through the
    /// secondary, zone discovery asks the primary, nameservers answer on the BIND port.
    pub fn bind(tag: &str) -> Self {
        let mut e = Self::new(tag);
        e.extra.extend(
            [
                ("CERTVAULT_DNS_RESOLVER", env("CERTVAULT_TEST_BIND1")),
                (
                    "CERTVAULT_AUTHORITATIVE_PORT",
                    env("CERTVAULT_TEST_BIND_PORT"),
                ),
                ("CERTVAULT_PROPAGATION_INTERVAL", "100ms".to_string()),
                ("CERTVAULT_PROPAGATION_TIMEOUT", "20s".to_string()),
            ]
            .map(|(k, v)| (k.to_string(), v)),
        );
        e
    }

    pub fn init_bind(&self) -> Run {
        self.run(&[
            "init",
            "--directory",
            &env("CERTVAULT_TEST_DIRECTORY_BIND"),
            "--agree-tos",
        ])
    }

    /// `certvault dns add NAME ARGS...` with the secret in CERTVAULT_DNS_SECRET.
    pub fn dns_add(&self, name: &str, secret: &str, args: &[&str]) -> Run {
        let mut e = Env {
            prefix: self.prefix.clone(),
            token: self.token.clone(),
            extra: self.extra.clone(),
            cwd: None,
        };
        e.extra.push(("CERTVAULT_DNS_SECRET".into(), secret.into()));
        let mut all = vec!["dns", "add", name];
        all.extend_from_slice(args);
        e.run(&all)
    }

    /// Store the RFC 2136 solver `bind` for example.test / lag.test.
    pub fn add_bind_solver(&self, name: &str) {
        let args = bind_solver_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.dns_add(name, &env("CERTVAULT_TEST_TSIG_SECRET"), &args)
            .ok();
    }

    pub fn init(&self) -> Run {
        self.init_with(&["--email", "ops@example.com", "--agree-tos"])
    }

    /// `init --directory <the test bed's Pebble> ARGS...`.
    pub fn init_with(&self, args: &[&str]) -> Run {
        let mut all = vec!["init", "--directory"];
        let directory = env("CERTVAULT_TEST_DIRECTORY");
        all.push(&directory);
        all.extend_from_slice(args);
        self.run(&all)
    }

    /// Register a new ACME account in place of the stored one (same CA), so the next order
    /// has no valid authorization to reuse and must solve its challenges. Pebble reuses a
    /// valid authorization 1 % of the time even with PEBBLE_AUTHZREUSE=0 (it creates a new
    /// one only if `rand.Intn(100) > percent`), which would let a renewal skip the hook or
    /// solver a test is about.
    pub fn fresh_account(&self) {
        let (account, _) = vault_read(&format!("{}/accounts/default", self.prefix))
            .expect("an account to replace");
        let directory = account["directory"].as_str().unwrap().to_string();
        self.run(&["init", "--directory", &directory, "--agree-tos", "--force"])
            .ok();
    }

    /// `issue NAME -d ...` through the challtestsrv hooks.
    pub fn issue(&self, name: &str, domains: &[&str], extra: &[&str]) -> Run {
        let mut args = vec!["issue".to_string(), name.to_string()];
        for d in domains {
            args.push("-d".into());
            args.push(d.to_string());
        }
        args.extend(
            [
                "--dns",
                "exec",
                "--auth-hook",
                &hook("challtestsrv-auth"),
                "--cleanup-hook",
                &hook("challtestsrv-cleanup"),
            ]
            .map(String::from),
        );
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&refs)
    }

    /// `issue NAME -d ...` with this auth hook and the challtestsrv cleanup hook.
    pub fn issue_with_auth_hook(&self, name: &str, domains: &[&str], auth_hook: &str) -> Run {
        let mut args = vec!["issue", name];
        for d in domains {
            args.extend(["-d", d]);
        }
        let cleanup = hook("challtestsrv-cleanup");
        args.extend(["--auth-hook", auth_hook, "--cleanup-hook", &cleanup]);
        self.run(&args)
    }

    /// The same installation (prefix, token, settings) with one more variable set.
    pub fn with_var(&self, name: &str, value: &str) -> Env {
        let mut e = Env {
            prefix: self.prefix.clone(),
            token: self.token.clone(),
            extra: self.extra.clone(),
            cwd: self.cwd.clone(),
        };
        e.extra.push((name.into(), value.into()));
        e
    }

    /// The KV v2 path of a certificate record, below the mount.
    pub fn cert_path(&self, name: &str) -> String {
        format!("{}/certs/{name}", self.prefix)
    }
}

fn output(o: Output) -> Run {
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// An auth hook that publishes through challtestsrv, or fails with "dns api said no"
/// (exit 7) when the variable BREAK is set: `env.with_var("BREAK", "1")` breaks it.
pub fn breakable_auth_hook() -> String {
    format!(
        "if [ -n \"${{BREAK:-}}\" ]; then echo 'dns api said no' >&2; exit 7; fi; {}",
        hook("challtestsrv-auth")
    )
}

/// A blocking client that trusts the test bed's Pebble listener CA (and talks to Vault).
pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .tls_certs_only(
            reqwest::Certificate::from_pem_bundle(
                &std::fs::read(env("CERTVAULT_ACME_CA_CERT")).unwrap(),
            )
            .unwrap(),
        )
        .build()
        .unwrap()
}

/// Read `secret/data/<path>` as root: (data, version), or None.
pub fn vault_read(path: &str) -> Option<(Value, u64)> {
    let rsp = http()
        .get(format!("{}/v1/secret/data/{path}", env("VAULT_ADDR")))
        .header("X-Vault-Token", env("VAULT_TOKEN"))
        .send()
        .unwrap();
    if rsp.status() == 404 {
        return None;
    }
    assert!(
        rsp.status().is_success(),
        "vault read {path}: {}",
        rsp.status()
    );
    let body: Value = rsp.json().unwrap();
    Some((
        body["data"]["data"].clone(),
        body["data"]["metadata"]["version"].as_u64().unwrap(),
    ))
}

/// Write `secret/data/<path>` as root (no CAS); returns the new version.
pub fn vault_write(path: &str, data: &Value) -> u64 {
    let rsp = http()
        .post(format!("{}/v1/secret/data/{path}", env("VAULT_ADDR")))
        .header("X-Vault-Token", env("VAULT_TOKEN"))
        .json(&json!({ "data": data }))
        .send()
        .unwrap();
    assert!(
        rsp.status().is_success(),
        "vault write {path}: {}",
        rsp.status()
    );
    rsp.json::<Value>().unwrap()["data"]["version"]
        .as_u64()
        .unwrap()
}

/// A new token with the given policies (and the given id, so a test can look for it).
pub fn vault_token(id: &str, policies: &[&str]) -> String {
    let rsp = http()
        .post(format!("{}/v1/auth/token/create", env("VAULT_ADDR")))
        .header("X-Vault-Token", env("VAULT_TOKEN"))
        .json(&json!({ "id": id, "policies": policies, "ttl": "1h" }))
        .send()
        .unwrap();
    assert!(rsp.status().is_success(), "token create: {}", rsp.status());
    rsp.json::<Value>().unwrap()["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Pebble's current issuing root (new at every Pebble start), PEM.
pub fn pebble_root() -> String {
    pebble_root_of("CERTVAULT_TEST_PEBBLE_MGMT")
}

/// The issuing root of the Pebble whose management URL is in `mgmt_var`.
pub fn pebble_root_of(mgmt_var: &str) -> String {
    let rsp = http()
        .get(format!("{}/roots/0", env(mgmt_var)))
        .send()
        .unwrap();
    assert!(rsp.status().is_success());
    rsp.text().unwrap()
}

pub fn pem_ders(pem: &str) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .map(|p| p.unwrap().contents)
        .collect()
}

/// Verify `cert` + `chain` up to Pebble's root for TLS server use and each of `names`.
pub fn verify_chain(cert: &str, chain: &str, names: &[&str]) {
    verify_chain_to(&pebble_root(), cert, chain, names)
}

/// Verify up to the BIND-backed Pebble's root.
pub fn verify_chain_bind(cert: &str, chain: &str, names: &[&str]) {
    verify_chain_to(
        &pebble_root_of("CERTVAULT_TEST_PEBBLE_BIND_MGMT"),
        cert,
        chain,
        names,
    )
}

/// Verify a stored record's `cert` + `chain` up to Pebble's root, as `verify_chain`.
pub fn verify_record(doc: &Value, names: &[&str]) {
    verify_record_to(&pebble_root(), doc, names)
}

/// The same up to the BIND-backed Pebble's root.
pub fn verify_record_bind(doc: &Value, names: &[&str]) {
    verify_record_to(
        &pebble_root_of("CERTVAULT_TEST_PEBBLE_BIND_MGMT"),
        doc,
        names,
    )
}

/// The same up to `root_pem`.
pub fn verify_record_to(root_pem: &str, doc: &Value, names: &[&str]) {
    verify_chain_to(
        root_pem,
        doc["cert"].as_str().unwrap(),
        doc["chain"].as_str().unwrap(),
        names,
    )
}

pub fn verify_chain_to(root_pem: &str, cert: &str, chain: &str, names: &[&str]) {
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
    let root = pem_ders(root_pem).remove(0);
    let root = CertificateDer::from(root);
    let anchor = webpki::anchor_from_trusted_cert(&root).unwrap();
    let leaf = CertificateDer::from(pem_ders(cert).remove(0));
    let intermediates: Vec<CertificateDer> = pem_ders(chain)
        .into_iter()
        .map(CertificateDer::from)
        .collect();
    let ee = webpki::EndEntityCert::try_from(&leaf).unwrap();
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &intermediates,
        UnixTime::now(),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .expect("chain verifies against Pebble's root");
    for name in names {
        let host = name.replace("*.", "wild.");
        ee.verify_is_valid_for_subject_name(&ServerName::try_from(host.as_str()).unwrap())
            .unwrap_or_else(|e| panic!("not valid for {name}: {e:?}"));
    }
}

/// The SAN DNS names of a PEM certificate, sorted.
pub fn sans(cert: &str) -> Vec<String> {
    let der = pem_ders(cert).remove(0);
    let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
    let mut out: Vec<String> = x
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// Whether a stored record's `privkey` belongs to its `cert`.
pub fn record_key_matches(doc: &Value) -> bool {
    key_matches(
        doc["privkey"].as_str().unwrap(),
        doc["cert"].as_str().unwrap(),
    )
}

/// Whether the PEM private key belongs to the PEM certificate.
pub fn key_matches(privkey: &str, cert: &str) -> bool {
    let key = rcgen::KeyPair::from_pem(privkey).expect("privkey parses");
    let der = pem_ders(cert).remove(0);
    let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
    rcgen::PublicKeyData::subject_public_key_info(&key) == x.public_key().raw
}

/// A temporary folder, removed (with everything in it) when the guard is dropped, also
/// when the test fails. Keep the guard alive as long as the folder is used:
/// `let dir = tempdir("x");`, never `tempdir("x").join(…)`.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl std::ops::Deref for TempDir {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for TempDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn tempdir(tag: &str) -> TempDir {
    let d = std::env::temp_dir().join(format!("certvault-{}", unique(tag)));
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

pub fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).unwrap().next().is_none()
}

/// TXT values at `name` as `server` (ip:port) answers them, without recursion.
pub fn dig_txt(server: &str, name: &str) -> Vec<String> {
    let (ip, port) = server.rsplit_once(':').unwrap();
    let out = Command::new("dig")
        .args([
            &format!("@{ip}"),
            "-p",
            port,
            "+short",
            "+norec",
            "TXT",
            name,
        ])
        .output()
        .expect("dig");
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().trim_matches('"').to_string())
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

/// Poll `dig` until `check` holds on both BIND servers (bounded: 10 s).
#[track_caller]
pub fn wait_dns(name: &str, what: &str, check: impl Fn(&[String]) -> bool) {
    wait_dns_on(
        &[env("CERTVAULT_TEST_BIND1"), env("CERTVAULT_TEST_BIND2")],
        name,
        what,
        check,
    )
}

/// The same on the given servers only. lag.test's secondary follows only when
/// some test asks it to retransfer, so checks there name the primary alone.
pub fn wait_dns_on(servers: &[String], name: &str, what: &str, check: impl Fn(&[String]) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    for server in servers {
        loop {
            let values = dig_txt(server, name);
            if check(&values) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name} on {server}: {what}; saw {values:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// A request to Vault's HTTP API with `token`: (status, JSON body or Null).
pub fn vault_call(
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    vault_call_ns(token, None, method, path, body)
}

/// The same in a Vault namespace.
pub fn vault_call_ns(
    token: &str,
    namespace: Option<&str>,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut req = http()
        .request(method, format!("{}/v1/{path}", env("VAULT_ADDR")))
        .header("X-Vault-Token", token);
    if let Some(ns) = namespace {
        req = req.header("X-Vault-Namespace", ns);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let rsp = req.send().unwrap();
    let status = rsp.status().as_u16();
    (status, rsp.json().unwrap_or(Value::Null))
}

/// As root; panics unless Vault answers 2xx.
#[track_caller]
pub fn vault_root(method: reqwest::Method, path: &str, body: Option<&Value>) -> Value {
    let (status, rsp) = vault_call(&env("VAULT_TOKEN"), method, path, body);
    assert!((200..300).contains(&status), "vault {path}: {status} {rsp}");
    rsp
}

/// Write an ACL policy (HCL text) as root.
pub fn vault_policy(name: &str, hcl: &str) {
    vault_root(
        reqwest::Method::PUT,
        &format!("sys/policies/acl/{name}"),
        Some(&json!({ "policy": hcl })),
    );
}

/// Enable an auth method of `kind` at `mount` as root.
pub fn vault_enable_auth(mount: &str, kind: &str) {
    vault_root(
        reqwest::Method::POST,
        &format!("sys/auth/{mount}"),
        Some(&json!({ "type": kind })),
    );
}

/// How many live tokens were created by a login at `auth/<mount>/`.
pub fn live_tokens_from(mount: &str) -> usize {
    live_accessors_from(mount).len()
}

/// Whether the token with `accessor` is live (Vault looks it up: not expired, not revoked).
pub fn token_is_live(accessor: &str) -> bool {
    vault_call(
        &env("VAULT_TOKEN"),
        reqwest::Method::POST,
        "auth/token/lookup-accessor",
        Some(&json!({ "accessor": accessor })),
    )
    .0 == 200
}

/// The accessors of the live tokens created by a login at `auth/<mount>/`.
pub fn live_accessors_from(mount: &str) -> Vec<String> {
    let list = vault_root(
        reqwest::Method::from_bytes(b"LIST").unwrap(),
        "auth/token/accessors",
        None,
    );
    let prefix = format!("auth/{mount}/");
    list["data"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .filter(|a| {
            let (status, rsp) = vault_call(
                &env("VAULT_TOKEN"),
                reqwest::Method::POST,
                "auth/token/lookup-accessor",
                Some(&json!({ "accessor": a })),
            );
            status == 200
                && rsp["data"]["path"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with(&prefix)
        })
        .map(String::from)
        .collect()
}

/// A compact JWS (RS256) over `claims`, signed with `key` (an RSA rcgen key pair).
pub fn sign_jwt(key: &rcgen::KeyPair, claims: &Value) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine;
    use rcgen::SigningKey;
    let header = B64.encode(json!({ "alg": "RS256", "typ": "JWT" }).to_string());
    let payload = B64.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let sig = key.sign(input.as_bytes()).expect("sign JWT");
    format!("{input}.{}", B64.encode(sig))
}

pub fn rsa_key() -> rcgen::KeyPair {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key")
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// One HTTP/1.1 request read from `stream`: its request line ("" when the peer sent
/// nothing) and its body (Content-Length bytes).
pub fn read_request(stream: &std::net::TcpStream) -> (String, Vec<u8>) {
    use std::io::{BufRead, BufReader, Read};
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap_or(0);
    let mut len = 0usize;
    if !first.is_empty() {
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
    }
    let mut body = vec![0; len];
    let _ = reader.read_exact(&mut body);
    (first, body)
}

/// The parameters of a self-signed CA (may sign certificates and CRLs) named `cn`.
pub fn ca_params(cn: &str) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    params
}

/// The (name, verdict) pairs of a `renew --output json` report.
pub fn verdicts(report: &Value) -> Vec<(String, String)> {
    report["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A minimal Kubernetes API answering TokenReviews on 127.0.0.1: `token` is authenticated as
/// `system:serviceaccount:<namespace>:<name>`, anything else is not. Returns the base URL.
pub fn token_review_server(token: String, namespace: &str, name: &str) -> String {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let user = format!("system:serviceaccount:{namespace}:{name}");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (first, body) = read_request(&stream);
            let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let ok = first.starts_with("POST /apis/authentication.k8s.io/v1/tokenreviews")
                && review["spec"]["token"].as_str() == Some(token.as_str());
            let status = if ok {
                json!({ "authenticated": true, "user": {
                    "username": user, "uid": "uid-certvault",
                    "groups": ["system:serviceaccounts"] } })
            } else {
                json!({ "authenticated": false, "error": "invalid token" })
            };
            let out = json!({ "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview", "status": status })
            .to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{out}",
                out.len()
            );
        }
    });
    format!("http://{addr}")
}

/// A throwaway self-signed certificate, PEM.
pub fn self_signed_pem() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem()
}

/// A Pebble of a test's own (own ports, same listener certificate, challtestsrv as its DNS),
/// stopped on drop. `env` adds PEBBLE_* settings; `config` is merged into its JSON config.
pub struct Pebble {
    _child: KillOnDrop,
    pub directory: String,
    pub mgmt: String,
}

impl Pebble {
    pub fn start(extra_env: &[(&str, &str)], config: Value) -> Pebble {
        Self::start_with_dns(extra_env, config, &env("CERTVAULT_TEST_DNS"))
    }

    /// The same, validating DNS-01 against the DNS server at `dns` (ip:port).
    pub fn start_with_dns(extra_env: &[(&str, &str)], config: Value, dns: &str) -> Pebble {
        let dir = tempdir("pebble");
        let state = PathBuf::from(env("CERTVAULT_TESTBED_DIR")).join("pebble");
        let (port, mgmt) = (free_port(), free_port());
        let mut cfg = json!({
            "listenAddress": format!("127.0.0.1:{port}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt}"),
            "certificate": state.join("cert.pem"),
            "privateKey": state.join("key.pem"),
            "httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        });
        for (k, v) in config.as_object().into_iter().flatten() {
            cfg[k] = v.clone();
        }
        let file = dir.join("pebble.json");
        std::fs::write(&file, json!({ "pebble": cfg }).to_string()).unwrap();
        let mut cmd = Command::new("pebble");
        cmd.args([
            "-config",
            file.to_str().unwrap(),
            "-dnsserver",
            dns,
            "-strict=false",
        ])
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_AUTHZREUSE", "0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let pebble = Pebble {
            _child: KillOnDrop(cmd.spawn().expect("start pebble")),
            directory: format!("https://localhost:{port}/dir"),
            mgmt: format!("https://localhost:{mgmt}"),
        };
        let client = http();
        wait_until("pebble answers its directory", 20, || {
            client
                .get(&pebble.directory)
                .send()
                .is_ok_and(|r| r.status().is_success())
        });
        pebble
    }
}

/// An acme2certifier (PyPI, in the test bed's venv) of a test's own: its openssl_ca_handler
/// with a CA made by openssl (or given), the wsgi (SQLite) database, dns-01 checked against
/// the test bed's challtestsrv on 127.0.0.2:53, run under the standard library's threaded
/// wsgiref server on a free port of 127.0.0.1 (`tests/acme2certifier/serve.py`), stopped on
/// drop. Its configuration is read at start only: `restart` starts it again on the same
/// port, database and CA with other settings.
pub struct Acme2certifier {
    child: Option<std::process::Child>,
    pub dir: TempDir,
    pub port: u16,
    pub directory: String,
}

impl Drop for Acme2certifier {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Acme2certifier {
    /// `sections` are extra lines per config section, e.g. `[("Renewalinfo",
    /// "renewal_force: True")]`. The CA is made with openssl, valid for ten years.
    pub fn start(sections: &[(&str, &str)]) -> Self {
        let dir = tempdir("a2c");
        let ok = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
            ])
            .arg("-keyout")
            .arg(dir.join("ca.key"))
            .arg("-out")
            .arg(dir.join("ca.pem"))
            .args([
                "-days",
                "3650",
                "-subj",
                "/CN=certvault acme2certifier test CA",
            ])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .args(["-addext", "subjectKeyIdentifier=hash"])
            .output()
            .expect("openssl")
            .status
            .success();
        assert!(ok, "openssl made no CA");
        Self::start_in(dir, sections)
    }

    /// The same, with the CA already in `dir/ca.key` and `dir/ca.pem`.
    pub fn start_in(dir: TempDir, sections: &[(&str, &str)]) -> Self {
        std::fs::create_dir_all(dir.join("certs")).unwrap();
        let port = free_port();
        let mut a = Acme2certifier {
            child: None,
            directory: format!("http://127.0.0.1:{port}/directory"),
            dir,
            port,
        };
        a.run(sections);
        a
    }

    fn run(&mut self, sections: &[(&str, &str)]) {
        let d = self.dir.display();
        let mut cfg: Vec<(String, Vec<String>)> = vec![
            ("DEFAULT".into(), vec!["debug: False".into()]),
            ("Nonce".into(), vec!["nonce_check_disable: False".into()]),
            (
                "CAhandler".into(),
                vec![
                    "handler_module: acme2certifier.cahandlers.openssl_ca_handler".into(),
                    format!("issuing_ca_key: {d}/ca.key"),
                    format!("issuing_ca_cert: {d}/ca.pem"),
                    format!("issuing_ca_crl: {d}/crl.pem"),
                    format!("cert_save_path: {d}/certs"),
                ],
            ),
            (
                "DBhandler".into(),
                vec!["handler: wsgi".into(), format!("dbfile: {d}/acme_srv.db")],
            ),
            ("Account".into(), vec!["contact_check_disable: True".into()]),
            (
                "Challenge".into(),
                vec![format!(
                    "dns_server_list: [\"{}\"]",
                    env("CERTVAULT_TEST_A2C_DNS")
                )],
            ),
            ("Order".into(), vec![]),
            ("Renewalinfo".into(), vec![]),
        ];
        for (section, line) in sections {
            match cfg.iter_mut().find(|(s, _)| s == section) {
                Some((_, lines)) => lines.push(line.to_string()),
                None => cfg.push((section.to_string(), vec![line.to_string()])),
            }
        }
        let text: String = cfg
            .iter()
            .map(|(s, lines)| format!("[{s}]\n{}\n\n", lines.join("\n")))
            .collect();
        std::fs::write(self.dir.join("acme_srv.cfg"), text).unwrap();
        let log = std::fs::File::create(self.dir.join("server.log")).unwrap();
        let child = Command::new(env("CERTVAULT_TEST_PYTHON"))
            .arg(repo().join("tests/acme2certifier/serve.py"))
            .arg(self.dir.join("acme_srv.cfg"))
            .arg(self.port.to_string())
            .arg(self.dir.join("requests.log"))
            .current_dir(&self.dir)
            .env_remove("REQUESTS_CA_BUNDLE")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start acme2certifier");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !reqwest::blocking::Client::new()
            .get(&self.directory)
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(
                std::time::Instant::now() < deadline,
                "acme2certifier did not start: {}",
                std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stop and start again with other settings (same port, database and CA).
    pub fn restart(&mut self, sections: &[(&str, &str)]) {
        self.stop();
        self.run(sections);
    }

    /// The CA certificate (PEM): the root its certificates chain to.
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.dir.join("ca.pem")).unwrap()
    }

    /// The requests it received so far: "METHOD /path" lines.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("requests.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// An installation with an account at this CA whose hooks publish through the
    /// challtestsrv it asks.
    pub fn env(&self, tag: &str) -> Env {
        let mut e = Env::new(tag);
        e.extra.push((
            "CHALLTESTSRV_URL".into(),
            env("CERTVAULT_TEST_CHALLTESTSRV_53"),
        ));
        e.run(&["init", "--directory", &self.directory, "--agree-tos"])
            .ok();
        e
    }
}

/// An AppRole at a unique mount with `policy`, whose tokens live `ttl` (renewable up to an hour).
pub fn approle_with_ttl(policy: &str, ttl: &str) -> (String, String, String) {
    let mount = unique("approle");
    vault_enable_auth(&mount, "approle");
    vault_root(
        reqwest::Method::POST,
        &format!("auth/{mount}/role/certvault"),
        Some(&json!({ "token_policies": [policy], "token_ttl": ttl, "token_max_ttl": "1h" })),
    );
    let field = |method, path: &str, name: &str| {
        vault_root(method, &format!("auth/{mount}/role/certvault/{path}"), None)["data"][name]
            .as_str()
            .unwrap()
            .to_string()
    };
    let role_id = field(reqwest::Method::GET, "role-id", "role_id");
    let secret_id = field(reqwest::Method::POST, "secret-id", "secret_id");
    (mount, role_id, secret_id)
}

/// What the test bed's Pebble issued from a point on: its log names each serial it
/// issues, and its management API gives the certificate of a serial.
pub struct PebbleLog {
    log: PathBuf,
    offset: u64,
}

impl PebbleLog {
    /// From now on.
    pub fn mark() -> Self {
        let log = PathBuf::from(env("CERTVAULT_TESTBED_DIR")).join("logs/pebble.log");
        let offset = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        PebbleLog { log, offset }
    }

    /// The serials (in [`pebble_serial`]'s form) issued since the mark whose certificate
    /// names `domain`.
    pub fn issued_for(&self, domain: &str) -> Vec<String> {
        let text = std::fs::read(&self.log).unwrap();
        let since = String::from_utf8_lossy(&text[self.offset as usize..]).to_string();
        since
            .lines()
            .filter_map(|l| l.split("Issued certificate serial ").nth(1))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_string)
            .filter(|serial| {
                let rsp = http()
                    .get(format!(
                        "{}/cert-status-by-serial/{serial}",
                        env("CERTVAULT_TEST_PEBBLE_MGMT")
                    ))
                    .send()
                    .unwrap();
                let body: Value = rsp.json().unwrap();
                sans(body["Certificate"].as_str().unwrap()).contains(&domain.to_string())
            })
            .map(|serial| pebble_serial(&serial))
            .collect()
    }
}

/// A serial in one form for comparing (lowercase hex, no separators, no leading zeros),
/// from certvault's stored form or Pebble's log.
pub fn pebble_serial(stored: &str) -> String {
    let hex: String = stored
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect::<String>()
        .to_lowercase();
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    }
}

/// The fields of an index entry by position, as the README documents the rows of index
/// format 2 (and of its `status` and `ari`).
const ROW: [&str; 17] = [
    "version",
    "spec_version",
    "not_before",
    "not_after",
    "renew_at",
    "basis",
    "domains",
    "key_type",
    "serial",
    "account",
    "status",
    "due_now",
    "deleted",
    "ari_at",
    "ari_check_at",
    "profile",
    "ari",
];
const STATUS_ROW: [&str; 4] = ["last_result", "failures", "last_error", "dns_leftovers"];
const ARI_ROW: [&str; 9] = [
    "window_start",
    "window_end",
    "chosen_at",
    "retry_after",
    "fetched_at",
    "explanation_url",
    "failures",
    "last_failure_at",
    "last_error",
];

fn named(fields: &[&str], row: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in fields
        .iter()
        .zip(row.as_array().expect("a row is an array"))
    {
        out.insert(k.to_string(), v.clone());
    }
    Value::Object(out)
}

fn positional(fields: &[&str], obj: &Value) -> Value {
    Value::Array(fields.iter().map(|k| obj[*k].clone()).collect())
}

/// An index document's entries (a JSON text of an object name → row), each decoded to an
/// object with the documented field names (its `status` and `ari` too; `deleted` as 0/1).
pub fn index_entries(doc: &Value) -> Value {
    assert_eq!(doc["format"], 2, "index format 2: {doc}");
    let rows: serde_json::Map<String, Value> =
        serde_json::from_str(doc["entries"].as_str().expect("entries as one JSON text")).unwrap();
    let mut out = serde_json::Map::new();
    for (name, row) in rows {
        let mut e = named(&ROW, &row);
        if e["status"].is_array() {
            e["status"] = named(&STATUS_ROW, &e["status"]);
        }
        if e["ari"].is_array() {
            e["ari"] = named(&ARI_ROW, &e["ari"]);
        }
        out.insert(name, e);
    }
    Value::Object(out)
}

/// Store `entries` (objects as [`index_entries`] gives them) in `doc` as rows.
pub fn set_index_entries(doc: &mut Value, entries: &Value) {
    let mut rows = serde_json::Map::new();
    for (name, e) in entries.as_object().unwrap() {
        let mut e = e.clone();
        if e["status"].is_object() {
            for k in ["failures", "dns_leftovers"] {
                if e["status"][k].is_null() {
                    e["status"][k] = json!(0);
                }
            }
            e["status"] = positional(&STATUS_ROW, &e["status"]);
        }
        if e["ari"].is_object() {
            e["ari"] = positional(&ARI_ROW, &e["ari"]);
        }
        if e["deleted"].is_null() {
            e["deleted"] = json!(0);
        }
        rows.insert(name.clone(), positional(&ROW, &e));
    }
    doc["entries"] = json!(Value::Object(rows).to_string());
}
