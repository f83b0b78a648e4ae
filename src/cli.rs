//! The command line: clap only. Turns flags and environment into library values.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use certvault::command::{InitArgs, IssueArgs, SpecArgs};
use certvault::model::{CertName, DomainName, HumanDuration, KeyType, Secret, SolverSpec};
use certvault::{acme, vault, Command, Settings};

/// Issue and renew ACME certificates with HashiCorp Vault / OpenBao as the only state.
#[derive(Debug, Parser)]
#[command(name = "certvault", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Args)]
struct Global {
    /// Vault (or OpenBao) address.
    #[arg(
        long,
        env = "VAULT_ADDR",
        default_value = "https://127.0.0.1:8200",
        global = true
    )]
    vault_addr: String,
    /// Vault token. Prefer the VAULT_TOKEN environment variable: flags show up in `ps`.
    #[arg(
        long,
        env = "VAULT_TOKEN",
        hide_env_values = true,
        hide = true,
        global = true
    )]
    vault_token: Option<String>,
    /// Vault namespace (Enterprise / OpenBao).
    #[arg(long, env = "VAULT_NAMESPACE", global = true)]
    vault_namespace: Option<String>,
    /// PEM file with the CA that signed Vault's TLS certificate.
    #[arg(long, env = "VAULT_CACERT", global = true)]
    vault_cacert: Option<PathBuf>,
    /// KV version 2 mount that holds certvault's documents.
    #[arg(long, env = "CERTVAULT_MOUNT", default_value = "secret", global = true)]
    mount: String,
    /// Folder below the mount: records live at <mount>/<prefix>/certs/<NAME>.
    #[arg(
        long,
        env = "CERTVAULT_PREFIX",
        default_value = "certvault",
        global = true
    )]
    prefix: String,
    /// PEM file with a CA to trust for the ACME server's HTTPS (a private CA, Pebble).
    #[arg(long, env = "CERTVAULT_ACME_CA_CERT", global = true)]
    acme_ca_cert: Option<PathBuf>,
    /// Which stored ACME account to use: <mount>/<prefix>/accounts/<ACCOUNT>.
    #[arg(
        long,
        env = "CERTVAULT_ACCOUNT",
        default_value = "default",
        global = true
    )]
    account: String,
    /// How long to wait for the CA to validate an order's challenges.
    #[arg(
        long,
        env = "CERTVAULT_VALIDATION_TIMEOUT",
        default_value = "5m",
        global = true
    )]
    validation_timeout: HumanDuration,
    /// More log output on stderr (-v debug, -vv trace). CERTVAULT_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Register the ACME account once and store it in Vault (a second run changes nothing).
    Init {
        /// ACME directory URL, or one of: letsencrypt, letsencrypt-staging.
        #[arg(long, env = "CERTVAULT_DIRECTORY")]
        directory: String,
        /// Contact address for the CA (repeatable).
        #[arg(long)]
        email: Vec<String>,
        /// Agree to the CA's terms of service.
        #[arg(long)]
        agree_tos: bool,
        /// External account binding key id (ZeroSSL, Google, ...).
        #[arg(long)]
        eab_kid: Option<String>,
        /// External account binding HMAC key (base64url). Prefer the environment variable.
        #[arg(long, env = "CERTVAULT_EAB_HMAC_KEY", hide_env_values = true)]
        eab_hmac_key: Option<String>,
        /// Register a new account even if one is stored, replacing it.
        #[arg(long)]
        force: bool,
    },
    /// Obtain a certificate for the given names and store it as <prefix>/certs/<NAME>.
    Issue {
        /// Name of the certificate record.
        name: CertName,
        /// A name for the certificate (repeatable); the first is the subject CN. Wildcards allowed.
        #[arg(short = 'd', long = "domain", required = true)]
        domains: Vec<DomainName>,
        /// How to solve DNS-01.
        #[arg(long, value_enum, default_value_t = Solver::Exec)]
        dns: Solver,
        /// certbot-compatible auth hook (gets CERTBOT_DOMAIN, CERTBOT_VALIDATION).
        #[arg(long, required_if_eq("dns", "exec"))]
        auth_hook: Option<String>,
        /// certbot-compatible cleanup hook (also gets CERTBOT_AUTH_OUTPUT); always runs.
        #[arg(long)]
        cleanup_hook: Option<String>,
        /// Private key type; a new key is made at every issuance.
        #[arg(long, default_value = "ecdsa-p256")]
        key_type: KeyType,
        /// Renew this long before expiry (e.g. 30d). Default: when 1/3 of the lifetime is left.
        #[arg(long)]
        renew_before: Option<HumanDuration>,
        /// Reissue even if the stored certificate is not due.
        #[arg(long)]
        force: bool,
    },
    /// Show each certificate, when it expires, when it will renew and why.
    List {
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Renew every due certificate (or only the NAMEs given).
    Renew {
        /// Renew even if not due.
        #[arg(long)]
        force: bool,
        /// How many orders run at once.
        #[arg(long, env = "CERTVAULT_CONCURRENCY", default_value_t = 8)]
        concurrency: usize,
        /// Only these certificates.
        names: Vec<CertName>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Solver {
    /// certbot-compatible --auth-hook / --cleanup-hook commands
    Exec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
}

fn directory_url(d: &str) -> String {
    match d {
        "letsencrypt" => "https://acme-v02.api.letsencrypt.org/directory".into(),
        "letsencrypt-staging" => "https://acme-staging-v02.api.letsencrypt.org/directory".into(),
        other => other.into(),
    }
}

impl Cli {
    /// The verbosity (for the log filter), the settings and the command.
    pub fn into_parts(self) -> (u8, Settings, Command) {
        let g = self.global;
        let mut concurrency_flag = 8;
        let command = match self.command {
            Cmd::Init {
                directory,
                email,
                agree_tos,
                eab_kid,
                eab_hmac_key,
                force,
            } => Command::Init(InitArgs {
                directory: directory_url(&directory),
                email,
                agree_tos,
                eab_kid,
                eab_hmac: eab_hmac_key.map(Secret::new),
                force,
            }),
            Cmd::Issue {
                name,
                domains,
                dns,
                auth_hook,
                cleanup_hook,
                key_type,
                renew_before,
                force,
            } => Command::Issue(IssueArgs {
                name,
                spec: SpecArgs {
                    domains,
                    key_type,
                    dns: match dns {
                        Solver::Exec => SolverSpec::Exec {
                            auth_hook: auth_hook.unwrap_or_default(),
                            cleanup_hook: cleanup_hook.unwrap_or_default(),
                        },
                    },
                    renew_before,
                },
                force,
            }),
            Cmd::List { output } => Command::List {
                json: output == Output::Json,
            },
            Cmd::Renew {
                force,
                concurrency,
                names,
            } => {
                concurrency_flag = concurrency;
                Command::Renew { force, names }
            }
        };
        let settings = Settings {
            vault: vault::Settings {
                addr: g.vault_addr,
                token: g.vault_token.filter(|t| !t.is_empty()).map(Secret::new),
                namespace: g.vault_namespace,
                cacert: g.vault_cacert.filter(|p| !p.as_os_str().is_empty()),
                mount: g.mount,
            },
            prefix: g.prefix,
            acme_ca_cert: g.acme_ca_cert.filter(|p| !p.as_os_str().is_empty()),
            account: g.account,
            concurrency: concurrency_flag,
            timeouts: acme::Timeouts {
                validation: g.validation_timeout.0,
                issuance: Duration::from_secs(300),
            },
        };
        (g.verbose, settings, command)
    }
}
