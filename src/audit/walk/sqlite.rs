//! The SQLite side of the walk: a blocking thread reads with rusqlite and
//! sends batches of rows, each batch one text buffer with the columns as
//! ranges into it.

use std::ops::ControlFlow;

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::mpsc;

use super::{Span, WALK_SQL};
use crate::audit::record::RowRef;
use crate::audit::store::StoreError;
use crate::audit::verify::Checked;

/// Rows per batch handed from the reading thread to the hashing task.
const BATCH_ROWS: usize = 1_024;
/// Batches the reader may be ahead (bounds memory to a few MiB).
const BATCHES_AHEAD: usize = 4;
/// Columns per row, as in [`WALK_SQL`] and [`RowRef`].
const COLUMNS: usize = 32;

/// One column of one row in a [`Batch`].
#[derive(Clone, Copy)]
enum Cell {
    Null,
    Text(usize, usize),
    Int(i64),
}

/// A run of rows: their text in one buffer, `COLUMNS` cells per row. The
/// text is checked to be UTF-8 by the hashing task, not the reading thread
/// (the reader is the busier of the two).
#[derive(Default)]
struct Batch {
    text: Vec<u8>,
    cells: Vec<Cell>,
}

/// The verification walk on SQLite (see `super::checked_chain`): the
/// blocks are read and checked by rusqlite on blocking threads, one reader
/// per core and one more ([`super::readers`]), handed over in order.
pub(super) async fn checked(
    path: String,
    span: Span<'_>,
    visit: impl FnMut(Checked),
) -> Result<(), StoreError> {
    let (instance, range) = (span.instance.to_owned(), (span.after, span.head, span.page));
    super::in_order(
        span,
        |i, k, tx| {
            let (path, instance) = (path.clone(), instance.clone());
            tokio::task::spawn_blocking(move || check_blocks(&path, &instance, range, (i, k), &tx))
        },
        visit,
    )
    .await
}

/// One verification reader: blocks `i`, `i + k`, `i + 2k`, … of
/// `(after, head]`, `block` positions each, read and checked, each sent as
/// one batch. Stops early (without error) when the walk is gone.
fn check_blocks(
    path: &str,
    instance: &str,
    (after, head, block): (i64, i64, i64),
    (i, k): (usize, usize),
    tx: &mpsc::Sender<Vec<Checked>>,
) -> Result<(), StoreError> {
    let conn = open_read_only(path)?;
    let mut stmt = conn.prepare(WALK_SQL)?;
    for (lo, hi) in super::blocks_of((after, head, block), (i, k)) {
        let mut rows = stmt.query((instance, lo, hi, block))?;
        let mut out = Vec::with_capacity(usize::try_from(hi - lo).unwrap_or(0));
        while let Some(row) = rows.next()? {
            out.push(Checked::of(&row_ref(row)?));
        }
        if tx.blocking_send(out).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// A rusqlite row's columns, borrowed as stored (valid until the next
/// step): verification hashes the bytes, so no column is checked to be
/// UTF-8 first (6% of its CPU at 10 M records); one that is not fails its
/// hash like any other edit.
fn row_ref<'a>(row: &'a rusqlite::Row<'_>) -> Result<RowRef<'a, [u8]>, StoreError> {
    let opt = |i: usize| match row.get_ref(i)? {
        ValueRef::Text(t) => Ok(Some(t)),
        ValueRef::Null => Ok(None),
        _ => Err(bad_type(i)),
    };
    let opt_int = |i: usize| match row.get_ref(i)? {
        ValueRef::Integer(v) => Ok(Some(v)),
        ValueRef::Null => Ok(None),
        _ => Err(bad_type(i)),
    };
    assemble(opt, opt_int)
}

/// A row from its columns by position ([`super::WALK_SQL`]'s order): `opt`
/// gives a text column (`None` for NULL), `opt_int` an integer one; a
/// required column that is NULL is a wrong type.
fn assemble<'a, T: ?Sized>(
    opt: impl Fn(usize) -> Result<Option<&'a T>, StoreError>,
    opt_int: impl Fn(usize) -> Result<Option<i64>, StoreError>,
) -> Result<RowRef<'a, T>, StoreError> {
    let text = |i: usize| opt(i)?.ok_or_else(|| bad_type(i));
    let int = |i: usize| opt_int(i)?.ok_or_else(|| bad_type(i));
    Ok(RowRef {
        instance: text(0)?,
        seq: int(1)?,
        kind: text(2)?,
        time: text(3)?,
        request_id: text(4)?,
        trace_id: text(5)?,
        org: opt(6)?,
        cert_fingerprint: opt(7)?,
        role: opt(8)?,
        grondslag: opt(9)?,
        overleg: opt(10)?,
        purpose: opt(11)?,
        bron: opt(12)?,
        resource: opt(13)?,
        pupil: opt(14)?,
        outcome: text(15)?,
        reason: text(16)?,
        side: opt(17)?,
        rules: text(18)?,
        fields_shared: text(19)?,
        fields_withheld: text(20)?,
        status: int(21)?,
        upstream_status: opt_int(22)?,
        duration_us: int(23)?,
        policy_version: text(24)?,
        detail: text(25)?,
        personal_digest: text(26)?,
        purged_at: opt(27)?,
        prev_hash: text(28)?,
        hash: text(29)?,
        supplier: opt(30)?,
        owner: opt(31)?,
    })
}

/// The last row a page read: where the next page starts.
#[derive(Debug, Default, Clone)]
pub struct Last {
    pub time: String,
    pub instance: String,
    pub seq: i64,
}

/// Feeds `visit` every row of the pages `page_sql` describes (each page at
/// most `page` rows; the next page's statement is made from the last row
/// read). The statements select the columns in [`RowRef`]'s order
/// (`super::ROW_COLUMNS`). A blocking thread reads them through rusqlite
/// and hands them over `BATCH_ROWS` at a time; `visit` runs on this task and
/// may stop the walk early.
pub(crate) async fn pages<P>(
    path: String,
    page: usize,
    page_sql: P,
    mut visit: impl FnMut(RowRef<'_>) -> ControlFlow<()>,
) -> Result<(), StoreError>
where
    P: FnMut(Option<&Last>) -> (String, Vec<Value>) + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel(BATCHES_AHEAD);
    let reader = tokio::task::spawn_blocking(move || read(&path, page.max(1), page_sql, &tx));
    while let Some(batch) = rx.recv().await {
        let batch: Batch = batch;
        for row in batch.cells.chunks_exact(COLUMNS) {
            if visit(batch.row(row)?).is_break() {
                // Dropping the receiver stops the reader at its next batch.
                return Ok(());
            }
        }
    }
    reader
        .await
        .map_err(|e| StoreError::Invalid(format!("the SQLite reader stopped: {e}")))?
}

/// The reading thread: page after page until one comes back short. Stops
/// early (without error) when the receiving task is gone.
fn read(
    path: &str,
    page: usize,
    mut page_sql: impl FnMut(Option<&Last>) -> (String, Vec<Value>),
    tx: &mpsc::Sender<Batch>,
) -> Result<(), StoreError> {
    let conn = open_read_only(path)?;
    let mut last: Option<Last> = None;
    // The last row's key, as raw text (checked once per page, not per row).
    let (mut time, mut instance, mut seq) = (Vec::new(), Vec::new(), 0);
    loop {
        let (sql, binds) = page_sql(last.as_ref());
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(binds))?;
        let mut batch = Batch::default();
        let mut read = 0;
        while let Some(row) = rows.next()? {
            seq = row.get(1)?;
            copy_text(row, 3, &mut time)?;
            copy_text(row, 0, &mut instance)?;
            batch.push(row)?;
            read += 1;
            if batch.cells.len() == BATCH_ROWS * COLUMNS
                && tx.blocking_send(std::mem::take(&mut batch)).is_err()
            {
                return Ok(());
            }
        }
        if !batch.cells.is_empty() && tx.blocking_send(batch).is_err() {
            return Ok(());
        }
        if read < page {
            return Ok(());
        }
        let text = |b: &[u8], i| String::from_utf8(b.to_vec()).map_err(|_| bad_type(i));
        last = Some(Last {
            time: text(&time, 3)?,
            instance: text(&instance, 0)?,
            seq,
        });
    }
}

/// A read-only connection of its own on the SQLite store, for a reader on
/// a blocking thread.
pub(crate) fn open_read_only(path: &str) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

fn copy_text(row: &rusqlite::Row<'_>, i: usize, to: &mut Vec<u8>) -> Result<(), StoreError> {
    match row.get_ref(i)? {
        ValueRef::Text(t) => {
            to.clear();
            to.extend_from_slice(t);
            Ok(())
        }
        _ => Err(bad_type(i)),
    }
}

impl Batch {
    fn push(&mut self, row: &rusqlite::Row<'_>) -> Result<(), StoreError> {
        for i in 0..COLUMNS {
            let cell = match row.get_ref(i)? {
                ValueRef::Null => Cell::Null,
                ValueRef::Integer(v) => Cell::Int(v),
                ValueRef::Text(t) => {
                    let start = self.text.len();
                    self.text.extend_from_slice(t);
                    Cell::Text(start, self.text.len())
                }
                ValueRef::Real(_) | ValueRef::Blob(_) => return Err(bad_type(i)),
            };
            self.cells.push(cell);
        }
        Ok(())
    }

    /// The row whose cells are `c`, borrowed from this batch's text.
    fn row<'a>(&'a self, c: &[Cell]) -> Result<RowRef<'a>, StoreError> {
        let opt = |i: usize| match c.get(i) {
            Some(Cell::Text(a, b)) => self
                .text
                .get(*a..*b)
                .and_then(|t| std::str::from_utf8(t).ok())
                .map(Some)
                .ok_or_else(|| bad_type(i)),
            Some(Cell::Null) => Ok(None),
            _ => Err(bad_type(i)),
        };
        let opt_int = |i: usize| match c.get(i) {
            Some(Cell::Int(v)) => Ok(Some(*v)),
            Some(Cell::Null) => Ok(None),
            _ => Err(bad_type(i)),
        };
        assemble(opt, opt_int)
    }
}

/// A column whose stored type is not the one the schema gives it: the row
/// was edited outside the gateway (a finding's cause, reported as an error
/// naming the column).
fn bad_type(i: usize) -> StoreError {
    StoreError::Invalid(format!(
        "audit_records column {} has an unexpected type",
        i + 1
    ))
}
