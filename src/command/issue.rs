//! `certvault issue NAME -d ...`: define a certificate, obtain it, store it in Vault.

use time::OffsetDateTime;

use super::apply::apply;
use super::context::{Context, Outcome};
use crate::model::{CertName, Spec};
use crate::Error;

#[derive(Debug)]
pub struct IssueArgs {
    pub name: CertName,
    pub spec: SpecArgs,
    pub force: bool,
}

pub(super) async fn run(
    ctx: &Context,
    args: IssueArgs,
    now: fn() -> OffsetDateTime,
) -> Result<Outcome, Error> {
    let spec = Spec {
        domains: args.spec.domains,
        key_type: args.spec.key_type,
        dns: args.spec.dns,
        renew_before: args.spec.renew_before,
        account: ctx.settings.account.clone(),
        follow_cname: args.spec.follow_cname,
        propagation_check: args.spec.propagation_check,
        deploy_hook: args.spec.deploy_hook,
        layouts: args.spec.layouts,
        profile: args.spec.profile,
        reuse_key: args.spec.reuse_key,
        hook_env: args.spec.hook_env,
    };
    apply(ctx, &args.name, spec, args.force, now).await
}

/// The solver, key and renewal settings given to `issue`.
#[derive(Debug, Clone)]
pub struct SpecArgs {
    pub domains: Vec<crate::model::DomainName>,
    pub key_type: crate::model::KeyType,
    pub dns: crate::model::SolverSpec,
    pub renew_before: Option<crate::model::HumanDuration>,
    pub follow_cname: bool,
    pub propagation_check: Option<bool>,
    pub deploy_hook: Option<String>,
    /// Consumer layouts (`--layout`), sorted and without repeats.
    pub layouts: Vec<crate::model::RecordLayout>,
    /// `--profile`: the CA profile to order (must be offered by the CA).
    pub profile: Option<String>,
    /// `--reuse-key`: keep the private key across renewals.
    pub reuse_key: bool,
    /// `--hook-env NAME`: variables let through to the hooks, sorted and without repeats.
    pub hook_env: Vec<crate::model::EnvName>,
}
