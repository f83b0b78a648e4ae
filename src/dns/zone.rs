//! Where a DNS-01 record goes: follow `_acme-challenge` CNAMEs (acme-dns style delegation),
//! find the zone that holds the final name (via SOA), and that zone's authoritative servers.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_net::proto::op::ResponseCode;
use hickory_net::proto::rr::{Name, RData, RecordType};

use super::name::{Fqdn, Zone};
use super::wire::{query, Answer, QueryError};

/// How zone discovery reaches DNS.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// Servers asked for CNAME, SOA, NS and address records (recursion desired).
    pub resolvers: Vec<SocketAddr>,
    /// The port of the authoritative servers found through NS records (53 in real DNS).
    pub authoritative_port: u16,
    pub timeout: Duration,
}

impl Lookup {
    /// The nameservers of /etc/resolv.conf, if any (read only, never written).
    pub fn system_resolvers() -> Vec<SocketAddr> {
        std::fs::read_to_string("/etc/resolv.conf")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .filter_map(|ip| ip.trim().parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
            .collect()
    }

    /// The resolvers as `a, b` for messages.
    pub fn describe(&self) -> String {
        if self.resolvers.is_empty() {
            return "none configured".into();
        }
        let r: Vec<String> = self.resolvers.iter().map(|a| a.to_string()).collect();
        r.join(", ")
    }

    /// Ask the resolvers in turn until one answers.
    async fn ask(&self, name: &Name, rtype: RecordType) -> Result<Answer, Error> {
        let mut last = None;
        for server in &self.resolvers {
            match query(*server, name, rtype, true, self.timeout).await {
                Ok(a) if matches!(a.code, ResponseCode::NoError | ResponseCode::NXDomain) => {
                    return Ok(a)
                }
                Ok(a) => {
                    last = Some(QueryError {
                        server: *server,
                        reason: format!("answered {} for {} {rtype}", a.code, text(name)),
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => Error::Resolver(e),
            None => Error::NoResolver,
        })
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("no DNS resolver configured: set --dns-resolver (or CERTVAULT_DNS_RESOLVER), or store one with the solver (`dns add … --resolver`)")]
    NoResolver,
    #[error("DNS lookup failed")]
    Resolver(#[source] QueryError),
    #[error("CNAME chain from {start} is longer than 8 or loops")]
    CnameLoop { start: String },
    #[error("no zone (SOA) found for {name}: the resolvers know no zone above it (set the solver's --zone, or its --resolver)")]
    NoZone { name: String },
    #[error("{name} is not a usable DNS name")]
    BadName { name: String },
    #[error("zone {zone} has no usable NS records")]
    NoNameservers { zone: String },
}

/// One authoritative server of a zone and its addresses (IPv4 and IPv6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nameserver {
    pub host: String,
    pub addrs: Vec<SocketAddr>,
}

fn text(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

fn fqdn(name: &Name) -> Result<Fqdn, Error> {
    Fqdn::from_name(name).map_err(|_| Error::BadName { name: text(name) })
}

/// Follow CNAMEs from `start` (at most 8), to where the TXT value must be written.
pub async fn follow_cnames(lookup: &Lookup, start: &Fqdn) -> Result<Fqdn, Error> {
    let mut current = start.to_name();
    let mut seen = vec![current.clone()];
    loop {
        let answer = lookup.ask(&current, RecordType::CNAME).await?;
        match answer.cname(&current) {
            Some(target) => {
                if seen.contains(&target) || seen.len() > 8 {
                    return Err(Error::CnameLoop {
                        start: start.to_string(),
                    });
                }
                tracing::debug!(from = %text(&current), to = %text(&target), "following CNAME");
                seen.push(target.clone());
                current = target;
            }
            None => return fqdn(&current),
        }
    }
}

/// The closest enclosing zone: the SOA owner in the answer or the authority section.
pub async fn find_zone(lookup: &Lookup, name: &Fqdn) -> Result<Zone, Error> {
    let name = name.to_name();
    let mut candidate = name.clone();
    loop {
        let answer = lookup.ask(&candidate, RecordType::SOA).await?;
        let soa_owner = answer
            .answers
            .iter()
            .chain(answer.authorities.iter())
            .find(|r| matches!(r.data, RData::SOA(_)))
            .map(|r| r.name.clone());
        if let Some(owner) = soa_owner {
            if owner.zone_of(&name) && !owner.is_root() {
                return fqdn(&owner).map(Zone::from);
            }
        }
        if candidate.num_labels() <= 1 {
            return Err(Error::NoZone { name: text(&name) });
        }
        candidate = candidate.base_name();
    }
}

/// The zone's authoritative servers (NS records and their addresses).
pub async fn nameservers(lookup: &Lookup, zone: &Zone) -> Result<Vec<Nameserver>, Error> {
    let zone = zone.to_name();
    let answer = lookup.ask(&zone, RecordType::NS).await?;
    let hosts: Vec<Name> = answer
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::NS(ns) => Some(ns.0.clone()),
            _ => None,
        })
        .collect();
    let mut out: Vec<Nameserver> = Vec::new();
    for host in hosts {
        let mut ips: Vec<IpAddr> = glue(&answer, &host);
        if ips.is_empty() {
            for rtype in [RecordType::A, RecordType::AAAA] {
                if let Ok(a) = lookup.ask(&host, rtype).await {
                    ips.extend(glue(&a, &host));
                }
            }
        }
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for ip in ips {
            let addr = SocketAddr::new(ip, lookup.authoritative_port);
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        if !addrs.is_empty() && !out.iter().any(|n| n.addrs == addrs) {
            out.push(Nameserver {
                host: text(&host),
                addrs,
            });
        }
    }
    if out.is_empty() {
        return Err(Error::NoNameservers { zone: text(&zone) });
    }
    Ok(out)
}

fn glue(answer: &Answer, host: &Name) -> Vec<IpAddr> {
    answer
        .answers
        .iter()
        .chain(answer.additionals.iter())
        .filter(|r| &r.name == host)
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

/// The relevant CAA record set of `name` (RFC 8659 §3): the CAA records of the closest
/// name, climbing from `name` towards the root, that has any; `None` when no name up to the
/// registrable level (two labels) has one. Returns the owner and the records.
pub async fn caa(
    lookup: &Lookup,
    name: &Fqdn,
) -> Result<Option<(String, Vec<hickory_net::proto::rr::rdata::CAA>)>, Error> {
    let mut candidate = name.to_name();
    loop {
        let answer = lookup.ask(&candidate, RecordType::CAA).await?;
        let set: Vec<_> = answer
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::CAA(c) => Some(c.clone()),
                _ => None,
            })
            .collect();
        if !set.is_empty() {
            return Ok(Some((text(&candidate), set)));
        }
        if candidate.num_labels() <= 2 {
            return Ok(None);
        }
        candidate = candidate.base_name();
    }
}

/// Ask `server` for the SOA of `zone` without recursion: it must answer as the zone's
/// authority.
pub async fn answers_for(server: SocketAddr, zone: &Zone, timeout: Duration) -> Result<(), String> {
    let name = zone.to_name();
    match query(server, &name, RecordType::SOA, false, timeout).await {
        Ok(a)
            if a.code == ResponseCode::NoError
                && a.answers.iter().any(|r| matches!(r.data, RData::SOA(_))) =>
        {
            Ok(())
        }
        Ok(a) => Err(format!("answered {} without the zone's SOA", a.code)),
        Err(e) => Err(e.reason),
    }
}
