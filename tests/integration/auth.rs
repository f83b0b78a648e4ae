//! Auth methods and least privilege against the real OpenBao: AppRole, JWT and Kubernetes
//! logins with the policies `certvault policy` prints, real 403s, revocation at exit.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::*;

/// An installation with an account and one certificate "web" issued for `domain` (`root`
/// uses it as root), an AppRole at `mount` whose tokens (living `ttl`) hold the policy
/// `certvault policy renew` prints for it, and `role`: the installation logging in with it.
struct RenewRole {
    root: Env,
    domain: String,
    mount: String,
    role_id: String,
    secret_id: String,
    role: Env,
}

fn renew_approle(tag: &str, ttl: &str) -> RenewRole {
    let (root, domain) = Env::with_cert(tag, "web");
    let (mount, role_id, secret_id) = approle_with_ttl(&root.apply_policy(&["renew"]), ttl);
    let role = root.approle_login(&mount, &role_id, &secret_id);
    RenewRole {
        root,
        domain,
        mount,
        role_id,
        secret_id,
        role,
    }
}

/// A login at `auth/<mount>/login` straight at Vault's API: its client token.
fn approle_token(mount: &str, role_id: &str, secret_id: &str) -> String {
    let login = vault_call(
        "",
        Method::POST,
        &format!("auth/{mount}/login"),
        Some(&json!({ "role_id": role_id, "secret_id": secret_id })),
    );
    assert_eq!(login.0, 200, "{}", login.1);
    login.1["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn approle_bound_to_renew_renews_and_can_do_nothing_else() {
    let RenewRole {
        root: e,
        mount,
        role_id,
        secret_id,
        role: a,
        ..
    } = renew_approle("approle", "1h");
    let (_, v1) = vault_read(&e.cert_path("web")).unwrap();

    let run = a.run(&["-vv", "renew", "--force"]).ok();
    assert_contains(&run.stdout, "renewed  web: forced");
    assert_eq!(vault_read(&e.cert_path("web")).unwrap().1, v1 + 1);
    let listed = a.run(&["list"]).ok();
    assert_contains(&listed.stdout, "web");
    for out in [run.all(), listed.all()] {
        assert!(!out.contains(&secret_id), "secret id leaked:\n{out}");
        assert!(!out.contains(&role_id), "role id leaked:\n{out}");
    }
    // Every token certvault logged in for was revoked when its run ended.
    assert_eq!(
        live_tokens_from(&mount),
        0,
        "a login token outlived its run"
    );

    // The same role's token, straight at Vault's API: real 403s outside its job.
    let token = approle_token(&mount, &role_id, &secret_id);
    let doc = json!({ "data": { "x": "y" } });
    let account = format!("secret/data/{}/accounts/default", e.prefix);
    let solver = format!("secret/data/{}/dns/x", e.prefix);
    let outside = format!("secret/data/{}-other/certs/web", e.prefix);
    assert_eq!(
        vault_call(&token, Method::POST, &account, Some(&doc)).0,
        403
    );
    assert_eq!(vault_call(&token, Method::POST, &solver, Some(&doc)).0, 403);
    assert_eq!(vault_call(&token, Method::GET, &outside, None).0, 403);
    let new_cert = format!("secret/data/{}/certs/new", e.prefix);
    assert_eq!(
        vault_call(&token, Method::POST, &new_cert, Some(&doc)).0,
        403
    );
    // ...but it may read the account and read/update the records.
    assert_eq!(vault_call(&token, Method::GET, &account, None).0, 200);
    vault_call(&token, Method::POST, "auth/token/revoke-self", None);

    // certvault's own answers: stopped before anything is done, naming role and path.
    let account_before = vault_read(&format!("{}/accounts/default", e.prefix))
        .unwrap()
        .1;
    let run = a.run(&[
        "init",
        "--force",
        "--directory",
        &env("CERTVAULT_TEST_DIRECTORY"),
        "--agree-tos",
    ]);
    fails_with(
        &run,
        1,
        &format!(
            "create on secret/data/{}/accounts/default (granted by `certvault policy admin`)",
            e.prefix
        ),
    );
    assert_eq!(
        vault_read(&format!("{}/accounts/default", e.prefix))
            .unwrap()
            .1,
        account_before
    );
    let run = a.issue("new", &["new.example.com"], &[]);
    fails_with(
        &run,
        1,
        &format!("create on secret/data/{}/certs/new", e.prefix),
    );
    assert!(vault_read(&format!("{}/certs/new", e.prefix)).is_none());
    let mut other = e.approle_login(&mount, &role_id, &secret_id);
    other.prefix = format!("{}-other", e.prefix);
    let run = other.run(&["list"]);
    fails_with(
        &run,
        1,
        &format!(
            "list on secret/metadata/{}/certs/ (granted by `certvault policy monitor`)",
            other.prefix
        ),
    );
    assert_eq!(
        live_tokens_from(&mount),
        0,
        "a login token outlived a failed run"
    );
}

#[test]
fn approle_wrong_secret_id_is_a_clear_error_and_writes_nothing() {
    let RenewRole {
        root: e,
        mount,
        role_id,
        ..
    } = renew_approle("badsecret", "1h");
    let wrong = "11111111-2222-3333-4444-555555555555";
    let a = e.approle_login(&mount, &role_id, wrong);
    let (_, v1) = vault_read(&e.cert_path("web")).unwrap();
    let run = a.run(&["-vv", "renew", "--force"]);
    fails_with(
        &run,
        1,
        &format!("Vault refused the approle login at auth/{mount}/login"),
    );
    assert!(!run.all().contains(wrong), "{}", run.all());
    assert_eq!(vault_read(&e.cert_path("web")).unwrap().1, v1);

    // A secret id from a file works (and a missing file is named).
    let dir = tempdir("secretfile");
    let mut a = e.approle_login(&mount, &role_id, "");
    a.extra.push((
        "VAULT_SECRET_ID_FILE".into(),
        dir.join("nope").display().to_string(),
    ));
    let run = a.run(&["list"]);
    fails_with(&run, 1, "cannot read the AppRole secret id file");
}

#[test]
fn policy_too_narrow_stops_before_the_ca_and_writes_nothing() {
    let (e, _) = Env::with_cert("narrow", "web");
    let policy = e.apply_policy(&["reader", "web"]);
    let (mount, role_id, secret_id) = approle_with_ttl(&policy, "1h");
    let a = e.approle_login(&mount, &role_id, &secret_id);
    let (_, v1) = vault_read(&e.cert_path("web")).unwrap();
    let run = a.run(&["renew", "--force"]);
    assert_eq!(run.code, 1, "{}", run.all());
    for path in [
        format!("list on secret/metadata/{}/certs/", e.prefix),
        format!("update on secret/data/{}/certs/*", e.prefix),
        format!("read on secret/data/{}/accounts/default", e.prefix),
    ] {
        assert!(run.stderr.contains(&path), "{path}: {}", run.stderr);
    }
    assert_contains(&run.stderr, "`certvault policy renew`");
    assert!(!run.stdout.contains("renewed"), "{}", run.stdout);
    assert_eq!(vault_read(&e.cert_path("web")).unwrap().1, v1);
    assert_eq!(live_tokens_from(&mount), 0);

    // The reader policy reads exactly its one record.
    let token = approle_token(&mount, &role_id, &secret_id);
    let cert = format!("secret/data/{}/certs/web", e.prefix);
    let (status, body) = vault_call(&token, Method::GET, &cert, None);
    assert_eq!(status, 200);
    assert!(body["data"]["data"]["fullchain"].is_string());
    let account = format!("secret/data/{}/accounts/default", e.prefix);
    assert_eq!(vault_call(&token, Method::GET, &account, None).0, 403);
    vault_call(&token, Method::POST, "auth/token/revoke-self", None);
}

#[test]
fn expired_token_is_a_clear_error() {
    let mut e = Env::new("expired");
    let rsp = vault_root(
        Method::POST,
        "auth/token/create",
        Some(&json!({ "policies": ["default"], "ttl": "1s" })),
    );
    e.token = rsp["auth"]["client_token"].as_str().unwrap().to_string();
    // Until Vault itself refuses the token as expired.
    wait_until("the 1 s token expires", 20, || {
        vault_call(&e.token, Method::GET, "auth/token/lookup-self", None).0 == 403
    });
    let run = e.run(&["list"]);
    fails_with(&run, 1, "Vault rejected the token");
    assert!(!run.all().contains(&e.token));
}

#[test]
fn token_from_a_file_like_a_vault_agent_sink() {
    let (e, _) = Env::with_cert("tokenfile", "web");
    let dir = tempdir("sink");
    let sink = dir.join("token");
    std::fs::write(&sink, format!("{}\n", env("VAULT_TOKEN"))).unwrap();
    let f = e.logging_in(&[("VAULT_TOKEN_FILE", &sink.display().to_string())]);
    let run = f.run(&["list"]).ok();
    assert_contains(&run.stdout, "web");
}

/// An installation with "web" issued (as root), and an auth method of `kind` at a unique
/// mount, configured with `config`, whose role `certvault` is `role` with the policy
/// `certvault policy renew` prints: (the installation logging in with that role, with
/// CERTVAULT_AUTH, _MOUNT, _ROLE and then `login` set; the mount).
fn with_auth_method(
    kind: &str,
    config: Value,
    mut role: Value,
    login: &[(&str, &str)],
) -> (Env, String) {
    let (e, _) = Env::with_cert(kind, "web");
    role["token_policies"] = json!([e.apply_policy(&["renew"])]);
    role["token_ttl"] = json!("1h");
    let mount = unique(kind);
    vault_enable_auth(&mount, kind);
    vault_root(Method::POST, &format!("auth/{mount}/config"), Some(&config));
    vault_root(
        Method::POST,
        &format!("auth/{mount}/role/certvault"),
        Some(&role),
    );
    let mut settings = vec![
        ("CERTVAULT_AUTH", kind),
        ("CERTVAULT_AUTH_MOUNT", &mount),
        ("CERTVAULT_AUTH_ROLE", "certvault"),
    ];
    settings.extend_from_slice(login);
    (e.logging_in(&settings), mount)
}

/// `login` renews "web" (forced, -vv), shows `secret` nowhere, and no token of its login
/// at `mount` outlives the run.
fn renews_without_leaking(login: &Env, mount: &str, secret: &str) {
    let run = login.run(&["-vv", "renew", "--force"]).ok();
    assert_contains(&run.stdout, "renewed  web: forced");
    assert!(!run.all().contains(secret), "JWT leaked:\n{}", run.all());
    assert_eq!(
        live_tokens_from(mount),
        0,
        "the login token outlived its run"
    );
}

fn jwt_claims(sub: &str, aud: &str) -> Value {
    let now = now_secs();
    json!({ "sub": sub, "aud": aud, "iat": now, "nbf": now - 5, "exp": now + 600 })
}

#[test]
fn jwt_login_with_a_key_made_here_renews() {
    let key = rsa_key();
    let jwt = sign_jwt(&key, &jwt_claims("renewer", "certvault"));
    let (mut j, mount) = with_auth_method(
        "jwt",
        json!({ "jwt_validation_pubkeys": [key.public_key_pem()] }),
        json!({ "role_type": "jwt", "user_claim": "sub", "bound_audiences": ["certvault"] }),
        &[("CERTVAULT_JWT", &jwt)],
    );
    renews_without_leaking(&j, &mount, &jwt);

    // A JWT for another audience is refused by Vault; a missing JWT file is named.
    let bad = sign_jwt(&key, &jwt_claims("renewer", "someone-else"));
    j.extra[3].1 = bad;
    let run = j.run(&["list"]);
    fails_with(
        &run,
        1,
        &format!("Vault refused the jwt login at auth/{mount}/login"),
    );
    j.extra.pop();
    j.extra
        .push(("CERTVAULT_JWT_FILE".into(), "/nonexistent/jwt".into()));
    let run = j.run(&["list"]);
    fails_with(&run, 1, "cannot read the JWT file \"/nonexistent/jwt\"");
}

#[test]
fn kubernetes_login_against_a_token_review_server_renews() {
    let now = now_secs();
    let sa_jwt = sign_jwt(
        &rsa_key(),
        &json!({
            "iss": "kubernetes/serviceaccount",
            "sub": "system:serviceaccount:certs:certvault",
            "kubernetes.io/serviceaccount/namespace": "certs",
            "kubernetes.io/serviceaccount/service-account.name": "certvault",
            "kubernetes.io/serviceaccount/service-account.uid": "uid-certvault",
            "iat": now, "exp": now + 600
        }),
    );
    let api = token_review_server(sa_jwt.clone(), "certs", "certvault");
    let dir = tempdir("sa");
    let file = dir.join("token");
    std::fs::write(&file, &sa_jwt).unwrap();
    let (mut k, mount) = with_auth_method(
        "kubernetes",
        json!({
            "kubernetes_host": api,
            "disable_local_ca_jwt": true,
            // Required by the config, unused over http://.
            "kubernetes_ca_cert": self_signed_pem(),
        }),
        json!({
            "bound_service_account_names": ["certvault"],
            "bound_service_account_namespaces": ["certs"]
        }),
        &[("CERTVAULT_JWT_FILE", &file.display().to_string())],
    );
    renews_without_leaking(&k, &mount, &sa_jwt);

    // Without a role the setting is named.
    k.extra.retain(|(n, _)| n != "CERTVAULT_AUTH_ROLE");
    let run = k.run(&["list"]);
    fails_with(&run, 2, "CERTVAULT_AUTH_ROLE");
}

#[test]
fn kv_version_1_mount_with_the_same_layout() {
    let mount = unique("kv1");
    vault_root(
        Method::POST,
        &format!("sys/mounts/{mount}"),
        Some(&json!({ "type": "kv", "options": { "version": "1" } })),
    );
    let e = Env::new("kv1").with_var("CERTVAULT_MOUNT", &mount);
    e.init().ok();
    let run = e.issue("web", &[&domain("kv1")], &[]).ok();
    assert_contains(
        &run.stdout,
        &format!("stored at {mount}/{}/certs/web", e.prefix),
    );
    let path = format!("{mount}/{}/certs/web", e.prefix);
    let (_, before) = vault_call(&env("VAULT_TOKEN"), Method::GET, &path, None);
    assert!(
        before["data"]["fullchain"].is_string(),
        "no fullchain; fields: {:?}",
        before["data"]
            .as_object()
            .map(|o| o.keys().collect::<Vec<_>>())
    );
    let run = e.run(&["renew", "--force"]).ok();
    assert_contains(&run.stdout, "renewed  web");
    let (_, after) = vault_call(&env("VAULT_TOKEN"), Method::GET, &path, None);
    assert_ne!(before["data"]["serial"], after["data"]["serial"]);
    e.run(&["list"]).ok();
    // The printed v1 policy works for renew.
    let hcl = e.run(&["policy", "renew", "--kv-version", "1"]).ok().stdout;
    assert!(
        hcl.contains(&format!("path \"{mount}/{}/certs/*\"", e.prefix)),
        "{hcl}"
    );
    let name = unique("cv-kv1");
    vault_policy(&name, &hcl);
    let (amount, role_id, secret_id) = approle_with_ttl(&name, "1h");
    let a = e
        .approle_login(&amount, &role_id, &secret_id)
        .with_var("CERTVAULT_MOUNT", &mount);
    let run = a.run(&["renew", "--force"]).ok();
    assert_contains(&run.stdout, "renewed  web");
}

/// A hook that marks `dir/started`, then waits (at most 60 s) for `dir/release`, then runs
/// `then`: a test holds an order at its challenge for as long as it needs.
fn held_hook(dir: &TempDir, then: &str) -> String {
    let (started, release) = (dir.join("started"), dir.join("release"));
    format!(
        "touch '{}'; i=0; while [ ! -e '{}' ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; {then}",
        started.display(),
        release.display()
    )
}

/// `a` runs `renew --force` in the background (killed if the test fails), its output into
/// `dir/stdout` and `dir/stderr`; returns once the order's `held_hook` has started.
fn renew_until_hook(a: &Env, dir: &TempDir) -> KillOnDrop {
    let file = |name: &str| std::fs::File::create(dir.join(name)).unwrap();
    let child = a
        .command(&["renew", "--force"])
        .stdout(file("stdout"))
        .stderr(file("stderr"))
        .spawn()
        .unwrap();
    let child = KillOnDrop(child);
    wait_until("the order's auth hook starts", 30, || {
        dir.join("started").exists()
    });
    child
}

/// Wait for the background run to exit: (exit code, stdout, stderr).
fn finish(mut child: KillOnDrop, dir: &TempDir) -> (Option<i32>, String, String) {
    let status = child.0.wait().unwrap();
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    (status.code(), read("stdout"), read("stderr"))
}

#[test]
fn an_interrupted_run_still_revokes_its_login_token() {
    let RenewRole {
        root: e,
        domain: d,
        mount,
        role: a,
        ..
    } = renew_approle("sigterm", "1h");
    // Same names, new hooks: stored without reissuing. The hook holds the order at its
    // challenge, so the forced renewal is mid-order when it is stopped.
    let dir = tempdir("sigterm");
    e.run(&[
        "issue",
        "web",
        "-d",
        &d,
        "--auth-hook",
        &held_hook(&dir, "true"),
        "--cleanup-hook",
        "true",
    ])
    .ok();
    e.fresh_account();
    let child = renew_until_hook(&a, &dir);
    assert_eq!(live_tokens_from(&mount), 1, "the run logged in");
    let pid = child.0.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let (code, stdout, stderr) = finish(child, &dir);
    assert_eq!(code, Some(1), "{stderr}");
    // The order stops, cleans up, and is reported like any failed certificate.
    assert!(
        stdout.contains("FAILED   web: interrupted by a signal"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(
        live_tokens_from(&mount),
        0,
        "the login token outlived SIGTERM"
    );
}

/// A login token that would expire mid-run is renewed: with a 3 s TTL, the order is held at
/// its challenge until a token of the same role logged in later has expired, and the
/// run's own token is checked live then; the renewed certificate is still written (with an
/// expired token the write would be refused).
#[test]
fn a_long_run_renews_its_login_token() {
    let RenewRole {
        root: e,
        domain: d,
        mount,
        role_id,
        secret_id,
        role: a,
    } = renew_approle("longrun", "3s");
    let dir = tempdir("longrun");
    let held = held_hook(&dir, &hook("challtestsrv-auth"));
    e.issue_with_auth_hook("web", &[&d], &held).ok();
    e.fresh_account();
    let child = renew_until_hook(&a, &dir);
    let ours = live_accessors_from(&mount);
    assert_eq!(ours.len(), 1, "the run logged in once");
    // A token of the same role, logged in after the run's own: once it has expired, the
    // run's token has outlived its TTL too, unless it was renewed.
    let control = approle_token(&mount, &role_id, &secret_id);
    wait_until("a token of the role expires after its 3 s", 30, || {
        vault_call(&control, Method::GET, "auth/token/lookup-self", None).0 == 403
    });
    assert!(
        token_is_live(&ours[0]),
        "the run's login token expired mid-run"
    );
    std::fs::write(dir.join("release"), "").unwrap();
    let (code, stdout, stderr) = finish(child, &dir);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_contains(&stdout, "renewed  web");
    assert_eq!(vault_read(&e.cert_path("web")).unwrap().1, 3);
    assert_eq!(
        live_tokens_from(&mount),
        0,
        "the renewed token was revoked at exit"
    );
}
