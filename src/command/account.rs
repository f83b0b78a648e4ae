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
    })
}

/// Carry over the account of `old` (an RSA or P-384 key) at `directory`: change its key at
/// the CA to a new P-256 key (RFC 8555 §7.3.5; the account URL stays) and store it as account
/// `name` with `expect`. The new key is held only in memory until Vault has it: a failed write
/// is tried again, and if it keeps failing the key change is undone, so the source client's
/// copy of the old key works again. The account URL and the stored version.
pub(super) async fn adopt(
    ctx: &Context,
    name: &str,
    directory: &str,
    old: &crate::acme::keychange::JwsKey,
    contact: Vec<String>,
    expect: Expect,
    now: OffsetDateTime,
) -> Result<(String, u64), Error> {
    use crate::acme::keychange;
    let http = ctx.http()?;
    let adopted = keychange::adopt(&http, directory, old).await?;
    tracing::info!(account = %adopted.url, "changed the account key at the CA to a new P-256 key");
    let record = super::init::account_record(directory, contact, adopted.credentials.clone(), now);
    let path = ctx.store.display(Key::Account(name));
    let mut failure = None;
    for attempt in 0..3u64 {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_secs(attempt)).await;
        }
        match ctx.store.save_account(name, &record, expect).await {
            Ok(version) => return Ok((adopted.url, version)),
            Err(e) => {
                tracing::warn!(
                    "could not store the new account key at {path}: {}",
                    crate::text::chain(&e)
                );
                // Trying again cannot help a refusal or a conflict.
                let settled = matches!(
                    &e,
                    crate::store::Error::Vault(
                        crate::vault::Error::Forbidden { .. }
                            | crate::vault::Error::CasConflict { .. }
                            | crate::vault::Error::AlreadyExists { .. }
                    )
                );
                failure = Some(e);
                if settled {
                    break;
                }
            }
        }
    }
    let cause = failure.map(|e| crate::text::chain(&e)).unwrap_or_default();
    let recovery = match keychange::undo(&http, directory, &adopted, old).await {
        Ok(()) => "the key change was undone at the CA, so the source client's old key works again and nothing is lost; fix the cause and run the command again".to_string(),
        Err(e) => format!(
            "changing the key back failed too ({}): no stored key can use this account now; register a new one with `certvault --account {name} init --force --directory {directory} --agree-tos` (the certificates it issued stay valid)",
            crate::text::chain(&e)
        ),
    };
    Err(Error::AdoptedNotStored {
        url: adopted.url.clone(),
        path,
        cause,
        recovery,
    })
}
