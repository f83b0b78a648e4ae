//! What every command works with: the Vault store, the settings, the run's identity and
//! its HTTP client ([`Context`]), what a command printed ([`Outcome`]), the stored solvers
//! loaded for a run, and writing what the run noted for the renewal index.

use std::collections::BTreeMap;
use std::fmt;

use time::OffsetDateTime;

use super::run_id::RunId;
use crate::policy::{self, Layout, Work};
use crate::store::{Key, Store};
use crate::vault::Kv;
use crate::{acme, Error, Settings};

/// What a command printed and whether it fully succeeded.
#[derive(Debug, Default)]
pub struct Outcome {
    pub text: String,
    /// A partial failure (some certificates failed): exit non-zero after printing.
    pub failed: bool,
    /// Output too large to build whole (`list` over a large fleet): written after `text`.
    pub stream: Option<Stream>,
}

/// Writes output straight to its destination.
type WriteOut = dyn FnOnce(&mut dyn std::io::Write) -> std::io::Result<()> + Send;

/// Output written straight to its destination.
pub struct Stream(Box<WriteOut>);

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Stream")
    }
}

impl Outcome {
    /// An outcome whose output `write` produces when it is printed.
    pub fn streamed(
        failed: bool,
        write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()> + Send + 'static,
    ) -> Self {
        Outcome {
            text: String::new(),
            failed,
            stream: Some(Stream(Box::new(write))),
        }
    }

    /// Write the whole output to `out`.
    pub fn write_to(self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        out.write_all(self.text.as_bytes())?;
        match self.stream {
            Some(Stream(write)) => write(out),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Outcome {
    /// The text only: a streamed outcome is printed with [`Outcome::write_to`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What every command works with.
pub(crate) struct Context {
    pub store: Store,
    pub settings: Settings,
    /// Becomes `true` on SIGTERM/SIGINT.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Who this run is, as recorded in the locks it holds.
    pub run: RunId,
    /// DNS-01 values this run left in DNS, and values earlier runs left that it removed.
    pub dns_tally: DnsTally,
    http: std::sync::OnceLock<reqwest::Client>,
}

/// Counts of DNS-01 values left in DNS (for the summary and metrics).
#[derive(Debug, Default)]
pub(crate) struct DnsTally {
    /// Left in DNS by this run (listed in the released locks for the next run).
    pub left: std::sync::atomic::AtomicUsize,
    /// Left by earlier runs and removed (or found not to be the certificate's) by this one.
    pub cleared: std::sync::atomic::AtomicUsize,
}

impl DnsTally {
    pub fn add_left(&self, n: usize) {
        self.left.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
    pub fn add_cleared(&self, n: usize) {
        self.cleared
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
    /// (left, cleared)
    pub fn get(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.left.load(Relaxed), self.cleared.load(Relaxed))
    }
}

/// Stored DNS solver configurations loaded for a run, and the ones that failed to load.
#[derive(Default)]
pub(crate) struct LoadedSolvers {
    pub configs: BTreeMap<String, crate::dns::Config>,
    /// Solvers whose configuration could not be read: the read error, printed.
    pub broken: BTreeMap<String, String>,
    pub folder: String,
}

impl LoadedSolvers {
    /// The solvers as a DNS-01 session uses them, with the run's DNS settings and client;
    /// `presented` is told what an order presents (for the lock lease).
    pub(crate) fn for_orders<'a>(
        &'a self,
        ctx: &'a Context,
        http: &'a reqwest::Client,
        presented: Option<tokio::sync::watch::Sender<Vec<crate::dns::Leftover>>>,
    ) -> crate::dns::Solvers<'a> {
        crate::dns::Solvers {
            settings: &ctx.settings.dns,
            http,
            configs: &self.configs,
            broken: &self.broken,
            folder: self.folder.clone(),
            presented,
        }
    }
}

impl Context {
    pub(super) async fn connect(
        settings: Settings,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<Self, Error> {
        if crate::store::clean_prefix(&settings.prefix).is_none() {
            // Before logging in: a bad setting must not cost a token.
            return Err(crate::store::Error::BadPrefix(settings.prefix.clone()).into());
        }
        let kv = Kv::connect(&settings.vault)
            .await
            .map_err(crate::store::Error::from)?;
        let store = match Store::new(kv, &settings.prefix) {
            Ok(s) => s.with_index_grow_above(settings.index_grow_above),
            Err(e) => return Err(e.into()),
        };
        Ok(Self {
            store,
            settings,
            shutdown,
            run: RunId::new(),
            dns_tally: DnsTally::default(),
            http: std::sync::OnceLock::new(),
        })
    }

    /// Stop before doing anything if the token lacks a capability `work` needs.
    pub(super) async fn check(&self, command: &'static str, work: Work<'_>) -> Result<(), Error> {
        let missing = self.missing(work).await?;
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::MissingCapabilities { command, missing })
        }
    }

    /// The capabilities `work` needs that the token lacks.
    pub(super) async fn missing(&self, work: Work<'_>) -> Result<Vec<policy::Need>, Error> {
        let layout = Layout {
            version: self.store.kv().version(),
            mount: self.store.kv().mount(),
            prefix: self.store.prefix(),
        };
        let needs = policy::needs(work, &layout);
        let have = self
            .store
            .kv()
            .capabilities(&policy::paths(&needs))
            .await
            .map_err(crate::store::Error::from)?;
        Ok(policy::missing(needs, &have))
    }

    /// Load each named solver once (a missing one is simply absent).
    pub(super) async fn load_solvers(
        &self,
        names: impl IntoIterator<Item = String>,
    ) -> LoadedSolvers {
        let mut out = LoadedSolvers {
            folder: self.store.display(Key::Solvers) + "/",
            ..Default::default()
        };
        for name in names {
            if out.configs.contains_key(&name) || out.broken.contains_key(&name) {
                continue;
            }
            match self.store.load_solver(&name).await {
                Ok(Some(r)) => {
                    out.configs.insert(name, r.data.config);
                }
                Ok(None) => {}
                Err(e) => {
                    out.broken.insert(name, crate::text::chain(&e));
                }
            }
        }
        out
    }

    /// The run's one HTTP client (ACME and DNS APIs share its connection pool).
    pub(super) fn http(&self) -> Result<reqwest::Client, Error> {
        if let Some(c) = self.http.get() {
            return Ok(c.clone());
        }
        let client = acme::http_client(self.settings.acme_ca_cert.as_deref())?;
        Ok(self.http.get_or_init(|| client).clone())
    }

    /// The stored ACME account `name`, or the error that says to run `init`.
    pub(super) async fn account_record(
        &self,
        name: &str,
    ) -> Result<crate::records::AccountRecord, Error> {
        Ok(self
            .store
            .load_account(name)
            .await?
            .ok_or_else(|| Error::NoAccount {
                path: self.store.display(Key::Account(name)),
            })?
            .data)
    }

    /// Load an ACME account from Vault and reach its CA.
    pub(super) async fn account(
        &self,
        http: &reqwest::Client,
        name: &str,
    ) -> Result<(instant_acme::Account, String), Error> {
        connect(http, self.account_record(name).await?).await
    }
}

/// Reach the CA of a stored account: (account, directory URL).
pub(super) async fn connect(
    http: &reqwest::Client,
    record: crate::records::AccountRecord,
) -> Result<(instant_acme::Account, String), Error> {
    let account = acme::account(http, &record.directory, record.credentials).await?;
    Ok((account, record.directory))
}

/// After a command that changes certificates: write what it noted for the renewal index,
/// or drop it after a dry run (which writes nothing, not the index either).
pub(super) async fn settle_index(ctx: &Context, dry_run: bool, now: OffsetDateTime) {
    if dry_run {
        ctx.store.journal.discard();
    } else {
        flush_index(ctx, now).await;
    }
}

/// Write what this run learned to the index. The index is a cache of the records: a write
/// that fails is logged, and a later run repairs what it missed.
pub(super) async fn flush_index(ctx: &Context, now: OffsetDateTime) {
    match ctx.store.flush_index(now).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(documents = n, "updated the renewal index"),
        Err(e) => tracing::warn!(
            "could not update the renewal index (the next run repairs it): {}",
            crate::text::chain(&e)
        ),
    }
}
