//! `audit verify`: recomputes every hash from the stored columns, follows
//! every chain, and checks every checkpoint signature, reporting exactly which
//! record or range was altered, removed, inserted or reordered.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use super::checkpoint::Checkpoint;
use super::record::{GENESIS, StoredRow};

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
    /// Highest seq covered by a valid checkpoint.
    pub sealed_through: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub chains: Vec<ChainSummary>,
    pub findings: Vec<Finding>,
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
                "chain {}: {} records (last #{}), {} checkpoints, sealed through #{}",
                c.instance, c.records, c.last_seq, c.checkpoints, c.sealed_through
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

fn erased(r: &StoredRow) -> bool {
    r.subject.is_none() && r.fields_shared == "[]" && r.fields_withheld == "[]"
}

/// Verifies `rows` (any order) against `checkpoints` (from the database) and,
/// optionally, `exported` checkpoints kept elsewhere, with `public_key`.
pub fn verify(
    rows: &[StoredRow],
    checkpoints: &[Checkpoint],
    exported: &[Checkpoint],
    public_key: &[u8],
) -> Report {
    let mut findings = Vec::new();
    let mut by_instance: BTreeMap<&str, Vec<&StoredRow>> = BTreeMap::new();
    for r in rows {
        by_instance.entry(r.instance.as_str()).or_default().push(r);
    }
    let mut cks: BTreeMap<&str, Vec<&Checkpoint>> = BTreeMap::new();
    for c in checkpoints {
        cks.entry(c.instance.as_str()).or_default().push(c);
    }
    let mut chains = Vec::new();
    let instances: BTreeSet<&str> = by_instance.keys().chain(cks.keys()).copied().collect();
    for inst in instances {
        let mut chain = by_instance.remove(inst).unwrap_or_default();
        chain.sort_by_key(|r| r.seq);
        let mut hash_at: BTreeMap<i64, &str> = BTreeMap::new();
        let mut ck_records: BTreeMap<i64, &StoredRow> = BTreeMap::new();
        let mut expected_seq = 1;
        let mut prev_hash = GENESIS.to_owned();
        for r in &chain {
            if r.seq > expected_seq {
                findings.push(Finding::Removed {
                    instance: inst.into(),
                    from: expected_seq,
                    to: r.seq - 1,
                });
            }
            // Personal columns: recompute their digest unless purged.
            let digest_ok = match &r.purged_at {
                None => r.compute_personal_digest() == r.personal_digest,
                Some(_) => erased(r),
            };
            if r.purged_at.is_some() && !erased(r) {
                findings.push(Finding::PurgeInconsistent {
                    instance: inst.into(),
                    seq: r.seq,
                });
            }
            let own_ok = digest_ok && r.compute_hash() == r.hash;
            if !own_ok {
                if r.purged_at.is_some() && !erased(r) {
                    // Already reported as a purge inconsistency.
                } else {
                    findings.push(Finding::Altered {
                        instance: inst.into(),
                        seq: r.seq,
                    });
                }
            } else if r.prev_hash != prev_hash && r.seq == expected_seq {
                findings.push(Finding::BrokenLink {
                    instance: inst.into(),
                    seq: r.seq,
                });
            }
            hash_at.insert(r.seq, r.hash.as_str());
            if r.kind == "checkpoint"
                && let Some(n) = serde_json::from_str::<serde_json::Value>(&r.detail)
                    .ok()
                    .and_then(|d| d["ck_no"].as_i64())
            {
                ck_records.insert(n, r);
            }
            prev_hash.clone_from(&r.hash);
            expected_seq = r.seq + 1;
        }
        let last_seq = chain.last().map(|r| r.seq).unwrap_or(0);

        let mut sealed_through = 0;
        let list = cks.remove(inst).unwrap_or_default();
        let mut expected_ck = 1;
        let mut last_good_seq = 0;
        for c in &list {
            if c.ck_no > expected_ck {
                findings.push(Finding::CheckpointGap {
                    instance: inst.into(),
                    from: expected_ck,
                    to: c.ck_no - 1,
                });
            }
            expected_ck = c.ck_no + 1;
            if !c.verify(public_key) {
                findings.push(Finding::CheckpointBadSignature {
                    instance: inst.into(),
                    ck_no: c.ck_no,
                });
                continue;
            }
            match hash_at.get(&c.seq) {
                Some(h) if *h == c.hash => {
                    sealed_through = sealed_through.max(c.seq);
                    last_good_seq = c.seq;
                }
                Some(_) => findings.push(Finding::CheckpointMismatch {
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
            if !ck_records.contains_key(&c.ck_no) && c.seq < last_seq {
                findings.push(Finding::CheckpointRecordMissing {
                    instance: inst.into(),
                    ck_no: c.ck_no,
                });
            }
        }
        // A checkpoint's own chain record follows what it covers; when it is
        // the newest record, the chain is sealed to its end.
        if chain.last().is_some_and(|r| r.kind == "checkpoint") && sealed_through == last_seq - 1 {
            sealed_through = last_seq;
        }
        let rows_ck: BTreeSet<i64> = list.iter().map(|c| c.ck_no).collect();
        for n in ck_records.keys() {
            if !rows_ck.contains(n) {
                findings.push(Finding::CheckpointDropped {
                    instance: inst.into(),
                    ck_no: *n,
                });
            }
        }
        for e in exported.iter().filter(|e| e.instance == inst) {
            if !list.contains(&e) {
                findings.push(Finding::ExportedCheckpointMismatch {
                    instance: inst.into(),
                    ck_no: e.ck_no,
                });
            }
            // An exported checkpoint past the chain end: the newest records were removed.
            if e.verify(public_key) && e.seq > last_seq {
                findings.push(Finding::TailRemoved {
                    instance: inst.into(),
                    from: last_seq + 1,
                    to: e.seq + 1,
                });
            }
        }
        chains.push(ChainSummary {
            instance: inst.into(),
            records: chain.len(),
            last_seq,
            checkpoints: list.len(),
            sealed_through,
        });
    }
    let known: BTreeSet<&str> = chains.iter().map(|c| c.instance.as_str()).collect();
    for e in exported {
        if !known.contains(e.instance.as_str()) {
            findings.push(Finding::ChainMissing {
                instance: e.instance.clone(),
            });
        }
    }
    findings.dedup();
    Report { chains, findings }
}
