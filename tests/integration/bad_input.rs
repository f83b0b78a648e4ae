use crate::harness::*;

#[test]
fn unreachable_vault() {
    let mut e = Env::new("unreach");
    e.extra
        .push(("VAULT_ADDR".into(), "http://127.0.0.1:9".into()));
    let run = e.run(&["list"]);
    fails_with(&run, 1, "cannot reach Vault at http://127.0.0.1:9");
    assert_contains(&run.stderr, "VAULT_ADDR");
}

#[test]
fn malformed_vault_address() {
    let mut e = Env::new("badaddr");
    e.extra.push(("VAULT_ADDR".into(), "127.0.0.1:8200".into()));
    fails_with(&e.run(&["list"]), 1, "invalid Vault address");
}

#[test]
fn token_without_access_is_a_clear_403() {
    let mut e = Env::new("forbidden");
    e.token = vault_token(&unique("weak"), &["default"]);
    let run = e.run(&["list"]);
    fails_with(&run, 1, "Missing: list on secret/metadata/t/forbidden");
    assert_contains(&run.stderr, "`certvault policy monitor`");
    let run = e.issue("x", &["x.example.com"], &[]);
    fails_with(&run, 1, "read on secret/data/t/forbidden");
    assert_contains(&run.stderr, "`certvault policy admin`");
}

#[test]
fn issue_without_account_says_run_init() {
    let e = Env::new("noacct");
    let run = e.issue("web", &["web.example.com"], &[]);
    fails_with(&run, 2, "no ACME account in Vault at secret/t/noacct");
    assert_contains(&run.stderr, "run `certvault init");
}

#[test]
fn invalid_domain_name() {
    let e = Env::new("baddomain");
    let run = e.issue("web", &["bad_name.example.com"], &[]);
    fails_with(&run, 2, "invalid domain name \"bad_name.example.com\"");
    let run = e.issue("web", &["a.*.example.com"], &[]);
    fails_with(&run, 2, "invalid domain name");
}

#[test]
fn invalid_certificate_name_and_key_type() {
    let e = Env::new("badname");
    fails_with(
        &e.issue("../etc", &["a.example.com"], &[]),
        2,
        "invalid certificate name",
    );
    fails_with(
        &e.issue("ok", &["a.example.com"], &["--key-type", "rsa1024"]),
        2,
        "invalid key type",
    );
}

#[test]
fn unknown_certificate_name() {
    let e = Env::ready("unknown");
    let run = e.run(&["renew", "nosuch"]);
    fails_with(&run, 2, "no certificate named nosuch");
}

#[test]
fn init_requires_agreeing_to_the_terms() {
    let e = Env::new("tos");
    let run = e.init_with(&["--email", "a@example.com"]);
    fails_with(&run, 2, "--agree-tos");
    // The terms the user is asked to agree to, from the CA's directory.
    fails_with(&run, 2, "(data:text/plain,Do%20what%20thou%20wilt)");
    assert!(vault_read(&format!("{}/accounts/default", e.prefix)).is_none());
}

#[test]
fn init_with_another_directory_refuses_to_replace() {
    let e = Env::ready("otherdir");
    let run = e.run(&[
        "init",
        "--directory",
        "https://localhost:14000/other",
        "--agree-tos",
    ]);
    fails_with(&run, 2, "already stored at secret/t/otherdir");
}

#[test]
fn unreachable_acme_directory() {
    let e = Env::new("noca");
    let run = e.run(&[
        "init",
        "--directory",
        "https://127.0.0.1:9/dir",
        "--agree-tos",
    ]);
    fails_with(
        &run,
        1,
        "cannot reach the ACME directory https://127.0.0.1:9/dir",
    );
}
