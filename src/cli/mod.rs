//! The command line: clap only. Turns flags and environment into library values.

use clap::{CommandFactory, FromArgMatches, Parser};

mod commands;
mod convert;
mod global;

pub(crate) use commands::*;
pub(crate) use global::*;

/// How to log: `-v` count and `--log-format`.
pub struct Logging {
    pub quiet: bool,
    pub verbose: u8,
    pub format: certvault::LogFormat,
}

/// `certvault --version`: the crate version and the git revision it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("CERTVAULT_REVISION"),
    ")"
);

/// Issue and renew ACME certificates with HashiCorp Vault / OpenBao as the only state.
#[derive(Debug, Parser)]
#[command(name = "certvault", version = VERSION, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Cmd,
}

impl Cli {
    /// Parse the process arguments; `dns add NAME --kind K ...` becomes `dns add K NAME ...`.
    pub fn parse_args() -> Self {
        Self::try_parse_args(legacy_kind(std::env::args_os().collect()))
            .unwrap_or_else(|e| e.exit())
    }

    /// Parse `args` (the program name first), noting which secrets came as flags rather than
    /// from the environment, so that `into_parts` can refuse them.
    pub(crate) fn try_parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = <Self as CommandFactory>::command().try_get_matches_from(args)?;
        let mut cli = <Self as FromArgMatches>::from_arg_matches(&matches)?;
        if let Cmd::Init {
            eab_hmac_key_flag, ..
        } = &mut cli.command
        {
            *eab_hmac_key_flag = matches
                .subcommand_matches("init")
                .and_then(|m| m.value_source("eab_hmac_key"))
                == Some(clap::parser::ValueSource::CommandLine);
        }
        Ok(cli)
    }
}

/// The older `dns add NAME --kind K` form, rewritten to `dns add K NAME`.
pub(crate) fn legacy_kind(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let Some(add) = args
        .windows(2)
        .position(|w| w[0] == "dns" && w[1] == "add")
        .map(|i| i + 1)
    else {
        return args;
    };
    let mut kind = None;
    let mut i = add + 1;
    while i < args.len() {
        let a = args[i].to_string_lossy().into_owned();
        if a == "--kind" && i + 1 < args.len() {
            kind = Some(args.remove(i + 1));
            args.remove(i);
            break;
        }
        if let Some(k) = a.strip_prefix("--kind=") {
            kind = Some(k.into());
            args.remove(i);
            break;
        }
        i += 1;
    }
    if let Some(k) = kind {
        args.insert(add + 1, k);
    }
    args
}

#[cfg(test)]
mod tests;
