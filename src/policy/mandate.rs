//! Software suppliers and their mandates (machtigingen), from the partner
//! registry. A supplier connects with its own PKIoverheid certificate on
//! behalf of organisations (a school's pupil administration is a SaaS
//! product); it is the organisation's processor (AVG art. 28), and the
//! organisation stays the controller. A mandate says: supplier X acts for
//! organisation Y, in one direction, for some overleggen or all, from a day
//! until a day.
//!
//! Everything here is decided from the published snapshot in memory: no
//! store is consulted on the request path.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// The Netherlands' time zone: mandate days are Dutch calendar days.
static AMSTERDAM: TimeZone = jiff::tz::get!("Europe/Amsterdam");

/// A software supplier (processor) that connects for organisations.
#[derive(Debug, Clone)]
pub struct Supplier {
    pub id: String,
    pub name: String,
    /// 20-character OIN, upper-case; matched against `subject.serialNumber`.
    pub oin: String,
    /// SHA-256 certificate fingerprints; when non-empty the certificate must
    /// match one.
    pub fingerprints: Vec<[u8; 32]>,
    /// The reference of the processing agreement (verwerkersovereenkomst)
    /// with the organisations it acts for; the lint flags a supplier without.
    pub processor_agreement: Option<String>,
    /// Line in `partners.toml`, for findings.
    pub line: usize,
}

/// In which direction a supplier acts for an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    /// As a client calling the gateway on the organisation's behalf.
    Client,
    /// As the host of the organisation's bronnen.
    Bron,
}

impl Direction {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "client" => Some(Self::Client),
            "bron" => Some(Self::Bron),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Bron => "bron",
        }
    }
}

/// Which overleggen a mandate covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coverage {
    All,
    Only(BTreeSet<String>),
}

impl Coverage {
    pub fn covers(&self, overleg: Option<&str>) -> bool {
        match (self, overleg) {
            (Coverage::All, _) => true,
            (Coverage::Only(ids), Some(o)) => ids.contains(o),
            (Coverage::Only(_), None) => false,
        }
    }
}

/// Supplier `supplier` acts for organisation `organisation`.
#[derive(Debug, Clone)]
pub struct Mandate {
    pub supplier: String,
    pub organisation: String,
    pub direction: Direction,
    pub overleggen: Coverage,
    /// The first day it is valid (a Dutch calendar day, `YYYY-MM-DD`).
    pub valid_from: String,
    /// The last day it is valid, if it ends.
    pub valid_until: Option<String>,
    /// Unix seconds: valid from `from` (inclusive) until `until` (exclusive).
    pub from: i64,
    pub until: Option<i64>,
    /// Line in `partners.toml`, for findings.
    pub line: usize,
}

impl Mandate {
    pub fn active_at(&self, now: i64) -> bool {
        self.from <= now && self.until.is_none_or(|u| now < u)
    }
}

/// Why no mandate lets a supplier act for an organisation (the problem
/// detail and the record say which; the code is `no-mandate` for all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// The named principal is not an organisation of the registry.
    UnknownPrincipal,
    /// The named supplier is not in the registry (CLI and explain only: a
    /// certificate is a supplier's only when the registry lists it).
    UnknownSupplier,
    /// No mandate of this supplier for this organisation at all.
    None,
    /// Mandates exist, but for the other direction only.
    OtherDirection,
    /// Mandates in this direction exist, but not for this overleg.
    OtherOverleg,
    /// A covering mandate exists but has not begun.
    NotYetValid,
    /// A covering mandate existed but has ended.
    Expired,
}

impl Missing {
    pub fn as_str(self) -> &'static str {
        match self {
            Missing::UnknownPrincipal => "the principal is not in the partner registry",
            Missing::UnknownSupplier => "the supplier is not in the partner registry",
            Missing::None => "the supplier holds no mandate of this organisation",
            Missing::OtherDirection => "the supplier's mandate is for the other direction",
            Missing::OtherOverleg => "the supplier's mandate does not cover this casusoverleg",
            Missing::NotYetValid => "the supplier's mandate is not valid yet",
            Missing::Expired => "the supplier's mandate has expired",
        }
    }
}

/// The suppliers and mandates of a policy set, indexed for the request path.
#[derive(Debug, Clone, Default)]
pub struct Mandates {
    pub suppliers: BTreeMap<String, Supplier>,
    /// Every mandate, in file order.
    pub all: Vec<Mandate>,
    /// supplier → organisation → indexes into `all` (nested, so a lookup
    /// borrows its keys and allocates nothing).
    index: BTreeMap<String, BTreeMap<String, Vec<usize>>>,
    /// OIN → organisation id, for the principal an `X-Namens` names.
    principals: BTreeMap<String, String>,
}

impl Mandates {
    /// Indexes `all`; `principals` maps each organisation's OIN to its id.
    pub fn new(
        suppliers: BTreeMap<String, Supplier>,
        all: Vec<Mandate>,
        principals: BTreeMap<String, String>,
    ) -> Self {
        let mut index: BTreeMap<String, BTreeMap<String, Vec<usize>>> = BTreeMap::new();
        for (i, m) in all.iter().enumerate() {
            index
                .entry(m.supplier.clone())
                .or_default()
                .entry(m.organisation.clone())
                .or_default()
                .push(i);
        }
        Self {
            suppliers,
            all,
            index,
            principals,
        }
    }

    /// The organisation whose OIN is `oin`.
    pub fn principal(&self, oin: &str) -> Option<&str> {
        self.principals.get(oin).map(String::as_str)
    }

    /// The mandates of `supplier` for `organisation`.
    pub fn between<'a>(
        &'a self,
        supplier: &str,
        organisation: &str,
    ) -> impl Iterator<Item = &'a Mandate> + 'a {
        self.index
            .get(supplier)
            .and_then(|by_org| by_org.get(organisation))
            .into_iter()
            .flatten()
            .filter_map(|i| self.all.get(*i))
    }

    /// The active mandate that lets `supplier` act for `organisation` in
    /// `direction` for `overleg` at `now`, or why there is none.
    pub fn find(
        &self,
        supplier: &str,
        organisation: &str,
        direction: Direction,
        overleg: Option<&str>,
        now: i64,
    ) -> Result<&Mandate, Missing> {
        let mut why = Missing::None;
        for m in self.between(supplier, organisation) {
            let step = if m.direction != direction {
                Missing::OtherDirection
            } else if !m.overleggen.covers(overleg) {
                Missing::OtherOverleg
            } else if now < m.from {
                Missing::NotYetValid
            } else if !m.active_at(now) {
                Missing::Expired
            } else {
                return Ok(m);
            };
            // Report the reason closest to a match.
            why = why.max_by_closeness(step);
        }
        Err(why)
    }

    /// The active client mandate that lets `supplier` act for
    /// `organisation` in `overleg` at `now`: the one lookup behind X-Namens,
    /// `policy explain --via` and `cases --via`.
    pub fn acting_for(
        &self,
        supplier: &str,
        organisation: &str,
        overleg: Option<&str>,
        now: i64,
    ) -> Result<&Mandate, Missing> {
        if !self.suppliers.contains_key(supplier) {
            return Err(Missing::UnknownSupplier);
        }
        self.find(supplier, organisation, Direction::Client, overleg, now)
    }

    /// Every organisation `supplier` holds a mandate of (any direction,
    /// any time), for the registry's views.
    pub fn organisations_of(&self, supplier: &str) -> BTreeSet<&str> {
        self.all
            .iter()
            .filter(|m| m.supplier == supplier)
            .map(|m| m.organisation.as_str())
            .collect()
    }
}

impl Missing {
    fn rank(self) -> u8 {
        match self {
            Missing::UnknownPrincipal | Missing::UnknownSupplier => 0,
            Missing::None => 1,
            Missing::OtherDirection => 2,
            Missing::OtherOverleg => 3,
            Missing::NotYetValid | Missing::Expired => 4,
        }
    }

    fn max_by_closeness(self, other: Missing) -> Missing {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

/// Unix seconds at which Dutch calendar day `day` (`YYYY-MM-DD`) begins, or
/// `None` when it is not such a day.
pub fn day_start(day: &str) -> Option<i64> {
    starts_at(civil_day(day)?)
}

/// Unix seconds at which the day after Dutch calendar day `day` begins: a
/// mandate valid until `day` is valid on all of that day.
pub fn day_end(day: &str) -> Option<i64> {
    starts_at(civil_day(day)?.tomorrow().ok()?)
}

/// `YYYY-MM-DD` exactly (no time, no other form jiff would accept).
fn civil_day(day: &str) -> Option<jiff::civil::Date> {
    if day.len() != 10 {
        return None;
    }
    day.parse().ok()
}

/// Unix seconds at which `date` begins in the Netherlands.
fn starts_at(date: jiff::civil::Date) -> Option<i64> {
    let zoned = date.to_zoned_datetime(AMSTERDAM.clone()).ok()?;
    Some(zoned.timestamp().as_second())
}

/// Now, in unix seconds.
pub fn now() -> i64 {
    Timestamp::now().as_second()
}

#[cfg(test)]
#[allow(
    clippy::too_many_lines,
    clippy::type_complexity,
    reason = "table-driven tests list their cases in one place"
)]
mod tests {
    use super::*;

    fn mandate(
        org: &str,
        direction: Direction,
        cover: Coverage,
        from: &str,
        until: Option<&str>,
    ) -> Mandate {
        Mandate {
            supplier: "lev".into(),
            organisation: org.into(),
            direction,
            overleggen: cover,
            valid_from: from.into(),
            valid_until: until.map(str::to_owned),
            from: day_start(from).unwrap(),
            until: until.map(|u| day_end(u).unwrap()),
            line: 1,
        }
    }

    fn only(ids: &[&str]) -> Coverage {
        Coverage::Only(ids.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn days_are_dutch_calendar_days() {
        // 1 January 2027 begins at 23:00 UTC the day before (CET, +01:00).
        assert_eq!(day_start("2027-01-01"), Some(1_798_758_000));
        // A mandate valid until 30 June 2027 ends at midnight CEST (+02:00).
        assert_eq!(day_end("2027-06-30"), Some(1_814_392_800));
        for bad in [
            "2027-13-01",
            "2027-02-30",
            "27-01-01",
            "2027-01-01T00:00:00Z",
            "",
        ] {
            assert_eq!(day_start(bad), None, "{bad}");
        }
    }

    #[test]
    fn find_reports_the_closest_reason() {
        let t = |d: &str| day_start(d).unwrap() + 3600;
        let m = Mandates::new(
            BTreeMap::new(),
            vec![
                mandate(
                    "school-a",
                    Direction::Client,
                    only(&["ov-1"]),
                    "2026-01-01",
                    Some("2026-12-31"),
                ),
                mandate(
                    "school-a",
                    Direction::Bron,
                    Coverage::All,
                    "2026-01-01",
                    None,
                ),
                mandate(
                    "school-b",
                    Direction::Client,
                    Coverage::All,
                    "2027-01-01",
                    None,
                ),
            ],
            BTreeMap::new(),
        );
        let find = |org: &str, dir: Direction, ov: Option<&str>, now: i64| {
            m.find("lev", org, dir, ov, now)
                .map(|m| m.organisation.clone())
        };
        let now = t("2026-06-01");
        // (organisation, direction, overleg, at, expected)
        let cases: Vec<(&str, Direction, Option<&str>, i64, Result<String, Missing>)> = vec![
            (
                "school-a",
                Direction::Client,
                Some("ov-1"),
                now,
                Ok("school-a".into()),
            ),
            (
                "school-a",
                Direction::Client,
                Some("ov-2"),
                now,
                Err(Missing::OtherOverleg),
            ),
            (
                "school-a",
                Direction::Client,
                None,
                now,
                Err(Missing::OtherOverleg),
            ),
            (
                "school-a",
                Direction::Bron,
                Some("ov-2"),
                now,
                Ok("school-a".into()),
            ),
            // Valid on all of its last day, not the day after.
            (
                "school-a",
                Direction::Client,
                Some("ov-1"),
                t("2026-12-31") + 20 * 3600,
                Ok("school-a".into()),
            ),
            (
                "school-a",
                Direction::Client,
                Some("ov-1"),
                t("2027-01-01"),
                Err(Missing::Expired),
            ),
            (
                "school-b",
                Direction::Client,
                Some("ov-1"),
                now,
                Err(Missing::NotYetValid),
            ),
            (
                "school-b",
                Direction::Bron,
                Some("ov-1"),
                now,
                Err(Missing::OtherDirection),
            ),
            (
                "school-c",
                Direction::Client,
                Some("ov-1"),
                now,
                Err(Missing::None),
            ),
        ];
        for (org, dir, ov, at, want) in cases {
            assert_eq!(find(org, dir, ov, at), want, "{org} {dir:?} {ov:?}");
        }
    }
}
