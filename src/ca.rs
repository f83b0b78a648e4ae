//! The CA beyond ordering: renewal information (RFC 9773), profiles, revocation, account key
//! rollover and deactivation, and telling a CA that is busy or down from one that refused.

use instant_acme::{Account, CertificateIdentifier, RevocationReason, RevocationRequest};
use time::{Duration, OffsetDateTime};

use crate::acme::Error;

/// The ARI identifier of a PEM certificate (`base64url(AKI keyIdentifier).base64url(serial)`,
/// RFC 9773 §4.1); `None` when it has no authority key identifier.
pub fn cert_id(cert_pem: &str) -> Option<String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).ok()?;
    let der = rustls::pki_types::CertificateDer::from(pem.contents);
    CertificateIdentifier::try_from(&der)
        .ok()
        .map(|id| id.to_string())
}

/// A renewal window as the CA suggests it.
#[derive(Debug, Clone)]
pub struct Suggested {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    pub explanation_url: Option<String>,
    pub retry_after: Duration,
}

/// Why a renewal information request gave nothing usable.
#[derive(Debug)]
pub enum FetchError {
    /// The directory has no `renewalInfo`: the lifetime rule applies, silently.
    Unsupported,
    /// Worth retrying soon (timeout, no connection, 5xx): exponential backoff.
    Temporary(FetchFailure),
    /// A 4xx, an invalid window, no Retry-After: six hours.
    LongTerm(FetchFailure),
}

/// What went wrong with a renewal information request (its text is kept in the record's
/// renewal information).
#[derive(Debug, thiserror::Error)]
pub enum FetchFailure {
    #[error("certificate without an ARI identifier")]
    NoIdentifier,
    #[error("invalid window: end {} is not after start {}", crate::text::rfc3339(*.end), crate::text::rfc3339(*.start))]
    InvalidWindow {
        start: OffsetDateTime,
        end: OffsetDateTime,
    },
    #[error("{}", crate::acme::problem_summary(.0))]
    Refused(instant_acme::Problem),
    #[error("{}", crate::text::chain(.0))]
    Request(instant_acme::Error),
}

/// Ask the CA for the renewal window of the certificate `id` (a plain GET).
pub async fn renewal_info(account: &Account, id: &str) -> Result<Suggested, FetchError> {
    let (aki, serial) = id
        .split_once('.')
        .ok_or(FetchError::LongTerm(FetchFailure::NoIdentifier))?;
    let id = CertificateIdentifier {
        authority_key_identifier: aki.into(),
        serial: serial.into(),
    };
    match account.renewal_info(&id).await {
        Ok((info, retry)) => {
            let w = info.suggested_window;
            if w.end <= w.start {
                return Err(FetchError::LongTerm(FetchFailure::InvalidWindow {
                    start: w.start,
                    end: w.end,
                }));
            }
            Ok(Suggested {
                start: w.start,
                end: w.end,
                explanation_url: info.explanation_url,
                retry_after: Duration::try_from(retry).unwrap_or(Duration::ZERO),
            })
        }
        Err(instant_acme::Error::Unsupported(_)) => Err(FetchError::Unsupported),
        Err(instant_acme::Error::Api(p)) if p.status.is_some_and(|s| s >= 500) => {
            Err(FetchError::Temporary(FetchFailure::Refused(p)))
        }
        Err(instant_acme::Error::Api(p)) => Err(FetchError::LongTerm(FetchFailure::Refused(p))),
        Err(e @ (instant_acme::Error::Other(_) | instant_acme::Error::Http(_))) => {
            Err(FetchError::Temporary(FetchFailure::Request(e)))
        }
        Err(e) => Err(FetchError::LongTerm(FetchFailure::Request(e))),
    }
}

/// The profiles the CA's directory offers (`meta.profiles`), by name.
pub fn profiles(account: &Account) -> Vec<String> {
    let mut names: Vec<String> = account.profiles().map(|p| p.name.to_string()).collect();
    names.sort();
    names
}

/// What went wrong with an order, as far as pausing the CA or retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    /// 429 or `rateLimited`: stop ordering from this CA for as long as it asks.
    RateLimited,
    /// A timeout, no connection or a 5xx: after a few in a row the CA is paused for the run.
    Unavailable,
    /// `alreadyReplaced` (RFC 9773 §5): order once more without `replaces`.
    AlreadyReplaced,
    /// The CA accepted `replaces` but did not reflect it in the order (RFC 9773 §5 says it
    /// must): order once more without `replaces`.
    ReplacesIgnored,
    Other,
}

/// Classify an order's ACME error.
pub fn trouble(e: &Error) -> Trouble {
    let problem_type = |p: &instant_acme::Problem| {
        p.r#type
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches("urn:ietf:params:acme:error:")
            .to_string()
    };
    match e {
        Error::Refused { problem, .. } => {
            let t = problem_type(problem);
            if t == "rateLimited" || problem.status == Some(429) {
                Trouble::RateLimited
            } else if t == "alreadyReplaced" {
                Trouble::AlreadyReplaced
            } else if problem.status.is_some_and(|s| s >= 500) {
                Trouble::Unavailable
            } else {
                Trouble::Other
            }
        }
        Error::Protocol { source, .. } | Error::Directory { source, .. } => match source {
            // instant-acme reports an order that does not reflect `replaces` only as text
            // (`Error::Other` around a string, no kind of its own): matched by that text.
            instant_acme::Error::Other(inner)
                if inner.to_string().contains("replaces field mismatch") =>
            {
                Trouble::ReplacesIgnored
            }
            instant_acme::Error::Other(inner) => match inner.downcast_ref::<reqwest::Error>() {
                Some(r) if r.is_timeout() || r.is_connect() || r.is_request() => {
                    Trouble::Unavailable
                }
                _ => Trouble::Other,
            },
            instant_acme::Error::Api(p) if p.status == Some(429) => Trouble::RateLimited,
            instant_acme::Error::Api(p) if p.status.is_some_and(|s| s >= 500) => {
                Trouble::Unavailable
            }
            instant_acme::Error::Timeout(_) => Trouble::Unavailable,
            _ => Trouble::Other,
        },
        _ => Trouble::Other,
    }
}

fn reason_code(name: &str) -> Option<RevocationReason> {
    Some(match name {
        "unspecified" => RevocationReason::Unspecified,
        "keyCompromise" => RevocationReason::KeyCompromise,
        "caCompromise" => RevocationReason::CaCompromise,
        "affiliationChanged" => RevocationReason::AffiliationChanged,
        "superseded" => RevocationReason::Superseded,
        "cessationOfOperation" => RevocationReason::CessationOfOperation,
        "certificateHold" => RevocationReason::CertificateHold,
        "privilegeWithdrawn" => RevocationReason::PrivilegeWithdrawn,
        "aaCompromise" => RevocationReason::AaCompromise,
        _ => return None,
    })
}

/// Whether `name` is a reason `revoke` accepts.
pub fn valid_reason(name: &str) -> bool {
    reason_code(name).is_some()
}

/// Revoke a PEM certificate with the account that ordered it.
pub async fn revoke(
    account: &Account,
    directory: &str,
    cert_pem: &str,
    reason: Option<&str>,
) -> Result<(), Error> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|e| Error::Certificate(crate::x509::Invalid(format!("PEM: {e}"))))?;
    let der = rustls::pki_types::CertificateDer::from(pem.contents);
    let request = RevocationRequest {
        certificate: &der,
        reason: reason.and_then(reason_code),
    };
    account
        .revoke(&request)
        .await
        .map_err(|e| crate::acme::refused_public("the revocation", directory, e))
}

/// RFC 8555 §7.3.5 key change: the new credentials (to be stored with check-and-set).
pub async fn rollover(account: &mut Account, directory: &str) -> Result<serde_json::Value, Error> {
    let creds = account
        .update_key()
        .await
        .map_err(|e| crate::acme::refused_public("the account key change", directory, e))?;
    serde_json::to_value(&creds).map_err(|e| Error::Protocol {
        op: "serialize account",
        source: instant_acme::Error::Json(e),
    })
}

/// RFC 8555 §7.3.6: the CA stops accepting the account.
pub async fn deactivate(account: Account, directory: &str) -> Result<(), Error> {
    account
        .deactivate()
        .await
        .map_err(|e| crate::acme::refused_public("the account deactivation", directory, e))
}
