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

use super::{wire, Error, Presented, Provider, TxtRecord};
use crate::model::Secret;

/// Stored at `<prefix>/dns/<solver>` with `"kind": "rfc2136"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The primary server that accepts updates: `host:port` or `ip` (port 53).
    pub server: String,
    /// The zone to update; found via SOA when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// TSIG key name as the server knows it.
    pub tsig_key: String,
    /// hmac-sha256 (default), hmac-sha384 or hmac-sha512.
    #[serde(default = "default_algorithm")]
    pub tsig_algorithm: String,
    /// The TSIG secret, base64 as in BIND's `key` statement.
    pub tsig_secret: Secret,
    #[serde(default = "default_ttl")]
    pub ttl: u32,
}

fn default_algorithm() -> String {
    "hmac-sha256".into()
}

fn default_ttl() -> u32 {
    60
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
    zone: Option<String>,
    signer: TSigner,
    ttl: u32,
}

impl Client {
    pub fn new(solver: &str, config: &Config) -> Result<Self, Error> {
        let invalid = |reason: String| Error::Config {
            solver: solver.to_string(),
            reason,
        };
        // `ip`, `ip:port`, `[v6]:port` or `host:port`; a host name is resolved per update.
        let server = match config.server.parse::<std::net::IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, 53).to_string(),
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
        let signer = TSigner::new(key, alg, wire::name(&config.tsig_key), 300)
            .map_err(|e| invalid(format!("TSIG key: {e}")))?;
        Ok(Self {
            solver: solver.to_string(),
            server,
            zone: config.zone.clone(),
            signer,
            ttl: config.ttl,
        })
    }

    async fn update(&self, record: &TxtRecord, add: bool) -> Result<(), Error> {
        let zone = self.zone.clone().unwrap_or_else(|| record.zone.clone());
        let fail = |reason: String| Error::Rfc2136 {
            solver: self.solver.clone(),
            zone: zone.clone(),
            server: self.server.clone(),
            reason,
        };
        let server: SocketAddr = match self.server.parse() {
            Ok(addr) => addr,
            Err(_) => {
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&self.server)
                    .await
                    .map_err(|e| fail(format!("cannot resolve the server's name: {e}")))?
                    .collect();
                // Prefer IPv4: hosts without IPv6 routes are common in containers.
                addrs
                    .iter()
                    .find(|a| a.is_ipv4())
                    .or(addrs.first())
                    .copied()
                    .ok_or_else(|| fail("the server's name has no address".into()))?
            }
        };
        let stream = UdpClientStream::builder(server, TokioRuntimeProvider::default())
            .with_timeout(Some(Duration::from_secs(5)))
            .with_signer(Some(self.signer.clone()))
            .build();
        let (mut client, bg) = DnsClient::<TokioRuntimeProvider>::from_sender(stream);
        let bg = tokio::spawn(bg);
        let rr = Record::from_rdata(
            wire::name(&record.name),
            self.ttl,
            RData::TXT(TXT::new(vec![record.value.clone()])),
        );
        let origin = wire::name(&zone);
        let responses = if add {
            client.append(rr, origin, false)
        } else {
            client.delete_by_rdata(rr, origin)
        };
        let result = match tokio::time::timeout(Duration::from_secs(10), responses).await {
            Err(_) => Err(fail("no answer (is the server reachable?)".into())),
            Ok(Err(e)) => {
                let text = e.to_string();
                Err(fail(if text.contains("tsig") || text.contains("TSIG") {
                    format!("the TSIG exchange failed ({text}); check the key name, algorithm and secret")
                } else if text.contains("timed out") || text.contains("refused") {
                    format!("no answer ({text}); is the server reachable?")
                } else {
                    text
                }))
            }
            Ok(Ok(rsp)) => match rsp.response_code {
                ResponseCode::NoError => Ok(()),
                code @ (ResponseCode::NotAuth
                | ResponseCode::Refused
                | ResponseCode::BADKEY
                | ResponseCode::BADSIG) => Err(fail(format!(
                    "the server refused the update ({code}): the TSIG key is wrong or not allowed to update this zone, or the server is not the primary for it"
                ))),
                ResponseCode::NotZone => Err(fail(format!(
                    "{} is not in zone {zone} on this server",
                    record.name
                ))),
                code => Err(fail(format!("the server answered {code}"))),
            },
        };
        bg.abort();
        result
    }
}

impl Provider for Client {
    async fn present(&self, record: &TxtRecord) -> Result<Presented, Error> {
        self.update(record, true).await?;
        Ok(Presented {
            record: record.clone(),
            handle: None,
        })
    }

    async fn cleanup(&self, presented: &Presented) -> Result<(), Error> {
        // Deleting a value that is already gone is a no-op for the server.
        self.update(&presented.record, false).await
    }
}
