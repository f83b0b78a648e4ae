//! A small KV v2 client over vaultrs: read with version, write with check-and-set, list.
//!
//! Paths given here are relative to the mount; `store` is the only caller that spells them.

use std::path::PathBuf;
use std::time::Duration;

use rustify::errors::ClientError as RestError;
use serde_json::Value;
use vaultrs::api::kv2::requests::{ReadSecretRequest, SetSecretRequestOptions};
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

use crate::model::Secret;

/// How to reach Vault. Mirrors Vault's own environment variables.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `VAULT_ADDR`
    pub addr: String,
    /// `VAULT_TOKEN`
    pub token: Option<Secret>,
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
    #[error("no Vault token: set VAULT_TOKEN")]
    NoToken,
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
    #[error("Vault denied {op} on {path} (403 permission denied): check that VAULT_TOKEN is valid and its policy grants {op} on this path")]
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

/// What a write expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Create only: fail if the document exists (`cas = 0`).
    Absent,
    /// Overwrite exactly this version (`cas = N`).
    Version(u64),
}

pub struct Kv {
    client: VaultClient,
    addr: String,
    mount: String,
}

impl Kv {
    pub fn new(settings: &Settings) -> Result<Self, Error> {
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
        let token = settings.token.as_ref().ok_or(Error::NoToken)?;
        let mut builder = VaultClientSettingsBuilder::default();
        builder
            .address(&addr)
            .token(token.expose())
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
        let client = VaultClient::new(built).map_err(|source| match &settings.cacert {
            Some(path) => Error::CaCert {
                path: path.clone(),
                source,
            },
            None => Error::Unreachable {
                addr: addr.clone(),
                source,
            },
        })?;
        Ok(Self {
            client,
            addr,
            mount: settings.mount.clone(),
        })
    }

    /// `mount/path` as a user would type it for `vault kv get`.
    pub fn display_path(&self, path: &str) -> String {
        format!("{}/{}", self.mount, path)
    }

    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// Read the latest version; `None` if there is none (or it is deleted).
    pub async fn read(&self, path: &str) -> Result<Option<Versioned<Value>>, Error> {
        let req = ReadSecretRequest::builder()
            .mount(&self.mount)
            .path(path)
            .build()
            .expect("all fields set");
        match vaultrs::api::exec_with_result(&self.client, req).await {
            Ok(rsp) if rsp.data.is_null() => Ok(None),
            Ok(rsp) => Ok(Some(Versioned {
                data: rsp.data,
                version: rsp.metadata.version,
            })),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(self.error("read", path, e)),
        }
    }

    /// Write a new version with check-and-set; returns the new version.
    pub async fn write(&self, path: &str, data: &Value, expect: Expect) -> Result<u64, Error> {
        let cas = match expect {
            Expect::Absent => 0,
            Expect::Version(v) => u32::try_from(v).unwrap_or(u32::MAX),
        };
        match vaultrs::kv2::set_with_options(
            &self.client,
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

    /// Names directly below `path` (a trailing `/` marks a folder); empty if none.
    pub async fn list(&self, path: &str) -> Result<Vec<String>, Error> {
        match vaultrs::kv2::list(&self.client, &self.mount, path).await {
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

fn url_check(addr: &str) -> Result<(), &'static str> {
    let rest = addr
        .strip_prefix("https://")
        .or_else(|| addr.strip_prefix("http://"))
        .ok_or("it must start with http:// or https://")?;
    if rest.is_empty() || rest.contains(char::is_whitespace) {
        return Err("it has no host");
    }
    Ok(())
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
    }
}
