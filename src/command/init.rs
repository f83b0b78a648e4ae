//! `certvault init`: register the ACME account once and keep its credentials in Vault.

use time::OffsetDateTime;

use super::context::{Context, Outcome};
use crate::acme::{self, Eab};
use crate::records::AccountRecord;
use crate::store::Key;
use crate::vault::{Expect, Versioned};
use crate::Error;

#[derive(Debug)]
pub struct InitArgs {
    pub directory: String,
    pub email: Vec<String>,
    pub agree_tos: bool,
    pub eab_kid: Option<String>,
    pub eab_hmac: Option<crate::model::Secret>,
    /// Register a new account even if one is stored (replaces it).
    pub force: bool,
    /// Import this existing account key (PEM or JWK) instead of registering: the account
    /// is found with onlyReturnExisting.
    pub account_key: Option<std::path::PathBuf>,
}

pub(super) async fn run(
    ctx: &Context,
    args: InitArgs,
    now: fn() -> OffsetDateTime,
) -> Result<Outcome, Error> {
    let name = ctx.settings.account.as_str();
    let path = ctx.store.display(Key::Account(name));
    let existing = ctx.store.load_account(name).await?;
    if let Some(file) = &args.account_key {
        let file = file.clone();
        return from_key(ctx, name, existing, &file, args, now()).await;
    }
    let expect = match &existing {
        Some(stored) if !args.force => {
            if stored.data.directory != args.directory {
                return Err(Error::AccountExists {
                    path,
                    stored: stored.data.directory.clone(),
                    wanted: args.directory,
                });
            }
            let mut text = format!(
                "ACME account for {} is already stored at {path} (version {}); nothing changed\n",
                stored.data.directory, stored.version
            );
            if !args.email.is_empty() && args.email != stored.data.contact {
                text.push_str(&format!(
                    "note: the stored contact is {:?}; use --force to register again with {:?}\n",
                    stored.data.contact, args.email
                ));
            }
            return Ok(Outcome {
                text,
                failed: false,
                ..Default::default()
            });
        }
        Some(stored) => Expect::Version(stored.version),
        None => Expect::Absent,
    };
    if !args.agree_tos {
        // Show the terms the user is asked to agree to (best effort: the CA may be down).
        let terms = match ctx.http() {
            Ok(http) => acme::terms_of_service(&http, &args.directory).await,
            Err(_) => None,
        };
        return Err(Error::TermsNotAgreed { terms });
    }
    for email in &args.email {
        if !email.contains('@') || email.contains(char::is_whitespace) {
            return Err(crate::model::InvalidInput {
                what: "email",
                value: email.clone(),
                reason: "use an address like ops@example.com",
            }
            .into());
        }
    }
    let eab = match (args.eab_kid, args.eab_hmac) {
        (Some(kid), Some(hmac)) => Some(Eab { kid, hmac }),
        (None, None) => None,
        _ => {
            return Err(crate::model::InvalidInput {
                what: "external account binding",
                value: String::new(),
                reason: "give both --eab-kid and --eab-hmac-key (or CERTVAULT_EAB_HMAC_KEY)",
            }
            .into())
        }
    };
    let http = ctx.http()?;
    let (credentials, account_url) =
        acme::register(&http, &args.directory, &args.email, eab.as_ref()).await?;
    let mut record =
        super::account_doc::account_record(&args.directory, args.email, credentials, now());
    record.eab_kid = eab.map(|e| e.kid);
    let version = ctx.store.save_account(name, &record, expect).await?;
    tracing::info!(account = %account_url, "registered ACME account");
    Ok(Outcome {
        text: format!(
            "registered ACME account {account_url} at {}\nstored at {path} (version {version})\n",
            args.directory
        ),
        failed: false,
        ..Default::default()
    })
}

/// `init --account-key FILE`: find the key's existing account at `directory` and store it.
async fn from_key(
    ctx: &Context,
    name: &str,
    existing: Option<Versioned<AccountRecord>>,
    file: &std::path::Path,
    args: InitArgs,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    use crate::import::key::{self, AccountKey};
    let directory = args.directory.as_str();
    let (contact, force) = (args.email.clone(), args.force);
    let shown = file.display().to_string();
    let bad = |reason: String| Error::AccountKey {
        path: shown.clone(),
        reason,
    };
    let text = crate::import::files::read_limited(file).map_err(bad)?;
    let k = match key::parse(&text).map_err(bad)? {
        AccountKey::P256(k) => k,
        AccountKey::Legacy(old) => {
            return adopt_key(ctx, name, existing, &old, args, now).await;
        }
        AccountKey::Unsupported(what) => {
            return Err(bad(format!(
                "{}. Nothing was registered. To go on, register a new account: `certvault init --directory {directory} --agree-tos` without --account-key (the CA then sees a new account URL; certificates issued by the old account are unaffected)",
                key::unsupported_reason(&what)
            )))
        }
    };
    let http = ctx.http()?;
    let (credentials, url) = key::find_account(&http, directory, &k).await?;
    let path = ctx.store.display(Key::Account(name));
    let expect = match init_slot(&existing, &url, &path, force, &shown)? {
        Ok(expect) => expect,
        Err(done) => return Ok(done),
    };
    let record = super::account_doc::account_record(directory, contact, credentials, now);
    let version = ctx.store.save_account(name, &record, expect).await?;
    Ok(Outcome {
        text: format!("found the existing ACME account {url} at {directory} (onlyReturnExisting; nothing registered)\nstored at {path} (version {version})\n"),
        failed: false,
        ..Default::default()
    })
}

/// `init --account-key`: the check-and-set for account `url`, or the outcome when there is
/// nothing to write (stored already) or no right to (another account, without `--force`).
fn init_slot(
    existing: &Option<Versioned<AccountRecord>>,
    url: &str,
    path: &str,
    force: bool,
    key_file: &str,
) -> Result<Result<Expect, Outcome>, Error> {
    match super::account_doc::slot(existing, url, force) {
        super::account_doc::Slot::Stored(version) => Ok(Err(Outcome {
            text: format!("ACME account {url} is already stored at {path} (version {version}); nothing changed\n"),
            failed: false,
            ..Default::default()
        })),
        super::account_doc::Slot::Taken(other) => Err(Error::AccountKey {
            path: key_file.to_string(),
            reason: format!("it belongs to account {url}, but {path} holds another account ({other}); pass --force to replace it, or --account <name> to keep both"),
        }),
        super::account_doc::Slot::Write(expect) => Ok(Ok(expect)),
    }
}

/// `init --account-key FILE` with an RSA or P-384 key: its account's key is changed at the CA
/// to a new P-256 key, which is stored (see [`super::account::adopt`]).
async fn adopt_key(
    ctx: &Context,
    name: &str,
    existing: Option<Versioned<AccountRecord>>,
    old: &crate::acme::keychange::JwsKey,
    args: InitArgs,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    let directory = args.directory.as_str();
    let shown = args
        .account_key
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let http = ctx.http()?;
    let url = crate::acme::keychange::find(&http, directory, old).await?;
    let path = ctx.store.display(Key::Account(name));
    let expect = match init_slot(&existing, &url, &path, args.force, &shown)? {
        Ok(expect) => expect,
        Err(done) => return Ok(done),
    };
    let (url, version) =
        super::account_doc::adopt(ctx, name, directory, old, args.email.clone(), expect, now)
            .await?;
    Ok(Outcome {
        text: format!(
            "carried over the existing ACME account {url} at {directory}: its {} key was changed at the CA to a new ECDSA P-256 key (RFC 8555 key change; the account URL stays, the old key in {shown} no longer works)\nstored at {path} (version {version})\n",
            old.describe()
        ),
        failed: false,
        ..Default::default()
    })
}
