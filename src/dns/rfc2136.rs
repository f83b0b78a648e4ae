//! RFC 2136 dynamic update with TSIG (hmac-sha256/384/512).
//!
//! `present` adds one TXT value; `cleanup` deletes exactly that value (delete by RDATA),
//! never the whole RRset: an apex and its wildcard share `_acme-challenge`.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use hickory_net::client::{Client as DnsClient, ClientHandle};
use hickory_net::proto::op::ResponseCode;
use hickory_net::proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_net::proto::rr::rdata::TXT;
use hickory_net::proto::rr::{RData, Record, TSigner};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use serde::{Deserialize, Serialize};

use super::registry::{Build, Kind, SecretSource};
use super::{Error, Fqdn, Provider, TsigRejection, TxtRecord, UpdateFailure};
use crate::model::{InvalidInput, Secret};

/// Stored at `<prefix>/dns/<solver>` with `"kind": "rfc2136"`; also the flags of
/// `certvault dns add rfc2136 NAME --server HOST[:PORT] --tsig-key KEY` (the TSIG secret
/// from CERTVAULT_DNS_SECRET or stdin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
pub struct Config {
    /// The primary server that accepts updates: host:port, or a host or ip (port 53).
    /// The zone to update is the solver's `zone` setting (else found via SOA).
    #[arg(long)]
    pub server: String,
    /// The TSIG key name as the server knows it.
    #[arg(long)]
    pub tsig_key: String,
    /// hmac-sha256, hmac-sha384 or hmac-sha512.
    #[serde(default = "default_algorithm")]
    #[arg(long, default_value = "hmac-sha256")]
    pub tsig_algorithm: String,
    /// The TSIG secret, base64 as in BIND's `key` statement.
    #[arg(skip)]
    pub tsig_secret: Secret,
    /// TTL of the TXT record.
    #[serde(default = "super::record_ttl")]
    #[arg(long, default_value_t = crate::defaults::RECORD_TTL)]
    pub ttl: u32,
}

fn default_algorithm() -> String {
    "hmac-sha256".into()
}

/// `server` without a port: the host (port 53 is meant).
fn portless(server: &str) -> Option<&str> {
    if server.parse::<std::net::IpAddr>().is_ok() {
        return Some(server);
    }
    // A host with any `:` suffix is not portless (a bad port is refused where it is parsed).
    match server.rsplit_once(':') {
        Some(_) => None,
        None => Some(server),
    }
}

impl Kind for Config {
    const ABOUT: &'static str = "RFC 2136 dynamic update with TSIG (BIND, Knot, PowerDNS, ...)";
    type Args = Self;
    type Client = Client;

    fn from_args(a: Self, secret: &SecretSource<'_>) -> Result<Self, InvalidInput> {
        Ok(Config {
            tsig_secret: secret.get()?,
            ..a
        })
    }

    fn validate(&self, solver: &str) -> Result<(), Error> {
        Client::new(solver, self).map(drop)
    }

    fn describe(&self) -> String {
        format!(
            "rfc2136  server {} key {} ({})",
            self.server, self.tsig_key, self.tsig_algorithm
        )
    }

    async fn prepare(&mut self, _: &str, _: &reqwest::Client) -> Result<Vec<String>, Error> {
        Ok(match portless(&self.server) {
            Some(host) => vec![format!(
                "note: --server {host} has no port: DNS updates go to port 53 ({host}:53)"
            )],
            None => Vec::new(),
        })
    }

    fn build(&self, b: &Build<'_>) -> Result<Client, Error> {
        Client::new(b.solver, self)
    }
}

pub fn algorithm(name: &str) -> Option<TsigAlgorithm> {
    match name.to_ascii_lowercase().trim_end_matches('.') {
        "hmac-sha256" => Some(TsigAlgorithm::HmacSha256),
        "hmac-sha384" => Some(TsigAlgorithm::HmacSha384),
        "hmac-sha512" => Some(TsigAlgorithm::HmacSha512),
        _ => None,
    }
}

pub struct Client {
    solver: String,
    /// `host:port` as configured (an IP, or a name resolved at each update).
    server: String,
    key: Fqdn,
    signer: TSigner,
    ttl: u32,
}

impl Client {
    pub fn new(solver: &str, config: &Config) -> Result<Self, Error> {
        let invalid = |reason: String| Error::Config {
            solver: solver.to_string(),
            reason,
        };
        // `ip`, `ip:port`, `[v6]:port`, `host` or `host:port`; a host name is resolved per
        // update.
        let server = match config.server.parse::<std::net::IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, 53).to_string(),
            Err(_) if portless(&config.server).is_some() => format!("{}:53", config.server),
            Err(_) => config.server.clone(),
        };
        let port_ok = server
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok {
            return Err(invalid(format!(
                "server {:?} is not host:port",
                config.server
            )));
        }
        let alg = algorithm(&config.tsig_algorithm).ok_or_else(|| {
            invalid(format!(
                "TSIG algorithm {:?} is not supported: use hmac-sha256, hmac-sha384 or hmac-sha512",
                config.tsig_algorithm
            ))
        })?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(config.tsig_secret.expose().trim())
            .map_err(|_| invalid("the TSIG secret is not base64".into()))?;
        let key_name = Fqdn::parse("tsig_key", &config.tsig_key).map_err(|source| {
            Error::BadName {
                solver: solver.to_string(),
                source,
            }
        })?;
        let signer = TSigner::new(key, alg, key_name.to_name(), 300)
            .map_err(|e| invalid(format!("TSIG key: {e}")))?;
        Ok(Self {
            solver: solver.to_string(),
            server,
            key: key_name,
            signer,
            ttl: config.ttl,
        })
    }

    async fn update(&self, record: &TxtRecord, add: bool) -> Result<(), Error> {
        let zone = record.zone(&self.solver)?.clone();
        let fail = |failure: UpdateFailure| Error::Rfc2136 {
            solver: self.solver.clone(),
            zone: zone.to_string(),
            server: self.server.clone(),
            failure: Box::new(failure),
        };
        let server: SocketAddr = match self.server.parse() {
            Ok(addr) => addr,
            Err(_) => {
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&self.server)
                    .await
                    .map_err(|e| fail(UpdateFailure::Resolve(e.to_string())))?
                    .collect();
                // Prefer IPv4: hosts without IPv6 routes are common in containers.
                addrs
                    .iter()
                    .find(|a| a.is_ipv4())
                    .or(addrs.first())
                    .copied()
                    .ok_or_else(|| fail(UpdateFailure::Resolve("the name has no address".into())))?
            }
        };
        let stream = UdpClientStream::builder(server, TokioRuntimeProvider::default())
            .with_timeout(Some(Duration::from_secs(5)))
            .with_signer(Some(self.signer.clone()))
            .build();
        let (mut client, bg) = DnsClient::<TokioRuntimeProvider>::from_sender(stream);
        let bg = tokio::spawn(bg);
        let rr = Record::from_rdata(
            record.name.to_name(),
            self.ttl,
            RData::TXT(TXT::new(vec![record.value.clone()])),
        );
        let origin = zone.to_name();
        let responses = if add {
            client.append(rr, origin, false)
        } else {
            client.delete_by_rdata(rr, origin)
        };
        let result = match tokio::time::timeout(Duration::from_secs(10), responses).await {
            Err(_) => Err(fail(UpdateFailure::NoAnswer { seconds: 10 })),
            Ok(Err(e)) => Err(fail(self.classify(e))),
            Ok(Ok(rsp)) => match rsp.response_code {
                ResponseCode::NoError => Ok(()),
                ResponseCode::BADSIG => Err(fail(self.rejected(TsigRejection::BadSig))),
                ResponseCode::BADKEY => Err(fail(self.rejected(TsigRejection::BadKey))),
                ResponseCode::BADTIME => Err(fail(self.rejected(TsigRejection::BadTime))),
                code @ (ResponseCode::NotAuth | ResponseCode::Refused) => {
                    Err(fail(UpdateFailure::Refused {
                        code: code.to_string(),
                    }))
                }
                ResponseCode::NotZone => Err(fail(UpdateFailure::NotZone {
                    name: record.name.to_string(),
                    zone: zone.to_string(),
                })),
                code => Err(fail(UpdateFailure::Answered(code.to_string()))),
            },
        };
        bg.abort();
        result
    }
}

impl Client {
    fn rejected(&self, rejection: TsigRejection) -> UpdateFailure {
        UpdateFailure::TsigRejected {
            key: self.key.to_string(),
            solver: self.solver.clone(),
            rejection,
        }
    }

    /// Sort a transport error by its kind. A server that rejects the signature answers
    /// NOTAUTH with an unsigned TSIG record carrying BADSIG or BADKEY (RFC 8945 5.2), which
    /// the client cannot verify: that is a TSIG rejection, not a network failure.
    fn classify(&self, e: hickory_net::NetError) -> UpdateFailure {
        use hickory_net::{DnsError, NetError};
        match e {
            NetError::Timeout => UpdateFailure::NoAnswer { seconds: 10 },
            NetError::Io(io) => UpdateFailure::Other(format!("no answer ({io}); is the server reachable?")),
            // hickory reports a reply it cannot verify (the unsigned BADSIG/BADKEY answer)
            // only as a protocol error with a message: every protocol error of this signed
            // exchange is reported as a signature problem.
            NetError::Proto(_) => UpdateFailure::UnsignedAnswer {
                key: self.key.to_string(),
                solver: self.solver.clone(),
            },
            NetError::Dns(DnsError::ResponseCode(code)) => match code {
                ResponseCode::BADSIG => self.rejected(TsigRejection::BadSig),
                ResponseCode::BADKEY => self.rejected(TsigRejection::BadKey),
                ResponseCode::BADTIME => self.rejected(TsigRejection::BadTime),
                ResponseCode::NotAuth | ResponseCode::Refused => UpdateFailure::Refused {
                    code: code.to_string(),
                },
                code => UpdateFailure::Answered(code.to_string()),
            },
            other => UpdateFailure::Other(other.to_string()),
        }
    }
}

impl Provider for Client {
    /// Delete-by-RDATA needs only the record itself.
    type Handle = ();

    async fn present(&self, record: &TxtRecord) -> Result<(), Error> {
        self.update(record, true).await
    }

    async fn cleanup(&self, record: &TxtRecord, _: &()) -> Result<(), Error> {
        // Deleting a value that is already gone is a no-op for the server.
        self.update(record, false).await
    }
}
