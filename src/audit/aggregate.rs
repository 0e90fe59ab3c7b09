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

use std::collections::BTreeMap;

use serde::Serialize;

use super::record::StoredRow;
use super::store::{Backend, StoreError};

pub const REQUEST: &str = "request";
pub const HOUR: &str = "hour";
pub const PUPIL: &str = "pupil";
pub const PURPOSE: &str = "purpose";
pub const RULE: &str = "rule";
pub const FIELD: &str = "field";
pub const FIRST: &str = "first";
pub const EVENT: &str = "event";

/// One aggregate's key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Key {
    pub day: String,
    pub kind: String,
    pub overleg: String,
    pub k1: String,
    pub k2: String,
    pub k3: String,
    pub k4: String,
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
    let (day, hour) = day_and_hour(&r.time);
    let overleg = r.overleg.clone().unwrap_or_default();
    let mut bump = |kind: &str, keys: [&str; 4], t: Option<&str>| {
        let key = Key {
            day: day.clone(),
            kind: kind.to_owned(),
            overleg: overleg.clone(),
            k1: keys[0].to_owned(),
            k2: keys[1].to_owned(),
            k3: keys[2].to_owned(),
            k4: keys[3].to_owned(),
        };
        let cell = sums.entry(key).or_default();
        cell.n += 1;
        if let Some(t) = t
            && (cell.t.is_empty() || t < cell.t.as_str())
        {
            t.clone_into(&mut cell.t);
        }
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
            for rule in list(&r.rules) {
                bump(RULE, [&rule, "", "", ""], None);
            }
            if matches!(r.outcome.as_str(), "allowed" | "filtered") {
                if let Some(id) = registration_of(r) {
                    bump(FIRST, [&id, "", "", ""], Some(&r.time));
                }
                let role = r.role.as_deref().unwrap_or_default();
                for f in list(&r.fields_shared) {
                    bump(FIELD, [role, &f, "", ""], None);
                }
            }
        }
        _ => {}
    }
}

/// What `rows` contribute.
pub fn sums_of(rows: &[StoredRow]) -> Sums {
    let mut sums = Sums::new();
    for r in rows {
        add(r, &mut sums);
    }
    sums
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

/// The registration a disclosure relied on (`detail.aanmelding`).
pub fn registration_of(r: &StoredRow) -> Option<String> {
    let d: serde_json::Value = serde_json::from_str(&r.detail).ok()?;
    d["aanmelding"]
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
    Ok((
        Key {
            day: r.try_get(0)?,
            kind: r.try_get(1)?,
            overleg: r.try_get(2)?,
            k1: r.try_get(3)?,
            k2: r.try_get(4)?,
            k3: r.try_get(5)?,
            k4: r.try_get(6)?,
        },
        Cell {
            n: r.try_get(7)?,
            t: r.try_get(8)?,
        },
    ))
}
