//! The provider registry: what each provider module offers, and the macro that turns the
//! one list in `dns/mod.rs` into the stored configuration enum, the `dns add` subcommands,
//! the dispatching provider and the typed cleanup handle.
//!
//! A provider module holds:
//! - `Config`: its stored options (serde, validated), implementing [`Kind`];
//! - `Args`: its `certvault dns add <kind>` flags (clap);
//! - `Client`: the API client implementing [`Provider`](super::Provider), whose `Handle` is
//!   what `cleanup` needs to remove exactly the presented value;
//! - its wire structs.

use crate::model::{InvalidInput, Secret};

use super::{Error, Provider};

/// Reads the solver's secret when a provider needs one (`CERTVAULT_DNS_SECRET` or
/// `--secret-stdin`): never from a flag.
pub struct SecretSource<'a>(pub &'a dyn Fn() -> Result<Secret, InvalidInput>);

impl SecretSource<'_> {
    pub fn get(&self) -> Result<Secret, InvalidInput> {
        (self.0)()
    }
}

/// What building a client for one order needs.
pub struct Build<'a> {
    pub solver: &'a str,
    pub http: &'a reqwest::Client,
    /// Every name of the order, comma-separated (exec hooks' `CERTBOT_ALL_DOMAINS`).
    pub all_domains: &'a str,
    /// How many challenges the order has (exec hooks' `CERTBOT_REMAINING_CHALLENGES`).
    pub challenges: usize,
    /// Variables the certificate's spec lets through to exec hooks (`hook_env`).
    pub hook_env: &'a [crate::model::EnvName],
}

/// One provider kind, implemented by its stored `Config`.
#[allow(async_fn_in_trait)]
pub trait Kind: Sized {
    type Args: clap::Args + std::fmt::Debug;
    type Client: Provider;

    /// One line for `dns add --help`.
    const ABOUT: &'static str;

    /// The configuration from `dns add <kind>` flags (and the secret, if it needs one).
    fn from_args(args: Self::Args, secret: &SecretSource<'_>) -> Result<Self, InvalidInput>;

    /// Check what can be checked without the network; name the bad field.
    fn validate(&self, _solver: &str) -> Result<(), Error> {
        Ok(())
    }

    /// One line for `dns list`, without any secret.
    fn describe(&self) -> String;

    /// Work done once at `dns add` (acme-dns registers an account); returns lines to print.
    async fn prepare(
        &mut self,
        _solver: &str,
        _http: &reqwest::Client,
    ) -> Result<Vec<String>, Error> {
        Ok(Vec::new())
    }

    fn build(&self, build: &Build<'_>) -> Result<Self::Client, Error>;

    /// Whether `cleanup` removes the value (acme-dns rotates values out instead).
    const REMOVES_VALUES: bool = true;
}

/// Expands the provider list into [`ProviderConfig`], [`AddArgs`], [`AnyProvider`] and
/// [`Handle`]. Each line: `"stored kind" => Variant(module)`.
macro_rules! registry {
    ($($kind:literal => $variant:ident($module:ident)),+ $(,)?) => {
        $(pub mod $module;)+

        /// A provider's stored options; `kind` in the document picks the provider.
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "kind")]
        pub enum ProviderConfig {
            $(#[serde(rename = $kind)] $variant($module::Config),)+
        }

        /// `certvault dns add <kind> NAME ...`: one subcommand per provider.
        #[derive(Debug, clap::Subcommand)]
        pub enum AddArgs {
            $(#[command(name = $kind, about = <$module::Config as registry::Kind>::ABOUT)] $variant(registry::Add<<$module::Config as registry::Kind>::Args>),)+
        }

        /// Every provider's client, dispatched by `match` (no trait objects). One per solver
        /// and order: the size of the variants does not matter.
        #[allow(clippy::large_enum_variant)]
        pub enum AnyProvider {
            $($variant(<$module::Config as registry::Kind>::Client),)+
        }

        /// What `present` returned, per provider: exactly what `cleanup` needs.
        #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
        pub enum Handle {
            $($variant(<<$module::Config as registry::Kind>::Client as Provider>::Handle),)+
        }

        impl ProviderConfig {
            pub fn kind(&self) -> &'static str {
                match self { $(ProviderConfig::$variant(_) => $kind,)+ }
            }
            pub fn validate(&self, solver: &str) -> Result<(), Error> {
                match self { $(ProviderConfig::$variant(c) => registry::Kind::validate(c, solver),)+ }
            }
            pub fn describe(&self) -> String {
                match self { $(ProviderConfig::$variant(c) => registry::Kind::describe(c),)+ }
            }
            pub async fn prepare(&mut self, solver: &str, http: &reqwest::Client) -> Result<Vec<String>, Error> {
                match self { $(ProviderConfig::$variant(c) => registry::Kind::prepare(c, solver, http).await,)+ }
            }
        }

        impl AddArgs {
            /// The flags every provider takes.
            pub fn common(&self) -> &registry::CommonArgs {
                match self { $(AddArgs::$variant(a) => &a.common,)+ }
            }

            /// The solver name, its settings and its configuration.
            pub fn into_parts(self, secret: &registry::SecretSource<'_>)
                -> Result<(crate::model::SolverName, registry::CommonArgs, ProviderConfig), crate::model::InvalidInput> {
                match self {
                    $(AddArgs::$variant(a) => {
                        let config = <$module::Config as registry::Kind>::from_args(a.args, secret)?;
                        Ok((a.name, a.common, ProviderConfig::$variant(config)))
                    })+
                }
            }
        }

        impl AnyProvider {
            pub fn new(config: &ProviderConfig, build: &registry::Build<'_>) -> Result<Self, Error> {
                Ok(match config {
                    $(ProviderConfig::$variant(c) => AnyProvider::$variant(registry::Kind::build(c, build)?),)+
                })
            }

            /// Whether `cleanup` removes the value from DNS.
            pub fn removes_values(&self) -> bool {
                match self { $(AnyProvider::$variant(_) => <$module::Config as registry::Kind>::REMOVES_VALUES,)+ }
            }

            /// Publish `record`, leaving other values at the same name alone.
            pub async fn present(&self, record: &TxtRecord) -> Result<Presented, Error> {
                let handle = match self {
                    $(AnyProvider::$variant(p) => Handle::$variant(p.present(record).await?),)+
                };
                Ok(Presented { record: record.clone(), handle })
            }

            /// Remove exactly what `present` published; succeed if it is already gone.
            pub async fn cleanup(&self, presented: &Presented) -> Result<(), Error> {
                match (self, &presented.handle) {
                    $((AnyProvider::$variant(p), Handle::$variant(h)) => p.cleanup(&presented.record, h).await,)+
                    #[allow(unreachable_patterns)]
                    _ => Err(Error::Config {
                        solver: String::new(),
                        reason: "a cleanup handle of another provider".into(),
                    }),
                }
            }
        }
    };
}

pub(crate) use registry;

// `dns add <kind> NAME [settings] [provider flags]`.
#[derive(Debug, clap::Args)]
pub struct Add<A: clap::Args> {
    /// Solver name, used in `issue --dns <NAME>` or `--dns <zone>=<NAME>`.
    pub name: crate::model::SolverName,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub args: A,
}

/// Flags every `dns add <kind>` takes.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Read the secret from the first line of standard input (else CERTVAULT_DNS_SECRET).
    #[arg(long)]
    pub secret_stdin: bool,
    /// Replace a stored solver of the same name.
    #[arg(long)]
    pub force: bool,
    /// The zone this solver writes to: skips the SOA lookup.
    #[arg(long)]
    pub zone: Option<String>,
    /// Resolvers (ip or ip:port, comma-separated) this solver's zones are looked up with;
    /// stored with the solver, so `renew` needs no --dns-resolver (which stays the default).
    #[arg(long, value_delimiter = ',')]
    pub resolver: Vec<String>,
}
