//! The deploy hook: run after each new certificate is stored, never undoing it.

use super::context::Context;
use crate::hook;
use crate::hook::DeployFailed;
use crate::model::CertName;
use crate::records::CertRecord;
use crate::store::Key;

/// Run the spec's deploy hook, if any, for the version just written.
pub(super) async fn deploy(
    ctx: &Context,
    name: &CertName,
    record: &CertRecord,
    version: u64,
) -> Result<(), DeployFailed> {
    let Some(command) = record.spec.deploy_hook.as_deref() else {
        return Ok(());
    };
    let path = ctx.store.display(Key::Cert(name));
    let domains = record
        .spec
        .domains
        .iter()
        .map(|d| d.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let vars = [
        ("CERTVAULT_NAME", name.to_string()),
        ("CERTVAULT_DOMAINS", domains.clone()),
        ("CERTVAULT_VAULT_PATH", path.clone()),
        ("CERTVAULT_VERSION", version.to_string()),
        ("RENEWED_DOMAINS", domains),
    ];
    tracing::info!(cert = %name, version, "running the deploy hook");
    hook::run(command, &vars, &record.spec.hook_env, hook::HOOK_TIMEOUT)
        .await
        .map(drop)
        .map_err(|failure| {
            tracing::error!(cert = %name, version, "deploy hook failed: {failure}");
            DeployFailed {
                path,
                version,
                failure,
            }
        })
}
