//! The stored account document, shared by `init`, `import` and `account`: building it,
//! where an account goes given what is stored under its name, and carrying an RSA or P-384
//! account over to a new P-256 key.

use time::OffsetDateTime;

use super::context::Context;
use crate::model::SCHEMA_VERSION;
use crate::records::AccountRecord;
use crate::store::Key;
use crate::vault::{Expect, Versioned};
use crate::Error;

/// The record of an account registered, or found at the CA by its key, now.
pub(super) fn account_record(
    directory: &str,
    contact: Vec<String>,
    credentials: serde_json::Value,
    now: OffsetDateTime,
) -> AccountRecord {
    AccountRecord {
        schema: SCHEMA_VERSION,
        directory: directory.to_string(),
        contact,
        eab_kid: None,
        created_at: now,
        credentials,
        deactivated_at: None,
    }
}

/// Where account `url` would go, given what is stored under that name already.
pub(super) enum Slot {
    /// The same account is stored (at this version): nothing to write.
    Stored(u64),
    /// Another account is stored, and `force` was not given: its URL.
    Taken(String),
    /// Write with this check-and-set.
    Write(Expect),
}

pub(super) fn slot(existing: &Option<Versioned<AccountRecord>>, url: &str, force: bool) -> Slot {
    match existing {
        Some(s) if stored_url(&s.data) == url => Slot::Stored(s.version),
        Some(s) if !force => Slot::Taken(stored_url(&s.data)),
        Some(s) => Slot::Write(Expect::Version(s.version)),
        None => Slot::Write(Expect::Absent),
    }
}

pub(super) fn stored_url(record: &AccountRecord) -> String {
    record.credentials["id"].as_str().unwrap_or("?").to_string()
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
    let record = account_record(directory, contact, adopted.credentials.clone(), now);
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
