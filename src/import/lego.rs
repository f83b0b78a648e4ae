//! A lego `--path` folder: `accounts/<host_port>/<email>/account.json` with its key in
//! `keys/<email>.key`, and `certificates/<domain>.{crt,key,json}` (`.crt` is the full chain).
//!
//! lego keeps its DNS provider, its options and the renewal days on its command line and in
//! environment variables, not in this folder: certificates are imported without a solver
//! (marked as needing one), and the directory URL comes from `--server` unless the account's
//! host is a well-known CA.

use std::path::Path;

use serde_json::Value;

use super::files::{self, Root};
use super::{AccountItem, CertItem, Plan};
use crate::model::{CertName, KeyType};

pub struct Options<'a> {
    /// The account name when the folder has one account (`--account`).
    pub account: &'a str,
    /// The ACME directory URL (`--server`), for CAs that are not well known.
    pub server: Option<&'a str>,
}

pub fn plan(dir: &Path, opts: &Options<'_>) -> Result<Plan, String> {
    let root = Root::open(dir)?;
    let mut plan = Plan::default();
    let certs_dir = root.join("certificates");
    if !certs_dir.is_dir() && !root.join("accounts").is_dir() {
        return Err(format!(
            "{} has neither accounts/ nor certificates/: is it a lego --path folder (like ./.lego)?",
            dir.display()
        ));
    }
    let mut found = Vec::new();
    for host in files::subdirs(&root, &root.join("accounts")) {
        for email in files::subdirs(&root, &host) {
            found.push((host.clone(), email));
        }
    }
    let one = found.len() == 1;
    let mut hosts: Vec<(String, String)> = Vec::new();
    for (host_dir, dir) in &found {
        let host = host_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .replace('_', ":");
        let email = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let mut name = if one {
            opts.account.to_string()
        } else {
            format!("lego-{}", super::clean_name(&email))
        };
        if plan.accounts.iter().any(|a| a.name == name) {
            name = format!(
                "lego-{}-{}",
                super::clean_name(&host),
                super::clean_name(&email)
            );
        }
        let json_file = dir.join("account.json");
        let account: Value = match root.read(&json_file).and_then(|t| {
            serde_json::from_str(&t).map_err(|e| {
                format!(
                    "broken account JSON (line {}, column {})",
                    e.line(),
                    e.column()
                )
            })
        }) {
            Ok(v) => v,
            Err(reason) => {
                plan.problem(json_file.display().to_string(), reason);
                continue;
            }
        };
        let key_file = dir.join("keys").join(format!("{email}.key"));
        let key = match root.account_key(&key_file) {
            Ok(k) => k,
            Err(reason) => {
                plan.problem(key_file.display().to_string(), reason);
                continue;
            }
        };
        let url = account["registration"]["uri"].as_str().map(str::to_string);
        // --server applies to the accounts of its host (a folder may hold several CAs).
        let directory = match opts
            .server
            .filter(|s| super::url_host(s) == Some(host.as_str()))
        {
            Some(s) => Some(s.to_string()),
            None => {
                super::known_directory(host.split(':').next().unwrap_or("")).map(str::to_string)
            }
        };
        let contact = account["email"]
            .as_str()
            .filter(|e| !e.is_empty())
            .map(|e| vec![e.to_string()])
            .unwrap_or_default();
        hosts.push((host.clone(), name.clone()));
        plan.accounts.push(AccountItem {
            name,
            directory,
            url,
            contact,
            key,
            from: dir.display().to_string(),
        });
    }
    let account_of = |stem: &str| -> String {
        // The certificate's `certUrl` host picks the account of the same CA.
        let meta = root
            .read(&certs_dir.join(format!("{stem}.json")))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok());
        let host = meta
            .as_ref()
            .and_then(|m| m["certUrl"].as_str())
            .and_then(super::url_host)
            .map(str::to_string);
        match (host, hosts.as_slice()) {
            (_, [(_, only)]) => only.clone(),
            (Some(h), all) => all
                .iter()
                .find(|(host, _)| *host == h)
                .map(|(_, n)| n.clone())
                .unwrap_or_else(|| opts.account.to_string()),
            _ => opts.account.to_string(),
        }
    };
    for crt in files::files_ending(&certs_dir, ".crt") {
        let Some(stem) = crt
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".crt"))
            .filter(|s| !s.ends_with(".issuer"))
            .map(str::to_string)
        else {
            continue;
        };
        let account = account_of(&stem);
        certificate(&root, &certs_dir, &stem, &account, &mut plan);
    }
    Ok(plan)
}

fn certificate(root: &Root, dir: &Path, stem: &str, account: &str, plan: &mut Plan) {
    let crt = dir.join(format!("{stem}.crt"));
    let shown = crt.display().to_string();
    // lego writes a wildcard's files as `_.example.com`.
    let name: CertName = match stem.parse() {
        Ok(n) => n,
        Err(e) => {
            return plan.problem(shown, format!("the file name cannot be a record name: {e}"))
        }
    };
    let fullchain = match root.read(&crt) {
        Ok(t) => t,
        Err(reason) => return plan.problem(shown, reason),
    };
    let key_file = dir.join(format!("{stem}.key"));
    let privkey = match root.read(&key_file) {
        Ok(t) => t,
        Err(reason) => return plan.problem(key_file.display().to_string(), reason),
    };
    let (issued, _) = match super::material(&fullchain, &privkey) {
        Ok(m) => m,
        Err(reason) => return plan.problem(shown, reason),
    };
    let first = stem.replacen("_.", "*.", 1);
    let (domains, key_type) = match super::names_and_key(&issued.cert, &first) {
        Ok(x) => x,
        Err(reason) => return plan.problem(shown, reason),
    };
    let spec = super::spec(
        domains,
        key_type.unwrap_or(KeyType::EcdsaP256),
        super::no_solver(),
        account,
    );
    plan.certs.push(CertItem {
        name,
        spec,
        issued,
        from: shown,
        needs_solver: Some(
            "lego keeps its DNS provider on its command line, not in its folder".into(),
        ),
        notes: Vec::new(),
    });
}
