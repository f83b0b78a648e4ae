//! Commands that look after one certificate: `show`, `unlock`, `delete`.

use std::fmt::Write as _;

use time::OffsetDateTime;

use super::context::{settle_index, Context, Outcome};
use crate::model::CertName;
use crate::policy::Work;
use crate::store::{lease_binds, Key};
use crate::text::relative;
use crate::text::rfc3339;
use crate::Error;

/// Commands that look after one certificate (also the CLI's subcommands of these names).
#[derive(Debug, clap::Subcommand)]
pub enum Manage {
    /// Show one certificate: spec, status, versions and Vault paths (no secret).
    Show {
        /// The certificate.
        name: CertName,
    },
    /// Break a certificate's lock (a run that died while holding it), showing who held it.
    Unlock {
        /// The certificate.
        name: CertName,
    },
    /// Retire a certificate so that renew stops (KV history is kept).
    Delete {
        /// The certificate.
        name: CertName,
        /// Confirm.
        #[arg(long)]
        yes: bool,
    },
}

impl Manage {
    /// Check the token's capabilities for the command, then run it.
    pub(super) async fn run(
        self,
        ctx: &Context,
        now: impl Fn() -> OffsetDateTime,
    ) -> Result<Outcome, Error> {
        match self {
            Manage::Show { name } => {
                ctx.check("show", Work::Show { cert: &name }).await?;
                show(ctx, &name, now()).await
            }
            Manage::Unlock { name } => {
                ctx.check("unlock", Work::Unlock { cert: &name }).await?;
                unlock(ctx, &name, now()).await
            }
            Manage::Delete { name, yes } => {
                ctx.check("delete", Work::Delete { cert: &name }).await?;
                let out = delete(ctx, &name, yes).await;
                settle_index(ctx, false, now()).await;
                out
            }
        }
    }
}

/// `certvault unlock NAME`: break a certificate's lock, showing who held it.
pub(super) async fn unlock(
    ctx: &Context,
    name: &CertName,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    let path = ctx.store.display(Key::Lock(name));
    let lock = match ctx.store.load_lock_or_invalid(name).await? {
        Ok(lock) => lock,
        Err(e) => {
            ctx.store.unlock_cert(name).await?;
            return Ok(Outcome {
                text: format!(
                    "removed the lock of {name}, which was not a valid lock ({})\n",
                    crate::text::one_line(&e.to_string())
                ),
                failed: false,
                ..Default::default()
            });
        }
    };
    let Some(lock) = lock else {
        return Ok(Outcome {
            text: format!("{name} is not locked ({path} holds no lock)\n"),
            failed: false,
            ..Default::default()
        });
    };
    ctx.store.unlock_cert(name).await?;
    let state = if lease_binds(lock.data.expires_at, now) {
        format!(
            "its lease ran until {} ({}); if that run is still alive it stops before writing",
            rfc3339(lock.data.expires_at),
            relative(now, lock.data.expires_at)
        )
    } else {
        "its lease had already lapsed".to_string()
    };
    Ok(Outcome {
        text: format!(
            "removed the lock of {name} held by {} since {}; {state}\n",
            crate::text::one_line(&lock.data.holder),
            rfc3339(lock.data.acquired_at)
        ),
        failed: false,
        ..Default::default()
    })
}

/// `certvault show NAME`: the spec, status, versions and Vault paths of one certificate,
/// without any secret.
pub(super) async fn show(
    ctx: &Context,
    name: &CertName,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    let (cert, spec, status, lock) = futures::join!(
        ctx.store.load_cert_for_write(name),
        ctx.store.load_spec(name),
        ctx.store.load_status_or_invalid(name),
        ctx.store.load_lock_or_invalid(name),
    );
    // Status and lock are certvault's own notes, rewritten by the next run: one that is not
    // valid is shown as such, and never makes `show` fail.
    let (cert, spec, status, lock) = (cert?, spec?, status?, lock?);
    if cert.doc.is_none() && spec.doc.is_none() {
        return Err(Error::UnknownCerts {
            names: vec![name.clone()],
            path: ctx.store.display(Key::Certs),
        });
    }
    let mut text = String::new();
    let _ = writeln!(text, "{name}");
    let _ = writeln!(text, "  record   {}", ctx.store.display(Key::Cert(name)));
    match &cert.doc {
        Some(c) => {
            let i = &c.data.issued;
            let _ = writeln!(
                text,
                "           version {}, serial {}, valid {} to {} ({})",
                c.version,
                i.serial,
                rfc3339(i.not_before),
                rfc3339(i.not_after),
                relative(now, i.not_after)
            );
        }
        None => {
            let _ = writeln!(text, "           no certificate stored (its latest version is deleted, or none was issued)");
        }
    }
    let _ = writeln!(text, "  spec     {}", ctx.store.display(Key::Spec(name)));
    match &spec.doc {
        Some(s) => {
            let _ = writeln!(
                text,
                "           version {}: {}",
                s.version,
                super::spec_text::describe(&s.data.spec)
            );
            let _ = writeln!(
                text,
                "           key type {}, renew {}",
                s.data.spec.key_type,
                s.data
                    .spec
                    .renew_before
                    .as_ref()
                    .map(|d| format!("{d} before expiry"))
                    .unwrap_or_else(|| "when 1/3 of the lifetime is left".into())
            );
        }
        None => {
            let _ = writeln!(
                text,
                "           none: an admin runs `certvault migrate` (renew skips it until then)"
            );
        }
    }
    let _ = writeln!(text, "  status   {}", ctx.store.display(Key::Status(name)));
    if let Err(e) = &status {
        let _ = writeln!(
            text,
            "           not valid ({}): the next renew or issue of {name} replaces it",
            crate::text::one_line(&e.to_string())
        );
    }
    if let Ok(Some(s)) = &status {
        let _ = writeln!(
            text,
            "           last attempt {} at {}, {} failure(s) in a row{}",
            crate::text::one_line(&s.data.last_result),
            rfc3339(s.data.last_attempt_at),
            s.data.failures,
            s.data
                .last_error
                .as_deref()
                .map(|e| format!(": {}", crate::text::one_line(e)))
                .unwrap_or_default()
        );
    }
    let lock = match lock {
        Ok(lock) => lock,
        Err(e) => {
            let _ = writeln!(
                text,
                "  lock     not valid ({}): the next run takes it over, or `certvault unlock {name}`",
                crate::text::one_line(&e.to_string())
            );
            None
        }
    };
    if let Some(l) = lock.filter(|l| lease_binds(l.data.expires_at, now)) {
        let _ = writeln!(
            text,
            "  locked   by {} until {}",
            crate::text::one_line(&l.data.holder),
            rfc3339(l.data.expires_at)
        );
    }
    Ok(Outcome {
        text,
        failed: false,
        ..Default::default()
    })
}

/// `certvault delete NAME --yes`: retire a certificate so that renew stops. The spec and
/// the record are deleted as KV versions (`vault kv undelete` brings them back; history is
/// kept); the status document goes too.
pub(super) async fn delete(ctx: &Context, name: &CertName, yes: bool) -> Result<Outcome, Error> {
    let cert = ctx.store.load_cert_for_write(name).await?;
    let spec = ctx.store.load_spec(name).await?;
    if cert.doc.is_none() && spec.doc.is_none() {
        return Err(Error::UnknownCerts {
            names: vec![name.clone()],
            path: ctx.store.display(Key::Certs),
        });
    }
    if !yes {
        return Err(Error::NeedsYes {
            what: format!(
                "delete {name} (renew stops; the record at {} and its spec at {} are deleted as KV versions, history kept)",
                ctx.store.display(Key::Cert(name)),
                ctx.store.display(Key::Spec(name))
            ),
        });
    }
    // The spec first: without it, renew no longer orders this certificate.
    ctx.store.delete(Key::Spec(name)).await?;
    ctx.store.delete(Key::Cert(name)).await?;
    ctx.store.delete(Key::Status(name)).await?;
    Ok(Outcome {
        text: format!(
            "deleted {name}: renew no longer renews it; the versions stay in KV history (`vault kv undelete`)\n"
        ),
        failed: false,
        ..Default::default()
    })
}
