//! Least privilege: the Vault policies certvault prints (`certvault policy <role>`) and the
//! capabilities each command checks for at start (`sys/capabilities-self`).
//!
//! Both come from the same rules, so a token with the printed policy passes the check.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::str::FromStr;

use crate::model::CertName;
use crate::store::{api_path, Api, Key};
use crate::vault::KvVersion;

/// The roles `certvault policy` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Runs `init` and `issue`: writes the account, solver configs and certificate records.
    Admin,
    /// Runs `renew` (and `list`) unattended: reads the account, solver configs and specs,
    /// reads and updates certificate records, writes status documents, takes locks. It
    /// cannot change what renew orders or runs (specs and solvers are admin-only).
    Renew,
    /// Watches: `list` from specs and status documents; no private key, no writes.
    Monitor,
    /// An application reading one certificate record.
    Reader,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Admin => "admin",
            Role::Renew => "renew",
            Role::Reader => "reader",
            Role::Monitor => "monitor",
        })
    }
}

impl FromStr for Role {
    type Err = crate::model::InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "renew" => Ok(Role::Renew),
            "reader" => Ok(Role::Reader),
            "monitor" => Ok(Role::Monitor),
            _ => Err(crate::model::InvalidInput {
                what: "policy role",
                value: s.into(),
                reason: "use admin, renew, monitor or reader",
            }),
        }
    }
}

/// Where certvault's documents are: the same settings every command uses.
#[derive(Debug, Clone, Copy)]
pub struct Layout<'a> {
    pub version: KvVersion,
    pub mount: &'a str,
    pub prefix: &'a str,
}

impl Layout<'_> {
    fn path(&self, key: Key<'_>, api: Api) -> String {
        api_path(self.version, self.mount, self.prefix, key, api)
    }
}

/// One `path` stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub path: String,
    pub capabilities: Vec<&'static str>,
    pub why: String,
}

/// The rules of `role`. `cert` names the certificate of a `reader`.
pub fn rules(role: Role, layout: &Layout<'_>, cert: Option<&CertName>) -> Vec<Rule> {
    let rule = |key: Key<'_>, api: Api, caps: &[&'static str], why: &str| Rule {
        path: layout.path(key, api),
        capabilities: caps.to_vec(),
        why: why.to_string(),
    };
    let mut out = match role {
        Role::Admin => vec![
            rule(Key::AnyAccount, Api::Data, &["create", "read", "update"],
                "register ACME accounts and replace them (`certvault init`); `issue` reads them"),
            rule(Key::AnySolver, Api::Data, &["create", "read", "update", "delete"],
                "store DNS solver configurations (with their API credentials) for `renew` to use (`certvault dns add`), try them (`dns test`) and remove unused ones (`dns remove`)"),
            rule(Key::Solvers, Api::Metadata, &["list"],
                "list the stored DNS solvers (`certvault dns list`)"),
            rule(Key::AnySpec, Api::Data, &["create", "read", "update", "delete"],
                "define certificates (`certvault issue`, `certvault migrate`) and retire them (`certvault delete`): names, DNS solver, hooks and deploy hook; `renew` orders and runs only what these say"),
            rule(Key::AnyCert, Api::Data, &["create", "read", "update", "delete"],
                "store issued certificates and their keys (`certvault issue`); `certvault delete` deletes the latest version (KV history stays: no destroy)"),
            rule(Key::AnyStatus, Api::Data, &["create", "read", "update", "delete"],
                "record each certificate's last attempt and failures (no key material)"),
            rule(Key::Certs, Api::Metadata, &["list"],
                "list certificate records (`certvault list`, `certvault renew`)"),
            rule(Key::AnyLock, Api::Data, &["create", "read", "update", "delete"],
                "take and release the per-certificate lock while issuing; break a dead run's lock (`certvault unlock`)"),
            rule(Key::AnyIndex, Api::Data, &["create", "read", "update", "delete"],
                "keep the renewal index current when issuing, editing or retiring; `certvault index rebuild` rewrites it and deletes documents left empty; `list --verify` compares it with the records"),
            rule(Key::AnyPause, Api::Data, &["create", "read", "update", "delete"],
                "record and clear a CA's pause after it rate-limited new orders (no key material)"),
        ],
        Role::Renew => vec![
            rule(Key::AnyAccount, Api::Data, &["read"],
                "use the ACME account (its key signs the orders); never change it"),
            rule(Key::AnySolver, Api::Data, &["read"],
                "use the stored DNS solver configurations; never change them"),
            rule(Key::AnySpec, Api::Data, &["read"],
                "read what each certificate is (names, solver, hooks); never change it, so this token cannot choose what renew orders or runs"),
            rule(Key::AnyCert, Api::Data, &["read", "update"],
                "read certificate records and write renewed ones back (check-and-set on KV v2); no new records. What this role can still do: write certificate material (a certificate and key of its choosing) into existing records, which is what renewing means; consumers trust these records, so guard this token like the keys it writes"),
            rule(Key::AnyStatus, Api::Data, &["create", "read", "update"],
                "record each certificate's last attempt and failures (no key material)"),
            rule(Key::Certs, Api::Metadata, &["list"],
                "find the certificate records to renew"),
            rule(Key::AnyLock, Api::Data, &["create", "read", "update", "delete"],
                "take and release the per-certificate lock while renewing"),
            rule(Key::AnyIndex, Api::Data, &["create", "read", "update"],
                "read the renewal index to load only what is due, and update the entries of the records this run read or wrote (check-and-set); no delete, so no rebuild"),
            rule(Key::AnyPause, Api::Data, &["create", "read", "update"],
                "remember that a CA rate-limited new orders, so the next run waits too (key-free: the account document and its key stay read-only)"),
        ],
        Role::Monitor => vec![
            rule(Key::Certs, Api::Metadata, &["list"],
                "find the certificates (`certvault list`)"),
            rule(Key::AnySpec, Api::Data, &["read"],
                "read what each certificate is (names, renewal settings)"),
            rule(Key::AnyStatus, Api::Data, &["read"],
                "read each certificate's expiry, last attempt and failures; no private key is in these documents"),
            rule(Key::AnyIndex, Api::Data, &["read"],
                "read the renewal index (expiry, renewal point, last attempt; no key material), so `list` needs no read per certificate"),
        ],
        Role::Reader => match cert {
            Some(name) => vec![rule(Key::Cert(name), Api::Data, &["read"],
                "read this one certificate and its key (Vault Agent template, External Secrets); nothing else")],
            None => Vec::new(),
        },
    };
    // KV v2 metadata (versions and times, no document data): how a run finds index entries
    // made from an older record or spec. On KV v1 the same path would be the documents.
    if layout.version == KvVersion::V2 && matches!(role, Role::Admin | Role::Renew | Role::Monitor)
    {
        for key in [Key::AnyCert, Key::AnySpec] {
            out.push(rule(key, Api::Metadata, &["read"],
                "check the renewal index against the current versions of records and specs (KV metadata: versions and times, no document data)"));
        }
    }
    if matches!(role, Role::Admin | Role::Renew | Role::Monitor) {
        out.push(Rule {
            path: "sys/capabilities-self".into(),
            capabilities: vec!["update"],
            why: "certvault checks its own capabilities at start (also granted by Vault's `default` policy)".into(),
        });
    }
    // KV v1 has one path for documents and listing: merge stanzas for the same path.
    let mut merged: Vec<Rule> = Vec::new();
    for r in out {
        match merged.iter_mut().find(|m| m.path == r.path) {
            Some(m) => {
                for c in r.capabilities {
                    if !m.capabilities.contains(&c) {
                        m.capabilities.push(c);
                    }
                }
                m.why = format!("{}; {}", m.why, r.why);
            }
            None => merged.push(r),
        }
    }
    merged
}

/// The HCL text of `role`, ready for `vault policy write NAME -`.
pub fn hcl(role: Role, layout: &Layout<'_>, cert: Option<&CertName>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# certvault policy `{role}` for mount {:?} (KV v{}), prefix {:?}",
        layout.mount,
        match layout.version {
            KvVersion::V1 => 1,
            KvVersion::V2 => 2,
        },
        layout.prefix
    );
    let policy_name = match cert {
        Some(c) => format!("certvault-{role}-{c}"),
        None => format!("certvault-{role}"),
    };
    let _ = writeln!(out, "# Generated by `certvault policy {role}{}`; apply with `vault policy write {policy_name} <file>`.",
        cert.map(|c| format!(" {c}")).unwrap_or_default());
    if role != Role::Reader {
        let _ = writeln!(out, "# Renewing and revoking its own login token (auth/token/renew-self, revoke-self) is granted by Vault's `default` policy: keep it attached.");
    }
    for r in rules(role, layout, cert) {
        let caps = r
            .capabilities
            .iter()
            .map(|c| format!("{c:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(out, "\n# {}", r.why);
        let _ = writeln!(out, "path {:?} {{\n  capabilities = [{caps}]\n}}", r.path);
    }
    out
}

/// A capability a command needs on a path, and the role that grants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub capability: &'static str,
    pub path: String,
    pub role: Role,
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on {} (granted by `certvault policy {}`)",
            self.capability, self.path, self.role
        )
    }
}

/// What a command does in Vault, for the capability check.
#[derive(Debug, Clone, Copy)]
pub enum Work<'a> {
    Init {
        account: &'a str,
    },
    Issue {
        account: &'a str,
        cert: &'a CertName,
    },
    List,
    /// `list --verify`: every record against the index.
    Verify,
    /// `index rebuild`.
    Rebuild,
    Renew {
        account: &'a str,
    },
    DnsAdd {
        solver: &'a str,
    },
    DnsList,
    DnsTest {
        solver: &'a str,
    },
    DnsRemove {
        solver: &'a str,
    },
    Migrate,
    /// `certvault import`: accounts, solvers and certificates whose names come from the source.
    Import,
    Show {
        cert: &'a CertName,
    },
    Unlock {
        cert: &'a CertName,
    },
    Delete {
        cert: &'a CertName,
    },
    Revoke {
        account: &'a str,
        cert: &'a CertName,
    },
    /// `account rollover` / `account deactivate`.
    Account {
        account: &'a str,
    },
}

/// The capabilities `work` needs. Record names not known in advance are checked as the
/// glob (`certs/*`), which is how the policies grant them.
pub fn needs(work: Work<'_>, layout: &Layout<'_>) -> Vec<Need> {
    let need = |cap: &'static str, key: Key<'_>, api: Api, role: Role| Need {
        capability: cap,
        path: layout.path(key, api),
        role,
    };
    let mut out = match_needs(work, layout, &need);
    if layout.version == KvVersion::V2 && matches!(work, Work::Renew { .. } | Work::List) {
        let role = if matches!(work, Work::List) {
            Role::Monitor
        } else {
            Role::Renew
        };
        for key in [Key::AnyCert, Key::AnySpec] {
            out.push(need("read", key, Api::Metadata, role));
        }
    }
    out
}

fn match_needs(
    work: Work<'_>,
    layout: &Layout<'_>,
    need: &dyn Fn(&'static str, Key<'_>, Api, Role) -> Need,
) -> Vec<Need> {
    let _ = layout;
    match work {
        Work::Init { account } => ["read", "create", "update"]
            .map(|c| need(c, Key::Account(account), Api::Data, Role::Admin))
            .to_vec(),
        Work::Issue { account, cert } => {
            let mut v = vec![
                need("read", Key::Account(account), Api::Data, Role::Admin),
                need("read", Key::AnySolver, Api::Data, Role::Admin),
            ];
            v.extend(
                ["read", "create", "update", "delete"]
                    .map(|c| need(c, Key::AnyLock, Api::Data, Role::Admin)),
            );
            for key in [
                Key::Cert(cert),
                Key::Spec(cert),
                Key::Status(cert),
                Key::AnyIndex,
            ] {
                v.extend(
                    ["read", "create", "update"].map(|c| need(c, key, Api::Data, Role::Admin)),
                );
            }
            v
        }
        Work::List => vec![
            need("list", Key::Certs, Api::Metadata, Role::Monitor),
            need("read", Key::AnySpec, Api::Data, Role::Monitor),
            need("read", Key::AnyStatus, Api::Data, Role::Monitor),
            need("read", Key::AnyIndex, Api::Data, Role::Monitor),
        ],
        Work::Verify => vec![
            need("list", Key::Certs, Api::Metadata, Role::Admin),
            need("read", Key::AnyCert, Api::Data, Role::Admin),
            need("read", Key::AnySpec, Api::Data, Role::Admin),
            need("read", Key::AnyStatus, Api::Data, Role::Admin),
            need("read", Key::AnyIndex, Api::Data, Role::Admin),
        ],
        Work::Rebuild => {
            let mut v = vec![
                need("list", Key::Certs, Api::Metadata, Role::Admin),
                need("read", Key::AnyCert, Api::Data, Role::Admin),
                need("read", Key::AnySpec, Api::Data, Role::Admin),
                need("read", Key::AnyStatus, Api::Data, Role::Admin),
            ];
            v.extend(
                ["read", "create", "update", "delete"]
                    .map(|c| need(c, Key::AnyIndex, Api::Data, Role::Admin)),
            );
            v
        }
        Work::Show { cert } => [
            Key::Cert(cert),
            Key::Spec(cert),
            Key::Status(cert),
            Key::Lock(cert),
        ]
        .map(|k| need("read", k, Api::Data, Role::Renew))
        .to_vec(),
        Work::Unlock { cert } => ["read", "delete"]
            .map(|c| need(c, Key::Lock(cert), Api::Data, Role::Admin))
            .to_vec(),
        Work::Delete { cert } => [Key::Cert(cert), Key::Spec(cert), Key::Status(cert)]
            .into_iter()
            .flat_map(|k| ["read", "delete"].map(|c| need(c, k, Api::Data, Role::Admin)))
            .chain(["read", "update"].map(|c| need(c, Key::AnyIndex, Api::Data, Role::Admin)))
            .collect(),
        Work::Migrate => {
            let mut v = vec![
                need("list", Key::Certs, Api::Metadata, Role::Admin),
                need("read", Key::AnyCert, Api::Data, Role::Admin),
            ];
            for key in [Key::AnySpec, Key::AnyStatus, Key::AnyIndex] {
                v.extend(
                    ["read", "create", "update"].map(|c| need(c, key, Api::Data, Role::Admin)),
                );
            }
            v
        }
        Work::Import => {
            let mut v = Vec::new();
            for key in [
                Key::AnyAccount,
                Key::AnySolver,
                Key::AnyCert,
                Key::AnySpec,
                Key::AnyStatus,
                Key::AnyIndex,
            ] {
                v.extend(
                    ["read", "create", "update"].map(|c| need(c, key, Api::Data, Role::Admin)),
                );
            }
            v
        }
        Work::Renew { account } => vec![
            need("list", Key::Certs, Api::Metadata, Role::Renew),
            need("read", Key::AnyCert, Api::Data, Role::Renew),
            need("update", Key::AnyCert, Api::Data, Role::Renew),
            need("read", Key::AnySpec, Api::Data, Role::Renew),
            need("read", Key::AnyStatus, Api::Data, Role::Renew),
            need("create", Key::AnyStatus, Api::Data, Role::Renew),
            need("update", Key::AnyStatus, Api::Data, Role::Renew),
            need("read", Key::Account(account), Api::Data, Role::Renew),
            need("read", Key::AnySolver, Api::Data, Role::Renew),
            need("read", Key::AnyLock, Api::Data, Role::Renew),
            need("create", Key::AnyLock, Api::Data, Role::Renew),
            need("update", Key::AnyLock, Api::Data, Role::Renew),
            need("delete", Key::AnyLock, Api::Data, Role::Renew),
            need("read", Key::AnyIndex, Api::Data, Role::Renew),
            need("create", Key::AnyIndex, Api::Data, Role::Renew),
            need("update", Key::AnyIndex, Api::Data, Role::Renew),
            need("read", Key::AnyPause, Api::Data, Role::Renew),
            need("create", Key::AnyPause, Api::Data, Role::Renew),
            need("update", Key::AnyPause, Api::Data, Role::Renew),
        ],
        Work::Revoke { account, cert } => {
            let mut v = vec![
                need("read", Key::Account(account), Api::Data, Role::Admin),
                need("read", Key::Spec(cert), Api::Data, Role::Admin),
            ];
            for key in [Key::Cert(cert), Key::Status(cert)] {
                v.extend(["read", "update"].map(|c| need(c, key, Api::Data, Role::Admin)));
            }
            v.extend(
                ["read", "create", "update"]
                    .map(|c| need(c, Key::AnyIndex, Api::Data, Role::Admin)),
            );
            v
        }
        Work::Account { account } => ["read", "update"]
            .map(|c| need(c, Key::Account(account), Api::Data, Role::Admin))
            .to_vec(),
        Work::DnsAdd { solver } => ["read", "create", "update"]
            .map(|c| need(c, Key::Solver(solver), Api::Data, Role::Admin))
            .to_vec(),
        Work::DnsList => vec![
            need("list", Key::Solvers, Api::Metadata, Role::Admin),
            need("read", Key::AnySolver, Api::Data, Role::Admin),
        ],
        Work::DnsTest { solver } => vec![need("read", Key::Solver(solver), Api::Data, Role::Admin)],
        Work::DnsRemove { solver } => vec![
            need("read", Key::Solver(solver), Api::Data, Role::Admin),
            need("delete", Key::Solver(solver), Api::Data, Role::Admin),
            need("list", Key::Certs, Api::Metadata, Role::Admin),
            need("read", Key::AnyCert, Api::Data, Role::Admin),
            need("read", Key::AnySpec, Api::Data, Role::Admin),
        ],
    }
}

/// The needs that `have` (path → capabilities, from `sys/capabilities-self`) lacks.
/// `root` grants everything; `deny` nothing.
pub fn missing(needs: Vec<Need>, have: &BTreeMap<String, Vec<String>>) -> Vec<Need> {
    needs
        .into_iter()
        .filter(|n| {
            let caps = have.get(&n.path).map(Vec::as_slice).unwrap_or(&[]);
            let granted = caps.iter().any(|c| c == "root" || c == n.capability);
            !granted || caps.iter().any(|c| c == "deny")
        })
        .collect()
}

/// The distinct paths of `needs`, for one `sys/capabilities-self` call.
pub fn paths(needs: &[Need]) -> Vec<String> {
    let mut p: Vec<String> = needs.iter().map(|n| n.path.clone()).collect();
    p.sort();
    p.dedup();
    p
}

#[cfg(test)]
mod tests;
