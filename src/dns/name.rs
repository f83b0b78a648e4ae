//! Typed DNS names: a record name ([`Fqdn`]) and a zone apex ([`Zone`]).
//!
//! Both are lower-case ASCII without the trailing dot. A name that cannot be parsed is an
//! input error naming the field it came from; it never becomes the root `.`.

use std::fmt;
use std::str::FromStr;

use hickory_net::proto::rr::Name;
use serde::{Deserialize, Serialize};

/// Why a DNS name was refused, and which field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {value:?} is not a DNS name: {reason}")]
pub struct BadName {
    pub field: &'static str,
    pub value: String,
    pub reason: &'static str,
}

/// A fully qualified DNS name such as `_acme-challenge.www.example.com`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Fqdn(String);

/// The apex of a DNS zone such as `example.com`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Zone(Fqdn);

impl Fqdn {
    /// Parse `value`; `field` names it in the error (`zone`, `tsig_key`, ...).
    pub fn parse(field: &'static str, value: &str) -> Result<Self, BadName> {
        let bad = |reason| BadName {
            field,
            value: value.to_string(),
            reason,
        };
        let text = value.trim();
        let text = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
        if text.is_empty() {
            return Err(bad("it is empty (the root is not allowed)"));
        }
        if text.len() > 253 {
            return Err(bad("it is longer than 253 characters"));
        }
        for label in text.split('.') {
            if label.is_empty() {
                return Err(bad("it has an empty label"));
            }
            if label.len() > 63 {
                return Err(bad("a label is longer than 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*')
            {
                return Err(bad("use letters, digits, '-' and '_' (IDNs in punycode)"));
            }
        }
        Name::from_ascii(&text).map_err(|_| bad("it does not parse as a DNS name"))?;
        Ok(Fqdn(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name for the wire, with the trailing dot.
    pub fn to_name(&self) -> Name {
        // Checked in `parse`; the fallback is unreachable.
        let mut n = Name::from_ascii(&self.0).unwrap_or_else(|_| Name::root());
        n.set_fqdn(true);
        n
    }

    /// From a name received on the wire (lower case, without the trailing dot).
    pub fn from_name(name: &Name) -> Result<Self, BadName> {
        Self::parse("name", &name.to_ascii())
    }

    /// `self` equals `zone` or lies below it.
    pub fn is_in(&self, zone: &Zone) -> bool {
        let z = zone.as_str();
        self.0 == z
            || self
                .0
                .strip_suffix(z)
                .is_some_and(|head| head.ends_with('.'))
    }

    /// The labels before `zone` (`_acme-challenge.www` of `_acme-challenge.www.example.com`
    /// in `example.com`); empty at the apex.
    pub fn relative_to(&self, zone: &Zone) -> String {
        if self.0 == zone.as_str() {
            return String::new();
        }
        self.0
            .strip_suffix(zone.as_str())
            .and_then(|n| n.strip_suffix('.'))
            .unwrap_or(&self.0)
            .to_string()
    }
}

impl Zone {
    pub fn parse(field: &'static str, value: &str) -> Result<Self, BadName> {
        Fqdn::parse(field, value).map(Zone)
    }
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
    pub fn fqdn(&self) -> &Fqdn {
        &self.0
    }
    pub fn to_name(&self) -> Name {
        self.0.to_name()
    }
}

impl From<Fqdn> for Zone {
    fn from(f: Fqdn) -> Self {
        Zone(f)
    }
}

impl FromStr for Fqdn {
    type Err = BadName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse("DNS name", s)
    }
}

impl FromStr for Zone {
    type Err = BadName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse("zone", s)
    }
}

impl TryFrom<String> for Fqdn {
    type Error = BadName;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse("DNS name", &s)
    }
}

impl TryFrom<String> for Zone {
    type Error = BadName;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse("zone", &s)
    }
}

impl From<Fqdn> for String {
    fn from(f: Fqdn) -> Self {
        f.0
    }
}

impl From<Zone> for String {
    fn from(z: Zone) -> Self {
        z.0 .0
    }
}

impl fmt::Display for Fqdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Fqdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_or_name_their_field() {
        let n = Fqdn::parse("name", "_ACME-challenge.WWW.Example.com.").unwrap();
        assert_eq!(n.as_str(), "_acme-challenge.www.example.com");
        let z = Zone::parse("zone", "example.com").unwrap();
        assert!(n.is_in(&z));
        assert!(!Fqdn::parse("n", "notexample.com").unwrap().is_in(&z));
        assert_eq!(n.relative_to(&z), "_acme-challenge.www");
        assert_eq!(z.fqdn().relative_to(&z), "");
        for bad in [
            "",
            ".",
            "a..b",
            "a b.example",
            "ex\u{e4}mple.com",
            &"a".repeat(64),
        ] {
            let e = Zone::parse("zone", bad).unwrap_err();
            assert_eq!(e.field, "zone", "{bad}");
            assert!(e.to_string().starts_with("zone "), "{e}");
        }
        assert_eq!(
            Fqdn::parse("tsig_key", "bad key.").unwrap_err().field,
            "tsig_key"
        );
    }
}
