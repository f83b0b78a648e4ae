//! Vault's own settings honoured for every auth method: VAULT_NAMESPACE against a real
//! OpenBao namespace, VAULT_CACERT against an OpenBao dev server with TLS.

use std::process::Command;

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::*;

#[track_caller]
fn ns_root(ns: &str, method: Method, path: &str, body: Option<&Value>) -> Value {
    let (status, rsp) = vault_call_ns(&env("VAULT_TOKEN"), Some(ns), method, path, body);
    assert!((200..300).contains(&status), "{ns}/{path}: {status} {rsp}");
    rsp
}

/// An AppRole in namespace `ns` whose tokens get `policy_hcl`: (role id, secret id).
fn approle_in(ns: &str, policy_hcl: &str) -> (String, String) {
    ns_root(
        ns,
        Method::PUT,
        "sys/policies/acl/cv",
        Some(&json!({ "policy": policy_hcl })),
    );
    ns_root(
        ns,
        Method::POST,
        "sys/auth/approle",
        Some(&json!({ "type": "approle" })),
    );
    ns_root(
        ns,
        Method::POST,
        "auth/approle/role/cv",
        Some(&json!({ "token_policies": ["cv"] })),
    );
    let role_id = ns_root(ns, Method::GET, "auth/approle/role/cv/role-id", None)["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret_id = ns_root(ns, Method::POST, "auth/approle/role/cv/secret-id", None)["data"]
        ["secret_id"]
        .as_str()
        .unwrap()
        .to_string();
    (role_id, secret_id)
}

#[test]
fn namespace_is_used_for_token_and_approle() {
    let ns = unique("ns").replace('-', "_");
    let (status, rsp) = vault_call(
        &env("VAULT_TOKEN"),
        Method::POST,
        &format!("sys/namespaces/{ns}"),
        None,
    );
    assert!((200..300).contains(&status), "namespace: {status} {rsp}");
    ns_root(
        &ns,
        Method::POST,
        "sys/mounts/secret",
        Some(&json!({ "type": "kv-v2" })),
    );

    let mut e = Env::new("inns");
    e.extra.push(("VAULT_NAMESPACE".into(), ns.clone()));
    e.init().ok();
    let d = domain("ns");
    e.issue("web", &[&d], &[]).ok();
    let path = format!("secret/data/{}", e.cert_path("web"));
    let (status, doc) = vault_call_ns(&env("VAULT_TOKEN"), Some(&ns), Method::GET, &path, None);
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["data"]["metadata"]["version"], 1);
    assert!(
        vault_read(&e.cert_path("web")).is_none(),
        "written outside the namespace"
    );

    // AppRole: login, capability check and writes all go to the namespace.
    let hcl = e.run(&["policy", "renew"]).ok().stdout;
    let (role_id, secret_id) = approle_in(&ns, &hcl);
    let a = e.logging_in(&[
        ("VAULT_NAMESPACE", &ns),
        ("CERTVAULT_AUTH", "approle"),
        ("VAULT_ROLE_ID", &role_id),
        ("VAULT_SECRET_ID", &secret_id),
    ]);
    let run = a.run(&["renew", "--force"]).ok();
    assert_contains(&run.stdout, "renewed  web");
    let (_, doc) = vault_call_ns(&env("VAULT_TOKEN"), Some(&ns), Method::GET, &path, None);
    assert_eq!(doc["data"]["metadata"]["version"], 2);
}

/// A server of the test's own on a free port of 127.0.0.1, in its own folder (`dir`);
/// stopped and the folder removed on drop.
struct Server {
    _child: KillOnDrop,
    /// `scheme://127.0.0.1:port`.
    addr: String,
    dir: TempDir,
}

/// Start the command `make(dir, port)` gives (output discarded) as a `Server`, once `up`
/// holds for it (at most 20 s).
fn server(
    tag: &str,
    scheme: &str,
    make: impl FnOnce(&TempDir, u16) -> Command,
    up: impl Fn(&Server) -> bool,
) -> Server {
    let dir = tempdir(tag);
    let port = free_port();
    let child = make(&dir, port)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {tag}: {e}"));
    let s = Server {
        _child: KillOnDrop(child),
        addr: format!("{scheme}://127.0.0.1:{port}"),
        dir,
    };
    wait_until(&format!("{tag} comes up"), 20, || up(&s));
    s
}

/// An OpenBao dev server with TLS, and the CA its certificate is signed by (a PEM file).
struct TlsBao {
    server: Server,
    ca: String,
}

fn tls_bao() -> TlsBao {
    let ca = |dir: &std::path::Path| dir.join("vault-ca.pem").display().to_string();
    let server = server(
        "baotls",
        "https",
        |dir, port| {
            let mut cmd = Command::new(env("BAO_BIN"));
            cmd.args([
                "server",
                "-dev",
                "-dev-tls",
                &format!("-dev-tls-cert-dir={}", dir.display()),
                &format!("-dev-listen-address=127.0.0.1:{port}"),
                "-dev-root-token-id=root",
            ])
            .env("HOME", dir.as_os_str());
            cmd
        },
        |s| {
            let Some(c) = std::fs::read(ca(&s.dir))
                .ok()
                .and_then(|pem| reqwest::Certificate::from_pem(&pem).ok())
            else {
                return false;
            };
            reqwest::blocking::Client::builder()
                .no_proxy()
                .tls_certs_only([c])
                .build()
                .unwrap()
                .get(format!("{}/v1/sys/health", s.addr))
                .send()
                .is_ok_and(|r| r.status().is_success())
        },
    );
    TlsBao {
        ca: ca(&server.dir),
        server,
    }
}

#[test]
fn vault_cacert_is_trusted_for_token_and_approle_and_verification_is_never_skipped() {
    let bao = tls_bao();
    let mut e = Env::new("tls");
    e.token = "root".into();
    e.extra.push(("VAULT_ADDR".into(), bao.server.addr.clone()));

    // Without the CA the server is not trusted, whatever VAULT_SKIP_VERIFY says.
    for skip in [None, Some(""), Some("true")] {
        let mut x = Env::new("tls");
        x.token = "root".into();
        x.extra = e.extra.clone();
        if let Some(v) = skip {
            x.extra.push(("VAULT_SKIP_VERIFY".into(), v.into()));
        }
        let run = x.run(&["list"]);
        assert_eq!(run.code, 1, "VAULT_SKIP_VERIFY={skip:?}: {}", run.all());
        assert_contains(
            &run.stderr,
            &format!("cannot reach Vault at {}", bao.server.addr),
        );
    }

    e.extra.push(("VAULT_CACERT".into(), bao.ca.clone()));
    // Reached over TLS: an empty prefix is reported as such, naming the paths tried.
    let run = e.run(&["list"]);
    fails_with(
        &run,
        1,
        &format!("no ACME account at secret/{}/accounts/default", e.prefix),
    );
    e.init().ok();
    let run = e.run(&["list"]).ok();
    assert_contains(&run.stdout, "no certificates stored yet");

    // AppRole login over the same TLS: the CA is used for the login too.
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(&bao.ca).unwrap()).unwrap()])
        .build()
        .unwrap();
    let call = |method: Method, path: &str, body: Value| -> Value {
        let rsp = client
            .request(method, format!("{}/v1/{path}", bao.server.addr))
            .header("X-Vault-Token", "root")
            .json(&body)
            .send()
            .unwrap();
        assert!(rsp.status().is_success(), "{path}: {}", rsp.status());
        rsp.json().unwrap_or(Value::Null)
    };
    let hcl = e.run(&["policy", "renew"]).ok().stdout;
    call(Method::PUT, "sys/policies/acl/cv", json!({ "policy": hcl }));
    call(
        Method::POST,
        "sys/auth/approle",
        json!({ "type": "approle" }),
    );
    call(
        Method::POST,
        "auth/approle/role/cv",
        json!({ "token_policies": ["cv"] }),
    );
    let role_id = call(Method::GET, "auth/approle/role/cv/role-id", json!({}))["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret_id = call(Method::POST, "auth/approle/role/cv/secret-id", json!({}))["data"]
        ["secret_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut a = Env::new("tls");
    a.prefix = e.prefix.clone();
    a.token = String::new();
    a.extra = vec![
        ("VAULT_ADDR".into(), bao.server.addr.clone()),
        ("VAULT_CACERT".into(), bao.ca.clone()),
        ("CERTVAULT_AUTH".into(), "approle".into()),
        ("VAULT_ROLE_ID".into(), role_id),
        ("VAULT_SECRET_ID".into(), secret_id),
    ];
    let run = a.run(&["renew"]).ok();
    assert_contains(&run.stdout, "summary: 0 renewed, 0 not due, 0 failed");
}

/// certvault with exactly these variables (and PATH): nothing from the test bed.
fn bare(vars: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("run certvault");
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn bao_variables_are_aliases_and_vault_ones_win() {
    let e = Env::ready("bao");
    let prefix = e.prefix.as_str();
    let (addr, token) = (env("VAULT_ADDR"), env("VAULT_TOKEN"));
    let dead = "http://127.0.0.1:9";
    // BAO_* alone.
    let run = bare(
        &[
            ("BAO_ADDR", &addr),
            ("BAO_TOKEN", &token),
            ("CERTVAULT_PREFIX", prefix),
        ],
        &["list"],
    )
    .ok();
    assert_contains(&run.stdout, "no certificates stored yet");
    // Both set: VAULT_* wins (a dead BAO_ADDR and a wrong BAO_TOKEN are not used).
    bare(
        &[
            ("VAULT_ADDR", &addr),
            ("BAO_ADDR", dead),
            ("VAULT_TOKEN", &token),
            ("BAO_TOKEN", "not-a-token"),
            ("CERTVAULT_PREFIX", prefix),
        ],
        &["list"],
    )
    .ok();
    let run = bare(
        &[
            ("VAULT_ADDR", dead),
            ("BAO_ADDR", &addr),
            ("VAULT_TOKEN", &token),
            ("CERTVAULT_PREFIX", prefix),
        ],
        &["list"],
    );
    fails_with(&run, 1, "cannot reach Vault at http://127.0.0.1:9");
    // BAO_NAMESPACE reaches Vault: a namespace that does not exist has no mount `secret`.
    let run = bare(
        &[
            ("VAULT_ADDR", &addr),
            ("VAULT_TOKEN", &token),
            ("BAO_NAMESPACE", "no-such-namespace"),
            ("CERTVAULT_PREFIX", prefix),
        ],
        &["list"],
    );
    assert_eq!(run.code, 1, "{}", run.all());
    // BAO_CACERT is read: a missing file is named.
    let run = bare(
        &[
            ("VAULT_ADDR", &addr),
            ("VAULT_TOKEN", &token),
            ("BAO_CACERT", "/nonexistent/bao-ca.pem"),
            ("CERTVAULT_PREFIX", prefix),
        ],
        &["list"],
    );
    fails_with(&run, 1, "/nonexistent/bao-ca.pem");
}

#[test]
fn the_token_of_vault_login_in_home_is_used_when_no_token_is_given() {
    let e = Env::ready("home");
    let addr = env("VAULT_ADDR");
    let home = tempdir("home");
    std::fs::write(
        home.join(".vault-token"),
        format!("{}\n", env("VAULT_TOKEN")),
    )
    .unwrap();
    let home_s = home.display().to_string();
    let base = [
        ("VAULT_ADDR", addr.as_str()),
        ("CERTVAULT_PREFIX", e.prefix.as_str()),
    ];
    fn with<'a>(
        base: &[(&'a str, &'a str)],
        extra: &[(&'a str, &'a str)],
    ) -> Vec<(&'a str, &'a str)> {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        v
    }
    bare(&with(&base, &[("HOME", &home_s)]), &["list"]).ok();
    // A given token or token file wins over ~/.vault-token.
    let run = bare(
        &with(&base, &[("HOME", &home_s), ("VAULT_TOKEN", "bogus")]),
        &["list"],
    );
    fails_with(&run, 1, "Vault rejected the token");
    let file = home.join("other-token");
    std::fs::write(&file, "bogus\n").unwrap();
    let file = file.display().to_string();
    let run = bare(
        &with(&base, &[("HOME", &home_s), ("VAULT_TOKEN_FILE", &file)]),
        &["list"],
    );
    assert_eq!(run.code, 1, "{}", run.all());
    // No HOME, a HOME that does not exist, or a HOME without the file: a missing setting.
    for h in [None, Some("/nonexistent-home"), Some("/")] {
        let mut vars = base.to_vec();
        if let Some(h) = h {
            vars.push(("HOME", h));
        }
        let run = bare(&vars, &["list"]);
        assert_eq!(run.code, 2, "HOME={h:?}: {}", run.all());
        assert_contains(&run.stderr, "no Vault token");
        assert_contains(&run.stderr, "~/.vault-token");
    }
    std::fs::remove_dir_all(&home).unwrap();
}

#[test]
fn every_missing_auth_setting_exits_2() {
    let addr = env("VAULT_ADDR");
    for (vars, needle) in [
        (vec![("CERTVAULT_AUTH", "approle")], "VAULT_ROLE_ID"),
        (
            vec![("CERTVAULT_AUTH", "approle"), ("VAULT_ROLE_ID", "r")],
            "VAULT_SECRET_ID",
        ),
        (vec![("CERTVAULT_AUTH", "jwt")], "CERTVAULT_JWT"),
        (
            vec![("CERTVAULT_AUTH", "kubernetes")],
            "CERTVAULT_AUTH_ROLE",
        ),
    ] {
        let mut all = vars.clone();
        all.push(("VAULT_ADDR", &addr));
        all.push(("HOME", "/nonexistent-home"));
        let run = bare(&all, &["list"]);
        assert_eq!(run.code, 2, "{vars:?}: {}", run.all());
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
    }
}

/// A plain HTTP server that is not Vault (Python's http.server).
fn not_vault() -> Server {
    server(
        "notvault",
        "http",
        |dir, port| {
            let mut cmd = Command::new("python3");
            cmd.args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(dir);
            cmd
        },
        |s| {
            let port = s.addr.rsplit(':').next().unwrap();
            std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_ok()
        },
    )
}

#[test]
fn a_server_that_is_not_vault_is_named_as_such() {
    let server = not_vault();
    let mut e = Env::new("notvault");
    e.extra.push(("VAULT_ADDR".into(), server.addr.clone()));
    for args in [&["list"][..], &["renew"][..]] {
        let run = e.run(args);
        fails_with(
            &run,
            1,
            &format!(
                "{} is not a Vault or OpenBao server: GET /v1/sys/health answered 404",
                server.addr
            ),
        );
        assert!(!run.stderr.contains("capabilities"), "{}", run.stderr);
        assert!(!run.stderr.contains("KV version"), "{}", run.stderr);
    }
}

#[test]
fn https_against_plain_http_and_an_api_path_are_named() {
    let plain = env("VAULT_ADDR");
    let https = plain.replace("http://", "https://");
    let mut e = Env::new("plainhttp");
    e.extra.push(("VAULT_ADDR".into(), https.clone()));
    let run = e.run(&["list"]);
    fails_with(&run, 1, &format!("{https} speaks plain HTTP, not TLS"));
    assert!(!run.stderr.contains("InvalidContentType"), "{}", run.stderr);

    let mut e = Env::new("apipath");
    e.extra.push(("VAULT_ADDR".into(), format!("{plain}/v1")));
    let run = e.run(&["list"]);
    fails_with(
        &run,
        1,
        &format!("without /v1 (certvault adds it), like {plain}"),
    );
}
