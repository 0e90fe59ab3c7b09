//! Tamper evidence on both stores: every mutation class is detected and
//! localized; an untouched trail always verifies.
#![allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "a scenario reads top to bottom (tests are exempt from the 80-line rule); test counts are small"
)]

mod common;

use common::*;
use poortwachter::audit::verify::Finding;
use poortwachter::audit::{Store, admin, record::StoredRow};
use poortwachter::config::Config;

const VERZUIM: &str = "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1001/verzuim";

/// A trail with three signed checkpoints, on a stopped gateway.
struct Trail {
    tmp: tempfile::TempDir,
    cfg: Config,
    store: Store,
    export: std::path::PathBuf,
}

async fn build_trail(store: StoreKind) -> Trail {
    let mut gw = TestGateway::start_with(Options {
        store,
        audit_extra: "checkpoint_interval_ms = 100".into(),
        ..Options::default()
    })
    .await;
    let lp = gw.client("gemeente-groningen");
    for round in 0..3 {
        for _ in 0..8 {
            assert_eq!(lp.get(VERZUIM, "aanpak-verzuim").await.status, 200);
        }
        if round < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(350)).await;
        }
    }
    let config_path = gw.config_path.clone();
    let (tmp, _url) = gw.stop().await;
    let cfg = Config::load(&config_path).unwrap();
    let store = Store::connect(&cfg.audit.store).await.unwrap();
    let export = tmp.path().join("checkpoints.jsonl");
    std::fs::write(&export, admin::export(&store).await.unwrap()).unwrap();
    Trail {
        tmp,
        cfg,
        store,
        export,
    }
}

/// `audit verify` as the CLI runs it, checked against the same walk in pages
/// of 1, 2, 3 and 7 rows (so page boundaries fall on every kind of record
/// and finding) and against verification of all rows held in memory: the
/// report must not depend on how the trail is paged.
async fn verify_checked(
    store: &Store,
    cfg: &poortwachter::audit::AuditConfig,
    exported: Option<&std::path::Path>,
) -> poortwachter::audit::verify::Report {
    let report = admin::verify(store, cfg, exported, None).await.unwrap();
    for page in [1, 2, 3, 7] {
        let paged = admin::verify_paged(store, cfg, exported, None, page)
            .await
            .unwrap();
        assert_eq!(paged.findings, report.findings, "page size {page}");
        assert_eq!(paged.to_string(), report.to_string(), "page size {page}");
    }
    let exported_cks = match exported {
        Some(p) => admin::read_export(p).unwrap(),
        None => Vec::new(),
    };
    let public = admin::public_key(cfg, None).unwrap();
    let in_memory = poortwachter::audit::verify::verify(
        &store.all_rows().await.unwrap(),
        &store.checkpoints().await.unwrap(),
        &exported_cks,
        &public,
    );
    assert_eq!(in_memory.to_string(), report.to_string(), "in memory");
    report
}

impl Trail {
    async fn findings(&self, with_export: bool) -> Vec<Finding> {
        let e = with_export.then_some(self.export.as_path());
        verify_checked(&self.store, &self.cfg.audit, e)
            .await
            .findings
    }
    async fn exec(&self, sql: &str) {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(self.store.pool())
            .await
            .unwrap();
    }
    async fn rows(&self) -> Vec<StoredRow> {
        self.store.all_rows().await.unwrap()
    }
}

async fn untouched_trail_verifies(kind: StoreKind) {
    let t = build_trail(kind).await;
    let report = verify_checked(&t.store, &t.cfg.audit, Some(&t.export)).await;
    assert!(report.ok(), "{report}");
    assert_eq!(report.chains.len(), 1);
    assert!(report.chains[0].checkpoints >= 3, "{report}");
    // The final checkpoint (written at shutdown) seals the whole chain.
    assert_eq!(report.chains[0].sealed_through, report.chains[0].last_seq);
}

#[tokio::test]
async fn sqlite_untouched_trail_verifies() {
    untouched_trail_verifies(StoreKind::Sqlite).await;
}
#[tokio::test]
async fn postgres_untouched_trail_verifies() {
    untouched_trail_verifies(StoreKind::Postgres).await;
}

async fn each_mutation_is_detected(kind: StoreKind) {
    // Edit a column.
    let t = build_trail(kind).await;
    t.exec("UPDATE audit_records SET org = 'wij-groningen' WHERE seq = 5")
        .await;
    assert!(t.findings(false).await.contains(&Finding::Altered {
        instance: "test-1".into(),
        seq: 5
    }));

    // Edit a personal column only, of a request record that shared fields
    // (a checkpoint record's lists are already empty: blanking them would
    // change nothing, and where checkpoints land depends on timing).
    let t = build_trail(kind).await;
    let seq = t
        .rows()
        .await
        .iter()
        .find(|r| r.kind == "request" && r.seq >= 6 && r.fields_shared != "[]")
        .unwrap()
        .seq;
    t.exec(&format!(
        "UPDATE audit_records SET fields_shared = '[]' WHERE seq = {seq}"
    ))
    .await;
    assert!(t.findings(false).await.contains(&Finding::Altered {
        instance: "test-1".into(),
        seq
    }));

    // Delete a record.
    let t = build_trail(kind).await;
    t.exec("DELETE FROM audit_records WHERE seq = 7").await;
    let f = t.findings(false).await;
    assert!(
        f.contains(&Finding::Removed {
            instance: "test-1".into(),
            from: 7,
            to: 7
        }),
        "{f:?}"
    );

    // Delete the newest records (the last checkpoint row still covers them).
    let t = build_trail(kind).await;
    let last = t.rows().await.last().unwrap().seq;
    t.exec(&format!(
        "DELETE FROM audit_records WHERE seq > {}",
        last - 4
    ))
    .await;
    let f = t.findings(false).await;
    assert!(
        f.iter()
            .any(|x| matches!(x, Finding::TailRemoved { from, .. } if *from == last - 3)),
        "{f:?}"
    );

    // Delete the newest records and their checkpoint: only the exported copy tells.
    let t = build_trail(kind).await;
    let last = t.rows().await.last().unwrap().seq;
    t.exec(&format!(
        "DELETE FROM audit_records WHERE seq > {}",
        last - 4
    ))
    .await;
    t.exec(
        "DELETE FROM audit_checkpoints WHERE ck_no = (SELECT MAX(ck_no) FROM audit_checkpoints)",
    )
    .await;
    let f = t.findings(true).await;
    assert!(
        f.iter()
            .any(|x| matches!(x, Finding::ExportedCheckpointMismatch { .. })),
        "{f:?}"
    );
    assert!(
        f.iter().any(|x| matches!(x, Finding::TailRemoved { .. })),
        "{f:?}"
    );

    // Reorder two records.
    let t = build_trail(kind).await;
    t.exec("UPDATE audit_records SET seq = -1 WHERE seq = 3")
        .await;
    t.exec("UPDATE audit_records SET seq = 3 WHERE seq = 4")
        .await;
    t.exec("UPDATE audit_records SET seq = 4 WHERE seq = -1")
        .await;
    let f = t.findings(false).await;
    assert!(
        f.contains(&Finding::Altered {
            instance: "test-1".into(),
            seq: 3
        }),
        "{f:?}"
    );
    assert!(
        f.contains(&Finding::Altered {
            instance: "test-1".into(),
            seq: 4
        }),
        "{f:?}"
    );

    // Insert a record naively at the end.
    let t = build_trail(kind).await;
    let rows = t.rows().await;
    let mut forged = rows[2].clone();
    forged.seq = rows.last().unwrap().seq + 1;
    forged.request_id = "forged".into();
    forged.personal_digest = forged.compute_personal_digest();
    forged.hash = forged.compute_hash();
    t.store
        .insert_batch(&[forged.clone()], &[], None)
        .await
        .unwrap();
    let f = t.findings(false).await;
    assert!(
        f.contains(&Finding::BrokenLink {
            instance: "test-1".into(),
            seq: forged.seq
        }),
        "{f:?}"
    );

    // Insert a record in the middle and recompute the whole chain (the hash is
    // unkeyed): only the signed checkpoints can tell.
    let t = build_trail(kind).await;
    let mut rows = t.rows().await;
    let mut forged = rows[4].clone();
    forged.request_id = "forged".into();
    rows.insert(5, forged);
    let mut prev = poortwachter::audit::record::GENESIS.to_string();
    for (i, r) in rows.iter_mut().enumerate() {
        r.seq = i as i64 + 1;
        r.prev_hash = prev.clone();
        r.personal_digest = r.compute_personal_digest();
        r.hash = r.compute_hash();
        prev = r.hash.clone();
    }
    t.exec("DELETE FROM audit_records").await;
    t.store.insert_batch(&rows, &[], None).await.unwrap();
    let f = t.findings(false).await;
    // The forged record is #6: the first failing checkpoint brackets it, and
    // no checkpoint before it fails.
    let first = f.iter().find_map(|x| match x {
        Finding::CheckpointMismatch { seq, after_seq, .. } => Some((*after_seq, *seq)),
        _ => None,
    });
    let (after, seq) = first.unwrap_or_else(|| panic!("rewrite not detected: {f:?}"));
    assert!(after < 6 && seq >= 6, "{f:?}");

    // Edit a checkpoint.
    let t = build_trail(kind).await;
    t.exec("UPDATE audit_checkpoints SET seq = seq - 1 WHERE ck_no = 2")
        .await;
    let f = t.findings(false).await;
    assert!(
        f.contains(&Finding::CheckpointBadSignature {
            instance: "test-1".into(),
            ck_no: 2
        }),
        "{f:?}"
    );

    // Drop a checkpoint row.
    let t = build_trail(kind).await;
    t.exec("DELETE FROM audit_checkpoints WHERE ck_no = 1")
        .await;
    let f = t.findings(false).await;
    assert!(
        f.contains(&Finding::CheckpointDropped {
            instance: "test-1".into(),
            ck_no: 1
        }),
        "{f:?}"
    );

    // Purged records still verify (a tombstone), but a faked purge does not.
    let t = build_trail(kind).await;
    let retention = std::collections::BTreeMap::from([("aoj-vo-noorderlicht".to_string(), 1u32)]);
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(2);
    let r = poortwachter::audit::purge::purge(&t.store, &retention, 365, later)
        .await
        .unwrap();
    assert_eq!(r.total, 24);
    assert!(t.findings(true).await.is_empty());
    assert!(
        t.rows()
            .await
            .iter()
            .filter(|r| r.kind == "request")
            .all(|r| r.pupil.is_none())
    );
    // A purged request record (where checkpoints land depends on timing: on
    // a loaded machine seq 2 can be a checkpoint, which no purge touches).
    let seq = t
        .rows()
        .await
        .iter()
        .find(|r| r.kind == "request" && r.purged_at.is_some())
        .unwrap()
        .seq;
    t.exec(&format!(
        "UPDATE audit_records SET purged_at = NULL WHERE seq = {seq}"
    ))
    .await;
    let f = t.findings(false).await;
    assert!(
        f.contains(&Finding::Altered {
            instance: "test-1".into(),
            seq
        }),
        "{f:?}"
    );
}

#[tokio::test]
async fn sqlite_each_mutation_is_detected() {
    Box::pin(each_mutation_is_detected(StoreKind::Sqlite)).await;
}
#[tokio::test]
async fn postgres_each_mutation_is_detected() {
    Box::pin(each_mutation_is_detected(StoreKind::Postgres)).await;
}

async fn a_record_moved_between_chains_is_detected(kind: StoreKind) {
    let mut a = TestGateway::start_with(Options {
        store: kind,
        instance: "gw-a".into(),
        ..Options::default()
    })
    .await;
    let mut b = TestGateway::start_with(Options {
        store: kind,
        instance: "gw-b".into(),
        store_url: Some(a.store_url.clone()),
        signing_key_from: Some(a.tmp.path().join("signing.key")),
        ..Options::default()
    })
    .await;
    let (ca, cb) = (
        a.client("gemeente-groningen"),
        b.client("gemeente-groningen"),
    );
    for _ in 0..5 {
        assert_eq!(ca.get(VERZUIM, "aanpak-verzuim").await.status, 200);
        assert_eq!(cb.get(VERZUIM, "aanpak-verzuim").await.status, 200);
    }
    let cfg = Config::load(&a.config_path).unwrap();
    let (_ta, url) = a.stop().await;
    let (_tb, _) = b.stop().await;
    let store = Store::connect(&url).await.unwrap();
    assert!(verify_checked(&store, &cfg.audit, None).await.ok());
    // Move gw-a's record #3 to the end of gw-b's chain.
    let max_b = store
        .all_rows()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.instance == "gw-b")
        .map(|r| r.seq)
        .max()
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE audit_records SET instance = 'gw-b', seq = {} WHERE instance = 'gw-a' AND seq = 3",
        max_b + 1
    )))
    .execute(store.pool())
    .await
    .unwrap();
    let f = verify_checked(&store, &cfg.audit, None).await.findings;
    assert!(
        f.contains(&Finding::Removed {
            instance: "gw-a".into(),
            from: 3,
            to: 3
        }),
        "{f:?}"
    );
    assert!(
        f.contains(&Finding::Altered {
            instance: "gw-b".into(),
            seq: max_b + 1
        }),
        "{f:?}"
    );
}

#[tokio::test]
async fn sqlite_a_record_moved_between_chains_is_detected() {
    a_record_moved_between_chains_is_detected(StoreKind::Sqlite).await;
}
#[tokio::test]
async fn postgres_a_record_moved_between_chains_is_detected() {
    a_record_moved_between_chains_is_detected(StoreKind::Postgres).await;
}

/// Verification of a live trail never cries wolf (issue 18): `audit verify`
/// in a loop, in small pages, while the gateway serves under load and
/// writes a checkpoint every 100 ms, reports no finding that is only a
/// write in progress. Before the walk was bounded to the heads read at its
/// start, checkpoints written during the walk looked deleted.
async fn verify_during_load_finds_nothing(store: StoreKind) {
    let mut gw = TestGateway::start_with(Options {
        store,
        audit_extra: "checkpoint_interval_ms = 100".into(),
        ..Options::default()
    })
    .await;
    let client = std::sync::Arc::new(gw.client("gemeente-groningen"));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (c, stop) = (client.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = c
                    .get(
                        "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1001/verzuim",
                        "aanpak-verzuim",
                    )
                    .await;
                assert_eq!(r.status, 200);
                n += 1;
            }
            n
        }));
    }
    let cfg = poortwachter::config::Config::load(&gw.config_path).unwrap();
    let s = poortwachter::audit::Store::connect(&gw.store_url)
        .await
        .unwrap();
    let mut runs = 0;
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(4) {
        let report = poortwachter::audit::admin::verify_paged(&s, &cfg.audit, None, None, 7)
            .await
            .unwrap();
        assert!(report.ok(), "run {runs}: {report}");
        runs += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut requests = 0;
    for l in load {
        requests += l.await.unwrap();
    }
    assert!(
        runs >= 3 && requests >= 50,
        "{runs} runs, {requests} requests"
    );
    let checkpoints = s.checkpoints().await.unwrap().len();
    assert!(
        checkpoints >= 5,
        "{checkpoints} checkpoints written during the runs"
    );
}

#[tokio::test]
async fn sqlite_verify_during_load_finds_nothing() {
    verify_during_load_finds_nothing(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_verify_during_load_finds_nothing() {
    verify_during_load_finds_nothing(StoreKind::Postgres).await;
}

/// `audit verify --state` (issue 18 point 4): a run from the heads the last
/// verification witnessed reads only what was appended since, ends where a
/// full verification ends, and still catches a rewrite of the growth or of
/// the witnessed head itself (a rewrite before the head is the full run's
/// job, and the test shows the difference).
async fn incremental_verification_checks_the_growth(kind: StoreKind) {
    let mut gw = TestGateway::start_with(Options {
        store: kind,
        audit_extra: "checkpoint_interval_ms = 100".into(),
        ..Options::default()
    })
    .await;
    let lp = gw.client("gemeente-groningen");
    let traffic = |n| {
        let lp = &lp;
        async move {
            for _ in 0..n {
                assert_eq!(lp.get(VERZUIM, "aanpak-verzuim").await.status, 200);
            }
            tokio::time::sleep(std::time::Duration::from_millis(350)).await;
        }
    };
    traffic(8).await;
    let cfg = Config::load(&gw.config_path).unwrap();
    let s = Store::connect(&gw.store_url).await.unwrap();
    let first = admin::verify(&s, &cfg.audit, None, None).await.unwrap();
    assert!(first.ok(), "{first}");
    let witness = first.witness.clone();
    let head = witness["test-1"].clone();
    assert!(head.ck_no >= 1, "{head:?}");

    traffic(8).await;
    let config_path = gw.config_path.clone();
    let (tmp, _url) = gw.stop().await;
    let inc = admin::verify_from(&s, &cfg.audit, None, &witness)
        .await
        .unwrap();
    assert!(inc.ok(), "{inc}");
    let full = admin::verify(&s, &cfg.audit, None, None).await.unwrap();
    assert!(full.ok(), "{full}");
    // The same end state, reached by reading only the growth.
    assert_eq!(inc.witness, full.witness);
    let grown = full.chains[0].last_seq - head.seq;
    assert_eq!(inc.chains[0].records as i64, grown);
    assert!(grown >= 8 && full.chains[0].records as i64 > grown);
    assert!(inc.witness["test-1"].ck_no > head.ck_no);

    let exec = |sql: String| {
        let s = &s;
        async move {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(s.pool())
                .await
                .unwrap();
        }
    };
    let incremental = || async {
        admin::verify_from(&s, &cfg.audit, None, &witness)
            .await
            .unwrap()
    };
    // A rewrite in the growth, of a request record (where checkpoints land
    // depends on timing), then undone.
    let after = s
        .all_rows()
        .await
        .unwrap()
        .iter()
        .find(|r| r.kind == "request" && r.seq > head.seq + 1)
        .unwrap()
        .seq;
    exec(format!(
        "UPDATE audit_records SET org = 'wij-groningen' WHERE seq = {after}"
    ))
    .await;
    assert!(incremental().await.findings.contains(&Finding::Altered {
        instance: "test-1".into(),
        seq: after
    }));
    exec(format!(
        "UPDATE audit_records SET org = 'gemeente-groningen' WHERE seq = {after}"
    ))
    .await;
    assert!(incremental().await.ok());
    // The witnessed head rewritten, then removed.
    let changed = Finding::WitnessedHeadChanged {
        instance: "test-1".into(),
        seq: head.seq,
    };
    exec(format!(
        "UPDATE audit_records SET reason = 'x' WHERE seq = {}",
        head.seq
    ))
    .await;
    assert!(incremental().await.findings.contains(&changed));
    exec(format!(
        "DELETE FROM audit_records WHERE seq = {}",
        head.seq
    ))
    .await;
    assert!(incremental().await.findings.contains(&changed));
    // A rewrite before the witnessed head is outside an incremental run
    // (it was verified then); the full run reads it.
    let before = head.seq - 3;
    exec(format!(
        "UPDATE audit_records SET org = 'wij-groningen' WHERE seq = {before}"
    ))
    .await;
    let inc = incremental().await;
    assert!(
        !inc.findings
            .iter()
            .any(|f| matches!(f, Finding::Altered { seq, .. } if *seq == before))
    );
    let full = admin::verify(&s, &cfg.audit, None, None).await.unwrap();
    assert!(full.findings.contains(&Finding::Removed {
        instance: "test-1".into(),
        from: head.seq,
        to: head.seq
    }));
    assert!(full.findings.contains(&Finding::Altered {
        instance: "test-1".into(),
        seq: before
    }));

    // The CLI keeps the state file: the first run writes it, the next runs
    // incrementally from it (and a run with findings leaves it alone).
    let state = tmp.path().join("verify-state.json");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_poortwachter"))
            .args(args)
            .output()
            .unwrap()
    };
    let config = config_path.to_str().unwrap();
    let out = run(&[
        "audit",
        "verify",
        "--config",
        config,
        "--state",
        state.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "the trail has findings now");
    assert!(!state.exists(), "no state is written after findings");
}

#[tokio::test]
async fn sqlite_incremental_verification_checks_the_growth() {
    incremental_verification_checks_the_growth(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_incremental_verification_checks_the_growth() {
    incremental_verification_checks_the_growth(StoreKind::Postgres).await;
}

/// The CLI's state file on an untouched trail: written by the first run,
/// used by the second.
#[tokio::test]
async fn verify_state_file_makes_the_next_run_incremental() {
    let t = build_trail(StoreKind::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = t.tmp.path().join("poortwachter.toml");
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_poortwachter"))
            .args(["audit", "verify", "--config", config.to_str().unwrap()])
            .args(["--state", state.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(!String::from_utf8_lossy(&first.stdout).contains("incremental"));
    let witness: std::collections::BTreeMap<String, poortwachter::audit::verify::Anchor> =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert!(witness["test-1"].seq > 20);
    let second = run();
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stdout)
    );
    assert!(String::from_utf8_lossy(&second.stdout).contains("incremental"));
    // The first run's access record is new growth: the second verified it.
    let again: std::collections::BTreeMap<String, poortwachter::audit::verify::Anchor> =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert!(
        again.values().map(|a| a.seq).sum::<i64>() > witness.values().map(|a| a.seq).sum::<i64>()
    );
}
