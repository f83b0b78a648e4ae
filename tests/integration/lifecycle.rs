//! Revocation and the account lifecycle against Pebble.

use serde_json::Value;

use crate::harness::*;

#[test]
fn revoke_marks_the_record_and_the_next_renew_replaces_it() {
    let e = Env::ready("revoke");
    e.issue("r", &["r.revoke.example.com"], &[]).ok();
    let (old, v1) = vault_read(&e.cert_path("r")).unwrap();
    let bad = e.run(&["revoke", "r", "--reason", "stolen"]);
    assert_eq!(bad.code, 2, "{}", bad.all());
    let run = e.run(&["revoke", "r", "--reason", "keyCompromise"]).ok();
    assert_contains(&run.stdout, "revoked r");
    let (doc, v2) = vault_read(&e.cert_path("r")).unwrap();
    assert_eq!(v2, v1 + 1);
    assert_eq!(doc["revoke_reason"], "keyCompromise");
    assert!(doc["revoked_at"].is_string());
    assert_eq!(doc["serial"], old["serial"]);
    let again = e.run(&["revoke", "r"]);
    assert_eq!(again.code, 1, "already revoked: {}", again.all());
    let listed: Value =
        serde_json::from_str(&e.run(&["list", "--output", "json"]).ok().stdout).unwrap();
    assert_eq!(listed[0]["due"], true);
    assert!(listed[0]["revoked_at"].is_string());
    e.fresh_account();
    let renewed = e.run(&["renew"]).ok();
    assert_contains(&renewed.stdout, "revoked at");
    let (new, _) = vault_read(&e.cert_path("r")).unwrap();
    assert_ne!(new["serial"], old["serial"]);
    assert!(
        new.get("revoked_at").is_none(),
        "a new certificate is not revoked"
    );
    verify_record(&new, &["r.revoke.example.com"]);
}

/// `--reuse-key` keeps the key across renewals, but never the key of a revoked
/// certificate: it may be the reason it was revoked.
#[test]
fn a_revoked_certificate_gets_a_new_key_even_with_reuse_key() {
    let e = Env::ready("revokekey");
    e.issue("k", &["k.revokekey.example.com"], &["--reuse-key"])
        .ok();
    let (first, _) = vault_read(&e.cert_path("k")).unwrap();
    e.fresh_account();
    e.run(&["renew", "--force"]).ok();
    let (kept, _) = vault_read(&e.cert_path("k")).unwrap();
    assert_ne!(kept["serial"], first["serial"]);
    assert!(
        kept["privkey"] == first["privkey"],
        "--reuse-key keeps the key"
    );
    e.run(&["revoke", "k", "--reason", "keyCompromise"]).ok();
    e.fresh_account();
    e.run(&["renew"]).ok();
    let (new, _) = vault_read(&e.cert_path("k")).unwrap();
    assert_ne!(new["serial"], kept["serial"]);
    assert!(
        new["privkey"] != kept["privkey"],
        "the revoked certificate's key was reused"
    );
    verify_record(&new, &["k.revokekey.example.com"]);
}

#[test]
fn account_rollover_writes_the_new_key_and_deactivate_needs_yes() {
    let e = Env::ready("acct");
    let path = format!("{}/accounts/default", e.prefix);
    let (before, v1) = vault_read(&path).unwrap();
    e.run(&["account", "rollover"]).ok();
    let (after, v2) = vault_read(&path).unwrap();
    assert_eq!(v2, v1 + 1);
    assert_eq!(
        after["credentials"]["id"], before["credentials"]["id"],
        "same account"
    );
    assert_ne!(
        after["credentials"]["key_pkcs8"], before["credentials"]["key_pkcs8"],
        "new key"
    );
    // The new key works: an order with it.
    e.issue("a", &["a.acct.example.com"], &[]).ok();
    let no = e.run(&["account", "deactivate"]);
    fails_with(&no, 2, "--yes");
    assert_eq!(vault_read(&path).unwrap().1, v2);
    e.run(&["account", "deactivate", "--yes"]).ok();
    let (gone, _) = vault_read(&path).unwrap();
    assert!(gone["deactivated_at"].is_string());
    let refused = e.run(&["renew", "--force"]);
    assert_eq!(
        refused.code,
        1,
        "the CA refuses a deactivated account: {}",
        refused.all()
    );
    // The renew policy may not roll the account over.
    let renew = e.as_policy(&["renew"]);
    let denied = renew.run(&["account", "rollover"]);
    fails_with(&denied, 1, "update on secret/data/");
}
