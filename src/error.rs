//! The crate error: the layer errors plus the domain cases a user can act on.

use std::process::ExitCode;

use crate::model::{CertName, InvalidInput};
use crate::policy::Need;
use crate::{acme, store};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Acme(#[from] acme::Error),
    #[error(transparent)]
    Dns(#[from] crate::dns::Error),
    #[error("no ACME account in Vault at {path}; run `certvault init --directory <URL> --email <addr> --agree-tos` first")]
    NoAccount { path: String },
    #[error("an ACME account for {stored} is already stored at {path}; to use {wanted}, pass --account <name> to keep both, or --force to replace it")]
    AccountExists {
        path: String,
        stored: String,
        wanted: String,
    },
    #[error("registering an ACME account needs --agree-tos: read the CA's terms of service first{}", match .terms { Some(url) => format!(" ({url})"), None => String::new() })]
    TermsNotAgreed { terms: Option<String> },
    #[error("no certificate named {} in Vault (looked at {}); `certvault list` shows the names", join_names(.names), .path)]
    UnknownCerts { names: Vec<CertName>, path: String },
    #[error("a DNS solver is already stored at {path}; pass --force to replace it")]
    SolverExists { path: String },
    #[error("{name} is locked by another certvault run ({holder}) until {}; that run renews its lease while it works: retry after that, or if that run is gone, `certvault unlock {name}`", crate::text::rfc3339(*.until))]
    Locked {
        name: CertName,
        holder: String,
        until: time::OffsetDateTime,
    },
    #[error("{name}: this run lost its lock lease (another run took it over, or an admin broke it with `certvault unlock`); it stopped before writing")]
    LeaseLost { name: CertName },
    #[error("{path} was changed by another run since this run read it; nothing was ordered, run again to see its new state")]
    ChangedMeanwhile { name: CertName, path: String },
    #[error("{name}: the certificate is stored, but its spec could not be written to {path}; run the same `certvault issue` again to store it (renew needs it)")]
    SpecNotSaved {
        name: CertName,
        path: String,
        #[source]
        source: Box<Error>,
    },
    #[error("{name} was stored by an older certvault, with its spec inside the certificate record, where a renew token can change it; it is not renewed until an admin moves the spec to {path}: run `certvault migrate` with the admin policy")]
    NotMigrated { name: CertName, path: String },
    #[error("{name}: the CA issued certificate serial {serial} ({url}), but it could not be stored in Vault: the old certificate stays, and the new one's private key was only in this run's memory, so it is never used (revoke it by serial if your policy asks); the next run orders a new one")]
    NotStored {
        name: CertName,
        serial: String,
        url: String,
        #[source]
        source: Box<Error>,
    },
    #[error("{name}: the CA issued certificate serial {serial} ({url}) and this run sent it to Vault, which did not confirm the write: it may be stored (`certvault show {name}` tells which); the next run reads the record again and makes its status agree")]
    NotConfirmed {
        name: CertName,
        serial: String,
        url: String,
        #[source]
        source: Box<Error>,
    },
    #[error("--renew-before {renew_before} can never be satisfied: the certificate lives {lifetime}; {}", match .stored { Some(path) => format!("the certificate is stored at {path} and renews by the default rule (1/3 of its lifetime left); run issue again with a shorter --renew-before to change that"), None => "nothing was changed; use a shorter --renew-before (or none: the default renews when 1/3 of the lifetime is left)".to_string() })]
    RenewBeforeTooLong {
        renew_before: String,
        lifetime: String,
        /// Where the new certificate was stored, when it was issued before the lifetime was known.
        stored: Option<String>,
    },
    #[error("this would {what}; pass --yes to do it")]
    NeedsYes { what: String },
    #[error("the CA at {directory} offers no profile {profile:?}; {}", if .offered.is_empty() { "it offers no profiles at all: issue without --profile".to_string() } else { format!("it offers: {}", .offered.join(", ")) })]
    UnknownProfile {
        profile: String,
        directory: String,
        offered: Vec<String>,
    },
    #[error("{name} has no certificate that could be revoked: {reason}")]
    NotRevocable { name: CertName, reason: String },
    #[error("{count} names given; a certificate holds at most {max}: split them over several certificates")]
    TooManyNames { count: usize, max: usize },
    #[error("no domain given: pass at least one -d <name>")]
    NoDomains,
    #[error(transparent)]
    Deploy(#[from] crate::hook::DeployFailed),
    /// An order's account was not connected before the order (a bug if it happens).
    #[error("account not loaded")]
    AccountNotLoaded,
    #[error("the Vault token cannot do what `certvault {command}` needs; nothing was done. Missing: {}. Attach that policy to the token's role (print it with `certvault policy <role>`)", join_needs(.missing))]
    MissingCapabilities {
        command: &'static str,
        missing: Vec<Need>,
    },
    #[error("interrupted by {signal}; work in progress was abandoned (certificate records are only written whole)")]
    Interrupted { signal: &'static str },
    #[error("`certvault policy reader` needs the certificate NAME it may read")]
    ReaderNeedsName,
    #[error("account key {path}: {reason}")]
    AccountKey { path: String, reason: String },
    #[error("the key of ACME account {url} was changed at the CA, but the new key could not be stored at {path} ({cause}); {recovery}")]
    AdoptedNotStored {
        url: String,
        path: String,
        cause: String,
        recovery: String,
    },
    #[error("cannot import from {source_name}: {reason}")]
    ImportSource { source_name: String, reason: String },
}

fn join_needs(n: &[Need]) -> String {
    n.iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

fn join_names(n: &[CertName]) -> String {
    n.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
}

impl Error {
    /// 2 for input the user can correct, 1 for everything else.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Invalid(_)
            | Error::NoAccount { .. }
            | Error::AccountExists { .. }
            | Error::TermsNotAgreed { .. }
            | Error::UnknownCerts { .. }
            | Error::NoDomains
            | Error::UnknownProfile { .. }
            | Error::TooManyNames { .. }
            | Error::NeedsYes { .. }
            | Error::RenewBeforeTooLong { .. }
            | Error::SolverExists { .. }
            | Error::Dns(crate::dns::Error::UnknownSolver { .. })
            | Error::ReaderNeedsName
            | Error::AccountKey { .. }
            | Error::ImportSource { .. } => ExitCode::from(2),
            Error::Store(store::Error::Vault(e)) if e.is_missing_setting() => ExitCode::from(2),
            _ => ExitCode::from(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::chain;

    /// Only a token certvault logged in for is revoked: the message must not claim it for a
    /// caller's token (it cannot tell which it was).
    #[test]
    fn the_interrupted_message_claims_no_revocation() {
        let text = Error::Interrupted { signal: "SIGTERM" }.to_string();
        assert!(!text.contains("revoked"), "{text}");
        assert!(text.contains("interrupted by SIGTERM"), "{text}");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Text(&'static str, #[source] Option<Box<Text>>);

    /// A cause whose text already appeared earlier in the line is still printed.
    #[test]
    fn every_cause_is_printed_once() {
        let inner = Text("failed", None);
        let outer = Text("the order failed", Some(Box::new(inner)));
        assert_eq!(chain(&outer), "the order failed: failed");
    }

    /// instant-acme prints its `#[from]` source inline: it is not printed twice.
    #[test]
    fn instant_acme_sources_shown_inline_are_not_repeated() {
        let json = serde_json::from_str::<u8>("x").unwrap_err();
        let text = json.to_string();
        let e = crate::acme::Error::Protocol {
            op: "new order",
            source: instant_acme::Error::Json(json),
        };
        let line = chain(&e);
        assert_eq!(line.matches(&text).count(), 1, "{line}");
        assert!(
            line.ends_with(&format!("failed to (de)serialize JSON: {text}")),
            "{line}"
        );
    }
}
