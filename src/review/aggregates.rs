//! `audit aggregates [--recompute]`: proves the aggregates the audit writer
//! keeps (`src/audit/aggregate.rs`) equal a full walk of the records, and
//! rebuilds them from that walk when asked (after a restore, or for a trail
//! that existed before the aggregates did). The walk applies the same
//! [`aggregate::add`] the writer does. Run `--recompute` with the gateways
//! stopped: records written during the walk would be missing from it.

use std::ops::ControlFlow;

use serde::Serialize;

use super::ReviewError;
use super::query::{self, Filter};
use crate::audit::Store;
use crate::audit::aggregate::{self, Cell, Key, Sums};

/// Records per page of the walk.
const PAGE: usize = 10_000;
/// Differences listed at most (all are counted).
const SHOWN: usize = 20;

/// One key where the table and the walk disagree.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    pub key: Key,
    pub stored: Option<Cell>,
    pub recomputed: Option<Cell>,
}

/// The outcome of a check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Records walked.
    pub records: usize,
    /// Aggregates the walk gives.
    pub aggregates: usize,
    /// Keys that differ (the first [`SHOWN`]), and how many in all.
    pub differences: Vec<Difference>,
    pub different: usize,
    /// From when the table claims to be complete (`''`: from the start).
    pub since: String,
}

impl Check {
    pub fn ok(&self) -> bool {
        self.different == 0
    }

    pub fn text(&self) -> String {
        let mut out = format!(
            "{} records walked, {} aggregates; {} differ from the table (complete since {})\n",
            self.records,
            self.aggregates,
            self.different,
            if self.since.is_empty() {
                "the start"
            } else {
                &self.since
            }
        );
        for d in &self.differences {
            out.push_str(&format!(
                "  {} {} {} [{} | {} | {} | {}]: table {:?}, walk {:?}\n",
                d.key.day,
                d.key.kind,
                d.key.overleg,
                d.key.k1,
                d.key.k2,
                d.key.k3,
                d.key.k4,
                d.stored.as_ref().map(|c| c.n),
                d.recomputed.as_ref().map(|c| c.n)
            ));
        }
        out
    }
}

/// What a walk of every record gives.
pub async fn recomputed(store: &Store) -> Result<(Sums, usize), ReviewError> {
    let mut sums = Sums::new();
    let mut records = 0;
    query::for_each(store, &Filter::default(), PAGE, |r| {
        records += 1;
        aggregate::add(r, &mut sums);
        ControlFlow::Continue(())
    })
    .await?;
    Ok((sums, records))
}

/// Compares the table with a walk of every record. Aggregates of days the
/// table does not claim to cover (before `since`) are compared too: a
/// table that is not complete reports them as differences.
pub async fn check(store: &Store) -> Result<(Check, Sums), ReviewError> {
    let (walk, records) = recomputed(store).await?;
    let mut conn = store.pool().acquire().await?;
    let table = aggregate::stored(&mut conn).await?;
    let since: Option<String> =
        sqlx::query_scalar("SELECT since FROM audit_aggregates_since WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await?;
    let mut differences = Vec::new();
    let mut different = 0;
    let keys: std::collections::BTreeSet<&Key> = walk.keys().chain(table.keys()).collect();
    for k in keys {
        let (a, b) = (table.get(k), walk.get(k));
        if a != b {
            different += 1;
            if differences.len() < SHOWN {
                differences.push(Difference {
                    key: k.clone(),
                    stored: a.cloned(),
                    recomputed: b.cloned(),
                });
            }
        }
    }
    let check = Check {
        records,
        aggregates: walk.len(),
        differences,
        different,
        since: since.unwrap_or_default(),
    };
    Ok((check, walk))
}

/// Replaces the table with `sums` and marks it complete from the start, in
/// one transaction.
pub async fn replace(store: &Store, sums: &Sums) -> Result<(), ReviewError> {
    let mut conn = store.pool().acquire().await?;
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query("DELETE FROM audit_aggregates")
        .execute(&mut *tx)
        .await?;
    aggregate::upsert(&mut tx, store.backend, sums).await?;
    sqlx::query("UPDATE audit_aggregates_since SET since = '' WHERE id = 1")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
