//! Tests of the emulators themselves (plain HTTP, no certvault code). What they publish is
//! checked on the real BIND with [`served_txt`]: without BIND, they fail.

mod cloudflare;
mod dnsimple;

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

use super::{served_txt, FakeApi, Flavor};
use crate::dns::wait_txt;
use crate::harness::env;

const CF_TOKEN: &str = "fakeapi-cf-token_0123456789abcdefABCDEF";
const DS_TOKEN: &str = "fakeapi-dnsimple-token-0123456789";

/// One client for all calls, so pooled keep-alive connections get exercised too.
fn client() -> reqwest::blocking::Client {
    static CLIENT: std::sync::OnceLock<reqwest::blocking::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("reqwest client")
        })
        .clone()
}

/// Status, headers and JSON body (Null when empty) of an answer.
type Answer = (u16, HeaderMap, Value);

fn call(method: Method, url: &str, auth: Option<&str>, body: Option<Value>) -> Answer {
    let mut rb = client().request(method, url);
    if let Some(a) = auth {
        rb = rb.header("Authorization", a);
    }
    if let Some(b) = body {
        rb = rb
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    let resp = rb.send().unwrap_or_else(|e| panic!("request {url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().expect("response body");
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("JSON from {url}: {e}: {text}"))
    };
    (status, headers, json)
}

fn get(url: &str, auth: Option<&str>) -> Answer {
    call(Method::GET, url, auth, None)
}

fn post(url: &str, auth: &str, body: Value) -> Answer {
    call(Method::POST, url, Some(auth), Some(body))
}

fn delete(url: &str, auth: &str) -> Answer {
    call(Method::DELETE, url, Some(auth), None)
}

/// Wait (10 s) until the primary BIND serves exactly `expected` at `name`.
#[track_caller]
fn assert_dns(name: &str, expected: &[&str]) {
    let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected.sort();
    let what = format!("BIND serves {expected:?}");
    wait_txt(&[env("CERTVAULT_TEST_BIND1")], name, &what, |v| {
        v == expected
    });
}

#[test]
fn rate_limited_requests_get_429_with_retry_after() {
    let cf = FakeApi::start(Flavor::Cloudflare, &["cf.test"], CF_TOKEN);
    cf.rate_limit_next(2);
    let url = format!("{}/zones?name=cf.test", cf.base_url());
    let auth = format!("Bearer {CF_TOKEN}");
    for _ in 0..2 {
        let (status, headers, body) = get(&url, Some(&auth));
        assert_eq!(status, 429, "{body}");
        assert_eq!(headers["retry-after"], "1");
        assert_eq!(body["success"], false);
        assert_eq!(body["errors"][0]["code"], 971);
    }
    let (status, _, _) = get(&url, Some(&auth));
    assert_eq!(status, 200);

    let ds = FakeApi::start(Flavor::Dnsimple, &["dnsimple.test"], DS_TOKEN);
    ds.rate_limit_next(1);
    let url = format!("{}/v2/whoami", ds.base_url());
    let auth = format!("Bearer {DS_TOKEN}");
    let (status, headers, body) = get(&url, Some(&auth));
    assert_eq!(status, 429, "{body}");
    assert_eq!(body, json!({"message": "quota exceeded"}));
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    assert_eq!(headers["x-ratelimit-limit"], "2400");
    assert!(headers.contains_key("x-ratelimit-reset"));
    let (status, headers, _) = get(&url, Some(&auth));
    assert_eq!(status, 200);
    assert!(headers.contains_key("x-ratelimit-remaining"));
    assert_eq!(ds.requests().len(), 2);
}

#[test]
fn dropping_the_server_stops_it() {
    let api = FakeApi::start(Flavor::Dnsimple, &["dnsimple.test"], DS_TOKEN);
    let url = format!("{}/v2/whoami", api.base_url());
    let (status, _, _) = get(&url, Some(&format!("Bearer {DS_TOKEN}")));
    assert_eq!(status, 200);
    drop(api);
    // Also the pooled keep-alive connection is closed: no waiting for the client's timeout.
    let asked = std::time::Instant::now();
    let err = client()
        .get(&url)
        .send()
        .expect_err("the server must be gone");
    assert!(err.is_connect() || err.is_request(), "{err}");
    assert!(asked.elapsed() < Duration::from_secs(5), "{err}");
}

#[test]
fn a_failed_dns_update_is_a_500_and_stores_nothing() {
    // The padding zones are not in BIND, so nsupdate is refused there.
    let api = FakeApi::start(Flavor::Cloudflare, &["cf.test"], CF_TOKEN);
    let zid = cloudflare::zone_id(&api.base_url(), "pad00.test");
    let (status, _, body) = post(
        &format!("{}/zones/{zid}/dns_records", api.base_url()),
        &format!("Bearer {CF_TOKEN}"),
        json!({"type": "TXT", "name": "_acme-challenge.pad00.test", "content": "v"}),
    );
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["success"], false);
    assert!(api.records().is_empty());
}

/// The DNS check itself: a server that does not answer for the name as its authority (here
/// BIND refuses a zone it does not hold) fails it, instead of passing as "no value".
#[test]
#[should_panic(expected = "gave no authoritative answer for TXT _acme-challenge.pad00.test")]
fn the_dns_check_fails_without_an_authoritative_answer() {
    served_txt(&env("CERTVAULT_TEST_BIND1"), "_acme-challenge.pad00.test");
}
