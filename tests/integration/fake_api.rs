//! Emulators of the Cloudflare API v4 and the DNSimple API v2, for testing certvault's DNS-01
//! clients without the real services. Every TXT record created through an emulator is applied
//! to the test bed's primary BIND with `nsupdate` (TSIG), so the ACME test CA sees it, and is
//! removed there again on delete.
//!
//! The emulators follow the PUBLISHED APIs, not certvault's client. Facts relied on:
//!
//! Cloudflare API v4
//! - Base URL `https://api.cloudflare.com/client/v4/`; auth `Authorization: Bearer <API_TOKEN>`.
//!   <https://developers.cloudflare.com/fundamentals/api/how-to/make-api-calls/>
//! - Envelope `{"success","errors":[{"code","message"}],"messages","result"}`, lists add
//!   `result_info {page, per_page, count, total_count, total_pages}`; query `page=` / `per_page=`.
//!   (same page; also the DNS records list page below)
//! - List Zones `GET /zones`: `name` (operators `equal` (default), `not_equal`, `starts_with`,
//!   `ends_with`, `contains`, `*_case_sensitive`, written `name=contains:foo`), `status`,
//!   `page` (min 1), `per_page` (default 20, 5..=50), `direction`. An unknown name is simply an
//!   empty `result` with `success: true`.
//!   <https://developers.cloudflare.com/api/resources/zones/methods/list/>
//! - DNS records <https://developers.cloudflare.com/api/resources/dns/subresources/records/>:
//!   `GET /zones/{zone_id}/dns_records` (filters `type`, `name` = `name.exact`,
//!   `name.contains|startswith|endswith`, `content` = `content.exact`, ...; `per_page`
//!   default 100), `POST /zones/{zone_id}/dns_records` -> HTTP 200 with the record in
//!   `result` (`id`, `name`, `type`, `content`, `proxiable`, `proxied`, `ttl`, `settings`,
//!   `meta`, `comment`, `tags`, `created_on`, `modified_on`; no `zone_id`/`zone_name`, which
//!   the current docs no longer list), `DELETE /zones/{zone_id}/dns_records/{id}` -> 200
//!   `{"result":{"id":...}}`. `ttl` 1 means automatic, else 60..=86400. TXT `content`
//!   "must consist of quoted character strings (RFC 1035)", Cloudflare also accepts it
//!   unquoted: stored as sent, unquoted for DNS.
//!   <https://developers.cloudflare.com/api/resources/dns/subresources/records/methods/create/>
//!   <https://developers.cloudflare.com/api/resources/dns/subresources/records/methods/delete/>
//! - Rate limit: HTTP 429, `retry-after` = seconds until capacity.
//!   <https://developers.cloudflare.com/fundamentals/api/reference/limits/>
//! - Error bodies the reference does not spell out, as reported from the live API in public
//!   issue threads and in other clients' recorded responses:
//!   403 `9109 "Invalid access token"` (well-formed but unknown token);
//!   400 `9106 "Missing X-Auth-Key, X-Auth-Email or Authorization headers"`;
//!   400 `6003 "Invalid request headers"` with `error_chain`
//!   `6111 "Invalid format for Authorization header"`
//!   (<https://github.com/kissgyorgy/cloudflare-dyndns/issues/40>);
//!   401 `1000 "Invalid API Token"` on `/user/tokens/verify`;
//!   404 `81044 "Record does not exist."`
//!   (<https://github.com/zanjie1999/cloudflare-api-v4-ddns/issues/5>);
//!   400 `81058 "An identical record already exists."`
//!   (<https://github.com/jeessy2/ddns-go/issues/1378>);
//!   429 `971 "Please wait and consider throttling your request speed"`
//!   (<https://github.com/cloudflare/workers-sdk/issues/10025>);
//!   400 `7003 "Could not route to ..., perhaps your object identifier is invalid?"` +
//!   `7000 "No route for that URI"`;
//!   403 `9109 "Unauthorized to access requested resource"` (zone the token cannot see);
//!   400 `1004 "DNS Validation Error"` with an `error_chain` for invalid record input.
//!
//! DNSimple API v2
//! - Base `https://api.dnsimple.com/v2/`; auth `Authorization: Bearer <token>`; success bodies
//!   `{"data": ...}`; errors `{"message": ...}`, 401 `{"message":"Authentication failed"}`;
//!   lists `pagination {current_page, per_page, total_entries, total_pages}`, `page`/`per_page`
//!   (default 30); every response carries `X-RateLimit-Limit`/`-Remaining`/`-Reset` (Unix
//!   time); over the limit: 429 `{"message":"quota exceeded"}`.
//!   <https://developer.dnsimple.com/v2/>
//! - `GET /v2/whoami` -> `{"data":{"user":null,"account":{"id","email","plan_identifier",
//!   "created_at","updated_at"}}}` for an account token.
//!   <https://developer.dnsimple.com/v2/identity/>
//!   (fixture `fixtures/v2/api/whoami/success.http` in github.com/dnsimple/dnsimple-developer)
//! - Zone records <https://developer.dnsimple.com/v2/zones/records/>: `GET
//!   /v2/{account}/zones/{zone}/records` (filters `name` exact, `name_like`, `type`; default sort
//!   id asc; the list includes the zone's system SOA/NS records), `POST` same path with
//!   zone-relative `name` ("" = apex), `type`, `content`, `ttl` -> 201 `{"data":{"id",
//!   "zone_id","parent_id","name","content","ttl","priority","type","regions",
//!   "system_record","created_at","updated_at"}}`, `DELETE .../records/{id}` -> 204.
//!   Not found: 404 ``{"message":"Zone `x` not found"}`` / ``{"message":"Record `x` not found"}``
//!   (fixtures `notfound-zone.http`, `notfound-record.http`).
//!
//! Emulator choices (not from the docs): only TXT records can be created; `per_page` outside
//! the documented range is clamped (DNSimple: 1..=100); a path account id other than the
//! token's gets DNSimple 404 ``{"message":"Account `x` not found"}``; a failed `nsupdate` gives
//! HTTP 500 in the provider's error shape (Cloudflare code 500); the `error_chain` codes under
//! Cloudflare's 1004 and DNSimple's `errors` field names for invalid input are illustrative;
//! Cloudflare also hosts padding zones `pad00.test` .. `pad24.test` (not in BIND) so zone
//! listings need two pages at the default `per_page`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// Which provider API a [`FakeApi`] speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Cloudflare,
    Dnsimple,
}

/// A running emulator; stops accepting connections when dropped.
pub struct FakeApi {
    shared: Arc<Shared>,
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

/// One logged request: (method, path with query, authorization header value, body).
type Logged = (String, String, String, String);

const CF_PREFIX: &str = "/client/v4";
const PADDING_ZONES: usize = 25;
const DNSIMPLE_RATE_LIMIT: u64 = 2400;
const DNS_TTL: u64 = 60;

impl FakeApi {
    /// Start a server that hosts `zones` (e.g. ["cf.test"]) for one valid `token`.
    /// Records created through the API are applied to the real DNS with
    /// `nsupdate` (TSIG) against the primary BIND, and removed there on delete.
    pub fn start(flavor: Flavor, zones: &[&str], token: &str) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake API listener");
        let addr = listener.local_addr().expect("fake API address");
        let seed = {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos() as u64;
            nanos ^ (u64::from(std::process::id()) << 32) ^ u64::from(addr.port())
        };
        let mut names: Vec<String> = zones.iter().map(|z| normalize_name(z)).collect();
        if flavor == Flavor::Cloudflare {
            names.extend((0..PADDING_ZONES).map(|i| format!("pad{i:02}.test")));
        }
        let created = now_rfc3339();
        let zones = names
            .into_iter()
            .enumerate()
            .map(|(i, name)| Zone {
                cf_id: hex_id(seed, &name, 0),
                dnsimple_id: 7000 + i as u64,
                name,
                created: created.clone(),
            })
            .collect();
        let shared = Arc::new(Shared {
            flavor,
            token: token.to_string(),
            account_id: 100_000 + u64::from(addr.port()),
            seed,
            state: Mutex::new(State {
                zones,
                records: Vec::new(),
                requests: Vec::new(),
                rate_limit: 0,
                next_id: 1,
            }),
            shutdown: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(0),
            served: AtomicU64::new(0),
            warned: AtomicBool::new(false),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("fake-api-{}", addr.port()))
                .spawn(move || accept_loop(shared, listener))
                .expect("spawn fake API acceptor")
        };
        FakeApi {
            shared,
            addr,
            acceptor: Some(acceptor),
        }
    }

    /// Base URL to configure in certvault: Cloudflare: "http://127.0.0.1:PORT/client/v4";
    /// DNSimple: "http://127.0.0.1:PORT" (paths start with /v2).
    pub fn base_url(&self) -> String {
        match self.shared.flavor {
            Flavor::Cloudflare => format!("http://{}{CF_PREFIX}", self.addr),
            Flavor::Dnsimple => format!("http://{}", self.addr),
        }
    }

    /// The DNSimple account id (whoami answers it); Cloudflare: ignored.
    pub fn account_id(&self) -> u64 {
        self.shared.account_id
    }

    /// The next `n` requests get 429 with `Retry-After: 1` (Cloudflare) / 429 + `Retry-After: 1`
    /// and X-RateLimit-* headers (DNSimple), in the provider's error envelope.
    pub fn rate_limit_next(&self, n: usize) {
        self.shared.lock().rate_limit = n;
    }

    /// Every request received so far: (method, path with query, authorization header value, body).
    pub fn requests(&self) -> Vec<(String, String, String, String)> {
        self.shared.lock().requests.clone()
    }

    /// Live TXT records the API currently holds: (fqdn without trailing dot, value), in
    /// creation order. The value is the TXT data as published in DNS (for Cloudflare content
    /// sent in quotes, without the quotes); `requests()` has the raw bodies.
    pub fn records(&self) -> Vec<(String, String)> {
        self.shared
            .lock()
            .records
            .iter()
            .map(|r| (r.fqdn.clone(), r.txt.clone()))
            .collect()
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        // Unblock accept() so the acceptor sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let conns: Vec<TcpStream> = match self.shared.conns.lock() {
            Ok(mut c) => c.drain().map(|(_, s)| s).collect(),
            Err(p) => p.into_inner().drain().map(|(_, s)| s).collect(),
        };
        for conn in conns {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// State

struct Shared {
    flavor: Flavor,
    token: String,
    account_id: u64,
    seed: u64,
    state: Mutex<State>,
    shutdown: AtomicBool,
    conns: Mutex<HashMap<u64, TcpStream>>,
    next_conn: AtomicU64,
    /// Requests answered (DNSimple's X-RateLimit-Remaining counts down with it).
    served: AtomicU64,
    warned: AtomicBool,
}

struct State {
    zones: Vec<Zone>,
    records: Vec<Rec>,
    requests: Vec<Logged>,
    rate_limit: usize,
    next_id: u64,
}

struct Zone {
    name: String,
    cf_id: String,
    dnsimple_id: u64,
    created: String,
}

#[derive(Clone)]
struct Rec {
    cf_id: String,
    dnsimple_id: u64,
    zone: String,
    fqdn: String,
    /// DNSimple's zone-relative name ("" for the apex).
    rel: String,
    /// `content` exactly as the API received it.
    content: String,
    /// The TXT data applied to DNS.
    txt: String,
    ttl: u64,
    created: String,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1

struct Request {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl Response {
    fn json(status: u16, body: &Value) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Some(body.to_string()),
        }
    }

    fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    fn with_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    for conn in listener.incoming() {
        if shared.shutdown.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = conn else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let shared = Arc::clone(&shared);
        let _ = thread::Builder::new()
            .name("fake-api-conn".to_string())
            .spawn(move || serve_connection(shared, stream));
    }
}

fn serve_connection(shared: Arc<Shared>, stream: TcpStream) {
    let id = shared.next_conn.fetch_add(1, Ordering::SeqCst);
    if let Ok(clone) = stream.try_clone() {
        if let Ok(mut conns) = shared.conns.lock() {
            conns.insert(id, clone);
        }
    }
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_nodelay(true);
    if let Ok(read_half) = stream.try_clone() {
        let mut reader = BufReader::new(read_half);
        let mut writer = stream;
        loop {
            if shared.shutdown.load(Ordering::SeqCst) {
                break;
            }
            let req = match read_request(&mut reader) {
                Ok(Some(req)) => req,
                Ok(None) => break,
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    let resp = Response::json(400, &json!({"message": e.to_string()}));
                    let _ = write_response(&mut writer, &resp, true);
                    break;
                }
                Err(_) => break,
            };
            let close = req.version.eq_ignore_ascii_case("HTTP/1.0")
                || req
                    .header("connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close"));
            let resp = shared.handle(&req);
            if write_response(&mut writer, &resp, close).is_err() || close {
                break;
            }
        }
    }
    if let Ok(mut conns) = shared.conns.lock() {
        conns.remove(&id);
    }
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn read_line(r: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = r.take(64 * 1024).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

fn read_request(r: &mut impl BufRead) -> io::Result<Option<Request>> {
    let line = loop {
        match read_line(r)? {
            None => return Ok(None),
            Some(l) if l.is_empty() => continue,
            Some(l) => break l,
        }
    };
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    let mut headers = Vec::new();
    loop {
        let Some(h) = read_line(r)? else {
            return Err(bad("connection closed inside the header"));
        };
        if h.is_empty() {
            break;
        }
        let Some((k, v)) = h.split_once(':') else {
            return Err(bad("malformed header line"));
        };
        headers.push((k.trim().to_string(), v.trim().to_string()));
        if headers.len() > 200 {
            return Err(bad("too many header lines"));
        }
    }
    let mut req = Request {
        method: method.to_string(),
        target: target.to_string(),
        version: version.to_string(),
        headers,
        body: Vec::new(),
    };
    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        loop {
            let size_line = read_line(r)?.ok_or_else(|| bad("truncated chunked body"))?;
            let size_hex = size_line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_hex, 16).map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                // Trailer section, up to the empty line.
                while let Some(t) = read_line(r)? {
                    if t.is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = req.body.len();
            req.body.resize(start + size, 0);
            r.read_exact(&mut req.body[start..])?;
            read_line(r)?;
        }
    } else if let Some(len) = req.header("content-length") {
        let len: usize = len.parse().map_err(|_| bad("bad Content-Length"))?;
        if len > 16 * 1024 * 1024 {
            return Err(bad("body too large"));
        }
        req.body.resize(len, 0);
        r.read_exact(&mut req.body)?;
    }
    Ok(Some(req))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Unknown",
    }
}

fn write_response(w: &mut impl Write, resp: &Response, close: bool) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = resp.body.as_deref().unwrap_or("");
    if resp.body.is_some() {
        head.push_str("Content-Type: application/json; charset=utf-8\r\n");
    }
    if resp.status != 204 {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str(if close {
        "Connection: close\r\n"
    } else {
        "Connection: keep-alive\r\n"
    });
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body.as_bytes());
    w.write_all(&out)?;
    w.flush()
}

// ---------------------------------------------------------------------------------------------
// Dispatch

impl Shared {
    fn handle(&self, req: &Request) -> Response {
        let auth = req.header("authorization").unwrap_or("").to_string();
        let mut st = self.lock();
        st.requests.push((
            req.method.clone(),
            req.target.clone(),
            auth.clone(),
            String::from_utf8_lossy(&req.body).into_owned(),
        ));
        let served = self.served.fetch_add(1, Ordering::SeqCst) + 1;
        let (path, query) = match req.target.split_once('?') {
            Some((p, q)) => (p, parse_query(q)),
            None => (req.target.as_str(), Vec::new()),
        };
        let segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| pct_decode(s, false))
            .collect();
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let call = Call {
            method: &req.method,
            path,
            segments: &segments,
            query: &query,
            auth: &auth,
            body: &req.body,
        };
        if st.rate_limit > 0 {
            st.rate_limit -= 1;
            return match self.flavor {
                Flavor::Cloudflare => cf_error(
                    429,
                    vec![err(
                        971,
                        "Please wait and consider throttling your request speed",
                    )],
                )
                .with_header("Retry-After", "1"),
                Flavor::Dnsimple => Response::json(429, &json!({"message": "quota exceeded"}))
                    .with_header("Retry-After", "1")
                    .with_header("X-RateLimit-Limit", DNSIMPLE_RATE_LIMIT.to_string())
                    .with_header("X-RateLimit-Remaining", "0")
                    .with_header("X-RateLimit-Reset", (unix_now() + 1).to_string()),
            };
        }
        match self.flavor {
            Flavor::Cloudflare => self.cloudflare(&mut st, &call),
            Flavor::Dnsimple => {
                let remaining = DNSIMPLE_RATE_LIMIT.saturating_sub(served % DNSIMPLE_RATE_LIMIT);
                self.dnsimple(&mut st, &call)
                    .with_header("X-RateLimit-Limit", DNSIMPLE_RATE_LIMIT.to_string())
                    .with_header("X-RateLimit-Remaining", remaining.to_string())
                    .with_header("X-RateLimit-Reset", (unix_now() + 3600).to_string())
            }
        }
    }

    fn new_record_ids(&self, st: &mut State) -> (String, u64) {
        let n = st.next_id;
        st.next_id += 1;
        (hex_id(self.seed, "record", n), 5_000_000 + n)
    }

    /// Apply one TXT change to BIND; `Ok` also when the test bed has no BIND configured.
    fn apply_dns(&self, zone: &str, add: bool, fqdn: &str, txt: &str) -> Result<(), String> {
        let Some(bind) = BindConfig::load() else {
            if !self.warned.swap(true, Ordering::SeqCst) {
                eprintln!(
                    "fake_api: CERTVAULT_TEST_BIND1 / CERTVAULT_TEST_TSIG_API_NAME / \
                     CERTVAULT_TEST_TSIG_API_SECRET missing in the test bed env file; \
                     TXT records are NOT applied to DNS"
                );
            }
            return Ok(());
        };
        bind.nsupdate(zone, add, fqdn, txt)
    }
}

struct Call<'a> {
    method: &'a str,
    path: &'a str,
    segments: &'a [&'a str],
    query: &'a [(String, String)],
    auth: &'a str,
    body: &'a [u8],
}

impl Call<'_> {
    fn q(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn num(&self, key: &str) -> Option<i64> {
        self.q(key)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as i64)
    }
}

// ---------------------------------------------------------------------------------------------
// Cloudflare API v4

fn err(code: u32, message: &str) -> Value {
    json!({"code": code, "message": message})
}

fn cf_error(status: u16, errors: Vec<Value>) -> Response {
    Response::json(
        status,
        &json!({"success": false, "errors": errors, "messages": [], "result": null}),
    )
}

fn cf_ok(result: Value) -> Response {
    Response::json(
        200,
        &json!({"success": true, "errors": [], "messages": [], "result": result}),
    )
}

fn cf_list(items: Vec<Value>, page: usize, per_page: usize) -> Response {
    let total = items.len();
    let total_pages = total.div_ceil(per_page);
    let result: Vec<Value> = items
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    Response::json(
        200,
        &json!({
            "success": true,
            "errors": [],
            "messages": [],
            "result": result,
            "result_info": {
                "page": page,
                "per_page": per_page,
                "count": result.len(),
                "total_count": total,
                "total_pages": total_pages,
            },
        }),
    )
}

fn cf_validation(code: u32, message: &str) -> Response {
    cf_error(
        400,
        vec![json!({
            "code": 1004,
            "message": "DNS Validation Error",
            "error_chain": [err(code, message)],
        })],
    )
}

/// Cloudflare `name` filter with optional operator prefix (`contains:foo`).
fn cf_name_matches(filter: &str, name: &str) -> bool {
    const OPS: [&str; 8] = [
        "equal",
        "not_equal",
        "starts_with",
        "ends_with",
        "contains",
        "starts_with_case_sensitive",
        "ends_with_case_sensitive",
        "contains_case_sensitive",
    ];
    let (op, arg) = match filter.split_once(':') {
        Some((op, arg)) if OPS.contains(&op) => (op, arg),
        _ => ("equal", filter),
    };
    let (n, a) = if op.ends_with("_case_sensitive") {
        (name.to_string(), arg.to_string())
    } else {
        (name.to_ascii_lowercase(), arg.to_ascii_lowercase())
    };
    match op.trim_end_matches("_case_sensitive") {
        "not_equal" => n != a,
        "starts_with" => n.starts_with(&a),
        "ends_with" => n.ends_with(&a),
        "contains" => n.contains(&a),
        _ => n == a,
    }
}

fn is_cf_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Shared {
    fn cf_account(&self) -> Value {
        json!({"id": hex_id(self.seed, "account", 0), "name": "certvault test account"})
    }

    fn cf_zone_json(&self, z: &Zone) -> Value {
        json!({
            "id": z.cf_id,
            "name": z.name,
            "status": "active",
            "paused": false,
            "type": "full",
            "development_mode": 0,
            "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
            "original_name_servers": null,
            "original_registrar": null,
            "original_dnshost": null,
            "created_on": z.created,
            "modified_on": z.created,
            "activated_on": z.created,
            "meta": {"step": 2, "phishing_detected": false},
            "owner": {"id": null, "type": "user", "email": null},
            "account": self.cf_account(),
            "permissions": ["#dns_records:edit", "#dns_records:read", "#zone:read"],
            "plan": {"id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "name": "Free Website",
                     "price": 0, "currency": "USD", "frequency": "", "is_subscribed": false,
                     "can_subscribe": false, "legacy_id": "free", "legacy_discount": false,
                     "externally_managed": false},
        })
    }

    fn cf_record_json(r: &Rec) -> Value {
        json!({
            "id": r.cf_id,
            "name": r.fqdn,
            "type": "TXT",
            "content": r.content,
            "proxiable": false,
            "proxied": false,
            "ttl": r.ttl,
            "settings": {},
            "meta": {},
            "comment": null,
            "tags": [],
            "created_on": r.created,
            "modified_on": r.created,
        })
    }

    /// `None` when the Authorization header carries this server's token.
    fn cf_auth(&self, call: &Call) -> Option<Response> {
        let verify = call.segments == ["client", "v4", "user", "tokens", "verify"];
        if call.auth.is_empty() {
            return Some(cf_error(
                400,
                vec![err(
                    9106,
                    "Missing X-Auth-Key, X-Auth-Email or Authorization headers",
                )],
            ));
        }
        let token = call.auth.strip_prefix("Bearer ").map(str::trim);
        let well_formed = token.is_some_and(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
        if !well_formed {
            return Some(cf_error(
                400,
                vec![json!({
                    "code": 6003,
                    "message": "Invalid request headers",
                    "error_chain": [err(6111, "Invalid format for Authorization header")],
                })],
            ));
        }
        if token != Some(self.token.as_str()) {
            return Some(if verify {
                cf_error(401, vec![err(1000, "Invalid API Token")])
            } else {
                cf_error(403, vec![err(9109, "Invalid access token")])
            });
        }
        None
    }

    fn cloudflare(&self, st: &mut State, call: &Call) -> Response {
        let no_route = || cf_error(404, vec![err(7000, "No route for that URI")]);
        let ["client", "v4", rest @ ..] = call.segments else {
            return no_route();
        };
        if let Some(denied) = self.cf_auth(call) {
            return denied;
        }
        match (call.method, rest) {
            ("GET", ["user", "tokens", "verify"]) => Response::json(
                200,
                &json!({
                    "success": true,
                    "errors": [],
                    "messages": [{"code": 10000, "message": "This API Token is valid and active",
                                  "type": null}],
                    "result": {"id": hex_id(self.seed, "token", 0), "status": "active"},
                }),
            ),
            ("GET", ["zones"]) => self.cf_list_zones(st, call),
            (_, ["zones", zid, tail @ ..]) => {
                if !is_cf_id(zid) {
                    return cf_error(
                        400,
                        vec![
                            err(
                                7003,
                                &format!(
                                    "Could not route to {}, perhaps your object identifier is \
                                     invalid?",
                                    call.path
                                ),
                            ),
                            err(7000, "No route for that URI"),
                        ],
                    );
                }
                let Some(zi) = st.zones.iter().position(|z| z.cf_id == *zid) else {
                    return cf_error(
                        403,
                        vec![err(9109, "Unauthorized to access requested resource")],
                    );
                };
                match (call.method, tail) {
                    ("GET", []) => cf_ok(self.cf_zone_json(&st.zones[zi])),
                    ("GET", ["dns_records"]) => self.cf_list_records(st, zi, call),
                    ("POST", ["dns_records"]) => self.cf_create_record(st, zi, call),
                    ("GET", ["dns_records", rid]) => {
                        let zone = &st.zones[zi].name;
                        match st
                            .records
                            .iter()
                            .find(|r| &r.zone == zone && r.cf_id == *rid)
                        {
                            Some(r) => cf_ok(Self::cf_record_json(r)),
                            None => cf_error(404, vec![err(81044, "Record does not exist.")]),
                        }
                    }
                    ("DELETE", ["dns_records", rid]) => self.cf_delete_record(st, zi, rid),
                    _ => no_route(),
                }
            }
            _ => no_route(),
        }
    }

    fn cf_list_zones(&self, st: &State, call: &Call) -> Response {
        let page = call.num("page").unwrap_or(1).max(1) as usize;
        let per_page = call.num("per_page").unwrap_or(20).clamp(5, 50) as usize;
        let mut zones: Vec<&Zone> = st
            .zones
            .iter()
            .filter(|z| call.q("name").is_none_or(|f| cf_name_matches(f, &z.name)))
            .filter(|_| call.q("status").is_none_or(|s| s == "active"))
            .filter(|_| {
                call.q("account.id")
                    .is_none_or(|a| a == hex_id(self.seed, "account", 0))
            })
            .collect();
        zones.sort_by(|a, b| a.name.cmp(&b.name));
        if call
            .q("direction")
            .is_some_and(|d| d.eq_ignore_ascii_case("desc"))
        {
            zones.reverse();
        }
        let items = zones.into_iter().map(|z| self.cf_zone_json(z)).collect();
        cf_list(items, page, per_page)
    }

    fn cf_list_records(&self, st: &State, zi: usize, call: &Call) -> Response {
        let page = call.num("page").unwrap_or(1).max(1) as usize;
        let per_page = call.num("per_page").unwrap_or(100).clamp(5, 5_000_000) as usize;
        let zone = &st.zones[zi].name;
        let text = |field: &str, value: &str| -> Option<bool> {
            let v = value.to_ascii_lowercase();
            let mut result: Option<bool> = None;
            for (suffix, op) in [
                ("", "exact"),
                (".exact", "exact"),
                (".contains", "contains"),
                (".startswith", "startswith"),
                (".endswith", "endswith"),
            ] {
                if let Some(f) = call.q(&format!("{field}{suffix}")) {
                    let f = f.to_ascii_lowercase();
                    let f = if field == "name" {
                        f.trim_end_matches('.').to_string()
                    } else {
                        f
                    };
                    let ok = match op {
                        "contains" => v.contains(&f),
                        "startswith" => v.starts_with(&f),
                        "endswith" => v.ends_with(&f),
                        _ => v == f,
                    };
                    result = Some(result.unwrap_or(true) && ok);
                }
            }
            result
        };
        let any = call.q("match").is_some_and(|m| m == "any");
        let items: Vec<Value> = st
            .records
            .iter()
            .filter(|r| &r.zone == zone)
            .filter(|r| {
                let checks: Vec<bool> = [
                    call.q("type").map(|t| t.eq_ignore_ascii_case("TXT")),
                    text("name", &r.fqdn),
                    text("content", &r.content),
                ]
                .into_iter()
                .flatten()
                .collect();
                if any && !checks.is_empty() {
                    checks.iter().any(|c| *c)
                } else {
                    checks.iter().all(|c| *c)
                }
            })
            .map(Self::cf_record_json)
            .collect();
        cf_list(items, page, per_page)
    }

    fn cf_create_record(&self, st: &mut State, zi: usize, call: &Call) -> Response {
        let Ok(body) = serde_json::from_slice::<Value>(call.body) else {
            return cf_error(400, vec![err(9207, "Request body is invalid.")]);
        };
        let Some(kind) = body.get("type").and_then(Value::as_str) else {
            return cf_validation(9000, "DNS record type is invalid.");
        };
        if !kind.eq_ignore_ascii_case("TXT") {
            return cf_validation(9000, "fake_api only emulates TXT records.");
        }
        let Some(name) = body.get("name").and_then(Value::as_str).map(str::trim) else {
            return cf_validation(9007, "DNS record name is required.");
        };
        let Some(content) = body.get("content").and_then(Value::as_str) else {
            return cf_validation(9005, "Content for TXT record is invalid.");
        };
        if content.is_empty() {
            return cf_validation(9005, "Content for TXT record is invalid.");
        }
        if body.get("proxied").and_then(Value::as_bool) == Some(true) {
            return cf_error(400, vec![err(9004, "This record type cannot be proxied.")]);
        }
        let ttl =
            match body.get("ttl") {
                None | Some(Value::Null) => 1,
                Some(v) => match v.as_u64() {
                    Some(t) if t == 1 || (60..=86400).contains(&t) => t,
                    _ => return cf_validation(
                        9021,
                        "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for automatic.",
                    ),
                },
            };
        let zone = st.zones[zi].name.clone();
        let name = normalize_name(name);
        // Names not ending in the zone are relative to it, "@" is the apex.
        let fqdn = if name == "@" || name.is_empty() || name == zone {
            zone.clone()
        } else if name.ends_with(&format!(".{zone}")) {
            name
        } else {
            format!("{name}.{zone}")
        };
        if st
            .records
            .iter()
            .any(|r| r.fqdn == fqdn && r.content == content)
        {
            return cf_error(400, vec![err(81058, "An identical record already exists.")]);
        }
        let txt = txt_value(content);
        if let Err(e) = self.apply_dns(&zone, true, &fqdn, &txt) {
            return cf_error(
                500,
                vec![err(
                    500,
                    &format!("Internal Server Error (fake_api nsupdate: {e})"),
                )],
            );
        }
        let (cf_id, dnsimple_id) = self.new_record_ids(st);
        let rel = fqdn
            .strip_suffix(&zone)
            .unwrap_or("")
            .trim_end_matches('.')
            .to_string();
        let rec = Rec {
            cf_id,
            dnsimple_id,
            zone,
            fqdn,
            rel,
            content: content.to_string(),
            txt,
            ttl,
            created: now_rfc3339(),
        };
        let out = Self::cf_record_json(&rec);
        st.records.push(rec);
        cf_ok(out)
    }

    fn cf_delete_record(&self, st: &mut State, zi: usize, rid: &str) -> Response {
        let zone = st.zones[zi].name.clone();
        let Some(pos) = st
            .records
            .iter()
            .position(|r| r.zone == zone && r.cf_id == rid)
        else {
            return cf_error(404, vec![err(81044, "Record does not exist.")]);
        };
        if let Err(e) = self.remove_record(st, pos) {
            return cf_error(
                500,
                vec![err(
                    500,
                    &format!("Internal Server Error (fake_api nsupdate: {e})"),
                )],
            );
        }
        cf_ok(json!({"id": rid}))
    }

    /// Remove `st.records[pos]`, deleting its RR from DNS unless another live record still
    /// publishes the same name and value.
    fn remove_record(&self, st: &mut State, pos: usize) -> Result<(), String> {
        let rec = st.records[pos].clone();
        let shared_rr = st
            .records
            .iter()
            .enumerate()
            .any(|(i, r)| i != pos && r.fqdn == rec.fqdn && r.txt == rec.txt);
        if !shared_rr {
            self.apply_dns(&rec.zone, false, &rec.fqdn, &rec.txt)?;
        }
        st.records.remove(pos);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// DNSimple API v2

fn ds_message(status: u16, message: &str) -> Response {
    Response::json(status, &json!({"message": message}))
}

fn ds_validation(field: &str, problem: &str) -> Response {
    Response::json(
        400,
        &json!({"message": "Validation failed", "errors": {field: [problem]}}),
    )
}

fn ds_list(items: Vec<Value>, call: &Call) -> Response {
    let page = call.num("page").unwrap_or(1).max(1) as usize;
    let per_page = call.num("per_page").unwrap_or(30).clamp(1, 100) as usize;
    let total = items.len();
    let data: Vec<Value> = items
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    Response::json(
        200,
        &json!({
            "data": data,
            "pagination": {
                "current_page": page,
                "per_page": per_page,
                "total_entries": total,
                "total_pages": total.div_ceil(per_page),
            },
        }),
    )
}

impl Shared {
    fn ds_zone_json(&self, z: &Zone) -> Value {
        json!({
            "id": z.dnsimple_id,
            "account_id": self.account_id,
            "name": z.name,
            "reverse": false,
            "secondary": false,
            "last_transferred_at": null,
            "active": true,
            "created_at": z.created,
            "updated_at": z.created,
        })
    }

    fn ds_record_json(r: &Rec) -> Value {
        json!({
            "id": r.dnsimple_id,
            "zone_id": r.zone,
            "parent_id": null,
            "name": r.rel,
            "content": r.content,
            "ttl": r.ttl,
            "priority": null,
            "type": "TXT",
            "regions": ["global"],
            "system_record": false,
            "created_at": r.created,
            "updated_at": r.created,
        })
    }

    /// The SOA and NS records DNSimple lists for every zone (`system_record: true`).
    fn ds_system_records(z: &Zone) -> Vec<(String, Value)> {
        let base = z.dnsimple_id * 10;
        let soa = format!(
            "ns1.dnsimple.com admin.dnsimple.com {} 86400 7200 604800 300",
            unix_now()
        );
        [
            (base + 1, "SOA", soa),
            (base + 2, "NS", "ns1.dnsimple.com".to_string()),
            (base + 3, "NS", "ns2.dnsimple.com".to_string()),
        ]
        .into_iter()
        .map(|(id, kind, content)| {
            (
                kind.to_string(),
                json!({
                    "id": id,
                    "zone_id": z.name,
                    "parent_id": null,
                    "name": "",
                    "content": content,
                    "ttl": 3600,
                    "priority": null,
                    "type": kind,
                    "regions": ["global"],
                    "system_record": true,
                    "created_at": z.created,
                    "updated_at": z.created,
                }),
            )
        })
        .collect()
    }

    fn dnsimple(&self, st: &mut State, call: &Call) -> Response {
        let not_found = || ds_message(404, "Not Found");
        let ["v2", rest @ ..] = call.segments else {
            return not_found();
        };
        let token = call.auth.strip_prefix("Bearer ").map(str::trim);
        if token != Some(self.token.as_str()) {
            return ds_message(401, "Authentication failed");
        }
        let (account, tail) = match (call.method, rest) {
            ("GET", ["whoami"]) => {
                return Response::json(
                    200,
                    &json!({"data": {"user": null, "account": {
                        "id": self.account_id,
                        "email": "certvault-test@example.com",
                        "plan_identifier": "dnsimple-professional",
                        "created_at": "2024-01-01T00:00:00Z",
                        "updated_at": "2024-01-01T00:00:00Z",
                    }}}),
                )
            }
            (_, [account, tail @ ..]) => (*account, tail),
            _ => return not_found(),
        };
        if account != self.account_id.to_string() {
            return ds_message(404, &format!("Account `{account}` not found"));
        }
        match (call.method, tail) {
            ("GET", ["zones"]) => {
                let like = call.q("name_like").map(str::to_ascii_lowercase);
                let items = st
                    .zones
                    .iter()
                    .filter(|z| like.as_ref().is_none_or(|l| z.name.contains(l.as_str())))
                    .map(|z| self.ds_zone_json(z))
                    .collect();
                ds_list(items, call)
            }
            (_, ["zones", zone, tail @ ..]) => {
                let zone_name = normalize_name(zone);
                let Some(zi) = st.zones.iter().position(|z| z.name == zone_name) else {
                    return ds_message(404, &format!("Zone `{zone}` not found"));
                };
                match (call.method, tail) {
                    ("GET", []) => {
                        Response::json(200, &json!({"data": self.ds_zone_json(&st.zones[zi])}))
                    }
                    ("GET", ["records"]) => self.ds_list_records(st, zi, call),
                    ("POST", ["records"]) => self.ds_create_record(st, zi, call),
                    ("GET", ["records", rid]) => {
                        match st.records.iter().find(|r| {
                            r.zone == zone_name && rid.parse::<u64>() == Ok(r.dnsimple_id)
                        }) {
                            Some(r) => {
                                Response::json(200, &json!({"data": Self::ds_record_json(r)}))
                            }
                            None => ds_message(404, &format!("Record `{rid}` not found")),
                        }
                    }
                    ("DELETE", ["records", rid]) => {
                        let Some(pos) = st.records.iter().position(|r| {
                            r.zone == zone_name && rid.parse::<u64>() == Ok(r.dnsimple_id)
                        }) else {
                            return ds_message(404, &format!("Record `{rid}` not found"));
                        };
                        match self.remove_record(st, pos) {
                            Ok(()) => Response::empty(204),
                            Err(e) => ds_message(
                                500,
                                &format!("Internal Server Error (fake_api nsupdate: {e})"),
                            ),
                        }
                    }
                    _ => not_found(),
                }
            }
            _ => not_found(),
        }
    }

    fn ds_list_records(&self, st: &State, zi: usize, call: &Call) -> Response {
        let z = &st.zones[zi];
        let mut items: Vec<(u64, String, Value)> = Self::ds_system_records(z)
            .into_iter()
            .map(|(kind, v)| (v["id"].as_u64().unwrap_or(0), kind, v))
            .collect();
        items.extend(
            st.records
                .iter()
                .filter(|r| r.zone == z.name)
                .map(|r| (r.dnsimple_id, "TXT".to_string(), Self::ds_record_json(r))),
        );
        items.sort_by_key(|(id, _, _)| *id);
        let name = call.q("name");
        let like = call.q("name_like").map(str::to_ascii_lowercase);
        let kind = call.q("type");
        let filtered = items
            .into_iter()
            .filter(|(_, k, v)| {
                let rel = v["name"].as_str().unwrap_or("");
                name.is_none_or(|n| n == rel)
                    && like.as_ref().is_none_or(|l| rel.contains(l.as_str()))
                    && kind.is_none_or(|t| t.eq_ignore_ascii_case(k))
            })
            .map(|(_, _, v)| v)
            .collect();
        ds_list(filtered, call)
    }

    fn ds_create_record(&self, st: &mut State, zi: usize, call: &Call) -> Response {
        let Ok(body) = serde_json::from_slice::<Value>(call.body) else {
            return ds_message(400, "Invalid JSON body");
        };
        let Some(name) = body.get("name").and_then(Value::as_str) else {
            return ds_validation("name", "can't be blank");
        };
        let Some(kind) = body.get("type").and_then(Value::as_str) else {
            return ds_validation("type", "can't be blank");
        };
        if !kind.eq_ignore_ascii_case("TXT") {
            return ds_validation("type", "is not supported by fake_api (TXT only)");
        }
        let content = body.get("content").and_then(Value::as_str).unwrap_or("");
        if content.is_empty() {
            return ds_validation("content", "can't be blank");
        }
        let ttl = match body.get("ttl") {
            None | Some(Value::Null) => 3600,
            Some(v) => match v.as_u64() {
                Some(t) => t,
                None => return ds_validation("ttl", "is not a number"),
            },
        };
        let zone = st.zones[zi].name.clone();
        let rel = normalize_name(name);
        // The name is always zone-relative: a FQDN ends up under the zone again, as with the
        // real API.
        let fqdn = if rel.is_empty() {
            zone.clone()
        } else {
            format!("{rel}.{zone}")
        };
        let txt = txt_value(content);
        if let Err(e) = self.apply_dns(&zone, true, &fqdn, &txt) {
            return ds_message(
                500,
                &format!("Internal Server Error (fake_api nsupdate: {e})"),
            );
        }
        let (cf_id, dnsimple_id) = self.new_record_ids(st);
        let rec = Rec {
            cf_id,
            dnsimple_id,
            zone,
            fqdn,
            rel,
            content: content.to_string(),
            txt,
            ttl,
            created: now_rfc3339(),
        };
        let out = Self::ds_record_json(&rec);
        st.records.push(rec);
        Response::json(201, &json!({"data": out}))
    }
}

// ---------------------------------------------------------------------------------------------
// DNS (BIND via nsupdate)

struct BindConfig {
    host: String,
    port: String,
    key_name: String,
    secret: String,
}

/// The test bed's env file (`export K=V` lines), as `harness::bed()` reads it.
fn testbed_env() -> HashMap<String, String> {
    let dir = std::env::var("CERTVAULT_TESTBED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".testbed"));
    let Ok(text) = std::fs::read_to_string(dir.join("env")) else {
        return HashMap::new();
    };
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.split(" #").next().unwrap_or("").trim();
            let v = v.trim_matches('"').trim_matches('\'');
            (k.trim().to_string(), v.to_string())
        })
        .collect()
}

impl BindConfig {
    fn load() -> Option<BindConfig> {
        let env = testbed_env();
        let server = env.get("CERTVAULT_TEST_BIND1")?;
        let (host, port) = server.rsplit_once(':')?;
        Some(BindConfig {
            host: host.trim_matches(['[', ']']).to_string(),
            port: port.to_string(),
            key_name: env.get("CERTVAULT_TEST_TSIG_API_NAME")?.clone(),
            secret: env.get("CERTVAULT_TEST_TSIG_API_SECRET")?.clone(),
        })
    }

    fn nsupdate(&self, zone: &str, add: bool, fqdn: &str, txt: &str) -> Result<(), String> {
        let rr = if add {
            format!("update add {fqdn}. {DNS_TTL} IN TXT {}", zone_file_txt(txt))
        } else {
            format!("update delete {fqdn}. IN TXT {}", zone_file_txt(txt))
        };
        let script = format!(
            "server {} {}\nzone {zone}\n{rr}\nsend\n",
            self.host, self.port
        );
        let mut child = Command::new("nsupdate")
            .arg("-y")
            .arg(format!("hmac-sha256:{}:{}", self.key_name, self.secret))
            .arg("-t")
            .arg("10")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run nsupdate: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(script.as_bytes())
                .map_err(|e| format!("writing to nsupdate: {e}"))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("waiting for nsupdate: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "nsupdate {} for {fqdn} in zone {zone}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim()
            ))
        }
    }
}

/// The TXT data a record content stands for: quoted RFC 1035 character-strings are unquoted
/// (and concatenated), anything else is taken literally.
fn txt_value(content: &str) -> String {
    let s = content.trim();
    if !(s.len() >= 2 && s.starts_with('"') && s.ends_with('"')) {
        return content.to_string();
    }
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => loop {
                match chars.next() {
                    None | Some('"') => break,
                    Some('\\') => {
                        let digits: String =
                            std::iter::from_fn(|| chars.next_if(|d| d.is_ascii_digit()))
                                .take(3)
                                .collect();
                        if digits.len() == 3 {
                            if let Ok(b) = digits.parse::<u8>() {
                                out.push(char::from(b));
                            }
                        } else if let Some(n) = chars.next() {
                            out.push_str(&digits);
                            out.push(n);
                        }
                    }
                    Some(other) => out.push(other),
                }
            },
            c if c.is_whitespace() => {}
            other => out.push(other),
        }
    }
    out
}

/// `txt` as zone-file character-strings (split at 255 bytes) for nsupdate.
fn zone_file_txt(txt: &str) -> String {
    let mut parts = Vec::new();
    let mut cur = String::new();
    for c in txt.chars() {
        if cur.len() + c.len_utf8() > 255 {
            parts.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    parts.push(cur);
    parts
        .iter()
        .map(|p| {
            let escaped: String = p
                .chars()
                .flat_map(|c| match c {
                    '"' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            format!("\"{escaped}\"")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// Small helpers

fn normalize_name(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn hex_id(seed: u64, kind: &str, n: u64) -> String {
    let mut a = DefaultHasher::new();
    (seed, kind, n, 'a').hash(&mut a);
    let mut b = DefaultHasher::new();
    (seed, kind, n, 'b').hash(&mut b);
    format!("{:016x}{:016x}", a.finish(), b.finish())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn now_rfc3339() -> String {
    let secs = unix_now();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn pct_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (pct_decode(k, true), pct_decode(v, true))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests of the emulators themselves (plain HTTP, no certvault code).

const CF_TOKEN: &str = "fakeapi-cf-token_0123456789abcdefABCDEF";
const DS_TOKEN: &str = "fakeapi-dnsimple-token-0123456789";

/// One client for all calls, so pooled keep-alive connections get exercised too.
fn client() -> reqwest::blocking::Client {
    static CLIENT: std::sync::OnceLock<reqwest::blocking::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("reqwest client")
        })
        .clone()
}

fn unique_label() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!(
        "fa{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        nanos % 100_000
    )
}

/// (status, headers, JSON body or Null) of one request.
fn call(
    method: reqwest::Method,
    url: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut rb = client().request(method, url);
    if let Some(a) = auth {
        rb = rb.header("Authorization", a);
    }
    if let Some(b) = body {
        rb = rb
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    let resp = rb.send().unwrap_or_else(|e| panic!("request {url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().expect("response body");
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("JSON from {url}: {e}: {text}"))
    };
    (status, headers, json)
}

/// The TXT values BIND serves for `name`, or `None` when the test bed has no BIND.
fn dns_txt(name: &str) -> Option<Vec<String>> {
    let bind = BindConfig::load()?;
    let out = Command::new("dig")
        .arg(format!("@{}", bind.host))
        .args([
            "-p",
            bind.port.as_str(),
            "+short",
            "+norecurse",
            "TXT",
            name,
        ])
        .output()
        .expect("run dig");
    assert!(out.status.success(), "dig failed: {out:?}");
    let mut values: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(txt_value)
        .collect();
    values.sort();
    Some(values)
}

/// Wait (up to 10 s) until BIND serves exactly `expected` at `name`; skip without BIND.
fn assert_dns(name: &str, expected: &[&str]) {
    let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected.sort();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let Some(got) = dns_txt(name) else {
            eprintln!(
                "fake_api test: no BIND in the test bed env file; DNS check of {name} skipped"
            );
            return;
        };
        if got == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "BIND serves {got:?} at {name}, expected {expected:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn cf_zone_id(base: &str, zone: &str) -> String {
    let (status, _, body) = call(
        reqwest::Method::GET,
        &format!("{base}/zones?name={zone}"),
        Some(&format!("Bearer {CF_TOKEN}")),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true, "{body}");
    assert_eq!(body["result"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["result"][0]["name"], zone);
    body["result"][0]["id"]
        .as_str()
        .expect("zone id")
        .to_string()
}

#[test]
fn cloudflare_txt_records_coexist_and_reach_dns() {
    let api = FakeApi::start(Flavor::Cloudflare, &["cf.test"], CF_TOKEN);
    let base = api.base_url();
    let auth = format!("Bearer {CF_TOKEN}");
    let zid = cf_zone_id(&base, "cf.test");
    let name = format!("_acme-challenge.{}.cf.test", unique_label());
    let records_url = format!("{base}/zones/{zid}/dns_records");

    let mut ids = Vec::new();
    for value in ["value-one", "value-two"] {
        let (status, _, body) = call(
            reqwest::Method::POST,
            &records_url,
            Some(&auth),
            Some(json!({"type": "TXT", "name": name, "content": value, "ttl": 60})),
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["success"], true);
        assert_eq!(body["result"]["name"], name.as_str());
        assert_eq!(body["result"]["content"], value);
        assert_eq!(body["result"]["type"], "TXT");
        let id = body["result"]["id"]
            .as_str()
            .expect("record id")
            .to_string();
        assert!(is_cf_id(&id), "{id}");
        ids.push(id);
    }
    // The same name and content again is refused.
    let (status, _, body) = call(
        reqwest::Method::POST,
        &records_url,
        Some(&auth),
        Some(json!({"type": "TXT", "name": name, "content": "value-one", "ttl": 60})),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["code"], 81058);

    let list = format!("{records_url}?type=TXT&name={name}");
    let (status, _, body) = call(reqwest::Method::GET, &list, Some(&auth), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"].as_array().map(Vec::len), Some(2), "{body}");
    assert_eq!(body["result_info"]["total_count"], 2);
    assert_eq!(body["result_info"]["page"], 1);
    assert_eq!(body["result_info"]["per_page"], 100);
    let held: Vec<(String, String)> = api
        .records()
        .into_iter()
        .filter(|(n, _)| *n == name)
        .collect();
    assert_eq!(
        held,
        vec![
            (name.clone(), "value-one".to_string()),
            (name.clone(), "value-two".to_string())
        ]
    );
    assert_dns(&name, &["value-one", "value-two"]);

    // Deleting one keeps the other, in the API and in DNS.
    let (status, _, body) = call(
        reqwest::Method::DELETE,
        &format!("{records_url}/{}", ids[0]),
        Some(&auth),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["id"], ids[0].as_str());
    let (_, _, body) = call(reqwest::Method::GET, &list, Some(&auth), None);
    assert_eq!(body["result"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["result"][0]["content"], "value-two");
    assert_dns(&name, &["value-two"]);

    let (status, _, body) = call(
        reqwest::Method::DELETE,
        &format!("{records_url}/{}", ids[0]),
        Some(&auth),
        None,
    );
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["success"], false);
    assert_eq!(body["errors"][0]["code"], 81044);
    assert_eq!(body["errors"][0]["message"], "Record does not exist.");

    let (status, _, _) = call(
        reqwest::Method::DELETE,
        &format!("{records_url}/{}", ids[1]),
        Some(&auth),
        None,
    );
    assert_eq!(status, 200);
    assert!(api.records().iter().all(|(n, _)| *n != name));
    assert_dns(&name, &[]);

    // Quoted content is stored as sent and published unquoted; relative names join the zone.
    let rel = format!("_acme-challenge.{}", unique_label());
    let (status, _, body) = call(
        reqwest::Method::POST,
        &records_url,
        Some(&auth),
        Some(json!({"type": "TXT", "name": rel, "content": "\"quoted-value\""})),
    );
    assert_eq!(status, 200, "{body}");
    let fqdn = format!("{rel}.cf.test");
    assert_eq!(body["result"]["name"], fqdn.as_str());
    assert_eq!(body["result"]["content"], "\"quoted-value\"");
    assert_eq!(body["result"]["ttl"], 1);
    assert_dns(&fqdn, &["quoted-value"]);
    let id = body["result"]["id"].as_str().unwrap().to_string();
    let (status, _, _) = call(
        reqwest::Method::DELETE,
        &format!("{records_url}/{id}"),
        Some(&auth),
        None,
    );
    assert_eq!(status, 200);
    assert_dns(&fqdn, &[]);

    let reqs = api.requests();
    assert!(reqs.iter().all(|(_, _, a, _)| *a == auth));
    assert!(reqs.iter().any(|(m, p, _, b)| m == "POST"
        && *p == format!("/client/v4/zones/{zid}/dns_records")
        && b.contains("value-two")));
}

#[test]
fn cloudflare_auth_errors_follow_the_live_api() {
    let api = FakeApi::start(Flavor::Cloudflare, &["cf.test"], CF_TOKEN);
    let url = format!("{}/zones?name=cf.test", api.base_url());

    let (status, _, body) = call(
        reqwest::Method::GET,
        &url,
        Some("Bearer wrong-token-0123456789"),
        None,
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body,
        json!({"success": false, "errors": [{"code": 9109, "message": "Invalid access token"}],
               "messages": [], "result": null})
    );

    let (status, _, body) = call(reqwest::Method::GET, &url, None, None);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["code"], 9106);

    let (status, _, body) = call(reqwest::Method::GET, &url, Some("Basic Zm9vOmJhcg=="), None);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["code"], 6003);
    assert_eq!(body["errors"][0]["error_chain"][0]["code"], 6111);

    let verify = format!("{}/user/tokens/verify", api.base_url());
    let (status, _, body) = call(reqwest::Method::GET, &verify, Some("Bearer nope"), None);
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["errors"][0]["code"], 1000);
    let (status, _, body) = call(
        reqwest::Method::GET,
        &verify,
        Some(&format!("Bearer {CF_TOKEN}")),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["status"], "active");

    // A zone id this token cannot see, and a malformed one.
    let auth = format!("Bearer {CF_TOKEN}");
    let (status, _, body) = call(
        reqwest::Method::GET,
        &format!("{}/zones/{}/dns_records", api.base_url(), "0".repeat(32)),
        Some(&auth),
        None,
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["errors"][0]["code"], 9109);
    let (status, _, body) = call(
        reqwest::Method::GET,
        &format!("{}/zones/cf.test/dns_records", api.base_url()),
        Some(&auth),
        None,
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["code"], 7003);
    assert_eq!(api.requests().len(), 7);
}

#[test]
fn cloudflare_zone_list_paginates() {
    let api = FakeApi::start(Flavor::Cloudflare, &["cf.test"], CF_TOKEN);
    let auth = format!("Bearer {CF_TOKEN}");
    let total = 1 + PADDING_ZONES;

    let (status, _, body) = call(
        reqwest::Method::GET,
        &format!("{}/zones", api.base_url()),
        Some(&auth),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["result_info"],
        json!({"page": 1, "per_page": 20, "count": 20, "total_count": total,
               "total_pages": total.div_ceil(20)})
    );

    let mut names = Vec::new();
    let mut page = 1;
    loop {
        let (_, _, body) = call(
            reqwest::Method::GET,
            &format!("{}/zones?page={page}&per_page=7", api.base_url()),
            Some(&auth),
            None,
        );
        let result = body["result"].as_array().expect("result").clone();
        assert_eq!(body["result_info"]["count"], result.len());
        names.extend(
            result
                .iter()
                .map(|z| z["name"].as_str().unwrap().to_string()),
        );
        if page >= body["result_info"]["total_pages"].as_u64().unwrap() as usize {
            break;
        }
        page += 1;
    }
    assert_eq!(page, total.div_ceil(7));
    assert_eq!(names.len(), total);
    assert!(names.contains(&"cf.test".to_string()));
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, names);

    // Beyond the last page: empty result, same totals.
    let (_, _, body) = call(
        reqwest::Method::GET,
        &format!("{}/zones?page=99", api.base_url()),
        Some(&auth),
        None,
    );
    assert_eq!(body["result"], json!([]));
    assert_eq!(body["result_info"]["total_count"], total);

    // An unknown name is not an error.
    let (status, _, body) = call(
        reqwest::Method::GET,
        &format!("{}/zones?name=nope.test", api.base_url()),
        Some(&auth),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["result"], json!([]));
    assert_eq!(body["result_info"]["total_count"], 0);

    let (_, _, body) = call(
        reqwest::Method::GET,
        &format!("{}/zones?name=ends_with:.test&per_page=50", api.base_url()),
        Some(&auth),
        None,
    );
    assert_eq!(body["result_info"]["total_count"], total);
}

#[test]
fn rate_limited_requests_get_429_with_retry_after() {
    let cf = FakeApi::start(Flavor::Cloudflare, &["cf.test"], CF_TOKEN);
    cf.rate_limit_next(2);
    let url = format!("{}/zones?name=cf.test", cf.base_url());
    let auth = format!("Bearer {CF_TOKEN}");
    for _ in 0..2 {
        let (status, headers, body) = call(reqwest::Method::GET, &url, Some(&auth), None);
        assert_eq!(status, 429, "{body}");
        assert_eq!(headers["retry-after"], "1");
        assert_eq!(body["success"], false);
        assert_eq!(body["errors"][0]["code"], 971);
    }
    let (status, _, _) = call(reqwest::Method::GET, &url, Some(&auth), None);
    assert_eq!(status, 200);

    let ds = FakeApi::start(Flavor::Dnsimple, &["dnsimple.test"], DS_TOKEN);
    ds.rate_limit_next(1);
    let url = format!("{}/v2/whoami", ds.base_url());
    let auth = format!("Bearer {DS_TOKEN}");
    let (status, headers, body) = call(reqwest::Method::GET, &url, Some(&auth), None);
    assert_eq!(status, 429, "{body}");
    assert_eq!(body, json!({"message": "quota exceeded"}));
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    assert_eq!(headers["x-ratelimit-limit"], "2400");
    assert!(headers.contains_key("x-ratelimit-reset"));
    let (status, headers, _) = call(reqwest::Method::GET, &url, Some(&auth), None);
    assert_eq!(status, 200);
    assert!(headers.contains_key("x-ratelimit-remaining"));
    assert_eq!(ds.requests().len(), 2);
}

#[test]
fn dnsimple_txt_records_coexist_and_reach_dns() {
    let api = FakeApi::start(Flavor::Dnsimple, &["dnsimple.test"], DS_TOKEN);
    let base = api.base_url();
    let auth = format!("Bearer {DS_TOKEN}");

    let (status, _, body) = call(
        reqwest::Method::GET,
        &format!("{base}/v2/whoami"),
        Some(&auth),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["user"], Value::Null);
    let account = body["data"]["account"]["id"].as_u64().expect("account id");
    assert_eq!(account, api.account_id());

    let rel = format!("_acme-challenge.{}", unique_label());
    let fqdn = format!("{rel}.dnsimple.test");
    let records_url = format!("{base}/v2/{account}/zones/dnsimple.test/records");
    let mut ids = Vec::new();
    for value in ["value-one", "value-two"] {
        let (status, _, body) = call(
            reqwest::Method::POST,
            &records_url,
            Some(&auth),
            Some(json!({"name": rel, "type": "TXT", "content": value, "ttl": 60})),
        );
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["data"]["name"], rel.as_str());
        assert_eq!(body["data"]["zone_id"], "dnsimple.test");
        assert_eq!(body["data"]["content"], value);
        assert_eq!(body["data"]["system_record"], false);
        ids.push(body["data"]["id"].as_u64().expect("record id"));
    }
    let list = format!("{records_url}?name={rel}&type=TXT");
    let (status, headers, body) = call(reqwest::Method::GET, &list, Some(&auth), None);
    assert_eq!(status, 200, "{body}");
    assert!(headers.contains_key("x-ratelimit-limit"));
    assert_eq!(body["data"].as_array().map(Vec::len), Some(2), "{body}");
    assert_eq!(
        body["pagination"],
        json!({"current_page": 1, "per_page": 30, "total_entries": 2, "total_pages": 1})
    );
    assert_eq!(api.records().len(), 2);
    assert_dns(&fqdn, &["value-one", "value-two"]);

    let (status, _, body) = call(
        reqwest::Method::DELETE,
        &format!("{records_url}/{}", ids[0]),
        Some(&auth),
        None,
    );
    assert_eq!(status, 204);
    assert_eq!(body, Value::Null);
    let (_, _, body) = call(reqwest::Method::GET, &list, Some(&auth), None);
    assert_eq!(body["data"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["data"][0]["content"], "value-two");
    assert_eq!(api.records(), vec![(fqdn.clone(), "value-two".to_string())]);
    assert_dns(&fqdn, &["value-two"]);

    let (status, _, body) = call(
        reqwest::Method::DELETE,
        &format!("{records_url}/{}", ids[0]),
        Some(&auth),
        None,
    );
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"message": format!("Record `{}` not found", ids[0])})
    );

    let (status, _, _) = call(
        reqwest::Method::DELETE,
        &format!("{records_url}/{}", ids[1]),
        Some(&auth),
        None,
    );
    assert_eq!(status, 204);
    assert!(api.records().is_empty());
    assert_dns(&fqdn, &[]);
}

#[test]
fn dnsimple_errors_and_pagination_follow_the_docs() {
    let api = FakeApi::start(Flavor::Dnsimple, &["dnsimple.test"], DS_TOKEN);
    let base = api.base_url();
    let account = api.account_id();
    let auth = format!("Bearer {DS_TOKEN}");

    for bad in [Some("Bearer wrong"), None] {
        let (status, _, body) = call(
            reqwest::Method::GET,
            &format!("{base}/v2/whoami"),
            bad,
            None,
        );
        assert_eq!(status, 401, "{body}");
        assert_eq!(body, json!({"message": "Authentication failed"}));
    }

    let (status, _, body) = call(
        reqwest::Method::GET,
        &format!("{base}/v2/{account}/zones/nope.test/records"),
        Some(&auth),
        None,
    );
    assert_eq!(status, 404);
    assert_eq!(body, json!({"message": "Zone `nope.test` not found"}));

    let (status, _, body) = call(
        reqwest::Method::POST,
        &format!("{base}/v2/{account}/zones/dnsimple.test/records"),
        Some(&auth),
        Some(json!({"name": "x", "type": "TXT"})),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["message"], "Validation failed");

    // The system SOA/NS records are listed and paginated like any other.
    let url = format!("{base}/v2/{account}/zones/dnsimple.test/records?per_page=2");
    let (status, _, body) = call(reqwest::Method::GET, &url, Some(&auth), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(body["data"][0]["type"], "SOA");
    assert_eq!(body["data"][0]["system_record"], true);
    assert_eq!(
        body["pagination"],
        json!({"current_page": 1, "per_page": 2, "total_entries": 3, "total_pages": 2})
    );
    let (_, _, body) = call(
        reqwest::Method::GET,
        &format!("{url}&page=2"),
        Some(&auth),
        None,
    );
    assert_eq!(body["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["pagination"]["current_page"], 2);

    let (_, _, body) = call(
        reqwest::Method::GET,
        &format!("{base}/v2/{account}/zones?name_like=dnsimple"),
        Some(&auth),
        None,
    );
    assert_eq!(body["data"][0]["name"], "dnsimple.test");
    assert_eq!(body["data"][0]["account_id"], account);

    let (status, _, body) = call(
        reqwest::Method::GET,
        &format!("{base}/v2/{}/zones/dnsimple.test/records", account + 1),
        Some(&auth),
        None,
    );
    assert_eq!(status, 404, "{body}");
}

#[test]
fn dropping_the_server_stops_it() {
    let api = FakeApi::start(Flavor::Dnsimple, &["dnsimple.test"], DS_TOKEN);
    let url = format!("{}/v2/whoami", api.base_url());
    let (status, _, _) = call(
        reqwest::Method::GET,
        &url,
        Some(&format!("Bearer {DS_TOKEN}")),
        None,
    );
    assert_eq!(status, 200);
    drop(api);
    let err = client()
        .get(&url)
        .send()
        .expect_err("the server must be gone");
    assert!(err.is_connect() || err.is_request(), "{err}");
}

#[test]
fn a_failed_dns_update_is_a_500_and_stores_nothing() {
    if BindConfig::load().is_none() {
        eprintln!("fake_api test: no BIND in the test bed env file; nsupdate failure not tested");
        return;
    }
    // The padding zones are not in BIND, so nsupdate is refused there.
    let api = FakeApi::start(Flavor::Cloudflare, &["cf.test"], CF_TOKEN);
    let zid = cf_zone_id(&api.base_url(), "pad00.test");
    let (status, _, body) = call(
        reqwest::Method::POST,
        &format!("{}/zones/{zid}/dns_records", api.base_url()),
        Some(&format!("Bearer {CF_TOKEN}")),
        Some(json!({"type": "TXT", "name": "_acme-challenge.pad00.test", "content": "v"})),
    );
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["success"], false);
    assert!(api.records().is_empty());
}
