//! The roles `certvault policy` prints.

use std::fmt;
use std::str::FromStr;

/// The roles `certvault policy` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Runs `init` and `issue`: writes the account, solver configs and certificate records.
    Admin,
    /// Runs `renew` (and `list`) unattended: reads the account, solver configs and specs,
    /// reads and updates certificate records, writes status documents, takes locks. It
    /// cannot change what renew orders or runs (specs and solvers are admin-only).
    Renew,
    /// Watches: `list` from specs and status documents; no private key, no writes.
    Monitor,
    /// An application reading one certificate record.
    Reader,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Admin => "admin",
            Role::Renew => "renew",
            Role::Reader => "reader",
            Role::Monitor => "monitor",
        })
    }
}

impl FromStr for Role {
    type Err = crate::model::InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "renew" => Ok(Role::Renew),
            "reader" => Ok(Role::Reader),
            "monitor" => Ok(Role::Monitor),
            _ => Err(crate::model::InvalidInput {
                what: "policy role",
                value: s.into(),
                reason: "use admin, renew, monitor or reader",
            }),
        }
    }
}
