//! certvault: ACME certificates issued and renewed with HashiCorp Vault / OpenBao as the
//! only state. See the README for the Vault layout and the commands.

pub mod acme;
pub mod ari;
pub mod auth;
pub mod ca;
pub mod command;
pub mod defaults;
pub mod dns;
pub mod error;
pub mod hook;
pub mod import;
pub mod index;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod policy;
pub mod renew;
pub mod secret;
pub mod store;
pub mod vault;
pub mod x509;

use std::path::PathBuf;

pub use command::{run, Command, Outcome};
pub use error::Error;

/// Settings shared by every command (from flags and environment, read in `main` only).
#[derive(Debug, Clone)]
pub struct Settings {
    pub vault: vault::Settings,
    /// Folder below the mount (`--prefix` / `CERTVAULT_PREFIX`).
    pub prefix: String,
    /// Extra trust root for the ACME CA's HTTPS endpoint (`--acme-ca-cert`).
    pub acme_ca_cert: Option<PathBuf>,
    /// Which account record a command uses (`--account`, default `default`).
    pub account: String,
    /// How many orders run at once in `renew`.
    pub concurrency: usize,
    /// `-q`: for cron. Commands print nothing on success; on failure, only what failed and
    /// the summary.
    pub quiet: bool,
    /// Length of a certificate's lock lease (`--lock-lease`, default 60 s, at most 10 min).
    pub lock_lease: std::time::Duration,
    pub timeouts: acme::Timeouts,
    /// Zone discovery and propagation checks.
    pub dns: dns::Settings,
}
