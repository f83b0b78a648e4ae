//! DNS-01: the provider trait every solver implements, and the solvers.
//!
//! A provider publishes one TXT value and later removes exactly that value. It must leave
//! other values at the same name alone: an apex and its wildcard share `_acme-challenge`.

pub mod exec;

use crate::model::SolverSpec;

/// One DNS-01 value to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxtRecord {
    /// The identifier being validated, without `*.` (certbot's `CERTBOT_DOMAIN`).
    pub domain: String,
    /// `_acme-challenge.<domain>` (fully qualified, no trailing dot).
    pub name: String,
    /// base64url(SHA-256(key authorization)): public, it is published in DNS.
    pub value: String,
}

impl TxtRecord {
    pub fn new(domain: &str, value: String) -> Self {
        Self {
            domain: domain.to_string(),
            name: format!("_acme-challenge.{domain}"),
            value,
        }
    }
}

/// What `present` created: enough for `cleanup` to remove exactly that value.
#[derive(Debug, Clone)]
pub struct Presented {
    pub record: TxtRecord,
    /// Provider data for the cleanup (the exec solver keeps the auth hook's output).
    pub handle: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{hook} hook for {domain} exited with {status}{}", tail(.stderr))]
    HookFailed {
        hook: &'static str,
        domain: String,
        status: String,
        stderr: String,
    },
    #[error("{hook} hook for {domain} did not finish within {seconds}s and was killed")]
    HookTimeout {
        hook: &'static str,
        domain: String,
        seconds: u64,
    },
    #[error("cannot run {hook} hook for {domain}")]
    HookSpawn {
        hook: &'static str,
        domain: String,
        #[source]
        source: std::io::Error,
    },
}

fn tail(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", stderr.trim())
    }
}

/// A DNS-01 solver. Challenges are presented one after another, then validated together,
/// then cleaned up (always, also after a failure).
#[allow(async_fn_in_trait)]
pub trait Provider {
    /// Publish `record`, leaving other values at the same name alone.
    async fn present(&self, record: &TxtRecord) -> Result<Presented, Error>;
    /// Remove exactly what `present` published; succeed if it is already gone.
    async fn cleanup(&self, presented: &Presented) -> Result<(), Error>;
}

/// The solver chosen for one certificate.
pub enum AnyProvider {
    Exec(exec::Hooks),
}

impl AnyProvider {
    /// Build the solver for an order of `domains` (all names, for certbot's `CERTBOT_ALL_DOMAINS`).
    pub fn for_order(spec: &SolverSpec, domains: &[String], challenges: usize) -> Self {
        match spec {
            SolverSpec::Exec {
                auth_hook,
                cleanup_hook,
            } => AnyProvider::Exec(exec::Hooks::new(
                auth_hook.clone(),
                cleanup_hook.clone(),
                domains.join(","),
                challenges,
            )),
        }
    }
}

impl Provider for AnyProvider {
    async fn present(&self, record: &TxtRecord) -> Result<Presented, Error> {
        match self {
            AnyProvider::Exec(p) => p.present(record).await,
        }
    }
    async fn cleanup(&self, presented: &Presented) -> Result<(), Error> {
        match self {
            AnyProvider::Exec(p) => p.cleanup(presented).await,
        }
    }
}
