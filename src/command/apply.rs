//! Make a certificate what its spec says: the one step `issue` and `edit` both end in
//! (store the spec, keep an up-to-date certificate, or order a new one).

use time::OffsetDateTime;

use super::context::{Context, Outcome};
use super::obtain::{kept_key, obtain_and_save, Order, Stored};
use crate::model::{CertName, LayoutFields, Spec, SCHEMA_VERSION};
use crate::records::SpecRecord;
use crate::renew::{decide, renew_before_fits, rfc3339, Decision, Facts};
use crate::store::Key;
use crate::text::relative;
use crate::vault::Expect;
use crate::{acme, x509, Error};

/// The most names one certificate may have (Let's Encrypt's limit; most CAs have one).
const MAX_NAMES: usize = 100;

/// Make `name` what `spec` says: keep an up-to-date certificate, store changed settings
/// without reissuing, or order a new certificate (names or key type changed, due, forced).
/// `issue` and `edit` both end here.
pub(super) async fn apply(
    ctx: &Context,
    name: &CertName,
    mut spec: Spec,
    force: bool,
    now: fn() -> OffsetDateTime,
) -> Result<Outcome, Error> {
    let mut domains = Vec::new();
    for d in std::mem::take(&mut spec.domains) {
        if !domains.contains(&d) {
            domains.push(d);
        }
    }
    if domains.is_empty() {
        return Err(Error::NoDomains);
    }
    if domains.len() > MAX_NAMES {
        return Err(Error::TooManyNames {
            count: domains.len(),
            max: MAX_NAMES,
        });
    }
    spec.domains = domains;
    let path = ctx.store.display(Key::Cert(name));
    // Fail on a missing account before anything else happens (read once, used below).
    let account_record = ctx.account_record(&spec.account).await?;
    // Every stored solver the spec names must exist before anything is ordered.
    let solvers = ctx.load_solvers(spec.dns.solver_names()).await;
    if let Some((solver, e)) = solvers.broken.iter().next() {
        return Err(Error::Dns(crate::dns::Solvers::unreadable(solver, e)));
    }
    for solver in spec.dns.solver_names() {
        if !solvers.configs.contains_key(&solver) {
            return Err(Error::Dns(crate::dns::Error::UnknownSolver {
                path: format!("{}{solver}", solvers.folder),
                solver,
            }));
        }
    }
    // A profile must be one the CA offers (its directory's `meta.profiles`): checked before
    // anything is stored or ordered.
    let http = ctx.http()?;
    let mut connected = None;
    if let Some(profile) = &spec.profile {
        let (account, directory) = super::context::connect(&http, account_record.clone()).await?;
        let offered = crate::ca::profiles(&account);
        if !offered.contains(profile) {
            return Err(Error::UnknownProfile {
                profile: profile.clone(),
                directory,
                offered,
            });
        }
        connected = Some((account, directory));
    }
    let read = ctx.store.load_cert_for_write(name).await?;
    let spec_read = ctx.store.load_spec(name).await?;
    let spec_stored = spec_read.doc.as_ref().map(|d| &d.data.spec) == Some(&spec);
    let existing = read.doc;
    let extra = existing
        .as_ref()
        .map(|d| d.data.extra.clone())
        .unwrap_or_default();
    let expect = match &existing {
        None => read.expect,
        Some(stored) => {
            let issued = &stored.data.issued;
            let inspected = x509::inspect(&issued.cert, &issued.chain, issued.privkey.expose());
            let current = inspected.current;
            // A renew_before the certificate's lifetime cannot satisfy is refused up front.
            if let (Some(c), Some(before)) = (&current, &spec.renew_before) {
                if !renew_before_fits(c, before) {
                    return Err(Error::RenewBeforeTooLong {
                        renew_before: before.to_string(),
                        lifetime: lifetime(c),
                        stored: None,
                    });
                }
            }
            let decision = decide(
                now(),
                &Facts {
                    wanted: &spec,
                    current: current.as_ref(),
                    damage: inspected.damage.as_deref(),
                    force,
                    ari: stored.data.facts.ari.as_ref(),
                    revoked_at: stored.data.facts.revoked_at,
                },
            );
            if let Decision::Keep { renew_at, basis } = decision {
                let when = format!(
                    "renews {} ({}; {basis})",
                    rfc3339(renew_at),
                    relative(now(), renew_at)
                );
                if stored.data.spec == spec && spec_stored {
                    return Ok(Outcome {
                        text: format!(
                            "{name} is up to date at {path}: {when}; use --force to reissue now\n"
                        ),
                        failed: false,
                        ..Default::default()
                    });
                }
                // Same names and key: keep the certificate, store the new settings (the
                // admin-only spec first: it is what renew uses).
                if !spec_stored {
                    save_spec(ctx, name, &spec, spec_read.expect).await?;
                }
                let mut record = stored.data.clone();
                record.layout = LayoutFields::new(&spec.layouts, &record.issued);
                record.spec = spec;
                let version = ctx
                    .store
                    .save_cert(name, &record, Expect::Version(stored.version))
                    .await?;
                return Ok(Outcome {
                    text: format!("{name}: settings updated at {path} (version {version}); certificate kept, {when}\n"),
                    failed: false,
                    ..Default::default()
                });
            }
            Expect::Version(stored.version)
        }
    };
    let (account, directory) = match connected {
        Some(c) => c,
        None => super::context::connect(&http, account_record).await?,
    };
    let key = existing.as_ref().and_then(|d| kept_key(&d.data, &spec));
    let order = Order {
        name: name.clone(),
        spec: spec.clone(),
        expect,
        extra,
        facts: crate::records::CaFacts {
            ordered_by: Some(account.id().to_string()),
            ..Default::default()
        },
        options: acme::OrderOptions {
            replaces: None,
            key,
        },
    };
    let Stored {
        version,
        record,
        deploy,
    } = obtain_and_save(ctx, &solvers, &account, &directory, order, now).await?;
    // A new certificate's lifetime is known only now: an unsatisfiable renew_before is
    // refused, and the spec is stored with the default rule (the certificate stays).
    let mut spec = spec;
    let mut refused = None;
    if let (Ok(c), Some(before)) = (x509::current(&record.issued.cert), &spec.renew_before) {
        if !renew_before_fits(&c, before) {
            refused = Some(Error::RenewBeforeTooLong {
                renew_before: before.to_string(),
                lifetime: lifetime(&c),
                stored: Some(path.clone()),
            });
            spec.renew_before = None;
        }
    }
    // The certificate is stored; now the spec renew will use (unless it is already there).
    if !spec_stored || refused.is_some() {
        save_spec(ctx, name, &spec, spec_read.expect)
            .await
            .map_err(|e| Error::SpecNotSaved {
                name: name.clone(),
                path: ctx.store.display(Key::Spec(name)),
                source: Box::new(e),
            })?;
    }
    if let Some(e) = refused {
        return Err(e);
    }
    // The CA's renewal window (ARI), asked once now so `list` shows it at once.
    let not_after = record.issued.not_after;
    let serial = record.issued.serial.clone();
    let domains = record.spec.domains.clone();
    let mut accounts = super::ari::Accounts::with(&spec.account, account, directory);
    let (version, ari) =
        super::ari::first_window(ctx, name, &spec, record, version, &mut accounts, now()).await;
    let mut text = format!(
        "issued {name}: {}\n  not after {} (serial {})\n  stored at {path} (version {version})\n",
        domains
            .iter()
            .map(|d| d.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        rfc3339(not_after),
        serial,
    );
    if let Some(at) = ari.as_ref().and_then(|a| a.chosen_at) {
        text.push_str(&format!(
            "  renews at {} (inside the CA's renewal window, ARI)\n",
            rfc3339(at)
        ));
    }
    if let Err(e) = &deploy {
        text.push_str(&format!("  FAILED: {e}\n"));
    }
    Ok(Outcome {
        text,
        failed: deploy.is_err(),
        ..Default::default()
    })
}

/// A certificate's lifetime, in whole days (or hours when under two days).
fn lifetime(c: &crate::renew::Current) -> String {
    let d = c.not_after - c.not_before;
    if d >= time::Duration::days(2) {
        format!("{}d", d.whole_days())
    } else {
        format!("{}h", d.whole_hours())
    }
}

/// Write the admin-only spec of `name` with check-and-set.
async fn save_spec(
    ctx: &Context,
    name: &CertName,
    spec: &Spec,
    expect: Expect,
) -> Result<u64, Error> {
    let record = SpecRecord {
        schema: SCHEMA_VERSION,
        spec: spec.clone(),
    };
    Ok(ctx.store.save_spec(name, &record, expect).await?)
}
