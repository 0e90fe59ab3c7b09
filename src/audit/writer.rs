//! The audit writer: the one task that extends this instance's chain.
//!
//! **Who decides what a record says.** A request hands its record over with
//! a [`Slot`] and waits. Until the writer *claims* the slot for a
//! transaction, the request may give up (its deadline passed: it answers 503
//! and shares nothing), and the writer then records that refusal instead of
//! the record. Once claimed, only the writer decides: the request waits for
//! the outcome of that transaction, which is bounded (`transaction_timeout_ms`:
//! SQLite's `busy_timeout`, PostgreSQL's `statement_timeout`, and a timer
//! around the whole transaction). The two decisions are one compare-and-swap
//! on the slot, so a record is committed as a disclosure (or a register
//! change is committed) only while its request still waits for that commit,
//! and a request answered 503 is recorded as that 503.
//!
//! **The one case no protocol closes.** The connection breaks after the
//! store received `COMMIT` and the store stays unreachable, so the writer
//! cannot learn whether the batch landed. Its requests are answered 503
//! (nothing shared, nothing changed). When the store is back the writer
//! looks: if the batch landed, it appends a `correction` record for each
//! such record, naming it and saying that the client got 503, and undoes its
//! register change in the same transaction; if not, it writes the refusals.
//!
//! Refusals and corrections wait in a bounded backlog (`backlog_capacity`)
//! while the store is unavailable and are written with the next batch.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::checkpoint::{Checkpoint, Signer};
use super::record::{self, AuditRecord, Outcome, StoredRow};
use super::store::{Batch, InstanceLock, SideWrite, Statement, Store, StoreError, WriteConnection};

/// What the writer tells a waiting request.
pub(super) type Verdict = Result<(), Arc<StoreError>>;
pub(super) type Ack = oneshot::Sender<Verdict>;

pub(super) enum Job {
    Record(Pending),
    Checkpoint,
}

/// A record handed to the writer, with the register change (if any) that
/// must commit with it, and the request waiting for it.
pub(super) struct Pending {
    pub rec: Box<AuditRecord>,
    pub side: Option<SideWrite>,
    pub slot: Arc<Slot>,
    pub ack: Ack,
}

const QUEUED: u8 = 0;
const CLAIMED: u8 = 1;
const GAVE_UP: u8 = 2;
const LATE: u8 = 3;
const DONE: u8 = 4;
const REFUSED: u8 = 5;

/// Where a record stands between its request and the writer.
///
/// ```text
/// QUEUED --request: deadline passed--> GAVE_UP   (request answers 503; writer records the refusal)
/// QUEUED --writer: claim-------------> CLAIMED   (request waits for the transaction)
/// CLAIMED --writer: landed-----------> DONE      (request gets Ok: the record is durable)
/// CLAIMED --writer: failed/in doubt--> REFUSED   (request gets Err: 503)
/// CLAIMED --request: waited too long-> LATE      (request answers 503; a landing gets a correction)
/// ```
pub(super) struct Slot {
    state: AtomicU8,
    deadline: Instant,
}

impl Slot {
    pub(super) fn new(deadline: Instant) -> Self {
        Self {
            state: AtomicU8::new(QUEUED),
            deadline,
        }
    }

    fn swap(&self, from: u8, to: u8) -> bool {
        self.state
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The request, at its deadline: gives up unless the writer has claimed
    /// the record (then it must wait for the writer's verdict).
    pub(super) fn give_up(&self) -> bool {
        self.swap(QUEUED, GAVE_UP) || self.state.load(Ordering::Acquire) == GAVE_UP
    }

    /// The request, after waiting the claimed bound as well: gives up while
    /// the writer still holds the record (a landing is then corrected).
    pub(super) fn give_up_late(&self) -> bool {
        self.swap(CLAIMED, LATE)
    }

    /// The writer: takes the record into a transaction; `false` when its
    /// request gave up (or its deadline passed, and the writer gives up for it).
    fn claim(&self, now: Instant) -> bool {
        if now >= self.deadline {
            self.swap(QUEUED, GAVE_UP);
        }
        self.swap(QUEUED, CLAIMED) || self.state.load(Ordering::Acquire) == CLAIMED
    }

    /// The writer, after the record landed: `true` when its request will
    /// receive the acknowledgement (it did not give up late).
    fn deliver(&self) -> bool {
        self.swap(CLAIMED, DONE)
    }

    /// The writer: the record did not land (or nobody knows); the request
    /// receives an error.
    fn refuse(&self) {
        self.swap(CLAIMED, REFUSED);
    }
}

/// Rewrites a row whose request was answered with a refusal (nothing
/// shared, nothing changed) as that refusal. Other kinds (reloads, purges,
/// checkpoints) describe things that happened regardless and stay as they are.
fn abandon(row: &mut StoredRow) {
    let reason = match row.kind.as_str() {
        "request" | "access" => "audit-unavailable",
        "register" => "register-unavailable",
        _ => return,
    };
    row.outcome = Outcome::Error.as_str().to_owned();
    row.reason = reason.into();
    row.side = Some("gateway".into());
    row.status = 503;
    row.fields_shared = "[]".into();
    row.personal_digest = row.compute_personal_digest();
}

/// The record appended when `row` landed although its client was answered
/// 503; `undone` says whether its register change is undone with it.
fn correction(row: &StoredRow, undone: bool) -> StoredRow {
    let mut rec = AuditRecord::new(&row.instance, &row.request_id, &row.trace_id);
    rec.kind = "correction";
    rec.outcome = Outcome::Error;
    rec.reason = "not-delivered".into();
    rec.side = Some("gateway");
    rec.status = 503;
    rec.org.clone_from(&row.org);
    rec.cert_fingerprint.clone_from(&row.cert_fingerprint);
    rec.supplier.clone_from(&row.supplier);
    rec.owner.clone_from(&row.owner);
    rec.role.clone_from(&row.role);
    rec.grondslag.clone_from(&row.grondslag);
    rec.overleg.clone_from(&row.overleg);
    rec.purpose.clone_from(&row.purpose);
    rec.bron.clone_from(&row.bron);
    rec.resource.clone_from(&row.resource);
    rec.pupil.clone_from(&row.pupil);
    rec.policy_version.clone_from(&row.policy_version);
    rec.detail = serde_json::json!({
        "corrects": {"instance": row.instance, "seq": row.seq},
        "recorded_status": row.status,
        "answered_status": 503,
        "register_change_undone": undone,
    })
    .to_string();
    StoredRow::unlinked(rec)
}

/// One record of a batch: its row (linked when the batch is committed), the
/// register change that commits with it, and who waits for it.
struct Entry {
    /// Shared with the transaction that writes it (no copy per batch);
    /// changed only through `Arc::make_mut`, which copies it if that
    /// transaction still holds it.
    row: Arc<StoredRow>,
    side: Option<Statement>,
    /// The undo of `side`, kept for a correction.
    undo: Option<Statement>,
    waiter: Option<(Arc<Slot>, Ack)>,
}

impl Entry {
    fn own(row: StoredRow, side: Option<Statement>) -> Self {
        Self {
            row: Arc::new(row),
            side,
            undo: None,
            waiter: None,
        }
    }
}

/// Why a transaction did not (certainly) land.
enum Failure {
    /// It did not commit.
    Definite(StoreError),
    /// Nobody knows: the connection broke or a timer fired mid-transaction.
    InDoubt(StoreError),
}

/// A batch whose outcome is unknown. `refused[i]`: entry `i`'s request was
/// answered 503 (a landing needs its correction).
struct InDoubt {
    start: (i64, String),
    entries: Vec<Entry>,
    refused: Vec<bool>,
}

/// Settings of the writer that do not change while it runs.
pub(super) struct WriterSettings {
    pub instance: String,
    pub max_batch: usize,
    /// `transaction_timeout_ms`.
    pub bound: Duration,
    pub backlog_capacity: usize,
    /// `sqlite_cache_mib`: the SQLite writer connection's page cache.
    pub sqlite_cache_mib: u32,
    /// Records that could not be written at all (counted for `/metrics`).
    pub unwritten: Arc<AtomicU64>,
}

pub(super) struct Writer {
    store: Store,
    settings: WriterSettings,
    seq: i64,
    hash: String,
    signer: Signer,
    ck_no: i64,
    /// Seq of the last checkpoint's own chain record.
    ck_record_seq: i64,
    lock: InstanceLock,
    /// SQLite: the writer's own connection (see [`Store::write_connection`]),
    /// opened on first use and dropped after a failed transaction. PostgreSQL
    /// writes on the instance lock's session instead.
    own_conn: Option<WriteConnection>,
    /// Set after a failure: the head in memory may be behind the store's.
    /// Cleared by [`Writer::resync`].
    stale: bool,
    /// Refusals and corrections not yet written (no request waits for them).
    backlog: VecDeque<Entry>,
    in_doubt: Option<InDoubt>,
}

impl Writer {
    /// A writer continuing `head` of the chain; `lock` must already bound
    /// its session (see [`Store::bound_session`]).
    pub(super) async fn start(
        store: Store,
        settings: WriterSettings,
        signer: Signer,
        lock: InstanceLock,
    ) -> Result<Self, StoreError> {
        let mut w = Self {
            store,
            settings,
            seq: 0,
            hash: record::GENESIS.to_owned(),
            signer,
            ck_no: 0,
            ck_record_seq: 0,
            lock,
            own_conn: None,
            stale: false,
            backlog: VecDeque::new(),
            in_doubt: None,
        };
        w.read_head().await?;
        Ok(w)
    }

    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let max = self.settings.max_batch;
        let mut jobs: Vec<Job> = Vec::with_capacity(max);
        while rx.recv_many(&mut jobs, max).await > 0 {
            // Group commit: give the requests that are running right now one
            // scheduler turn to add their records to this transaction. Costs
            // microseconds; saves an fsync per record under load.
            if jobs.len() < max {
                tokio::task::yield_now().await;
                while jobs.len() < max {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
            }
            let mut batch = Vec::with_capacity(jobs.len());
            let mut want_checkpoint = false;
            for j in jobs.drain(..) {
                match j {
                    Job::Record(p) => batch.push(p),
                    Job::Checkpoint => want_checkpoint = true,
                }
            }
            if !batch.is_empty() || self.has_own_work() {
                self.write(batch).await;
            }
            if want_checkpoint {
                self.checkpoint().await;
            }
        }
        // Every handle is gone: write what is left and seal the chain.
        if self.has_own_work() {
            self.write(Vec::new()).await;
        }
        self.checkpoint().await;
        let left = self.backlog.len() + self.in_doubt.as_ref().map_or(0, |d| d.entries.len());
        if left > 0 {
            self.count_unwritten(left);
            tracing::error!(
                records = left,
                "audit writer stopped with records it could not write"
            );
        }
    }

    fn has_own_work(&self) -> bool {
        !self.backlog.is_empty() || self.in_doubt.is_some()
    }

    /// Commits `batch` (with the backlog). While the store is unavailable
    /// the requests are refused at once instead of at their deadline.
    async fn write(&mut self, batch: Vec<Pending>) {
        if !self.ready().await {
            let e = Arc::new(StoreError::Unavailable);
            let now = Instant::now();
            for p in batch {
                let mut row = StoredRow::unlinked(*p.rec);
                if p.slot.claim(now) {
                    p.slot.refuse();
                }
                // Answered either way (a dropped ack reads as "writer gone").
                let _ = p.ack.send(Err(Arc::clone(&e)));
                abandon(&mut row);
                self.push_backlog(Entry::own(row, None));
            }
            return;
        }
        let entries = self.claim(batch);
        if !entries.is_empty() {
            self.commit(entries).await;
        }
    }

    /// After a failure: resynchronises with the store and settles a batch in
    /// doubt; `false` while the store is still unavailable.
    async fn ready(&mut self) -> bool {
        if !self.stale {
            return true;
        }
        match tokio::time::timeout(self.settings.bound, self.resync()).await {
            Ok(Ok(())) => {
                self.settle_in_doubt();
                true
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "audit store still unavailable");
                false
            }
            Err(_) => {
                tracing::error!("audit store still unavailable (no answer)");
                false
            }
        }
    }

    /// The backlog first, then the batch: claimed records as they are, the
    /// records of requests that gave up as their refusals.
    fn claim(&mut self, batch: Vec<Pending>) -> Vec<Entry> {
        let now = Instant::now();
        let gave_up = Arc::new(StoreError::Missed);
        let mut entries: Vec<Entry> = self.backlog.drain(..).collect();
        for p in batch {
            let mut row = StoredRow::unlinked(*p.rec);
            if p.slot.claim(now) {
                let (side, undo) = p.side.map(|s| (s.apply, s.undo)).unzip();
                entries.push(Entry {
                    row: Arc::new(row),
                    side,
                    undo,
                    waiter: Some((p.slot, p.ack)),
                });
            } else {
                // The request gave up, or its deadline passed and the writer
                // gave up for it: say so (never just drop the ack, which the
                // request would read as "writer gone").
                let _ = p.ack.send(Err(Arc::clone(&gave_up)));
                abandon(&mut row);
                entries.push(Entry::own(row, None));
            }
        }
        entries
    }

    /// One batch: link, insert (bounded), and settle every entry.
    async fn commit(&mut self, mut entries: Vec<Entry>) {
        let start = (self.seq, self.hash.clone());
        link(&mut entries, &start);
        let result = match self.insert(&entries, None).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_busy() => Err(Failure::Definite(e)),
            Err(e) => self.recover(&entries, &start, e).await,
        };
        match result {
            Ok(()) => self.landed(entries),
            Err(Failure::Definite(e)) => self.failed(entries, e),
            Err(Failure::InDoubt(e)) => self.doubt(entries, start, e),
        }
    }

    /// The batch is durable: advance the head and acknowledge. A request that
    /// gave up late gets a correction.
    fn landed(&mut self, entries: Vec<Entry>) {
        if let Some(last) = entries.last() {
            self.seq = last.row.seq;
            self.hash.clone_from(&last.row.hash);
        }
        for e in entries {
            if let Some((slot, ack)) = e.waiter {
                if slot.deliver() {
                    let _ = ack.send(Ok(()));
                } else {
                    tracing::warn!(
                        seq = e.row.seq,
                        "audit record landed after its request gave up; correcting"
                    );
                    self.push_correction(&e.row, e.undo);
                }
            }
        }
    }

    /// The batch did not commit: its requests get an error (503) and their
    /// refusals go to the backlog; the writer's own entries stay there.
    fn failed(&mut self, entries: Vec<Entry>, e: StoreError) {
        self.stale = true;
        tracing::error!(error = %e, records = entries.len(), "audit batch failed");
        let e = Arc::new(e);
        for mut entry in entries {
            if let Some((slot, ack)) = entry.waiter.take() {
                slot.refuse();
                let _ = ack.send(Err(Arc::clone(&e)));
                abandon(Arc::make_mut(&mut entry.row));
                entry.side = None;
                entry.undo = None;
            }
            self.push_backlog(entry);
        }
    }

    /// Nobody knows whether the batch landed: its requests get an error
    /// (503) now; [`Writer::settle_in_doubt`] looks once the store is back.
    fn doubt(&mut self, mut entries: Vec<Entry>, start: (i64, String), e: StoreError) {
        self.stale = true;
        tracing::error!(error = %e, records = entries.len(), "audit batch in doubt (connection lost mid-transaction)");
        let e = Arc::new(e);
        let mut refused = Vec::with_capacity(entries.len());
        for entry in &mut entries {
            let waited = entry.waiter.take().map(|(slot, ack)| {
                slot.refuse();
                let _ = ack.send(Err(Arc::clone(&e)));
            });
            refused.push(waited.is_some());
        }
        if let Some(old) = self.in_doubt.replace(InDoubt {
            start,
            entries,
            refused,
        }) {
            // Cannot happen (a new batch waits for the old one to settle);
            // keep its records rather than lose them.
            self.requeue_not_landed(old);
        }
    }

    /// With the head freshly read: did the batch in doubt land?
    fn settle_in_doubt(&mut self) {
        let Some(d) = self.in_doubt.take() else {
            return;
        };
        let last = d.entries.last().map(|e| (e.row.seq, e.row.hash.clone()));
        if last.as_ref() == Some(&(self.seq, self.hash.clone())) {
            tracing::warn!(
                records = d.entries.len(),
                "audit batch in doubt had landed; correcting the records of refused requests"
            );
            for (e, refused) in d.entries.into_iter().zip(d.refused) {
                if refused {
                    self.push_correction(&e.row, e.undo);
                }
            }
        } else if d.start == (self.seq, self.hash.clone()) {
            self.requeue_not_landed(d);
        } else {
            tracing::error!("audit chain head moved unexpectedly; batch in doubt kept as refusals");
            self.requeue_not_landed(d);
        }
    }

    /// A batch in doubt that did not land: refusals for its requests, its
    /// own entries back to the backlog.
    fn requeue_not_landed(&mut self, d: InDoubt) {
        for (mut e, refused) in d.entries.into_iter().zip(d.refused) {
            if refused {
                abandon(Arc::make_mut(&mut e.row));
                e.side = None;
                e.undo = None;
            }
            self.push_backlog(e);
        }
    }

    fn push_correction(&mut self, row: &StoredRow, undo: Option<Statement>) {
        let c = correction(row, undo.is_some());
        self.backlog.push_front(Entry::own(c, undo));
    }

    /// Keeps `e` for the next batch; beyond `backlog_capacity` the oldest
    /// refusal is dropped and counted (a correction is never dropped).
    fn push_backlog(&mut self, e: Entry) {
        self.backlog.push_back(e);
        if self.backlog.len() > self.settings.backlog_capacity
            && let Some(i) = self.backlog.iter().position(|e| e.row.kind != "correction")
        {
            self.backlog.remove(i);
            self.count_unwritten(1);
            tracing::error!("audit backlog full: a refusal's record was dropped");
        }
    }

    fn count_unwritten(&self, n: usize) {
        self.settings
            .unwritten
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    /// After a failure that may only have been a dead session: take the lock
    /// again, re-read the head, and
    /// - the batch is there (its COMMIT reached the store): `Ok`;
    /// - the head is where the batch started: insert it once more on the
    ///   fresh session (its requests still wait; the transaction is bounded);
    /// - the store cannot be asked: in doubt, unless the store had said the
    ///   transaction failed.
    ///
    /// Safe against double writes because the lock is held again before the
    /// head is read: nobody else extends this chain.
    async fn recover(
        &mut self,
        entries: &[Entry],
        start: &(i64, String),
        first: StoreError,
    ) -> Result<(), Failure> {
        tracing::warn!(error = %first, records = entries.len(), "audit batch failed; re-reading the chain head");
        let Some(last) = entries.last() else {
            return Err(Failure::Definite(first));
        };
        match tokio::time::timeout(self.settings.bound, self.resync()).await {
            Ok(Ok(())) => {}
            _ if first.is_definite() => return Err(Failure::Definite(first)),
            _ => return Err(Failure::InDoubt(first)),
        }
        if (self.seq, self.hash.as_str()) == (last.row.seq, last.row.hash.as_str()) {
            return Ok(());
        }
        if (self.seq, &self.hash) != (start.0, &start.1) {
            return Err(Failure::Definite(first));
        }
        match self.insert(entries, None).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_definite() => Err(Failure::Definite(e)),
            Err(e) => Err(Failure::InDoubt(e)),
        }
    }

    /// Signs the current head and appends the checkpoint to the chain, in one
    /// transaction. Skipped when nothing was written since the last one.
    async fn checkpoint(&mut self) {
        if !self.ready().await || self.seq == 0 || self.seq <= self.ck_record_seq {
            return;
        }
        let ck = self.signer.sign(
            &self.settings.instance,
            self.ck_no + 1,
            self.seq,
            &self.hash,
            &record::now_rfc3339(),
        );
        let id = uuid::Uuid::new_v4();
        let rec = ck.chain_record(&id.to_string(), &id.simple().to_string());
        let mut entries = vec![Entry::own(StoredRow::unlinked(rec), None)];
        link(&mut entries, &(self.seq, self.hash.clone()));
        match self.insert(&entries, Some(&ck)).await {
            Ok(()) => {
                self.ck_no = ck.ck_no;
                self.ck_record_seq = entries[0].row.seq;
                self.landed(entries);
            }
            Err(e) => {
                // Nothing waits for it; a checkpoint that landed after all
                // is found by the next resync.
                self.stale = true;
                tracing::error!(error = %e, "audit checkpoint failed");
            }
        }
    }

    /// One transaction on the writer's connection, bounded by the store
    /// (`busy_timeout` / `statement_timeout`) and by a timer of twice that.
    /// A failure drops the connection (it may be broken or mid-statement;
    /// on SQLite dropping it interrupts a batch still on its thread).
    async fn insert(
        &mut self,
        entries: &[Entry],
        ck: Option<&Checkpoint>,
    ) -> Result<(), StoreError> {
        let batch = Batch {
            rows: entries.iter().map(|e| Arc::clone(&e.row)).collect(),
            sides: entries.iter().filter_map(|e| e.side.clone()).collect(),
            checkpoints: ck.into_iter().cloned().collect(),
        };
        let timer = self.settings.bound * 2;
        let result = match tokio::time::timeout(timer, self.insert_on_connection(batch)).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Deadline(timer)),
        };
        if result.is_err() {
            self.own_conn = None;
            if matches!(self.lock, InstanceLock::Postgres(_))
                && !result.as_ref().is_err_and(StoreError::is_definite)
            {
                self.lock = InstanceLock::Lost;
            }
        }
        result
    }

    async fn insert_on_connection(&mut self, batch: Batch) -> Result<(), StoreError> {
        let conn = match &mut self.lock {
            InstanceLock::Postgres(conn) => {
                let ck = batch.checkpoints.first();
                return self
                    .store
                    .insert_batch_on(conn, &batch.rows, &batch.sides, ck)
                    .await;
            }
            InstanceLock::Lost => return Err(StoreError::Unavailable),
            InstanceLock::File(_) => match &mut self.own_conn {
                Some(conn) => conn,
                None => {
                    let conn = self
                        .store
                        .write_connection(self.settings.bound, self.settings.sqlite_cache_mib)
                        .await?;
                    self.own_conn.insert(conn)
                }
            },
        };
        conn.insert(batch).await
    }

    /// Continues from the head the store actually has, under an instance
    /// lock that is still held: after a failed transaction (e.g. the
    /// database restarted mid-COMMIT) the batch may or may not be in the
    /// store, and a PostgreSQL advisory lock dies with its session. Without
    /// this the writer would reuse sequence numbers that are taken and fail
    /// every batch until the gateway is restarted.
    async fn resync(&mut self) -> Result<(), StoreError> {
        let instance = self.settings.instance.clone();
        if self
            .store
            .relock_instance(&mut self.lock, &instance)
            .await?
            && let InstanceLock::Postgres(conn) = &mut self.lock
        {
            self.store.bound_session(conn, self.settings.bound).await?;
        }
        self.read_head().await?;
        self.stale = false;
        tracing::warn!(seq = self.seq, "audit writer resynchronised with the store");
        Ok(())
    }

    async fn read_head(&mut self) -> Result<(), StoreError> {
        let instance = &self.settings.instance;
        let head = self.store.chain_head(instance).await?;
        let last_ck = self.store.last_checkpoint(instance).await?;
        self.seq = head.as_ref().map_or(0, |h| h.0);
        self.hash = head.map_or_else(|| record::GENESIS.to_owned(), |h| h.1);
        self.ck_no = last_ck.map_or(0, |c| c.0);
        self.ck_record_seq = last_ck.map_or(0, |c| c.1);
        Ok(())
    }
}

/// Chain positions after `start`, in order. Tentative until the transaction
/// commits: a failed batch leaves the head where it was.
fn link(entries: &mut [Entry], start: &(i64, String)) {
    let (mut seq, mut prev) = (start.0, start.1.clone());
    for e in entries {
        seq += 1;
        Arc::make_mut(&mut e.row).link(seq, &prev);
        prev.clone_from(&e.row.hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_and_the_writer_never_both_decide() {
        let later = Instant::now() + Duration::from_mins(1);
        // Claimed first: the request can no longer give up on time, only late.
        let s = Slot::new(later);
        assert!(s.claim(Instant::now()));
        assert!(!s.give_up());
        assert!(s.deliver());
        assert!(!s.give_up_late(), "delivered: the request must take the Ok");
        // Given up first: the writer cannot claim it.
        let s = Slot::new(later);
        assert!(s.give_up());
        assert!(!s.claim(Instant::now()));
        // Past its deadline the writer gives up for the request.
        let s = Slot::new(Instant::now());
        assert!(!s.claim(Instant::now() + Duration::from_millis(1)));
        assert!(s.give_up());
        // Late: a landing is not delivered (and is corrected).
        let s = Slot::new(later);
        assert!(s.claim(Instant::now()));
        assert!(s.give_up_late());
        assert!(!s.deliver());
    }

    /// The writer gives up for a request whose deadline passed while it was
    /// queued: the request must hear that (an error), not a dropped ack,
    /// which it would read as "writer gone" and record a second time.
    #[tokio::test]
    async fn a_record_past_its_deadline_is_answered_not_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/a.db", dir.path().display());
        let store = Store::connect(&url).await.unwrap();
        let key = dir.path().join("s.key");
        Signer::generate_file(&key).unwrap();
        let settings = WriterSettings {
            instance: "t".into(),
            max_batch: 8,
            bound: Duration::from_millis(100),
            backlog_capacity: 8,
            sqlite_cache_mib: 8,
            unwritten: Arc::default(),
        };
        let lock = store.lock_instance("t").await.unwrap();
        let mut w = Writer::start(store, settings, Signer::from_file(&key).unwrap(), lock)
            .await
            .unwrap();
        let slot = Arc::new(Slot::new(Instant::now()));
        let (ack, done) = oneshot::channel();
        let rec = Box::new(AuditRecord::new("t", "r", "t"));
        let entries = w.claim(vec![Pending {
            rec,
            side: None,
            slot: Arc::clone(&slot),
            ack,
        }]);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].row.status, 503);
        assert!(matches!(done.await, Ok(Err(_))), "an explicit refusal");
        assert!(slot.give_up(), "the request sees that it gave up");
    }

    #[test]
    fn a_refusal_shares_nothing_and_keeps_its_digest_true() {
        let mut rec = AuditRecord::new("i", "r", "t");
        rec.kind = "request";
        rec.outcome = Outcome::Allowed;
        rec.status = 200;
        rec.fields_shared = vec!["leerling.voornaam".into()];
        let mut row = StoredRow::unlinked(rec);
        abandon(&mut row);
        assert_eq!(
            (row.status, row.outcome.as_str(), row.fields_shared.as_str()),
            (503, "error", "[]")
        );
        assert_eq!(row.personal_digest, row.compute_personal_digest());
        let c = correction(&row, true);
        assert_eq!((c.kind.as_str(), c.status), ("correction", 503));
    }
}
