//! What a failed request to Vault was, decided once for every caller (KV, logins, the
//! capability check, the mount and health probes): Vault answered with an error status, or
//! nothing answered, and why. Classified by error type and status, not by message text
//! (except a check-and-set mismatch, which Vault tells only in its text).

use std::error::Error as StdError;

use rustify::errors::ClientError as RestError;
use serde_json::Value;
use vaultrs::error::ClientError;

/// Boxed cause kept for `source()`.
pub type Cause = Box<dyn StdError + Send + Sync>;

/// A failed request.
#[derive(Debug)]
pub enum Failure {
    /// Vault (or whatever listens at the address) answered with an error status.
    Status {
        code: u16,
        /// Vault's `errors` array, joined; "no detail" if there is none.
        detail: String,
        /// The raw body, when the caller needs more than the errors (a deleted version's
        /// metadata).
        body: Option<String>,
    },
    /// Nothing usable answered.
    NoAnswer { why: NoAnswer, source: Cause },
    /// Anything else (an unparsable answer, a request that could not be built).
    Other(Cause),
    /// Not sent: Vault has been unavailable for the run's whole retry budget, and the run
    /// gave up on it ([`super::retry::Outage`]).
    Abandoned { waited: std::time::Duration },
}

/// Why nothing answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoAnswer {
    /// Connection refused: nothing listens there (now).
    Refused,
    /// The request was sent, or the connection attempt made, and no answer came in time:
    /// a write may have landed.
    TimedOut,
    /// An `https://` address, and the server answered the TLS handshake in plain HTTP.
    PlainHttp,
    /// Any other TLS failure (an untrusted certificate, a wrong name).
    Tls,
    /// Reset, closed, DNS failure and the like.
    Other,
}

impl Failure {
    pub fn status(&self) -> Option<u16> {
        match self {
            Failure::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Worth retrying an idempotent request: a 5xx or 429 (sealed, a standby without a
    /// leader during an election, "error during forwarding RPC request"), a refused or
    /// timed-out connection. Never a TLS failure or a 4xx.
    pub fn is_transient(&self) -> bool {
        match self {
            Failure::Status { code, .. } => *code == 429 || (500..600).contains(code),
            Failure::NoAnswer { why, .. } => {
                matches!(
                    why,
                    NoAnswer::Refused | NoAnswer::TimedOut | NoAnswer::Other
                )
            }
            Failure::Other(_) | Failure::Abandoned { .. } => false,
        }
    }

    /// A check-and-set mismatch on a KV v2 write. Vault answers it with a plain 400 and
    /// says what it was only in its error text (no code of its own): matched by that text.
    pub fn is_cas_mismatch(&self) -> bool {
        matches!(self, Failure::Status { code: 400, detail, .. } if detail.contains("check-and-set"))
    }
}

/// Classify a vaultrs error.
pub fn from_client(e: ClientError) -> Failure {
    match e {
        ClientError::APIError { code, errors } => Failure::Status {
            code,
            detail: join_errors(errors.iter().map(String::as_str)),
            body: None,
        },
        ClientError::RestClientError {
            source: RestError::ServerResponseError { code, content },
        } => Failure::Status {
            code,
            detail: content
                .as_deref()
                .and_then(|c| serde_json::from_str::<Value>(c).ok())
                .map(|v| api_detail(&v))
                .unwrap_or_else(|| "unexpected response".into()),
            body: content,
        },
        ClientError::RestClientError {
            source: RestError::RequestError { .. },
        } => {
            let why = no_answer(&e);
            Failure::NoAnswer {
                why,
                source: Box::new(e),
            }
        }
        e => Failure::Other(Box::new(e)),
    }
}

/// Classify an error of a raw request (the endpoints vaultrs has no API for).
pub fn from_reqwest(e: reqwest::Error) -> Failure {
    if e.is_connect() || e.is_timeout() || e.is_request() {
        let why = no_answer(&e);
        Failure::NoAnswer {
            why,
            source: Box::new(e),
        }
    } else {
        Failure::Other(Box::new(e))
    }
}

/// Walk the causes: the first one that tells wins.
fn no_answer(e: &(dyn StdError + 'static)) -> NoAnswer {
    let mut next: Option<&(dyn StdError + 'static)> = Some(e);
    let mut timed_out = false;
    while let Some(err) = next {
        if let Some(r) = err.downcast_ref::<reqwest::Error>() {
            timed_out |= r.is_timeout();
        }
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return tls(t);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return NoAnswer::Refused,
                std::io::ErrorKind::TimedOut => timed_out = true,
                _ => {}
            }
            // An io::Error's source() skips the error it wraps (often another io::Error
            // around a rustls::Error): descend into it directly.
            if let Some(inner) = io.get_ref() {
                next = Some(inner);
                continue;
            }
        }
        next = err.source();
    }
    if timed_out {
        NoAnswer::TimedOut
    } else {
        NoAnswer::Other
    }
}

fn tls(e: &rustls::Error) -> NoAnswer {
    match e {
        // The first bytes of an HTTP answer ("HTTP/1.1 400") are no TLS record type.
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            NoAnswer::PlainHttp
        }
        _ => NoAnswer::Tls,
    }
}

fn join_errors<'a>(errors: impl Iterator<Item = &'a str>) -> String {
    let text = errors
        .filter(|e| !e.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if text.is_empty() {
        "no detail".into()
    } else {
        text
    }
}

/// Vault's `errors` array of a JSON error body.
pub fn api_detail(body: &Value) -> String {
    join_errors(
        body["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_str()),
    )
}

/// Check `VAULT_ADDR` before anything uses it (vaultrs panics on what the URL parser
/// rejects, a port above 65535, say).
pub fn check_address(addr: &str) -> Result<(), String> {
    let rest = addr
        .strip_prefix("https://")
        .or_else(|| addr.strip_prefix("http://"))
        .ok_or("it must start with http:// or https://")?;
    if rest.is_empty() || rest.contains(char::is_whitespace) {
        return Err("it has no host".into());
    }
    let url = match reqwest::Url::parse(addr) {
        Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => u,
        _ => return Err("it is not a valid URL".into()),
    };
    if url.query().is_some() || url.fragment().is_some() {
        return Err("it has a query or fragment; give the server's base URL".into());
    }
    let path = url.path().trim_end_matches('/');
    if path == "/v1" || path.ends_with("/v1") || path.contains("/v1/") {
        let base = format!(
            "{}://{}{}",
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.port().map(|p| format!(":{p}")).unwrap_or_default()
        );
        return Err(format!(
            "it ends in the API path {path}; give the server's base URL without /v1 (certvault adds it), like {base}"
        ));
    }
    Ok(())
}

/// A request to `<addr>/v1/<api>` with the client's TLS settings, token and namespace.
pub(super) fn raw(
    client: &vaultrs::client::VaultClient,
    addr: &str,
    method: reqwest::Method,
    api: &str,
) -> reqwest::RequestBuilder {
    let mut req = client
        .http
        .http
        .request(method, format!("{addr}/v1/{api}"))
        .header("X-Vault-Request", "true");
    if !client.settings.token.is_empty() {
        req = req.header("X-Vault-Token", &client.settings.token);
    }
    if let Some(ns) = &client.settings.namespace {
        req = req.header("X-Vault-Namespace", ns);
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert!(check_address("http://127.0.0.1:8200").is_ok());
        assert!(check_address("https://vault").is_ok());
        // Behind a reverse proxy at a path prefix, as the Vault CLI allows.
        assert!(check_address("https://proxy.example/vault").is_ok());
        assert!(check_address("127.0.0.1:8200").is_err());
        assert!(check_address("http://").is_err());
        assert!(check_address("https://vault:99999").is_err());
        let e = check_address("http://127.0.0.1:8200/v1").unwrap_err();
        assert!(e.contains("without /v1"), "{e}");
        assert!(e.contains("like http://127.0.0.1:8200"), "{e}");
        assert!(check_address("http://127.0.0.1:8200/v1/").is_err());
        assert!(check_address("http://h/v1/secret").is_err());
        assert!(check_address("http://h:8200/?x=1").is_err());
    }

    #[test]
    fn transient_statuses() {
        let s = |code| Failure::Status {
            code,
            detail: String::new(),
            body: None,
        };
        for code in [429, 500, 502, 503] {
            assert!(s(code).is_transient(), "{code}");
        }
        for code in [400, 403, 404, 412] {
            assert!(!s(code).is_transient(), "{code}");
        }
        let cas = Failure::Status {
            code: 400,
            detail: "check-and-set parameter did not match the current version".into(),
            body: None,
        };
        assert!(cas.is_cas_mismatch());
    }
}
