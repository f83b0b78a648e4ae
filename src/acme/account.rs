//! ACME accounts: registration, restoring stored credentials, the directory's terms.

use std::time::Duration;

use instant_acme::{Account, AccountCredentials, ExternalAccountKey, NewAccount};

use crate::model::Secret;

use super::*;

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
    .map_err(|e| account_refused("the account registration", directory, e))?;
    stored(&account, &creds)
}

/// The account a P-256 key (PKCS#8 DER) belongs to at `directory`, found with
/// `onlyReturnExisting`: (instant-acme credentials to store, account URL). Never registers
/// an account.
pub async fn find_account(
    http: &reqwest::Client,
    directory: &str,
    pkcs8: &[u8],
) -> Result<(serde_json::Value, String), Error> {
    let signer = || {
        instant_acme::Key::from_pkcs8_der(rustls::pki_types::PrivatePkcs8KeyDer::from(
            pkcs8.to_vec(),
        ))
    };
    signer().map_err(|source| Error::Protocol {
        op: "load the account key",
        source,
    })?;
    let (account, creds) = nonce_retry!(
        async {
            let der = rustls::pki_types::PrivateKeyDer::Pkcs8(pkcs8.to_vec().into());
            builder(http)
                .from_key((signer()?, der), directory.to_string())
                .await
        }
        .await
    )
    .map_err(|e| match e {
        instant_acme::Error::Api(p) if is_account_unknown(&p) => Error::AccountKeyUnknown {
            directory: directory.to_string(),
        },
        e => account_refused("the account lookup (onlyReturnExisting)", directory, e),
    })?;
    stored(&account, &creds)
}

/// An account request's error: what the CA refused, or that the directory failed.
fn account_refused(op: &'static str, directory: &str, e: instant_acme::Error) -> Error {
    match e {
        instant_acme::Error::Api(problem) => Error::Refused { op, problem },
        source => Error::Directory {
            url: directory.to_string(),
            source,
        },
    }
}

/// What is kept in Vault of an account: its credentials as JSON, and its URL.
pub(crate) fn stored(
    account: &Account,
    creds: &AccountCredentials,
) -> Result<(serde_json::Value, String), Error> {
    let value = serde_json::to_value(creds).map_err(|e| Error::Protocol {
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
        .map_err(|e| bad(crate::secret::redact_quoted(&e.to_string())))?;
    builder_hinted(http, hint)
        .from_credentials(creds)
        .await
        .map_err(|source| Error::Directory {
            url: directory.to_string(),
            source,
        })
}
