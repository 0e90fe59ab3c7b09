//! Aggregates of the trail (issue 18 point 1): counts per Dutch calendar
//! day that the DPIA report and the dashboard read instead of walking
//! millions of records. The audit writer adds a batch's counts in the same
//! transaction as its records, so the aggregates are exactly as durable and
//! as complete as the trail; purge takes away what it erases (the pupil
//! pseudonyms and shared fields of expired requests) in the transaction
//! that erases it.
//!
//! [`add`] is the one definition of what a record contributes; the writer,
//! purge, `audit aggregates --recompute` and the report's walk of the
//! records (its fallback, and the proof that both agree) all use it.
//!
//! Kinds, with their key columns (`''` for an absent value):
//! - `request` (k1 org, k2 supplier, k3 outcome, k4 reason): requests;
//! - `hour` (k1 org, k2 Dutch hour `HH`): requests, for office hours;
//! - `pupil` (k1 org, k2 supplier, k3 pupil pseudonym): requests about the
//!   pupil, for distinct counts (personal data: purged with the records);
//! - `purpose` (k1 purpose), `rule` (k1 rule id): requests naming them;
//! - `field` (k1 role, k2 field path): disclosures of the field;
//! - `first` (k1 registration id; `t` the earliest time): disclosures that
//!   relied on the registration, for the informing anomaly;
//! - `event` (k1 record kind `access` or `reload`): events.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use serde::Serialize;

use super::record::StoredRow;
use super::store::{Backend, Store, StoreError};

pub const REQUEST: &str = "request";
pub const HOUR: &str = "hour";
pub const PUPIL: &str = "pupil";
pub const PURPOSE: &str = "purpose";
pub const RULE: &str = "rule";
pub const FIELD: &str = "field";
pub const FIRST: &str = "first";
pub const EVENT: &str = "event";
/// The kinds the DPIA report reads row by row (the pupils it has counted
/// by the store, and the first disclosures it reads grouped).
pub const COUNTED: [&str; 6] = [REQUEST, HOUR, PURPOSE, RULE, FIELD, EVENT];

/// One aggregate's key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Key {
    pub day: String,
    pub kind: String,
    pub overleg: String,
    pub k1: String,
    pub k2: String,
    pub k3: String,
    pub k4: String,
}

/// A key's columns, borrowed, in [`Key`]'s order (so they order alike): a
/// lookup with it allocates nothing when the key is there already, which
/// within a batch it mostly is (callgrind: ~1,800 instructions per
/// contribution when every lookup built a `Key` of seven `String`s).
#[derive(PartialEq, Eq, PartialOrd, Ord, Hash)]
struct KeyRef<'a>([&'a str; 7]);

// A key hashes as its borrowed columns, so a lookup by [`KeyRef`] finds it.
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.columns().hash(state);
    }
}

impl Hash for dyn Columns + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.columns().hash(state);
    }
}

/// What a [`Sums`] lookup compares: a [`Key`] or a [`KeyRef`].
trait Columns {
    fn columns(&self) -> KeyRef<'_>;
}

impl Columns for Key {
    fn columns(&self) -> KeyRef<'_> {
        KeyRef([
            &self.day,
            &self.kind,
            &self.overleg,
            &self.k1,
            &self.k2,
            &self.k3,
            &self.k4,
        ])
    }
}

impl Columns for KeyRef<'_> {
    fn columns(&self) -> KeyRef<'_> {
        KeyRef(self.0)
    }
}

impl<'a> Borrow<dyn Columns + 'a> for Key {
    fn borrow(&self) -> &(dyn Columns + 'a) {
        self
    }
}

impl PartialEq for dyn Columns + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.columns() == other.columns()
    }
}

impl Eq for dyn Columns + '_ {}

impl PartialOrd for dyn Columns + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn Columns + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.columns().cmp(&other.columns())
    }
}

/// Where contributions are counted: the sorted [`Sums`], or a hash map
/// while a batch is summed (a record with a 200-field document adds 200
/// `field` contributions; looking each up in the sorted map compared its
/// seven columns a dozen times: ~10% of the gateway's CPU in `perf`).
trait Tally {
    /// Counts one more under `columns`, keeping the earliest `t` (added
    /// when missing).
    fn count_under(&mut self, columns: &KeyRef<'_>, t: Option<&str>);
}

fn owned(columns: &KeyRef<'_>) -> Key {
    let [day, kind, overleg, k1, k2, k3, k4] = columns.0.map(str::to_owned);
    Key {
        day,
        kind,
        overleg,
        k1,
        k2,
        k3,
        k4,
    }
}

/// Both maps look a key up by its borrowed columns and add it owned only
/// when it is new.
macro_rules! tally_by_lookup {
    ($map:ty) => {
        impl Tally for $map {
            fn count_under(&mut self, columns: &KeyRef<'_>, t: Option<&str>) {
                let view: &dyn Columns = columns;
                match self.get_mut(view) {
                    Some(c) => c.count(t),
                    None => self.entry(owned(columns)).or_default().count(t),
                }
            }
        }
    };
}

/// A batch's sums while they are counted: foldhash, a fast hash of short
/// strings (the keys come from the gateway's own records).
type Counting = HashMap<Key, Cell, foldhash::fast::RandomState>;

tally_by_lookup!(Sums);
tally_by_lookup!(Counting);

impl Cell {
    fn count(&mut self, t: Option<&str>) {
        self.n += 1;
        if let Some(t) = t
            && (self.t.is_empty() || t < self.t.as_str())
        {
            t.clone_into(&mut self.t);
        }
    }
}

/// One aggregate's value: a count, and for kind `first` the earliest time.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Cell {
    pub n: i64,
    pub t: String,
}

/// Aggregates by key (sorted, so two are compared and written in order).
pub type Sums = BTreeMap<Key, Cell>;

/// Adds what `r` contributes to `sums`.
pub fn add(r: &StoredRow, sums: &mut Sums) {
    add_to(r, sums);
}

/// [`add`], into any [`Tally`].
fn add_to(r: &StoredRow, sums: &mut impl Tally) {
    let (day, hour) = day_and_hour(&r.time);
    let overleg = r.overleg.as_deref().unwrap_or_default();
    let mut bump = |kind: &str, keys: [&str; 4], t: Option<&str>| {
        let columns = KeyRef([&day, kind, overleg, keys[0], keys[1], keys[2], keys[3]]);
        sums.count_under(&columns, t);
    };
    match r.kind.as_str() {
        "access" | "reload" => bump(EVENT, [&r.kind, "", "", ""], None),
        "request" => {
            let org = r.org.as_deref().unwrap_or_default();
            let supplier = r.supplier.as_deref().unwrap_or_default();
            bump(REQUEST, [org, supplier, &r.outcome, &r.reason], None);
            bump(HOUR, [org, &hour, "", ""], None);
            if let Some(p) = &r.pupil {
                bump(PUPIL, [org, supplier, p, ""], None);
            }
            if let Some(p) = &r.purpose {
                bump(PURPOSE, [p, "", "", ""], None);
            }
            for_each(&r.rules, |rule| bump(RULE, [rule, "", "", ""], None));
            if matches!(r.outcome.as_str(), "allowed" | "filtered") {
                if let Some(id) = registration_of(r) {
                    bump(FIRST, [&id, "", "", ""], Some(&r.time));
                }
                let role = r.role.as_deref().unwrap_or_default();
                for_each(&r.fields_shared, |f| bump(FIELD, [role, f, "", ""], None));
            }
        }
        _ => {}
    }
}

/// Each string of a JSON array of strings (borrowed where no escape makes
/// that impossible); nothing for anything else.
fn for_each(json: &str, mut f: impl FnMut(&str)) {
    match serde_json::from_str::<Vec<&str>>(json) {
        Ok(items) => items.into_iter().for_each(f),
        Err(_) => list(json).iter().for_each(|s| f(s)),
    }
}

/// What `rows` contribute.
pub fn sums_of<R: Borrow<StoredRow>>(rows: &[R]) -> Sums {
    let mut sums = Counting::default();
    for r in rows {
        add_to(r.borrow(), &mut sums);
    }
    sums.into_iter().collect()
}

/// What purging `rows` takes away: their pupils and shared fields (the
/// personal columns purge erases), as negative counts.
pub fn purged(rows: &[StoredRow]) -> Sums {
    let mut sums = sums_of(rows);
    sums.retain(|k, _| k.kind == PUPIL || k.kind == FIELD);
    for c in sums.values_mut() {
        c.n = -c.n;
    }
    sums
}

/// A JSON array of strings (rule ids, field paths); anything else is empty.
pub fn list(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

/// The registration a disclosure relied on (`detail.aanmelding`). Reads
/// only that member (a full `Value` of the detail cost ~2,700 instructions
/// per record in the writer).
pub fn registration_of(r: &StoredRow) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Detail {
        aanmelding: Option<serde_json::Value>,
    }
    let d: Detail = serde_json::from_str(&r.detail).ok()?;
    d.aanmelding?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The Dutch calendar day (`YYYY-MM-DD`) and hour (`HH`) of a stored time;
/// empty for one that does not parse.
pub fn day_and_hour(stored: &str) -> (String, String) {
    let parsed =
        time::OffsetDateTime::parse(stored, &time::format_description::well_known::Rfc3339);
    match parsed {
        Ok(t) => (
            crate::dutch_time::dutch_day(t),
            format!("{:02}", crate::dutch_time::dutch(t).hour()),
        ),
        Err(_) => (String::new(), String::new()),
    }
}

/// Columns of the table, in the order every statement uses.
pub const COLUMNS: &str = "day, kind, overleg, k1, k2, k3, k4, n, t";

/// What an upsert does on a key that exists: add the count, keep the
/// earliest time.
const ON_CONFLICT: &str = " ON CONFLICT (day, kind, overleg, k1, k2, k3, k4) DO UPDATE SET n = audit_aggregates.n + excluded.n, t = CASE WHEN excluded.t <> '' AND (audit_aggregates.t = '' OR excluded.t < audit_aggregates.t) THEN excluded.t ELSE audit_aggregates.t END";

/// Rows per SQLite upsert statement (9 parameters each).
pub const SQLITE_CHUNK: usize = 100;

/// The SQLite upsert of `n` rows (placeholders only).
pub fn sqlite_upsert_sql(n: usize) -> String {
    let mut sql = format!("INSERT INTO audit_aggregates ({COLUMNS}) VALUES ");
    for i in 0..n {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?,?,?,?,?)");
    }
    sql.push_str(ON_CONFLICT);
    sql
}

/// The PostgreSQL upsert of a JSON array (`$n`) of rows.
pub fn pg_upsert_sql(param: usize) -> String {
    format!(
        "INSERT INTO audit_aggregates ({COLUMNS}) SELECT {COLUMNS} FROM json_populate_recordset(NULL::audit_aggregates, ${param}::json){ON_CONFLICT}"
    )
}

/// One row as the PostgreSQL upsert reads it.
#[derive(Serialize)]
struct JsonRow<'a> {
    day: &'a str,
    kind: &'a str,
    overleg: &'a str,
    k1: &'a str,
    k2: &'a str,
    k3: &'a str,
    k4: &'a str,
    n: i64,
    t: &'a str,
}

/// `sums` as the JSON array the PostgreSQL upsert reads.
pub fn pg_json(sums: &Sums) -> Result<String, StoreError> {
    let rows: Vec<JsonRow<'_>> = sums
        .iter()
        .map(|(k, c)| JsonRow {
            day: &k.day,
            kind: &k.kind,
            overleg: &k.overleg,
            k1: &k.k1,
            k2: &k.k2,
            k3: &k.k3,
            k4: &k.k4,
            n: c.n,
            t: &c.t,
        })
        .collect();
    serde_json::to_string(&rows).map_err(StoreError::Encode)
}

/// Adds `sums` to the table on `conn` (inside the caller's transaction),
/// then removes the rows a negative count brought to zero.
pub async fn upsert(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    sums: &Sums,
) -> Result<(), StoreError> {
    if sums.is_empty() {
        return Ok(());
    }
    match backend {
        Backend::Postgres => {
            sqlx::query(sqlx::AssertSqlSafe(pg_upsert_sql(1)))
                .bind(pg_json(sums)?)
                .execute(&mut *conn)
                .await?;
        }
        Backend::Sqlite => {
            let all: Vec<(&Key, &Cell)> = sums.iter().collect();
            for chunk in all.chunks(SQLITE_CHUNK) {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sqlite_upsert_sql(chunk.len())));
                for (k, c) in chunk {
                    q = q
                        .bind(&k.day)
                        .bind(&k.kind)
                        .bind(&k.overleg)
                        .bind(&k.k1)
                        .bind(&k.k2)
                        .bind(&k.k3)
                        .bind(&k.k4)
                        .bind(c.n)
                        .bind(&c.t);
                }
                q.execute(&mut *conn).await?;
            }
        }
    }
    if sums.values().any(|c| c.n < 0) {
        sqlx::query("DELETE FROM audit_aggregates WHERE n <= 0")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Aggregate rows a SQLite reader hands over at a time.
const READ_BATCH: usize = 1_024;

/// Feeds `visit` each row of `sql` (selecting [`COLUMNS`], two text
/// parameters `$1`, `$2`), streamed: memory follows the batch, not the
/// result. On SQLite a blocking thread reads through rusqlite (a year's
/// counts are ~300,000 rows; sqlx's `Any` rows cost ~3/4 of the year's
/// DPIA report, benches/RESULTS.md); on PostgreSQL the pool streams them.
pub async fn for_each_row(
    store: &Store,
    sql: String,
    (a, b): (&str, &str),
    mut visit: impl FnMut(&Key, &Cell),
) -> Result<(), StoreError> {
    let Some(path) = store.sqlite_path() else {
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(a)
            .bind(b)
            .fetch(store.pool());
        while let Some(r) = futures_util::TryStreamExt::try_next(&mut rows).await? {
            let (k, c) = cell_from(&r)?;
            visit(&k, &c);
        }
        return Ok(());
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<(Key, Cell)>>(4);
    let (path, a, b) = (path.to_owned(), a.to_owned(), b.to_owned());
    let reader = tokio::task::spawn_blocking(move || {
        let conn = super::walk::sqlite_read_only(&path)?;
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query((&a, &b))?;
        let mut batch = Vec::with_capacity(READ_BATCH);
        while let Some(r) = rows.next()? {
            batch.push(sqlite_cell(r)?);
            if batch.len() == READ_BATCH && tx.blocking_send(std::mem::take(&mut batch)).is_err() {
                return Ok(());
            }
        }
        // A closed receiver has stopped reading: nothing is lost by not sending.
        let _ = tx.blocking_send(batch);
        Ok::<(), StoreError>(())
    });
    while let Some(batch) = rx.recv().await {
        for (k, c) in &batch {
            visit(k, c);
        }
    }
    reader
        .await
        .map_err(|e| StoreError::Invalid(format!("the SQLite reader stopped: {e}")))?
}

/// One rusqlite row of [`COLUMNS`] as a key and its cell.
fn sqlite_cell(r: &rusqlite::Row<'_>) -> Result<(Key, Cell), StoreError> {
    Ok(key_cell(|i| r.get(i), |i| r.get(i))?)
}

/// A key and its cell from a row of [`COLUMNS`] of either driver: `text(i)`
/// and `int(i)` read its column `i`.
fn key_cell<E>(
    text: impl Fn(usize) -> Result<String, E>,
    int: impl Fn(usize) -> Result<i64, E>,
) -> Result<(Key, Cell), E> {
    Ok((
        Key {
            day: text(0)?,
            kind: text(1)?,
            overleg: text(2)?,
            k1: text(3)?,
            k2: text(4)?,
            k3: text(5)?,
            k4: text(6)?,
        },
        Cell {
            n: int(7)?,
            t: text(8)?,
        },
    ))
}

/// Every aggregate in the table (tests and `--check`).
pub async fn stored(conn: &mut sqlx::AnyConnection) -> Result<Sums, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM audit_aggregates"
    )))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(cell_from).collect()
}

/// One table row as a key and its cell.
pub fn cell_from(r: &sqlx::any::AnyRow) -> Result<(Key, Cell), StoreError> {
    use sqlx::Row as _;
    Ok(key_cell(|i| r.try_get(i), |i| r.try_get(i))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{AuditRecord, Outcome};

    fn disclosure(time: &str, fields: &[&str], detail: &str) -> StoredRow {
        let mut r = AuditRecord::new("gw-1", "r", "t");
        r.time = time.into();
        r.org = Some("wij".into());
        r.role = Some("jeugdwet".into());
        r.overleg = Some("aoj".into());
        r.outcome = Outcome::Filtered;
        r.reason = "allowed".into();
        r.rules = vec!["aoj-01".into()];
        r.fields_shared = fields.iter().map(|f| (*f).to_owned()).collect();
        r.detail = detail.into();
        StoredRow::unlinked(r)
    }

    fn n(sums: &Sums, kind: &str, k1: &str, k2: &str) -> Option<(i64, String)> {
        sums.iter()
            .find(|(k, _)| k.kind == kind && k.k1 == k1 && k.k2 == k2)
            .map(|(_, c)| (c.n, c.t.clone()))
    }

    /// Keys found by their borrowed columns are counted on, escaped field
    /// paths (not borrowable from the JSON) count like any other, and the
    /// registration's first use keeps the earliest time.
    #[test]
    fn contributions_add_up_by_key() {
        let later = "2026-12-03T10:00:00.000000Z";
        let earlier = "2026-12-03T09:00:00.000000Z";
        let a = disclosure(
            later,
            &["verzuim", "naam \"roep\""],
            r#"{"aanmelding":"A1"}"#,
        );
        let b = disclosure(earlier, &["verzuim"], r#"{"aanmelding":"A1","x":[1]}"#);
        let sums = sums_of(&[a, b]);
        assert_eq!(
            n(&sums, FIELD, "jeugdwet", "verzuim"),
            Some((2, String::new()))
        );
        assert_eq!(
            n(&sums, FIELD, "jeugdwet", "naam \"roep\""),
            Some((1, String::new()))
        );
        assert_eq!(n(&sums, RULE, "aoj-01", ""), Some((2, String::new())));
        assert_eq!(n(&sums, FIRST, "A1", ""), Some((2, earlier.to_owned())));
        assert_eq!(sums.values().filter(|c| c.n > 0).count(), sums.len());
    }

    /// A batch summed in a hash map (the writer's path) gives what adding
    /// each record to the sorted map gives (the report's and recompute's).
    #[test]
    fn a_batch_sums_alike_in_either_map() {
        let days = ["2026-12-01T08:00:00.000000Z", "2026-12-02T23:30:00.000000Z"];
        let fields = ["a", "b", "c", "d \"é\"", "e"];
        let rows: Vec<StoredRow> = (0..40)
            .map(|i| {
                let mut r = disclosure(
                    days[i % 2],
                    &fields[..=(i % fields.len())],
                    &format!(r#"{{"aanmelding":"A{}"}}"#, i % 3),
                );
                r.pupil = Some(format!("k1:{:02x}", i % 7));
                r.org = Some(["wij", "ggd"][i % 2].into());
                r
            })
            .collect();
        let mut sorted = Sums::new();
        for r in &rows {
            add(r, &mut sorted);
        }
        let hashed = sums_of(&rows);
        assert_eq!(hashed, sorted);
        assert!(hashed.len() > 30, "{} keys", hashed.len());
    }
}
