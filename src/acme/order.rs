//! One order: DNS-01 challenges presented together, validation, finalization.

use std::time::Duration;

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewOrder, OrderStatus, RetryPolicy,
};
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::dns;
use crate::model::{Issued, KeyType, Secret, Spec};
use crate::x509;

use super::*;

/// How long to wait for the CA.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub validation: Duration,
    pub issuance: Duration,
}

/// How this one order differs from a plain new order.
#[derive(Default)]
pub struct OrderOptions {
    /// The ARI identifier of the certificate this order replaces (RFC 9773 §5).
    pub replaces: Option<String>,
    /// The private key to keep (`reuse_key`), PEM; `None`: a new key.
    pub key: Option<Secret>,
}

/// What an order needs besides the account and the spec.
pub struct Env<'a> {
    pub timeouts: Timeouts,
    pub solvers: &'a dns::Solvers<'a>,
    /// Becomes `true` on SIGTERM/SIGINT: stop, clean up, report.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Set just before the CA is asked to issue (finalize): from then on the certificate
    /// may exist, and the order must run to its end and be stored or reported with its
    /// serial, whatever happens to the lock lease meanwhile.
    pub committed: &'a std::sync::atomic::AtomicBool,
}

/// Polling an order: quick polls first (Pebble and Let's Encrypt usually answer within a
/// second), from 50 ms growing by 1.5x for a few seconds, then every 2 s until the deadline.
/// Each stretch is an instant-acme [`RetryPolicy`], so a `Retry-After` from the CA is
/// honoured: one that lies past the stretch is waited for here, and one past the deadline
/// ends the wait as a timeout.
const FIRST_POLL: Duration = Duration::from_millis(50);
const QUICK_POLLS: Duration = Duration::from_secs(5);
const STEADY_POLL: Duration = Duration::from_secs(2);

/// The policy for the next stretch of polling that started at `started`; `None` once too
/// little time is left before `deadline` for another poll.
fn next_policy(started: Instant, deadline: Instant) -> Option<RetryPolicy> {
    let now = Instant::now();
    let left = deadline.checked_duration_since(now)?;
    let quick_end = started + QUICK_POLLS;
    if now < quick_end {
        let stretch = (quick_end - now).min(left);
        Some(
            RetryPolicy::new()
                .initial_delay(FIRST_POLL)
                .backoff(1.5)
                .timeout(stretch),
        )
    } else if left > STEADY_POLL {
        Some(
            RetryPolicy::new()
                .initial_delay(STEADY_POLL)
                .backoff(1.0)
                .timeout(left),
        )
    } else {
        None
    }
}

/// Poll with `$step` (given the `RetryPolicy` of each stretch) until it answers or `$timeout`
/// passes: the end of a stretch starts the next one, and a `badNonce` (after instant-acme's
/// own attempts) polls again, at most [`NONCE_RETRIES`] times, within the same deadline.
macro_rules! poll_until {
    ($timeout:expr, |$policy:ident| $step:expr) => {{
        let started = Instant::now();
        let deadline = started + $timeout;
        let mut nonces = NONCE_RETRIES;
        loop {
            let Some($policy) = next_policy(started, deadline) else {
                break Err(instant_acme::Error::Timeout(None));
            };
            match $step {
                Err(instant_acme::Error::Timeout(None)) => continue,
                // A Retry-After past this stretch but before the deadline: wait for it, then
                // go on polling (one past the deadline ends the wait below, as a timeout).
                Err(instant_acme::Error::Timeout(Some(at))) if Instant::from_std(at) < deadline => {
                    tokio::time::sleep_until(Instant::from_std(at)).await;
                }
                Err(e) if nonces > 0 && is_bad_nonce(&e) => {
                    nonces -= 1;
                    tracing::debug!("badNonce from the CA while polling; polling again");
                }
                other => break other,
            }
        }
    }};
}

/// An instant-acme error of step `op` as ours.
pub fn refused_public(op: &'static str, directory: &str, e: instant_acme::Error) -> Error {
    refused(op, directory, e)
}

pub(super) fn refused(op: &'static str, directory: &str, e: instant_acme::Error) -> Error {
    match e {
        instant_acme::Error::Api(p) if is_account_unknown(&p) => Error::AccountUnknown {
            directory: directory.to_string(),
        },
        instant_acme::Error::Api(problem) => Error::Refused { op, problem },
        source => Error::Protocol { op, source },
    }
}

/// Obtain a certificate for `spec`: order, present every DNS-01 challenge, validate them
/// together, clean up (always), finalize with a new key, download the chain. Also returns
/// the certificate's URL at the CA (where the account can download it again).
pub async fn obtain(
    account: &Account,
    directory: &str,
    spec: &Spec,
    options: &OrderOptions,
    env: &Env<'_>,
    now: impl Fn() -> OffsetDateTime,
) -> Result<(Issued, String), Error> {
    let timeouts = env.timeouts;
    // After SIGTERM/SIGINT no new order is started (it would count against rate limits).
    if *env.shutdown.borrow() {
        return Err(Error::Interrupted {
            cleanup_failed: None,
        });
    }
    let identifiers: Vec<Identifier> = spec
        .domains
        .iter()
        .map(|d| Identifier::Dns(d.as_str().to_string()))
        .collect();
    let mut new_order = NewOrder::new(&identifiers);
    if let Some(profile) = &spec.profile {
        new_order = new_order.profile(profile);
    }
    if let Some((aki, serial)) = options.replaces.as_deref().and_then(|r| r.split_once('.')) {
        new_order = new_order.replaces(instant_acme::CertificateIdentifier {
            authority_key_identifier: aki.into(),
            serial: serial.into(),
        });
    }
    let mut order = nonce_retry!(account.new_order(&new_order).await)
        .map_err(|e| refused("the new order", directory, e))?;

    // The pending DNS-01 challenges (authorizations the CA already holds as valid need
    // nothing).
    let mut pending = Vec::new();
    for (domain, value) in nonce_retry!(pending_challenges(&mut order).await)
        .map_err(|e| refused("fetching an authorization", directory, e))?
    {
        match value {
            Some(value) => pending.push((domain, value)),
            None => return Err(Error::NoDnsChallenge { domain }),
        }
    }

    let mut session = dns::Session::new(env.solvers, spec, pending.len());
    let work = async {
        // Present every challenge first, wait until all are visible, then validate together.
        for (domain, value) in &pending {
            session.present(domain, value.clone()).await?;
        }
        session.wait().await?;
        validate(&mut order, directory, env.timeouts).await
    };
    let mut shutdown = env.shutdown.clone();
    let mut result = tokio::select! {
        r = work => r,
        _ = async move {
            if shutdown.wait_for(|stop| *stop).await.is_err() {
                std::future::pending::<()>().await;
            }
        } => Err(Error::Interrupted { cleanup_failed: None }),
    };
    // Cleanup always runs, also after a failure or a signal; its error is reported only if
    // the order itself succeeded.
    let cleanup = session.cleanup().await;
    if let (Err(Error::Interrupted { cleanup_failed }), false) = (&mut result, cleanup.is_empty()) {
        *cleanup_failed = Some(
            cleanup
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    for e in cleanup {
        if result.is_ok() {
            result = Err(e.into());
        }
    }
    result?;

    let key_type = spec.key_type;
    let kept = options.key.as_ref().and_then(|pem| {
        rcgen::KeyPair::from_pem(pem.expose())
            .inspect_err(|_| {
                tracing::warn!(
                    "the kept private key (--reuse-key) does not parse; ordering with a new key"
                );
            })
            .ok()
    });
    let key = match kept {
        Some(key) => key,
        None => tokio::task::spawn_blocking(move || generate_key(key_type))
            .await
            .expect("key generation does not panic")?,
    };
    let csr = csr(spec, &key).map_err(|source| Error::Key { key_type, source })?;
    env.committed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    nonce_retry!(order.finalize_csr(&csr).await)
        .map_err(|e| refused("finalizing the order", directory, e))?;
    // Look once at once (a CA often issues within the finalize request), then poll.
    let pem = match nonce_retry!(order.refresh().await).map(|s| s.status) {
        Ok(OrderStatus::Valid) => nonce_retry!(order.certificate().await)
            .and_then(|pem| pem.ok_or(instant_acme::Error::Str("no certificate"))),
        _ => poll_until!(timeouts.issuance, |policy| order
            .poll_certificate(&policy)
            .await),
    }
    .map_err(|e| match e {
        instant_acme::Error::Timeout(_) => Error::Timeout {
            wanted: "valid",
            seconds: timeouts.issuance.as_secs(),
            status: "processing".into(),
        },
        // The order ended without a certificate (invalid after finalizing).
        instant_acme::Error::Str(_) => Error::Timeout {
            wanted: "valid",
            seconds: timeouts.issuance.as_secs(),
            status: "not valid".into(),
        },
        e => refused("downloading the certificate", directory, e),
    })?;
    let url = order
        .state()
        .certificate
        .clone()
        .unwrap_or_else(|| order.url().to_string());
    let chain = x509::split_chain(&pem)?;
    let issued = Issued {
        cert: chain.cert,
        chain: chain.chain,
        fullchain: chain.fullchain,
        privkey: Secret::new(key.serialize_pem()),
        not_before: chain.not_before,
        not_after: chain.not_after,
        serial: chain.serial,
        issued_at: now(),
    };
    Ok((issued, url))
}

/// Each pending authorization's identifier and DNS-01 value (`None`: no dns-01 offered).
pub(super) async fn pending_challenges(
    order: &mut instant_acme::Order,
) -> Result<Vec<(String, Option<String>)>, instant_acme::Error> {
    let mut out = Vec::new();
    let mut authzs = order.authorizations();
    while let Some(authz) = authzs.next().await {
        let mut authz = authz?;
        if authz.status != AuthorizationStatus::Pending {
            continue;
        }
        let domain = match &authz.identifier().identifier {
            Identifier::Dns(d) => d.clone(),
            other => format!("{other:?}"),
        };
        let value = authz
            .challenge(ChallengeType::Dns01)
            .map(|c| c.key_authorization().dns_value());
        out.push((domain, value));
    }
    Ok(out)
}

/// Tell the CA every challenge is ready, then wait for the order to become ready.
pub(super) async fn validate(
    order: &mut instant_acme::Order,
    directory: &str,
    timeouts: Timeouts,
) -> Result<(), Error> {
    // A CA may validate within the request that starts validation and answer its failure
    // there (Pebble does at times): that is a failed validation like any other.
    let mut refused_at_start = None;
    {
        let mut authzs = order.authorizations();
        while let Some(authz) = authzs.next().await {
            let mut authz =
                authz.map_err(|e| refused("fetching an authorization", directory, e))?;
            if authz.status != AuthorizationStatus::Pending {
                continue;
            }
            if let Some(mut ch) = authz.challenge(ChallengeType::Dns01) {
                match nonce_retry!(ch.set_ready().await) {
                    Ok(()) => {}
                    Err(instant_acme::Error::Api(p)) if is_validation_problem(&p) => {
                        refused_at_start = Some(p);
                        break;
                    }
                    Err(e) => return Err(refused("starting validation", directory, e)),
                }
            }
        }
    }
    if let Some(p) = refused_at_start {
        let mut failures = failures(order).await;
        if failures.is_empty() {
            failures = vec![problem_text(&p)];
        }
        return Err(Error::Validation { failures });
    }
    // Look once at once (a CA may have validated already), then poll.
    let polled = match nonce_retry!(order.refresh().await) {
        Ok(state) if state.error.is_none() && state.status == OrderStatus::Ready => {
            Ok(OrderStatus::Ready)
        }
        _ => poll_until!(timeouts.validation, |policy| order
            .poll_ready(&policy)
            .await),
    };
    let status = match polled {
        Ok(s) => s,
        Err(instant_acme::Error::Timeout(_)) => {
            return Err(Error::Timeout {
                wanted: "ready",
                seconds: timeouts.validation.as_secs(),
                status: "pending".into(),
            })
        }
        // An invalid order comes back as the order's problem: name each failed record.
        Err(instant_acme::Error::Api(p)) if !is_account_unknown(&p) => {
            let mut failures = failures(order).await;
            if failures.is_empty() {
                failures = vec![problem_text(&p)];
            }
            return Err(Error::Validation { failures });
        }
        Err(e) => return Err(refused("validation", directory, e)),
    };
    match status {
        OrderStatus::Ready | OrderStatus::Valid | OrderStatus::Processing => Ok(()),
        OrderStatus::Invalid => {
            let mut failures = failures(order).await;
            if failures.is_empty() {
                failures.push("the order became invalid".into());
            }
            Err(Error::Validation { failures })
        }
        OrderStatus::Pending => Err(Error::Timeout {
            wanted: "ready",
            seconds: timeouts.validation.as_secs(),
            status: "pending".into(),
        }),
    }
}

/// The problem types that report a failed validation (RFC 8555 §6.7), not a refused request.
const VALIDATION_PROBLEMS: [&str; 6] = [
    "unauthorized",
    "incorrectResponse",
    "dns",
    "caa",
    "connection",
    "tls",
];

fn is_validation_problem(p: &instant_acme::Problem) -> bool {
    p.r#type
        .as_deref()
        .and_then(|t| t.strip_prefix("urn:ietf:params:acme:error:"))
        .is_some_and(|kind| VALIDATION_PROBLEMS.contains(&kind))
}

/// What the CA said about each failed challenge (empty when it said nothing).
pub(super) async fn failures(order: &mut instant_acme::Order) -> Vec<String> {
    let mut out = Vec::new();
    let mut authzs = order.authorizations();
    while let Some(Ok(mut authz)) = authzs.next().await {
        let Ok(state) = authz.refresh().await else {
            continue;
        };
        if state.status == AuthorizationStatus::Valid {
            continue;
        }
        let name = match &state.identifier().identifier {
            Identifier::Dns(d) => format!("_acme-challenge.{d}"),
            other => format!("{other:?}"),
        };
        let detail = state
            .challenges
            .iter()
            .find(|c| c.r#type == ChallengeType::Dns01)
            .and_then(|c| c.error.as_ref())
            .map(problem_text)
            .unwrap_or_else(|| format!("authorization {:?}", state.status));
        let line = format!("{name}: {detail}");
        if !out.contains(&line) {
            out.push(line);
        }
    }
    out
}

pub(super) fn generate_key(key_type: KeyType) -> Result<rcgen::KeyPair, Error> {
    use rcgen::{
        KeyPair, RsaKeySize, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_RSA_SHA256,
    };
    let key = match key_type {
        KeyType::EcdsaP256 => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256),
        KeyType::EcdsaP384 => KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384),
        KeyType::Rsa2048 => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048),
        KeyType::Rsa3072 => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_3072),
        KeyType::Rsa4096 => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_4096),
    };
    key.map_err(|source| Error::Key { key_type, source })
}

pub(super) fn csr(spec: &Spec, key: &rcgen::KeyPair) -> Result<Vec<u8>, rcgen::Error> {
    let names: Vec<String> = spec.domains.iter().map(|d| d.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names.clone())?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, names[0].clone());
    params.distinguished_name = dn;
    Ok(params.serialize_request(key)?.der().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_type_generates_and_matches_its_type() {
        for kt in [KeyType::EcdsaP256, KeyType::EcdsaP384, KeyType::Rsa2048] {
            let key = generate_key(kt).unwrap();
            let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
            assert!(!spki.is_empty());
            assert!(key
                .serialize_pem()
                .starts_with("-----BEGIN PRIVATE KEY-----"));
        }
    }

    /// Failed validations are told from refused requests by the problem type.
    #[test]
    fn validation_problems_are_told_from_refusals() {
        let problem = |kind: &str| -> instant_acme::Problem {
            serde_json::from_value(serde_json::json!({
                "type": format!("urn:ietf:params:acme:error:{kind}"), "detail": "x", "status": 403
            }))
            .unwrap()
        };
        for kind in VALIDATION_PROBLEMS {
            assert!(is_validation_problem(&problem(kind)), "{kind}");
        }
        for kind in [
            "rateLimited",
            "serverInternal",
            "badNonce",
            "accountDoesNotExist",
            "malformed",
        ] {
            assert!(!is_validation_problem(&problem(kind)), "{kind}");
        }
    }
}
