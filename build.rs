//! Records the git revision the binary is built from, for `certvault --version`.
//! `CERTVAULT_REVISION` (set by the image build, which has no `.git`) wins over git.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=CERTVAULT_REVISION");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let revision = std::env::var("CERTVAULT_REVISION")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
                .filter(|r| !r.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=CERTVAULT_REVISION={revision}");
}
