//! `certvault dns add|list`: DNS solver configurations kept in Vault at `<prefix>/dns/<name>`.

use std::fmt::Write as _;

use super::{Context, Outcome};
use crate::dns::Config;
use crate::model::{SolverName, SolverRecord, SCHEMA_VERSION};
use crate::store::Key;
use crate::vault::Expect;
use crate::Error;

#[derive(Debug)]
pub enum DnsCommand {
    /// Store a solver; `force` replaces an existing one.
    Add {
        name: SolverName,
        config: Config,
        force: bool,
    },
    List,
}

pub(super) async fn run(ctx: &Context, cmd: DnsCommand) -> Result<Outcome, Error> {
    match cmd {
        DnsCommand::Add {
            name,
            config,
            force,
        } => {
            config.validate(name.as_str())?;
            let path = ctx.store.display(Key::Solver(name.as_str()));
            let existing = ctx.store.load_solver(name.as_str()).await?;
            let expect = match existing {
                Some(_) if !force => {
                    return Err(Error::SolverExists { path });
                }
                Some(v) => Expect::Version(v.version),
                None => Expect::Absent,
            };
            let kind = config.kind();
            let record = SolverRecord {
                schema: SCHEMA_VERSION,
                config,
            };
            let version = ctx
                .store
                .save_solver(name.as_str(), &record, expect)
                .await?;
            Ok(Outcome {
                text: format!("stored DNS solver {name} ({kind}) at {path} (version {version})\n"),
                failed: false,
            })
        }
        DnsCommand::List => {
            let mut text = String::new();
            let names = ctx.store.list_solvers().await?;
            if names.is_empty() {
                text.push_str("no DNS solvers stored yet; add one with `certvault dns add`\n");
            }
            let mut failed = false;
            for name in names {
                match ctx.store.load_solver(&name).await {
                    Ok(Some(r)) => {
                        let _ = writeln!(text, "{name}  {}", describe(&r.data.config));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        failed = true;
                        let _ = writeln!(text, "{name}  UNREADABLE: {}", crate::error::chain(&e));
                    }
                }
            }
            Ok(Outcome { text, failed })
        }
    }
}

/// One line about a solver, without its secret.
fn describe(c: &Config) -> String {
    match c {
        Config::Cloudflare(c) => format!(
            "cloudflare  {}{}",
            c.base_url,
            c.zone_id
                .as_ref()
                .map(|z| format!(" zone id {z}"))
                .unwrap_or_default()
        ),
        Config::Dnsimple(c) => format!(
            "dnsimple  {}{}",
            c.base_url.clone().unwrap_or_else(|| if c.sandbox {
                crate::dns::dnsimple::SANDBOX_URL.into()
            } else {
                crate::dns::dnsimple::PRODUCTION_URL.into()
            }),
            c.account_id
                .map(|a| format!(" account {a}"))
                .unwrap_or_default()
        ),
        Config::Rfc2136(c) => format!(
            "rfc2136  server {} key {} ({}){}",
            c.server,
            c.tsig_key,
            c.tsig_algorithm,
            c.zone
                .as_ref()
                .map(|z| format!(" zone {z}"))
                .unwrap_or_default()
        ),
        Config::Exec { auth_hook, .. } => format!("exec  auth hook {auth_hook}"),
    }
}
