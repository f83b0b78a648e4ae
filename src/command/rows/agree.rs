//! `list` and `renew` agree: for the same stored facts (ARI included), the row `list`
//! prints from the record, the row it prints from the index, and what `renew` decides (or
//! reports as not due from the index) name the same due-ness, renewal point and reason.

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::{full_row, index_row};
use crate::ari::{failed, fetched, AriState, Dice};
use crate::model::{HumanDuration, KeyType, Spec, SCHEMA_VERSION};
use crate::records::{CaFacts, CertRecord, Entry, SpecRecord};
use crate::renew::{decide, rfc3339, Decision, Facts, Reason};
use crate::vault::Versioned;

const NB: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);

fn day(n: i64) -> OffsetDateTime {
    NB + Duration::days(n)
}

fn spec(renew_before: Option<&str>) -> Spec {
    crate::renew::tests::spec(&["a.example.com"], KeyType::EcdsaP256, renew_before)
}

/// A stored record of a real (self-signed) certificate valid for `days` from `NB`.
fn record(spec: &Spec, days: i64, ari: Option<AriState>) -> Entry {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["a.example.com".into()]).unwrap();
    params.not_before = NB;
    params.not_after = day(days);
    params.serial_number = Some(rcgen::SerialNumber::from(vec![1]));
    let pem = params.self_signed(&key).unwrap().pem();
    let issued = crate::model::Issued {
        cert: pem.clone(),
        chain: pem.clone(),
        fullchain: format!("{pem}{pem}"),
        privkey: crate::secret::Secret::new(key.serialize_pem()),
        not_before: NB,
        not_after: day(days),
        serial: "01".into(),
        issued_at: NB,
    };
    let cert = CertRecord {
        schema: SCHEMA_VERSION,
        spec: spec.clone(),
        issued,
        layout: Default::default(),
        facts: CaFacts {
            ari,
            ..Default::default()
        },
        extra: Default::default(),
    };
    let versioned = |data| Versioned {
        data,
        version: 3,
        written_at: None,
    };
    Entry {
        cert: versioned(cert),
        spec: Some(Versioned {
            data: SpecRecord {
                schema: SCHEMA_VERSION,
                spec: spec.clone(),
            },
            version: 2,
            written_at: None,
        }),
        status: None,
    }
}

struct Pick(u64);
impl Dice for Pick {
    fn below(&mut self, n: u64) -> u64 {
        self.0.min(n - 1)
    }
}

fn window(start: i64, end: i64, retry: Duration, pick: u64) -> AriState {
    fetched(
        day(1),
        None,
        "01",
        day(start),
        day(end),
        None,
        retry,
        &mut Pick(pick),
    )
}

#[test]
fn list_from_the_record_list_from_the_index_and_renew_agree() {
    let six_hours = Duration::hours(6);
    let future = window(70, 80, six_hours, 0);
    let cases: Vec<(&str, Spec, i64, Option<AriState>)> = vec![
        ("lifetime rule", spec(None), 90, None),
        ("renew_before", spec(Some("30d")), 90, None),
        (
            "renew_before longer than the lifetime",
            spec(Some("3650d")),
            90,
            None,
        ),
        ("short-lived", spec(None), 6, None),
        (
            "ARI window in the future",
            spec(None),
            90,
            Some(future.clone()),
        ),
        (
            "ARI window in the past",
            spec(None),
            90,
            Some(window(2, 3, six_hours, 0)),
        ),
        (
            "ARI window past the safety net",
            spec(None),
            90,
            Some(window(88, 89, six_hours, 0)),
        ),
        // Chosen a second before the end, which is within the 1-day Retry-After.
        (
            "ARI window ends within Retry-After",
            spec(None),
            90,
            Some(window(79, 80, Duration::days(1), u64::MAX)),
        ),
        (
            "ARI window before notBefore",
            spec(None),
            90,
            Some(window(-9, -1, six_hours, 0)),
        ),
        (
            "ARI fetch failed, window kept",
            spec(Some("89d")),
            90,
            Some(failed(day(5), Some(&future), "01", "timeout", false)),
        ),
        (
            "ARI fetch failed, no window",
            spec(None),
            90,
            Some(failed(day(5), None, "01", "timeout", false)),
        ),
    ];
    let nows = [
        0, 1, 2, 3, 4, 10, 59, 60, 61, 70, 78, 79, 80, 86, 88, 89, 91,
    ];
    let mut checked = 0;
    for (what, spec, days, ari) in &cases {
        let stored = record(spec, *days, ari.clone());
        let name = "a".parse().unwrap();
        let entry = crate::index::facts(&stored.cert, stored.spec.as_ref().map(|s| &s.data), 2);
        assert_eq!(entry.due_now, None, "{what}");
        let current = crate::x509::current(&stored.cert.data.issued.cert).unwrap();
        for now in nows.iter().map(|&n| day(n) + Duration::hours(1)) {
            let at = format!("{what} at {}", rfc3339(now));
            let from_record = full_row(&name, &stored, None, now).unwrap();
            let from_index = index_row(&name, &entry, now);
            let facts = Facts {
                wanted: spec,
                current: Some(&current),
                damage: None,
                force: false,
                ari: ari.as_ref(),
                revoked_at: None,
            };
            let decision = decide(now, &facts);
            // list: the same row whether read from the record or the index.
            assert_eq!(
                (&from_index.due, &from_index.renew_at, &from_index.reason),
                (&from_record.due, &from_record.renew_at, &from_record.reason),
                "{at}"
            );
            assert_eq!(from_record.due, decision.is_due(), "{at}");
            match &decision {
                // renew loads what is due, and says why as list does.
                Decision::Renew(reason) => {
                    assert!(
                        entry.due(now),
                        "{at}: the index must have the record loaded"
                    );
                    let text = match reason {
                        Reason::Due {
                            basis: crate::renew::Basis::Ari,
                            ..
                        } => reason.to_string(),
                        _ => format!("due: {reason}"),
                    };
                    assert_eq!(from_record.reason, text, "{at}");
                }
                // renew reports what is not due from the index, as list prints it.
                Decision::Keep { renew_at, basis } => {
                    let settled = crate::command::renew::settled(&name, &entry);
                    assert_eq!(settled.renew_at, Some(*renew_at), "{at}");
                    assert_eq!(
                        settled.reason.as_deref(),
                        Some(basis.to_string().as_str()),
                        "{at}"
                    );
                    assert_eq!(from_index.renew_at, rfc3339(*renew_at), "{at}");
                    assert_eq!(from_index.reason, basis.to_string(), "{at}");
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, cases.len() * nows.len());
}

#[test]
fn a_basis_reads_back_from_the_text_the_index_keeps() {
    use crate::renew::Basis;
    let d = |t: &str| t.parse::<HumanDuration>().unwrap();
    for basis in [
        Basis::RenewBefore(d("30d")),
        Basis::RenewBefore(d("1w 2d")),
        Basis::LifetimeFraction { short: false },
        Basis::LifetimeFraction { short: true },
        Basis::RenewBeforeTooLong {
            renew_before: d("3650d"),
            short: false,
        },
        Basis::RenewBeforeTooLong {
            renew_before: d("12h"),
            short: true,
        },
        Basis::Ari,
        Basis::SafetyNet,
    ] {
        assert_eq!(
            basis.to_string().parse::<Basis>(),
            Ok(basis.clone()),
            "{basis}"
        );
    }
    for text in [
        "",
        "renew_before soon before expiry",
        "2/3 of lifetime left",
    ] {
        assert!(text.parse::<Basis>().is_err(), "{text:?}");
    }
}
