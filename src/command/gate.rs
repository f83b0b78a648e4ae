//! Which CAs a `renew` run still starts orders with. A CA that rate-limits new orders (429,
//! `rateLimited`) is paused as long as it asks, and the pause is stored at
//! `pauses/<account>` so the next run honours it too. A CA that times out or answers 5xx
//! several times in a row (`--ca-failures`, default 3) gets no new orders for the rest of
//! the run. Either way the certificates left are `deferred`, with the reason.

use std::collections::BTreeMap;
use std::sync::Mutex;

use time::OffsetDateTime;

use super::Context;
use crate::model::{PauseRecord, SCHEMA_VERSION};
use crate::renew::rfc3339;

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

    /// Honour a stored pause of `account` (read once per run).
    pub async fn load(&self, ctx: &Context, account: &str, now: OffsetDateTime) {
        match ctx.store.load_pause(account).await {
            Ok(Some(p)) if p.data.until > now => {
                let reason = format!(
                    "deferred: the CA at {} paused new orders until {} ({})",
                    p.data.directory,
                    rfc3339(p.data.until),
                    p.data.reason
                );
                self.with(account, |s| {
                    s.paused = Some(Paused {
                        reason,
                        failing: false,
                    })
                });
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(
                    account,
                    "could not read the CA pause: {}",
                    crate::error::chain(&e)
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
        let detail = crate::error::chain(refusal);
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
                    crate::error::chain(&e)
                );
                return;
            }
        };
        if let Err(e) = ctx.store.save_pause(account, &record, expect).await {
            tracing::warn!(
                account,
                "could not store the CA pause (this run still honours it): {}",
                crate::error::chain(&e)
            );
        }
    }
}

/// The default pause when a rate-limited CA gives no Retry-After.
pub(super) const DEFAULT_PAUSE: time::Duration = time::Duration::hours(1);
