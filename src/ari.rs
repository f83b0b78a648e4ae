//! ACME Renewal Information ([RFC 9773]): what certvault keeps of a certificate's renewal
//! window between runs, and the pure rules for when to ask the CA again.
//!
//! Nothing here does I/O or reads the clock: the time and the random source are arguments.
//! The decision that uses the window is [`crate::renew::decide`].
//!
//! [RFC 9773]: https://www.rfc-editor.org/rfc/rfc9773.html

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// What the CA said about one certificate's renewal, stored under `ari` in `certs/<NAME>`
/// (and the key-free `status/<NAME>`). `list --output json` shows the first six fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AriState {
    /// The suggested window (RFC 9773 §4.2); `None` until a fetch succeeded.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub window_start: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub window_end: Option<OffsetDateTime>,
    /// The time picked uniformly inside the window; kept while the window stays the same.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub chosen_at: Option<OffsetDateTime>,
    /// Not before this time is the CA asked again (its Retry-After, clamped to 1 min..1 day,
    /// or the backoff after a failure).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub retry_after: Option<OffsetDateTime>,
    #[serde(default)]
    pub explanation_url: Option<String>,
    /// The last successful fetch.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub fetched_at: Option<OffsetDateTime>,
    /// Failed fetches in a row (RFC 9773 §4.3: kept so a frequent job still backs off).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failures: u32,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_failure_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The serial of the certificate these facts are about (a renewed certificate starts
    /// afresh).
    #[serde(default)]
    pub serial: String,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The public view: exactly the contract fields of `list --output json`.
#[derive(Debug, Clone, Serialize)]
pub struct AriView {
    pub window_start: Option<String>,
    pub window_end: Option<String>,
    pub chosen_at: Option<String>,
    pub retry_after: Option<String>,
    pub explanation_url: Option<String>,
    pub fetched_at: Option<String>,
}

impl AriState {
    /// Whether `other` says the same about the same certificate (window, chosen time,
    /// explanation), differing at most in when to ask again: such a change is kept in the
    /// key-free status document only, so KV history of the record is not spent on it.
    pub fn same_window(&self, other: &AriState) -> bool {
        self.serial == other.serial
            && self.window_start == other.window_start
            && self.window_end == other.window_end
            && self.chosen_at == other.chosen_at
            && self.explanation_url == other.explanation_url
    }

    /// The state of the record (`self`) with the newer fetch timing the status document
    /// holds for the same window (`status`), if it is newer.
    pub fn with_timing_of(&self, status: Option<&AriState>) -> AriState {
        let Some(s) = status.filter(|s| self.same_window(s)) else {
            return self.clone();
        };
        let last = |a: &AriState| a.fetched_at.max(a.last_failure_at);
        if last(s) <= last(self) {
            return self.clone();
        }
        AriState {
            retry_after: s.retry_after,
            fetched_at: s.fetched_at,
            failures: s.failures,
            last_failure_at: s.last_failure_at,
            last_error: s.last_error.clone(),
            ..self.clone()
        }
    }

    pub fn view(&self) -> AriView {
        let t = |t: Option<OffsetDateTime>| t.map(crate::text::rfc3339);
        AriView {
            window_start: t(self.window_start),
            window_end: t(self.window_end),
            chosen_at: t(self.chosen_at),
            retry_after: t(self.retry_after),
            explanation_url: self.explanation_url.clone(),
            fetched_at: t(self.fetched_at),
        }
    }
}

/// A usable window: one that can be about the certificate. A window that is over before
/// the certificate's notBefore is about an earlier one (or wrong) and is ignored. A window
/// that starts before notBefore but reaches past it is kept: that is how a CA asks for a
/// certificate to be replaced now (acme2certifier's `renewal_force` answers
/// [now - 364 d, now + 1 d]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    pub chosen_at: OffsetDateTime,
    /// How long the CA asked to wait between fetches (0 when unknown).
    pub retry_every: Duration,
}

impl AriState {
    /// The window to decide with, if it is usable for a certificate valid from `not_before`.
    pub fn window(&self, not_before: OffsetDateTime) -> Option<Window> {
        let (start, end, chosen_at) = (self.window_start?, self.window_end?, self.chosen_at?);
        if end <= start || end <= not_before || chosen_at < start || chosen_at > end {
            return None;
        }
        let retry_every = match (self.fetched_at, self.retry_after) {
            (Some(f), Some(r)) if r > f && self.failures == 0 => r - f,
            _ => Duration::ZERO,
        };
        Some(Window {
            start,
            end,
            chosen_at,
            retry_every,
        })
    }
}

/// The random source for the chosen time, injected (tests pass a fixed one).
pub trait Dice {
    /// A number in `0..n` (uniform); `n` is at least 1.
    fn below(&mut self, n: u64) -> u64;
}

/// Retry-After is clamped to at least one minute and at most one day (RFC 9773 §4.3.2).
pub fn clamp_retry_after(d: Duration) -> Duration {
    d.clamp(Duration::minutes(1), Duration::days(1))
}

/// How long to wait after the `failures`-th failed fetch in a row (RFC 9773 §4.3.3):
/// a temporary error (timeout, 5xx, no connection) backs off exponentially from one minute
/// up to six hours; a long-term error (a 4xx, an invalid window, no Retry-After) waits six
/// hours.
pub fn backoff(failures: u32, long_term: bool) -> Duration {
    let cap = Duration::hours(6);
    if long_term {
        return cap;
    }
    let exp = failures.saturating_sub(1).min(16);
    (Duration::minutes(1) * 2i32.pow(exp)).min(cap)
}

/// Whether the CA may be asked about the certificate with `serial` now: never before the
/// stored Retry-After (or backoff), never for an expired certificate.
pub fn fetch_due(
    now: OffsetDateTime,
    state: Option<&AriState>,
    serial: &str,
    not_after: OffsetDateTime,
) -> bool {
    if now >= not_after {
        return false;
    }
    match state {
        Some(s) if s.serial == serial => s.retry_after.is_none_or(|r| now >= r),
        _ => true,
    }
}

/// The state after a successful fetch: the window, the chosen time (kept while the window
/// is unchanged, else picked uniformly inside it) and the next allowed fetch.
#[allow(clippy::too_many_arguments)]
pub fn fetched(
    now: OffsetDateTime,
    previous: Option<&AriState>,
    serial: &str,
    start: OffsetDateTime,
    end: OffsetDateTime,
    explanation_url: Option<String>,
    retry_after: Duration,
    dice: &mut dyn Dice,
) -> AriState {
    let previous = previous.filter(|p| p.serial == serial);
    let same = previous.is_some_and(|p| p.window_start == Some(start) && p.window_end == Some(end));
    let chosen_at = match previous.and_then(|p| p.chosen_at) {
        Some(c) if same => c,
        _ => {
            let span = (end - start).whole_seconds().max(0) as u64;
            start + Duration::seconds(dice.below(span.max(1)) as i64)
        }
    };
    AriState {
        window_start: Some(start),
        window_end: Some(end),
        chosen_at: Some(chosen_at),
        retry_after: Some(now + clamp_retry_after(retry_after)),
        explanation_url,
        fetched_at: Some(now),
        failures: 0,
        last_failure_at: None,
        last_error: None,
        serial: serial.to_string(),
    }
}

/// The state after a failed fetch: the last good window stays, the failure is counted and
/// the next fetch waits out the backoff.
pub fn failed(
    now: OffsetDateTime,
    previous: Option<&AriState>,
    serial: &str,
    error: &str,
    long_term: bool,
) -> AriState {
    let mut s = previous
        .filter(|p| p.serial == serial)
        .cloned()
        .unwrap_or(AriState {
            window_start: None,
            window_end: None,
            chosen_at: None,
            retry_after: None,
            explanation_url: None,
            fetched_at: None,
            failures: 0,
            last_failure_at: None,
            last_error: None,
            serial: serial.to_string(),
        });
    s.failures = s.failures.saturating_add(1);
    s.last_failure_at = Some(now);
    s.last_error = Some(error.to_string());
    s.retry_after = Some(now + backoff(s.failures, long_term));
    s
}

#[cfg(test)]
mod tests {

    #[test]
    fn newer_timing_of_the_same_window_comes_from_the_status() {
        let t = |s: i64| OffsetDateTime::from_unix_timestamp(s).unwrap();
        let record = AriState {
            window_start: Some(t(100)),
            window_end: Some(t(200)),
            chosen_at: Some(t(150)),
            fetched_at: Some(t(10)),
            retry_after: Some(t(20)),
            serial: "01".into(),
            ..Default::default()
        };
        let status = AriState {
            fetched_at: Some(t(30)),
            retry_after: Some(t(40)),
            ..record.clone()
        };
        assert!(record.same_window(&status));
        let merged = record.with_timing_of(Some(&status));
        assert_eq!(
            (merged.fetched_at, merged.retry_after),
            (Some(t(30)), Some(t(40)))
        );
        assert_eq!(merged.chosen_at, record.chosen_at);
        // Older timing, another window or another certificate: the record's own.
        assert_eq!(status.with_timing_of(Some(&record)), status);
        let other = AriState {
            chosen_at: Some(t(160)),
            ..status.clone()
        };
        assert_eq!(record.with_timing_of(Some(&other)), record);
        let renewed = AriState {
            serial: "02".into(),
            ..status
        };
        assert_eq!(record.with_timing_of(Some(&renewed)), record);
        assert_eq!(record.with_timing_of(None), record);
    }

    use super::*;
    use time::macros::datetime;

    struct Fixed(u64);
    impl Dice for Fixed {
        fn below(&mut self, n: u64) -> u64 {
            self.0 % n
        }
    }

    const T0: OffsetDateTime = datetime!(2026-06-01 0:00 UTC);

    /// A fetch at T0 of a one-day window from T0, asked again after an hour.
    fn one_day(previous: Option<&AriState>) -> AriState {
        at(
            T0,
            previous,
            "01",
            (T0, T0 + Duration::days(1)),
            Duration::hours(1),
            0,
        )
    }

    /// [`fetched`] with the window `(start, end)`, no explanation URL, and dice that give `dice`.
    fn at(
        now: OffsetDateTime,
        previous: Option<&AriState>,
        serial: &str,
        (start, end): (OffsetDateTime, OffsetDateTime),
        retry_after: Duration,
        dice: u64,
    ) -> AriState {
        fetched(
            now,
            previous,
            serial,
            start,
            end,
            None,
            retry_after,
            &mut Fixed(dice),
        )
    }

    #[test]
    fn the_choice_is_inside_the_window_and_kept_while_it_is_unchanged() {
        let (start, end) = (T0, T0 + Duration::days(2));
        let s = at(T0, None, "01", (start, end), Duration::hours(6), 3600);
        assert_eq!(s.chosen_at, Some(start + Duration::hours(1)));
        assert_eq!(s.retry_after, Some(T0 + Duration::hours(6)));
        // Same window, other dice: kept.
        let again = at(
            T0 + Duration::hours(7),
            Some(&s),
            "01",
            (start, end),
            Duration::hours(6),
            7,
        );
        assert_eq!(again.chosen_at, s.chosen_at);
        // Moved window: chosen afresh inside it.
        let moved = at(
            T0,
            Some(&s),
            "01",
            (start - Duration::days(1), start),
            Duration::ZERO,
            7,
        );
        assert_eq!(
            moved.chosen_at,
            Some(start - Duration::days(1) + Duration::seconds(7))
        );
        // Another certificate: chosen afresh.
        let other = at(T0, Some(&s), "02", (start, end), Duration::ZERO, 0);
        assert_eq!(other.chosen_at, Some(start));
        // The largest value the dice give stays inside.
        let last = at(T0, None, "01", (start, end), Duration::ZERO, u64::MAX);
        assert!(last.chosen_at.unwrap() < end);
    }

    #[test]
    fn retry_after_is_clamped_and_honoured() {
        let end = T0 + Duration::days(30);
        let s = at(T0, None, "01", (T0, end), Duration::seconds(5), 0);
        assert_eq!(s.retry_after, Some(T0 + Duration::minutes(1)));
        let s = at(T0, None, "01", (T0, end), Duration::days(9), 0);
        assert_eq!(s.retry_after, Some(T0 + Duration::days(1)));
        // (now, expected)
        for (now, due) in [
            (T0, false),
            (T0 + Duration::hours(23), false),
            (T0 + Duration::days(1), true),
        ] {
            assert_eq!(fetch_due(now, Some(&s), "01", end), due, "{now}");
        }
        assert!(fetch_due(T0, Some(&s), "02", end), "another certificate");
        assert!(fetch_due(T0, None, "01", end), "never fetched");
        assert!(!fetch_due(end, None, "01", end), "expired: not asked");
    }

    #[test]
    fn failures_back_off_and_keep_the_window() {
        let ok = one_day(None);
        let f1 = failed(T0 + Duration::hours(2), Some(&ok), "01", "timeout", false);
        assert_eq!(f1.failures, 1);
        assert_eq!(f1.window_start, ok.window_start);
        assert_eq!(
            f1.retry_after,
            Some(T0 + Duration::hours(2) + Duration::minutes(1))
        );
        let f2 = failed(T0 + Duration::hours(3), Some(&f1), "01", "timeout", false);
        assert_eq!(
            f2.retry_after,
            Some(T0 + Duration::hours(3) + Duration::minutes(2))
        );
        let long = failed(T0, Some(&f2), "01", "404", true);
        assert_eq!(long.failures, 3);
        assert_eq!(long.retry_after, Some(T0 + Duration::hours(6)));
        assert_eq!(backoff(40, false), Duration::hours(6));
        // A success resets the count.
        let back = one_day(Some(&long));
        assert_eq!((back.failures, back.last_error), (0, None));
    }

    #[test]
    fn windows_before_not_before_or_inverted_are_not_used() {
        let s = one_day(None);
        assert!(s.window(T0).is_some());
        assert!(
            s.window(T0 + Duration::hours(1)).is_some(),
            "reaches past notBefore: kept"
        );
        assert!(
            s.window(T0 + Duration::days(1)).is_none(),
            "over before notBefore"
        );
        let mut inverted = s.clone();
        inverted.window_end = Some(T0 - Duration::days(1));
        assert!(inverted.window(T0 - Duration::days(9)).is_none());
    }

    #[test]
    fn a_document_without_failures_or_a_window_loads() {
        let s: AriState = serde_json::from_value(serde_json::json!({"serial": "01"})).unwrap();
        assert_eq!(s.failures, 0);
        assert!(s.window(T0).is_none());
    }
}
