//! The registers' change feed (`register_feed`, `register_changes`, see
//! `migrations/20261204000001_register_feed.sql`): triggers on every
//! register table append the changed pupil's pseudonym in the change's own
//! transaction, numbered in commit order; readers ask for the changes after
//! the last number they applied. On PostgreSQL each change also notifies
//! [`CHANNEL`], so a listening instance need not wait for its next poll.

use sqlx::{AnyPool, Executor, Row};

use super::store::{Backend, Store, StoreError};

/// The PostgreSQL `LISTEN` channel a register change notifies.
pub const CHANNEL: &str = "poortwachter_registers";

/// The tables whose rows make up a pupil's status (emergency windows are
/// looked up per request and are not fed).
const TABLES: [&str; 4] = [
    "case_registrations",
    "consents",
    "objections",
    "restrictions",
];

/// Numbers the change and appends `subject` (an SQLite trigger statement;
/// `cond` limits it, e.g. to an update that changed the subject).
fn sqlite_append(subject: &str, cond: &str) -> String {
    format!(
        "UPDATE register_feed SET seq = seq + 1 WHERE id = 1{cond}; \
         INSERT INTO register_changes (seq, subject) SELECT seq, {subject} FROM register_feed WHERE id = 1{cond};"
    )
}

fn sqlite_triggers() -> Vec<String> {
    let mut out = Vec::new();
    for t in TABLES {
        let moved = " AND OLD.subject <> NEW.subject";
        let bodies = [
            ("insert", "INSERT", sqlite_append("NEW.subject", "")),
            (
                "update",
                "UPDATE",
                format!(
                    "{}{}",
                    sqlite_append("OLD.subject", ""),
                    sqlite_append("NEW.subject", moved)
                ),
            ),
            ("delete", "DELETE", sqlite_append("OLD.subject", "")),
        ];
        for (name, op, body) in bodies {
            out.push(format!(
                "CREATE TRIGGER IF NOT EXISTS register_feed_{t}_{name} AFTER {op} ON {t} FOR EACH ROW BEGIN {body} END"
            ));
        }
    }
    out
}

const PG_FUNCTION: &str = r"CREATE OR REPLACE FUNCTION poortwachter_register_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE n BIGINT;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE register_feed SET seq = seq + 1 WHERE id = 1 RETURNING seq INTO n;
        INSERT INTO register_changes (seq, subject) VALUES (n, OLD.subject);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.subject IS DISTINCT FROM OLD.subject) THEN
        UPDATE register_feed SET seq = seq + 1 WHERE id = 1 RETURNING seq INTO n;
        INSERT INTO register_changes (seq, subject) VALUES (n, NEW.subject);
    END IF;
    PERFORM pg_notify('poortwachter_registers', n::text);
    RETURN NULL;
END $$";

/// Counts the feed's triggers in place (`TABLES.len()` on PostgreSQL,
/// three per table on SQLite when installed).
const COUNT_SQLITE: &str =
    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'register_feed_%'";
const COUNT_PG: &str = "SELECT COUNT(*) FROM pg_trigger t JOIN pg_proc p ON t.tgfoid = p.oid \
     WHERE t.tgname = 'register_feed' AND p.proname = 'poortwachter_register_changed'";

/// Installs the feed's triggers unless they are in place (every process
/// connects through here, and replacing a trigger locks its table); on
/// PostgreSQL under an advisory lock, so instances starting together do not
/// race. A changed trigger body needs a new function name.
pub(super) async fn install(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    let (count, want) = match backend {
        Backend::Sqlite => (COUNT_SQLITE, 3 * TABLES.len()),
        Backend::Postgres => (COUNT_PG, TABLES.len()),
    };
    let present: i64 = sqlx::query(count).fetch_one(pool).await?.try_get(0)?;
    if usize::try_from(present).is_ok_and(|n| n == want) {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    match backend {
        Backend::Sqlite => {
            for sql in sqlite_triggers() {
                tx.execute(sqlx::AssertSqlSafe(sql)).await?;
            }
        }
        Backend::Postgres => {
            tx.execute("SELECT pg_advisory_xact_lock(7170017)").await?;
            tx.execute(PG_FUNCTION).await?;
            for t in TABLES {
                tx.execute(sqlx::AssertSqlSafe(format!(
                    "DROP TRIGGER IF EXISTS register_feed ON {t}"
                )))
                .await?;
                tx.execute(sqlx::AssertSqlSafe(format!(
                    "CREATE TRIGGER register_feed AFTER INSERT OR UPDATE OR DELETE ON {t} \
                     FOR EACH ROW EXECUTE FUNCTION poortwachter_register_changed()"
                )))
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

impl Store {
    /// The number of the newest register change committed.
    pub async fn feed_head(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT seq FROM register_feed WHERE id = 1")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Up to `limit` register changes numbered after `after`, in order:
    /// (number, the changed pupil's pseudonym).
    pub async fn feed_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "SELECT seq, subject FROM register_changes WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Forgets the changes numbered `up_to` and before (a reader that has
    /// not applied them finds the gap and starts afresh).
    pub async fn feed_prune(&self, up_to: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM register_changes WHERE seq <= $1")
            .bind(up_to)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// A PostgreSQL connection listening on [`CHANNEL`]; `None` on SQLite
    /// (there the feed is polled only).
    pub async fn feed_listener(&self) -> Result<Option<sqlx::postgres::PgListener>, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut l = sqlx::postgres::PgListener::connect(self.url()).await?;
        l.listen(CHANNEL).await?;
        Ok(Some(l))
    }
}
