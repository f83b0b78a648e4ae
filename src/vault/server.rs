//! What is at the address and in the mount: Vault at all (`sys/health`), the mount and its
//! KV version (`sys/internal/ui/mounts`), and the token's capabilities
//! (`sys/capabilities-self`).

use std::collections::BTreeMap;

use serde_json::Value;

use super::client::Kv;
use super::error::Error;
use super::http::{self, Failure};
use super::types::KvVersion;

impl Kv {
    /// A request to `api` with the token, retried while Vault is unavailable: (status, JSON
    /// body, `Null` if none).
    async fn send_json(
        &self,
        method: reqwest::Method,
        api: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), Error> {
        let mut backoff = self.backoff();
        loop {
            if let Err(failure) = backoff.attempt() {
                let op = if body.is_some() { "write" } else { "read" };
                return Err(super::error::failed(&self.addr, op, api.into(), failure));
            }
            let mut req = self.raw(method.clone(), api);
            if let Some(b) = body {
                req = req.json(b);
            }
            let failure = match req.send().await {
                Ok(r) => {
                    let code = r.status().as_u16();
                    let body = r.json::<Value>().await.unwrap_or(Value::Null);
                    if !(code == 429 || code >= 500) {
                        backoff.answered();
                        return Ok((code, body));
                    }
                    Failure::Status {
                        code,
                        detail: http::api_detail(&body),
                        body: None,
                    }
                }
                Err(e) => http::from_reqwest(e),
            };
            if !backoff.retry(&failure, api).await {
                let op = if body.is_some() { "write" } else { "read" };
                return Err(super::error::failed(&self.addr, op, api.into(), failure));
            }
        }
    }

    async fn get_json(&self, api: &str) -> Result<(u16, Value), Error> {
        self.send_json(reqwest::Method::GET, api, None).await
    }

    /// Find the mount and its KV version from `sys/internal/ui/mounts/<mount>` (readable by
    /// any token with access to the mount, as `vault kv` does), else `sys/mounts/<mount>`.
    /// A mount that is not there is an error naming it and the KV mounts the token can see;
    /// `given` (`--kv-version`) wins over what is detected.
    pub(super) async fn detect_mount(&self, given: Option<KvVersion>) -> Result<KvVersion, Error> {
        let (code, body) = self
            .get_json(&format!("sys/internal/ui/mounts/{}", self.mount))
            .await?;
        if code == 200 {
            let data = &body["data"];
            return match (data["type"].as_str(), data["options"]["version"].as_str()) {
                (_, Some("2")) => Ok(given.unwrap_or(KvVersion::V2)),
                (Some("kv" | "generic"), _) => Ok(given.unwrap_or(KvVersion::V1)),
                (Some(kind), _) => Err(Error::NotKv {
                    mount: self.mount.clone(),
                    addr: self.addr.clone(),
                    kind: kind.into(),
                }),
                (None, _) => Ok(given.unwrap_or(KvVersion::V2)),
            };
        }
        // 403 for a mount that is not there, and for one this token may not touch: the
        // mounts the token can see tell them apart.
        let (code, all) = self.get_json("sys/internal/ui/mounts").await?;
        if code == 200 {
            let wanted = format!("{}/", self.mount.trim_end_matches('/'));
            let mut kv: Vec<String> = all["data"]["secret"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(_, m)| matches!(m["type"].as_str(), Some("kv" | "generic")))
                .map(|(path, _)| path.clone())
                .collect();
            kv.sort();
            if !kv.is_empty() && !kv.contains(&wanted) {
                return Err(Error::NoSuchMount {
                    mount: self.mount.clone(),
                    addr: self.addr.clone(),
                    visible: Some(kv),
                });
            }
            // A token that sees no KV mount at all: the capability check names what it
            // lacks.
        }
        if let Some(v) = given {
            return Ok(v);
        }
        let (code, body) = self.get_json(&format!("sys/mounts/{}", self.mount)).await?;
        if code == 200 {
            let data = &body["data"];
            match (data["type"].as_str(), data["options"]["version"].as_str()) {
                (_, Some("2")) => return Ok(KvVersion::V2),
                (Some("kv"), _) => return Ok(KvVersion::V1),
                _ => {}
            }
        }
        tracing::warn!(
            "could not read the KV version of mount {}; assuming 2 (set CERTVAULT_KV_VERSION)",
            self.mount
        );
        Ok(KvVersion::V2)
    }

    /// The token's capabilities on each of `paths` (full API paths, e.g.
    /// `secret/data/certvault/certs/web`), from `sys/capabilities-self`.
    pub async fn capabilities(
        &self,
        paths: &[String],
    ) -> Result<BTreeMap<String, Vec<String>>, Error> {
        let api = "sys/capabilities-self";
        let request = serde_json::json!({ "paths": paths });
        let (code, body) = self
            .send_json(reqwest::Method::POST, api, Some(&request))
            .await?;
        if code == 403 {
            return Err(Error::TokenRejected);
        }
        if !(200..300).contains(&code) {
            return Err(Error::Api {
                op: "capabilities check",
                path: api.into(),
                code,
                detail: http::api_detail(&body),
            });
        }
        let mut out = BTreeMap::new();
        for p in paths {
            let caps = body
                .get(p)
                .or_else(|| body["data"].get(p))
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            out.insert(p.clone(), caps);
        }
        Ok(out)
    }
}
