//! The typed repository over Vault KV: the only place that spells certvault's paths.
//!
//! Layout below `<mount>/<prefix>/`:
//! - `accounts/<account>`: [`AccountRecord`]
//! - `certs/<name>`: [`CertRecord`], one KV v2 document per certificate (the material)
//! - `specs/<name>`: [`SpecRecord`], what the certificate is (admin-only: names, solver,
//!   hooks); `renew` orders and runs only what this says
//! - `status/<name>`: [`StatusRecord`], the last attempt and failures (no key material)
//! - `dns/<solver>`: [`SolverRecord`], a DNS solver and its credentials
//! - `locks/<name>`: [`LockRecord`], a short lease held while one run orders and writes
//!   that certificate
//! - `index/NNN`: [`crate::index::Shard`], the renewal index (256 documents, see
//!   [`crate::index`])
//! - `pauses/<account>`: [`PauseRecord`], a CA that rate-limited new orders (key-free, so the
//!   renew token may write it without being able to touch the account key)
//!
//! [`api_path`] spells the full API paths (`<mount>/data/...` for KV v2) that policies and
//! the capability check use.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::model::{CertName, SCHEMA_VERSION};
use crate::records::{
    AccountRecord, CertRecord, PauseRecord, SolverRecord, SpecRecord, StatusRecord,
};
use crate::vault::{self, Expect, Kv, Read, Versioned};

mod index_sync;
mod lock;
mod paths;

pub use lock::*;
pub use paths::*;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Vault(#[from] vault::Error),
    #[error("{path} is not a valid certvault document: {reason}; fix or delete it")]
    Corrupt { path: String, reason: String },
    #[error("{path} was written by a newer certvault (schema {found}, this one reads up to {SCHEMA_VERSION}); upgrade certvault")]
    NewerSchema { path: String, found: u64 },
    #[error("nothing of certvault's is stored at {prefix}/: no ACME account at {account} and no certificate in {certs}/; check --prefix (CERTVAULT_PREFIX), --mount and --account, or run `certvault init` first")]
    EmptyPrefix {
        prefix: String,
        account: String,
        certs: String,
    },
    #[error(
        "invalid prefix {0:?}: use path segments of a-z, A-Z, 0-9, '.', '_', '-' separated by '/'"
    )]
    BadPrefix(String),
}

/// serde quotes the offending value (`invalid type: string "…"`), which could be key
/// material: keep the message, drop what is between quotes.
/// What kind of JSON value `v` is, for messages (never its text).
fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number that is not a whole number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

pub(crate) use crate::secret::redact_quoted;

pub use crate::records::Entry;

/// The outcome of reading one certificate (`None`: its latest version is deleted).
pub type LoadedEntry = Result<Option<Entry>, Error>;

pub struct Store {
    kv: Kv,
    prefix: String,
    /// What this run learned for the renewal index, written by [`Store::flush_index`].
    pub(crate) journal: crate::index::Journal,
    /// See [`crate::index::Layout::wanted`].
    index_grow_above: u64,
}

impl Store {
    pub fn new(kv: Kv, prefix: &str) -> Result<Self, Error> {
        let prefix = clean_prefix(prefix)
            .ok_or_else(|| Error::BadPrefix(prefix.trim_matches('/').into()))?;
        Ok(Self {
            kv,
            prefix: prefix.into(),
            journal: Default::default(),
            index_grow_above: crate::index::GROW_ABOVE,
        })
    }

    /// Grow the renewal index above this many certificates per document on average.
    pub fn with_index_grow_above(mut self, n: u64) -> Self {
        self.index_grow_above = n.max(1);
        self
    }

    pub fn index_grow_above(&self) -> u64 {
        self.index_grow_above
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn kv(&self) -> &Kv {
        &self.kv
    }

    /// The full API path of `key` (see [`api_path`]).
    pub fn api_path(&self, key: Key<'_>, api: Api) -> String {
        api_path(self.kv.version(), self.kv.mount(), &self.prefix, key, api)
    }

    /// `mount/prefix/...` as shown to users.
    pub fn display(&self, key: Key<'_>) -> String {
        self.kv.display_path(&key.path(&self.prefix))
    }

    pub async fn load_account(
        &self,
        name: &str,
    ) -> Result<Option<Versioned<AccountRecord>>, Error> {
        self.load(Key::Account(name)).await
    }

    pub async fn save_account(
        &self,
        name: &str,
        record: &AccountRecord,
        expect: Expect,
    ) -> Result<u64, Error> {
        self.save(Key::Account(name), record, expect).await
    }

    /// Names of all certificate records; entries that are not valid names are skipped.
    pub async fn list_certs(&self) -> Result<Vec<CertName>, Error> {
        let keys = self.kv.list(&Key::Certs.path(&self.prefix)).await?;
        let mut names: Vec<CertName> = keys
            .iter()
            .filter(|k| !k.ends_with('/'))
            .filter_map(|k| match k.parse() {
                Ok(n) => Some(n),
                Err(e) => {
                    tracing::warn!("skipping {}/{k}: {e}", self.display(Key::Certs));
                    None
                }
            })
            .collect();
        names.sort();
        Ok(names)
    }

    /// Names with a spec document (its latest version may be deleted: a retired
    /// certificate). Entries that are not valid names are skipped.
    pub async fn list_specs(&self) -> Result<std::collections::BTreeSet<CertName>, Error> {
        let keys = self.kv.list(&Key::Specs.path(&self.prefix)).await?;
        Ok(keys
            .iter()
            .filter(|k| !k.ends_with('/'))
            .filter_map(|k| k.parse().ok())
            .collect())
    }

    pub async fn load_cert(&self, name: &CertName) -> Result<Option<Versioned<CertRecord>>, Error> {
        self.load(Key::Cert(name)).await
    }

    /// Load many certificates with their specs, 16 at a time, in the order given.
    pub async fn load_entries(&self, names: Vec<CertName>) -> Vec<(CertName, LoadedEntry)> {
        use futures::StreamExt;
        let loaded: Vec<LoadedEntry> = futures::stream::iter(&names)
            .map(|n| self.load_entry(n))
            .buffered(16)
            .collect()
            .await;
        names.into_iter().zip(loaded).collect()
    }

    /// One certificate with its spec and status (the status also feeds the index entry).
    pub async fn load_entry(&self, n: &CertName) -> LoadedEntry {
        let (cert, spec, status) = futures::join!(
            self.load_read::<CertRecord>(Key::Cert(n)),
            self.load_read::<SpecRecord>(Key::Spec(n)),
            self.load::<StatusRecord>(Key::Status(n))
        );
        match (cert, spec) {
            (Ok(Read { doc: None, expect }), Ok(spec)) => {
                self.journal.note_deleted(n, expect, spec.doc.as_ref());
                Ok(None)
            }
            // The spec's latest version is deleted (`certvault delete`): the certificate is
            // retired, whatever a renew token wrote into its record since. It stays deleted:
            // never renewed, never migrated.
            (
                Ok(Read {
                    doc: Some(cert), ..
                }),
                Ok(Read {
                    doc: None,
                    expect: Expect::Version(_),
                }),
            ) => {
                tracing::warn!(cert = %n, version = cert.version, "the record was written after its spec was deleted: the certificate stays retired");
                self.journal
                    .note_deleted(n, Expect::Version(cert.version), None);
                Ok(None)
            }
            (
                Ok(Read {
                    doc: Some(cert), ..
                }),
                Ok(Read { doc: spec, .. }),
            ) => {
                let status = status.ok().flatten().map(|s| s.data);
                let entry = Entry { cert, spec, status };
                self.journal.note_loaded(n, &entry, entry.status.as_ref());
                Ok(Some(entry))
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    }

    /// Delete the latest version of a document (KV v2: the history stays).
    pub async fn delete(&self, key: Key<'_>) -> Result<(), Error> {
        self.kv.delete(&key.path(&self.prefix)).await?;
        if let Key::Cert(name) = key {
            self.journal.note_removed(name);
        }
        Ok(())
    }

    /// The record of `name` and what a write replacing it must expect (its version, the
    /// version a `vault kv delete` left, or nothing).
    pub async fn load_cert_for_write(&self, name: &CertName) -> Result<Read<CertRecord>, Error> {
        self.load_read(Key::Cert(name)).await
    }

    pub async fn save_cert(
        &self,
        name: &CertName,
        record: &CertRecord,
        expect: Expect,
    ) -> Result<u64, Error> {
        let version = self.save(Key::Cert(name), record, expect).await?;
        let spec_version = match self.journal.spec_version(name) {
            Some(v) => Some(v),
            None => self
                .kv
                .current_version(&Key::Spec(name).path(&self.prefix))
                .await
                .ok()
                .map(|m| m.map_or(0, |(v, deleted)| if deleted { 0 } else { v })),
        };
        if let Some(spec_version) = spec_version {
            self.journal.note_saved(name, record, version, spec_version);
        }
        Ok(version)
    }

    /// The admin-only spec of `name` and what a write replacing it must expect.
    pub async fn load_spec(&self, name: &CertName) -> Result<Read<SpecRecord>, Error> {
        self.load_read(Key::Spec(name)).await
    }

    pub async fn save_spec(
        &self,
        name: &CertName,
        record: &SpecRecord,
        expect: Expect,
    ) -> Result<u64, Error> {
        let version = self.save(Key::Spec(name), record, expect).await?;
        self.journal.note_spec(name, version, &record.spec);
        Ok(version)
    }

    pub async fn load_status(&self, name: &CertName) -> Result<Read<StatusRecord>, Error> {
        self.load_read(Key::Status(name)).await
    }

    /// The status of `name`, or why its document is not valid (`Err` only for Vault).
    pub async fn load_status_or_invalid(
        &self,
        name: &CertName,
    ) -> Result<Result<Option<Versioned<StatusRecord>>, Error>, Error> {
        self.load_or_invalid(Key::Status(name)).await
    }

    /// A document, or why it is not a valid one (the outer `Err` only for Vault).
    pub(crate) async fn load_or_invalid<T: DeserializeOwned>(
        &self,
        key: Key<'_>,
    ) -> Result<Result<Option<Versioned<T>>, Error>, Error> {
        let (read, corrupt) = self.load_read_replaceable(key).await?;
        Ok(match corrupt {
            Some(e) => Err(e),
            None => Ok(read.doc),
        })
    }

    /// The status of `name` for a rewrite: one that is not a valid document reads as none
    /// (with the error), and the write replaces it.
    pub async fn load_status_for_repair(
        &self,
        name: &CertName,
    ) -> Result<(Read<StatusRecord>, Option<Error>), Error> {
        self.load_read_replaceable(Key::Status(name)).await
    }

    pub async fn save_status(
        &self,
        name: &CertName,
        record: &StatusRecord,
        expect: Expect,
    ) -> Result<u64, Error> {
        let version = self.save(Key::Status(name), record, expect).await?;
        self.journal.note_status(name, record);
        Ok(version)
    }

    /// The stored pause of the CA of `account`, if any.
    pub async fn load_pause(&self, account: &str) -> Result<Option<Versioned<PauseRecord>>, Error> {
        self.load(Key::Pause(account)).await
    }

    /// What a write of the pause of `account` must expect.
    pub async fn load_pause_for_write(&self, account: &str) -> Result<Expect, Error> {
        Ok(self
            .load_read::<PauseRecord>(Key::Pause(account))
            .await?
            .expect)
    }

    pub async fn save_pause(
        &self,
        account: &str,
        record: &PauseRecord,
        expect: Expect,
    ) -> Result<u64, Error> {
        self.save(Key::Pause(account), record, expect).await
    }

    pub async fn load_solver(&self, name: &str) -> Result<Option<Versioned<SolverRecord>>, Error> {
        self.load(Key::Solver(name)).await
    }

    pub async fn save_solver(
        &self,
        name: &str,
        record: &SolverRecord,
        expect: Expect,
    ) -> Result<u64, Error> {
        self.save(Key::Solver(name), record, expect).await
    }

    /// Stop a run whose prefix holds neither the account nor any certificate (a misspelt
    /// `--prefix` or `--mount` would otherwise report "nothing to do"). The error names the
    /// paths tried. One read when the account is there; the certificates are listed only
    /// when it is not (or when the token may not read it).
    pub async fn ensure_in_use(&self, account: &str) -> Result<(), Error> {
        match self
            .kv
            .read(&Key::Account(account).path(&self.prefix))
            .await
        {
            Ok(read) if read.doc.is_some() => return Ok(()),
            Ok(_) | Err(vault::Error::Forbidden { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if !self
            .kv
            .list(&Key::Certs.path(&self.prefix))
            .await?
            .is_empty()
        {
            return Ok(());
        }
        Err(Error::EmptyPrefix {
            prefix: self.kv.display_path(&self.prefix),
            account: self.display(Key::Account(account)),
            certs: self.display(Key::Certs),
        })
    }

    pub async fn list_solvers(&self) -> Result<Vec<String>, Error> {
        let keys = self.kv.list(&Key::Solvers.path(&self.prefix)).await?;
        Ok(keys.into_iter().filter(|k| !k.ends_with('/')).collect())
    }

    pub(crate) async fn load<T: DeserializeOwned>(
        &self,
        key: Key<'_>,
    ) -> Result<Option<Versioned<T>>, Error> {
        Ok(self.load_read(key).await?.doc)
    }

    pub(crate) async fn load_read<T: DeserializeOwned>(
        &self,
        key: Key<'_>,
    ) -> Result<Read<T>, Error> {
        let (read, corrupt) = self.load_read_replaceable(key).await?;
        match corrupt {
            Some(e) => Err(e),
            None => Ok(read),
        }
    }

    /// Like [`Store::load_read`], but a document that is not a valid certvault document
    /// reads as absent, with the error, and with the expectation of its version, so that
    /// the caller can replace it (status and lock documents, which certvault rewrites). A
    /// document of a newer schema is still an error.
    pub(crate) async fn load_read_replaceable<T: DeserializeOwned>(
        &self,
        key: Key<'_>,
    ) -> Result<(Read<T>, Option<Error>), Error> {
        let path = key.path(&self.prefix);
        // Tests count these (a run with nothing due reads no record).
        tracing::debug!(target: "certvault::reads", "read {}", self.kv.display_path(&path));
        let read = self.kv.read(&path).await?;
        let Some(doc) = read.doc else {
            return Ok((
                Read {
                    doc: None,
                    expect: read.expect,
                },
                None,
            ));
        };
        let shown = self.kv.display_path(&path);
        let corrupt = |reason: String| Error::Corrupt {
            path: shown.clone(),
            reason,
        };
        let checked = match doc.data.get("schema") {
            None => Err(corrupt("no schema field".into())),
            Some(v) => match v.as_u64() {
                Some(found) if found > u64::from(SCHEMA_VERSION) => {
                    return Err(Error::NewerSchema { path: shown, found })
                }
                Some(_) => Ok(()),
                None => Err(corrupt(format!(
                    "its schema field is {}, not a whole number",
                    json_kind(v)
                ))),
            },
        };
        let parsed = checked.and_then(|()| {
            serde_path_to_error::deserialize(doc.data).map_err(|e| {
                let field = e.path().to_string();
                let what = redact_quoted(&e.into_inner().to_string());
                corrupt(if field == "." {
                    what
                } else {
                    format!("field {field}: {what}")
                })
            })
        });
        Ok(match parsed {
            Ok(data) => (
                Read {
                    doc: Some(Versioned {
                        data,
                        version: doc.version,
                        written_at: doc.written_at,
                    }),
                    expect: read.expect,
                },
                None,
            ),
            Err(e) => (
                Read {
                    doc: None,
                    expect: read.expect,
                },
                Some(e),
            ),
        })
    }

    pub(crate) async fn save<T: Serialize>(
        &self,
        key: Key<'_>,
        data: &T,
        expect: Expect,
    ) -> Result<u64, Error> {
        let value = serde_json::to_value(data).map_err(|e| Error::Corrupt {
            path: self.display(key),
            reason: e.to_string(),
        })?;
        Ok(self
            .kv
            .write(&key.path(&self.prefix), &value, expect)
            .await?)
    }
}

#[cfg(test)]
mod tests;
