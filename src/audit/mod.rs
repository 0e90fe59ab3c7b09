//! The audit trail: one record per request, durable before the response
//! leaves (fail closed), hash-chained per gateway instance, with the
//! betrokkene pseudonymised.
//!
//! [`Auditor::commit`] hands a record to a single writer task that groups
//! concurrent records into one transaction (group commit) and acknowledges
//! each only after the transaction committed. A record that is not
//! acknowledged within `commit_timeout_ms` fails the request with 503.

pub mod pseudonym;
pub mod record;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

pub use pseudonym::Pseudonymiser;
pub use record::{AuditRecord, Outcome, StoredRow};
pub use store::{Store, StoreError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// `sqlite://path/audit.db` (embedded default) or `postgres://...`.
    pub store: String,
    /// Pseudonym key file (HMAC-SHA256, versioned), outside the database.
    pub pseudonym_key: PathBuf,
    /// Deadline for a record to become durable; past it the request gets 503.
    #[serde(default = "default_commit_timeout")]
    pub commit_timeout_ms: u64,
    /// Records waiting for the writer; when full, requests wait (within the deadline).
    #[serde(default = "default_queue")]
    pub queue_capacity: usize,
    /// Most records per transaction.
    #[serde(default = "default_batch")]
    pub max_batch: usize,
}

fn default_commit_timeout() -> u64 {
    2_000
}
fn default_queue() -> usize {
    16_384
}
fn default_batch() -> usize {
    1_024
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the audit writer has stopped")]
    WriterGone,
    #[error("the audit record was not durable within the deadline")]
    Timeout,
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Job {
    rec: AuditRecord,
    ack: oneshot::Sender<Result<(), Arc<StoreError>>>,
}

/// Handle to the audit writer. Cheap to clone.
#[derive(Clone)]
pub struct Auditor {
    tx: mpsc::Sender<Job>,
    pseudo: Arc<Pseudonymiser>,
    timeout: Duration,
}

impl Auditor {
    /// Starts the writer for `instance` on `store`, continuing that
    /// instance's chain. The writer stops when every handle is dropped, after
    /// committing what was queued.
    pub async fn start(
        store: Store,
        instance: &str,
        pseudo: Pseudonymiser,
        cfg: &AuditConfig,
    ) -> Result<(Self, tokio::task::JoinHandle<()>), AuditError> {
        let head = store.chain_head(instance).await?;
        let (tx, rx) = mpsc::channel(cfg.queue_capacity.max(1));
        let writer = Writer {
            store,
            instance: instance.to_owned(),
            seq: head.as_ref().map(|h| h.0).unwrap_or(0),
            hash: head
                .map(|h| h.1)
                .unwrap_or_else(|| record::GENESIS.to_owned()),
            max_batch: cfg.max_batch.max(1),
        };
        let handle = tokio::spawn(writer.run(rx));
        Ok((
            Self {
                tx,
                pseudo: Arc::new(pseudo),
                timeout: Duration::from_millis(cfg.commit_timeout_ms),
            },
            handle,
        ))
    }

    pub fn pseudonymise(&self, id: &str) -> String {
        self.pseudo.pseudonymise(id)
    }

    pub fn pseudonymiser(&self) -> &Pseudonymiser {
        &self.pseudo
    }

    /// Returns once `rec` is durably committed, or fails within the deadline.
    pub async fn commit(&self, rec: AuditRecord) -> Result<(), AuditError> {
        let work = async {
            let (ack, done) = oneshot::channel();
            self.tx
                .send(Job { rec, ack })
                .await
                .map_err(|_| AuditError::WriterGone)?;
            match done.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(AuditError::Store(StoreError::Db(e.to_string()))),
                Err(_) => Err(AuditError::WriterGone),
            }
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| AuditError::Timeout)?
    }

    /// Records waiting for the writer.
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

struct Writer {
    store: Store,
    instance: String,
    seq: i64,
    hash: String,
    max_batch: usize,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut jobs: Vec<Job> = Vec::with_capacity(self.max_batch);
        while rx.recv_many(&mut jobs, self.max_batch).await > 0 {
            // Chain positions are tentative until the transaction commits; a
            // failed batch leaves the head where it was.
            let mut rows = Vec::with_capacity(jobs.len());
            let (mut seq, mut prev) = (self.seq, self.hash.clone());
            for j in &jobs {
                let mut rec = j.rec.clone();
                rec.instance.clone_from(&self.instance);
                seq += 1;
                let row = StoredRow::from_record(&rec, seq, &prev);
                prev.clone_from(&row.hash);
                rows.push(row);
            }
            match self.store.insert_batch(&rows).await {
                Ok(()) => {
                    self.seq = seq;
                    self.hash = prev;
                    for j in jobs.drain(..) {
                        let _ = j.ack.send(Ok(()));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, records = jobs.len(), "audit batch failed");
                    let e = Arc::new(e);
                    for j in jobs.drain(..) {
                        let _ = j.ack.send(Err(Arc::clone(&e)));
                    }
                }
            }
        }
    }
}
