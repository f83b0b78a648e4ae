//! Cloudflare API v4 with an API token: find the zone id, create the TXT record, delete
//! exactly that record (by id) at cleanup.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::api::Endpoint;
use super::{Error, Presented, Provider, TxtRecord};
use crate::model::Secret;

pub const DEFAULT_BASE_URL: &str = "https://api.cloudflare.com/client/v4";

/// Stored at `<prefix>/dns/<solver>` with `"kind": "cloudflare"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// An API token with Zone:DNS:Edit on the zones it serves.
    pub api_token: Secret,
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Skip the zone lookup (and the Zone:Read permission it needs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_id: Option<String>,
    #[serde(default = "default_ttl")]
    pub ttl: u32,
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.into()
}

fn default_ttl() -> u32 {
    120
}

pub struct Client {
    api: Endpoint,
    zone_id: Option<String>,
    ttl: u32,
}

/// The v4 envelope's errors as one line.
fn errors(body: &Value) -> String {
    let list: Vec<String> = body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    format!(
                        "{} (code {})",
                        e["message"].as_str().unwrap_or("?"),
                        e["code"]
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if list.is_empty() {
        "no error detail".into()
    } else {
        list.join("; ")
    }
}

impl Client {
    pub fn new(solver: &str, config: &Config, http: reqwest::Client) -> Self {
        Self {
            api: Endpoint::new(solver, &config.base_url, &config.api_token, http),
            zone_id: config.zone_id.clone(),
            ttl: config.ttl,
        }
    }

    async fn zone_id(&self, zone: &str) -> Result<String, Error> {
        if let Some(id) = &self.zone_id {
            return Ok(id.clone());
        }
        const OP: &str = "zone lookup";
        let path = format!("/zones?name={zone}");
        let (status, body) = self.api.call(zone, OP, Method::GET, &path, None).await?;
        if !status.is_success() || body["success"] != json!(true) {
            return Err(self.api.refused(zone, OP, status, errors(&body)));
        }
        body["result"]
            .as_array()
            .and_then(|r| r.iter().find(|z| z["name"].as_str() == Some(zone)))
            .and_then(|z| z["id"].as_str())
            .map(str::to_string)
            .ok_or_else(|| Error::ZoneNotFound {
                solver: self.api.solver.clone(),
                zone: zone.to_string(),
            })
    }
}

/// Cloudflare's "An identical record already exists."
const IDENTICAL_RECORD: i64 = 81058;

fn has_code(body: &Value, code: i64) -> bool {
    body["errors"]
        .as_array()
        .is_some_and(|a| a.iter().any(|e| e["code"].as_i64() == Some(code)))
}

impl Client {
    /// The id of the existing TXT record with exactly this name and value.
    async fn adopt(&self, record: &TxtRecord, zone_id: &str) -> Result<Presented, Error> {
        const OP: &str = "finding the identical TXT record";
        let zone = &record.zone;
        let path = format!(
            "/zones/{zone_id}/dns_records?type=TXT&name.exact={}&content.exact={}",
            record.name, record.value
        );
        let (status, rsp) = self.api.call(zone, OP, Method::GET, &path, None).await?;
        if !status.is_success() || rsp["success"] != json!(true) {
            return Err(self.api.refused(zone, OP, status, errors(&rsp)));
        }
        let id = rsp["result"]
            .as_array()
            .and_then(|r| {
                r.iter()
                    .find(|x| x["content"].as_str() == Some(record.value.as_str()))
            })
            .and_then(|x| x["id"].as_str())
            .ok_or_else(|| {
                let why = "the identical record was not listed";
                self.api.refused(zone, OP, status, why.into())
            })?;
        tracing::info!(name = %record.name, "adopted an identical TXT record left by an earlier run");
        Ok(Presented {
            record: record.clone(),
            handle: Some(format!("{zone_id}/{id}")),
        })
    }
}

impl Provider for Client {
    async fn present(&self, record: &TxtRecord) -> Result<Presented, Error> {
        const OP: &str = "creating the TXT record";
        let zone = &record.zone;
        let zone_id = self.zone_id(zone).await?;
        let body = json!({
            "type": "TXT",
            "name": record.name,
            "content": record.value,
            "ttl": self.ttl,
            "comment": "certvault DNS-01 challenge",
        });
        let path = format!("/zones/{zone_id}/dns_records");
        let (status, rsp) = self
            .api
            .call(zone, OP, Method::POST, &path, Some(&body))
            .await?;
        if has_code(&rsp, IDENTICAL_RECORD) {
            // Left behind by an interrupted run (the same authorization can come back):
            // adopt it, so cleanup removes it this time.
            return self.adopt(record, &zone_id).await;
        }
        if !status.is_success() || rsp["success"] != json!(true) {
            return Err(self.api.refused(zone, OP, status, errors(&rsp)));
        }
        let id = rsp["result"]["id"].as_str().ok_or_else(|| {
            self.api
                .refused(zone, OP, status, "the answer has no record id".into())
        })?;
        Ok(Presented {
            record: record.clone(),
            handle: Some(format!("{zone_id}/{id}")),
        })
    }

    async fn cleanup(&self, presented: &Presented) -> Result<(), Error> {
        let Some((zone_id, id)) = presented.handle.as_deref().and_then(|h| h.split_once('/'))
        else {
            return Ok(());
        };
        let path = format!("/zones/{zone_id}/dns_records/{id}");
        self.api.delete(&presented.record.zone, &path, errors).await
    }
}
