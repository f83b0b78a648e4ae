//! An RFC 9773-faithful ACME test server, for the parts of ARI no CA on the test bed shows:
//! `replaces` (RFC 9773 §5) checked against the account that ordered the replaced
//! certificate, `alreadyReplaced` (409), a rate-limited (429 + Retry-After) or failing
//! (503) newOrder. acme2certifier accepts `replaces`, ignores it and never answers 409;
//! Pebble 2.4 has no ARI at all. Everything else uses those real CAs.
//!
//! Deliberately small: plain HTTP on 127.0.0.1, one request per connection, JWS parsed but
//! signatures not verified (what is tested is the client's ARI behaviour), authorizations
//! valid from the start (no challenge to solve), certificates signed by an rcgen CA with
//! an authority key identifier. Every request is logged with its JWS payload.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::{json, Value};

use crate::harness::{ca_params, read_request};

/// One request the server received: method, path and the decoded JWS payload (if any) and
/// the account (`kid`) that signed it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub payload: Value,
}

#[derive(Default)]
struct State {
    accounts: BTreeMap<String, String>, // jwk -> account url
    orders: Vec<Value>,
    order_account: Vec<String>,
    certs: Vec<String>,                     // PEM chains by index
    cert_account: BTreeMap<String, String>, // ARI id -> account url that ordered it
    replaced: BTreeSet<String>,             // ARI ids already replaced
    log: Vec<Logged>,
}

/// Knobs a test turns.
#[derive(Default)]
pub struct Knobs {
    /// newOrder answers 429 rateLimited with this Retry-After (seconds).
    pub rate_limit: Option<u64>,
    /// newOrder answers 503.
    pub unavailable: bool,
    /// Certificates live this long (seconds); the ARI window is their last third, with a
    /// Retry-After of an hour.
    pub lifetime: Option<i64>,
}

pub struct AriServer {
    pub base: String,
    state: Arc<Mutex<State>>,
    pub knobs: Arc<Mutex<Knobs>>,
    ca_pem: String,
}

impl AriServer {
    pub fn start() -> AriServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let knobs = Arc::new(Mutex::new(Knobs::default()));
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca_params = ca_params("certvault ARI test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca_pem = ca_cert.pem();
        let issuer = Arc::new(rcgen::Issuer::new(ca_params, ca_key));
        let (s, k, b, pem) = (state.clone(), knobs.clone(), base.clone(), ca_pem.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (s, k, b, i, pem) =
                    (s.clone(), k.clone(), b.clone(), issuer.clone(), pem.clone());
                std::thread::spawn(move || serve(stream, &s, &k, &b, &i, &pem));
            }
        });
        AriServer {
            base,
            state,
            knobs,
            ca_pem,
        }
    }

    pub fn directory(&self) -> String {
        format!("{}/dir", self.base)
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    /// The newOrder payloads received, in order.
    pub fn new_orders(&self) -> Vec<Value> {
        self.log()
            .into_iter()
            .filter(|l| l.path == "/new-order")
            .map(|l| l.payload)
            .collect()
    }

    pub fn renewal_info_requests(&self) -> usize {
        self.log()
            .iter()
            .filter(|l| l.method == "GET" && l.path.starts_with("/renewal-info/"))
            .count()
    }

    /// Mark a certificate as already replaced (as if another order had replaced it).
    pub fn mark_replaced(&self, ari_id: &str) {
        self.state
            .lock()
            .unwrap()
            .replaced
            .insert(ari_id.to_string());
    }
}

type Reply = (u16, Vec<(&'static str, String)>, String);

fn problem(status: u16, kind: &str, detail: &str) -> Reply {
    (
        status,
        vec![("Content-Type", "application/problem+json".into())],
        json!({ "type": format!("urn:ietf:params:acme:error:{kind}"), "detail": detail, "status": status }).to_string(),
    )
}

fn ok(status: u16, body: Value) -> Reply {
    (
        status,
        vec![("Content-Type", "application/json".into())],
        body.to_string(),
    )
}

fn serve(
    mut stream: std::net::TcpStream,
    state: &Mutex<State>,
    knobs: &Mutex<Knobs>,
    base: &str,
    issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
    ca_pem: &str,
) {
    let (first, body) = read_request(&stream);
    if first.is_empty() {
        return;
    }
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let jws: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let decode = |field: &str| -> Value {
        jws[field]
            .as_str()
            .and_then(|p| B64.decode(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    };
    let (protected, payload) = (decode("protected"), decode("payload"));
    let reply = {
        let mut st = state.lock().unwrap();
        st.log.push(Logged {
            method: method.clone(),
            path: path.clone(),
            payload: payload.clone(),
        });
        handle(
            &mut st,
            &knobs.lock().unwrap(),
            base,
            issuer,
            ca_pem,
            &method,
            &path,
            &protected,
            &payload,
        )
    };
    let (status, headers, text) = reply;
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nReplay-Nonce: n{}\r\nContent-Length: {}\r\nConnection: close\r\n",
        rand_u64(),
        text.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&text);
    let _ = stream.write_all(out.as_bytes());
}

fn rand_u64() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
}

#[allow(clippy::too_many_arguments)]
fn handle(
    st: &mut State,
    knobs: &Knobs,
    base: &str,
    issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
    ca_pem: &str,
    method: &str,
    path: &str,
    protected: &Value,
    payload: &Value,
) -> Reply {
    let account = protected["kid"].as_str().unwrap_or_default().to_string();
    let n = |p: &str| path.strip_prefix(p).and_then(|n| n.parse::<usize>().ok());
    match (method, path) {
        ("GET", "/dir") => ok(
            200,
            json!({
                "newNonce": format!("{base}/nonce"), "newAccount": format!("{base}/new-account"),
                "newOrder": format!("{base}/new-order"), "revokeCert": format!("{base}/revoke"),
                "keyChange": format!("{base}/key-change"), "renewalInfo": format!("{base}/renewal-info"),
                "meta": { "profiles": { "classic": "the default" } }
            }),
        ),
        ("HEAD" | "GET", "/nonce") => (200, vec![], String::new()),
        ("POST", "/new-account") => {
            let jwk = protected["jwk"].to_string();
            let next = format!("{base}/acct/{}", st.accounts.len() + 1);
            let url = st.accounts.entry(jwk).or_insert(next).clone();
            let mut r = ok(201, json!({ "status": "valid" }));
            r.1.push(("Location", url));
            r
        }
        ("POST", "/new-order") => {
            if let Some(secs) = knobs.rate_limit {
                let mut r = problem(429, "rateLimited", "too many new orders");
                r.1.push(("Retry-After", secs.to_string()));
                return r;
            }
            if knobs.unavailable {
                return problem(503, "serverInternal", "the new-order handler is down");
            }
            if let Some(id) = payload["replaces"].as_str() {
                match st.cert_account.get(id) {
                    None => {
                        return problem(
                            400,
                            "malformed",
                            "replaces names no certificate this CA issued",
                        )
                    }
                    Some(owner) if *owner != account => {
                        return problem(
                            403,
                            "unauthorized",
                            "requester account did not request the certificate being replaced",
                        )
                    }
                    Some(_) if st.replaced.contains(id) => {
                        return problem(
                            409,
                            "alreadyReplaced",
                            "the certificate has already been replaced",
                        )
                    }
                    Some(_) => {}
                }
            }
            let i = st.orders.len();
            let mut order = json!({
                "status": "ready", "identifiers": payload["identifiers"],
                "authorizations": [format!("{base}/authz/{i}")],
                "finalize": format!("{base}/finalize/{i}"),
            });
            if let Some(r) = payload.get("replaces") {
                order["replaces"] = r.clone();
            }
            st.orders.push(order.clone());
            st.order_account.push(account);
            let mut r = ok(201, order);
            r.1.push(("Location", format!("{base}/order/{i}")));
            r
        }
        ("POST", _) if n("/authz/").is_some() => {
            let i = n("/authz/").unwrap();
            let ident = st
                .orders
                .get(i)
                .map(|o| o["identifiers"][0].clone())
                .unwrap_or(Value::Null);
            ok(
                200,
                json!({ "status": "valid", "identifier": ident, "challenges": [] }),
            )
        }
        ("POST", _) if n("/order/").is_some() => match st.orders.get(n("/order/").unwrap()) {
            Some(o) => ok(200, o.clone()),
            None => problem(404, "malformed", "no such order"),
        },
        ("POST", _) if n("/finalize/").is_some() => {
            let i = n("/finalize/").unwrap();
            let Some(csr) = payload["csr"].as_str().and_then(|c| B64.decode(c).ok()) else {
                return problem(400, "badCSR", "no CSR");
            };
            let lifetime = knobs.lifetime.unwrap_or(90 * 86400);
            let Some((pem, id)) = sign(&csr, issuer, ca_pem, lifetime) else {
                return problem(400, "badCSR", "unusable CSR");
            };
            let owner = st.order_account[i].clone();
            if let Some(old) = st.orders[i]
                .get("replaces")
                .and_then(|r| r.as_str())
                .map(String::from)
            {
                st.replaced.insert(old);
            }
            st.cert_account.insert(id, owner);
            let c = st.certs.len();
            st.certs.push(pem);
            st.orders[i]["status"] = json!("valid");
            st.orders[i]["certificate"] = json!(format!("{base}/cert/{c}"));
            let mut r = ok(200, st.orders[i].clone());
            r.1.push(("Location", format!("{base}/order/{i}")));
            r
        }
        ("POST", _) if n("/cert/").is_some() => match st.certs.get(n("/cert/").unwrap()) {
            Some(pem) => (
                200,
                vec![("Content-Type", "application/pem-certificate-chain".into())],
                pem.clone(),
            ),
            None => problem(404, "malformed", "no such certificate"),
        },
        ("GET", _) if path.starts_with("/renewal-info/") => {
            let id = path.trim_start_matches("/renewal-info/");
            let Some(pem) = st
                .certs
                .iter()
                .find(|pem| ari_id(pem).as_deref() == Some(id))
            else {
                return problem(404, "malformed", "unknown certificate");
            };
            let der = x509_parser::pem::parse_x509_pem(pem.as_bytes())
                .unwrap()
                .1
                .contents;
            let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
            let (nb, na) = (
                x.validity().not_before.timestamp(),
                x.validity().not_after.timestamp(),
            );
            let start = nb + (na - nb) * 2 / 3;
            let t = |s: i64| {
                time::OffsetDateTime::from_unix_timestamp(s)
                    .unwrap()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap()
            };
            let mut r = ok(
                200,
                json!({ "suggestedWindow": { "start": t(start), "end": t(na) } }),
            );
            r.1.push(("Retry-After", "3600".into()));
            r
        }
        _ => problem(404, "malformed", "no such resource"),
    }
}

/// The RFC 9773 identifier of a PEM certificate (the first of a chain).
pub fn ari_id(pem: &str) -> Option<String> {
    let der = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .ok()?
        .1
        .contents;
    let der = rustls_pki_types::CertificateDer::from(der);
    instant_acme::CertificateIdentifier::try_from(&der)
        .ok()
        .map(|i| i.to_string())
}

struct CsrKey(Vec<u8>, &'static rcgen::SignatureAlgorithm);

impl rcgen::PublicKeyData for CsrKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.1
    }
}

/// Sign the CSR's names and key for `lifetime` seconds: (chain PEM, ARI id).
fn sign(
    csr: &[u8],
    issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
    ca_pem: &str,
    lifetime: i64,
) -> Option<(String, String)> {
    use x509_parser::prelude::FromDer;
    let (_, req) =
        x509_parser::certification_request::X509CertificationRequest::from_der(csr).ok()?;
    let info = &req.certification_request_info;
    let mut names = Vec::new();
    for ext in req.requested_extensions()? {
        if let x509_parser::extensions::ParsedExtension::SubjectAlternativeName(san) = ext {
            for n in &san.general_names {
                if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                    names.push(d.to_string());
                }
            }
        }
    }
    let spki = &info.subject_pki;
    let curve = spki
        .algorithm
        .parameters
        .as_ref()?
        .as_oid()
        .ok()?
        .to_id_string();
    let alg: &'static rcgen::SignatureAlgorithm = match curve.as_str() {
        "1.2.840.10045.3.1.7" => &rcgen::PKCS_ECDSA_P256_SHA256,
        "1.3.132.0.34" => &rcgen::PKCS_ECDSA_P384_SHA384,
        _ => return None,
    };
    let key = CsrKey(spki.subject_public_key.data.to_vec(), alg);
    let mut params = rcgen::CertificateParams::new(names).ok()?;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::seconds(1);
    params.not_after = now + time::Duration::seconds(lifetime);
    let mut serial = rand_u64().to_be_bytes().to_vec();
    serial[0] &= 0x7f;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    params.use_authority_key_identifier_extension = true;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, issuer).ok()?;
    let pem = cert.pem();
    let id = ari_id(&pem)?;
    Some((format!("{pem}{ca_pem}"), id))
}
