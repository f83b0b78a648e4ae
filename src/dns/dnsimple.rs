//! DNSimple API v2 with an OAuth / API access token: resolve the account id, create the TXT
//! record with a zone-relative name, delete it by id at cleanup.

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::api::Endpoint;
use super::{Error, Presented, Provider, TxtRecord};
use crate::model::Secret;

pub const PRODUCTION_URL: &str = "https://api.dnsimple.com";
pub const SANDBOX_URL: &str = "https://api.sandbox.dnsimple.com";

/// Stored at `<prefix>/dns/<solver>` with `"kind": "dnsimple"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub token: Secret,
    /// Found with `whoami` when absent (needed for user tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<u64>,
    /// Use the sandbox API.
    #[serde(default)]
    pub sandbox: bool,
    /// Overrides the API base URL (tests, proxies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    #[serde(default = "default_ttl")]
    pub ttl: u32,
}

fn default_ttl() -> u32 {
    60
}

pub struct Client {
    api: Endpoint,
    account_id: Option<u64>,
    ttl: u32,
}

fn message(body: &Value) -> String {
    body["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| "no error detail".into())
}

/// `_acme-challenge.www.example.com` in `example.com` → `_acme-challenge.www`.
pub fn relative_name(name: &str, zone: &str) -> String {
    if name == zone {
        return String::new();
    }
    name.strip_suffix(zone)
        .and_then(|n| n.strip_suffix('.'))
        .unwrap_or(name)
        .to_string()
}

impl Client {
    pub fn new(solver: &str, config: &Config, http: reqwest::Client) -> Self {
        let base = config.base_url.clone().unwrap_or_else(|| {
            if config.sandbox {
                SANDBOX_URL
            } else {
                PRODUCTION_URL
            }
            .into()
        });
        Self {
            api: Endpoint::new(solver, &base, &config.token, http),
            account_id: config.account_id,
            ttl: config.ttl,
        }
    }

    async fn account(&self, zone: &str) -> Result<u64, Error> {
        if let Some(id) = self.account_id {
            return Ok(id);
        }
        const OP: &str = "whoami";
        let (status, body) = self
            .api
            .call(zone, OP, Method::GET, "/v2/whoami", None)
            .await?;
        if !status.is_success() {
            return Err(self.api.refused(zone, OP, status, message(&body)));
        }
        body["data"]["account"]["id"].as_u64().ok_or_else(|| {
            let why = "the token is not an account token: set account_id in the solver";
            self.api.refused(zone, OP, status, why.into())
        })
    }
}

impl Provider for Client {
    async fn present(&self, record: &TxtRecord) -> Result<Presented, Error> {
        const OP: &str = "creating the TXT record";
        let zone = &record.zone;
        let account = self.account(zone).await?;
        let body = json!({
            "name": relative_name(&record.name, zone),
            "type": "TXT",
            "content": record.value,
            "ttl": self.ttl,
        });
        let path = format!("/v2/{account}/zones/{zone}/records");
        let (status, rsp) = self
            .api
            .call(zone, OP, Method::POST, &path, Some(&body))
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Err(Error::ZoneNotFound {
                solver: self.api.solver.clone(),
                zone: zone.clone(),
            });
        }
        if !status.is_success() {
            return Err(self.api.refused(zone, OP, status, message(&rsp)));
        }
        let id = rsp["data"]["id"].as_u64().ok_or_else(|| {
            self.api
                .refused(zone, OP, status, "the answer has no record id".into())
        })?;
        Ok(Presented {
            record: record.clone(),
            handle: Some(format!("{account}/{id}")),
        })
    }

    async fn cleanup(&self, presented: &Presented) -> Result<(), Error> {
        let Some((account, id)) = presented.handle.as_deref().and_then(|h| h.split_once('/'))
        else {
            return Ok(());
        };
        let zone = &presented.record.zone;
        let path = format!("/v2/{account}/zones/{zone}/records/{id}");
        self.api.delete(zone, &path, message).await
    }
}

#[cfg(test)]
mod tests {
    use super::relative_name;

    #[test]
    fn names_relative_to_the_zone() {
        assert_eq!(
            relative_name("_acme-challenge.example.com", "example.com"),
            "_acme-challenge"
        );
        assert_eq!(
            relative_name("_acme-challenge.a.b.example.com", "example.com"),
            "_acme-challenge.a.b"
        );
        assert_eq!(relative_name("example.com", "example.com"), "");
    }
}
