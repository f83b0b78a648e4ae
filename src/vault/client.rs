//! The KV client: connecting (address, server, login, token lifetime, mount), closing, and
//! the raw requests for endpoints vaultrs has no API for.

use std::sync::Arc;
use std::time::Duration;

use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};

use super::error::Error;
use super::types::{KvVersion, Settings};
use super::{http, login, probe, retry, token};

pub struct Kv {
    pub(super) client: Arc<VaultClient>,
    pub(super) addr: String,
    pub(super) mount: String,
    pub(super) version: KvVersion,
    pub(super) retry: Duration,
    /// Shared by every request of the run: an outage costs it one retry budget in all.
    pub(super) outage: Arc<retry::Outage>,
    /// Whether the token came from a login by this run (revoked by [`Kv::close`]).
    pub(super) logged_in: bool,
    /// Renews the token while the run lasts (a login's, or a caller's renewable one).
    pub(super) keep_alive: Option<tokio::task::JoinHandle<()>>,
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
        probe::probe(&client, &addr, settings.retry).await?;
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
    pub(super) fn raw(&self, method: reqwest::Method, api: &str) -> reqwest::RequestBuilder {
        http::raw(&self.client, &self.addr, method, api)
    }
}
