//! The one table of what each role may do in Vault. Every row is one `path` stanza of a
//! printed policy; next to each capability stand the commands that check it at start.
//! `certvault policy <role>` prints the rows of a role, and a command's start-up check asks
//! for the capabilities its role's rows list it under: both read this table only.

use super::role::Role;
use crate::model::CertName;
use crate::store::{Api, Key};
use crate::vault::KvVersion;

/// The commands that check their capabilities at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cmd {
    Init,
    Issue,
    List,
    Verify,
    Rebuild,
    Renew,
    DnsAdd,
    DnsList,
    DnsTest,
    DnsRemove,
    Migrate,
    Import,
    Show,
    Unlock,
    Delete,
    Revoke,
    Account,
}

impl Cmd {
    /// The role whose policy the command is written for: its rows are the command's needs,
    /// and a missing capability names that role.
    pub(super) fn role(self) -> Role {
        match self {
            Cmd::Renew | Cmd::Show => Role::Renew,
            Cmd::List => Role::Monitor,
            _ => Role::Admin,
        }
    }
}

/// What a row's path is: a kind of document, or one fixed path.
#[derive(Debug, Clone, Copy)]
pub(super) enum Slot {
    Account,
    Solver,
    Solvers,
    Spec,
    Cert,
    Status,
    Certs,
    Lock,
    Locks,
    Index,
    Pause,
    CapabilitiesSelf,
}

/// The names a command works on, where it knows them in advance.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bind<'a> {
    pub account: Option<&'a str>,
    pub cert: Option<&'a CertName>,
    pub solver: Option<&'a str>,
}

impl<'a> Bind<'a> {
    pub const NONE: Bind<'static> = Bind {
        account: None,
        cert: None,
        solver: None,
    };

    pub fn cert(cert: &'a CertName) -> Self {
        Bind {
            cert: Some(cert),
            ..Bind::NONE
        }
    }
}

impl Slot {
    /// The document of `bind` where the command names one, else the glob of all of them.
    pub(super) fn key<'a>(self, bind: Bind<'a>) -> Key<'a> {
        match (self, bind.account, bind.cert, bind.solver) {
            (Slot::Account, Some(a), _, _) => Key::Account(a),
            (Slot::Account, None, _, _) => Key::AnyAccount,
            (Slot::Solver, _, _, Some(s)) => Key::Solver(s),
            (Slot::Solver, _, _, None) => Key::AnySolver,
            (Slot::Solvers, ..) => Key::Solvers,
            (Slot::Spec, _, Some(c), _) => Key::Spec(c),
            (Slot::Spec, _, None, _) => Key::AnySpec,
            (Slot::Cert, _, Some(c), _) => Key::Cert(c),
            (Slot::Cert, _, None, _) => Key::AnyCert,
            (Slot::Status, _, Some(c), _) => Key::Status(c),
            (Slot::Status, _, None, _) => Key::AnyStatus,
            (Slot::Certs, ..) => Key::Certs,
            (Slot::Lock, _, Some(c), _) => Key::Lock(c),
            (Slot::Lock, _, None, _) => Key::AnyLock,
            (Slot::Locks, ..) => Key::Locks,
            (Slot::Index, ..) => Key::AnyIndex,
            (Slot::Pause, ..) => Key::AnyPause,
            // Never a KV path: rules() prints it as it is and no command checks it.
            (Slot::CapabilitiesSelf, ..) => Key::Certs,
        }
    }
}

/// One `path` stanza: who gets it, where, which capabilities (each with the commands that
/// check it at start; an empty list is granted for work checked where it happens), and why.
pub(super) struct Row {
    pub roles: &'static [Role],
    pub slot: Slot,
    pub api: Api,
    /// Only on KV v2 (metadata is a path of its own there).
    pub v2_only: bool,
    pub grants: &'static [(&'static str, &'static [Cmd])],
    pub why: &'static str,
}

impl Row {
    pub(super) fn applies(&self, version: KvVersion) -> bool {
        !self.v2_only || version == KvVersion::V2
    }
}

const ADMIN: &[Role] = &[Role::Admin];
const RENEW: &[Role] = &[Role::Renew];
const MONITOR: &[Role] = &[Role::Monitor];
const RUNNERS: &[Role] = &[Role::Admin, Role::Renew, Role::Monitor];

const fn row(
    roles: &'static [Role],
    slot: Slot,
    api: Api,
    grants: &'static [(&'static str, &'static [Cmd])],
    why: &'static str,
) -> Row {
    Row {
        roles,
        slot,
        api,
        v2_only: false,
        grants,
        why,
    }
}

use Api::{Data, Metadata};
use Cmd::*;

#[rustfmt::skip]
pub(super) const TABLE: &[Row] = &[
    // admin: init, issue and everything that defines or retires certificates.
    row(ADMIN, Slot::Account, Data, &[
            ("create", &[Init, Import]),
            ("read", &[Init, Issue, Revoke, Account, Import]),
            ("update", &[Init, Account, Import, Revoke])],
        "register ACME accounts and replace them (`certvault init`); `issue` reads them; `revoke` and `account` act for the whole ACME account, so they check what changing the account needs"),
    row(ADMIN, Slot::Solver, Data, &[
            ("create", &[DnsAdd, Import]),
            ("read", &[Issue, DnsAdd, DnsList, DnsTest, DnsRemove, Import]),
            ("update", &[DnsAdd, Import]),
            ("delete", &[DnsRemove])],
        "store DNS solver configurations (with their API credentials) for `renew` to use (`certvault dns add`), try them (`dns test`) and remove unused ones (`dns remove`)"),
    row(ADMIN, Slot::Solvers, Metadata, &[("list", &[DnsList])],
        "list the stored DNS solvers (`certvault dns list`)"),
    row(ADMIN, Slot::Spec, Data, &[
            ("create", &[Issue, Migrate, Import]),
            ("read", &[Issue, Verify, Rebuild, Delete, Migrate, Import, Revoke, DnsRemove]),
            ("update", &[Issue, Migrate, Import]),
            ("delete", &[Delete])],
        "define certificates (`certvault issue`, `certvault migrate`) and retire them (`certvault delete`): names, DNS solver, hooks and deploy hook; `renew` orders and runs only what these say"),
    row(ADMIN, Slot::Cert, Data, &[
            ("create", &[Issue, Import]),
            ("read", &[Issue, Verify, Rebuild, Delete, Migrate, Import, Revoke, DnsRemove]),
            ("update", &[Issue, Import, Revoke]),
            ("delete", &[Delete])],
        "store issued certificates and their keys (`certvault issue`); `certvault delete` deletes the latest version (KV history stays: no destroy)"),
    row(ADMIN, Slot::Status, Data, &[
            ("create", &[Issue, Migrate, Import]),
            ("read", &[Issue, Verify, Rebuild, Delete, Migrate, Import, Revoke]),
            ("update", &[Issue, Migrate, Import, Revoke]),
            ("delete", &[Delete])],
        "record each certificate's last attempt and failures (no key material)"),
    row(ADMIN, Slot::Certs, Metadata, &[("list", &[Verify, Rebuild, Migrate, DnsRemove])],
        "list certificate records (`certvault list`, `certvault renew`)"),
    row(ADMIN, Slot::Lock, Data, &[
            ("create", &[Issue]),
            ("read", &[Issue, Unlock]),
            ("update", &[Issue]),
            ("delete", &[Issue, Unlock])],
        "take and release the per-certificate lock while issuing; break a dead run's lock (`certvault unlock`)"),
    Row { v2_only: true, ..row(ADMIN, Slot::Lock, Metadata, &[("delete", &[])],
        "remove a released lock with its history, so the list of locks holds only those left") },
    row(ADMIN, Slot::Locks, Metadata, &[("list", &[])],
        "find the locks left by runs that died or lost Vault"),
    row(ADMIN, Slot::Index, Data, &[
            ("create", &[Issue, Rebuild, Migrate, Import, Revoke]),
            ("read", &[Issue, Verify, Rebuild, Delete, Migrate, Import, Revoke]),
            ("update", &[Issue, Rebuild, Delete, Migrate, Import, Revoke]),
            ("delete", &[Rebuild])],
        "keep the renewal index current when issuing, editing or retiring; `certvault index rebuild` rewrites it and deletes documents left empty; `list --verify` compares it with the records"),
    row(ADMIN, Slot::Pause, Data, &[("create", &[]), ("read", &[]), ("update", &[]), ("delete", &[])],
        "record and clear a CA's pause after it rate-limited new orders (no key material)"),
    // renew: unattended renewals, and `show`.
    row(RENEW, Slot::Account, Data, &[("read", &[Renew])],
        "use the ACME account (its key signs the orders); never change it"),
    row(RENEW, Slot::Solver, Data, &[("read", &[Renew])],
        "use the stored DNS solver configurations; never change them"),
    row(RENEW, Slot::Spec, Data, &[("read", &[Renew, Show])],
        "read what each certificate is (names, solver, hooks); never change it, so this token cannot choose what renew orders or runs"),
    row(RENEW, Slot::Cert, Data, &[("read", &[Renew, Show]), ("update", &[Renew])],
        "read certificate records and write renewed ones back (check-and-set on KV v2); no new records. What this role can still do: write certificate material (a certificate and key of its choosing) into existing records, which is what renewing means; consumers trust these records, so guard this token like the keys it writes"),
    row(RENEW, Slot::Status, Data, &[("create", &[Renew]), ("read", &[Renew, Show]), ("update", &[Renew])],
        "record each certificate's last attempt and failures (no key material)"),
    row(RENEW, Slot::Certs, Metadata, &[("list", &[Renew])],
        "find the certificate records to renew"),
    row(RENEW, Slot::Lock, Data, &[
            ("create", &[Renew]),
            ("read", &[Renew, Show]),
            ("update", &[Renew]),
            ("delete", &[Renew])],
        "take and release the per-certificate lock while renewing"),
    Row { v2_only: true, ..row(RENEW, Slot::Lock, Metadata, &[("delete", &[])],
        "remove a released lock with its history, so the list of locks holds only those left") },
    row(RENEW, Slot::Locks, Metadata, &[("list", &[])],
        "find the locks left by runs that died or lost Vault: their records are read again, so status and index agree with them"),
    row(RENEW, Slot::Index, Data, &[("create", &[Renew]), ("read", &[Renew]), ("update", &[Renew])],
        "read the renewal index to load only what is due, and update the entries of the records this run read or wrote (check-and-set); no delete, so no rebuild"),
    row(RENEW, Slot::Pause, Data, &[("create", &[Renew]), ("read", &[Renew]), ("update", &[Renew])],
        "remember that a CA rate-limited new orders, so the next run waits too (key-free: the account document and its key stay read-only)"),
    // monitor: `list` without any key.
    row(MONITOR, Slot::Certs, Metadata, &[("list", &[List])],
        "find the certificates (`certvault list`)"),
    row(MONITOR, Slot::Spec, Data, &[("read", &[List])],
        "read what each certificate is (names, renewal settings)"),
    row(MONITOR, Slot::Status, Data, &[("read", &[List])],
        "read each certificate's expiry, last attempt and failures; no private key is in these documents"),
    row(MONITOR, Slot::Index, Data, &[("read", &[List])],
        "read the renewal index (expiry, renewal point, last attempt; no key material), so `list` needs no read per certificate"),
    row(MONITOR, Slot::Pause, Data, &[("read", &[])],
        "see that a CA paused new orders after a rate limit (`list` shows it; no key material)"),
    // reader: one certificate record (the path is the NAME given to `certvault policy reader`).
    row(&[Role::Reader], Slot::Cert, Data, &[("read", &[])],
        "read this one certificate and its key (Vault Agent template, External Secrets); nothing else"),
    // KV v2 metadata (versions and times, no document data): how a run finds index entries
    // made from an older record or spec. On KV v1 the same path would be the documents.
    Row { v2_only: true, ..row(RUNNERS, Slot::Cert, Metadata, &[("read", &[Renew, List])],
        "check the renewal index against the current versions of records and specs (KV metadata: versions and times, no document data)") },
    Row { v2_only: true, ..row(RUNNERS, Slot::Spec, Metadata, &[("read", &[Renew, List])],
        "check the renewal index against the current versions of records and specs (KV metadata: versions and times, no document data)") },
    row(RUNNERS, Slot::CapabilitiesSelf, Data, &[("update", &[])],
        "certvault checks its own capabilities at start (also granted by Vault's `default` policy)"),
];
