//! What went wrong with DNS-01: provider, update, lookup and propagation errors.

use super::name::BadName;
use super::{propagation, zone};

/// Why a TSIG-signed update was rejected, from the server's TSIG error or response code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// The names of RFC 8945's TSIG errors: BADSIG, BADKEY, BADTIME.
#[allow(clippy::enum_variant_names)]
pub enum TsigRejection {
    BadSig,
    BadKey,
    BadTime,
}

/// What went wrong talking to an RFC 2136 server, by kind.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpdateFailure {
    #[error("the server rejected the TSIG signature of key {key} ({code:?}): check the secret of solver {solver}", code = DisplayTsig(*.rejection))]
    TsigRejected {
        key: String,
        solver: String,
        rejection: TsigRejection,
    },
    #[error("the server rejected the TSIG signature of key {key} (BADSIG/BADKEY: its answer carried no valid signature): check the secret of solver {solver} (and its key name and algorithm)")]
    UnsignedAnswer { key: String, solver: String },
    #[error("no answer within {seconds}s (is the server reachable?)")]
    NoAnswer { seconds: u64 },
    #[error("the server refused the update ({code}): the TSIG key is not allowed to update this zone, or the server is not the primary for it")]
    Refused { code: String },
    #[error("{name} is not in zone {zone} on this server")]
    NotZone { name: String, zone: String },
    #[error("cannot resolve the server's name: {0}")]
    Resolve(String),
    #[error("the server answered {0}")]
    Answered(String),
    #[error("{0}")]
    Other(String),
}

struct DisplayTsig(TsigRejection);
impl std::fmt::Debug for DisplayTsig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            TsigRejection::BadSig => "BADSIG",
            TsigRejection::BadKey => "BADKEY",
            TsigRejection::BadTime => "BADTIME",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{hook} hook for {domain} exited with {status}{}", tail(.stderr))]
    HookFailed {
        hook: &'static str,
        domain: String,
        status: String,
        stderr: String,
    },
    #[error("{hook} hook for {domain} did not finish within {seconds}s and was killed")]
    HookTimeout {
        hook: &'static str,
        domain: String,
        seconds: u64,
    },
    #[error("cannot run {hook} hook for {domain}")]
    HookSpawn {
        hook: &'static str,
        domain: String,
        #[source]
        source: std::io::Error,
    },
    #[error("DNS solver {solver} (zone {zone}): {operation} failed with HTTP {status}: {message}{}", auth_hint(*.status))]
    Api {
        solver: String,
        zone: String,
        operation: &'static str,
        status: u16,
        message: String,
    },
    #[error("DNS solver {solver} (zone {zone}): {operation} failed: cannot reach the API")]
    Http {
        solver: String,
        zone: String,
        operation: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("DNS solver {solver}: zone {zone} is not in this account; check the token's zones or choose another solver for it")]
    ZoneNotFound { solver: String, zone: String },
    #[error("DNS solver {solver} (zone {zone}, server {server}): {failure}")]
    Rfc2136 {
        solver: String,
        zone: String,
        server: String,
        failure: Box<UpdateFailure>,
    },
    #[error("DNS solver {solver} is misconfigured: {reason}")]
    Config { solver: String, reason: String },
    #[error("DNS solver {solver} is misconfigured")]
    BadName {
        solver: String,
        #[source]
        source: BadName,
    },
    #[error("DNS solver {solver} (zone {zone}): {reason}")]
    Provider {
        solver: String,
        zone: String,
        reason: String,
    },
    #[error("no DNS solver named {solver} in Vault (looked at {path}); add it with `certvault dns add <kind> {solver} ...`")]
    UnknownSolver { solver: String, path: String },
    #[error("DNS solver {solver} is used by certificate(s) {certs}: change their --dns first (`certvault issue NAME … --dns OTHER`)")]
    InUse { solver: String, certs: String },
    #[error("no DNS solver for {name}: configured zones are [{zones}] and there is no default; add one with --dns <zone>=<solver> or --dns <solver>")]
    NoSolverFor { name: String, zones: String },
    #[error("cannot place the record {name} (solver {solver}, resolver {resolvers})")]
    Placement {
        name: String,
        solver: String,
        resolvers: String,
        #[source]
        source: Box<zone::Error>,
    },
    #[error("DNS propagation check failed (solver {solver}, zone {zone})")]
    NotPropagated {
        solver: String,
        zone: String,
        #[source]
        source: Box<propagation::NotPropagated>,
    },
    /// A cleanup that would remove something certvault cannot prove it presented: the
    /// provider's record behind the handle is not that TXT value at that name, or a
    /// leftover from a lease names what the certificate's spec does not. Nothing was
    /// deleted.
    #[error("DNS solver {solver}: refused to remove {name}: {reason}; nothing was deleted")]
    NotOurs {
        solver: String,
        name: String,
        reason: String,
    },
}

fn tail(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", stderr.trim())
    }
}

fn auth_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => " (check the solver's API credentials and their permissions)",
        429 => " (rate limited; try again later)",
        _ => "",
    }
}
