//! The HTTP part shared by the DNS API clients: one reqwest client, the credential header,
//! JSON in and typed JSON out, percent-encoded paths and queries, 429 handling, and errors
//! that name the solver and the zone.

use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::Error;
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

/// One path segment or query value, percent-encoded.
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

#[cfg(test)]
mod tests {
    use super::*;

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
