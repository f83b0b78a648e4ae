//! Amazon Route 53 (REST XML API 2013-04-01, SigV4-signed with `aws-sigv4`).
//!
//! `present` reads the TXT record set at the name, UPSERTs it with the new value added and
//! waits until `GetChange` reports `INSYNC`; certvault's own check of every authoritative
//! server follows. `cleanup` UPSERTs the set without that value, or DELETEs it when it was
//! the last one. Route 53 replaces whole record sets, so values of other clients at the same
//! name are kept by reading them first.
//!
//! Credentials: the stored access key (and session token), else the standard environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), else a web identity
//! (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, as IRSA on Kubernetes sets them),
//! exchanged at STS (`AssumeRoleWithWebIdentity`).

use std::time::{Duration, Instant, SystemTime};

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::api::{self, Answer, Auth, Endpoint};
use super::registry::{Build, Kind, SecretSource};
use super::{Error, Provider, TxtRecord, Zone};
use crate::model::{InvalidInput, Secret};

pub const DEFAULT_ENDPOINT: &str = "https://route53.amazonaws.com";
pub const DEFAULT_STS_ENDPOINT: &str = "https://sts.amazonaws.com";
mod wire;

use wire::*;


/// Stored at `<prefix>/dns/<solver>` with `"kind": "route53"`; also the flags of
/// `certvault dns add route53 NAME [--access-key-id ID]` (with an access key id, the secret
/// access key comes from CERTVAULT_DNS_SECRET or stdin; without one, from the environment
/// at run time).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
pub struct Config {
    /// The access key id to store (default: none stored; the environment or the web
    /// identity token file at run time).
    #[serde(default)]
    #[arg(long)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    #[arg(skip)]
    pub secret_access_key: Option<Secret>,
    #[serde(default)]
    #[arg(skip)]
    pub session_token: Option<Secret>,
    /// The region requests are signed for.
    #[serde(default = "default_region")]
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// The hosted zone id (skips ListHostedZonesByName).
    #[serde(default)]
    #[arg(long)]
    pub hosted_zone_id: Option<String>,
    /// The API endpoint: for tests, proxies, FIPS or China endpoints.
    #[serde(default = "default_endpoint")]
    #[arg(long, default_value = DEFAULT_ENDPOINT)]
    pub endpoint: String,
    /// The STS endpoint for web identity credentials.
    #[serde(default)]
    #[arg(long)]
    pub sts_endpoint: Option<String>,
    /// TTL of the TXT record.
    #[serde(default = "crate::dns::record_ttl")]
    #[arg(long, default_value_t = crate::defaults::RECORD_TTL)]
    pub ttl: u32,
}

fn default_region() -> String {
    "us-east-1".into()
}

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.into()
}

impl Kind for Config {
    const ABOUT: &'static str = "Amazon Route 53 (SigV4; stored keys, AWS_* environment or web identity)";
    type Args = Self;
    type Client = Client;

    fn from_args(a: Self, secret: &SecretSource<'_>) -> Result<Self, InvalidInput> {
        let secret_access_key = match a.access_key_id {
            Some(_) => Some(secret.get()?),
            None => None,
        };
        Ok(Config {
            secret_access_key,
            session_token: None,
            ..a
        })
    }

    fn validate(&self, solver: &str) -> Result<(), Error> {
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            return Err(Error::Config {
                solver: solver.into(),
                reason: "access_key_id and secret_access_key go together".into(),
            });
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "route53  {} region {}{}{}",
            self.endpoint,
            self.region,
            match &self.access_key_id {
                Some(id) => format!(" key {id}"),
                None => " credentials from the environment".into(),
            },
            self.hosted_zone_id
                .as_ref()
                .map(|z| format!(" zone id {z}"))
                .unwrap_or_default()
        )
    }

    fn build(&self, b: &Build<'_>) -> Result<Client, Error> {
        self.validate(b.solver)?;
        Ok(Client {
            api: Endpoint::new(b.solver, &self.endpoint, Auth::None, b.http.clone()),
            config: self.clone(),
            keys: tokio::sync::OnceCell::new(),
        })
    }
}

/// The keys a request is signed with.
#[derive(Clone)]
struct Keys {
    id: String,
    secret: Secret,
    token: Option<Secret>,
}

pub struct Client {
    api: Endpoint,
    config: Config,
    keys: tokio::sync::OnceCell<Keys>,
}

/// How long `present` waits for INSYNC.
const INSYNC_TIMEOUT: Duration = Duration::from_secs(120);

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn error_message(rsp: &Answer) -> String {
    quick_xml::de::from_str::<ErrorResponse>(&String::from_utf8_lossy(&rsp.body))
        .map(|e| format!("{}: {}", e.error.code, e.error.message))
        .unwrap_or_else(|_| String::from_utf8_lossy(&rsp.body).chars().take(200).collect())
}

impl Client {
    fn fail(&self, zone: &str, reason: String) -> Error {
        Error::Provider {
            solver: self.api.solver.clone(),
            zone: zone.to_string(),
            reason,
        }
    }

    async fn keys(&self, zone: &str) -> Result<Keys, Error> {
        self.keys
            .get_or_try_init(|| async {
                if let (Some(id), Some(secret)) =
                    (&self.config.access_key_id, &self.config.secret_access_key)
                {
                    return Ok(Keys {
                        id: id.clone(),
                        secret: secret.clone(),
                        token: self.config.session_token.clone(),
                    });
                }
                if let (Some(id), Some(secret)) =
                    (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
                {
                    return Ok(Keys {
                        id,
                        secret: Secret::new(secret),
                        token: env("AWS_SESSION_TOKEN").map(Secret::new),
                    });
                }
                match (env("AWS_WEB_IDENTITY_TOKEN_FILE"), env("AWS_ROLE_ARN")) {
                    (Some(file), Some(role)) => self.web_identity(zone, &file, &role).await,
                    _ => Err(self.fail(
                        zone,
                        "no AWS credentials: store an access key with the solver, or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN".into(),
                    )),
                }
            })
            .await
            .cloned()
    }

    /// STS AssumeRoleWithWebIdentity (unsigned: the token is the credential).
    async fn web_identity(&self, zone: &str, file: &str, role: &str) -> Result<Keys, Error> {
        const OP: &str = "AssumeRoleWithWebIdentity";
        let token = std::fs::read_to_string(file)
            .map_err(|e| self.fail(zone, format!("cannot read AWS_WEB_IDENTITY_TOKEN_FILE {file}: {e}")))?;
        let session = env("AWS_ROLE_SESSION_NAME").unwrap_or_else(|| "certvault".into());
        let base = self
            .config
            .sts_endpoint
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_STS"))
            .unwrap_or_else(|| DEFAULT_STS_ENDPOINT.into());
        let sts = Endpoint::new(&self.api.solver, &base, Auth::None, self.api_http());
        // In the form body, not the URL: URLs end up in access logs.
        let form = api::query(&[
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", role),
            ("RoleSessionName", &session),
            ("WebIdentityToken", token.trim()),
        ])
        .trim_start_matches('?')
        .to_string();
        let rsp = sts
            .send(
                zone,
                OP,
                Method::POST,
                "/",
                &[("Content-Type", "application/x-www-form-urlencoded")],
                |req| req.body(form.clone()),
            )
            .await?;
        if !rsp.status.is_success() {
            return Err(sts.refused(zone, OP, rsp.status, error_message(&rsp)));
        }
        let body: AssumeRoleResponse = quick_xml::de::from_str(&String::from_utf8_lossy(&rsp.body))
            .map_err(|e| self.fail(zone, format!("STS answered something else: {e}")))?;
        let c = body.result.credentials;
        Ok(Keys {
            id: c.access_key_id,
            secret: Secret::new(c.secret_access_key),
            token: Some(Secret::new(c.session_token)),
        })
    }

    fn api_http(&self) -> reqwest::Client {
        self.api.http()
    }

    /// One signed request; `path_and_query` already encoded.
    async fn signed(
        &self,
        zone: &str,
        operation: &'static str,
        method: Method,
        path_and_query: &str,
        body: String,
    ) -> Result<Answer, Error> {
        let keys = self.keys(zone).await?;
        let url = format!("{}{path_and_query}", self.api.base);
        let mut headers = vec![("host".to_string(), host_of(&self.api.base))];
        if !body.is_empty() {
            headers.push(("content-type".into(), "text/xml".into()));
        }
        let credentials = aws_credential_types::Credentials::new(
            keys.id.clone(),
            keys.secret.expose().to_string(),
            keys.token.as_ref().map(|t| t.expose().to_string()),
            None,
            "certvault",
        );
        let identity = credentials.into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.config.region)
            .name("route53")
            .time(SystemTime::now())
            .settings(aws_sigv4::http_request::SigningSettings::default())
            .build()
            .map_err(|e| self.fail(zone, format!("cannot sign the request: {e}")))?
            .into();
        let signable = aws_sigv4::http_request::SignableRequest::new(
            method.as_str(),
            &url,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            aws_sigv4::http_request::SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| self.fail(zone, format!("cannot sign the request: {e}")))?;
        let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
            .map_err(|e| self.fail(zone, format!("cannot sign the request: {e}")))?
            .into_parts();
        let signed: Vec<(String, String)> = instructions
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain(headers.into_iter().filter(|(k, _)| k != "host"))
            .collect();
        let signed_refs: Vec<(&str, &str)> =
            signed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.api
            .send(zone, operation, method, path_and_query, &signed_refs, |req| {
                req.body(body.clone())
            })
            .await
    }

    async fn hosted_zone(&self, zone: &Zone) -> Result<String, Error> {
        if let Some(id) = &self.config.hosted_zone_id {
            return Ok(id.trim_start_matches("/hostedzone/").to_string());
        }
        const OP: &str = "ListHostedZonesByName";
        let path = format!(
            "/2013-04-01/hostedzonesbyname{}",
            api::query(&[("dnsname", &format!("{zone}.")), ("maxitems", "1")])
        );
        let rsp = self.call(zone, OP, Method::GET, &path, String::new()).await?;
        let list: ListHostedZonesByNameResponse = self.xml(zone, OP, &rsp)?;
        list.hosted_zones
            .hosted_zone
            .into_iter()
            .find(|z| z.name.trim_end_matches('.').eq_ignore_ascii_case(zone.as_str()))
            .map(|z| z.id.trim_start_matches("/hostedzone/").to_string())
            .ok_or_else(|| Error::ZoneNotFound {
                solver: self.api.solver.clone(),
                zone: zone.to_string(),
            })
    }

    /// A signed request that must succeed (2xx); its answer is parsed with [`Self::xml`].
    async fn call(
        &self,
        zone: &Zone,
        operation: &'static str,
        method: Method,
        path: &str,
        body: String,
    ) -> Result<Answer, Error> {
        let rsp = self
            .signed(zone.as_str(), operation, method, path, body)
            .await?;
        if !rsp.status.is_success() {
            let reason = error_message(&rsp);
            return Err(self.api.refused(zone.as_str(), operation, rsp.status, reason));
        }
        Ok(rsp)
    }

    fn xml<T: for<'de> Deserialize<'de>>(
        &self,
        zone: &Zone,
        operation: &'static str,
        rsp: &Answer,
    ) -> Result<T, Error> {
        quick_xml::de::from_str(&String::from_utf8_lossy(&rsp.body)).map_err(|e| {
            self.api.refused(
                zone.as_str(),
                operation,
                rsp.status,
                format!("the answer is not the expected XML: {e}"),
            )
        })
    }

    /// The record set at `name` now: TTL and values (quoted, as Route 53 stores them).
    async fn current(&self, zone: &Zone, id: &str, record: &TxtRecord) -> Result<Vec<String>, Error> {
        const OP: &str = "ListResourceRecordSets";
        let owner = format!("{}.", record.name);
        let path = format!(
            "/2013-04-01/hostedzone/{}/rrset{}",
            api::encode(id),
            api::query(&[("name", &owner), ("type", "TXT"), ("maxitems", "1")])
        );
        let rsp = self.call(zone, OP, Method::GET, &path, String::new()).await?;
        let list: ListResourceRecordSetsResponse = self.xml(zone, OP, &rsp)?;
        Ok(list
            .resource_record_sets
            .resource_record_set
            .into_iter()
            .filter(|s| s.r#type == "TXT" && s.name.eq_ignore_ascii_case(&owner))
            .flat_map(|s| s.resource_records.map(|r| r.resource_record).unwrap_or_default())
            .map(|r| r.value)
            .collect())
    }

    /// UPSERT `values` (or DELETE `old` when `values` is empty); the change to wait for.
    async fn change(
        &self,
        zone: &Zone,
        id: &str,
        record: &TxtRecord,
        old: &[String],
        values: &[String],
    ) -> Result<ChangeInfo, Error> {
        const OP: &str = "ChangeResourceRecordSets";
        let (action, set) = if values.is_empty() {
            ("DELETE", old)
        } else {
            ("UPSERT", values)
        };
        let body = change_batch(action, &format!("{}.", record.name), self.config.ttl, set);
        let path = format!("/2013-04-01/hostedzone/{}/rrset/", api::encode(id));
        let rsp = self.call(zone, OP, Method::POST, &path, body).await?;
        let info: ChangeResponse = self.xml(zone, OP, &rsp)?;
        Ok(info.change_info)
    }

    async fn wait_insync(&self, zone: &Zone, mut info: ChangeInfo) -> Result<(), Error> {
        const OP: &str = "GetChange";
        let start = Instant::now();
        let mut delay = Duration::from_millis(200);
        while info.status != "INSYNC" {
            if start.elapsed() > INSYNC_TIMEOUT {
                return Err(self.fail(
                    zone.as_str(),
                    format!(
                        "change {} still {} after {}s",
                        info.id,
                        info.status,
                        INSYNC_TIMEOUT.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
            let id = info.id.trim_start_matches("/change/").to_string();
            let path = format!("/2013-04-01/change/{}", api::encode(&id));
            let rsp = self.call(zone, OP, Method::GET, &path, String::new()).await?;
            info = self.xml::<ChangeResponse>(zone, OP, &rsp)?.change_info;
        }
        Ok(())
    }
}

impl Provider for Client {
    /// The value itself identifies what to remove.
    type Handle = ();

    async fn present(&self, record: &TxtRecord) -> Result<(), Error> {
        let zone = record.zone(&self.api.solver)?;
        let id = self.hosted_zone(zone).await?;
        let old = self.current(zone, &id, record).await?;
        let new = quoted(&record.value);
        if old.contains(&new) {
            return Ok(());
        }
        let mut values = old.clone();
        values.push(new);
        let change = self.change(zone, &id, record, &old, &values).await?;
        // The record is submitted: from here on it must count as presented, so that it is
        // cleaned up. Not seeing INSYNC is left to the propagation check that follows.
        if let Err(e) = self.wait_insync(zone, change).await {
            tracing::warn!(name = %record.name, "{e}; the propagation check decides");
        }
        Ok(())
    }

    async fn cleanup(&self, record: &TxtRecord, _: &()) -> Result<(), Error> {
        let zone = record.zone(&self.api.solver)?;
        let id = self.hosted_zone(zone).await?;
        let old = self.current(zone, &id, record).await?;
        let gone = quoted(&record.value);
        if !old.contains(&gone) {
            return Ok(());
        }
        let rest: Vec<String> = old.iter().filter(|v| **v != gone).cloned().collect();
        let change = self.change(zone, &id, record, &old, &rest).await?;
        self.wait_insync(zone, change).await
    }
}

#[cfg(test)]
mod tests;
