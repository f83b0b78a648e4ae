//! `certvault dns add|list|test|remove`: DNS solver configurations kept in Vault at
//! `<prefix>/dns/<name>`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::context::{Context, Outcome};
use crate::dns::{self, Config, Fqdn, Session, Solvers};
use crate::model::{CertName, KeyType, SolverName, SolverSpec, Spec, SCHEMA_VERSION};
use crate::policy::Work;
use crate::records::SolverRecord;
use crate::store::Key;
use crate::vault::Expect;
use crate::Error;

// Parsed once per process: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum DnsCommand {
    /// Store a solver; `force` replaces an existing one.
    Add {
        name: SolverName,
        config: Config,
        force: bool,
    },
    List,
    /// Present a probe TXT value at `_acme-challenge.<zone>`, check it on every
    /// authoritative server, remove it.
    Test {
        name: SolverName,
        zone: Fqdn,
    },
    /// Delete a stored solver no certificate uses (KV history is kept).
    Remove {
        name: SolverName,
    },
}

impl DnsCommand {
    /// What the command does in Vault, for the capability check.
    pub(super) fn work(&self) -> Work<'_> {
        match self {
            DnsCommand::Add { name, .. } => Work::DnsAdd {
                solver: name.as_str(),
            },
            DnsCommand::List => Work::DnsList,
            DnsCommand::Test { name, .. } => Work::DnsTest {
                solver: name.as_str(),
            },
            DnsCommand::Remove { name } => Work::DnsRemove {
                solver: name.as_str(),
            },
        }
    }
}

pub(super) async fn run(ctx: &Context, cmd: DnsCommand) -> Result<Outcome, Error> {
    match cmd {
        DnsCommand::Add {
            name,
            mut config,
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
            let http = ctx.http()?;
            let notes = config.provider.prepare(name.as_str(), &http).await?;
            let kind = config.kind();
            let record = SolverRecord {
                schema: SCHEMA_VERSION,
                config,
            };
            let version = ctx
                .store
                .save_solver(name.as_str(), &record, expect)
                .await?;
            let mut text =
                format!("stored DNS solver {name} ({kind}) at {path} (version {version})\n");
            for n in notes {
                let _ = writeln!(text, "{n}");
            }
            Ok(Outcome {
                text,
                failed: false,
                ..Default::default()
            })
        }
        DnsCommand::List => list(ctx).await,
        DnsCommand::Test { name, zone } => test(ctx, &name, &zone).await,
        DnsCommand::Remove { name } => remove(ctx, &name).await,
    }
}

async fn list(ctx: &Context) -> Result<Outcome, Error> {
    let names = ctx.store.list_solvers().await?;
    if names.is_empty() {
        return Ok(Outcome {
            text: "no DNS solvers stored yet; add one with `certvault dns add <kind> NAME`\n"
                .into(),
            failed: false,
            ..Default::default()
        });
    }
    let mut rows: Vec<[String; 3]> = Vec::new();
    let mut failed = false;
    for name in names {
        match ctx.store.load_solver(&name).await {
            Ok(Some(r)) => {
                let line = r.data.config.describe();
                let (kind, rest) = line.split_once("  ").unwrap_or((&line, ""));
                rows.push([name, kind.to_string(), rest.to_string()]);
            }
            Ok(None) => {}
            Err(e) => {
                failed = true;
                rows.push([name, "UNREADABLE".into(), crate::text::chain(&e)]);
            }
        }
    }
    Ok(Outcome {
        text: table(&rows),
        failed,
        ..Default::default()
    })
}

/// Columns padded to their widest cell, two spaces apart.
fn table(rows: &[[String; 3]]) -> String {
    let w0 = rows.iter().map(|r| r[0].chars().count()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r[1].chars().count()).max().unwrap_or(0);
    let mut text = String::new();
    for r in rows {
        let line = format!("{:w0$}  {:w1$}  {}", r[0], r[1], r[2]);
        let _ = writeln!(text, "{}", line.trim_end());
    }
    text
}

async fn test(ctx: &Context, name: &SolverName, zone: &Fqdn) -> Result<Outcome, Error> {
    let stored =
        ctx.store
            .load_solver(name.as_str())
            .await?
            .ok_or_else(|| dns::Error::UnknownSolver {
                solver: name.to_string(),
                path: ctx.store.display(Key::Solver(name.as_str())),
            })?;
    let mut configs = BTreeMap::new();
    configs.insert(name.to_string(), stored.data.config);
    let broken = BTreeMap::new();
    let http = ctx.http()?;
    let solvers = Solvers {
        settings: &ctx.settings.dns,
        http: &http,
        configs: &configs,
        broken: &broken,
        folder: ctx.store.display(Key::Solvers) + "/",
        presented: None,
    };
    let spec = Spec {
        profile: None,
        reuse_key: false,
        domains: vec![zone.as_str().parse().map_err(Error::Invalid)?],
        key_type: KeyType::default(),
        dns: SolverSpec::Solvers {
            default: Some(name.clone()),
            zones: BTreeMap::new(),
        },
        renew_before: None,
        account: String::new(),
        follow_cname: true,
        propagation_check: Some(true),
        deploy_hook: None,
        layouts: Default::default(),
        hook_env: Vec::new(),
    };
    let mut session = Session::new(&solvers, &spec, 1);
    let value = crate::dns::probe_value();
    let mut text = String::new();
    let result = async {
        let placed = session.present(zone.as_str(), value.clone()).await?;
        let servers: Vec<String> = placed
            .nameservers
            .iter()
            .map(|n| {
                let a: Vec<String> = n.addrs.iter().map(|a| a.to_string()).collect();
                format!("{} ({})", n.host, a.join(" / "))
            })
            .collect();
        let _ = writeln!(
            text,
            "placed: TXT {} in zone {} (authoritative: {})",
            placed.name,
            placed
                .zone
                .as_ref()
                .map(|z| z.to_string())
                .unwrap_or_default(),
            servers.join(", ")
        );
        let _ = writeln!(text, "presented: probe value {value} through solver {name}");
        session.wait().await?;
        let _ = writeln!(
            text,
            "visible: on every authoritative server ({})",
            servers.len()
        );
        Ok::<(), dns::Error>(())
    }
    .await;
    let cleanup = session.cleanup().await;
    match (&result, cleanup.is_empty()) {
        (_, true) => {
            let _ = writeln!(text, "cleaned up: the probe value was removed");
        }
        (_, false) => {
            for e in &cleanup {
                let _ = writeln!(text, "cleanup FAILED: {}", crate::text::chain(e));
            }
        }
    }
    if let Err(e) = result {
        let _ = writeln!(text, "FAILED: {}", crate::text::chain(&e));
        return Ok(Outcome {
            text,
            failed: true,
            ..Default::default()
        });
    }
    Ok(Outcome {
        failed: !cleanup.is_empty(),
        text,
        ..Default::default()
    })
}

async fn remove(ctx: &Context, name: &SolverName) -> Result<Outcome, Error> {
    let path = ctx.store.display(Key::Solver(name.as_str()));
    if ctx.store.load_solver(name.as_str()).await?.is_none() {
        return Err(dns::Error::UnknownSolver {
            solver: name.to_string(),
            path,
        }
        .into());
    }
    let certs = ctx.store.list_certs().await?;
    let mut users: Vec<CertName> = Vec::new();
    for (cert, loaded) in ctx.store.load_entries(certs).await {
        // The admin-only spec decides; a record not migrated yet carries its own.
        let uses = |spec: &Spec| spec.dns.solver_names().iter().any(|s| s == name.as_str());
        match loaded {
            Ok(Some(entry)) => {
                let spec_uses = entry.spec.as_ref().is_some_and(|s| uses(&s.data.spec));
                if spec_uses || uses(&entry.cert.data.spec) {
                    users.push(cert)
                }
            }
            Ok(None) => {}
            // A record that cannot be read might use it: refuse rather than guess.
            Err(_) => users.push(cert),
        }
    }
    if !users.is_empty() {
        return Err(dns::Error::InUse {
            solver: name.to_string(),
            certs: users
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }
        .into());
    }
    ctx.store
        .kv()
        .delete(&Key::Solver(name.as_str()).path(ctx.store.prefix()))
        .await
        .map_err(crate::store::Error::from)?;
    Ok(Outcome {
        text: format!("removed DNS solver {name} ({path}; its versions stay in KV history)\n"),
        failed: false,
        ..Default::default()
    })
}
