//! `audit verify`: recomputes every hash from the stored columns, follows
//! every chain, and checks every checkpoint signature, reporting exactly which
//! record or range was altered, removed, inserted or reordered.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::checkpoint::Checkpoint;
use super::record::{GENESIS, RowRef, StoredRow};

/// One thing wrong with the trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Finding {
    /// The record's columns do not hash to its stored hash: edited.
    Altered { instance: String, seq: i64 },
    /// A purged record whose personal columns were not erased, or vice versa.
    PurgeInconsistent { instance: String, seq: i64 },
    /// Records `from..=to` are missing from the chain.
    Removed {
        instance: String,
        from: i64,
        to: i64,
    },
    /// The record hashes correctly but does not follow its predecessor:
    /// inserted, reordered, or moved here from another chain.
    BrokenLink { instance: String, seq: i64 },
    /// The chain does not reproduce a signed checkpoint: rewritten at or
    /// before `seq` (after the previous good checkpoint, `after_seq`).
    CheckpointMismatch {
        instance: String,
        ck_no: i64,
        seq: i64,
        after_seq: i64,
    },
    /// The checkpoint's signature is not valid under the verification key.
    CheckpointBadSignature { instance: String, ck_no: i64 },
    /// The chain has a checkpoint record for which the checkpoint row is gone.
    CheckpointDropped { instance: String, ck_no: i64 },
    /// A checkpoint row without its chain record.
    CheckpointRecordMissing { instance: String, ck_no: i64 },
    /// Checkpoint numbers skip `from..=to`.
    CheckpointGap {
        instance: String,
        from: i64,
        to: i64,
    },
    /// A checkpoint covers records beyond the end of the chain: the newest
    /// records `from..=to` were removed.
    TailRemoved {
        instance: String,
        from: i64,
        to: i64,
    },
    /// An exported checkpoint is missing from, or differs in, the database.
    ExportedCheckpointMismatch { instance: String, ck_no: i64 },
    /// An exported checkpoint names an instance that has no records at all.
    ChainMissing { instance: String },
    /// The head a previous verification witnessed is gone or changed: the
    /// trail was rewritten at or before it since that run.
    WitnessedHeadChanged { instance: String, seq: i64 },
}

/// Where a verification of one chain starts: the head a previous run
/// verified, which the FG keeps outside the database (`audit verify
/// --state`), with the last checkpoint that sealed the chain by then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    pub seq: i64,
    pub hash: String,
    /// The last valid checkpoint's number (0: none yet) and the position it
    /// sealed.
    pub ck_no: i64,
    pub ck_seq: i64,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Altered { instance, seq } => write!(
                f,
                "{instance} #{seq}: record altered (its columns no longer match its hash)"
            ),
            Finding::PurgeInconsistent { instance, seq } => write!(
                f,
                "{instance} #{seq}: purge marker and personal columns disagree"
            ),
            Finding::Removed { instance, from, to } => write!(
                f,
                "{instance} #{from}..#{to}: {} record(s) removed",
                to - from + 1
            ),
            Finding::BrokenLink { instance, seq } => write!(
                f,
                "{instance} #{seq}: record does not follow its predecessor (inserted, reordered or moved from another chain)"
            ),
            Finding::CheckpointMismatch {
                instance,
                ck_no,
                seq,
                after_seq,
            } => write!(
                f,
                "{instance} checkpoint {ck_no}: chain does not reproduce the signed hash at #{seq}; records #{}..#{seq} were rewritten",
                after_seq + 1
            ),
            Finding::CheckpointBadSignature { instance, ck_no } => write!(
                f,
                "{instance} checkpoint {ck_no}: signature invalid (checkpoint edited or signed with another key)"
            ),
            Finding::CheckpointDropped { instance, ck_no } => {
                write!(f, "{instance} checkpoint {ck_no}: checkpoint row removed")
            }
            Finding::CheckpointRecordMissing { instance, ck_no } => write!(
                f,
                "{instance} checkpoint {ck_no}: its chain record is missing"
            ),
            Finding::CheckpointGap { instance, from, to } => {
                write!(f, "{instance}: checkpoints {from}..{to} removed")
            }
            Finding::TailRemoved { instance, from, to } => write!(
                f,
                "{instance} #{from}..#{to}: newest record(s) removed (a signed checkpoint covers them)"
            ),
            Finding::ExportedCheckpointMismatch { instance, ck_no } => write!(
                f,
                "{instance} checkpoint {ck_no}: differs from or is missing compared with the exported copy"
            ),
            Finding::ChainMissing { instance } => write!(
                f,
                "{instance}: exported checkpoints exist but the chain has no records"
            ),
            Finding::WitnessedHeadChanged { instance, seq } => write!(
                f,
                "{instance} #{seq}: the head a previous verification witnessed is gone or changed (rewritten since)"
            ),
        }
    }
}

/// Summary of one chain.
#[derive(Debug, Clone, Serialize)]
pub struct ChainSummary {
    pub instance: String,
    pub records: usize,
    pub last_seq: i64,
    pub checkpoints: usize,
    /// How many checkpoint signatures were checked one by one; the chain
    /// vouched for the others (see [`Verifier::unsigned`]).
    pub signatures_checked: usize,
    /// Highest seq covered by a valid checkpoint.
    pub sealed_through: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub chains: Vec<ChainSummary>,
    pub findings: Vec<Finding>,
    /// Per chain, where the next (incremental) run can start: the verified
    /// head and the last valid checkpoint. Meaningful only without findings.
    pub witness: BTreeMap<String, Anchor>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.chains {
            write!(
                f,
                "chain {}: {} records (last #{}), {} checkpoints ({} signatures checked, the rest vouched for by the chain), sealed through #{}",
                c.instance,
                c.records,
                c.last_seq,
                c.checkpoints,
                c.signatures_checked,
                c.sealed_through
            )?;
            if c.last_seq > c.sealed_through {
                write!(
                    f,
                    "; #{}..#{} not yet covered by a checkpoint",
                    c.sealed_through + 1,
                    c.last_seq
                )?;
            }
            writeln!(f)?;
        }
        if self.findings.is_empty() {
            writeln!(
                f,
                "OK: every hash recomputes, every chain links, every checkpoint verifies"
            )
        } else {
            for x in &self.findings {
                writeln!(f, "FAIL {x}")?;
            }
            writeln!(f, "{} finding(s)", self.findings.len())
        }
    }
}

fn erased<T: AsRef<[u8]> + ?Sized>(r: &RowRef<'_, T>) -> bool {
    r.pupil.is_none() && r.fields_shared.as_ref() == b"[]" && r.fields_withheld.as_ref() == b"[]"
}

/// Verifies `rows` (any order) against `checkpoints` (from the database) and,
/// optionally, `exported` checkpoints kept elsewhere, with `public_key`.
/// Holds every row; for a trail of any size use [`Verifier`], which the
/// store feeds page by page.
pub fn verify(
    rows: &[StoredRow],
    checkpoints: &[Checkpoint],
    exported: &[Checkpoint],
    public_key: &[u8],
) -> Report {
    let mut sorted: Vec<&StoredRow> = rows.iter().collect();
    sorted.sort_by(|a, b| (a.instance.as_str(), a.seq).cmp(&(b.instance.as_str(), b.seq)));
    let mut v = Verifier::new(exported, public_key);
    v.add_checkpoints(checkpoints);
    for r in sorted {
        v.push(r);
    }
    for _ in 0..SIGNATURE_ROUNDS {
        let need: std::collections::HashSet<(String, i64)> = v.unsigned().into_iter().collect();
        if need.is_empty() {
            break;
        }
        let rows: Vec<Checkpoint> = checkpoints
            .iter()
            .filter(|c| need.contains(&(c.instance.clone(), c.ck_no)))
            .cloned()
            .collect();
        v.add_signatures(&rows);
    }
    v.finish()
}

/// How often [`Verifier::unsigned`] can ask for more signatures: the
/// newest sealing checkpoint's, then the rest it does not vouch for (all
/// of them when it fails).
pub const SIGNATURE_ROUNDS: usize = 3;

/// Streaming verification: memory grows with the number of chains and of
/// checkpoints (about 100 bytes each, see [`Sealed`]), not with the trail.
/// Give the checkpoints first ([`Verifier::add_checkpoints`]), then feed
/// every row with [`Verifier::push`], each instance's rows together and in
/// `seq` order (`ORDER BY instance, seq`), then call [`Verifier::finish`].
pub struct Verifier<'a> {
    /// Checkpoints by instance (consumed per chain).
    cks: BTreeMap<String, Vec<Sealed>>,
    /// Chains verified from a witnessed head rather than from genesis.
    anchors: BTreeMap<String, Anchor>,
    /// Where each chain ends up: the next run's anchors.
    witness: BTreeMap<String, Anchor>,
    exported: &'a [Checkpoint],
    public_key: &'a [u8],
    chain: Option<ChainState>,
    /// Chains walked, waiting for their checkpoints' signatures.
    closed: Vec<ChainState>,
    /// Findings by instance, so the report lists them in instance order
    /// whatever order the store returns the chains in.
    findings: BTreeMap<String, Vec<Finding>>,
    chains: Vec<ChainSummary>,
}

/// What verification keeps of one checkpoint row (~90 bytes; the row
/// itself is ~500 with its signature): a digest of every column, and what
/// the walk and the signature check found.
struct Sealed {
    ck_no: i64,
    seq: i64,
    /// The chain hash it seals (`None`: not a 32-byte hex hash).
    hash: Option<[u8; 32]>,
    /// Whether its signature is valid: `None` until checked, or until it is
    /// vouched for by a later checkpoint (see [`Verifier::unsigned`]).
    signed: Option<bool>,
    /// Digest of every column ([`row_digest`]).
    row: [u8; 32],
    /// Whether the chain's record at `seq` had that hash (`None`: no record
    /// at `seq` streamed past).
    matched: Option<bool>,
    /// Where the chain holds this checkpoint's own record, when that record
    /// names every column of the row exactly as stored (time included).
    recorded_at: Option<i64>,
}

impl Sealed {
    fn of(c: &Checkpoint) -> Self {
        Self {
            ck_no: c.ck_no,
            seq: c.seq,
            hash: hash_bytes(&c.hash),
            signed: None,
            row: row_digest(c),
            matched: None,
            recorded_at: None,
        }
    }
}

fn hash_bytes(hex: &str) -> Option<[u8; 32]> {
    // Lower case (as written) without an allocation; either case accepted.
    crate::hex::lower_32(hex).or_else(|| crate::hex::decode(hex).and_then(|b| b.try_into().ok()))
}

/// A digest of every column of a checkpoint row.
fn row_digest(c: &Checkpoint) -> [u8; 32] {
    let mut canon = super::record::Canon::new();
    canon
        .str(&c.instance)
        .int(c.ck_no)
        .int(c.seq)
        .str(&c.hash)
        .str(&c.time)
        .str(&c.key_id)
        .str(&c.signature);
    canon.finish_bytes()
}

/// What one chain's verification keeps while its rows stream past.
struct ChainState {
    instance: String,
    /// The chain's checkpoints, and (by index, in `seq` order) the positions
    /// they seal; `next` is the first not yet reached by the walk.
    sealed: Vec<Sealed>,
    marks: Vec<(i64, usize)>,
    next: usize,
    /// Checkpoint numbers named by the chain's own checkpoint records.
    /// (Sorted and deduplicated when the chain closes.)
    ck_records: Vec<i64>,
    expected_seq: i64,
    prev_hash: HashText,
    records: usize,
    last_seq: i64,
    last_is_checkpoint: bool,
    signatures_checked: usize,
    findings: Vec<Finding>,
}

impl<'a> Verifier<'a> {
    /// A verifier without checkpoints yet: give them with
    /// [`Verifier::add_checkpoints`] before the rows.
    pub fn new(exported: &'a [Checkpoint], public_key: &'a [u8]) -> Self {
        Self {
            cks: BTreeMap::new(),
            anchors: BTreeMap::new(),
            witness: BTreeMap::new(),
            exported,
            public_key,
            chain: None,
            closed: Vec::new(),
            findings: BTreeMap::new(),
            chains: Vec::new(),
        }
    }

    /// Adds checkpoints from the database (any order; page by page, so a
    /// year's million never sit in memory as rows), keeping what
    /// verification needs of each. Their signatures are checked after the
    /// walk, where a later checkpoint does not vouch for them
    /// ([`Verifier::unsigned`], [`Verifier::add_signatures`]).
    pub fn add_checkpoints(&mut self, page: &[Checkpoint]) {
        for c in page {
            let sealed = Sealed::of(c);
            match self.cks.get_mut(&c.instance) {
                Some(list) => list.push(sealed),
                None => {
                    self.cks.insert(c.instance.clone(), vec![sealed]);
                }
            }
        }
    }

    /// The checkpoints whose signatures must still be checked, by instance
    /// and number: call after the last row, give their rows to
    /// [`Verifier::add_signatures`], and ask again until none is left
    /// (at most three rounds), then [`Verifier::finish`].
    ///
    /// A checkpoint need not be checked on its own when the chain vouches
    /// for it: its chain record names every column of its row as stored,
    /// that record lies inside the part of the chain a later checkpoint
    /// seals, that later checkpoint's signature is valid and its hash is the
    /// chain's, and the chain has no finding. The signed hash then covers
    /// the record, and the record covers the row; altering the row breaks
    /// the match, altering the record breaks the chain. So a clean chain
    /// costs one signature check, however many checkpoints it has (a busy
    /// chain seals up to a million 10-second intervals a year, ~50 µs each
    /// here). Anything else (a chain with findings, a checkpoint written
    /// before its record named its time) is checked one by one, as before.
    pub fn unsigned(&mut self) -> Vec<(String, i64)> {
        self.close_open_chain();
        let mut out = Vec::new();
        for chain in &mut self.closed {
            chain.vouch_or_list(&mut out);
        }
        out
    }

    /// Records whether each of `rows`' signatures is valid (checked on
    /// every core).
    pub fn add_signatures(&mut self, rows: &[Checkpoint]) {
        let valid = signatures_valid(rows, self.public_key);
        for (c, ok) in rows.iter().zip(valid) {
            let chain = self.closed.iter_mut().find(|x| x.instance == c.instance);
            let Some(chain) = chain else { continue };
            chain.signatures_checked += 1;
            let i = chain.sealed.binary_search_by_key(&c.ck_no, |s| s.ck_no);
            if let Some(s) = i.ok().and_then(|i| chain.sealed.get_mut(i)) {
                s.signed = Some(ok && row_digest(c) == s.row);
            }
        }
    }

    /// Starts the chains named in `anchors` after their witnessed heads:
    /// the checkpoints given must then be those after the anchor's.
    #[must_use]
    pub fn anchored(mut self, anchors: BTreeMap<String, Anchor>) -> Self {
        self.anchors = anchors;
        self
    }

    /// A chain's state before its first record: at genesis, or at its anchor.
    /// Takes the instance's checkpoints out of the map.
    fn start(&mut self, instance: &str) -> ChainState {
        let mut sealed = self.cks.remove(instance).unwrap_or_default();
        sealed.sort_by_key(|c| c.ck_no);
        let mut c = ChainState::new(instance, sealed);
        if let Some(a) = self.anchors.get(instance) {
            c.expected_seq = a.seq + 1;
            c.prev_hash = HashText::of(&a.hash);
            c.last_seq = a.seq;
        }
        c
    }

    pub fn push(&mut self, r: &StoredRow) {
        self.push_ref(r.as_ref());
    }

    /// [`Verifier::push`] for columns borrowed from a database row.
    pub fn push_ref(&mut self, r: RowRef<'_>) {
        self.push_checked(r.instance, Checked::of(&r));
    }

    /// [`Verifier::push`] for a row of `instance` whose own hashes were
    /// checked where it was read ([`Checked::of`]).
    pub fn push_checked(&mut self, instance: &str, r: Checked) {
        if self.chain.as_ref().is_none_or(|c| c.instance != instance) {
            if let Some(done) = self.chain.take() {
                self.closed.push(done);
            }
            self.chain = Some(self.start(instance));
        }
        if let Some(chain) = self.chain.as_mut() {
            chain.push(r);
        }
    }

    /// Ends the walk: the chain being walked, and chains with checkpoints
    /// but no record walked (or anchored chains that did not grow), join
    /// the closed ones.
    fn close_open_chain(&mut self) {
        if let Some(done) = self.chain.take() {
            self.closed.push(done);
        }
        let seen: BTreeSet<String> = self.closed.iter().map(|c| c.instance.clone()).collect();
        let rest: BTreeSet<String> = self
            .cks
            .keys()
            .chain(self.anchors.keys())
            .filter(|i| !seen.contains(*i))
            .cloned()
            .collect();
        for inst in rest {
            let chain = self.start(&inst);
            self.closed.push(chain);
        }
    }

    /// Checks the checkpoints and the exported copies against what streamed
    /// past, and reports. Signatures not yet checked (see
    /// [`Verifier::unsigned`]) count as invalid.
    pub fn finish(mut self) -> Report {
        self.close_open_chain();
        for chain in std::mem::take(&mut self.closed) {
            self.close(chain);
        }
        self.chains.sort_by(|a, b| a.instance.cmp(&b.instance));
        let mut findings: Vec<Finding> = std::mem::take(&mut self.findings)
            .into_values()
            .flatten()
            .collect();
        let known: BTreeSet<&str> = self.chains.iter().map(|c| c.instance.as_str()).collect();
        for e in self.exported {
            if !known.contains(e.instance.as_str()) {
                findings.push(Finding::ChainMissing {
                    instance: e.instance.clone(),
                });
            }
        }
        findings.dedup();
        Report {
            chains: self.chains,
            findings,
            witness: self.witness,
        }
    }

    fn close(&mut self, mut chain: ChainState) {
        let list = std::mem::take(&mut chain.sealed);
        let mut findings = std::mem::take(&mut chain.findings);
        chain.ck_records.sort_unstable();
        chain.ck_records.dedup();
        let (sealed_through, last_good) = self.check_checkpoints(&chain, &list, &mut findings);
        self.check_exported(&chain, &list, &mut findings);
        self.witness.insert(
            chain.instance.clone(),
            Anchor {
                seq: chain.last_seq,
                hash: chain.prev_hash.to_string(),
                ck_no: last_good.0,
                ck_seq: last_good.1,
            },
        );
        let ChainState {
            instance,
            records,
            last_seq,
            signatures_checked,
            ..
        } = chain;
        self.chains.push(ChainSummary {
            instance: instance.clone(),
            records,
            last_seq,
            checkpoints: list.len(),
            signatures_checked,
            sealed_through,
        });
        self.findings.entry(instance).or_default().extend(findings);
    }

    /// Checks the database's checkpoints of one chain against its hashes:
    /// numbering, signatures, the hash each one seals, and each one's chain
    /// record. Returns how far the chain is sealed and the last valid
    /// checkpoint (number, position).
    fn check_checkpoints(
        &self,
        chain: &ChainState,
        list: &[Sealed],
        findings: &mut Vec<Finding>,
    ) -> (i64, (i64, i64)) {
        let inst = chain.instance.as_str();
        let last_seq = chain.last_seq;
        // From genesis, or from the anchor's last checkpoint.
        let (mut last_good_ck, mut last_good_seq) = self
            .anchors
            .get(inst)
            .map_or((0, 0), |a| (a.ck_no, a.ck_seq));
        let mut sealed_through = last_good_seq;
        let mut expected_ck = last_good_ck + 1;
        for c in list {
            if c.ck_no > expected_ck {
                findings.push(Finding::CheckpointGap {
                    instance: inst.into(),
                    from: expected_ck,
                    to: c.ck_no - 1,
                });
            }
            expected_ck = c.ck_no + 1;
            if c.signed != Some(true) {
                findings.push(Finding::CheckpointBadSignature {
                    instance: inst.into(),
                    ck_no: c.ck_no,
                });
                continue;
            }
            match c.matched {
                Some(true) => {
                    sealed_through = sealed_through.max(c.seq);
                    last_good_seq = c.seq;
                    last_good_ck = c.ck_no;
                }
                Some(false) => findings.push(Finding::CheckpointMismatch {
                    instance: inst.into(),
                    ck_no: c.ck_no,
                    seq: c.seq,
                    after_seq: last_good_seq,
                }),
                None if c.seq > last_seq => findings.push(Finding::TailRemoved {
                    instance: inst.into(),
                    from: last_seq + 1,
                    to: c.seq + 1,
                }),
                // Inside the chain but gone: already reported as removed.
                None => {}
            }
            if chain.ck_records.binary_search(&c.ck_no).is_err() && c.seq < last_seq {
                findings.push(Finding::CheckpointRecordMissing {
                    instance: inst.into(),
                    ck_no: c.ck_no,
                });
            }
        }
        // A checkpoint's own chain record follows what it covers; when it is
        // the newest record, the chain is sealed to its end.
        if chain.last_is_checkpoint && sealed_through == last_seq - 1 {
            sealed_through = last_seq;
        }
        // `list` is in `ck_no` order (see `start`).
        for n in &chain.ck_records {
            if list.binary_search_by_key(n, |c| c.ck_no).is_err() {
                findings.push(Finding::CheckpointDropped {
                    instance: inst.into(),
                    ck_no: *n,
                });
            }
        }
        (sealed_through, (last_good_ck, last_good_seq))
    }

    /// Checks the exported checkpoints of one chain: each must be in the
    /// database unchanged, and none may seal records past the chain's end.
    /// A lookup by number (not a scan) per exported checkpoint, compared by
    /// the digest of every column; a signature already verified in the
    /// database is not verified again.
    fn check_exported(&self, chain: &ChainState, list: &[Sealed], findings: &mut Vec<Finding>) {
        let inst = chain.instance.as_str();
        if self.exported.is_empty() {
            return;
        }
        let by_no: BTreeMap<i64, &Sealed> = list.iter().map(|c| (c.ck_no, c)).collect();
        for e in self.exported.iter().filter(|e| e.instance == inst) {
            let stored = by_no.get(&e.ck_no).filter(|c| c.row == row_digest(e));
            if stored.is_none() {
                findings.push(Finding::ExportedCheckpointMismatch {
                    instance: inst.into(),
                    ck_no: e.ck_no,
                });
            }
            let signed = match stored {
                Some(c) => c.signed == Some(true),
                None => e.verify(self.public_key),
            };
            // An exported checkpoint past the chain end: the newest records were removed.
            if signed && e.seq > chain.last_seq {
                findings.push(Finding::TailRemoved {
                    instance: inst.into(),
                    from: chain.last_seq + 1,
                    to: e.seq + 1,
                });
            }
        }
    }
}

impl ChainState {
    /// Compares the row with every checkpoint that seals its position (the
    /// rows come in `seq` order, so the marks are passed once).
    fn seal(&mut self, row_seq: i64, hash: &HashText) {
        while let Some(&(seq, i)) = self.marks.get(self.next) {
            if seq > row_seq {
                return;
            }
            if seq == row_seq
                && let Some(c) = self.sealed.get_mut(i)
            {
                c.matched = Some(c.hash.is_some() && c.hash == hash.bytes());
            }
            self.next += 1;
        }
    }
}

/// Which of `list`'s signatures are valid, in order, checked on every core:
/// one Ed25519 verification costs ~47 µs here, and a year of a busy chain
/// has up to a million checkpoints. A thread that fails counts its part as
/// invalid (reported, never passed).
pub fn signatures_valid(list: &[Checkpoint], public_key: &[u8]) -> Vec<bool> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let chunk = list.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let parts: Vec<_> = list
            .chunks(chunk)
            .map(|part| {
                let h = s.spawn(move || part.iter().map(|c| c.verify(public_key)).collect());
                (part.len(), h)
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|(n, h)| h.join().unwrap_or_else(|_| vec![false; n]))
            .collect()
    })
}

/// A checkpoint's chain record's `detail`, as the writer writes it
/// (`time` since 2026-12-03; without it the record does not vouch).
#[derive(Deserialize)]
struct RecordedCheckpoint<'a> {
    ck_no: i64,
    seq: Option<i64>,
    #[serde(borrow)]
    hash: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    key_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    signature: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    time: Option<std::borrow::Cow<'a, str>>,
}

impl ChainState {
    /// Notes where the chain records checkpoint `d.ck_no`, when the record
    /// names every column of the checkpoint's row as stored.
    fn recorded(&mut self, row_seq: i64, d: &RecordedCheckpoint<'_>) {
        let (Some(seq), Some(hash), Some(key_id), Some(signature), Some(time)) =
            (d.seq, &d.hash, &d.key_id, &d.signature, &d.time)
        else {
            return;
        };
        let Ok(i) = self.sealed.binary_search_by_key(&d.ck_no, |c| c.ck_no) else {
            return;
        };
        let named = Checkpoint {
            instance: self.instance.clone(),
            ck_no: d.ck_no,
            seq,
            hash: hash.to_string(),
            time: time.to_string(),
            key_id: key_id.to_string(),
            signature: signature.to_string(),
        };
        if let Some(c) = self.sealed.get_mut(i)
            && c.row == row_digest(&named)
        {
            c.recorded_at = Some(row_seq);
        }
    }

    /// See [`Verifier::unsigned`]: marks the checkpoints the chain vouches
    /// for once the newest sealing checkpoint's signature is known to hold,
    /// and lists those still to be checked.
    fn vouch_or_list(&mut self, out: &mut Vec<(String, i64)>) {
        let newest = self
            .findings
            .is_empty()
            .then(|| self.sealed.iter().rposition(|c| c.matched == Some(true)))
            .flatten();
        let mut list = |c: &Sealed| out.push((self.instance.clone(), c.ck_no));
        match newest.map(|i| (i, self.sealed[i].seq, self.sealed[i].signed)) {
            Some((i, _, None)) => list(&self.sealed[i]),
            Some((_, through, Some(true))) => {
                for c in &mut self.sealed {
                    if c.signed.is_none() && c.recorded_at.is_some_and(|p| p <= through) {
                        c.signed = Some(true);
                    }
                }
                self.sealed
                    .iter()
                    .filter(|c| c.signed.is_none())
                    .for_each(list);
            }
            _ => self
                .sealed
                .iter()
                .filter(|c| c.signed.is_none())
                .for_each(list),
        }
    }

    fn new(instance: &str, sealed: Vec<Sealed>) -> Self {
        let mut marks: Vec<(i64, usize)> =
            sealed.iter().enumerate().map(|(i, c)| (c.seq, i)).collect();
        marks.sort_unstable();
        Self {
            instance: instance.to_owned(),
            sealed,
            marks,
            next: 0,
            ck_records: Vec::new(),
            expected_seq: 1,
            prev_hash: HashText::of(GENESIS),
            records: 0,
            last_seq: 0,
            last_is_checkpoint: false,
            signatures_checked: 0,
            findings: Vec::new(),
        }
    }

    fn push(&mut self, r: Checked) {
        let inst = self.instance.as_str();
        if r.seq > self.expected_seq {
            self.findings.push(Finding::Removed {
                instance: inst.into(),
                from: self.expected_seq,
                to: r.seq - 1,
            });
        }
        if r.purge_inconsistent {
            self.findings.push(Finding::PurgeInconsistent {
                instance: inst.into(),
                seq: r.seq,
            });
        }
        if !r.own_ok {
            // A purge inconsistency is already reported.
            if !r.purge_inconsistent {
                self.findings.push(Finding::Altered {
                    instance: inst.into(),
                    seq: r.seq,
                });
            }
        } else if r.prev_hash != self.prev_hash && r.seq == self.expected_seq {
            self.findings.push(Finding::BrokenLink {
                instance: inst.into(),
                seq: r.seq,
            });
        }
        self.seal(r.seq, &r.hash);
        self.last_is_checkpoint = r.checkpoint.is_some();
        if let Some(detail) = &r.checkpoint
            && let Ok(d) = serde_json::from_str::<RecordedCheckpoint<'_>>(detail)
        {
            self.ck_records.push(d.ck_no);
            self.recorded(r.seq, &d);
        }
        self.prev_hash = r.hash;
        self.expected_seq = r.seq + 1;
        self.records += 1;
        self.last_seq = r.seq;
    }
}

/// A stored hash's text (its bytes as stored), without an allocation when
/// it is 64 bytes long (every hash the writer stores). Two are equal
/// exactly when their texts are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashText {
    Hash([u8; 64]),
    Other(Box<[u8]>),
}

impl HashText {
    pub fn of<T: AsRef<[u8]> + ?Sized>(s: &T) -> Self {
        let s = s.as_ref();
        match <[u8; 64]>::try_from(s) {
            Ok(text) => Self::Hash(text),
            Err(_) => Self::Other(s.into()),
        }
    }

    fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Self::Hash(text) => String::from_utf8_lossy(text),
            Self::Other(s) => String::from_utf8_lossy(s),
        }
    }

    /// The hash's bytes, when its text is hex (either case).
    fn bytes(&self) -> Option<[u8; 32]> {
        hash_bytes(&self.text())
    }
}

impl fmt::Display for HashText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

/// Whether `text` is the lower-case hex of `bytes`.
fn is_hex_of(text: &[u8], bytes: &[u8; 32]) -> bool {
    text == crate::hex::encode_32(bytes).as_slice()
}

/// What the chain check needs of one row once the row's own hashes are
/// checked. Checking them (two SHA-256 over every column) is the costly,
/// order-free part of verification: [`Checked::of`] runs where the rows
/// are read, on SQLite on every core (`audit::walk`), and the chain check
/// ([`Verifier::push_checked`]) follows the rows in order.
#[derive(Debug)]
pub struct Checked {
    pub seq: i64,
    /// The personal digest (or, when purged, the erasure) and the record
    /// hash both match the columns.
    pub own_ok: bool,
    /// Purged, but a personal column is not erased.
    pub purge_inconsistent: bool,
    pub hash: HashText,
    pub prev_hash: HashText,
    /// A checkpoint record's `detail`; `None` for any other kind.
    pub checkpoint: Option<Box<str>>,
}

impl Checked {
    /// Checks `r`'s own hashes. Its columns as text or, where verification
    /// reads them, as the bytes stored: a column that is not UTF-8 then
    /// simply fails its hash (an altered record), as any other edit does.
    pub fn of<T: AsRef<[u8]> + ?Sized>(r: &RowRef<'_, T>) -> Self {
        let digest_ok = match r.purged_at {
            None => is_hex_of(r.personal_digest.as_ref(), &r.personal_digest_bytes()),
            Some(_) => erased(r),
        };
        let checkpoint = r.kind.as_ref() == b"checkpoint";
        Self {
            seq: r.seq,
            own_ok: digest_ok && is_hex_of(r.hash.as_ref(), &r.hash_bytes()),
            purge_inconsistent: r.purged_at.is_some() && !erased(r),
            hash: HashText::of(r.hash),
            prev_hash: HashText::of(r.prev_hash),
            checkpoint: checkpoint.then(|| String::from_utf8_lossy(r.detail.as_ref()).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::checkpoint::Signer;

    /// Every core checks a part; the answers come back in the list's order
    /// (an edited checkpoint in each part, and none for an empty list).
    #[test]
    fn signatures_are_checked_in_order_on_every_core() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.key");
        Signer::generate_file(&path).unwrap();
        let signer = Signer::from_file(&path).unwrap();
        let mut cks: Vec<_> = (1..=9)
            .map(|n| signer.sign("gw-1", n, n * 10, &"ab".repeat(32), "t"))
            .collect();
        for i in [1, 5, 8] {
            cks[i].seq += 1;
        }
        let want: Vec<bool> = (0..9).map(|i| ![1, 5, 8].contains(&i)).collect();
        assert_eq!(signatures_valid(&cks, &signer.public_key()), want);
        assert!(signatures_valid(&[], &signer.public_key()).is_empty());
    }

    /// A chain of `n` checkpoints, each after two records, with its chain
    /// record as the writer writes it (`with_time`: naming the time too).
    fn sealed_chain(signer: &Signer, n: i64, with_time: bool) -> (Vec<StoredRow>, Vec<Checkpoint>) {
        use crate::audit::record::AuditRecord;
        let (mut rows, mut cks, mut prev) = (Vec::new(), Vec::new(), GENESIS.to_owned());
        let mut push = |rows: &mut Vec<StoredRow>, rec: AuditRecord| {
            let seq = i64::try_from(rows.len()).unwrap() + 1;
            let row = StoredRow::from_record(&rec, seq, &prev);
            prev.clone_from(&row.hash);
            rows.push(row);
        };
        for ck_no in 1..=n {
            for _ in 0..2 {
                push(&mut rows, AuditRecord::new("gw-1", "r", "t"));
            }
            let seq = i64::try_from(rows.len()).unwrap();
            let ck = signer.sign(
                "gw-1",
                ck_no,
                seq,
                &rows[rows.len() - 1].hash,
                &format!("2026-12-03T10:00:{ck_no:02}.000000Z"),
            );
            let mut rec = ck.chain_record("ck", "t");
            if !with_time {
                // As the writer wrote it before the record named the time.
                let mut detail: serde_json::Value = serde_json::from_str(&rec.detail).unwrap();
                detail.as_object_mut().unwrap().remove("time");
                rec.detail = detail.to_string();
            }
            push(&mut rows, rec);
            cks.push(ck);
        }
        (rows, cks)
    }

    /// A clean chain whose checkpoint records name their rows costs one
    /// signature check; an earlier checkpoint row edited (its time, which
    /// only its signature covered) is still found, as is a bad newest
    /// signature; checkpoints whose records do not name their time are
    /// checked one by one, as before.
    #[test]
    fn the_chain_vouches_for_the_checkpoints_it_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.key");
        Signer::generate_file(&path).unwrap();
        let signer = Signer::from_file(&path).unwrap();
        let key = signer.public_key();
        let (rows, cks) = sealed_chain(&signer, 20, true);
        let report = verify(&rows, &cks, &[], &key);
        assert!(report.ok(), "{report}");
        assert_eq!(
            (
                report.chains[0].checkpoints,
                report.chains[0].signatures_checked
            ),
            (20, 1)
        );

        let mut edited = cks.clone();
        edited[6].time = "2026-12-03T09:00:00.000000Z".into();
        let report = verify(&rows, &edited, &[], &key);
        assert_eq!(
            report.findings,
            vec![Finding::CheckpointBadSignature {
                instance: "gw-1".into(),
                ck_no: 7
            }]
        );

        let mut edited = cks.clone();
        edited[19].signature = edited[18].signature.clone();
        let report = verify(&rows, &edited, &[], &key);
        assert_eq!(report.chains[0].signatures_checked, 20);
        assert_eq!(
            report.findings,
            vec![Finding::CheckpointBadSignature {
                instance: "gw-1".into(),
                ck_no: 20
            }]
        );

        let (rows, mut cks) = sealed_chain(&signer, 20, false);
        let report = verify(&rows, &cks, &[], &key);
        assert!(report.ok(), "{report}");
        assert_eq!(report.chains[0].signatures_checked, 20);
        cks[3].signature = cks[4].signature.clone();
        let report = verify(&rows, &cks, &[], &key);
        assert_eq!(
            report.findings,
            vec![Finding::CheckpointBadSignature {
                instance: "gw-1".into(),
                ck_no: 4
            }]
        );
    }
}
