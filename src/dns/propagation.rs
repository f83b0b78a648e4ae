//! Wait until every authoritative nameserver serves every value: checked, never slept.
//!
//! Each server is asked directly with recursion off (no resolver, no cache). NXDOMAIN or
//! an answer without the value means "not yet". A server counts as up to date when any of
//! its addresses serves the value (a host without IPv6 still checks dual-stack servers).
//! All records of an order are waited for together; the first poll happens at once.

use std::time::{Duration, Instant};

use hickory_net::proto::op::ResponseCode;
use hickory_net::proto::rr::RecordType;

use super::name::Fqdn;
use super::wire::query;
use super::zone::Nameserver;

/// One value that must be visible at `name` on each of `nameservers`.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: Fqdn,
    pub value: String,
    pub nameservers: Vec<Nameserver>,
}

#[derive(Debug, Clone, Copy)]
pub struct Polling {
    pub interval: Duration,
    pub timeout: Duration,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("TXT {name} not visible on {lagging} after {}s{}", waited.as_secs(), last(.state))]
pub struct NotPropagated {
    pub name: Fqdn,
    /// The nameserver(s) that did not serve the value.
    pub lagging: String,
    pub waited: Duration,
    pub state: String,
}

fn last(state: &str) -> String {
    if state.is_empty() {
        String::new()
    } else {
        format!(" (last answer: {state})")
    }
}

/// Poll until every (record, nameserver) pair shows the value, or the timeout passes.
pub async fn wait_until_visible(checks: &[Check], polling: Polling) -> Result<(), NotPropagated> {
    let start = Instant::now();
    // (check index, nameserver, last state)
    let mut pending: Vec<(usize, &Nameserver, String)> = checks
        .iter()
        .enumerate()
        .flat_map(|(i, c)| c.nameservers.iter().map(move |ns| (i, ns, String::new())))
        .collect();
    let per_query = polling
        .interval
        .clamp(Duration::from_millis(500), Duration::from_secs(3));
    loop {
        let results = futures::future::join_all(
            pending
                .iter()
                .map(|(i, ns, _)| served(&checks[*i], ns, per_query)),
        )
        .await;
        let mut still = Vec::new();
        for ((i, ns, _), result) in pending.into_iter().zip(results) {
            match result {
                Ok(()) => {}
                Err(state) => still.push((i, ns, state)),
            }
        }
        pending = still;
        if pending.is_empty() {
            return Ok(());
        }
        let waited = start.elapsed();
        if waited + polling.interval > polling.timeout {
            let (i, _, state) = &pending[0];
            let lagging: Vec<String> = pending
                .iter()
                .filter(|(j, _, _)| j == i)
                .map(|(_, ns, _)| describe(ns))
                .collect();
            return Err(NotPropagated {
                name: checks[*i].name.clone(),
                lagging: lagging.join(", "),
                waited,
                state: state.clone(),
            });
        }
        tokio::time::sleep(polling.interval).await;
    }
}

/// `127.0.0.2:5300 (ns2.example.test)`
fn describe(ns: &Nameserver) -> String {
    let addrs: Vec<String> = ns.addrs.iter().map(|a| a.to_string()).collect();
    format!("{} ({})", addrs.join(" / "), ns.host)
}

/// Whether any address of `ns` serves the value; else the last state seen.
async fn served(check: &Check, ns: &Nameserver, timeout: Duration) -> Result<(), String> {
    let name = check.name.to_name();
    let answers = futures::future::join_all(
        ns.addrs
            .iter()
            .map(|addr| query(*addr, &name, RecordType::TXT, false, timeout)),
    )
    .await;
    let mut states = Vec::new();
    for (addr, answer) in ns.addrs.iter().zip(answers) {
        let state = match answer {
            Ok(a) if a.txt_values(&name).iter().any(|v| v == &check.value) => {
                tracing::debug!(name = %check.name, ns = %addr, "visible");
                return Ok(());
            }
            Ok(a) if a.code == ResponseCode::NXDomain => "NXDOMAIN".to_string(),
            Ok(a) if a.code != ResponseCode::NoError => a.code.to_string(),
            Ok(a) => format!("{} other value(s)", a.txt_values(&name).len()),
            Err(e) => e.reason,
        };
        states.push(format!("{addr}: {state}"));
    }
    Err(states.join("; "))
}
