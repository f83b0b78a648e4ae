//! `certvault edit NAME --renew-before 30d …`: change one setting of a certificate without
//! retyping the whole `issue` line. The same rules as `issue` decide whether the change
//! reissues (names, key type) or is only stored (renewal, hooks, solvers).

use time::OffsetDateTime;

use super::apply::apply;
use super::context::{Context, Outcome};
use crate::model::{CertName, DomainName, HumanDuration, KeyType, SolverSpec};
use crate::store::Key;
use crate::Error;

/// The settings to change; `None` keeps the stored one.
#[derive(Debug, Default)]
pub struct SpecChanges {
    pub renew_before: Option<Option<HumanDuration>>,
    pub key_type: Option<KeyType>,
    pub add_domains: Vec<DomainName>,
    pub remove_domains: Vec<DomainName>,
    pub dns: Option<SolverSpec>,
    /// exec hooks only: replace one hook of the stored `--dns exec`.
    pub auth_hook: Option<String>,
    pub cleanup_hook: Option<String>,
    pub deploy_hook: Option<Option<String>>,
    /// `--hook-env` (replaces the list) or `--no-hook-env` (empties it).
    pub hook_env: Option<Vec<crate::model::EnvName>>,
}

pub(super) async fn run(
    ctx: &Context,
    name: &CertName,
    changes: SpecChanges,
    force: bool,
    now: fn() -> OffsetDateTime,
) -> Result<Outcome, Error> {
    // The admin-only spec; a record from before specs had their own documents is edited
    // from its own copy (and `apply` stores the result as its spec).
    let mut spec = match ctx.store.load_spec(name).await?.doc {
        Some(s) => s.data.spec,
        None => match ctx.store.load_cert(name).await? {
            Some(c) => c.data.spec,
            None => {
                return Err(Error::UnknownCerts {
                    names: vec![name.clone()],
                    path: ctx.store.display(Key::Certs),
                })
            }
        },
    };
    if let Some(r) = changes.renew_before {
        spec.renew_before = r;
    }
    if let Some(k) = changes.key_type {
        spec.key_type = k;
    }
    spec.domains.retain(|d| !changes.remove_domains.contains(d));
    spec.domains.extend(changes.add_domains);
    if let Some(dns) = changes.dns {
        spec.dns = dns;
    }
    if changes.auth_hook.is_some() || changes.cleanup_hook.is_some() {
        match &mut spec.dns {
            SolverSpec::Exec(crate::dns::exec::Config {
                auth_hook,
                cleanup_hook,
            }) => {
                if let Some(h) = changes.auth_hook {
                    *auth_hook = h;
                }
                if let Some(h) = changes.cleanup_hook {
                    *cleanup_hook = h;
                }
            }
            SolverSpec::Solvers { .. } => {
                return Err(crate::model::InvalidInput {
                    what: "--auth-hook/--cleanup-hook",
                    value: name.to_string(),
                    reason: "this certificate uses stored solvers; pass --dns exec with the hooks to switch to hooks",
                }
                .into())
            }
        }
    }
    if let Some(h) = changes.deploy_hook {
        spec.deploy_hook = h;
    }
    if let Some(vars) = changes.hook_env {
        spec.hook_env = vars;
    }
    apply(ctx, name, spec, force, now).await
}
