//! Every Vault path certvault uses, spelled once: document keys, KV API paths for
//! policies, and the prefix rules.

use crate::model::CertName;
use crate::vault::KvVersion;

/// A document certvault keeps in Vault, the certificate folder, or (`Any*`) a policy glob
/// over all documents of a kind.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    Account(&'a str),
    Cert(&'a CertName),
    Certs,
    Spec(&'a CertName),
    /// The folder of the specs (for `migrate`'s list of migrated certificates).
    Specs,
    Status(&'a CertName),
    Lock(&'a CertName),
    /// The folder of the locks (for the list of certificates whose lock is left).
    Locks,
    Solver(&'a str),
    Solvers,
    AnyAccount,
    AnyCert,
    AnySpec,
    AnyStatus,
    AnySolver,
    AnyLock,
    /// One document of the renewal index: `index/000` .. `index/255` in the first layout,
    /// `index/<S>/<n>` (n with as many digits as S - 1) in a grown one.
    Index(crate::index::Layout, u16),
    /// `index/layout`: how many documents the index has (absent: the first layout).
    IndexLayout,
    /// The folder of the index documents (for `index rebuild`'s list).
    Indexes,
    AnyIndex,
    Pause(&'a str),
    AnyPause,
}

impl Key<'_> {
    /// The path below the mount.
    pub fn path(&self, prefix: &str) -> String {
        match self {
            Key::Account(name) => format!("{prefix}/accounts/{name}"),
            Key::Cert(name) => format!("{prefix}/certs/{name}"),
            Key::Lock(name) => format!("{prefix}/locks/{name}"),
            Key::Locks => format!("{prefix}/locks"),
            Key::Spec(name) => format!("{prefix}/specs/{name}"),
            Key::Specs => format!("{prefix}/specs"),
            Key::Status(name) => format!("{prefix}/status/{name}"),
            Key::AnySpec => format!("{prefix}/specs/*"),
            Key::AnyStatus => format!("{prefix}/status/*"),
            Key::Certs => format!("{prefix}/certs"),
            Key::Solver(name) => format!("{prefix}/dns/{name}"),
            Key::Solvers => format!("{prefix}/dns"),
            Key::AnyAccount => format!("{prefix}/accounts/*"),
            Key::AnyCert => format!("{prefix}/certs/*"),
            Key::AnySolver => format!("{prefix}/dns/*"),
            Key::AnyLock => format!("{prefix}/locks/*"),
            Key::Index(layout, shard) if *layout == crate::index::Layout::FIRST => {
                format!("{prefix}/index/{shard:03}")
            }
            Key::Index(layout, shard) => {
                let width = (layout.shards() - 1).to_string().len();
                format!("{prefix}/index/{}/{shard:0width$}", layout.shards())
            }
            Key::IndexLayout => format!("{prefix}/index/layout"),
            Key::Indexes => format!("{prefix}/index"),
            Key::AnyIndex => format!("{prefix}/index/*"),
            Key::Pause(account) => format!("{prefix}/pauses/{account}"),
            Key::AnyPause => format!("{prefix}/pauses/*"),
        }
    }
}

/// Which KV v2 API a policy path is for: documents, or metadata (where `list` happens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Data,
    Metadata,
}

/// The full API path of `key` as policies and `sys/capabilities-self` see it:
/// `<mount>/data/<path>` or `<mount>/metadata/<path>` on KV v2, `<mount>/<path>` on v1.
/// A folder ([`Key::Certs`], [`Key::Solvers`]) ends in `/`, as Vault's list requests do.
pub fn api_path(version: KvVersion, mount: &str, prefix: &str, key: Key<'_>, api: Api) -> String {
    let mut rel = key.path(prefix);
    if matches!(
        key,
        Key::Certs | Key::Specs | Key::Solvers | Key::Indexes | Key::Locks
    ) {
        rel.push('/');
    }
    match (version, api) {
        (KvVersion::V1, _) => format!("{mount}/{rel}"),
        (KvVersion::V2, Api::Data) => format!("{mount}/data/{rel}"),
        (KvVersion::V2, Api::Metadata) => format!("{mount}/metadata/{rel}"),
    }
}

/// A prefix as accepted in settings, without surrounding `/`; `None` if invalid.
pub fn clean_prefix(prefix: &str) -> Option<&str> {
    let prefix = prefix.trim_matches('/');
    let ok = !prefix.is_empty()
        && prefix.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    ok.then_some(prefix)
}
