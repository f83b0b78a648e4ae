//! Validated names and values.

use super::*;

#[test]
fn domain_names() {
    assert_eq!(
        "Example.COM.".parse::<DomainName>().unwrap().as_str(),
        "example.com"
    );
    let w: DomainName = "*.example.com".parse().unwrap();
    assert!(w.is_wildcard());
    assert_eq!(w.base(), "example.com");
    for bad in [
        "",
        "com",
        "a..b",
        "exa mple.com",
        "*.*.example.com",
        "a.*.example.com",
        "-a.example.com",
        "a_b.example.com",
        "192.0.2.1",
        "*.10.0.0.1",
        "2001:db8::1",
        &format!("{}.com", "a".repeat(64)),
    ] {
        assert!(bad.parse::<DomainName>().is_err(), "{bad} accepted");
    }
}

#[test]
fn cert_names() {
    assert!("web-1.prod_x".parse::<CertName>().is_ok());
    for bad in ["", ".x", "-x", "a/b", "a b", &"a".repeat(129)] {
        assert!(bad.parse::<CertName>().is_err(), "{bad} accepted");
    }
}

#[test]
fn key_types_round_trip() {
    for k in KeyType::ALL {
        assert_eq!(k.as_str().parse::<KeyType>().unwrap(), k);
        assert_eq!(
            serde_json::to_value(k).unwrap(),
            serde_json::json!(k.as_str())
        );
    }
    assert!("rsa1024".parse::<KeyType>().is_err());
}

#[test]
fn durations() {
    assert_eq!(
        "30d".parse::<HumanDuration>().unwrap().0,
        Duration::from_secs(30 * 86400)
    );
    assert!("0s".parse::<HumanDuration>().is_err());
    assert!("soon".parse::<HumanDuration>().is_err());
}

#[test]
fn secret_debug_is_redacted() {
    let s = Secret::new("-----BEGIN PRIVATE KEY-----abc".into());
    assert!(!format!("{s:?}").contains("BEGIN"));
}

#[test]
fn hook_variables() {
    for ok in ["AWS_SECRET_ACCESS_KEY", "CF_API_TOKEN", "_X", "pgpassword"] {
        assert_eq!(ok.parse::<EnvName>().unwrap().as_str(), ok);
    }
    for bad in [
        "",
        "1X",
        "A-B",
        "A=B",
        "VAULT_TOKEN",
        "bao_token",
        "CERTVAULT_PUSHGATEWAY",
    ] {
        let err = bad.parse::<EnvName>().unwrap_err();
        assert_eq!(err.what, "hook variable", "{bad}");
    }
    // A stored spec with a forbidden name is refused when read, not passed through.
    assert!(serde_json::from_value::<EnvName>(serde_json::json!("VAULT_TOKEN")).is_err());
}
