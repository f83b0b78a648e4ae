//! acme-dns (the joohoi/acme-dns HTTP API): `_acme-challenge.<domain>` is a CNAME to the
//! account's `fulldomain`, and `POST /update` (`X-Api-User`, `X-Api-Key`) sets its TXT value.
//!
//! Credentials are stored per domain. acme-dns keeps the two most recent values of a
//! subdomain (an apex and its wildcard) and has no delete: `cleanup` has nothing to do, and
//! older values rotate out with the next update.

use std::collections::BTreeMap;
use std::path::PathBuf;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::api::{Auth, Endpoint};
use super::registry::{Build, Kind, SecretSource};
use super::{Error, Fqdn, Provider, TxtRecord};
use crate::model::{InvalidInput, Secret};

/// Stored at `<prefix>/dns/<solver>` with `"kind": "acme-dns"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The acme-dns server, like `https://auth.example.org`.
    pub server_url: String,
    /// One account per domain (the name being validated, without `*.`).
    #[serde(default)]
    pub accounts: BTreeMap<Fqdn, Account>,
    /// Domains to register at `dns add` (not stored).
    #[serde(skip)]
    pub register: Vec<Fqdn>,
}

/// An acme-dns account, as `/register` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub username: String,
    pub password: Secret,
    pub subdomain: String,
    pub fulldomain: String,
}

/// `certvault dns add acme-dns NAME --server-url URL --register DOMAIN…` registers an
/// account per domain and prints the CNAME to create; `--accounts-file` imports the JSON
/// file that lego, certbot-dns-acmedns and acme-dns-client keep (domain → account).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The acme-dns server's URL.
    #[arg(long)]
    server_url: String,
    /// Register a new account for this domain (repeat for more).
    #[arg(long)]
    register: Vec<String>,
    /// Import accounts from a JSON file {"domain": {"username","password","subdomain","fulldomain"}}.
    #[arg(long)]
    accounts_file: Option<PathBuf>,
}

fn bad(what: &'static str, value: &str, reason: &'static str) -> InvalidInput {
    InvalidInput {
        what,
        value: value.to_string(),
        reason,
    }
}

impl Kind for Config {
    const ABOUT: &'static str = "acme-dns (joohoi/acme-dns): registers accounts, prints the CNAMEs to create";
    type Args = Args;
    type Client = Client;

    fn from_args(a: Args, _: &SecretSource<'_>) -> Result<Self, InvalidInput> {
        let mut accounts = BTreeMap::new();
        if let Some(path) = &a.accounts_file {
            let text = std::fs::read_to_string(path).map_err(|_| {
                bad("--accounts-file", &path.display().to_string(), "cannot be read")
            })?;
            let parsed: BTreeMap<String, Account> = serde_json::from_str(&text).map_err(|_| {
                bad(
                    "--accounts-file",
                    &path.display().to_string(),
                    "is not a JSON object of domain → {username, password, subdomain, fulldomain}",
                )
            })?;
            for (domain, account) in parsed {
                let d = Fqdn::parse("domain", &domain)
                    .map_err(|_| bad("--accounts-file domain", &domain, "is not a DNS name"))?;
                accounts.insert(d, account);
            }
        }
        let register = a
            .register
            .iter()
            .map(|d| {
                Fqdn::parse("domain", d.trim_start_matches("*."))
                    .map_err(|_| bad("--register", d, "is not a DNS name"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if register.is_empty() && accounts.is_empty() {
            return Err(bad(
                "--register",
                "",
                "acme-dns needs --register DOMAIN (or --accounts-file FILE)",
            ));
        }
        Ok(Config {
            server_url: a.server_url,
            accounts,
            register,
        })
    }

    fn validate(&self, solver: &str) -> Result<(), Error> {
        super::api::check_http_url(solver, "server_url", &self.server_url)
    }

    fn describe(&self) -> String {
        let domains: Vec<&str> = self.accounts.keys().map(|d| d.as_str()).collect();
        format!("acme-dns  {} domains {}", self.server_url, domains.join(","))
    }

    async fn prepare(&mut self, solver: &str, http: &reqwest::Client) -> Result<Vec<String>, Error> {
        self.validate(solver)?;
        let api = Endpoint::new(solver, &self.server_url, Auth::None, http.clone());
        let mut lines = Vec::new();
        for domain in std::mem::take(&mut self.register) {
            const OP: &str = "registering an acme-dns account";
            let rsp = api
                .call(domain.as_str(), OP, Method::POST, "/register", Some(&serde_json::json!({})))
                .await?;
            if !rsp.status.is_success() {
                let msg = rsp
                    .json::<ApiError>()
                    .map(|e| e.error)
                    .unwrap_or_else(|| "no error detail".into());
                return Err(api.refused(domain.as_str(), OP, rsp.status, msg));
            }
            let account: Account = rsp.json().ok_or_else(|| {
                api.refused(domain.as_str(), OP, rsp.status, "the answer is not an acme-dns account".into())
            })?;
            lines.push(format!(
                "create this CNAME: _acme-challenge.{domain}. CNAME {}.",
                account.fulldomain.trim_end_matches('.')
            ));
            self.accounts.insert(domain, account);
        }
        for (domain, account) in &self.accounts {
            if !lines.iter().any(|l| l.contains(&format!("_acme-challenge.{domain}."))) {
                lines.push(format!(
                    "CNAME needed: _acme-challenge.{domain}. CNAME {}.",
                    account.fulldomain.trim_end_matches('.')
                ));
            }
        }
        Ok(lines)
    }

    fn build(&self, b: &Build<'_>) -> Result<Client, Error> {
        self.validate(b.solver)?;
        Ok(Client {
            api: Endpoint::new(b.solver, &self.server_url, Auth::None, b.http.clone()),
            accounts: self.accounts.clone(),
        })
    }

    /// acme-dns keeps the two latest values and has no delete.
    const REMOVES_VALUES: bool = false;
}

pub struct Client {
    api: Endpoint,
    accounts: BTreeMap<Fqdn, Account>,
}

impl Provider for Client {
    /// Nothing to remove: acme-dns rotates values out.
    type Handle = ();

    async fn present(&self, record: &TxtRecord) -> Result<(), Error> {
        const OP: &str = "updating the TXT value";
        let zone = record.zone_text();
        let account = self.accounts.get(&record.domain).ok_or_else(|| Error::Provider {
            solver: self.api.solver.clone(),
            zone: zone.clone(),
            reason: format!(
                "no acme-dns account for {}: add one with `certvault dns add acme-dns {} --force --register {} …`",
                record.domain, self.api.solver, record.domain
            ),
        })?;
        if !record.name.as_str().eq_ignore_ascii_case(account.fulldomain.trim_end_matches('.')) {
            return Err(Error::Provider {
                solver: self.api.solver.clone(),
                zone,
                reason: format!(
                    "_acme-challenge.{} leads to {}, not to the account's {}: create the CNAME _acme-challenge.{}. CNAME {}.",
                    record.domain, record.name, account.fulldomain, record.domain, account.fulldomain.trim_end_matches('.')
                ),
            });
        }
        let body = Update {
            subdomain: &account.subdomain,
            txt: &record.value,
        };
        let rsp = self
            .api
            .send(
                &zone,
                OP,
                Method::POST,
                "/update",
                &[
                    ("X-Api-User", &account.username),
                    ("X-Api-Key", account.password.expose()),
                ],
                |req| req.json(&body),
            )
            .await?;
        if rsp.status.is_success() {
            Ok(())
        } else {
            let msg = rsp
                .json::<ApiError>()
                .map(|e| e.error)
                .unwrap_or_else(|| "no error detail".into());
            Err(self.api.refused(&zone, OP, rsp.status, msg))
        }
    }

    async fn cleanup(&self, _: &TxtRecord, _: &()) -> Result<(), Error> {
        Ok(())
    }
}

// ---- wire types (acme-dns API) ----

#[derive(Debug, Serialize)]
struct Update<'a> {
    subdomain: &'a str,
    txt: &'a str,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    error: String,
}
