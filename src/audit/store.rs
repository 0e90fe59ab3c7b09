//! The audit store over sqlx: SQLite (embedded default: WAL, synchronous
//! FULL) or PostgreSQL, with the same portable schema (`migrations/`).

use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Executor, Row};

use super::checkpoint::Checkpoint;
use super::record::StoredRow;

mod sqlite;

pub use sqlite::{Batch, WriteConnection};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("audit store: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("audit store: migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("audit store: cannot encode a batch")]
    Encode(#[source] serde_json::Error),
    #[error("audit store: cannot open the instance lock file {path}")]
    LockFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("audit store: {0}")]
    Invalid(String),
    #[error("audit store: no answer within {0:?}")]
    Deadline(std::time::Duration),
    #[error("audit store: unavailable since an earlier failure (the writer retries)")]
    Unavailable,
    #[error("audit: the record's deadline passed before the writer reached it")]
    Missed,
    #[error("audit store (SQLite reader): {0}")]
    Reader(#[from] rusqlite::Error),
    /// A write on the SQLite writer's connection failed before its commit
    /// (or the commit answered busy): the transaction did not commit.
    #[error("audit store (SQLite writer): {0}")]
    Write(#[source] rusqlite::Error),
    /// The SQLite commit itself failed: it may or may not have landed.
    #[error("audit store (SQLite writer): the commit failed, outcome unknown: {0}")]
    CommitUnknown(#[source] rusqlite::Error),
    #[error("audit store URL must start with sqlite: or postgres:")]
    Url,
    #[error(
        "another process is already writing the audit chain of instance `{0}`; every gateway instance needs a unique server.instance"
    )]
    InstanceBusy(String),
}

impl StoreError {
    /// The store itself answered that the statement failed (a lock or
    /// statement timeout, a constraint): its transaction did not commit.
    /// Any other failure (the connection broke, a timer fired) may have
    /// happened after the store received `COMMIT`.
    pub fn is_definite(&self) -> bool {
        matches!(
            self,
            StoreError::Sql(sqlx::Error::Database(_)) | StoreError::Write(_)
        )
    }

    /// The store gave up waiting (a lock it could not get within the
    /// session's bound, see [`Store::bound_session`]): definite, and trying
    /// again at once would only wait again. PostgreSQL `57014`
    /// (statement_timeout) and `55P03` (lock_timeout); SQLite `SQLITE_BUSY`
    /// and `SQLITE_LOCKED` with their extended codes.
    pub fn is_busy(&self) -> bool {
        let e = match self {
            StoreError::Sql(e) => e,
            StoreError::Write(e) => return sqlite::is_busy(e),
            _ => return false,
        };
        let Some(code) = e
            .as_database_error()
            .and_then(sqlx::error::DatabaseError::code)
        else {
            return false;
        };
        match code.parse::<u32>() {
            Ok(sqlite) => matches!(sqlite & 0xff, 5 | 6),
            Err(_) => matches!(code.as_ref(), "57014" | "55P03"),
        }
    }
}

/// Held while a process extends an instance's chain.
#[derive(Debug)]
pub enum InstanceLock {
    /// The advisory lock's session. The writer commits its batches on this
    /// same connection, so a lost lock (session gone) fails the next write
    /// instead of letting two processes extend one chain.
    Postgres(AnyConnection),
    /// The PostgreSQL session was dropped after a failure whose outcome is
    /// unknown; [`Store::relock_instance`] takes the lock on a new one.
    Lost,
    File(std::fs::File),
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// One SQL statement with its values bound (the text is `'static` and has
/// placeholders only: no data ever enters the SQL text).
#[derive(Debug, Clone)]
pub struct Statement {
    pub sql: &'static str,
    pub binds: Vec<Option<String>>,
}

/// A register change committed in the same transaction as its audit record,
/// so both become durable together or not at all, and the statement that
/// undoes it. The undo runs only in one case: the change's transaction
/// landed while its outcome was unknown to the writer and the client had
/// already been answered 503 ("nothing changed"); it is then committed
/// together with the correction record (see `audit::writer`).
/// Neither statement may fail for data reasons (guard with `WHERE`, insert
/// fresh ids): a failing statement fails the whole batch.
#[derive(Debug, Clone)]
pub struct SideWrite {
    pub apply: Statement,
    pub undo: Statement,
}

/// A store URL, which can hold a password: never printed, not even by `Debug`.
#[derive(Clone)]
struct ConnectUrl(String);

impl std::fmt::Debug for ConnectUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectUrl(..)")
    }
}

/// A connected, migrated store.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    /// The URL the pool connects with, for a connection of the backend's own
    /// driver (`audit::walk`).
    url: ConnectUrl,
    pub backend: Backend,
    /// The database file, for SQLite (lock files live next to it).
    sqlite_path: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Column list shared by every statement (a macro so statements stay `&'static str`).
macro_rules! columns {
    () => {
        "instance, seq, kind, time, request_id, trace_id, org, cert_fingerprint, role, grondslag, overleg, purpose, bron, resource, subject, outcome, reason, side, rules, fields_shared, fields_withheld, status, upstream_status, duration_us, policy_version, detail, personal_digest, purged_at, prev_hash, hash, supplier, owner"
    };
}

/// The column list, for read-only queries elsewhere (review, export).
pub(crate) const COLUMNS: &str = columns!();

const COLUMN_COUNT: usize = 32;

/// `INSERT ... VALUES (?,...,?)`: one record (placeholders only: no data
/// ever enters the SQL text). Made once.
static SQLITE_INSERT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let marks = vec!["?"; COLUMN_COUNT].join(",");
    format!(
        "INSERT INTO audit_records ({}) VALUES ({marks})",
        columns!()
    )
});

/// Batch insert for PostgreSQL: one JSON array parameter, unpacked by
/// `json_populate_recordset` (matching keys to column names).
const PG_INSERT: &str = concat!(
    "INSERT INTO audit_records (",
    columns!(),
    ") SELECT ",
    columns!(),
    " FROM json_populate_recordset(NULL::audit_records, $1::json)"
);

/// Records purged per transaction.
const PURGE_PAGE: usize = 2_000;

/// The page's records grouped by instance: (instance, seqs).
fn by_instance(page: &[StoredRow]) -> Vec<(String, Vec<i64>)> {
    let mut out: std::collections::BTreeMap<String, Vec<i64>> = std::collections::BTreeMap::new();
    for r in page {
        out.entry(r.instance.clone()).or_default().push(r.seq);
    }
    out.into_iter().collect()
}

/// Erases the personal columns of `instance`'s records `seqs` that are not
/// purged yet; returns those it erased.
async fn erase(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    instance: &str,
    seqs: &[i64],
    now: &str,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut out = Vec::new();
    for chunk in seqs.chunks(500) {
        let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "UPDATE audit_records SET subject = NULL, fields_shared = '[]', fields_withheld = '[]', purged_at = $1 WHERE purged_at IS NULL AND instance = $2 AND seq IN ({}) RETURNING seq",
            marks.join(",")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(instance);
        for s in chunk {
            q = q.bind(*s);
        }
        for r in q.fetch_all(&mut **tx).await? {
            out.push((instance.to_owned(), r.try_get::<i64, _>(0)?));
        }
    }
    Ok(out)
}

/// Records, once, from when the aggregates are complete: from the start
/// for an empty trail, from now for a trail that existed before them (see
/// `audit aggregates --recompute`). Two processes connecting at once agree:
/// the first row wins.
async fn aggregates_since_first_connect(pool: &AnyPool) -> Result<(), StoreError> {
    let known: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_aggregates_since")
        .fetch_one(pool)
        .await?;
    if known > 0 {
        return Ok(());
    }
    let any: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM (SELECT 1 FROM audit_records LIMIT 1) AS one")
            .fetch_one(pool)
            .await?;
    let since = if any == 0 {
        String::new()
    } else {
        super::record::now_rfc3339()
    };
    sqlx::query(
        "INSERT INTO audit_aggregates_since (id, since) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
    )
    .bind(since)
    .execute(pool)
    .await?;
    Ok(())
}

/// The PostgreSQL batch insert together with its aggregates, as one
/// statement (a data-modifying CTE: both or neither, one round trip).
fn pg_insert_with_aggregates<R: std::borrow::Borrow<StoredRow>>(
    rows: &[R],
    sums: &super::aggregate::Sums,
) -> Result<sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>, StoreError> {
    let rows: Vec<&StoredRow> = rows.iter().map(std::borrow::Borrow::borrow).collect();
    let records = serde_json::to_string(&rows).map_err(StoreError::Encode)?;
    let sql = format!(
        "WITH records AS ({PG_INSERT}) {}",
        super::aggregate::pg_upsert_sql(2)
    );
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(records)
        .bind(super::aggregate::pg_json(sums)?))
}

impl Store {
    /// Connects and runs migrations. `sqlite:` URLs create the file if
    /// missing and use WAL with `synchronous=FULL`: a commit is on disk when
    /// it returns.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Url);
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_owned(),
        };
        let opts = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .acquire_timeout(std::time::Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA journal_mode=WAL").await?;
                        conn.execute("PRAGMA synchronous=FULL").await?;
                        conn.execute("PRAGMA busy_timeout=5000").await?;
                        // The pool's connections read (registers on a
                        // cache miss, the FG's queries) and keep SQLite's
                        // default page cache (2 MiB): their scans are served
                        // by the OS's page cache, and a verification ran
                        // faster with 2 MiB than with 64 (benches/RESULTS.md).
                        // The writer's connection has its own, configured.
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        super::feed::install(&pool, backend).await?;
        aggregates_since_first_connect(&pool).await?;
        let sqlite_path = match backend {
            Backend::Sqlite => url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .map(|p| p.split('?').next().unwrap_or(p).to_owned()),
            Backend::Postgres => None,
        };
        Ok(Self {
            pool,
            url: ConnectUrl(url),
            backend,
            sqlite_path,
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) fn url(&self) -> &str {
        &self.url.0
    }

    /// The SQLite database file (`None` on PostgreSQL).
    pub(crate) fn sqlite_path(&self) -> Option<&str> {
        self.sqlite_path.as_deref()
    }

    /// Last (seq, hash) of an instance's chain, or `None` for a new chain.
    pub async fn chain_head(&self, instance: &str) -> Result<Option<(i64, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT seq, hash FROM audit_records WHERE instance = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(instance)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some((r.try_get::<i64, _>(0)?, r.try_get::<String, _>(1)?)),
            None => None,
        })
    }

    /// Inserts a batch in one transaction: all rows, side writes (and the
    /// checkpoint, if any) or none. PostgreSQL: on a pooled connection;
    /// SQLite: on a [`WriteConnection`] of its own (bounded at 5 s).
    pub async fn insert_batch(
        &self,
        rows: &[StoredRow],
        side_writes: &[Statement],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<(), StoreError> {
        match self.backend {
            Backend::Postgres => {
                let mut conn = self.pool.acquire().await?;
                self.insert_batch_on(&mut conn, rows, side_writes, checkpoint)
                    .await
            }
            Backend::Sqlite => {
                let bound = std::time::Duration::from_secs(5);
                let mut conn = self
                    .write_connection(bound, super::DEFAULT_SQLITE_CACHE_MIB)
                    .await?;
                conn.insert(Batch {
                    rows: rows.iter().cloned().map(std::sync::Arc::new).collect(),
                    sides: side_writes.to_vec(),
                    checkpoints: checkpoint.into_iter().cloned().collect(),
                })
                .await
            }
        }
    }

    /// SQLite: a connection of its own, outside the pool, for the audit
    /// writer, its statements bounded by `bound` (`busy_timeout`), with a
    /// page cache of `cache_mib` MiB (`audit.sqlite_cache_mib`).
    ///
    /// Why not the pool: the pool hands out its idle connections in turn,
    /// and on SQLite a connection whose database another connection changed
    /// must drop its whole page cache (WAL) and read the b-trees' inner
    /// pages again. One writer connection keeps them cached from batch to
    /// batch; and it writes a batch in one hand-off (see [`WriteConnection`]).
    pub async fn write_connection(
        &self,
        bound: std::time::Duration,
        cache_mib: u32,
    ) -> Result<WriteConnection, StoreError> {
        let path = self.sqlite_path.clone().ok_or(StoreError::Url)?;
        WriteConnection::open(path, bound, cache_mib).await
    }

    /// Bounds how long the store may keep a statement of `conn` waiting (on
    /// a lock, or at all): SQLite's `busy_timeout`, PostgreSQL's
    /// `statement_timeout`. Past it the store fails the statement, so its
    /// transaction certainly did not commit.
    pub async fn bound_session(
        &self,
        conn: &mut AnyConnection,
        bound: std::time::Duration,
    ) -> Result<(), StoreError> {
        let ms = bound.as_millis().max(1);
        let sql = match self.backend {
            Backend::Sqlite => format!("PRAGMA busy_timeout = {ms}"),
            Backend::Postgres => format!("SET statement_timeout = {ms}"),
        };
        conn.execute(sqlx::AssertSqlSafe(sql)).await?;
        Ok(())
    }

    /// [`Store::insert_batch`] on a given PostgreSQL connection (the
    /// writer's instance lock session). One transaction: the records, their
    /// aggregates, the register change and the checkpoint, kept together so
    /// their order is read at once. SQLite batches go through
    /// [`WriteConnection`].
    pub async fn insert_batch_on<R: std::borrow::Borrow<StoredRow>>(
        &self,
        conn: &mut AnyConnection,
        rows: &[R],
        side_writes: &[Statement],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            return Err(StoreError::Invalid(
                "a SQLite batch is written through its WriteConnection".into(),
            ));
        }
        // What the batch adds to the aggregates, in the same statement.
        let sums = super::aggregate::sums_of(rows);
        let insert = pg_insert_with_aggregates(rows, &sums)?;
        if side_writes.is_empty() && checkpoint.is_none() {
            // One statement is atomic on its own: in autocommit mode the
            // batch is one round trip (and one WAL flush) instead of three
            // (BEGIN, INSERT, COMMIT).
            insert.execute(&mut *conn).await?;
            return Ok(());
        }
        let mut tx = sqlx::Connection::begin(conn).await?;
        // The whole batch travels as ONE JSON parameter and
        // `json_populate_recordset` unpacks it server-side (one round trip).
        insert.execute(&mut *tx).await?;
        if !side_writes.is_empty() {
            // The register feed's counter row (`audit::feed`) is taken by
            // every register change's trigger; taking it before the changes'
            // own rows means two instances' batches never hold one each
            // while waiting for the other's (a deadlock PostgreSQL would
            // break by failing a batch).
            sqlx::query("SELECT seq FROM register_feed WHERE id = 1 FOR UPDATE")
                .execute(&mut *tx)
                .await?;
        }
        for w in side_writes {
            let mut q = sqlx::query(w.sql);
            for b in &w.binds {
                q = q.bind(b.clone());
            }
            q.execute(&mut *tx).await?;
        }
        if let Some(c) = checkpoint {
            insert_checkpoint(&mut tx, c).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The last position of every chain, by instance: what a verification
    /// walks (records appended later are a write in progress, not part of
    /// what it checks).
    pub async fn heads(&self) -> Result<std::collections::BTreeMap<String, i64>, StoreError> {
        let rows = sqlx::query(HEADS_SQL).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
            .collect()
    }

    /// Every checkpoint, ordered by instance and number.
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT instance, ck_no, seq, hash, time, key_id, signature FROM audit_checkpoints ORDER BY instance, ck_no",
        )
        .fetch_all(&self.pool)
        .await?;
        checkpoint_rows(&rows)
    }

    /// Up to `limit` checkpoints after `(instance, ck_no)` in (instance,
    /// ck_no) order; with `one_instance`, of that instance only (what an
    /// incremental verification has not seen yet).
    pub async fn checkpoints_page(
        &self,
        (instance, ck_no): (&str, i64),
        one_instance: bool,
        limit: i64,
    ) -> Result<Vec<Checkpoint>, StoreError> {
        let sql = if one_instance {
            "SELECT instance, ck_no, seq, hash, time, key_id, signature FROM audit_checkpoints WHERE instance = $1 AND ck_no > $2 ORDER BY ck_no LIMIT $3"
        } else {
            "SELECT instance, ck_no, seq, hash, time, key_id, signature FROM audit_checkpoints WHERE (instance, ck_no) > ($1, $2) ORDER BY instance, ck_no LIMIT $3"
        };
        if let Some(path) = self.sqlite_path() {
            // As the verification walk reads records (audit::walk): sqlx's
            // `Any` rows cost more than the checkpoints' own use here.
            let (path, instance) = (path.to_owned(), instance.to_owned());
            return tokio::task::spawn_blocking(move || {
                sqlite_checkpoints(&path, sql, (&instance, ck_no, limit))
            })
            .await
            .map_err(|e| StoreError::Invalid(format!("the SQLite reader stopped: {e}")))?;
        }
        let rows = sqlx::query(sql)
            .bind(instance)
            .bind(ck_no)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        checkpoint_rows(&rows)
    }

    /// The last checkpoint of an instance: (ck_no, seq of its chain record).
    pub async fn last_checkpoint(&self, instance: &str) -> Result<Option<(i64, i64)>, StoreError> {
        let row = sqlx::query(
            "SELECT ck_no, seq FROM audit_checkpoints WHERE instance = $1 ORDER BY ck_no DESC LIMIT 1",
        )
        .bind(instance)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            // The checkpoint's own chain record follows the seq it covers.
            Some(r) => Some((r.try_get::<i64, _>(0)?, r.try_get::<i64, _>(1)? + 1)),
            None => None,
        })
    }

    /// Erases the personal columns of request records of `overleg` (or of
    /// records without an overleg when `None`) older than `cutoff`, keeping
    /// their personal digest so the chain still verifies, and takes what it
    /// erases out of the aggregates in the same transaction (a page of
    /// `PURGE_PAGE` records at a time). Returns the count.
    pub async fn purge(
        &self,
        overleg: Option<&str>,
        cutoff: &str,
        now: &str,
    ) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let n = self.purge_page(overleg, cutoff, now).await?;
            total += n;
            if n == 0 {
                return Ok(total);
            }
        }
    }

    /// One page of [`Store::purge`]: the records are read and erased in one
    /// transaction that takes the write lock first (SQLite) or erases only
    /// what is still unpurged (`RETURNING`, PostgreSQL), so two purges never
    /// take the same record out of the aggregates twice. Returns how many
    /// records it erased; 0 when none was left.
    async fn purge_page(
        &self,
        overleg: Option<&str>,
        cutoff: &str,
        now: &str,
    ) -> Result<u64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        if self.backend == Backend::Sqlite {
            sqlx::query("UPDATE audit_aggregates_since SET since = since WHERE id = 1")
                .execute(&mut *tx)
                .await?;
        }
        let select = format!(
            "SELECT {} FROM audit_records WHERE purged_at IS NULL AND kind = 'request' AND {} AND time < $1 ORDER BY time, instance, seq LIMIT {PURGE_PAGE}",
            columns!(),
            if overleg.is_some() {
                "overleg = $2"
            } else {
                "overleg IS NULL"
            }
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(select)).bind(cutoff);
        if let Some(o) = overleg {
            q = q.bind(o);
        }
        let page: Vec<StoredRow> = q
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(row_from)
            .collect::<Result<_, _>>()?;
        let mut erased = Vec::with_capacity(page.len());
        for (instance, seqs) in by_instance(&page) {
            erased.extend(erase(&mut tx, &instance, &seqs, now).await?);
        }
        let erased: std::collections::HashSet<(String, i64)> = erased.into_iter().collect();
        let gone: Vec<StoredRow> = page
            .into_iter()
            .filter(|r| erased.contains(&(r.instance.clone(), r.seq)))
            .collect();
        super::aggregate::upsert(&mut tx, self.backend, &super::aggregate::purged(&gone)).await?;
        tx.commit().await?;
        Ok(gone.len() as u64)
    }

    /// Overleggen that occur in the trail (for retention of removed overleggen).
    pub async fn overleggen(&self) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT DISTINCT overleg FROM audit_records WHERE overleg IS NOT NULL")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>(0)?))
            .collect()
    }

    /// Takes the exclusive lock for `instance`: only one process may extend a
    /// chain. PostgreSQL: a session advisory lock on a dedicated connection;
    /// SQLite: an OS lock on a file next to the database.
    pub async fn lock_instance(&self, instance: &str) -> Result<InstanceLock, StoreError> {
        match self.backend {
            Backend::Postgres => {
                let mut conn = self.pool.acquire().await?.detach();
                // A 64-bit key from SHA-256 of the name: distinct names never
                // share a lock in practice (hashtext is only 32 bits).
                let d = ring::digest::digest(&ring::digest::SHA256, instance.as_bytes());
                let mut k = [0u8; 8];
                k.copy_from_slice(&d.as_ref()[..8]);
                let row = sqlx::query("SELECT pg_try_advisory_lock($1)")
                    .bind(i64::from_be_bytes(k))
                    .fetch_one(&mut conn)
                    .await?;
                if row.try_get::<bool, _>(0)? {
                    Ok(InstanceLock::Postgres(conn))
                } else {
                    Err(StoreError::InstanceBusy(instance.to_owned()))
                }
            }
            Backend::Sqlite => {
                let base = self.sqlite_path.clone().unwrap_or_else(|| "audit".into());
                let safe: String = instance
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let path = format!("{base}.{safe}.lock");
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
                    .map_err(|source| StoreError::LockFile {
                        path: path.clone(),
                        source,
                    })?;
                match f.try_lock() {
                    Ok(()) => Ok(InstanceLock::File(f)),
                    Err(_) => Err(StoreError::InstanceBusy(instance.to_owned())),
                }
            }
        }
    }

    /// Makes sure `lock` is still held; `true` when it had to be taken
    /// again on a new session. A PostgreSQL advisory lock lives as long as
    /// its session: when that connection broke (the server restarted) or was
    /// dropped ([`InstanceLock::Lost`]), the lock is taken again on a new
    /// one, or `InstanceBusy` while another session still holds it. File
    /// locks cannot be lost.
    pub async fn relock_instance(
        &self,
        lock: &mut InstanceLock,
        instance: &str,
    ) -> Result<bool, StoreError> {
        match lock {
            InstanceLock::File(_) => return Ok(false),
            InstanceLock::Postgres(conn) => {
                if sqlx::Connection::ping(conn).await.is_ok() {
                    return Ok(false);
                }
            }
            InstanceLock::Lost => {}
        }
        *lock = InstanceLock::Lost;
        *lock = self.lock_instance(instance).await?;
        Ok(true)
    }

    /// Every row, ordered by instance and seq (for verification and export).
    pub async fn all_rows(&self) -> Result<Vec<StoredRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM audit_records ORDER BY instance, seq"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_from).collect()
    }

    /// Up to `limit` rows after `after` in (instance, seq) order: one page of
    /// a walk over the whole trail (keyset pagination: each page is a short
    /// query on the primary key, so no cursor or transaction stays open while
    /// the caller works, and memory stays at one page).
    pub async fn rows_after(
        &self,
        after: Option<(&str, i64)>,
        limit: i64,
    ) -> Result<Vec<StoredRow>, StoreError> {
        let rows = match after {
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM audit_records ORDER BY instance, seq LIMIT $1"
                ))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            Some((instance, seq)) => {
                sqlx::query(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM audit_records WHERE (instance, seq) > ($1, $2) ORDER BY instance, seq LIMIT $3"
                ))
                .bind(instance)
                .bind(seq)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(row_from).collect()
    }

    /// Rows whose subject is one of `pseudonyms`.
    pub async fn rows_for_subject(
        &self,
        pseudonyms: &[String],
    ) -> Result<Vec<StoredRow>, StoreError> {
        let mut out = Vec::new();
        for p in pseudonyms {
            let rows = sqlx::query(concat!(
                "SELECT ",
                columns!(),
                " FROM audit_records WHERE subject = $1 ORDER BY time, instance, seq"
            ))
            .bind(p)
            .fetch_all(&self.pool)
            .await?;
            for r in &rows {
                out.push(row_from(r)?);
            }
        }
        Ok(out)
    }
}

pub(crate) fn row_from(r: &sqlx::any::AnyRow) -> Result<StoredRow, StoreError> {
    Ok(StoredRow {
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
        status: r
            .try_get::<i32, _>(21)
            .map(i64::from)
            .or_else(|_| r.try_get::<i64, _>(21))?,
        upstream_status: r
            .try_get::<Option<i32>, _>(22)
            .map(|v| v.map(i64::from))
            .or_else(|_| r.try_get::<Option<i64>, _>(22))?,
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

/// Inserts one checkpoint row on `conn` (inside the caller's transaction).
pub async fn insert_checkpoint(conn: &mut AnyConnection, c: &Checkpoint) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_checkpoints (instance, ck_no, seq, hash, time, key_id, signature) VALUES ($1,$2,$3,$4,$5,$6,$7)",
    )
    .bind(&c.instance)
    .bind(c.ck_no)
    .bind(c.seq)
    .bind(&c.hash)
    .bind(&c.time)
    .bind(&c.key_id)
    .bind(&c.signature)
    .execute(conn)
    .await?;
    Ok(())
}

/// Each instance's last `seq`, found by seeking the primary key once per
/// instance (a loose index scan) rather than by `GROUP BY instance`, which
/// both stores answer by reading every entry of the index: ~1.5 s at 10 M
/// records on SQLite, and verification asks twice (benches/fg.rs).
const HEADS_SQL: &str = "WITH RECURSIVE i(instance) AS ( \
     SELECT MIN(instance) FROM audit_records \
     UNION ALL \
     SELECT (SELECT MIN(r.instance) FROM audit_records r WHERE r.instance > i.instance) \
     FROM i WHERE i.instance IS NOT NULL) \
     SELECT instance, (SELECT MAX(r.seq) FROM audit_records r WHERE r.instance = i.instance) \
     FROM i WHERE instance IS NOT NULL";

/// Checkpoint rows (instance, ck_no, seq, hash, time, key_id, signature).
/// [`Store::checkpoints_page`] on SQLite, through rusqlite on the calling
/// (blocking) thread.
fn sqlite_checkpoints(
    path: &str,
    sql: &str,
    (instance, ck_no, limit): (&str, i64, i64),
) -> Result<Vec<Checkpoint>, StoreError> {
    let conn = super::walk::sqlite_read_only(path)?;
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map((instance, ck_no, limit), |r| {
        Ok(Checkpoint {
            instance: r.get(0)?,
            ck_no: r.get(1)?,
            seq: r.get(2)?,
            hash: r.get(3)?,
            time: r.get(4)?,
            key_id: r.get(5)?,
            signature: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

fn checkpoint_rows(rows: &[sqlx::any::AnyRow]) -> Result<Vec<Checkpoint>, StoreError> {
    rows.iter()
        .map(|r| {
            Ok(Checkpoint {
                instance: r.try_get(0)?,
                ck_no: r.try_get(1)?,
                seq: r.try_get(2)?,
                hash: r.try_get(3)?,
                time: r.try_get(4)?,
                key_id: r.try_get(5)?,
                signature: r.try_get(6)?,
            })
        })
        .collect()
}
