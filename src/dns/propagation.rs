//! Wait until every authoritative nameserver serves every value: checked, never slept.
//!
//! Each server is asked directly with recursion off (no resolver, no cache). NXDOMAIN or
//! an answer without the value means "not yet". All records of an order are waited for
//! together; the first poll happens at once.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_net::proto::op::ResponseCode;
use hickory_net::proto::rr::RecordType;

use super::wire::{self, query};

/// One value that must be visible at `name` on each of `nameservers`.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub value: String,
    pub nameservers: Vec<SocketAddr>,
}

#[derive(Debug, Clone, Copy)]
pub struct Polling {
    pub interval: Duration,
    pub timeout: Duration,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("TXT {name} not visible on {lagging} after {}s{}", waited.as_secs(), last(.state))]
pub struct NotPropagated {
    pub name: String,
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
    // (check index, server, last state)
    let mut pending: Vec<(usize, SocketAddr, String)> = checks
        .iter()
        .enumerate()
        .flat_map(|(i, c)| c.nameservers.iter().map(move |ns| (i, *ns, String::new())))
        .collect();
    let per_query = polling
        .interval
        .clamp(Duration::from_millis(500), Duration::from_secs(3));
    loop {
        let results = futures::future::join_all(pending.iter().map(|(i, ns, _)| {
            let check = &checks[*i];
            async move {
                let name = wire::name(&check.name);
                match query(*ns, &name, RecordType::TXT, false, per_query).await {
                    Ok(a) if a.txt_values(&name).iter().any(|v| v == &check.value) => None,
                    Ok(a) if a.code == ResponseCode::NXDomain => Some("NXDOMAIN".to_string()),
                    Ok(a) if a.code != ResponseCode::NoError => Some(a.code.to_string()),
                    Ok(a) => Some(format!("{} other value(s)", a.txt_values(&name).len())),
                    Err(e) => Some(e.reason),
                }
            }
        }))
        .await;
        let mut still = Vec::new();
        for ((i, ns, _), result) in pending.into_iter().zip(results) {
            match result {
                None => tracing::debug!(name = %checks[i].name, %ns, "visible"),
                Some(state) => still.push((i, ns, state)),
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
                .map(|(_, ns, _)| ns.to_string())
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
