//! Servers for the newer providers' tests, on `tiny_http`:
//! - an acme-dns server written here from joohoi/acme-dns's published API (`/register`,
//!   `/update` with `X-Api-User` / `X-Api-Key`, the two latest values kept per subdomain),
//!   which publishes its values in the real PowerDNS of the test bed (zone acmedns.test);
//! - a pass-through in front of moto (the AWS emulator) that, after moto accepted a
//!   ChangeResourceRecordSets, writes the resulting TXT record sets into the same PowerDNS
//!   (zone route53.test), as Route 53 would serve them.
//!
//! PowerDNS itself (the `powerdns` provider) needs nothing here: it is real.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::{json, Value};

use crate::harness::{env, unique};

/// One request as a test server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// `Authorization` (Route 53) or `X-Api-User` (acme-dns).
    pub credential: Option<String>,
}

/// moto picks the service from the credential scope of `Authorization` (it checks no
/// signature): direct requests name route53, and the unsigned STS call (a web identity
/// token is its own credential) gets an sts scope on its way through the feed.
fn moto_auth(service: &str) -> String {
    format!("AWS4-HMAC-SHA256 Credential=AKIDTEST/20250101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=00")
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Replace the TXT values at `name` (no trailing dot) in PowerDNS zone `zone`; none: delete.
pub fn pdns_set(zone: &str, name: &str, kind: &str, contents: &[String]) -> Result<(), String> {
    let rrset = if contents.is_empty() {
        json!({"name": format!("{name}."), "type": kind, "changetype": "DELETE"})
    } else {
        json!({"name": format!("{name}."), "type": kind, "ttl": 60, "changetype": "REPLACE",
               "records": contents.iter().map(|c| json!({"content": c, "disabled": false})).collect::<Vec<_>>()})
    };
    // PowerDNS on SQLite answers 500 ("database is locked") while another write runs:
    // retry a few times, as a client of it would.
    let mut last = String::new();
    for attempt in 0..5u64 {
        let rsp = http()
            .patch(format!(
                "{}/api/v1/servers/localhost/zones/{zone}.",
                env("CERTVAULT_TEST_PDNS_API")
            ))
            .header("X-API-Key", env("CERTVAULT_TEST_PDNS_API_KEY"))
            .json(&json!({"rrsets": [rrset]}))
            .send()
            .map_err(|e| e.to_string())?;
        if rsp.status().is_success() {
            return Ok(());
        }
        last = format!(
            "PowerDNS answered {}: {}",
            rsp.status(),
            rsp.text().unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(100 << attempt));
    }
    Err(last)
}

/// A tiny_http server on a free loopback port, served by one thread; stopped on drop.
struct Serving {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    base: String,
}

impl Serving {
    fn start(handle: impl Fn(tiny_http::Request) + Send + 'static) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let base = format!("http://{}", server.server_addr().to_ip().unwrap());
        let s = server.clone();
        let thread = std::thread::spawn(move || {
            for req in s.incoming_requests() {
                handle(req);
            }
        });
        Serving {
            server,
            thread: Some(thread),
            base,
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn respond(req: tiny_http::Request, status: u16, body: &Value) {
    let rsp = tiny_http::Response::from_string(body.to_string())
        .with_status_code(status)
        .with_header(tiny_http::Header::from_bytes("Content-Type", "application/json").unwrap());
    let _ = req.respond(rsp);
}

fn header(req: &tiny_http::Request, name: &str) -> Option<String> {
    req.headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str().to_string())
}

// ---------------------------------------------------------------- acme-dns --

struct AcmeAccount {
    password: String,
    subdomain: String,
}

#[derive(Default)]
struct AcmeState {
    accounts: HashMap<String, AcmeAccount>,
    values: HashMap<String, VecDeque<String>>,
    seen: Vec<Seen>,
}

/// acme-dns's API as published (README of joohoi/acme-dns): `POST /register` → 201
/// `{username, password, fulldomain, subdomain, allowfrom}`; `POST /update` with
/// `X-Api-User`/`X-Api-Key` and `{subdomain, txt}` → 200 `{txt}`, 401 `{"error":
/// "forbidden"}`, 400 `{"error": "bad_txt"}` (the value must be 43 characters) or
/// `bad_subdomain`. The two latest values of a subdomain are served.
pub struct AcmeDns {
    serving: Serving,
    state: Arc<Mutex<AcmeState>>,
}

pub const ACME_DNS_ZONE: &str = "acmedns.test";

impl AcmeDns {
    pub fn start() -> Self {
        let state = Arc::new(Mutex::new(AcmeState::default()));
        let st = state.clone();
        let serving = Serving::start(move |mut req| {
            let method = req.method().to_string();
            let path = req.url().to_string();
            let user = header(&req, "X-Api-User");
            st.lock().unwrap().seen.push(Seen {
                method: method.clone(),
                path: path.clone(),
                credential: user.clone(),
            });
            let mut body = String::new();
            let _ = req.as_reader().read_to_string(&mut body);
            match (method.as_str(), path.as_str()) {
                ("POST", "/register") => {
                    let sub = uuid_like();
                    let username = uuid_like();
                    let password = unique("pw").replace('-', "x");
                    st.lock().unwrap().accounts.insert(
                        username.clone(),
                        AcmeAccount {
                            password: password.clone(),
                            subdomain: sub.clone(),
                        },
                    );
                    respond(
                        req,
                        201,
                        &json!({"username": username, "password": password,
                                "fulldomain": format!("{sub}.{ACME_DNS_ZONE}"),
                                "subdomain": sub, "allowfrom": []}),
                    );
                }
                ("POST", "/update") => {
                    let key = header(&req, "X-Api-Key");
                    let mut s = st.lock().unwrap();
                    let Some(account) = user.as_ref().and_then(|u| s.accounts.get(u)) else {
                        drop(s);
                        return respond(req, 401, &json!({"error": "forbidden"}));
                    };
                    if key.as_deref() != Some(account.password.as_str()) {
                        drop(s);
                        return respond(req, 401, &json!({"error": "forbidden"}));
                    }
                    let update: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    if update["subdomain"].as_str() != Some(account.subdomain.as_str()) {
                        drop(s);
                        return respond(req, 401, &json!({"error": "forbidden"}));
                    }
                    let txt = update["txt"].as_str().unwrap_or_default().to_string();
                    if txt.len() != 43
                        || !txt
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    {
                        drop(s);
                        return respond(req, 400, &json!({"error": "bad_txt"}));
                    }
                    let sub = account.subdomain.clone();
                    let values = s.values.entry(sub.clone()).or_default();
                    values.push_back(txt.clone());
                    while values.len() > 2 {
                        values.pop_front();
                    }
                    let contents: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
                    drop(s);
                    match pdns_set(
                        ACME_DNS_ZONE,
                        &format!("{sub}.{ACME_DNS_ZONE}"),
                        "TXT",
                        &contents,
                    ) {
                        Ok(()) => respond(req, 200, &json!({"txt": txt})),
                        Err(e) => respond(req, 500, &json!({"error": e})),
                    }
                }
                _ => respond(req, 404, &json!({"error": "not found"})),
            }
        });
        AcmeDns { serving, state }
    }

    pub fn base_url(&self) -> String {
        self.serving.base.clone()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Register an account as a client would (for the conformance suite).
    pub fn register(&self) -> Value {
        http()
            .post(format!("{}/register", self.base_url()))
            .json(&json!({}))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }
}

fn uuid_like() -> String {
    let u = unique("x").replace(|c: char| !c.is_ascii_alphanumeric(), "");
    format!("{:0>12}", u).to_ascii_lowercase()
}

// ---------------------------------------------------------------- Route 53 --

/// A pass-through to moto that feeds the TXT record sets moto holds after each accepted
/// change into PowerDNS (zone route53.test). Route 53 serves what it accepted; moto serves
/// no DNS.
pub struct Route53Feed {
    serving: Serving,
    seen: Arc<Mutex<Vec<Seen>>>,
}

pub const ROUTE53_ZONE: &str = "route53.test";

impl Route53Feed {
    pub fn start() -> Self {
        ensure_moto_zone();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let serving = Serving::start(move |mut req| {
            let method = req.method().to_string();
            let path = req.url().to_string();
            log.lock().unwrap().push(Seen {
                method: method.clone(),
                path: path.clone(),
                credential: header(&req, "Authorization"),
            });
            let mut body = Vec::new();
            let _ = req.as_reader().read_to_end(&mut body);
            let mut fwd = http().request(
                method.parse().unwrap(),
                format!("{}{path}", env("CERTVAULT_TEST_MOTO")),
            );
            for h in req.headers() {
                let name = h.field.as_str().as_str().to_string();
                if !["host", "content-length", "connection"]
                    .contains(&name.to_ascii_lowercase().as_str())
                {
                    fwd = fwd.header(name, h.value.as_str());
                }
            }
            let sts = String::from_utf8_lossy(&body).contains("Action=AssumeRoleWithWebIdentity");
            if sts {
                log.lock()
                    .unwrap()
                    .last_mut()
                    .unwrap()
                    .path
                    .push_str(" (STS AssumeRoleWithWebIdentity)");
                fwd = fwd.header("Authorization", moto_auth("sts"));
            }
            let rsp = match fwd.body(body.clone()).send() {
                Ok(r) => r,
                Err(e) => return respond(req, 502, &json!({"error": e.to_string()})),
            };
            let status = rsp.status().as_u16();
            let text = rsp.text().unwrap_or_default();
            if method == "POST" && path.contains("/rrset") && status == 200 {
                let zone_id = path
                    .trim_start_matches("/2013-04-01/hostedzone/")
                    .split('/')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                if let Err(e) = feed(&zone_id, &String::from_utf8_lossy(&body)) {
                    return respond(req, 500, &json!({"error": e}));
                }
            }
            let _ = req.respond(
                tiny_http::Response::from_string(text)
                    .with_status_code(status)
                    .with_header(
                        tiny_http::Header::from_bytes("Content-Type", "text/xml").unwrap(),
                    ),
            );
        });
        Route53Feed { serving, seen }
    }

    pub fn base_url(&self) -> String {
        self.serving.base.clone()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// The texts between `<tag>` and `</tag>`, in order.
pub fn xml_texts(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(
            after[..j]
                .replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&"),
        );
        rest = &after[j + close.len()..];
    }
    out
}

/// Write the TXT sets moto now holds at the changed names into PowerDNS.
fn feed(zone_id: &str, change: &str) -> Result<(), String> {
    for name in xml_texts(change, "Name") {
        let list = http()
            .get(format!(
                "{}/2013-04-01/hostedzone/{zone_id}/rrset?name={name}&type=TXT&maxitems=1",
                env("CERTVAULT_TEST_MOTO")
            ))
            .header("Authorization", moto_auth("route53"))
            .send()
            .and_then(|r| r.text())
            .map_err(|e| e.to_string())?;
        // The first set listed is at or after `name`: take its values only if it is `name`.
        let sets: Vec<&str> = list.split("<ResourceRecordSet>").skip(1).collect();
        let values = sets
            .first()
            .filter(|s| {
                xml_texts(s, "Name")
                    .first()
                    .map(|n| n.trim_end_matches('.'))
                    == Some(name.trim_end_matches('.'))
                    && xml_texts(s, "Type").first().map(String::as_str) == Some("TXT")
            })
            .map(|s| xml_texts(s, "Value"))
            .unwrap_or_default();
        pdns_set(ROUTE53_ZONE, name.trim_end_matches('.'), "TXT", &values)?;
    }
    Ok(())
}

/// The hosted zone route53.test in moto (made once; moto keeps it while it runs).
fn ensure_moto_zone() {
    let moto = env("CERTVAULT_TEST_MOTO");
    let list = http()
        .get(format!(
            "{moto}/2013-04-01/hostedzonesbyname?dnsname={ROUTE53_ZONE}.&maxitems=1"
        ))
        .header("Authorization", moto_auth("route53"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    if xml_texts(&list, "Name")
        .iter()
        .any(|n| n == &format!("{ROUTE53_ZONE}."))
    {
        return;
    }
    let rsp = http()
        .post(format!("{moto}/2013-04-01/hostedzone"))
        .header("Authorization", moto_auth("route53"))
        .body(format!(
            r#"<CreateHostedZoneRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Name>{ROUTE53_ZONE}.</Name><CallerReference>{}</CallerReference></CreateHostedZoneRequest>"#,
            unique("ref")
        ))
        .send()
        .unwrap();
    assert!(
        rsp.status().is_success(),
        "moto: {}",
        rsp.text().unwrap_or_default()
    );
}
