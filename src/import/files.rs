//! Reading an import's input files safely: symlinks may not lead out of the folder being
//! imported, sizes are bounded, and errors say which file and why (never what it holds).

use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest PEM, JSON or conf file an import reads.
pub const MAX_FILE: u64 = 1 << 20;

/// The folder being imported (`certvault import certbot DIR`).
pub struct Root {
    /// As given, for messages and for paths written in the folder's own files.
    pub shown: PathBuf,
    /// With every symlink resolved: what a file must stay inside.
    canon: PathBuf,
}

impl Root {
    pub fn open(dir: &Path) -> Result<Self, String> {
        let canon = dir
            .canonicalize()
            .map_err(|e| format!("cannot open {}: {}", dir.display(), io_reason(&e)))?;
        if !canon.is_dir() {
            return Err(format!("{} is not a folder", dir.display()));
        }
        Ok(Self {
            shown: dir.to_path_buf(),
            canon,
        })
    }

    /// `rel` below the folder (as given).
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.shown.join(rel)
    }

    /// A path written in the folder's own files (absolute, from where the folder was when
    /// the tool wrote it) mapped into this folder: kept if it is inside it, else the part
    /// after the last `/<anchor>/` (`live`, `archive`) is taken below this folder.
    pub fn relocate(&self, written: &str, anchor: &str) -> Option<PathBuf> {
        let p = Path::new(written);
        if p.is_relative() {
            return Some(self.shown.join(p));
        }
        if p.starts_with(&self.shown) || p.starts_with(&self.canon) {
            return Some(p.to_path_buf());
        }
        let marker = format!("/{anchor}/");
        let at = written.rfind(&marker)?;
        Some(self.shown.join(anchor).join(&written[at + marker.len()..]))
    }

    /// Whether `path` resolves (symlinks followed) to something inside the folder.
    pub fn inside(&self, path: &Path) -> Result<PathBuf, String> {
        let real = path.canonicalize().map_err(|e| io_reason(&e))?;
        if real.starts_with(&self.canon) {
            Ok(real)
        } else {
            Err(format!(
                "it leads (through a symlink) to {}, outside {}; refusing to read it",
                real.display(),
                self.shown.display()
            ))
        }
    }

    /// Read and parse an account key file inside the folder.
    pub fn account_key(&self, path: &Path) -> Result<super::key::AccountKey, String> {
        self.read(path)
            .and_then(|t| super::key::parse(&t).map_err(|r| format!("broken account key: {r}")))
    }

    /// Read a text file inside the folder (at most `MAX_FILE` bytes).
    pub fn read(&self, path: &Path) -> Result<String, String> {
        let real = self.inside(path)?;
        read_limited(&real)
    }
}

/// Read a text file of at most `MAX_FILE` bytes (any location: a credentials file named
/// by a conf). The reason never contains the file's content.
pub fn read_limited(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| io_reason(&e))?;
    let meta = file.metadata().map_err(|e| io_reason(&e))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > MAX_FILE {
        return Err(format!(
            "too large ({} bytes; at most {MAX_FILE} are read)",
            meta.len()
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_reason(&e))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(format!("too large (at most {MAX_FILE} bytes are read)"));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".into())
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "missing (no such file)".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Sub-folders of `dir` in name order (symlinked folders included only if inside `root`).
pub fn subdirs(root: &Root, dir: &Path) -> Vec<PathBuf> {
    entries(dir, |p| p.is_dir() && root.inside(p).is_ok())
}

/// Files of `dir` whose names end in `suffix`, in name order.
pub fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    entries(dir, |p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(suffix))
    })
}

/// The entries of `dir` that `keep` accepts, in name order; none if it cannot be read.
fn entries(dir: &Path, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| keep(p))
        .collect();
    out.sort();
    out
}
