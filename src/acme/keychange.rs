//! Carrying over an account whose key instant-acme cannot sign with (certbot's RSA, lego's
//! RSA or P-384): one RFC 8555 §7.3.5 key change, written here because instant-acme 0.8.5
//! signs only with its own P-256 key (its `Signer` is private, and `update_key` needs the
//! old key to be one of those).
//!
//! Three requests, each a flattened JWS (RFC 7515) signed with aws-lc-rs (already in the tree
//! for rustls and instant-acme):
//! 1. `newAccount` with `onlyReturnExisting`, signed by the old key with its JWK: the account
//!    URL (nothing is registered);
//! 2. `keyChange`: the outer JWS signed by the old key (`kid` = the account URL), its payload
//!    the inner JWS signed by the new P-256 key (`jwk`) over `{account, oldKey}`;
//! 3. the reverse change ([`undo`]), when the new key could not be stored.
//!
//! Afterwards only the new key is used, through instant-acme like every other account.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use base64::Engine;
use serde_json::{json, Value};

use super::Error;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An account key that signs JWS: the old one (RS256, ES384, ES256) or the new P-256 one.
pub struct JwsKey {
    inner: Inner,
}

enum Inner {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair, &'static str, &'static str),
}

impl std::fmt::Debug for JwsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JwsKey({}, <redacted>)", self.describe())
    }
}

impl JwsKey {
    /// An RSA key from PKCS#8 or PKCS#1 DER.
    pub fn rsa_der(der: &[u8]) -> Result<Self, String> {
        RsaKeyPair::from_pkcs8(der)
            .or_else(|_| RsaKeyPair::from_der(der))
            .map(|k| Self {
                inner: Inner::Rsa(k),
            })
            .map_err(|e| format!("not a usable RSA private key ({e})"))
    }

    /// An RSA key from its JWK components (certbot's `private_key.json`), big-endian bytes.
    #[allow(clippy::too_many_arguments, non_snake_case)]
    pub fn rsa_components(
        n: &[u8],
        e: &[u8],
        d: &[u8],
        p: &[u8],
        q: &[u8],
        dP: &[u8],
        dQ: &[u8],
        qInv: &[u8],
    ) -> Result<Self, String> {
        let components = aws_lc_rs::rsa::KeyPairComponents {
            public_key: aws_lc_rs::rsa::PublicKeyComponents { n, e },
            d,
            p,
            q,
            dP,
            dQ,
            qInv,
        };
        RsaKeyPair::from_components(&components)
            .map(|k| Self {
                inner: Inner::Rsa(k),
            })
            .map_err(|e| format!("the RSA JWK is not a consistent key ({e})"))
    }

    /// A P-384 key from PKCS#8 or SEC1 DER.
    pub fn p384_der(der: &[u8]) -> Result<Self, String> {
        EcdsaKeyPair::from_private_key_der(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, der)
            .map(|k| Self {
                inner: Inner::Ec(k, "ES384", "P-384"),
            })
            .map_err(|e| format!("not a usable P-384 private key ({e})"))
    }

    /// A P-384 key from its JWK scalar and public point.
    pub fn p384_components(d: &[u8], x: &[u8], y: &[u8]) -> Result<Self, String> {
        let point = [&[4u8][..], x, y].concat();
        EcdsaKeyPair::from_private_key_and_public_key(
            &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            d,
            &point,
        )
        .map(|k| Self {
            inner: Inner::Ec(k, "ES384", "P-384"),
        })
        .map_err(|e| format!("the P-384 JWK is not a consistent key ({e})"))
    }

    /// A P-256 key from PKCS#8 DER (the new key, as instant-acme stores it).
    pub fn p256_pkcs8(der: &[u8]) -> Result<Self, String> {
        EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map(|k| Self {
                inner: Inner::Ec(k, "ES256", "P-256"),
            })
            .map_err(|e| format!("not a usable P-256 key ({e})"))
    }

    /// "RSA 2048-bit", "ECDSA P-384", ...
    pub fn describe(&self) -> String {
        match &self.inner {
            Inner::Rsa(k) => format!("RSA {}-bit", k.public_modulus_len() * 8),
            Inner::Ec(_, _, crv) => format!("ECDSA {crv}"),
        }
    }

    fn alg(&self) -> &'static str {
        match &self.inner {
            Inner::Rsa(_) => "RS256",
            Inner::Ec(_, alg, _) => alg,
        }
    }

    /// The public JWK (RFC 7517/7518), members in the order RFC 7638 hashes them.
    pub fn jwk(&self) -> Value {
        match &self.inner {
            Inner::Rsa(k) => {
                let public = k.public_key();
                let n = public.modulus().big_endian_without_leading_zero();
                let e = public.exponent().big_endian_without_leading_zero();
                json!({ "e": b64(e), "kty": "RSA", "n": b64(n) })
            }
            Inner::Ec(k, _, crv) => {
                let point = &k.public_key().as_ref()[1..];
                let (x, y) = point.split_at(point.len() / 2);
                json!({ "crv": crv, "kty": "EC", "x": b64(x), "y": b64(y) })
            }
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let rng = SystemRandom::new();
        let failed = || Error::Protocol {
            op: "sign the key change",
            source: instant_acme::Error::Crypto,
        };
        match &self.inner {
            Inner::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(|_| failed())?;
                Ok(sig)
            }
            Inner::Ec(k, _, _) => Ok(k
                .sign(&rng, message)
                .map_err(|_| failed())?
                .as_ref()
                .to_vec()),
        }
    }

    /// A flattened JWS of `payload`.
    fn jws(&self, protected: Value, payload: &Value) -> Result<Value, Error> {
        let protected = b64(protected.to_string().as_bytes());
        let payload = b64(payload.to_string().as_bytes());
        let signature = self.sign(format!("{protected}.{payload}").as_bytes())?;
        Ok(json!({ "protected": protected, "payload": payload, "signature": b64(&signature) }))
    }
}

/// The directory URLs a key change needs.
struct Directory {
    new_nonce: String,
    new_account: String,
    key_change: String,
}

/// One client for the three requests: the directory, a nonce kept from each answer.
struct Session<'a> {
    http: &'a reqwest::Client,
    directory_url: &'a str,
    dir: Directory,
    nonce: Option<String>,
}

const JOSE: &str = "application/jose+json";

impl<'a> Session<'a> {
    async fn open(http: &'a reqwest::Client, directory_url: &'a str) -> Result<Self, Error> {
        let unreachable = |reason: String| Error::Unreachable {
            url: directory_url.to_string(),
            reason,
        };
        let dir: Value = http
            .get(directory_url)
            .send()
            .await
            .map_err(|e| unreachable(crate::text::chain(&e)))?
            .error_for_status()
            .map_err(|e| unreachable(crate::text::chain(&e)))?
            .json()
            .await
            .map_err(|_| unreachable("the answer is not an ACME directory".into()))?;
        let url = |name: &str| dir.get(name).and_then(Value::as_str).map(str::to_string);
        let (Some(new_nonce), Some(new_account)) = (url("newNonce"), url("newAccount")) else {
            return Err(unreachable("the answer is not an ACME directory".into()));
        };
        let Some(key_change) = url("keyChange") else {
            return Err(Error::Refused {
                op: "the account key change",
                problem: problem(
                    "the CA's directory offers no keyChange: it cannot change an account's key",
                    None,
                ),
            });
        };
        Ok(Self {
            http,
            directory_url,
            dir: Directory {
                new_nonce,
                new_account,
                key_change,
            },
            nonce: None,
        })
    }

    async fn nonce(&mut self) -> Result<String, Error> {
        if let Some(n) = self.nonce.take() {
            return Ok(n);
        }
        let rsp = self
            .http
            .head(&self.dir.new_nonce)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        replay_nonce(&rsp).ok_or_else(|| Error::Refused {
            op: "a nonce",
            problem: problem("the CA's newNonce answered without a Replay-Nonce", None),
        })
    }

    fn transport(&self, e: reqwest::Error) -> Error {
        Error::Unreachable {
            url: self.directory_url.to_string(),
            reason: crate::text::chain(&e),
        }
    }

    /// POST a JWS made by `make(nonce)`; the answer's Location and body. `badNonce` is
    /// answered with the fresh nonce of the reply, a few times.
    async fn post(
        &mut self,
        op: &'static str,
        url: &str,
        make: impl Fn(&str) -> Result<Value, Error>,
    ) -> Result<(Option<String>, Value), Error> {
        let mut left = super::NONCE_RETRIES;
        loop {
            let nonce = self.nonce().await?;
            let body = make(&nonce)?;
            let rsp = self
                .http
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, JOSE)
                .body(body.to_string())
                .send()
                .await
                .map_err(|e| self.transport(e))?;
            self.nonce = replay_nonce(&rsp);
            let status = rsp.status();
            let location = rsp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let text = rsp.text().await.unwrap_or_default();
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if status.is_success() {
                return Ok((location, value));
            }
            let p: instant_acme::Problem = serde_json::from_value(value)
                .unwrap_or_else(|_| problem(&format!("HTTP {status}"), None));
            if left > 0
                && p.r#type
                    .as_deref()
                    .is_some_and(|t| t.ends_with(":badNonce"))
            {
                left -= 1;
                continue;
            }
            if super::is_account_unknown(&p) {
                return Err(Error::AccountKeyUnknown {
                    directory: self.directory_url.to_string(),
                });
            }
            return Err(Error::Refused { op, problem: p });
        }
    }

    /// The URL of the account `key` belongs to (onlyReturnExisting: never registers).
    async fn find(&mut self, key: &JwsKey) -> Result<String, Error> {
        let url = self.dir.new_account.clone();
        let (location, _) = self
            .post("the account lookup (onlyReturnExisting)", &url, |nonce| {
                key.jws(
                    json!({ "alg": key.alg(), "jwk": key.jwk(), "nonce": nonce, "url": url }),
                    &json!({ "onlyReturnExisting": true }),
                )
            })
            .await?;
        location.ok_or_else(|| Error::Refused {
            op: "the account lookup (onlyReturnExisting)",
            problem: problem("the CA answered without the account URL (Location)", None),
        })
    }

    /// Change the key of `account` from `old` to `new`.
    async fn change(&mut self, account: &str, old: &JwsKey, new: &JwsKey) -> Result<(), Error> {
        let url = self.dir.key_change.clone();
        let inner = new.jws(
            json!({ "alg": new.alg(), "jwk": new.jwk(), "url": url }),
            &json!({ "account": account, "oldKey": old.jwk() }),
        )?;
        self.post("the account key change", &url, |nonce| {
            old.jws(
                json!({ "alg": old.alg(), "kid": account, "nonce": nonce, "url": url }),
                &inner,
            )
        })
        .await
        .map(drop)
    }
}

fn replay_nonce(rsp: &reqwest::Response) -> Option<String> {
    rsp.headers()
        .get("replay-nonce")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn problem(detail: &str, kind: Option<&str>) -> instant_acme::Problem {
    serde_json::from_value(json!({ "detail": detail, "type": kind })).expect("a problem document")
}

/// An account moved to a new P-256 key: what instant-acme and Vault keep.
pub struct Adopted {
    /// The account URL (unchanged by the key change).
    pub url: String,
    /// instant-acme's credentials of the new key (to be stored).
    pub credentials: Value,
    /// The new key's PKCS#8 DER, for [`undo`].
    new_key: Vec<u8>,
}

impl std::fmt::Debug for Adopted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Adopted({}, <redacted>)", self.url)
    }
}

/// The account URL of `old` at `directory`, without changing anything.
pub async fn find(http: &reqwest::Client, directory: &str, old: &JwsKey) -> Result<String, Error> {
    Session::open(http, directory).await?.find(old).await
}

/// Find the account of `old` at `directory` and change its key to a new P-256 key. From the
/// moment this returns, the CA accepts only the new key: store `credentials`, or [`undo`].
pub async fn adopt(
    http: &reqwest::Client,
    directory: &str,
    old: &JwsKey,
) -> Result<Adopted, Error> {
    let mut session = Session::open(http, directory).await?;
    let url = session.find(old).await?;
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| Error::Protocol {
            op: "generate the new account key",
            source: instant_acme::Error::Crypto,
        })?;
    let new_key = pkcs8.as_ref().to_vec();
    let new = JwsKey::p256_pkcs8(&new_key).map_err(|_| Error::Protocol {
        op: "load the new account key",
        source: instant_acme::Error::Crypto,
    })?;
    // instant-acme's own form of the credentials (`key_pkcs8` is its base64url of the DER),
    // checked before the key change, the one step that cannot be taken back by itself.
    let credentials = json!({
        "id": url,
        "key_pkcs8": b64(&new_key),
        "directory": directory,
    });
    // (The error is not shown: it could quote the key.)
    serde_json::from_value::<instant_acme::AccountCredentials>(credentials.clone())
        .map(drop)
        .map_err(|_| Error::Protocol {
            op: "prepare the new account key's credentials (nothing was changed at the CA)",
            source: instant_acme::Error::Crypto,
        })?;
    session.change(&url, old, &new).await?;
    Ok(Adopted {
        url,
        credentials,
        new_key,
    })
}

/// Change the key of an adopted account back to `old` (the new key could not be stored): the
/// source client's copy of the key works again.
pub async fn undo(
    http: &reqwest::Client,
    directory: &str,
    adopted: &Adopted,
    old: &JwsKey,
) -> Result<(), Error> {
    let new = JwsKey::p256_pkcs8(&adopted.new_key).map_err(|_| Error::Protocol {
        op: "load the new account key",
        source: instant_acme::Error::Crypto,
    })?;
    let mut session = Session::open(http, directory).await?;
    session.change(&adopted.url, &new, old).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jws_of_each_kind_verifies_with_its_jwk() {
        let rsa = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let p256 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let keys = [
            JwsKey::rsa_der(&rsa.serialize_der()).unwrap(),
            JwsKey::p384_der(&p384.serialize_der()).unwrap(),
            JwsKey::p256_pkcs8(&p256.serialize_der()).unwrap(),
        ];
        let dec = |s: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s.as_str().unwrap())
                .unwrap()
        };
        for key in &keys {
            let jws = key
                .jws(json!({"alg": key.alg(), "url": "u"}), &json!({"a": 1}))
                .unwrap();
            let signed = format!(
                "{}.{}",
                jws["protected"].as_str().unwrap(),
                jws["payload"].as_str().unwrap()
            );
            let sig = dec(&jws["signature"]);
            let jwk = key.jwk();
            let ok = match jwk["kty"].as_str().unwrap() {
                "RSA" => signature::RsaPublicKeyComponents {
                    n: dec(&jwk["n"]),
                    e: dec(&jwk["e"]),
                }
                .verify(
                    &signature::RSA_PKCS1_2048_8192_SHA256,
                    signed.as_bytes(),
                    &sig,
                )
                .is_ok(),
                _ => {
                    let alg: &dyn signature::VerificationAlgorithm = if jwk["crv"] == "P-384" {
                        &signature::ECDSA_P384_SHA384_FIXED
                    } else {
                        &signature::ECDSA_P256_SHA256_FIXED
                    };
                    let point = [vec![4u8], dec(&jwk["x"]), dec(&jwk["y"])].concat();
                    signature::UnparsedPublicKey::new(alg, point)
                        .verify(signed.as_bytes(), &sig)
                        .is_ok()
                }
            };
            assert!(ok, "{} signature does not verify", key.describe());
            assert!(!format!("{key:?}").contains(&b64(&sig)));
        }
        assert_eq!(keys[0].describe(), "RSA 2048-bit");
        assert_eq!(keys[1].describe(), "ECDSA P-384");
    }
}
