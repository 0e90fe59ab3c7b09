//! `audit rapport --van --tot`: the DPIA accountability report. Per
//! casusoverleg: the volume over time (inline SVG), the fields shared per
//! role, denials and their reasons, purposes and rules never used, and the
//! requests that came through a software supplier (per supplier: requests,
//! distinct pupils, and the mandates used, supplier → organisation); for the
//! whole gateway: policy changes (`kind = reload`), anomalies and how many
//! requests came through a supplier. Supplier volume is per overleg because
//! the DPIA weighs each processing (overleg) on its own: a supplier acting
//! for a school in one overleg says nothing about another. The report
//! aggregates: it names organisations, roles, fields and counts, never a
//! pupil or a pseudonym.

use std::collections::{BTreeMap, BTreeSet};

use crate::audit::aggregate::{self, Cell, Key, Sums};
use std::ops::ControlFlow;

use maud::{Markup, html};
use serde::Serialize;

use super::html::{self, Series};
use super::pupil_counts::{self, PupilCounts};
use super::query::{self, Filter};
use super::{ReviewError, when};
use crate::audit::{Store, StoredRow};
use crate::policy::model::{Overleg, PolicySet};
use crate::policy::tools::render::short_version;

/// Thresholds of the anomaly rules. Every one is named and has a default.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// Office hours, Dutch time, Monday to Friday: from this hour...
    pub office_start_hour: u8,
    /// ...until this hour (exclusive).
    pub office_end_hour: u8,
    /// A day counts as a surge when an organisation asks about at least
    /// `surge_factor` times its usual number of distinct pupils...
    pub surge_factor: u64,
    /// ...and at least this many more than usual.
    pub surge_min_extra: u64,
    /// Days of history before the period used to learn what is usual.
    pub baseline_days: i64,
    /// Fewest other active days needed before "usual" means anything.
    pub baseline_min_days: usize,
    /// Denials of one organisation in one overleg that count as repeated.
    pub repeated_denials: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            office_start_hour: 7,
            office_end_hour: 19,
            surge_factor: 3,
            surge_min_extra: 5,
            baseline_days: 28,
            baseline_min_days: 3,
            repeated_denials: 3,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Anomaly {
    /// `surge`, `outside-office-hours`, `repeated-denials`, `purpose-unused`, `rule-unused`.
    pub kind: &'static str,
    pub overleg: String,
    pub org: Option<String>,
    /// Plain-Dutch description (counts, never pupils).
    pub description: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Volume {
    /// Bucket labels (days `YYYY-MM-DD`, or months `YYYY-MM` for long periods).
    pub buckets: Vec<String>,
    pub allowed: Vec<u64>,
    pub filtered: Vec<u64>,
    pub denied: Vec<u64>,
    pub error: Vec<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FieldCount {
    pub role: String,
    pub role_name: String,
    pub field: String,
    pub label: String,
    pub category: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DenialCount {
    pub reason: String,
    pub org: String,
    pub count: u64,
}

/// Requests of one overleg that came through one software supplier.
#[derive(Debug, Clone, Serialize)]
pub struct SupplierVolume {
    pub supplier: String,
    /// Its name in the registry, or the id when no longer listed.
    pub supplier_name: String,
    /// Every request it made, refused ones included.
    pub requests: u64,
    pub distinct_pupils: u64,
    /// The mandates used: the organisations it acted for (sorted by id).
    pub mandates: Vec<MandateUse>,
}

/// A mandate used in the period: supplier → organisation, and how often.
#[derive(Debug, Clone, Serialize)]
pub struct MandateUse {
    pub organisation: String,
    pub organisation_name: String,
    pub requests: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct OverlegReport {
    pub id: String,
    pub name: String,
    pub requests: u64,
    pub distinct_pupils: u64,
    pub volume: Volume,
    pub fields: Vec<FieldCount>,
    pub denials: Vec<DenialCount>,
    pub unused_purposes: Vec<String>,
    pub unused_rules: Vec<String>,
    pub anomalies: Vec<Anomaly>,
    /// Per software supplier (sorted by id); empty when none was used.
    pub suppliers: Vec<SupplierVolume>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyChange {
    pub time: String,
    pub reason: String,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rapport {
    pub from: String,
    pub to: String,
    pub generated_at: String,
    pub policy_version: String,
    pub total_requests: u64,
    /// Requests that came through a software supplier (any overleg, refused
    /// ones included).
    pub supplier_requests: u64,
    pub overleggen: Vec<OverlegReport>,
    pub policy_changes: Vec<PolicyChange>,
    /// Requests that named no (known) overleg: identity and path refusals.
    pub outside_overleggen: u64,
    /// Accesses to the trail itself in the period.
    pub trail_accesses: u64,
    /// Emergency use (spoed) per receiving organisation: windows opened in
    /// the period, their disclosures, and the FG's review outcomes.
    pub emergency: Vec<EmergencyUse>,
    #[serde(skip)]
    pub records_read: usize,
}

/// One organisation's emergency use in the period.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EmergencyUse {
    pub org: String,
    pub org_name: String,
    /// Windows opened in the period.
    pub windows: u64,
    /// Disclosures in those windows.
    pub disclosures: i64,
    pub justified: u64,
    pub not_justified: u64,
    pub to_review: u64,
}

/// Emergency use per organisation, from the windows opened in the period.
fn emergency_use(
    set: &PolicySet,
    windows: &[crate::registers::emergency::Window],
) -> Vec<EmergencyUse> {
    use crate::registers::emergency::Review;
    let mut by_org: BTreeMap<&str, EmergencyUse> = BTreeMap::new();
    for w in windows {
        let e = by_org.entry(&w.org).or_insert_with(|| EmergencyUse {
            org: w.org.clone(),
            org_name: super::inzage::org_name(set, &w.org),
            ..EmergencyUse::default()
        });
        e.windows += 1;
        e.disclosures += w.uses;
        match w.review {
            Some(Review::Justified) => e.justified += 1,
            Some(Review::NotJustified) => e.not_justified += 1,
            None => e.to_review += 1,
        }
    }
    by_org.into_values().collect()
}

fn median(mut v: Vec<u64>) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[v.len() / 2]
}

/// The buckets of the period: every day, or every month when the period is
/// longer than `MAX_DAILY_BUCKETS` days.
const MAX_DAILY_BUCKETS: i64 = 62;

fn buckets(from: &str, to: &str) -> (Vec<String>, bool) {
    let (Some(a), Some(b)) = (when::parse_stored(from), when::parse_stored(to)) else {
        return (Vec::new(), false);
    };
    if b <= a {
        return (Vec::new(), false);
    }
    let monthly = (b - a).whole_days() > MAX_DAILY_BUCKETS;
    // Walk Dutch calendar dates (not instants plus 24 h, which would drift
    // across a daylight-saving switch) from the first to the last day.
    let first = when::dutch(a).date();
    let last = when::dutch(b - time::Duration::microseconds(1)).date();
    let mut out: Vec<String> = Vec::new();
    let mut d = Some(first);
    while let Some(day) = d.filter(|day| *day <= last) {
        let mut label = format!(
            "{:04}-{:02}-{:02}",
            day.year(),
            u8::from(day.month()),
            day.day()
        );
        if monthly {
            label.truncate(7);
        }
        if out.last() != Some(&label) {
            out.push(label);
        }
        d = day.next_day();
    }
    (out, monthly)
}

/// Records per page while the report walks the period and its baseline.
const PAGE: usize = 10_000;

/// Builds the report for `[from, to)` (stored-form bounds from [`when::bound`]).
/// Walks the records page by page and keeps only the aggregates (counts per
/// day, field and reason; distinct pseudonyms per overleg and per
/// organisation-day), so its memory follows the period's variety, not its
/// volume.
///
/// Reads the aggregates the audit writer keeps (`audit_aggregates`) when
/// they can answer: the period runs from a Dutch midnight to a Dutch
/// midnight and the aggregates are complete from before its baseline
/// window. Otherwise it walks the records ([`build_paged`]); both paths
/// apply the same contributions ([`aggregate::add`]).
pub async fn build(
    store: &Store,
    set: &PolicySet,
    from: &str,
    to: &str,
    th: Thresholds,
) -> Result<Rapport, ReviewError> {
    if let Some(report) = build_from_aggregates(store, set, from, to, th).await? {
        return Ok(report);
    }
    build_paged(store, set, from, to, th, PAGE).await
}

/// Where the baseline window before a period starts: `days` Dutch
/// calendar days before a period that starts at a Dutch midnight (whole
/// days, also across a daylight-saving switch), else `days` × 24 hours.
fn baseline_start(from: &str, days: i64) -> String {
    let Some(t) = when::parse_stored(from) else {
        return from.to_owned();
    };
    let d = crate::dutch_time::dutch(t);
    if d.time() == time::Time::MIDNIGHT
        && let Some(start) = d
            .date()
            .checked_sub(time::Duration::days(days))
            .and_then(when::dutch_midnight)
    {
        return when::stored(start);
    }
    when::stored(t - time::Duration::days(days))
}

/// The Dutch calendar day that begins at `stored`, when it is a Dutch
/// midnight.
fn dutch_midnight_day(stored: &str) -> Option<String> {
    let t = when::parse_stored(stored)?;
    let d = crate::dutch_time::dutch(t);
    (d.time() == time::Time::MIDNIGHT).then(|| crate::dutch_time::dutch_day(t))
}

/// The report from the aggregates, or `None` when they cannot answer for
/// this period (see [`build`]).
pub async fn build_from_aggregates(
    store: &Store,
    set: &PolicySet,
    from: &str,
    to: &str,
    th: Thresholds,
) -> Result<Option<Rapport>, ReviewError> {
    let baseline_from = baseline_start(from, th.baseline_days);
    let (Some(from_day), Some(to_day), Some(baseline_day)) = (
        dutch_midnight_day(from),
        dutch_midnight_day(to),
        dutch_midnight_day(&baseline_from),
    ) else {
        return Ok(None);
    };
    let since: Option<String> =
        sqlx::query_scalar("SELECT since FROM audit_aggregates_since WHERE id = 1")
            .fetch_optional(store.pool())
            .await?;
    if since.is_none_or(|s| s.as_str() > baseline_from.as_str()) {
        return Ok(None);
    }
    let mut acc = Acc::new(set, from, to, th);
    let changes = Filter {
        from: Some(from.to_owned()),
        to: Some(to.to_owned()),
        kind: Some("reload".into()),
        ..Default::default()
    };
    query::for_each(store, &changes, PAGE, |r| {
        acc.records_read += 1;
        acc.policy_change(r);
        ControlFlow::Continue(())
    })
    .await?;
    // Streamed: memory follows the report's variety, not the table. The
    // pupils are counted by the store (below), not read. A registration's
    // first disclosure is kept per day; the report needs only the earliest,
    // which the store finds (a year has about one such row per pupil-day).
    // Kinds named, not excluded: the primary key starts with the kind, so
    // each is a range of its own.
    let counted = aggregate::COUNTED.map(|k| format!("'{k}'")).join(", ");
    let sql = format!(
        "SELECT {} FROM audit_aggregates WHERE kind IN ({counted}) AND day >= $1 AND day < $2 \
         UNION ALL SELECT MIN(day), kind, overleg, k1, k2, k3, k4, CAST(SUM(n) AS BIGINT), MIN(t) FROM audit_aggregates \
         WHERE kind = 'first' AND day >= $1 AND day < $2 GROUP BY kind, overleg, k1, k2, k3, k4",
        aggregate::COLUMNS
    );
    // The store counts the pupils while the counts stream in.
    let days = pupil_counts::Days {
        from: from_day,
        to: to_day,
        baseline: baseline_day,
    };
    let counting = pupil_counts::count(store, &days);
    let reading = aggregate::for_each_row(store, sql, (&days.from, &days.to), |k, c| {
        acc.records_read += 1;
        acc.apply(k, c, Span::Period);
    });
    let (counts, ()) = futures_util::try_join!(counting, async { Ok(reading.await?) })?;
    acc.distinct_pupils(&counts);
    Ok(Some(acc.complete(store, from, to).await?))
}

/// [`build`], fetching `page` records at a time (the report does not depend
/// on `page`; the tests check that it does not).
pub async fn build_paged(
    store: &Store,
    set: &PolicySet,
    from: &str,
    to: &str,
    th: Thresholds,
    page: usize,
) -> Result<Rapport, ReviewError> {
    let mut acc = Acc::new(set, from, to, th);
    let period = Filter {
        from: Some(from.to_owned()),
        to: Some(to.to_owned()),
        kind: None,
        ..Default::default()
    };
    query::for_each(store, &period, page, |r| {
        acc.period(r);
        ControlFlow::Continue(())
    })
    .await?;
    let baseline_from = baseline_start(from, th.baseline_days);
    let history = Filter {
        from: Some(baseline_from),
        to: Some(from.to_owned()),
        kind: Some("request".into()),
        ..Default::default()
    };
    query::for_each(store, &history, page, |r| {
        acc.history(r);
        ControlFlow::Continue(())
    })
    .await?;
    acc.complete(store, from, to).await
}

/// Registrations looked up per statement.
const INFORMING_BATCH: usize = 500;

/// The report from the records of the period and of the baseline window before it.
pub fn from_rows(
    set: &PolicySet,
    from: &str,
    to: &str,
    period: &[StoredRow],
    history: &[StoredRow],
    th: Thresholds,
) -> Rapport {
    let mut acc = Acc::new(set, from, to, th);
    for r in period {
        acc.period(r);
    }
    for r in history {
        acc.history(r);
    }
    acc.finish()
}

/// The report's running aggregates: fed one record at a time.
struct Acc<'a> {
    set: &'a PolicySet,
    from: String,
    to: String,
    th: Thresholds,
    monthly: bool,
    index: BTreeMap<String, usize>,
    /// Per overleg of the policy set.
    overleggen: BTreeMap<String, OverlegAcc>,
    total_requests: u64,
    supplier_requests: u64,
    policy_changes: Vec<PolicyChange>,
    outside_overleggen: u64,
    trail_accesses: u64,
    records_read: usize,
}

/// One overleg's aggregates.
struct OverlegAcc {
    requests: u64,
    volume: Volume,
    /// (role, field) -> times shared.
    fields: BTreeMap<(String, String), u64>,
    /// (reason, org) -> denials.
    denials: BTreeMap<(String, String), u64>,
    used_purposes: BTreeSet<String>,
    used_rules: BTreeSet<String>,
    pupils: Distinct,
    /// org -> requests outside office hours.
    outside: BTreeMap<String, u64>,
    /// (org, day) -> distinct pseudonyms, over the period and its baseline.
    daily: BTreeMap<(String, String), Distinct>,
    /// (org, day) pairs that fall in the period.
    in_period: BTreeSet<(String, String)>,
    /// supplier -> its requests in this overleg.
    suppliers: BTreeMap<String, SupplierAcc>,
    /// registration id -> its earliest disclosure in the period (for the
    /// informing anomaly, AVG art. 13/14).
    first_disclosure: BTreeMap<String, String>,
    /// Disclosures before the pupil and parents were informed, and those
    /// whose registration records no informing (set by the store path).
    before_informing: u64,
    not_informed: u64,
}

/// One supplier's aggregates in one overleg.
#[derive(Default)]
struct SupplierAcc {
    requests: u64,
    pupils: Distinct,
    /// organisation -> requests made for it.
    mandates: BTreeMap<String, u64>,
}

/// A distinct count of pupils: the pseudonyms themselves (a walk of the
/// records, or the aggregates' rows), or a count the store made
/// (`COUNT(DISTINCT ...)` over the aggregates). One report fills only one.
#[derive(Debug, Default)]
struct Distinct {
    seen: BTreeSet<String>,
    counted: u64,
}

impl Distinct {
    fn insert(&mut self, pupil: &str) {
        if !self.seen.contains(pupil) {
            self.seen.insert(pupil.to_owned());
        }
    }
    fn len(&self) -> u64 {
        self.seen.len() as u64 + self.counted
    }
}

impl OverlegAcc {
    /// A `pupil` aggregate: the overleg's distinct pupils and the
    /// supplier's (period), and the pupils per organisation and day (period
    /// and baseline, for surges).
    fn pupil(&mut self, k: &Key, span: Span) {
        let (org, supplier, pupil) = (&k.k1, &k.k2, &k.k3);
        if span == Span::Period {
            self.pupils.insert(pupil);
            if !supplier.is_empty() {
                self.suppliers
                    .entry(supplier.clone())
                    .or_default()
                    .pupils
                    .insert(pupil);
            }
        }
        if !org.is_empty() && !k.day.is_empty() {
            self.daily
                .entry((org.clone(), k.day.clone()))
                .or_default()
                .insert(pupil);
        }
    }

    /// The other aggregates of the period: office hours, purposes and rules
    /// used, fields shared, first disclosures per registration.
    fn apply(&mut self, k: &Key, c: &Cell, n: u64, th: Thresholds) {
        let or_dash = |s: &str| {
            if s.is_empty() {
                "-".to_owned()
            } else {
                s.to_owned()
            }
        };
        match k.kind.as_str() {
            aggregate::HOUR => {
                let hour = k.k2.parse::<u8>().unwrap_or(0);
                if !k.day.is_empty()
                    && !crate::dutch_time::office_hours_on(
                        &k.day,
                        hour,
                        th.office_start_hour,
                        th.office_end_hour,
                    )
                {
                    *self.outside.entry(or_dash(&k.k1)).or_default() += n;
                }
            }
            aggregate::PURPOSE => {
                self.used_purposes.insert(k.k1.clone());
            }
            aggregate::RULE => {
                self.used_rules.insert(k.k1.clone());
            }
            aggregate::FIELD => {
                *self
                    .fields
                    .entry((or_dash(&k.k1), k.k2.clone()))
                    .or_default() += n;
            }
            aggregate::FIRST => {
                self.first_disclosure
                    .entry(k.k1.clone())
                    .and_modify(|t| {
                        if c.t < *t {
                            t.clone_from(&c.t);
                        }
                    })
                    .or_insert_with(|| c.t.clone());
            }
            _ => {}
        }
    }
}

/// Whether an aggregate belongs to the report's period or to the baseline
/// window before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Span {
    Period,
    Baseline,
}

impl<'a> Acc<'a> {
    fn new(set: &'a PolicySet, from: &str, to: &str, th: Thresholds) -> Self {
        let (labels, monthly) = buckets(from, to);
        let index = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), i))
            .collect();
        let n = labels.len();
        let overleggen = set
            .overleggen
            .keys()
            .map(|id| {
                let acc = OverlegAcc {
                    requests: 0,
                    volume: Volume {
                        buckets: labels.clone(),
                        allowed: vec![0; n],
                        filtered: vec![0; n],
                        denied: vec![0; n],
                        error: vec![0; n],
                    },
                    fields: BTreeMap::new(),
                    denials: BTreeMap::new(),
                    used_purposes: BTreeSet::new(),
                    used_rules: BTreeSet::new(),
                    pupils: Distinct::default(),
                    outside: BTreeMap::new(),
                    daily: BTreeMap::new(),
                    in_period: BTreeSet::new(),
                    suppliers: BTreeMap::new(),
                    first_disclosure: BTreeMap::new(),
                    before_informing: 0,
                    not_informed: 0,
                };
                (id.clone(), acc)
            })
            .collect();
        Self {
            set,
            from: from.to_owned(),
            to: to.to_owned(),
            th,
            monthly,
            index,
            overleggen,
            total_requests: 0,
            supplier_requests: 0,
            policy_changes: Vec::new(),
            outside_overleggen: 0,
            trail_accesses: 0,
            records_read: 0,
        }
    }

    /// A record of the period (any kind): what it adds to the aggregates
    /// ([`aggregate::add`], the writer's own definition), applied.
    fn period(&mut self, r: &StoredRow) {
        self.records_read += 1;
        if r.kind == "reload" {
            self.policy_change(r);
        }
        self.apply_record(r, Span::Period);
    }

    /// What one record contributes ([`aggregate::add`]), applied.
    fn apply_record(&mut self, r: &StoredRow, span: Span) {
        let mut sums = Sums::new();
        aggregate::add(r, &mut sums);
        for (k, c) in &sums {
            self.apply(k, c, span);
        }
    }

    /// The steps after the records or aggregates are in: the informing
    /// anomaly (registers) and the emergency use (windows).
    async fn complete(
        mut self,
        store: &Store,
        from: &str,
        to: &str,
    ) -> Result<Rapport, ReviewError> {
        self.informing(store).await?;
        let windows = crate::registers::emergency::windows(
            store,
            crate::registers::emergency::Listing::Opened { from, to },
        )
        .await?;
        let set = self.set;
        let mut report = self.finish();
        report.emergency = emergency_use(set, &windows);
        Ok(report)
    }

    /// A reload (or refused reload) record: a policy change of the period.
    fn policy_change(&mut self, r: &StoredRow) {
        self.policy_changes.push(PolicyChange {
            time: r.time.clone(),
            reason: r.reason.clone(),
            detail: serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::Null),
        });
    }

    /// A request of the baseline window before the period.
    fn history(&mut self, r: &StoredRow) {
        self.records_read += 1;
        self.apply_record(r, Span::Baseline);
    }

    /// One aggregate (from the table, or from one record) into the report.
    /// The baseline contributes only its pupils per organisation and day.
    fn apply(&mut self, k: &Key, c: &Cell, span: Span) {
        let n = u64::try_from(c.n).unwrap_or(0);
        match (k.kind.as_str(), span) {
            (aggregate::EVENT, Span::Period) if k.k1 == "access" => self.trail_accesses += n,
            (aggregate::REQUEST, Span::Period) => self.request(k, n),
            (aggregate::PUPIL, _) => {
                let Some(o) = self.overleggen.get_mut(&k.overleg) else {
                    return;
                };
                o.pupil(k, span);
            }
            (_, Span::Period) => {
                let th = self.th;
                let Some(o) = self.overleggen.get_mut(&k.overleg) else {
                    return;
                };
                o.apply(k, c, n, th);
            }
            _ => {}
        }
    }

    /// A `request` aggregate: totals, volume per bucket, denials, suppliers
    /// and the organisation-days of the period.
    fn request(&mut self, k: &Key, n: u64) {
        self.total_requests += n;
        let (org, supplier) = (k.k1.as_str(), k.k2.as_str());
        if !supplier.is_empty() {
            self.supplier_requests += n;
        }
        let Some(o) = self.overleggen.get_mut(&k.overleg) else {
            self.outside_overleggen += n;
            return;
        };
        o.requests += n;
        if !supplier.is_empty() {
            let s = o.suppliers.entry(supplier.to_owned()).or_default();
            s.requests += n;
            if !org.is_empty() {
                *s.mandates.entry(org.to_owned()).or_default() += n;
            }
        }
        let mut bucket = k.day.clone();
        if self.monthly {
            bucket.truncate(7);
        }
        if let Some(&i) = self.index.get(bucket.as_str()) {
            let v = match k.k3.as_str() {
                "allowed" => &mut o.volume.allowed,
                "filtered" => &mut o.volume.filtered,
                "denied" => &mut o.volume.denied,
                _ => &mut o.volume.error,
            };
            v[i] += n;
        }
        if k.k3 == "denied" {
            let who = if org.is_empty() { "-" } else { org };
            *o.denials.entry((k.k4.clone(), who.to_owned())).or_default() += n;
        }
        if !org.is_empty() && !k.day.is_empty() {
            o.in_period.insert((org.to_owned(), k.day.clone()));
        }
    }

    /// Applies the distinct pupil counts the store made ([`pupil_counts`]).
    fn distinct_pupils(&mut self, counts: &PupilCounts) {
        self.records_read += counts.len();
        for (overleg, n) in &counts.per_overleg {
            if let Some(o) = self.overleggen.get_mut(overleg) {
                o.pupils.counted = *n;
            }
        }
        for ((overleg, supplier), n) in &counts.per_supplier {
            if let Some(o) = self.overleggen.get_mut(overleg) {
                o.suppliers
                    .entry(supplier.clone())
                    .or_default()
                    .pupils
                    .counted = *n;
            }
        }
        for ((overleg, org, day), n) in &counts.per_day {
            if let Some(o) = self.overleggen.get_mut(overleg) {
                o.daily
                    .entry((org.clone(), day.clone()))
                    .or_default()
                    .counted = *n;
            }
        }
    }

    /// Counts, per overleg, the pupils (registrations) with a disclosure
    /// before they and their parents were informed, or without a recorded
    /// informing (AVG art. 13/14: no later than the first disclosure).
    async fn informing(&mut self, store: &Store) -> Result<(), ReviewError> {
        for o in self.overleggen.values_mut() {
            let ids: Vec<&String> = o.first_disclosure.keys().collect();
            let mut informed: BTreeMap<String, Option<String>> = BTreeMap::new();
            for chunk in ids.chunks(INFORMING_BATCH) {
                let marks = (1..=chunk.len())
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>();
                let sql = format!(
                    "SELECT id, informed_at FROM case_registrations WHERE id IN ({})",
                    marks.join(",")
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for id in chunk {
                    q = q.bind((*id).clone());
                }
                for row in q
                    .fetch_all(store.pool())
                    .await
                    .map_err(crate::audit::StoreError::from)?
                {
                    use sqlx::Row as _;
                    let id: String = row.try_get(0).map_err(crate::audit::StoreError::from)?;
                    let at: Option<String> =
                        row.try_get(1).map_err(crate::audit::StoreError::from)?;
                    informed.insert(id, at);
                }
            }
            for (id, first) in &o.first_disclosure {
                match informed.get(id) {
                    Some(Some(at)) if at > first => o.before_informing += 1,
                    Some(None) => o.not_informed += 1,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> Rapport {
        let (set, th) = (self.set, self.th);
        let overleggen = self
            .overleggen
            .into_iter()
            .filter_map(|(id, o)| {
                let overleg = set.overleggen.get(&id)?;
                Some(overleg_report(set, th, overleg, id, o))
            })
            .collect();
        Rapport {
            from: self.from,
            to: self.to,
            generated_at: crate::audit::record::now_rfc3339(),
            policy_version: set.version.clone(),
            total_requests: self.total_requests,
            supplier_requests: self.supplier_requests,
            overleggen,
            policy_changes: self.policy_changes,
            outside_overleggen: self.outside_overleggen,
            trail_accesses: self.trail_accesses,
            emergency: Vec::new(),
            records_read: self.records_read,
        }
    }
}

fn org_name(set: &PolicySet, id: &str) -> String {
    set.organisations
        .get(id)
        .map(|o| o.name.clone())
        .unwrap_or_else(|| id.to_owned())
}

/// One overleg's part of the report: its counts, fields and anomalies.
fn overleg_report(
    set: &PolicySet,
    th: Thresholds,
    overleg: &Overleg,
    id: String,
    o: OverlegAcc,
) -> OverlegReport {
    let mut anomalies = activity_anomalies(set, th, &id, &o);
    anomalies.extend(surges(set, &id, &o.daily, &o.in_period, th));
    let unused_purposes: Vec<String> = overleg
        .purposes
        .iter()
        .filter(|p| !o.used_purposes.contains(&p.id))
        .map(|p| p.id.clone())
        .collect();
    let unused_rules: Vec<String> = overleg
        .rules
        .iter()
        .filter(|r| !o.used_rules.contains(&r.id))
        .map(|r| r.id.clone())
        .collect();
    anomalies.extend(unused_anomalies(
        overleg,
        &id,
        &unused_purposes,
        &unused_rules,
    ));
    anomalies.extend(informing_anomaly(&id, &o));
    OverlegReport {
        name: overleg.name.clone(),
        requests: o.requests,
        distinct_pupils: o.pupils.len(),
        volume: o.volume,
        fields: field_counts(set, overleg, o.fields),
        denials: o
            .denials
            .into_iter()
            .map(|((reason, org), count)| DenialCount { reason, org, count })
            .collect(),
        unused_purposes,
        unused_rules,
        anomalies,
        suppliers: supplier_volumes(set, o.suppliers),
        id,
    }
}

/// Each supplier's requests, distinct pupils and mandates used, with names.
fn supplier_volumes(
    set: &PolicySet,
    suppliers: BTreeMap<String, SupplierAcc>,
) -> Vec<SupplierVolume> {
    suppliers
        .into_iter()
        .map(|(id, s)| SupplierVolume {
            supplier_name: set
                .mandates
                .suppliers
                .get(&id)
                .map_or_else(|| id.clone(), |x| x.name.clone()),
            supplier: id,
            requests: s.requests,
            distinct_pupils: s.pupils.len(),
            mandates: s
                .mandates
                .into_iter()
                .map(|(org, requests)| MandateUse {
                    organisation_name: org_name(set, &org),
                    organisation: org,
                    requests,
                })
                .collect(),
        })
        .collect()
}

/// Requests outside office hours, and organisations refused repeatedly.
fn activity_anomalies(set: &PolicySet, th: Thresholds, id: &str, o: &OverlegAcc) -> Vec<Anomaly> {
    let mut anomalies = Vec::new();
    for (org, count) in &o.outside {
        anomalies.push(Anomaly {
            kind: "outside-office-hours",
            overleg: id.to_owned(),
            org: Some(org.clone()),
            description: format!(
                "{} deed {count} verzoek(en) buiten kantoortijd (werkdagen {:02}:00-{:02}:00)",
                org_name(set, org),
                th.office_start_hour,
                th.office_end_hour
            ),
        });
    }
    let mut per_org_denials: BTreeMap<&str, u64> = BTreeMap::new();
    for ((_, org), n) in &o.denials {
        *per_org_denials.entry(org.as_str()).or_default() += n;
    }
    for (org, n) in per_org_denials {
        if usize::try_from(n).unwrap_or(usize::MAX) >= th.repeated_denials {
            anomalies.push(Anomaly {
                kind: "repeated-denials",
                overleg: id.to_owned(),
                org: Some(org.to_owned()),
                description: format!("{} werd {n} keer geweigerd", org_name(set, org)),
            });
        }
    }
    anomalies
}

/// Purposes and rules of the overleg that the period never used.
fn unused_anomalies(
    overleg: &Overleg,
    id: &str,
    purposes: &[String],
    rules: &[String],
) -> Vec<Anomaly> {
    let mut anomalies: Vec<Anomaly> = purposes
        .iter()
        .map(|p| Anomaly {
            kind: "purpose-unused",
            overleg: id.to_owned(),
            org: None,
            description: format!("doel `{p}` is in deze periode niet gebruikt"),
        })
        .collect();
    if !rules.is_empty() {
        anomalies.push(Anomaly {
            kind: "rule-unused",
            overleg: id.to_owned(),
            org: None,
            description: format!(
                "{} van de {} regels zijn in deze periode niet gebruikt: {}",
                rules.len(),
                overleg.rules.len(),
                rules.join(", ")
            ),
        });
    }
    anomalies
}

/// Times each field was shared per role, with the catalogue's label and
/// category.
fn field_counts(
    set: &PolicySet,
    overleg: &Overleg,
    fields: BTreeMap<(String, String), u64>,
) -> Vec<FieldCount> {
    fields
        .into_iter()
        .map(|((role, field), count)| {
            let entry = overleg.rules.iter().find_map(|rule| {
                let b = set.bronnen.get(&rule.bron)?;
                b.field_index(&field).map(|i| &b.catalogue[i])
            });
            FieldCount {
                role_name: overleg
                    .role(&role)
                    .map(|r| r.name.clone())
                    .unwrap_or_else(|| role.clone()),
                role,
                label: entry
                    .map(|f| f.label.clone())
                    .unwrap_or_else(|| field.clone()),
                category: entry
                    .map(|f| f.category.as_str().to_owned())
                    .unwrap_or_else(|| "unknown".into()),
                field,
                count,
            }
        })
        .collect()
}

/// Days on which an organisation asked about far more distinct pupils than
/// it usually does (its median over the other active days of the period and
/// the baseline before it).
fn surges(
    set: &PolicySet,
    overleg: &str,
    daily: &BTreeMap<(String, String), Distinct>,
    in_period: &BTreeSet<(String, String)>,
    th: Thresholds,
) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for ((org, day), pupils) in daily {
        if !in_period.contains(&(org.clone(), day.clone())) {
            continue;
        }
        let others: Vec<u64> = daily
            .iter()
            .filter(|((o, d), _)| o == org && d != day)
            .map(|(_, s)| s.len())
            .collect();
        if others.len() < th.baseline_min_days {
            continue;
        }
        let usual = median(others).max(1);
        let n = pupils.len();
        if n >= usual * th.surge_factor && n >= usual + th.surge_min_extra {
            out.push(Anomaly {
                kind: "surge",
                overleg: overleg.to_owned(),
                org: Some(org.clone()),
                description: format!(
                    "{} vroeg op {day} naar {n} verschillende leerlingen; gewoonlijk {usual} per dag",
                    org_name(set, org)
                ),
            });
        }
    }
    out
}

impl Rapport {
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into())
    }

    /// The HTML body (without page chrome), for the dashboard.
    pub fn html_body(&self) -> Markup {
        html! {
            h1 { "Verantwoordingsrapportage (DPIA)" } "\n"
            p.meta {
                "Periode van " (when::dutch_readable(&self.from)) " tot " (when::dutch_readable(&self.to))
                " (Nederlandse tijd; " code { (self.from) } " tot " code { (self.to) } " UTC). Opgesteld op "
                (when::dutch_readable(&self.generated_at)) ". Policyversie "
                code { (short_version(&self.policy_version)) } "."
            } "\n"
            (self.summary_html())
            (self.policy_changes_html())
            (self.emergency_html())
            @for x in &self.overleggen { (overleg_html(x)) "\n" }
        }
    }

    /// The counts of the period and the anomalies that need attention
    /// (unused purposes and rules are listed per overleg only).
    fn summary_html(&self) -> Markup {
        let anomalies: Vec<&Anomaly> = self
            .overleggen
            .iter()
            .flat_map(|x| x.anomalies.iter())
            .filter(|a| !matches!(a.kind, "purpose-unused" | "rule-unused"))
            .collect();
        html! {
            h2 { "Samenvatting" } "\n"
            dl.kenmerken {
                dt { "Verzoeken" } dd { (self.total_requests) }
                dt { "Via een softwareleverancier" } dd { (self.supplier_requests) }
                dt { "Buiten een overleg (geweigerd)" } dd { (self.outside_overleggen) }
                dt { "Beleidswijzigingen" } dd { (self.policy_changes.len()) }
                dt { "Inzage in het logboek" } dd { (self.trail_accesses) }
                dt { "Opvallendheden" } dd { (anomalies.len()) }
            } "\n"
            @if !anomalies.is_empty() {
                div.let-op {
                    ul {
                        "\n"
                        @for a in anomalies {
                            li { strong { (anomaly_label(a.kind)) } " (" (a.overleg) "): " (a.description) } "\n"
                        }
                    }
                } "\n"
            }
        }
    }

    /// Emergency use per organisation and review outcome.
    fn emergency_html(&self) -> Markup {
        html! {
            h2 { "Spoedverstrekkingen (Meldcode, Veilig Thuis, acuut gevaar)" } "\n"
            @if self.emergency.is_empty() {
                p { "Geen spoedvensters geopend in de periode." } "\n"
            } @else {
                table id="spoed" {
                    thead { tr {
                        th { "Organisatie" } th { "Vensters" } th { "Verstrekkingen" }
                        th { "Gerechtvaardigd" } th { "Niet gerechtvaardigd" } th { "Te beoordelen" }
                    } }
                    tbody { "\n" @for e in &self.emergency {
                        tr {
                            td { (e.org_name) } td { (e.windows) } td { (e.disclosures) }
                            td { (e.justified) } td { (e.not_justified) } td { (e.to_review) }
                        } "\n"
                    } }
                } "\n"
            }
        }
    }

    /// Policy reloads in the period, with their access delta.
    fn policy_changes_html(&self) -> Markup {
        html! {
            h2 { "Beleidswijzigingen in de periode" } "\n"
            @if self.policy_changes.is_empty() {
                p { "Geen." } "\n"
            } @else {
                table {
                    thead { tr {
                        th { "Tijd" } th { "Wat" } th { "Aanleiding" } th { "Van → naar" }
                        th { "Velden erbij / eraf" } th { "Overleggen" }
                    } }
                    tbody { "\n" @for c in &self.policy_changes { (policy_change_html(c)) "\n" } }
                } "\n"
            }
        }
    }

    pub fn html(&self) -> String {
        html::page(
            &format!("Verantwoordingsrapportage {} tot {}", self.from, self.to),
            self.html_body(),
        )
    }
}

/// One policy reload as a table row (versions shortened to 16 characters).
fn policy_change_html(c: &PolicyChange) -> Markup {
    let d = &c.detail;
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
    let short = |v: &serde_json::Value| s(v).get(..16).map(str::to_owned).unwrap_or_else(|| s(v));
    let overleggen = d["delta"]["overleggen"]
        .as_array()
        .map(|a| a.iter().map(s).collect::<Vec<_>>().join(", "))
        .unwrap_or_default();
    html! {
        tr {
            td { (when::dutch_readable(&c.time)) }
            td { (c.reason) }
            td { (s(&d["trigger"])) }
            td { code { (short(&d["old_version"])) } " → " code { (short(&d["new_version"])) } }
            td.num {
                (d["delta"]["fields_gained"].as_u64().unwrap_or(0)) " / "
                (d["delta"]["fields_lost_or_changed"].as_u64().unwrap_or(0))
            }
            td { (overleggen) }
        }
    }
}

/// One overleg's section: volume chart, fields per role, denials, anomalies.
fn overleg_html(x: &OverlegReport) -> Markup {
    html! {
        section.overleg id=(x.id) {
            h2 { (x.name) } "\n"
            p { (x.requests) " verzoek(en) over " (x.distinct_pupils) " verschillende leerling(en)." } "\n"
            h3 { "Volume" } "\n" (volume_chart(x)) "\n"
            h3 { "Gedeelde gegevens per rol" } "\n"
            @if x.fields.is_empty() {
                p { "Geen gegevens gedeeld." } "\n"
            } @else {
                (fields_table(&x.fields)) "\n"
            }
            h3 { "Via softwareleveranciers" } "\n"
            @if x.suppliers.is_empty() {
                p { "Geen verzoeken via een softwareleverancier." } "\n"
            } @else {
                (suppliers_table(&x.suppliers)) "\n"
            }
            h3 { "Weigeringen" } "\n"
            @if x.denials.is_empty() {
                p { "Geen." } "\n"
            } @else {
                (denials_table(&x.denials)) "\n"
            }
            h3 { "Opvallendheden" } "\n"
            @if x.anomalies.is_empty() {
                p { "Geen." } "\n"
            } @else {
                ul {
                    "\n"
                    @for a in &x.anomalies {
                        li { strong { (anomaly_label(a.kind)) } ": " (a.description) } "\n"
                    }
                } "\n"
            }
        }
    }
}

/// Requests per bucket, stacked by outcome.
fn volume_chart(x: &OverlegReport) -> Markup {
    let v = &x.volume;
    html::bar_chart(
        &format!("Verzoeken per periode, {}", x.name),
        &v.buckets,
        &[
            Series {
                label: "volledig verstrekt",
                colour: "#2e7d32",
                values: v.allowed.clone(),
            },
            Series {
                label: "gefilterd verstrekt",
                colour: "#1565c0",
                values: v.filtered.clone(),
            },
            Series {
                label: "geweigerd",
                colour: "#c62828",
                values: v.denied.clone(),
            },
            Series {
                label: "fout (niets verstrekt)",
                colour: "#9e9e9e",
                values: v.error.clone(),
            },
        ],
    )
}

/// How often each field went to each role; special categories marked.
fn fields_table(fields: &[FieldCount]) -> Markup {
    html! {
        table {
            thead { tr { th { "Rol" } th { "Gegeven" } th { "Soort" } th.num { "Keer gedeeld" } } }
            tbody {
                "\n"
                @for f in fields {
                    tr class=[(f.category != "normal").then_some("bijzonder")] {
                        td { (f.role_name) }
                        td { (f.label) " " code { (f.field) } }
                        td { (f.category) }
                        td.num { (f.count) }
                    } "\n"
                }
            }
        }
    }
}

/// Per supplier: requests, distinct pupils, and for whom it acted (the
/// mandates used, each with its requests).
fn suppliers_table(suppliers: &[SupplierVolume]) -> Markup {
    html! {
        table.leveranciers {
            thead { tr {
                th { "Leverancier" } th.num { "Verzoeken" } th.num { "Leerlingen" }
                th { "Namens (machtigingen gebruikt)" }
            } }
            tbody {
                "\n"
                @for s in suppliers {
                    tr {
                        td { (s.supplier_name) " " code { (s.supplier) } }
                        td.num { (s.requests) }
                        td.num { (s.distinct_pupils) }
                        td {
                            @if s.mandates.is_empty() { "geen (alle verzoeken geweigerd)" }
                            @for (i, m) in s.mandates.iter().enumerate() {
                                @if i > 0 { br; }
                                (m.organisation_name) ": " (m.requests)
                            }
                        }
                    } "\n"
                }
            }
        }
    }
}

/// Denials per reason (with its plain-Dutch explanation) and organisation.
fn denials_table(denials: &[DenialCount]) -> Markup {
    html! {
        table {
            thead { tr { th { "Reden" } th { "Organisatie" } th.num { "Aantal" } } }
            tbody {
                "\n"
                @for d in denials {
                    tr {
                        td { code { (d.reason) } ": " (super::inzage::explain_reason(&d.reason)) }
                        td { (d.org) }
                        td.num { (d.count) }
                    } "\n"
                }
            }
        }
    }
}

#[cfg(test)]
mod escaping {
    use super::*;
    use crate::review::html::hostile::{self, TEXT};

    #[test]
    fn every_text_of_the_report_is_escaped() {
        let version = "0123456789abcdef0123456789abcdef";
        let rapport = Rapport {
            from: "2026-11-08T23:00:00.000000Z".into(),
            to: "2026-11-09T23:00:00.000000Z".into(),
            generated_at: "2026-11-10T09:00:00.000000Z".into(),
            policy_version: version.into(),
            total_requests: 1,
            supplier_requests: 1,
            overleggen: vec![OverlegReport {
                id: TEXT.into(),
                name: TEXT.into(),
                requests: 1,
                distinct_pupils: 1,
                volume: Volume {
                    buckets: vec![TEXT.into()],
                    allowed: vec![1],
                    filtered: vec![0],
                    denied: vec![0],
                    error: vec![0],
                },
                fields: vec![FieldCount {
                    role: TEXT.into(),
                    role_name: TEXT.into(),
                    field: TEXT.into(),
                    label: TEXT.into(),
                    category: TEXT.into(),
                    count: 1,
                }],
                denials: vec![DenialCount {
                    reason: TEXT.into(),
                    org: TEXT.into(),
                    count: 1,
                }],
                unused_purposes: Vec::new(),
                unused_rules: Vec::new(),
                anomalies: vec![Anomaly {
                    kind: "surge",
                    overleg: TEXT.into(),
                    org: Some(TEXT.into()),
                    description: TEXT.into(),
                }],
                suppliers: vec![SupplierVolume {
                    supplier: TEXT.into(),
                    supplier_name: TEXT.into(),
                    requests: 1,
                    distinct_pupils: 1,
                    mandates: vec![MandateUse {
                        organisation: TEXT.into(),
                        organisation_name: TEXT.into(),
                        requests: 1,
                    }],
                }],
            }],
            policy_changes: vec![PolicyChange {
                time: "2026-11-09T12:00:00.000000Z".into(),
                reason: TEXT.into(),
                detail: serde_json::json!({"trigger": TEXT, "old_version": version,
                    "new_version": version, "delta": {"overleggen": [TEXT]}}),
            }],
            outside_overleggen: 0,
            trail_accesses: 0,
            emergency: Vec::new(),
            records_read: 3,
        };
        let html = rapport.html();
        // Summary: overleg and description; policy change: reason, trigger
        // and overleggen; section: id, heading, chart title, the bucket's
        // tooltip and axis label, the supplier (id, name, organisation), the
        // field row (4), the denial (2) and the anomaly.
        hostile::assert_escaped(&html, 20);
        assert!(html.contains(&format!(
            "<section class=\"overleg\" id=\"{}\">",
            hostile::ESCAPED
        )));
        assert!(html.contains("<tr class=\"bijzonder\"><td>"));
    }
}

/// Pupils with a disclosure before (or without) a recorded informing.
fn informing_anomaly(id: &str, o: &OverlegAcc) -> Option<Anomaly> {
    if o.before_informing == 0 && o.not_informed == 0 {
        return None;
    }
    Some(Anomaly {
        kind: "before-informing",
        overleg: id.to_owned(),
        org: None,
        description: format!(
            "{} leerling(en) kregen een verstrekking voordat zij en hun ouders waren geïnformeerd; bij {} is niet vastgelegd dat zij zijn geïnformeerd (AVG art. 13/14: uiterlijk bij de eerste verstrekking)",
            o.before_informing, o.not_informed
        ),
    })
}

fn anomaly_label(kind: &str) -> &'static str {
    match kind {
        "before-informing" => "Verstrekt vóór informeren",
        "surge" => "Ongewoon veel leerlingen",
        "outside-office-hours" => "Buiten kantoortijd",
        "repeated-denials" => "Herhaalde weigeringen",
        "purpose-unused" => "Doel niet gebruikt",
        "rule-unused" => "Regels niet gebruikt",
        _ => "Opvallend",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_dutch_days_across_daylight_saving_switches() {
        let from = when::bound("2026-10-24", false).unwrap();
        let to = when::bound("2026-10-26", true).unwrap();
        let (b, monthly) = buckets(&from, &to);
        assert!(!monthly);
        assert_eq!(b, ["2026-10-24", "2026-10-25", "2026-10-26"]);
        let from = when::bound("2026-07-01", false).unwrap();
        let to = when::bound("2026-12-31", true).unwrap();
        let (b, monthly) = buckets(&from, &to);
        assert!(monthly);
        assert_eq!(b.first().map(String::as_str), Some("2026-07"));
        assert_eq!(b.last().map(String::as_str), Some("2026-12"));
        assert_eq!(b.len(), 6);
    }
}
