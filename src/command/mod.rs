//! One module per verb. Each takes plain values (no clap) and returns an [`Outcome`].

mod account;
mod ari;
mod deploy;
mod dns;
mod doctor;
mod edit;
mod gate;
mod import;
mod index;
mod init;
mod issue;
mod lease;
mod list;
mod manage;
pub use manage::Manage;
mod migrate;
mod order;
mod renew;
mod revoke;
mod run_id;
mod status;

use std::collections::BTreeMap;
use std::fmt;

use time::OffsetDateTime;

use crate::model::{CertName, DomainName, HumanDuration, KeyType, SolverSpec};
use crate::policy::{self, Layout, Role, Work};
use crate::store::{Key, Store};
use crate::vault::{Kv, KvVersion};
use crate::{acme, Error, Settings};

pub use dns::DnsCommand;
pub use edit::SpecChanges;
pub use import::{ImportArgs, Source as ImportSource};
pub use init::InitArgs;
pub use issue::IssueArgs;
pub use renew::RenewArgs;
pub(crate) use run_id::RunId;

#[derive(Debug)]
pub enum Command {
    Init(InitArgs),
    Issue(IssueArgs),
    List {
        json: bool,
        /// `--verify`: read every record, report where the index disagrees.
        verify: bool,
    },
    /// Rebuild the renewal index from the records.
    IndexRebuild,
    Renew {
        args: RenewArgs,
        names: Vec<CertName>,
        /// `--shard I/N` (or `auto`): only the certificates of this part. Metrics and the
        /// report name it.
        shard: Option<crate::index::Part>,
        /// `--output json`: the report as JSON instead of the text summary.
        json: bool,
        metrics: crate::metrics::Sinks,
        /// `--notify`: where to say that certificates failed, were deferred or expire soon.
        notify: crate::notify::Notify,
    },
    Dns(DnsCommand),
    /// Change settings of one certificate.
    Edit {
        name: CertName,
        changes: SpecChanges,
        force: bool,
    },
    /// `show`, `unlock`, `delete`: one certificate's upkeep.
    Manage(Manage),
    /// Revoke a certificate with the account that ordered it; the next renew replaces it.
    Revoke {
        name: CertName,
        reason: Option<String>,
    },
    /// RFC 8555 key change of the stored account.
    AccountRollover,
    /// Deactivate the stored account at the CA; `yes` confirms.
    AccountDeactivate {
        yes: bool,
    },
    /// Move specs of older records to their admin-only documents.
    Migrate {
        dry_run: bool,
        /// `--output json`: every moved certificate, the distinct settings and the totals.
        json: bool,
    },
    /// Store existing certificates (certbot, lego, certbot-in-Vault) as they are.
    Import(ImportArgs),
    /// Check what renewals depend on and say what is wrong.
    Doctor {
        names: Vec<CertName>,
        /// Write a probe record through each certificate's solver.
        probe: bool,
        json: bool,
    },
    /// Print the HCL policy of `role` (no Vault access).
    Policy {
        role: Role,
        cert: Option<CertName>,
    },
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
    /// Who this run is, as recorded in the locks it holds.
    pub run: RunId,
    /// DNS-01 values this run left in DNS, and values earlier runs left that it removed.
    pub dns_tally: DnsTally,
    http: std::sync::OnceLock<reqwest::Client>,
}

/// Counts of DNS-01 values left in DNS (for the summary and metrics).
#[derive(Debug, Default)]
pub(crate) struct DnsTally {
    /// Left in DNS by this run (listed in the released locks for the next run).
    pub left: std::sync::atomic::AtomicUsize,
    /// Left by earlier runs and removed (or found not to be the certificate's) by this one.
    pub cleared: std::sync::atomic::AtomicUsize,
}

impl DnsTally {
    pub fn add_left(&self, n: usize) {
        self.left.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
    pub fn add_cleared(&self, n: usize) {
        self.cleared
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
    /// (left, cleared)
    pub fn get(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.left.load(Relaxed), self.cleared.load(Relaxed))
    }
}

/// Stored DNS solver configurations loaded for a run, and the ones that failed to load.
#[derive(Default)]
pub(crate) struct LoadedSolvers {
    pub configs: BTreeMap<String, crate::dns::Config>,
    /// Solvers whose configuration could not be read: the read error, printed.
    pub broken: BTreeMap<String, String>,
    pub folder: String,
}

impl LoadedSolvers {
    /// The solvers as a DNS-01 session uses them, with the run's DNS settings and client;
    /// `presented` is told what an order presents (for the lock lease).
    pub(crate) fn for_orders<'a>(
        &'a self,
        ctx: &'a Context,
        http: &'a reqwest::Client,
        presented: Option<tokio::sync::watch::Sender<Vec<crate::dns::Leftover>>>,
    ) -> crate::dns::Solvers<'a> {
        crate::dns::Solvers {
            settings: &ctx.settings.dns,
            http,
            configs: &self.configs,
            broken: &self.broken,
            folder: self.folder.clone(),
            presented,
        }
    }
}

impl Context {
    async fn connect(
        settings: Settings,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<Self, Error> {
        if crate::store::clean_prefix(&settings.prefix).is_none() {
            // Before logging in: a bad setting must not cost a token.
            return Err(crate::store::Error::BadPrefix(settings.prefix.clone()).into());
        }
        let kv = Kv::connect(&settings.vault)
            .await
            .map_err(crate::store::Error::from)?;
        let store = match Store::new(kv, &settings.prefix) {
            Ok(s) => s,
            Err(e) => return Err(e.into()),
        };
        Ok(Self {
            store,
            settings,
            shutdown,
            run: RunId::new(),
            dns_tally: DnsTally::default(),
            http: std::sync::OnceLock::new(),
        })
    }

    /// Stop before doing anything if the token lacks a capability `work` needs.
    async fn check(&self, command: &'static str, work: Work<'_>) -> Result<(), Error> {
        let missing = self.missing(work).await?;
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::MissingCapabilities { command, missing })
        }
    }

    /// The capabilities `work` needs that the token lacks.
    async fn missing(&self, work: Work<'_>) -> Result<Vec<policy::Need>, Error> {
        let layout = Layout {
            version: self.store.kv().version(),
            mount: self.store.kv().mount(),
            prefix: self.store.prefix(),
        };
        let needs = policy::needs(work, &layout);
        let have = self
            .store
            .kv()
            .capabilities(&policy::paths(&needs))
            .await
            .map_err(crate::store::Error::from)?;
        Ok(policy::missing(needs, &have))
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
                    out.broken.insert(name, crate::text::chain(&e));
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

    /// The stored ACME account `name`, or the error that says to run `init`.
    async fn account_record(&self, name: &str) -> Result<crate::records::AccountRecord, Error> {
        Ok(self
            .store
            .load_account(name)
            .await?
            .ok_or_else(|| Error::NoAccount {
                path: self.store.display(Key::Account(name)),
            })?
            .data)
    }

    /// Load an ACME account from Vault and reach its CA.
    async fn account(
        &self,
        http: &reqwest::Client,
        name: &str,
    ) -> Result<(instant_acme::Account, String), Error> {
        connect(http, self.account_record(name).await?).await
    }
}

/// Reach the CA of a stored account: (account, directory URL).
async fn connect(
    http: &reqwest::Client,
    record: crate::records::AccountRecord,
) -> Result<(instant_acme::Account, String), Error> {
    let account = acme::account(http, &record.directory, record.credentials).await?;
    Ok((account, record.directory))
}

/// Run one command. `now` is the clock; nothing below reads another.
pub async fn run(
    settings: Settings,
    command: Command,
    now: fn() -> OffsetDateTime,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<Outcome, Error> {
    if let Command::Policy { role, cert } = &command {
        return policy_text(&settings, *role, cert.as_ref());
    }
    let doctor_json = match &command {
        Command::Doctor { json, .. } => Some(*json),
        _ => None,
    };
    let vault_addr = settings.vault.addr.clone();
    let ctx = match Context::connect(settings, shutdown.clone()).await {
        Ok(ctx) => ctx,
        // The doctor's first finding: print it as a report, exit 1.
        Err(e) => match doctor_json {
            Some(json) => return Ok(doctor::unreachable(&vault_addr, &e, json)),
            None => return Err(e),
        },
    };
    // On SIGTERM/SIGINT the orders stop and clean up their DNS records (they watch
    // `shutdown`) and the run ends normally. Whatever is still busy GRACE later is dropped,
    // so the login token is revoked before a CronJob's deadline kills the process.
    let result = tokio::select! {
        r = run_checked(&ctx, command, now) => r,
        _ = grace_after_signal(shutdown) => Err(Error::Interrupted { signal: "SIGTERM/SIGINT" }),
    };
    ctx.store.kv().close().await;
    result
}

/// How long work may go on after a signal (to clean up) before it is dropped.
const GRACE: std::time::Duration = std::time::Duration::from_secs(20);

/// Resolves GRACE after the shutdown flag turns true; never if it cannot.
async fn grace_after_signal(mut shutdown: tokio::sync::watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(GRACE).await;
}

async fn run_checked(
    ctx: &Context,
    command: Command,
    now: fn() -> OffsetDateTime,
) -> Result<Outcome, Error> {
    let account = ctx.settings.account.clone();
    let account = account.as_str();
    match command {
        Command::Init(args) => {
            ctx.check("init", Work::Init { account }).await?;
            init::run(ctx, args, now).await
        }
        Command::Issue(args) => {
            let work = Work::Issue {
                account,
                cert: &args.name,
            };
            ctx.check("issue", work).await?;
            let out = issue::run(ctx, args, now).await;
            settle_index(ctx, false, now()).await;
            out
        }
        Command::List { json, verify } => {
            if verify {
                ctx.check("list --verify", Work::Verify).await?;
                return index::verify(ctx, json, now()).await;
            }
            ctx.check("list", Work::List).await?;
            list::run(ctx, json, now()).await
        }
        Command::IndexRebuild => {
            ctx.check("index rebuild", Work::Rebuild).await?;
            index::rebuild(ctx, now).await
        }
        Command::Renew {
            args,
            names,
            shard,
            json,
            metrics,
            notify,
        } => {
            ctx.check("renew", Work::Renew { account }).await?;
            let part = shard.unwrap_or(crate::index::Part::ALL);
            let report = renew::run(ctx, &args, names, part, now).await;
            settle_index(ctx, args.dry_run, now()).await;
            let mut report = report?;
            report.shard = shard;
            if args.dry_run {
                // A dry run writes nothing: no metrics either.
                let sinks = crate::metrics::Sinks::default();
                let notify = crate::notify::Notify::default();
                return renew::publish(ctx, &report, json, &sinks, &notify, now()).await;
            }
            renew::publish(ctx, &report, json, &metrics, &notify, now()).await
        }
        Command::Revoke { name, reason } => {
            let work = Work::Revoke {
                account,
                cert: &name,
            };
            ctx.check("revoke", work).await?;
            let out = revoke::run(ctx, &name, reason, now()).await;
            settle_index(ctx, false, now()).await;
            out
        }
        Command::AccountRollover => {
            ctx.check("account rollover", Work::Account { account })
                .await?;
            account::rollover(ctx, account).await
        }
        Command::AccountDeactivate { yes } => {
            ctx.check("account deactivate", Work::Account { account })
                .await?;
            account::deactivate(ctx, account, yes, now()).await
        }
        Command::Edit {
            name,
            changes,
            force,
        } => {
            let work = Work::Issue {
                account,
                cert: &name,
            };
            ctx.check("edit", work).await?;
            let out = edit::run(ctx, &name, changes, force, now).await;
            settle_index(ctx, false, now()).await;
            out
        }
        Command::Manage(m) => m.run(ctx, now).await,
        Command::Migrate { dry_run, json } => {
            ctx.check("migrate", Work::Migrate).await?;
            let out = migrate::run(ctx, dry_run, json, now()).await;
            settle_index(ctx, dry_run, now()).await;
            out
        }
        Command::Import(args) => {
            ctx.check("import", Work::Import).await?;
            let dry_run = args.dry_run;
            let out = import::run(ctx, args, now()).await;
            settle_index(ctx, dry_run, now()).await;
            out
        }
        Command::Dns(cmd) => {
            ctx.check("dns", cmd.work()).await?;
            dns::run(ctx, cmd).await
        }
        Command::Doctor { names, probe, json } => doctor::run(ctx, names, probe, json).await,
        Command::Policy { .. } => unreachable!("handled without Vault"),
    }
}

/// After a command that changes certificates: write what it noted for the renewal index,
/// or drop it after a dry run (which writes nothing, not the index either).
async fn settle_index(ctx: &Context, dry_run: bool, now: OffsetDateTime) {
    if dry_run {
        ctx.store.journal.discard();
    } else {
        renew::flush_index(ctx, now).await;
    }
}

/// `certvault policy ROLE [NAME]`: the HCL for the configured mount and prefix. Needs no
/// Vault access; the KV version is `--kv-version` (default 2).
fn policy_text(settings: &Settings, role: Role, cert: Option<&CertName>) -> Result<Outcome, Error> {
    let prefix = crate::store::clean_prefix(&settings.prefix)
        .ok_or_else(|| crate::store::Error::BadPrefix(settings.prefix.clone()))?;
    if role == Role::Reader && cert.is_none() {
        return Err(Error::ReaderNeedsName);
    }
    let layout = Layout {
        version: settings.vault.kv_version.unwrap_or(KvVersion::V2),
        mount: &settings.vault.mount,
        prefix,
    };
    Ok(Outcome {
        text: policy::hcl(role, &layout, cert),
        failed: false,
    })
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
    pub deploy_hook: Option<String>,
    /// Consumer layouts (`--layout`), sorted and without repeats.
    pub layouts: Vec<crate::model::RecordLayout>,
    /// `--profile`: the CA profile to order (must be offered by the CA).
    pub profile: Option<String>,
    /// `--reuse-key`: keep the private key across renewals.
    pub reuse_key: bool,
    /// `--hook-env NAME`: variables let through to the hooks, sorted and without repeats.
    pub hook_env: Vec<crate::model::EnvName>,
}

pub(crate) use crate::text::relative;
