//! Existing ACME account keys (certbot's `private_key.json` JWK, lego's PEM, any PEM) and
//! finding their account again at the CA with `onlyReturnExisting` (RFC 8555 §7.3.1).
//!
//! instant-acme 0.8.5 signs with ECDSA P-256 keys only (`Key::from_pkcs8_der`). certbot 2.x
//! makes RSA account keys, lego RSA or P-384 ones when asked: those are read as
//! [`AccountKey::Legacy`], whose account is carried over by changing its key to a new P-256
//! one ([`crate::acme::keychange`], `--adopt-account`). Other kinds (Ed25519) are refused.

use std::fmt;

use base64::Engine;
use serde_json::Value;

/// An account key read from a file or document.
pub enum AccountKey {
    /// ECDSA P-256: usable. PKCS#8 DER (never shown).
    P256(Pkcs8),
    /// RSA or ECDSA P-384: its account is carried over by a key change to a new P-256 key.
    Legacy(crate::acme::keychange::JwsKey),
    /// A key instant-acme cannot sign with; the text says which (e.g. "RSA 2048-bit").
    Unsupported(String),
}

/// PKCS#8 DER of a private key; `Debug` shows nothing of it.
pub struct Pkcs8(Vec<u8>);

impl fmt::Debug for Pkcs8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pkcs8(<redacted>)")
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountKey::P256(_) => f.write_str("AccountKey::P256(<redacted>)"),
            AccountKey::Legacy(k) => write!(f, "AccountKey::Legacy({k:?})"),
            AccountKey::Unsupported(what) => write!(f, "AccountKey::Unsupported({what})"),
        }
    }
}

/// Why an account key cannot be carried over, for errors and notes.
pub fn unsupported_reason(what: &str) -> String {
    format!(
        "it is an {what} key, and certvault carries over only RSA, ECDSA P-256 and P-384 \
         account keys, so this account cannot be carried over"
    )
}

/// What `--adopt-account` does with an account whose key is `what` (RSA, P-384).
pub fn adopt_note(what: &str) -> String {
    format!(
        "its key is {what}, which certvault's ACME library (instant-acme) cannot sign with; \
         --adopt-account changes the account's key at the CA to a new ECDSA P-256 key (RFC 8555 \
         key change: the account URL, its rate-limit overrides and its certificates stay), and \
         the source client's copy of the old key stops working"
    )
}

/// Read a key: a JWK (JSON object with `kty`) or a PEM private key (PKCS#8, SEC1, PKCS#1).
/// The error never quotes the input.
pub fn parse(text: &str) -> Result<AccountKey, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let jwk: Value = serde_json::from_str(trimmed)
            .map_err(|e| format!("not valid JSON (line {}, column {})", e.line(), e.column()))?;
        return from_jwk(&jwk);
    }
    if trimmed.contains("-----BEGIN") {
        return from_pem(trimmed);
    }
    Err("neither a JWK (JSON) nor a PEM private key".into())
}

/// A JWK object (certbot's `private_key.json`, or the same fields in a Vault document).
pub fn from_jwk(jwk: &Value) -> Result<AccountKey, String> {
    let field = |name: &str| -> Result<Vec<u8>, String> {
        let text = jwk
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("the JWK has no {name:?} field"))?;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| format!("the JWK field {name:?} is not base64url"))
    };
    match jwk.get("kty").and_then(Value::as_str) {
        Some("RSA") => {
            let (n, e, d) = (field("n")?, field("e")?, field("d")?);
            let (p, q) = (field("p")?, field("q")?);
            let (dp, dq, qi) = (field("dp")?, field("dq")?, field("qi")?);
            crate::acme::keychange::JwsKey::rsa_components(&n, &e, &d, &p, &q, &dp, &dq, &qi)
                .map(AccountKey::Legacy)
        }
        Some("EC") => match jwk.get("crv").and_then(Value::as_str) {
            Some("P-256") => {
                let (d, x, y) = (field("d")?, field("x")?, field("y")?);
                if d.len() != 32 || x.len() != 32 || y.len() != 32 {
                    return Err("the P-256 JWK has coordinates of the wrong length".into());
                }
                let der = p256_pkcs8(&d, &x, &y);
                check_p256(&der)?;
                Ok(AccountKey::P256(Pkcs8(der)))
            }
            Some("P-384") => {
                let (d, x, y) = (field("d")?, field("x")?, field("y")?);
                crate::acme::keychange::JwsKey::p384_components(&d, &x, &y).map(AccountKey::Legacy)
            }
            Some(crv) => Ok(AccountKey::Unsupported(format!("ECDSA {crv}"))),
            None => Err("the EC JWK has no \"crv\" field".into()),
        },
        Some(kty) => Ok(AccountKey::Unsupported(format!("{kty:?} (JWK kty)"))),
        None => Err("the JWK has no \"kty\" field".into()),
    }
}

fn from_pem(pem: &str) -> Result<AccountKey, String> {
    use crate::acme::keychange::JwsKey;
    use rustls::pki_types::{pem::PemObject, PrivateKeyDer};
    let unreadable = || "not a readable PEM private key (PKCS#8, SEC1 or PKCS#1)".to_string();
    let Ok(key) = rcgen::KeyPair::from_pem(pem) else {
        // rcgen reads no PKCS#1 (`RSA PRIVATE KEY`, lego's RSA account keys).
        return match PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| unreadable())? {
            PrivateKeyDer::Pkcs1(k) => {
                JwsKey::rsa_der(k.secret_pkcs1_der()).map(AccountKey::Legacy)
            }
            PrivateKeyDer::Sec1(k) => JwsKey::p384_der(k.secret_sec1_der())
                .map(AccountKey::Legacy)
                .map_err(|_| "an EC PRIVATE KEY on a curve other than P-256 or P-384".into()),
            _ => Err(unreadable()),
        };
    };
    let alg = key.algorithm();
    if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        // rcgen keeps the DER it was given: SEC1 (`EC PRIVATE KEY`, lego's) is rewrapped.
        let der = if pem.contains("-----BEGIN EC PRIVATE KEY-----") {
            let d = sec1_scalar(&key.serialize_der())
                .ok_or_else(|| "the EC PRIVATE KEY is not a valid SEC1 key".to_string())?;
            let point = key.public_key_raw();
            if point.len() != 65 || d.len() != 32 {
                return Err("the EC PRIVATE KEY is not a P-256 key".into());
            }
            p256_pkcs8(&d, &point[1..33], &point[33..])
        } else {
            key.serialize_der()
        };
        check_p256(&der)?;
        Ok(AccountKey::P256(Pkcs8(der)))
    } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        JwsKey::p384_der(&key.serialize_der()).map(AccountKey::Legacy)
    } else if alg == &rcgen::PKCS_ED25519 {
        Ok(AccountKey::Unsupported("Ed25519".into()))
    } else {
        JwsKey::rsa_der(&key.serialize_der()).map(AccountKey::Legacy)
    }
}

/// The private scalar of a SEC1 `ECPrivateKey` (RFC 5915): its second element.
fn sec1_scalar(der: &[u8]) -> Option<Vec<u8>> {
    use x509_parser::der_parser::parse_der;
    let (_, obj) = parse_der(der).ok()?;
    let seq = obj.as_sequence().ok()?;
    let d = seq.get(1)?.as_slice().ok()?;
    // Left-pad a scalar that encodes shorter than 32 bytes.
    let mut out = vec![0u8; 32usize.saturating_sub(d.len())];
    out.extend_from_slice(d);
    Some(out)
}

/// instant-acme's own check: the key loads (the public point matches the private scalar).
fn check_p256(der: &[u8]) -> Result<(), String> {
    instant_acme::Key::from_pkcs8_der(rustls::pki_types::PrivatePkcs8KeyDer::from(der))
        .map(drop)
        .map_err(|_| "the P-256 key is inconsistent (its public point does not match)".into())
}

/// PKCS#8 (RFC 5958) of a P-256 key with its public point (RFC 5915 ECPrivateKey inside).
fn p256_pkcs8(d: &[u8], x: &[u8], y: &[u8]) -> Vec<u8> {
    const HEAD: [u8; 36] = [
        0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d,
        0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x6d, 0x30,
        0x6b, 0x02, 0x01, 0x01, 0x04, 0x20,
    ];
    let mut out = HEAD.to_vec();
    out.extend_from_slice(d);
    out.extend_from_slice(&[0xa1, 0x44, 0x03, 0x42, 0x00, 0x04]);
    out.extend_from_slice(x);
    out.extend_from_slice(y);
    out
}

/// The account a P-256 key belongs to at `directory` (see [`crate::acme::find_account`]).
pub async fn find_account(
    http: &reqwest::Client,
    directory: &str,
    key: &Pkcs8,
) -> Result<(Value, String), crate::acme::Error> {
    crate::acme::find_account(http, directory, &key.0).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p256_pem_and_jwk_agree() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let AccountKey::P256(from_pem) = parse(&key.serialize_pem()).unwrap() else {
            panic!("P-256 PEM not usable")
        };
        // Build the JWK from the PKCS#8: d at 36..68, x and y after the 0x04.
        let der = key.serialize_der();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let d = &der[36..68];
        let pubpt = &der[der.len() - 64..];
        let jwk = serde_json::json!({"kty":"EC","crv":"P-256","d":b64(d),"x":b64(&pubpt[..32]),"y":b64(&pubpt[32..])});
        let AccountKey::P256(from_jwk) = parse(&jwk.to_string()).unwrap() else {
            panic!("P-256 JWK not usable")
        };
        assert_eq!(from_jwk.0, from_pem.0);
        assert!(!format!("{:?}", AccountKey::P256(from_jwk)).contains(&b64(d)));
    }

    #[test]
    fn sec1_pem_is_rewrapped() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let pkcs8 = key.serialize_der();
        // SEC1 is the OCTET STRING inside the PKCS#8 (from byte 36 - 9 = the 0x30 0x6b).
        let sec1 = &pkcs8[pkcs8.len() - 0x6d..];
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(sec1);
        let pem = format!("-----BEGIN EC PRIVATE KEY-----\n{b64}\n-----END EC PRIVATE KEY-----\n");
        let AccountKey::P256(k) = parse(&pem).unwrap() else {
            panic!("SEC1 not usable")
        };
        assert_eq!(k.0, pkcs8);
    }

    #[test]
    fn rsa_and_garbage() {
        // RSA and P-384 keys are carried over by a key change; Ed25519 is not.
        for (alg, what) in [
            (&rcgen::PKCS_RSA_SHA256, "RSA 2048-bit"),
            (&rcgen::PKCS_ECDSA_P384_SHA384, "ECDSA P-384"),
        ] {
            let key = rcgen::KeyPair::generate_for(alg).unwrap();
            match parse(&key.serialize_pem()).unwrap() {
                AccountKey::Legacy(k) => assert_eq!(k.describe(), what),
                other => panic!("{other:?}"),
            }
        }
        let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        assert!(matches!(
            parse(&ed.serialize_pem()),
            Ok(AccountKey::Unsupported(_))
        ));
        // An RSA JWK without its private parts: named, never quoted.
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xffu8; 256]);
        let jwk = serde_json::json!({"kty":"RSA","n":n,"e":"AQAB","d":"c2VjcmV0"});
        let err = parse(&jwk.to_string()).unwrap_err();
        assert!(err.contains("\"p\""), "{err}");
        assert!(!err.contains("c2VjcmV0"), "{err}");
        for bad in [
            "",
            "{",
            "{\"kty\":\"EC\",\"crv\":\"P-256\",\"d\":\"!!\"}",
            "-----BEGIN x",
            "\u{0}\u{1}",
        ] {
            let err = parse(bad).err().unwrap_or_default();
            assert!(!err.is_empty(), "{bad:?} accepted");
        }
        let e = parse(r#"{"kty":"EC","crv":"P-256","d":"c2VjcmV0c2VjcmV0","x":"AA","y":"AA"}"#)
            .unwrap_err();
        assert!(!e.contains("c2VjcmV0"), "{e}");
    }
}
