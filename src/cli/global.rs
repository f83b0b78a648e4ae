//! The settings every command shares (Vault, ACME, DNS, logging) and the Vault login.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use certvault::defaults;
use certvault::{
    AccountName, AuthMethod as Method, Credential, HumanDuration, Secret, KUBERNETES_JWT_FILE,
};

/// Settings every command shares: shown after each command's own options.
#[derive(Debug, Args)]
#[command(
    next_help_heading = "Global options (Vault, ACME, DNS, output; also from the environment)"
)]
pub(crate) struct Global {
    /// Vault (or OpenBao) address.
    #[arg(
        long,
        env = "VAULT_ADDR",
        default_value = "https://127.0.0.1:8200",
        global = true
    )]
    pub(crate) vault_addr: String,
    /// Vault token. Prefer the VAULT_TOKEN environment variable: flags show up in `ps`.
    #[arg(
        long,
        env = "VAULT_TOKEN", value_parser = secret,
        hide_env_values = true,
        hide = true,
        global = true
    )]
    pub(crate) vault_token: Option<Secret>,
    /// File holding the Vault token (e.g. a Vault Agent sink); used when VAULT_TOKEN is unset.
    #[arg(long, env = "VAULT_TOKEN_FILE", global = true)]
    pub(crate) vault_token_file: Option<PathBuf>,
    /// How to get a Vault token: a given token, or a login that is revoked at exit.
    #[arg(long, env = "CERTVAULT_AUTH", value_enum, default_value_t = AuthMethod::Token, global = true)]
    pub(crate) auth: AuthMethod,
    /// Mount path of the auth method (default: approle, kubernetes or jwt).
    #[arg(long, env = "CERTVAULT_AUTH_MOUNT", global = true)]
    pub(crate) auth_mount: Option<String>,
    /// Vault role to log in as (kubernetes: required; jwt: default the mount's default_role).
    #[arg(long, env = "CERTVAULT_AUTH_ROLE", global = true)]
    pub(crate) auth_role: Option<String>,
    /// AppRole role id.
    #[arg(long, env = "VAULT_ROLE_ID", value_parser = secret, hide_env_values = true, global = true)]
    pub(crate) role_id: Option<Secret>,
    /// File holding the AppRole role id.
    #[arg(long, env = "VAULT_ROLE_ID_FILE", global = true)]
    pub(crate) role_id_file: Option<PathBuf>,
    /// AppRole secret id. Use the VAULT_SECRET_ID environment variable: flags show up in `ps`.
    #[arg(
        long,
        env = "VAULT_SECRET_ID", value_parser = secret,
        hide_env_values = true,
        hide = true,
        global = true
    )]
    pub(crate) secret_id: Option<Secret>,
    /// File holding the AppRole secret id (used when VAULT_SECRET_ID is unset).
    #[arg(long, env = "VAULT_SECRET_ID_FILE", global = true)]
    pub(crate) secret_id_file: Option<PathBuf>,
    /// JWT for --auth jwt. Use the CERTVAULT_JWT environment variable: flags show up in `ps`.
    #[arg(
        long,
        env = "CERTVAULT_JWT", value_parser = secret,
        hide_env_values = true,
        hide = true,
        global = true
    )]
    pub(crate) jwt: Option<Secret>,
    /// File holding the JWT (--auth jwt), or the service account token (--auth kubernetes,
    /// default /var/run/secrets/kubernetes.io/serviceaccount/token).
    #[arg(long, env = "CERTVAULT_JWT_FILE", global = true)]
    pub(crate) jwt_file: Option<PathBuf>,
    /// KV secrets engine version of the mount (1 or 2); detected from the mount if unset.
    #[arg(long, env = "CERTVAULT_KV_VERSION", value_parser = ["1", "2"], global = true)]
    pub(crate) kv_version: Option<String>,
    /// Vault namespace (Enterprise / OpenBao).
    #[arg(long, env = "VAULT_NAMESPACE", global = true)]
    pub(crate) vault_namespace: Option<String>,
    /// PEM file with the CA that signed Vault's TLS certificate.
    #[arg(long, env = "VAULT_CACERT", global = true)]
    pub(crate) vault_cacert: Option<PathBuf>,
    /// How long one Vault request is retried while Vault is unavailable (sealed, a standby
    /// without a leader during an election, 5xx, connection refused); longer than an election.
    #[arg(
        long,
        env = "CERTVAULT_VAULT_RETRY_TIMEOUT",
        default_value_t = defaults::VAULT_RETRY_TIMEOUT.into(),
        global = true,
        allow_hyphen_values = true
    )]
    pub(crate) vault_retry_timeout: HumanDuration,
    /// KV mount (version 2, or version 1) that holds certvault's documents.
    #[arg(long, env = "CERTVAULT_MOUNT", default_value = "secret", global = true)]
    pub(crate) mount: String,
    /// Folder below the mount: records live at <mount>/<prefix>/certs/<NAME>.
    #[arg(
        long,
        env = "CERTVAULT_PREFIX",
        default_value = "certvault",
        global = true
    )]
    pub(crate) prefix: String,
    /// PEM file with a CA to trust for the ACME server's HTTPS (a private CA, Pebble).
    #[arg(long, env = "CERTVAULT_ACME_CA_CERT", global = true)]
    pub(crate) acme_ca_cert: Option<PathBuf>,
    /// Which stored ACME account to use: <mount>/<prefix>/accounts/<ACCOUNT>.
    #[arg(
        long,
        env = "CERTVAULT_ACCOUNT",
        default_value = "default",
        global = true
    )]
    pub(crate) account: AccountName,
    /// How long to wait for the CA to validate an order's challenges.
    #[arg(
        long,
        env = "CERTVAULT_VALIDATION_TIMEOUT",
        default_value_t = defaults::VALIDATION_TIMEOUT.into(),
        global = true,
        allow_hyphen_values = true
    )]
    pub(crate) validation_timeout: HumanDuration,
    /// DNS resolvers (ip or ip:port, comma-separated) used to find zones, CNAMEs and
    /// nameservers. Default: the nameservers of /etc/resolv.conf.
    #[arg(
        long,
        env = "CERTVAULT_DNS_RESOLVER",
        value_delimiter = ',',
        global = true
    )]
    pub(crate) dns_resolver: Vec<String>,
    /// Port of the authoritative nameservers queried by the propagation check (default 53).
    /// Given to `dns add`, it is stored with the solver.
    #[arg(long, env = "CERTVAULT_AUTHORITATIVE_PORT", global = true, allow_negative_numbers = true, value_parser = super::whole_number::<u16>)]
    pub(crate) authoritative_port: Option<u16>,
    /// How long to wait for every authoritative nameserver to serve the challenge.
    #[arg(
        long,
        env = "CERTVAULT_PROPAGATION_TIMEOUT",
        default_value_t = defaults::PROPAGATION_TIMEOUT.into(),
        global = true,
        allow_hyphen_values = true
    )]
    pub(crate) propagation_timeout: HumanDuration,
    /// How often the authoritative nameservers are asked.
    #[arg(
        long,
        env = "CERTVAULT_PROPAGATION_INTERVAL",
        default_value_t = defaults::PROPAGATION_INTERVAL.into(),
        global = true,
        allow_hyphen_values = true
    )]
    pub(crate) propagation_interval: HumanDuration,
    /// Grow the renewal index when the fleet has more certificates than this per index
    /// document on average (1 to 10000). Smaller documents, more of them to read.
    #[arg(
        long,
        env = "CERTVAULT_INDEX_GROW_ABOVE",
        default_value_t = defaults::INDEX_GROW_ABOVE,
        value_parser = clap::value_parser!(u64).range(1..=10_000),
        global = true,
        hide_short_help = true
    )]
    pub(crate) index_grow_above: u64,
    /// More log output on stderr (-v debug, -vv trace). CERTVAULT_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    /// For cron: print nothing on success; on failure only the errors and the summary.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// Log format on stderr: text, or one JSON object per line (keys ts, level, msg, cert, ...).
    #[arg(
        long,
        env = "CERTVAULT_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        global = true
    )]
    pub(crate) log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// A secret from the environment (non-empty) or else a file.
/// Secrets are wrapped as soon as they are parsed, so no `Debug` of the parsed command line
/// can show them.
pub(crate) fn secret(s: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(s.to_string()))
}

pub(crate) fn credential(value: Option<Secret>, file: Option<PathBuf>) -> Option<Credential> {
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
pub(crate) const BAO_ALIASES: [(&str, &str); 4] = [
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
pub(crate) fn home_token_file(home: Option<std::ffi::OsString>) -> Option<PathBuf> {
    let home = PathBuf::from(home.filter(|h| !h.is_empty())?);
    let file = home.join(".vault-token");
    file.is_file().then_some(file)
}

pub(crate) fn auth_method(g: &mut Global) -> Method {
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
pub(crate) enum AuthMethod {
    /// VAULT_TOKEN or VAULT_TOKEN_FILE
    Token,
    /// VAULT_ROLE_ID + VAULT_SECRET_ID (or their _FILE variants)
    Approle,
    /// the pod's service account token and CERTVAULT_AUTH_ROLE
    Kubernetes,
    /// CERTVAULT_JWT or CERTVAULT_JWT_FILE, and CERTVAULT_AUTH_ROLE
    Jwt,
}
