//! The token's lifetime. At start: how long it still lives, against how long this run may
//! need it; a renewable token (a login's, or a caller's own) is renewed up front if it would
//! not last, and then kept alive at two thirds of its TTL until the run ends. A caller's
//! token is never revoked.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;
use vaultrs::client::VaultClient;

use super::error::Error;
use crate::auth;

/// How long the token must live for a command that orders certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// The longest one ACME order may take: the validation, propagation and issuance
    /// timeouts added up. A token that lives less than this is refused.
    pub one_order: Duration,
    /// The longest run worth warning about: one order, then storing its certificate through
    /// a Vault outage (the retry budget). Orders run concurrently; with more due
    /// certificates than `--concurrency`, later ones start later and need more.
    pub run: Duration,
}

impl Lifetime {
    pub fn new(
        validation: Duration,
        propagation: Duration,
        issuance: Duration,
        retry: Duration,
    ) -> Self {
        let one_order = validation + propagation + issuance;
        Self {
            one_order,
            run: one_order + retry,
        }
    }
}

/// What `auth/token/lookup-self` says.
struct Facts {
    ttl: Duration,
    renewable: bool,
    periodic: bool,
}

async fn lookup(client: &VaultClient, addr: &str) -> Option<Facts> {
    let rsp = super::http::raw(client, addr, reqwest::Method::GET, "auth/token/lookup-self")
        .send()
        .await
        .ok()?;
    if !rsp.status().is_success() {
        // An invalid token: the capability check says so, with advice.
        tracing::debug!(status = %rsp.status(), "token lookup-self failed");
        return None;
    }
    let body: Value = rsp.json().await.ok()?;
    let data = &body["data"];
    Some(Facts {
        ttl: Duration::from_secs(data["ttl"].as_u64()?),
        renewable: data["renewable"].as_bool().unwrap_or(false),
        periodic: data["period"].as_u64().is_some_and(|p| p > 0),
    })
}

/// Check the token against `lifetime` (renewing it first if it is renewable and would not
/// last), and start renewing it while the run lasts. `Err` if it cannot last one order.
pub async fn check_and_keep_alive(
    client: &Arc<VaultClient>,
    addr: &str,
    logged_in: bool,
    lifetime: Option<Lifetime>,
) -> Result<Option<JoinHandle<()>>, Error> {
    let whose = if logged_in { "login" } else { "Vault" };
    let Some(mut facts) = lookup(client, addr).await else {
        return Ok(None);
    };
    if facts.ttl.is_zero() {
        return Ok(None); // never expires (a root token)
    }
    if let Some(need) = lifetime {
        if facts.renewable && !facts.periodic && facts.ttl < need.run {
            let increment = format!("{}s", need.run.as_secs());
            match vaultrs::token::renew_self(client.as_ref(), Some(&increment)).await {
                Ok(info) => {
                    tracing::debug!(
                        ttl_secs = info.lease_duration,
                        "renewed the {whose} token for the run"
                    );
                    facts.ttl = Duration::from_secs(info.lease_duration);
                    facts.renewable = info.renewable;
                }
                Err(e) => tracing::warn!(
                    "could not renew the {whose} token: {}",
                    crate::text::chain(&e)
                ),
            }
        }
        let lasts = facts.periodic && facts.renewable;
        if !lasts && facts.ttl < need.one_order {
            return Err(Error::TokenTooShort {
                ttl: facts.ttl,
                needed: need.one_order,
                renewable: facts.renewable,
            });
        }
        if !lasts && facts.ttl < need.run {
            tracing::warn!(
                "the {whose} token expires in {}s, and this run may need it for up to {}s (one ACME order, then storing its certificate while Vault is unavailable); certificates issued after it expires cannot be stored: use a token that lives longer",
                facts.ttl.as_secs(),
                need.run.as_secs()
            );
        }
    }
    if !facts.renewable {
        return Ok(None);
    }
    let client = client.clone();
    let ttl = facts.ttl;
    Ok(Some(tokio::spawn(async move {
        keep_alive(&client, ttl, whose).await;
    })))
}

/// Renew the token at two thirds of its TTL until it can no longer be extended. A failed
/// renewal (Vault briefly unreachable) is retried while the token still has time left.
async fn keep_alive(client: &VaultClient, mut ttl: Duration, whose: &str) {
    while let Some(delay) = auth::renew_delay(ttl) {
        tokio::time::sleep(delay).await;
        let mut left = ttl.saturating_sub(delay);
        let info = loop {
            match vaultrs::token::renew_self(client, None).await {
                Ok(info) => break info,
                Err(e) => {
                    let wait = (left / 3).min(Duration::from_secs(5));
                    if wait < Duration::from_millis(200) {
                        tracing::warn!(
                            "could not renew the {whose} token, it expires now: {}",
                            crate::text::chain(&e)
                        );
                        return;
                    }
                    tracing::warn!(
                        "could not renew the {whose} token (retrying in {}s): {}",
                        wait.as_secs_f32(),
                        crate::text::chain(&e)
                    );
                    tokio::time::sleep(wait).await;
                    left = left.saturating_sub(wait);
                }
            }
        };
        tracing::debug!(ttl_secs = info.lease_duration, "renewed the {whose} token");
        if !info.renewable {
            return;
        }
        // Past its max TTL a token stops growing; renewals then come ever sooner and the
        // loop ends when less than a few seconds are left.
        ttl = Duration::from_secs(info.lease_duration);
        if ttl < Duration::from_secs(3) {
            return;
        }
    }
}
