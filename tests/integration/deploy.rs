//! The deploy files, checked offline with real validators and against the test bed:
//! compose.yaml (Compose specification schema; same settings, ports and commands as the test
//! bed and scripts/demo; its hooks run against the test bed's challtestsrv with the BusyBox the
//! image's shell target carries), deploy/kubernetes (Kubernetes API schemas with
//! kubernetes-validate --strict, structure, vault-setup.sh against OpenBao and a login with the
//! manifests' settings), deploy/prometheus (promtool), LICENSE.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::harness::*;

fn run_cmd(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("run a validator");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every YAML document of a file, as JSON (PyYAML in the test bed's venv).
fn yaml_docs(path: &Path) -> Vec<Value> {
    let run = run_cmd(Command::new(env("CERTVAULT_TEST_PYTHON")).args([
        "-c",
        "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        &path.display().to_string(),
    ]))
    .ok();
    serde_json::from_str(&run.stdout).unwrap()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A copy of the repository file `rel` in `dir`, under its own name, with `from` (which
/// must occur) replaced by `to`: a file a validator must reject.
fn broken_copy(dir: &std::path::Path, rel: &str, from: &str, to: &str) -> std::path::PathBuf {
    let text = read(rel);
    assert!(text.contains(from), "{rel}: no {from:?} to break");
    let path = dir.join(std::path::Path::new(rel).file_name().unwrap());
    std::fs::write(&path, text.replace(from, to)).unwrap();
    path
}

/// Every `.rs` file below `dir`, concatenated.
fn read_tree(dir: &std::path::Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.push_str(&read_tree(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    out
}

/// The environment variables certvault reads (`env = "..."` in its clap arguments, which
/// live in src/cli/ and in each DNS provider's module).
fn certvault_env_names() -> BTreeSet<String> {
    let src = read_tree(&repo().join("src"));
    let names: BTreeSet<String> = src
        .split("env = \"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect();
    assert!(
        names.contains("VAULT_ADDR") && names.len() > 20,
        "{names:?}"
    );
    names
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// `"host:port"` or a URL -> port.
fn port_of(s: &str) -> u16 {
    let hostport = s.split("://").last().unwrap().split('/').next().unwrap();
    hostport.rsplit(':').next().unwrap().parse().unwrap()
}

/// For each certvault invocation in scripts/demo (`$cv SUBCOMMAND ...`, with `\` continuation
/// lines): subcommand -> the sets of flags it is run with.
fn demo_invocations() -> BTreeMap<String, Vec<BTreeSet<String>>> {
    let demo = read("scripts/demo").replace("\\\n", " ");
    let mut out: BTreeMap<String, Vec<BTreeSet<String>>> = BTreeMap::new();
    for line in demo.lines() {
        let Some(rest) = line.trim().strip_prefix("$cv ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let sub = words.next().unwrap().to_string();
        let flags = words
            .filter(|w| w.starts_with('-'))
            .map(|w| w.trim_matches('"').to_string())
            .collect();
        out.entry(sub).or_default().push(flags);
    }
    assert!(out.len() >= 4, "{out:?}");
    out
}

/// A directory of BusyBox applet links to the host's static BusyBox (the file the image's
/// shell target carries): PATH for running compose.yaml's shell commands here.
fn busybox_path() -> TempDir {
    let dir = tempdir("busybox");
    run_cmd(Command::new("/bin/busybox").args(["--install", "-s", &dir.display().to_string()]))
        .ok();
    assert!(dir.join("wget").exists() && dir.join("sh").exists());
    dir
}

/// Run a compose.yaml shell command here: `$$` unescaped, service names replaced by the test
/// bed's addresses.
fn run_compose_shell(path: &Path, command: &str, vars: &[(&str, &str)]) -> Run {
    let challtestsrv = env("CERTVAULT_TEST_CHALLTESTSRV");
    let directory = env("CERTVAULT_TEST_DIRECTORY");
    let pebble = directory.trim_end_matches("/dir");
    let cmd = command
        .replace("$$", "$")
        .replace("http://challtestsrv:8055", &challtestsrv)
        .replace("https://pebble:14000", pebble);
    let mut c = Command::new(path.join("sh"));
    c.arg("-c").arg(&cmd).env_clear().env("PATH", path);
    for (k, v) in vars {
        c.env(k, v);
    }
    run_cmd(&mut c)
}

#[test]
fn compose_file_is_valid_and_agrees_with_the_test_bed() {
    let compose = repo().join("compose.yaml");
    run_cmd(Command::new(env("CHECK_JSONSCHEMA")).args([
        "--builtin-schema",
        "vendor.compose-spec",
        &compose.display().to_string(),
    ]))
    .ok();
    // The validator rejects what the specification does not allow.
    let dir = tempdir("compose");
    let bad = broken_copy(
        &dir,
        "compose.yaml",
        "\n  read_only: true\n",
        "\n  read_onyl: true\n",
    );
    let rejected = run_cmd(Command::new(env("CHECK_JSONSCHEMA")).args([
        "--builtin-schema",
        "vendor.compose-spec",
        &bad.display().to_string(),
    ]));
    assert_ne!(rejected.code, 0, "{}", rejected.all());
    assert_contains(&rejected.all(), "read_onyl");

    let doc = yaml_docs(&compose).remove(0);
    let services = doc["services"].as_object().unwrap();
    let names = certvault_env_names();
    let dockerfile = read("docker/Dockerfile");
    let demo = demo_invocations();

    // OpenBao: the test bed's port, root token and version.
    let bao = &services["openbao"];
    let bao_cmd = strs(&bao["command"]);
    assert!(bao_cmd.contains(&"-dev".to_string()), "{bao_cmd:?}");
    let listen = bao_cmd
        .iter()
        .find_map(|a| a.strip_prefix("-dev-listen-address="))
        .unwrap();
    assert_eq!(port_of(listen), port_of(&env("VAULT_ADDR")));
    assert!(bao_cmd.contains(&format!("-dev-root-token-id={}", env("VAULT_TOKEN"))));
    let version = run_cmd(Command::new(env("BAO_BIN")).arg("version")).ok();
    let tag = bao["image"].as_str().unwrap().rsplit(':').next().unwrap();
    assert!(
        version.stdout.starts_with(&format!("OpenBao v{tag} ")),
        "image tag {tag}, test bed {}",
        version.stdout
    );
    assert!(bao["healthcheck"]["test"].is_array());

    // challtestsrv: the test bed's flags (scripts/testbed) and ports.
    let testbed = read("scripts/testbed");
    let start = testbed
        .find("start_service challtestsrv pebble-challtestsrv")
        .unwrap();
    let bed_flags: BTreeSet<&str> = testbed[start..]
        .split("\n\n")
        .next()
        .unwrap()
        .split_whitespace()
        .filter(|w| w.starts_with('-'))
        .collect();
    let chall = strs(&services["challtestsrv"]["command"]);
    let chall_flags: BTreeSet<&str> = chall
        .iter()
        .map(String::as_str)
        .filter(|w| w.starts_with('-'))
        .collect();
    assert_eq!(chall_flags, bed_flags);
    let flag_value = |args: &[String], flag: &str| {
        let i = args.iter().position(|a| a == flag).unwrap();
        args[i + 1].clone()
    };
    assert_eq!(
        port_of(&flag_value(&chall, "-dns01")),
        port_of(&env("CERTVAULT_TEST_DNS"))
    );
    assert_eq!(
        port_of(&flag_value(&chall, "-management")),
        port_of(&env("CERTVAULT_TEST_CHALLTESTSRV"))
    );

    // Pebble resolves through challtestsrv, as in the test bed; same ACME port.
    let pebble = &services["pebble"];
    let pebble_cmd = strs(&pebble["command"]);
    let dns = flag_value(&pebble_cmd, "-dnsserver");
    assert_eq!(
        dns,
        format!("challtestsrv:{}", port_of(&env("CERTVAULT_TEST_DNS")))
    );
    assert_eq!(pebble["environment"]["PEBBLE_VA_NOSLEEP"], "1");
    let pebble_ports: Vec<String> = strs(&pebble["ports"]);
    assert!(pebble_ports.contains(&format!(
        "127.0.0.1:{0}:{0}",
        port_of(&env("CERTVAULT_TEST_DIRECTORY"))
    )));

    // The certvault services: the image's shell target, read-only, settings certvault reads.
    let certvault: BTreeMap<&String, &Value> = services
        .iter()
        .filter(|(_, s)| s["build"]["dockerfile"] == "docker/Dockerfile")
        .collect();
    let keys: Vec<&str> = certvault.keys().map(|k| k.as_str()).collect();
    assert_eq!(keys, ["acme-ready", "init", "issue", "list", "renew"]);
    assert!(dockerfile.contains(" AS shell\n"));
    let ca_pem = doc["configs"]["pebble-minica"]["content"].as_str().unwrap();
    assert_eq!(pem_ders(ca_pem).len(), 1);
    for (name, svc) in &certvault {
        assert_eq!(svc["build"]["target"], "shell", "{name}");
        assert_eq!(svc["read_only"], true, "{name}");
        let vars = svc["environment"].as_object().unwrap();
        for k in vars.keys() {
            assert!(names.contains(k), "{name}: certvault does not read {k}");
        }
        assert_eq!(port_of(vars["VAULT_ADDR"].as_str().unwrap()), 8200);
        assert_eq!(vars["VAULT_TOKEN"], env("VAULT_TOKEN"));
        let ca = vars["CERTVAULT_ACME_CA_CERT"].as_str().unwrap();
        assert_eq!(svc["configs"][0]["target"], ca, "{name}");
        assert_eq!(svc["configs"][0]["source"], "pebble-minica", "{name}");
    }

    // Each certvault command is one scripts/demo runs, with the same flags.
    for name in ["init", "issue", "renew", "list"] {
        let args = strs(&certvault[&name.to_string()]["command"]);
        let flags: BTreeSet<String> = args
            .iter()
            .filter(|a| a.starts_with('-'))
            .cloned()
            .collect();
        let runs = demo
            .get(&args[0])
            .unwrap_or_else(|| panic!("scripts/demo never runs `{}`", args[0]));
        assert!(
            runs.contains(&flags),
            "{name}: flags {flags:?}, scripts/demo: {runs:?}"
        );
    }
    let init = strs(&certvault[&"init".to_string()]["command"]);
    assert_eq!(
        port_of(&flag_value(&init, "--directory")),
        port_of(&env("CERTVAULT_TEST_DIRECTORY"))
    );

    // One-shot order: init -> issue -> renew -> list, after OpenBao is healthy and the ACME
    // side answers; every service_healthy dependency has a healthcheck.
    let cond = |svc: &str, dep: &str| services[svc]["depends_on"][dep]["condition"].clone();
    assert_eq!(cond("init", "openbao"), "service_healthy");
    assert_eq!(cond("init", "acme-ready"), "service_completed_successfully");
    assert_eq!(cond("issue", "init"), "service_completed_successfully");
    assert_eq!(cond("renew", "issue"), "service_completed_successfully");
    assert_eq!(cond("list", "renew"), "service_completed_successfully");
    for (name, svc) in services {
        for (dep, c) in svc["depends_on"].as_object().into_iter().flatten() {
            if c["condition"] == "service_healthy" {
                assert!(
                    services[dep]["healthcheck"].is_object(),
                    "{name} waits for {dep}'s health, which has no healthcheck"
                );
            }
        }
    }

    // The shell commands work with the image's BusyBox against the test bed.
    let bb = busybox_path();
    let ready = strs(&services["acme-ready"]["command"]);
    assert_eq!(strs(&services["acme-ready"]["entrypoint"]), ["sh", "-c"]);
    run_compose_shell(&bb, &ready[0], &[]).ok();

    let issue = strs(&certvault[&"issue".to_string()]["command"]);
    let auth = flag_value(&issue, "--auth-hook");
    let cleanup = flag_value(&issue, "--cleanup-hook");
    let domain = domain("compose");
    let txt = format!("_acme-challenge.{domain}.");
    let value = unique("token-value");
    let vars = [
        ("CERTBOT_DOMAIN", domain.as_str()),
        ("CERTBOT_VALIDATION", value.as_str()),
    ];
    run_compose_shell(&bb, &auth, &vars).ok();
    assert_eq!(dig_txt(&env("CERTVAULT_TEST_DNS"), &txt), [value.as_str()]);
    run_compose_shell(&bb, &cleanup, &vars).ok();
    assert!(dig_txt(&env("CERTVAULT_TEST_DNS"), &txt).is_empty());
    std::fs::remove_dir_all(&bb).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The manifests of deploy/kubernetes, by kind (the kustomization's resources).
fn manifests() -> (Value, Vec<Value>) {
    let dir = repo().join("deploy/kubernetes");
    let kustomization = yaml_docs(&dir.join("kustomization.yaml")).remove(0);
    let listed: BTreeSet<String> = strs(&kustomization["resources"]).into_iter().collect();
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    assert_eq!(listed, present, "kustomization.yaml lists every manifest");
    let docs = listed
        .iter()
        .flat_map(|f| yaml_docs(&dir.join(f)))
        .collect();
    (kustomization, docs)
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The restricted pod settings both workloads share.
#[track_caller]
fn assert_locked_down(pod: &Value, what: &str) {
    assert_eq!(pod["restartPolicy"], "Never", "{what}");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{what}");
    assert_eq!(pod["securityContext"]["runAsUser"], 65532, "{what}");
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
        "{what}"
    );
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1, "{what}");
    let c = &containers[0];
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true, "{what}");
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}");
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{what}");
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{what}");
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{what}");
    assert!(c["resources"]["requests"]["memory"].is_string(), "{what}");
    assert!(c["resources"]["limits"]["memory"].is_string(), "{what}");
}

/// The container's environment: the ConfigMap it reads plus its own `env`.
fn container_env(docs: &[Value], pod: &Value) -> BTreeMap<String, String> {
    let c = &pod["containers"][0];
    let mut out = BTreeMap::new();
    for from in c["envFrom"].as_array().into_iter().flatten() {
        let name = &from["configMapRef"]["name"];
        let cm = of_kind(docs, "ConfigMap")
            .into_iter()
            .find(|m| &m["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no ConfigMap {name}"));
        for (k, v) in cm["data"].as_object().unwrap() {
            out.insert(k.clone(), v.as_str().unwrap().to_string());
        }
    }
    for e in c["env"].as_array().into_iter().flatten() {
        out.insert(
            e["name"].as_str().unwrap().to_string(),
            e["value"].as_str().unwrap().to_string(),
        );
    }
    out
}

#[test]
fn kubernetes_manifests_validate_and_are_locked_down() {
    let dir = repo().join("deploy/kubernetes");
    let (kustomization, docs) = manifests();
    let files: Vec<String> = strs(&kustomization["resources"])
        .iter()
        .map(|f| dir.join(f).display().to_string())
        .collect();
    let run = run_cmd(
        Command::new(env("KUBERNETES_VALIDATE"))
            .arg("--strict")
            .args(&files),
    )
    .ok();
    assert_eq!(
        run.all().matches(" passed for resource ").count(),
        docs.len(),
        "{}",
        run.all()
    );
    // --strict rejects a field the API does not have.
    let tmp = tempdir("k8s");
    let bad = broken_copy(
        &tmp,
        "deploy/kubernetes/cronjob.yaml",
        "concurrencyPolicy:",
        "concurrencyPolcy:",
    );
    let rejected = run_cmd(
        Command::new(env("KUBERNETES_VALIDATE"))
            .arg("--strict")
            .arg(&bad),
    );
    assert_ne!(rejected.code, 0, "{}", rejected.all());
    std::fs::remove_dir_all(&tmp).unwrap();

    let names = certvault_env_names();
    let accounts: Vec<&Value> = of_kind(&docs, "ServiceAccount")
        .into_iter()
        .map(|a| &a["metadata"]["name"])
        .collect();
    let image_name = kustomization["images"][0]["name"].as_str().unwrap();

    let cronjobs = of_kind(&docs, "CronJob");
    assert_eq!(cronjobs.len(), 1);
    let cj = &cronjobs[0]["spec"];
    assert_eq!(cj["concurrencyPolicy"], "Forbid");
    assert!(cj["startingDeadlineSeconds"].as_u64().unwrap() > 0);
    let job = &cj["jobTemplate"]["spec"];
    assert!(job["activeDeadlineSeconds"].as_u64().unwrap() > 0);
    assert!(job["backoffLimit"].is_u64());
    assert!(job["ttlSecondsAfterFinished"].as_u64().unwrap() > 0);
    let pod = &job["template"]["spec"];
    assert_locked_down(pod, "CronJob");
    assert!(accounts.contains(&&pod["serviceAccountName"]));
    let c = &pod["containers"][0];
    assert_eq!(strs(&c["args"]), ["renew"]);
    assert_eq!(
        c["image"].as_str().unwrap().split(':').next(),
        Some(image_name)
    );
    let renew_env = container_env(&docs, pod);
    assert_eq!(renew_env["CERTVAULT_AUTH"], "kubernetes");
    assert_eq!(renew_env["CERTVAULT_AUTH_ROLE"], "certvault-renew");
    assert_eq!(renew_env["CERTVAULT_LOG_FORMAT"], "json");

    let jobs = of_kind(&docs, "Job");
    assert_eq!(jobs.len(), 1);
    let init = &jobs[0]["spec"];
    assert!(init["activeDeadlineSeconds"].as_u64().unwrap() > 0);
    assert!(init["ttlSecondsAfterFinished"].as_u64().unwrap() > 0);
    let init_pod = &init["template"]["spec"];
    assert_locked_down(init_pod, "init Job");
    assert!(accounts.contains(&&init_pod["serviceAccountName"]));
    assert_ne!(init_pod["serviceAccountName"], pod["serviceAccountName"]);
    assert_eq!(strs(&init_pod["containers"][0]["args"])[0], "init");
    let init_env = container_env(&docs, init_pod);
    assert_eq!(init_env["CERTVAULT_AUTH_ROLE"], "certvault-admin");

    for (what, vars) in [("CronJob", &renew_env), ("init Job", &init_env)] {
        for k in vars.keys() {
            assert!(names.contains(k), "{what}: certvault does not read {k}");
        }
    }
    // The commented-out Pushgateway setting is one certvault reads, too.
    assert!(names.contains("CERTVAULT_PUSHGATEWAY"));
    assert!(read("deploy/kubernetes/configmap.yaml").contains("# CERTVAULT_PUSHGATEWAY:"));
}

/// vault-setup.sh against the test bed's OpenBao, then certvault logs in with the manifests'
/// settings through the Kubernetes auth method it configured: the init Job's account may
/// init, the CronJob's may renew and may not init.
#[test]
fn vault_setup_script_lets_the_manifests_log_in() {
    let (kustomization, docs) = manifests();
    let namespace = kustomization["namespace"].as_str().unwrap().to_string();
    let pod_of = |kind: &str| -> Value {
        let d = of_kind(&docs, kind)[0];
        if kind == "CronJob" {
            d["spec"]["jobTemplate"]["spec"]["template"]["spec"].clone()
        } else {
            d["spec"]["template"]["spec"].clone()
        }
    };
    let renew_pod = pod_of("CronJob");
    let init_pod = pod_of("Job");

    let e = Env::new("k8s-setup");
    let mount = unique("k8s-setup");
    let tag = unique("cv");
    let dir = tempdir("k8s-setup");
    let ca = dir.join("api-ca.pem");
    std::fs::write(&ca, self_signed_pem()).unwrap();

    // A service account token for `account`, and the setup pointed at an API that accepts it.
    let key = rsa_key();
    let sa_token = |account: &str| {
        let now = now_secs();
        sign_jwt(
            &key,
            &json!({
                "iss": "kubernetes/serviceaccount",
                "sub": format!("system:serviceaccount:{namespace}:{account}"),
                "kubernetes.io/serviceaccount/namespace": namespace,
                "kubernetes.io/serviceaccount/service-account.name": account,
                // The uid the test API's TokenReview answers with.
                "kubernetes.io/serviceaccount/service-account.uid": "uid-certvault",
                "iat": now, "exp": now + 600
            }),
        )
    };
    let setup = |api: &str| {
        run_cmd(
            Command::new(repo().join("deploy/kubernetes/vault-setup.sh"))
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("VAULT_ADDR", env("VAULT_ADDR"))
                .env("VAULT_TOKEN", env("VAULT_TOKEN"))
                .env("VAULT_CLI", env("BAO_BIN"))
                .env("CERTVAULT", BIN)
                .env("CERTVAULT_PREFIX", &e.prefix)
                .env("K8S_NAMESPACE", &namespace)
                .env("K8S_HOST", api)
                .env("K8S_CA_CERT", &ca)
                .env("AUTH_MOUNT", &mount)
                .env("RENEW_POLICY", format!("{tag}-renew"))
                .env("ADMIN_POLICY", format!("{tag}-admin")),
        )
        .ok()
    };
    // Run as a pod would: the manifest's environment, with the test bed's Vault and prefix,
    // this auth mount and the token as the mounted service account token file.
    let as_pod = |pod: &Value, token: &str, args: &[&str]| {
        let file = dir.join("token");
        std::fs::write(&file, token).unwrap();
        let mut k = Env::new("unused");
        k.prefix = e.prefix.clone();
        k.token = String::new();
        k.extra = container_env(&docs, pod).into_iter().collect();
        k.extra
            .retain(|(name, _)| name != "VAULT_ADDR" && name != "CERTVAULT_PREFIX");
        k.extra.extend([
            ("CERTVAULT_AUTH_MOUNT".to_string(), mount.clone()),
            ("CERTVAULT_JWT_FILE".to_string(), file.display().to_string()),
        ]);
        k.run(args)
    };

    // The token of `pod`'s service account, after the setup pointed at an API that knows
    // that account (and no other).
    let setup_for = |pod: &Value| {
        let account = pod["serviceAccountName"].as_str().unwrap();
        let token = sa_token(account);
        setup(&token_review_server(token.clone(), &namespace, account));
        token
    };
    let admin_token = setup_for(&init_pod);
    let policy = vault_root(
        reqwest::Method::GET,
        &format!("sys/policies/acl/{tag}-renew"),
        None,
    );
    let expected = Command::new(BIN)
        .args(["policy", "renew"])
        .env_clear()
        .env("CERTVAULT_PREFIX", &e.prefix)
        .output()
        .unwrap();
    assert_eq!(
        policy["data"]["policy"].as_str().unwrap().trim(),
        String::from_utf8_lossy(&expected.stdout).trim()
    );
    as_pod(
        &init_pod,
        &admin_token,
        &[
            "init",
            "--directory",
            &env("CERTVAULT_TEST_DIRECTORY"),
            "--agree-tos",
        ],
    )
    .ok();
    assert!(vault_read(&format!("{}/accounts/default", e.prefix)).is_some());

    // Run again (idempotent), now with an API that knows the CronJob's account.
    let renew_token = setup_for(&renew_pod);
    let renew = as_pod(&renew_pod, &renew_token, &["renew"]).ok();
    assert_contains(&renew.stdout, "summary: 0 renewed");
    let denied = as_pod(
        &renew_pod,
        &renew_token,
        &[
            "init",
            "--directory",
            &env("CERTVAULT_TEST_DIRECTORY"),
            "--agree-tos",
            "--force",
        ],
    );
    assert_ne!(denied.code, 0, "{}", denied.all());
    // The init Job's account is not bound to the renew role.
    let wrong = as_pod(&renew_pod, &admin_token, &["renew"]);
    assert_ne!(wrong.code, 0, "{}", wrong.all());

    for p in ["renew", "admin"] {
        vault_root(
            reqwest::Method::DELETE,
            &format!("sys/policies/acl/{tag}-{p}"),
            None,
        );
    }
    vault_root(reqwest::Method::DELETE, &format!("sys/auth/{mount}"), None);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn prometheus_rules_pass_promtool_and_name_certvault_metrics() {
    let dir = repo().join("deploy/prometheus");
    // `promtool check|test rules FILE` in `dir`.
    let promtool = |what: &str, file: &str, dir: &std::path::Path| {
        run_cmd(
            Command::new(env("PROMTOOL"))
                .args([what, "rules", file])
                .current_dir(dir),
        )
    };
    let check = promtool("check", "certvault-alerts.yml", &dir).ok();
    assert_contains(&check.all(), "SUCCESS: 4 rules found");
    let test = promtool("test", "certvault-alerts.test.yml", &dir).ok();
    assert_contains(&test.all(), "SUCCESS");

    // Every rule has a firing and a quiet case in the unit tests.
    let rules = yaml_docs(&dir.join("certvault-alerts.yml")).remove(0);
    let tests = yaml_docs(&dir.join("certvault-alerts.test.yml")).remove(0);
    let cases: Vec<&Value> = tests["tests"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_array().unwrap())
        .collect();
    let metrics_src = read("src/metrics.rs");
    for rule in rules["groups"][0]["rules"].as_array().unwrap() {
        let alert = rule["alert"].as_str().unwrap();
        let of_rule: Vec<&&Value> = cases.iter().filter(|c| c["alertname"] == alert).collect();
        assert!(
            of_rule
                .iter()
                .any(|c| !c["exp_alerts"].as_array().unwrap().is_empty()),
            "{alert}: no firing case"
        );
        assert!(
            of_rule
                .iter()
                .any(|c| c["exp_alerts"].as_array().unwrap().is_empty()),
            "{alert}: no quiet case"
        );
        // The metric the rule reads is one certvault writes.
        let expr = rule["expr"].as_str().unwrap();
        let metric = expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .find(|w| w.starts_with("certvault_"))
            .unwrap_or_else(|| panic!("{alert}: no certvault metric in {expr}"));
        assert!(
            metrics_src.contains(&format!("\"{metric}\"")),
            "{alert}: certvault writes no {metric}"
        );
    }

    // promtool does reject a broken rule.
    let tmp = tempdir("rules");
    broken_copy(
        &tmp,
        "deploy/prometheus/certvault-alerts.yml",
        "time() < 7",
        "time() <<< 7",
    );
    let bad = promtool("check", "certvault-alerts.yml", &tmp);
    assert_ne!(bad.code, 0, "{}", bad.all());
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn license_is_apache_2_everywhere() {
    let license = read("LICENSE");
    assert!(
        license.contains("Apache License\n                           Version 2.0, January 2004")
    );
    assert!(license.contains("TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION"));
    assert!(license.contains("END OF TERMS AND CONDITIONS"));
    assert!(license.len() > 10_000, "the full text");
    assert!(read("Cargo.toml").contains("\nlicense = \"Apache-2.0\"\n"));
    let dockerfile = read("docker/Dockerfile");
    assert!(dockerfile.contains("org.opencontainers.image.licenses=\"Apache-2.0\""));
    // The image's default version label follows Cargo.toml.
    assert!(
        dockerfile.contains(&format!("\nARG VERSION={}\n", env!("CARGO_PKG_VERSION"))),
        "docker/Dockerfile: ARG VERSION must be {}",
        env!("CARGO_PKG_VERSION")
    );
}

/// `patch` applied to `target` as a strategic-merge patch, in the parts the sharded component
/// uses: maps merge key by key, lists of named items (containers, env) merge by `name` (an
/// item of the same name is merged, a new one is appended), anything else is replaced, and
/// null deletes.
fn strategic_merge(target: &mut Value, patch: &Value) {
    let named = |l: &[Value]| !l.is_empty() && l.iter().all(|i| i["name"].is_string());
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match (t.get_mut(k), v) {
                    (_, Value::Null) => {
                        t.remove(k);
                    }
                    (Some(tv), _) => strategic_merge(tv, v),
                    (None, _) => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(t), Value::Array(p)) if named(t) && named(p) => {
            for item in p {
                match t.iter_mut().find(|i| i["name"] == item["name"]) {
                    Some(existing) => strategic_merge(existing, item),
                    None => t.push(item.clone()),
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// `kubernetes-validate --strict` of `doc`, written as `name` in `dir`.
fn validate_k8s(dir: &Path, name: &str, doc: &Value) -> Run {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(doc).unwrap()).unwrap();
    run_cmd(
        Command::new(env("KUBERNETES_VALIDATE"))
            .arg("--strict")
            .arg(&path),
    )
}

/// deploy/kubernetes/components/sharded applied to the CronJob (as kustomize would, with the
/// strategic-merge patch it names): an Indexed Job of N pods, each renewing part
/// JOB_COMPLETION_INDEX of N, that the API schemas accept and that stays locked down.
#[test]
fn sharded_component_makes_an_indexed_job_that_validates() {
    let (_, docs) = manifests();
    let dir = repo().join("deploy/kubernetes/components/sharded");
    let component = yaml_docs(&dir.join("kustomization.yaml")).remove(0);
    assert_eq!(component["apiVersion"], "kustomize.config.k8s.io/v1alpha1");
    assert_eq!(component["kind"], "Component");
    let text = read("deploy/kubernetes/components/sharded/kustomization.yaml");
    assert_contains(&text, "components/sharded");
    assert_contains(&text, "CERTVAULT_SHARD_COUNT");
    assert_contains(&text, "must be equal");

    // One patch, a file of this folder, aimed at the base's CronJob.
    let cronjobs = of_kind(&docs, "CronJob");
    assert_eq!(cronjobs.len(), 1);
    let cronjob = cronjobs[0];
    let patches = component["patches"].as_array().unwrap();
    assert_eq!(patches.len(), 1, "{component}");
    let target = &patches[0]["target"];
    assert_eq!(target["kind"], "CronJob");
    assert_eq!(target["name"], cronjob["metadata"]["name"]);
    assert_eq!(
        format!(
            "{}/{}",
            target["group"].as_str().unwrap(),
            target["version"].as_str().unwrap()
        ),
        cronjob["apiVersion"].as_str().unwrap()
    );
    let patch_file = dir.join(patches[0]["path"].as_str().unwrap());
    assert!(
        patch_file.is_file(),
        "{}: no such file",
        patch_file.display()
    );
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let expected: BTreeSet<String> = [
        "kustomization.yaml".to_string(),
        patches[0]["path"].as_str().unwrap().to_string(),
    ]
    .into();
    assert_eq!(files, expected, "every file of the component is used");
    let mut patch_docs = yaml_docs(&patch_file);
    assert_eq!(patch_docs.len(), 1);
    let patch = patch_docs.remove(0);
    assert_eq!(patch["apiVersion"], cronjob["apiVersion"]);
    assert_eq!(patch["kind"], "CronJob");
    assert_eq!(patch["metadata"]["name"], cronjob["metadata"]["name"]);

    let mut patched = cronjob.clone();
    strategic_merge(&mut patched, &patch);

    // The API schemas accept the result, and --strict still rejects a field it does not have.
    let tmp = tempdir("k8s-sharded");
    let run = validate_k8s(&tmp, "cronjob.yaml", &patched).ok();
    assert_eq!(
        run.all().matches(" passed for resource ").count(),
        1,
        "{}",
        run.all()
    );
    let mut bad = patched.clone();
    let spec = bad["spec"]["jobTemplate"]["spec"].as_object_mut().unwrap();
    let mode = spec.remove("completionMode").unwrap();
    spec.insert("completionMod".into(), mode);
    let rejected = validate_k8s(&tmp, "bad.yaml", &bad);
    assert_ne!(rejected.code, 0, "{}", rejected.all());
    std::fs::remove_dir_all(&tmp).unwrap();

    // An Indexed Job of N pods at once, each with part JOB_COMPLETION_INDEX of N.
    let job = &patched["spec"]["jobTemplate"]["spec"];
    assert_eq!(job["completionMode"], "Indexed");
    let completions = job["completions"].as_u64().unwrap();
    assert!(completions > 1, "{job}");
    assert_eq!(job["parallelism"].as_u64(), Some(completions), "{job}");
    let pod = &job["template"]["spec"];
    assert_locked_down(pod, "sharded CronJob");
    let containers = pod["containers"].as_array().unwrap();
    let env_names: Vec<&str> = containers[0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    let unique_names: BTreeSet<&&str> = env_names.iter().collect();
    assert_eq!(unique_names.len(), env_names.len(), "{env_names:?}");
    let vars = container_env(&docs, pod);
    assert_eq!(vars["CERTVAULT_SHARD"], "auto");
    assert_eq!(vars["CERTVAULT_SHARD_COUNT"], completions.to_string());
    // What the base set is still there; Kubernetes sets the index itself.
    let base_vars = container_env(
        &docs,
        &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"],
    );
    for (k, v) in &base_vars {
        assert_eq!(vars.get(k), Some(v), "{k}");
    }
    assert!(!vars.contains_key("JOB_COMPLETION_INDEX"));
    let names = certvault_env_names();
    for k in vars.keys() {
        assert!(
            names.contains(k),
            "sharded CronJob: certvault does not read {k}"
        );
    }

    // certvault takes each pod's part from these settings: pod I runs part I of N, and an
    // index past the count is refused.
    let e = Env::ready("k8s-sharded");
    let pod_env = |index: u64| {
        e.with_var("CERTVAULT_SHARD", &vars["CERTVAULT_SHARD"])
            .with_var("CERTVAULT_SHARD_COUNT", &vars["CERTVAULT_SHARD_COUNT"])
            .with_var("JOB_COMPLETION_INDEX", &index.to_string())
    };
    for i in 0..completions {
        let run = pod_env(i).run(&["renew", "--output", "json"]).ok();
        assert_eq!(run.json()["shard"], format!("{i}/{completions}"));
    }
    let past = pod_env(completions).run(&["renew"]);
    fails_with(&past, 2, "the index must be below the count");
}
