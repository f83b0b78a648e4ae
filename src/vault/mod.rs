//! A small KV client over vaultrs: read with version, write with check-and-set, list.
//! KV version 2 mounts get check-and-set; version 1 mounts have no versions (reads report
//! version 0) and no check-and-set, so a concurrent writer there is not detected.
//!
//! Paths given here are relative to the mount; `store` is the only caller that spells them.
//!
//! One file per concern:
//! - [`http`]: what a failed request was (classified once for every caller), addresses;
//! - [`retry`]: bounded backoff with jitter for idempotent requests;
//! - [`kv`]: read, write (check-and-set, safe to retry), delete, list;
//! - [`login`]: AppRole, Kubernetes and JWT logins;
//! - [`token`]: the token's lifetime: the start-up check, renewal while the run lasts;
//! - [`server`]: is it Vault at all, the mount, `sys/capabilities-self`.

mod http;
mod kv;
mod login;
mod retry;
mod server;
mod token;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};

use crate::auth::{self, Method};
pub use http::Cause;
pub use token::Lifetime;

/// The KV secrets engine version of the mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvVersion {
    V1,
    V2,
}

/// How to reach Vault. Mirrors Vault's own environment variables.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `VAULT_ADDR` (or `BAO_ADDR`)
    pub addr: String,
    /// How to get a token: `VAULT_TOKEN` / `VAULT_TOKEN_FILE` / `~/.vault-token`, or a login.
    pub auth: Method,
    /// `--kv-version`: `None` detects it from the mount.
    pub kv_version: Option<KvVersion>,
    /// `VAULT_NAMESPACE` (Vault Enterprise / OpenBao namespaces)
    pub namespace: Option<String>,
    /// `VAULT_CACERT`: a PEM file trusted in addition to the system roots.
    pub cacert: Option<PathBuf>,
    /// The KV v2 mount (`--mount` / `CERTVAULT_MOUNT`).
    pub mount: String,
    /// How long one idempotent request is retried while Vault is unavailable
    /// (`--vault-retry-timeout`).
    pub retry: Duration,
    /// How long the token must live for this command (`None`: no ACME orders).
    pub lifetime: Option<Lifetime>,
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
        source: Cause,
    },
    #[error("Vault rejected the token when checking its capabilities (403 on sys/capabilities-self): the token is expired, revoked or invalid, or it lacks Vault's `default` policy; get a new token (or check the login settings)")]
    TokenRejected,
    #[error("the Vault token expires in {}s, less than one ACME order may take ({}s: validation, propagation and issuance timeouts){}; use a token that lives longer, or shorten those timeouts", .ttl.as_secs(), .needed.as_secs(), if *.renewable { " even after renewing it" } else { " and it cannot be renewed" })]
    TokenTooShort {
        ttl: Duration,
        needed: Duration,
        renewable: bool,
    },
    #[error("cannot use VAULT_CACERT {path:?}")]
    CaCert {
        path: PathBuf,
        #[source]
        source: Cause,
    },
    #[error(
        "cannot reach Vault at {addr}; check VAULT_ADDR and that Vault is running and unsealed"
    )]
    Unreachable {
        addr: String,
        #[source]
        source: Cause,
    },
    #[error("{addr} speaks plain HTTP, not TLS: VAULT_ADDR says https:// but the server answered the TLS handshake in plain HTTP; use http:// (or enable TLS on the server)")]
    PlainHttp { addr: String },
    #[error("{addr} is not a Vault or OpenBao server: GET /v1/sys/health answered {answer}; check VAULT_ADDR (host, port, and no path)")]
    NotVault { addr: String, answer: String },
    #[error(
        "Vault at {addr} is sealed; unseal it (`bao operator unseal` / `vault operator unseal`)"
    )]
    Sealed { addr: String },
    #[error("no KV mount {mount}/ at {addr}{}; check --mount / CERTVAULT_MOUNT", visible_mounts(.visible))]
    NoSuchMount {
        mount: String,
        addr: String,
        /// The KV mounts this token can see; `None` if it can see all (it would see this one).
        visible: Option<Vec<String>>,
    },
    #[error("{mount}/ at {addr} is a {kind} mount, not a KV secrets engine; check --mount / CERTVAULT_MOUNT")]
    NotKv {
        mount: String,
        addr: String,
        kind: String,
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
        source: Cause,
    },
    #[error("Vault at {addr} has not answered for {}s (--vault-retry-timeout): this run gave up on it and sent nothing more; the next run goes on from what is stored", .waited.as_secs())]
    GaveUpOnVault { addr: String, waited: Duration },
    #[error("the write of {path} may have landed: Vault received it but did not answer, and could not be asked again; the next run reads it and goes on from what is stored")]
    Unconfirmed {
        path: String,
        #[source]
        source: Box<Error>,
    },
    #[error("gave up on Vault after retrying for {}s", .waited.as_secs())]
    GaveUp {
        waited: Duration,
        #[source]
        source: Box<Error>,
    },
}

fn visible_mounts(v: &Option<Vec<String>>) -> String {
    match v {
        None => String::new(),
        Some(v) if v.is_empty() => {
            " (or this token has no access to it: it sees no KV mount at all)".into()
        }
        Some(v) => format!(
            " (or this token has no access to it; the KV mounts it can see: {})",
            v.join(", ")
        ),
    }
}

impl Error {
    /// A setting the user did not give (exit code 2, like every missing setting).
    pub fn is_missing_setting(&self) -> bool {
        matches!(
            self,
            Error::Auth(auth::Error::Missing { .. } | auth::Error::NoToken)
        )
    }
}

/// A document and the KV v2 version it was read at.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub data: T,
    pub version: u64,
    /// When Vault wrote this version (KV v2 `created_time`, Unix seconds; `None` on KV v1).
    /// Set by the server, so a writer of the document cannot choose it.
    pub written_at: Option<i64>,
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
    retry: Duration,
    /// Shared by every request of the run: an outage costs it one retry budget in all.
    outage: Arc<retry::Outage>,
    /// Whether the token came from a login by this run (revoked by [`Kv::close`]).
    logged_in: bool,
    /// Renews the token while the run lasts (a login's, or a caller's renewable one).
    keep_alive: Option<tokio::task::JoinHandle<()>>,
}

impl Kv {
    /// Check the address, make sure it is Vault, log in if the settings say so, check the
    /// token's lifetime, and find the mount and its KV version.
    pub async fn connect(settings: &Settings) -> Result<Self, Error> {
        let addr = settings.addr.trim_end_matches('/').to_string();
        http::check_address(&addr).map_err(|reason| Error::BadAddress {
            addr: addr.clone(),
            reason,
        })?;
        // Read every credential before the first request: a missing setting costs nothing.
        let creds = login::Credentials::read(&settings.auth)?;
        if let Some(path) = &settings.cacert {
            // vaultrs skips a CA file it cannot read: say so instead.
            if let Err(e) = std::fs::File::open(path) {
                return Err(Error::CaCert {
                    path: path.clone(),
                    source: Box::new(e),
                });
            }
        }
        let mut builder = VaultClientSettingsBuilder::default();
        builder
            .address(&addr)
            // Empty until the login: vaultrs would otherwise read VAULT_TOKEN itself.
            .token(creds.token().unwrap_or(""))
            // Never disabled silently: vaultrs would read VAULT_SKIP_VERIFY="" as "skip".
            .verify(true)
            // One attempt waits at most 30 s, and never longer than the whole retry budget:
            // a stalled Vault costs a run at most the budget plus one attempt.
            .timeout(Some(
                settings
                    .retry
                    .clamp(Duration::from_secs(1), Duration::from_secs(30)),
            ))
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
                source: Box::new(source),
            },
            None => Error::Unreachable {
                addr: addr.clone(),
                source: Box::new(source),
            },
        })?;
        server::probe(&client, &addr, settings.retry).await?;
        let login = login::login(&client, &addr, &settings.auth, &creds, settings.retry).await?;
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
        let keep_alive =
            token::check_and_keep_alive(&client, &addr, login.is_some(), settings.lifetime).await?;
        let mut kv = Self {
            client,
            addr,
            mount: settings.mount.clone(),
            version: KvVersion::V2,
            retry: settings.retry,
            outage: Arc::default(),
            logged_in: login.is_some(),
            keep_alive,
        };
        kv.version = kv.detect_mount(settings.kv_version).await?;
        Ok(kv)
    }

    /// End the run: stop renewing, and revoke a token this run logged in for (a caller's
    /// token is left alone). A failed revocation is logged (the token then expires at its
    /// TTL).
    pub async fn close(&self) {
        if let Some(renewer) = &self.keep_alive {
            renewer.abort();
        }
        if !self.logged_in {
            return;
        }
        match vaultrs::token::revoke_self(self.client.as_ref()).await {
            Ok(()) => tracing::debug!("revoked the login token"),
            Err(e) => tracing::warn!(
                "could not revoke the login token (it expires at its TTL): {}",
                crate::text::chain(&e)
            ),
        }
    }

    pub fn version(&self) -> KvVersion {
        self.version
    }

    /// The same connection and token on another KV mount (`import vault-layout` reads its
    /// source there); its KV version is detected. Closing it revokes nothing.
    pub async fn on_mount(&self, mount: &str) -> Result<Kv, Error> {
        let mut kv = Kv {
            client: self.client.clone(),
            addr: self.addr.clone(),
            mount: mount.to_string(),
            version: KvVersion::V2,
            retry: self.retry,
            outage: self.outage.clone(),
            logged_in: false,
            keep_alive: None,
        };
        kv.version = kv.detect_mount(None).await?;
        Ok(kv)
    }

    /// `mount/path` as a user would type it for `vault kv get`.
    pub fn display_path(&self, path: &str) -> String {
        format!("{}/{}", self.mount, path)
    }

    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// A request with the client's TLS settings, token and namespace, for the endpoints
    /// vaultrs has no API for.
    fn raw(&self, method: reqwest::Method, api: &str) -> reqwest::RequestBuilder {
        raw(&self.client, &self.addr, method, api)
    }
}

/// A request to `<addr>/v1/<api>` with the client's TLS settings, token and namespace.
fn raw(
    client: &VaultClient,
    addr: &str,
    method: reqwest::Method,
    api: &str,
) -> reqwest::RequestBuilder {
    let mut req = client
        .http
        .http
        .request(method, format!("{addr}/v1/{api}"))
        .header("X-Vault-Request", "true");
    if !client.settings.token.is_empty() {
        req = req.header("X-Vault-Token", &client.settings.token);
    }
    if let Some(ns) = &client.settings.namespace {
        req = req.header("X-Vault-Namespace", ns);
    }
    req
}

/// The one mapping of a failed request to an error (logins have their own wording).
fn failed(addr: &str, op: &'static str, path: String, failure: http::Failure) -> Error {
    match failure {
        http::Failure::Status { code: 403, .. } => Error::Forbidden { op, path },
        http::Failure::Status { code, detail, .. } => Error::Api {
            op,
            path,
            code,
            detail,
        },
        http::Failure::NoAnswer { why, source } => unreachable(addr, why, source),
        http::Failure::Other(source) => Error::Other { op, path, source },
        http::Failure::Abandoned { waited } => Error::GaveUpOnVault {
            addr: addr.into(),
            waited,
        },
    }
}

/// The error for a request nothing answered.
fn unreachable(addr: &str, why: http::NoAnswer, source: Cause) -> Error {
    match why {
        http::NoAnswer::PlainHttp => Error::PlainHttp { addr: addr.into() },
        _ => Error::Unreachable {
            addr: addr.into(),
            source,
        },
    }
}
