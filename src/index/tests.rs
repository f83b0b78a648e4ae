//! Unit tests of the pure index logic.

use super::*;
use time::macros::datetime;

fn entry(version: u64, spec_version: u64, renew_at: i64) -> Entry {
    Entry {
        version,
        spec_version,
        deleted: false,
        not_before: 0,
        not_after: renew_at + 1000,
        renew_at,
        ari_at: None,
        ari_check_at: None,
        basis: Some(crate::renew::Basis::LifetimeFraction { short: false }),
        due_now: None,
        domains: vec!["a.example.com".into()],
        key_type: "ecdsa-p256".into(),
        serial: "01".into(),
        account: "default".into(),
        profile: None,
        ari: None,
        status: None,
    }
}

#[test]
fn the_hash_is_the_documented_one() {
    // SHA-256("web") = 8a06ae5c d4e9...: the first 8 bytes, big-endian.
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"web");
    let hex: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hash("web"), u64::from_str_radix(&hex, 16).unwrap());
    // Known value, so a change of algorithm cannot pass unnoticed.
    assert_eq!(format!("{:016x}", hash("abc")), "ba7816bf8f01cfea");
    assert_eq!(Layout::FIRST.shard_of("abc"), 0xea);
    let part: Part = "2/3".parse().unwrap();
    assert_eq!(part.contains("abc"), 0xba7816bf8f01cfea_u64 % 3 == 2);
}

#[test]
fn parts_parse_and_pick_their_documents() {
    for bad in ["", "1", "a/b", "3/3", "0/0", "1/-2", "0/70000", "-1/3"] {
        assert!(bad.parse::<Part>().is_err(), "{bad}");
    }
    let p: Part = "1/4".parse().unwrap();
    assert_eq!(p, Part { index: 1, count: 4 });
    assert!(
        p.touches(1, Layout::FIRST) && p.touches(5, Layout::FIRST) && !p.touches(2, Layout::FIRST)
    );
    let odd: Part = "1/3".parse().unwrap();
    assert!((0..SHARDS).all(|s| odd.touches(s, Layout::FIRST)));
    // Every name is in exactly one part, and its document is one that part reads.
    for i in 0..500 {
        let name = format!("c{i}");
        let parts: Vec<u64> = (0..4)
            .filter(|k| {
                Part {
                    index: *k,
                    count: 4,
                }
                .contains(&name)
            })
            .collect();
        assert_eq!(parts.len(), 1);
        assert!(Part {
            index: parts[0],
            count: 4
        }
        .touches(Layout::FIRST.shard_of(&name), Layout::FIRST));
    }
}

#[test]
fn due_looks_at_the_earliest_time() {
    let now = datetime!(2026-01-01 0:00 UTC);
    let t = now.unix_timestamp();
    let mut e = entry(1, 1, t + 10);
    assert!(!e.due(now));
    e.ari_at = Some(t - 1);
    assert!(e.due(now));
    e.ari_at = None;
    e.ari_check_at = Some(t);
    assert!(e.due(now));
    e.ari_check_at = None;
    e.due_now = Some("names changed".into());
    assert!(e.due(now));
    e.deleted = true;
    assert!(!e.due(now));
}

#[test]
fn merge_keeps_the_newest_facts() {
    let old = entry(3, 1, 100);
    let newer = Noted {
        entry: Some(entry(4, 1, 200)),
        ..Default::default()
    };
    assert_eq!(merge(Some(&old), &newer).unwrap().version, 4);
    // A late flush of older facts does not win over newer ones.
    let stale = Noted {
        entry: Some(entry(2, 1, 50)),
        ..Default::default()
    };
    assert_eq!(merge(Some(&old), &stale).unwrap().version, 3);
    // Mixed (newer record, older spec): dropped, so the next run reloads.
    let mixed = Noted {
        entry: Some(entry(4, 0, 50)),
        ..Default::default()
    };
    assert_eq!(merge(Some(&old), &mixed), None);
    // A status alone updates an existing entry, never makes one.
    let status = Noted {
        status: Some(Status {
            last_result: "failed".into(),
            failures: 2,
            last_error: Some("x".into()),
            dns_leftovers: 0,
        }),
        ..Default::default()
    };
    assert_eq!(
        merge(Some(&old), &status).unwrap().status.unwrap().failures,
        2
    );
    assert_eq!(merge(None, &status), None);
    // A spec written at another version drops the entry; removed drops it.
    let spec = Noted {
        spec_written: Some(2),
        ..Default::default()
    };
    assert_eq!(merge(Some(&old), &spec), None);
    let removed = Noted {
        removed: true,
        ..Default::default()
    };
    assert_eq!(merge(Some(&old), &removed), None);
}

#[test]
fn verification_rotates_and_catches_up() {
    let now = datetime!(2026-01-10 0:00 UTC);
    let t = now.unix_timestamp();
    let day = 86400;
    let big = VERIFY_AT_LEAST;
    let v = [
        (0, t - day, big),
        (1, t - 2 * day, big),
        (2, t - 8 * day, big),
        (3, t, big),
    ];
    assert_eq!(to_verify(&v, now), vec![2]);
    let fresh = [(0, t - day, big), (1, t - 2 * day, big), (3, t, big)];
    assert_eq!(to_verify(&fresh, now), vec![1]);
    // Small shards: the oldest ones until enough entries are checked (a small fleet: all).
    let small = [(0, t - day, 10), (1, t - 2 * day, 10), (3, t, 10)];
    assert_eq!(to_verify(&small, now), vec![0, 1, 3]);
    assert!(to_verify(&[], now).is_empty());
    // A rebuild spreads the shards over the period: right after it only the oldest.
    let spread: Vec<(u16, i64, usize)> = (0..SHARDS)
        .map(|s| (s, staggered(s, Layout::FIRST, now), VERIFY_AT_LEAST))
        .collect();
    assert_eq!(to_verify(&spread, now), vec![SHARDS - 1]);
    // A day later (runs in between did nothing), about a seventh of them.
    let n = to_verify(&spread, now + time::Duration::days(1)).len();
    assert!((36..=38).contains(&n), "{n}");
}

#[test]
fn entries_are_stored_as_one_string() {
    let mut s = Shard::empty(0, Layout::FIRST, 0);
    s.entries.insert("web".parse().unwrap(), entry(1, 1, 0));
    let v = serde_json::to_value(&s).unwrap();
    assert!(v["entries"].is_string(), "{v}");
    assert_eq!(serde_json::from_value::<Shard>(v).unwrap(), s);
    assert!(serde_json::from_value::<Shard>(serde_json::json!({
        "schema": 1, "shard": 0, "of": 256, "verified_at": 0, "entries": "garbage"
    }))
    .is_err());
}

#[test]
fn shards_reject_foreign_documents() {
    let mut s = Shard::empty(0xea, Layout::FIRST, 0);
    assert_eq!(s.problem(0xea, Layout::FIRST), None);
    assert!(s.problem(1, Layout::FIRST).is_some());
    s.entries.insert("web".parse().unwrap(), entry(1, 1, 0));
    assert_eq!(
        Layout::FIRST.shard_of("web") == 0xea,
        s.problem(0xea, Layout::FIRST).is_none()
    );
}

#[test]
fn check_times_later_than_vaults_own_write_time_do_not_count() {
    let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let t = now.unix_timestamp();
    let day = 86_400;
    let mut s = Shard::empty(0, Layout::FIRST, t - day);
    s.dated_at = Some(t - 2 * day);
    // Claims at or before the write (and now) are believed.
    assert_eq!(s.checked_at(Some(t - day), now), (t - day, t - 2 * day));
    // A claim later than the write that stored it, or than now, was not made by a check.
    s.verified_at = t + 100 * 365 * day;
    s.dated_at = Some(t);
    assert_eq!(s.checked_at(Some(t - day), now), (i64::MIN, i64::MIN));
    assert_eq!(s.checked_at(None, now).0, i64::MIN);
    assert_eq!(s.checked_at(None, now).1, t);
    // Clock skew between certvault and Vault is allowed up to CLAIM_SKEW.
    s.verified_at = t + CLAIM_SKEW;
    assert_eq!(s.checked_at(Some(t), now).0, t + CLAIM_SKEW);
    // An older document without dated_at: its version check counts for the dates too.
    let old: Shard = serde_json::from_value(serde_json::json!({
        "schema": 1, "shard": 0, "of": 256, "verified_at": t - day, "entries": "{}"
    }))
    .unwrap();
    assert_eq!(old.checked_at(Some(t), now), (t - day, t - day));
}

#[test]
fn every_shard_is_date_checked_within_the_bound() {
    let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let t = now.unix_timestamp();
    assert!(!date_check_due(t, now));
    assert!(!date_check_due(
        t - DATE_CHECK_EVERY.whole_seconds() + 1,
        now
    ));
    assert!(date_check_due(t - DATE_CHECK_EVERY.whole_seconds(), now));
    assert!(date_check_due(i64::MIN, now));
    // New documents spread their checks over the period: about a seventh a day.
    let due_in_a_day = (0..SHARDS)
        .filter(|s| {
            date_check_due(
                staggered(*s, Layout::FIRST, now),
                now + time::Duration::days(1),
            )
        })
        .count();
    assert!((36..=38).contains(&due_in_a_day), "{due_in_a_day}");
}

#[test]
fn the_point_is_what_ari_chose_up_to_the_safety_net() {
    // A 100 000 s lifetime: the safety net at 95 000 s.
    let mut e = entry(1, 1, 66_667);
    e.not_after = 100_000;
    let point = |e: &Entry| {
        let s = e.schedule();
        (s.renew_at.unix_timestamp(), s.basis.to_string())
    };
    assert_eq!(point(&e), (66_667, "1/3 of lifetime left".to_string()));
    let t = |s: i64| time::OffsetDateTime::from_unix_timestamp(s).unwrap();
    let ari = |chosen: i64| crate::ari::AriState {
        window_start: Some(t(80_000)),
        window_end: Some(t(99_000)),
        chosen_at: Some(t(chosen)),
        ..Default::default()
    };
    for (chosen, want) in [
        (90_000, (90_000, "ari")),
        (97_000, (95_000, "safety net: 1/20 of lifetime left")),
    ] {
        e.ari = Some(ari(chosen));
        e.ari_at = Some(chosen);
        assert_eq!(point(&e), (want.0, want.1.to_string()));
    }
    // A window that makes no sense (chosen outside it) leaves the lifetime rule.
    e.ari = Some(ari(10));
    e.ari_at = Some(10);
    assert_eq!(point(&e).1, "1/3 of lifetime left");
}

#[test]
fn the_layout_doubles_past_its_average_and_never_shrinks() {
    let first = Layout::FIRST;
    assert_eq!(first.shards(), 256);
    assert_eq!(first.wanted(0, GROW_ABOVE), first);
    assert_eq!(first.wanted(256 * 320, GROW_ABOVE), first);
    // One more: doubled until the average is at most 160.
    assert_eq!(first.wanted(256 * 320 + 1, GROW_ABOVE).shards(), 1024);
    // A million certificates: 8192 documents of about 122 entries.
    let million = first.wanted(1_000_000, GROW_ABOVE);
    assert_eq!(million.shards(), 8192);
    assert!(1_000_000 / u64::from(million.shards()) <= GROW_ABOVE / 2);
    // Never smaller than the stored layout, never above the largest.
    assert_eq!(million.wanted(10, GROW_ABOVE), million);
    assert_eq!(
        first.wanted(usize::MAX / 2, GROW_ABOVE).shards(),
        MAX_SHARDS
    );
    assert_eq!(first.wanted(300, 1).shards(), 512);
    for bad in [0, 1, 128, 255, 257, 384, MAX_SHARDS * 2] {
        assert_eq!(Layout::new(bad), None, "{bad}");
    }
    assert_eq!(Layout::new(4096).map(Layout::shards), Some(4096));
}

#[test]
fn a_grown_layout_splits_each_document_and_is_spelled_in_its_folder() {
    let big = Layout::new(4096).unwrap();
    for i in 0..2000 {
        let name = format!("c{i}");
        // hash mod 4096 mod 256 = hash mod 256: each old document splits into 16.
        assert_eq!(
            big.shard_of(&name) % 256,
            Layout::FIRST.shard_of(&name),
            "{name}"
        );
    }
    assert_eq!(big.all().count(), 4096);
    use crate::store::Key;
    assert_eq!(Key::Index(Layout::FIRST, 7).path("p"), "p/index/007");
    assert_eq!(Key::Index(big, 7).path("p"), "p/index/4096/0007");
    assert_eq!(
        Key::Index(Layout::new(65536).unwrap(), 65535).path("p"),
        "p/index/65536/65535"
    );
    assert_eq!(Key::IndexLayout.path("p"), "p/index/layout");
    // A document of another layout is not used.
    let doc = Shard::empty(7, Layout::FIRST, 0);
    assert!(doc.problem(7, big).is_some());
    assert!(doc.problem(7, Layout::FIRST).is_none());
    let record = LayoutRecord {
        schema: 1,
        shards: 300,
        previous: 256,
        grown_at: 0,
        certificates: 0,
    };
    assert!(record.layout().unwrap_err().contains("power of two"));
}

/// An entry with every field set, ARI state included (whole seconds, as the index keeps it).
fn full_entry() -> Entry {
    let at = |t: i64| Some(time::OffsetDateTime::from_unix_timestamp(t).unwrap());
    Entry {
        deleted: true,
        ari_at: Some(1_700_000_500),
        ari_check_at: Some(1_700_000_600),
        due_now: Some("its names changed".into()),
        domains: vec!["a.example.com".into(), "*.a.example.com".into()],
        profile: Some("shortlived".into()),
        ari: Some(crate::ari::AriState {
            window_start: at(1_700_000_000),
            window_end: at(1_700_001_000),
            chosen_at: at(1_700_000_500),
            retry_after: at(1_700_000_600),
            explanation_url: Some("https://ca.example/why".into()),
            fetched_at: at(1_699_999_000),
            failures: 2,
            last_failure_at: at(1_699_999_500),
            last_error: Some("503 \"busy\"".into()),
            serial: "01".into(),
        }),
        status: Some(Status {
            last_result: "failed".into(),
            failures: 3,
            last_error: Some("rate limited".into()),
            dns_leftovers: 1,
        }),
        basis: Some(crate::renew::Basis::Ari),
        ..entry(7, 3, 1_700_000_000)
    }
}

fn shard_of(entries: &[(&str, Entry)]) -> Shard {
    let mut s = Shard::empty(0, Layout::FIRST, 0);
    for (n, e) in entries {
        s.entries.insert(n.parse().unwrap(), e.clone());
    }
    s
}

#[test]
fn entries_are_stored_as_rows_and_read_back_whole() {
    let minimal = Entry {
        basis: None,
        ..entry(1, 0, 5)
    };
    let s = shard_of(&[
        ("full", full_entry()),
        ("min", minimal),
        ("one", entry(1, 1, 9)),
    ]);
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["format"], 2, "{v}");
    let rows: serde_json::Value = serde_json::from_str(v["entries"].as_str().unwrap()).unwrap();
    // Positional: no field names, and a row ends at its last non-empty field.
    assert_eq!(
        rows["one"],
        serde_json::json!([
            1,
            1,
            0,
            1009,
            9,
            "L",
            ["a.example.com"],
            "ecdsa-p256",
            "01",
            "default"
        ])
    );
    assert_eq!(
        rows["full"].as_array().unwrap().len(),
        17,
        "{}",
        rows["full"]
    );
    assert_eq!(rows["full"][16][0], 1_700_000_000);
    assert_eq!(serde_json::from_value::<Shard>(v).unwrap(), s);
}

#[test]
fn a_format_1_document_reads_as_before_and_says_so() {
    let s = shard_of(&[("full", full_entry()), ("one", entry(1, 1, 9))]);
    // Written the way versions before rows wrote it: an object per entry, no `format`.
    let named: BTreeMap<&CertName, &Entry> = s.entries.iter().collect();
    let old = serde_json::json!({
        "schema": 1, "shard": 0, "of": 256, "verified_at": 0, "dated_at": 0,
        "entries": serde_json::to_string(&named).unwrap(),
    });
    let read: Shard = serde_json::from_value(old).unwrap();
    assert_eq!(read.format, 1);
    assert_eq!(read.entries, s.entries);
    // Written again, it is rows.
    assert_eq!(serde_json::to_value(&read).unwrap()["format"], FORMAT);
}

#[test]
fn rows_of_a_later_format_are_read_and_broken_rows_are_not() {
    let parse = |rows: serde_json::Value| {
        serde_json::from_value::<Shard>(serde_json::json!({
            "schema": 1, "format": 2, "shard": 0, "of": 256, "verified_at": 0,
            "entries": rows.to_string(),
        }))
    };
    let mut longer = serde_json::to_value(
        &serde_json::from_str::<serde_json::Value>(
            serde_json::to_value(shard_of(&[("full", full_entry())])).unwrap()["entries"]
                .as_str()
                .unwrap(),
        )
        .unwrap()["full"],
    )
    .unwrap();
    longer
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"new": 1}));
    let read = parse(serde_json::json!({ "full": longer })).unwrap();
    assert_eq!(read.entries.values().next(), Some(&full_entry()));
    // Too short, a wrong type, a basis no version wrote, a time past the calendar.
    assert!(parse(serde_json::json!({"a": [1, 1, 0, 1, 1]})).is_err());
    assert!(parse(serde_json::json!({"a": [1, 1, "0", 1, 1, "", [], "", "", ""]})).is_err());
    assert!(parse(serde_json::json!({"a": [1, 1, 0, 1, 1, "soon", [], "", "", ""]})).is_err());
    assert!(parse(serde_json::json!({"a": [1, 1, 0, 1, 1, "Rsoon", [], "", "", ""]})).is_err());
    let mut far = longer.clone();
    far[16][0] = serde_json::json!(i64::MAX);
    assert!(parse(serde_json::json!({ "a": far })).is_err());
}

#[test]
fn a_row_is_under_half_the_size_of_the_named_entry() {
    // The benchmark's entry: two names, no ARI, a status.
    let e = Entry {
        domains: vec![
            "seed.s49415.example.com".into(),
            "*.seed.s49415.example.com".into(),
        ],
        not_before: 1_796_649_415,
        not_after: 1_954_415_814,
        renew_at: 1_901_827_014,
        serial: "241D369E9D46442B".into(),
        status: Some(Status {
            last_result: "renewed".into(),
            failures: 0,
            last_error: None,
            dns_leftovers: 0,
        }),
        ..entry(1, 1, 0)
    };
    // As Vault stores them: inside the document's one JSON text, so each quote escaped.
    let stored = |text: String| serde_json::to_string(&text).unwrap().len();
    let row = stored(serde_json::to_string(&row::Row(&e)).unwrap());
    let named = stored(serde_json::to_string(&e).unwrap());
    assert!(row * 2 < named, "row {row} bytes, named {named}");
    let full = full_entry();
    let (row, named) = (
        stored(serde_json::to_string(&row::Row(&full)).unwrap()),
        stored(serde_json::to_string(&full).unwrap()),
    );
    assert!(row * 2 < named, "with ARI: row {row} bytes, named {named}");
}

#[test]
fn every_basis_reads_back_from_its_row_code_and_from_its_text() {
    use crate::renew::Basis;
    let d: crate::model::HumanDuration = "30d".parse().unwrap();
    for b in [
        Basis::LifetimeFraction { short: false },
        Basis::LifetimeFraction { short: true },
        Basis::RenewBefore(d.clone()),
        Basis::RenewBeforeTooLong {
            renew_before: d.clone(),
            short: false,
        },
        Basis::RenewBeforeTooLong {
            renew_before: d.clone(),
            short: true,
        },
        Basis::Ari,
        Basis::SafetyNet,
    ] {
        let e = Entry {
            basis: Some(b.clone()),
            ..entry(1, 1, 9)
        };
        let s = shard_of(&[("a", e.clone())]);
        let v = serde_json::to_value(&s).unwrap();
        let rows: serde_json::Value = serde_json::from_str(v["entries"].as_str().unwrap()).unwrap();
        assert!(
            rows["a"][5].as_str().unwrap().len() <= 4,
            "{b}: {}",
            rows["a"][5]
        );
        assert_eq!(serde_json::from_value::<Shard>(v).unwrap(), s, "{b}");
        // A row holding the basis as the text `list` prints reads the same.
        let mut text = rows["a"].clone();
        text[5] = serde_json::json!(b.to_string());
        let read = serde_json::from_value::<Shard>(serde_json::json!({
            "schema": 1, "format": 2, "shard": 0, "of": 256, "verified_at": 0,
            "entries": serde_json::json!({ "a": text }).to_string(),
        }))
        .unwrap();
        assert_eq!(read.entries.values().next(), Some(&e), "{b}");
    }
}

#[test]
fn ari_times_are_kept_to_the_second_so_fresh_and_stored_entries_agree() {
    let mut a = full_entry().ari.unwrap();
    a.fetched_at = Some(a.fetched_at.unwrap() + time::Duration::nanoseconds(123_456_789));
    let kept = row::ari_kept(&a);
    assert_eq!(kept.fetched_at, full_entry().ari.unwrap().fetched_at);
    let e = Entry {
        ari: Some(kept),
        ..full_entry()
    };
    let s = shard_of(&[("a", e)]);
    let back: Shard = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
    assert_eq!(back, s);
}
