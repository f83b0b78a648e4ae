//! A plan, not a storm: 200 certificates due at once, `--max-orders 50`: the 50 most urgent
//! (expired first, then the earliest renewal point) renew, 150 are deferred and kept, and
//! the next run takes the next 50. Against Pebble, with challtestsrv hooks.

use serde_json::{json, Value};

use crate::harness::*;

/// A self-signed certificate for `name`, valid from `nb` to `na` (the record a renewal
/// replaces; only its dates, names and key type matter to `decide`).
fn stored(name: &str, nb: time::OffsetDateTime, na: time::OffsetDateTime) -> Value {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
    params.not_before = nb;
    params.not_after = na;
    let pem = params.self_signed(&key).unwrap().pem();
    let t = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    json!({
        "cert": pem, "chain": "", "fullchain": pem, "privkey": key.serialize_pem(),
        "not_before": t(nb), "not_after": t(na), "serial": "01", "issued_at": t(nb),
    })
}

#[test]
fn two_hundred_due_with_max_orders_fifty_renew_in_urgency_order() {
    let e = Env::ready("storm");
    let now = time::OffsetDateTime::now_utc();
    let mut expected_order = Vec::new();
    let tag = e.prefix.replace(['/', '-'], "");
    for i in 0..200usize {
        let name = format!("s{i:03}");
        let domain = format!("{name}.{tag}.storm.example.com");
        let spec = json!({
            "domains": [domain], "key_type": "ecdsa-p256", "account": "default",
            "dns": { "kind": "exec", "auth_hook": hook("challtestsrv-auth"),
                     "cleanup_hook": hook("challtestsrv-cleanup") },
        });
        // Two expired; the others due (100-day lifetime, 1/3 left) at different points,
        // in reverse name order so urgency is not the name order.
        let na = if i == 150 || i == 7 {
            now - time::Duration::days(1) - time::Duration::minutes(i as i64)
        } else {
            now + time::Duration::days(10) + time::Duration::minutes(10 * (200 - i as i64))
        };
        let nb = na - time::Duration::days(100);
        let mut doc = stored(&domain, nb, na);
        doc["schema"] = json!(1);
        doc["spec"] = spec.clone();
        let mut spec_doc = spec;
        spec_doc["schema"] = json!(1);
        vault_write(&format!("{}/specs/{name}", e.prefix), &spec_doc);
        vault_write(&e.cert_path(&name), &doc);
        expected_order.push((if i == 150 || i == 7 { 0 } else { 1 }, na, name));
    }
    expected_order.sort();
    let names: Vec<String> = expected_order.into_iter().map(|(_, _, n)| n).collect();
    assert!(
        names[..2] == ["s007".to_string(), "s150".to_string()]
            || names[..2] == ["s150".to_string(), "s007".to_string()]
    );

    let renewed_in = |v: &[(String, String)]| -> Vec<String> {
        let mut r: Vec<String> = v
            .iter()
            .filter(|(_, x)| x == "renewed")
            .map(|(n, _)| n.clone())
            .collect();
        r.sort();
        r
    };
    let sorted = |s: &[String]| {
        let mut s = s.to_vec();
        s.sort();
        s
    };

    let first = e
        .run(&["renew", "--max-orders", "50", "--output", "json"])
        .ok();
    let v = verdicts(&first.json());
    assert_eq!(v.len(), 200);
    assert_eq!(renewed_in(&v), sorted(&names[..50]), "the 50 most urgent");
    assert_eq!(v.iter().filter(|(_, x)| x == "deferred").count(), 150);
    // Nothing lost: every record is there, the deferred ones unchanged.
    for (i, n) in names.iter().enumerate() {
        let (doc, version) = vault_read(&e.cert_path(n)).expect("record kept");
        if i < 50 {
            assert_eq!(version, 2, "{n}");
            verify_record(&doc, &[]);
        } else {
            assert_eq!(version, 1, "{n} deferred, untouched");
        }
    }
    let second = e
        .run(&["renew", "--max-orders", "50", "--output", "json"])
        .ok();
    let v = verdicts(&second.json());
    assert_eq!(renewed_in(&v), sorted(&names[50..100]), "the next 50");
    assert_eq!(v.iter().filter(|(_, x)| x == "deferred").count(), 100);
    assert_eq!(v.iter().filter(|(_, x)| x == "not_due").count(), 50);
}
