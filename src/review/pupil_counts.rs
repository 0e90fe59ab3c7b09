//! The DPIA report's distinct pupil counts from the aggregates' `pupil`
//! rows (one per day, overleg, organisation, supplier and pseudonym):
//! per overleg and per supplier over the period, per organisation and day
//! over the period and its baseline (for the surge rule).
//!
//! On PostgreSQL the server counts them (`COUNT(DISTINCT)`, three queries
//! at once). On SQLite one pass reads the rows in the primary key's order
//! through rusqlite on a blocking thread and counts all three at once: a
//! year of a province's trail has ~2.8 million such rows, and SQLite's
//! three `COUNT(DISTINCT)` scans (each a B-tree of its own) were most of
//! the year's report (benches/RESULTS.md, issue 18).

use std::collections::{HashMap, HashSet};

use super::ReviewError;
use crate::audit::store::{Store, StoreError};

/// Distinct pupils, counted exactly.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PupilCounts {
    /// overleg -> pupils in the period.
    pub per_overleg: Vec<(String, u64)>,
    /// (overleg, supplier) -> pupils in the period (requests a supplier
    /// made).
    pub per_supplier: Vec<((String, String), u64)>,
    /// (overleg, organisation, day) -> pupils, over the baseline and the
    /// period.
    pub per_day: Vec<((String, String, String), u64)>,
}

impl PupilCounts {
    /// Rows the counts have (what the report counts as read).
    pub fn len(&self) -> usize {
        self.per_overleg.len() + self.per_supplier.len() + self.per_day.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Days `[from, to)` and the baseline's first day, `YYYY-MM-DD`.
#[derive(Debug, Clone)]
pub struct Days {
    pub from: String,
    pub to: String,
    pub baseline: String,
}

/// Counts the pupils of `days` in the store's aggregates.
pub async fn count(store: &Store, days: &Days) -> Result<PupilCounts, ReviewError> {
    if let Some(path) = store.sqlite_path() {
        let (path, days) = (path.to_owned(), days.clone());
        return tokio::task::spawn_blocking(move || sqlite(&path, &days))
            .await
            .map_err(|e| StoreError::Invalid(format!("the SQLite reader stopped: {e}")))?;
    }
    counted_by_the_server(store, days).await
}

/// The one-pass count on SQLite (see the module's text).
fn sqlite(path: &str, days: &Days) -> Result<PupilCounts, ReviewError> {
    let conn = crate::audit::walk::sqlite_read_only(path).map_err(ReviewError::from)?;
    let mut stmt = conn
        .prepare(
            "SELECT day, overleg, k1, k2, k3 FROM audit_aggregates WHERE kind = 'pupil' \
             AND day >= ?1 AND day < ?2 ORDER BY kind, day, overleg, k1, k2, k3",
        )
        .map_err(StoreError::from)?;
    let mut rows = stmt
        .query((&days.baseline, &days.to))
        .map_err(StoreError::from)?;
    let mut tally = Tally::default();
    while let Some(row) = rows.next().map_err(StoreError::from)? {
        let text = |i: usize| -> Result<&str, StoreError> {
            let v = row.get_ref(i)?;
            v.as_str()
                .map_err(|_| StoreError::Invalid(format!("audit_aggregates column {i} not text")))
        };
        let (day, overleg, org, supplier, pupil) =
            (text(0)?, text(1)?, text(2)?, text(3)?, text(4)?);
        if day >= days.from.as_str() {
            tally.period(overleg, supplier, pupil);
        }
        if !org.is_empty() {
            tally.day(day, overleg, org, pupil);
        }
    }
    Ok(tally.finish())
}

/// A pupil set that keeps each pseudonym once.
#[derive(Default)]
struct Pupils(HashSet<Box<str>, foldhash::fast::RandomState>);

impl Pupils {
    fn insert(&mut self, pupil: &str) {
        if !self.0.contains(pupil) {
            self.0.insert(pupil.into());
        }
    }

    fn len(&self) -> u64 {
        self.0.len() as u64
    }
}

/// The counts while the pass runs. The rows come in (day, overleg,
/// organisation) groups, so one set serves the per-day count.
#[derive(Default)]
struct Tally {
    overleggen: HashMap<String, Pupils>,
    suppliers: HashMap<(String, String), Pupils>,
    per_day: Vec<((String, String, String), u64)>,
    group: Option<(String, String, String)>,
    group_pupils: Pupils,
}

impl Tally {
    fn period(&mut self, overleg: &str, supplier: &str, pupil: &str) {
        match self.overleggen.get_mut(overleg) {
            Some(p) => p.insert(pupil),
            None => self
                .overleggen
                .entry(overleg.to_owned())
                .or_default()
                .insert(pupil),
        }
        if supplier.is_empty() {
            return;
        }
        let key = (overleg.to_owned(), supplier.to_owned());
        self.suppliers.entry(key).or_default().insert(pupil);
    }

    fn day(&mut self, day: &str, overleg: &str, org: &str, pupil: &str) {
        let same = self
            .group
            .as_ref()
            .is_some_and(|(d, o, g)| d == day && o == overleg && g == org);
        if !same {
            self.close_group();
            self.group = Some((day.to_owned(), overleg.to_owned(), org.to_owned()));
        }
        self.group_pupils.insert(pupil);
    }

    fn close_group(&mut self) {
        if let Some((day, overleg, org)) = self.group.take() {
            self.per_day
                .push(((overleg, org, day), self.group_pupils.len()));
            self.group_pupils.0.clear();
        }
    }

    fn finish(mut self) -> PupilCounts {
        self.close_group();
        let mut per_overleg: Vec<_> = self
            .overleggen
            .into_iter()
            .map(|(o, p)| (o, p.len()))
            .collect();
        let mut per_supplier: Vec<_> = self
            .suppliers
            .into_iter()
            .map(|(k, p)| (k, p.len()))
            .collect();
        per_overleg.sort_unstable();
        per_supplier.sort_unstable();
        self.per_day.sort_unstable();
        PupilCounts {
            per_overleg,
            per_supplier,
            per_day: self.per_day,
        }
    }
}

/// The three counts made by the store (`COUNT(DISTINCT)`), at once, each
/// on its own pooled connection. Portable SQL: on SQLite it is the
/// reference the one pass is tested against.
pub async fn counted_by_the_server(store: &Store, days: &Days) -> Result<PupilCounts, ReviewError> {
    let (lo, hi, base) = (days.from.as_str(), days.to.as_str(), days.baseline.as_str());
    let (overleggen, suppliers, per_day) = futures_util::try_join!(
        sqlx::query_as::<_, (String, i64)>(
            // The distinct pairs first: PostgreSQL then hashes ~50,000
            // (overleg, pupil) pairs instead of sorting a year's 2 million
            // rows on disk (2.3 → 0.8 s at 10 M records). The other two
            // follow the index's order already.
            "SELECT overleg, COUNT(*) FROM (SELECT DISTINCT overleg, k3 FROM audit_aggregates WHERE kind = 'pupil' AND day >= $1 AND day < $2) pairs GROUP BY overleg",
        )
        .bind(lo)
        .bind(hi)
        .fetch_all(store.pool()),
        sqlx::query_as::<_, (String, String, i64)>(
            "SELECT overleg, k2, COUNT(DISTINCT k3) FROM audit_aggregates WHERE kind = 'pupil' AND k2 <> '' AND day >= $1 AND day < $2 GROUP BY overleg, k2",
        )
        .bind(lo)
        .bind(hi)
        .fetch_all(store.pool()),
        sqlx::query_as::<_, (String, String, String, i64)>(
            "SELECT overleg, k1, day, COUNT(DISTINCT k3) FROM audit_aggregates WHERE kind = 'pupil' AND k1 <> '' AND day >= $1 AND day < $2 GROUP BY day, overleg, k1",
        )
        .bind(base)
        .bind(hi)
        .fetch_all(store.pool()),
    )?;
    let n = |n: i64| u64::try_from(n).unwrap_or(0);
    let mut counts = PupilCounts {
        per_overleg: overleggen.into_iter().map(|(o, c)| (o, n(c))).collect(),
        per_supplier: suppliers
            .into_iter()
            .map(|(o, s, c)| ((o, s), n(c)))
            .collect(),
        per_day: per_day
            .into_iter()
            .map(|(o, org, day, c)| ((o, org, day), n(c)))
            .collect(),
    };
    counts.per_overleg.sort_unstable();
    counts.per_supplier.sort_unstable();
    counts.per_day.sort_unstable();
    Ok(counts)
}
