//! `certvault import certbot|lego|vault-layout`: store existing certificates as they are
//! (same serial, same key), their accounts (found again with onlyReturnExisting, never
//! registered), their solvers (secrets from credentials files, never printed) and specs.
//! And `init --account-key FILE`.
//!
//! Every write is a check-and-set: an existing record, spec, solver or account with other
//! contents is reported and skipped unless `--force`; what is already there unchanged is
//! skipped quietly, so an interrupted import finishes when run again.

use std::fmt::Write as _;
use std::path::PathBuf;

use time::OffsetDateTime;

use super::context::{Context, Outcome};
use super::status;
use crate::import::{self, key, key::AccountKey, AccountItem, CertItem, Plan, SolverItem};
use crate::model::{LayoutFields, SCHEMA_VERSION};
use crate::records::{AccountRecord, CertRecord, SolverRecord, SpecRecord};
use crate::store::Key;
use crate::vault::Expect;
use crate::Error;
use Counted::{Conflict, Failed, Unchanged, Written};

/// Where to import from.
#[derive(Debug)]
pub enum Source {
    Certbot {
        dir: PathBuf,
        only: Vec<String>,
    },
    Lego {
        dir: PathBuf,
        server: Option<String>,
    },
    /// An acme.sh home folder.
    AcmeSh {
        dir: PathBuf,
        server: Option<String>,
    },
    /// `<mount>/<path>` of the certbot-in-Vault layout.
    VaultLayout {
        from: String,
        server: Option<String>,
    },
}

#[derive(Debug)]
pub struct ImportArgs {
    pub source: Source,
    pub dry_run: bool,
    pub force: bool,
    /// Carry RSA and P-384 accounts over by a key change to a new P-256 key.
    pub adopt_account: bool,
}

/// Counts for the summary line.
#[derive(Default)]
struct Tally {
    written: usize,
    unchanged: usize,
    conflicts: usize,
    errors: usize,
}

/// What became of an item.
#[derive(Clone, Copy)]
enum Counted {
    /// Stored (or, in a dry run, to be stored).
    Written,
    /// Already stored as it is.
    Unchanged,
    /// Skipped: something else is stored there.
    Conflict,
    /// Could not be imported.
    Failed,
}

impl Tally {
    /// Count an item as `kind` and report it as one line.
    fn note(&mut self, kind: Counted, text: &mut String, line: std::fmt::Arguments<'_>) {
        *match kind {
            Counted::Written => &mut self.written,
            Counted::Unchanged => &mut self.unchanged,
            Counted::Conflict => &mut self.conflicts,
            Counted::Failed => &mut self.errors,
        } += 1;
        let _ = writeln!(text, "{line}");
    }

    /// Something stored (or, in a dry run, to be stored).
    fn written(&mut self, text: &mut String, line: std::fmt::Arguments<'_>) {
        self.note(Written, text, line)
    }

    /// Something already stored as it is.
    fn unchanged(&mut self, text: &mut String, line: std::fmt::Arguments<'_>) {
        self.note(Unchanged, text, line)
    }

    /// Count an error about `what` and report it as one line.
    fn error(
        &mut self,
        text: &mut String,
        what: std::fmt::Arguments<'_>,
        e: &(dyn std::error::Error + 'static),
    ) {
        self.note(
            Failed,
            text,
            format_args!("ERROR    {what}: {}", crate::text::chain(e)),
        );
    }
}

pub(super) async fn run(
    ctx: &Context,
    args: ImportArgs,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    let account = ctx.settings.account.as_str();
    let (source_name, plan) = match &args.source {
        Source::Certbot { dir, only } => (
            dir.display().to_string(),
            import::certbot::plan(dir, &import::certbot::Options { only, account }),
        ),
        Source::Lego { dir, server } => (
            dir.display().to_string(),
            import::lego::plan(
                dir,
                &import::lego::Options {
                    account,
                    server: server.as_deref(),
                },
            ),
        ),
        Source::AcmeSh { dir, server } => (
            dir.display().to_string(),
            import::acme_sh::plan(
                dir,
                &import::acme_sh::Options {
                    account,
                    server: server.as_deref(),
                },
            ),
        ),
        Source::VaultLayout { from, server } => {
            let (mount, path) =
                from.trim_matches('/')
                    .split_once('/')
                    .ok_or_else(|| Error::ImportSource {
                        source_name: from.clone(),
                        reason: "write --from <mount>/<path>, like secret/lets-encrypt".into(),
                    })?;
            let kv = ctx
                .store
                .kv()
                .on_mount(mount)
                .await
                .map_err(crate::store::Error::from)?;
            let opts = import::vault_layout::Options {
                account,
                server: server.as_deref(),
            };
            (
                from.clone(),
                import::vault_layout::plan(&kv, path, &opts).await,
            )
        }
    };
    let plan = plan.map_err(|reason| Error::ImportSource {
        source_name: source_name.clone(),
        reason,
    })?;
    let mut text = String::new();
    let mut tally = Tally::default();
    for p in &plan.problems {
        tally.note(
            Failed,
            &mut text,
            format_args!("ERROR    {}: {}", p.file, p.reason),
        );
    }
    for a in &plan.accounts {
        account_item(ctx, a, &plan, &args, &mut text, &mut tally, now).await;
    }
    for s in &plan.solvers {
        solver_item(ctx, s, &args, &mut text, &mut tally).await;
    }
    // The renewal window (ARI) of each certificate stored, asked through its account once
    // it is connected (an account that is not stored: none).
    let mut accounts = super::ari::Accounts::default();
    for c in &plan.certs {
        cert_item(ctx, c, &args, &mut accounts, &mut text, &mut tally, now).await;
    }
    let verb = if args.dry_run {
        "would write"
    } else {
        "written"
    };
    let _ = writeln!(
        text,
        "summary: {} {verb}, {} already there, {} skipped (conflicts), {} errors{}",
        tally.written,
        tally.unchanged,
        tally.conflicts,
        tally.errors,
        if args.dry_run {
            "; nothing was written (dry run)"
        } else {
            ""
        }
    );
    Ok(Outcome {
        text,
        failed: tally.errors + tally.conflicts > 0,
        ..Default::default()
    })
}

async fn account_item(
    ctx: &Context,
    a: &AccountItem,
    plan: &Plan,
    args: &ImportArgs,
    text: &mut String,
    tally: &mut Tally,
    now: OffsetDateTime,
) {
    let path = ctx.store.display(Key::Account(&a.name));
    let url = a.url.as_deref().unwrap_or("(no account URL recorded)");
    let users = plan
        .certs
        .iter()
        .filter(|c| c.spec.account == a.name)
        .count();
    let existing = match ctx.store.load_account(&a.name).await {
        Ok(e) => e,
        Err(e) => {
            tally.error(text, format_args!("account {}", a.name), &e);
            return;
        }
    };
    let k = match &a.key {
        AccountKey::Unsupported(what) => {
            // Settled once an account is stored under that name (`init` ran).
            if existing.is_none() {
                tally.errors += 1;
            }
            let dir = a.directory.as_deref().unwrap_or("<directory URL>");
            let forward = match &existing {
                Some(s) => format!("its {users} certificate(s) will renew with the account already stored at {path} ({})", super::account_doc::stored_url(&s.data)),
                None => format!("its {users} certificate(s) are imported and name account {:?}: before they renew, register a new account with `certvault --account {} init --directory {dir} --agree-tos` (the CA will see a new account URL)", a.name, a.name),
            };
            let _ = writeln!(
                text,
                "NOT CARRIED OVER account {url} ({}): {}; {forward}",
                a.from,
                key::unsupported_reason(what)
            );
            return;
        }
        AccountKey::Legacy(old) if !args.adopt_account => {
            if let (Some(s), Some(u)) = (&existing, &a.url) {
                if super::account_doc::stored_url(&s.data) == *u {
                    tally.unchanged(text, format_args!("already  account {u} at {path}"));
                    return;
                }
            }
            if existing.is_none() {
                tally.errors += 1;
            }
            let forward = match &existing {
                Some(s) => format!("without it, its {users} certificate(s) renew with the account already stored at {path} ({})", super::account_doc::stored_url(&s.data)),
                None => format!("without it, its {users} certificate(s) are imported and name account {:?}, which must be carried over or registered anew before they renew", a.name),
            };
            let _ = writeln!(
                text,
                "NOT CARRIED OVER account {url} ({}): {}; run the import again with --adopt-account to do that (--dry-run shows it first); {forward}",
                a.from,
                key::adopt_note(&old.describe())
            );
            return;
        }
        AccountKey::Legacy(_) | AccountKey::P256(_) => &a.key,
    };
    if let (Some(s), Some(u)) = (&existing, &a.url) {
        if super::account_doc::stored_url(&s.data) == *u {
            tally.unchanged(text, format_args!("already  account {u} at {path}"));
            return;
        }
    }
    let Some(directory) = a.directory.as_deref() else {
        let host = a
            .url
            .as_deref()
            .and_then(import::url_host)
            .unwrap_or("its CA");
        tally.note(Failed, text, format_args!("ERROR    {}: the source does not record the ACME directory URL and {host} is not a well-known CA: pass --server <directory URL on {host}>", a.from));
        return;
    };
    if args.dry_run {
        match k {
            AccountKey::Legacy(old) => tally.written(text, format_args!("would carry over account {url} at {directory}: change its {} key at the CA to a new ECDSA P-256 key (the account URL stays; the source client's copy of the old key stops working) and store it at {path}", old.describe())),
            _ => tally.written(text, format_args!("would look up account {url} at {directory} (onlyReturnExisting, no registration) and store it at {path}")),
        }
        return;
    }
    let found = match (ctx.http(), k) {
        (Ok(http), AccountKey::P256(k)) => key::find_account(&http, directory, k).await,
        (Ok(http), AccountKey::Legacy(old)) => {
            let found = crate::acme::keychange::find(&http, directory, old).await;
            return adopt_item(
                ctx, a, old, existing, found, directory, args, text, tally, now,
            )
            .await;
        }
        (Ok(_), AccountKey::Unsupported(_)) => return,
        (Err(e), _) => {
            tally.error(text, format_args!("account {}", a.name), &e);
            return;
        }
    };
    let (credentials, found_url) = match found {
        Ok(f) => f,
        Err(e) => {
            tally.error(text, format_args!("account {url} ({})", a.from), &e);
            return;
        }
    };
    let Some(expect) = import_slot(&existing, &found_url, a, &path, args, text, tally) else {
        return;
    };
    let record = super::account_doc::account_record(directory, a.contact.clone(), credentials, now);
    match ctx.store.save_account(&a.name, &record, expect).await {
        Ok(v) => {
            tally.written(
                text,
                format_args!(
                    "account  {found_url} (found with onlyReturnExisting) -> {path} (version {v})"
                ),
            );
            if a.url.as_deref().is_some_and(|u| u != found_url) {
                let _ = writeln!(text, "  note: the source recorded the account URL {url}");
            }
        }
        Err(e) => {
            tally.error(text, format_args!("account {}", a.name), &e);
        }
    }
}

/// The check-and-set for storing account `url` as `a.name`, or `None` when it is stored
/// already or another account holds the name (both reported).
fn import_slot(
    existing: &Option<crate::vault::Versioned<AccountRecord>>,
    url: &str,
    a: &AccountItem,
    path: &str,
    args: &ImportArgs,
    text: &mut String,
    tally: &mut Tally,
) -> Option<Expect> {
    match super::account_doc::slot(existing, url, args.force) {
        super::account_doc::Slot::Stored(_) => {
            tally.unchanged(text, format_args!("already  account {url} at {path}"));
            None
        }
        super::account_doc::Slot::Taken(other) => {
            tally.note(Conflict, text, format_args!("SKIPPED  account {}: {path} holds another account ({other}); pass --force to replace it", a.name));
            None
        }
        super::account_doc::Slot::Write(expect) => Some(expect),
    }
}

/// `--adopt-account`: the account of `old` was `found` at `directory`; change its key to a
/// new P-256 key and store it, unless the same account is stored already.
#[allow(clippy::too_many_arguments)]
async fn adopt_item(
    ctx: &Context,
    a: &AccountItem,
    old: &crate::acme::keychange::JwsKey,
    existing: Option<crate::vault::Versioned<AccountRecord>>,
    found: Result<String, crate::acme::Error>,
    directory: &str,
    args: &ImportArgs,
    text: &mut String,
    tally: &mut Tally,
    now: OffsetDateTime,
) {
    let path = ctx.store.display(Key::Account(&a.name));
    let found_url = match found {
        Ok(u) => u,
        Err(e) => {
            let url = a.url.as_deref().unwrap_or("(no account URL recorded)");
            tally.error(text, format_args!("account {url} ({})", a.from), &e);
            return;
        }
    };
    let Some(expect) = import_slot(&existing, &found_url, a, &path, args, text, tally) else {
        return;
    };
    match super::account_doc::adopt(ctx, &a.name, directory, old, a.contact.clone(), expect, now)
        .await
    {
        Ok((url, v)) => {
            tally.written(
                text,
                format_args!(
                    "account  {url} carried over: its {} key was changed at the CA to a new ECDSA P-256 key (the account URL stays; the copy in {} no longer works) -> {path} (version {v})",
                    old.describe(),
                    a.from
                ),
            );
        }
        Err(e) => tally.error(text, format_args!("account {}", a.name), &e),
    }
}

/// The settings of a solver that are not secret.
fn solver_summary(config: &crate::dns::Config) -> String {
    config.describe()
}

async fn solver_item(
    ctx: &Context,
    s: &SolverItem,
    args: &ImportArgs,
    text: &mut String,
    tally: &mut Tally,
) {
    let path = ctx.store.display(Key::Solver(&s.name));
    let what = solver_summary(&s.config);
    let expect = match ctx.store.load_solver(&s.name).await {
        Ok(Some(stored)) if stored.data.config == s.config => {
            tally.unchanged(
                text,
                format_args!("already  solver {} ({what}) at {path}", s.name),
            );
            return;
        }
        Ok(Some(_)) if !args.force => {
            tally.note(Conflict, text, format_args!("SKIPPED  solver {}: {path} holds other settings; pass --force to replace it (certificates naming it use the stored one meanwhile)", s.name));
            return;
        }
        Ok(Some(stored)) => Expect::Version(stored.version),
        Ok(None) => Expect::Absent,
        Err(e) => {
            tally.error(text, format_args!("solver {}", s.name), &e);
            return;
        }
    };
    if args.dry_run {
        tally.written(
            text,
            format_args!(
                "would store solver {} ({what}; secret from {}) at {path}",
                s.name, s.from
            ),
        );
        return;
    }
    let record = SolverRecord {
        schema: SCHEMA_VERSION,
        config: s.config.clone(),
    };
    match ctx.store.save_solver(&s.name, &record, expect).await {
        Ok(v) => {
            tally.written(
                text,
                format_args!(
                    "solver   {} ({what}; secret from {}) -> {path} (version {v})",
                    s.name, s.from
                ),
            );
        }
        Err(e) => {
            tally.error(text, format_args!("solver {}", s.name), &e);
        }
    }
}

async fn cert_item(
    ctx: &Context,
    c: &CertItem,
    args: &ImportArgs,
    accounts: &mut super::ari::Accounts,
    text: &mut String,
    tally: &mut Tally,
    now: OffsetDateTime,
) {
    let name = &c.name;
    let path = ctx.store.display(Key::Cert(name));
    let spec_path = ctx.store.display(Key::Spec(name));
    let what = format!(
        "{}; serial {}, not after {}",
        super::spec_text::describe(&c.spec),
        c.issued.serial,
        import::expiry(c.issued.not_after)
    );
    let fail = |text: &mut String, tally: &mut Tally, e: &(dyn std::error::Error + 'static)| {
        tally.error(text, format_args!("{name}"), e);
    };
    let (read, spec_read) = match (
        ctx.store.load_cert_for_write(name).await,
        ctx.store.load_spec(name).await,
    ) {
        (Ok(r), Ok(s)) => (r, s),
        (Err(e), _) | (_, Err(e)) => return fail(text, tally, &e),
    };
    // The certificate document: create, keep (same serial: resumed), or conflict.
    let cert_expect = match &read.doc {
        Some(d) if d.data.issued.serial == c.issued.serial => None,
        Some(d) if !args.force => {
            tally.note(Conflict, text, format_args!("SKIPPED  {name}: {path} holds another certificate (serial {}); pass --force to replace it", d.data.issued.serial));
            return;
        }
        _ => Some(read.expect),
    };
    let spec_expect = match &spec_read.doc {
        Some(d) if d.data.spec == c.spec => None,
        Some(_) if !args.force => {
            tally.note(Conflict, text, format_args!("SKIPPED  {name}: {spec_path} holds other settings; pass --force to replace them"));
            return;
        }
        _ => Some(spec_read.expect),
    };
    if cert_expect.is_none() && spec_expect.is_none() {
        tally.unchanged(
            text,
            format_args!("already  {name} at {path} (serial {})", c.issued.serial),
        );
        return;
    }
    if args.dry_run {
        tally.written(
            text,
            format_args!(
                "would import {name} from {} -> {path} and {spec_path}: {what}",
                c.from
            ),
        );
        notes(c, text);
        return;
    }
    let mut version = read.doc.as_ref().map(|d| d.version).unwrap_or(0);
    let mut written = None;
    if let Some(expect) = cert_expect {
        let record = CertRecord {
            facts: Default::default(),
            schema: SCHEMA_VERSION,
            spec: c.spec.clone(),
            issued: c.issued.clone(),
            layout: LayoutFields::new(&c.spec.layouts, &c.issued),
            extra: read
                .doc
                .as_ref()
                .map(|d| d.data.extra.clone())
                .unwrap_or_default(),
        };
        match ctx.store.save_cert(name, &record, expect).await {
            Ok(v) => {
                version = v;
                written = Some(record);
            }
            Err(e) => return fail(text, tally, &e),
        }
    }
    if let Some(expect) = spec_expect {
        let record = SpecRecord {
            schema: SCHEMA_VERSION,
            spec: c.spec.clone(),
        };
        if let Err(e) = ctx.store.save_spec(name, &record, expect).await {
            return fail(text, tally, &e);
        }
    }
    let attempt = status::Attempt::Imported {
        issued: &c.issued,
        version,
        needs: c.needs_solver.as_deref(),
    };
    status::record(ctx, name, attempt, now).await;
    // The CA's renewal window from the first minute, when the account is stored already.
    let mut renews = None;
    if let Some(record) = written {
        // Connected once per account (an account that is not stored: no ARI, quietly).
        accounts.connect(ctx, &c.spec.account).await;
        if accounts.usable(&c.spec.account) {
            let (v, ari) =
                super::ari::first_window(ctx, name, &c.spec, record, version, accounts, now).await;
            version = v;
            renews = ari.and_then(|a| a.chosen_at);
        }
    }
    tally.written(
        text,
        format_args!(
            "imported {name} from {} -> {path} (version {version}): {what}",
            c.from
        ),
    );
    if let Some(at) = renews {
        let _ = writeln!(
            text,
            "  renews at {} (inside the CA's renewal window, ARI)",
            crate::text::rfc3339(at)
        );
    }
    notes(c, text);
}

fn notes(c: &CertItem, text: &mut String) {
    for n in &c.notes {
        let _ = writeln!(text, "  note: {n}");
    }
    if let Some(why) = &c.needs_solver {
        let names: Vec<String> = c.spec.domains.iter().map(|d| format!("-d {d}")).collect();
        let _ = writeln!(
            text,
            "  NEEDS A SOLVER: {why}; until one is set, renew fails on it. Set one (the certificate is kept, not reissued): `certvault issue {} {} --dns <solver>` or `--dns exec --auth-hook …`",
            c.name,
            names.join(" ")
        );
    }
}
