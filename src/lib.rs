//! certvault: ACME certificates issued and renewed with HashiCorp Vault / OpenBao as the
//! only state. See the README for the Vault layout and the commands.

mod acme;
mod ari;
mod auth;
mod ca;
mod command;
pub mod defaults;
mod dns;
mod error;
mod hook;
mod import;
mod index;
mod logging;
mod metrics;
mod model;
mod notify;
mod policy;
mod random;
mod records;
mod renew;
mod report;
mod secret;
mod store;
pub mod text;
mod vault;
mod x509;

// The library's one public surface: what the binary (`src/cli/`) and the integration
// tests use. Everything else is private, so code nothing uses shows up as dead.
pub use acme::{check_url, Timeouts};
pub use auth::{Credential, Method as AuthMethod, KUBERNETES_JWT_FILE};
pub use ca::valid_reason;
pub use command::{
    run, Command, DnsCommand, ImportArgs, ImportSource, InitArgs, IssueArgs, Manage, Outcome,
    RenewArgs, SpecArgs, SpecChanges,
};
pub use dns::cloudflare::Config as CloudflareConfig;
pub use dns::dnsimple::Config as DnsimpleConfig;
pub use dns::propagation::{wait_until_visible, Check, Polling};
pub use dns::zone::{Lookup as DnsLookup, Nameserver};
pub use dns::{
    AddArgs as DnsAddArgs, AnyProvider, Build as DnsBuild, Config as DnsConfig, Fqdn,
    ProviderConfig, SecretSource, Settings as DnsSettings, SolverSettings, TxtRecord, Zone,
};
pub use error::Error;
pub use index::Part as Shard;
pub use logging::{init as init_logging, Format as LogFormat};
pub use metrics::Sinks as MetricSinks;
pub use model::{
    AccountName, CertName, DomainName, EnvName, HumanDuration, InvalidInput, KeyType, RecordLayout,
    Secret, SolverName, SolverSpec,
};
pub use notify::{Notify, Target as NotifyTarget};
pub use policy::Role;
pub use text::chain;
pub use vault::{KvVersion, Lifetime, Settings as VaultSettings};

use std::path::PathBuf;

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
    /// When the renewal index grows: more certificates than this per index document on
    /// average (`--index-grow-above`, default [`index::GROW_ABOVE`]).
    pub index_grow_above: u64,
    pub timeouts: acme::Timeouts,
    /// Zone discovery and propagation checks.
    pub dns: dns::Settings,
}
