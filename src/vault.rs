//! A small KV client over vaultrs: read with version, write with check-and-set, list.
//! KV version 2 mounts get check-and-set; version 1 mounts have no versions (reads report
//! version 0) and no check-and-set, so a concurrent writer there is not detected.
//!
//! Paths given here are relative to the mount; `store` is the only caller that spells them.
//! Also here: logging in ([`crate::auth`]), keeping a login token alive, revoking it, and
//! `sys/capabilities-self`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustify::errors::ClientError as RestError;
use serde_json::Value;
use vaultrs::api::kv2::requests::{ReadSecretRequest, SetSecretRequestOptions};
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

use crate::auth::{self, Method};

/// The KV secrets engine version of the mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvVersion {
    V1,
    V2,
}

/// How to reach Vault. Mirrors Vault's own environment variables.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `VAULT_ADDR`
    pub addr: String,
    /// How to get a token: `VAULT_TOKEN` / `VAULT_TOKEN_FILE`, or a login.
    pub auth: Method,
    /// `--kv-version`: `None` detects it from the mount.
    pub kv_version: Option<KvVersion>,
    /// `VAULT_NAMESPACE` (Vault Enterprise / OpenBao namespaces)
    pub namespace: Option<String>,
    /// `VAULT_CACERT`: a PEM file trusted in addition to the system roots.
    pub cacert: Option<PathBuf>,
    /// The KV v2 mount (`--mount` / `CERTVAULT_MOUNT`).
    pub mount: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid Vault address {addr:?}: {reason}; set VAULT_ADDR to a URL like https://vault.example.com:8200")]
    BadAddress { addr: String, reason: String },
    #[error(transparent)]
    Auth(#[from] auth::Error),
    #[error("Vault refused the {method} login at auth/{mount}/login ({code}: {detail}); check the {method} settings ({hint}) and the role in Vault")]
    Login {
        method: &'static str,
        mount: String,
        code: u16,
        detail: String,
        hint: &'static str,
    },
    #[error("{method} login at auth/{mount}/login failed")]
    LoginFailed {
        method: &'static str,
        mount: String,
        #[source]
        source: ClientError,
    },
    #[error("Vault rejected the token when checking its capabilities (403 on sys/capabilities-self): the token is expired, revoked or invalid, or it lacks Vault's `default` policy; get a new token (or check the login settings)")]
    TokenRejected,
    #[error("cannot use VAULT_CACERT {path:?}")]
    CaCert {
        path: PathBuf,
        #[source]
        source: ClientError,
    },
    #[error(
        "cannot reach Vault at {addr}; check VAULT_ADDR and that Vault is running and unsealed"
    )]
    Unreachable {
        addr: String,
        #[source]
        source: ClientError,
    },
    #[error(
        "cannot reach Vault at {addr}; check VAULT_ADDR and that Vault is running and unsealed"
    )]
    NoAnswer {
        addr: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("Vault denied {op} on {path} (403 permission denied): the Vault token (VAULT_TOKEN or the login of --auth) is invalid or expired, or its policy does not grant {op} on this path (`certvault policy` prints the right one)")]
    Forbidden { op: &'static str, path: String },
    #[error("{path} was changed by another writer since it was read (expected version {expected}); nothing was overwritten")]
    CasConflict { path: String, expected: u64 },
    #[error("{path} already exists; nothing was overwritten")]
    AlreadyExists { path: String },
    #[error("Vault answered {code} on {op} {path}: {detail}")]
    Api {
        op: &'static str,
        path: String,
        code: u16,
        detail: String,
    },
    #[error("Vault request {op} {path} failed")]
    Other {
        op: &'static str,
        path: String,
        #[source]
        source: ClientError,
    },
}

/// A document and the KV v2 version it was read at.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub data: T,
    pub version: u64,
}

/// A document as read (`None`: never written, or its latest version is deleted) and what a
/// write that replaces it must expect.
#[derive(Debug, Clone)]
pub struct Read<T> {
    pub doc: Option<Versioned<T>>,
    pub expect: Expect,
}

/// What a write expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Create only: fail if the document exists (`cas = 0`).
    Absent,
    /// Overwrite exactly this version (`cas = N`).
    Version(u64),
}

pub struct Kv {
    client: Arc<VaultClient>,
    addr: String,
    mount: String,
    version: KvVersion,
    /// Set when the token came from a login: it is renewed while the run lasts and
    /// revoked by [`Kv::close`].
    session: Option<tokio::task::JoinHandle<()>>,
}

impl Kv {
    /// Build the client, log in if the settings say so, and find the mount's KV version.
    pub async fn connect(settings: &Settings) -> Result<Self, Error> {
        let addr = settings.addr.trim_end_matches('/').to_string();
        match url_check(&addr) {
            Ok(()) => {}
            Err(reason) => {
                return Err(Error::BadAddress {
                    addr,
                    reason: reason.into(),
                })
            }
        }
        let token = match &settings.auth {
            Method::Token { token: Some(t) } => Some(t.read("Vault token", "VAULT_TOKEN_FILE")?),
            Method::Token { token: None } => return Err(auth::Error::NoToken.into()),
            _ => None,
        };
        let mut builder = VaultClientSettingsBuilder::default();
        builder
            .address(&addr)
            // Empty until the login: vaultrs would otherwise read VAULT_TOKEN itself.
            .token(token.as_ref().map(|t| t.expose()).unwrap_or(""))
            // Never disabled silently: vaultrs would read VAULT_SKIP_VERIFY="" as "skip".
            .verify(true)
            .timeout(Some(Duration::from_secs(30)))
            .ca_certs(
                settings
                    .cacert
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect(),
            );
        if let Some(ns) = settings.namespace.as_ref().filter(|n| !n.is_empty()) {
            builder.set_namespace(ns.clone());
        }
        let built = builder.build().map_err(|e| Error::BadAddress {
            addr: addr.clone(),
            reason: e.to_string(),
        })?;
        let mut client = VaultClient::new(built).map_err(|source| match &settings.cacert {
            Some(path) => Error::CaCert {
                path: path.clone(),
                source,
            },
            None => Error::Unreachable {
                addr: addr.clone(),
                source,
            },
        })?;
        let login = login(&client, &addr, &settings.auth).await?;
        if let Some(info) = &login {
            vaultrs::client::Client::set_token(&mut client, &info.client_token);
            tracing::info!(
                method = settings.auth.name(),
                policies = ?info.policies,
                ttl_secs = info.lease_duration,
                "logged in to Vault"
            );
        }
        let client = Arc::new(client);
        let session = login.map(|info| {
            let ttl = Duration::from_secs(info.lease_duration);
            let renewable = info.renewable;
            let client = client.clone();
            tokio::spawn(async move {
                if renewable {
                    keep_alive(&client, ttl).await;
                }
            })
        });
        let mut kv = Self {
            client,
            addr,
            mount: settings.mount.clone(),
            version: KvVersion::V2,
            session,
        };
        kv.version = match settings.kv_version {
            Some(v) => v,
            None => kv.detect_version().await?,
        };
        Ok(kv)
    }

    /// End the run: stop renewing and revoke a token this run logged in for. A failed
    /// revocation is logged (the token then expires at its TTL).
    pub async fn close(&self) {
        let Some(renewer) = &self.session else {
            return;
        };
        renewer.abort();
        match vaultrs::token::revoke_self(self.client.as_ref()).await {
            Ok(()) => tracing::debug!("revoked the login token"),
            Err(e) => tracing::warn!(
                "could not revoke the login token (it expires at its TTL): {}",
                crate::error::chain(&e)
            ),
        }
    }

    /// The same connection and token on another KV mount (`import vault-layout` reads its
    /// source there); its KV version is detected. Closing it revokes nothing.
    pub async fn on_mount(&self, mount: &str) -> Result<Kv, Error> {
        let mut kv = Kv {
            client: self.client.clone(),
            addr: self.addr.clone(),
            mount: mount.to_string(),
            version: KvVersion::V2,
            session: None,
        };
        kv.version = kv.detect_version().await?;
        Ok(kv)
    }

    /// Whether the token came from a login by this run (and is revoked by [`Kv::close`]).
    pub fn logged_in(&self) -> bool {
        self.session.is_some()
    }

    pub fn version(&self) -> KvVersion {
        self.version
    }

    /// The mount's KV version from `sys/internal/ui/mounts/<mount>` (readable by any token
    /// with access to the mount, as `vault kv` does), else `sys/mounts/<mount>`; version 2
    /// if neither answers (set `--kv-version` / `CERTVAULT_KV_VERSION` then).
    async fn detect_version(&self) -> Result<KvVersion, Error> {
        for api in ["sys/internal/ui/mounts", "sys/mounts"] {
            let url = format!("{}/v1/{api}/{}", self.addr, self.mount);
            let rsp = match self.raw(reqwest::Method::GET, &url).send().await {
                Ok(r) if r.status().is_success() => r,
                Ok(r) => {
                    tracing::debug!(status = %r.status(), "{api}/{}: no KV version", self.mount);
                    continue;
                }
                Err(source) => {
                    return Err(Error::NoAnswer {
                        addr: self.addr.clone(),
                        source,
                    })
                }
            };
            let Ok(body) = rsp.json::<Value>().await else {
                continue;
            };
            let data = &body["data"];
            match (data["type"].as_str(), data["options"]["version"].as_str()) {
                (_, Some("2")) => return Ok(KvVersion::V2),
                (Some("kv"), _) => return Ok(KvVersion::V1),
                _ => continue,
            }
        }
        tracing::warn!(
            "could not read the KV version of mount {}; assuming 2 (set CERTVAULT_KV_VERSION)",
            self.mount
        );
        Ok(KvVersion::V2)
    }

    /// A request with the client's TLS settings, token and namespace, for the endpoints
    /// vaultrs has no API for.
    fn raw(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let mut req = self
            .client
            .http
            .http
            .request(method, url)
            .header("X-Vault-Token", &self.client.settings.token)
            .header("X-Vault-Request", "true");
        if let Some(ns) = &self.client.settings.namespace {
            req = req.header("X-Vault-Namespace", ns);
        }
        req
    }

    /// The token's capabilities on each of `paths` (full API paths, e.g.
    /// `secret/data/certvault/certs/web`), from `sys/capabilities-self`.
    pub async fn capabilities(
        &self,
        paths: &[String],
    ) -> Result<BTreeMap<String, Vec<String>>, Error> {
        let url = format!("{}/v1/sys/capabilities-self", self.addr);
        let op = "capabilities check";
        let rsp = self
            .raw(reqwest::Method::POST, &url)
            .json(&serde_json::json!({ "paths": paths }))
            .send()
            .await
            .map_err(|source| Error::NoAnswer {
                addr: self.addr.clone(),
                source,
            })?;
        let code = rsp.status().as_u16();
        if code == 403 {
            return Err(Error::TokenRejected);
        }
        let body: Value = rsp.json().await.unwrap_or(Value::Null);
        if !(200..300).contains(&code) {
            return Err(Error::Api {
                op,
                path: "sys/capabilities-self".into(),
                code,
                detail: api_detail(&body),
            });
        }
        let mut out = BTreeMap::new();
        for p in paths {
            let caps = body
                .get(p)
                .or_else(|| body["data"].get(p))
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            out.insert(p.clone(), caps);
        }
        Ok(out)
    }

    /// `mount/path` as a user would type it for `vault kv get`.
    pub fn display_path(&self, path: &str) -> String {
        format!("{}/{}", self.mount, path)
    }

    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// Read the latest version (one request), with what a write replacing it must expect.
    /// KV v1 has no versions: 0.
    pub async fn read(&self, path: &str) -> Result<Read<Value>, Error> {
        let absent = Read {
            doc: None,
            expect: Expect::Absent,
        };
        if self.version == KvVersion::V1 {
            return match vaultrs::kv1::get_raw(self.client.as_ref(), &self.mount, path).await {
                Ok(rsp) if rsp.data.is_null() => Ok(absent),
                Ok(rsp) => Ok(Read {
                    doc: Some(Versioned {
                        data: rsp.data,
                        version: 0,
                    }),
                    expect: Expect::Version(0),
                }),
                Err(e) if status(&e) == Some(404) => Ok(absent),
                Err(e) => Err(self.error("read", path, e)),
            };
        }
        let req = self.read_request(path);
        match vaultrs::api::exec_with_result(self.client.as_ref(), req).await {
            Ok(rsp) if rsp.data.is_null() => Ok(Read {
                doc: None,
                expect: Expect::Version(rsp.metadata.version),
            }),
            Ok(rsp) => Ok(Read {
                expect: Expect::Version(rsp.metadata.version),
                doc: Some(Versioned {
                    data: rsp.data,
                    version: rsp.metadata.version,
                }),
            }),
            // The 404 of a deleted latest version (`vault kv delete`) still carries its
            // metadata (and no `errors` field): a new write must check-and-set on that
            // version, not on 0.
            Err(ClientError::RestClientError {
                source:
                    RestError::ServerResponseError {
                        code: 404,
                        content: Some(body),
                    },
            }) => Ok(serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["data"]["metadata"]["version"].as_u64())
                .map(|v| Read {
                    doc: None,
                    expect: Expect::Version(v),
                })
                .unwrap_or(absent)),
            Err(e) if status(&e) == Some(404) => Ok(absent),
            Err(e) => Err(self.error("read", path, e)),
        }
    }

    fn read_request(&self, path: &str) -> ReadSecretRequest {
        ReadSecretRequest::builder()
            .mount(&self.mount)
            .path(path)
            .build()
            .expect("all fields set")
    }

    /// Write a new version with check-and-set; returns the new version. KV v1 has no
    /// check-and-set: `Absent` is checked by a read first (not atomic), `Version` is not
    /// checked, and the result is 0.
    pub async fn write(&self, path: &str, data: &Value, expect: Expect) -> Result<u64, Error> {
        if self.version == KvVersion::V1 {
            if expect == Expect::Absent && self.read(path).await?.doc.is_some() {
                return Err(Error::AlreadyExists {
                    path: self.display_path(path),
                });
            }
            let map: std::collections::HashMap<&str, &Value> = data
                .as_object()
                .map(|o| o.iter().map(|(k, v)| (k.as_str(), v)).collect())
                .unwrap_or_default();
            return match vaultrs::kv1::set(self.client.as_ref(), &self.mount, path, &map).await {
                Ok(()) => Ok(0),
                Err(e) => Err(self.error("write", path, e)),
            };
        }
        let cas = match expect {
            Expect::Absent => 0,
            Expect::Version(v) => u32::try_from(v).unwrap_or(u32::MAX),
        };
        match vaultrs::kv2::set_with_options(
            self.client.as_ref(),
            &self.mount,
            path,
            data,
            SetSecretRequestOptions { cas },
        )
        .await
        {
            Ok(meta) => Ok(meta.version),
            Err(e) if is_cas_mismatch(&e) => Err(match expect {
                Expect::Absent => Error::AlreadyExists {
                    path: self.display_path(path),
                },
                Expect::Version(expected) => Error::CasConflict {
                    path: self.display_path(path),
                    expected,
                },
            }),
            Err(e) => Err(self.error("write", path, e)),
        }
    }

    /// Delete the latest version (KV v2 keeps it in history; KV v1 removes the document).
    /// Succeeds if there is nothing to delete.
    pub async fn delete(&self, path: &str) -> Result<(), Error> {
        let result = if self.version == KvVersion::V1 {
            vaultrs::kv1::delete(self.client.as_ref(), &self.mount, path).await
        } else {
            vaultrs::kv2::delete_latest(self.client.as_ref(), &self.mount, path).await
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) if status(&e) == Some(404) => Ok(()),
            Err(e) => Err(self.error("delete", path, e)),
        }
    }

    /// Names directly below `path` (a trailing `/` marks a folder); empty if none.
    pub async fn list(&self, path: &str) -> Result<Vec<String>, Error> {
        if self.version == KvVersion::V1 {
            return match vaultrs::kv1::list(self.client.as_ref(), &self.mount, path).await {
                Ok(rsp) => Ok(rsp.data.keys),
                Err(e) if status(&e) == Some(404) => Ok(Vec::new()),
                Err(e) => Err(self.error("list", path, e)),
            };
        }
        match vaultrs::kv2::list(self.client.as_ref(), &self.mount, path).await {
            Ok(keys) => Ok(keys),
            Err(e) if status(&e) == Some(404) => Ok(Vec::new()),
            Err(e) => Err(self.error("list", path, e)),
        }
    }

    fn error(&self, op: &'static str, path: &str, e: ClientError) -> Error {
        let path = self.display_path(path);
        match (&e, status(&e)) {
            (_, Some(403)) => Error::Forbidden { op, path },
            (ClientError::APIError { code, errors }, _) => Error::Api {
                op,
                path,
                code: *code,
                detail: if errors.is_empty() {
                    "no detail".into()
                } else {
                    errors.join("; ")
                },
            },
            (_, Some(code)) => Error::Api {
                op,
                path,
                code,
                detail: "unexpected response".into(),
            },
            (
                ClientError::RestClientError {
                    source: RestError::RequestError { .. },
                },
                None,
            ) => Error::Unreachable {
                addr: self.addr.clone(),
                source: e,
            },
            _ => Error::Other {
                op,
                path,
                source: e,
            },
        }
    }
}

/// Log in as `method` says; `None` for a given token.
async fn login(
    client: &VaultClient,
    addr: &str,
    method: &Method,
) -> Result<Option<vaultrs::api::AuthInfo>, Error> {
    let (name, mount, hint, result) = match method {
        Method::Token { .. } => return Ok(None),
        Method::AppRole {
            mount,
            role_id,
            secret_id,
        } => {
            let role_id = role_id.read("AppRole role id", "VAULT_ROLE_ID / VAULT_ROLE_ID_FILE")?;
            let secret_id = secret_id.read(
                "AppRole secret id",
                "VAULT_SECRET_ID / VAULT_SECRET_ID_FILE",
            )?;
            let r =
                vaultrs::auth::approle::login(client, mount, role_id.expose(), secret_id.expose())
                    .await;
            (
                "approle",
                mount,
                "VAULT_ROLE_ID, VAULT_SECRET_ID, CERTVAULT_AUTH_MOUNT",
                r,
            )
        }
        Method::Kubernetes { mount, role, jwt } => {
            let jwt = jwt.read("Kubernetes service account token", "CERTVAULT_JWT_FILE")?;
            let r = vaultrs::auth::kubernetes::login(client, mount, role, jwt.expose()).await;
            (
                "kubernetes",
                mount,
                "CERTVAULT_AUTH_ROLE, CERTVAULT_JWT_FILE, CERTVAULT_AUTH_MOUNT",
                r,
            )
        }
        Method::Jwt { mount, role, jwt } => {
            let jwt = jwt.read("JWT", "CERTVAULT_JWT / CERTVAULT_JWT_FILE")?;
            let r = vaultrs::auth::oidc::login(client, mount, jwt.expose(), role.clone()).await;
            (
                "jwt",
                mount,
                "CERTVAULT_AUTH_ROLE, CERTVAULT_JWT / CERTVAULT_JWT_FILE, CERTVAULT_AUTH_MOUNT",
                r,
            )
        }
    };
    match result {
        Ok(info) => Ok(Some(info)),
        Err(e) => Err(match (&e, status(&e)) {
            (ClientError::APIError { code, errors }, _) => Error::Login {
                method: name,
                mount: mount.clone(),
                code: *code,
                detail: if errors.is_empty() {
                    "no detail".into()
                } else {
                    errors.join("; ")
                },
                hint,
            },
            (_, Some(code)) => Error::Login {
                method: name,
                mount: mount.clone(),
                code,
                detail: "unexpected response".into(),
                hint,
            },
            (
                ClientError::RestClientError {
                    source: RestError::RequestError { .. },
                },
                None,
            ) => Error::Unreachable {
                addr: addr.to_string(),
                source: e,
            },
            _ => Error::LoginFailed {
                method: name,
                mount: mount.clone(),
                source: e,
            },
        }),
    }
}

/// Renew the login token at two thirds of its TTL until it can no longer be extended. A
/// failed renewal (Vault briefly unreachable) is retried while the token still has time left.
async fn keep_alive(client: &VaultClient, mut ttl: Duration) {
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
                            "could not renew the login token, it expires now: {}",
                            crate::error::chain(&e)
                        );
                        return;
                    }
                    tracing::warn!(
                        "could not renew the login token (retrying in {}s): {}",
                        wait.as_secs_f32(),
                        crate::error::chain(&e)
                    );
                    tokio::time::sleep(wait).await;
                    left = left.saturating_sub(wait);
                }
            }
        };
        tracing::debug!(ttl_secs = info.lease_duration, "renewed the login token");
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

fn api_detail(body: &Value) -> String {
    body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "no detail".into())
}

fn url_check(addr: &str) -> Result<(), &'static str> {
    let rest = addr
        .strip_prefix("https://")
        .or_else(|| addr.strip_prefix("http://"))
        .ok_or("it must start with http:// or https://")?;
    if rest.is_empty() || rest.contains(char::is_whitespace) {
        return Err("it has no host");
    }
    // vaultrs panics on what the URL parser rejects (a port above 65535, say).
    match reqwest::Url::parse(addr) {
        Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        _ => Err("it is not a valid URL"),
    }
}

fn status(e: &ClientError) -> Option<u16> {
    match e {
        ClientError::APIError { code, .. } => Some(*code),
        ClientError::RestClientError {
            source: RestError::ServerResponseError { code, .. },
        } => Some(*code),
        _ => None,
    }
}

fn is_cas_mismatch(e: &ClientError) -> bool {
    matches!(e, ClientError::APIError { code: 400, errors }
        if errors.iter().any(|m| m.contains("check-and-set")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert!(url_check("http://127.0.0.1:8200").is_ok());
        assert!(url_check("https://vault").is_ok());
        assert!(url_check("127.0.0.1:8200").is_err());
        assert!(url_check("http://").is_err());
        assert!(url_check("https://vault:99999").is_err());
    }
}
