//! `audit ontvangen --org O --overleg X --van D --tot D`: everything
//! organisation O received in casusoverleg X in a period, per field (issue
//! 18 (b)): how often, about how many distinct pupils, under which rules
//! and the role's grondslag.
//!
//! "Received" is decided as in the inzage report ([`inzage::parties`]): the
//! caller of a read, the bron's owner for a delivery to a bron. Allowed and
//! filtered records count (both released data); refused and failed ones do
//! not, and neither does a record the writer later corrected (never
//! delivered, see `audit::writer`).
//!
//! The walk reads the overleg's requests of the period page by page
//! ([`query::for_each`], through the `(overleg, time)` index) and keeps only
//! the aggregates: per (role, bron, field) a count, the rule ids and
//! grondslagen seen, and the set of 64-bit hashes of the pupils'
//! pseudonyms. The distinct count is therefore exact up to a 64-bit hash
//! collision (for a million pupils about one chance in 30 million of being
//! one too low). Memory follows the number of fields times the distinct
//! pupils per field, not the number of records. A pupil whose records lie
//! under two pseudonym key versions counts twice; a purged record (its
//! pupil erased) counts as a receipt but not as a pupil.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::ops::ControlFlow;

use maud::{Markup, html};
use serde::Serialize;
use sqlx::Row;

use super::inzage::{self, Parties};
use super::{ReviewError, query, when};
use crate::audit::{Store, StoredRow};
use crate::policy::model::{Act, PolicySet};

/// Records per page while the walk reads the trail.
const PAGE: usize = 10_000;

/// One field as the organisation received it in one role.
#[derive(Debug, Clone, Serialize)]
pub struct FieldLine {
    /// The role in which the organisation received it.
    pub role: String,
    pub role_name: String,
    /// The role's grondslag as the records state it (more than one when
    /// the policy changed it during the period).
    pub grondslag: Vec<String>,
    pub bron: String,
    pub bron_name: String,
    pub path: String,
    pub label: String,
    /// normal / health / criminal / bsn (unknown: no longer in the catalogue).
    pub category: String,
    pub category_label: String,
    /// How many disclosures (records) held this field.
    pub times: u64,
    /// How many distinct pupils (pseudonyms) it was about.
    pub pupils: usize,
    /// The rules that allowed it.
    pub rules: Vec<String>,
}

/// The whole answer.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub org: String,
    pub org_name: String,
    pub overleg: String,
    pub overleg_name: String,
    /// Inclusive lower bound (stored form).
    pub from: String,
    /// Exclusive upper bound (stored form).
    pub to: String,
    /// Request records of the overleg read in the period (every outcome,
    /// every organisation).
    pub records_read: usize,
    /// Disclosures to the organisation that count (allowed or filtered).
    pub disclosures: u64,
    /// Distinct pupils over all those disclosures.
    pub pupils: usize,
    /// Disclosures whose pupil was erased by a retention purge.
    pub purged: u64,
    /// The organisation's refused or failed requests (not counted).
    pub refused: u64,
    /// Records of the organisation the writer later corrected (not counted).
    pub corrected: u64,
    pub fields: Vec<FieldLine>,
}

/// A 64-bit hash of a pseudonym, for the distinct counts.
fn pupil_hash(pseudonym: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    pseudonym.hash(&mut h);
    h.finish()
}

#[derive(Default)]
struct Tally {
    times: u64,
    pupils: HashSet<u64>,
    rules: BTreeSet<String>,
    grondslag: BTreeSet<String>,
}

/// The running aggregates of the walk.
pub struct Counter<'a> {
    set: &'a PolicySet,
    org: &'a str,
    corrected_records: HashSet<(String, i64)>,
    records_read: usize,
    disclosures: u64,
    purged: u64,
    refused: u64,
    corrected: u64,
    pupils: HashSet<u64>,
    /// (role, bron, path) → tally.
    fields: BTreeMap<(String, String, String), Tally>,
}

impl<'a> Counter<'a> {
    /// A counter for `org`, leaving out the records named in `corrected`.
    pub fn new(set: &'a PolicySet, org: &'a str, corrected: HashSet<(String, i64)>) -> Self {
        Self {
            set,
            org,
            corrected_records: corrected,
            records_read: 0,
            disclosures: 0,
            purged: 0,
            refused: 0,
            corrected: 0,
            pupils: HashSet::new(),
            fields: BTreeMap::new(),
        }
    }

    /// Counts one request record of the overleg.
    pub fn add(&mut self, r: &StoredRow) {
        self.records_read += 1;
        if !matches!(r.outcome.as_str(), "allowed" | "filtered") {
            if r.org.as_deref() == Some(self.org) {
                self.refused += 1;
            }
            return;
        }
        // Cheap test first: the organisation called, or owns the bron (a
        // delivery to it); most records of a busy overleg are neither.
        let owns = |b: &str| {
            self.set
                .bronnen
                .get(b)
                .is_some_and(|b| b.owners.iter().any(|o| o == self.org))
        };
        if r.org.as_deref() != Some(self.org)
            && r.owner.as_deref() != Some(self.org)
            && !r.bron.as_deref().is_some_and(owns)
        {
            return;
        }
        let parties = inzage::parties(self.set, r);
        if parties.recipient != self.org {
            return;
        }
        if self
            .corrected_records
            .contains(&(r.instance.clone(), r.seq))
        {
            self.corrected += 1;
            return;
        }
        let fields = query::list(&r.fields_shared);
        if fields.is_empty() {
            return;
        }
        self.disclosures += 1;
        let pupil = r.pupil.as_deref().map(pupil_hash);
        match pupil {
            Some(h) => {
                self.pupils.insert(h);
            }
            None => self.purged += 1,
        }
        let (role, grondslag) = recipient_role(self.set, r, &parties);
        let bron = r.bron.clone().unwrap_or_default();
        let record_rules = query::list(&r.rules);
        for path in fields {
            let rules = rules_for_field(self.set, r, &record_rules, &path);
            let t = self
                .fields
                .entry((role.clone(), bron.clone(), path))
                .or_default();
            t.times += 1;
            if let Some(h) = pupil {
                t.pupils.insert(h);
            }
            t.rules.extend(rules);
            if let Some(g) = &grondslag
                && !t.grondslag.contains(g)
            {
                t.grondslag.insert(g.clone());
            }
        }
    }

    /// The report, with names and labels from the policy set.
    pub fn finish(self, overleg: &str, from: String, to: String) -> Report {
        let set = self.set;
        let o = set.overleggen.get(overleg);
        let fields = self
            .fields
            .into_iter()
            .map(|((role, bron_id, path), t)| {
                let bron = set.bronnen.get(&bron_id);
                let view = inzage::field_view(bron.map(AsRef::as_ref), path);
                FieldLine {
                    role_name: o
                        .and_then(|o| o.role(&role))
                        .map_or_else(|| role.clone(), |x| x.name.clone()),
                    role,
                    grondslag: t.grondslag.into_iter().collect(),
                    bron_name: bron.map_or_else(|| bron_id.clone(), |b| b.name.clone()),
                    bron: bron_id,
                    path: view.path,
                    label: view.label,
                    category: view.category,
                    category_label: view.category_label,
                    times: t.times,
                    pupils: t.pupils.len(),
                    rules: t.rules.into_iter().collect(),
                }
            })
            .collect();
        Report {
            org_name: inzage::org_name(set, self.org),
            org: self.org.to_owned(),
            overleg_name: o.map_or_else(|| overleg.to_owned(), |o| o.name.clone()),
            overleg: overleg.to_owned(),
            from,
            to,
            records_read: self.records_read,
            disclosures: self.disclosures,
            pupils: self.pupils.len(),
            purged: self.purged,
            refused: self.refused,
            corrected: self.corrected,
            fields,
        }
    }
}

/// The role in which the recipient received the data and its grondslag:
/// the record's own for a read; for a delivery to a bron (the record names
/// the caller's role), the deciding rule's `to` role with its grondslag
/// from the policy.
pub fn recipient_role(
    set: &PolicySet,
    r: &StoredRow,
    parties: &Parties,
) -> (String, Option<String>) {
    if parties.act == Act::Read {
        return (r.role.clone().unwrap_or_default(), r.grondslag.clone());
    }
    let o = r.overleg.as_deref().and_then(|o| set.overleggen.get(o));
    let rule = o.and_then(|o| {
        query::list(&r.rules)
            .iter()
            .find_map(|id| o.rules.iter().find(|x| &x.id == id))
    });
    match (o, rule) {
        (Some(o), Some(rule)) => (
            rule.to.clone(),
            o.role(&rule.to).map(|x| x.grondslag.to_string()),
        ),
        _ => (r.role.clone().unwrap_or_default(), None),
    }
}

/// The record's rules that cover `path` under the current policy; all of
/// the record's rules when the policy no longer says (it changed since).
fn rules_for_field(
    set: &PolicySet,
    r: &StoredRow,
    record_rules: &[String],
    path: &str,
) -> Vec<String> {
    let o = r.overleg.as_deref().and_then(|o| set.overleggen.get(o));
    let bron = r.bron.as_deref().and_then(|b| set.bronnen.get(b));
    let index = bron.and_then(|b| b.field_index(path));
    let covering: Vec<String> = match (o, index) {
        (Some(o), Some(i)) => record_rules
            .iter()
            .filter(|id| {
                o.rules.iter().any(|x| {
                    &&x.id == id
                        && Some(x.bron.as_str()) == r.bron.as_deref()
                        && x.fields.contains(&i)
                })
            })
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    if covering.is_empty() {
        record_rules.to_vec()
    } else {
        covering
    }
}

/// The records of `overleg` that a correction says were never delivered
/// (a correction is written after the record it corrects, so from `from`
/// on, with no upper bound).
async fn corrected_records(
    store: &Store,
    overleg: &str,
    from: &str,
) -> Result<HashSet<(String, i64)>, ReviewError> {
    let rows = sqlx::query(
        "SELECT detail FROM audit_records WHERE overleg = $1 AND time >= $2 AND kind = 'correction'",
    )
    .bind(overleg)
    .bind(from)
    .fetch_all(store.pool())
    .await?;
    let mut out = HashSet::new();
    for row in rows {
        let detail: String = row.try_get("detail")?;
        if let Ok(d) = serde_json::from_str::<serde_json::Value>(&detail) {
            let c = &d["corrects"];
            if let (Some(i), Some(s)) = (c["instance"].as_str(), c["seq"].as_i64()) {
                out.insert((i.to_owned(), s));
            }
        }
    }
    Ok(out)
}

/// Walks the requests of `overleg` in [`from`, `to`) and counts what `org`
/// received, per field.
pub async fn build(
    store: &Store,
    set: &PolicySet,
    org: &str,
    overleg: &str,
    from: String,
    to: String,
) -> Result<Report, ReviewError> {
    let corrected = corrected_records(store, overleg, &from).await?;
    let filter = query::Filter {
        from: Some(from.clone()),
        to: Some(to.clone()),
        overleg: Some(overleg.to_owned()),
        kind: Some("request".into()),
        ..Default::default()
    };
    let mut counter = Counter::new(set, org, corrected);
    query::for_each(store, &filter, PAGE, |r| {
        counter.add(r);
        ControlFlow::Continue(())
    })
    .await?;
    Ok(counter.finish(overleg, from, to))
}

/// Columns of the table and CSV output.
pub const COLUMNS: [&str; 9] = [
    "role",
    "bron",
    "path",
    "label",
    "category",
    "times",
    "pupils",
    "rules",
    "grondslag",
];

fn cells(l: &FieldLine) -> [String; COLUMNS.len()] {
    [
        l.role.clone(),
        l.bron.clone(),
        l.path.clone(),
        l.label.clone(),
        l.category.clone(),
        l.times.to_string(),
        l.pupils.to_string(),
        l.rules.join(" "),
        l.grondslag.join(" | "),
    ]
}

impl Report {
    /// The period in Dutch days for people (`to` is exclusive).
    fn period(&self) -> String {
        format!(
            "{} tot {}",
            when::dutch_readable(&self.from),
            when::dutch_readable(&self.to)
        )
    }

    /// The plain-text table and a summary in Dutch.
    pub fn table(&self) -> String {
        let data: Vec<[String; COLUMNS.len()]> = self.fields.iter().map(cells).collect();
        let mut width = COLUMNS.map(str::len);
        for row in &data {
            for (w, c) in width.iter_mut().zip(row.iter()) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &mut dyn Iterator<Item = &str>| {
            let parts: Vec<String> = cells
                .zip(width.iter())
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            let _ = writeln!(out, "{}", parts.join("  ").trim_end());
        };
        line(&mut COLUMNS.iter().copied());
        for row in &data {
            line(&mut row.iter().map(String::as_str));
        }
        let _ = writeln!(
            out,
            "{} ({}) ontving in {} van {}: {} verstrekking(en) over {} leerling(en), {} gegeven(s)",
            self.org_name,
            self.org,
            self.overleg,
            self.period(),
            self.disclosures,
            self.pupils,
            self.fields.len()
        );
        let _ = writeln!(
            out,
            "niet meegeteld: {} geweigerde of mislukte verzoeken, {} gecorrigeerde (niet afgeleverde) vastleggingen; {} verstrekking(en) zonder leerling (gepurged)",
            self.refused, self.corrected, self.purged
        );
        out
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into())
    }

    /// One CSV line per (role, bron, field), with a header line.
    pub fn csv(&self) -> String {
        let mut out = super::export::csv_line(COLUMNS);
        for l in &self.fields {
            out.push_str(&super::export::csv_line(cells(l)));
        }
        out
    }

    /// The HTML body for the dashboard.
    pub fn html_body(&self) -> Markup {
        html! {
            p id="samenvatting" {
                (self.org_name) " ontving in " (self.overleg_name) " van " (self.period()) " "
                strong { (self.disclosures) " verstrekking(en)" } " over "
                strong { (self.pupils) " leerling(en)" } "."
            } "\n"
            p.meta {
                "Niet meegeteld: " (self.refused) " geweigerde of mislukte verzoeken en "
                (self.corrected) " gecorrigeerde (niet afgeleverde) vastleggingen. "
                (self.purged) " verstrekking(en) tellen mee zonder leerling: hun leerling is na de bewaartermijn gewist. "
                "Het aantal leerlingen telt verschillende pseudoniemen."
            } "\n"
            table id="velden" {
                thead { tr {
                    th { "Rol" } th { "Bron" } th { "Gegeven" } th { "Soort" }
                    th.num { "Keer" } th.num { "Leerlingen" } th { "Regels" } th { "Grondslag" }
                } }
                tbody {
                    "\n"
                    @for l in &self.fields {
                        @let special = l.category != "normal";
                        tr class=[special.then_some("bijzonder")] {
                            td { (l.role_name) } td { (l.bron_name) }
                            td { (l.label) br; code { (l.path) } }
                            td { @if special { span.markering { (l.category_label) } } @else { (l.category_label) } }
                            td.num { (l.times) } td.num { (l.pupils) }
                            td { (l.rules.join(", ")) } td { (l.grondslag.join("; ")) }
                        } "\n"
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditRecord, Outcome};
    use crate::review::html::hostile::{self, TEXT};

    fn example_set() -> PolicySet {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");
        crate::policy::load_dir(std::path::Path::new(dir)).unwrap()
    }

    fn row(
        seq: i64,
        org: &str,
        pupil: Option<&str>,
        outcome: Outcome,
        fields: &[&str],
    ) -> StoredRow {
        let mut rec = AuditRecord::new("t-1", "r", "t");
        rec.org = Some(org.into());
        rec.role = Some("leerplicht".into());
        rec.grondslag = Some("Leerplichtwet".into());
        rec.overleg = Some("aoj-vo-noorderlicht".into());
        rec.purpose = Some("aanpak-verzuim".into());
        rec.bron = Some("las-noorderlicht".into());
        rec.pupil = pupil.map(str::to_owned);
        rec.outcome = outcome;
        rec.rules = vec!["aoj-03".into()];
        rec.fields_shared = fields.iter().map(|f| (*f).to_owned()).collect();
        StoredRow::from_owned(rec, seq, crate::audit::record::GENESIS)
    }

    #[test]
    fn counts_receipts_and_distinct_pupils_per_field() {
        let set = example_set();
        let corrected = HashSet::from([("t-1".to_owned(), 6)]);
        let mut c = Counter::new(&set, "gemeente-groningen", corrected);
        let a = "leerling.voornaam";
        let b = "verzuim.ongeoorloofd_uren";
        c.add(&row(
            1,
            "gemeente-groningen",
            Some("k1:a"),
            Outcome::Allowed,
            &[a, b],
        ));
        c.add(&row(
            2,
            "gemeente-groningen",
            Some("k1:a"),
            Outcome::Allowed,
            &[a],
        ));
        c.add(&row(
            3,
            "gemeente-groningen",
            Some("k1:b"),
            Outcome::Filtered,
            &[a],
        ));
        c.add(&row(
            4,
            "gemeente-groningen",
            Some("k1:c"),
            Outcome::Denied,
            &[],
        ));
        c.add(&row(
            5,
            "wij-groningen",
            Some("k1:d"),
            Outcome::Allowed,
            &[a],
        ));
        c.add(&row(
            6,
            "gemeente-groningen",
            Some("k1:e"),
            Outcome::Allowed,
            &[a],
        ));
        c.add(&row(7, "gemeente-groningen", None, Outcome::Allowed, &[b]));
        let r = c.finish("aoj-vo-noorderlicht", "a".into(), "b".into());
        assert_eq!(r.records_read, 7);
        assert_eq!((r.disclosures, r.pupils, r.purged), (4, 2, 1));
        assert_eq!((r.refused, r.corrected), (1, 1));
        let line = |p: &str| r.fields.iter().find(|l| l.path == p).unwrap();
        assert_eq!((line(a).times, line(a).pupils), (3, 2));
        assert_eq!((line(b).times, line(b).pupils), (2, 1));
        assert_eq!(line(a).rules, ["aoj-03"]);
        assert_eq!(line(a).grondslag, ["Leerplichtwet"]);
        assert_eq!(line(a).label, "Voornaam leerling");
        assert_eq!(r.org_name, "Gemeente Groningen, Leerplicht/RMC (demo)");
    }

    #[test]
    fn every_text_of_the_page_is_escaped() {
        let r = Report {
            org: TEXT.into(),
            org_name: TEXT.into(),
            overleg: TEXT.into(),
            overleg_name: TEXT.into(),
            from: "2026-11-01T00:00:00.000000Z".into(),
            to: "2026-12-01T00:00:00.000000Z".into(),
            records_read: 1,
            disclosures: 1,
            pupils: 1,
            purged: 0,
            refused: 0,
            corrected: 0,
            fields: vec![FieldLine {
                role: TEXT.into(),
                role_name: TEXT.into(),
                grondslag: vec![TEXT.into()],
                bron: TEXT.into(),
                bron_name: TEXT.into(),
                path: TEXT.into(),
                label: TEXT.into(),
                category: "health".into(),
                category_label: TEXT.into(),
                times: 1,
                pupils: 1,
                rules: vec![TEXT.into()],
            }],
        };
        // Organisation and overleg names; role, bron, label, path, kind,
        // rules and grondslag.
        hostile::assert_escaped(&r.html_body().into_string(), 9);
    }
}
