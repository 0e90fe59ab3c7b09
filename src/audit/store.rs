//! The audit store over sqlx: SQLite (embedded default: WAL, synchronous
//! FULL) or PostgreSQL, with the same portable schema (`migrations/`).

use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor, Row};

use super::record::StoredRow;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("audit store: {0}")]
    Db(String),
    #[error("audit store URL must start with sqlite: or postgres:")]
    Url,
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Db(e.to_string())
    }
}
impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Db(e.to_string())
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A connected, migrated store.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    pub backend: Backend,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Column list shared by every statement (a macro so statements stay `&'static str`).
macro_rules! columns {
    () => {
        "instance, seq, kind, time, request_id, trace_id, org, cert_fingerprint, role, grondslag, overleg, purpose, bron, resource, subject, outcome, reason, side, rules, fields_shared, fields_withheld, status, upstream_status, duration_us, policy_version, detail, personal_digest, purged_at, prev_hash, hash"
    };
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
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool, backend })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
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

    /// Inserts a batch in one transaction: all rows or none.
    pub async fn insert_batch(&self, rows: &[StoredRow]) -> Result<(), StoreError> {
        const SQL: &str = concat!(
            "INSERT INTO audit_records (",
            columns!(),
            ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27,$28,$29,$30)"
        );
        let mut tx = self.pool.begin().await?;
        for r in rows {
            sqlx::query(SQL)
                .bind(&r.instance)
                .bind(r.seq)
                .bind(&r.kind)
                .bind(&r.time)
                .bind(&r.request_id)
                .bind(&r.trace_id)
                .bind(&r.org)
                .bind(&r.cert_fingerprint)
                .bind(&r.role)
                .bind(&r.grondslag)
                .bind(&r.overleg)
                .bind(&r.purpose)
                .bind(&r.bron)
                .bind(&r.resource)
                .bind(&r.subject)
                .bind(&r.outcome)
                .bind(&r.reason)
                .bind(&r.side)
                .bind(&r.rules)
                .bind(&r.fields_shared)
                .bind(&r.fields_withheld)
                .bind(r.status)
                .bind(r.upstream_status)
                .bind(r.duration_us)
                .bind(&r.policy_version)
                .bind(&r.detail)
                .bind(&r.personal_digest)
                .bind(&r.purged_at)
                .bind(&r.prev_hash)
                .bind(&r.hash)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
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

fn row_from(r: &sqlx::any::AnyRow) -> Result<StoredRow, StoreError> {
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
        subject: r.try_get(14)?,
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
    })
}
