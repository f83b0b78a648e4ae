//! The HTTP part shared by the DNS API clients: one reqwest client, bearer token, JSON,
//! 429 handling, and errors that name the solver and the zone.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::Error;
use crate::model::Secret;

/// How many times a 429 is retried, and the longest Retry-After honoured.
const RATE_LIMIT_RETRIES: u32 = 3;
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// One provider API as one solver uses it.
pub struct Endpoint {
    pub solver: String,
    /// Base URL without a trailing `/`.
    pub base: String,
    token: Secret,
    http: reqwest::Client,
}

impl Endpoint {
    pub fn new(solver: &str, base: &str, token: &Secret, http: reqwest::Client) -> Self {
        Self {
            solver: solver.to_string(),
            base: base.trim_end_matches('/').to_string(),
            token: token.clone(),
            http,
        }
    }

    /// Send `method base+path` (built fresh for each attempt) and return the status and the
    /// JSON body (`Null` if empty or not JSON). A 429 is retried after its Retry-After.
    pub async fn call(
        &self,
        zone: &str,
        operation: &'static str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), Error> {
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
                .bearer_auth(self.token.expose())
                .header("Accept", "application/json");
            if let Some(b) = body {
                req = req.json(b);
            }
            let rsp = req.send().await.map_err(unreachable)?;
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
            let bytes = rsp.bytes().await.map_err(unreachable)?;
            let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return Ok((status, json));
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
        message: fn(&Value) -> String,
    ) -> Result<(), Error> {
        const OP: &str = "deleting the TXT record";
        let (status, rsp) = self.call(zone, OP, Method::DELETE, path, None).await?;
        if status.is_success() || status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(self.refused(zone, OP, status, message(&rsp)))
        }
    }
}
