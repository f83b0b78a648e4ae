//! The command line.

use super::*;

#[test]
fn bao_variables_are_aliases_and_vault_ones_win() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| std::ffi::OsString::from(v))
        }
    };
    let got = bao_aliases(env(&[
        ("BAO_ADDR", "http://bao:8200"),
        ("BAO_TOKEN", "b-tok"),
        ("VAULT_TOKEN", "v-tok"),
        ("BAO_NAMESPACE", "ns"),
        ("VAULT_CACERT", ""),
        ("BAO_CACERT", "/ca.pem"),
    ]));
    let got: Vec<(&str, String)> = got
        .into_iter()
        .map(|(k, v)| (k, v.into_string().unwrap()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("VAULT_ADDR", "http://bao:8200".to_string()),
            ("VAULT_NAMESPACE", "ns".to_string()),
            ("VAULT_CACERT", "/ca.pem".to_string()),
        ]
    );
    assert!(bao_aliases(env(&[("BAO_TOKEN", "")])).is_empty());
}

#[test]
fn home_token_file_needs_a_home_and_a_file() {
    assert_eq!(home_token_file(None), None);
    assert_eq!(home_token_file(Some("".into())), None);
    assert_eq!(home_token_file(Some("/nonexistent-home".into())), None);
}

#[test]
fn parsed_secrets_do_not_show_in_debug() {
    let cli = Cli::try_parse_from([
        "certvault",
        "--vault-token",
        "tok-SECRET1",
        "--role-id",
        "rid-SECRET5",
        "--secret-id",
        "sid-SECRET2",
        "--jwt",
        "jwt-SECRET3",
        "init",
        "--directory",
        "https://ca.example/dir",
        "--eab-kid",
        "kid",
        "--eab-hmac-key",
        "hmac-SECRET4",
    ])
    .unwrap();
    let shown = format!("{cli:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
    let (_, settings, command) = cli.into_parts().unwrap();
    let shown = format!("{settings:?} {command:?}");
    assert!(!shown.contains("SECRET"), "{shown}");

    // URLs whose user info (or path) holds credentials: --pushgateway and --notify.
    let cli = Cli::try_parse_from([
        "certvault",
        "renew",
        "--pushgateway",
        "http://user:pw-SECRET6@gw.example:9091",
        "--notify",
        "https://user:pw-SECRET7@hooks.example/T0/SECRET8",
    ])
    .unwrap();
    let shown = format!("{cli:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
    let (_, settings, command) = cli.into_parts().unwrap();
    let shown = format!("{settings:?} {command:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(shown.contains("gw.example"), "{shown}");

    // A --pushgateway that is no URL is refused without echoing what precedes an `@`.
    let cli = Cli::try_parse_from(["certvault", "renew", "--pushgateway", "user:pw-SECRET9@gw"]);
    let Err(e) = cli.unwrap().into_parts() else {
        panic!("a --pushgateway that is no URL was accepted");
    };
    let e = e.to_string();
    assert!(e.contains("--pushgateway") && !e.contains("SECRET"), "{e}");
}

#[test]
fn the_eab_hmac_key_is_refused_as_a_flag_and_read_from_a_file() {
    let init = |extra: &[&str]| {
        let mut args = vec![
            "certvault",
            "init",
            "--directory",
            "https://ca.example/dir",
            "--eab-kid",
            "kid",
        ];
        args.extend_from_slice(extra);
        Cli::try_parse_args(args).unwrap().into_parts()
    };
    for flag in [
        &["--eab-hmac-key", "hmac-SECRET4"][..],
        &["--eab-hmac-key=hmac-SECRET4"][..],
    ] {
        let err = init(flag).err().expect("refused").to_string();
        assert!(err.contains("CERTVAULT_EAB_HMAC_KEY"), "{err}");
        assert!(err.contains("--eab-hmac-key-file"), "{err}");
        assert!(!err.contains("SECRET"), "{err}");
    }
    let dir = std::env::temp_dir().join(format!("certvault-eab-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hmac");
    std::fs::write(&file, "hmac-SECRET4\n").unwrap();
    let (_, _, command) = init(&["--eab-hmac-key-file", file.to_str().unwrap()]).unwrap();
    match command {
        certvault::Command::Init(a) => assert_eq!(a.eab_hmac.unwrap().expose(), "hmac-SECRET4"),
        other => panic!("{other:?}"),
    }
    std::fs::write(&file, "").unwrap();
    let err = init(&["--eab-hmac-key-file", file.to_str().unwrap()])
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("empty"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
    let err = init(&["--eab-hmac-key-file", "/nonexistent/hmac"])
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("/nonexistent/hmac") && err.contains("cannot read"),
        "{err}"
    );
}
