//! Is it Vault at all: `sys/health`, waiting while it is sealed or unavailable.

use std::time::Duration;

use serde_json::Value;
use vaultrs::client::VaultClient;

use super::error::Error;
use super::http::{self, Failure};
use super::retry::Backoff;

/// Make sure a Vault (or OpenBao) server answers at `addr`, waiting within `budget` while it
/// is sealed or unavailable. A refused connection is not retried here: at the first contact
/// it means a wrong address far more often than a restart.
pub async fn probe(client: &VaultClient, addr: &str, budget: Duration) -> Result<(), Error> {
    let url = format!("{addr}/v1/sys/health?standbyok=true&perfstandbyok=true");
    let mut backoff = Backoff::new(budget);
    loop {
        let rsp = match client.http.http.get(&url).send().await {
            Ok(r) => r,
            Err(e) => {
                return Err(match http::from_reqwest(e) {
                    Failure::NoAnswer { why, source } => {
                        super::error::unreachable(addr, why, source)
                    }
                    f => super::error::failed(addr, "health check", "sys/health".into(), f),
                })
            }
        };
        let code = rsp.status().as_u16();
        let kind = rsp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("no content type")
            .to_string();
        let body: Option<Value> = rsp.json().await.ok();
        let health = body
            .as_ref()
            .filter(|b| b["initialized"].is_boolean() && b["sealed"].is_boolean());
        let failure = match health {
            Some(h) if h["sealed"] == true || h["initialized"] == false => Failure::Status {
                code: 503,
                detail: "sealed".into(),
                body: None,
            },
            Some(_) => return Ok(()),
            // A load balancer with no healthy Vault behind it, say: wait for one.
            None if code == 429 || code >= 500 => Failure::Status {
                code,
                detail: kind.clone(),
                body: None,
            },
            None => {
                return Err(Error::NotVault {
                    addr: addr.into(),
                    answer: format!("{code} ({kind}) instead of Vault's health status"),
                })
            }
        };
        if !backoff.retry(&failure, "the health check").await {
            return Err(match health {
                Some(_) => Error::Sealed { addr: addr.into() },
                None => Error::NotVault {
                    addr: addr.into(),
                    answer: format!("{code} ({kind}) instead of Vault's health status"),
                },
            });
        }
    }
}
