//! Reading existing certificates for `certvault import`: a certbot config folder, a lego
//! `--path` folder, or certbot's files kept in Vault (the "certbot in Vault" recipe).
//!
//! Each reader turns its source into a [`Plan`]: the accounts, solvers and certificates
//! to write, and the problems found (each naming its file and the reason). Nothing here
//! writes; `command::import` applies a plan with check-and-set.

pub mod acme_sh;
pub mod certbot;
pub mod files;
pub mod key;
pub mod lego;
pub mod vault_layout;

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::dns;
use crate::model::{CertName, DomainName, Issued, KeyType, Secret, SolverSpec, Spec};
use crate::x509;

/// An account found in the source.
#[derive(Debug)]
pub struct AccountItem {
    /// Where it goes: `accounts/<name>`.
    pub name: String,
    /// The ACME directory (`None`: the source does not say; `--server` is needed).
    pub directory: Option<String>,
    /// The account URL the source recorded (certbot's `regr.json` `uri`).
    pub url: Option<String>,
    pub contact: Vec<String>,
    pub key: key::AccountKey,
    /// The file or document it came from.
    pub from: String,
}

/// A DNS solver built from a credentials file.
#[derive(Debug)]
pub struct SolverItem {
    pub name: String,
    pub config: dns::Config,
    pub from: String,
}

/// A certificate to store as it is.
#[derive(Debug)]
pub struct CertItem {
    pub name: CertName,
    pub spec: Spec,
    pub issued: Issued,
    pub from: String,
    /// Set when no solver could be carried over: why, and what to do.
    pub needs_solver: Option<String>,
    /// What of the source's settings was not carried over.
    pub notes: Vec<String>,
}

/// Bad input: the file (or document) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub reason: String,
}

/// Everything an import would write, and what it could not read.
#[derive(Debug, Default)]
pub struct Plan {
    pub accounts: Vec<AccountItem>,
    pub solvers: Vec<SolverItem>,
    pub certs: Vec<CertItem>,
    pub problems: Vec<Problem>,
}

impl Plan {
    pub fn problem(&mut self, file: impl Into<String>, reason: impl Into<String>) {
        self.problems.push(Problem {
            file: file.into(),
            reason: reason.into(),
        });
    }

    /// Add a solver unless one with identical settings is already planned; the name the
    /// certificates should use. Names are made unique with `-2`, `-3`, ...
    pub fn add_solver(&mut self, base: &str, config: dns::Config, from: String) -> String {
        if let Some(same) = self.solvers.iter().find(|s| s.config == config) {
            return same.name.clone();
        }
        let mut name = base.to_string();
        let mut n = 1;
        while self.solvers.iter().any(|s| s.name == name) {
            n += 1;
            name = format!("{base}-{n}");
        }
        self.solvers.push(SolverItem {
            name: name.clone(),
            config,
            from,
        });
        name
    }
}

/// A solver spec with no solver: renew fails on it until an admin sets one.
pub fn no_solver() -> SolverSpec {
    SolverSpec::Solvers {
        default: None,
        zones: BTreeMap::new(),
    }
}

/// Make a valid stored name from a file stem or e-mail (`a-z0-9._-`).
pub fn clean_name(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let out = out.trim_start_matches(['.', '-']).to_string();
    if out.is_empty() {
        "imported".into()
    } else {
        out.chars().take(100).collect()
    }
}

/// The material of one certificate, checked: the full chain parses, the key parses and
/// matches the leaf. `issued_at` is the leaf's notBefore (when the CA issued it).
pub fn material(fullchain: &str, privkey: &str) -> Result<(Issued, x509::Chain), String> {
    let chain = x509::split_chain(fullchain).map_err(|e| e.to_string())?;
    let key = rcgen::KeyPair::from_pem(privkey)
        .map_err(|_| "the private key is not a readable PEM key".to_string())?;
    let spki = x509::public_key_der(&chain.cert).map_err(|e| e.to_string())?;
    if rcgen::PublicKeyData::subject_public_key_info(&key) != spki {
        return Err("the private key does not match the certificate".into());
    }
    let issued = Issued {
        cert: chain.cert.clone(),
        chain: chain.chain.clone(),
        fullchain: chain.fullchain.clone(),
        privkey: Secret::new(privkey.to_string()),
        not_before: chain.not_before,
        not_after: chain.not_after,
        serial: chain.serial.clone(),
        issued_at: chain.not_before,
    };
    Ok((issued, chain))
}

/// The names of a certificate (SAN DNS names), `first` first when it is one of them; and
/// the key type of its public key.
pub fn names_and_key(
    cert: &str,
    first: &str,
) -> Result<(Vec<DomainName>, Option<KeyType>), String> {
    let facts = x509::current(cert).map_err(|e| e.to_string())?;
    let mut names: Vec<DomainName> = facts.domains.into_iter().collect();
    if let Some(at) = names.iter().position(|d| d.as_str() == first) {
        let d = names.remove(at);
        names.insert(0, d);
    }
    if names.is_empty() {
        return Err("the certificate has no DNS names".into());
    }
    Ok((names, facts.key_type))
}

/// The ACME directory of well-known CAs, from a host name in an account URL or folder.
pub fn known_directory(host: &str) -> Option<&'static str> {
    Some(match host {
        "acme-v02.api.letsencrypt.org" => "https://acme-v02.api.letsencrypt.org/directory",
        "acme-staging-v02.api.letsencrypt.org" => {
            "https://acme-staging-v02.api.letsencrypt.org/directory"
        }
        "acme.zerossl.com" => "https://acme.zerossl.com/v2/DV90",
        "dv.acme-v02.api.pki.goog" => "https://dv.acme-v02.api.pki.goog/directory",
        "api.buypass.com" => "https://api.buypass.com/acme/directory",
        _ => return None,
    })
}

/// The host (and port) of a URL, for comparing account URLs with directories.
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    Some(rest.split('/').next().unwrap_or(rest))
}

/// The spec of an imported certificate; `layouts` stay certbot's.
pub fn spec(domains: Vec<DomainName>, key_type: KeyType, dns: SolverSpec, account: &str) -> Spec {
    Spec {
        profile: None,
        reuse_key: false,
        domains,
        key_type,
        dns,
        renew_before: None,
        account: account.to_string(),
        follow_cname: true,
        propagation_check: None,
        deploy_hook: None,
        layouts: Vec::new(),
        hook_env: Vec::new(),
    }
}

/// For messages: the time a certificate expires.
pub fn expiry(t: OffsetDateTime) -> String {
    crate::text::rfc3339(t)
}
