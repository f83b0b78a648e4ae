//! The renewal decision over `now` with ARI (a child of `renew::tests`).

use super::*;

/// The decision over `now` with ARI: window in the past and the future, a window that
/// starts before notBefore, the safety net, Retry-After, failure backoff, revocation.
#[test]
fn ari_decision_table() {
    use crate::ari::{failed, fetched, Dice};
    struct Zero;
    impl Dice for Zero {
        fn below(&mut self, _: u64) -> u64 {
            0
        }
    }
    let names = ["example.com"];
    let c90 = current(90, &names, KeyType::EcdsaP256);
    let nb = c90.not_before;
    let day = |n: i64| nb + time::Duration::days(n);
    let hour = |n: i64| nb + time::Duration::hours(n);
    let plain = spec(&names, KeyType::EcdsaP256, None);
    // A lifetime rule relaxed to "due at once": ARI still decides.
    let relaxed = spec(&names, KeyType::EcdsaP256, Some("89d"));
    let ari = |start: OffsetDateTime, end: OffsetDateTime, retry: time::Duration| {
        fetched(day(1), None, "01", start, end, None, retry, &mut Zero)
    };
    let future = ari(day(70), day(80), time::Duration::hours(6));
    let past = ari(day(2), day(3), time::Duration::hours(6));
    // Over before notBefore: about an earlier certificate.
    let before_nb = ari(
        nb - time::Duration::days(9),
        nb - time::Duration::days(1),
        time::Duration::hours(6),
    );
    // Starts before notBefore and reaches past now: the CA asks for a replacement now.
    let forced = ari(
        nb - time::Duration::days(364),
        day(11),
        time::Duration::hours(6),
    );
    let late = ari(day(88), day(89), time::Duration::hours(6));
    // The window ends within the Retry-After (1 day) of day 79.5.
    struct Last;
    impl Dice for Last {
        fn below(&mut self, n: u64) -> u64 {
            n - 1
        }
    }
    let tight = fetched(
        day(1),
        None,
        "01",
        day(79),
        day(80),
        None,
        time::Duration::days(1),
        &mut Last,
    );
    let broken = failed(day(5), Some(&future), "01", "timeout", false);
    let only_failures = failed(day(5), None, "01", "timeout", false);
    type Row<'a> = (
        &'a str,
        OffsetDateTime,
        &'a Spec,
        Option<&'a AriState>,
        Option<OffsetDateTime>,
        &'a str,
    );
    let rows: Vec<Row> = vec![
        (
            "window in the future",
            day(10),
            &plain,
            Some(&future),
            None,
            "keep 2026-03-12T00:00:00Z ari",
        ),
        (
            "window in the future, lifetime rule relaxed",
            day(10),
            &relaxed,
            Some(&future),
            None,
            "keep 2026-03-12T00:00:00Z ari",
        ),
        (
            "chosen time reached",
            day(70),
            &plain,
            Some(&future),
            None,
            "ari",
        ),
        (
            "window in the past",
            day(10),
            &plain,
            Some(&past),
            None,
            "ari",
        ),
        (
            "window before notBefore: lifetime rule",
            day(10),
            &plain,
            Some(&before_nb),
            None,
            "keep 2026-03-02T00:00:00Z 1/3",
        ),
        (
            "window from before notBefore to after now: renew now",
            day(10),
            &plain,
            Some(&forced),
            None,
            "ari",
        ),
        (
            "window before notBefore, relaxed rule: due",
            day(10),
            &relaxed,
            Some(&before_nb),
            None,
            "renewal point 2026-01-02T00:00:00Z reached (renew_before 89d",
        ),
        (
            "safety net before the window",
            day(80),
            &plain,
            Some(&late),
            None,
            "keep 2026-03-27T12:00:00Z safety net",
        ),
        (
            "safety net reached",
            day(86),
            &plain,
            Some(&late),
            None,
            "renewal point 2026-03-27T12:00:00Z reached (safety net",
        ),
        (
            "end closer than Retry-After",
            hour(79 * 24 + 12),
            &plain,
            Some(&tight),
            None,
            "ari",
        ),
        // The point is not the chosen time (day 80 less a second) but the last moment
        // the CA is asked before the window ends: day 79 (end less the 1-day Retry-After).
        (
            "end further than Retry-After",
            day(78),
            &plain,
            Some(&tight),
            None,
            "keep 2026-03-21T00:00:00Z ari",
        ),
        (
            "a second before the window ends within Retry-After",
            day(79) - time::Duration::seconds(1),
            &plain,
            Some(&tight),
            None,
            "keep 2026-03-21T00:00:00Z ari",
        ),
        (
            "the window now ends within Retry-After",
            day(79),
            &plain,
            Some(&tight),
            None,
            "ari",
        ),
        (
            "failed fetch keeps the stored window",
            day(10),
            &relaxed,
            Some(&broken),
            None,
            "keep 2026-03-12T00:00:00Z ari",
        ),
        (
            "failed fetch without a window: lifetime rule",
            day(61),
            &plain,
            Some(&only_failures),
            None,
            "renewal point 2026-03-02T00:00:00Z reached (1/3",
        ),
        (
            "no ARI: lifetime rule",
            day(10),
            &plain,
            None,
            None,
            "keep 2026-03-02T00:00:00Z 1/3",
        ),
        (
            "revoked",
            day(10),
            &plain,
            Some(&future),
            Some(day(9)),
            "revoked at 2026-01-10T00:00:00Z",
        ),
    ];
    for (name, now, wanted, ari, revoked_at, expected) in rows {
        let facts = Facts {
            wanted,
            current: Some(&c90),
            damage: None,
            force: false,
            ari,
            revoked_at,
        };
        let text = decision_text(&decide(now, &facts));
        assert!(
            text.starts_with(expected),
            "{name}: got {text:?}, want {expected:?}"
        );
    }
    // Retry-After and backoff: when the CA may be asked again.
    use crate::ari::fetch_due;
    let asks = [
        (day(1) + time::Duration::hours(5), &future, false),
        (day(1) + time::Duration::hours(6), &future, true),
        (day(5) + time::Duration::seconds(59), &broken, false),
        (day(5) + time::Duration::minutes(1), &broken, true),
    ];
    for (now, state, due) in asks {
        let got = fetch_due(now, Some(state), "01", c90.not_after);
        assert_eq!(got, due, "at {}", rfc3339(now));
    }
}
