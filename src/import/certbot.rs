//! A certbot config folder (`/etc/letsencrypt`): accounts from
//! `accounts/<server>/<path>/<id>/{private_key,regr}.json`, lineages from
//! `renewal/<NAME>.conf` (configobj: top-level keys, then `[renewalparams]`) with their
//! `live/` (symlinks into `archive/`) PEMs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::files::{self, Root};
use super::{AccountItem, CertItem, Plan};
use crate::dns::{self, cloudflare, dnsimple, rfc2136, ProviderConfig};
use crate::model::{CertName, HumanDuration, KeyType, SolverSpec};

/// What to read, and how to name what it finds.
pub struct Options<'a> {
    /// Only these lineages (empty: all).
    pub only: &'a [String],
    /// The account name when the folder has one account (`--account`).
    pub account: &'a str,
}

pub fn plan(dir: &Path, opts: &Options<'_>) -> Result<Plan, String> {
    let root = Root::open(dir)?;
    let mut plan = Plan::default();
    let ids = accounts(&root, opts.account, &mut plan);
    let renewal = root.join("renewal");
    if !renewal.is_dir() {
        return Err(format!(
            "{} has no renewal/ folder: is it a certbot config folder (like /etc/letsencrypt)?",
            dir.display()
        ));
    }
    let mut seen = Vec::new();
    for conf in files::files_ending(&renewal, ".conf") {
        let Some(name) = conf
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        if !opts.only.is_empty() && !opts.only.contains(&name) {
            continue;
        }
        seen.push(name.clone());
        lineage(&root, &conf, &name, &ids, opts, &mut plan);
    }
    for wanted in opts.only {
        if !seen.contains(wanted) {
            plan.problem(
                renewal.join(format!("{wanted}.conf")).display().to_string(),
                "--only names this lineage, but it has no renewal conf",
            );
        }
    }
    Ok(plan)
}

/// Read every account; returns certbot account id → stored account name.
fn accounts(root: &Root, single: &str, plan: &mut Plan) -> BTreeMap<String, String> {
    let base = root.join("accounts");
    let mut found: Vec<(PathBuf, String)> = Vec::new();
    // accounts/<host[:port]>/<path...>/<id>/private_key.json, a few levels deep.
    let mut todo = vec![(base.clone(), 0)];
    while let Some((dir, depth)) = todo.pop() {
        if dir.join("private_key.json").exists() || dir.join("regr.json").exists() {
            let server = dir
                .parent()
                .and_then(|p| p.strip_prefix(&base).ok())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            found.push((dir, server));
            continue;
        }
        if depth < 6 {
            todo.extend(
                files::subdirs(root, &dir)
                    .into_iter()
                    .map(|d| (d, depth + 1)),
            );
        }
    }
    found.sort();
    let mut ids = BTreeMap::new();
    let one = found.len() == 1;
    for (dir, server) in found {
        let id = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let name = if one {
            single.to_string()
        } else {
            format!(
                "certbot-{}",
                super::clean_name(&id.chars().take(8).collect::<String>())
            )
        };
        ids.insert(id, name.clone());
        let key_file = dir.join("private_key.json");
        let shown = key_file.display().to_string();
        let key = match root.account_key(&key_file) {
            Ok(k) => k,
            Err(reason) => {
                plan.problem(shown, reason);
                continue;
            }
        };
        let regr_file = dir.join("regr.json");
        let url = match root.read(&regr_file).and_then(|t| {
            serde_json::from_str::<Value>(&t).map_err(|e| {
                format!(
                    "broken account JSON (line {}, column {})",
                    e.line(),
                    e.column()
                )
            })
        }) {
            Ok(v) => v.get("uri").and_then(Value::as_str).map(str::to_string),
            Err(reason) => {
                plan.problem(regr_file.display().to_string(), reason);
                continue;
            }
        };
        let contact = Vec::new();
        plan.accounts.push(AccountItem {
            name,
            // certbot's folder is the directory URL without its scheme.
            directory: (!server.is_empty()).then(|| format!("https://{server}")),
            url,
            contact,
            key,
            from: dir.display().to_string(),
        });
    }
    ids
}

/// The conf's values: top-level and `[renewalparams]`.
struct Conf {
    top: BTreeMap<String, String>,
    params: BTreeMap<String, String>,
}

fn parse_conf(text: &str) -> Result<Conf, String> {
    let opt = ini::ParseOption {
        enabled_quote: true,
        enabled_escape: false,
        ..Default::default()
    };
    let parsed = ini::Ini::load_from_str_opt(text, opt).map_err(|e| {
        format!(
            "not a readable renewal conf (line {}, column {})",
            e.line, e.col
        )
    })?;
    let collect = |p: Option<&ini::Properties>| -> BTreeMap<String, String> {
        p.map(|p| {
            p.iter()
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect()
        })
        .unwrap_or_default()
    };
    Ok(Conf {
        top: collect(Some(parsed.general_section())),
        params: collect(parsed.section(Some("renewalparams"))),
    })
}

fn lineage(
    root: &Root,
    conf_file: &Path,
    name: &str,
    ids: &BTreeMap<String, String>,
    opts: &Options<'_>,
    plan: &mut Plan,
) {
    let shown = conf_file.display().to_string();
    let conf = match root.read(conf_file).and_then(|t| parse_conf(&t)) {
        Ok(c) => c,
        Err(reason) => return plan.problem(shown, reason),
    };
    let cert_name: CertName = match name.parse() {
        Ok(n) => n,
        Err(e) => {
            return plan.problem(
                shown,
                format!("the lineage name cannot be a record name: {e}"),
            )
        }
    };
    // The four PEMs, where the conf says (moved folders are followed into this one).
    let mut pems = BTreeMap::new();
    for field in ["cert", "chain", "fullchain", "privkey"] {
        let written = conf
            .top
            .get(field)
            .cloned()
            .unwrap_or_else(|| format!("live/{name}/{field}.pem"));
        let Some(path) = root.relocate(&written, "live") else {
            return plan.problem(
                shown,
                format!("{field} = {written} is outside this folder and not under a live/ folder"),
            );
        };
        match root.read(&path) {
            Ok(text) => {
                pems.insert(field, text);
            }
            Err(reason) => {
                return plan.problem(
                    path.display().to_string(),
                    format!("{field} of lineage {name} ({shown}): {reason}"),
                )
            }
        }
    }
    let (issued, _) = match super::material(&pems["fullchain"], &pems["privkey"]) {
        Ok(m) => m,
        Err(reason) => return plan.problem(shown, format!("lineage {name}: {reason}")),
    };
    if super::material(&pems["cert"], &pems["privkey"])
        .map(|(i, _)| i.serial != issued.serial)
        .unwrap_or(true)
    {
        return plan.problem(
            shown,
            format!("lineage {name}: cert.pem is not the first certificate of fullchain.pem, or does not match privkey.pem"),
        );
    }
    let (domains, cert_key) = match super::names_and_key(&issued.cert, name) {
        Ok(x) => x,
        Err(reason) => return plan.problem(shown, format!("lineage {name}: {reason}")),
    };
    let p = &conf.params;
    let mut notes = Vec::new();
    let key_type = conf_key_type(p).or(cert_key).unwrap_or_else(|| {
        notes.push("key type not supported here: renewals use ecdsa-p256".into());
        KeyType::EcdsaP256
    });
    let account = match p.get("account") {
        Some(id) => match ids.get(id) {
            Some(n) => n.clone(),
            None => {
                notes.push(format!("its account {id} is not in accounts/"));
                opts.account.to_string()
            }
        },
        None => opts.account.to_string(),
    };
    let (dns, needs_solver) = solver(p, plan, &shown);
    let mut spec = super::spec(domains, key_type, dns, &account);
    if let Some(before) = conf.top.get("renew_before_expiry") {
        let compact: String = before.split_whitespace().collect();
        match compact.parse::<HumanDuration>() {
            Ok(d) => spec.renew_before = Some(d),
            Err(_) => notes.push(format!(
                "renew_before_expiry {before:?} not understood: the default rule applies"
            )),
        }
    }
    spec.deploy_hook = p
        .get("renew_hook")
        .or_else(|| p.get("deploy_hook"))
        .filter(|h| !h.is_empty())
        .cloned();
    for hook in ["pre_hook", "post_hook"] {
        if p.get(hook).is_some_and(|h| !h.is_empty()) {
            notes.push(format!(
                "{hook} not carried over (certvault runs no pre/post hooks; use the deploy hook)"
            ));
        }
    }
    // Fill in the account's directory from the lineage's `server`.
    if let Some(server) = p.get("server") {
        if let Some(acc) = plan.accounts.iter_mut().find(|a| a.name == account) {
            acc.directory = Some(server.clone());
        }
    }
    plan.certs.push(CertItem {
        name: cert_name,
        spec,
        issued,
        from: shown,
        needs_solver,
        notes,
    });
}

fn conf_key_type(p: &BTreeMap<String, String>) -> Option<KeyType> {
    match p.get("key_type").map(String::as_str) {
        Some("ecdsa") => match p.get("elliptic_curve").map(String::as_str) {
            None | Some("secp256r1") => Some(KeyType::EcdsaP256),
            Some("secp384r1") => Some(KeyType::EcdsaP384),
            _ => None,
        },
        Some("rsa") => match p.get("rsa_key_size").map(String::as_str) {
            None | Some("2048") => Some(KeyType::Rsa2048),
            Some("3072") => Some(KeyType::Rsa3072),
            Some("4096") => Some(KeyType::Rsa4096),
            _ => None,
        },
        _ => None,
    }
}

/// The authenticator translated: (spec, why there is no solver).
fn solver(
    p: &BTreeMap<String, String>,
    plan: &mut Plan,
    conf: &str,
) -> (SolverSpec, Option<String>) {
    let authenticator = p.get("authenticator").map(String::as_str).unwrap_or("");
    let needs = |why: String| (super::no_solver(), Some(why));
    let by_solver = |name: String| {
        (
            SolverSpec::Solvers {
                // Stored names are clean (`clean_name`); one that is not leaves the
                // certificate without a solver, which renew reports.
                default: name.parse().ok(),
                zones: BTreeMap::new(),
            },
            None,
        )
    };
    match authenticator {
        "manual" => match p.get("manual_auth_hook").filter(|h| !h.is_empty()) {
            Some(auth) => (
                SolverSpec::Exec(dns::exec::Config {
                    auth_hook: auth.clone(),
                    cleanup_hook: p.get("manual_cleanup_hook").cloned().unwrap_or_default(),
                }),
                None,
            ),
            None => needs("authenticator manual without --manual-auth-hook (interactive) cannot run unattended".into()),
        },
        "dns-rfc2136" | "dns-cloudflare" | "dns-dnsimple" => {
            let plugin = authenticator.trim_start_matches("dns-");
            let field = format!("dns_{plugin}_credentials");
            let Some(file) = p.get(&field).filter(|f| !f.is_empty()) else {
                plan.problem(conf, format!("{authenticator} without {field}"));
                return needs(format!("{authenticator} has no credentials file"));
            };
            let path = PathBuf::from(file);
            let creds = match files::read_limited(&path).and_then(|t| credentials(&t)) {
                Ok(c) => c,
                Err(reason) => {
                    plan.problem(file.clone(), format!("credentials of {authenticator}: {reason}"));
                    return needs(format!("its {authenticator} credentials could not be read"));
                }
            };
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .map(super::clean_name)
                .unwrap_or_else(|| plugin.to_string());
            match config(plugin, &creds) {
                Ok(config) => by_solver(plan.add_solver(
                    &format!("{plugin}-{stem}"),
                    config,
                    file.clone(),
                )),
                Err(reason) => {
                    plan.problem(file.clone(), format!("credentials of {authenticator}: {reason}"));
                    needs(format!("its {authenticator} credentials could not be used"))
                }
            }
        }
        other => {
            let shown = if other.is_empty() { "(none)" } else { other };
            plan.problem(
                conf,
                format!("authenticator {shown} is not supported (manual with hooks, dns-rfc2136, dns-cloudflare and dns-dnsimple are); imported without a solver"),
            );
            needs(format!("certbot authenticator {shown} has no certvault equivalent"))
        }
    }
}

/// A certbot credentials ini (`key = value` lines, no sections). Values are secrets.
fn credentials(text: &str) -> Result<BTreeMap<String, String>, String> {
    let opt = ini::ParseOption {
        enabled_quote: true,
        enabled_escape: false,
        ..Default::default()
    };
    let parsed = ini::Ini::load_from_str_opt(text, opt)
        .map_err(|e| format!("not a readable credentials file (line {})", e.line))?;
    Ok(parsed
        .general_section()
        .iter()
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

fn config(plugin: &str, c: &BTreeMap<String, String>) -> Result<dns::Config, String> {
    let get = |k: &str| {
        c.get(&format!("dns_{plugin}_{k}"))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let need = |k: &str| get(k).ok_or_else(|| format!("dns_{plugin}_{k} is missing"));
    Ok(match plugin {
        "rfc2136" => {
            let server = need("server")?;
            let port = get("port").unwrap_or_else(|| "53".into());
            let server = if server.contains(':') {
                format!("[{server}]:{port}")
            } else {
                format!("{server}:{port}")
            };
            let algorithm = get("algorithm")
                .unwrap_or_else(|| "HMAC-MD5".into())
                .to_ascii_lowercase();
            if rfc2136::algorithm(&algorithm).is_none() {
                return Err(format!(
                    "TSIG algorithm {algorithm} is not supported (hmac-sha256, hmac-sha384, hmac-sha512 are)"
                ));
            }
            dns::Config::from(ProviderConfig::Rfc2136(rfc2136::Config {
                server,
                tsig_key: need("name")?,
                tsig_algorithm: algorithm,
                tsig_secret: crate::model::Secret::new(need("secret")?),
                ttl: crate::defaults::RECORD_TTL,
            }))
        }
        "cloudflare" => match get("api_token") {
            Some(token) => dns::Config::from(ProviderConfig::Cloudflare(cloudflare::Config {
                api_token: crate::model::Secret::new(token),
                base_url: cloudflare::DEFAULT_BASE_URL.into(),
                zone_id: None,
                ttl: crate::defaults::CLOUDFLARE_RECORD_TTL,
            })),
            None => return Err(
                "only API tokens (dns_cloudflare_api_token) are supported, not the global API key"
                    .into(),
            ),
        },
        "dnsimple" => dns::Config::from(ProviderConfig::Dnsimple(dnsimple::Config {
            token: crate::model::Secret::new(need("token")?),
            account_id: None,
            sandbox: false,
            base_url: None,
            ttl: crate::defaults::RECORD_TTL,
        })),
        other => return Err(format!("no solver for {other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_and_credentials() {
        let conf = parse_conf(
            "# renew_before_expiry = 30 days\nrenew_before_expiry = 20 days\ncert = /x/live/a/cert.pem\n\n[renewalparams]\nauthenticator = manual\nmanual_auth_hook = \"/h/auth --x, y\"\nrenew_hook = systemctl reload nginx; echo \\ok\n",
        )
        .unwrap();
        assert_eq!(conf.top["renew_before_expiry"], "20 days");
        assert_eq!(conf.params["manual_auth_hook"], "/h/auth --x, y");
        assert_eq!(
            conf.params["renew_hook"],
            "systemctl reload nginx; echo \\ok"
        );
        let creds = credentials("dns_rfc2136_server = 127.0.0.1\ndns_rfc2136_port = 5300\ndns_rfc2136_name = k.\ndns_rfc2136_secret = c2VjcmV0\ndns_rfc2136_algorithm = HMAC-SHA256\n").unwrap();
        let ProviderConfig::Rfc2136(c) = config("rfc2136", &creds).unwrap().provider else {
            panic!()
        };
        assert_eq!(c.server, "127.0.0.1:5300");
        assert_eq!(c.tsig_algorithm, "hmac-sha256");
        let md5 = credentials(
            "dns_rfc2136_server = a\ndns_rfc2136_name = k\ndns_rfc2136_secret = SEKRIT\n",
        )
        .unwrap();
        let err = config("rfc2136", &md5).unwrap_err();
        assert!(!err.contains("SEKRIT"), "{err}");
        assert!("20days".parse::<HumanDuration>().is_ok());
    }
}
