//! How a spec is told to people: what `renew` orders and runs for it (`migrate`, `import`
//! and `show` print it).

use std::fmt::Write as _;

use crate::model::{SolverSpec, Spec};

/// The parts of a spec that decide what `renew` orders and runs.
pub(super) fn describe(spec: &Spec) -> String {
    let names: Vec<&str> = spec.domains.iter().map(|d| d.as_str()).collect();
    format!("names [{}], {}", names.join(", "), settings(spec))
}

/// What `renew` runs for a spec, without its names: account, solver or hooks, deploy hook.
pub(super) fn settings(spec: &Spec) -> String {
    let mut out = format!("account {}", spec.account);
    match &spec.dns {
        SolverSpec::Exec(crate::dns::exec::Config {
            auth_hook,
            cleanup_hook,
        }) => {
            let _ = write!(out, ", dns exec (auth hook {auth_hook:?}");
            if !cleanup_hook.is_empty() {
                let _ = write!(out, ", cleanup hook {cleanup_hook:?}");
            }
            out.push(')');
        }
        SolverSpec::Solvers { default, zones } => {
            let mut parts: Vec<String> = default.iter().map(|d| d.to_string()).collect();
            parts.extend(zones.iter().map(|(z, s)| format!("{z}={s}")));
            let _ = write!(out, ", dns solvers [{}]", parts.join(", "));
        }
    }
    if let Some(hook) = &spec.deploy_hook {
        let _ = write!(out, ", deploy hook {hook:?}");
    }
    out
}
