//! Every default setting, in one place: the flags' defaults, the library's fallbacks and the
//! README's Settings table all read these.

use std::time::Duration;

/// `renew --concurrency`: orders that run at once.
pub const CONCURRENCY: usize = 8;
/// `renew --ca-failures`: failed orders in a row before a CA is paused for the run.
pub const CA_FAILURES: u32 = 3;
/// `--lock-lease`: how long a certificate's lock holds without being renewed.
pub const LOCK_LEASE: Duration = Duration::from_secs(60);
/// The longest `--lock-lease` accepted (and the longest a stored lease may run).
pub const MAX_LOCK_LEASE: Duration = Duration::from_secs(600);
/// The shortest `--lock-lease` accepted.
pub const MIN_LOCK_LEASE: Duration = Duration::from_secs(3);
/// `--validation-timeout`: how long the CA may take to validate an order's challenges.
pub const VALIDATION_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the CA may take to issue a finalized order (no flag).
pub const ISSUANCE_TIMEOUT: Duration = Duration::from_secs(300);
/// `--propagation-timeout`: how long every authoritative nameserver may take to serve a
/// challenge record.
pub const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(300);
/// `--propagation-interval`: how often the authoritative nameservers are asked.
pub const PROPAGATION_INTERVAL: Duration = Duration::from_secs(1);
/// One DNS query of the zone lookup and the propagation check.
pub const DNS_QUERY_TIMEOUT: Duration = Duration::from_secs(3);
/// `--authoritative-port`: where the authoritative nameservers are asked.
pub const AUTHORITATIVE_PORT: u16 = 53;
/// `--vault-retry-timeout`: how long one Vault request is retried while Vault is
/// unavailable; longer than a Raft election.
pub const VAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(60);
/// `--ttl` of the challenge records of the API providers (seconds).
pub const RECORD_TTL: u32 = 60;
/// Cloudflare's `--ttl`: 120 s, the shortest TTL every Cloudflare plan accepts.
pub const CLOUDFLARE_RECORD_TTL: u32 = 120;
/// How long an auth, cleanup or deploy hook may run before its process group is killed.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(300);
/// The longest a stored CA pause (`pauses/<account>`, written after a rate limit) defers
/// orders, counted from when Vault stored it, whatever `until` it names: the renew role
/// can write pauses, so a forged one defers orders for this long at most. A CA that asks
/// for longer is asked again after this (one order).
pub const MAX_PAUSE: time::Duration = time::Duration::hours(24);
/// The longest `renew --jitter`: the run logs in and picks what is due before it waits, so a
/// longer wait would work from an old picture (and outlive short tokens); spread runs further
/// through the schedule.
pub const MAX_JITTER: Duration = Duration::from_secs(3600);

/// `--index-grow-above`: the renewal index grows when the fleet has more certificates than
/// this per index document on average. At about 450 bytes an entry, 320 entries are
/// 144 KiB, and the fullest of thousands of documents stays below 256 KiB (Raft's default
/// entry limit is 1 MiB).
pub const INDEX_GROW_ABOVE: u64 = 320;
