//! One module per verb. Each takes plain values (no clap) and returns an [`Outcome`].

mod dns;
mod init;
mod issue;
mod list;
mod renew;

use std::collections::BTreeMap;
use std::fmt;

use time::OffsetDateTime;

use crate::model::{CertName, DomainName, HumanDuration, KeyType, SolverSpec};
use crate::store::{Key, Store};
use crate::vault::Kv;
use crate::{acme, Error, Settings};

pub use dns::DnsCommand;
pub use init::InitArgs;
pub use issue::IssueArgs;

#[derive(Debug)]
pub enum Command {
    Init(InitArgs),
    Issue(IssueArgs),
    List { json: bool },
    Renew { force: bool, names: Vec<CertName> },
    Dns(DnsCommand),
}

/// What a command printed and whether it fully succeeded.
#[derive(Debug, Default)]
pub struct Outcome {
    pub text: String,
    /// A partial failure (some certificates failed): exit non-zero after printing.
    pub failed: bool,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What every command works with.
pub(crate) struct Context {
    pub store: Store,
    pub settings: Settings,
    /// Becomes `true` on SIGTERM/SIGINT.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    http: std::sync::OnceLock<reqwest::Client>,
}

/// Stored DNS solver configurations loaded for a run, and the ones that failed to load.
#[derive(Default)]
pub(crate) struct LoadedSolvers {
    pub configs: BTreeMap<String, crate::dns::Config>,
    pub broken: BTreeMap<String, String>,
    pub folder: String,
}

impl Context {
    fn new(
        settings: Settings,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<Self, Error> {
        let kv = Kv::new(&settings.vault).map_err(crate::store::Error::from)?;
        let store = Store::new(kv, &settings.prefix)?;
        Ok(Self {
            store,
            settings,
            shutdown,
            http: std::sync::OnceLock::new(),
        })
    }

    /// Load each named solver once (a missing one is simply absent).
    async fn load_solvers(&self, names: impl IntoIterator<Item = String>) -> LoadedSolvers {
        let mut out = LoadedSolvers {
            folder: self.store.display(Key::Solvers) + "/",
            ..Default::default()
        };
        for name in names {
            if out.configs.contains_key(&name) || out.broken.contains_key(&name) {
                continue;
            }
            match self.store.load_solver(&name).await {
                Ok(Some(r)) => {
                    out.configs.insert(name, r.data.config);
                }
                Ok(None) => {}
                Err(e) => {
                    out.broken.insert(name, crate::error::chain(&e));
                }
            }
        }
        out
    }

    /// The run's one HTTP client (ACME and DNS APIs share its connection pool).
    fn http(&self) -> Result<reqwest::Client, Error> {
        if let Some(c) = self.http.get() {
            return Ok(c.clone());
        }
        let client = acme::http_client(self.settings.acme_ca_cert.as_deref())?;
        Ok(self.http.get_or_init(|| client).clone())
    }

    /// Load an ACME account from Vault and reach its CA.
    async fn account(
        &self,
        http: &reqwest::Client,
        name: &str,
    ) -> Result<(instant_acme::Account, String), Error> {
        let record = self
            .store
            .load_account(name)
            .await?
            .ok_or_else(|| Error::NoAccount {
                path: self.store.display(Key::Account(name)),
            })?
            .data;
        let account = acme::account(http, &record.directory, record.credentials).await?;
        Ok((account, record.directory))
    }
}

/// Run one command. `now` is the clock; nothing below reads another.
pub async fn run(
    settings: Settings,
    command: Command,
    now: fn() -> OffsetDateTime,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<Outcome, Error> {
    let ctx = Context::new(settings, shutdown)?;
    match command {
        Command::Init(args) => init::run(&ctx, args, now).await,
        Command::Issue(args) => issue::run(&ctx, args, now).await,
        Command::List { json } => list::run(&ctx, json, now()).await,
        Command::Renew { force, names } => renew::run(&ctx, force, names, now).await,
        Command::Dns(cmd) => dns::run(&ctx, cmd).await,
    }
}

/// The solver, key and renewal settings given to `issue`.
#[derive(Debug, Clone)]
pub struct SpecArgs {
    pub domains: Vec<DomainName>,
    pub key_type: KeyType,
    pub dns: SolverSpec,
    pub renew_before: Option<HumanDuration>,
    pub follow_cname: bool,
    pub propagation_check: Option<bool>,
}

/// "in 3d 4h" / "2h ago", coarse.
pub(crate) fn relative(now: OffsetDateTime, t: OffsetDateTime) -> String {
    let d = t - now;
    let secs = d.whole_seconds().unsigned_abs();
    let text = if secs >= 2 * 86400 {
        format!("{}d", secs / 86400)
    } else if secs >= 3600 {
        format!("{}h{}m", secs / 3600, secs % 3600 / 60)
    } else {
        format!("{}m", secs / 60)
    };
    if d.is_negative() {
        format!("{text} ago")
    } else {
        format!("in {text}")
    }
}
