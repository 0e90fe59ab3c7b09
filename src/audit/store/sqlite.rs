//! The audit writer's SQLite connection: rusqlite on a blocking thread, one
//! hand-off per batch.
//!
//! Through sqlx every SQLite statement is a round trip to the connection's
//! worker thread (a channel send, a wake-up, a reply): a batch of `BEGIN`,
//! the record inserts, the aggregate upserts, its register changes, a
//! checkpoint and `COMMIT` costs a dozen of them, and every bound value is
//! copied into sqlx's own argument buffer first. Here the whole batch moves
//! to a blocking thread once, is bound from the rows in place, and its
//! outcome comes back once.
//!
//! What a failure means is decided here, because only here is it known at
//! which step it happened: any failure before `COMMIT` (or `COMMIT`
//! answering busy) leaves the transaction uncommitted and is definite; any
//! other failure of `COMMIT` itself, or a timer that fired while the batch
//! was on its thread, leaves the outcome unknown (see `audit::writer`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior, params};

use super::{Statement, StoreError};
use crate::audit::aggregate::{self, Sums};
use crate::audit::checkpoint::Checkpoint;
use crate::audit::record::StoredRow;

/// One transaction's worth of writes, owned: it crosses to the thread.
/// The rows are shared, not copied: the writer keeps them for what follows
/// the transaction (acknowledgements, corrections).
#[derive(Debug, Default)]
pub struct Batch {
    pub rows: Vec<Arc<StoredRow>>,
    pub sides: Vec<Statement>,
    /// The writer seals at most one per batch; a generator may add more.
    pub checkpoints: Vec<Checkpoint>,
}

/// The writer's connection. Dropping it while a batch is on its thread
/// interrupts the batch and keeps it from committing if it has not begun
/// to (the outcome stays unknown to the caller either way).
pub struct WriteConnection {
    conn: Option<Connection>,
    interrupt: rusqlite::InterruptHandle,
    /// Set when the caller gave up on the batch in flight.
    abandoned: Arc<AtomicBool>,
}

impl std::fmt::Debug for WriteConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteConnection")
            .field("idle", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for WriteConnection {
    fn drop(&mut self) {
        if self.conn.is_none() {
            self.abandoned.store(true, Ordering::SeqCst);
            self.interrupt.interrupt();
        }
    }
}

impl WriteConnection {
    /// Opens the database file `path` (created and migrated by the pool)
    /// with `synchronous=FULL`, statements bounded by `bound` (SQLite's
    /// `busy_timeout`) and a page cache of `cache_mib` MiB (every insert
    /// touches four b-trees, one keyed by a random pseudonym: the cache
    /// keeps their inner pages from batch to batch).
    pub async fn open(path: String, bound: Duration, cache_mib: u32) -> Result<Self, StoreError> {
        let conn = tokio::task::spawn_blocking(move || open(&path, bound, cache_mib))
            .await
            .map_err(|e| StoreError::Invalid(format!("the SQLite writer thread stopped: {e}")))?
            .map_err(StoreError::Write)?;
        let interrupt = conn.get_interrupt_handle();
        Ok(Self {
            conn: Some(conn),
            interrupt,
            abandoned: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Commits `batch` as one transaction: its records, their aggregates,
    /// its register changes and its checkpoint, or none of them. After a
    /// failure the connection is not used again (drop it).
    pub async fn insert(&mut self, batch: Batch) -> Result<(), StoreError> {
        let Some(mut conn) = self.conn.take() else {
            return Err(StoreError::Unavailable);
        };
        let abandoned = Arc::clone(&self.abandoned);
        let done = tokio::task::spawn_blocking(move || {
            let result = commit(&mut conn, &batch, &abandoned);
            (conn, result)
        })
        .await;
        match done {
            Ok((conn, result)) => {
                self.conn = Some(conn);
                result
            }
            Err(e) => Err(StoreError::Invalid(format!(
                "the SQLite writer thread stopped: {e}"
            ))),
        }
    }
}

fn open(path: &str, bound: Duration, cache_mib: u32) -> Result<Connection, rusqlite::Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(bound.max(Duration::from_millis(1)))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Negative: a size in KiB rather than in pages.
    conn.pragma_update(None, "cache_size", -i64::from(cache_mib.max(1)) * 1024)?;
    Ok(conn)
}

/// The batch's transaction, on the blocking thread.
fn commit(conn: &mut Connection, batch: &Batch, abandoned: &AtomicBool) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::Write)?;
    write(&tx, batch).map_err(StoreError::Write)?;
    if abandoned.load(Ordering::SeqCst) {
        // Dropping the transaction rolls it back.
        return Err(StoreError::Invalid(
            "the batch was abandoned before its commit".into(),
        ));
    }
    tx.commit().map_err(|e| {
        if is_busy(&e) {
            StoreError::Write(e)
        } else {
            StoreError::CommitUnknown(e)
        }
    })
}

fn write(tx: &rusqlite::Transaction<'_>, batch: &Batch) -> Result<(), rusqlite::Error> {
    insert_rows(tx, &batch.rows)?;
    upsert_sums(tx, &aggregate::sums_of(&batch.rows))?;
    for s in &batch.sides {
        execute(tx, s)?;
    }
    for c in &batch.checkpoints {
        tx.prepare_cached(CHECKPOINT_SQL)?.execute(params![
            c.instance,
            c.ck_no,
            c.seq,
            c.hash,
            c.time,
            c.key_id,
            c.signature
        ])?;
    }
    Ok(())
}

const CHECKPOINT_SQL: &str = "INSERT INTO audit_checkpoints (instance, ck_no, seq, hash, time, key_id, signature) VALUES (?,?,?,?,?,?,?)";

/// One record per statement: on this thread a statement costs no hand-off,
/// and a cached single-row statement is prepared once per connection.
fn insert_rows(
    tx: &rusqlite::Transaction<'_>,
    rows: &[Arc<StoredRow>],
) -> Result<(), rusqlite::Error> {
    let mut stmt = tx.prepare_cached(&super::SQLITE_INSERT)?;
    for r in rows {
        stmt.execute(params![
            r.instance,
            r.seq,
            r.kind,
            r.time,
            r.request_id,
            r.trace_id,
            r.org,
            r.cert_fingerprint,
            r.role,
            r.grondslag,
            r.overleg,
            r.purpose,
            r.bron,
            r.resource,
            r.pupil,
            r.outcome,
            r.reason,
            r.side,
            r.rules,
            r.fields_shared,
            r.fields_withheld,
            r.status,
            r.upstream_status,
            r.duration_us,
            r.policy_version,
            r.detail,
            r.personal_digest,
            r.purged_at,
            r.prev_hash,
            r.hash,
            r.supplier,
            r.owner,
        ])?;
    }
    Ok(())
}

/// Adds `sums` to the aggregates, then removes the rows a negative count
/// brought to zero (as `aggregate::upsert`).
fn upsert_sums(tx: &rusqlite::Transaction<'_>, sums: &Sums) -> Result<(), rusqlite::Error> {
    if sums.is_empty() {
        return Ok(());
    }
    let mut stmt = tx.prepare_cached(&aggregate::sqlite_upsert_sql(1))?;
    for (k, c) in sums {
        stmt.execute(params![
            k.day, k.kind, k.overleg, k.k1, k.k2, k.k3, k.k4, c.n, c.t
        ])?;
    }
    if sums.values().any(|c| c.n < 0) {
        tx.execute("DELETE FROM audit_aggregates WHERE n <= 0", [])?;
    }
    Ok(())
}

/// A register change: its `$n` placeholders bound by name (a statement
/// may use one twice, or out of order).
fn execute(tx: &rusqlite::Transaction<'_>, s: &Statement) -> Result<(), rusqlite::Error> {
    let mut stmt = tx.prepare_cached(s.sql)?;
    for i in 1..=stmt.parameter_count() {
        let name = stmt.parameter_name(i).unwrap_or_default();
        let value = name
            .strip_prefix('$')
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| s.binds.get(n.checked_sub(1)?))
            .ok_or_else(|| rusqlite::Error::InvalidParameterName(name.to_owned()))?;
        stmt.raw_bind_parameter(i, value)?;
    }
    stmt.raw_execute()?;
    Ok(())
}

/// SQLite answered that it could not get its lock within the bound.
pub(super) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a TEXT, b TEXT)")
            .unwrap();
        conn
    }

    #[test]
    fn register_changes_bind_their_placeholders_by_name() {
        let mut conn = connection();
        let tx = conn.transaction().unwrap();
        let s = Statement {
            sql: "INSERT INTO t (b, a) VALUES ($2, $1)",
            binds: vec![Some("one".into()), None],
        };
        execute(&tx, &s).unwrap();
        let twice = Statement {
            sql: "UPDATE t SET a = $1, b = $1 WHERE a = $2",
            binds: vec![Some("x".into()), Some("one".into())],
        };
        execute(&tx, &twice).unwrap();
        let row: (String, String) = tx
            .query_row("SELECT a, b FROM t", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!(row, ("x".to_owned(), "x".to_owned()));
    }

    #[test]
    fn a_placeholder_without_a_value_fails_the_statement() {
        let mut conn = connection();
        let tx = conn.transaction().unwrap();
        let s = Statement {
            sql: "INSERT INTO t (a, b) VALUES ($1, $3)",
            binds: vec![Some("one".into())],
        };
        assert!(matches!(
            execute(&tx, &s),
            Err(rusqlite::Error::InvalidParameterName(n)) if n == "$3"
        ));
    }
}
