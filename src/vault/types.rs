//! The settings and the shapes of what the KV client reads and writes.

use std::path::PathBuf;
use std::time::Duration;

use crate::auth::Method;

use super::token::Lifetime;

/// The KV secrets engine version of the mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvVersion {
    V1,
    V2,
}

/// How to reach Vault. Mirrors Vault's own environment variables.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `VAULT_ADDR` (or `BAO_ADDR`)
    pub addr: String,
    /// How to get a token: `VAULT_TOKEN` / `VAULT_TOKEN_FILE` / `~/.vault-token`, or a login.
    pub auth: Method,
    /// `--kv-version`: `None` detects it from the mount.
    pub kv_version: Option<KvVersion>,
    /// `VAULT_NAMESPACE` (Vault Enterprise / OpenBao namespaces)
    pub namespace: Option<String>,
    /// `VAULT_CACERT`: a PEM file trusted in addition to the system roots.
    pub cacert: Option<PathBuf>,
    /// The KV v2 mount (`--mount` / `CERTVAULT_MOUNT`).
    pub mount: String,
    /// How long one idempotent request is retried while Vault is unavailable
    /// (`--vault-retry-timeout`).
    pub retry: Duration,
    /// How long the token must live for this command (`None`: no ACME orders).
    pub lifetime: Option<Lifetime>,
}

/// A document and the KV v2 version it was read at.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub data: T,
    pub version: u64,
    /// When Vault wrote this version (KV v2 `created_time`, Unix seconds; `None` on KV v1).
    /// Set by the server, so a writer of the document cannot choose it.
    pub written_at: Option<i64>,
}

/// A document as read (`None`: never written, or its latest version is deleted) and what a
/// write that replaces it must expect.
#[derive(Debug, Clone)]
pub struct Read<T> {
    pub doc: Option<Versioned<T>>,
    pub expect: Expect,
}

/// What a write expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Create only: fail if the document exists (`cas = 0`).
    Absent,
    /// Overwrite exactly this version (`cas = N`).
    Version(u64),
}
