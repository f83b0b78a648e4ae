//! Bounded retries for idempotent requests: exponential backoff with jitter, within a total
//! time budget (`--vault-retry-timeout`, default [`crate::defaults::VAULT_RETRY_TIMEOUT`], longer than a Raft
//! election: OpenBao elects a new leader about 11 s after the old one dies).

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use super::http::Failure;

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(4);

/// The retry state of one logical request.
pub struct Backoff {
    deadline: Instant,
    delay: Duration,
    started: Instant,
    pub attempts: u32,
}

impl Backoff {
    pub fn new(budget: Duration) -> Self {
        let now = Instant::now();
        Self {
            deadline: now + budget,
            delay: FIRST_DELAY,
            started: now,
            attempts: 0,
        }
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
            return false;
        }
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        // Full jitter over the upper half: runs that failed together do not retry together.
        let half = self.delay / 2;
        let sleep = (half + jitter(half)).min(self.deadline - now);
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
    }
}

/// A random duration in `[0, max)`.
fn jitter(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    // RandomState is seeded per instance from the OS: enough randomness for a jitter.
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    Duration::from_nanos(r % max.as_nanos().max(1) as u64)
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
}
