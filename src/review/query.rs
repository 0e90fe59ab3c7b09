//! `audit query`: the FG's search over the trail. Filters are parsed at the
//! edge into a [`Filter`]; every value is a bound parameter (no data ever
//! enters the SQL text). A pupil id is never searched for: it is turned into
//! its pseudonym under every key version ([`crate::audit::Pseudonymiser::all_pseudonyms`]).

use std::fmt::Write as _;
use std::ops::ControlFlow;

use serde::Serialize;
use sqlx::AnyPool;

use super::{ReviewError, when};
use crate::audit::walk::{self, Last, SqliteValue};
use crate::audit::{Pseudonymiser, Store, StoredRow};

/// Most rows a search returns unless the caller asks otherwise.
pub const DEFAULT_LIMIT: usize = 1_000;

/// Outcomes a record can have (the `decision` filter).
pub const OUTCOMES: [&str; 5] = ["allowed", "filtered", "denied", "error", "event"];

/// Record kinds besides `request` that a search can select (`--kind`).
pub const KINDS: [&str; 7] = [
    "register",
    "reload",
    "purge",
    "access",
    "checkpoint",
    "correction",
    "notification",
];

/// A validated search. `None` means "any".
#[derive(Debug, Clone, Default, Serialize)]
pub struct Filter {
    /// Inclusive lower bound, stored form.
    pub from: Option<String>,
    /// Exclusive upper bound, stored form.
    pub to: Option<String>,
    pub overleg: Option<String>,
    pub org: Option<String>,
    /// The software supplier the requests came through (`audit query
    /// --via`), under a mandate of `org`.
    pub supplier: Option<String>,
    pub role: Option<String>,
    pub purpose: Option<String>,
    /// A catalogue field path that was *shared*, e.g. `verzuim.meldingen[].datum`.
    pub field: Option<String>,
    /// allowed / filtered / denied / error / event.
    pub decision: Option<String>,
    /// Record kind: request (default for searches), reload, purge, access, checkpoint.
    pub kind: Option<String>,
    /// Pseudonyms of the pupil (every key version). Never the clear id.
    /// Not serialised: the filter goes into access records' `detail`, which
    /// a retention purge keeps; the pseudonym belongs in `subject`, which it
    /// erases.
    #[serde(skip)]
    pub pseudonyms: Option<Vec<String>>,
    /// Whether the search was for one pupil (what the access record keeps).
    pub pupil: bool,
    /// Only records whose `detail` names at least one consent relied on
    /// (`audit toestemming`), through the partial index of
    /// `migrations/20261203000003_consent_reliance.sql`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub consent_relied: bool,
    pub limit: usize,
    /// Newest first (the dashboard) instead of oldest first (exports).
    pub newest_first: bool,
}

/// The raw, unvalidated search as typed by the FG (CLI flags or a form).
#[derive(Debug, Clone, Default)]
pub struct FilterInput {
    pub from: Option<String>,
    pub to: Option<String>,
    pub overleg: Option<String>,
    pub org: Option<String>,
    /// Supplier id (`--via`).
    pub via: Option<String>,
    pub role: Option<String>,
    pub purpose: Option<String>,
    pub field: Option<String>,
    pub decision: Option<String>,
    pub kind: Option<String>,
    pub pupil: Option<String>,
    pub limit: Option<usize>,
}

/// Policy identifiers: `[a-z0-9][a-z0-9-]{0,63}` (as the proxy accepts them).
fn is_ident(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// A catalogue field path as filters accept it (`verzuim.meldingen[].datum`):
/// letters, digits and `._-[]`, at most 256 bytes, so it can be matched
/// inside a JSON field list without escaping.
pub fn is_field_path(f: &str) -> bool {
    !f.is_empty()
        && f.len() <= 256
        && f.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-[]".contains(&b))
}

fn nonblank(v: Option<&String>) -> Option<&str> {
    v.map(|s| s.trim()).filter(|s| !s.is_empty())
}

impl FilterInput {
    /// Validates the input; the pupil id is pseudonymised here and dropped.
    pub fn parse(&self, pseudo: &Pseudonymiser) -> Result<Filter, ReviewError> {
        let ident = |name: &str, v: &Option<String>| -> Result<Option<String>, ReviewError> {
            match nonblank(v.as_ref()) {
                None => Ok(None),
                Some(s) if is_ident(s) => Ok(Some(s.to_owned())),
                Some(_) => Err(ReviewError::Filter(format!(
                    "{name} must be a policy identifier (lower-case letters, digits, '-')"
                ))),
            }
        };
        let field = match nonblank(self.field.as_ref()) {
            None => None,
            Some(f) if is_field_path(f) => Some(f.to_owned()),
            Some(_) => {
                return Err(ReviewError::Filter(
                    "field must be a catalogue path such as verzuim.meldingen[].datum".into(),
                ));
            }
        };
        let decision = match nonblank(self.decision.as_ref()) {
            None => None,
            Some(d) if OUTCOMES.contains(&d) => Some(d.to_owned()),
            Some(_) => {
                return Err(ReviewError::Filter(format!(
                    "decision must be one of {}",
                    OUTCOMES.join(", ")
                )));
            }
        };
        let kind = match nonblank(self.kind.as_ref()) {
            None | Some("request") => Some("request".to_owned()),
            Some("all") => None,
            Some(k) if KINDS.contains(&k) => Some(k.to_owned()),
            Some(_) => {
                return Err(ReviewError::Filter(format!(
                    "kind must be request, {} or all",
                    KINDS.join(", ")
                )));
            }
        };
        let pseudonyms = nonblank(self.pupil.as_ref()).map(|p| pseudo.all_pseudonyms(p));
        Ok(Filter {
            pupil: pseudonyms.is_some(),
            consent_relied: false,
            from: nonblank(self.from.as_ref())
                .map(|s| when::bound(s, false))
                .transpose()?,
            to: nonblank(self.to.as_ref())
                .map(|s| when::bound(s, true))
                .transpose()?,
            overleg: ident("overleg", &self.overleg)?,
            org: ident("organisation", &self.org)?,
            supplier: ident("via (supplier)", &self.via)?,
            role: ident("role", &self.role)?,
            purpose: ident("purpose", &self.purpose)?,
            field,
            decision,
            kind,
            pseudonyms,
            limit: self.limit.unwrap_or(DEFAULT_LIMIT).max(1),
            newest_first: false,
        })
    }
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern.
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The predicate of the partial index `audit_records_consent_relied`
/// (`migrations/20261203000003_consent_reliance.sql`), character for
/// character: SQLite and PostgreSQL use a partial index only when the query
/// repeats its condition literally (a bound parameter would not do). It
/// matches the proxy's `detail` of a request that relied on at least one
/// consent, `{"aanmelding":…,"toestemmingen":["<id>",…]}` (serde_json writes
/// no spaces); `tests/review.rs` checks that such records are found.
pub const CONSENT_RELIED: &str = r#"detail LIKE '%"toestemmingen":["%'"#;

/// The WHERE clause of `filter` and its parameters (`$1`, `$2`, ...).
fn where_clause(filter: &Filter) -> (String, Vec<String>) {
    let mut sql = String::from(" WHERE 1=1");
    let mut binds: Vec<String> = Vec::new();
    let eq = |sql: &mut String, binds: &mut Vec<String>, col: &str, v: &Option<String>| {
        if let Some(v) = v {
            binds.push(v.clone());
            let _ = write!(sql, " AND {col} = ${}", binds.len());
        }
    };
    // With an overleg, written so that no index serves `kind`: SQLite has
    // no statistics of the trail and would otherwise walk the period of
    // every overleg through (kind, time) — nearly every record is a
    // request — instead of the overleg's own through (overleg, time): a
    // quarter's `audit ontvangen` over 10 M records read 2.5 M rows for
    // 434,000 (benches/fg.rs).
    let kind_col = if filter.overleg.is_some() {
        "kind || ''"
    } else {
        "kind"
    };
    eq(&mut sql, &mut binds, kind_col, &filter.kind);
    eq(&mut sql, &mut binds, "overleg", &filter.overleg);
    eq(&mut sql, &mut binds, "org", &filter.org);
    eq(&mut sql, &mut binds, "supplier", &filter.supplier);
    eq(&mut sql, &mut binds, "role", &filter.role);
    eq(&mut sql, &mut binds, "purpose", &filter.purpose);
    eq(&mut sql, &mut binds, "outcome", &filter.decision);
    if filter.consent_relied {
        let _ = write!(sql, " AND {CONSENT_RELIED}");
    }
    if let Some(f) = &filter.from {
        binds.push(f.clone());
        let _ = write!(sql, " AND time >= ${}", binds.len());
    }
    if let Some(t) = &filter.to {
        binds.push(t.clone());
        let _ = write!(sql, " AND time < ${}", binds.len());
    }
    if let Some(f) = &filter.field {
        // Field lists are JSON arrays of paths; serde_json escapes only `"`
        // and `\`, which a validated path cannot contain, so `"path"` matches
        // exactly one whole element.
        binds.push(format!("%\"{}\"%", like_escape(f)));
        let _ = write!(sql, " AND fields_shared LIKE ${} ESCAPE '\\'", binds.len());
    }
    if let Some(pseudonyms) = &filter.pseudonyms {
        sql.push_str(" AND subject IN (");
        for (i, s) in pseudonyms.iter().enumerate() {
            binds.push(s.clone());
            let _ = write!(sql, "{}${}", if i > 0 { "," } else { "" }, binds.len());
        }
        if pseudonyms.is_empty() {
            sql.push_str("NULL");
        }
        sql.push(')');
    }
    (sql, binds)
}

/// Runs the search: at most `filter.limit` records, in time order.
pub async fn run(store: &Store, filter: &Filter) -> Result<Vec<StoredRow>, ReviewError> {
    select(store.pool(), filter, Some(filter.limit)).await
}

/// Every record matching `filter`, ignoring its limit (exports, reports).
pub async fn all(store: &Store, filter: &Filter) -> Result<Vec<StoredRow>, ReviewError> {
    select(store.pool(), filter, None).await
}

/// How many records match `filter` (its limit ignored).
pub async fn count(store: &Store, filter: &Filter) -> Result<u64, ReviewError> {
    let (clause, binds) = where_clause(filter);
    let sql = format!("SELECT COUNT(*) FROM audit_records{clause}");
    let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(b);
    }
    Ok(u64::try_from(q.fetch_one(store.pool()).await?).unwrap_or(0))
}

/// Calls `f` on every record matching `filter` (its limit ignored), in time
/// order, fetching `page` records at a time (keyset on `time, instance,
/// seq`), so the caller's memory does not grow with the number of records.
/// Stops early when `f` breaks. The pages are read by the walk
/// ([`crate::audit::walk`]: on SQLite its reading thread, on PostgreSQL a
/// streamed connection of sqlx's own driver), not through the pool: sqlx's
/// `Any` rows cost most of a long walk (benches/RESULTS.md).
pub async fn for_each(
    store: &Store,
    filter: &Filter,
    page: usize,
    mut f: impl FnMut(&StoredRow) -> ControlFlow<()>,
) -> Result<(), ReviewError> {
    let page = page.max(1);
    let filter = filter.clone();
    let page_sql = move |after: Option<&Last>| page_query(&filter, after, page, walk::ROW_COLUMNS);
    match store.sqlite_path() {
        Some(path) => {
            let text = move |after: Option<&Last>| {
                let (sql, binds) = page_sql(after);
                (sql, binds.into_iter().map(SqliteValue::Text).collect())
            };
            walk::sqlite_pages(path.to_owned(), page, text, |r| f(&r.to_stored())).await?;
        }
        None => walk::postgres_pages(store, page, page_sql, |r| f(&r.to_stored())).await?,
    }
    Ok(())
}

/// The statement for the page of `filter` after the row `after` (the first
/// page when `None`), selecting `columns`, and its text parameters.
fn page_query(
    filter: &Filter,
    after: Option<&Last>,
    page: usize,
    columns: &str,
) -> (String, Vec<String>) {
    // From the second page on, the period starts at the last row's time:
    // the store then starts its index range there instead of at `from`
    // and filtering every earlier row again (on SQLite that made a walk
    // quadratic: 360,000 rows in pages of 1,000 took 26.6 s, now 1.2 s;
    // see benches/RESULTS.md). The keyset condition below handles rows
    // that share that time.
    let (clause, mut binds) = match after {
        None => where_clause(filter),
        Some(l) => where_clause(&Filter {
            from: Some(l.time.clone()),
            ..filter.clone()
        }),
    };
    let mut sql = format!("SELECT {columns} FROM audit_records{clause}");
    if let Some(l) = after {
        // Row-value comparison: both stores use the index on `time` for
        // it. The seq travels as text (every bind here is text) and is
        // cast back.
        let n = binds.len();
        let _ = write!(
            sql,
            " AND (time, instance, seq) > (${}, ${}, CAST(${} AS BIGINT))",
            n + 1,
            n + 2,
            n + 3
        );
        binds.extend([l.time.clone(), l.instance.clone(), l.seq.to_string()]);
    }
    let _ = write!(sql, " ORDER BY time, instance, seq LIMIT {page}");
    (sql, binds)
}

async fn select(
    pool: &AnyPool,
    filter: &Filter,
    limit: Option<usize>,
) -> Result<Vec<StoredRow>, ReviewError> {
    let (clause, binds) = where_clause(filter);
    let order = if filter.newest_first {
        " ORDER BY time DESC, instance, seq DESC"
    } else {
        " ORDER BY time, instance, seq"
    };
    let mut sql = format!(
        "SELECT {} FROM audit_records{clause}{order}",
        crate::audit::store::COLUMNS
    );
    if let Some(n) = limit {
        let _ = write!(
            sql,
            " LIMIT {}",
            n.min(usize::try_from(i64::MAX).unwrap_or(usize::MAX))
        );
    }
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(pool).await?;
    rows.iter()
        .map(|r| crate::audit::store::row_from(r).map_err(ReviewError::from))
        .collect()
}

/// One record, by chain position.
pub async fn record(
    store: &Store,
    instance: &str,
    seq: i64,
) -> Result<Option<StoredRow>, ReviewError> {
    let sql = format!(
        "SELECT {} FROM audit_records WHERE instance = $1 AND seq = $2",
        crate::audit::store::COLUMNS
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(instance)
        .bind(seq)
        .fetch_optional(store.pool())
        .await?;
    Ok(match row {
        Some(r) => Some(crate::audit::store::row_from(&r)?),
        None => None,
    })
}

/// Parses a stored JSON array of strings (field lists, rule ids); `[]` when
/// the column is not one (cannot happen for rows the writer wrote).
pub fn list(json: &str) -> Vec<String> {
    crate::audit::aggregate::list(json)
}

/// Columns of the table output, CSV and the dashboard list.
pub const TABLE_COLUMNS: [&str; 12] = [
    "time",
    "instance",
    "seq",
    "org",
    "role",
    "overleg",
    "purpose",
    "bron",
    "subject",
    "outcome",
    "reason",
    "fields_shared",
];

fn cells(r: &StoredRow) -> [String; 12] {
    let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    [
        r.time.clone(),
        r.instance.clone(),
        r.seq.to_string(),
        o(&r.org),
        o(&r.role),
        o(&r.overleg),
        o(&r.purpose),
        o(&r.bron),
        r.pupil
            .as_deref()
            .map(short_subject)
            .unwrap_or_else(|| "-".into()),
        r.outcome.clone(),
        r.reason.clone(),
        list(&r.fields_shared).len().to_string(),
    ]
}

/// A pseudonym shortened for display (`k1:3fa9c2d1…`); full in JSON and CSV.
pub fn short_subject(s: &str) -> String {
    match s.get(..11) {
        Some(head) if s.len() > 11 => format!("{head}…"),
        _ => s.to_owned(),
    }
}

/// A plain-text table (the `--format table` output).
pub fn table(rows: &[StoredRow]) -> String {
    let data: Vec<[String; 12]> = rows.iter().map(cells).collect();
    let mut width = TABLE_COLUMNS.map(|c| c.chars().count());
    for row in &data {
        for (w, c) in width.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let parts: Vec<String> = cells
            .zip(width.iter())
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", parts.join("  ").trim_end());
    };
    line(&mut out, &mut TABLE_COLUMNS.iter().copied());
    for row in &data {
        line(&mut out, &mut row.iter().map(String::as_str));
    }
    let _ = writeln!(out, "{} record(s)", rows.len());
    out
}

/// JSON array of full records.
pub fn json(rows: &[StoredRow]) -> String {
    serde_json::to_string_pretty(rows).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo() -> Pseudonymiser {
        Pseudonymiser::parse(
            &format!("k1 {}\nk2 {}\n", "11".repeat(32), "22".repeat(32)),
            "t",
        )
        .unwrap()
    }

    #[test]
    fn pupil_becomes_every_pseudonym_and_is_not_kept() {
        let f = FilterInput {
            pupil: Some("L1001".into()),
            ..Default::default()
        }
        .parse(&pseudo())
        .unwrap();
        let s = f.pseudonyms.clone().unwrap();
        assert_eq!(s.len(), 2);
        assert!(s[0].starts_with("k1:") && s[1].starts_with("k2:"));
        assert!(!format!("{f:?}").contains("L1001"));
        let (sql, binds) = where_clause(&f);
        assert!(sql.contains("subject IN ($2,$3)"), "{sql}");
        assert!(!binds.iter().any(|b| b.contains("L1001")));
    }

    #[test]
    fn rejects_bad_values_and_escapes_like() {
        let p = pseudo();
        let bad = |f: FilterInput| f.parse(&p).is_err();
        assert!(bad(FilterInput {
            overleg: Some("x' OR 1=1".into()),
            ..Default::default()
        }));
        assert!(bad(FilterInput {
            via: Some("Leverancier B.V.".into()),
            ..Default::default()
        }));
        assert!(bad(FilterInput {
            decision: Some("maybe".into()),
            ..Default::default()
        }));
        assert!(bad(FilterInput {
            field: Some("a%b".into()),
            ..Default::default()
        }));
        let f = FilterInput {
            field: Some("leerling.bsn_nummer".into()),
            ..Default::default()
        }
        .parse(&p)
        .unwrap();
        let (_, binds) = where_clause(&f);
        assert!(
            binds.contains(&"%\"leerling.bsn\\_nummer\"%".to_owned()),
            "{binds:?}"
        );
        // The supplier is a bound parameter on its own column.
        let f = FilterInput {
            via: Some(" las-leverancier ".into()),
            ..Default::default()
        }
        .parse(&p)
        .unwrap();
        assert_eq!(f.supplier.as_deref(), Some("las-leverancier"));
        let (sql, binds) = where_clause(&f);
        assert!(sql.contains("AND supplier = $2"), "{sql}");
        assert_eq!(binds, ["request", "las-leverancier"]);
    }
}
