//! Cloudflare API v4 with an API token: find the zone id, create the TXT record; at cleanup
//! read the record behind the handle's id and delete it only if it is exactly that TXT value
//! at that name (a handle read back from a lease could name any record the token reaches).

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::api::{self, Answer, Auth, Endpoint, Found};
use super::registry::{Build, Kind, SecretSource};
use super::{Error, Provider, TxtRecord, Zone};
use crate::model::{InvalidInput, Secret};

pub const DEFAULT_BASE_URL: &str = "https://api.cloudflare.com/client/v4";

/// Stored at `<prefix>/dns/<solver>` with `"kind": "cloudflare"`; also the flags of
/// `certvault dns add cloudflare NAME` (the API token from CERTVAULT_DNS_SECRET or stdin).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
pub struct Config {
    /// An API token with Zone:DNS:Edit on the zones it serves.
    #[arg(skip)]
    pub api_token: Secret,
    /// API base URL: for tests and proxies.
    #[serde(default = "default_base_url")]
    #[arg(long, default_value = DEFAULT_BASE_URL)]
    pub base_url: String,
    /// The zone id (skips the zone lookup, and the Zone:Read permission it needs).
    #[serde(default)]
    #[arg(long)]
    pub zone_id: Option<String>,
    /// TTL of the TXT record.
    #[serde(default = "default_ttl")]
    #[arg(long, default_value_t = default_ttl())]
    pub ttl: u32,
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.into()
}

fn default_ttl() -> u32 {
    crate::defaults::CLOUDFLARE_RECORD_TTL
}

impl Kind for Config {
    const ABOUT: &'static str = "Cloudflare API v4 (an API token with Zone:DNS:Edit)";
    type Args = Self;
    type Client = Client;

    fn from_args(a: Self, secret: &SecretSource<'_>) -> Result<Self, InvalidInput> {
        Ok(Config {
            api_token: secret.get()?,
            ..a
        })
    }

    fn describe(&self) -> String {
        format!(
            "cloudflare  {}{}",
            self.base_url,
            self.zone_id
                .as_ref()
                .map(|z| format!(" zone id {z}"))
                .unwrap_or_default()
        )
    }

    fn build(&self, b: &Build<'_>) -> Result<Client, Error> {
        Ok(Client {
            api: Endpoint::new(
                b.solver,
                &self.base_url,
                Auth::Bearer(self.api_token.clone()),
                b.http.clone(),
            ),
            zone_id: self.zone_id.clone(),
            ttl: self.ttl,
        })
    }
}

pub struct Client {
    api: Endpoint,
    zone_id: Option<String>,
    ttl: u32,
}

/// Exactly the record `present` created.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Handle {
    pub zone_id: String,
    pub record_id: String,
}

/// Cloudflare's "An identical record already exists."
const IDENTICAL_RECORD: i64 = 81058;

impl Client {
    async fn zone_id(&self, zone: &Zone) -> Result<String, Error> {
        if let Some(id) = &self.zone_id {
            return Ok(id.clone());
        }
        const OP: &str = "zone lookup";
        let path = format!("/zones{}", api::query(&[("name", zone.as_str())]));
        let rsp = self
            .api
            .call::<()>(zone.as_str(), OP, Method::GET, &path, None)
            .await?;
        let body: Envelope<Vec<ZoneItem>> = self.ok(zone.as_str(), OP, &rsp)?;
        body.result
            .unwrap_or_default()
            .into_iter()
            .find(|z| z.name.eq_ignore_ascii_case(zone.as_str()))
            .map(|z| z.id)
            .ok_or_else(|| Error::ZoneNotFound {
                solver: self.api.solver.clone(),
                zone: zone.to_string(),
            })
    }

    /// The envelope of a successful answer, else the API's errors.
    fn ok<T: for<'de> Deserialize<'de>>(
        &self,
        zone: &str,
        operation: &'static str,
        rsp: &Answer,
    ) -> Result<Envelope<T>, Error> {
        match rsp.json::<Envelope<T>>() {
            Some(e) if rsp.status.is_success() && e.success => Ok(e),
            Some(e) => Err(self
                .api
                .refused(zone, operation, rsp.status, e.errors_text())),
            None => Err(self.api.refused(
                zone,
                operation,
                rsp.status,
                "the answer is not Cloudflare's JSON envelope".into(),
            )),
        }
    }

    /// The id of the existing TXT record with exactly this name and value.
    async fn adopt(&self, record: &TxtRecord, zone: &Zone, zone_id: &str) -> Result<Handle, Error> {
        const OP: &str = "finding the identical TXT record";
        let path = format!(
            "/zones/{}/dns_records{}",
            api::encode(zone_id),
            api::query(&[
                ("type", "TXT"),
                ("name.exact", record.name.as_str()),
                ("content.exact", &record.value),
            ])
        );
        let rsp = self
            .api
            .call::<()>(zone.as_str(), OP, Method::GET, &path, None)
            .await?;
        let body: Envelope<Vec<RecordItem>> = self.ok(zone.as_str(), OP, &rsp)?;
        let id = body
            .result
            .unwrap_or_default()
            .into_iter()
            .find(|x| x.content.as_deref() == Some(record.value.as_str()))
            .map(|x| x.id)
            .ok_or_else(|| {
                let why = "the identical record was not listed";
                self.api.refused(zone.as_str(), OP, rsp.status, why.into())
            })?;
        tracing::info!(name = %record.name, "adopted an identical TXT record left by an earlier run");
        Ok(Handle {
            zone_id: zone_id.to_string(),
            record_id: id,
        })
    }
}

impl Provider for Client {
    type Handle = Handle;

    async fn present(&self, record: &TxtRecord) -> Result<Handle, Error> {
        const OP: &str = "creating the TXT record";
        let zone = record.zone(&self.api.solver)?;
        let zone_id = self.zone_id(zone).await?;
        let body = NewRecord {
            kind: "TXT",
            name: record.name.as_str(),
            content: &record.value,
            ttl: self.ttl,
            comment: "certvault DNS-01 challenge",
        };
        let path = format!("/zones/{}/dns_records", api::encode(&zone_id));
        let rsp = self
            .api
            .call(zone.as_str(), OP, Method::POST, &path, Some(&body))
            .await?;
        if rsp
            .json::<Envelope<serde_json::Value>>()
            .is_some_and(|e| e.errors.iter().any(|e| e.code == IDENTICAL_RECORD))
        {
            // Left behind by an interrupted run (the same authorization can come back):
            // adopt it, so cleanup removes it this time.
            return self.adopt(record, zone, &zone_id).await;
        }
        let created: Envelope<RecordItem> = self.ok(zone.as_str(), OP, &rsp)?;
        let id = created.result.map(|r| r.id).ok_or_else(|| {
            self.api
                .refused(zone.as_str(), OP, rsp.status, "the answer has no record id".into())
        })?;
        Ok(Handle {
            zone_id,
            record_id: id,
        })
    }

    async fn cleanup(&self, record: &TxtRecord, handle: &Handle) -> Result<(), Error> {
        const OP: &str = "reading the TXT record";
        let zone = record.zone_text();
        if handle.zone_id.is_empty() || handle.record_id.is_empty() {
            return Err(Error::NotOurs {
                solver: self.api.solver.clone(),
                name: record.name.to_string(),
                reason: "the handle names no zone id or record id".into(),
            });
        }
        let path = format!(
            "/zones/{}/dns_records/{}",
            api::encode(&handle.zone_id),
            api::encode(&handle.record_id)
        );
        let rsp = self
            .api
            .call::<()>(&zone, OP, Method::GET, &path, None)
            .await?;
        if rsp.status == StatusCode::NOT_FOUND {
            // 81044 "Record does not exist.": already gone.
            return Ok(());
        }
        let found: Envelope<RecordItem> = self.ok(&zone, OP, &rsp)?;
        let item = found.result.ok_or_else(|| {
            let why = "the answer has no record".into();
            self.api.refused(&zone, OP, rsp.status, why)
        })?;
        let (Some(kind), Some(name), Some(content)) = (&item.kind, &item.name, &item.content)
        else {
            let why = "the answer does not give the record's type, name and content".into();
            return Err(self.api.refused(&zone, OP, rsp.status, why));
        };
        api::check_ours(
            &self.api.solver,
            record,
            &Found {
                id: &handle.record_id,
                kind,
                fqdn: name,
                content,
            },
        )?;
        self.api
            .delete(&zone, &path, |rsp| {
                rsp.json::<Envelope<serde_json::Value>>()
                    .map(|e| e.errors_text())
                    .unwrap_or_else(|| "no error detail".into())
            })
            .await
    }
}

// ---- wire types (Cloudflare API v4) ----

#[derive(Debug, Deserialize)]
struct Envelope<T> {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    errors: Vec<ApiError>,
    #[serde(default = "Option::default")]
    result: Option<T>,
}

impl<T> Envelope<T> {
    /// The errors as one line.
    fn errors_text(&self) -> String {
        if self.errors.is_empty() {
            return "no error detail".into();
        }
        let list: Vec<String> = self
            .errors
            .iter()
            .map(|e| format!("{} (code {})", e.message, e.code))
            .collect();
        list.join("; ")
    }
}

#[derive(Debug, Deserialize)]
struct ApiError {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

#[derive(Debug, Deserialize)]
struct ZoneItem {
    id: String,
    name: String,
}

#[derive(Debug, Deserialize)]
struct RecordItem {
    id: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    content: Option<String>,
}

#[derive(Debug, Serialize)]
struct NewRecord<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'a str,
    content: &'a str,
    ttl: u32,
    comment: &'static str,
}
