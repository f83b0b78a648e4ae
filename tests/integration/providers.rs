//! The newer DNS providers through the conformance suite and a full issue: PowerDNS (real,
//! with its real API), Route 53 (moto, fed into PowerDNS), acme-dns (a server written from
//! its published API, fed into PowerDNS). A third Pebble validates through that PowerDNS.
//! Also the solver commands: per-solver resolver settings, `dns test`, `dns remove`,
//! `dns list`, and names that do not parse.

use serde_json::json;

use crate::dns::{conformance, wait_txt, Target};
use crate::harness::*;
use crate::provider_servers::{pdns_set, AcmeDns, Route53Feed, ACME_DNS_ZONE, ROUTE53_ZONE};

fn pdns_servers() -> Vec<String> {
    vec![env("CERTVAULT_TEST_PDNS1"), env("CERTVAULT_TEST_PDNS2")]
}

#[test]
fn conformance_powerdns() {
    bed();
    conformance(
        serde_json::from_value(json!({
            "kind": "powerdns",
            "api_url": env("CERTVAULT_TEST_PDNS_API"),
            "api_key": env("CERTVAULT_TEST_PDNS_API_KEY"),
        }))
        .unwrap(),
        Target::on("pdns.test", pdns_servers()),
    );
}

#[test]
fn conformance_route53() {
    bed();
    let feed = Route53Feed::start();
    conformance(
        serde_json::from_value(json!({
            "kind": "route53",
            "access_key_id": "AKIDCERTVAULTTEST",
            "secret_access_key": "r53-secret-conformance",
            "endpoint": feed.base_url(),
        }))
        .unwrap(),
        Target::on(ROUTE53_ZONE, pdns_servers()),
    );
    let seen = feed.requests();
    assert!(
        seen.iter()
            .any(|r| r.path.contains("/hostedzonesbyname?dnsname=route53.test.")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|r| r.method == "POST" && r.path.ends_with("/rrset/")),
        "{seen:?}"
    );
    // Every request was SigV4-signed with the stored key (moto itself does not check).
    for r in &seen {
        let auth = r.credential.as_deref().unwrap_or_default();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDCERTVAULTTEST/")
                && auth.contains("/us-east-1/route53/aws4_request")
                && auth.contains("Signature="),
            "{r:?}"
        );
        assert!(!auth.contains("r53-secret-conformance"));
    }
}

#[test]
fn conformance_acme_dns() {
    bed();
    let server = AcmeDns::start();
    let account = server.register();
    let domain = format!("{}.pdns.test", unique("ad"));
    let fulldomain = account["fulldomain"].as_str().unwrap().to_string();
    // The other name of the suite: another account's subdomain.
    let other = server.register();
    let other_domain = format!("{}.pdns.test", unique("ad-other"));
    let other_fulldomain = other["fulldomain"].as_str().unwrap().to_string();
    conformance(
        serde_json::from_value(json!({
            "kind": "acme-dns",
            "server_url": server.base_url(),
            "accounts": { &domain: account, &other_domain: other },
        }))
        .unwrap(),
        Target {
            name: fulldomain,
            domain,
            zone: ACME_DNS_ZONE.into(),
            servers: pdns_servers(),
            other_name: other_fulldomain,
            other_domain,
        },
    );
    let updates: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/update")
        .collect();
    assert_eq!(updates.len(), 3, "{updates:?}");
    assert!(updates[..2]
        .iter()
        .all(|r| r.credential.as_deref() == account["username"].as_str()));
    assert_eq!(updates[2].credential.as_deref(), other["username"].as_str());
}

/// One installation issues through all three, validated by Pebble through PowerDNS. The
/// resolver and authoritative port are stored with each solver, so neither `issue` nor
/// `renew` passes DNS flags (before, a later run without them failed: "no zone (SOA)").
#[test]
fn issue_and_renew_through_powerdns_route53_and_acme_dns() {
    let feed = Route53Feed::start();
    let mut e = Env::new("newprov");
    let dir = tempdir("web-identity");
    let token_file = dir.join("token");
    std::fs::write(&token_file, "eyJ.web-identity.token").unwrap();
    e.extra.extend(
        [
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                token_file.display().to_string(),
            ),
            (
                "AWS_ROLE_ARN",
                "arn:aws:iam::123456789012:role/certvault".into(),
            ),
            ("AWS_ENDPOINT_URL_STS", feed.base_url()),
            ("CERTVAULT_PROPAGATION_INTERVAL", "100ms".into()),
            ("CERTVAULT_PROPAGATION_TIMEOUT", "20s".into()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    e.run(&[
        "init",
        "--directory",
        &env("CERTVAULT_TEST_DIRECTORY_PDNS"),
        "--agree-tos",
    ])
    .ok();
    let resolver = env("CERTVAULT_TEST_PDNS1");
    let port = env("CERTVAULT_TEST_PDNS_PORT");
    let dns_flags = [
        "--resolver",
        resolver.as_str(),
        "--authoritative-port",
        port.as_str(),
    ];

    let add = |kind: &str, name: &str, secret: &str, args: &[&str]| {
        let mut all = vec![kind, name];
        all.extend_from_slice(args);
        all.extend_from_slice(&dns_flags);
        e.dns_add_new(secret, &all).ok()
    };
    add(
        "powerdns",
        "pd",
        &env("CERTVAULT_TEST_PDNS_API_KEY"),
        &["--api-url", &env("CERTVAULT_TEST_PDNS_API")],
    );
    add("route53", "r53", "", &["--endpoint", &feed.base_url()]);
    let acme = AcmeDns::start();
    let ad_domain = format!("{}.pdns.test", unique("viaad"));
    let out = add(
        "acme-dns",
        "ad",
        "",
        &["--server-url", &acme.base_url(), "--register", &ad_domain],
    );
    // The CNAME the user must create is printed; create it.
    let line = out
        .stdout
        .lines()
        .find(|l| {
            l.starts_with(&format!(
                "create this CNAME: _acme-challenge.{ad_domain}. CNAME "
            ))
        })
        .unwrap_or_else(|| panic!("{}", out.stdout))
        .to_string();
    let target = line
        .rsplit(' ')
        .next()
        .unwrap()
        .trim_end_matches('.')
        .to_string();
    assert!(target.ends_with(".acmedns.test"), "{line}");
    pdns_set(
        "pdns.test",
        &format!("_acme-challenge.{ad_domain}"),
        "CNAME",
        &[format!("{target}.")],
    )
    .unwrap();

    // Stored: each solver's settings, no secret in `dns list`, columns aligned.
    let (doc, _) = vault_read(&format!("{}/dns/pd", e.prefix)).unwrap();
    assert_eq!(doc["kind"], "powerdns");
    assert_eq!(doc["resolver"], json!([resolver]));
    assert_eq!(
        doc["authoritative_port"],
        json!(port.parse::<u16>().unwrap())
    );
    let (doc, _) = vault_read(&format!("{}/dns/ad", e.prefix)).unwrap();
    assert_eq!(doc["accounts"][&ad_domain]["fulldomain"], json!(target));
    let list = e.run(&["dns", "list"]).ok().stdout;
    assert!(
        !list.contains(&env("CERTVAULT_TEST_PDNS_API_KEY")),
        "{list}"
    );
    let password = doc["accounts"][&ad_domain]["password"].as_str().unwrap();
    assert!(!list.contains(password), "{list}");
    let starts: Vec<usize> = list
        .lines()
        .map(|l| l.find("  ").unwrap() + l[l.find("  ").unwrap()..].find(|c| c != ' ').unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] == w[1]), "{list}");

    let root = pebble_root_of("CERTVAULT_TEST_PEBBLE_PDNS_MGMT");
    for (cert, solver, base) in [
        ("viapd", "pd", format!("{}.pdns.test", unique("viapd"))),
        (
            "viar53",
            "r53",
            format!("{}.{ROUTE53_ZONE}", unique("viar53")),
        ),
        ("viaad", "ad", ad_domain.clone()),
    ] {
        let wild = format!("*.{base}");
        e.run(&["issue", cert, "-d", &base, "-d", &wild, "--dns", solver])
            .ok();
        let (doc, v) = vault_read(&e.cert_path(cert)).unwrap();
        assert_eq!(v, 1);
        assert_eq!(
            doc["spec"]["dns"],
            json!({"kind": "solvers", "default": solver})
        );
        verify_record_to(&root, &doc, &[&base, &wild]);
        if solver != "ad" {
            wait_txt(
                &pdns_servers(),
                &format!("_acme-challenge.{base}"),
                "cleaned up",
                |v| v.is_empty(),
            );
        }
    }
    // Route 53 went through web identity credentials (one unsigned STS exchange: the token
    // is the credential), and every Route 53 request was signed with the key STS issued.
    let seen = feed.requests();
    let (sts, r53): (Vec<_>, Vec<_>) = seen
        .iter()
        .partition(|r| r.path.contains("(STS AssumeRoleWithWebIdentity)"));
    assert!(
        !sts.is_empty() && sts.iter().all(|r| r.credential.is_none()),
        "{sts:?}"
    );
    assert!(!r53.is_empty());
    for r in r53 {
        let auth = r.credential.as_deref().unwrap_or_default();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=")
                && auth.contains("/route53/aws4_request"),
            "{r:?}"
        );
    }

    let run = e.run(&["renew", "--force"]).ok();
    assert_contains(&run.stdout, "summary: 3 renewed, 0 not due, 0 failed");

    // dns remove refuses while a certificate uses the solver, and removes an unused one.
    let refused = e.run(&["dns", "remove", "pd"]);
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(
        refused
            .stderr
            .contains("DNS solver pd is used by certificate(s) viapd"),
        "{}",
        refused.stderr
    );
    assert!(vault_read(&format!("{}/dns/pd", e.prefix)).is_some());
    e.dns_add_new(
        &env("CERTVAULT_TEST_PDNS_API_KEY"),
        &[
            "powerdns",
            "spare",
            "--api-url",
            &env("CERTVAULT_TEST_PDNS_API"),
        ],
    )
    .ok();
    e.run(&["dns", "remove", "spare"]).ok();
    assert!(vault_read(&format!("{}/dns/spare", e.prefix)).is_none());
    assert!(!e.run(&["dns", "list"]).ok().stdout.contains("spare"));

    pdns_set(
        "pdns.test",
        &format!("_acme-challenge.{ad_domain}"),
        "CNAME",
        &[],
    )
    .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `dns test SOLVER --zone Z` reports each step and leaves nothing behind.
#[test]
fn dns_test_presents_checks_and_cleans_up_a_probe() {
    let e = Env::new("dnstest");
    // The solver `name` for the test bed's PowerDNS with `api_key`, checked through it.
    let add = |name: &str, api_key: &str| {
        e.dns_add_new(
            api_key,
            &[
                "powerdns",
                name,
                "--api-url",
                &env("CERTVAULT_TEST_PDNS_API"),
                "--resolver",
                &env("CERTVAULT_TEST_PDNS1"),
                "--authoritative-port",
                &env("CERTVAULT_TEST_PDNS_PORT"),
            ],
        )
        .ok()
    };
    add("pd", &env("CERTVAULT_TEST_PDNS_API_KEY"));
    let zone = format!("{}.pdns.test", unique("probe"));
    let run = e.run(&["dns", "test", "pd", "--zone", &zone]).ok();
    let out = run.stdout;
    assert!(
        out.contains(&format!(
            "placed: TXT _acme-challenge.{zone} in zone pdns.test"
        )),
        "{out}"
    );
    assert!(
        out.contains("ns1.pdns.test") && out.contains("ns2.pdns.test"),
        "{out}"
    );
    assert!(out.contains("presented: probe value"), "{out}");
    assert!(
        out.contains("visible: on every authoritative server (2)"),
        "{out}"
    );
    assert!(out.contains("cleaned up"), "{out}");
    wait_txt(
        &pdns_servers(),
        &format!("_acme-challenge.{zone}"),
        "probe removed",
        |v| v.is_empty(),
    );

    // A failing step says so and exits 1: a wrong API key.
    add("bad", "wrong-key");
    let run = e.run(&["dns", "test", "bad", "--zone", &zone]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert_contains(&run.stdout, "FAILED: DNS solver bad (zone pdns.test)");
    assert!(!run.all().contains("wrong-key"));
}

/// A zone or TSIG key name that does not parse is an input error naming the field (it
/// used to become the root `.`); a server without a port is told to mean port 53.
#[test]
fn names_that_do_not_parse_are_refused_naming_the_field() {
    let e = Env::new("badnames");
    let run = e.dns_add_new(
        "c2VjcmV0",
        &[
            "rfc2136",
            "z",
            "--server",
            "127.0.0.1:5300",
            "--tsig-key",
            "k.",
            "--zone",
            "bad zone",
        ],
    );
    fails_with(&run, 2, "--zone");
    let run = e.dns_add_new(
        "c2VjcmV0",
        &[
            "rfc2136",
            "k",
            "--server",
            "127.0.0.1:5300",
            "--tsig-key",
            "bad key.",
        ],
    );
    fails_with(&run, 1, "tsig_key \"bad key.\" is not a DNS name");
    assert!(vault_read(&format!("{}/dns/k", e.prefix)).is_none());
    let run = e
        .dns_add_new(
            "c2VjcmV0",
            &["rfc2136", "h", "--server", "localhost", "--tsig-key", "k."],
        )
        .ok();
    assert_contains(
        &run.stdout,
        "note: --server localhost has no port: DNS updates go to port 53 (localhost:53)",
    );
}

impl Env {
    /// `certvault dns add KIND NAME ARGS...` with `secret` in CERTVAULT_DNS_SECRET (if any).
    pub fn dns_add_new(&self, secret: &str, args: &[&str]) -> Run {
        let mut e = Env {
            prefix: self.prefix.clone(),
            token: self.token.clone(),
            extra: self.extra.clone(),
            cwd: None,
        };
        if !secret.is_empty() {
            e.extra.push(("CERTVAULT_DNS_SECRET".into(), secret.into()));
        }
        let mut all = vec!["dns", "add"];
        all.extend_from_slice(args);
        e.run(&all)
    }
}
