//! DNSimple API v2 with an OAuth / API access token: resolve the account id, create the TXT
//! record with a zone-relative name; at cleanup read the record behind the handle's id and
//! delete it only if it is exactly that TXT value at that name (a handle read back from a
//! lease could name any record of the account).

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::api::{self, Answer, Auth, Endpoint, Found};
use super::registry::{Build, Kind, SecretSource};
use super::{Error, Provider, TxtRecord, Zone};
use crate::model::{InvalidInput, Secret};

pub const PRODUCTION_URL: &str = "https://api.dnsimple.com";
pub const SANDBOX_URL: &str = "https://api.sandbox.dnsimple.com";

/// Stored at `<prefix>/dns/<solver>` with `"kind": "dnsimple"`; also the flags of
/// `certvault dns add dnsimple NAME` (the token from CERTVAULT_DNS_SECRET or stdin).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
pub struct Config {
    #[arg(skip)]
    pub token: Secret,
    /// The account id (default: from whoami; user tokens need it).
    #[serde(default)]
    #[arg(long)]
    pub account_id: Option<u64>,
    /// Use the sandbox API.
    #[serde(default)]
    #[arg(long)]
    pub sandbox: bool,
    /// API base URL: for tests and proxies.
    #[serde(default)]
    #[arg(long)]
    pub base_url: Option<String>,
    /// TTL of the TXT record.
    #[serde(default = "super::record_ttl")]
    #[arg(long, default_value_t = crate::defaults::RECORD_TTL)]
    pub ttl: u32,
}

impl Config {
    fn base(&self) -> String {
        self.base_url.clone().unwrap_or_else(|| {
            if self.sandbox {
                SANDBOX_URL
            } else {
                PRODUCTION_URL
            }
            .into()
        })
    }
}

impl Kind for Config {
    const ABOUT: &'static str = "DNSimple API v2 (an account or user token)";
    type Args = Self;
    type Client = Client;

    fn from_args(a: Self, secret: &SecretSource<'_>) -> Result<Self, InvalidInput> {
        Ok(Config {
            token: secret.get()?,
            ..a
        })
    }

    fn describe(&self) -> String {
        format!(
            "dnsimple  {}{}",
            self.base(),
            self.account_id
                .map(|a| format!(" account {a}"))
                .unwrap_or_default()
        )
    }

    fn build(&self, b: &Build<'_>) -> Result<Client, Error> {
        Ok(Client {
            api: Endpoint::new(
                b.solver,
                &self.base(),
                Auth::Bearer(self.token.clone()),
                b.http.clone(),
            ),
            account_id: self.account_id,
            ttl: self.ttl,
        })
    }
}

pub struct Client {
    api: Endpoint,
    account_id: Option<u64>,
    ttl: u32,
}

/// Exactly the record `present` created.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Handle {
    pub account_id: u64,
    pub record_id: u64,
}

fn message(rsp: &Answer) -> String {
    rsp.json::<Message>()
        .and_then(|m| m.message)
        .unwrap_or_else(|| "no error detail".into())
}

impl Client {
    async fn account(&self, zone: &Zone) -> Result<u64, Error> {
        if let Some(id) = self.account_id {
            return Ok(id);
        }
        const OP: &str = "whoami";
        let rsp = self
            .api
            .call::<()>(zone.as_str(), OP, Method::GET, "/v2/whoami", None)
            .await?;
        if !rsp.status.is_success() {
            return Err(self.api.refused(zone.as_str(), OP, rsp.status, message(&rsp)));
        }
        rsp.json::<Data<Whoami>>()
            .and_then(|d| d.data.account)
            .map(|a| a.id)
            .ok_or_else(|| {
                let why = "the token is not an account token: set account_id in the solver";
                self.api.refused(zone.as_str(), OP, rsp.status, why.into())
            })
    }
}

impl Provider for Client {
    type Handle = Handle;

    async fn present(&self, record: &TxtRecord) -> Result<Handle, Error> {
        const OP: &str = "creating the TXT record";
        let zone = record.zone(&self.api.solver)?;
        let account = self.account(zone).await?;
        let name = record.name.relative_to(zone);
        let body = NewRecord {
            name: &name,
            kind: "TXT",
            content: &record.value,
            ttl: self.ttl,
        };
        let path = format!("/v2/{account}/zones/{}/records", api::encode(zone.as_str()));
        let rsp = self
            .api
            .call(zone.as_str(), OP, Method::POST, &path, Some(&body))
            .await?;
        if rsp.status == StatusCode::NOT_FOUND {
            return Err(Error::ZoneNotFound {
                solver: self.api.solver.clone(),
                zone: zone.to_string(),
            });
        }
        if !rsp.status.is_success() {
            return Err(self.api.refused(zone.as_str(), OP, rsp.status, message(&rsp)));
        }
        let id = rsp.json::<Data<Created>>().map(|d| d.data.id).ok_or_else(|| {
            self.api.refused(
                zone.as_str(),
                OP,
                rsp.status,
                "the answer has no record id".into(),
            )
        })?;
        Ok(Handle {
            account_id: account,
            record_id: id,
        })
    }

    async fn cleanup(&self, record: &TxtRecord, handle: &Handle) -> Result<(), Error> {
        const OP: &str = "reading the TXT record";
        let zone = record.zone(&self.api.solver)?;
        let path = format!(
            "/v2/{}/zones/{}/records/{}",
            handle.account_id,
            api::encode(zone.as_str()),
            handle.record_id
        );
        let rsp = self
            .api
            .call::<()>(zone.as_str(), OP, Method::GET, &path, None)
            .await?;
        if rsp.status == StatusCode::NOT_FOUND {
            // "Record `id` not found": already gone.
            return Ok(());
        }
        if !rsp.status.is_success() {
            return Err(self.api.refused(zone.as_str(), OP, rsp.status, message(&rsp)));
        }
        let found = rsp.json::<Data<RecordDoc>>().ok_or_else(|| {
            let why = "the answer does not give the record's type, name and content".into();
            self.api.refused(zone.as_str(), OP, rsp.status, why)
        })?;
        // Names are zone-relative ("" at the apex) in the zone of the request's path.
        let fqdn = match found.data.name.as_str() {
            "" | "@" => zone.to_string(),
            rel => format!("{rel}.{zone}"),
        };
        api::check_ours(
            &self.api.solver,
            record,
            &Found {
                id: &handle.record_id.to_string(),
                kind: &found.data.kind,
                fqdn: &fqdn,
                content: &found.data.content,
            },
        )?;
        self.api.delete(zone.as_str(), &path, message).await
    }
}

// ---- wire types (DNSimple API v2) ----

#[derive(Debug, Deserialize)]
struct Data<T> {
    data: T,
}

#[derive(Debug, Deserialize)]
struct Message {
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Whoami {
    account: Option<Account>,
}

#[derive(Debug, Deserialize)]
struct Account {
    id: u64,
}

#[derive(Debug, Deserialize)]
struct Created {
    id: u64,
}

#[derive(Debug, Deserialize)]
struct RecordDoc {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    content: String,
}

#[derive(Debug, Serialize)]
struct NewRecord<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    content: &'a str,
    ttl: u32,
}
