//! The verification walk: one chain's records streamed in `seq` order, each
//! row's columns borrowed, never copied column by column. The store's pool
//! speaks sqlx's `Any` driver, which copies every value of every row twice
//! and gives each row its own column list; for a walk over millions of rows
//! that was most of `audit verify`'s time (profiles in benches/RESULTS.md).
//!
//! - PostgreSQL: one connection of sqlx's own driver, `&str`s decoded in
//!   place; the server reads while this task hashes.
//! - SQLite: sqlx hands every row from its worker thread to the task, and
//!   the two threads then wake each other (and contend for the allocator)
//!   for nearly every row. So verification reads through rusqlite on
//!   blocking threads, one per core and one more, each checking the rows'
//!   own hashes where it reads them (no copy) and handing over a block of
//!   small [`Checked`] summaries; the chain check takes the blocks in
//!   order. The FG's period walks ([`sqlite_pages`]) read on one blocking
//!   thread that copies a thousand rows at a time into one buffer; the
//!   task consumes them.

use std::str::FromStr;

use futures_util::TryStreamExt;
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::{ConnectOptions, Row};

use super::record::RowRef;
use super::store::{Backend, Store, StoreError};
use super::verify::Checked;

mod sqlite;

pub(crate) use rusqlite::types::Value as SqliteValue;
pub(crate) use sqlite::{Last, open_read_only as sqlite_read_only, pages as sqlite_pages};

/// The stored columns in [`RowRef`]'s order; the integer columns widened so
/// both backends decode them as `i64`.
macro_rules! row_columns {
    () => {
        "instance, seq, kind, time, request_id, trace_id, org, \
    cert_fingerprint, role, grondslag, overleg, purpose, bron, resource, subject, outcome, \
    reason, side, rules, fields_shared, fields_withheld, CAST(status AS BIGINT), \
    CAST(upstream_status AS BIGINT), duration_us, policy_version, detail, personal_digest, \
    purged_at, prev_hash, hash, supplier, owner"
    };
}

/// [`row_columns`] as a constant, for selections that feed [`RowRef`]s.
pub(crate) const ROW_COLUMNS: &str = row_columns!();

pub(crate) const WALK_SQL: &str = concat!(
    "SELECT ",
    row_columns!(),
    " FROM audit_records WHERE instance = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4"
);

/// Feeds `instance`'s records after `after` up to and including `head` to
/// `visit` in `seq` order, each as [`Checked`]: its own hashes checked
/// where it was read. On SQLite the chain is read in blocks of `page`
/// positions by one thread per core and one more, each reading and
/// checking its share of the blocks, handed over in order; on PostgreSQL
/// the server reads while this task checks.
pub async fn checked_chain(
    store: &Store,
    instance: &str,
    after: i64,
    head: i64,
    page: i64,
    mut visit: impl FnMut(Checked),
) -> Result<(), StoreError> {
    let span = Span {
        instance,
        after,
        head,
        page: page.max(1),
    };
    match store.backend {
        Backend::Sqlite => {
            let path = store.sqlite_path().ok_or(StoreError::Url)?.to_owned();
            sqlite::checked(path, span, visit).await
        }
        Backend::Postgres => postgres(store.url(), span, |r| visit(Checked::of(&r))).await,
    }
}

/// Which records one walk reads.
#[derive(Clone, Copy)]
pub(crate) struct Span<'a> {
    instance: &'a str,
    after: i64,
    head: i64,
    page: i64,
}

/// The PostgreSQL walk: pages through one connection of sqlx's own driver.
async fn postgres(
    url: &str,
    span: Span<'_>,
    mut visit: impl FnMut(RowRef<'_>),
) -> Result<(), StoreError> {
    let mut conn = PgConnectOptions::from_str(url)?.connect().await?;
    let mut last = span.after;
    loop {
        let mut read = 0;
        let mut rows = sqlx::query(WALK_SQL)
            .bind(span.instance)
            .bind(last)
            .bind(span.head)
            .bind(span.page)
            .fetch(&mut conn);
        while let Some(row) = rows.try_next().await? {
            let r = row_ref(&row)?;
            last = r.seq;
            read += 1;
            visit(r);
        }
        if read < span.page {
            return Ok(());
        }
    }
}

/// One row's columns, borrowed.
fn row_ref(r: &PgRow) -> Result<RowRef<'_>, sqlx::Error> {
    Ok(RowRef {
        instance: r.try_get(0)?,
        seq: r.try_get(1)?,
        kind: r.try_get(2)?,
        time: r.try_get(3)?,
        request_id: r.try_get(4)?,
        trace_id: r.try_get(5)?,
        org: r.try_get(6)?,
        cert_fingerprint: r.try_get(7)?,
        role: r.try_get(8)?,
        grondslag: r.try_get(9)?,
        overleg: r.try_get(10)?,
        purpose: r.try_get(11)?,
        bron: r.try_get(12)?,
        resource: r.try_get(13)?,
        pupil: r.try_get(14)?,
        outcome: r.try_get(15)?,
        reason: r.try_get(16)?,
        side: r.try_get(17)?,
        rules: r.try_get(18)?,
        fields_shared: r.try_get(19)?,
        fields_withheld: r.try_get(20)?,
        status: r.try_get(21)?,
        upstream_status: r.try_get(22)?,
        duration_us: r.try_get(23)?,
        policy_version: r.try_get(24)?,
        detail: r.try_get(25)?,
        personal_digest: r.try_get(26)?,
        purged_at: r.try_get(27)?,
        prev_hash: r.try_get(28)?,
        hash: r.try_get(29)?,
        supplier: r.try_get(30)?,
        owner: r.try_get(31)?,
    })
}
