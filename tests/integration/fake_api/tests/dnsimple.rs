//! The DNSimple emulator: records, errors, pagination.

use serde_json::{json, Value};

use super::{assert_dns, delete, get, post, FakeApi, Flavor, DS_TOKEN};
use crate::harness::unique;

#[test]
fn dnsimple_txt_records_coexist_and_reach_dns() {
    let api = FakeApi::start(Flavor::Dnsimple, &["dnsimple.test"], DS_TOKEN);
    let base = api.base_url();
    let auth = format!("Bearer {DS_TOKEN}");

    let (status, _, body) = get(&format!("{base}/v2/whoami"), Some(&auth));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["user"], Value::Null);
    let account = body["data"]["account"]["id"].as_u64().expect("account id");
    assert_eq!(account, api.account_id());

    let rel = format!("_acme-challenge.{}", unique("fa"));
    let fqdn = format!("{rel}.dnsimple.test");
    let records_url = format!("{base}/v2/{account}/zones/dnsimple.test/records");
    let mut ids = Vec::new();
    for value in ["value-one", "value-two"] {
        let (status, _, body) = post(
            &records_url,
            &auth,
            json!({"name": rel, "type": "TXT", "content": value, "ttl": 60}),
        );
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["data"]["name"], rel.as_str());
        assert_eq!(body["data"]["zone_id"], "dnsimple.test");
        assert_eq!(body["data"]["content"], value);
        assert_eq!(body["data"]["system_record"], false);
        ids.push(body["data"]["id"].as_u64().expect("record id"));
    }
    let list = format!("{records_url}?name={rel}&type=TXT");
    let (status, headers, body) = get(&list, Some(&auth));
    assert_eq!(status, 200, "{body}");
    assert!(headers.contains_key("x-ratelimit-limit"));
    assert_eq!(body["data"].as_array().map(Vec::len), Some(2), "{body}");
    assert_eq!(
        body["pagination"],
        json!({"current_page": 1, "per_page": 30, "total_entries": 2, "total_pages": 1})
    );
    assert_eq!(api.records().len(), 2);
    assert_dns(&fqdn, &["value-one", "value-two"]);

    let (status, _, body) = delete(&format!("{records_url}/{}", ids[0]), &auth);
    assert_eq!(status, 204);
    assert_eq!(body, Value::Null);
    let (_, _, body) = get(&list, Some(&auth));
    assert_eq!(body["data"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["data"][0]["content"], "value-two");
    assert_eq!(api.records(), vec![(fqdn.clone(), "value-two".to_string())]);
    assert_dns(&fqdn, &["value-two"]);

    let (status, _, body) = delete(&format!("{records_url}/{}", ids[0]), &auth);
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"message": format!("Record `{}` not found", ids[0])})
    );

    let (status, _, _) = delete(&format!("{records_url}/{}", ids[1]), &auth);
    assert_eq!(status, 204);
    assert!(api.records().is_empty());
    assert_dns(&fqdn, &[]);
}

#[test]
fn dnsimple_errors_and_pagination_follow_the_docs() {
    let api = FakeApi::start(Flavor::Dnsimple, &["dnsimple.test"], DS_TOKEN);
    let base = api.base_url();
    let account = api.account_id();
    let auth = format!("Bearer {DS_TOKEN}");

    for bad in [Some("Bearer wrong"), None] {
        let (status, _, body) = get(&format!("{base}/v2/whoami"), bad);
        assert_eq!(status, 401, "{body}");
        assert_eq!(body, json!({"message": "Authentication failed"}));
    }

    let (status, _, body) = get(
        &format!("{base}/v2/{account}/zones/nope.test/records"),
        Some(&auth),
    );
    assert_eq!(status, 404);
    assert_eq!(body, json!({"message": "Zone `nope.test` not found"}));

    let (status, _, body) = post(
        &format!("{base}/v2/{account}/zones/dnsimple.test/records"),
        &auth,
        json!({"name": "x", "type": "TXT"}),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["message"], "Validation failed");

    // The system SOA/NS records are listed and paginated like any other.
    let url = format!("{base}/v2/{account}/zones/dnsimple.test/records?per_page=2");
    let (status, _, body) = get(&url, Some(&auth));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(body["data"][0]["type"], "SOA");
    assert_eq!(body["data"][0]["system_record"], true);
    assert_eq!(
        body["pagination"],
        json!({"current_page": 1, "per_page": 2, "total_entries": 3, "total_pages": 2})
    );
    let (_, _, body) = get(&format!("{url}&page=2"), Some(&auth));
    assert_eq!(body["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["pagination"]["current_page"], 2);

    let (_, _, body) = get(
        &format!("{base}/v2/{account}/zones?name_like=dnsimple"),
        Some(&auth),
    );
    assert_eq!(body["data"][0]["name"], "dnsimple.test");
    assert_eq!(body["data"][0]["account_id"], account);

    let (status, _, body) = get(
        &format!("{base}/v2/{}/zones/dnsimple.test/records", account + 1),
        Some(&auth),
    );
    assert_eq!(status, 404, "{body}");
}

/// Records seeded by a test: an A record is served by id with its type and zone-relative
/// name and leaves DNS alone; a seeded TXT record reaches DNS.
#[test]
fn dnsimple_seeded_records_keep_their_type() {
    let api = FakeApi::start(Flavor::Dnsimple, &["dnsimple.test"], DS_TOKEN);
    let base = api.base_url();
    let account = api.account_id();
    let auth = format!("Bearer {DS_TOKEN}");
    let rel = unique("seed");
    let host = format!("{rel}.dnsimple.test");
    let a = api.seed_record("dnsimple.test", &host, "A", "192.0.2.7");
    assert!(api.has_record(&a));
    let records_url = format!("{base}/v2/{account}/zones/dnsimple.test/records");
    let (status, _, body) = get(&format!("{records_url}/{a}"), Some(&auth));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["id"].to_string(), a);
    assert_eq!(body["data"]["type"], "A");
    assert_eq!(body["data"]["name"], rel.as_str());
    assert_eq!(body["data"]["content"], "192.0.2.7");
    let (_, _, body) = get(&format!("{records_url}?name={rel}&type=TXT"), Some(&auth));
    assert_eq!(body["data"], json!([]), "{body}");
    assert!(api.records().is_empty(), "records() lists TXT only");

    let name = format!("_acme-challenge.{host}");
    let txt = api.seed_record("dnsimple.test", &name, "TXT", "seeded-value");
    assert_dns(&name, &["seeded-value"]);

    let (status, _, _) = delete(&format!("{records_url}/{a}"), &auth);
    assert_eq!(status, 204);
    assert!(!api.has_record(&a));
    assert!(api.remove_record(&txt));
    assert!(!api.has_record(&txt));
    assert_dns(&name, &[]);
}
