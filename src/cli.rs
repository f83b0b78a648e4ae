//! The command line: clap only. Turns flags and environment into library values.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use std::net::{IpAddr, SocketAddr};

use certvault::auth::{Credential, Method, KUBERNETES_JWT_FILE};
use certvault::command::{
    DnsCommand, ImportArgs, ImportSource, InitArgs, IssueArgs, RenewArgs, SpecArgs, SpecChanges,
};
use certvault::dns::{self, Config as DnsConfig};
use certvault::model::{
    AccountName, CertName, DomainName, HumanDuration, InvalidInput, KeyType, RecordLayout, Secret,
    SolverName, SolverSpec,
};
use certvault::policy::Role;
use certvault::vault::KvVersion;
use certvault::{acme, logging, metrics, vault, Command, Settings};

/// How to log: `-v` count and `--log-format`.
pub struct Logging {
    pub quiet: bool,
    pub verbose: u8,
    pub format: logging::Format,
}

/// `certvault --version`: the crate version and the git revision it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("CERTVAULT_REVISION"),
    ")"
);

/// Issue and renew ACME certificates with HashiCorp Vault / OpenBao as the only state.
#[derive(Debug, Parser)]
#[command(name = "certvault", version = VERSION, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Cmd,
}

/// Settings every command shares: shown after each command's own options.
#[derive(Debug, Args)]
#[command(
    next_help_heading = "Global options (Vault, ACME, DNS, output; also from the environment)"
)]
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
        env = "VAULT_TOKEN", value_parser = secret,
        hide_env_values = true,
        hide = true,
        global = true
    )]
    vault_token: Option<Secret>,
    /// File holding the Vault token (e.g. a Vault Agent sink); used when VAULT_TOKEN is unset.
    #[arg(long, env = "VAULT_TOKEN_FILE", global = true)]
    vault_token_file: Option<PathBuf>,
    /// How to get a Vault token: a given token, or a login that is revoked at exit.
    #[arg(long, env = "CERTVAULT_AUTH", value_enum, default_value_t = AuthMethod::Token, global = true)]
    auth: AuthMethod,
    /// Mount path of the auth method (default: approle, kubernetes or jwt).
    #[arg(long, env = "CERTVAULT_AUTH_MOUNT", global = true)]
    auth_mount: Option<String>,
    /// Vault role to log in as (kubernetes: required; jwt: default the mount's default_role).
    #[arg(long, env = "CERTVAULT_AUTH_ROLE", global = true)]
    auth_role: Option<String>,
    /// AppRole role id.
    #[arg(long, env = "VAULT_ROLE_ID", value_parser = secret, hide_env_values = true, global = true)]
    role_id: Option<Secret>,
    /// File holding the AppRole role id.
    #[arg(long, env = "VAULT_ROLE_ID_FILE", global = true)]
    role_id_file: Option<PathBuf>,
    /// AppRole secret id. Use the VAULT_SECRET_ID environment variable: flags show up in `ps`.
    #[arg(
        long,
        env = "VAULT_SECRET_ID", value_parser = secret,
        hide_env_values = true,
        hide = true,
        global = true
    )]
    secret_id: Option<Secret>,
    /// File holding the AppRole secret id (used when VAULT_SECRET_ID is unset).
    #[arg(long, env = "VAULT_SECRET_ID_FILE", global = true)]
    secret_id_file: Option<PathBuf>,
    /// JWT for --auth jwt. Use the CERTVAULT_JWT environment variable: flags show up in `ps`.
    #[arg(
        long,
        env = "CERTVAULT_JWT", value_parser = secret,
        hide_env_values = true,
        hide = true,
        global = true
    )]
    jwt: Option<Secret>,
    /// File holding the JWT (--auth jwt), or the service account token (--auth kubernetes,
    /// default /var/run/secrets/kubernetes.io/serviceaccount/token).
    #[arg(long, env = "CERTVAULT_JWT_FILE", global = true)]
    jwt_file: Option<PathBuf>,
    /// KV secrets engine version of the mount (1 or 2); detected from the mount if unset.
    #[arg(long, env = "CERTVAULT_KV_VERSION", value_parser = ["1", "2"], global = true)]
    kv_version: Option<String>,
    /// Vault namespace (Enterprise / OpenBao).
    #[arg(long, env = "VAULT_NAMESPACE", global = true)]
    vault_namespace: Option<String>,
    /// PEM file with the CA that signed Vault's TLS certificate.
    #[arg(long, env = "VAULT_CACERT", global = true)]
    vault_cacert: Option<PathBuf>,
    /// How long one Vault request is retried while Vault is unavailable (sealed, a standby
    /// without a leader during an election, 5xx, connection refused); longer than an election.
    #[arg(
        long,
        env = "CERTVAULT_VAULT_RETRY_TIMEOUT",
        default_value = "60s",
        global = true
    )]
    vault_retry_timeout: HumanDuration,
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
    account: AccountName,
    /// How long to wait for the CA to validate an order's challenges.
    #[arg(
        long,
        env = "CERTVAULT_VALIDATION_TIMEOUT",
        default_value = "5m",
        global = true
    )]
    validation_timeout: HumanDuration,
    /// DNS resolvers (ip or ip:port, comma-separated) used to find zones, CNAMEs and
    /// nameservers. Default: the nameservers of /etc/resolv.conf.
    #[arg(
        long,
        env = "CERTVAULT_DNS_RESOLVER",
        value_delimiter = ',',
        global = true
    )]
    dns_resolver: Vec<String>,
    /// Port of the authoritative nameservers queried by the propagation check (default 53).
    /// Given to `dns add`, it is stored with the solver.
    #[arg(long, env = "CERTVAULT_AUTHORITATIVE_PORT", global = true)]
    authoritative_port: Option<u16>,
    /// How long to wait for every authoritative nameserver to serve the challenge.
    #[arg(
        long,
        env = "CERTVAULT_PROPAGATION_TIMEOUT",
        default_value = "5m",
        global = true
    )]
    propagation_timeout: HumanDuration,
    /// How often the authoritative nameservers are asked.
    #[arg(
        long,
        env = "CERTVAULT_PROPAGATION_INTERVAL",
        default_value = "1s",
        global = true
    )]
    propagation_interval: HumanDuration,
    /// More log output on stderr (-v debug, -vv trace). CERTVAULT_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// For cron: print nothing on success; on failure only the errors and the summary.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Log format on stderr: text, or one JSON object per line (keys ts, level, msg, cert, ...).
    #[arg(
        long,
        env = "CERTVAULT_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        global = true
    )]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
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
        #[arg(long, env = "CERTVAULT_EAB_HMAC_KEY", value_parser = secret, hide_env_values = true)]
        eab_hmac_key: Option<Secret>,
        /// Register a new account even if one is stored, replacing it.
        #[arg(long)]
        force: bool,
        /// Import an existing account key instead of registering (PEM, or a JWK such as
        /// certbot's private_key.json): the CA finds its account (onlyReturnExisting).
        /// ECDSA P-256 keys only: RSA keys (certbot's) cannot sign with instant-acme.
        #[arg(long, value_name = "FILE")]
        account_key: Option<PathBuf>,
    },
    /// Obtain a certificate for the given names and store it as <prefix>/certs/<NAME>.
    Issue {
        /// Name of the certificate record.
        name: CertName,
        /// A name for the certificate (repeatable); the first is the subject CN. Wildcards allowed.
        #[arg(short = 'd', long = "domain", required = true)]
        domains: Vec<DomainName>,
        /// How to solve DNS-01: `exec` (with --auth-hook), or stored solvers: `<solver>` as the
        /// default and `<zone>=<solver>` per zone (repeatable; the longest zone match wins).
        #[arg(long = "dns", default_value = "exec")]
        dns: Vec<String>,
        /// certbot-compatible auth hook (gets CERTBOT_DOMAIN, CERTBOT_VALIDATION).
        #[arg(long)]
        auth_hook: Option<String>,
        /// certbot-compatible cleanup hook (also gets CERTBOT_AUTH_OUTPUT); always runs.
        #[arg(long)]
        cleanup_hook: Option<String>,
        /// Private key type: ecdsa-p256, ecdsa-p384, rsa2048, rsa3072 or rsa4096; a new key is
        /// made at every issuance.
        #[arg(long, default_value = "ecdsa-p256")]
        key_type: KeyType,
        /// Renew this long before expiry (e.g. 30d). Default: when 1/3 of the lifetime is left.
        #[arg(long)]
        renew_before: Option<HumanDuration>,
        /// Write the record where `_acme-challenge.<name>` is, without following its CNAME.
        #[arg(long)]
        no_follow_cname: bool,
        /// Check propagation at every authoritative nameserver (default for stored solvers).
        #[arg(long, overrides_with = "no_propagation_check")]
        propagation_check: bool,
        /// Do not check propagation (default for --dns exec, whose hook must wait itself).
        #[arg(long)]
        no_propagation_check: bool,
        /// Run this command (with `sh -c`) after each new certificate is stored in Vault,
        /// e.g. to reload a server. Gets CERTVAULT_NAME, CERTVAULT_DOMAINS,
        /// CERTVAULT_VAULT_PATH, CERTVAULT_VERSION and RENEWED_DOMAINS.
        #[arg(long)]
        deploy_hook: Option<String>,
        /// Fields of the record besides certbot's (repeatable): `kubernetes` adds tls.crt,
        /// tls.key and ca.crt; `combined` adds the key and full chain in one PEM; `certbot`
        /// (the default) only cert, chain, fullchain and privkey.
        #[arg(long = "layout")]
        layouts: Vec<RecordLayout>,
        /// Order with this CA profile (one of the directory's `meta.profiles`, e.g.
        /// shortlived); stored in the spec, so renewals use it too.
        #[arg(long)]
        profile: Option<String>,
        /// Keep the private key across renewals (default: a new key at every issuance).
        #[arg(long)]
        reuse_key: bool,
        /// Reissue even if the stored certificate is not due.
        #[arg(long)]
        force: bool,
    },
    /// Revoke a certificate with the account that ordered it and mark its record; the next
    /// `renew` replaces it.
    Revoke {
        /// The certificate.
        name: CertName,
        /// RFC 5280 reason: unspecified, keyCompromise, caCompromise, affiliationChanged,
        /// superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, aaCompromise.
        #[arg(long)]
        reason: Option<String>,
    },
    /// The stored ACME account (--account): key rollover, deactivation.
    #[command(subcommand)]
    Account(AccountCmd),
    /// Manage DNS solvers stored in Vault at <prefix>/dns/<NAME>.
    #[command(subcommand)]
    Dns(DnsCmd),
    /// Show each certificate, when it expires, when it will renew and why.
    List {
        /// text (a table for people) or json.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Read every record instead of the renewal index, and report where the index
        /// disagrees (exit 1 if it does; `certvault index rebuild` repairs it).
        #[arg(long)]
        verify: bool,
    },
    /// The renewal index at <prefix>/index/ (renew reads it to load only what is due).
    #[command(subcommand)]
    Index(IndexCmd),
    /// Renew every due certificate (or only the NAMEs given).
    Renew {
        /// Renew even if not due.
        #[arg(long)]
        force: bool,
        /// How many orders run at once.
        #[arg(long, env = "CERTVAULT_CONCURRENCY", default_value_t = 8)]
        concurrency: usize,
        /// Length of a certificate's lock lease, renewed while a run works on it (at most 10m).
        #[arg(long, env = "CERTVAULT_LOCK_LEASE", default_value = "60s")]
        lock_lease: HumanDuration,
        /// Only these certificates.
        names: Vec<CertName>,
        /// Only the certificates whose name hashes to shard I of N (0-based, e.g. 0/4):
        /// first 8 bytes of SHA-256 of the name, big-endian, mod N. Splits a fleet across
        /// several jobs; the per-certificate lock still keeps overlapping jobs apart.
        #[arg(long, env = "CERTVAULT_SHARD", value_name = "I/N")]
        shard: Option<certvault::index::Part>,
        /// text (a line per certificate and a summary) or json (per certificate: name,
        /// verdict, reason, not_after, version, error; plus totals).
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Write Prometheus metrics of the run to this file (atomically), e.g. for
        /// node_exporter's textfile collector.
        #[arg(long, env = "CERTVAULT_METRICS_FILE")]
        metrics_file: Option<PathBuf>,
        /// Push Prometheus metrics of the run to this Pushgateway (job=certvault).
        #[arg(long, env = "CERTVAULT_PUSHGATEWAY")]
        pushgateway: Option<String>,
        /// Decide everything and fetch renewal information, but order nothing and write
        /// nothing: print what would happen and why.
        #[arg(long)]
        dry_run: bool,
        /// At most N orders in this run, the most urgent first (expired, then the earliest
        /// renewal point); the rest are reported as deferred.
        #[arg(long, env = "CERTVAULT_MAX_ORDERS")]
        max_orders: Option<usize>,
        /// Wait a random time of up to this long before the run starts (e.g. 10m).
        #[arg(long, env = "CERTVAULT_JITTER", default_value = "0s", value_parser = jitter)]
        jitter: Duration,
        /// After this many timeouts or 5xx answers in a row from one CA, start no new
        /// orders to it in this run (the rest are deferred).
        #[arg(long, env = "CERTVAULT_CA_FAILURES", default_value_t = 3)]
        ca_failures: u32,
    },
    /// Change settings of one certificate (same rules as issue for when it reissues).
    Edit {
        /// The certificate.
        name: CertName,
        /// Renew this long before expiry (e.g. 30d).
        #[arg(long, conflicts_with = "default_renewal")]
        renew_before: Option<HumanDuration>,
        /// Drop --renew-before: renew when 1/3 of the lifetime is left.
        #[arg(long)]
        default_renewal: bool,
        /// Private key type: ecdsa-p256, ecdsa-p384, rsa2048, rsa3072 or rsa4096 (reissues).
        #[arg(long)]
        key_type: Option<KeyType>,
        /// Add a name (reissues; repeatable).
        #[arg(long = "add-domain")]
        add_domains: Vec<DomainName>,
        /// Remove a name (reissues; repeatable).
        #[arg(long = "remove-domain")]
        remove_domains: Vec<DomainName>,
        /// Replace how DNS-01 is solved, as in issue (`exec` with hooks, `<solver>`, `<zone>=<solver>`).
        #[arg(long = "dns")]
        dns: Vec<String>,
        /// Replace the exec auth hook.
        #[arg(long)]
        auth_hook: Option<String>,
        /// Replace the exec cleanup hook.
        #[arg(long)]
        cleanup_hook: Option<String>,
        /// Replace the deploy hook.
        #[arg(long, conflicts_with = "no_deploy_hook")]
        deploy_hook: Option<String>,
        /// Remove the deploy hook.
        #[arg(long)]
        no_deploy_hook: bool,
        /// Reissue now even if the change alone would not.
        #[arg(long)]
        force: bool,
    },
    /// Show one certificate: spec, status, versions and Vault paths (no secret).
    Show {
        /// The certificate.
        name: CertName,
    },
    /// Break a certificate's lock (a run that died while holding it), showing who held it.
    Unlock {
        /// The certificate.
        name: CertName,
    },
    /// Retire a certificate so that renew stops (KV history is kept).
    Delete {
        /// The certificate.
        name: CertName,
        /// Confirm.
        #[arg(long)]
        yes: bool,
    },
    /// Move the specs of records written by an older certvault into their admin-only
    /// documents (<prefix>/specs/<NAME>), which renew needs. Prints each spec it moves.
    Migrate {
        /// Print what would move; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Store existing certificates as they are (same serial and key), with their account,
    /// solvers and settings: from certbot, lego, or certbot's files kept in Vault.
    #[command(subcommand)]
    Import(ImportCmd),
    /// Print a ready-to-apply Vault policy (HCL) for the current mount and prefix.
    Policy {
        /// admin (init, issue, solvers), renew (unattended renewals), or reader (one certificate).
        role: Role,
        /// The certificate a reader may read.
        name: Option<CertName>,
    },
}

/// How long the CA may take to issue once an order is finalized.
const ISSUANCE_TIMEOUT: Duration = Duration::from_secs(300);

/// A secret from the environment (non-empty) or else a file.
/// Secrets are wrapped as soon as they are parsed, so no `Debug` of the parsed command line
/// can show them.
fn secret(s: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(s.to_string()))
}

fn credential(value: Option<Secret>, file: Option<PathBuf>) -> Option<Credential> {
    match (
        value.filter(|v| !v.expose().is_empty()),
        file.filter(|p| !p.as_os_str().is_empty()),
    ) {
        (Some(v), _) => Some(Credential::Value(v)),
        (None, Some(f)) => Some(Credential::File(f)),
        (None, None) => None,
    }
}

/// OpenBao's names for Vault's variables, used when the Vault one is unset or empty.
const BAO_ALIASES: [(&str, &str); 4] = [
    ("VAULT_ADDR", "BAO_ADDR"),
    ("VAULT_TOKEN", "BAO_TOKEN"),
    ("VAULT_NAMESPACE", "BAO_NAMESPACE"),
    ("VAULT_CACERT", "BAO_CACERT"),
];

/// The `VAULT_*` variables to set from their `BAO_*` aliases: a non-empty `VAULT_*` wins.
pub fn bao_aliases(
    get: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Vec<(&'static str, std::ffi::OsString)> {
    let set = |name: &str| get(name).filter(|v| !v.is_empty());
    BAO_ALIASES
        .iter()
        .filter(|(vault, _)| set(vault).is_none())
        .filter_map(|(vault, bao)| set(bao).map(|v| (*vault, v)))
        .collect()
}

/// `~/.vault-token`, where `vault login` / `bao login` leave the token, if it is a file.
/// No HOME, or none there, is no error: there is simply no token from it.
fn home_token_file(home: Option<std::ffi::OsString>) -> Option<PathBuf> {
    let home = PathBuf::from(home.filter(|h| !h.is_empty())?);
    let file = home.join(".vault-token");
    file.is_file().then_some(file)
}

fn auth_method(g: &mut Global) -> Method {
    let empty = || Credential::Value(Secret::default());
    let mount = |default: &str| {
        g.auth_mount
            .clone()
            .filter(|m| !m.is_empty())
            .map(|m| m.trim_matches('/').to_string())
            .unwrap_or_else(|| default.to_string())
    };
    let role = g.auth_role.clone().filter(|r| !r.is_empty());
    match g.auth {
        AuthMethod::Token => Method::Token {
            token: credential(g.vault_token.take(), g.vault_token_file.take())
                .or_else(|| home_token_file(std::env::var_os("HOME")).map(Credential::File)),
        },
        AuthMethod::Approle => Method::AppRole {
            mount: mount("approle"),
            role_id: credential(g.role_id.take(), g.role_id_file.take()).unwrap_or_else(empty),
            secret_id: credential(g.secret_id.take(), g.secret_id_file.take())
                .unwrap_or_else(empty),
        },
        AuthMethod::Kubernetes => Method::Kubernetes {
            mount: mount("kubernetes"),
            role: role.unwrap_or_else(|| {
                clap::Error::raw(
                    clap::error::ErrorKind::MissingRequiredArgument,
                    "--auth kubernetes needs the Vault role: set --auth-role or CERTVAULT_AUTH_ROLE\n",
                )
                .exit()
            }),
            jwt: Credential::File(
                g.jwt_file
                    .take()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or_else(|| PathBuf::from(KUBERNETES_JWT_FILE)),
            ),
        },
        AuthMethod::Jwt => Method::Jwt {
            mount: mount("jwt"),
            role,
            jwt: credential(g.jwt.take(), g.jwt_file.take()).unwrap_or_else(empty),
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AuthMethod {
    /// VAULT_TOKEN or VAULT_TOKEN_FILE
    Token,
    /// VAULT_ROLE_ID + VAULT_SECRET_ID (or their _FILE variants)
    Approle,
    /// the pod's service account token and CERTVAULT_AUTH_ROLE
    Kubernetes,
    /// CERTVAULT_JWT or CERTVAULT_JWT_FILE, and CERTVAULT_AUTH_ROLE
    Jwt,
}

/// `certvault index …`
#[derive(Debug, Subcommand)]
enum IndexCmd {
    /// Rebuild the renewal index from every record, spec and status document (admin
    /// policy): use after restoring Vault, or when `list --verify` reports disagreements.
    Rebuild,
}

#[derive(Debug, Subcommand)]
enum DnsCmd {
    /// Store a DNS solver: `dns add <kind> NAME ...` (the older `dns add NAME --kind <kind>`
    /// still works). Its secret (API token, key, TSIG secret) is read from
    /// CERTVAULT_DNS_SECRET or, with --secret-stdin, from standard input; never from a flag.
    #[command(subcommand)]
    Add(dns::AddArgs),
    /// List stored DNS solvers (without secrets).
    List,
    /// Present a probe TXT value at _acme-challenge.<ZONE>, check it on every authoritative
    /// server, remove it, and report each step.
    Test {
        /// The stored solver to test.
        name: SolverName,
        /// The zone (or name) to place the probe at.
        #[arg(long)]
        zone: String,
    },
    /// Delete a stored solver (refused while a certificate uses it; KV history is kept).
    Remove {
        /// The stored solver to remove.
        name: SolverName,
    },
}

impl Cli {
    /// Parse the process arguments; `dns add NAME --kind K ...` becomes `dns add K NAME ...`.
    pub fn parse_args() -> Self {
        <Self as Parser>::parse_from(legacy_kind(std::env::args_os().collect()))
    }
}

/// The older `dns add NAME --kind K` form, rewritten to `dns add K NAME`.
fn legacy_kind(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let Some(add) = args
        .windows(2)
        .position(|w| w[0] == "dns" && w[1] == "add")
        .map(|i| i + 1)
    else {
        return args;
    };
    let mut kind = None;
    let mut i = add + 1;
    while i < args.len() {
        let a = args[i].to_string_lossy().into_owned();
        if a == "--kind" && i + 1 < args.len() {
            kind = Some(args.remove(i + 1));
            args.remove(i);
            break;
        }
        if let Some(k) = a.strip_prefix("--kind=") {
            kind = Some(k.into());
            args.remove(i);
            break;
        }
        i += 1;
    }
    if let Some(k) = kind {
        args.insert(add + 1, k);
    }
    args
}

#[derive(Debug, Subcommand)]
enum AccountCmd {
    /// Replace the account key (RFC 8555 key change); the new key is stored with check-and-set.
    Rollover,
    /// Deactivate the account at the CA for good (needs --yes).
    Deactivate {
        /// Confirm.
        #[arg(long)]
        yes: bool,
    },
}

/// `--jitter`: a duration, `0` or `0s` for none.
fn jitter(s: &str) -> Result<Duration, String> {
    if s.trim().trim_end_matches('s') == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s.trim())
        .map_err(|_| "write a duration like 10m or 30s (0 for none)".to_string())
}

#[derive(Debug, Subcommand)]
enum ImportCmd {
    /// A certbot config folder (like /etc/letsencrypt): its account, every lineage of
    /// renewal/<NAME>.conf under that NAME, and its authenticators as solvers.
    Certbot {
        /// The certbot config folder.
        dir: PathBuf,
        /// Print what would be written (no secret); write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Only these lineages.
        #[arg(long, num_args = 1.., value_name = "NAME")]
        only: Vec<String>,
        /// Replace existing records, specs, solvers and accounts of the same name.
        #[arg(long)]
        force: bool,
    },
    /// A lego --path folder (accounts/ and certificates/).
    Lego {
        /// The lego folder (its --path, default ./.lego).
        dir: PathBuf,
        /// Print what would be written (no secret); write nothing.
        #[arg(long)]
        dry_run: bool,
        /// The ACME directory URL (lego does not record it; well-known CAs are recognised).
        #[arg(long)]
        server: Option<String>,
        /// Replace existing records, specs, solvers and accounts of the same name.
        #[arg(long)]
        force: bool,
    },
    /// certbot's files kept in Vault: <mount>/<path>/account/*, <path>/certificates/*
    /// and <mount>/dnsimple (read only).
    VaultLayout {
        /// Where the layout is: <mount>/<path>, like secret/lets-encrypt.
        #[arg(long)]
        from: String,
        /// Print what would be written (no secret); write nothing.
        #[arg(long)]
        dry_run: bool,
        /// The ACME directory URL (the layout does not record it; well-known CAs are
        /// recognised from the account URL).
        #[arg(long)]
        server: Option<String>,
        /// Replace existing records, specs, solvers and accounts of the same name.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    #[value(alias = "table")]
    Text,
    Json,
}

fn missing(what: &'static str, reason: &'static str) -> InvalidInput {
    InvalidInput {
        what,
        value: String::new(),
        reason,
    }
}

/// `ip` or `ip:port` (port 53).
fn socket_addr(s: &str) -> Result<SocketAddr, InvalidInput> {
    let s = s.trim();
    s.parse::<SocketAddr>()
        .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| InvalidInput {
            what: "DNS resolver",
            value: s.to_string(),
            reason: "write an IP address, optionally with :port",
        })
}

/// A hook whose command starts with a path: made absolute against the current folder (a
/// scheduler runs `renew` elsewhere), and it must be an executable file now, not exit 127
/// later. A command that starts with a bare name (`sh`, `true`) is found in PATH when it
/// runs.
fn resolve_hook(flag: &'static str, hook: Option<String>) -> Result<Option<String>, InvalidInput> {
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

fn directory_url(d: &str) -> String {
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
        let mut concurrency_flag = 8;
        let mut lease_flag = certvault::store::LEASE;
        // Commands that may order certificates need a token that outlives an order.
        let orders = matches!(self.command, Cmd::Issue { .. } | Cmd::Renew { .. });
        let command = match self.command {
            Cmd::Init {
                directory,
                email,
                agree_tos,
                eab_kid,
                eab_hmac_key,
                force,
                account_key,
            } => Command::Init(InitArgs {
                directory: {
                    let url = directory_url(&directory);
                    acme::check_url(&url).map_err(|reason| InvalidInput {
                        what: "--directory",
                        value: directory.clone(),
                        reason,
                    })?;
                    url
                },
                email,
                agree_tos,
                eab_kid,
                eab_hmac: eab_hmac_key.filter(|k| !k.expose().is_empty()),
                force,
                account_key: account_key.filter(|p| !p.as_os_str().is_empty()),
            }),
            Cmd::Import(cmd) => {
                let (source, dry_run, force) = match cmd {
                    ImportCmd::Certbot {
                        dir,
                        dry_run,
                        only,
                        force,
                    } => (ImportSource::Certbot { dir, only }, dry_run, force),
                    ImportCmd::Lego {
                        dir,
                        dry_run,
                        server,
                        force,
                    } => (
                        ImportSource::Lego {
                            dir,
                            server: server.map(|s| directory_url(&s)),
                        },
                        dry_run,
                        force,
                    ),
                    ImportCmd::VaultLayout {
                        from,
                        dry_run,
                        server,
                        force,
                    } => (
                        ImportSource::VaultLayout {
                            from,
                            server: server.map(|s| directory_url(&s)),
                        },
                        dry_run,
                        force,
                    ),
                };
                Command::Import(ImportArgs {
                    source,
                    dry_run,
                    force,
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
                },
                force,
            }),
            Cmd::Revoke { name, reason } => {
                if let Some(r) = reason
                    .as_deref()
                    .filter(|r| !certvault::ca::valid_reason(r))
                {
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
                zone: dns::Fqdn::parse("--zone", &zone).map_err(|e| InvalidInput {
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
                let (name, common, provider) = add.into_parts(&dns::SecretSource(&read))?;
                let zone = match common.zone.as_deref().filter(|z| !z.trim().is_empty()) {
                    Some(z) => Some(dns::Zone::parse("--zone", z).map_err(|e| InvalidInput {
                        what: "--zone",
                        value: e.value,
                        reason: e.reason,
                    })?),
                    None => None,
                };
                let config = DnsConfig {
                    settings: dns::SolverSettings {
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
                output,
                metrics_file,
                pushgateway,
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
                if lock_lease.0 > certvault::store::MAX_LEASE || lock_lease.0.as_secs() < 3 {
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
                    shard: shard.unwrap_or(certvault::index::Part::ALL),
                    json: output == Output::Json,
                    metrics: metrics::Sinks {
                        file: metrics_file.filter(|p| !p.as_os_str().is_empty()),
                        pushgateway: match pushgateway.filter(|u| !u.trim().is_empty()) {
                            Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                                return Err(InvalidInput {
                                    what: "--pushgateway",
                                    value: u,
                                    reason: "write the Pushgateway's base URL, like http://pushgateway:9091",
                                })
                            }
                            u => u,
                        },
                    },
                }
            }
            Cmd::Policy { role, name } => Command::Policy { role, cert: name },
            Cmd::Migrate { dry_run } => Command::Migrate { dry_run },
            Cmd::Show { name } => Command::Show { name },
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
                    },
                    force,
                }
            }
            Cmd::Unlock { name } => Command::Unlock { name },
            Cmd::Delete { name, yes } => Command::Delete { name, yes },
        };
        let settings = Settings {
            vault: vault::Settings {
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
                    vault::Lifetime::new(
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
            timeouts: acme::Timeouts {
                validation: g.validation_timeout.0,
                issuance: ISSUANCE_TIMEOUT,
            },
            dns: dns::Settings {
                lookup: dns::zone::Lookup {
                    resolvers: if g.dns_resolver.is_empty() {
                        dns::zone::Lookup::system_resolvers()
                    } else {
                        g.dns_resolver
                            .iter()
                            .map(|r| socket_addr(r))
                            .collect::<Result<_, _>>()?
                    },
                    authoritative_port: g.authoritative_port.unwrap_or(53),
                    timeout: Duration::from_secs(3),
                },
                polling: dns::propagation::Polling {
                    interval: g.propagation_interval.0,
                    timeout: g.propagation_timeout.0,
                },
            },
        };
        let logging = Logging {
            quiet: g.quiet,
            verbose: g.verbose,
            format: match g.log_format {
                LogFormat::Text => logging::Format::Text,
                LogFormat::Json => logging::Format::Json,
            },
        };
        Ok((logging, settings, command))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bao_variables_are_aliases_and_vault_ones_win() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        let got = bao_aliases(env(&[
            ("BAO_ADDR", "http://bao:8200"),
            ("BAO_TOKEN", "b-tok"),
            ("VAULT_TOKEN", "v-tok"),
            ("BAO_NAMESPACE", "ns"),
            ("VAULT_CACERT", ""),
            ("BAO_CACERT", "/ca.pem"),
        ]));
        let got: Vec<(&str, String)> = got
            .into_iter()
            .map(|(k, v)| (k, v.into_string().unwrap()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("VAULT_ADDR", "http://bao:8200".to_string()),
                ("VAULT_NAMESPACE", "ns".to_string()),
                ("VAULT_CACERT", "/ca.pem".to_string()),
            ]
        );
        assert!(bao_aliases(env(&[("BAO_TOKEN", "")])).is_empty());
    }

    #[test]
    fn home_token_file_needs_a_home_and_a_file() {
        assert_eq!(home_token_file(None), None);
        assert_eq!(home_token_file(Some("".into())), None);
        assert_eq!(home_token_file(Some("/nonexistent-home".into())), None);
    }

    #[test]
    fn parsed_secrets_do_not_show_in_debug() {
        let cli = Cli::try_parse_from([
            "certvault",
            "--vault-token",
            "tok-SECRET1",
            "--role-id",
            "rid-SECRET5",
            "--secret-id",
            "sid-SECRET2",
            "--jwt",
            "jwt-SECRET3",
            "init",
            "--directory",
            "https://ca.example/dir",
            "--eab-kid",
            "kid",
            "--eab-hmac-key",
            "hmac-SECRET4",
        ])
        .unwrap();
        let shown = format!("{cli:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        let (_, settings, command) = cli.into_parts().unwrap();
        let shown = format!("{settings:?} {command:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
    }
}
