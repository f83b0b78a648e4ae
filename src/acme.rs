//! The ACME side: accounts and the DNS-01 order flow, on instant-acme.
//!
//! instant-acme talks HTTP through the project's one reqwest client (rustls), so a private
//! CA's certificate (`--acme-ca-cert`) and proxies work the same for ACME as for the rest.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType,
    ExternalAccountKey, HttpClient, Identifier, NewAccount, NewOrder, OrderStatus, Problem,
};
use time::OffsetDateTime;

use crate::dns;
use crate::model::{Issued, KeyType, Secret, Spec};
use crate::x509;

/// How many more times an ACME step is repeated after instant-acme's own three attempts all
/// got `badNonce` (Pebble rejects 5 % of nonces by default; busy CAs do it too). Every step
/// repeated here is safe to send again.
const NONCE_RETRIES: u32 = 8;

fn is_bad_nonce(e: &instant_acme::Error) -> bool {
    matches!(e, instant_acme::Error::Api(p)
        if p.r#type.as_deref().is_some_and(|t| t.ends_with(":badNonce")))
}

/// Evaluate an ACME step again while it fails with `badNonce` (bounded).
macro_rules! nonce_retry {
    ($step:expr) => {{
        let mut left = NONCE_RETRIES;
        loop {
            match $step {
                Err(e) if left > 0 && is_bad_nonce(&e) => {
                    left -= 1;
                    tracing::debug!("badNonce from the CA; sending the request again");
                }
                other => break other,
            }
        }
    }};
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the ACME CA certificate {path:?}")]
    CaCert {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the ACME CA certificate {path:?} holds no PEM certificate")]
    CaCertEmpty { path: String },
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error(
        "cannot reach the ACME directory {url}; check the URL, the network and --acme-ca-cert"
    )]
    Directory {
        url: String,
        #[source]
        source: instant_acme::Error,
    },
    #[error("the CA at {directory} knows no account for this key (asked with onlyReturnExisting); nothing was registered. Check the directory URL, or register a new account with `certvault init` without --account-key")]
    AccountKeyUnknown { directory: String },
    #[error("the ACME account stored in Vault is not known to the CA at {directory} (deactivated, or the CA was reset); run `certvault init --force` to register a new account")]
    AccountUnknown { directory: String },
    #[error("the CA refused {op}: {}", problem_text(.problem))]
    Refused { op: &'static str, problem: Problem },
    #[error("ACME {op} failed")]
    Protocol {
        op: &'static str,
        #[source]
        source: instant_acme::Error,
    },
    #[error("the ACME account stored in Vault has unreadable credentials ({reason}); run `certvault init --force` to register a new account, or restore the document from KV history")]
    BadCredentials { reason: String },
    #[error("the CA offers no dns-01 challenge for {domain}")]
    NoDnsChallenge { domain: String },
    #[error("DNS-01 validation failed for {}", .failures.join("; "))]
    Validation { failures: Vec<String> },
    #[error("the order did not become {wanted} within {seconds}s (last status: {status})")]
    Timeout {
        wanted: &'static str,
        seconds: u64,
        status: String,
    },
    #[error(transparent)]
    Dns(#[from] dns::Error),
    #[error("interrupted by a signal; the DNS-01 records were cleaned up")]
    Interrupted,
    #[error("cannot generate a {key_type} key")]
    Key {
        key_type: KeyType,
        #[source]
        source: rcgen::Error,
    },
    #[error("the CA returned an unusable certificate")]
    Certificate(#[from] x509::Invalid),
    #[error("invalid EAB HMAC key: it must be base64url")]
    EabKey,
}

/// A CA problem as one line: detail (type); subproblems.
pub fn problem_summary(p: &Problem) -> String {
    problem_text(p)
}

fn problem_text(p: &Problem) -> String {
    let mut s = p.detail.clone().unwrap_or_else(|| "no detail".into());
    if let Some(t) = &p.r#type {
        s.push_str(&format!(
            " ({})",
            t.trim_start_matches("urn:ietf:params:acme:error:")
        ));
    }
    for sub in &p.subproblems {
        if let Some(d) = &sub.detail {
            s.push_str(&format!("; {d}"));
        }
    }
    s
}

fn is_account_unknown(p: &Problem) -> bool {
    p.r#type
        .as_deref()
        .is_some_and(|t| t.ends_with(":accountDoesNotExist"))
}

/// The project's HTTP client for ACME and DNS APIs: rustls, system roots plus `ca_cert`.
pub fn http_client(ca_cert: Option<&Path>) -> Result<reqwest::Client, Error> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("certvault/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .tcp_nodelay(true);
    if let Some(path) = ca_cert {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|source| Error::CaCert {
            path: shown.clone(),
            source,
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or(Error::CaCertEmpty { path: shown })?;
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(Error::Client)
}

/// The Retry-After of the last 429 or 503 a CA answered (instant-acme drops the headers of
/// error responses), for pausing a rate-limiting CA as long as it asks.
pub type RetryHint = std::sync::Arc<std::sync::Mutex<Option<std::time::SystemTime>>>;

/// instant-acme's transport over our reqwest client.
struct Transport(reqwest::Client, RetryHint);

impl HttpClient for Transport {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let client = self.0.clone();
        let hint = self.1.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = match body.collect().await {
                Ok(c) => c.to_bytes(),
                Err(never) => match never {},
            };
            let rsp = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            if matches!(rsp.status().as_u16(), 429 | 503) {
                if let Some(at) = retry_after(rsp.headers()) {
                    if let Ok(mut h) = hint.lock() {
                        *h = Some(at);
                    }
                }
            }
            let mut out = http::Response::builder().status(rsp.status());
            if let Some(h) = out.headers_mut() {
                *h = rsp.headers().clone();
            }
            let bytes = rsp
                .bytes()
                .await
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            let rsp = out
                .body(http_body_util::Full::new(bytes))
                .map_err(instant_acme::Error::Http)?;
            Ok(BytesResponse::from(rsp))
        })
    }
}

/// A Retry-After header: seconds, or an HTTP date.
fn retry_after(headers: &http::HeaderMap) -> Option<std::time::SystemTime> {
    let v = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(std::time::SystemTime::now() + Duration::from_secs(secs.min(86_400 * 7)));
    }
    let t = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    Some(t.into())
}

pub(crate) fn builder(http: &reqwest::Client) -> instant_acme::AccountBuilder {
    builder_hinted(http, RetryHint::default())
}

fn builder_hinted(http: &reqwest::Client, hint: RetryHint) -> instant_acme::AccountBuilder {
    Account::builder_with_http(Box::new(Transport(http.clone(), hint)))
}

/// External account binding for CAs that require it (ZeroSSL, Google, ...).
pub struct Eab {
    pub kid: String,
    /// base64url HMAC key as the CA shows it.
    pub hmac: Secret,
}

/// Register a new account; returns its credentials (to be stored verbatim) and its URL.
pub async fn register(
    http: &reqwest::Client,
    directory: &str,
    contact: &[String],
    eab: Option<&Eab>,
) -> Result<(serde_json::Value, String), Error> {
    use base64::Engine;
    let contacts: Vec<String> = contact.iter().map(|c| format!("mailto:{c}")).collect();
    let contacts: Vec<&str> = contacts.iter().map(String::as_str).collect();
    let eab_key = match eab {
        Some(e) => {
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(e.hmac.expose().trim().trim_end_matches('='))
                .map_err(|_| Error::EabKey)?;
            Some(ExternalAccountKey::new(e.kid.clone(), &raw))
        }
        None => None,
    };
    let new_account = NewAccount {
        contact: &contacts,
        terms_of_service_agreed: true,
        only_return_existing: false,
    };
    let (account, creds) = nonce_retry!(
        builder(http)
            .create(&new_account, directory.to_string(), eab_key.as_ref())
            .await
    )
    .map_err(|e| match e {
        instant_acme::Error::Api(problem) => Error::Refused {
            op: "the account registration",
            problem,
        },
        source => Error::Directory {
            url: directory.to_string(),
            source,
        },
    })?;
    let value = serde_json::to_value(&creds).map_err(|e| Error::Protocol {
        op: "serialize account",
        source: instant_acme::Error::Json(e),
    })?;
    Ok((value, account.id().to_string()))
}

/// The terms-of-service URL the directory names (`meta.termsOfService`), if it can be read.
pub async fn terms_of_service(http: &reqwest::Client, directory: &str) -> Option<String> {
    let dir: serde_json::Value = http
        .get(directory)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    dir.get("meta")?
        .get("termsOfService")?
        .as_str()
        .map(str::to_string)
}

/// Why `url` cannot be an ACME directory URL (an absolute http(s) URL with a host).
pub fn check_url(url: &str) -> Result<(), &'static str> {
    let parsed = reqwest::Url::parse(url).map_err(|_| "is not a URL")?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err("must start with https:// (or http://)");
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("has no host");
    }
    Ok(())
}

/// Restore an account from stored credentials (fetches the CA's directory once).
pub async fn account(
    http: &reqwest::Client,
    directory: &str,
    credentials: serde_json::Value,
) -> Result<Account, Error> {
    account_hinted(http, directory, credentials, RetryHint::default()).await
}

/// [`account`], recording the Retry-After of rate-limited answers in `hint`.
pub async fn account_hinted(
    http: &reqwest::Client,
    directory: &str,
    credentials: serde_json::Value,
    hint: RetryHint,
) -> Result<Account, Error> {
    // The credentials hold the account's private key: no error may quote them.
    let bad = |reason: String| Error::BadCredentials { reason };
    let obj = credentials.as_object().ok_or_else(|| {
        bad("credentials must be a JSON object, not a string or other value".into())
    })?;
    if let Some(url) = obj.get("directory") {
        let url = url
            .as_str()
            .ok_or_else(|| bad("credentials.directory is not a string".into()))?;
        check_url(url).map_err(|why| bad(format!("credentials.directory {why}")))?;
    }
    let creds: AccountCredentials = serde_json::from_value(credentials)
        .map_err(|e| bad(crate::store::redact_quoted(&e.to_string())))?;
    builder_hinted(http, hint)
        .from_credentials(creds)
        .await
        .map_err(|source| Error::Directory {
            url: directory.to_string(),
            source,
        })
}

/// How long to wait for the CA.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub validation: Duration,
    pub issuance: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            validation: Duration::from_secs(300),
            issuance: Duration::from_secs(300),
        }
    }
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
}

/// Poll the order while its status is `busy`: short polls first (Pebble and Let's Encrypt
/// usually answer within a second), backing off by 1.5x up to 2 s, with a last check at the
/// deadline. An order error comes back as `Error::Api`, the deadline as `Error::Timeout`.
async fn wait_while(
    order: &mut instant_acme::Order,
    busy: OrderStatus,
    timeout: Duration,
) -> Result<OrderStatus, instant_acme::Error> {
    const FIRST: Duration = Duration::from_millis(50);
    const LONGEST: Duration = Duration::from_secs(2);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut delay = FIRST;
    loop {
        let state = nonce_retry!(order.refresh().await)?;
        if let Some(problem) = &state.error {
            return Err(instant_acme::Error::Api(problem.clone()));
        }
        if state.status != busy {
            return Ok(state.status);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(instant_acme::Error::Timeout(None));
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = delay.mul_f32(1.5).min(LONGEST);
    }
}

/// An instant-acme error of step `op` as ours.
pub fn refused_public(op: &'static str, directory: &str, e: instant_acme::Error) -> Error {
    refused(op, directory, e)
}

fn refused(op: &'static str, directory: &str, e: instant_acme::Error) -> Error {
    match e {
        instant_acme::Error::Api(p) if is_account_unknown(&p) => Error::AccountUnknown {
            directory: directory.to_string(),
        },
        instant_acme::Error::Api(problem) => Error::Refused { op, problem },
        source => Error::Protocol { op, source },
    }
}

/// Obtain a certificate for `spec`: order, present every DNS-01 challenge, validate them
/// together, clean up (always), finalize with a new key, download the chain.
pub async fn obtain(
    account: &Account,
    directory: &str,
    spec: &Spec,
    options: &OrderOptions,
    env: &Env<'_>,
    now: impl Fn() -> OffsetDateTime,
) -> Result<Issued, Error> {
    let timeouts = env.timeouts;
    // After SIGTERM/SIGINT no new order is started (it would count against rate limits).
    if *env.shutdown.borrow() {
        return Err(Error::Interrupted);
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
        } => Err(Error::Interrupted),
    };
    // Cleanup always runs, also after a failure or a signal; its error is reported only if
    // the order itself succeeded.
    for e in session.cleanup().await {
        if result.is_ok() {
            result = Err(e.into());
        }
    }
    result?;

    let key_type = spec.key_type;
    let kept = options
        .key
        .as_ref()
        .and_then(|pem| rcgen::KeyPair::from_pem(pem.expose()).ok());
    let key = match kept {
        Some(key) => key,
        None => tokio::task::spawn_blocking(move || generate_key(key_type))
            .await
            .expect("key generation does not panic")?,
    };
    let csr = csr(spec, &key).map_err(|source| Error::Key { key_type, source })?;
    nonce_retry!(order.finalize_csr(&csr).await)
        .map_err(|e| refused("finalizing the order", directory, e))?;
    let issued = async {
        wait_while(&mut order, OrderStatus::Processing, timeouts.issuance).await?;
        nonce_retry!(order.certificate().await)
    };
    let pem = issued
        .await
        .map_err(|e| match e {
            instant_acme::Error::Timeout(_) => Error::Timeout {
                wanted: "valid",
                seconds: timeouts.issuance.as_secs(),
                status: "processing".into(),
            },
            e => refused("downloading the certificate", directory, e),
        })?
        .ok_or(Error::Timeout {
            wanted: "valid",
            seconds: timeouts.issuance.as_secs(),
            status: "not valid".into(),
        })?;
    let chain = x509::split_chain(&pem)?;
    Ok(Issued {
        cert: chain.cert,
        chain: chain.chain,
        fullchain: chain.fullchain,
        privkey: Secret::new(key.serialize_pem()),
        not_before: chain.not_before,
        not_after: chain.not_after,
        serial: chain.serial,
        issued_at: now(),
    })
}

/// Each pending authorization's identifier and DNS-01 value (`None`: no dns-01 offered).
async fn pending_challenges(
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
async fn validate(
    order: &mut instant_acme::Order,
    directory: &str,
    timeouts: Timeouts,
) -> Result<(), Error> {
    {
        let mut authzs = order.authorizations();
        while let Some(authz) = authzs.next().await {
            let mut authz =
                authz.map_err(|e| refused("fetching an authorization", directory, e))?;
            if authz.status != AuthorizationStatus::Pending {
                continue;
            }
            if let Some(mut ch) = authz.challenge(ChallengeType::Dns01) {
                nonce_retry!(ch.set_ready().await)
                    .map_err(|e| refused("starting validation", directory, e))?;
            }
        }
    }
    let status = match wait_while(order, OrderStatus::Pending, timeouts.validation).await {
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
            if failures == ["the order became invalid"] {
                failures = vec![problem_text(&p)];
            }
            return Err(Error::Validation { failures });
        }
        Err(e) => return Err(refused("validation", directory, e)),
    };
    match status {
        OrderStatus::Ready | OrderStatus::Valid | OrderStatus::Processing => Ok(()),
        OrderStatus::Invalid => Err(Error::Validation {
            failures: failures(order).await,
        }),
        OrderStatus::Pending => Err(Error::Timeout {
            wanted: "ready",
            seconds: timeouts.validation.as_secs(),
            status: "pending".into(),
        }),
    }
}

/// What the CA said about each failed challenge.
async fn failures(order: &mut instant_acme::Order) -> Vec<String> {
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
    if out.is_empty() {
        out.push("the order became invalid".into());
    }
    out
}

fn generate_key(key_type: KeyType) -> Result<rcgen::KeyPair, Error> {
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

fn csr(spec: &Spec, key: &rcgen::KeyPair) -> Result<Vec<u8>, rcgen::Error> {
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
}
