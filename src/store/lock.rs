//! The per-certificate lock: a short lease its holder renews while it works.

use time::OffsetDateTime;

use crate::model::{CertName, SCHEMA_VERSION};
use crate::records::LockRecord;
use crate::vault::{self, Expect, Versioned};

use super::*;

/// Whether this run holds a certificate's lock.
#[derive(Debug, Clone)]
pub enum Lock {
    /// Ours, at this KV version (the next renewal of the lease writes on top of it), with
    /// the DNS-01 values a dead holder left presented.
    Taken {
        version: u64,
        leftovers: Vec<crate::dns::Leftover>,
    },
    Held {
        holder: String,
        until: OffsetDateTime,
    },
}

/// Whether a stored lease still binds: not lapsed, and not further in the future than the
/// longest possible lease reaches from now (else a skewed or hostile clock wrote it).
pub fn lease_binds(expires_at: OffsetDateTime, now: OffsetDateTime) -> bool {
    expires_at > now
        && expires_at <= now + crate::defaults::MAX_LOCK_LEASE + time::Duration::seconds(5)
}

impl Store {
    /// Take the lease of `name` (check-and-set create, or take over a lapsed one).
    pub async fn lock_cert(
        &self,
        name: &CertName,
        holder: &str,
        run_id: &str,
        now: OffsetDateTime,
        lease: std::time::Duration,
    ) -> Result<Lock, Error> {
        let key = Key::Lock(name);
        // A lock that is not a valid document (written by hand, or by a renew token) binds
        // nobody: it is taken over like a lapsed one, and lists no leftovers.
        let (read, corrupt) = self.load_read_replaceable::<LockRecord>(key).await?;
        if let Some(e) = corrupt {
            tracing::warn!(cert = %name, "taking over a lock that is not valid: {e}");
        }
        let leftovers = read
            .doc
            .as_ref()
            .map(|d| d.data.presented.clone())
            .unwrap_or_default();
        match read.doc {
            // Our own lease (a write of this run whose answer was lost, e.g. in a Vault
            // leader election, or a retry): ours to take again at once.
            Some(held) if !run_id.is_empty() && held.data.run_id == run_id => {}
            Some(held) if lease_binds(held.data.expires_at, now) => {
                return Ok(Lock::Held {
                    holder: held.data.holder,
                    until: held.data.expires_at,
                })
            }
            // Free (never taken, released), or lapsed: its holder died without releasing it.
            Some(stale) => {
                tracing::warn!(cert = %name, holder = %stale.data.holder, "taking over a lapsed lock");
            }
            None => {}
        }
        let expect = read.expect;
        let record = LockRecord {
            schema: SCHEMA_VERSION,
            holder: holder.to_string(),
            acquired_at: now,
            expires_at: now + lease,
            run_id: run_id.to_string(),
            // What a dead holder left stays listed until it is removed.
            presented: leftovers.clone(),
        };
        match self.save(key, &record, expect).await {
            Ok(version) => Ok(Lock::Taken { version, leftovers }),
            Err(Error::Vault(
                vault::Error::CasConflict { .. } | vault::Error::AlreadyExists { .. },
            )) => {
                // Another run took it between our read and write.
                let held = self.load::<LockRecord>(key).await?;
                Ok(Lock::Held {
                    holder: held
                        .as_ref()
                        .map(|h| h.data.holder.clone())
                        .unwrap_or_else(|| "another run".into()),
                    until: held.map(|h| h.data.expires_at).unwrap_or(record.expires_at),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Extend our lease of `name` (written on top of `version`, the lease we hold); the new
    /// version. A conflict means another run took the lease over: ours is lost.
    ///
    /// A lease that still carries `run_id` is ours at whatever version it is (an earlier
    /// write of this run landed although its answer was lost): the new lease is written on
    /// top of the version read. A check-and-set mismatch that Vault's own state contradicts
    /// (a just-elected Raft leader) is retried by [`vault::Kv::write`] itself.
    pub async fn renew_lease(
        &self,
        name: &CertName,
        run_id: &str,
        version: u64,
        now: OffsetDateTime,
        lease: std::time::Duration,
        presented: &[crate::dns::Leftover],
    ) -> Result<u64, Error> {
        let key = Key::Lock(name);
        let held = self.load::<LockRecord>(key).await?;
        let ours = |h: &Versioned<LockRecord>| {
            h.version == version || (!run_id.is_empty() && h.data.run_id == run_id)
        };
        let Some(mut held) = held.filter(ours) else {
            return Err(Error::Vault(vault::Error::CasConflict {
                path: self.display(key),
                expected: version,
            }));
        };
        held.data.expires_at = now + lease;
        held.data.presented = presented.to_vec();
        self.save(key, &held.data, Expect::Version(held.version))
            .await
    }

    /// The lock of `name`, if any (for `unlock` and `show`).
    pub async fn load_lock(&self, name: &CertName) -> Result<Option<Versioned<LockRecord>>, Error> {
        self.load(Key::Lock(name)).await
    }

    /// The lock of `name`, or why its document is not valid (`Err` only for Vault).
    pub async fn load_lock_or_invalid(
        &self,
        name: &CertName,
    ) -> Result<Result<Option<Versioned<LockRecord>>, Error>, Error> {
        self.load_or_invalid(Key::Lock(name)).await
    }

    /// Release the lock of `name`, which this run (`run_id`) holds, keeping `leftovers`
    /// (DNS-01 values that could not be removed) for the next run: the lease is written
    /// lapsed, so the next run takes it over at once and removes them. Without leftovers
    /// the lock is deleted.
    pub async fn release_lock(
        &self,
        name: &CertName,
        run_id: &str,
        now: OffsetDateTime,
        leftovers: &[crate::dns::Leftover],
    ) -> Result<(), Error> {
        if leftovers.is_empty() {
            return self.unlock_cert(name).await;
        }
        let key = Key::Lock(name);
        // Not valid any more (overwritten): not ours; the next run takes it over.
        let (read, _) = self.load_read_replaceable::<LockRecord>(key).await?;
        let Some(mut held) = read.doc.filter(|d| d.data.run_id == run_id) else {
            // Not ours any more: its holder keeps its own list.
            return Ok(());
        };
        held.data.expires_at = now;
        held.data.presented = leftovers.to_vec();
        self.save(key, &held.data, read.expect).await.map(drop)
    }

    /// Release the lock of `name`: removed with its history, so `locks/` lists only the
    /// locks that are held or left. A policy printed before this version may not grant
    /// that (metadata delete): then the latest version is deleted (the history stays).
    pub async fn unlock_cert(&self, name: &CertName) -> Result<(), Error> {
        let path = Key::Lock(name).path(&self.prefix);
        match self.kv.destroy(&path).await {
            Err(vault::Error::Forbidden { .. }) => Ok(self.kv.delete(&path).await?),
            r => Ok(r?),
        }
    }

    /// The certificates with a lock document: held, released with DNS-01 values left, or
    /// left by a run that died or lost Vault (and, from versions before locks were
    /// removed with their history, released ones: their latest version is deleted).
    pub async fn list_locks(&self) -> Result<Vec<CertName>, Error> {
        let keys = self.kv.list(&Key::Locks.path(&self.prefix)).await?;
        let mut names: Vec<CertName> = keys
            .iter()
            .filter(|k| !k.ends_with('/'))
            .filter_map(|k| k.parse().ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Remove the history of a released lock (its latest version deleted by an older
    /// version), so it is no longer listed.
    pub async fn forget_lock(&self, name: &CertName) -> Result<(), Error> {
        Ok(self.kv.destroy(&Key::Lock(name).path(&self.prefix)).await?)
    }
}
