//! Reading certificates: split a PEM chain, and the facts `decide` needs. No I/O.

use std::collections::BTreeSet;

use ::time::OffsetDateTime;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
};
use x509_parser::prelude::*;

use crate::model::{DomainName, KeyType};

/// What the certificate in Vault actually is (read from the certificate itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// The SAN DNS names of the certificate.
    pub domains: BTreeSet<DomainName>,
    /// `None` when the key algorithm is not one certvault issues.
    pub key_type: Option<KeyType>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid certificate: {0}")]
pub struct Invalid(pub String);

/// A PEM chain split the way certbot stores it.
#[derive(Debug, Clone)]
pub struct Chain {
    pub cert: String,
    pub chain: String,
    pub fullchain: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub serial: String,
}

/// Split `leaf + intermediates` into certbot's `cert`, `chain`, `fullchain`.
pub fn split_chain(pem_chain: &str) -> Result<Chain, Invalid> {
    let mut blocks = Vec::new();
    for pem in Pem::iter_from_buffer(pem_chain.as_bytes()) {
        let pem = pem.map_err(|e| Invalid(format!("PEM: {e}")))?;
        if pem.label != "CERTIFICATE" {
            return Err(Invalid(format!("unexpected PEM block {}", pem.label)));
        }
        blocks.push(pem);
    }
    let leaf = blocks
        .first()
        .ok_or_else(|| Invalid("empty chain".into()))?;
    let x = leaf
        .parse_x509()
        .map_err(|e| Invalid(format!("leaf: {e}")))?;
    let encoded: Vec<String> = blocks.iter().map(encode_pem).collect();
    Ok(Chain {
        cert: encoded[0].clone(),
        chain: encoded[1..].concat(),
        fullchain: encoded.concat(),
        not_before: x.validity().not_before.to_datetime(),
        not_after: x.validity().not_after.to_datetime(),
        serial: hex_upper(x.raw_serial()),
    })
}

/// A certificate block as PEM with LF line endings (as CAs and certbot write them).
fn encode_pem(p: &Pem) -> String {
    let block = ::pem::Pem::new("CERTIFICATE", p.contents.clone());
    ::pem::encode_config(
        &block,
        ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF),
    )
}

fn hex_upper(bytes: &[u8]) -> String {
    let trimmed = match bytes {
        [0, rest @ ..] if !rest.is_empty() => rest,
        b => b,
    };
    trimmed.iter().map(|b| format!("{b:02X}")).collect()
}

/// The facts of a leaf certificate (PEM) that the renewal decision looks at.
pub fn current(cert_pem: &str) -> Result<Current, Invalid> {
    let (_, pem) = parse_x509_pem(cert_pem.as_bytes()).map_err(|e| Invalid(format!("PEM: {e}")))?;
    let x = pem
        .parse_x509()
        .map_err(|e| Invalid(format!("certificate: {e}")))?;
    let mut domains = BTreeSet::new();
    if let Ok(Some(san)) = x.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(d) = name {
                if let Ok(d) = d.parse::<DomainName>() {
                    domains.insert(d);
                }
            }
        }
    }
    Ok(Current {
        not_before: x.validity().not_before.to_datetime(),
        not_after: x.validity().not_after.to_datetime(),
        domains,
        key_type: key_type(x.public_key()),
    })
}

fn key_type(spki: &SubjectPublicKeyInfo<'_>) -> Option<KeyType> {
    let alg = &spki.algorithm;
    if alg.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = alg.parameters.as_ref()?.as_oid().ok()?;
        return if curve == OID_EC_P256 {
            Some(KeyType::EcdsaP256)
        } else if curve == OID_NIST_EC_P384 {
            Some(KeyType::EcdsaP384)
        } else {
            None
        };
    }
    if alg.algorithm == OID_PKCS1_RSAENCRYPTION {
        if let Ok(x509_parser::public_key::PublicKey::RSA(rsa)) = spki.parsed() {
            return match rsa.key_size() {
                2048 => Some(KeyType::Rsa2048),
                3072 => Some(KeyType::Rsa3072),
                4096 => Some(KeyType::Rsa4096),
                _ => None,
            };
        }
    }
    None
}

/// The DER SubjectPublicKeyInfo of a leaf certificate (PEM), to match it with a private key.
pub fn public_key_der(cert_pem: &str) -> Result<Vec<u8>, Invalid> {
    let (_, pem) = parse_x509_pem(cert_pem.as_bytes()).map_err(|e| Invalid(format!("PEM: {e}")))?;
    let x = pem
        .parse_x509()
        .map_err(|e| Invalid(format!("certificate: {e}")))?;
    Ok(x.public_key().raw.to_vec())
}

/// A stored certificate record, checked: its facts when the certificate is readable, and
/// what is wrong with the record, if anything (then it is reissued).
#[derive(Debug, Clone)]
pub struct Inspection {
    pub current: Option<Current>,
    pub damage: Option<String>,
}

/// Check a record as `renew` and `list` see it: the certificate parses, the chain is made of
/// certificates, and the private key is a key that belongs to the certificate. No detail of
/// the key is ever put in the message.
pub fn inspect(cert: &str, chain: &str, privkey: &str) -> Inspection {
    let current = match current(cert) {
        Ok(c) => c,
        Err(e) => {
            return Inspection {
                current: None,
                damage: Some(format!("cert is not a readable certificate ({e})")),
            }
        }
    };
    let damage = if !chain.trim().is_empty() && split_chain(chain).is_err() {
        Some("chain is not a list of PEM certificates".to_string())
    } else {
        match rcgen::KeyPair::from_pem(privkey) {
            Err(_) => Some("privkey is not a readable private key".to_string()),
            Ok(key) => {
                let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
                match public_key_der(cert) {
                    Ok(der) if der == spki => None,
                    _ => Some("privkey does not belong to cert".to_string()),
                }
            }
        }
    };
    Inspection {
        current: Some(current),
        damage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_records_are_found() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let pem = rcgen::CertificateParams::new(vec!["a.example.com".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .pem();
        let good = inspect(&pem, &pem, &key.serialize_pem());
        assert!(good.damage.is_none() && good.current.is_some());
        let cases = [
            (
                inspect(&pem, &pem, &other.serialize_pem()),
                "does not belong",
            ),
            (inspect(&pem, &pem, "garbage"), "not a readable private key"),
            (
                inspect(
                    &pem,
                    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                    &key.serialize_pem(),
                ),
                "chain",
            ),
            (
                inspect("garbage", &pem, &key.serialize_pem()),
                "cert is not",
            ),
        ];
        for (got, want) in cases {
            let d = got.damage.expect(want);
            assert!(d.contains(want), "{d}");
            assert!(!d.contains("PRIVATE"), "{d}");
        }
    }

    #[test]
    fn serial_hex_drops_sign_byte() {
        assert_eq!(hex_upper(&[0x00, 0x87, 0x65]), "8765");
        assert_eq!(hex_upper(&[0x00]), "00");
        assert_eq!(hex_upper(&[0x0a, 0xbc]), "0ABC");
    }

    #[test]
    fn self_signed_facts() {
        for (kt, key) in [
            (
                KeyType::EcdsaP256,
                rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
            ),
            (
                KeyType::EcdsaP384,
                rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
            ),
        ] {
            let params =
                rcgen::CertificateParams::new(vec!["a.example.com".into(), "*.example.com".into()])
                    .unwrap();
            let cert = params.self_signed(&key).unwrap();
            let pem = cert.pem();
            let facts = current(&pem).unwrap();
            assert_eq!(facts.key_type, Some(kt));
            let names: Vec<&str> = facts.domains.iter().map(|d| d.as_str()).collect();
            assert_eq!(names, ["*.example.com", "a.example.com"]);
            let split = split_chain(&format!("{pem}{pem}")).unwrap();
            assert_eq!(split.cert, pem, "PEM written as it came: LF, 64 columns");
            assert_eq!(split.cert, split.chain);
            assert_eq!(split.fullchain, format!("{}{}", split.cert, split.chain));
            assert_eq!(
                public_key_der(&pem).unwrap(),
                rcgen::PublicKeyData::subject_public_key_info(&key)
            );
        }
        assert!(split_chain("").is_err());
        assert!(current("not a cert").is_err());
    }
}
