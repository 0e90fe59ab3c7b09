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
pub mod checkpoint;
pub mod pseudonym;
pub mod purge;
pub mod record;
pub mod store;
pub mod verify;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

pub use checkpoint::{Checkpoint, Signer};
pub use pseudonym::Pseudonymiser;
pub use record::{AuditRecord, Outcome, StoredRow};
pub use store::{InstanceLock, SideWrite, Store, StoreError};

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
    /// How often a signed checkpoint is written while the chain grows.
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval_ms: u64,
    /// Retention for records that name no overleg (identity refusals etc.).
    #[serde(default = "default_retention")]
    pub default_retention_days: u32,
    /// When set, `serve` runs the retention purge this often.
    #[serde(default)]
    pub purge_interval_hours: Option<u64>,
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
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    SigningKey(#[from] checkpoint::SigningKeyError),
}

type Ack = oneshot::Sender<Result<(), Arc<StoreError>>>;

enum Job {
    /// A record, and optionally a side write committed in its transaction.
    Record(Box<AuditRecord>, Option<SideWrite>, Ack),
    Checkpoint,
}

/// Handle to the audit writer. Cheap to clone.
#[derive(Clone)]
pub struct Auditor {
    tx: mpsc::Sender<Job>,
    pseudo: Arc<Pseudonymiser>,
    timeout: Duration,
    instance: Arc<str>,
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
        let lock = store.lock_instance(instance).await?;
        let head = store.chain_head(instance).await?;
        let last_ck = store.last_checkpoint(instance).await?;
        let (tx, rx) = mpsc::channel(cfg.queue_capacity.max(1));
        let writer = Writer {
            store,
            instance: instance.to_owned(),
            seq: head.as_ref().map(|h| h.0).unwrap_or(0),
            hash: head
                .map(|h| h.1)
                .unwrap_or_else(|| record::GENESIS.to_owned()),
            max_batch: cfg.max_batch.max(1),
            signer,
            ck_no: last_ck.map(|c| c.0).unwrap_or(0),
            ck_record_seq: last_ck.map(|c| c.1).unwrap_or(0),
            lock,
            own_conn: None,
            stale: false,
        };
        let handle = tokio::spawn(writer.run(rx));
        // The ticker holds only a weak sender, so it never keeps the writer alive.
        let weak = tx.downgrade();
        let every = Duration::from_millis(cfg.checkpoint_interval_ms.max(100));
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
        Ok((
            Self {
                tx,
                pseudo: Arc::new(pseudo),
                timeout: Duration::from_millis(cfg.commit_timeout_ms),
                instance: Arc::from(instance),
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

    async fn commit_inner(
        &self,
        rec: AuditRecord,
        side: Option<SideWrite>,
    ) -> Result<(), AuditError> {
        let work = async {
            let (ack, done) = oneshot::channel();
            self.tx
                .send(Job::Record(Box::new(rec), side, ack))
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
            instance: Arc::clone(&self.instance),
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
    instance: Arc<str>,
}

impl WeakAuditor {
    /// The auditor, while the writer is still accepting records.
    pub fn upgrade(&self) -> Option<Auditor> {
        Some(Auditor {
            tx: self.tx.upgrade()?,
            pseudo: Arc::clone(&self.pseudo),
            timeout: self.timeout,
            instance: Arc::clone(&self.instance),
        })
    }
}

/// Rewrites a record whose committer stopped waiting: the request was
/// answered `503 audit-unavailable` and shared nothing. (A record whose
/// deadline passes while its own batch is being committed keeps what it says:
/// the window is that one transaction.)
fn abandon(rec: &mut AuditRecord) {
    rec.outcome = Outcome::Error;
    rec.reason = "audit-unavailable".into();
    rec.side = Some("gateway");
    rec.status = 503;
    rec.fields_shared.clear();
}

/// A record waiting for its transaction, with the register change (if any)
/// that must commit with it.
struct Pending {
    rec: Box<AuditRecord>,
    side: Option<SideWrite>,
    ack: Ack,
}

/// [`abandon`] for a record already laid out as a row (see [`Writer::recover`]).
/// The caller recomputes its digest and hash.
fn abandon_row(row: &mut StoredRow) {
    row.outcome = Outcome::Error.as_str().to_owned();
    row.reason = "audit-unavailable".into();
    row.side = Some("gateway".into());
    row.status = 503;
    row.fields_shared = "[]".into();
}

struct Writer {
    store: Store,
    instance: String,
    seq: i64,
    hash: String,
    max_batch: usize,
    signer: Signer,
    ck_no: i64,
    /// Seq of the last checkpoint's own chain record.
    ck_record_seq: i64,
    lock: InstanceLock,
    /// SQLite: the writer's own connection (see [`Store::write_connection`]),
    /// opened on first use and dropped after a failed transaction. PostgreSQL
    /// writes on the instance lock's session instead.
    own_conn: Option<sqlx::AnyConnection>,
    /// Set when a transaction failed: its outcome is unknown (the COMMIT may
    /// have reached the store before the connection broke), so the head in
    /// memory may be behind the store's. Cleared by [`Writer::resync`].
    stale: bool,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut jobs: Vec<Job> = Vec::with_capacity(self.max_batch);
        while rx.recv_many(&mut jobs, self.max_batch).await > 0 {
            // Group commit: give the requests that are running right now one
            // scheduler turn to add their records to this transaction. Costs
            // microseconds; saves an fsync per record under load.
            if jobs.len() < self.max_batch {
                tokio::task::yield_now().await;
                while jobs.len() < self.max_batch {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
            }
            let mut records = Vec::with_capacity(jobs.len());
            let mut want_checkpoint = false;
            for j in jobs.drain(..) {
                match j {
                    Job::Record(mut rec, mut side, ack) => {
                        if ack.is_closed() && matches!(rec.kind, "request" | "register") {
                            // Its committer gave up (the deadline passed, the
                            // client was answered 503 with nothing shared):
                            // record that, not the disclosure it would have
                            // been, and drop its register change.
                            abandon(&mut rec);
                            side = None;
                        }
                        records.push(Pending { rec, side, ack });
                    }
                    Job::Checkpoint => want_checkpoint = true,
                }
            }
            if !records.is_empty() {
                self.write(records).await;
            }
            if want_checkpoint {
                self.checkpoint().await;
            }
        }
        // Every handle is gone: seal the chain with a final checkpoint.
        self.checkpoint().await;
    }

    async fn write(&mut self, records: Vec<Pending>) {
        if self.stale
            && let Err(e) = self.resync().await
        {
            tracing::error!(error = %e, records = records.len(), "audit store still unavailable");
            let e = Arc::new(e);
            for p in records {
                let _ = p.ack.send(Err(Arc::clone(&e)));
            }
            return;
        }
        // Chain positions are tentative until the transaction commits; a
        // failed batch leaves the head where it was.
        let mut rows = Vec::with_capacity(records.len());
        let mut sides = Vec::with_capacity(records.len());
        let mut acks = Vec::with_capacity(records.len());
        let (mut seq, mut prev) = (self.seq, self.hash.clone());
        for Pending { rec, side, ack } in records {
            acks.push(ack);
            sides.push(side);
            seq += 1;
            let mut row = StoredRow::from_owned(*rec, seq, &prev);
            if row.instance != self.instance {
                row.instance.clone_from(&self.instance);
                row.personal_digest = row.compute_personal_digest();
                row.hash = row.compute_hash();
            }
            prev.clone_from(&row.hash);
            rows.push(row);
        }
        let side_writes: Vec<SideWrite> = sides.iter().flatten().cloned().collect();
        let result = match self.insert(&rows, &side_writes, None).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, records = acks.len(), "audit batch failed; re-reading the chain head");
                self.recover(&mut rows, &sides, &acks, e).await
            }
        };
        match (result, rows.last()) {
            (Ok(()), Some(last)) => {
                self.seq = last.seq;
                self.hash.clone_from(&last.hash);
                for ack in acks {
                    let _ = ack.send(Ok(()));
                }
            }
            (Ok(()), None) => {}
            (Err(e), _) => {
                self.stale = true;
                tracing::error!(error = %e, records = acks.len(), "audit batch failed");
                let e = Arc::new(e);
                for ack in acks {
                    let _ = ack.send(Err(Arc::clone(&e)));
                }
            }
        }
    }

    /// After a failed batch. The session may simply have died (the server
    /// restarted, a firewall cut the connection, an operator terminated it;
    /// on PostgreSQL the instance lock died with it), so: take the lock
    /// again, re-read the head, and
    /// - the batch is there (its COMMIT reached the store before the
    ///   connection broke): it is durable, `Ok`;
    /// - the head is where the batch started: insert it once more, on a fresh
    ///   connection. A record whose committer stopped waiting meanwhile (its
    ///   client was answered 503 with nothing shared) is first rewritten as
    ///   that refusal, its register change dropped, and the chain re-linked:
    ///   re-inserting it as the disclosure it would have been would be false,
    ///   and leaving it out would lose the request's only record;
    /// - otherwise `first`.
    ///
    /// Safe against double writes because the lock is held again before the
    /// head is read: nobody else extends this chain, and a PostgreSQL session
    /// that still holds the lock keeps us out until it is gone.
    async fn recover(
        &mut self,
        rows: &mut [StoredRow],
        sides: &[Option<SideWrite>],
        acks: &[Ack],
        first: StoreError,
    ) -> Result<(), StoreError> {
        let (start_seq, start_hash) = (self.seq, self.hash.clone());
        let Some(last) = rows.last() else {
            return Err(first);
        };
        let (last_seq, last_hash) = (last.seq, last.hash.clone());
        if self.resync().await.is_err() {
            return Err(first);
        }
        if self.seq == last_seq && self.hash == last_hash {
            return Ok(());
        }
        if self.seq != start_seq || self.hash != start_hash {
            return Err(first);
        }
        let mut side_writes = Vec::new();
        let mut prev = start_hash;
        for ((row, side), ack) in rows.iter_mut().zip(sides).zip(acks) {
            let gave_up = ack.is_closed() && matches!(row.kind.as_str(), "request" | "register");
            if gave_up {
                abandon_row(row);
            } else {
                side_writes.extend(side.iter().cloned());
            }
            row.prev_hash.clone_from(&prev);
            row.personal_digest = row.compute_personal_digest();
            row.hash = row.compute_hash();
            prev.clone_from(&row.hash);
        }
        self.insert(rows, &side_writes, None).await
    }

    /// Signs the current head and appends the checkpoint to the chain, in one
    /// transaction. Skipped when nothing was written since the last one.
    async fn checkpoint(&mut self) {
        if self.stale && self.resync().await.is_err() {
            return;
        }
        if self.seq == 0 || self.seq <= self.ck_record_seq {
            return;
        }
        let ck = self.signer.sign(
            &self.instance,
            self.ck_no + 1,
            self.seq,
            &self.hash,
            &record::now_rfc3339(),
        );
        let id = uuid::Uuid::new_v4();
        let mut rec = AuditRecord::new(&self.instance, &id.to_string(), &id.simple().to_string());
        rec.kind = "checkpoint";
        rec.outcome = Outcome::Event;
        rec.reason = "checkpoint".into();
        rec.detail = serde_json::json!({
            "ck_no": ck.ck_no, "seq": ck.seq, "hash": ck.hash, "key_id": ck.key_id, "signature": ck.signature,
        })
        .to_string();
        let row = StoredRow::from_record(&rec, self.seq + 1, &self.hash);
        match self
            .insert(std::slice::from_ref(&row), &[], Some(&ck))
            .await
        {
            Ok(()) => {
                self.ck_no = ck.ck_no;
                self.seq = row.seq;
                self.hash = row.hash;
                self.ck_record_seq = row.seq;
            }
            Err(e) => {
                self.stale = true;
                tracing::error!(error = %e, "audit checkpoint failed");
            }
        }
    }

    /// One transaction on the writer's connection. A failure drops the
    /// SQLite connection (it may be broken); the caller marks the writer stale.
    async fn insert(
        &mut self,
        rows: &[StoredRow],
        side_writes: &[SideWrite],
        ck: Option<&Checkpoint>,
    ) -> Result<(), StoreError> {
        let conn = match &mut self.lock {
            InstanceLock::Postgres(conn) => conn,
            InstanceLock::File(_) => match &mut self.own_conn {
                Some(conn) => conn,
                None => self.own_conn.insert(self.store.write_connection().await?),
            },
        };
        let result = self
            .store
            .insert_batch_on(conn, rows, side_writes, ck)
            .await;
        if result.is_err() {
            self.own_conn = None;
        }
        result
    }

    /// Continues from the head the store actually has, under an instance
    /// lock that is still held: after a failed transaction (e.g. the
    /// database restarted mid-COMMIT) the batch may or may not be in the
    /// store, and a PostgreSQL advisory lock dies with its session. Without
    /// this the writer would reuse sequence numbers that are taken and fail
    /// every batch until the gateway is restarted.
    async fn resync(&mut self) -> Result<(), StoreError> {
        self.store
            .relock_instance(&mut self.lock, &self.instance)
            .await?;
        let head = self.store.chain_head(&self.instance).await?;
        let last_ck = self.store.last_checkpoint(&self.instance).await?;
        self.seq = head.as_ref().map_or(0, |h| h.0);
        self.hash = head.map_or_else(|| record::GENESIS.to_owned(), |h| h.1);
        self.ck_no = last_ck.map_or(0, |c| c.0);
        self.ck_record_seq = last_ck.map_or(0, |c| c.1);
        self.stale = false;
        tracing::warn!(seq = self.seq, "audit writer resynchronised with the store");
        Ok(())
    }
}
