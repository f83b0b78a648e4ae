//! `certvault account rollover` (RFC 8555 §7.3.5 key change; the new key is written with
//! check-and-set) and `certvault account deactivate --yes` (RFC 8555 §7.3.6).

use time::OffsetDateTime;

use super::context::{Context, Outcome};
use crate::store::Key;
use crate::vault::Expect;
use crate::Error;

/// The stored account `name` and its version.
async fn load(
    ctx: &Context,
    name: &str,
) -> Result<crate::vault::Versioned<crate::records::AccountRecord>, Error> {
    ctx.store
        .load_account(name)
        .await?
        .ok_or_else(|| Error::NoAccount {
            path: ctx.store.display(Key::Account(name)),
        })
}

pub(super) async fn rollover(ctx: &Context, name: &str) -> Result<Outcome, Error> {
    let stored = load(ctx, name).await?;
    let http = ctx.http()?;
    let directory = stored.data.directory.clone();
    let mut account =
        crate::acme::account(&http, &directory, stored.data.credentials.clone()).await?;
    let credentials = crate::ca::rollover(&mut account, &directory).await?;
    let mut record = stored.data;
    record.credentials = credentials.clone();
    let path = ctx.store.display(Key::Account(name));
    // The CA only accepts the new key now: a document changed meanwhile gets the new key
    // written over its latest version rather than losing it.
    let saved = match ctx
        .store
        .save_account(name, &record, Expect::Version(stored.version))
        .await
    {
        Err(crate::store::Error::Vault(crate::vault::Error::CasConflict { .. })) => {
            let fresh = load(ctx, name).await?;
            let mut latest = fresh.data;
            latest.credentials = credentials;
            ctx.store
                .save_account(name, &latest, Expect::Version(fresh.version))
                .await
        }
        other => other,
    };
    let version = saved.inspect_err(|_| {
            tracing::error!("the CA has the new account key, but it could not be stored at {path}: the account cannot be used until an admin registers a new one (`certvault init --force`)");
        })?;
    Ok(Outcome {
        text: format!(
            "rolled over the key of account {} at {directory}; the new key is stored at {path} (version {version})\n",
            account.id()
        ),
        failed: false,
        ..Default::default()
    })
}

pub(super) async fn deactivate(
    ctx: &Context,
    name: &str,
    yes: bool,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    let stored = load(ctx, name).await?;
    let directory = stored.data.directory.clone();
    if !yes {
        return Err(Error::NeedsYes {
            what: format!("deactivate the ACME account {name} at {directory} for good: the CA refuses it afterwards (no orders, no revocations with it)"),
        });
    }
    let http = ctx.http()?;
    let account = crate::acme::account(&http, &directory, stored.data.credentials.clone()).await?;
    let id = account.id().to_string();
    crate::ca::deactivate(account, &directory).await?;
    let mut record = stored.data;
    record.deactivated_at = Some(now);
    let path = ctx.store.display(Key::Account(name));
    let version = ctx
        .store
        .save_account(name, &record, Expect::Version(stored.version))
        .await?;
    Ok(Outcome {
        text: format!("deactivated account {id} at {directory}; marked at {path} (version {version}); register a new one with `certvault init --force`\n"),
        failed: false,
        ..Default::default()
    })
}
