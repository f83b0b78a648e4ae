//! `certvault revoke NAME [--reason R]`: revoke the stored certificate with the account
//! that ordered it, and mark the record (`revoked_at`, `revoke_reason`) so the next
//! `renew` replaces it.

use time::OffsetDateTime;

use super::context::{Context, Outcome};
use crate::model::CertName;
use crate::store::Key;
use crate::text::rfc3339;
use crate::vault::Expect;
use crate::Error;

pub(super) async fn run(
    ctx: &Context,
    name: &CertName,
    reason: Option<String>,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    let path = ctx.store.display(Key::Cert(name));
    let read = ctx.store.load_cert_for_write(name).await?;
    let Some(mut doc) = read.doc else {
        return Err(Error::UnknownCerts {
            names: vec![name.clone()],
            path: ctx.store.display(Key::Certs),
        });
    };
    if let Some(at) = doc.data.facts.revoked_at {
        return Err(Error::NotRevocable {
            name: name.clone(),
            reason: format!(
                "it was revoked at {}; the next `certvault renew` replaces it",
                rfc3339(at)
            ),
        });
    }
    // The account of the trusted spec (the one that ordered it), else the record's copy.
    let spec = ctx.store.load_spec(name).await?.doc.map(|d| d.data.spec);
    let account = spec
        .as_ref()
        .map(|s| s.account.clone())
        .unwrap_or_else(|| doc.data.spec.account.clone());
    let http = ctx.http()?;
    let (acme_account, directory) = ctx.account(&http, &account).await?;
    crate::ca::revoke(
        &acme_account,
        &directory,
        &doc.data.issued.cert,
        reason.as_deref(),
    )
    .await?;
    doc.data.facts.revoked_at = Some(now);
    doc.data.facts.revoke_reason = reason.clone();
    let version = ctx
        .store
        .save_cert(name, &doc.data, Expect::Version(doc.version))
        .await?;
    // The key-free status document says so too (for monitors).
    if let Ok(status) = ctx.store.load_status(name).await {
        if let Some(s) = status.doc {
            let mut s = s.data;
            s.revoked_at = Some(now);
            s.cert_version = version;
            if let Err(e) = ctx.store.save_status(name, &s, status.expect).await {
                tracing::warn!(cert = %name, "could not write the status document: {}", crate::text::chain(&e));
            }
        }
    }
    Ok(Outcome {
        text: format!(
            "revoked {name} (serial {}{}); marked at {path} (version {version}); the next `certvault renew` replaces it\n",
            doc.data.issued.serial,
            reason.map(|r| format!(", reason {r}")).unwrap_or_default()
        ),
        failed: false,
        ..Default::default()
    })
}
