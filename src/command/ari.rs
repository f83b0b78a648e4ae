//! The ARI step of `renew`: for each certificate whose Retry-After (or backoff) has passed,
//! ask its CA for the renewal window (RFC 9773) and keep what changed in `certs/<NAME>`
//! (check-and-set) and the key-free `status/<NAME>`. A CA without `renewalInfo` is left to
//! the lifetime rule, silently; a failed fetch is recorded and never blocks a renewal.

use std::collections::BTreeMap;

use futures::StreamExt;
use time::OffsetDateTime;

use super::context::Context;
use crate::ari::{self, AriState, Dice};
use crate::ca::{self, FetchError};
use crate::model::{CertName, Spec};
use crate::records::CertRecord;
use crate::renew::Current;
use crate::report::CertError;
use crate::vault::{Expect, Versioned};

/// A certificate `renew` looks at: its record, its trusted spec and what it is.
pub(super) struct Candidate {
    pub name: CertName,
    pub record: Versioned<CertRecord>,
    pub spec: Spec,
    pub current: Option<Current>,
    /// What is wrong with the stored record (reissued), if anything.
    pub damage: Option<String>,
}

/// A connected ACME account, shared by the ARI step and the orders of one run.
pub(super) struct Connected {
    pub account: instant_acme::Account,
    pub directory: String,
    pub hint: crate::acme::RetryHint,
}

/// The accounts of a run, connected on first use (`Err`: why not; every certificate of the
/// account fails with it).
#[derive(Default)]
pub(super) struct Accounts(pub BTreeMap<String, Result<Connected, CertError>>);

impl Accounts {
    /// An account the command has connected already (`issue`), so it is not connected again.
    pub fn with(name: &str, account: instant_acme::Account, directory: String) -> Self {
        let connected = Connected {
            account,
            directory,
            hint: crate::acme::RetryHint::default(),
        };
        Self(std::iter::once((name.to_string(), Ok(connected))).collect())
    }

    /// Whether account `name` is connected, or could not be (it is not stored, its CA is
    /// down): known after [`Accounts::connect`].
    pub fn usable(&self, name: &str) -> bool {
        matches!(self.0.get(name), Some(Ok(_)))
    }

    pub async fn connect(&mut self, ctx: &Context, name: &str) {
        if self.0.contains_key(name) {
            return;
        }
        let connected = async {
            let http = ctx.http()?;
            let record = ctx.account_record(name).await?;
            let hint = crate::acme::RetryHint::default();
            let account = crate::acme::account_hinted(
                &http,
                &record.directory,
                record.credentials,
                hint.clone(),
            )
            .await?;
            Ok::<_, crate::Error>(Connected {
                account,
                directory: record.directory,
                hint,
            })
        }
        .await
        .map_err(CertError::from);
        self.0.insert(name.to_string(), connected);
    }
}

/// Picks times inside ARI windows and the jitter from the one random source.
pub(super) struct SystemDice;

impl SystemDice {
    pub fn new() -> Self {
        Self
    }
}

impl Dice for SystemDice {
    fn below(&mut self, n: u64) -> u64 {
        crate::random::below(n.max(1))
    }
}

/// Fetch the renewal information that is due and keep what changed. With `dry_run` the CA
/// is asked (a GET, no order) but nothing is written.
pub(super) async fn refresh(
    ctx: &Context,
    candidates: &mut [Candidate],
    accounts: &mut Accounts,
    now: OffsetDateTime,
    dry_run: bool,
    dice: &mut dyn Dice,
) {
    // Which certificates may be asked about now (Retry-After and backoff honoured).
    let asks: Vec<(usize, String)> = candidates
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let current = c.current.as_ref()?;
            let issued = &c.record.data.issued;
            let ari = c.record.data.facts.ari.as_ref();
            ari::fetch_due(now, ari, &issued.serial, current.not_after)
                .then(|| ca::cert_id(&issued.cert).map(|id| (i, id)))
                .flatten()
        })
        .collect();
    if asks.is_empty() {
        return;
    }
    for i in asks.iter().map(|(i, _)| *i) {
        let account = candidates[i].spec.account.clone();
        accounts.connect(ctx, &account).await;
    }
    let accounts = &*accounts;
    let fetched: Vec<(usize, Result<ca::Suggested, FetchError>)> = futures::stream::iter(asks)
        .map(|(i, id)| {
            let account = accounts.0.get(&candidates[i].spec.account);
            async move {
                let r = match account {
                    Some(Ok(c)) => ca::renewal_info(&c.account, &id).await,
                    Some(Err(e)) => {
                        tracing::warn!("no renewal information: the CA could not be reached ({e}); the lifetime rule applies");
                        Err(FetchError::Unsupported)
                    }
                    None => Err(FetchError::Unsupported),
                };
                (i, r)
            }
        })
        .buffer_unordered(ctx.settings.concurrency.max(1))
        .collect()
        .await;
    let mut changed = Vec::new();
    let mut timing = Vec::new();
    for (i, result) in fetched {
        let c = &mut candidates[i];
        let serial = c.record.data.issued.serial.clone();
        let previous = c.record.data.facts.ari.as_ref();
        let next = match result {
            Ok(s) => ari::fetched(
                now,
                previous,
                &serial,
                s.start,
                s.end,
                s.explanation_url,
                s.retry_after,
                dice,
            ),
            Err(FetchError::Unsupported) => continue,
            Err(FetchError::Temporary(e)) => {
                tracing::warn!(cert = %c.name, "renewal information failed (retried with backoff): {e}");
                ari::failed(now, previous, &serial, &e.to_string(), false)
            }
            Err(FetchError::LongTerm(e)) => {
                tracing::warn!(cert = %c.name, "renewal information failed (retried in 6 h): {e}");
                ari::failed(now, previous, &serial, &e.to_string(), true)
            }
        };
        match previous {
            Some(p) if *p == next => {}
            // Only when to ask again changed: the status document keeps it (the record
            // keeps the window), unless there is no status document to keep it in.
            Some(p) if p.same_window(&next) => {
                c.record.data.facts.ari = Some(next);
                timing.push(i);
            }
            _ => {
                c.record.data.facts.ari = Some(next);
                changed.push(i);
            }
        }
    }
    if dry_run {
        return;
    }
    let kept: Vec<Option<usize>> = futures::stream::iter(timing)
        .map(|i| {
            let c = &candidates[i];
            async move {
                let ari = c.record.data.facts.ari.as_ref();
                (!status_ari(ctx, &c.name, ari, c.record.version).await).then_some(i)
            }
        })
        .buffer_unordered(ctx.settings.concurrency.max(1))
        .collect()
        .await;
    changed.extend(kept.into_iter().flatten());
    if changed.is_empty() {
        return;
    }
    let writes: Vec<(usize, Option<u64>)> = futures::stream::iter(changed)
        .map(|i| {
            let c = &candidates[i];
            async move { (i, save(ctx, &c.name, &c.record).await) }
        })
        .buffer_unordered(ctx.settings.concurrency.max(1))
        .collect()
        .await;
    for (i, version) in writes {
        if let Some(v) = version {
            candidates[i].record.version = v;
        }
    }
}

/// `issue` and `import`: ask the CA for the renewal window of a certificate just stored, so
/// `list` shows the ARI renewal point from the first minute (a CA without `renewalInfo`:
/// nothing happens, the lifetime rule applies). The record's version afterwards (a new one
/// when the window was kept) and the ARI state.
pub(super) async fn first_window(
    ctx: &Context,
    name: &CertName,
    spec: &Spec,
    record: CertRecord,
    version: u64,
    accounts: &mut Accounts,
    now: OffsetDateTime,
) -> (u64, Option<AriState>) {
    let current = crate::x509::current(&record.issued.cert).ok();
    let mut candidates = [Candidate {
        name: name.clone(),
        record: Versioned {
            data: record,
            version,
            written_at: None,
        },
        spec: spec.clone(),
        current,
        damage: None,
    }];
    refresh(
        ctx,
        &mut candidates,
        accounts,
        now,
        false,
        &mut SystemDice::new(),
    )
    .await;
    let [c] = candidates;
    (c.record.version, c.record.data.facts.ari)
}

/// Write the new ARI facts on top of the version read; the new version, or `None` when
/// another writer came first (the next run fetches again).
async fn save(ctx: &Context, name: &CertName, record: &Versioned<CertRecord>) -> Option<u64> {
    let written = ctx
        .store
        .save_cert(name, &record.data, Expect::Version(record.version))
        .await;
    match written {
        Ok(v) => {
            status_ari(ctx, name, record.data.facts.ari.as_ref(), v).await;
            Some(v)
        }
        Err(e) => {
            tracing::warn!(cert = %name, "could not keep the renewal information: {}", crate::text::chain(&e));
            None
        }
    }
}

/// Mirror the ARI facts into the status document (for monitors), if there is one; whether
/// it was written.
async fn status_ari(ctx: &Context, name: &CertName, ari: Option<&AriState>, version: u64) -> bool {
    let Ok(read) = ctx.store.load_status(name).await else {
        return false;
    };
    let Some(doc) = read.doc else { return false };
    let mut status = doc.data;
    status.ari = ari.cloned();
    status.cert_version = version;
    match ctx.store.save_status(name, &status, read.expect).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(cert = %name, "could not write the status document: {}", crate::text::chain(&e));
            false
        }
    }
}
