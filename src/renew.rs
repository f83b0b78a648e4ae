//! The renewal decision: a pure function of the clock and the facts.
//!
//! `decide` does no I/O and never reads the clock; `list` and `renew` both call it, so
//! what `list` says will happen is what `renew` does.

use std::collections::BTreeSet;
use std::fmt;

use time::OffsetDateTime;

use crate::ari::AriState;
use crate::model::{DomainName, HumanDuration, KeyType, Spec};

pub use crate::x509::Current;

/// Everything the decision looks at. New inputs become new fields.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub wanted: &'a Spec,
    pub current: Option<&'a Current>,
    /// What is wrong with the stored record (a key that does not match, a garbage chain):
    /// such a record is reissued.
    pub damage: Option<&'a str>,
    /// `renew --force` / `issue --force`.
    pub force: bool,
    /// What the CA's renewal information said about the current certificate (RFC 9773);
    /// `None` when the CA has none (the lifetime rule decides, silently).
    pub ari: Option<&'a AriState>,
    /// When `certvault revoke` revoked the current certificate.
    pub revoked_at: Option<OffsetDateTime>,
}

impl<'a> Facts<'a> {
    /// Facts without ARI or revocation (the lifetime rule only).
    #[cfg(test)]
    pub fn plain(wanted: &'a Spec, current: Option<&'a Current>, force: bool) -> Self {
        Self {
            wanted,
            current,
            damage: None,
            force,
            ari: None,
            revoked_at: None,
        }
    }
}

/// Why the renewal point is where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Basis {
    /// The certificate's own `renew_before` setting.
    RenewBefore(HumanDuration),
    /// The default: 1/3 of the lifetime left (`short` = lifetime of 10 days or less: 1/2).
    LifetimeFraction { short: bool },
    /// The default, because `renew_before` is not shorter than the certificate's lifetime
    /// (it could never be satisfied: every run would renew).
    RenewBeforeTooLong {
        renew_before: HumanDuration,
        short: bool,
    },
    /// The time chosen inside the CA's ARI window.
    Ari,
    /// Less than 1/20 of the lifetime left: renewed whatever ARI says.
    SafetyNet,
}

impl Basis {
    /// The text of the bases whose text does not depend on a setting.
    fn fixed(&self) -> Option<&'static str> {
        match self {
            Basis::LifetimeFraction { short: false } => Some("1/3 of lifetime left"),
            Basis::LifetimeFraction { short: true } => {
                Some("1/2 of lifetime left (short-lived certificate)")
            }
            Basis::Ari => Some("ari"),
            Basis::SafetyNet => Some("safety net: 1/20 of lifetime left"),
            Basis::RenewBefore(_) | Basis::RenewBeforeTooLong { .. } => None,
        }
    }

    /// The text `Display` writes, without a copy for the bases whose text is fixed.
    pub fn text(&self) -> std::borrow::Cow<'static, str> {
        match self.fixed() {
            Some(text) => text.into(),
            None => self.to_string().into(),
        }
    }
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Basis::RenewBefore(d) => write!(f, "renew_before {d} before expiry"),
            Basis::RenewBeforeTooLong {
                renew_before,
                short,
            } => write!(
                f,
                "{} of lifetime left: renew_before {renew_before} is not shorter than the certificate's lifetime, so the default rule applies",
                if *short { "1/2" } else { "1/3" }
            ),
            Basis::LifetimeFraction { .. } | Basis::Ari | Basis::SafetyNet => {
                f.write_str(self.fixed().unwrap_or_default())
            }
        }
    }
}

impl std::str::FromStr for Basis {
    type Err = String;

    /// The text `Display` writes, read back (the index keeps a basis as its text).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fraction = |t: &str| match t {
            "1/3" => Some(false),
            "1/2" => Some(true),
            _ => None,
        };
        let duration = |t: &str| t.parse::<HumanDuration>().ok();
        let parsed = match s {
            "1/3 of lifetime left" => Some(Basis::LifetimeFraction { short: false }),
            "1/2 of lifetime left (short-lived certificate)" => {
                Some(Basis::LifetimeFraction { short: true })
            }
            "ari" => Some(Basis::Ari),
            "safety net: 1/20 of lifetime left" => Some(Basis::SafetyNet),
            _ => s
                .strip_prefix("renew_before ")
                .and_then(|t| t.strip_suffix(" before expiry"))
                .and_then(duration)
                .map(Basis::RenewBefore)
                .or_else(|| {
                    let (share, rest) = s.split_once(" of lifetime left: renew_before ")?;
                    let before = rest.strip_suffix(
                        " is not shorter than the certificate's lifetime, so the default rule applies",
                    )?;
                    Some(Basis::RenewBeforeTooLong {
                        renew_before: duration(before)?,
                        short: fraction(share)?,
                    })
                }),
        };
        parsed.ok_or_else(|| format!("not a renewal basis: {s:?}"))
    }
}

/// When a certificate becomes due by the clock, and why: the one schedule that `decide`,
/// the index, `list` and `renew` use. It reads no clock: [`Schedule::at`] applies one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The renewal point.
    pub renew_at: OffsetDateTime,
    pub basis: Basis,
    /// Due at expiry whatever the renewal point.
    pub not_after: OffsetDateTime,
}

impl Schedule {
    /// The schedule of `current`: the lifetime rule (or `renew_before`), then the CA's
    /// window over it.
    pub fn of(
        current: &Current,
        renew_before: Option<&HumanDuration>,
        ari: Option<&AriState>,
    ) -> Self {
        let (renew_at, basis) = renewal_point(current, renew_before);
        Schedule {
            renew_at,
            basis,
            not_after: current.not_after,
        }
        .with_ari(current.not_before, ari)
    }

    /// This lifetime schedule with the CA's renewal window over it, when ARI has a usable
    /// one for the certificate valid from `not_before`: the chosen time, or earlier when
    /// the window ends before the CA may be asked again (RFC 9773 §4.2), never later than
    /// the safety net (the last 1/20 of the lifetime).
    pub fn with_ari(self, not_before: OffsetDateTime, ari: Option<&AriState>) -> Self {
        let Some(w) = ari.and_then(|a| a.window(not_before)) else {
            return self;
        };
        let net = self.not_after - (self.not_after - not_before) / 20;
        // The Retry-After comes from a renew-writable document: a span past the calendar
        // means the window ends before the CA may be asked again, so renew now.
        let ask_by = w.end.checked_sub(w.retry_every).unwrap_or(not_before);
        let chosen = w.chosen_at.min(ask_by);
        let (renew_at, basis) = if chosen <= net {
            (chosen, Basis::Ari)
        } else {
            (net, Basis::SafetyNet)
        };
        Schedule {
            renew_at,
            basis,
            ..self
        }
    }

    /// The decision at `now`: expired, due at the renewal point, or kept until it.
    pub fn at(self, now: OffsetDateTime) -> Decision {
        let Schedule {
            renew_at,
            basis,
            not_after,
        } = self;
        if now >= not_after {
            Decision::Renew(Reason::Expired { not_after })
        } else if now >= renew_at {
            Decision::Renew(Reason::Due { renew_at, basis })
        } else {
            Decision::Keep { renew_at, basis }
        }
    }
}

/// Why a certificate is (re)issued now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    NotIssued,
    Damaged(String),
    Forced,
    DomainsChanged {
        added: Vec<DomainName>,
        removed: Vec<DomainName>,
    },
    KeyTypeChanged {
        from: Option<KeyType>,
        to: KeyType,
    },
    Expired {
        not_after: OffsetDateTime,
    },
    Due {
        renew_at: OffsetDateTime,
        basis: Basis,
    },
    /// `certvault revoke` revoked the current certificate.
    Revoked {
        at: OffsetDateTime,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NotIssued => f.write_str("not issued yet"),
            Reason::Damaged(why) => write!(f, "the stored record is damaged: {why}"),
            Reason::Forced => f.write_str("forced"),
            Reason::DomainsChanged { added, removed } => {
                f.write_str("names changed")?;
                if !added.is_empty() {
                    write!(f, " (+{})", join(added))?;
                }
                if !removed.is_empty() {
                    write!(f, " (-{})", join(removed))?;
                }
                Ok(())
            }
            Reason::KeyTypeChanged { from, to } => match from {
                Some(from) => write!(f, "key type changed from {from} to {to}"),
                None => write!(f, "key type changed to {to}"),
            },
            Reason::Expired { not_after } => write!(f, "expired at {}", rfc3339(*not_after)),
            // The public contract: when ARI decides, the reason is `ari`.
            Reason::Due {
                basis: Basis::Ari, ..
            } => f.write_str("ari"),
            Reason::Due { renew_at, basis } => {
                write!(f, "renewal point {} reached ({basis})", rfc3339(*renew_at))
            }
            Reason::Revoked { at } => write!(f, "revoked at {}", rfc3339(*at)),
        }
    }
}

fn join(names: &[DomainName]) -> String {
    names
        .iter()
        .map(DomainName::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

pub use crate::text::rfc3339;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Renew(Reason),
    Keep {
        renew_at: OffsetDateTime,
        basis: Basis,
    },
}

impl Decision {
    pub fn is_due(&self) -> bool {
        matches!(self, Decision::Renew(_))
    }
}

/// Whether `renew_before` can be satisfied by a certificate of this lifetime.
pub fn renew_before_fits(current: &Current, renew_before: &HumanDuration) -> bool {
    time::Duration::try_from(renew_before.0)
        .is_ok_and(|b| b < current.not_after - current.not_before)
}

/// When the certificate becomes due, and why there. A `renew_before` at or above the
/// lifetime could never be satisfied: the default rule applies instead (as cert-manager).
pub fn renewal_point(
    current: &Current,
    renew_before: Option<&HumanDuration>,
) -> (OffsetDateTime, Basis) {
    let lifetime = current.not_after - current.not_before;
    let short = lifetime <= time::Duration::days(10);
    let left = if short { lifetime / 2 } else { lifetime / 3 };
    let default = current.not_after - left;
    match renew_before {
        Some(before) if renew_before_fits(current, before) => (
            time::Duration::try_from(before.0)
                .ok()
                .and_then(|b| current.not_after.checked_sub(b))
                .unwrap_or(current.not_before),
            Basis::RenewBefore(before.clone()),
        ),
        Some(before) => (
            default,
            Basis::RenewBeforeTooLong {
                renew_before: before.clone(),
                short,
            },
        ),
        None => (default, Basis::LifetimeFraction { short }),
    }
}

/// What makes a certificate due whatever the time, checked in order: damaged, missing,
/// forced, names changed, key type changed, revoked. `Ok` with the current certificate
/// when none does (its [`Schedule`] decides). Clock-free.
pub fn due_now<'a>(facts: &Facts<'a>) -> Result<&'a Current, Reason> {
    if let Some(damage) = facts.damage {
        return Err(Reason::Damaged(damage.to_string()));
    }
    let Some(current) = facts.current else {
        return Err(Reason::NotIssued);
    };
    if facts.force {
        return Err(Reason::Forced);
    }
    let wanted: BTreeSet<DomainName> = facts.wanted.domains.iter().cloned().collect();
    if wanted != current.domains {
        return Err(Reason::DomainsChanged {
            added: wanted.difference(&current.domains).cloned().collect(),
            removed: current.domains.difference(&wanted).cloned().collect(),
        });
    }
    if current.key_type != Some(facts.wanted.key_type) {
        return Err(Reason::KeyTypeChanged {
            from: current.key_type,
            to: facts.wanted.key_type,
        });
    }
    if let Some(at) = facts.revoked_at {
        return Err(Reason::Revoked { at });
    }
    Ok(current)
}

/// Decide whether a certificate is (re)issued now: [`due_now`], else its [`Schedule`] at
/// `now` (expired, renewal point reached, or kept).
pub fn decide(now: OffsetDateTime, facts: &Facts<'_>) -> Decision {
    match due_now(facts) {
        Err(reason) => Decision::Renew(reason),
        Ok(current) => Schedule::of(current, facts.wanted.renew_before.as_ref(), facts.ari).at(now),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    mod ari_table;
    use super::*;
    use crate::model::{HumanDuration, SolverSpec};
    use time::macros::datetime;

    /// `text` is what `Display` writes, and borrowed (no copy) for every fixed text.
    #[test]
    fn a_basis_text_is_its_display_and_fixed_texts_are_not_copied() {
        let d: HumanDuration = "30d".parse().unwrap();
        let all = [
            Basis::RenewBefore(d.clone()),
            Basis::LifetimeFraction { short: false },
            Basis::LifetimeFraction { short: true },
            Basis::RenewBeforeTooLong {
                renew_before: d,
                short: true,
            },
            Basis::Ari,
            Basis::SafetyNet,
        ];
        for b in &all {
            let text = b.text();
            assert_eq!(text, b.to_string(), "{b:?}");
            assert!(!text.is_empty(), "{b:?}");
            let fixed = !matches!(b, Basis::RenewBefore(_) | Basis::RenewBeforeTooLong { .. });
            assert_eq!(
                matches!(text, std::borrow::Cow::Borrowed(_)),
                fixed,
                "{b:?}"
            );
        }
    }

    /// A spec with exec hooks `true` (the agreement test of `list` uses it too).
    pub(crate) fn spec(domains: &[&str], key_type: KeyType, renew_before: Option<&str>) -> Spec {
        Spec {
            domains: domains.iter().map(|d| d.parse().unwrap()).collect(),
            key_type,
            dns: SolverSpec::Exec(crate::dns::exec::Config {
                auth_hook: "true".into(),
                cleanup_hook: "true".into(),
            }),
            renew_before: renew_before.map(|r| r.parse::<HumanDuration>().unwrap()),
            account: "default".into(),
            follow_cname: true,
            propagation_check: None,
            deploy_hook: None,
            layouts: Vec::new(),
            profile: None,
            reuse_key: false,
            hook_env: Vec::new(),
        }
    }

    fn current(days: i64, domains: &[&str], key_type: KeyType) -> Current {
        let not_before = datetime!(2026-01-01 0:00 UTC);
        Current {
            not_before,
            not_after: not_before + time::Duration::days(days),
            domains: domains.iter().map(|d| d.parse().unwrap()).collect(),
            key_type: Some(key_type),
        }
    }

    #[test]
    fn decision_table() {
        use KeyType::*;
        let names = ["example.com", "*.example.com"];
        let c90 = current(90, &names, EcdsaP256);
        let c6 = current(6, &names, EcdsaP256);
        let c90_rsa = current(90, &names, Rsa2048);
        let c90_other = current(90, &["example.com"], EcdsaP256);
        let plain = spec(&names, EcdsaP256, None);
        let reordered = spec(&["*.example.com", "example.com"], EcdsaP256, None);
        let before30 = spec(&names, EcdsaP256, Some("30d"));
        let before10y = spec(&names, EcdsaP256, Some("3650d"));
        let before90 = spec(&names, EcdsaP256, Some("90d"));
        let jan = |d: u8, h: u8| {
            datetime!(2026-01-01 0:00 UTC)
                .replace_day(d)
                .unwrap()
                .replace_hour(h)
                .unwrap()
        };
        let day = |n: i64| datetime!(2026-01-01 0:00 UTC) + time::Duration::days(n);

        // (name, now, wanted, current, force, expected due?, expected renew_at for Keep/Due)
        type Row<'a> = (
            &'a str,
            OffsetDateTime,
            &'a Spec,
            Option<&'a Current>,
            bool,
            &'a str,
        );
        let rows: Vec<Row> = vec![
            ("missing", day(0), &plain, None, false, "not issued yet"),
            ("fresh", day(1), &plain, Some(&c90), false, "keep 2026-03-02T00:00:00Z 1/3"),
            ("reordered names keep", day(1), &reordered, Some(&c90), false, "keep 2026-03-02T00:00:00Z 1/3"),
            ("one second before 1/3", day(60) - time::Duration::seconds(1), &plain, Some(&c90), false, "keep 2026-03-02T00:00:00Z 1/3"),
            ("at 1/3", day(60), &plain, Some(&c90), false, "renewal point 2026-03-02T00:00:00Z reached (1/3 of lifetime left)"),
            ("forced when fresh", day(1), &plain, Some(&c90), true, "forced"),
            ("forced when missing", day(1), &plain, None, true, "not issued yet"),
            ("expired", day(91), &plain, Some(&c90), false, "expired at 2026-04-01T00:00:00Z"),
            ("names changed", day(1), &plain, Some(&c90_other), false, "names changed (+*.example.com)"),
            ("key type changed", day(1), &plain, Some(&c90_rsa), false, "key type changed from rsa2048 to ecdsa-p256"),
            ("renew_before 30d keep", day(59), &before30, Some(&c90), false, "keep 2026-03-02T00:00:00Z renew_before"),
            ("renew_before 30d due", day(61), &before30, Some(&c90), false, "renewal point 2026-03-02T00:00:00Z reached (renew_before 30d before expiry)"),
            ("renew_before longer than lifetime: default rule", day(1), &before10y, Some(&c90), false, "keep 2026-03-02T00:00:00Z 1/3 of lifetime left: renew_before 3650d is not shorter"),
            ("renew_before equal to lifetime: default rule", day(61), &before90, Some(&c90), false, "renewal point 2026-03-02T00:00:00Z reached (1/3 of lifetime left: renew_before 90d"),
            ("short-lived keep", jan(3, 23), &plain, Some(&c6), false, "keep 2026-01-04T00:00:00Z 1/2"),
            ("short-lived due at half", jan(4, 0), &plain, Some(&c6), false, "renewal point 2026-01-04T00:00:00Z reached (1/2 of lifetime left (short-lived certificate))"),
        ];
        for (name, now, wanted, cur, force, expected) in rows {
            let got = decide(now, &Facts::plain(wanted, cur, force));
            let text = decision_text(&got);
            assert!(
                text.starts_with(expected),
                "{name}: got {text:?}, want {expected:?}"
            );
            assert_eq!(got.is_due(), !expected.starts_with("keep"), "{name}");
        }
    }

    /// A decision as the tables state it: the reason, or `keep <renewal point> <basis>`.
    fn decision_text(d: &Decision) -> String {
        match d {
            Decision::Renew(r) => r.to_string(),
            Decision::Keep { renew_at, basis } => format!("keep {} {basis}", rfc3339(*renew_at)),
        }
    }

    #[test]
    fn a_huge_renew_before_falls_back_to_the_default_not_a_panic() {
        let c = current(90, &["a.example.com"], KeyType::EcdsaP256);
        let (default, _) = renewal_point(&c, None);
        for text in ["20000y", "1000000000000d"] {
            let huge: HumanDuration = text.parse().unwrap();
            let (at, basis) = renewal_point(&c, Some(&huge));
            assert_eq!(at, default, "{text}");
            assert!(basis.to_string().contains(text), "{basis}");
        }
    }

    #[test]
    fn a_forged_retry_after_past_the_calendar_renews_now_not_a_panic() {
        let c = current(90, &["a.example.com"], KeyType::EcdsaP256);
        let far = |y: i32| datetime!(2026-01-01 0:00 UTC).replace_year(y).unwrap();
        let ari = AriState {
            window_start: Some(c.not_before + time::Duration::days(60)),
            window_end: Some(c.not_before + time::Duration::days(70)),
            chosen_at: Some(c.not_before + time::Duration::days(65)),
            fetched_at: Some(far(-9999)),
            retry_after: Some(far(9999)),
            serial: "01".into(),
            ..Default::default()
        };
        let s = Schedule::of(&c, None, Some(&ari));
        assert_eq!((s.renew_at, s.basis), (c.not_before, Basis::Ari));
    }

    #[test]
    fn boundary_of_ten_days_is_short() {
        let c = current(10, &["a.example.com"], KeyType::EcdsaP256);
        let (at, basis) = renewal_point(&c, None);
        assert_eq!(basis, Basis::LifetimeFraction { short: true });
        assert_eq!(at, c.not_before + time::Duration::days(5));
        let c = current(11, &["a.example.com"], KeyType::EcdsaP256);
        assert_eq!(
            renewal_point(&c, None).1,
            Basis::LifetimeFraction { short: false }
        );
    }
}
