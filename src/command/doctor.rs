//! `certvault doctor`: what is wrong before the CA says so. Vault and the token's role, the
//! CA's directory and the account, and per certificate: CAA (RFC 8659), the
//! `_acme-challenge` CNAME chain and zone, the authoritative servers, and a probe record
//! through the certificate's solver (as `dns test` does). Reads only; the probe record is
//! removed again.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::context::{Context, LoadedSolvers, Outcome};
use crate::dns::{self, Fqdn, Session};
use crate::model::{CertName, Spec};
use crate::policy::Work;
use crate::store::Key;
use crate::Error;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    /// Worth a look, not a failure (exit code 0).
    Warn,
    Fail,
}

/// One line of the report (`doctor --output json` prints `checks` of these).
#[derive(Debug, Serialize)]
pub struct Row {
    /// vault, token, ca, account, certificate, caa, cname, nameservers, solver.
    pub check: &'static str,
    /// What was checked: a URL, an account, a certificate or a DNS name.
    pub subject: String,
    pub status: Status,
    pub detail: String,
}

#[derive(Debug, Default)]
struct Report {
    rows: Vec<Row>,
}

impl Report {
    fn push(
        &mut self,
        check: &'static str,
        subject: impl Into<String>,
        status: Status,
        detail: impl Into<String>,
    ) {
        self.rows.push(Row {
            check,
            subject: subject.into(),
            status,
            detail: crate::text::one_line(&detail.into()).into_owned(),
        });
    }

    fn failed(&self) -> bool {
        self.rows.iter().any(|r| r.status == Status::Fail)
    }

    fn outcome(self, json: bool) -> Outcome {
        let failed = self.failed();
        let text = if json {
            #[derive(Serialize)]
            struct Doc<'a> {
                ok: bool,
                checks: &'a [Row],
            }
            serde_json::to_string_pretty(&Doc {
                ok: !failed,
                checks: &self.rows,
            })
            .unwrap_or_default()
                + "\n"
        } else {
            table(&self.rows)
        };
        Outcome {
            text,
            failed,
            ..Default::default()
        }
    }
}

fn table(rows: &[Row]) -> String {
    let status = |s: Status| match s {
        Status::Ok => "ok",
        Status::Warn => "WARN",
        Status::Fail => "FAIL",
    };
    let w1 = rows.iter().map(|r| r.check.len()).max().unwrap_or(0);
    let w2 = rows
        .iter()
        .map(|r| r.subject.chars().count())
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for r in rows {
        let _ = writeln!(
            text,
            "{:4}  {:w1$}  {:w2$}  {}",
            status(r.status),
            r.check,
            r.subject,
            r.detail
        );
    }
    let fails = rows.iter().filter(|r| r.status == Status::Fail).count();
    let warns = rows.iter().filter(|r| r.status == Status::Warn).count();
    let _ = match (fails, warns) {
        (0, 0) => writeln!(text, "all {} checks passed", rows.len()),
        (0, w) => writeln!(text, "no failures ({w} warnings)"),
        (f, w) => writeln!(text, "{f} failed, {w} warnings"),
    };
    text
}

/// The report when Vault cannot even be reached or logged in to.
pub(super) fn unreachable(vault: &str, e: &Error, json: bool) -> Outcome {
    let mut r = Report::default();
    r.push("vault", vault, Status::Fail, crate::text::chain(e));
    r.outcome(json)
}

/// What the CA's directory offers.
#[derive(Debug, Default)]
struct Directory {
    ari: bool,
    profiles: Vec<String>,
    caa_identities: Vec<String>,
}

async fn directory(http: &reqwest::Client, url: &str) -> Result<Directory, String> {
    let rsp = http
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| format!("cannot reach it ({})", crate::text::chain(&e.without_url())))?;
    let status = rsp.status();
    if !status.is_success() {
        return Err(format!("answered HTTP {status}"));
    }
    let doc: serde_json::Value = rsp
        .json()
        .await
        .map_err(|_| "did not answer an ACME directory (JSON)".to_string())?;
    if !doc["newOrder"].is_string() || !doc["newAccount"].is_string() {
        return Err("is not an ACME directory (no newOrder/newAccount)".into());
    }
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(Directory {
        ari: doc["renewalInfo"].is_string(),
        profiles: doc["meta"]["profiles"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default(),
        caa_identities: strings(&doc["meta"]["caaIdentities"]),
    })
}

/// What a CAA record set says about the CA (RFC 8659 §4).
#[derive(Debug, PartialEq, Eq)]
pub enum CaaVerdict {
    /// No relevant `issue`/`issuewild` property: any CA may issue.
    Open,
    Allowed(String),
    /// The CA may not issue: why.
    Forbidden(String),
    /// Only these issuers may, and the CA publishes no `caaIdentities` to compare with.
    Unknown(Vec<String>),
}

/// RFC 8659 §4.2/4.3: for a wildcard name `issuewild` takes precedence over `issue` when
/// present; an unknown property with the critical flag forbids issuance.
pub fn caa_verdict(
    set: &[hickory_net::proto::rr::rdata::CAA],
    wildcard: bool,
    identities: &[String],
) -> CaaVerdict {
    let known = [
        "issue",
        "issuewild",
        "iodef",
        "contactemail",
        "contactphone",
        "issuemail",
        "issuevmc",
    ];
    if let Some(c) = set
        .iter()
        .find(|c| c.issuer_critical && !known.iter().any(|k| c.tag.eq_ignore_ascii_case(k)))
    {
        return CaaVerdict::Forbidden(format!(
            "unknown critical property \"{}\" (RFC 8659 §4.5: no CA may issue)",
            c.tag
        ));
    }
    let of = |tag: &str| -> Vec<&hickory_net::proto::rr::rdata::CAA> {
        set.iter()
            .filter(|c| c.tag.eq_ignore_ascii_case(tag))
            .collect()
    };
    let relevant = match (wildcard, of("issuewild")) {
        (true, wild) if !wild.is_empty() => wild,
        _ => of("issue"),
    };
    if relevant.is_empty() {
        return CaaVerdict::Open;
    }
    let issuers: Vec<String> = relevant
        .iter()
        .filter_map(|c| c.value_as_issue().ok())
        .filter_map(|(name, _)| name)
        .map(|n| n.to_ascii().trim_end_matches('.').to_ascii_lowercase())
        .collect();
    if issuers.is_empty() {
        return CaaVerdict::Forbidden("issue \";\": no CA may issue".into());
    }
    let ids: Vec<String> = identities
        .iter()
        .map(|i| i.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    match issuers.iter().find(|i| ids.contains(i)) {
        Some(i) => CaaVerdict::Allowed(i.clone()),
        None if ids.is_empty() => CaaVerdict::Unknown(issuers),
        None => CaaVerdict::Forbidden(format!(
            "only {} may issue; this CA is {}",
            issuers.join(", "),
            ids.join(", ")
        )),
    }
}

/// Run every check. `names`: only these certificates (all when empty). `probe`: write a
/// probe record through each certificate's solver.
pub(super) async fn run(
    ctx: &Context,
    names: Vec<CertName>,
    probe: bool,
    json: bool,
) -> Result<Outcome, Error> {
    let mut r = Report::default();
    let kv = ctx.store.kv();
    r.push(
        "vault",
        ctx.settings.vault.addr.clone(),
        Status::Ok,
        format!(
            "reachable and logged in; KV v{} at {}/, prefix {}",
            match kv.version() {
                crate::vault::KvVersion::V1 => 1,
                crate::vault::KvVersion::V2 => 2,
            },
            kv.mount(),
            ctx.store.prefix()
        ),
    );
    let account = ctx.settings.account.as_str();
    token(ctx, account, &mut r).await;

    // The certificates, then the accounts they use.
    let all = match ctx.store.list_certs().await {
        Ok(all) => all,
        Err(e) => {
            r.push(
                "certificate",
                ctx.store.display(Key::Certs),
                Status::Fail,
                format!("cannot list: {}", crate::text::chain(&e)),
            );
            Vec::new()
        }
    };
    let chosen: Vec<CertName> = if names.is_empty() {
        all
    } else {
        for n in &names {
            if !all.contains(n) {
                r.push(
                    "certificate",
                    n.to_string(),
                    Status::Fail,
                    format!("no certificate at {}", ctx.store.display(Key::Cert(n))),
                );
            }
        }
        names.into_iter().filter(|n| all.contains(n)).collect()
    };
    let mut specs: Vec<(CertName, Spec)> = Vec::new();
    for (name, loaded) in ctx.store.load_entries(chosen).await {
        match loaded {
            Ok(Some(e)) => {
                let spec = e.spec.map(|s| s.data.spec).unwrap_or(e.cert.data.spec);
                specs.push((name, spec));
            }
            Ok(None) => {}
            Err(e) => r.push(
                "certificate",
                name.to_string(),
                Status::Fail,
                crate::text::chain(&e),
            ),
        }
    }
    let mut accounts: BTreeSet<String> = BTreeSet::from([account.to_string()]);
    for (_, s) in &specs {
        if !s.account.is_empty() {
            accounts.insert(s.account.clone());
        }
    }
    let http = ctx.http()?;
    let mut dirs: BTreeMap<String, Directory> = BTreeMap::new();
    for a in &accounts {
        if let Some(d) = check_account(ctx, &http, a, &mut r).await {
            dirs.insert(a.clone(), d);
        }
    }

    let solvers = ctx
        .load_solvers(specs.iter().flat_map(|(_, s)| s.dns.solver_names()))
        .await;
    for (name, spec) in &specs {
        let acct = if spec.account.is_empty() {
            account
        } else {
            spec.account.as_str()
        };
        let identities = dirs
            .get(acct)
            .map(|d| d.caa_identities.clone())
            .unwrap_or_default();
        certificate(ctx, &http, &solvers, name, spec, &identities, probe, &mut r).await;
    }
    if specs.is_empty() && r.rows.iter().all(|row| row.check != "certificate") {
        r.push(
            "certificate",
            ctx.store.display(Key::Certs),
            Status::Warn,
            "no certificates stored yet; issue one with `certvault issue`",
        );
    }
    Ok(r.outcome(json))
}

/// The strongest role the token can act as, and what `renew` would miss.
async fn token(ctx: &Context, account: &str, r: &mut Report) {
    let probe = |work| async move { ctx.missing(work).await };
    let admin = probe(Work::Init { account }).await;
    let renew = probe(Work::Renew { account }).await;
    let monitor = probe(Work::List).await;
    let list = |m: &[crate::policy::Need]| {
        m.iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (admin, renew, monitor) {
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => r.push(
            "token",
            "capabilities",
            Status::Fail,
            format!(
                "cannot ask Vault for the token's capabilities: {}",
                crate::text::chain(&e)
            ),
        ),
        (Ok(a), Ok(n), Ok(m)) => {
            if a.is_empty() {
                r.push(
                    "token",
                    "capabilities",
                    Status::Ok,
                    "role admin: may init, issue, renew and list",
                );
            } else if n.is_empty() {
                r.push(
                    "token",
                    "capabilities",
                    Status::Ok,
                    "role renew: may renew and list (not init or issue)",
                );
            } else if m.is_empty() {
                r.push(
                    "token",
                    "capabilities",
                    Status::Warn,
                    format!(
                        "role monitor: may list, cannot renew (missing {})",
                        list(&n)
                    ),
                );
            } else {
                r.push(
                    "token",
                    "capabilities",
                    Status::Fail,
                    format!(
                        "cannot renew (missing {}); print a policy with `certvault policy renew`",
                        list(&n)
                    ),
                );
            }
        }
    }
}

/// The account's CA directory and whether the CA knows the account's key.
async fn check_account(
    ctx: &Context,
    http: &reqwest::Client,
    account: &str,
    r: &mut Report,
) -> Option<Directory> {
    let subject = format!("account {account}");
    let record = match ctx.account_record(account).await {
        Ok(rec) => rec,
        Err(e) => {
            r.push("account", subject, Status::Fail, crate::text::chain(&e));
            return None;
        }
    };
    let dir = match directory(http, &record.directory).await {
        Ok(d) => {
            let profiles = if d.profiles.is_empty() {
                "no profiles".to_string()
            } else {
                format!("profiles {}", d.profiles.join(", "))
            };
            let caa = if d.caa_identities.is_empty() {
                "no caaIdentities".to_string()
            } else {
                format!("CAA identity {}", d.caa_identities.join(", "))
            };
            let ari = if d.ari {
                "ARI (renewalInfo)"
            } else {
                "no ARI (renewal times from the lifetime)"
            };
            r.push(
                "ca",
                record.directory.clone(),
                Status::Ok,
                format!("directory reachable; {ari}; {profiles}; {caa}"),
            );
            d
        }
        Err(e) => {
            r.push(
                "ca",
                record.directory.clone(),
                Status::Fail,
                format!("the ACME directory {e}; check the URL, the network and --acme-ca-cert"),
            );
            return None;
        }
    };
    if let Some(at) = record.deactivated_at {
        r.push(
            "account",
            subject,
            Status::Fail,
            format!(
                "deactivated at {}; run `certvault init --force` for a new account",
                crate::text::rfc3339(at)
            ),
        );
        return Some(dir);
    }
    let url = record.credentials["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let key = record.credentials["key_pkcs8"].as_str().and_then(|k| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(k)
            .ok()
    });
    let Some(key) = key else {
        r.push(
            "account",
            subject,
            Status::Fail,
            format!(
                "the stored credentials hold no readable key ({})",
                ctx.store.display(Key::Account(account))
            ),
        );
        return Some(dir);
    };
    match crate::acme::find_account(http, &record.directory, &key).await {
        Ok((_, found)) if found == url => r.push(
            "account",
            subject,
            Status::Ok,
            format!("known to the CA: {url}"),
        ),
        Ok((_, found)) => r.push(
            "account",
            subject,
            Status::Fail,
            format!("the CA knows this key as {found}, but Vault stores {url}"),
        ),
        Err(crate::acme::Error::AccountKeyUnknown { .. }) => r.push("account", subject, Status::Fail, format!("{url} is not known to the CA with the key stored in Vault (deactivated, the CA was reset, or the key was replaced); run `certvault init --force` to register a new account")),
        Err(e) => r.push("account", subject, Status::Fail, crate::text::chain(&e)),
    }
    Some(dir)
}

#[allow(clippy::too_many_arguments)]
async fn certificate(
    ctx: &Context,
    http: &reqwest::Client,
    loaded: &LoadedSolvers,
    name: &CertName,
    spec: &Spec,
    identities: &[String],
    probe: bool,
    r: &mut Report,
) {
    let solvers = loaded.for_orders(ctx, http, None);
    let timeout = ctx.settings.dns.lookup.timeout;
    // One probe per DNS-01 name: an apex and its wildcard share `_acme-challenge`.
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for domain in &spec.domains {
        let d = domain.as_str();
        let wildcard = d.starts_with("*.");
        let base = d.trim_start_matches("*.");
        let subject = format!("{name}: {d}");
        let Ok(fqdn) = Fqdn::parse("domain", base) else {
            r.push(
                "caa",
                subject,
                Status::Fail,
                format!("{base} is not a DNS name"),
            );
            continue;
        };
        // CAA through the resolvers the certificate's solver uses.
        let session = Session::new(&solvers, spec, 1);
        let lookup = solvers.lookup_for(session.solver_for(&fqdn).as_deref());
        match dns::zone::caa(&lookup, &fqdn).await {
            Ok(None) => r.push("caa", subject.clone(), Status::Ok, "no CAA records: any CA may issue"),
            Ok(Some((owner, set))) => match caa_verdict(&set, wildcard, identities) {
                CaaVerdict::Open => r.push("caa", subject.clone(), Status::Ok, format!("CAA at {owner} has no {} property: any CA may issue", if wildcard { "issue/issuewild" } else { "issue" })),
                CaaVerdict::Allowed(i) => r.push("caa", subject.clone(), Status::Ok, format!("CAA at {owner} allows {i}")),
                CaaVerdict::Forbidden(why) => r.push("caa", subject.clone(), Status::Fail, format!("CAA at {owner} forbids this CA: {why}; the CA will refuse the order")),
                CaaVerdict::Unknown(issuers) => r.push("caa", subject.clone(), Status::Warn, format!("CAA at {owner} allows only {}; the CA publishes no caaIdentities, so check that it is one of them", issuers.join(", "))),
            },
            Err(e) => r.push("caa", subject.clone(), Status::Warn, format!("cannot look up CAA ({}; resolvers {})", crate::text::chain(&e), lookup.describe())),
        }
        if !seen.insert(base.to_string()) {
            continue;
        }
        let start = format!("_acme-challenge.{base}");
        let Ok(start_name) = Fqdn::parse("name", &start) else {
            continue;
        };
        let placed = match session.place(&start_name).await {
            Ok(p) => p,
            Err(e) => {
                r.push(
                    "cname",
                    start.clone(),
                    Status::Fail,
                    format!(
                        "{}; fix the CNAME or the solver's --zone/--resolver",
                        crate::text::chain(&e)
                    ),
                );
                continue;
            }
        };
        let zone = placed.zone.as_ref().map(|z| z.to_string());
        let target = if placed.name.as_str() == start_name.as_str() {
            format!("no CNAME; TXT goes to {start}")
        } else {
            format!("CNAME to {}", placed.name)
        };
        r.push(
            "cname",
            start.clone(),
            Status::Ok,
            match &zone {
                Some(z) => format!("{target} in zone {z} (solver {})", placed.solver),
                None => format!(
                    "{target} (solver {}; its hooks decide the zone)",
                    placed.solver
                ),
            },
        );
        if let Some(z) = &placed.zone {
            let mut bad = Vec::new();
            let mut good = Vec::new();
            for ns in &placed.nameservers {
                for addr in &ns.addrs {
                    match dns::zone::answers_for(*addr, z, timeout).await {
                        Ok(()) => good.push(format!("{} ({addr})", ns.host)),
                        Err(e) => bad.push(format!("{} ({addr}): {e}", ns.host)),
                    }
                }
            }
            if !bad.is_empty() {
                r.push(
                    "nameservers",
                    z.to_string(),
                    Status::Fail,
                    format!("not answering as the zone's authority: {}", bad.join("; ")),
                );
            } else if !good.is_empty() {
                r.push(
                    "nameservers",
                    z.to_string(),
                    Status::Ok,
                    format!("authoritative: {}", good.join(", ")),
                );
            }
        }
        if probe {
            r.push_probe(&solvers, spec, base, &placed.solver).await;
        }
    }
}

impl Report {
    /// Present a probe value for `domain` through the certificate's solvers, wait until every
    /// authoritative server has it, and remove it.
    async fn push_probe(
        &mut self,
        solvers: &dns::Solvers<'_>,
        spec: &Spec,
        domain: &str,
        solver: &str,
    ) {
        let mut session = Session::new(solvers, spec, 1);
        let subject = format!("_acme-challenge.{domain}");
        let result = async {
            let placed = session.present(domain, crate::dns::probe_value()).await?;
            session.wait().await?;
            // Exec hooks without the propagation check: nothing was looked up or waited for.
            Ok::<bool, dns::Error>(!placed.nameservers.is_empty())
        }
        .await;
        let cleanup = session.cleanup().await;
        match (result, cleanup.first()) {
            (Ok(checked), None) => self.push(
                "solver",
                subject,
                Status::Ok,
                if checked {
                    format!("{solver}: probe record written, seen on every authoritative server, removed")
                } else {
                    format!("{solver}: probe record presented and removed by its hooks (no propagation check: not looked up in DNS)")
                },
            ),
            (Err(e), _) => self.push(
                "solver",
                subject,
                Status::Fail,
                format!("{solver}: {}", crate::text::chain(&e)),
            ),
            (Ok(_), Some(e)) => self.push(
                "solver",
                subject,
                Status::Fail,
                format!(
                    "{solver}: probe written but not removed: {}",
                    crate::text::chain(e)
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_net::proto::rr::rdata::CAA;
    use hickory_net::proto::rr::Name;

    fn issue(name: Option<&str>) -> CAA {
        CAA::new_issue(
            false,
            name.map(|n| Name::from_ascii(n).unwrap()),
            Vec::new(),
        )
    }

    #[test]
    fn caa_follows_rfc_8659() {
        let le = vec!["letsencrypt.org".to_string()];
        assert_eq!(caa_verdict(&[], false, &le), CaaVerdict::Open);
        assert_eq!(
            caa_verdict(&[issue(Some("letsencrypt.org"))], false, &le),
            CaaVerdict::Allowed("letsencrypt.org".into())
        );
        assert!(matches!(
            caa_verdict(&[issue(None)], false, &le),
            CaaVerdict::Forbidden(_)
        ));
        assert!(matches!(
            caa_verdict(&[issue(Some("pki.goog"))], false, &le),
            CaaVerdict::Forbidden(_)
        ));
        assert_eq!(
            caa_verdict(&[issue(Some("pki.goog"))], false, &[]),
            CaaVerdict::Unknown(vec!["pki.goog".into()])
        );
        // issuewild decides for wildcards when present, issue otherwise.
        let wild = CAA::new_issuewild(false, None, Vec::new());
        let set = [issue(Some("letsencrypt.org")), wild];
        assert!(matches!(
            caa_verdict(&set, true, &le),
            CaaVerdict::Forbidden(_)
        ));
        assert_eq!(
            caa_verdict(&set, false, &le),
            CaaVerdict::Allowed("letsencrypt.org".into())
        );
        // An unknown critical property forbids every CA.
        let mut odd = issue(Some("letsencrypt.org"));
        odd.tag = "tbs".into();
        odd.issuer_critical = true;
        assert!(matches!(
            caa_verdict(&[odd], false, &le),
            CaaVerdict::Forbidden(_)
        ));
    }
}
