//! One module per verb. Each takes plain values (no clap) and returns an [`Outcome`].

mod account;
mod account_doc;
mod apply;
mod ari;
mod context;
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
mod obtain;
mod order;
mod renew;
mod revoke;
mod rows;
mod run_id;
mod spec_text;
mod status;

use time::OffsetDateTime;

use crate::model::CertName;
use crate::policy::{self, Layout, Role, Work};
use crate::vault::KvVersion;
use crate::{Error, Settings};

pub use context::Outcome;
use context::{settle_index, Context};
pub use dns::DnsCommand;
pub use edit::SpecChanges;
pub use import::{ImportArgs, Source as ImportSource};
pub use init::InitArgs;
pub use issue::IssueArgs;
pub use issue::SpecArgs;
pub use renew::RenewArgs;

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
                return renew::publish(ctx, report, json, &sinks, &notify, now()).await;
            }
            renew::publish(ctx, report, json, &metrics, &notify, now()).await
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
        ..Default::default()
    })
}
