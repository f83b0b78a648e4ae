//! How applications read the records with nothing more than `certvault policy reader NAME`:
//! the real OpenBao Agent renders files from a record with the README's configuration and
//! follows a renewal; the External Secrets Operator and Vault CSI manifests in
//! deploy/consumers are checked against a real record and logged in with through the
//! Kubernetes auth method; `renew --jitter` waits within its bound.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::*;

/// The policy `certvault policy reader NAME` prints for `e`, applied under a unique name.
fn reader_policy(e: &Env, name: &str) -> String {
    let hcl = e.run(&["policy", "reader", name]).ok().stdout;
    let policy = unique("cv-reader");
    vault_policy(&policy, &hcl);
    policy
}

/// The agent configuration block of README "Use the certificates" (```hcl after the
/// "Vault Agent / OpenBao Agent" paragraph).
fn readme_agent_config() -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = readme
        .split("## Use the certificates\n")
        .nth(1)
        .expect("README has \"Use the certificates\"");
    let after = section
        .split("**Vault Agent / OpenBao Agent**")
        .nth(1)
        .expect("the section shows the agent");
    let block = after.split("```hcl\n").nth(1).expect("an hcl block");
    block.split("```").next().unwrap().to_string()
}

/// Replace `from` (which must occur exactly `times` times) with `to`.
#[track_caller]
fn subst(text: &str, from: &str, to: &str, times: usize) -> String {
    assert_eq!(
        text.matches(from).count(),
        times,
        "README agent config: {from:?} expected {times} times in\n{text}"
    );
    text.replace(from, to)
}

/// A running `bao agent` with its own folder (config, token file, rendered files, log);
/// killed and its folder removed on drop, also when the test fails.
struct Agent {
    child: KillOnDrop,
    dir: TempDir,
}

impl Agent {
    /// Start the agent with the README's configuration, pointed at the test bed, the record
    /// `path` (below the mount) and `token`.
    fn start(path: &str, token: &str) -> Agent {
        let dir = tempdir("agent");
        let token_file = dir.join("token");
        std::fs::write(&token_file, token).unwrap();
        let d = dir.display().to_string();
        let mut hcl = readme_agent_config();
        hcl = subst(
            &hcl,
            "https://vault.example.com:8200",
            &env("VAULT_ADDR"),
            1,
        );
        hcl = subst(
            &hcl,
            "/etc/certvault-agent/token",
            &token_file.display().to_string(),
            1,
        );
        hcl = subst(&hcl, "\"5m\"", "\"1s\"", 1);
        hcl = subst(
            &hcl,
            "secret/data/certvault/certs/web",
            &format!("secret/data/{path}"),
            2,
        );
        hcl = subst(&hcl, "/etc/ssl/web/", &format!("{d}/"), 2);
        let config = dir.join("agent.hcl");
        std::fs::write(&config, hcl).unwrap();
        let log = std::fs::File::create(dir.join("agent.log")).unwrap();
        // A clean environment: no VAULT_TOKEN / BAO_TOKEN of the caller can stand in for the
        // reader token.
        let child = Command::new(env("BAO_BIN"))
            .arg("agent")
            .arg(format!("-config={}", config.display()))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start bao agent");
        Agent {
            child: KillOnDrop(child),
            dir,
        }
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    /// Wait (at most 30 s) until the rendered files hold `fullchain` and `privkey`.
    #[track_caller]
    fn wait_for(&mut self, fullchain: &str, privkey: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.file("fullchain.pem") != fullchain || self.file("privkey.pem") != privkey {
            if let Ok(Some(status)) = self.child.0.try_wait() {
                panic!("bao agent exited ({status}):\n{}", self.file("agent.log"));
            }
            assert!(
                Instant::now() < deadline,
                "{what}: the agent did not render the record within 30 s\n{}",
                self.file("agent.log")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn agent_template_renders_the_record_and_follows_a_renewal() {
    let (e, _) = Env::with_cert("agent", "web");
    let other = domain("other");
    e.issue("other", &[&other], &[]).ok();
    let policy = reader_policy(&e, "web");
    let token = vault_token(&unique("reader"), &[&policy]);

    let (first, v1) = vault_read(&e.cert_path("web")).unwrap();
    let mut agent = Agent::start(&e.cert_path("web"), &token);
    agent.wait_for(
        first["fullchain"].as_str().unwrap(),
        first["privkey"].as_str().unwrap(),
        "first render",
    );
    let mode = |name: &str| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(agent.dir.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("privkey.pem"), 0o600, "the key file is private");
    assert!(key_matches(
        &agent.file("privkey.pem"),
        &agent.file("fullchain.pem")
    ));

    e.run(&["renew", "--force", "web"]).ok();
    let (second, v2) = vault_read(&e.cert_path("web")).unwrap();
    assert!(v2 > v1);
    assert_ne!(second["serial"], first["serial"]);
    assert_ne!(second["privkey"], first["privkey"], "a new key");
    agent.wait_for(
        second["fullchain"].as_str().unwrap(),
        second["privkey"].as_str().unwrap(),
        "after renew --force",
    );
    assert!(key_matches(
        &agent.file("privkey.pem"),
        &agent.file("fullchain.pem")
    ));
    drop(agent);

    // Least privilege from outside: the same token reads its record and nothing else.
    let get = |path: &str| vault_call(&token, Method::GET, &format!("secret/data/{path}"), None);
    assert_eq!(get(&e.cert_path("web")).0, 200);
    assert_eq!(get(&e.cert_path("other")).0, 403, "another certificate");
    assert_eq!(get(&format!("{}/accounts/default", e.prefix)).0, 403);
    assert_eq!(get(&format!("{}/specs/web", e.prefix)).0, 403);
    let list = vault_call(
        &token,
        Method::from_bytes(b"LIST").unwrap(),
        &format!("secret/metadata/{}/certs", e.prefix),
        None,
    );
    assert_eq!(list.0, 403, "cannot list the records");
    vault_call(&token, Method::POST, "auth/token/revoke-self", None);
}

// ---- deploy/consumers: External Secrets Operator and the Vault CSI provider ----

const ESO_API: &str = "external-secrets.io/v1";
const CSI_API: &str = "secrets-store.csi.x-k8s.io/v1";
/// The record the manifests read, with the default mount and prefix (README "What is stored
/// in Vault": `<mount>/data/<prefix>/certs/<NAME>`).
const RECORD_PATH: &str = "secret/data/certvault/certs/web";
/// The role the manifests log in with: bound to `certvault policy reader web` (README).
const READER_ROLE: &str = "certvault-reader-web";

/// Every YAML document of a file as JSON (PyYAML in the test bed's venv); the CSI provider's
/// `objects` parameter (YAML in a string) is parsed as well.
fn yaml_docs(path: &Path) -> Vec<Value> {
    let script = r#"
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]
for d in docs:
    p = (d.get('spec') or {}).get('parameters') or {}
    if d.get('kind') == 'SecretProviderClass' and isinstance(p.get('objects'), str):
        p['objects'] = yaml.safe_load(p['objects'])
print(json.dumps(docs))
"#;
    let out = output_ok(
        Command::new(env("CERTVAULT_TEST_PYTHON"))
            .args(["-c", script])
            .arg(path),
        &format!("yaml of {}", path.display()),
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The one document of `kind`, of API version `api`.
fn the_one<'a>(docs: &'a [Value], kind: &str, api: &str) -> Result<&'a Value, String> {
    let all = of_kind(docs, kind);
    need(all.len() == 1, format!("exactly one {kind}"))?;
    let doc = all[0];
    need(
        doc["apiVersion"] == api,
        format!("{kind} apiVersion {}", doc["apiVersion"]),
    )?;
    Ok(doc)
}

fn need(ok: bool, what: impl std::fmt::Display) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

fn text<'a>(v: &'a Value, what: &str) -> Result<&'a str, String> {
    v.as_str()
        .ok_or_else(|| format!("{what}: not a string: {v}"))
}

/// What one consumer reads and how it logs in.
#[derive(Debug)]
struct Reads {
    what: String,
    namespace: String,
    service_account: String,
    auth_mount: String,
    role: String,
    /// The full KV v2 API path of the record.
    path: String,
    /// Every record field read.
    fields: BTreeSet<String>,
    /// Key of the produced TLS Secret -> the record field it holds.
    secret: BTreeMap<String, String>,
}

fn service_account_exists(docs: &[Value], namespace: &str, name: &str) -> Result<(), String> {
    need(
        of_kind(docs, "ServiceAccount")
            .iter()
            .any(|a| a["metadata"]["name"] == name && a["metadata"]["namespace"] == namespace),
        format!("no ServiceAccount {namespace}/{name}"),
    )
}

/// The External Secrets manifests: one SecretStore, ExternalSecrets making TLS Secrets.
fn eso_reads(docs: &[Value]) -> Result<Vec<Reads>, String> {
    let store = the_one(docs, "SecretStore", ESO_API)?;
    let namespace = text(&store["metadata"]["namespace"], "SecretStore namespace")?;
    let vault = &store["spec"]["provider"]["vault"];
    need(vault["version"] == "v2", "SecretStore: KV version v2")?;
    let mount = text(&vault["path"], "SecretStore path")?;
    let k8s = &vault["auth"]["kubernetes"];
    let sa = text(&k8s["serviceAccountRef"]["name"], "serviceAccountRef")?;
    service_account_exists(docs, namespace, sa)?;
    let externals = of_kind(docs, "ExternalSecret");
    need(!externals.is_empty(), "no ExternalSecret")?;
    let mut out = Vec::new();
    for es in externals {
        let name = text(&es["metadata"]["name"], "ExternalSecret name")?;
        need(
            es["apiVersion"] == ESO_API,
            format!("{name}: apiVersion {}", es["apiVersion"]),
        )?;
        need(
            es["metadata"]["namespace"] == namespace,
            format!("{name}: namespace"),
        )?;
        let spec = &es["spec"];
        need(
            spec["secretStoreRef"]["kind"] == "SecretStore"
                && spec["secretStoreRef"]["name"] == store["metadata"]["name"],
            format!("{name}: secretStoreRef"),
        )?;
        let template = &spec["target"]["template"];
        need(
            template["type"] == "kubernetes.io/tls",
            format!("{name}: target type"),
        )?;
        let mut fetched = BTreeMap::new();
        let mut paths = BTreeSet::new();
        for d in spec["data"].as_array().ok_or(format!("{name}: no data"))? {
            let key = text(&d["remoteRef"]["key"], "remoteRef.key")?;
            paths.insert(format!("{mount}/data/{key}"));
            fetched.insert(
                text(&d["secretKey"], "secretKey")?.to_string(),
                text(&d["remoteRef"]["property"], "remoteRef.property")?.to_string(),
            );
        }
        need(
            paths.len() == 1,
            format!("{name}: one record, got {paths:?}"),
        )?;
        let secret = match template["data"].as_object() {
            None => fetched.clone(),
            Some(t) => t
                .iter()
                .map(|(k, v)| {
                    let v = text(v, "template data")?;
                    let var = v
                        .trim()
                        .strip_prefix("{{")
                        .and_then(|s| s.strip_suffix("}}"))
                        .and_then(|s| s.trim().strip_prefix('.'))
                        .ok_or(format!("{name}: template {k}: {v}"))?;
                    let field = fetched
                        .get(var)
                        .ok_or(format!("{name}: template {k} uses unknown {var}"))?;
                    Ok((k.clone(), field.clone()))
                })
                .collect::<Result<_, String>>()?,
        };
        out.push(Reads {
            what: format!("ExternalSecret {name}"),
            namespace: namespace.to_string(),
            service_account: sa.to_string(),
            auth_mount: text(&k8s["mountPath"], "mountPath")?.to_string(),
            role: text(&k8s["role"], "role")?.to_string(),
            path: paths.into_iter().next().unwrap(),
            fields: fetched.into_values().collect(),
            secret,
        });
    }
    Ok(out)
}

/// The CSI manifests: one vault SecretProviderClass syncing a TLS Secret, a Pod mounting it.
fn csi_reads(docs: &[Value]) -> Result<Vec<Reads>, String> {
    let spc = the_one(docs, "SecretProviderClass", CSI_API)?;
    let name = text(&spc["metadata"]["name"], "SecretProviderClass name")?;
    let namespace = text(&spc["metadata"]["namespace"], "namespace")?;
    need(spc["spec"]["provider"] == "vault", "provider vault")?;
    let params = &spc["spec"]["parameters"];
    let mut objects = BTreeMap::new();
    for o in params["objects"].as_array().ok_or("no objects")? {
        objects.insert(
            text(&o["objectName"], "objectName")?,
            (
                text(&o["secretPath"], "secretPath")?,
                text(&o["secretKey"], "secretKey")?,
            ),
        );
    }
    let paths: BTreeSet<&str> = objects.values().map(|(p, _)| *p).collect();
    need(paths.len() == 1, format!("one record, got {paths:?}"))?;
    let synced = spc["spec"]["secretObjects"]
        .as_array()
        .ok_or("no secretObjects")?;
    need(synced.len() == 1, "one synced Secret")?;
    need(
        synced[0]["type"] == "kubernetes.io/tls",
        "synced Secret type kubernetes.io/tls",
    )?;
    let mut secret = BTreeMap::new();
    for d in synced[0]["data"]
        .as_array()
        .ok_or("no secretObjects data")?
    {
        let object = text(&d["objectName"], "objectName")?;
        let (_, field) = objects
            .get(object)
            .ok_or(format!("secretObjects names unknown object {object}"))?;
        secret.insert(text(&d["key"], "key")?.to_string(), field.to_string());
    }
    let pod = of_kind(docs, "Pod")
        .into_iter()
        .find(|p| {
            p["spec"]["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|v| {
                    v["csi"]["driver"] == "secrets-store.csi.k8s.io"
                        && v["csi"]["volumeAttributes"]["secretProviderClass"] == name
                })
        })
        .ok_or("no Pod mounts the SecretProviderClass")?;
    need(pod["metadata"]["namespace"] == namespace, "Pod namespace")?;
    let sa = text(&pod["spec"]["serviceAccountName"], "serviceAccountName")?;
    service_account_exists(docs, namespace, sa)?;
    Ok(vec![Reads {
        what: format!("SecretProviderClass {name}"),
        namespace: namespace.to_string(),
        service_account: sa.to_string(),
        auth_mount: params["vaultKubernetesMountPath"]
            .as_str()
            .unwrap_or("kubernetes")
            .to_string(),
        role: text(&params["roleName"], "roleName")?.to_string(),
        path: paths.into_iter().next().unwrap().to_string(),
        fields: objects.values().map(|(_, f)| f.to_string()).collect(),
        secret,
    }])
}

/// What a consumer reads agrees with the README and with a real record (read as the reader).
fn check_against(r: &Reads, record: &Value) -> Result<(), String> {
    let w = &r.what;
    need(r.role == READER_ROLE, format!("{w}: role {}", r.role))?;
    need(r.auth_mount == "kubernetes", format!("{w}: auth mount"))?;
    need(r.path == RECORD_PATH, format!("{w}: path {}", r.path))?;
    for f in &r.fields {
        need(
            record[f.as_str()].is_string(),
            format!("{w}: the record has no field {f:?}"),
        )?;
    }
    need(
        r.secret.keys().collect::<Vec<_>>() == ["tls.crt", "tls.key"],
        format!("{w}: TLS Secret keys {:?}", r.secret.keys()),
    )?;
    need(
        record[r.secret["tls.crt"].as_str()] == record["fullchain"],
        format!("{w}: tls.crt is not the full chain"),
    )?;
    need(
        record[r.secret["tls.key"].as_str()] == record["privkey"],
        format!("{w}: tls.key is not the private key"),
    )
}

/// Log in as the manifests would (Kubernetes auth, their service account and role bound to
/// the printed reader policy) and return the token.
fn login_as(r: &Reads, policy: &str) -> String {
    let mount = unique("k8s-reader");
    let key = rsa_key();
    let now = now_secs();
    let jwt = sign_jwt(
        &key,
        &json!({
            "iss": "kubernetes/serviceaccount",
            "sub": format!("system:serviceaccount:{}:{}", r.namespace, r.service_account),
            "kubernetes.io/serviceaccount/namespace": r.namespace,
            "kubernetes.io/serviceaccount/service-account.name": r.service_account,
            "kubernetes.io/serviceaccount/service-account.uid": "uid-certvault",
            "iat": now, "exp": now + 600
        }),
    );
    let api = token_review_server(jwt.clone(), &r.namespace, &r.service_account);
    vault_enable_auth(&mount, "kubernetes");
    vault_root(
        Method::POST,
        &format!("auth/{mount}/config"),
        // Vault outside the cluster: the API's CA is given (unused over plain HTTP).
        Some(&json!({ "kubernetes_host": api, "kubernetes_ca_cert": self_signed_pem() })),
    );
    vault_root(
        Method::POST,
        &format!("auth/{mount}/role/{}", r.role),
        Some(&json!({
            "bound_service_account_names": [r.service_account],
            "bound_service_account_namespaces": [r.namespace],
            "token_policies": [policy],
            "token_ttl": "15m",
        })),
    );
    let (status, rsp) = vault_call(
        "",
        Method::POST,
        &format!("auth/{mount}/login"),
        Some(&json!({ "role": r.role, "jwt": jwt })),
    );
    assert_eq!(status, 200, "{}: login {rsp}", r.what);
    rsp["auth"]["client_token"].as_str().unwrap().to_string()
}

#[test]
fn consumer_manifests_map_the_record_and_log_in_as_the_reader() {
    let dir = repo().join("deploy/consumers");
    let eso_file = dir.join("external-secrets.yaml");
    let csi_file = dir.join("vault-csi.yaml");
    let eso = yaml_docs(&eso_file);
    let csi = yaml_docs(&csi_file);

    // The built-in kinds against the Kubernetes API schemas (the CRDs are checked below).
    let tmp = tempdir("consumers");
    let builtin: Vec<&Value> = eso
        .iter()
        .chain(&csi)
        .filter(|d| d["apiVersion"] == "v1")
        .collect();
    assert!(
        of_kind(&csi, "Pod").len() == 1 && builtin.len() == 3,
        "{builtin:?}"
    );
    let file = tmp.join("builtin.yaml");
    let stream: Vec<String> = builtin.iter().map(|d| d.to_string()).collect();
    std::fs::write(&file, stream.join("\n---\n")).unwrap();
    let out = Command::new(env("KUBERNETES_VALIDATE"))
        .arg("--strict")
        .arg(&file)
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert_eq!(
        all.matches(" passed for resource ").count(),
        builtin.len(),
        "{all}"
    );

    // The record they read, issued with --layout kubernetes; the production defaults'
    // reader policy names the manifests' path.
    let e = Env::ready("consumers");
    let domain = domain("k8s");
    e.issue("web", &[&domain], &["--layout", "kubernetes"]).ok();
    let default_policy = Command::new(BIN)
        .args(["policy", "reader", "web"])
        .env_clear()
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&default_policy.stdout)
            .contains(&format!("path \"{RECORD_PATH}\"")),
        "{}",
        String::from_utf8_lossy(&default_policy.stdout)
    );
    let policy = reader_policy(&e, "web");

    let mut reads = eso_reads(&eso).unwrap();
    reads.extend(csi_reads(&csi).unwrap());
    assert_eq!(reads.len(), 3, "{reads:?}");
    let here = format!("secret/data/{}/", e.prefix);
    for r in &reads {
        // Read as the manifests would, from this test's prefix.
        let token = login_as(r, &policy);
        let path = r.path.replacen("secret/data/certvault/", &here, 1);
        let (status, body) = vault_call(&token, Method::GET, &path, None);
        assert_eq!(status, 200, "{}: {body}", r.what);
        let record = &body["data"]["data"];
        check_against(r, record).unwrap();
        let account = format!("{here}accounts/default");
        assert_eq!(
            vault_call(&token, Method::GET, &account, None).0,
            403,
            "{}: the role reads nothing else",
            r.what
        );
        vault_call(&token, Method::POST, "auth/token/revoke-self", None);
    }

    // The checks reject broken copies.
    let (record, _) = vault_read(&e.cert_path("web")).unwrap();
    let broken = |file: &Path, from: &str, to: &str, csi: bool| -> Result<(), String> {
        let original = std::fs::read_to_string(file).unwrap();
        assert!(original.contains(from), "{from}");
        let copy = tmp.join("broken.yaml");
        std::fs::write(&copy, original.replacen(from, to, 1)).unwrap();
        let docs = yaml_docs(&copy);
        let reads = if csi {
            csi_reads(&docs)?
        } else {
            eso_reads(&docs)?
        };
        reads.iter().try_for_each(|r| check_against(r, &record))
    };
    for (file, from, to, csi) in [
        (&eso_file, "property: tls.crt", "property: tls.cert", false),
        (&eso_file, "property: privkey", "property: cert", false),
        (
            &eso_file,
            "tls.key: \"{{ .privkey }}\"",
            "tls.key: \"{{ .key }}\"",
            false,
        ),
        (
            &eso_file,
            "apiVersion: external-secrets.io/v1\n",
            "apiVersion: external-secrets.io/v1alpha1\n",
            false,
        ),
        (
            &eso_file,
            "key: certvault/certs/web",
            "key: certvault/web",
            false,
        ),
        (&eso_file, "version: v2", "version: v1", false),
        (
            &eso_file,
            "role: certvault-reader-web",
            "role: certvault-renew",
            false,
        ),
        (&eso_file, "type: kubernetes.io/tls", "type: Opaque", false),
        (&csi_file, "secretKey: tls.key", "secretKey: tls_key", true),
        (&csi_file, "secretKey: tls.crt", "secretKey: cert", true),
        (
            &csi_file,
            "secretPath: secret/data/",
            "secretPath: secret/",
            true,
        ),
        (
            &csi_file,
            "apiVersion: secrets-store.csi.x-k8s.io/v1\n",
            "apiVersion: secrets-store.csi.x-k8s.io/v1alpha1\n",
            true,
        ),
        (
            &csi_file,
            "roleName: certvault-reader-web",
            "roleName: web",
            true,
        ),
        (
            &csi_file,
            "secretProviderClass: web-tls",
            "secretProviderClass: web",
            true,
        ),
        (
            &csi_file,
            "serviceAccountName: web",
            "serviceAccountName: default",
            true,
        ),
    ] {
        assert!(
            broken(file, from, to, csi).is_err(),
            "{}: {from} -> {to} was accepted",
            file.display()
        );
    }
}

// ---- renew --jitter ----

#[test]
fn renew_jitter_logs_a_delay_within_its_bound_and_rejects_a_bad_duration() {
    let e = Env::ready("jitter");
    let started = Instant::now();
    let run = e.run(&["renew", "--jitter", "2s"]).ok();
    let elapsed = started.elapsed();
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("(--jitter)"))
        .unwrap_or_else(|| panic!("no jitter line:\n{}", run.stderr));
    let millis: u64 = line
        .split("waiting ")
        .nth(1)
        .and_then(|s| s.split(" ms").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no delay in {line:?}"));
    assert!(millis <= 2000, "{line}");
    assert!(
        elapsed >= Duration::from_millis(millis),
        "waited {elapsed:?}, logged {millis} ms"
    );
    // No jitter: no wait, no line.
    let run = e.run(&["renew", "--jitter", "0"]).ok();
    assert!(!run.stderr.contains("(--jitter)"), "{}", run.stderr);

    for bad in [
        e.run(&["renew", "--jitter", "soon"]),
        e.with_var("CERTVAULT_JITTER", "soon").run(&["renew"]),
    ] {
        fails_with(&bad, 2, "write a duration");
    }
}
