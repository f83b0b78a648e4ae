//! The container image: built from docker/Dockerfile by `scripts/image` (buildah, offline:
//! see that script for what it replaces), then certvault runs INSIDE it against the test bed,
//! with `buildah run --isolation chroot` on the host network, as uid 65532, with HOME pointing
//! nowhere and only the image's own files. Pebble's HTTPS listener CA (test data, not part of
//! the image) is bind-mounted read-only at /run/certvault/pebble-ca.pem.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::harness::*;

/// Where the CA file is mounted in the container.
const CA_IN_CTR: &str = "/run/certvault/pebble-ca.pem";
/// A static BusyBox from the host, mounted only for the probe runs (never for certvault).
const PROBE_IN_CTR: &str = "/run/probe/busybox";

fn buildah(args: &[&str]) -> Run {
    let out = Command::new("buildah")
        .arg("--storage-driver")
        .arg("vfs")
        .args(args)
        .output()
        .expect("run buildah");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A working container, removed on drop (also when the test fails).
struct Container {
    id: String,
}

impl Container {
    fn from_image(image: &str) -> Self {
        let name = format!("certvault-test-{}", unique("image"));
        let run = buildah(&["from", "--pull=never", "--name", &name, image]).ok();
        let id = run.stdout.trim().to_string();
        assert_eq!(id, name);
        Self { id }
    }

    /// `buildah run` as 65532:65532 with HOME pointing nowhere, the environment given and
    /// nothing else from the host but the mounts.
    fn run(&self, env: &[(String, String)], mounts: &[(&str, &str)], cmd: &[&str]) -> Run {
        let mut args: Vec<String> = [
            "run",
            "--isolation",
            "chroot",
            "--user",
            "65532:65532",
            "--env",
            "HOME=/nonexistent",
        ]
        .map(String::from)
        .to_vec();
        for (k, v) in env {
            args.push("--env".into());
            args.push(format!("{k}={v}"));
        }
        for (src, dst) in mounts {
            args.push("--mount".into());
            args.push(format!("type=bind,src={src},dst={dst},ro"));
        }
        args.push(self.id.clone());
        args.push("--".into());
        args.extend(cmd.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        buildah(&refs)
    }

    fn mount_point(&self) -> PathBuf {
        PathBuf::from(buildah(&["mount", &self.id]).ok().stdout.trim())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = buildah(&["rm", &self.id]);
    }
}

/// A path's type and mode, owner, group, size and modification time.
type Entry = (u32, u32, u32, u64, i64, i64);

fn entry(m: &std::fs::Metadata) -> Entry {
    (
        m.mode(),
        m.uid(),
        m.gid(),
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
    )
}

/// Every path of the root filesystem (without the run-time mounts buildah provides: /dev,
/// /proc, /sys, /run) with its metadata.
fn snapshot(root: &Path) -> BTreeMap<String, Entry> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Entry>) {
        for item in std::fs::read_dir(dir).unwrap() {
            let path = item.unwrap().path();
            let rel = format!("/{}", path.strip_prefix(root).unwrap().display());
            if ["/dev", "/proc", "/sys", "/run"].contains(&rel.as_str()) {
                continue;
            }
            let m = std::fs::symlink_metadata(&path).unwrap();
            out.insert(rel, entry(&m));
            if m.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    out.insert("/".to_string(), entry(&std::fs::metadata(root).unwrap()));
    walk(root, root, &mut out);
    out
}

/// The paths uid/gid 65532 may write to (owner, group or other write bit; not symlinks).
fn writable_by_nonroot(snap: &BTreeMap<String, Entry>) -> Vec<String> {
    snap.iter()
        .filter(|(_, (mode, uid, gid, ..))| {
            let is_link = mode & 0o170000 == 0o120000;
            !is_link
                && ((*uid == 65532 && mode & 0o200 != 0)
                    || (*gid == 65532 && mode & 0o020 != 0)
                    || mode & 0o002 != 0)
        })
        .map(|(p, _)| p.clone())
        .collect()
}

/// Uncaptured, so the figure shows in the suite's output.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "image test: {line}");
}

#[test]
fn image_runs_init_issue_renew_as_nonroot_with_nothing_writable() {
    // The settings and test bed first (scripts/testbed up), then the image.
    let e = Env::bind("image");
    let ca_host = env("CERTVAULT_ACME_CA_CERT");

    let build = Command::new(repo().join("scripts/image"))
        .output()
        .expect("run scripts/image");
    let build_err = String::from_utf8_lossy(&build.stderr).into_owned();
    let build_out = String::from_utf8_lossy(&build.stdout).into_owned();
    assert!(
        build.status.success(),
        "scripts/image failed\nstdout:\n{build_out}\nstderr:\n{build_err}"
    );
    let image = build_out.lines().last().unwrap_or("").trim().to_string();
    assert_eq!(image, "localhost/certvault:dev", "{build_out}");
    let size_line = build_err
        .lines()
        .find(|l| l.contains("image size:"))
        .unwrap_or_else(|| panic!("scripts/image printed no size:\n{build_err}"));
    report(size_line.trim_start_matches("image: "));

    // The image: size, labels, user, entrypoint.
    let inspect: Value =
        serde_json::from_str(&buildah(&["inspect", "--type", "image", &image]).ok().stdout)
            .unwrap();
    let manifest: Value = serde_json::from_str(inspect["Manifest"].as_str().unwrap()).unwrap();
    let size: u64 = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum::<u64>()
        + manifest["config"]["size"].as_u64().unwrap();
    report(&format!(
        "{image} is {size} bytes ({:.1} MB)",
        size as f64 / 1e6
    ));
    assert!(size <= 25_000_000, "image is {size} bytes, over 25 MB");
    let config = &inspect["OCIv1"]["config"];
    let label = |k: &str| config["Labels"][k].as_str().unwrap_or("").to_string();
    assert_eq!(
        label("org.opencontainers.image.version"),
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(label("org.opencontainers.image.licenses"), "Apache-2.0");
    assert!(label("org.opencontainers.image.source").starts_with("https://"));
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo())
        .output()
        .unwrap();
    let revision = String::from_utf8_lossy(&head.stdout).trim().to_string();
    assert_eq!(label("org.opencontainers.image.revision"), revision);
    assert_eq!(config["User"], "65532:65532");
    assert_eq!(config["Entrypoint"], serde_json::json!(["certvault"]));

    let ctr = Container::from_image(&image);
    let root = ctr.mount_point();
    // No shell in the default image; the binary is root's and read-only to others.
    assert!(!root.join("bin/sh").exists() && !root.join("busybox").exists());
    let bin = std::fs::metadata(root.join("usr/local/bin/certvault")).unwrap();
    assert_eq!((bin.uid(), bin.mode() & 0o7777), (0, 0o755));
    assert!(root
        .join("etc/ssl/certs/ca-certificates.crt")
        .metadata()
        .unwrap()
        .len()
        .gt(&10_000));

    // The probe (host BusyBox, mounted for this run only): the same `buildah run` flags give
    // uid 65532, and that uid can create nothing in the image's directories.
    let probe = ctr
        .run(
            &[],
            &[("/bin/busybox", PROBE_IN_CTR), (&ca_host, CA_IN_CTR)],
            &[
                PROBE_IN_CTR,
                "sh",
                "-c",
                "id -u; id -g; echo \"HOME=$HOME\"; \
                 for d in / /etc /usr/local/bin /lib64; do \
                   if /run/probe/busybox touch \"$d/.probe\" 2>/dev/null; then echo \"wrote $d\"; fi; \
                 done",
            ],
        )
        .ok();
    assert_eq!(
        probe.stdout,
        "65532\n65532\nHOME=/nonexistent\n",
        "{}",
        probe.all()
    );

    // Settings as the other tests pass them, but the CA file at its path in the container.
    let mut settings: Vec<(String, String)> = vec![
        ("VAULT_ADDR".into(), env("VAULT_ADDR")),
        ("VAULT_TOKEN".into(), e.token.clone()),
        ("CERTVAULT_PREFIX".into(), e.prefix.clone()),
        ("CERTVAULT_ACME_CA_CERT".into(), CA_IN_CTR.into()),
    ];
    settings.extend(e.extra.iter().cloned());
    let mounts = [(ca_host.as_str(), CA_IN_CTR)];
    let certvault = |extra: &[(String, String)], args: &[&str]| {
        let mut all = settings.clone();
        all.extend(extra.iter().cloned());
        let mut cmd = vec!["/usr/local/bin/certvault"];
        cmd.extend_from_slice(args);
        ctr.run(&all, &mounts, &cmd)
    };

    let version = certvault(&[], &["--version"]).ok();
    assert!(
        version.stdout.starts_with("certvault 0."),
        "{}",
        version.all()
    );

    // From here on nothing in the root filesystem may change.
    let before = snapshot(&root);
    assert!(
        before.contains_key("/usr/local/bin/certvault") && before.len() > 10,
        "{before:?}"
    );
    let writable = writable_by_nonroot(&before);
    // As in distroless: /tmp (1777) and nonroot's home; a read-only root filesystem (the
    // Kubernetes manifests set one) covers those too, and certvault writes to neither.
    assert_eq!(writable, ["/home/nonroot", "/tmp"], "{writable:?}");

    certvault(
        &[],
        &[
            "init",
            "--directory",
            &env("CERTVAULT_TEST_DIRECTORY_BIND"),
            "--agree-tos",
        ],
    )
    .ok();
    let solver = bind_solver_args();
    let mut add = vec!["dns", "add", "bind"];
    add.extend(solver.iter().map(String::as_str));
    certvault(
        &[(
            "CERTVAULT_DNS_SECRET".into(),
            env("CERTVAULT_TEST_TSIG_SECRET"),
        )],
        &add,
    )
    .ok();
    let base = format!("{}.example.test", unique("img"));
    let wild = format!("*.{base}");
    certvault(
        &[],
        &["issue", "web", "-d", &base, "-d", &wild, "--dns", "bind"],
    )
    .ok();
    let (doc, v1) = vault_read(&e.cert_path("web")).expect("record written from the image");
    assert_eq!(v1, 1);
    verify_record_bind(&doc, &[&base, &wild]);

    let renew = certvault(&[], &["renew", "--force"]).ok();
    assert_contains(&renew.stdout, "summary: 1 renewed, 0 not due, 0 failed");
    let (renewed, v2) = vault_read(&e.cert_path("web")).unwrap();
    assert_eq!(v2, 2);
    assert_ne!(renewed["cert"], doc["cert"]);
    verify_record_bind(&renewed, &[&base, &wild]);
    assert!(record_key_matches(&renewed));

    // Nothing was written anywhere in the container's root filesystem.
    let after = snapshot(&root);
    let changed: Vec<&String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert!(changed.is_empty(), "changed in the image: {changed:?}");
}
