//! A small KV client over vaultrs: read with version, write with check-and-set, list.
//! KV version 2 mounts get check-and-set; version 1 mounts have no versions (reads report
//! version 0) and no check-and-set, so a concurrent writer there is not detected.
//!
//! Paths given here are relative to the mount; `store` is the only caller that spells them.
//!
//! One file per concern (`mod.rs` only declares them and re-exports):
//! - [`types`]: the settings, and versioned documents and check-and-set expectations;
//! - [`error`]: what went wrong, and the one mapping of a failed request to it;
//! - [`client`]: the client: connect (address, server, login, token, mount) and close;
//! - [`probe`]: is it Vault at all (`sys/health`);
//! - [`http`]: what a failed request was (classified once for every caller), addresses,
//!   raw requests for endpoints vaultrs has no API for;
//! - [`retry`]: bounded backoff with jitter for idempotent requests;
//! - [`kv`]: read, write (check-and-set, safe to retry), delete, list;
//! - [`login`]: AppRole, Kubernetes and JWT logins;
//! - [`token`]: the token's lifetime: the start-up check, renewal while the run lasts;
//! - [`server`]: the mount and its KV version, `sys/capabilities-self`.

mod client;
mod error;
mod http;
mod kv;
mod login;
mod probe;
mod retry;
mod server;
mod token;
mod types;

pub use client::Kv;
pub use error::Error;
pub use token::Lifetime;
pub use types::{Expect, KvVersion, Read, Settings, Versioned};
