//! The Cloudflare emulator: records, auth errors, zone pagination.

use serde_json::json;

use super::super::cloudflare::{is_id, PADDING_ZONES};
use super::{assert_dns, delete, get, post, FakeApi, Flavor, CF_TOKEN};
use crate::harness::unique;

pub(super) fn zone_id(base: &str, zone: &str) -> String {
    let (status, _, body) = get(
        &format!("{base}/zones?name={zone}"),
        Some(&format!("Bearer {CF_TOKEN}")),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true, "{body}");
    assert_eq!(body["result"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["result"][0]["name"], zone);
    body["result"][0]["id"]
        .as_str()
        .expect("zone id")
        .to_string()
}

#[test]
fn cloudflare_txt_records_coexist_and_reach_dns() {
    let api = FakeApi::start(Flavor::Cloudflare, &["cf.test"], CF_TOKEN);
    let base = api.base_url();
    let auth = format!("Bearer {CF_TOKEN}");
    let zid = zone_id(&base, "cf.test");
    let name = format!("_acme-challenge.{}.cf.test", unique("fa"));
    let records_url = format!("{base}/zones/{zid}/dns_records");

    let create = |value: &str| {
        let record = json!({"type": "TXT", "name": name, "content": value, "ttl": 60});
        post(&records_url, &auth, record)
    };
    let mut ids = Vec::new();
    for value in ["value-one", "value-two"] {
        let (status, _, body) = create(value);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["success"], true);
        assert_eq!(body["result"]["name"], name.as_str());
        assert_eq!(body["result"]["content"], value);
        assert_eq!(body["result"]["type"], "TXT");
        let id = body["result"]["id"]
            .as_str()
            .expect("record id")
            .to_string();
        assert!(is_id(&id), "{id}");
        ids.push(id);
    }
    // The same name and content again is refused.
    let (status, _, body) = create("value-one");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["code"], 81058);

    let list = format!("{records_url}?type=TXT&name={name}");
    let (status, _, body) = get(&list, Some(&auth));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"].as_array().map(Vec::len), Some(2), "{body}");
    assert_eq!(body["result_info"]["total_count"], 2);
    assert_eq!(body["result_info"]["page"], 1);
    assert_eq!(body["result_info"]["per_page"], 100);
    let held: Vec<(String, String)> = api
        .records()
        .into_iter()
        .filter(|(n, _)| *n == name)
        .collect();
    assert_eq!(
        held,
        vec![
            (name.clone(), "value-one".to_string()),
            (name.clone(), "value-two".to_string())
        ]
    );
    assert_dns(&name, &["value-one", "value-two"]);

    // Deleting one keeps the other, in the API and in DNS.
    let (status, _, body) = delete(&format!("{records_url}/{}", ids[0]), &auth);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["id"], ids[0].as_str());
    let (_, _, body) = get(&list, Some(&auth));
    assert_eq!(body["result"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["result"][0]["content"], "value-two");
    assert_dns(&name, &["value-two"]);

    let (status, _, body) = delete(&format!("{records_url}/{}", ids[0]), &auth);
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["success"], false);
    assert_eq!(body["errors"][0]["code"], 81044);
    assert_eq!(body["errors"][0]["message"], "Record does not exist.");

    let (status, _, _) = delete(&format!("{records_url}/{}", ids[1]), &auth);
    assert_eq!(status, 200);
    assert!(api.records().iter().all(|(n, _)| *n != name));
    assert_dns(&name, &[]);

    // Quoted content is stored as sent and published unquoted; relative names join the zone.
    let rel = format!("_acme-challenge.{}", unique("fa"));
    let (status, _, body) = post(
        &records_url,
        &auth,
        json!({"type": "TXT", "name": rel, "content": "\"quoted-value\""}),
    );
    assert_eq!(status, 200, "{body}");
    let fqdn = format!("{rel}.cf.test");
    assert_eq!(body["result"]["name"], fqdn.as_str());
    assert_eq!(body["result"]["content"], "\"quoted-value\"");
    assert_eq!(body["result"]["ttl"], 1);
    assert_dns(&fqdn, &["quoted-value"]);
    let id = body["result"]["id"].as_str().unwrap().to_string();
    let (status, _, _) = delete(&format!("{records_url}/{id}"), &auth);
    assert_eq!(status, 200);
    assert_dns(&fqdn, &[]);

    let reqs = api.requests();
    assert!(reqs.iter().all(|r| r.authorization == auth));
    assert!(reqs.iter().any(|r| r.method == "POST"
        && r.path == format!("/client/v4/zones/{zid}/dns_records")
        && r.body.contains("value-two")));
}

#[test]
fn cloudflare_auth_errors_follow_the_live_api() {
    let api = FakeApi::start(Flavor::Cloudflare, &["cf.test"], CF_TOKEN);
    let url = format!("{}/zones?name=cf.test", api.base_url());

    let (status, _, body) = get(&url, Some("Bearer wrong-token-0123456789"));
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body,
        json!({"success": false, "errors": [{"code": 9109, "message": "Invalid access token"}],
               "messages": [], "result": null})
    );

    let (status, _, body) = get(&url, None);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["code"], 9106);

    let (status, _, body) = get(&url, Some("Basic Zm9vOmJhcg=="));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["code"], 6003);
    assert_eq!(body["errors"][0]["error_chain"][0]["code"], 6111);

    let verify = format!("{}/user/tokens/verify", api.base_url());
    let (status, _, body) = get(&verify, Some("Bearer nope"));
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["errors"][0]["code"], 1000);
    let (status, _, body) = get(&verify, Some(&format!("Bearer {CF_TOKEN}")));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["status"], "active");

    // A zone id this token cannot see, and a malformed one.
    let auth = format!("Bearer {CF_TOKEN}");
    let (status, _, body) = get(
        &format!("{}/zones/{}/dns_records", api.base_url(), "0".repeat(32)),
        Some(&auth),
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["errors"][0]["code"], 9109);
    let (status, _, body) = get(
        &format!("{}/zones/cf.test/dns_records", api.base_url()),
        Some(&auth),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["code"], 7003);
    assert_eq!(api.requests().len(), 7);
}

#[test]
fn cloudflare_zone_list_paginates() {
    let api = FakeApi::start(Flavor::Cloudflare, &["cf.test"], CF_TOKEN);
    let auth = format!("Bearer {CF_TOKEN}");
    let total = 1 + PADDING_ZONES;

    let (status, _, body) = get(&format!("{}/zones", api.base_url()), Some(&auth));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["result_info"],
        json!({"page": 1, "per_page": 20, "count": 20, "total_count": total,
               "total_pages": total.div_ceil(20)})
    );

    let mut names = Vec::new();
    let mut page = 1;
    loop {
        let (_, _, body) = get(
            &format!("{}/zones?page={page}&per_page=7", api.base_url()),
            Some(&auth),
        );
        let result = body["result"].as_array().expect("result").clone();
        assert_eq!(body["result_info"]["count"], result.len());
        names.extend(
            result
                .iter()
                .map(|z| z["name"].as_str().unwrap().to_string()),
        );
        if page >= body["result_info"]["total_pages"].as_u64().unwrap() as usize {
            break;
        }
        page += 1;
    }
    assert_eq!(page, total.div_ceil(7));
    assert_eq!(names.len(), total);
    assert!(names.contains(&"cf.test".to_string()));
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, names);

    // Beyond the last page: empty result, same totals.
    let (_, _, body) = get(&format!("{}/zones?page=99", api.base_url()), Some(&auth));
    assert_eq!(body["result"], json!([]));
    assert_eq!(body["result_info"]["total_count"], total);

    // An unknown name is not an error.
    let (status, _, body) = get(
        &format!("{}/zones?name=nope.test", api.base_url()),
        Some(&auth),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["result"], json!([]));
    assert_eq!(body["result_info"]["total_count"], 0);

    let (_, _, body) = get(
        &format!("{}/zones?name=ends_with:.test&per_page=50", api.base_url()),
        Some(&auth),
    );
    assert_eq!(body["result_info"]["total_count"], total);
}

/// Records seeded by a test: an A record is served by id with its type, is not a TXT
/// record in lists filtered by type, and leaves DNS alone; a seeded TXT record reaches DNS.
#[test]
fn cloudflare_seeded_records_keep_their_type() {
    let api = FakeApi::start(Flavor::Cloudflare, &["cf.test"], CF_TOKEN);
    let base = api.base_url();
    let auth = format!("Bearer {CF_TOKEN}");
    let zid = zone_id(&base, "cf.test");
    let host = format!("{}.cf.test", unique("seed"));
    let a = api.seed_record("cf.test", &host, "A", "192.0.2.7");
    assert!(is_id(&a), "{a}");
    assert!(api.has_record(&a));
    let (status, _, body) = get(&format!("{base}/zones/{zid}/dns_records/{a}"), Some(&auth));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["id"], a.as_str());
    assert_eq!(body["result"]["type"], "A");
    assert_eq!(body["result"]["name"], host.as_str());
    assert_eq!(body["result"]["content"], "192.0.2.7");
    let (_, _, body) = get(
        &format!("{base}/zones/{zid}/dns_records?type=TXT&name={host}"),
        Some(&auth),
    );
    assert_eq!(body["result"], json!([]), "{body}");
    let (_, _, body) = get(
        &format!("{base}/zones/{zid}/dns_records?type=A&name={host}"),
        Some(&auth),
    );
    assert_eq!(body["result"].as_array().map(Vec::len), Some(1), "{body}");
    assert!(api.records().is_empty(), "records() lists TXT only");

    let name = format!("_acme-challenge.{host}");
    let txt = api.seed_record("cf.test", &name, "TXT", "seeded-value");
    assert_dns(&name, &["seeded-value"]);
    assert_eq!(api.records(), vec![(name.clone(), "seeded-value".into())]);

    let (status, _, _) = delete(&format!("{base}/zones/{zid}/dns_records/{a}"), &auth);
    assert_eq!(status, 200);
    assert!(!api.has_record(&a));
    assert!(api.remove_record(&txt));
    assert!(!api.remove_record(&txt));
    assert!(!api.has_record(&txt));
    assert_dns(&name, &[]);
}
