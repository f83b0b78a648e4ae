//! instant-acme's HTTP transport over the project's one reqwest client.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use instant_acme::{Account, BodyWrapper, BytesResponse, HttpClient};

use super::*;

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
pub(super) fn retry_after(headers: &http::HeaderMap) -> Option<std::time::SystemTime> {
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

pub(super) fn builder_hinted(
    http: &reqwest::Client,
    hint: RetryHint,
) -> instant_acme::AccountBuilder {
    Account::builder_with_http(Box::new(Transport(http.clone(), hint)))
}
