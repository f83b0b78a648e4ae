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
}
