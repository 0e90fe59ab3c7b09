//! The audit trail: one record per request, durable before the response
//! leaves (fail closed), hash-chained per gateway instance, signed
//! checkpoints, the betrokkene pseudonymised.
//!
//! [`Auditor::commit`] hands a record to a single writer task that groups
//! concurrent records into one transaction (group commit) and acknowledges
//! each only after the transaction committed. A record that is not
//! acknowledged within `commit_timeout_ms` fails the request with 503.
//! The writer also writes a signed checkpoint every `checkpoint_interval_ms`
//! (when the chain grew) and one when it stops.

pub mod admin;
pub mod aggregate;
pub mod checkpoint;
mod feed;
pub mod pseudonym;
pub mod purge;
pub mod record;
pub mod store;
pub mod verify;
pub mod walk;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use writer::{Job, Pending, Slot, Verdict, Writer, WriterSettings};

pub use checkpoint::{Checkpoint, Signer};
pub use pseudonym::Pseudonymiser;
pub use record::{AuditRecord, Outcome, StoredRow};
pub use store::{InstanceLock, SideWrite, Statement, Store, StoreError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// `sqlite://path/audit.db` (embedded default) or `postgres://...`.
    pub store: String,
    /// Pseudonym key file (HMAC-SHA256, versioned), outside the database.
    pub pseudonym_key: PathBuf,
    /// Ed25519 checkpoint signing key (PKCS#8 PEM), outside the database.
    pub signing_key: PathBuf,
    /// Public key used by `audit verify` (hex file); defaults to the signing
    /// key's own public key. The FG should keep a copy elsewhere.
    #[serde(default)]
    pub verify_key: Option<PathBuf>,
    /// Deadline for a record to become durable; past it the request gets 503.
    #[serde(default = "default_commit_timeout")]
    pub commit_timeout_ms: u64,
    /// Records waiting for the writer; when full, requests wait (within the deadline).
    #[serde(default = "default_queue")]
    pub queue_capacity: usize,
    /// Most records per transaction.
    #[serde(default = "default_batch")]
    pub max_batch: usize,
    /// The longest the store may keep one write transaction waiting (its
    /// lock wait: SQLite `busy_timeout`, PostgreSQL `statement_timeout`).
    /// A request whose record is already in a transaction when its deadline
    /// passes waits for that transaction's outcome (see `audit::writer`).
    #[serde(default = "default_transaction_timeout")]
    pub transaction_timeout_ms: u64,
    /// Refusals (and corrections) kept in memory while the store is
    /// unavailable, written when it is back; beyond this the oldest refusal
    /// is dropped and counted in `poortwachter_audit_records_unwritten_total`.
    #[serde(default = "default_backlog")]
    pub backlog_capacity: usize,
    /// How often a signed checkpoint is written while the chain grows.
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval_ms: u64,
    /// Retention for records that name no overleg (identity refusals etc.).
    #[serde(default = "default_retention")]
    pub default_retention_days: u32,
    /// When set, `serve` runs the retention purge this often.
    #[serde(default)]
    pub purge_interval_hours: Option<u64>,
    /// SQLite: the page cache of the audit writer's connection, in MiB
    /// (resident memory once the trail is larger than it).
    #[serde(default = "default_sqlite_cache_mib")]
    pub sqlite_cache_mib: u32,
}

/// The default of `audit.sqlite_cache_mib`.
pub const DEFAULT_SQLITE_CACHE_MIB: u32 = 32;

fn default_sqlite_cache_mib() -> u32 {
    DEFAULT_SQLITE_CACHE_MIB
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
fn default_transaction_timeout() -> u64 {
    1_000
}
fn default_backlog() -> usize {
    16_384
}
fn default_checkpoint_interval() -> u64 {
    10_000
}
fn default_retention() -> u32 {
    365
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the audit writer has stopped")]
    WriterGone,
    #[error("the audit record was not durable within the deadline")]
    Timeout,
    #[error("the audit store refused the record")]
    Refused(#[source] Arc<StoreError>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    SigningKey(#[from] checkpoint::SigningKeyError),
}

/// Handle to the audit writer. Cheap to clone.
#[derive(Clone)]
pub struct Auditor {
    tx: mpsc::Sender<Job>,
    pseudo: Arc<Pseudonymiser>,
    timeout: Duration,
    /// How much longer a request waits once its record is in a transaction.
    claimed_wait: Duration,
    instance: Arc<str>,
    unwritten: Arc<AtomicU64>,
}

impl Auditor {
    /// Starts the writer for `instance` on `store`, continuing that
    /// instance's chain, after taking the instance lock (a second process
    /// with the same instance name is refused). The writer stops when every
    /// handle is dropped, after committing what was queued and writing a
    /// final checkpoint.
    pub async fn start(
        store: Store,
        instance: &str,
        pseudo: Pseudonymiser,
        signer: Signer,
        cfg: &AuditConfig,
    ) -> Result<(Self, tokio::task::JoinHandle<()>), AuditError> {
        let bound = Duration::from_millis(cfg.transaction_timeout_ms.max(1));
        let mut lock = store.lock_instance(instance).await?;
        if let InstanceLock::Postgres(conn) = &mut lock {
            store.bound_session(conn, bound).await?;
        }
        let unwritten = Arc::new(AtomicU64::new(0));
        let settings = WriterSettings {
            instance: instance.to_owned(),
            max_batch: cfg.max_batch.max(1),
            bound,
            backlog_capacity: cfg.backlog_capacity,
            sqlite_cache_mib: cfg.sqlite_cache_mib,
            unwritten: Arc::clone(&unwritten),
        };
        let writer = Writer::start(store, settings, signer, lock).await?;
        let (tx, rx) = mpsc::channel(cfg.queue_capacity.max(1));
        let handle = tokio::spawn(writer.run(rx));
        spawn_checkpoint_ticker(
            &tx,
            Duration::from_millis(cfg.checkpoint_interval_ms.max(100)),
        );
        Ok((
            Self {
                tx,
                pseudo: Arc::new(pseudo),
                timeout: Duration::from_millis(cfg.commit_timeout_ms),
                // The writer's worst case from claim to verdict: a
                // transaction (timer: 2 bounds), a resync (1), the
                // transaction once more (2); plus one for scheduling.
                claimed_wait: bound * 6,
                instance: Arc::from(instance),
                unwritten,
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

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Returns once `rec` is durably committed, or fails within the deadline.
    pub async fn commit(&self, rec: AuditRecord) -> Result<(), AuditError> {
        self.commit_inner(rec, None).await
    }

    /// Commits `rec` and `side` in one transaction (a register change and
    /// its audit record). On `Err` neither may have happened, or (after a
    /// timeout) both: callers re-read before reporting.
    pub async fn commit_with(&self, rec: AuditRecord, side: SideWrite) -> Result<(), AuditError> {
        self.commit_inner(rec, Some(side)).await
    }

    /// Hands the record to the writer and waits for its verdict. At the
    /// deadline the request gives up, unless the writer has already taken
    /// the record into a transaction: then it waits for that transaction
    /// (bounded), so that what it answers is what the trail says.
    async fn commit_inner(
        &self,
        rec: AuditRecord,
        side: Option<SideWrite>,
    ) -> Result<(), AuditError> {
        let deadline = Instant::now() + self.timeout;
        let slot = Arc::new(Slot::new(deadline));
        let (ack, mut done) = oneshot::channel();
        let job = Job::Record(Pending {
            rec: Box::new(rec),
            side,
            slot: Arc::clone(&slot),
            ack,
        });
        match tokio::time::timeout_at(deadline, self.tx.send(job)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(AuditError::WriterGone),
            Err(_) => {
                // The queue stayed full: this record exists nowhere.
                self.unwritten.fetch_add(1, Ordering::Relaxed);
                tracing::error!("audit queue full past the deadline; the refusal is not recorded");
                return Err(AuditError::Timeout);
            }
        }
        if let Ok(v) = tokio::time::timeout_at(deadline, &mut done).await {
            return verdict(v);
        }
        if slot.give_up() {
            return Err(AuditError::Timeout);
        }
        match tokio::time::timeout(self.claimed_wait, &mut done).await {
            Ok(v) => verdict(v),
            Err(_) if slot.give_up_late() => Err(AuditError::Timeout),
            // Decided just now: take the writer's verdict.
            Err(_) => verdict(done.await),
        }
    }

    /// Records that could not be written at all since start (the audit
    /// queue stayed full, or the backlog overflowed during an outage).
    pub fn unwritten(&self) -> u64 {
        self.unwritten.load(Ordering::Relaxed)
    }

    /// Records an administrative event (reload, purge, trail access) in the chain.
    pub async fn event(
        &self,
        kind: &'static str,
        reason: &str,
        detail: serde_json::Value,
    ) -> Result<(), AuditError> {
        let id = uuid::Uuid::new_v4();
        let mut rec = AuditRecord::new(&self.instance, &id.to_string(), &id.simple().to_string());
        rec.kind = kind;
        rec.outcome = Outcome::Event;
        rec.reason = reason.to_owned();
        rec.detail = detail.to_string();
        self.commit(rec).await
    }

    /// Asks the writer for a checkpoint now (it is skipped when nothing changed).
    pub async fn checkpoint(&self) -> Result<(), AuditError> {
        self.tx
            .send(Job::Checkpoint)
            .await
            .map_err(|_| AuditError::WriterGone)
    }

    /// A handle that does not keep the writer alive (for background tasks,
    /// so shutdown can drain and seal the chain).
    pub fn downgrade(&self) -> WeakAuditor {
        WeakAuditor {
            tx: self.tx.downgrade(),
            pseudo: Arc::clone(&self.pseudo),
            timeout: self.timeout,
            claimed_wait: self.claimed_wait,
            instance: Arc::clone(&self.instance),
            unwritten: Arc::clone(&self.unwritten),
        }
    }

    /// Records waiting for the writer.
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// See [`Auditor::downgrade`].
#[derive(Clone)]
pub struct WeakAuditor {
    tx: mpsc::WeakSender<Job>,
    pseudo: Arc<Pseudonymiser>,
    timeout: Duration,
    claimed_wait: Duration,
    instance: Arc<str>,
    unwritten: Arc<AtomicU64>,
}

impl WeakAuditor {
    /// The auditor, while the writer is still accepting records.
    pub fn upgrade(&self) -> Option<Auditor> {
        Some(Auditor {
            tx: self.tx.upgrade()?,
            pseudo: Arc::clone(&self.pseudo),
            timeout: self.timeout,
            claimed_wait: self.claimed_wait,
            instance: Arc::clone(&self.instance),
            unwritten: Arc::clone(&self.unwritten),
        })
    }
}

fn verdict(v: Result<Verdict, oneshot::error::RecvError>) -> Result<(), AuditError> {
    match v {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(AuditError::Refused(e)),
        Err(_) => Err(AuditError::WriterGone),
    }
}

/// Asks the writer for a checkpoint every `every`. Holds only a weak
/// sender, so it never keeps the writer alive.
fn spawn_checkpoint_ticker(tx: &mpsc::Sender<Job>, every: Duration) {
    let weak = tx.downgrade();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(tx) = weak.upgrade() else { break };
            if tx.send(Job::Checkpoint).await.is_err() {
                break;
            }
        }
    });
}
