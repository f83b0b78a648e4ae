//! `certvault renew`: load every record, decide, reissue exactly the due ones, write each
//! back with check-and-set. One failure never stops the others; the exit code says if any
//! failed, and a summary ends every run.

use time::OffsetDateTime;

use super::ari::{self, Accounts, Candidate, SystemDice};
use super::context::{Context, Outcome};
use super::gate::Gate;
use super::order::{act, Ordered};
use crate::ari::Dice;
use crate::index::Part;
use crate::model::{CertName, Spec};
use crate::records::CertRecord;
use crate::renew::{decide, Decision, Facts, Reason};
use crate::report::{CertResult, Report, Verdict};
use crate::store::{Entry, Key};
use crate::vault::Versioned;
use crate::{metrics, x509, Error};

/// What a `renew` run is asked to do (besides `--force` and the names).
#[derive(Debug, Clone, Default)]
pub struct RenewArgs {
    pub force: bool,
    /// Decide everything and fetch ARI, but order nothing and write nothing.
    pub dry_run: bool,
    /// At most this many orders, the most urgent first; the rest are `deferred`.
    pub max_orders: Option<usize>,
    /// A random delay of up to this long before the run starts.
    pub jitter: std::time::Duration,
    /// Timeouts or 5xx answers in a row after which a CA gets no new orders this run.
    pub ca_failures: u32,
}

pub(super) async fn run(
    ctx: &Context,
    args: &RenewArgs,
    names: Vec<CertName>,
    part: Part,
    now: fn() -> OffsetDateTime,
) -> Result<Report, Error> {
    // A wrong --prefix / --mount is an error naming the paths, not "0 renewed".
    ctx.store.ensure_in_use(&ctx.settings.account).await?;
    let (mut results, names, left) =
        select(ctx, names, args.force, part, args.dry_run, now()).await?;
    let mut dice = SystemDice::new();
    if !args.dry_run && !args.jitter.is_zero() {
        let millis = dice.below(args.jitter.as_millis() as u64 + 1);
        tracing::info!("waiting {millis} ms (--jitter) before the run starts");
        let mut shutdown = ctx.shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(millis)) => {},
            _ = shutdown.wait_for(|s| *s) => return Err(Error::Interrupted { signal: "SIGTERM/SIGINT" }),
        }
    }
    let started = now();
    let gate = Gate::new(args.ca_failures);
    let mut accounts = Accounts::default();
    results.extend(
        pass(
            ctx,
            args,
            names,
            &left,
            &gate,
            &mut accounts,
            &mut dice,
            now,
        )
        .await,
    );

    // A certificate skipped because another run's lease held it is looked at again once
    // that lease lapses (its holder renews it while it works, so a live run keeps it; a
    // dead one loses it within one lease).
    let lapse_by = now() + ctx.settings.lock_lease + time::Duration::seconds(5);
    let lapsing: Vec<(CertName, OffsetDateTime)> = results
        .iter()
        .filter_map(|r| Some((r.name.clone(), r.locked_until.filter(|t| *t <= lapse_by)?)))
        .collect();
    if let Some(last) = lapsing.iter().map(|(_, t)| *t).max() {
        let deadline = last + time::Duration::seconds(1);
        tracing::info!(
            certificates = lapsing.len(),
            "waiting up to {}s for lock leases of other runs to be released or lapse",
            (deadline - now()).max(time::Duration::ZERO).whole_seconds()
        );
        let names: Vec<CertName> = lapsing.iter().map(|(n, _)| n.clone()).collect();
        let stopped = wait_for_locks(ctx, &names, deadline, now).await;
        if !stopped {
            let again: Vec<CertName> = lapsing.into_iter().map(|(n, _)| n).collect();
            // What this run saw of each before waiting: a record another run wrote
            // meanwhile is that run's renewal, not ordered again (also with --force).
            let seen: std::collections::BTreeMap<CertName, Option<u64>> = results
                .iter()
                .filter(|r| again.contains(&r.name))
                .map(|r| (r.name.clone(), r.version))
                .collect();
            results.retain(|r| !again.contains(&r.name));
            let mut still = Vec::new();
            for name in again {
                let now_version = match ctx.store.load_cert_for_write(&name).await {
                    Ok(read) => match read.expect {
                        crate::vault::Expect::Version(v) => Some(v),
                        crate::vault::Expect::Absent => None,
                    },
                    Err(_) => {
                        still.push(name);
                        continue;
                    }
                };
                match seen.get(&name).copied().flatten() {
                    Some(before) if now_version.is_some_and(|v| v != before) => {
                        let mut r = CertResult::new(name, Verdict::Skipped);
                        r.reason = Some(
                            format!(
                                "renewed meanwhile by the run that held its lock (version {})",
                                now_version.unwrap_or_default()
                            )
                            .into(),
                        );
                        r.version = now_version;
                        results.push(r);
                    }
                    _ => still.push(name),
                }
            }
            let again = still;
            let mut args = args.clone();
            // The budget was spent on the first pass.
            let spent = results
                .iter()
                .filter(|r| r.verdict == Verdict::Renewed)
                .count();
            args.max_orders = args.max_orders.map(|m| m.saturating_sub(spent));
            results.extend(
                pass(
                    ctx,
                    &args,
                    again,
                    &left,
                    &gate,
                    &mut accounts,
                    &mut dice,
                    now,
                )
                .await,
            );
        }
    }
    let paused_failing = gate.any_failing();
    let mut report = Report::new(results, started, now());
    report.dry_run = args.dry_run;
    (report.totals.dns_left, report.totals.dns_cleared) = ctx.dns_tally.get();
    report.failed |= paused_failing;
    Ok(report)
}

/// Wait until no live lease of another run holds any of `names` (polled every 250 ms),
/// or `deadline`; `true` if SIGTERM/SIGINT came first.
async fn wait_for_locks(
    ctx: &Context,
    names: &[CertName],
    deadline: OffsetDateTime,
    now: fn() -> OffsetDateTime,
) -> bool {
    let mut shutdown = ctx.shutdown.clone();
    let mut pending: Vec<&CertName> = names.iter().collect();
    loop {
        let mut held = Vec::new();
        for n in pending {
            match ctx.store.load_lock(n).await {
                Ok(Some(l))
                    if l.data.run_id != ctx.run.id
                        && crate::store::lease_binds(l.data.expires_at, now()) =>
                {
                    held.push(n)
                }
                _ => {}
            }
        }
        pending = held;
        let left = deadline - now();
        if pending.is_empty() || left <= time::Duration::ZERO {
            return false;
        }
        let pause = left.min(time::Duration::milliseconds(250)).unsigned_abs();
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.wait_for(|s| *s) => return true,
        }
    }
}

/// Load, ask ARI, decide, budget, order: one pass over `names`. `left`: certificates whose
/// lock an earlier run left (see [`super::lease::left_locks`]).
#[allow(clippy::too_many_arguments)]
async fn pass(
    ctx: &Context,
    args: &RenewArgs,
    names: Vec<CertName>,
    left: &std::collections::BTreeSet<CertName>,
    gate: &Gate,
    accounts: &mut Accounts,
    dice: &mut SystemDice,
    now: fn() -> OffsetDateTime,
) -> Vec<CertResult> {
    let at = now();
    let mut results = Vec::new();
    let mut due = Vec::new();
    // A few hundred records at a time: memory holds only the due ones (a first run over a
    // large fleet without an index loads every record).
    for chunk in names.chunks(256) {
        let (loaded, mut candidates, leftovers) =
            load(ctx, chunk.to_vec(), left, (!args.dry_run).then_some(at)).await;
        results.extend(loaded);
        ari::refresh(ctx, &mut candidates, accounts, at, args.dry_run, dice).await;
        let (decided, more) = decide_all(candidates, args.force, at);
        results.extend(decided);
        // DNS-01 values earlier runs left: an order takes the lock and removes them; the
        // certificates not due are tidied here.
        if !args.dry_run {
            let ordering: std::collections::BTreeSet<&CertName> =
                more.iter().map(|d| &d.name).collect();
            let tidy: Vec<(CertName, Spec)> = leftovers
                .into_iter()
                .filter(|(n, _)| !ordering.contains(n))
                .collect();
            super::lease::tidy_all(ctx, tidy, now).await;
        }
        due.extend(more);
        if !args.dry_run && ctx.store.journal.len() >= crate::index::journal::FLUSH_AT {
            super::context::flush_index(ctx, now()).await;
        }
    }
    drop(names);
    // Most urgent first: expired (and revoked, unreadable, new) first, then the earliest
    // renewal point; the name breaks ties so runs agree.
    due.sort_by(|a, b| a.urgency.cmp(&b.urgency).then_with(|| a.name.cmp(&b.name)));
    if let Some(max) = args.max_orders {
        if due.len() > max {
            for d in due.split_off(max) {
                let mut r = CertResult::new(d.name, Verdict::Deferred);
                r.reason = Some(
                    format!("deferred: --max-orders {max} reached (due: {})", d.reason).into(),
                );
                r.renew_at = Some(d.urgency.1);
                r.not_after = Some(d.record.data.issued.not_after);
                r.version = Some(d.record.version);
                results.push(r);
            }
        }
    }
    // Each account's stored CA pause, read once (the plan shows it too).
    let mut loaded = std::collections::BTreeSet::new();
    for d in &due {
        if loaded.insert(d.spec.account.clone()) {
            gate.load(ctx, &d.spec.account, at).await;
        }
    }
    if args.dry_run {
        for d in due {
            let mut r = CertResult::new(d.name, Verdict::Due);
            if let Some(p) = gate.paused(&d.spec.account) {
                r.verdict = Verdict::Deferred;
                r.reason = Some(p.reason.into());
            } else {
                r.reason = Some(d.reason.to_string().into());
            }
            r.renew_at = Some(d.urgency.1);
            r.not_after = Some(d.record.data.issued.not_after);
            r.version = Some(d.record.version);
            results.push(r);
        }
        return results;
    }
    for d in &due {
        accounts.connect(ctx, &d.spec.account).await;
    }
    let due = due
        .into_iter()
        .map(|d| Ordered {
            name: d.name,
            record: d.record,
            spec: d.spec,
            reason: d.reason.to_string(),
        })
        .collect();
    results.extend(act(ctx, due, accounts, gate, now).await);
    results
}

/// The certificates a run loads, and the results of those the index says are not due.
/// With `--force` or NAMEs (all must exist) every selected record is loaded; otherwise the
/// index decides (see [`crate::index`]). `--shard` keeps the names of its part only.
async fn select(
    ctx: &Context,
    names: Vec<CertName>,
    force: bool,
    part: Part,
    dry_run: bool,
    now: OffsetDateTime,
) -> Result<Selected, Error> {
    // Locks earlier runs left: their certificates are read whatever the index says.
    let left: std::collections::BTreeSet<CertName> = if dry_run {
        Default::default()
    } else {
        super::lease::left_locks(ctx, &part, now)
            .await
            .into_iter()
            .collect()
    };
    if force || !names.is_empty() {
        let stored = ctx.store.list_certs().await?;
        let names = if names.is_empty() {
            stored
        } else {
            let unknown: Vec<CertName> = names
                .iter()
                .filter(|n| stored.binary_search(n).is_err())
                .cloned()
                .collect();
            if !unknown.is_empty() {
                return Err(Error::UnknownCerts {
                    names: unknown,
                    path: ctx.store.display(Key::Certs),
                });
            }
            names
        };
        let (mine, others): (Vec<CertName>, Vec<CertName>) =
            names.into_iter().partition(|n| part.contains(n.as_str()));
        if !others.is_empty() {
            tracing::info!(shard = %part, skipped = others.len(), "names outside this shard are left to the other shards");
        }
        let selected: std::collections::BTreeSet<&CertName> = mine.iter().collect();
        let left = left.into_iter().filter(|n| selected.contains(n)).collect();
        return Ok((Vec::new(), mine, left));
    }
    let buckets = ctx
        .store
        .names_by_shard(part, (!dry_run).then_some(now))
        .await?;
    // One result per certificate of the part, most of them settled by the index: sized
    // once, so a million results are never copied into a vector twice their size.
    let mut results = Vec::with_capacity(buckets.by_shard.values().map(Vec::len).sum());
    // A certificate with no renewal information yet is read while its CA offers ARI, so
    // its first query happens now (as without the index); with a CA without ARI, not.
    let ari = ari_capable(ctx).await;
    let ask_ari = |e: &crate::index::Entry| {
        e.ari.is_none()
            && e.due_now.is_none()
            && now.unix_timestamp() < e.not_after
            && ari.get(&e.account).copied().unwrap_or(true)
    };
    let needs_record = |e: &crate::index::Entry| e.due(now) || (!e.deleted && ask_ari(e));
    let scan = ctx
        .store
        .scan_index(&buckets, now, true, needs_record, |name, e| {
            results.push(settled(name, e))
        })
        .await?;
    drop(buckets);
    if !scan.unsettled.is_empty() {
        let stale: std::collections::BTreeSet<&CertName> = scan.unsettled.iter().collect();
        results.retain(|r| !stale.contains(&r.name));
    }
    // Only names the index knows (a left lock of a deleted certificate is the next
    // `index rebuild`'s or `delete`'s).
    let mut load = scan.load;
    let loading: std::collections::BTreeSet<&CertName> = load.iter().collect();
    let settled: std::collections::BTreeSet<&CertName> = results.iter().map(|r| &r.name).collect();
    let left: std::collections::BTreeSet<CertName> = left
        .into_iter()
        .filter(|n| settled.contains(n) || loading.contains(n))
        .collect();
    let more: Vec<CertName> = left
        .iter()
        .filter(|n| settled.contains(n))
        .cloned()
        .collect();
    drop((loading, settled));
    if !more.is_empty() {
        results.retain(|r| !left.contains(&r.name));
        load.extend(more);
    }
    tracing::debug!(
        not_due = results.len(),
        due = scan.due,
        missing = scan.missing,
        stale = scan.stale,
        "read the renewal index"
    );
    Ok((results, load, left))
}

/// What a run loads: the results the index settled, the names to load, and those among
/// them whose lock an earlier run left.
type Selected = (
    Vec<CertResult>,
    Vec<CertName>,
    std::collections::BTreeSet<CertName>,
);

/// Whether the CA of the run's account offers ARI (its directory has `renewalInfo`), by
/// account name. Another account is not probed (its certificates without renewal
/// information are read). A CA that cannot be reached counts as without ARI.
async fn ari_capable(ctx: &Context) -> std::collections::BTreeMap<String, bool> {
    let name = ctx.settings.account.clone();
    let probe = async {
        let record = ctx.account_record(&name).await.ok()?;
        let http = ctx.http().ok()?;
        let rsp = http.get(&record.directory).send().await.ok()?;
        let dir: serde_json::Value = rsp.json().await.ok()?;
        Some(dir.get("renewalInfo").is_some())
    };
    let offers = probe.await.unwrap_or(false);
    tracing::debug!(account = %name, ari = offers, "probed the CA's directory for ARI");
    std::iter::once((name, offers)).collect()
}

/// The result of a certificate the index says needs nothing this run.
pub(super) fn settled(name: &CertName, e: &crate::index::Entry) -> CertResult {
    if e.deleted {
        return CertResult::new(name.clone(), Verdict::Deleted);
    }
    let at = |t: i64| OffsetDateTime::from_unix_timestamp(t).ok();
    let mut r = CertResult::new(name.clone(), Verdict::NotDue);
    let schedule = e.schedule();
    r.reason = Some(schedule.basis.text());
    r.renew_at = Some(schedule.renew_at);
    r.not_after = at(e.not_after);
    r.version = Some(e.version);
    r
}

/// One certificate to order: its record, its trusted spec, why, and how urgent.
struct Due {
    name: CertName,
    record: Versioned<CertRecord>,
    spec: Spec,
    reason: Reason,
    /// (0: expired, revoked, unreadable or new; 1: otherwise) and the renewal point.
    urgency: (u8, OffsetDateTime),
}

/// Load each certificate with its trusted spec: the results for those that cannot be
/// renewed, and the candidates.
/// The certificates loaded, and those whose status says DNS-01 values were left in DNS.
type Loaded = (Vec<CertResult>, Vec<Candidate>, Vec<(CertName, Spec)>);

/// `left`: certificates whose lock an earlier run left: they are tidied (the lock taken
/// and released, its DNS-01 values removed) like those whose status counts leftovers.
/// With `reconcile` (not a dry run), a status that names another certificate than the
/// record (a run stored it and died, or lost Vault, before writing the status) is
/// written again from the record.
async fn load(
    ctx: &Context,
    names: Vec<CertName>,
    left: &std::collections::BTreeSet<CertName>,
    reconcile: Option<OffsetDateTime>,
) -> Loaded {
    let mut results: Vec<CertResult> = Vec::new();
    let mut candidates = Vec::new();
    let mut leftovers = Vec::new();
    for (name, loaded) in ctx.store.load_entries(names).await {
        let (record, spec) = match loaded {
            Ok(Some(Entry {
                mut cert,
                spec: Some(spec),
                status,
            })) => {
                // When to ask the CA again may be newer in the status document.
                if let Some(ari) = cert.data.facts.ari.as_ref() {
                    let merged = ari.with_timing_of(status.as_ref().and_then(|s| s.ari.as_ref()));
                    cert.data.facts.ari = Some(merged);
                }
                if status.as_ref().is_some_and(|s| s.dns_leftovers > 0) || left.contains(&name) {
                    leftovers.push((name.clone(), spec.data.spec.clone()));
                }
                if let (Some(at), Some(s)) = (reconcile, &status) {
                    if s.serial != cert.data.issued.serial {
                        tracing::warn!(cert = %name, status = %s.serial, record = %cert.data.issued.serial, "the status names another certificate than the record (an earlier run stored it and could not write the status): written again from the record");
                        let stored = super::status::Attempt::Stored {
                            issued: &cert.data.issued,
                            version: cert.version,
                        };
                        super::status::record(ctx, &name, stored, at).await;
                    }
                }
                (cert, spec.data.spec)
            }
            Ok(Some(Entry {
                spec: None, cert, ..
            })) => {
                // Written before specs moved to their own admin-only documents: the spec
                // in the record may have been changed by a renew token, so it is not used.
                let path = ctx.store.display(Key::Spec(&name));
                let mut r = CertResult::failed(
                    name.clone(),
                    Error::NotMigrated {
                        name: name.clone(),
                        path,
                    },
                );
                r.not_after = Some(cert.data.issued.not_after);
                r.version = Some(cert.version);
                results.push(r);
                continue;
            }
            Ok(None) => {
                // Listed but its latest version is deleted: nothing to renew.
                results.push(CertResult::new(name, Verdict::Deleted));
                continue;
            }
            Err(e) => {
                results.push(CertResult::failed(name, Error::from(e)));
                continue;
            }
        };
        let issued = &record.data.issued;
        let inspection = x509::inspect(&issued.cert, &issued.chain, issued.privkey.expose());
        if let Some(damage) = &inspection.damage {
            tracing::warn!(cert = %name, "stored record damaged, reissuing: {damage}");
        }
        let current = inspection.current;
        let damage = inspection.damage;
        if let (Some(c), Some(before)) = (&current, &spec.renew_before) {
            if !crate::renew::renew_before_fits(c, before) {
                tracing::warn!(cert = %name, "renew_before {before} is not shorter than the certificate's lifetime: the default rule applies; change it with `certvault issue`");
            }
        }
        candidates.push(Candidate {
            name,
            record,
            spec,
            current,
            damage,
        });
    }
    (results, candidates, leftovers)
}

/// Decide each candidate: the results of those not due, and the ones to order.
fn decide_all(
    candidates: Vec<Candidate>,
    force: bool,
    now: OffsetDateTime,
) -> (Vec<CertResult>, Vec<Due>) {
    let mut results = Vec::new();
    let mut due = Vec::new();
    for c in candidates {
        let Candidate {
            name,
            record,
            spec,
            current,
            damage,
        } = c;
        let facts = Facts {
            wanted: &spec,
            current: current.as_ref(),
            damage: damage.as_deref(),
            force,
            ari: record.data.facts.ari.as_ref(),
            revoked_at: record.data.facts.revoked_at,
        };
        match decide(now, &facts) {
            Decision::Keep { renew_at, basis } => {
                let mut r = CertResult::new(name, Verdict::NotDue);
                r.reason = Some(basis.text());
                r.renew_at = Some(renew_at);
                r.not_after = current.map(|c| c.not_after);
                r.version = Some(record.version);
                results.push(r);
            }
            Decision::Renew(reason) => {
                let urgency = match &reason {
                    Reason::Expired { not_after } => (0, *not_after),
                    Reason::Revoked { at } => (0, *at),
                    Reason::NotIssued | Reason::Damaged(_) => (0, now),
                    Reason::Due { renew_at, .. } => (1, *renew_at),
                    _ => (1, now),
                };
                due.push(Due {
                    name,
                    record,
                    spec,
                    reason,
                    urgency,
                })
            }
        }
    }
    (results, due)
}

/// Print the report (text or JSON) and write the metrics the user asked for. A metrics
/// output that fails is reported and makes the exit code 1; the renewals stand.
pub(super) async fn publish(
    ctx: &Context,
    report: Report,
    json: bool,
    sinks: &metrics::Sinks,
    notify: &crate::notify::Notify,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    let mut failed = report.failed;
    if !notify.targets.is_empty() {
        match ctx.http() {
            Ok(http) => {
                for e in crate::notify::send(&http, notify, &report, now).await {
                    tracing::error!("{}", crate::text::chain(&e));
                    failed = true;
                }
            }
            Err(e) => {
                tracing::error!("cannot send notifications: {}", crate::text::chain(&e));
                failed = true;
            }
        }
    }
    if !sinks.is_empty() {
        let end = now.unix_timestamp_nanos() as f64 / 1e9;
        let success = !report.failed;
        let mut errors = Vec::new();
        if let Some(path) = &sinks.file {
            let last = if success {
                Some(end)
            } else {
                metrics::previous_last_success(path)
            };
            if let Err(e) = metrics::write_file(path, &metrics::exposition(&report, end, last)) {
                errors.push(e);
            }
        }
        if let Some(url) = &sinks.pushgateway {
            let text = metrics::exposition(&report, end, success.then_some(end));
            // A client that cannot be built fails the push only, never the run's report.
            match ctx.http() {
                Ok(http) => {
                    let url = metrics::push_url(url, report.shard);
                    if let Err(e) = metrics::push(&http, &url, text, success).await {
                        errors.push(e);
                    }
                }
                Err(e) => {
                    tracing::error!("cannot push metrics: {}", crate::text::chain(&e));
                    failed = true;
                }
            }
        }
        for e in errors {
            tracing::error!("{e}");
            failed = true;
        }
    }
    // Written when printed, a line at a time: a report of a million is never held whole.
    let quiet = ctx.settings.quiet;
    Ok(Outcome::streamed(failed, move |out| {
        if json {
            report.write_json(out)
        } else {
            report.write_lines(out, now, quiet)
        }
    }))
}
