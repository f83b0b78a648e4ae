//! The HTTP part shared by the DNS API clients: one reqwest client, the credential header,
//! JSON in and typed JSON out, percent-encoded paths and queries, 429 handling, and errors
//! that name the solver and the zone.

use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Error, TxtRecord};
use crate::model::Secret;

/// How many times a 429 is retried, and the longest Retry-After honoured.
const RATE_LIMIT_RETRIES: u32 = 3;
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// RFC 3986 unreserved characters stay; everything else is percent-encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A solver's URL setting `field` must be http(s).
pub fn check_http_url(solver: &str, field: &str, url: &str) -> Result<(), Error> {
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(());
    }
    Err(Error::Config {
        solver: solver.into(),
        reason: format!("{field} {url:?} is not an http(s) URL"),
    })
}

/// One path segment or query value, percent-encoded.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// `?k=v&…` with every key and value percent-encoded.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    format!("?{}", parts.join("&"))
}

/// How a request proves who it is.
#[derive(Clone)]
pub enum Auth {
    Bearer(Secret),
    /// A header such as PowerDNS's `X-API-Key`.
    Header(&'static str, Secret),
    None,
}

/// One answer: the status and the raw body.
pub struct Answer {
    pub status: StatusCode,
    pub body: bytes::Bytes,
}

impl Answer {
    /// The body as `T`, or `None` if it is not that JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// One provider API as one solver uses it.
pub struct Endpoint {
    pub solver: String,
    /// Base URL without a trailing `/`.
    pub base: String,
    auth: Auth,
    http: reqwest::Client,
}

impl Endpoint {
    pub fn new(solver: &str, base: &str, auth: Auth, http: reqwest::Client) -> Self {
        Self {
            solver: solver.to_string(),
            base: base.trim_end_matches('/').to_string(),
            auth,
            http,
        }
    }

    /// The shared HTTP client.
    pub fn http(&self) -> reqwest::Client {
        self.http.clone()
    }

    /// Send `method base+path` (`path` already encoded) with an optional JSON body.
    /// A 429 is retried after its Retry-After.
    pub async fn call<B: Serialize + ?Sized>(
        &self,
        zone: &str,
        operation: &'static str,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Answer, Error> {
        self.send(zone, operation, method, path, &[], |req| match body {
            Some(b) => req.json(b),
            None => req,
        })
        .await
    }

    /// The general form: extra headers and a request customizer (bodies, signing).
    pub async fn send(
        &self,
        zone: &str,
        operation: &'static str,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        mut finish: impl FnMut(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<Answer, Error> {
        let url = format!("{}{path}", self.base);
        let unreachable = |source| Error::Http {
            solver: self.solver.clone(),
            zone: zone.to_string(),
            operation,
            source,
        };
        let mut attempt = 0;
        loop {
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header("Accept", "application/json");
            req = match &self.auth {
                Auth::Bearer(t) => req.bearer_auth(t.expose()),
                Auth::Header(name, t) => req.header(*name, t.expose()),
                Auth::None => req,
            };
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let rsp = finish(req).send().await.map_err(unreachable)?;
            let status = rsp.status();
            if status == StatusCode::TOO_MANY_REQUESTS && attempt < RATE_LIMIT_RETRIES {
                attempt += 1;
                let wait = rsp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs)
                    .unwrap_or(Duration::from_secs(1))
                    .min(MAX_RETRY_AFTER);
                tracing::warn!(
                    solver = %self.solver,
                    "rate limited by the DNS API; retrying in {}s",
                    wait.as_secs()
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            let body = rsp.bytes().await.map_err(unreachable)?;
            return Ok(Answer { status, body });
        }
    }

    /// The error for an unexpected answer, with the API's own message.
    pub fn refused(
        &self,
        zone: &str,
        operation: &'static str,
        status: StatusCode,
        message: String,
    ) -> Error {
        Error::Api {
            solver: self.solver.clone(),
            zone: zone.to_string(),
            operation,
            status: status.as_u16(),
            message,
        }
    }

    /// DELETE a record; a 404 means it is already gone, which is success.
    pub async fn delete(
        &self,
        zone: &str,
        path: &str,
        message: fn(&Answer) -> String,
    ) -> Result<(), Error> {
        const OP: &str = "deleting the TXT record";
        let rsp = self
            .call::<()>(zone, OP, Method::DELETE, path, None)
            .await?;
        if rsp.status.is_success() || rsp.status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(self.refused(zone, OP, rsp.status, message(&rsp)))
        }
    }
}

/// What a provider's API says the record behind a cleanup handle is.
pub struct Found<'a> {
    /// The record id, as the handle names it.
    pub id: &'a str,
    /// The record type (`TXT`, `A`, ...).
    pub kind: &'a str,
    /// The fully qualified name (a trailing dot is ignored).
    pub fqdn: &'a str,
    /// The content as the API holds it: for TXT the value, possibly in double quotes.
    pub content: &'a str,
}

/// Before a delete by id: `Ok` only if `found` is exactly `record`'s TXT value at its name,
/// else [`Error::NotOurs`] saying what the record is. The reason never shows the record's
/// content (another TXT may hold a verification token).
pub fn check_ours(solver: &str, record: &TxtRecord, found: &Found<'_>) -> Result<(), Error> {
    let id = shown(found.id);
    let reason = if !found.kind.eq_ignore_ascii_case("TXT") {
        let kind = shown(found.kind);
        Some(format!(
            "record id {id} is {} {kind} record",
            article(&kind)
        ))
    } else if !same_name(found.fqdn, record.name.as_str()) {
        Some(format!("record id {id} is TXT at {}", shown(found.fqdn)))
    } else if !same_txt(found.content, &record.value) {
        Some(format!("record id {id} holds another value"))
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(Error::NotOurs {
            solver: solver.to_string(),
            name: record.name.to_string(),
            reason,
        }),
    }
}

/// "an A", "an MX", "a CNAME": record types are read letter by letter.
fn article(kind: &str) -> &'static str {
    match kind.chars().next().map(|c| c.to_ascii_uppercase()) {
        Some('A' | 'E' | 'F' | 'H' | 'I' | 'L' | 'M' | 'N' | 'O' | 'R' | 'S' | 'X') => "an",
        _ => "a",
    }
}

/// DNS names compare without regard to ASCII case and a trailing dot.
fn same_name(a: &str, b: &str) -> bool {
    let bare = |s: &str| s.strip_suffix('.').unwrap_or(s).to_string();
    bare(a).eq_ignore_ascii_case(&bare(b))
}

/// A TXT content holds `value`: exactly, or as one quoted character-string.
fn same_txt(content: &str, value: &str) -> bool {
    content == value
        || content
            .strip_prefix('"')
            .and_then(|c| c.strip_suffix('"'))
            .is_some_and(|c| c == value)
}

/// Text from an API or a handle for a message: control characters escaped, at most 80
/// characters.
pub fn shown(s: &str) -> String {
    const MAX: usize = 80;
    let mut out: String = s.chars().take(MAX).flat_map(char::escape_debug).collect();
    if s.chars().count() > MAX {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exactly_our_txt_value_is_ours() {
        let record = TxtRecord {
            domain: "a.example.com".parse().unwrap(),
            name: "_acme-challenge.a.example.com".parse().unwrap(),
            zone: Some("example.com".parse().unwrap()),
            value: "v4lue".into(),
        };
        let found = |kind, fqdn, content| Found {
            id: "r1",
            kind,
            fqdn,
            content,
        };
        for ok in [
            found("TXT", "_acme-challenge.a.example.com", "v4lue"),
            found("txt", "_ACME-challenge.A.example.com.", "\"v4lue\""),
        ] {
            assert!(check_ours("s", &record, &ok).is_ok(), "{}", ok.fqdn);
        }
        let cases = [
            (
                found("A", "_acme-challenge.a.example.com", "v4lue"),
                "record id r1 is an A record",
            ),
            (
                found("TXT", "other.example.com", "v4lue"),
                "record id r1 is TXT at other.example.com",
            ),
            (
                found("TXT", "_acme-challenge.a.example.com.evil", "v4lue"),
                "is TXT at _acme-challenge.a.example.com.evil",
            ),
            (
                found("TXT", "_acme-challenge.a.example.com", "secret-token"),
                "record id r1 holds another value",
            ),
            (
                found("TXT", "_acme-challenge.a.example.com", "\"v4lue"),
                "holds another value",
            ),
            (
                found("TXT", "_acme-challenge.a.example.com", "\"\""),
                "holds another value",
            ),
            (
                found("TXT\n", "_acme-challenge.a.example.com", "v4lue"),
                "is a TXT\\n record",
            ),
            (
                found("CNAME", "_acme-challenge.a.example.com", "v4lue"),
                "record id r1 is a CNAME record",
            ),
        ];
        for (f, want) in cases {
            let e = check_ours("s", &record, &f).unwrap_err();
            let text = e.to_string();
            assert!(matches!(e, Error::NotOurs { .. }), "{text}");
            assert!(text.contains(want), "{text}");
            assert!(text.contains("refused to remove _acme-challenge.a.example.com"));
            assert!(!text.contains("secret-token"), "{text}");
        }
        assert_eq!(shown(&"x".repeat(100)).chars().count(), 81);
    }

    #[test]
    fn queries_and_segments_are_percent_encoded() {
        assert_eq!(
            query(&[
                ("name.exact", "_acme-challenge.a.example"),
                ("content", "a+b/c=&d e")
            ]),
            "?name.exact=_acme-challenge.a.example&content=a%2Bb%2Fc%3D%26d%20e"
        );
        assert_eq!(encode("example.com/../x"), "example.com%2F..%2Fx");
    }
}
