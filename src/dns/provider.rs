//! The provider trait and the one DNS-01 value it publishes.

use serde::{Deserialize, Serialize};

use super::error::Error;
use super::name::{Fqdn, Zone};

/// One DNS-01 value to publish, with the zone that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxtRecord {
    /// The identifier being validated, without `*.` (certbot's `CERTBOT_DOMAIN`).
    pub domain: Fqdn,
    /// Where the value goes: `_acme-challenge.<domain>`, or the CNAME target.
    pub name: Fqdn,
    /// The zone apex that holds `name`; `None` only where nothing was looked up (exec
    /// hooks without the propagation check).
    pub zone: Option<Zone>,
    /// base64url(SHA-256(key authorization)): public, it is published in DNS.
    pub value: String,
}

impl TxtRecord {
    /// The zone, for providers that need one (all but exec).
    pub fn zone(&self, solver: &str) -> Result<&Zone, Error> {
        self.zone.as_ref().ok_or_else(|| Error::Config {
            solver: solver.to_string(),
            reason: format!("no zone is known for {}", self.name),
        })
    }

    /// The zone as text for messages (`?` when unknown).
    pub fn zone_text(&self) -> String {
        self.zone
            .as_ref()
            .map(|z| z.to_string())
            .unwrap_or_else(|| "?".into())
    }
}

/// A provider. Challenges are presented one after another, then validated together, then
/// cleaned up (always, also after a failure).
#[allow(async_fn_in_trait)]
pub trait Provider {
    /// What `cleanup` needs to remove exactly the presented value (a record id, ...).
    type Handle: Clone + std::fmt::Debug + Serialize + serde::de::DeserializeOwned;
    /// Publish `record`, leaving other values at the same name alone.
    async fn present(&self, record: &TxtRecord) -> Result<Self::Handle, Error>;
    /// Remove exactly what `present` published; succeed if it is already gone.
    async fn cleanup(&self, record: &TxtRecord, handle: &Self::Handle) -> Result<(), Error>;
}
