//! Logging in with AppRole, Kubernetes or JWT; a given token needs none.

use vaultrs::api::AuthInfo;
use vaultrs::client::VaultClient;

use super::error::Error;
use super::http::{self, Failure};
use super::retry::Backoff;
use crate::auth::{self, Method};
use crate::model::Secret;

/// The secrets of the auth method, read (from the environment or files) before any request.
pub enum Credentials {
    Token(Secret),
    AppRole { role_id: Secret, secret_id: Secret },
    Jwt(Secret),
}

impl Credentials {
    pub fn read(method: &Method) -> Result<Self, auth::Error> {
        Ok(match method {
            Method::Token { token: Some(t) } => {
                Credentials::Token(t.read("Vault token", "VAULT_TOKEN_FILE")?)
            }
            Method::Token { token: None } => return Err(auth::Error::NoToken),
            Method::AppRole {
                role_id, secret_id, ..
            } => Credentials::AppRole {
                role_id: role_id.read("AppRole role id", "VAULT_ROLE_ID / VAULT_ROLE_ID_FILE")?,
                secret_id: secret_id.read(
                    "AppRole secret id",
                    "VAULT_SECRET_ID / VAULT_SECRET_ID_FILE",
                )?,
            },
            Method::Kubernetes { jwt, .. } => Credentials::Jwt(
                jwt.read("Kubernetes service account token", "CERTVAULT_JWT_FILE")?,
            ),
            Method::Jwt { jwt, .. } => {
                Credentials::Jwt(jwt.read("JWT", "CERTVAULT_JWT / CERTVAULT_JWT_FILE")?)
            }
        })
    }

    /// The given token (`--auth token`).
    pub fn token(&self) -> Option<&str> {
        match self {
            Credentials::Token(t) => Some(t.expose()),
            _ => None,
        }
    }
}

/// Log in as `method` says; `None` for a given token. Retried while Vault is unavailable
/// (a login whose answer was lost leaves a token that expires at its TTL).
pub async fn login(
    client: &VaultClient,
    addr: &str,
    method: &Method,
    creds: &Credentials,
    budget: std::time::Duration,
) -> Result<Option<AuthInfo>, Error> {
    let (name, mount, hint) = match method {
        Method::Token { .. } => return Ok(None),
        Method::AppRole { mount, .. } => (
            "approle",
            mount,
            "VAULT_ROLE_ID, VAULT_SECRET_ID, CERTVAULT_AUTH_MOUNT",
        ),
        Method::Kubernetes { mount, .. } => (
            "kubernetes",
            mount,
            "CERTVAULT_AUTH_ROLE, CERTVAULT_JWT_FILE, CERTVAULT_AUTH_MOUNT",
        ),
        Method::Jwt { mount, .. } => (
            "jwt",
            mount,
            "CERTVAULT_AUTH_ROLE, CERTVAULT_JWT / CERTVAULT_JWT_FILE, CERTVAULT_AUTH_MOUNT",
        ),
    };
    let mut backoff = Backoff::new(budget);
    let what = format!("the {name} login");
    let failure = loop {
        let result = match (method, creds) {
            (Method::AppRole { mount, .. }, Credentials::AppRole { role_id, secret_id }) => {
                vaultrs::auth::approle::login(client, mount, role_id.expose(), secret_id.expose())
                    .await
            }
            (Method::Kubernetes { mount, role, .. }, Credentials::Jwt(jwt)) => {
                vaultrs::auth::kubernetes::login(client, mount, role, jwt.expose()).await
            }
            (Method::Jwt { mount, role, .. }, Credentials::Jwt(jwt)) => {
                vaultrs::auth::oidc::login(client, mount, jwt.expose(), role.clone()).await
            }
            _ => return Ok(None),
        };
        match result.map_err(http::from_client) {
            Ok(info) => return Ok(Some(info)),
            Err(f) => {
                if !backoff.retry(&f, &what).await {
                    break f;
                }
            }
        }
    };
    Err(match failure {
        Failure::Status { code, detail, .. } => Error::Login {
            method: name,
            mount: mount.clone(),
            code,
            detail,
            hint,
        },
        Failure::NoAnswer { why, source } => super::error::unreachable(addr, why, source),
        Failure::Other(source) => Error::LoginFailed {
            method: name,
            mount: mount.clone(),
            source,
        },
        Failure::Abandoned { waited } => Error::GaveUpOnVault {
            addr: addr.into(),
            waited,
        },
    })
}
