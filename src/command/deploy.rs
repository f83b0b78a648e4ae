//! The deploy hook: run after each new certificate is stored, never undoing it.

use super::Context;
use crate::hook;
use crate::model::{CertName, CertRecord};
use crate::store::Key;

/// The deploy hook of a stored certificate failed; the certificate stays stored.
#[derive(Debug)]
pub struct DeployFailed {
    pub path: String,
    pub version: u64,
    pub failure: hook::Failure,
}

impl std::fmt::Display for DeployFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the deploy hook failed ({}); the new certificate is stored at {} (version {}) and stays there",
            self.failure, self.path, self.version
        )
    }
}

/// The hook's failure is part of the message: its cause (why it could not be started) is
/// the next one, so no cause is printed twice.
impl std::error::Error for DeployFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.failure)
    }
}

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
