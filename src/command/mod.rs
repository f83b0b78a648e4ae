//! One module per verb. Each takes plain values (no clap) and returns an [`Outcome`].

mod init;
mod issue;
mod list;
mod renew;

use std::fmt;

use time::OffsetDateTime;

use crate::model::{CertName, DomainName, HumanDuration, KeyType, SolverSpec};
use crate::store::{Key, Store};
use crate::vault::Kv;
use crate::{acme, Error, Settings};

pub use init::InitArgs;
pub use issue::IssueArgs;

#[derive(Debug)]
pub enum Command {
    Init(InitArgs),
    Issue(IssueArgs),
    List { json: bool },
    Renew { force: bool, names: Vec<CertName> },
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
}

impl Context {
    fn new(settings: Settings) -> Result<Self, Error> {
        let kv = Kv::new(&settings.vault).map_err(crate::store::Error::from)?;
        let store = Store::new(kv, &settings.prefix)?;
        Ok(Self { store, settings })
    }

    fn http(&self) -> Result<reqwest::Client, Error> {
        Ok(acme::http_client(self.settings.acme_ca_cert.as_deref())?)
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
) -> Result<Outcome, Error> {
    let ctx = Context::new(settings)?;
    match command {
        Command::Init(args) => init::run(&ctx, args, now).await,
        Command::Issue(args) => issue::run(&ctx, args, now).await,
        Command::List { json } => list::run(&ctx, json, now()).await,
        Command::Renew { force, names } => renew::run(&ctx, force, names, now).await,
    }
}

/// The solver, key and renewal settings given to `issue`.
#[derive(Debug, Clone)]
pub struct SpecArgs {
    pub domains: Vec<DomainName>,
    pub key_type: KeyType,
    pub dns: SolverSpec,
    pub renew_before: Option<HumanDuration>,
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
