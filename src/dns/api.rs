//! The HTTP part shared by the DNS API clients: one reqwest client, JSON, 429 handling.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::Error;

/// Who is calling, for error messages.
#[derive(Debug, Clone)]
pub struct Caller<'a> {
    pub solver: &'a str,
    pub zone: &'a str,
    pub operation: &'static str,
}

/// How many times a 429 is retried, and the longest Retry-After honoured.
const RATE_LIMIT_RETRIES: u32 = 3;
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Send a request (built fresh for each attempt) and return the status and JSON body.
/// A 429 is retried after its Retry-After (bounded); everything else is the caller's.
pub async fn call(
    http: &reqwest::Client,
    who: &Caller<'_>,
    method: Method,
    url: &str,
    token: &str,
    body: Option<&Value>,
) -> Result<(StatusCode, Value), Error> {
    let mut attempt = 0;
    loop {
        let mut req = http
            .request(method.clone(), url)
            .bearer_auth(token)
            .header("Accept", "application/json");
        if let Some(b) = body {
            req = req.json(b);
        }
        let rsp = req.send().await.map_err(|source| Error::Http {
            solver: who.solver.to_string(),
            zone: who.zone.to_string(),
            operation: who.operation,
            source,
        })?;
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
                solver = who.solver,
                "rate limited by the DNS API; retrying in {}s",
                wait.as_secs()
            );
            tokio::time::sleep(wait).await;
            continue;
        }
        let bytes = rsp.bytes().await.map_err(|source| Error::Http {
            solver: who.solver.to_string(),
            zone: who.zone.to_string(),
            operation: who.operation,
            source,
        })?;
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        return Ok((status, json));
    }
}

/// The error for an unexpected status, with the API's own message.
pub fn refused(who: &Caller<'_>, status: StatusCode, message: String) -> Error {
    Error::Api {
        solver: who.solver.to_string(),
        zone: who.zone.to_string(),
        operation: who.operation,
        status: status.as_u16(),
        message,
    }
}
