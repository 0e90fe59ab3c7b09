//! Validation of the suppliers and mandates in `partners.toml` (P080–P089).

use std::collections::{BTreeMap, BTreeSet};

use toml::Spanned;

use super::{Problems, SourceText, is_ident, parse_fingerprint};
use crate::policy::mandate::{self, Coverage, Direction, Mandate, Mandates, Supplier};
use crate::policy::model::Organisation;
use crate::policy::raw::{RawMandate, RawSupplier};

/// A mandate's overleg reference, checked once the overleggen are known.
pub(super) struct OverlegRef {
    pub file: String,
    pub line: usize,
    pub overleg: String,
}

/// Suppliers with unique ids and OINs that no organisation uses.
pub(super) fn suppliers(
    src: &SourceText,
    raw: Vec<Spanned<RawSupplier>>,
    organisations: &BTreeMap<String, Organisation>,
    problems: &mut Problems,
) -> BTreeMap<String, Supplier> {
    let mut out = BTreeMap::new();
    let mut oins: BTreeMap<String, String> = organisations
        .values()
        .filter_map(|o| Some((o.oin.clone()?, o.id.clone())))
        .collect();
    for s in raw {
        let at = s.span().start;
        let s = s.into_inner();
        let mut fail = |code, message| problems.at(src, at, code, message);
        if !is_ident(&s.id) {
            fail(
                "P080",
                format!("supplier id `{}` is not a valid identifier", s.id),
            );
        }
        if organisations.contains_key(&s.id) || out.contains_key(&s.id) {
            fail("P080", format!("supplier id `{}` is already used", s.id));
        }
        if s.name.trim().is_empty() {
            fail("P081", format!("supplier `{}` has no name", s.id));
        }
        let oin = s.oin.trim().to_ascii_uppercase();
        if let Err(e) = crate::policy::oin::Oin::parse(&oin) {
            fail("P082", format!("supplier `{}`: OIN `{oin}`: {e}", s.id));
        } else if let Some(other) = oins.insert(oin.clone(), s.id.clone()) {
            fail(
                "P082",
                format!("supplier `{}` has the same OIN as `{other}`", s.id),
            );
        }
        let mut fingerprints = Vec::new();
        for fp in &s.fingerprints {
            match parse_fingerprint(fp) {
                Some(b) => fingerprints.push(b),
                None => fail(
                    "P083",
                    format!(
                        "supplier `{}`: fingerprint `{fp}` must be sha256:<64 hex digits>",
                        s.id
                    ),
                ),
            }
        }
        let processor_agreement = s.processor_agreement.filter(|r| !r.trim().is_empty());
        out.insert(
            s.id.clone(),
            Supplier {
                id: s.id,
                name: s.name,
                oin,
                fingerprints,
                processor_agreement,
                line: src.line_of(at),
            },
        );
    }
    out
}

/// Mandates between known suppliers and organisations, with a direction,
/// a coverage and valid days. Overleg references are returned for a check
/// once the overleggen are read.
pub(super) fn mandates(
    src: &SourceText,
    raw: Vec<Spanned<RawMandate>>,
    suppliers: BTreeMap<String, Supplier>,
    organisations: &BTreeMap<String, Organisation>,
    problems: &mut Problems,
) -> (Mandates, Vec<OverlegRef>) {
    let mut all = Vec::new();
    let mut refs = Vec::new();
    for m in raw {
        let at = m.span().start;
        let m = m.into_inner();
        let mut fail = |code, message: String| problems.at(src, at, code, message);
        let who = format!("mandate of `{}` for `{}`", m.supplier, m.organisation);
        if !suppliers.contains_key(&m.supplier) {
            fail(
                "P084",
                format!("{who}: supplier `{}` is not in partners.toml", m.supplier),
            );
        }
        if !organisations.contains_key(&m.organisation) {
            fail(
                "P084",
                format!(
                    "{who}: organisation `{}` is not in partners.toml",
                    m.organisation
                ),
            );
        }
        let direction = Direction::parse(&m.direction);
        if direction.is_none() {
            fail(
                "P085",
                format!(
                    "{who}: direction `{}` must be \"client\" or \"bron\"",
                    m.direction
                ),
            );
        }
        let overleggen = coverage(&m.overleggen);
        match &overleggen {
            None => fail(
                "P086",
                format!("{who}: overleggen must name casusoverleggen, or be [\"*\"] for all"),
            ),
            Some(Coverage::Only(ids)) => refs.extend(ids.iter().map(|o| OverlegRef {
                file: src.display.clone(),
                line: src.line_of(at),
                overleg: o.clone(),
            })),
            Some(Coverage::All) => {}
        }
        let valid = validity(&m, &mut fail, &who);
        if let (Some(direction), Some(overleggen), Some((from, until))) =
            (direction, overleggen, valid)
        {
            all.push(Mandate {
                supplier: m.supplier,
                organisation: m.organisation,
                direction,
                overleggen,
                valid_from: m.valid_from,
                valid_until: m.valid_until,
                from,
                until,
                line: src.line_of(at),
            });
        }
    }
    let principals = organisations
        .values()
        .filter_map(|o| Some((o.oin.clone()?, o.id.clone())))
        .collect();
    (Mandates::new(suppliers, all, principals), refs)
}

/// `["*"]` for all overleggen, or a non-empty list of ids.
fn coverage(ids: &[String]) -> Option<Coverage> {
    match ids {
        [] => None,
        [all] if all == "*" => Some(Coverage::All),
        ids if ids.iter().all(|i| is_ident(i)) => {
            Some(Coverage::Only(ids.iter().cloned().collect::<BTreeSet<_>>()))
        }
        _ => None,
    }
}

/// The first valid moment and the end (the start of the day after the last
/// valid day), in unix seconds; `None` after reporting what is wrong.
fn validity(
    m: &RawMandate,
    fail: &mut impl FnMut(&'static str, String),
    who: &str,
) -> Option<(i64, Option<i64>)> {
    let from = mandate::day_start(&m.valid_from);
    if from.is_none() {
        fail(
            "P087",
            format!(
                "{who}: valid_from `{}` must be a day, YYYY-MM-DD",
                m.valid_from
            ),
        );
    }
    let until = m.valid_until.as_deref().map(mandate::day_end);
    if let (Some(d), Some(None)) = (&m.valid_until, until) {
        fail(
            "P087",
            format!("{who}: valid_until `{d}` must be a day, YYYY-MM-DD"),
        );
    }
    let from = from?;
    let until = until.map_or(Some(None), |u| u.map(Some))?;
    if until.is_some_and(|u| u <= from) {
        fail("P087", format!("{who}: valid_until is before valid_from"));
        return None;
    }
    Some((from, until))
}

#[cfg(test)]
mod tests {
    use crate::policy::fixture::Fixture;
    use crate::policy::load::LoadError;
    use crate::policy::mandate::{Coverage, Direction};

    const GOOD: &str = r#"
[[suppliers]]
id = "lev"
name = "Leverancier"
oin = "00000099000000000901"
processor_agreement = "VWO-1"

[[mandates]]
supplier = "lev"
organisation = "school"
direction = "client"
overleggen = ["team"]
valid_from = "2026-01-01"
valid_until = "2026-12-31"

[[mandates]]
supplier = "lev"
organisation = "school"
direction = "bron"
overleggen = ["*"]
valid_from = "2026-01-01"
"#;

    #[test]
    fn suppliers_and_mandates_load() {
        let set = Fixture::new().append("partners.toml", GOOD).set();
        let m = &set.mandates;
        assert_eq!(m.suppliers["lev"].oin, "00000099000000000901");
        assert_eq!(m.all.len(), 2);
        assert_eq!(m.all[0].direction, Direction::Client);
        assert_eq!(m.all[1].overleggen, Coverage::All);
        assert_eq!(m.between("lev", "school").count(), 2);
    }

    /// Every problem of the file at once, each with its code and line.
    #[test]
    fn every_problem_is_reported_with_its_line() {
        let bad = r#"
[[suppliers]]
id = "school"
name = " "
oin = "00000099000000000001"
fingerprints = ["sha1:00"]

[[mandates]]
supplier = "niemand"
organisation = "nergens"
direction = "beide"
overleggen = []
valid_from = "1-1-2026"

[[mandates]]
supplier = "school"
organisation = "school"
direction = "client"
overleggen = ["bestaat-niet"]
valid_from = "2026-02-01"
valid_until = "2026-01-01"
"#;
        let fixture = Fixture::new().append("partners.toml", bad);
        let Err(LoadError::Invalid(problems)) = fixture.load() else {
            panic!("loads");
        };
        let base = crate::policy::fixture::PARTNERS.lines().count();
        let got: Vec<(&str, usize)> = problems.iter().map(|p| (p.code, p.line - base)).collect();
        // Lines relative to the appended text (its first line is blank).
        for want in [
            ("P080", 2),
            ("P081", 2),
            ("P082", 2),
            ("P083", 2),
            ("P084", 8),
            ("P085", 8),
            ("P086", 8),
            ("P087", 8),
            ("P086", 15),
            ("P087", 15),
        ] {
            assert!(got.contains(&want), "{want:?} not in {got:?}");
        }
    }
}
