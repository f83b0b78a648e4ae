//! Emulators of the Cloudflare API v4 ([`cloudflare`]) and the DNSimple API v2 ([`dnsimple`])
//! on `tiny_http`, for testing certvault's DNS-01 clients without the real services. They
//! follow the PUBLISHED APIs, not certvault's client; each module lists the facts it relies on.
//! Every TXT record created through an emulator is applied to the test bed's primary BIND with
//! `nsupdate` (TSIG, [`dns`]), so the ACME test CA sees it, and is removed there again on
//! delete. An emulator needs the test bed's BIND: without it, it fails to start.
//!
//! Emulator choices common to both (not from the docs): only TXT records can be created
//! through the API (tests put other records there with [`FakeApi::seed_record`]); a failed
//! `nsupdate` is HTTP 500 in the provider's error shape, and nothing is stored.

mod cloudflare;
mod dns;
mod dnsimple;
mod http;
mod tests;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

pub use dns::served_txt;
use http::{Call, Reply};

/// Which provider API a [`FakeApi`] speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Cloudflare,
    Dnsimple,
}

/// One request as an emulator received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    /// The request target as sent: path and query.
    pub path: String,
    /// The `Authorization` header's value, "" without one.
    pub authorization: String,
    pub body: String,
}

/// A running emulator; dropping it stops it (see [`shut_sockets_at`]).
pub struct FakeApi {
    shared: Arc<Shared>,
    addr: SocketAddr,
    serving: Option<(Arc<tiny_http::Server>, JoinHandle<()>)>,
}

impl FakeApi {
    /// Start a server that hosts `zones` (e.g. ["cf.test"]) for one valid `token`.
    pub fn start(flavor: Flavor, zones: &[&str], token: &str) -> FakeApi {
        let bind = dns::Bind::from_bed();
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("fake API server"));
        let addr = server.server_addr().to_ip().expect("fake API address");
        let seed = {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos() as u64;
            nanos ^ (u64::from(std::process::id()) << 32) ^ u64::from(addr.port())
        };
        let mut names: Vec<String> = zones.iter().map(|z| normalize_name(z)).collect();
        if flavor == Flavor::Cloudflare {
            names.extend(cloudflare::padding_zones());
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
            bind,
            state: Mutex::new(State {
                zones,
                records: Vec::new(),
                requests: Vec::new(),
                rate_limit: 0,
                next_id: 1,
                served: 0,
            }),
        });
        let worker = {
            let (shared, server) = (Arc::clone(&shared), Arc::clone(&server));
            std::thread::Builder::new()
                .name(format!("fake-api-{}", addr.port()))
                .spawn(move || {
                    for mut req in server.incoming_requests() {
                        let reply = shared.handle(&mut req);
                        let _ = req.respond(reply);
                    }
                })
                .expect("spawn the fake API worker")
        };
        FakeApi {
            shared,
            addr,
            serving: Some((server, worker)),
        }
    }

    /// Base URL to configure in certvault: Cloudflare: "http://127.0.0.1:PORT/client/v4";
    /// DNSimple: "http://127.0.0.1:PORT" (paths start with /v2).
    pub fn base_url(&self) -> String {
        match self.shared.flavor {
            Flavor::Cloudflare => format!("http://{}{}", self.addr, cloudflare::PREFIX),
            Flavor::Dnsimple => format!("http://{}", self.addr),
        }
    }

    pub fn flavor(&self) -> Flavor {
        self.shared.flavor
    }

    /// The DNSimple account id (whoami answers it); Cloudflare: ignored.
    pub fn account_id(&self) -> u64 {
        self.shared.account_id
    }

    /// The next `n` requests get 429 with `Retry-After: 1` in the provider's error shape
    /// (DNSimple adds its X-RateLimit-* headers).
    pub fn rate_limit_next(&self, n: usize) {
        self.shared.lock().rate_limit = n;
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
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
            .filter(|r| r.kind == "TXT")
            .map(|r| (r.fqdn.clone(), r.txt.clone()))
            .collect()
    }

    /// Put a record of any type into the API's state, as if created elsewhere (the web UI,
    /// another tool): `name` is its FQDN in `zone`. A TXT record is published in BIND like
    /// one created through the API; other types only live in the emulator, which lists and
    /// serves them by id with their real `type`. Returns the record id as the API's paths
    /// spell it (Cloudflare's hex id, DNSimple's number).
    #[track_caller]
    pub fn seed_record(&self, zone: &str, name: &str, kind: &str, content: &str) -> String {
        let mut st = self.shared.lock();
        let zone = normalize_name(zone);
        let zi = st
            .zones
            .iter()
            .position(|z| z.name == zone)
            .unwrap_or_else(|| panic!("the emulator hosts no zone {zone}"));
        let fqdn = normalize_name(name);
        assert!(
            fqdn == zone || fqdn.ends_with(&format!(".{zone}")),
            "{fqdn} is not in zone {zone}"
        );
        let kind = kind.to_ascii_uppercase();
        let rec = self
            .shared
            .add_record(&mut st, zi, fqdn, &kind, content, 300)
            .unwrap_or_else(|e| panic!("seeding {kind} {name}: {e}"));
        self.shared.id_of(&rec)
    }

    /// Whether the API still holds the record with this id (see [`Self::seed_record`]).
    pub fn has_record(&self, id: &str) -> bool {
        let st = self.shared.lock();
        st.records.iter().any(|r| self.shared.id_of(r) == id)
    }

    /// Remove the record with this id as the API's DELETE would (from BIND too, for TXT);
    /// `false` if there is none.
    #[track_caller]
    pub fn remove_record(&self, id: &str) -> bool {
        let mut st = self.shared.lock();
        let Some(pos) = st.records.iter().position(|r| self.shared.id_of(r) == id) else {
            return false;
        };
        self.shared
            .remove_record(&mut st, pos)
            .unwrap_or_else(|e| panic!("removing record {id}: {e}"));
        true
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        if let Some((server, worker)) = self.serving.take() {
            server.unblock();
            let _ = worker.join();
        }
        shut_sockets_at(self.addr);
    }
}

/// Shut every socket of this process bound to `addr`: the listener, so new connections are
/// refused at once, and the connections tiny_http accepted. tiny_http serves each connection
/// in a thread of its own, also after its `Server` is gone, and a request on a kept-alive
/// connection would then wait for an answer forever: the service going away closes them.
fn shut_sockets_at(addr: SocketAddr) {
    let SocketAddr::V4(addr) = addr else {
        return;
    };
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds = fds.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::c_int>().ok());
    for fd in fds {
        // SAFETY: all-zero is a valid sockaddr_in; getsockname writes at most `len` bytes to
        // it and fails on a descriptor that is not a socket or no longer open.
        let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if unsafe { libc::getsockname(fd, (&raw mut sa).cast(), &mut len) } != 0 {
            continue;
        }
        if libc::c_int::from(sa.sin_family) == libc::AF_INET
            && u16::from_be(sa.sin_port) == addr.port()
            && sa.sin_addr.s_addr == u32::from_ne_bytes(addr.ip().octets())
        {
            // SAFETY: shutdown only changes the state of the socket, never memory.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
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
    bind: dns::Bind,
    state: Mutex<State>,
}

struct State {
    zones: Vec<Zone>,
    records: Vec<Rec>,
    requests: Vec<LoggedRequest>,
    rate_limit: usize,
    next_id: u64,
    /// Requests answered (DNSimple's X-RateLimit-Remaining counts down with it).
    served: u64,
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
    /// The record type, upper case: "TXT" unless seeded (`FakeApi::seed_record`).
    kind: String,
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

    fn handle(&self, req: &mut tiny_http::Request) -> Reply {
        let call = Call::read(req);
        let mut st = self.lock();
        st.requests.push(call.logged());
        st.served += 1;
        let limited = st.rate_limit > 0;
        st.rate_limit = st.rate_limit.saturating_sub(1);
        match (self.flavor, limited) {
            (Flavor::Cloudflare, true) => cloudflare::rate_limited(),
            (Flavor::Dnsimple, true) => dnsimple::rate_limited(),
            (Flavor::Cloudflare, false) => self.cloudflare(&mut st, &call),
            (Flavor::Dnsimple, false) => self.dnsimple(&mut st, &call),
        }
    }

    /// Hold a record of type `kind` (upper case) at `fqdn` in zone `st.zones[zi]`; a TXT
    /// record is published in BIND first. `Err`, with nothing stored, when `nsupdate` fails.
    fn add_record(
        &self,
        st: &mut State,
        zi: usize,
        fqdn: String,
        kind: &str,
        content: &str,
        ttl: u64,
    ) -> Result<Rec, String> {
        let zone = st.zones[zi].name.clone();
        let txt = dns::txt_value(content);
        if kind == "TXT" {
            self.bind
                .nsupdate(&zone, true, &fqdn, &txt)
                .map_err(nsupdate_failed)?;
        }
        let n = st.next_id;
        st.next_id += 1;
        let rel = fqdn.strip_suffix(zone.as_str()).unwrap_or("");
        let rec = Rec {
            cf_id: hex_id(self.seed, "record", n),
            dnsimple_id: 5_000_000 + n,
            rel: rel.trim_end_matches('.').to_string(),
            kind: kind.to_string(),
            zone,
            fqdn,
            content: content.to_string(),
            txt,
            ttl,
            created: now_rfc3339(),
        };
        st.records.push(rec.clone());
        Ok(rec)
    }

    /// Remove `st.records[pos]`; a TXT record's RR is deleted from BIND unless another live
    /// TXT record still publishes the same name and value.
    fn remove_record(&self, st: &mut State, pos: usize) -> Result<(), String> {
        let rec = &st.records[pos];
        let shared_rr =
            st.records.iter().enumerate().any(|(i, r)| {
                i != pos && r.kind == "TXT" && r.fqdn == rec.fqdn && r.txt == rec.txt
            });
        if rec.kind == "TXT" && !shared_rr {
            self.bind
                .nsupdate(&rec.zone, false, &rec.fqdn, &rec.txt)
                .map_err(nsupdate_failed)?;
        }
        st.records.remove(pos);
        Ok(())
    }
}

impl Shared {
    /// A record's id as this API's paths spell it.
    fn id_of(&self, r: &Rec) -> String {
        match self.flavor {
            Flavor::Cloudflare => r.cf_id.clone(),
            Flavor::Dnsimple => r.dnsimple_id.to_string(),
        }
    }
}

fn nsupdate_failed(e: String) -> String {
    format!("Internal Server Error (fake_api nsupdate: {e})")
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

/// Now, to the second, as "2025-01-31T12:00:00Z".
fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .expect("format the time")
}
