//! The verification walk: one chain's records streamed in `seq` order, each
//! row's columns borrowed, never copied column by column. The store's pool
//! speaks sqlx's `Any` driver, which copies every value of every row twice
//! and gives each row its own column list; for a walk over millions of rows
//! that was most of `audit verify`'s time (profiles in benches/RESULTS.md).
//!
//! - PostgreSQL: connections of sqlx's own driver, `&str`s decoded in
//!   place. Verification reads blocks of the chain on one connection per
//!   core and one more, each reader's task checking its rows while the
//!   server reads the next ones; the chain check takes the blocks in order.
//!   The FG's period walks ([`postgres_pages`]) stream their pages on one
//!   connection.
//! - SQLite: sqlx hands every row from its worker thread to the task, and
//!   the two threads then wake each other (and contend for the allocator)
//!   for nearly every row. So verification reads through rusqlite on
//!   blocking threads, one per core and one more, each checking the rows'
//!   own hashes where it reads them (no copy) and handing over a block of
//!   small [`Checked`] summaries; the chain check takes the blocks in
//!   order. The FG's period walks ([`sqlite_pages`]) read on one blocking
//!   thread that copies a thousand rows at a time into one buffer; the
//!   task consumes them.

use std::ops::ControlFlow;
use std::str::FromStr;

use futures_util::TryStreamExt;
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::{ConnectOptions, Row};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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
/// where it was read. The chain is read in blocks of `page` positions by
/// one reader per core and one more (SQLite: rusqlite on blocking threads;
/// PostgreSQL: a connection and a task each), each reading and checking
/// its share of the blocks, handed over in order ([`in_order`]).
pub async fn checked_chain(
    store: &Store,
    instance: &str,
    after: i64,
    head: i64,
    page: i64,
    visit: impl FnMut(Checked),
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
        Backend::Postgres => postgres_checked(store.url(), span, visit).await,
    }
}

/// Blocks each verification reader may be ahead of the chain check.
const BLOCKS_AHEAD: usize = 2;

/// Verification readers: one per core, and one more to use the time a
/// reader waits for a page (from the disk, or from PostgreSQL) or for its
/// turn to hand over (measured at 10 M records on SQLite: 2 readers on 2
/// cores 28.9 s, 3 readers 26.5 s).
fn readers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get) + 1
}

/// Block `j` of a walk is positions `after + j·page` (exclusive) to
/// `after + (j+1)·page` (inclusive), cut at `head`; reader `i` of `k`
/// reads blocks `i`, `i + k`, `i + 2k`, … These are its bounds, in order.
fn blocks_of(
    (after, head, block): (i64, i64, i64),
    (i, k): (usize, usize),
) -> impl Iterator<Item = (i64, i64)> {
    let (first, k) = (i64::try_from(i).unwrap_or(0), i64::try_from(k).unwrap_or(1));
    (0..)
        .map(move |n: i64| after.saturating_add((first + n * k).saturating_mul(block)))
        .take_while(move |lo| *lo < head)
        .map(move |lo| (lo, lo.saturating_add(block).min(head)))
}

/// The verification walk's hand-off, for either store: `spawn(i, k, tx)`
/// starts reader `i` of `k`, which reads and checks its blocks
/// ([`blocks_of`]) and sends each as one `Vec`; `visit` takes the blocks in
/// order. A reader that fails ends the walk with its error; one that stops
/// without an error before its last block is an error too (a walk never
/// reports fewer rows as the whole chain).
async fn in_order(
    span: Span<'_>,
    spawn: impl Fn(usize, usize, mpsc::Sender<Vec<Checked>>) -> JoinHandle<Result<(), StoreError>>,
    mut visit: impl FnMut(Checked),
) -> Result<(), StoreError> {
    let positions = u64::try_from(span.head - span.after).unwrap_or(0);
    let blocks = positions.div_ceil(u64::try_from(span.page).unwrap_or(1));
    let blocks = usize::try_from(blocks).unwrap_or(usize::MAX);
    let k = readers().min(blocks).max(1);
    let mut readers = Vec::with_capacity(k);
    let mut handles = Vec::with_capacity(k);
    for i in 0..k {
        let (tx, rx) = mpsc::channel(BLOCKS_AHEAD);
        handles.push(spawn(i, k, tx));
        readers.push(rx);
    }
    let mut complete = true;
    for j in 0..blocks {
        let Some(rows) = readers.get_mut(j % k) else {
            break;
        };
        let Some(rows) = rows.recv().await else {
            complete = false;
            break;
        };
        rows.into_iter().for_each(&mut visit);
    }
    // Readers still running stop at their next block.
    drop(readers);
    let mut result = Ok(());
    for h in handles {
        let r = h
            .await
            .map_err(|e| StoreError::Invalid(format!("a verification reader stopped: {e}")))?;
        result = result.and(r);
    }
    match result {
        Ok(()) if !complete => Err(StoreError::Invalid(
            "a verification reader stopped before the end of the chain".into(),
        )),
        other => other,
    }
}

/// The verification walk on PostgreSQL: each reader is a task with a
/// connection of its own (sqlx's own driver) on which the server reads the
/// reader's blocks while the task checks the rows already sent, so the
/// server's reading and this process's hashing run side by side on every
/// core.
async fn postgres_checked(
    url: &str,
    span: Span<'_>,
    visit: impl FnMut(Checked),
) -> Result<(), StoreError> {
    let (instance, range) = (span.instance.to_owned(), (span.after, span.head, span.page));
    let options = PgConnectOptions::from_str(url)?;
    in_order(
        span,
        |i, k, tx| {
            let (options, instance) = (options.clone(), instance.clone());
            tokio::spawn(
                async move { postgres_blocks(&options, &instance, range, (i, k), &tx).await },
            )
        },
        visit,
    )
    .await
}

/// One PostgreSQL verification reader: its blocks ([`blocks_of`]) read on a
/// connection of its own and checked, each sent as one batch. Stops early
/// (without error) when the walk is gone.
async fn postgres_blocks(
    options: &PgConnectOptions,
    instance: &str,
    range: (i64, i64, i64),
    (i, k): (usize, usize),
    tx: &mpsc::Sender<Vec<Checked>>,
) -> Result<(), StoreError> {
    let mut conn = options.connect().await?;
    for (lo, hi) in blocks_of(range, (i, k)) {
        let mut out = Vec::with_capacity(usize::try_from(hi - lo).unwrap_or(0));
        let mut rows = sqlx::query(WALK_SQL)
            .bind(instance)
            .bind(lo)
            .bind(hi)
            .bind(range.2)
            .fetch(&mut conn);
        while let Some(row) = rows.try_next().await? {
            out.push(Checked::of(&row_ref(&row)?));
        }
        drop(rows);
        if tx.send(out).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// The FG's period walks on PostgreSQL: every row of the pages `page_sql`
/// describes (each page at most `page` rows; the next page's statement is
/// made from the last row read, its parameters text), selecting
/// [`ROW_COLUMNS`]. One connection of sqlx's own driver, its rows streamed:
/// the server sends a page while `visit` takes its first rows, and each
/// row's columns are borrowed where they arrived (through the pool's `Any`
/// driver every value was copied twice, and the server and this task took
/// turns). `visit` may stop the walk early.
pub(crate) async fn postgres_pages(
    store: &Store,
    page: usize,
    mut page_sql: impl FnMut(Option<&Last>) -> (String, Vec<String>),
    mut visit: impl FnMut(RowRef<'_>) -> ControlFlow<()>,
) -> Result<(), StoreError> {
    let page = page.max(1);
    let mut conn = PgConnectOptions::from_str(store.url())?.connect().await?;
    let mut last: Option<Last> = None;
    loop {
        let (sql, binds) = page_sql(last.as_ref());
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(b);
        }
        let mut rows = q.fetch(&mut conn);
        let mut read = 0;
        while let Some(row) = rows.try_next().await? {
            let r = row_ref(&row)?;
            read += 1;
            if read == page {
                last = Some(Last {
                    time: r.time.to_owned(),
                    instance: r.instance.to_owned(),
                    seq: r.seq,
                });
            }
            if visit(r).is_break() {
                return Ok(());
            }
        }
        if read < page {
            return Ok(());
        }
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

/// One row's columns, borrowed. Decoded without sqlx's per-value check of
/// the column's type against the Rust type (half of a verification
/// reader's CPU at 10 M records): every statement that feeds this selects
/// [`ROW_COLUMNS`], text columns and integers cast to `BIGINT`, so the
/// types are fixed by the statement. A value that still does not decode
/// (text that is not UTF-8, an integer of no or more than 8 bytes) is an
/// error, as before.
fn row_ref(r: &PgRow) -> Result<RowRef<'_>, sqlx::Error> {
    Ok(RowRef {
        instance: r.try_get_unchecked(0)?,
        seq: r.try_get_unchecked(1)?,
        kind: r.try_get_unchecked(2)?,
        time: r.try_get_unchecked(3)?,
        request_id: r.try_get_unchecked(4)?,
        trace_id: r.try_get_unchecked(5)?,
        org: r.try_get_unchecked(6)?,
        cert_fingerprint: r.try_get_unchecked(7)?,
        role: r.try_get_unchecked(8)?,
        grondslag: r.try_get_unchecked(9)?,
        overleg: r.try_get_unchecked(10)?,
        purpose: r.try_get_unchecked(11)?,
        bron: r.try_get_unchecked(12)?,
        resource: r.try_get_unchecked(13)?,
        pupil: r.try_get_unchecked(14)?,
        outcome: r.try_get_unchecked(15)?,
        reason: r.try_get_unchecked(16)?,
        side: r.try_get_unchecked(17)?,
        rules: r.try_get_unchecked(18)?,
        fields_shared: r.try_get_unchecked(19)?,
        fields_withheld: r.try_get_unchecked(20)?,
        status: r.try_get_unchecked(21)?,
        upstream_status: r.try_get_unchecked(22)?,
        duration_us: r.try_get_unchecked(23)?,
        policy_version: r.try_get_unchecked(24)?,
        detail: r.try_get_unchecked(25)?,
        personal_digest: r.try_get_unchecked(26)?,
        purged_at: r.try_get_unchecked(27)?,
        prev_hash: r.try_get_unchecked(28)?,
        hash: r.try_get_unchecked(29)?,
        supplier: r.try_get_unchecked(30)?,
        owner: r.try_get_unchecked(31)?,
    })
}
