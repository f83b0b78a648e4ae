//! Which CAs a `renew` run still starts orders with. A CA that rate-limits new orders (429,
//! `rateLimited`) is paused as long as it asks, and the pause is stored at
//! `pauses/<account>` so the next run honours it too. A CA that times out or answers 5xx
//! several times in a row (`--ca-failures`, default 3) gets no new orders for the rest of
//! the run. Either way the certificates left are `deferred`, with the reason.

use std::collections::BTreeMap;
use std::sync::Mutex;

use time::OffsetDateTime;

use super::context::Context;
use crate::model::SCHEMA_VERSION;
use crate::records::PauseRecord;
use crate::text::rfc3339;

/// Why a CA gets no new orders.
#[derive(Debug, Clone)]
pub(super) struct Paused {
    pub reason: String,
    /// The pause was caused by failures (the run exits non-zero), not a rate limit.
    pub failing: bool,
}

#[derive(Default)]
struct CaState {
    failures_in_a_row: u32,
    paused: Option<Paused>,
    /// The CA accepted `replaces` without reflecting it: do not send it again this run.
    replaces_ignored: bool,
}

pub(super) struct Gate {
    limit: u32,
    cas: Mutex<BTreeMap<String, CaState>>,
}

impl Gate {
    pub fn new(limit: u32) -> Self {
        Self {
            limit: limit.max(1),
            cas: Mutex::new(BTreeMap::new()),
        }
    }

    fn with<T>(&self, account: &str, f: impl FnOnce(&mut CaState) -> T) -> T {
        let mut cas = self.cas.lock().unwrap_or_else(|p| p.into_inner());
        f(cas.entry(account.to_string()).or_default())
    }

    /// Honour a stored pause of `account` (read once per run), for at most
    /// [`MAX_PAUSE`](crate::defaults::MAX_PAUSE) from when it was stored.
    pub async fn load(&self, ctx: &Context, account: &str, now: OffsetDateTime) {
        match ctx.store.load_pause(account).await {
            Ok(Some(p)) => {
                let Some(until) = pause_binds(&p.data, p.written_at, now) else {
                    return;
                };
                if until < p.data.until {
                    tracing::warn!(
                        account,
                        stored_until = %rfc3339(p.data.until),
                        "the stored CA pause reaches past the longest pause certvault honours: honoured until {}",
                        rfc3339(until)
                    );
                }
                let reason = format!(
                    "deferred: the CA at {} paused new orders until {} ({})",
                    p.data.directory,
                    rfc3339(until),
                    p.data.reason
                );
                self.with(account, |s| {
                    s.paused = Some(Paused {
                        reason,
                        failing: false,
                    })
                });
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(
                    account,
                    "could not read the CA pause: {}",
                    crate::text::chain(&e)
                )
            }
        }
    }

    /// Whether a CA was paused because it failed (the run then exits non-zero).
    pub fn any_failing(&self) -> bool {
        let cas = self.cas.lock().unwrap_or_else(|p| p.into_inner());
        cas.values()
            .any(|s| s.paused.as_ref().is_some_and(|p| p.failing))
    }

    pub fn paused(&self, account: &str) -> Option<Paused> {
        self.with(account, |s| s.paused.clone())
    }

    pub fn replaces_ignored(&self, account: &str) -> bool {
        self.with(account, |s| s.replaces_ignored)
    }

    pub fn ignore_replaces(&self, account: &str) {
        self.with(account, |s| s.replaces_ignored = true)
    }

    pub fn succeeded(&self, account: &str) {
        self.with(account, |s| s.failures_in_a_row = 0)
    }

    /// A timeout or 5xx: after `limit` in a row, no new orders to this CA this run.
    pub fn unavailable(&self, account: &str, directory: &str) {
        let limit = self.limit;
        self.with(account, |s| {
            s.failures_in_a_row += 1;
            if s.failures_in_a_row >= limit && s.paused.is_none() {
                tracing::error!(directory, "the CA failed {limit} orders in a row (timeouts or 5xx): no new orders to it in this run");
                s.paused = Some(Paused {
                    reason: format!("deferred: the CA at {directory} failed {limit} orders in a row (timeouts or 5xx answers); no new orders to it in this run"),
                    failing: true,
                });
            }
        })
    }

    /// A 429 / `rateLimited` (`refusal`): paused until `until`, stored for the next runs too
    /// (unless `dry_run`); the pause's reason and the stored record give the refusal as text.
    pub async fn rate_limited(
        &self,
        ctx: &Context,
        account: &str,
        directory: &str,
        until: OffsetDateTime,
        refusal: &crate::Error,
        now: OffsetDateTime,
    ) {
        let detail = crate::text::chain(refusal);
        // A CA asking for longer than the longest pause is asked again then.
        let until = until.min(now + crate::defaults::MAX_PAUSE);
        let reason = format!(
            "deferred: the CA at {directory} rate-limited new orders until {} ({detail})",
            rfc3339(until)
        );
        tracing::warn!(directory, until = %rfc3339(until), "the CA rate-limited a new order: no new orders to it until then");
        let first = self.with(account, |s| {
            let first = s.paused.is_none();
            s.paused = Some(Paused {
                reason,
                failing: false,
            });
            first
        });
        if !first {
            return;
        }
        let record = PauseRecord {
            schema: SCHEMA_VERSION,
            directory: directory.to_string(),
            until,
            reason: detail,
            since: now,
        };
        let expect = match ctx.store.load_pause_for_write(account).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(
                    account,
                    "could not read the CA pause: {}",
                    crate::text::chain(&e)
                );
                return;
            }
        };
        if let Err(e) = ctx.store.save_pause(account, &record, expect).await {
            tracing::warn!(
                account,
                "could not store the CA pause (this run still honours it): {}",
                crate::text::chain(&e)
            );
        }
    }
}

/// Until when a stored pause defers orders at `now`, if it does: its `until`, but never
/// past [`MAX_PAUSE`](crate::defaults::MAX_PAUSE) after it was stored (Vault's write time
/// `written_at` on KV v2; its own `since` on KV v1, where one later than now binds not
/// at all).
pub(super) fn pause_binds(
    pause: &PauseRecord,
    written_at: Option<i64>,
    now: OffsetDateTime,
) -> Option<OffsetDateTime> {
    let stored = match written_at.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()) {
        Some(t) => t,
        // A pause "stored" in the future was not written by a run.
        None if pause.since > now + time::Duration::minutes(5) => return None,
        None => pause.since,
    };
    let until = pause.until.min(stored + crate::defaults::MAX_PAUSE);
    (until > now).then_some(until)
}

/// The default pause when a rate-limited CA gives no Retry-After.
pub(super) const DEFAULT_PAUSE: time::Duration = time::Duration::hours(1);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::MAX_PAUSE;
    use time::macros::datetime;

    fn pause(until: OffsetDateTime, since: OffsetDateTime) -> PauseRecord {
        PauseRecord {
            schema: SCHEMA_VERSION,
            directory: "https://ca.test/dir".into(),
            until,
            reason: "rateLimited".into(),
            since,
        }
    }

    #[test]
    fn a_pause_binds_for_max_pause_at_most_from_when_vault_stored_it() {
        let now = datetime!(2026-12-05 12:00 UTC);
        let hour = time::Duration::hours(1);
        let forever = datetime!(2099-01-01 0:00 UTC);
        // As asked, when shorter.
        let p = pause(now + hour, now - hour);
        let stored = Some((now - hour).unix_timestamp());
        assert_eq!(pause_binds(&p, stored, now), Some(now + hour));
        // A pause "until 2099" binds until MAX_PAUSE after Vault stored it ...
        let p = pause(forever, now - hour);
        assert_eq!(pause_binds(&p, stored, now), Some(now - hour + MAX_PAUSE));
        // ... and not at all once that has passed, whatever `since` claims.
        let p = pause(forever, now);
        let long_ago = Some((now - MAX_PAUSE - hour).unix_timestamp());
        assert_eq!(pause_binds(&p, long_ago, now), None);
        // KV v1 (no write time): its own `since`, which cannot be in the future.
        let p = pause(forever, forever);
        assert_eq!(pause_binds(&p, None, now), None);
        let p = pause(forever, now - hour);
        assert_eq!(pause_binds(&p, None, now), Some(now - hour + MAX_PAUSE));
        let p = pause(forever, now - MAX_PAUSE);
        assert_eq!(pause_binds(&p, None, now), None);
        // Over.
        let p = pause(now - hour, now - 2 * hour);
        assert_eq!(pause_binds(&p, stored, now), None);
    }
}
