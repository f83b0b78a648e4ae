//! The subcommands and their own flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Subcommand, ValueEnum};

use certvault::defaults;
use certvault::{
    CertName, DnsAddArgs, DomainName, EnvName, HumanDuration, KeyType, RecordLayout, Role, Secret,
    Shard, SolverName,
};

use super::*;

#[derive(Debug, Subcommand)]
pub(crate) enum Cmd {
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
        /// External account binding HMAC key (base64url): set CERTVAULT_EAB_HMAC_KEY, or use
        /// --eab-hmac-key-file. Refused as a flag (it would land in shell history).
        #[arg(long, env = "CERTVAULT_EAB_HMAC_KEY", value_parser = secret, hide_env_values = true, hide = true)]
        eab_hmac_key: Option<Secret>,
        /// Read the external account binding HMAC key (base64url) from FILE.
        #[arg(long, value_name = "FILE", conflicts_with = "eab_hmac_key")]
        eab_hmac_key_file: Option<PathBuf>,
        /// Set by parsing when --eab-hmac-key came on the command line, not from the environment.
        #[arg(skip)]
        eab_hmac_key_flag: bool,
        /// Register a new account even if one is stored, replacing it.
        #[arg(long)]
        force: bool,
        /// Import an existing account key instead of registering (PEM, or a JWK such as
        /// certbot's private_key.json): the CA finds its account (onlyReturnExisting).
        /// An RSA or P-384 key (certbot's, lego's) has its account's key changed at the CA to
        /// a new P-256 key: the account URL stays, the old key stops working.
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
        #[arg(long, allow_hyphen_values = true)]
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
        /// Let this variable of certvault's environment through to the hooks (repeatable).
        /// Hooks get no credentials by default: no variable named like *TOKEN, *SECRET, *_KEY
        /// or *PASSWORD, and no URL with a password in it. VAULT_*, BAO_* and CERTVAULT_*
        /// cannot be named.
        #[arg(long = "hook-env", value_name = "NAME")]
        hook_env: Vec<EnvName>,
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
        #[arg(long, env = "CERTVAULT_CONCURRENCY", default_value_t = defaults::CONCURRENCY, allow_negative_numbers = true, value_parser = whole_number::<usize>)]
        concurrency: usize,
        /// Length of a certificate's lock lease, renewed while a run works on it (at most 10m).
        #[arg(long, env = "CERTVAULT_LOCK_LEASE", default_value_t = defaults::LOCK_LEASE.into(), allow_hyphen_values = true)]
        lock_lease: HumanDuration,
        /// Only these certificates.
        names: Vec<CertName>,
        /// Only the certificates whose name hashes to shard I of N (0-based, e.g. 0/4):
        /// first 8 bytes of SHA-256 of the name, big-endian, mod N. Splits a fleet across
        /// several jobs; the per-certificate lock still keeps overlapping jobs apart.
        /// `auto`: I from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) and N from
        /// --shard-count.
        #[arg(long, env = "CERTVAULT_SHARD", value_name = "I/N|auto")]
        shard: Option<ShardArg>,
        /// N for `--shard auto`: the Indexed Job's completions.
        #[arg(long, env = "CERTVAULT_SHARD_COUNT", value_name = "N")]
        shard_count: Option<String>,
        /// text (a line per certificate and a summary) or json (per certificate: name,
        /// verdict, reason, not_after, version, error; plus totals).
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Write Prometheus metrics of the run to this file (atomically), e.g. for
        /// node_exporter's textfile collector.
        #[arg(long, env = "CERTVAULT_METRICS_FILE")]
        metrics_file: Option<PathBuf>,
        /// Push Prometheus metrics of the run to this Pushgateway (job=certvault).
        #[arg(long, env = "CERTVAULT_PUSHGATEWAY", value_parser = super::global::secret, hide_env_values = true)]
        pushgateway: Option<Secret>,
        /// After a run with failed or deferred certificates, or certificates expiring within
        /// --notify-expiring, POST a JSON document to this URL (repeatable; in
        /// CERTVAULT_NOTIFY, separate URLs with spaces). alertmanager+http://HOST:PORT sends
        /// alerts to the Alertmanager API instead.
        #[arg(
            long,
            env = "CERTVAULT_NOTIFY",
            value_name = "URL",
            value_delimiter = ' ',
            value_parser = super::global::secret,
            hide_env_values = true
        )]
        notify: Vec<Secret>,
        /// With --notify: a certificate that expires this soon after the run is reported.
        #[arg(
            long,
            env = "CERTVAULT_NOTIFY_EXPIRING",
            default_value = "7d",
            allow_hyphen_values = true
        )]
        notify_expiring: HumanDuration,
        /// Decide everything and fetch renewal information, but order nothing and write
        /// nothing: print what would happen and why.
        #[arg(long)]
        dry_run: bool,
        /// At most N orders in this run, the most urgent first (expired, then the earliest
        /// renewal point); the rest are reported as deferred.
        #[arg(long, env = "CERTVAULT_MAX_ORDERS", allow_negative_numbers = true, value_parser = whole_number::<usize>)]
        max_orders: Option<usize>,
        /// Wait a random time of up to this long before the run starts (e.g. 10m).
        #[arg(long, env = "CERTVAULT_JITTER", default_value = "0s", value_parser = jitter, allow_hyphen_values = true)]
        jitter: Duration,
        /// After this many timeouts or 5xx answers in a row from one CA, start no new
        /// orders to it in this run (the rest are deferred).
        #[arg(long, env = "CERTVAULT_CA_FAILURES", default_value_t = defaults::CA_FAILURES, allow_negative_numbers = true, value_parser = whole_number::<u32>)]
        ca_failures: u32,
    },
    /// Change settings of one certificate (same rules as issue for when it reissues).
    Edit {
        /// The certificate.
        name: CertName,
        /// Renew this long before expiry (e.g. 30d).
        #[arg(long, conflicts_with = "default_renewal", allow_hyphen_values = true)]
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
        /// Replace the variables let through to the hooks (repeatable; see issue --hook-env).
        #[arg(long = "hook-env", value_name = "NAME", conflicts_with = "no_hook_env")]
        hook_env: Vec<EnvName>,
        /// Let no credential variable through to the hooks.
        #[arg(long)]
        no_hook_env: bool,
        /// Reissue now even if the change alone would not.
        #[arg(long)]
        force: bool,
    },
    #[command(flatten)]
    Manage(certvault::Manage),
    /// Move the specs of records written by an older certvault into their admin-only
    /// documents (<prefix>/specs/<NAME>), which renew needs. Prints each spec it moves.
    Migrate {
        /// Print what would move; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Output format (json: every moved certificate, the distinct settings, the totals).
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Store existing certificates as they are (same serial and key), with their account,
    /// solvers and settings: from certbot, lego, or certbot's files kept in Vault.
    #[command(subcommand)]
    Import(ImportCmd),
    /// Check everything a renewal depends on and say what is wrong: Vault and the token's
    /// role, the CA directory (ARI, profiles) and account, and per certificate CAA, the
    /// _acme-challenge CNAME chain, the authoritative servers and a probe record through
    /// its solver. Exit 0 when nothing failed.
    Doctor {
        /// Only this certificate (repeatable; default: every certificate).
        #[arg(long = "name", value_name = "NAME")]
        names: Vec<CertName>,
        /// Do not write a probe record through the solvers.
        #[arg(long)]
        no_probe: bool,
        /// text (a table) or json (`ok` and `checks`: check, subject, status, detail).
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Print a ready-to-apply Vault policy (HCL) for the current mount and prefix.
    Policy {
        /// admin (init, issue, solvers), renew (unattended renewals), monitor (list, no keys), or reader (one certificate).
        role: Role,
        /// The certificate a reader may read.
        name: Option<CertName>,
    },
}

/// `certvault index …`
#[derive(Debug, Subcommand)]
pub(crate) enum IndexCmd {
    /// Rebuild the renewal index from every record, spec and status document (admin
    /// policy): use after restoring Vault, or when `list --verify` reports disagreements.
    Rebuild,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DnsCmd {
    /// Store a DNS solver: `dns add <kind> NAME ...` (the older `dns add NAME --kind <kind>`
    /// still works). Its secret (API token, key, TSIG secret) is read from
    /// CERTVAULT_DNS_SECRET or, with --secret-stdin, from standard input; never from a flag.
    #[command(subcommand)]
    Add(Box<DnsAddArgs>),
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

#[derive(Debug, Subcommand)]
pub(crate) enum AccountCmd {
    /// Replace the account key (RFC 8555 key change); the new key is stored with check-and-set.
    Rollover,
    /// Deactivate the account at the CA for good (needs --yes).
    Deactivate {
        /// Confirm.
        #[arg(long)]
        yes: bool,
    },
}

/// A count such as `--concurrency 4`: a negative one is named as such, not taken for a flag.
pub(crate) fn whole_number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.trim().parse().map_err(|_| {
        if s.trim().starts_with('-') {
            "negative numbers are not accepted: write a whole number like 4".to_string()
        } else {
            "write a whole number like 4".to_string()
        }
    })
}

/// `--jitter`: a duration, `0` or `0s` for none.
pub(crate) fn jitter(s: &str) -> Result<Duration, String> {
    if s.trim().trim_end_matches('s') == "0" {
        return Ok(Duration::ZERO);
    }
    let wait = humantime::parse_duration(s.trim())
        .map_err(|_| "write a duration like 10m or 30s (0 for none)".to_string())?;
    if wait > defaults::MAX_JITTER {
        return Err(format!(
            "at most {} (the run picks what is due before it waits); spread runs further through the schedule",
            humantime::format_duration(defaults::MAX_JITTER)
        ));
    }
    Ok(wait)
}

/// What every import source takes.
#[derive(Debug, clap::Args)]
pub(crate) struct ImportCommon {
    /// Print what would be written (no secret); write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Replace existing records, specs, solvers and accounts of the same name.
    #[arg(long)]
    pub(crate) force: bool,
    /// Carry over an RSA or P-384 account: change its key at the CA to a new P-256 key (the
    /// account URL stays; the source client's copy of the old key stops working).
    #[arg(long)]
    pub(crate) adopt_account: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ImportCmd {
    /// A certbot config folder (like /etc/letsencrypt): its account, every lineage of
    /// renewal/<NAME>.conf under that NAME, and its authenticators as solvers.
    Certbot {
        /// The certbot config folder.
        dir: PathBuf,
        /// Only these lineages.
        #[arg(long, num_args = 1.., value_name = "NAME")]
        only: Vec<String>,
        #[command(flatten)]
        common: ImportCommon,
    },
    /// A lego --path folder (accounts/ and certificates/).
    Lego {
        /// The lego folder (its --path, default ./.lego).
        dir: PathBuf,
        /// The ACME directory URL (lego does not record it; well-known CAs are recognised).
        #[arg(long)]
        server: Option<String>,
        #[command(flatten)]
        common: ImportCommon,
    },
    /// An acme.sh home folder (~/.acme.sh or its --config-home): ca/<host>/<path>/account.*,
    /// <domain>[_ecc]/ and the DNS API credentials in account.conf.
    AcmeSh {
        /// The acme.sh home folder.
        dir: PathBuf,
        /// The ACME directory URL, for an account whose CA no certificate names (well-known
        /// CAs are recognised).
        #[arg(long)]
        server: Option<String>,
        #[command(flatten)]
        common: ImportCommon,
    },
    /// certbot's files kept in Vault: <mount>/<path>/account/*, <path>/certificates/*
    /// and <mount>/dnsimple (read only).
    VaultLayout {
        /// Where the layout is: <mount>/<path>, like secret/lets-encrypt.
        #[arg(long)]
        from: String,
        /// The ACME directory URL (the layout does not record it; well-known CAs are
        /// recognised from the account URL).
        #[arg(long)]
        server: Option<String>,
        #[command(flatten)]
        common: ImportCommon,
    },
}

/// `--shard`: a part given as I/N, or `auto` (from the Indexed Job's environment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShardArg {
    Auto,
    Part(Shard),
}

impl std::str::FromStr for ShardArg {
    type Err = certvault::InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim() == "auto" {
            Ok(Self::Auto)
        } else {
            s.parse().map(Self::Part)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    #[value(alias = "table")]
    Text,
    Json,
}
