//! PowerDNS Authoritative HTTP API (`X-API-Key`): read the TXT RRset, write it back with the
//! new value added (PATCH, changetype REPLACE); at cleanup write it back without that value
//! (or DELETE the RRset when it was the last one).
//!
//! PowerDNS replaces whole RRsets, so two writers racing on the same name can lose a value;
//! certvault presents the values of one order one after another.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::api::{self, Answer, Auth, Endpoint};
use super::registry::{Build, Kind, SecretSource};
use super::{Error, Provider, TxtRecord, Zone};
use crate::model::{InvalidInput, Secret};

/// Stored at `<prefix>/dns/<solver>` with `"kind": "powerdns"`; also the flags of
/// `certvault dns add powerdns NAME --api-url URL` (the API key from CERTVAULT_DNS_SECRET
/// or stdin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
pub struct Config {
    /// The API's base URL, like http://ns1.example.net:8081 (`/api/v1` is added).
    #[arg(long)]
    pub api_url: String,
    /// The API key (`api-key` in pdns.conf).
    #[arg(skip)]
    pub api_key: Secret,
    /// The server id in the API's paths.
    #[serde(default = "default_server_id")]
    #[arg(long, default_value = "localhost")]
    pub server_id: String,
    /// TTL of the TXT record.
    #[serde(default = "super::record_ttl")]
    #[arg(long, default_value_t = crate::defaults::RECORD_TTL)]
    pub ttl: u32,
}

fn default_server_id() -> String {
    "localhost".into()
}

impl Kind for Config {
    const ABOUT: &'static str = "PowerDNS Authoritative HTTP API (X-API-Key)";
    type Args = Self;
    type Client = Client;

    fn from_args(a: Self, secret: &SecretSource<'_>) -> Result<Self, InvalidInput> {
        Ok(Config {
            api_key: secret.get()?,
            ..a
        })
    }

    fn validate(&self, solver: &str) -> Result<(), Error> {
        api::check_http_url(solver, "api_url", &self.api_url)
    }

    fn describe(&self) -> String {
        format!("powerdns  {} server {}", self.api_url, self.server_id)
    }

    fn build(&self, b: &Build<'_>) -> Result<Client, Error> {
        self.validate(b.solver)?;
        Ok(Client {
            api: Endpoint::new(
                b.solver,
                &format!("{}/api/v1", self.api_url.trim_end_matches('/')),
                Auth::Header("X-API-Key", self.api_key.clone()),
                b.http.clone(),
            ),
            server_id: self.server_id.clone(),
            ttl: self.ttl,
        })
    }
}

pub struct Client {
    api: Endpoint,
    server_id: String,
    ttl: u32,
}

/// The API's `{"error": "..."}`.
fn message(rsp: &Answer) -> String {
    rsp.json::<ApiError>()
        .map(|e| e.error)
        .unwrap_or_else(|| String::from_utf8_lossy(&rsp.body).chars().take(200).collect())
}

/// TXT content in zone-file syntax: quoted, with `"` and `\` escaped.
fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Client {
    fn zone_path(&self, zone: &Zone) -> String {
        format!(
            "/servers/{}/zones/{}",
            api::encode(&self.server_id),
            api::encode(&format!("{zone}."))
        )
    }

    /// The TXT values at `name` (as quoted contents) and their TTL.
    async fn current(&self, record: &TxtRecord, zone: &Zone) -> Result<Vec<String>, Error> {
        const OP: &str = "reading the zone";
        let rsp = self
            .api
            .call::<()>(zone.as_str(), OP, Method::GET, &self.zone_path(zone), None)
            .await?;
        if rsp.status == reqwest::StatusCode::NOT_FOUND
            || rsp.status == reqwest::StatusCode::UNPROCESSABLE_ENTITY
        {
            return Err(Error::ZoneNotFound {
                solver: self.api.solver.clone(),
                zone: zone.to_string(),
            });
        }
        if !rsp.status.is_success() {
            return Err(self.api.refused(zone.as_str(), OP, rsp.status, message(&rsp)));
        }
        let z: ZoneDoc = rsp.json().ok_or_else(|| {
            let why = "the answer is not a PowerDNS zone".into();
            self.api.refused(zone.as_str(), OP, rsp.status, why)
        })?;
        let owner = format!("{}.", record.name);
        Ok(z.rrsets
            .into_iter()
            .filter(|r| r.kind == "TXT" && r.name.eq_ignore_ascii_case(&owner))
            .flat_map(|r| r.records)
            .map(|r| r.content)
            .collect())
    }

    async fn write(&self, record: &TxtRecord, zone: &Zone, values: Vec<String>) -> Result<(), Error> {
        const OP: &str = "writing the TXT RRset";
        let name = format!("{}.", record.name);
        let rrset = if values.is_empty() {
            RrSet {
                name: &name,
                kind: "TXT",
                ttl: None,
                changetype: "DELETE",
                records: Vec::new(),
            }
        } else {
            RrSet {
                name: &name,
                kind: "TXT",
                ttl: Some(self.ttl),
                changetype: "REPLACE",
                records: values
                    .into_iter()
                    .map(|content| NewRecord {
                        content,
                        disabled: false,
                    })
                    .collect(),
            }
        };
        let body = Patch {
            rrsets: vec![rrset],
        };
        let rsp = self
            .api
            .call(zone.as_str(), OP, Method::PATCH, &self.zone_path(zone), Some(&body))
            .await?;
        if rsp.status.is_success() {
            Ok(())
        } else {
            Err(self.api.refused(zone.as_str(), OP, rsp.status, message(&rsp)))
        }
    }
}

impl Client {
    /// Read the RRset, change it with `edit` (`None`: nothing to do), write it back. A
    /// server error (PowerDNS answers 500 when its database is busy, e.g. SQLite's
    /// "database is locked") is retried from the read, three times at most.
    async fn read_modify_write(
        &self,
        record: &TxtRecord,
        edit: impl Fn(Vec<String>) -> Option<Vec<String>>,
    ) -> Result<(), Error> {
        let zone = record.zone(&self.api.solver)?;
        let mut delay = std::time::Duration::from_millis(100);
        let mut attempt = 0;
        loop {
            let result = match edit(self.current(record, zone).await?) {
                None => return Ok(()),
                Some(values) => self.write(record, zone, values).await,
            };
            match result {
                Err(Error::Api { status, .. }) if status >= 500 && attempt < 3 => {
                    attempt += 1;
                    tracing::warn!(solver = %self.api.solver, status, "PowerDNS failed to write the RRset; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                other => return other,
            }
        }
    }
}

impl Provider for Client {
    /// The value itself identifies what to remove.
    type Handle = ();

    async fn present(&self, record: &TxtRecord) -> Result<(), Error> {
        let new = quoted(&record.value);
        self.read_modify_write(record, |mut values| {
            if values.contains(&new) {
                return None;
            }
            values.push(new.clone());
            Some(values)
        })
        .await
    }

    async fn cleanup(&self, record: &TxtRecord, _: &()) -> Result<(), Error> {
        let gone = quoted(&record.value);
        self.read_modify_write(record, |values| {
            if !values.contains(&gone) {
                return None;
            }
            Some(values.into_iter().filter(|v| v != &gone).collect())
        })
        .await
    }
}

// ---- wire types (PowerDNS API v1) ----

#[derive(Debug, Deserialize)]
struct ApiError {
    error: String,
}

#[derive(Debug, Deserialize)]
struct ZoneDoc {
    #[serde(default)]
    rrsets: Vec<RrSetDoc>,
}

#[derive(Debug, Deserialize)]
struct RrSetDoc {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    records: Vec<RecordDoc>,
}

#[derive(Debug, Deserialize)]
struct RecordDoc {
    content: String,
}

#[derive(Debug, Serialize)]
struct Patch<'a> {
    rrsets: Vec<RrSet<'a>>,
}

#[derive(Debug, Serialize)]
struct RrSet<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<u32>,
    changetype: &'static str,
    records: Vec<NewRecord>,
}

#[derive(Debug, Serialize)]
struct NewRecord {
    content: String,
    disabled: bool,
}
