//! What a certificate should be (the spec), how its record is laid out for consumers, and the issued material.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::*;

fn is_true(b: &bool) -> bool {
    *b
}

fn yes() -> bool {
    true
}

/// What a certificate should be: everything `renew` needs to reproduce it.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// The first name is the subject CN.
    pub domains: Vec<DomainName>,
    #[serde(default)]
    pub key_type: KeyType,
    pub dns: SolverSpec,
    /// Renew this long before expiry; if absent, when 1/3 of the lifetime is left.
    #[serde(default)]
    pub renew_before: Option<HumanDuration>,
    /// Which ACME account (`<prefix>/accounts/<account>`) issues it.
    pub account: String,
    /// Follow a CNAME at `_acme-challenge.<name>` and write the record at its target.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub follow_cname: bool,
    /// Wait until every authoritative nameserver serves the record before validation.
    /// Default: on for stored solvers, off for `--dns exec` hooks (as certbot).
    #[serde(default)]
    pub propagation_check: Option<bool>,
    /// Run after every new certificate is stored (certbot's `--deploy-hook`), with `sh -c`.
    #[serde(default)]
    pub deploy_hook: Option<String>,
    /// Consumer fields written with the material (`issue --layout`); empty: certbot's only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layouts: Vec<RecordLayout>,
    /// The CA profile orders ask for (`issue --profile`, checked against the directory's
    /// `meta.profiles`).
    #[serde(default)]
    pub profile: Option<String>,
    /// Keep the private key across renewals (`issue --reuse-key`); default: a new key each time.
    #[serde(default, skip_serializing_if = "is_false")]
    pub reuse_key: bool,
    /// Variables passed to this certificate's hooks although they look like credentials
    /// (`issue --hook-env NAME`); every other credential is removed from a hook's environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hook_env: Vec<EnvName>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Which fields a certificate document carries besides certbot's (`issue --layout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordLayout {
    /// `cert`, `chain`, `fullchain`, `privkey` (always written).
    Certbot,
    /// Also `tls.crt` (fullchain), `tls.key` and `ca.crt` (the chain), as a Kubernetes TLS
    /// Secret names them.
    Kubernetes,
    /// Also `combined`: the private key and the full chain in one PEM (HAProxy).
    Combined,
}

impl FromStr for RecordLayout {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "certbot" => Ok(Self::Certbot),
            "kubernetes" => Ok(Self::Kubernetes),
            "combined" => Ok(Self::Combined),
            _ => Err(invalid("layout", s, "use certbot, kubernetes or combined")),
        }
    }
}

/// The consumer fields of [`RecordLayout`]s, derived from the material at every write.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LayoutFields {
    #[serde(rename = "tls.crt", default, skip_serializing_if = "Option::is_none")]
    pub tls_crt: Option<String>,
    #[serde(rename = "tls.key", default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<Secret>,
    #[serde(rename = "ca.crt", default, skip_serializing_if = "Option::is_none")]
    pub ca_crt: Option<String>,
    #[serde(default)]
    pub combined: Option<Secret>,
}

impl LayoutFields {
    /// The fields `layouts` ask for, from `issued`.
    pub fn new(layouts: &[RecordLayout], issued: &Issued) -> Self {
        let mut out = Self::default();
        for layout in layouts {
            match layout {
                RecordLayout::Certbot => {}
                RecordLayout::Kubernetes => {
                    out.tls_crt = Some(issued.fullchain.clone());
                    out.tls_key = Some(issued.privkey.clone());
                    out.ca_crt = Some(issued.chain.clone());
                }
                RecordLayout::Combined => {
                    let mut pem = issued.privkey.expose().to_string();
                    if !pem.ends_with('\n') {
                        pem.push('\n');
                    }
                    pem.push_str(&issued.fullchain);
                    out.combined = Some(Secret::new(pem));
                }
            }
        }
        out
    }
}

/// The issued material, with certbot's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issued {
    pub cert: String,
    pub chain: String,
    pub fullchain: String,
    pub privkey: Secret,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Hex, upper case, no separators.
    pub serial: String,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
}
