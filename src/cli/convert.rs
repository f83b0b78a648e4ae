//! From parsed flags to library values: checks that need no Vault.

use std::path::PathBuf;

use std::net::{IpAddr, SocketAddr};

use certvault::defaults::{self, ISSUANCE_TIMEOUT};
use certvault::{
    check_url, Command, DnsCommand, DnsConfig, DnsLookup, DnsSettings, Fqdn, ImportArgs,
    ImportSource, InitArgs, InvalidInput, IssueArgs, KvVersion, Lifetime, MetricSinks, Polling,
    RenewArgs, Secret, SecretSource, Settings, Shard, SolverSettings, SolverSpec, SpecArgs,
    SpecChanges, Timeouts, VaultSettings, Zone,
};

use super::*;

pub(crate) fn missing(what: &'static str, reason: &'static str) -> InvalidInput {
    InvalidInput {
        what,
        value: String::new(),
        reason,
    }
}

/// `ip` or `ip:port` (port 53).
pub(crate) fn socket_addr(s: &str) -> Result<SocketAddr, InvalidInput> {
    let s = s.trim();
    s.parse::<SocketAddr>()
        .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| InvalidInput {
            what: "DNS resolver",
            value: s.to_string(),
            reason: "write an IP address, optionally with :port",
        })
}

/// The part `--shard` names. `auto` takes I from `JOB_COMPLETION_INDEX` (Kubernetes sets it
/// in each pod of an Indexed Job) and N from `--shard-count` / `CERTVAULT_SHARD_COUNT` (the
/// manifest passes the job's completions); a count without `auto` is refused, since it
/// would silently mean nothing.
pub(crate) fn resolve_shard(
    shard: Option<ShardArg>,
    completion_index: Option<String>,
    count: Option<String>,
) -> Result<Option<Shard>, InvalidInput> {
    let count = count.filter(|c| !c.trim().is_empty());
    match shard {
        None | Some(ShardArg::Part(_)) if count.is_some() => Err(InvalidInput {
            what: "--shard-count (CERTVAULT_SHARD_COUNT)",
            value: count.unwrap_or_default(),
            reason: "it is only read with --shard auto (CERTVAULT_SHARD=auto); with --shard I/N the count is N",
        }),
        None => Ok(None),
        Some(ShardArg::Part(p)) => Ok(Some(p)),
        Some(ShardArg::Auto) => {
            let index = completion_index
                .filter(|i| !i.trim().is_empty())
                .ok_or_else(|| {
                    missing(
                        "JOB_COMPLETION_INDEX",
                        "--shard auto reads it, and Kubernetes sets it only in an Indexed Job \
                         (spec.completionMode: Indexed); elsewhere use --shard I/N",
                    )
                })?;
            let count = count.ok_or_else(|| {
                missing(
                    "--shard-count (CERTVAULT_SHARD_COUNT)",
                    "--shard auto needs the job's completion count: pass \
                     CERTVAULT_SHARD_COUNT equal to spec.completions in the manifest",
                )
            })?;
            let whole = |what, v: &str, reason| {
                v.trim().parse::<u64>().map_err(|_| InvalidInput {
                    what,
                    value: v.to_string(),
                    reason,
                })
            };
            let i = whole(
                "JOB_COMPLETION_INDEX",
                &index,
                "it must be a whole number (Kubernetes sets 0 .. completions-1)",
            )?;
            let n = whole(
                "--shard-count (CERTVAULT_SHARD_COUNT)",
                &count,
                "write the job's completions, a whole number from 1 to 65536",
            )?;
            format!("{i}/{n}")
                .parse()
                .map(Some)
                .map_err(|e: InvalidInput| InvalidInput {
                    what: "--shard auto",
                    value: format!(
                        "JOB_COMPLETION_INDEX={index} CERTVAULT_SHARD_COUNT={count}"
                    ),
                    reason: if n == 0 || n > 65536 {
                        "the count must be between 1 and 65536"
                    } else if i >= n {
                        "the index must be below the count: make CERTVAULT_SHARD_COUNT equal to the job's completions"
                    } else {
                        e.reason
                    },
                })
        }
    }
}

/// A hook whose command starts with a path: made absolute against the current folder (a
/// scheduler runs `renew` elsewhere), and it must be an executable file now, not exit 127
/// later. A command that starts with a bare name (`sh`, `true`) is found in PATH when it
/// runs.
pub(crate) fn resolve_hook(
    flag: &'static str,
    hook: Option<String>,
) -> Result<Option<String>, InvalidInput> {
    let Some(hook) = hook else { return Ok(None) };
    let trimmed = hook.trim_start();
    // The command word: up to a blank or a shell operator (`hook.sh; other`, `hook.sh&&x`).
    let end = trimmed
        .find(|c: char| c.is_whitespace() || ";&|<>()`".contains(c))
        .unwrap_or(trimmed.len());
    let first = &trimmed[..end];
    if !first.contains('/') || first.starts_with(['"', '\'']) {
        return Ok(Some(hook));
    }
    let path = std::path::absolute(first).unwrap_or_else(|_| PathBuf::from(first));
    let bad = |reason: &'static str| InvalidInput {
        what: flag,
        value: path.display().to_string(),
        reason,
    };
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(&path) {
        Err(_) => Err(bad("does not exist (a relative path is resolved against the current folder when you run issue)")),
        Ok(m) if !m.is_file() => Err(bad("is not a file")),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => {
            Err(bad("is not executable: chmod +x it"))
        }
        Ok(_) => Ok(Some(format!(
            "{}{}",
            path.display(),
            &trimmed[first.len()..]
        ))),
    }
}

pub(crate) fn directory_url(d: &str) -> String {
    match d {
        "letsencrypt" => "https://acme-v02.api.letsencrypt.org/directory".into(),
        "letsencrypt-staging" => "https://acme-staging-v02.api.letsencrypt.org/directory".into(),
        other => other.into(),
    }
}

impl Cli {
    /// The log settings, the settings and the command.
    pub fn into_parts(self) -> Result<(Logging, Settings, Command), InvalidInput> {
        let mut g = self.global;
        let auth = auth_method(&mut g);
        let mut concurrency_flag = defaults::CONCURRENCY;
        let mut lease_flag = defaults::LOCK_LEASE;
        // Commands that may order certificates need a token that outlives an order.
        let orders = matches!(self.command, Cmd::Issue { .. } | Cmd::Renew { .. });
        let command = match self.command {
            Cmd::Init {
                directory,
                email,
                agree_tos,
                eab_kid,
                eab_hmac_key,
                eab_hmac_key_file,
                eab_hmac_key_flag,
                force,
                account_key,
            } => Command::Init(InitArgs {
                directory: {
                    let url = directory_url(&directory);
                    check_url(&url).map_err(|reason| InvalidInput {
                        what: "--directory",
                        value: directory.clone(),
                        reason,
                    })?;
                    url
                },
                email,
                agree_tos,
                eab_kid,
                eab_hmac: {
                    if eab_hmac_key_flag {
                        return Err(InvalidInput {
                            what: "--eab-hmac-key",
                            value: "on the command line".into(),
                            reason: "a secret given as a flag lands in shell history and the process list; set CERTVAULT_EAB_HMAC_KEY or pass --eab-hmac-key-file FILE",
                        });
                    }
                    match eab_hmac_key_file {
                        Some(file) => Some(eab_hmac_file(&file)?),
                        None => eab_hmac_key.filter(|k| !k.expose().is_empty()),
                    }
                },
                force,
                account_key: account_key.filter(|p| !p.as_os_str().is_empty()),
            }),
            Cmd::Import(cmd) => {
                let (source, common) = match cmd {
                    ImportCmd::Certbot { dir, only, common } => {
                        (ImportSource::Certbot { dir, only }, common)
                    }
                    ImportCmd::Lego {
                        dir,
                        server,
                        common,
                    } => (
                        ImportSource::Lego {
                            dir,
                            server: server.map(|s| directory_url(&s)),
                        },
                        common,
                    ),
                    ImportCmd::AcmeSh {
                        dir,
                        server,
                        common,
                    } => (
                        ImportSource::AcmeSh {
                            dir,
                            server: server.map(|s| directory_url(&s)),
                        },
                        common,
                    ),
                    ImportCmd::VaultLayout {
                        from,
                        server,
                        common,
                    } => (
                        ImportSource::VaultLayout {
                            from,
                            server: server.map(|s| directory_url(&s)),
                        },
                        common,
                    ),
                };
                Command::Import(ImportArgs {
                    source,
                    dry_run: common.dry_run,
                    force: common.force,
                    adopt_account: common.adopt_account,
                })
            }
            Cmd::Issue {
                name,
                domains,
                dns,
                auth_hook,
                cleanup_hook,
                key_type,
                renew_before,
                no_follow_cname,
                propagation_check,
                no_propagation_check,
                deploy_hook,
                mut hook_env,
                mut layouts,
                profile,
                reuse_key,
                force,
            } => Command::Issue(IssueArgs {
                name,
                spec: SpecArgs {
                    domains,
                    key_type,
                    dns: SolverSpec::from_args(
                        &dns,
                        resolve_hook("--auth-hook", auth_hook)?,
                        resolve_hook("--cleanup-hook", cleanup_hook)?,
                    )?,
                    renew_before,
                    follow_cname: !no_follow_cname,
                    propagation_check: match (propagation_check, no_propagation_check) {
                        (true, _) => Some(true),
                        (_, true) => Some(false),
                        _ => None,
                    },
                    deploy_hook: resolve_hook(
                        "--deploy-hook",
                        deploy_hook.filter(|h| !h.trim().is_empty()),
                    )?,
                    layouts: {
                        layouts.sort();
                        layouts.dedup();
                        layouts
                    },
                    profile: profile.filter(|p| !p.trim().is_empty()),
                    reuse_key,
                    hook_env: {
                        hook_env.sort();
                        hook_env.dedup();
                        hook_env
                    },
                },
                force,
            }),
            Cmd::Revoke { name, reason } => {
                if let Some(r) = reason.as_deref().filter(|r| !certvault::valid_reason(r)) {
                    return Err(InvalidInput {
                        what: "--reason",
                        value: r.to_string(),
                        reason: "use unspecified, keyCompromise, caCompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold, privilegeWithdrawn or aaCompromise",
                    });
                }
                Command::Revoke { name, reason }
            }
            Cmd::Account(AccountCmd::Rollover) => Command::AccountRollover,
            Cmd::Account(AccountCmd::Deactivate { yes }) => Command::AccountDeactivate { yes },
            Cmd::Dns(DnsCmd::List) => Command::Dns(DnsCommand::List),
            Cmd::Dns(DnsCmd::Test { name, zone }) => Command::Dns(DnsCommand::Test {
                name,
                zone: Fqdn::parse("--zone", &zone).map_err(|e| InvalidInput {
                    what: "--zone",
                    value: e.value,
                    reason: e.reason,
                })?,
            }),
            Cmd::Dns(DnsCmd::Remove { name }) => Command::Dns(DnsCommand::Remove { name }),
            Cmd::Dns(DnsCmd::Add(add)) => {
                let secret_stdin = add.common().secret_stdin;
                let read = || {
                    let value = if secret_stdin {
                        let mut line = String::new();
                        std::io::stdin()
                            .read_line(&mut line)
                            .map_err(|_| missing("secret", "could not read standard input"))?;
                        Some(line)
                    } else {
                        std::env::var("CERTVAULT_DNS_SECRET").ok()
                    };
                    value
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .map(Secret::new)
                        .ok_or_else(|| {
                            missing(
                                "secret",
                                "set CERTVAULT_DNS_SECRET or pass --secret-stdin and write it to standard input",
                            )
                        })
                };
                let (name, common, provider) = add.into_parts(&SecretSource(&read))?;
                let zone = match common.zone.as_deref().filter(|z| !z.trim().is_empty()) {
                    Some(z) => Some(Zone::parse("--zone", z).map_err(|e| InvalidInput {
                        what: "--zone",
                        value: e.value,
                        reason: e.reason,
                    })?),
                    None => None,
                };
                let config = DnsConfig {
                    settings: SolverSettings {
                        zone,
                        resolver: common
                            .resolver
                            .iter()
                            .filter(|r| !r.trim().is_empty())
                            .map(|r| socket_addr(r))
                            .collect::<Result<_, _>>()?,
                        authoritative_port: g.authoritative_port,
                    },
                    provider,
                };
                Command::Dns(DnsCommand::Add {
                    name,
                    config,
                    force: common.force,
                })
            }
            Cmd::List { output, verify } => Command::List {
                json: output == Output::Json,
                verify,
            },
            Cmd::Index(IndexCmd::Rebuild) => Command::IndexRebuild,
            Cmd::Renew {
                force,
                concurrency,
                lock_lease,
                names,
                shard,
                shard_count,
                output,
                metrics_file,
                pushgateway,
                notify,
                notify_expiring,
                dry_run,
                max_orders,
                jitter,
                ca_failures,
            } => {
                concurrency_flag = concurrency;
                if max_orders == Some(0) {
                    return Err(InvalidInput {
                        what: "--max-orders",
                        value: "0".into(),
                        reason: "use at least 1 (or leave it unset for no limit)",
                    });
                }
                if lock_lease.0 > defaults::MAX_LOCK_LEASE
                    || lock_lease.0 < defaults::MIN_LOCK_LEASE
                {
                    return Err(InvalidInput {
                        what: "--lock-lease",
                        value: lock_lease.to_string(),
                        reason: "use 3s to 10m",
                    });
                }
                lease_flag = lock_lease.0;
                Command::Renew {
                    args: RenewArgs {
                        force,
                        dry_run,
                        max_orders,
                        jitter,
                        ca_failures: ca_failures.max(1),
                    },
                    names,
                    shard: resolve_shard(
                        shard,
                        std::env::var("JOB_COMPLETION_INDEX").ok(),
                        shard_count,
                    )?,
                    json: output == Output::Json,
                    metrics: MetricSinks {
                        file: metrics_file.filter(|p| !p.as_os_str().is_empty()),
                        pushgateway: match pushgateway
                            .map(|u| u.expose().to_string())
                            .filter(|u| !u.trim().is_empty())
                        {
                            Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                                return Err(InvalidInput {
                                    what: "--pushgateway",
                                    value: redact_url(&u),
                                    reason: "write the Pushgateway's base URL, like http://pushgateway:9091",
                                })
                            }
                            u => u,
                        },
                    },
                    notify: certvault::Notify {
                        targets: notify
                            .iter()
                            .map(Secret::expose)
                            .filter(|u| !u.trim().is_empty())
                            .map(|u| {
                                certvault::NotifyTarget::parse(u).map_err(|_| InvalidInput {
                                    what: "--notify",
                                    value: redact_url(u),
                                    reason: "write an http:// or https:// URL (a JSON webhook) or alertmanager+http://HOST:PORT (the Alertmanager API)",
                                })
                            })
                            .collect::<Result<_, _>>()?,
                        expiring: notify_expiring.0,
                    },
                }
            }
            Cmd::Policy { role, name } => Command::Policy { role, cert: name },
            Cmd::Doctor {
                names,
                no_probe,
                output,
            } => Command::Doctor {
                names,
                probe: !no_probe,
                json: output == Output::Json,
            },
            Cmd::Migrate { dry_run, output } => Command::Migrate {
                dry_run,
                json: output == Output::Json,
            },
            Cmd::Manage(m) => Command::Manage(m),
            Cmd::Edit {
                name,
                renew_before,
                default_renewal,
                key_type,
                add_domains,
                remove_domains,
                dns,
                auth_hook,
                cleanup_hook,
                deploy_hook,
                no_deploy_hook,
                mut hook_env,
                no_hook_env,
                force,
            } => {
                let auth_hook = resolve_hook("--auth-hook", auth_hook)?;
                let cleanup_hook = resolve_hook("--cleanup-hook", cleanup_hook)?;
                let dns = if dns.is_empty() {
                    None
                } else {
                    Some(SolverSpec::from_args(
                        &dns,
                        auth_hook.clone(),
                        cleanup_hook.clone(),
                    )?)
                };
                let replaces_hooks = dns.is_none();
                Command::Edit {
                    name,
                    changes: SpecChanges {
                        renew_before: match (renew_before, default_renewal) {
                            (Some(r), _) => Some(Some(r)),
                            (None, true) => Some(None),
                            (None, false) => None,
                        },
                        key_type,
                        add_domains,
                        remove_domains,
                        dns,
                        auth_hook: auth_hook.filter(|_| replaces_hooks),
                        cleanup_hook: cleanup_hook.filter(|_| replaces_hooks),
                        deploy_hook: match (
                            resolve_hook("--deploy-hook", deploy_hook)?,
                            no_deploy_hook,
                        ) {
                            (Some(h), _) => Some(Some(h)),
                            (None, true) => Some(None),
                            (None, false) => None,
                        },
                        hook_env: if no_hook_env {
                            Some(Vec::new())
                        } else if hook_env.is_empty() {
                            None
                        } else {
                            hook_env.sort();
                            hook_env.dedup();
                            Some(hook_env)
                        },
                    },
                    force,
                }
            }
        };
        let settings = Settings {
            vault: VaultSettings {
                addr: g.vault_addr,
                auth,
                kv_version: match g.kv_version.as_deref() {
                    Some("1") => Some(KvVersion::V1),
                    Some("2") => Some(KvVersion::V2),
                    _ => None,
                },
                namespace: g.vault_namespace,
                cacert: g.vault_cacert.filter(|p| !p.as_os_str().is_empty()),
                mount: g.mount,
                retry: g.vault_retry_timeout.0,
                lifetime: orders.then(|| {
                    Lifetime::new(
                        g.validation_timeout.0,
                        g.propagation_timeout.0,
                        ISSUANCE_TIMEOUT,
                        g.vault_retry_timeout.0,
                    )
                }),
            },
            prefix: g.prefix,
            acme_ca_cert: g.acme_ca_cert.filter(|p| !p.as_os_str().is_empty()),
            account: g.account.to_string(),
            quiet: g.quiet,
            concurrency: concurrency_flag,
            lock_lease: lease_flag,
            index_grow_above: g.index_grow_above,
            timeouts: Timeouts {
                validation: g.validation_timeout.0,
                issuance: ISSUANCE_TIMEOUT,
            },
            dns: DnsSettings {
                lookup: DnsLookup {
                    resolvers: if g.dns_resolver.is_empty() {
                        DnsLookup::system_resolvers()
                    } else {
                        g.dns_resolver
                            .iter()
                            .map(|r| socket_addr(r))
                            .collect::<Result<_, _>>()?
                    },
                    authoritative_port: g
                        .authoritative_port
                        .unwrap_or(defaults::AUTHORITATIVE_PORT),
                    timeout: defaults::DNS_QUERY_TIMEOUT,
                },
                polling: Polling {
                    interval: g.propagation_interval.0,
                    timeout: g.propagation_timeout.0,
                },
            },
        };
        let logging = Logging {
            quiet: g.quiet,
            verbose: g.verbose,
            format: match g.log_format {
                LogFormat::Text => certvault::LogFormat::Text,
                LogFormat::Json => certvault::LogFormat::Json,
            },
        };
        Ok((logging, settings, command))
    }
}

/// `--eab-hmac-key-file`: the key, trimmed; the error names the file, never its text.
fn eab_hmac_file(file: &std::path::Path) -> Result<Secret, InvalidInput> {
    let err = |reason| InvalidInput {
        what: "--eab-hmac-key-file",
        value: file.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(file)
        .map_err(|_| err("cannot read it: check the path and that certvault may read it"))?;
    let key = text.trim();
    if key.is_empty() {
        return Err(err(
            "the file is empty: it must hold the CA's HMAC key (base64url)",
        ));
    }
    if key.contains(char::is_whitespace) {
        return Err(err(
            "the file must hold only the HMAC key (base64url), on one line",
        ));
    }
    Ok(Secret::new(key.to_string()))
}

/// A `--notify` value for an error message: what comes before an `@` may be credentials.
fn redact_url(u: &str) -> String {
    match u.rsplit_once('@') {
        Some((_, rest)) => format!("…@{rest}"),
        None => u.to_string(),
    }
}
