//! certbot's files kept in Vault (the "certbot state in Vault" recipe), read only:
//! - `<path>/account/{private_key,regr,meta,extra_details}`: certbot's account JSON files,
//!   one document each (`private_key` is the JWK; `regr` has the account `uri`);
//! - `<path>/certificates/<first domain>`: `cert`, `chain`, `fullchain`, `privkey`;
//! - `<mount>/dnsimple`: `token` (the recipe's DNSimple credentials).
//!
//! The recipe keeps no renewal conf: names and key type come from each certificate, the
//! solver is the DNSimple token if there is one, the directory from `--server` or the
//! account URL's host.

use serde_json::Value;

use super::{key, AccountItem, CertItem, Plan};
use crate::dns::{self, dnsimple};
use crate::model::{CertName, KeyType, SolverSpec};
use crate::vault::Kv;

pub struct Options<'a> {
    pub account: &'a str,
    pub server: Option<&'a str>,
}

/// Read one document's data (`None`: absent).
async fn doc(kv: &Kv, path: &str) -> Result<Option<Value>, String> {
    kv.read(path)
        .await
        .map(|r| r.doc.map(|d| d.data))
        .map_err(|e| crate::text::chain(&e))
}

pub async fn plan(kv: &Kv, path: &str, opts: &Options<'_>) -> Result<Plan, String> {
    let path = path.trim_matches('/');
    let shown = |p: &str| kv.display_path(p);
    let mut plan = Plan::default();
    let account_dir = format!("{path}/account");
    let certs_dir = format!("{path}/certificates");
    let names = kv
        .list(&certs_dir)
        .await
        .map_err(|e| crate::text::chain(&e))?;
    let key_doc = doc(kv, &format!("{account_dir}/private_key")).await?;
    if names.is_empty() && key_doc.is_none() {
        return Err(format!(
            "nothing at {} or {}: is this the certbot-in-Vault layout?",
            shown(&account_dir),
            shown(&certs_dir)
        ));
    }
    // The account.
    if let Some(jwk) = key_doc {
        let from = shown(&format!("{account_dir}/private_key"));
        match key::from_jwk(&jwk) {
            Err(reason) => plan.problem(from, format!("broken account key: {reason}")),
            Ok(key) => {
                let url = doc(kv, &format!("{account_dir}/regr"))
                    .await?
                    .and_then(|r| r.get("uri").and_then(Value::as_str).map(str::to_string));
                let directory = opts.server.map(str::to_string).or_else(|| {
                    url.as_deref()
                        .and_then(super::url_host)
                        .and_then(super::known_directory)
                        .map(str::to_string)
                });
                plan.accounts.push(AccountItem {
                    name: opts.account.to_string(),
                    directory,
                    url,
                    contact: Vec::new(),
                    key,
                    from,
                });
            }
        }
    }
    // The recipe's DNSimple token, stored once as a solver.
    let dns_spec = match doc(kv, "dnsimple").await? {
        Some(d) => match d
            .get("token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            Some(token) => {
                let config = dns::Config::from(dns::ProviderConfig::Dnsimple(dnsimple::Config {
                    token: crate::model::Secret::new(token.to_string()),
                    account_id: None,
                    sandbox: false,
                    base_url: None,
                    ttl: crate::defaults::RECORD_TTL,
                }));
                let name = plan.add_solver("dnsimple", config, shown("dnsimple"));
                Some(SolverSpec::Solvers {
                    // Stored names are clean (`clean_name`); one that is not leaves the
                    // certificate without a solver, which renew reports.
                    default: name.parse().ok(),
                    zones: Default::default(),
                })
            }
            None => {
                plan.problem(shown("dnsimple"), "no token field");
                None
            }
        },
        None => None,
    };
    for name in names.iter().filter(|n| !n.ends_with('/')) {
        let at = format!("{certs_dir}/{name}");
        let from = shown(&at);
        let cert_name: CertName = match name.parse() {
            Ok(n) => n,
            Err(e) => {
                plan.problem(from, format!("cannot be a record name: {e}"));
                continue;
            }
        };
        let Some(data) = doc(kv, &at).await? else {
            continue;
        };
        let field = |f: &str| {
            data.get(f)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let (fullchain, privkey) = (field("fullchain"), field("privkey"));
        if fullchain.is_empty() || privkey.is_empty() {
            plan.problem(
                from,
                "needs the fields fullchain and privkey (as certbot's PEM files)",
            );
            continue;
        }
        let (issued, _) = match super::material(&fullchain, &privkey) {
            Ok(m) => m,
            Err(reason) => {
                plan.problem(from, reason);
                continue;
            }
        };
        let (domains, key_type) = match super::names_and_key(&issued.cert, name) {
            Ok(x) => x,
            Err(reason) => {
                plan.problem(from, reason);
                continue;
            }
        };
        let (dns, needs_solver) = match &dns_spec {
            Some(s) => (s.clone(), None),
            None => (
                super::no_solver(),
                Some(format!("no DNSimple token at {}", shown("dnsimple"))),
            ),
        };
        plan.certs.push(CertItem {
            name: cert_name,
            spec: super::spec(
                domains,
                key_type.unwrap_or(KeyType::EcdsaP256),
                dns,
                opts.account,
            ),
            issued,
            from,
            needs_solver,
            notes: Vec::new(),
        });
    }
    Ok(plan)
}
