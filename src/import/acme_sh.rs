//! An acme.sh home folder (`~/.acme.sh`, or its `--config-home`), as acme.sh 3.x writes it:
//! - `ca/<host>/<path>/account.key` (PEM), `account.json` and `ca.conf` (`ACCOUNT_URL`,
//!   `CA_EMAIL`), one folder per ACME directory (`<host>` without its port);
//! - `<domain>/` or `<domain>_ecc/` per certificate: `<domain>.conf` (`Le_Domain`, `Le_Alt`,
//!   `Le_Webroot`, `Le_API`, `Le_Keylength`, `Le_ReloadCmd`, ...), `<domain>.cer` (the leaf),
//!   `<domain>.key`, `ca.cer` and `fullchain.cer`;
//! - `account.conf`: the DNS API credentials acme.sh saved (`SAVED_CF_Token=…`).
//!
//! Conf files are shell assignments (`KEY='value'`); acme.sh keeps some values base64 between
//! `__ACME_BASE64__START_` and `__ACME_BASE64__END_`. They are parsed here, never executed.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;

use super::files::{self, Root};
use super::{AccountItem, CertItem, Plan};
use crate::dns::{self, cloudflare, dnsimple, powerdns, rfc2136, ProviderConfig};
use crate::model::{CertName, KeyType, Secret, SolverSpec};

pub struct Options<'a> {
    /// The account name when the folder has one account (`--account`).
    pub account: &'a str,
    /// The ACME directory URL, for accounts whose CA the folder's certificates do not name.
    pub server: Option<&'a str>,
}

/// `KEY='value'` lines of an acme.sh conf file (later lines win, as when sourced).
pub fn parse_conf(text: &str) -> BTreeMap<String, String> {
    const START: &str = "__ACME_BASE64__START_";
    const END: &str = "__ACME_BASE64__END_";
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim().trim_start_matches("export ").trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
            .unwrap_or(v);
        let v = match v.strip_prefix(START).and_then(|v| v.strip_suffix(END)) {
            Some(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default(),
            None => v.to_string(),
        };
        out.insert(k.to_string(), v);
    }
    out
}

/// acme.sh's folder below `ca/` for a directory URL: the host without its port, then the path.
pub fn ca_dir_of(directory: &str) -> Option<String> {
    let rest = directory.split_once("://")?.1;
    let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = hostport.split(':').next()?;
    Some(format!("{host}/{}", path.trim_matches('/')))
}

pub fn plan(dir: &Path, opts: &Options<'_>) -> Result<Plan, String> {
    let root = Root::open(dir)?;
    let mut plan = Plan::default();
    if !root.join("ca").is_dir() && !root.join("account.conf").is_file() {
        return Err(format!(
            "{} has neither ca/ nor account.conf: is it an acme.sh home folder (like ~/.acme.sh)?",
            dir.display()
        ));
    }
    let saved = match root.read(&root.join("account.conf")) {
        Ok(t) => parse_conf(&t),
        Err(_) => BTreeMap::new(),
    };
    // The certificates first: their Le_API names the directory of each ca/ folder.
    let mut certs = Vec::new();
    for d in files::subdirs(&root, &root.shown) {
        let Some(folder) = d.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            continue;
        };
        if folder == "ca" || folder == "deploy" || folder == "dnsapi" || folder == "notify" {
            continue;
        }
        let domain = folder.strip_suffix("_ecc").unwrap_or(&folder).to_string();
        let conf_file = d.join(format!("{domain}.conf"));
        if !conf_file.is_file() {
            continue;
        }
        match root.read(&conf_file) {
            Ok(t) => certs.push((d, folder, domain, parse_conf(&t))),
            Err(reason) => plan.problem(conf_file.display().to_string(), reason),
        }
    }
    let mut accounts: Vec<(String, String)> = Vec::new(); // (ca dir, account name)
    let ca_dirs = account_dirs(&root);
    let one = ca_dirs.len() == 1;
    for ca in &ca_dirs {
        let rel = ca
            .strip_prefix(root.join("ca"))
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let name = if one {
            opts.account.to_string()
        } else {
            format!("acme-sh-{}", super::clean_name(&rel.replace('/', "-")))
        };
        let key_file = ca.join("account.key");
        let key = match root.account_key(&key_file) {
            Ok(k) => k,
            Err(reason) => {
                plan.problem(key_file.display().to_string(), reason);
                continue;
            }
        };
        let ca_conf = root
            .read(&ca.join("ca.conf"))
            .map(|t| parse_conf(&t))
            .unwrap_or_default();
        let directory = certs
            .iter()
            .filter_map(|(_, _, _, c)| c.get("Le_API"))
            .find(|api| ca_dir_of(api).as_deref() == Some(rel.as_str()))
            .cloned()
            .or_else(|| {
                opts.server
                    .filter(|s| ca_dir_of(s).as_deref() == Some(rel.as_str()))
                    .map(str::to_string)
            })
            .or_else(|| {
                super::known_directory(rel.split('/').next().unwrap_or("")).map(str::to_string)
            });
        let contact = ca_conf
            .get("CA_EMAIL")
            .filter(|e| !e.is_empty())
            .map(|e| vec![e.clone()])
            .unwrap_or_default();
        accounts.push((rel, name.clone()));
        plan.accounts.push(AccountItem {
            name,
            directory,
            url: ca_conf
                .get("ACCOUNT_URL")
                .filter(|u| !u.is_empty())
                .cloned(),
            contact,
            key,
            from: ca.display().to_string(),
        });
    }
    // A domain issued both as RSA and ECDSA: the ECDSA one is `<domain>_ecc`.
    let both: Vec<String> = certs
        .iter()
        .filter(|(_, f, d, _)| f != d && certs.iter().any(|(_, f2, _, _)| f2 == d))
        .map(|(_, f, _, _)| f.clone())
        .collect();
    for (dir, folder, domain, conf) in &certs {
        let stem = if both.contains(folder) {
            folder.clone()
        } else {
            domain.clone()
        };
        let account = conf
            .get("Le_API")
            .and_then(|api| ca_dir_of(api))
            .and_then(|ca| accounts.iter().find(|(d, _)| *d == ca))
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| opts.account.to_string());
        certificate(&root, dir, domain, &stem, conf, &saved, &account, &mut plan);
    }
    Ok(plan)
}

/// The folders below `ca/` that hold an `account.key` (`ca/<host>/<path…>/`).
fn account_dirs(root: &Root) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![(root.join("ca"), 0)];
    while let Some((d, depth)) = stack.pop() {
        if d.join("account.key").is_file() {
            out.push(d.clone());
        }
        if depth < 6 {
            stack.extend(files::subdirs(root, &d).into_iter().map(|s| (s, depth + 1)));
        }
    }
    out.sort();
    out
}

#[allow(clippy::too_many_arguments)]
fn certificate(
    root: &Root,
    dir: &Path,
    domain: &str,
    stem: &str,
    conf: &BTreeMap<String, String>,
    saved: &BTreeMap<String, String>,
    account: &str,
    plan: &mut Plan,
) {
    let conf_file = dir.join(format!("{domain}.conf")).display().to_string();
    // acme.sh names a wildcard's folder `*.example.com`.
    let name: CertName = match stem.replacen("*.", "_.", 1).parse() {
        Ok(n) => n,
        Err(e) => {
            return plan.problem(
                conf_file,
                format!("the folder name cannot be a record name: {e}"),
            )
        }
    };
    let read = |file: &str| {
        let path = dir.join(file);
        root.read(&path)
            .map_err(|reason| (path.display().to_string(), reason))
    };
    let fullchain = match read("fullchain.cer").or_else(|_| {
        let leaf = read(&format!("{domain}.cer"))?;
        let chain = read("ca.cer")?;
        Ok::<_, (String, String)>(format!("{}\n{}", leaf.trim_end(), chain))
    }) {
        Ok(t) => t,
        Err((file, reason)) => return plan.problem(file, reason),
    };
    let privkey = match read(&format!("{domain}.key")) {
        Ok(t) => t,
        Err((file, reason)) => return plan.problem(file, reason),
    };
    let (issued, _) = match super::material(&fullchain, &privkey) {
        Ok(m) => m,
        Err(reason) => {
            return plan.problem(dir.join("fullchain.cer").display().to_string(), reason)
        }
    };
    let first = conf.get("Le_Domain").map(String::as_str).unwrap_or(domain);
    let (domains, key_type) = match super::names_and_key(&issued.cert, first) {
        Ok(x) => x,
        Err(reason) => return plan.problem(conf_file, reason),
    };
    let key_type = key_type
        .or_else(|| key_length(conf.get("Le_Keylength").map(String::as_str).unwrap_or("")))
        .unwrap_or(KeyType::EcdsaP256);
    let webroot = conf.get("Le_Webroot").map(String::as_str).unwrap_or("");
    let (dns_spec, needs_solver) = solver(webroot, saved, plan, &conf_file);
    let mut spec = super::spec(domains, key_type, dns_spec, account);
    spec.deploy_hook = conf.get("Le_ReloadCmd").filter(|c| !c.is_empty()).cloned();
    let mut notes = Vec::new();
    for (field, what) in [
        ("Le_PreHook", "pre-hook"),
        ("Le_PostHook", "post-hook"),
        ("Le_RenewHook", "renew-hook"),
    ] {
        if conf.get(field).is_some_and(|v| !v.is_empty()) {
            notes.push(format!(
                "its acme.sh {what} ({field}) is not carried over: certvault runs only the deploy hook (Le_ReloadCmd)"
            ));
        }
    }
    if conf.get("Le_RenewalDays").is_some_and(|v| !v.is_empty()) {
        notes.push("its acme.sh --days (Le_RenewalDays) is not carried over: certvault renews when 1/3 of the lifetime is left (or the CA's ARI window); set another point with `certvault edit NAME --renew-before …`".into());
    }
    plan.certs.push(CertItem {
        name,
        spec,
        issued,
        from: dir.display().to_string(),
        needs_solver,
        notes,
    });
}

/// `Le_Keylength`: `ec-256`, `ec-384`, `2048`, `3072`, `4096` (empty: acme.sh's old 2048).
fn key_length(v: &str) -> Option<KeyType> {
    Some(match v {
        "ec-256" => KeyType::EcdsaP256,
        "ec-384" => KeyType::EcdsaP384,
        "" | "2048" => KeyType::Rsa2048,
        "3072" => KeyType::Rsa3072,
        "4096" => KeyType::Rsa4096,
        _ => return None,
    })
}

/// The solver of `Le_Webroot` (`dns_cf`, `dns_pdns`, ... with credentials from account.conf,
/// saved by acme.sh as `SAVED_<NAME>` or, by older versions, `<NAME>`).
fn solver(
    webroot: &str,
    saved: &BTreeMap<String, String>,
    plan: &mut Plan,
    conf_file: &str,
) -> (SolverSpec, Option<String>) {
    let needs = |why: String| (super::no_solver(), Some(why));
    let get = |k: &str| {
        saved
            .get(&format!("SAVED_{k}"))
            .or_else(|| saved.get(k))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let api = webroot.split(',').next().unwrap_or("").trim();
    if !api.starts_with("dns_") {
        let shown = if api.is_empty() { "(none)" } else { api };
        return needs(format!(
            "acme.sh validated it with {shown}, which is not DNS-01: set a solver with `certvault edit NAME --dns …`"
        ));
    }
    let config = match api {
        "dns_cf" => match get("CF_Token") {
            Some(token) => Ok(dns::Config::from(ProviderConfig::Cloudflare(
                cloudflare::Config {
                    api_token: Secret::new(token),
                    base_url: cloudflare::DEFAULT_BASE_URL.into(),
                    zone_id: get("CF_Zone_ID"),
                    ttl: crate::defaults::CLOUDFLARE_RECORD_TTL,
                },
            ))),
            None => Err("only Cloudflare API tokens (CF_Token) are supported, not the global API key (CF_Key)".to_string()),
        },
        "dns_dnsimple" => match get("DNSimple_OAUTH_TOKEN") {
            Some(token) => Ok(dns::Config::from(ProviderConfig::Dnsimple(
                dnsimple::Config {
                    token: Secret::new(token),
                    account_id: None,
                    sandbox: false,
                    base_url: None,
                    ttl: crate::defaults::RECORD_TTL,
                },
            ))),
            None => Err("account.conf has no DNSimple_OAUTH_TOKEN".to_string()),
        },
        "dns_pdns" => match (get("PDNS_Url"), get("PDNS_Token")) {
            (Some(url), Some(token)) => Ok(dns::Config::from(ProviderConfig::Powerdns(
                powerdns::Config {
                    api_url: url,
                    api_key: Secret::new(token),
                    server_id: get("PDNS_ServerId").unwrap_or_else(|| "localhost".into()),
                    ttl: get("PDNS_Ttl")
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(crate::defaults::RECORD_TTL),
                },
            ))),
            _ => Err("account.conf needs PDNS_Url and PDNS_Token".to_string()),
        },
        "dns_nsupdate" => nsupdate(&get),
        other => {
            return needs(format!(
                "acme.sh's DNS API {other} has no certvault provider (cloudflare, dnsimple, powerdns and rfc2136 are carried over): set a solver with `certvault dns add …` and `certvault edit NAME --dns …`"
            ))
        }
    };
    match config {
        Ok(config) => {
            let base = api.trim_start_matches("dns_");
            let name = plan.add_solver(
                &format!("acme-sh-{base}"),
                config,
                "account.conf".to_string(),
            );
            (
                SolverSpec::Solvers {
                    default: name.parse().ok(),
                    zones: BTreeMap::new(),
                },
                None,
            )
        }
        Err(reason) => {
            plan.problem(conf_file, format!("{api}: {reason}"));
            needs(format!("its {api} credentials could not be carried over"))
        }
    }
}

/// `dns_nsupdate`: NSUPDATE_SERVER (and _PORT), and NSUPDATE_KEY, a BIND key file
/// (`key "name" { algorithm hmac-sha256; secret "…"; };`).
fn nsupdate(get: &dyn Fn(&str) -> Option<String>) -> Result<dns::Config, String> {
    let server = get("NSUPDATE_SERVER").ok_or("account.conf has no NSUPDATE_SERVER")?;
    let port = get("NSUPDATE_SERVER_PORT").unwrap_or_else(|| "53".into());
    let key_file = get("NSUPDATE_KEY").ok_or("account.conf has no NSUPDATE_KEY")?;
    let text = files::read_limited(Path::new(&key_file))
        .map_err(|r| format!("the key file NSUPDATE_KEY={key_file}: {r}"))?;
    let (name, algorithm, secret) = bind_key(&text).ok_or_else(|| {
        format!("the key file NSUPDATE_KEY={key_file} is not a BIND key statement")
    })?;
    if rfc2136::algorithm(&algorithm).is_none() {
        return Err(format!(
            "TSIG algorithm {algorithm} is not supported (hmac-sha256, hmac-sha384, hmac-sha512 are)"
        ));
    }
    let server = if server.contains(':') {
        format!("[{server}]:{port}")
    } else {
        format!("{server}:{port}")
    };
    Ok(dns::Config::from(ProviderConfig::Rfc2136(
        rfc2136::Config {
            server,
            tsig_key: name,
            tsig_algorithm: algorithm,
            tsig_secret: Secret::new(secret),
            ttl: crate::defaults::RECORD_TTL,
        },
    )))
}

/// (name, algorithm, secret) of a BIND `key "name" { algorithm …; secret "…"; };` statement.
fn bind_key(text: &str) -> Option<(String, String, String)> {
    let after = text.split_once("key")?.1;
    let name = after.split('"').nth(1)?.to_string();
    let field = |k: &str| {
        let rest = after.split_once(k)?.1;
        let value = rest.split(';').next()?.trim().trim_matches('"').trim();
        (!value.is_empty()).then(|| value.to_string())
    };
    Some((
        name,
        field("algorithm")?.to_ascii_lowercase(),
        field("secret")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confs_are_read_not_run() {
        let c = parse_conf(
            "Le_Domain='a.example.com'\nLe_Alt='no'\n# x='y'\nLe_ReloadCmd='__ACME_BASE64__START_ZWNobyByZWxvYWRlZA==__ACME_BASE64__END_'\nSAVED_CF_Token=\"tok\"\nbad line\n$(rm -rf /)=x\nexport X=1\n",
        );
        assert_eq!(c["Le_Domain"], "a.example.com");
        assert_eq!(c["Le_ReloadCmd"], "echo reloaded");
        assert_eq!(c["SAVED_CF_Token"], "tok");
        assert_eq!(c["X"], "1");
        assert!(!c.contains_key("x"));
        assert_eq!(c.len(), 5);
    }

    #[test]
    fn ca_folders_drop_the_port() {
        assert_eq!(
            ca_dir_of("https://localhost:14000/dir").as_deref(),
            Some("localhost/dir")
        );
        assert_eq!(
            ca_dir_of("https://acme-v02.api.letsencrypt.org/directory").as_deref(),
            Some("acme-v02.api.letsencrypt.org/directory")
        );
    }

    #[test]
    fn bind_keys() {
        let k =
            bind_key("key \"tsig-key.\" {\n  algorithm hmac-sha256;\n  secret \"c2VjcmV0\";\n};\n");
        assert_eq!(
            k,
            Some(("tsig-key.".into(), "hmac-sha256".into(), "c2VjcmV0".into()))
        );
        assert_eq!(bind_key("nothing"), None);
    }
}
