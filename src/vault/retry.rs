//! Bounded retries for idempotent requests: exponential backoff with jitter, within a total
//! time budget (`--vault-retry-timeout`, default [`crate::defaults::VAULT_RETRY_TIMEOUT`], longer than a Raft
//! election: OpenBao elects a new leader about 11 s after the old one dies).
//!
//! The budget is the run's, not each request's: every request of a run shares one
//! [`Outage`], which starts with the first attempt that failed after Vault last answered.
//! Once an outage has lasted the budget, the run gives up on Vault: every later request
//! fails at once ([`Failure::Abandoned`]) instead of waiting its own budget, so a run with
//! Vault down ends within one budget (plus one request timeout) of the outage's start.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::http::Failure;

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(4);

/// Since when Vault has not answered this run (`None`: it answered the last request).
#[derive(Debug, Default)]
pub struct Outage {
    since: Mutex<Option<Instant>>,
    /// Set once an outage has lasted the budget: the run gives up on Vault for good.
    abandoned: Mutex<Option<Duration>>,
}

impl Outage {
    fn since(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.since.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Vault answered (any status that is not a 5xx or 429).
    fn answered(&self) {
        *self.since() = None;
    }

    /// An attempt that started at `at` failed: the outage's start.
    fn failed(&self, at: Instant) -> Instant {
        *self.since().get_or_insert(at)
    }

    /// How long the outage had lasted when the run gave up on Vault, if it did.
    pub fn abandoned(&self) -> Option<Duration> {
        *self.abandoned.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Give up on Vault; `true` the first time.
    fn abandon(&self) -> (Duration, bool) {
        let waited = self.since().map_or(Duration::ZERO, |s| s.elapsed());
        let mut abandoned = self.abandoned.lock().unwrap_or_else(|p| p.into_inner());
        let first = abandoned.is_none();
        (*abandoned.get_or_insert(waited), first)
    }
}

/// The retry state of one logical request.
pub struct Backoff {
    deadline: Instant,
    budget: Duration,
    delay: Duration,
    started: Instant,
    attempt_started: Instant,
    outage: Arc<Outage>,
    pub attempts: u32,
}

impl Backoff {
    /// A request with a budget of its own (the first contact, a login).
    pub fn new(budget: Duration) -> Self {
        Self::shared(budget, Arc::default())
    }

    /// A request of a run whose requests share `outage`.
    pub fn shared(budget: Duration, outage: Arc<Outage>) -> Self {
        let now = Instant::now();
        Self {
            deadline: now + budget,
            budget,
            delay: FIRST_DELAY,
            started: now,
            attempt_started: now,
            outage,
            attempts: 0,
        }
    }

    /// Before each attempt: `Err` once the run has given up on Vault.
    pub fn attempt(&mut self) -> Result<(), Failure> {
        if let Some(waited) = self.outage.abandoned() {
            return Err(Failure::Abandoned { waited });
        }
        self.attempt_started = Instant::now();
        Ok(())
    }

    /// After an attempt that Vault answered (with anything but a 5xx or 429).
    pub fn answered(&self) {
        self.outage.answered();
    }

    /// How long this request has been retried.
    pub fn waited(&self) -> Duration {
        self.started.elapsed()
    }

    /// After a failed attempt: sleep and return `true` if `failure` is worth another attempt
    /// and the budget allows one; else `false` at once.
    pub async fn retry(&mut self, failure: &Failure, what: &str) -> bool {
        self.attempts += 1;
        if !failure.is_transient() {
            if failure.status().is_some() {
                self.answered();
            }
            return false;
        }
        let since = self.outage.failed(self.attempt_started);
        let now = Instant::now();
        let deadline = self.deadline.min(since + self.budget);
        if now >= deadline {
            let (waited, first) = if now >= since + self.budget {
                self.outage.abandon()
            } else {
                (Duration::ZERO, false)
            };
            if first {
                tracing::error!(
                    "Vault has not answered for {} s (--vault-retry-timeout {} s): this run gives up on Vault; what is not written yet is reported",
                    waited.as_secs(),
                    self.budget.as_secs()
                );
            }
            return false;
        }
        // Full jitter over the upper half: runs that failed together do not retry together.
        let half = self.delay / 2;
        let sleep = (half + jitter(half)).min(deadline - now);
        tracing::warn!(
            attempt = self.attempts,
            "Vault unavailable on {what} ({}); retrying in {} ms",
            summary(failure),
            sleep.as_millis()
        );
        tokio::time::sleep(sleep).await;
        self.delay = (self.delay * 2).min(MAX_DELAY);
        true
    }
}

/// A one-line description of a failure for the retry log (no secrets: statuses and kinds).
fn summary(f: &Failure) -> String {
    match f {
        Failure::Status { code, detail, .. } => format!("{code}: {detail}"),
        Failure::NoAnswer { why, .. } => format!("{why:?}").to_lowercase(),
        Failure::Other(e) => e.to_string(),
        Failure::Abandoned { .. } => "given up".into(),
    }
}

/// A random duration in `[0, max)`.
fn jitter(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    Duration::from_nanos(crate::random::below(
        max.as_nanos().min(u64::MAX as u128) as u64
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_below_its_bound() {
        let max = Duration::from_millis(50);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let j = jitter(max);
            assert!(j < max);
            seen.insert(j);
        }
        assert!(seen.len() > 100, "not random: {}", seen.len());
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }

    #[tokio::test]
    async fn gives_up_after_the_budget_and_never_on_a_4xx() {
        let unavailable = Failure::Status {
            code: 503,
            detail: "Vault is sealed".into(),
            body: None,
        };
        let mut b = Backoff::new(Duration::from_millis(400));
        let mut n = 0;
        while b.retry(&unavailable, "read x").await {
            n += 1;
            assert!(n < 100);
        }
        assert!(b.waited() >= Duration::from_millis(400));
        assert!((2..10).contains(&n), "{n} retries in 400 ms");
        let forbidden = Failure::Status {
            code: 403,
            detail: "permission denied".into(),
            body: None,
        };
        assert!(
            !Backoff::new(Duration::from_secs(10))
                .retry(&forbidden, "x")
                .await
        );
    }

    #[tokio::test]
    async fn an_outage_costs_the_run_one_budget_in_all() {
        let unavailable = Failure::NoAnswer {
            why: super::super::http::NoAnswer::Refused,
            source: "refused".into(),
        };
        let outage = Arc::new(Outage::default());
        let budget = Duration::from_millis(300);
        let started = Instant::now();
        let mut first = Backoff::shared(budget, outage.clone());
        while first.attempt().is_ok() && first.retry(&unavailable, "read a").await {}
        assert!(outage.abandoned().is_some(), "the run gave up on Vault");
        // A later request of the same run is not sent, and does not wait a budget of its own.
        let mut second = Backoff::shared(budget, outage.clone());
        assert!(matches!(second.attempt(), Err(Failure::Abandoned { .. })));
        assert!(started.elapsed() < budget * 2, "{:?}", started.elapsed());
        // Another run (its own outage) starts afresh.
        assert!(Backoff::new(budget).attempt().is_ok());
    }

    #[tokio::test]
    async fn an_answer_ends_the_outage() {
        let unavailable = Failure::Status {
            code: 503,
            detail: "sealed".into(),
            body: None,
        };
        let outage = Arc::new(Outage::default());
        let budget = Duration::from_millis(400);
        let mut a = Backoff::shared(budget, outage.clone());
        a.attempt().unwrap();
        assert!(a.retry(&unavailable, "read a").await);
        a.answered();
        tokio::time::sleep(budget).await;
        // Vault answered meanwhile: a new failure starts a new outage with a full budget.
        let mut b = Backoff::shared(budget, outage.clone());
        b.attempt().unwrap();
        assert!(b.retry(&unavailable, "read b").await);
        assert!(outage.abandoned().is_none());
    }
}
