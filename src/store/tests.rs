//! Paths and redaction.

use super::*;
use crate::vault::KvVersion;

#[test]
fn serde_messages_lose_quoted_values() {
    assert_eq!(
        redact_quoted(r#"invalid type: string "-----BEGIN PRIVATE KEY-----", expected u64"#),
        r#"invalid type: string "…", expected u64"#
    );
    let err = serde_json::from_str::<u64>(r#""secret-value""#).unwrap_err();
    assert!(!redact_quoted(&err.to_string()).contains("secret-value"));
}

#[test]
fn paths() {
    let web: CertName = "web".parse().unwrap();
    assert_eq!(Key::Cert(&web).path("certvault"), "certvault/certs/web");
    assert_eq!(Key::Account("default").path("a/b"), "a/b/accounts/default");
    assert_eq!(Key::Certs.path("certvault"), "certvault/certs");
    let v2 = KvVersion::V2;
    assert_eq!(
        api_path(v2, "secret", "cv", Key::Cert(&web), Api::Data),
        "secret/data/cv/certs/web"
    );
    assert_eq!(
        api_path(v2, "secret", "cv", Key::Certs, Api::Metadata),
        "secret/metadata/cv/certs/"
    );
    assert_eq!(
        api_path(KvVersion::V1, "kv", "cv", Key::AnyLock, Api::Metadata),
        "kv/cv/locks/*"
    );
    assert_eq!(clean_prefix("/a/b/"), Some("a/b"));
    assert_eq!(clean_prefix("a/../b"), None);
}
