//! Administrative operations on the trail, shared by the CLI and `serve`:
//! verify, export checkpoints, purge (recorded in the chain).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use time::OffsetDateTime;

use super::checkpoint::{self, Checkpoint, Signer};
use super::purge::{self, PurgeReport};
use super::verify::{self, Anchor, Finding, Report};
use super::{AuditConfig, AuditError, Auditor, Pseudonymiser, Store};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("cannot read exported checkpoints {path}")]
    ExportIo {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("exported checkpoints {path}, line {line}: not a checkpoint")]
    ExportLine {
        path: String,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Key(#[from] super::pseudonym::KeyError),
}

impl From<super::StoreError> for AdminError {
    fn from(e: super::StoreError) -> Self {
        AdminError::Audit(AuditError::Store(e))
    }
}

impl From<checkpoint::SigningKeyError> for AdminError {
    fn from(e: checkpoint::SigningKeyError) -> Self {
        AdminError::Audit(AuditError::SigningKey(e))
    }
}

/// The verification key: `explicit`, else `audit.verify_key`, else the
/// public half of `audit.signing_key`.
pub fn public_key(cfg: &AuditConfig, explicit: Option<&Path>) -> Result<Vec<u8>, AdminError> {
    if let Some(p) = explicit.or(cfg.verify_key.as_deref()) {
        return Ok(checkpoint::read_public_key(p)?);
    }
    Ok(Signer::from_file(&cfg.signing_key)?.public_key())
}

/// Reads exported checkpoints (JSON lines, as written by [`export`]).
pub fn read_export(path: &Path) -> Result<Vec<Checkpoint>, AdminError> {
    let shown = || path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| AdminError::ExportIo {
        path: shown(),
        source,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|source| AdminError::ExportLine {
                path: shown(),
                line: i + 1,
                source,
            })
        })
        .collect()
}

/// Checkpoints as JSON lines, for safekeeping outside the database.
pub async fn export(store: &Store) -> Result<String, AdminError> {
    let mut out = String::new();
    for c in store.checkpoints().await? {
        out.push_str(&serde_json::to_string(&c).unwrap_or_default());
        out.push('\n');
    }
    Ok(out)
}

pub async fn verify(
    store: &Store,
    cfg: &AuditConfig,
    exported: Option<&Path>,
    key: Option<&Path>,
) -> Result<Report, AdminError> {
    verify_paged(store, cfg, exported, key, VERIFY_PAGE).await
}

/// [`verify`], walking the trail `page` rows at a time (the result does not
/// depend on `page`; the tests check that it does not).
pub async fn verify_paged(
    store: &Store,
    cfg: &AuditConfig,
    exported: Option<&Path>,
    key: Option<&Path>,
    page: i64,
) -> Result<Report, AdminError> {
    let exported = match exported {
        Some(p) => read_export(p)?,
        None => Vec::new(),
    };
    let public = public_key(cfg, key)?;
    verify_run(store, &public, &exported, &BTreeMap::new(), page.max(1)).await
}

/// `audit verify --state`: verifies only what each chain appended after
/// the head a previous run witnessed (`anchors`, kept by the FG outside the
/// database), after checking that head is still there unchanged; chains the
/// anchors do not know are verified from genesis. Reads the records and
/// checkpoints after the anchors only, so its cost is the growth since.
pub async fn verify_from(
    store: &Store,
    cfg: &AuditConfig,
    key: Option<&Path>,
    anchors: &BTreeMap<String, Anchor>,
) -> Result<Report, AdminError> {
    let public = public_key(cfg, key)?;
    let mut report = verify_run(store, &public, &[], anchors, VERIFY_PAGE).await?;
    let mut changed = witnessed_heads(store, anchors).await?;
    changed.append(&mut report.findings);
    report.findings = changed;
    Ok(report)
}

/// The walk behind both: the heads, the checkpoints, the heads again; the
/// walk stops at the first heads: what the gateway writes meanwhile is a
/// write in progress, not a finding. A checkpoint and its chain record land
/// in one transaction, after the records it seals. So a checkpoint that
/// seals a position past the first head was written during the run exactly
/// when its chain record is there by the second read: it is left out, and
/// its chain record is not walked. One that seals past the head with nothing
/// after it is a removed tail, and is reported. (Checkpoints of an instance
/// without records are kept: a removed chain must still show.) Checkpoints
/// are read a page at a time; only those past the first head wait for the
/// second read.
async fn verify_run(
    store: &Store,
    public: &[u8],
    exported: &[Checkpoint],
    anchors: &BTreeMap<String, Anchor>,
    page: i64,
) -> Result<Report, AdminError> {
    let heads = store.heads().await?;
    let past = |c: &Checkpoint| c.seq > heads.get(&c.instance).map_or(-1, |h| *h);
    let mut verifier = verify::Verifier::new(exported, public).anchored(anchors.clone());
    let mut held = Vec::new();
    for_each_checkpoint_page(store, anchors, &heads, page, |cks| {
        let (later, now): (Vec<_>, Vec<_>) = cks.into_iter().partition(past);
        verifier.add_checkpoints(&now);
        held.extend(later);
    })
    .await?;
    let heads_after = store.heads().await?;
    // Left out when written during the run: its chain record (past the
    // position it seals) is there by now.
    held.retain(|c| heads_after.get(&c.instance).map_or(-1, |h| *h) <= c.seq);
    verifier.add_checkpoints(&held);
    for (instance, head) in &heads {
        let start = anchors.get(instance).map_or(0, |a| a.seq);
        walk_chain(store, &mut verifier, instance, start, *head, page).await?;
    }
    for _ in 0..verify::SIGNATURE_ROUNDS {
        let need = verifier.unsigned();
        if need.is_empty() {
            break;
        }
        check_signatures(store, &mut verifier, &need, page).await?;
    }
    Ok(verifier.finish())
}

/// Reads the checkpoints `need` names (by instance and number, in order),
/// a page at a time, and has the verifier check their signatures.
async fn check_signatures(
    store: &Store,
    verifier: &mut verify::Verifier<'_>,
    need: &[(String, i64)],
    page: i64,
) -> Result<(), AdminError> {
    // Runs of consecutive numbers: one read per run (usually one per chain).
    let mut runs: Vec<(&str, i64, i64)> = Vec::new();
    for (instance, n) in need {
        match runs.last_mut() {
            Some((i, _, last)) if *i == instance.as_str() && *last + 1 == *n => *last = *n,
            _ => runs.push((instance, *n, *n)),
        }
    }
    for (instance, first, last) in runs {
        let mut after = first - 1;
        while after < last {
            let limit = page.min(last - after);
            let cks = store
                .checkpoints_page((instance, after), true, limit)
                .await?;
            let Some(end) = cks.last().map(|c| c.ck_no) else {
                break;
            };
            let wanted: Vec<Checkpoint> = cks.into_iter().filter(|c| c.ck_no <= last).collect();
            verifier.add_signatures(&wanted);
            after = end;
        }
    }
    Ok(())
}

/// Every checkpoint (no anchors), or those after each anchor's, `page` at
/// a time.
async fn for_each_checkpoint_page(
    store: &Store,
    anchors: &BTreeMap<String, Anchor>,
    heads: &BTreeMap<String, i64>,
    page: i64,
    mut visit: impl FnMut(Vec<Checkpoint>),
) -> Result<(), AdminError> {
    let starts: Vec<(String, i64, bool)> = if anchors.is_empty() {
        vec![(String::new(), 0, false)]
    } else {
        let instances: BTreeSet<&String> = heads.keys().chain(anchors.keys()).collect();
        instances
            .into_iter()
            .map(|i| (i.clone(), anchors.get(i).map_or(0, |a| a.ck_no), true))
            .collect()
    };
    for (mut instance, mut after, one) in starts {
        loop {
            let cks = store
                .checkpoints_page((&instance, after), one, page)
                .await?;
            let full = i64::try_from(cks.len()).is_ok_and(|n| n == page);
            if let Some(last) = cks.last() {
                instance.clone_from(&last.instance);
                after = last.ck_no;
            }
            visit(cks);
            if !full {
                break;
            }
        }
    }
    Ok(())
}

/// Feeds `instance`'s records after `start` up to `head` to the verifier.
async fn walk_chain(
    store: &Store,
    verifier: &mut verify::Verifier<'_>,
    instance: &str,
    start: i64,
    head: i64,
    page: i64,
) -> Result<(), AdminError> {
    super::walk::checked_chain(store, instance, start, head, page, |r| {
        verifier.push_checked(instance, r);
    })
    .await?;
    Ok(())
}

/// Each anchor's record must still be there, with the witnessed hash, and
/// hash to it.
async fn witnessed_heads(
    store: &Store,
    anchors: &BTreeMap<String, Anchor>,
) -> Result<Vec<Finding>, AdminError> {
    let mut out = Vec::new();
    for (instance, a) in anchors.iter().filter(|(_, a)| a.seq > 0) {
        let rows = store.rows_after(Some((instance, a.seq - 1)), 1).await?;
        let intact = rows.first().is_some_and(|r| {
            &r.instance == instance
                && r.seq == a.seq
                && r.hash == a.hash
                && r.compute_hash() == r.hash
        });
        if !intact {
            out.push(Finding::WitnessedHeadChanged {
                instance: instance.clone(),
                seq: a.seq,
            });
        }
    }
    Ok(out)
}

/// Rows per page when `verify` walks the trail: bounds its memory whatever
/// the size of the trail (about 1–2 KiB per row).
const VERIFY_PAGE: i64 = 10_000;

/// Runs the retention purge and records it in the chain of `instance`
/// through `auditor`.
pub async fn purge_and_record(
    store: &Store,
    auditor: &Auditor,
    retention: &BTreeMap<String, u32>,
    default_days: u32,
    now: OffsetDateTime,
) -> Result<PurgeReport, AdminError> {
    let report = purge::purge(store, retention, default_days, now).await?;
    auditor
        .event(
            "purge",
            "retention",
            serde_json::json!({
                "total": report.total,
                "purged_by_overleg": report.purged_by_overleg,
                "cutoff_by_overleg": report.cutoff_by_overleg,
            }),
        )
        .await?;
    Ok(report)
}

/// Starts a short-lived writer for an administrative process (the CLI), on
/// its own chain `<instance>/admin` so it never forks a running gateway's
/// (`/` cannot occur in a configured instance name).
pub async fn admin_auditor(
    store: &Store,
    cfg: &AuditConfig,
    instance: &str,
) -> Result<(Auditor, tokio::task::JoinHandle<()>), AdminError> {
    let pseudo = Pseudonymiser::from_file(&cfg.pseudonym_key)?;
    let signer = Signer::from_file(&cfg.signing_key)?;
    Ok(Auditor::start(
        store.clone(),
        &format!("{instance}/admin"),
        pseudo,
        signer,
        cfg,
    )
    .await?)
}
