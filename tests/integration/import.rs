//! `certvault import` from folders the real certbot and lego made through the test bed's
//! Pebbles, and from certbot's files put into Vault as the certbot-in-Vault recipe does.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{
    assert_contains, env, hook, output_ok, record_key_matches, tempdir, unique, vault_read,
    verify_chain, verify_chain_bind, verify_record, verify_record_bind, Env,
};

/// `certbot SUBCOMMAND` on `server` with its config, work and logs folders below `cfg`.
fn certbot_cmd(cfg: &Path, subcommand: &str, server: &str) -> Command {
    let mut cmd = Command::new("certbot");
    let [config, work, logs] = ["c", "w", "l"].map(|d| cfg.join(d).display().to_string());
    cmd.arg(subcommand)
        .args([
            "--server",
            server,
            "-n",
            "--agree-tos",
            "-m",
            "ops@example.com",
        ])
        .args([
            "--config-dir",
            &config,
            "--work-dir",
            &work,
            "--logs-dir",
            &logs,
        ])
        .env("REQUESTS_CA_BUNDLE", env("CERTVAULT_ACME_CA_CERT"))
        .env(
            "CERTVAULT_TEST_CHALLTESTSRV",
            env("CERTVAULT_TEST_CHALLTESTSRV"),
        );
    cmd
}

/// Run certbot to success. The test bed's Pebbles reject 5 % of nonces on purpose, and
/// certbot retries a rejected nonce only once: a run that failed on that alone is run again
/// (at most twice more); any other failure fails the test.
fn run_certbot(mut make: impl FnMut() -> Command, what: &str) {
    for _ in 0..2 {
        let out = make().output().expect("run certbot");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            return;
        }
        assert!(
            text.contains("invalid anti-replay nonce"),
            "{what} failed ({}):\n{text}",
            out.status
        );
    }
    output_ok(&mut make(), what);
}

/// `certbot certonly` into `cfg` (config, work and logs folders below it).
fn certbot(cfg: &Path, server: &str, domains: &[String], how: &[&str]) {
    run_certbot(
        || {
            let mut cmd = certbot_cmd(cfg, "certonly", server);
            cmd.args(how);
            for d in domains {
                cmd.args(["-d", d]);
            }
            cmd
        },
        "certbot",
    );
}

fn manual(deploy: &str) -> Vec<String> {
    [
        "--manual",
        "--preferred-challenges",
        "dns",
        "--manual-auth-hook",
        &hook("challtestsrv-auth"),
        "--manual-cleanup-hook",
        &hook("challtestsrv-cleanup"),
        "--deploy-hook",
        deploy,
    ]
    .map(String::from)
    .to_vec()
}

/// The address and port of the test bed's primary BIND.
fn bind_primary() -> (String, String) {
    env("CERTVAULT_TEST_BIND1")
        .rsplit_once(':')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap()
}

/// certbot's rfc2136 credentials file for the test bed's BIND (mode 600).
fn rfc2136_ini(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let (ip, port) = bind_primary();
    let file = dir.join("rfc2136.ini");
    std::fs::write(
        &file,
        format!(
            "dns_rfc2136_server = {ip}\ndns_rfc2136_port = {port}\ndns_rfc2136_name = {}\ndns_rfc2136_secret = {}\ndns_rfc2136_algorithm = HMAC-SHA256\n",
            env("CERTVAULT_TEST_TSIG_NAME"),
            env("CERTVAULT_TEST_TSIG_SECRET")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    file
}

fn pem(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// The certbot account ids of a config folder, per server folder name.
fn certbot_account_ids(cfg: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for host in std::fs::read_dir(cfg.join("c/accounts")).unwrap() {
        let host = host.unwrap().path();
        for id in std::fs::read_dir(host.join("dir")).unwrap() {
            let id = id.unwrap().path();
            out.push((
                host.file_name().unwrap().to_string_lossy().into_owned(),
                id.file_name().unwrap().to_string_lossy().into_owned(),
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn certbot_folder_imports_as_is_and_renews() {
    let tmp = tempdir("cb");
    // Into the test's own folder, never the working directory.
    let deploy_hook = format!("touch {}", tmp.join("deployed").display());
    let id = unique("cb");
    let manual_name = format!("m.{id}.example.com");
    let bind_a = format!("a.{id}.example.test");
    let bind_b = format!("b.{id}.example.test");
    certbot(
        &tmp,
        &env("CERTVAULT_TEST_DIRECTORY"),
        &[manual_name.clone(), format!("n.{id}.example.com")],
        &manual(&deploy_hook)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let ini = rfc2136_ini(&tmp);
    for name in [&bind_a, &bind_b] {
        certbot(
            &tmp,
            &env("CERTVAULT_TEST_DIRECTORY_BIND"),
            std::slice::from_ref(name),
            &[
                "--dns-rfc2136",
                "--dns-rfc2136-credentials",
                ini.to_str().unwrap(),
                "--dns-rfc2136-propagation-seconds",
                "1",
                "--key-type",
                "rsa",
            ],
        );
    }
    let cfg = tmp.join("c");
    // renew_before_expiry is commented out by certbot; set it on one lineage.
    let conf = cfg.join(format!("renewal/{manual_name}.conf"));
    let text = pem(&conf).replace(
        "# renew_before_expiry = 30 days",
        "renew_before_expiry = 40 days",
    );
    std::fs::write(&conf, text).unwrap();

    let e = Env::bind("imp-cb");
    let cfg_s = cfg.to_str().unwrap();
    // Dry run: says what, writes nothing, shows no secret.
    let dry = e.run(&["import", "certbot", cfg_s, "--dry-run"]);
    let secret = env("CERTVAULT_TEST_TSIG_SECRET");
    assert!(!dry.all().contains(&secret), "secret in dry run output");
    assert_contains(&dry.stdout, "would store solver rfc2136-rfc2136");
    assert_contains(&dry.stdout, &format!("would import {manual_name}"));
    assert!(
        vault_read(&e.cert_path(&manual_name)).is_none(),
        "dry run wrote"
    );
    assert!(vault_read(&format!("{}/dns/rfc2136-rfc2136", e.prefix)).is_none());

    let run = e.run(&["import", "certbot", cfg_s]);
    assert!(!run.all().contains(&secret), "secret in output");
    // certbot's account keys are RSA: without --adopt-account reported, not carried over,
    // not re-registered, and the note says what the flag would do.
    assert_eq!(run.code, 1, "{}", run.all());
    assert_eq!(
        run.stdout.matches("NOT CARRIED OVER account").count(),
        2,
        "{}",
        run.all()
    );
    assert_contains(&run.stdout, "run the import again with --adopt-account");
    assert_contains(
        &run.stdout,
        "the source client's copy of the old key stops working",
    );
    assert_contains(&run.stdout, "summary: 4 written");

    // Stored as they are: same serial, same key, same chain.
    for (name, root_of_bind) in [(&manual_name, false), (&bind_a, true), (&bind_b, true)] {
        let live = cfg.join("live").join(name);
        let (doc, version) = vault_read(&e.cert_path(name)).expect("record");
        assert_eq!(version, 1);
        assert_eq!(
            doc["privkey"].as_str().unwrap(),
            pem(&live.join("privkey.pem"))
        );
        assert_eq!(
            doc["cert"].as_str().unwrap().trim(),
            pem(&live.join("cert.pem")).trim()
        );
        assert_eq!(
            doc["fullchain"].as_str().unwrap().trim(),
            pem(&live.join("fullchain.pem")).trim()
        );
        let (status, _) = vault_read(&format!("{}/status/{name}", e.prefix)).unwrap();
        assert_eq!(status["last_result"], "imported");
        assert_eq!(status["serial"], doc["serial"]);
        assert_eq!(status["cert_version"], 1);
        let cert = doc["cert"].as_str().unwrap();
        if root_of_bind {
            verify_chain_bind(cert, doc["chain"].as_str().unwrap(), &[name]);
        } else {
            verify_chain(cert, doc["chain"].as_str().unwrap(), &[name]);
        }
    }
    let (spec, _) = vault_read(&format!("{}/specs/{manual_name}", e.prefix)).unwrap();
    assert_eq!(spec["dns"]["kind"], "exec");
    assert_eq!(spec["dns"]["auth_hook"], hook("challtestsrv-auth"));
    assert_eq!(spec["dns"]["cleanup_hook"], hook("challtestsrv-cleanup"));
    assert_eq!(spec["deploy_hook"], deploy_hook);
    assert_eq!(spec["renew_before"], "40days");
    assert_eq!(spec["key_type"], "ecdsa-p256");
    assert_eq!(spec["domains"][0], manual_name.as_str());
    // Two lineages, one credentials file: one solver, secret read from the file.
    for name in [&bind_a, &bind_b] {
        let (spec, _) = vault_read(&format!("{}/specs/{name}", e.prefix)).unwrap();
        assert_eq!(spec["dns"]["default"], "rfc2136-rfc2136");
        assert_eq!(spec["key_type"], "rsa2048");
    }
    let (solver, _) = vault_read(&format!("{}/dns/rfc2136-rfc2136", e.prefix)).unwrap();
    assert_eq!(solver["kind"], "rfc2136");
    assert_eq!(solver["tsig_secret"], secret.as_str());
    assert_eq!(solver["server"], env("CERTVAULT_TEST_BIND1").as_str());
    assert_eq!(solver["tsig_algorithm"], "hmac-sha256");

    // Resumable and idempotent: a second run writes nothing.
    let again = e.run(&["import", "certbot", cfg_s]);
    assert_contains(&again.stdout, "summary: 0 written, 4 already there");
    assert_eq!(vault_read(&e.cert_path(&manual_name)).unwrap().1, 1);

    // The RSA accounts carried over: a dry run names them, then each account's key is
    // changed at the CA to a new P-256 key, the account URL stays, and everything renews
    // with those accounts.
    let ids = certbot_account_ids(&tmp);
    assert_eq!(ids.len(), 2);
    let dry = e.run(&["import", "certbot", cfg_s, "--adopt-account", "--dry-run"]);
    assert_eq!(
        dry.stdout.matches("would carry over account").count(),
        2,
        "{}",
        dry.all()
    );
    assert_contains(&dry.stdout, "change its RSA 2048-bit key at the CA");
    let adopted = e.run(&["import", "certbot", cfg_s, "--adopt-account"]);
    assert_eq!(adopted.code, 0, "{}", adopted.all());
    assert_eq!(
        adopted
            .stdout
            .matches("carried over: its RSA 2048-bit key")
            .count(),
        2,
        "{}",
        adopted.all()
    );
    for (host, id) in &ids {
        let regr: serde_json::Value = serde_json::from_str(&pem(
            &cfg.join(format!("accounts/{host}/dir/{id}/regr.json"))
        ))
        .unwrap();
        let account = format!("certbot-{}", &id[..8]);
        let (acct, version) =
            vault_read(&format!("{}/accounts/{account}", e.prefix)).expect("account stored");
        assert_eq!(version, 1);
        assert_eq!(
            acct["credentials"]["id"], regr["uri"],
            "the same account URL"
        );
        assert_eq!(acct["directory"], format!("https://{host}/dir"));
    }
    let renewed = e.run(&["renew", "--force"]).ok();
    assert_contains(&renewed.stdout, "3 renewed");
    for name in [&manual_name, &bind_a, &bind_b] {
        let (doc, version) = vault_read(&e.cert_path(name)).unwrap();
        assert_eq!(version, 2);
        assert!(record_key_matches(&doc));
    }
    // The CA no longer knows certbot's copy of the key.
    let (host, id) = &ids[0];
    let old = cfg.join(format!("accounts/{host}/dir/{id}/private_key.json"));
    let lookup = Env::new("imp-cb-old").run(&[
        "init",
        "--directory",
        &format!("https://{host}/dir"),
        "--account-key",
        old.to_str().unwrap(),
    ]);
    assert_ne!(lookup.code, 0, "{}", lookup.all());
    assert_contains(&lookup.stderr, "knows no account for this key");
}

/// The bad-input cases, each next to a good lineage that still imports.
#[test]
fn certbot_bad_input_is_named_and_the_rest_imports() {
    let tmp = tempdir("cbbad");
    let cfg = tmp.join("c");
    let outside = tmp.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let lineage = |name: &str, auth: &str, key_of: Option<&rcgen::KeyPair>| {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap().pem();
        let arch = cfg.join("archive").join(name);
        let live = cfg.join("live").join(name);
        std::fs::create_dir_all(&arch).unwrap();
        std::fs::create_dir_all(&live).unwrap();
        let privkey = key_of.unwrap_or(&key).serialize_pem();
        for (f, body) in [
            ("cert", &cert),
            ("chain", &cert),
            ("fullchain", &cert),
            ("privkey", &privkey),
        ] {
            std::fs::write(arch.join(format!("{f}1.pem")), body).unwrap();
            std::os::unix::fs::symlink(
                format!("../../archive/{name}/{f}1.pem"),
                live.join(format!("{f}.pem")),
            )
            .unwrap();
        }
        std::fs::create_dir_all(cfg.join("renewal")).unwrap();
        std::fs::write(
            cfg.join(format!("renewal/{name}.conf")),
            format!("version = 2.1.0\ncert = /etc/letsencrypt/live/{name}/cert.pem\nprivkey = /etc/letsencrypt/live/{name}/privkey.pem\nchain = /etc/letsencrypt/live/{name}/chain.pem\nfullchain = /etc/letsencrypt/live/{name}/fullchain.pem\n\n[renewalparams]\nauthenticator = {auth}\nmanual_auth_hook = /bin/true\nserver = https://localhost:14000/dir\nkey_type = ecdsa\n"),
        )
        .unwrap();
    };
    lineage("good.example.com", "manual", None);
    lineage("missing.example.com", "manual", None);
    std::fs::remove_file(cfg.join("archive/missing.example.com/privkey1.pem")).unwrap();
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    lineage("mismatch.example.com", "manual", Some(&other));
    lineage("webroot.example.com", "webroot", None);
    lineage("escape.example.com", "manual", None);
    let escaped = cfg.join("live/escape.example.com/cert.pem");
    std::fs::remove_file(&escaped).unwrap();
    std::fs::write(outside.join("cert.pem"), "not for certvault").unwrap();
    std::os::unix::fs::symlink(outside.join("cert.pem"), &escaped).unwrap();
    // A garbage conf and a huge one must not panic either.
    std::fs::write(
        cfg.join("renewal/garbage.conf"),
        [0xffu8, 0, 0x5b, 0x0a, 0x3d],
    )
    .unwrap();
    let huge = std::fs::File::create(cfg.join("renewal/huge.conf")).unwrap();
    huge.set_len(5 << 20).unwrap();
    // A broken JSON account.
    let acct = cfg.join("accounts/localhost:14000/dir/0123456789abcdef");
    std::fs::create_dir_all(&acct).unwrap();
    std::fs::write(
        acct.join("private_key.json"),
        "{\"kty\": \"EC\", \"crv\": \"P-256\", \"d\": \"c2VjcmV0",
    )
    .unwrap();
    std::fs::write(acct.join("regr.json"), "{}").unwrap();

    let e = Env::new("imp-bad");
    let run = e.run(&["import", "certbot", cfg.to_str().unwrap()]);
    let out = run.all();
    assert_eq!(run.code, 1, "{out}");
    assert!(!out.contains("panicked"), "{out}");
    assert!(!out.contains("c2VjcmV0"), "{out}");
    let line = |needle: &str| -> String {
        out.lines()
            .find(|l| l.starts_with("ERROR") && l.contains(needle))
            .unwrap_or_else(|| panic!("no ERROR line with {needle:?}:\n{out}"))
            .to_string()
    };
    assert!(line("missing.example.com/privkey.pem").contains("missing (no such file)"));
    assert!(line("mismatch.example.com.conf").contains("does not match"));
    assert!(line("webroot.example.com.conf").contains("authenticator webroot is not supported"));
    assert!(line("escape.example.com/cert.pem").contains("outside"));
    assert!(line("private_key.json").contains("broken account key"));
    assert!(line("garbage.conf").contains("UTF-8"));
    assert!(line("huge.conf").contains("too large"));
    // The rest imported: the good one, and the webroot one (marked as needing a solver).
    assert!(vault_read(&e.cert_path("good.example.com")).is_some());
    for gone in [
        "missing.example.com",
        "mismatch.example.com",
        "escape.example.com",
    ] {
        assert!(vault_read(&e.cert_path(gone)).is_none(), "{gone} imported");
    }
    let (status, _) = vault_read(&format!("{}/status/webroot.example.com", e.prefix)).unwrap();
    assert_eq!(status["last_result"], "imported");
    assert!(
        status["last_error"].as_str().unwrap().contains("webroot"),
        "{status}"
    );
    let (spec, _) = vault_read(&format!("{}/specs/webroot.example.com", e.prefix)).unwrap();
    assert_eq!(spec["dns"], serde_json::json!({"kind": "solvers"}));
    assert!(out.contains("NEEDS A SOLVER"), "{out}");

    // --only, and a conflict that is reported and skipped unless --force.
    let other_dir = tempdir("cbother");
    let e2 = Env::new("imp-conflict");
    e2.init().ok();
    e2.issue("good.example.com", &["good.example.com"], &[])
        .ok();
    let skipped = Env {
        prefix: e2.prefix.clone(),
        token: e2.token.clone(),
        extra: Vec::new(),
        cwd: Some(other_dir.to_path_buf()),
    }
    .run(&[
        "import",
        "certbot",
        cfg.to_str().unwrap(),
        "--only",
        "good.example.com",
    ]);
    assert_contains(&skipped.stdout, "SKIPPED  good.example.com");
    assert_eq!(skipped.code, 1);
    let forced = e2.run(&[
        "import",
        "certbot",
        cfg.to_str().unwrap(),
        "--only",
        "good.example.com",
        "--force",
    ]);
    assert_contains(&forced.stdout, "imported good.example.com");
    let (doc, _) = vault_read(&e2.cert_path("good.example.com")).unwrap();
    assert_eq!(
        doc["cert"].as_str().unwrap(),
        pem(&cfg.join("live/good.example.com/cert.pem"))
    );
}

/// `lego run` into `path` with the given DNS settings.
/// `lego run` for `domain` into `path`, solving DNS-01 with lego's `provider` (its own
/// propagation check off, lookups through `resolver`), configured by `envs`.
fn lego(
    path: &Path,
    (server, email): (&str, &str),
    domain: &str,
    (provider, resolver): (&str, &str),
    envs: &[(&str, String)],
    extra: &[&str],
) {
    let mut cmd = Command::new("lego");
    cmd.args([
        "--server",
        server,
        "--email",
        email,
        "--accept-tos",
        "--path",
    ])
    .arg(path)
    .args([
        "--dns",
        provider,
        "--dns.disable-cp",
        "--dns.resolvers",
        resolver,
    ])
    .args(["-d", domain])
    .args(extra)
    .env("LEGO_CA_CERTIFICATES", env("CERTVAULT_ACME_CA_CERT"));
    for (k, v) in envs {
        cmd.env(k, v);
    }
    output_ok(cmd.arg("run"), "lego");
}

/// lego's `exec` DNS provider script for the test bed's challtestsrv (which answers no SOA,
/// so lego's own propagation check is off where it is used).
fn lego_exec_script(dir: &Path) -> PathBuf {
    let exec = dir.join("exec.sh");
    std::fs::write(
        &exec,
        format!("#!/bin/sh\ncase \"$1\" in\npresent) curl -fsS -o /dev/null --noproxy '*' -d \"{{\\\"host\\\":\\\"$2\\\",\\\"value\\\":\\\"$3\\\"}}\" {0}/set-txt;;\ncleanup) curl -fsS -o /dev/null --noproxy '*' -d \"{{\\\"host\\\":\\\"$2\\\"}}\" {0}/clear-txt;;\nesac\n", env("CERTVAULT_TEST_CHALLTESTSRV")),
    )
    .unwrap();
    std::fs::set_permissions(&exec, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    exec
}

#[test]
fn lego_folder_imports_with_its_account_and_renews() {
    let tmp = tempdir("lego");
    let id = unique("lg");
    let path = tmp.join("lego");
    // exec: the challtestsrv, which answers no SOA, so lego's own propagation check is off.
    let exec = lego_exec_script(&tmp);
    let exec_name = format!("x.{id}.example.com");
    let bind_name = format!("l.{id}.example.test");
    // (name, CA, email, lego's DNS provider and resolver, its settings)
    let runs = [
        (
            &exec_name,
            env("CERTVAULT_TEST_DIRECTORY"),
            "exec@example.com",
            ("exec", env("CERTVAULT_TEST_DNS")),
            vec![
                ("EXEC_PATH", exec.display().to_string()),
                ("EXEC_POLLING_INTERVAL", "1".into()),
            ],
        ),
        (
            &bind_name,
            env("CERTVAULT_TEST_DIRECTORY_BIND"),
            "bind@example.com",
            ("rfc2136", env("CERTVAULT_TEST_BIND1")),
            vec![
                ("RFC2136_NAMESERVER", env("CERTVAULT_TEST_BIND1")),
                ("RFC2136_TSIG_KEY", env("CERTVAULT_TEST_TSIG_NAME")),
                ("RFC2136_TSIG_SECRET", env("CERTVAULT_TEST_TSIG_SECRET")),
                ("RFC2136_TSIG_ALGORITHM", "hmac-sha256.".into()),
                ("RFC2136_POLLING_INTERVAL", "1".into()),
                ("RFC2136_PROPAGATION_TIMEOUT", "30".into()),
            ],
        ),
    ];
    for (name, ca, email, (provider, resolver), envs) in &runs {
        lego(&path, (ca, email), name, (provider, resolver), envs, &[]);
    }
    let url_of = |host: &str, email: &str| -> String {
        let text = pem(&path.join(format!("accounts/{host}/{email}/account.json")));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["registration"]["uri"].as_str().unwrap().to_string()
    };
    let exec_url = url_of("localhost_14000", "exec@example.com");
    let bind_url = url_of("localhost_14001", "bind@example.com");

    // init --account-key: the lego key (SEC1 P-256 PEM) finds its account, same URL.
    let solo = Env::new("imp-key");
    let key = path.join("accounts/localhost_14000/exec@example.com/keys/exec@example.com.key");
    let found = solo
        .init_with(&["--account-key", key.to_str().unwrap()])
        .ok();
    assert_contains(&found.stdout, &exec_url);
    let (acct, _) = vault_read(&format!("{}/accounts/default", solo.prefix)).unwrap();
    assert_eq!(acct["credentials"]["id"], exec_url.as_str());
    // A key the CA does not know: found nowhere, nothing registered.
    let stranger = tmp.join("stranger.pem");
    std::fs::write(
        &stranger,
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .unwrap()
            .serialize_pem(),
    )
    .unwrap();
    let none = Env::new("imp-key2");
    let unknown = none.init_with(&["--account-key", stranger.to_str().unwrap()]);
    assert_ne!(unknown.code, 0);
    assert_contains(&unknown.stderr, "onlyReturnExisting");
    assert!(vault_read(&format!("{}/accounts/default", none.prefix)).is_none());

    // The folder: both accounts (P-256) found again, both certificates as they are. lego
    // does not record directory URLs: --server names one per run (per account host).
    let e = Env::bind("imp-lego");
    let first = e.run(&[
        "import",
        "lego",
        path.to_str().unwrap(),
        "--server",
        &env("CERTVAULT_TEST_DIRECTORY"),
    ]);
    assert_eq!(first.code, 1, "{}", first.all());
    assert_contains(&first.stdout, "localhost:14001 is not a well-known CA");
    assert_contains(&first.stdout, "summary: 3 written");
    let second = e.run(&[
        "import",
        "lego",
        path.to_str().unwrap(),
        "--server",
        &env("CERTVAULT_TEST_DIRECTORY_BIND"),
    ]);
    assert_contains(&second.stdout, "summary: 1 written, 3 already there");
    for (account, url) in [
        ("lego-exec-example.com", &exec_url),
        ("lego-bind-example.com", &bind_url),
    ] {
        let (acct, _) = vault_read(&format!("{}/accounts/{account}", e.prefix)).expect(account);
        assert_eq!(
            acct["credentials"]["id"],
            url.as_str(),
            "{account}: another account URL"
        );
    }
    for name in [&exec_name, &bind_name] {
        let (doc, version) = vault_read(&e.cert_path(name)).unwrap();
        assert_eq!(version, 1);
        assert_eq!(
            doc["privkey"].as_str().unwrap(),
            pem(&path.join(format!("certificates/{name}.key")))
        );
        assert_eq!(
            doc["fullchain"].as_str().unwrap().trim(),
            pem(&path.join(format!("certificates/{name}.crt"))).trim()
        );
        let (status, _) = vault_read(&format!("{}/status/{name}", e.prefix)).unwrap();
        assert!(
            status["last_error"].as_str().unwrap().contains("lego"),
            "{status}"
        );
    }
    // lego keeps no solver: set one without reissuing, then renew with the imported accounts.
    e.add_bind_solver("bind");
    e.issue(
        &exec_name,
        &[&exec_name],
        &["--account", "lego-exec-example.com"],
    )
    .ok();
    e.run(&[
        "--account",
        "lego-bind-example.com",
        "issue",
        &bind_name,
        "-d",
        &bind_name,
        "--dns",
        "bind",
    ])
    .ok();
    for name in [&exec_name, &bind_name] {
        assert_eq!(
            vault_read(&e.cert_path(name)).unwrap().1,
            2,
            "settings only, not reissued"
        );
    }
    let renewed = e.run(&["renew", "--force"]).ok();
    assert_contains(&renewed.stdout, "2 renewed");
    let (doc, _) = vault_read(&e.cert_path(&exec_name)).unwrap();
    verify_record(&doc, &[&exec_name]);
    let (doc, _) = vault_read(&e.cert_path(&bind_name)).unwrap();
    verify_record_bind(&doc, &[&bind_name]);
    // The accounts were used as they were: still the lego accounts.
    for (account, url) in [
        ("lego-exec-example.com", &exec_url),
        ("lego-bind-example.com", &bind_url),
    ] {
        let (acct, version) = vault_read(&format!("{}/accounts/{account}", e.prefix)).unwrap();
        assert_eq!(
            (acct["credentials"]["id"].as_str().unwrap(), version),
            (url.as_str(), 1)
        );
    }
}

/// lego's RSA and P-384 account keys (PKCS#1 and SEC1 PEM, made with `--key-type`) carried
/// over: a dry run names them, the import changes each key at the CA to a new P-256 key, the
/// account URLs stay, the certificates renew with those accounts, and the CA no longer knows
/// lego's keys.
#[test]
fn lego_rsa_and_p384_accounts_are_carried_over() {
    let tmp = tempdir("lego-adopt");
    let id = unique("la");
    let path = tmp.join("lego");
    let exec = lego_exec_script(&tmp);
    let ca = env("CERTVAULT_TEST_DIRECTORY");
    let kinds = [("rsa2048", "RSA 2048-bit"), ("ec384", "ECDSA P-384")];
    let mut names = Vec::new();
    for (kind, _) in kinds {
        let name = format!("{kind}.{id}.example.com");
        lego(
            &path,
            (&ca, &format!("{kind}@example.com")),
            &name,
            ("exec", &env("CERTVAULT_TEST_DNS")),
            &[
                ("EXEC_PATH", exec.display().to_string()),
                ("EXEC_POLLING_INTERVAL", "1".into()),
            ],
            &["--key-type", kind],
        );
        names.push(name);
    }
    let account_dir =
        |kind: &str| path.join(format!("accounts/localhost_14000/{kind}@example.com"));
    let e = Env::new("imp-lego-adopt");
    let folder = path.to_str().unwrap();
    let import = |extra: &[&str]| {
        let mut args = vec!["import", "lego", folder, "--server", &ca];
        args.extend_from_slice(extra);
        e.run(&args)
    };
    let plain = import(&[]);
    assert_eq!(plain.code, 1, "{}", plain.all());
    assert_eq!(
        plain.stdout.matches("NOT CARRIED OVER account").count(),
        2,
        "{}",
        plain.all()
    );
    let dry = import(&["--adopt-account", "--dry-run"]);
    for (_, what) in kinds {
        assert_contains(&dry.stdout, "would carry over account");
        assert_contains(&dry.stdout, &format!("change its {what} key at the CA"));
    }
    assert!(vault_read(&format!("{}/accounts/lego-rsa2048-example.com", e.prefix)).is_none());
    let adopted = import(&["--adopt-account"]);
    assert_eq!(adopted.code, 0, "{}", adopted.all());
    for ((kind, what), name) in kinds.iter().zip(&names) {
        assert_contains(&adopted.stdout, &format!("carried over: its {what} key"));
        let account = format!("lego-{kind}-example.com");
        let registration: serde_json::Value =
            serde_json::from_str(&pem(&account_dir(kind).join("account.json"))).unwrap();
        let (acct, _) = vault_read(&format!("{}/accounts/{account}", e.prefix)).expect(&account);
        assert_eq!(
            acct["credentials"]["id"],
            registration["registration"]["uri"]
        );
        // lego keeps no solver: hooks, without reissuing; then renew with the account.
        e.issue(name, &[name], &["--account", &account]).ok();
    }
    let renewed = e.run(&["renew", "--force"]).ok();
    assert_contains(&renewed.stdout, "2 renewed");
    for (kind, _) in kinds {
        let key = account_dir(kind).join(format!("keys/{kind}@example.com.key"));
        let old = Env::new("imp-lego-old").run(&[
            "init",
            "--directory",
            &ca,
            "--account-key",
            key.to_str().unwrap(),
        ]);
        assert_ne!(old.code, 0, "{}", old.all());
        assert_contains(&old.stderr, "knows no account for this key");
    }
    for name in &names {
        let (doc, _) = vault_read(&e.cert_path(name)).unwrap();
        verify_record(&doc, &[name]);
    }
}

/// `bao ARGS` as root against the test bed.
fn bao(args: &[&str]) {
    output_ok(
        Command::new(env("BAO_BIN"))
            .args(args)
            .env("VAULT_ADDR", env("VAULT_ADDR"))
            .env("VAULT_TOKEN", env("VAULT_TOKEN"))
            .env("BAO_ADDR", env("VAULT_ADDR"))
            .env("BAO_TOKEN", env("VAULT_TOKEN")),
        &format!("bao {args:?}"),
    );
}

/// A KV v2 mount of a test's own, disabled on drop.
struct Mount(String);

impl Drop for Mount {
    fn drop(&mut self) {
        bao(&["secrets", "disable", &self.0]);
    }
}

#[test]
fn certbot_in_vault_layout_imports_read_only() {
    let tmp = tempdir("vl");
    let id = unique("vl");
    let name = format!("v.{id}.example.com");
    certbot(
        &tmp,
        &env("CERTVAULT_TEST_DIRECTORY"),
        std::slice::from_ref(&name),
        &manual("true")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let (host, account_id) = certbot_account_ids(&tmp).remove(0);
    let acct = tmp.join(format!("c/accounts/{host}/dir/{account_id}"));
    // The recipe: certbot's JSON files and PEMs put into Vault as they are.
    let mount = Mount(id.replace('.', "-"));
    bao(&["secrets", "enable", &format!("-path={}", mount.0), "kv-v2"]);
    let at = |p: &str| format!("{}/lets-encrypt/{p}", mount.0);
    for f in ["private_key", "regr", "meta"] {
        bao(&[
            "kv",
            "put",
            &at(&format!("account/{f}")),
            &format!("@{}", acct.join(format!("{f}.json")).display()),
        ]);
    }
    bao(&[
        "kv",
        "put",
        &at("account/extra_details"),
        &format!("account_id={account_id}"),
    ]);
    let live = tmp.join(format!("c/live/{name}"));
    let file = |f: &str| format!("{f}=@{}", live.join(format!("{f}.pem")).display());
    bao(&[
        "kv",
        "put",
        &at(&format!("certificates/{name}")),
        &file("cert"),
        &file("chain"),
        &file("fullchain"),
        &file("privkey"),
    ]);
    let token = "dnsimple-TOKEN-not-for-output";
    bao(&[
        "kv",
        "put",
        &format!("{}/dnsimple", mount.0),
        &format!("token={token}"),
    ]);

    let e = Env::new("imp-vl");
    let from = format!("{}/lets-encrypt", mount.0);
    let dry = e.run(&[
        "import",
        "vault-layout",
        "--from",
        &from,
        "--dry-run",
        "--server",
        &env("CERTVAULT_TEST_DIRECTORY"),
    ]);
    assert!(!dry.all().contains(token), "{}", dry.all());
    assert_contains(&dry.stdout, "would store solver dnsimple");
    assert!(vault_read(&e.cert_path(&name)).is_none());
    let run = e.run(&[
        "import",
        "vault-layout",
        "--from",
        &from,
        "--server",
        &env("CERTVAULT_TEST_DIRECTORY"),
    ]);
    assert!(!run.all().contains(token), "{}", run.all());
    assert_contains(&run.stdout, "NOT CARRIED OVER account");
    assert_contains(&run.stdout, "its key is RSA 2048-bit");
    let (doc, version) = vault_read(&e.cert_path(&name)).unwrap();
    assert_eq!(version, 1);
    assert_eq!(
        doc["privkey"].as_str().unwrap(),
        pem(&live.join("privkey.pem"))
    );
    verify_record(&doc, &[&name]);
    let (spec, _) = vault_read(&format!("{}/specs/{name}", e.prefix)).unwrap();
    assert_eq!(spec["dns"]["default"], "dnsimple");
    let (solver, _) = vault_read(&format!("{}/dns/dnsimple", e.prefix)).unwrap();
    assert_eq!(
        (solver["kind"].as_str(), solver["token"].as_str()),
        (Some("dnsimple"), Some(token))
    );
    // Read only: the source documents are still at version 1.
    let rsp = crate::harness::http()
        .get(format!(
            "{}/v1/{}/metadata/lets-encrypt/certificates/{name}",
            env("VAULT_ADDR"),
            mount.0
        ))
        .header("X-Vault-Token", env("VAULT_TOKEN"))
        .send()
        .unwrap()
        .json::<serde_json::Value>()
        .unwrap();
    assert_eq!(rsp["data"]["current_version"], 1);

    // A half-done carry-over: the key changes at the CA, Vault refuses the write (a token
    // that may not write accounts/). The change is undone at the CA, so certbot's key still
    // finds the account (the next import proves it), and the error says so.
    let acct_path = format!("{}/accounts/default", e.prefix);
    let admin = e.apply_policy(&["admin"]);
    let no_accounts = crate::harness::unique("cv-noacct");
    crate::harness::vault_policy(
        &no_accounts,
        &format!(
            "path \"secret/data/{acct_path}\" {{ capabilities = [\"read\"] }}\npath \"{}/*\" {{ capabilities = [\"read\", \"list\"] }}\n",
            mount.0
        ),
    );
    let mut limited = e.with_token(crate::harness::vault_token(
        &unique("tok"),
        &[&admin, &no_accounts],
    ));
    limited.extra = e.extra.clone();
    let import_args = [
        "import",
        "vault-layout",
        "--from",
        &from,
        "--server",
        &env("CERTVAULT_TEST_DIRECTORY"),
        "--adopt-account",
    ];
    let half = limited.run(&import_args);
    assert_eq!(half.code, 1, "{}", half.all());
    assert_contains(&half.all(), "could not be stored");
    assert_contains(&half.stdout, "the key change was undone at the CA");
    assert!(vault_read(&acct_path).is_none());

    // Carried over: same account URL, and the certificate renews with it.
    let regr: serde_json::Value = serde_json::from_str(&pem(&acct.join("regr.json"))).unwrap();
    let adopted = e.run(&import_args);
    assert_eq!(adopted.code, 0, "{}", adopted.all());
    assert_contains(&adopted.stdout, "carried over: its RSA 2048-bit key");
    let (stored, _) = vault_read(&acct_path).unwrap();
    assert_eq!(stored["credentials"]["id"], regr["uri"]);
    // The recipe's DNSimple solver is not on this bed: solve with the test bed's hooks.
    e.run(&[
        "edit",
        &name,
        "--dns",
        "exec",
        "--auth-hook",
        &hook("challtestsrv-auth"),
        "--cleanup-hook",
        &hook("challtestsrv-cleanup"),
    ])
    .ok();
    let renewed = e.run(&["renew", "--force", &name]).ok();
    assert_contains(&renewed.stdout, "1 renewed");
    // Version 2 is the edit (settings only), 3 the renewal.
    let (doc, version) = vault_read(&e.cert_path(&name)).unwrap();
    assert_eq!(version, 3);
    verify_record(&doc, &[&name]);

    // init --account-key with certbot's RSA private_key.json after the carry-over: the CA no
    // longer knows that key; nothing is registered.
    let other = Env::new("imp-vl-old");
    let refused = other.init_with(&[
        "--account-key",
        acct.join("private_key.json").to_str().unwrap(),
    ]);
    assert_ne!(refused.code, 0, "{}", refused.all());
    assert_contains(&refused.stderr, "knows no account for this key");
    assert!(vault_read(&format!("{}/accounts/default", other.prefix)).is_none());
}

#[test]
fn layouts_add_consumer_fields_in_the_same_write() {
    let e = Env::ready("layout");
    let name = format!("k.{}.example.com", unique("ly"));
    e.issue(
        &name,
        &[&name],
        &["--layout", "kubernetes", "--layout", "combined"],
    )
    .ok();
    let check = |version: u64| {
        let (doc, v) = vault_read(&e.cert_path(&name)).unwrap();
        assert_eq!(v, version);
        assert_eq!(doc["tls.crt"], doc["fullchain"]);
        assert_eq!(doc["tls.key"], doc["privkey"]);
        assert_eq!(doc["ca.crt"], doc["chain"]);
        let combined = doc["combined"].as_str().unwrap();
        let key = doc["privkey"].as_str().unwrap();
        assert!(combined.starts_with(key.trim_end()), "key first");
        assert!(combined.ends_with(doc["fullchain"].as_str().unwrap()));
        doc["serial"].as_str().unwrap().to_string()
    };
    let first = check(1);
    let (spec, _) = vault_read(&format!("{}/specs/{name}", e.prefix)).unwrap();
    assert_eq!(
        spec["layouts"],
        serde_json::json!(["kubernetes", "combined"])
    );
    e.run(&["renew", "--force", &name]).ok();
    assert_ne!(
        check(2),
        first,
        "renew rewrote the layout fields with the new material"
    );
    // Default: certbot's fields only.
    let plain = format!("p.{}.example.com", unique("ly"));
    e.issue(&plain, &[&plain], &[]).ok();
    let (doc, _) = vault_read(&e.cert_path(&plain)).unwrap();
    assert!(
        doc.get("tls.crt").is_none() && doc.get("combined").is_none(),
        "fields: {:?}",
        doc.as_object().map(|o| o.keys().collect::<Vec<_>>())
    );
}

/// An acme.sh home folder in acme.sh 3.x's layout (checked against acme.sh's own output; no
/// package of acme.sh is available here, so the folder is laid out from a real issuance
/// through the BIND test bed): `ca/localhost/dir/{account.key,account.json,ca.conf}`,
/// `<domain>_ecc/{<domain>.conf,.cer,.key,ca.cer,fullchain.cer}` and `account.conf` with the
/// `dns_nsupdate` settings. The account is found again (same URL), `dns_nsupdate` becomes an
/// RFC 2136 solver with the key file's secret, the reload command the deploy hook; a DNS API
/// certvault has no provider for is marked as needing a solver, a broken folder is named, and
/// the good certificate renews.
#[test]
fn acme_sh_folder_imports_and_renews() {
    use base64::Engine;
    let tmp = tempdir("acme-sh");
    let id = unique("as");
    let good = format!("a.{id}.example.test");
    let other = format!("g.{id}.example.test");
    let broken = format!("b.{id}.example.test");
    // The real issuance the folder is laid out from: one account, three certificates.
    let src = Env::bind("acme-sh-src");
    src.init_bind().ok();
    src.add_bind_solver("bind");
    for name in [&good, &other, &broken] {
        src.run(&["issue", name, "-d", name, "--dns", "bind"]).ok();
    }
    let (acct, _) = vault_read(&format!("{}/accounts/default", src.prefix)).unwrap();
    let der = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(acct["credentials"]["key_pkcs8"].as_str().unwrap())
        .unwrap();
    let account_pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(&der)
    );
    let account_url = acct["credentials"]["id"].as_str().unwrap().to_string();
    let home = tmp.join("acme.sh");
    let ca = home.join("ca/localhost/dir");
    std::fs::create_dir_all(&ca).unwrap();
    std::fs::write(ca.join("account.key"), &account_pem).unwrap();
    std::fs::write(
        ca.join("account.json"),
        format!("{{\"status\":\"valid\",\"contact\":[\"mailto:ops@example.com\"],\"orders\":\"{account_url}/orders\"}}"),
    )
    .unwrap();
    std::fs::write(
        ca.join("ca.conf"),
        format!("CA_EMAIL='ops@example.com'\nACCOUNT_URL='{account_url}'\nCA_KEY_HASH='x'\n"),
    )
    .unwrap();
    let (bind_ip, bind_port) = bind_primary();
    let key_file = tmp.join("tsig.key");
    std::fs::write(
        &key_file,
        format!(
            "key \"{}\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{}\";\n}};\n",
            env("CERTVAULT_TEST_TSIG_NAME"),
            env("CERTVAULT_TEST_TSIG_SECRET")
        ),
    )
    .unwrap();
    std::fs::write(
        home.join("account.conf"),
        format!(
            "USER_PATH='/usr/bin'\nSAVED_NSUPDATE_SERVER='{bind_ip}'\nSAVED_NSUPDATE_SERVER_PORT='{bind_port}'\nSAVED_NSUPDATE_KEY='{}'\nSAVED_NSUPDATE_ZONE=''\n",
            key_file.display()
        ),
    )
    .unwrap();
    let deployed = tmp.join("deployed");
    let reload = format!("touch {}", deployed.display());
    let b64 = base64::engine::general_purpose::STANDARD.encode(&reload);
    for (name, webroot) in [
        (&good, "dns_nsupdate"),
        (&other, "dns_gandi_livedns"),
        (&broken, "dns_nsupdate"),
    ] {
        let (doc, _) = vault_read(&src.cert_path(name)).unwrap();
        let dir = home.join(format!("{name}_ecc"));
        std::fs::create_dir_all(&dir).unwrap();
        let field = |f: &str| doc[f].as_str().unwrap().to_string();
        std::fs::write(dir.join(format!("{name}.cer")), field("cert")).unwrap();
        std::fs::write(dir.join("ca.cer"), field("chain")).unwrap();
        std::fs::write(dir.join("fullchain.cer"), field("fullchain")).unwrap();
        let key = if name == &broken {
            // Another certificate's key: named, and the rest still imports.
            vault_read(&src.cert_path(&good)).unwrap().0["privkey"]
                .as_str()
                .unwrap()
                .to_string()
        } else {
            field("privkey")
        };
        std::fs::write(dir.join(format!("{name}.key")), key).unwrap();
        std::fs::write(
            dir.join(format!("{name}.conf")),
            format!(
                "Le_Domain='{name}'\nLe_Alt='no'\nLe_Webroot='{webroot}'\nLe_PreHook=''\nLe_PostHook=''\nLe_RenewHook=''\nLe_API='{}'\nLe_Keylength='ec-256'\nLe_ReloadCmd='__ACME_BASE64__START_{b64}__ACME_BASE64__END_'\n",
                env("CERTVAULT_TEST_DIRECTORY_BIND")
            ),
        )
        .unwrap();
    }

    let e = Env::bind("imp-acme-sh");
    let folder = home.to_str().unwrap();
    let secret = env("CERTVAULT_TEST_TSIG_SECRET");
    let dry = e.run(&["import", "acme-sh", folder, "--dry-run"]);
    assert!(!dry.all().contains(&secret), "secret in the dry run");
    assert_contains(&dry.stdout, "would store solver acme-sh-nsupdate");
    assert_contains(&dry.stdout, &format!("would look up account {account_url}"));
    assert!(
        vault_read(&e.cert_path(&good)).is_none(),
        "the dry run wrote"
    );

    let run = e.run(&["import", "acme-sh", folder]);
    assert!(!run.all().contains(&secret), "secret in the output");
    assert_eq!(run.code, 1, "{}", run.all());
    assert_contains(
        &run.stdout,
        "the private key does not match the certificate",
    );
    assert_contains(&run.stdout, "NEEDS A SOLVER");
    assert_contains(&run.stdout, "dns_gandi_livedns has no certvault provider");
    assert!(vault_read(&e.cert_path(&broken)).is_none());
    let (acct, _) = vault_read(&format!("{}/accounts/default", e.prefix)).unwrap();
    assert_eq!(acct["credentials"]["id"], account_url.as_str());
    let (solver, _) = vault_read(&format!("{}/dns/acme-sh-nsupdate", e.prefix)).unwrap();
    assert_eq!(solver["kind"], "rfc2136");
    assert_eq!(solver["tsig_secret"], secret.as_str());
    assert_eq!(solver["server"], env("CERTVAULT_TEST_BIND1").as_str());
    for name in [&good, &other] {
        let (doc, version) = vault_read(&e.cert_path(name)).unwrap();
        let (orig, _) = vault_read(&src.cert_path(name)).unwrap();
        assert_eq!(version, 1);
        assert_eq!(doc["serial"], orig["serial"]);
        assert_eq!(doc["privkey"], orig["privkey"]);
        verify_record_bind(&doc, &[name]);
    }
    let (spec, _) = vault_read(&format!("{}/specs/{good}", e.prefix)).unwrap();
    assert_eq!(spec["dns"]["default"], "acme-sh-nsupdate");
    assert_eq!(spec["deploy_hook"], reload.as_str());
    assert_eq!(spec["key_type"], "ecdsa-p256");
    let (status, _) = vault_read(&format!("{}/status/{other}", e.prefix)).unwrap();
    assert!(
        status["last_error"]
            .as_str()
            .unwrap()
            .contains("dns_gandi_livedns"),
        "{status}"
    );
    // Again: nothing new; then the good one renews through the imported solver.
    let again = e.run(&["import", "acme-sh", folder]);
    assert_contains(&again.stdout, "0 written");
    let renewed = e.run(&["renew", "--force", &good]).ok();
    assert_contains(&renewed.stdout, "1 renewed");
    let (doc, version) = vault_read(&e.cert_path(&good)).unwrap();
    assert_eq!(version, 2);
    verify_record_bind(&doc, &[&good]);
    assert!(
        deployed.exists(),
        "the reload command ran as the deploy hook"
    );
    // Not an acme.sh folder: named, with what was expected.
    let not = e.run(&["import", "acme-sh", tmp.to_str().unwrap()]);
    assert_eq!(not.code, 2, "{}", not.all());
    assert_contains(&not.stderr, "is it an acme.sh home folder");
}

/// `init --account-key` with certbot's RSA `private_key.json` (certbot registered the account):
/// the account's key is changed at the CA to a new P-256 key, the account URL is stored, and
/// certvault issues with it; a second run changes nothing.
#[test]
fn init_carries_an_rsa_account_key_over() {
    let tmp = tempdir("cb-init");
    run_certbot(
        || certbot_cmd(&tmp, "register", &env("CERTVAULT_TEST_DIRECTORY")),
        "certbot register",
    );
    let (host, id) = certbot_account_ids(&tmp).remove(0);
    let dir = tmp.join(format!("c/accounts/{host}/dir/{id}"));
    let regr: serde_json::Value = serde_json::from_str(&pem(&dir.join("regr.json"))).unwrap();
    let key = dir.join("private_key.json");
    let e = Env::new("cb-init");
    let run = e.init_with(&["--account-key", key.to_str().unwrap()]).ok();
    assert_contains(&run.stdout, "its RSA 2048-bit key was changed at the CA");
    let (acct, version) = vault_read(&format!("{}/accounts/default", e.prefix)).unwrap();
    assert_eq!(acct["credentials"]["id"], regr["uri"]);
    assert_eq!(version, 1);
    let name = format!("i.{}.example.com", unique("cbi"));
    e.issue(&name, &[&name], &[]).ok();
    let (doc, _) = vault_read(&e.cert_path(&name)).unwrap();
    assert_eq!(doc["ordered_by"], regr["uri"]);
    verify_record(&doc, &[&name]);
    // The CA no longer knows the RSA key: a second run says so and changes nothing.
    let again = e.init_with(&["--account-key", key.to_str().unwrap()]);
    assert_ne!(again.code, 0, "{}", again.all());
    assert_contains(&again.stderr, "knows no account for this key");
    assert_eq!(
        vault_read(&format!("{}/accounts/default", e.prefix))
            .unwrap()
            .1,
        1
    );
}
