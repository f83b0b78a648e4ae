//! KV reads, writes, deletes and lists. Each is retried within the budget while Vault is
//! unavailable (see [`super::retry`]); a check-and-set write that is retried tells "my
//! earlier attempt landed" from "someone else wrote" by reading the document back.

use std::future::Future;

use serde_json::Value;
use vaultrs::api::kv2::requests::{ReadSecretRequest, SetSecretRequestOptions};

use super::client::Kv;
use super::error::Error;
use super::http::{self, Failure, NoAnswer};
use super::retry::Backoff;
use super::types::{Expect, KvVersion, Read, Versioned};

/// How often a check-and-set mismatch that a read contradicts is tried again, and the pause
/// before each read (growing: 100 ms, then 200 ms).
const STALE_TRIES: u32 = 2;
const STALE_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

impl Kv {
    /// Run `attempt` until it succeeds, fails for good, or the retry budget is spent.
    async fn retried<T, Fut>(
        &self,
        what: &str,
        mut attempt: impl FnMut() -> Fut,
    ) -> Result<T, (Failure, Backoff)>
    where
        Fut: Future<Output = Result<T, vaultrs::error::ClientError>>,
    {
        let mut backoff = self.backoff();
        loop {
            if let Err(f) = backoff.attempt() {
                return Err((f, backoff));
            }
            match attempt().await.map_err(http::from_client) {
                Ok(v) => {
                    backoff.answered();
                    return Ok(v);
                }
                Err(f) => {
                    if !backoff.retry(&f, what).await {
                        return Err((f, backoff));
                    }
                }
            }
        }
    }

    /// The retry state of one request of this run.
    pub(super) fn backoff(&self) -> Backoff {
        Backoff::shared(self.retry, self.outage.clone())
    }

    /// The one mapping of a failed KV request to an error.
    fn error(&self, op: &'static str, path: &str, failure: Failure, backoff: &Backoff) -> Error {
        let e = super::error::failed(&self.addr, op, self.display_path(path), failure);
        if backoff.attempts > 1 {
            Error::GaveUp {
                waited: backoff.waited(),
                source: Box::new(e),
            }
        } else {
            e
        }
    }

    /// Read the latest version (one request), with what a write replacing it must expect.
    /// KV v1 has no versions: 0.
    pub async fn read(&self, path: &str) -> Result<Read<Value>, Error> {
        let absent = Read {
            doc: None,
            expect: Expect::Absent,
        };
        let what = format!("read {}", self.display_path(path));
        let client = self.client.as_ref();
        if self.version == KvVersion::V1 {
            let result = self
                .retried(&what, || vaultrs::kv1::get_raw(client, &self.mount, path))
                .await;
            return match result {
                Ok(rsp) if rsp.data.is_null() => Ok(absent),
                Ok(rsp) => Ok(Read {
                    doc: Some(Versioned {
                        data: rsp.data,
                        version: 0,
                        written_at: None,
                    }),
                    expect: Expect::Version(0),
                }),
                Err((f, _)) if f.status() == Some(404) => Ok(absent),
                Err((f, b)) => Err(self.error("read", path, f, &b)),
            };
        }
        let result = self
            .retried(&what, || {
                vaultrs::api::exec_with_result(client, self.read_request(path))
            })
            .await;
        match result {
            Ok(rsp) if rsp.data.is_null() => Ok(Read {
                doc: None,
                expect: Expect::Version(rsp.metadata.version),
            }),
            Ok(rsp) => Ok(Read {
                expect: Expect::Version(rsp.metadata.version),
                doc: Some(Versioned {
                    data: rsp.data,
                    version: rsp.metadata.version,
                    written_at: time::OffsetDateTime::parse(
                        &rsp.metadata.created_time,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .ok()
                    .map(|t| t.unix_timestamp()),
                }),
            }),
            // The 404 of a deleted latest version (`vault kv delete`) still carries its
            // metadata (and no `errors` field): a new write must check-and-set on that
            // version, not on 0.
            Err((
                Failure::Status {
                    code: 404,
                    body: Some(body),
                    ..
                },
                _,
            )) => Ok(serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["data"]["metadata"]["version"].as_u64())
                .map(|v| Read {
                    doc: None,
                    expect: Expect::Version(v),
                })
                .unwrap_or(absent)),
            Err((f, _)) if f.status() == Some(404) => Ok(absent),
            Err((f, b)) => Err(self.error("read", path, f, &b)),
        }
    }

    fn read_request(&self, path: &str) -> ReadSecretRequest {
        ReadSecretRequest::builder()
            .mount(&self.mount)
            .path(path)
            .build()
            .expect("all fields set")
    }

    /// Write a new version with check-and-set; returns the new version. KV v1 has no
    /// check-and-set: `Absent` is checked by a read first (not atomic), `Version` is not
    /// checked, and the result is 0.
    ///
    /// Retried while Vault is unavailable. An attempt whose answer was lost (a timeout, a
    /// 5xx) may still have landed: when a later attempt then finds another version, or the
    /// budget runs out, the document is read back, and if it holds exactly `data` the write
    /// succeeded (with the version read); otherwise another writer won. A check-and-set
    /// mismatch is believed only once a read agrees (see `STALE_TRIES`).
    pub async fn write(&self, path: &str, data: &Value, expect: Expect) -> Result<u64, Error> {
        let what = format!("write {}", self.display_path(path));
        let client = self.client.as_ref();
        if self.version == KvVersion::V1 {
            if expect == Expect::Absent && self.read(path).await?.doc.is_some() {
                return Err(Error::AlreadyExists {
                    path: self.display_path(path),
                });
            }
            let map: std::collections::HashMap<&str, &Value> = data
                .as_object()
                .map(|o| o.iter().map(|(k, v)| (k.as_str(), v)).collect())
                .unwrap_or_default();
            // A plain overwrite: repeating it is harmless.
            return match self
                .retried(&what, || vaultrs::kv1::set(client, &self.mount, path, &map))
                .await
            {
                Ok(()) => Ok(0),
                Err((f, b)) => Err(self.error("write", path, f, &b)),
            };
        }
        let cas = match expect {
            Expect::Absent => 0,
            Expect::Version(v) => u32::try_from(v).unwrap_or(u32::MAX),
        };
        let conflict = || match expect {
            Expect::Absent => Error::AlreadyExists {
                path: self.display_path(path),
            },
            Expect::Version(expected) => Error::CasConflict {
                path: self.display_path(path),
                expected,
            },
        };
        let mut backoff = self.backoff();
        // Whether an earlier attempt may have landed although its answer was lost.
        let mut uncertain = false;
        // Check-and-set mismatches that a read contradicted.
        let mut stale = 0u32;
        loop {
            if let Err(f) = backoff.attempt() {
                return Err(self.unconfirmed(
                    path,
                    uncertain,
                    self.error("write", path, f, &backoff),
                ));
            }
            let attempt = vaultrs::kv2::set_with_options(
                client,
                &self.mount,
                path,
                data,
                SetSecretRequestOptions { cas },
            )
            .await
            .map_err(http::from_client);
            let failure = match attempt {
                Ok(meta) => {
                    backoff.answered();
                    return Ok(meta.version);
                }
                Err(f) => f,
            };
            if failure.is_cas_mismatch() {
                if uncertain {
                    if let Some(version) = self.landed(path, data).await? {
                        return Ok(version);
                    }
                }
                // A mismatch that a read then contradicts (the document is still where
                // this write expects it) came from a just-elected Raft leader that had not
                // yet applied the last writes: tried again, a few times at most.
                if stale < STALE_TRIES {
                    stale += 1;
                    tokio::time::sleep(STALE_PAUSE * stale).await;
                    if matches!(self.read(path).await, Ok(r) if r.expect == expect) {
                        tracing::info!(
                            "{}: Vault refused the check-and-set on the version it then read; writing again",
                            self.display_path(path)
                        );
                        continue;
                    }
                }
                return Err(conflict());
            }
            // A refused connection never carried the request.
            uncertain |= failure.is_transient()
                && !matches!(
                    failure,
                    Failure::NoAnswer {
                        why: NoAnswer::Refused,
                        ..
                    }
                );
            if backoff.retry(&failure, &what).await {
                continue;
            }
            if uncertain {
                // Before reporting a failure, learn whether it landed after all.
                match self.landed(path, data).await {
                    Ok(Some(version)) => return Ok(version),
                    // Read back: it did not land.
                    Ok(None) => uncertain = false,
                    Err(_) => {}
                }
            }
            return Err(self.unconfirmed(
                path,
                uncertain,
                self.error("write", path, failure, &backoff),
            ));
        }
    }

    /// A failed write whose earlier attempt may still land (`uncertain`) is
    /// [`Error::Unconfirmed`]: its caller must not report it as not written.
    fn unconfirmed(&self, path: &str, uncertain: bool, e: Error) -> Error {
        if uncertain {
            Error::Unconfirmed {
                path: self.display_path(path),
                source: Box::new(e),
            }
        } else {
            e
        }
    }

    /// The version at `path` if the latest one holds exactly `data` (an earlier attempt of
    /// this write landed).
    async fn landed(&self, path: &str, data: &Value) -> Result<Option<u64>, Error> {
        let read = self.read(path).await?;
        Ok(read.doc.filter(|d| d.data == *data).map(|d| {
            tracing::info!(
                version = d.version,
                "{}: an earlier attempt of this write landed",
                self.display_path(path)
            );
            d.version
        }))
    }

    /// Delete the latest version (KV v2 keeps it in history; KV v1 removes the document).
    /// Succeeds if there is nothing to delete.
    pub async fn delete(&self, path: &str) -> Result<(), Error> {
        let what = format!("delete {}", self.display_path(path));
        let client = self.client.as_ref();
        let result = self
            .retried(&what, || async {
                if self.version == KvVersion::V1 {
                    vaultrs::kv1::delete(client, &self.mount, path).await
                } else {
                    vaultrs::kv2::delete_latest(client, &self.mount, path).await
                }
            })
            .await;
        match result {
            Ok(()) => Ok(()),
            Err((f, _)) if f.status() == Some(404) => Ok(()),
            Err((f, b)) => Err(self.error("delete", path, f, &b)),
        }
    }

    /// Remove `path` with all its versions and metadata (KV v2; on KV v1 a plain delete),
    /// so it is no longer listed. Succeeds if there is nothing to remove.
    pub async fn destroy(&self, path: &str) -> Result<(), Error> {
        if self.version == KvVersion::V1 {
            return self.delete(path).await;
        }
        let what = format!("delete metadata of {}", self.display_path(path));
        let client = self.client.as_ref();
        let result = self
            .retried(&what, || {
                vaultrs::kv2::delete_metadata(client, &self.mount, path)
            })
            .await;
        match result {
            Ok(()) => Ok(()),
            Err((f, _)) if f.status() == Some(404) => Ok(()),
            Err((f, b)) => Err(self.error("delete metadata", path, f, &b)),
        }
    }

    /// Names directly below `path` (a trailing `/` marks a folder); empty if none.
    pub async fn list(&self, path: &str) -> Result<Vec<String>, Error> {
        let what = format!("list {}", self.display_path(path));
        let client = self.client.as_ref();
        let result = self
            .retried(&what, || async {
                if self.version == KvVersion::V1 {
                    vaultrs::kv1::list(client, &self.mount, path)
                        .await
                        .map(|r| r.data.keys)
                } else {
                    vaultrs::kv2::list(client, &self.mount, path).await
                }
            })
            .await;
        match result {
            Ok(keys) => Ok(keys),
            Err((f, _)) if f.status() == Some(404) => Ok(Vec::new()),
            Err((f, b)) => Err(self.error("list", path, f, &b)),
        }
    }

    /// The current version of `path` and whether it is deleted, from its KV v2 metadata (one
    /// request, no document data); `None` when there is none, or on KV v1 (no versions).
    pub async fn current_version(&self, path: &str) -> Result<Option<(u64, bool)>, Error> {
        if self.version == KvVersion::V1 {
            return Ok(None);
        }
        let what = format!("read metadata of {}", self.display_path(path));
        let client = self.client.as_ref();
        let result = self
            .retried(&what, || {
                vaultrs::kv2::read_metadata(client, &self.mount, path)
            })
            .await;
        match result {
            Ok(meta) => {
                let current = meta.versions.get(&meta.current_version.to_string());
                let deleted = current.is_some_and(|v| !v.deletion_time.is_empty() || v.destroyed);
                Ok(Some((meta.current_version, deleted)))
            }
            Err((f, _)) if f.status() == Some(404) => Ok(None),
            Err((f, b)) => Err(self.error("read metadata", path, f, &b)),
        }
    }
}
