use crate::harness::*;

/// Every output of a full run (with debug logs) is free of the token, the account key and
/// any private key.
#[test]
fn no_secret_in_any_output() {
    let mut e = Env::new("secrets");
    let token = vault_token(&format!("tok{}", unique("s").replace('-', "")), &["root"]);
    e.token = token.clone();
    let mut out = String::new();
    out += &e
        .run(&[
            "-vv",
            "init",
            "--directory",
            &env("CERTVAULT_TEST_DIRECTORY"),
            "--email",
            "a@example.com",
            "--agree-tos",
        ])
        .ok()
        .all();
    let d = domain("s");
    out += &e
        .run(&[
            "-vv",
            "issue",
            "s",
            "-d",
            &d,
            "--auth-hook",
            &hook("challtestsrv-auth"),
            "--cleanup-hook",
            &hook("challtestsrv-cleanup"),
        ])
        .ok()
        .all();
    out += &e.run(&["-vv", "renew", "--force"]).ok().all();
    out += &e.run(&["-vv", "list", "--output", "json"]).ok().all();
    // A failure path too.
    out += &e
        .run(&["-vv", "issue", "f", "-d", &d, "--auth-hook", "exit 1"])
        .all();
    assert!(out.contains("renewed  s"), "{out}");

    let (cert, _) = vault_read(&e.cert_path("s")).unwrap();
    let (account, _) = vault_read(&format!("{}/accounts/default", e.prefix)).unwrap();
    let account_key = account["credentials"]["key_pkcs8"].as_str().unwrap();
    assert!(account_key.len() > 40);
    let privkey_body: String = cert["privkey"]
        .as_str()
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    for (what, secret) in [
        ("token", token.as_str()),
        ("account key", &account_key[..40]),
        ("private key", &privkey_body),
    ] {
        assert!(
            !out.contains(secret),
            "{what} leaked into the output:\n{out}"
        );
    }
    assert!(!out.contains("PRIVATE KEY"), "{out}");
}

/// Hooks do not inherit certvault's Vault token.
#[test]
fn hooks_do_not_see_the_vault_token() {
    let e = Env::ready("hookenv");
    let d = domain("h");
    let auth = format!(
        "test -z \"${{VAULT_TOKEN:-}}\" || {{ echo 'token visible' >&2; exit 9; }}; {}",
        hook("challtestsrv-auth")
    );
    e.run(&[
        "issue",
        "h",
        "-d",
        &d,
        "--auth-hook",
        &auth,
        "--cleanup-hook",
        &hook("challtestsrv-cleanup"),
    ])
    .ok();
}
