//! Vault's own settings honoured for every auth method: VAULT_NAMESPACE against a real
//! OpenBao namespace, VAULT_CACERT against an OpenBao dev server with TLS.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

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
    let d = format!("{}.example.com", unique("ns"));
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
    let mut a = Env::new("unused");
    a.prefix = e.prefix.clone();
    a.token = String::new();
    a.extra = vec![
        ("VAULT_NAMESPACE".into(), ns.clone()),
        ("CERTVAULT_AUTH".into(), "approle".into()),
        ("VAULT_ROLE_ID".into(), role_id),
        ("VAULT_SECRET_ID".into(), secret_id),
    ];
    let run = a.run(&["renew", "--force"]).ok();
    assert!(run.stdout.contains("renewed  web"), "{}", run.stdout);
    let (_, doc) = vault_call_ns(&env("VAULT_TOKEN"), Some(&ns), Method::GET, &path, None);
    assert_eq!(doc["data"]["metadata"]["version"], 2);
}

/// An OpenBao dev server with TLS on a free port, stopped on drop.
struct TlsBao {
    child: Child,
    addr: String,
    ca: String,
}

impl Drop for TlsBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_bao() -> TlsBao {
    let dir = tempdir("baotls");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env("BAO_BIN"))
        .args([
            "server",
            "-dev",
            "-dev-tls",
            &format!("-dev-tls-cert-dir={}", dir.display()),
            &format!("-dev-listen-address=127.0.0.1:{port}"),
            "-dev-root-token-id=root",
        ])
        .env("HOME", &dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start bao -dev-tls");
    let bao = TlsBao {
        child,
        addr: format!("https://127.0.0.1:{port}"),
        ca: dir.join("vault-ca.pem").display().to_string(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(pem) = std::fs::read(&bao.ca) {
            if let Ok(c) = reqwest::Certificate::from_pem(&pem) {
                let client = reqwest::blocking::Client::builder()
                    .no_proxy()
                    .tls_certs_only([c])
                    .build()
                    .unwrap();
                if client
                    .get(format!("{}/v1/sys/health", bao.addr))
                    .send()
                    .is_ok_and(|r| r.status().is_success())
                {
                    return bao;
                }
            }
        }
        assert!(Instant::now() < deadline, "bao -dev-tls did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn vault_cacert_is_trusted_for_token_and_approle_and_verification_is_never_skipped() {
    let bao = tls_bao();
    let mut e = Env::new("tls");
    e.token = "root".into();
    e.extra.push(("VAULT_ADDR".into(), bao.addr.clone()));

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
        assert!(
            run.stderr
                .contains(&format!("cannot reach Vault at {}", bao.addr)),
            "{}",
            run.stderr
        );
    }

    e.extra.push(("VAULT_CACERT".into(), bao.ca.clone()));
    let run = e.run(&["list"]).ok();
    assert!(
        run.stdout.contains("no certificates stored yet"),
        "{}",
        run.stdout
    );

    // AppRole login over the same TLS: the CA is used for the login too.
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(&bao.ca).unwrap()).unwrap()])
        .build()
        .unwrap();
    let call = |method: Method, path: &str, body: Value| -> Value {
        let rsp = client
            .request(method, format!("{}/v1/{path}", bao.addr))
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
        ("VAULT_ADDR".into(), bao.addr.clone()),
        ("VAULT_CACERT".into(), bao.ca.clone()),
        ("CERTVAULT_AUTH".into(), "approle".into()),
        ("VAULT_ROLE_ID".into(), role_id),
        ("VAULT_SECRET_ID".into(), secret_id),
    ];
    let run = a.run(&["renew"]).ok();
    assert!(
        run.stdout
            .contains("summary: 0 renewed, 0 not due, 0 failed"),
        "{}",
        run.stdout
    );
}
