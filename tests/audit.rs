//! The audit trail on both stores: one durable, chained, pseudonymised
//! record per request; fail closed when the store fails or is slow.
#![allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "a scenario reads top to bottom (tests are exempt from the 80-line rule); test counts are small"
)]

mod common;

use common::*;
use poortwachter::audit::record::GENESIS;
use std::time::Duration;

const VERZUIM: &str = "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1001/verzuim";

async fn every_request_has_one_chained_record(store: StoreKind) {
    let mut gw = TestGateway::start_with(Options {
        store,
        ..Options::default()
    })
    .await;
    let lp = gw.client("gemeente-groningen");
    let wij = gw.client("wij-groningen");
    for i in 0..40 {
        let (c, purpose) = if i % 2 == 0 {
            (&lp, "aanpak-verzuim")
        } else {
            (&wij, "afstemming-ondersteuning")
        };
        assert_eq!(c.get(VERZUIM, purpose).await.status, 200);
    }
    let rows = gw.audit_rows().await;
    assert_eq!(rows.len(), 40);
    let mut prev = GENESIS.to_string();
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.seq, i as i64 + 1);
        assert_eq!(r.prev_hash, prev, "chain broken at {}", r.seq);
        assert_eq!(
            r.compute_hash(),
            r.hash,
            "hash does not recompute at {}",
            r.seq
        );
        assert_eq!(r.compute_personal_digest(), r.personal_digest);
        assert_eq!(r.pupil.as_deref(), Some(gw.pseudonym("L1001").as_str()));
        prev = r.hash.clone();
    }
    // A restart on the same store continues the same chain.
    let (_tmp, url) = gw.stop().await;
    let mut gw2 = TestGateway::start_with(Options {
        store,
        store_url: Some(url),
        ..Options::default()
    })
    .await;
    let lp2 = gw2.client("gemeente-groningen");
    assert_eq!(lp2.get(VERZUIM, "aanpak-verzuim").await.status, 200);
    let rows = gw2.audit_rows().await;
    // 40 requests, the checkpoint written at shutdown, the new request.
    let kinds: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds.len(), 42, "{kinds:?}");
    assert_eq!(kinds[40], "checkpoint");
    assert_eq!(kinds[41], "request");
    assert_eq!(rows[41].seq, 42);
    assert_eq!(rows[41].prev_hash, rows[40].hash);
}

#[tokio::test]
async fn sqlite_every_request_has_one_chained_record() {
    every_request_has_one_chained_record(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_every_request_has_one_chained_record() {
    every_request_has_one_chained_record(StoreKind::Postgres).await;
}

async fn concurrent_requests_are_group_committed(store: StoreKind) {
    let mut gw = TestGateway::start_with(Options {
        store,
        ..Options::default()
    })
    .await;
    let issued = gw.pki.client_for("gemeente-groningen");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = gw.client_with(Some(&issued), true);
        tasks.push(tokio::spawn(async move {
            let mut ok = 0;
            for _ in 0..25 {
                if c.get(VERZUIM, "aanpak-verzuim").await.status == 200 {
                    ok += 1;
                }
            }
            ok
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap();
    }
    assert_eq!(ok, 200);
    let rows = gw.audit_rows().await;
    assert_eq!(rows.len(), 200);
    for w in rows.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash);
        assert_eq!(w[1].seq, w[0].seq + 1);
    }
}

#[tokio::test]
async fn sqlite_concurrent_requests_are_group_committed() {
    concurrent_requests_are_group_committed(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_concurrent_requests_are_group_committed() {
    concurrent_requests_are_group_committed(StoreKind::Postgres).await;
}

/// Breaks the store under the running gateway (the table disappears), then
/// checks that every request gets 503 with no pupil data.
async fn store_failure_fails_closed(store: StoreKind) {
    let mut gw = TestGateway::start_with(Options {
        store,
        ..Options::default()
    })
    .await;
    let lp = gw.client("gemeente-groningen");
    assert_eq!(lp.get(VERZUIM, "aanpak-verzuim").await.status, 200);
    let s = poortwachter::audit::Store::connect(&gw.store_url)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE audit_records RENAME TO audit_records_gone")
        .execute(s.pool())
        .await
        .unwrap();
    for _ in 0..5 {
        let r = lp.get(VERZUIM, "aanpak-verzuim").await;
        assert_eq!(r.status, 503);
        assert_eq!(r.problem_type(), "audit-unavailable");
        let body = String::from_utf8_lossy(&r.body);
        assert!(
            !body.contains("Sanne") && !body.contains("verzuim\""),
            "{body}"
        );
        assert_eq!(r.header("x-poortwachter-withheld"), None);
    }
    // Store back: service resumes and the chain continues where it was.
    sqlx::query("ALTER TABLE audit_records_gone RENAME TO audit_records")
        .execute(s.pool())
        .await
        .unwrap();
    assert_eq!(lp.get(VERZUIM, "aanpak-verzuim").await.status, 200);
    // Every request has its record: the five refusals were kept and written
    // as what the clients got (503, nothing shared) once the store was back.
    let rows = gw.audit_rows().await;
    let got: Vec<(i64, &str, &str)> = rows
        .iter()
        .map(|r| (r.status, r.reason.as_str(), r.fields_shared.as_str()))
        .collect();
    assert_eq!(got.len(), 7, "{got:?}");
    assert_eq!(got[0].0, 200);
    for r in &got[1..6] {
        assert_eq!(*r, (503, "audit-unavailable", "[]"));
    }
    assert_eq!(got[6].0, 200);
    for pair in rows.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
}

#[tokio::test]
async fn sqlite_store_failure_fails_closed() {
    store_failure_fails_closed(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_store_failure_fails_closed() {
    store_failure_fails_closed(StoreKind::Postgres).await;
}

#[tokio::test]
async fn postgres_slow_store_misses_the_deadline_and_fails_closed() {
    let mut gw = TestGateway::start_with(Options {
        store: StoreKind::Postgres,
        audit_extra: "commit_timeout_ms = 300".into(),
        ..Options::default()
    })
    .await;
    let lp = gw.client("gemeente-groningen");
    let s = poortwachter::audit::Store::connect(&gw.store_url)
        .await
        .unwrap();
    let tx = lock_table(&s, "audit_records").await;
    // The first record's batch is stuck in its INSERT; the second waits
    // behind it. Both requests miss the deadline: 503, nothing shared.
    for _ in 0..2 {
        let r = lp.get(VERZUIM, "aanpak-verzuim").await;
        assert_eq!(r.status, 503);
        assert_eq!(r.problem_type(), "audit-unavailable");
    }
    tx.rollback().await.unwrap();
    let (_tmp, url) = gw.stop().await;
    let rows = poortwachter::audit::Store::connect(&url)
        .await
        .unwrap()
        .all_rows()
        .await
        .unwrap();
    let requests: Vec<_> = rows.iter().filter(|r| r.kind == "request").collect();
    assert_eq!(requests.len(), 2);
    // The second record reached the writer after its committer gave up: it
    // is written as what happened (503, nothing shared), not as a disclosure.
    // (The first was already in its transaction when the deadline passed:
    // that one transaction is the documented window.)
    let second = requests[1];
    assert_eq!(
        (
            second.outcome.as_str(),
            second.reason.as_str(),
            second.status
        ),
        ("error", "audit-unavailable", 503)
    );
    assert_eq!(second.fields_shared, "[]");
}

/// Backend pids holding an advisory lock in the test's database: the
/// gateway's instance lock, whose session is also the audit writer's.
async fn instance_lock_holders(s: &poortwachter::audit::Store) -> Vec<i32> {
    sqlx::query(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_all(s.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| sqlx::Row::get::<i32, _>(r, 0))
    .collect()
}

/// A batch stuck past the deadline and then failed (its session killed while
/// a table lock held its INSERT): the client was answered 503, and once the
/// store answers again the writer records that refusal (not the disclosure
/// it would have been, and not nothing), with the chain intact.
#[tokio::test]
async fn postgres_a_failed_batch_whose_clients_gave_up_is_recorded_as_their_503() {
    let mut gw = TestGateway::start_with(Options {
        store: StoreKind::Postgres,
        audit_extra: "commit_timeout_ms = 300".into(),
        ..Options::default()
    })
    .await;
    let lp = gw.client("gemeente-groningen");
    assert_eq!(lp.get(VERZUIM, "aanpak-verzuim").await.status, 200);
    let s = poortwachter::audit::Store::connect(&gw.store_url)
        .await
        .unwrap();
    let holders = instance_lock_holders(&s).await;
    assert_eq!(holders.len(), 1);
    let writer_pid = holders[0];
    let tx = lock_table(&s, "audit_records").await;
    let r = lp.get(VERZUIM, "aanpak-verzuim").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.problem_type(), "audit-unavailable");
    // The writer's INSERT is still waiting for the lock: kill its session,
    // then let the store answer again.
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(writer_pid)
        .execute(s.pool())
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(lp.get(VERZUIM, "aanpak-verzuim").await.status, 200);

    let rows = gw.audit_rows().await;
    let requests: Vec<_> = rows.iter().filter(|r| r.kind == "request").collect();
    let outcomes: Vec<(&str, &str, i64, &str)> = requests
        .iter()
        .map(|r| {
            (
                r.outcome.as_str(),
                r.reason.as_str(),
                r.status,
                r.fields_shared.as_str(),
            )
        })
        .collect();
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    assert_eq!(outcomes[1], ("error", "audit-unavailable", 503, "[]"));
    assert_eq!(outcomes[2].2, 200);
    for pair in rows.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1);
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    for r in &rows {
        assert_eq!(r.hash, r.compute_hash(), "#{}", r.seq);
    }
}

/// The writer commits on the session that holds the instance's advisory
/// lock. When that session dies (terminated here, as a restarting server or a
/// firewall cutting the connection would), the batch in flight fails; the
/// writer takes the lock again on a new session, sees the batch is not in the
/// store and writes it once more: the client still gets its answer, the chain
/// has no gap and no duplicate, and exactly one session holds the lock.
#[tokio::test]
async fn postgres_writer_survives_losing_its_lock_session() {
    let mut gw = TestGateway::start_with(Options {
        store: StoreKind::Postgres,
        ..Options::default()
    })
    .await;
    let lp = gw.client("gemeente-groningen");
    assert_eq!(lp.get(VERZUIM, "aanpak-verzuim").await.status, 200);
    let s = poortwachter::audit::Store::connect(&gw.store_url)
        .await
        .unwrap();
    let before = instance_lock_holders(&s).await;
    assert_eq!(before.len(), 1, "one session holds the instance lock");
    let killed: bool = sqlx::Row::get(
        &sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(before[0])
            .fetch_one(s.pool())
            .await
            .unwrap(),
        0,
    );
    assert!(killed);
    for _ in 0..3 {
        assert_eq!(lp.get(VERZUIM, "aanpak-verzuim").await.status, 200);
    }
    let after = instance_lock_holders(&s).await;
    assert_eq!(after.len(), 1, "the lock is held again, once");
    assert_ne!(after[0], before[0]);

    let rows = gw.audit_rows().await;
    let requests: Vec<_> = rows.iter().filter(|r| r.kind == "request").collect();
    assert_eq!(requests.len(), 4, "every answered request has its record");
    for pair in rows.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1);
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
}

/// Two gateway instances write to one store at the same time: two chains,
/// neither forked, no record lost; a second process with the same instance
/// name is refused.
async fn several_instances_share_a_store(store: StoreKind) {
    let mut a = TestGateway::start_with(Options {
        store,
        instance: "gw-a".into(),
        ..Options::default()
    })
    .await;
    let mut b = TestGateway::start_with(Options {
        store,
        instance: "gw-b".into(),
        store_url: Some(a.store_url.clone()),
        ..Options::default()
    })
    .await;
    let ca = a.client("gemeente-groningen");
    let cb = b.client("gemeente-groningen");
    let ta = tokio::spawn(async move {
        for _ in 0..60 {
            assert_eq!(ca.get(VERZUIM, "aanpak-verzuim").await.status, 200);
        }
    });
    let tb = tokio::spawn(async move {
        for _ in 0..60 {
            assert_eq!(cb.get(VERZUIM, "aanpak-verzuim").await.status, 200);
        }
    });
    ta.await.unwrap();
    tb.await.unwrap();

    // Same instance name again: refused, the chain cannot fork.
    let cfg = poortwachter::config::Config::load(&a.config_path).unwrap();
    let listeners = poortwachter::lifecycle::Listeners::bind(&cfg)
        .await
        .unwrap();
    match poortwachter::lifecycle::Gateway::start(&cfg, listeners, std::future::pending()).await {
        Err(e) => {
            // The error and its causes, as the binary prints them.
            let mut text = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                text.push_str(&format!(": {c}"));
                cause = c.source();
            }
            assert!(text.contains("unique server.instance"), "{text}");
        }
        Ok(_) => panic!("a second writer for instance gw-a was accepted"),
    }

    let cfg_a = poortwachter::config::Config::load(&a.config_path).unwrap();
    let (ta, url) = a.stop().await;
    let (_tb, _) = b.stop().await;
    let s = poortwachter::audit::Store::connect(&url).await.unwrap();
    let rows = s.all_rows().await.unwrap();
    for inst in ["gw-a", "gw-b"] {
        let n = rows
            .iter()
            .filter(|r| r.instance == inst && r.kind == "request")
            .count();
        assert_eq!(n, 60, "{inst}");
    }
    let report = poortwachter::audit::admin::verify(
        &s,
        &cfg_a.audit,
        None,
        Some(&ta.path().join("signing.key.pub")),
    )
    .await
    .unwrap();
    // Each gateway signs with its own key in these tests; verify gw-a's chain
    // with gw-a's key and expect only gw-b's checkpoints to fail.
    assert!(report.findings.iter().all(|f| matches!(f, poortwachter::audit::verify::Finding::CheckpointBadSignature { instance, .. } if instance == "gw-b")), "{report}");
    assert_eq!(report.chains.len(), 2);
}

#[tokio::test]
async fn sqlite_several_instances_share_a_store() {
    several_instances_share_a_store(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_several_instances_share_a_store() {
    several_instances_share_a_store(StoreKind::Postgres).await;
}

/// A client that gives up mid-request (the bron is slow) leaves a complete
/// record: the request runs on in its own task and is recorded as it ended.
#[tokio::test]
async fn a_client_disconnect_mid_request_leaves_a_complete_record() {
    let upstream = spawn_upstream(std::sync::Arc::new(|_, _, _| {
        (
            200,
            "application/json",
            br#"{"leerling":{"voornaam":"Sanne"}}"#.to_vec(),
            std::time::Duration::from_millis(400),
        )
    }))
    .await;
    let mut gw = TestGateway::start_with(Options::with_bron_url(
        "las-noorderlicht",
        format!("http://{upstream}"),
    ))
    .await;
    let issued = gw.pki.client_for("gemeente-groningen");
    for _ in 0..5 {
        let c = gw.client_with(Some(&issued), false);
        let r = tokio::time::timeout(
            std::time::Duration::from_millis(100),
            c.get(VERZUIM, "aanpak-verzuim"),
        )
        .await;
        assert!(r.is_err(), "the client should have given up");
        drop(c);
    }
    // Each request ends about 400 ms after it started; wait for the five
    // records (polling, so a loaded machine does not fail the test; a
    // missing record still does, after 10 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut rows = gw.audit_rows().await;
    while rows.len() < 5 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        rows = gw.audit_rows().await;
    }
    assert_eq!(rows.len(), 5);
    for r in &rows {
        assert_eq!(r.upstream_status, Some(200));
        assert_eq!(r.outcome, "allowed");
        assert_eq!(r.compute_hash(), r.hash);
    }
}

/// The lifecycle runs the retention purge on its schedule (first at
/// start), records it in the gateway's own chain, and still shuts down
/// cleanly: the scheduler holds an audit handle, which `Running::stop`
/// releases so the writer can seal the chain.
#[tokio::test]
async fn the_purge_scheduler_runs_at_start_and_stops_with_the_gateway() {
    let gw = TestGateway::start_with(Options {
        audit_extra: "purge_interval_hours = 24".into(),
        ..Options::default()
    })
    .await;
    let mut purges = 0;
    for _ in 0..50 {
        purges = gw
            .audit_rows()
            .await
            .iter()
            .filter(|r| r.kind == "purge")
            .count();
        if purges > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(purges, 1, "one purge at start");
    let started = std::time::Instant::now();
    let (_tmp, url) = gw.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stop did not wait out a timeout"
    );
    let rows = poortwachter::audit::Store::connect(&url)
        .await
        .unwrap()
        .all_rows()
        .await
        .unwrap();
    let last = rows.iter().rfind(|r| r.instance == "test-1").unwrap();
    assert_eq!(
        last.kind, "checkpoint",
        "the writer sealed its chain at stop"
    );
    let purge = rows.iter().find(|r| r.kind == "purge").unwrap();
    assert_eq!(
        purge.instance, "test-1",
        "recorded in the gateway's own chain"
    );
}

/// The verification walk (`audit::walk::checked_chain`), blocks of 3 over
/// a chain of 23 next to another chain: exactly the rows after `after` up
/// to `head`, in order across the readers' blocks, each checked against its
/// own hashes (an edited row is not `own_ok`, a deleted one is simply
/// absent), and each chain's head, on both stores (each through its own
/// driver's connection).
#[tokio::test]
async fn the_verification_walk_reads_one_chain_between_bounds() {
    use poortwachter::audit::record::{AuditRecord, StoredRow};
    use poortwachter::audit::store::Store;
    use poortwachter::audit::verify::HashText;
    async fn chain_of(store: &Store, instance: &str, n: i64) -> Vec<StoredRow> {
        let mut prev = GENESIS.to_owned();
        let mut rows = Vec::new();
        for seq in 1..=n {
            let rec = AuditRecord::new(instance, &format!("r{seq}"), "t");
            let row = StoredRow::from_record(&rec, seq, &prev);
            prev.clone_from(&row.hash);
            rows.push(row);
        }
        store.insert_batch(&rows, &[], None).await.unwrap();
        rows
    }
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}/w.db", dir.path().display());
    for url in [sqlite, fresh_pg_database().await] {
        let store = Store::connect(&url).await.unwrap();
        assert!(store.heads().await.unwrap().is_empty(), "no chain yet");
        let rows = chain_of(&store, "a", 23).await;
        chain_of(&store, "b", 3).await;
        chain_of(&store, "c-2", 5).await;
        let heads: Vec<(String, i64)> = store.heads().await.unwrap().into_iter().collect();
        let want = [("a", 23), ("b", 3), ("c-2", 5)].map(|(i, n)| (i.to_owned(), n));
        assert_eq!(heads, want, "each chain's last position");
        sqlx::query("DELETE FROM audit_records WHERE instance = 'a' AND seq = 10")
            .execute(store.pool())
            .await
            .unwrap();
        sqlx::query("UPDATE audit_records SET reason = 'x' WHERE instance = 'a' AND seq = 14")
            .execute(store.pool())
            .await
            .unwrap();
        // SQLite stores text that is not UTF-8 as given: that row fails
        // its hash like any other edit (verification reads the bytes).
        let not_utf8 = url.starts_with("sqlite");
        if not_utf8 {
            sqlx::query(
                "UPDATE audit_records SET reason = CAST(X'ff00' AS TEXT) WHERE instance = 'a' AND seq = 16",
            )
            .execute(store.pool())
            .await
            .unwrap();
        }
        let mut seen = Vec::new();
        poortwachter::audit::walk::checked_chain(&store, "a", 2, 20, 3, |r| {
            let edited = r.seq == 14 || (not_utf8 && r.seq == 16);
            assert_eq!(r.own_ok, !edited, "row {}", r.seq);
            seen.push((r.seq, r.hash, r.prev_hash));
        })
        .await
        .unwrap();
        let want: Vec<_> = rows[2..20]
            .iter()
            .filter(|r| r.seq != 10)
            .map(|r| (r.seq, HashText::of(&r.hash), HashText::of(&r.prev_hash)))
            .collect();
        assert_eq!(seen, want);
    }
}

/// `review::query::for_each`, which every FG command walks a period with:
/// on both stores (SQLite through the walk's reading thread, PostgreSQL
/// through the pool) it yields exactly the matching records, each as
/// stored, in (time, instance, seq) order across pages, also where records
/// of two chains share a time, and stops when the caller breaks.
#[tokio::test]
async fn the_fg_walk_pages_in_time_order_and_stops_when_asked() {
    use poortwachter::audit::record::{AuditRecord, StoredRow};
    use poortwachter::audit::store::Store;
    use poortwachter::review::query::{Filter, for_each};
    use std::ops::ControlFlow;
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}/q.db", dir.path().display());
    for url in [sqlite, fresh_pg_database().await] {
        let store = Store::connect(&url).await.unwrap();
        let mut all = Vec::new();
        for instance in ["b", "a"] {
            let mut prev = GENESIS.to_owned();
            let mut rows = Vec::new();
            for seq in 1..=9 {
                let mut rec = AuditRecord::new(instance, &format!("r{seq}"), "t");
                // Two records per second: chains a and b share every time.
                rec.time = format!("2026-03-0{}T10:00:00.000000Z", 1 + (seq - 1) / 2);
                rec.overleg = Some(if seq == 5 { "ander" } else { "mazl" }.into());
                rec.fields_shared = vec![format!("veld.{seq}")];
                let row = StoredRow::from_record(&rec, seq, &prev);
                prev.clone_from(&row.hash);
                rows.push(row);
            }
            store.insert_batch(&rows, &[], None).await.unwrap();
            all.extend(rows);
        }
        let filter = Filter {
            from: Some("2026-03-02T00:00:00.000000Z".into()),
            to: Some("2026-03-05T00:00:00.000000Z".into()),
            overleg: Some("mazl".into()),
            ..Default::default()
        };
        let mut want: Vec<StoredRow> = all
            .into_iter()
            .filter(|r| {
                r.overleg.as_deref() == Some("mazl")
                    && r.time.as_str() >= "2026-03-02"
                    && r.time.as_str() < "2026-03-05"
            })
            .collect();
        want.sort_by(|x, y| (&x.time, &x.instance, x.seq).cmp(&(&y.time, &y.instance, y.seq)));
        assert_eq!(want.len(), 10, "{url}");
        for page in [1, 2, 3, 100] {
            let mut seen = Vec::new();
            for_each(&store, &filter, page, |r| {
                seen.push(r.clone());
                ControlFlow::Continue(())
            })
            .await
            .unwrap();
            assert_eq!(seen, want, "{url}, pages of {page}");
            let mut stopped = 0;
            for_each(&store, &filter, page, |_| {
                stopped += 1;
                if stopped == 3 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .await
            .unwrap();
            assert_eq!(stopped, 3, "{url}, pages of {page}");
        }
    }
}

/// The audit writer's SQLite connection (`audit::store::WriteConnection`,
/// rusqlite, one hand-off per batch): a batch that cannot get the write lock
/// within its bound fails definitely (nothing landed, busy); a batch given up
/// on while it waits (its future and connection dropped) never commits,
/// even when the lock comes free later; a batch with a register change and
/// a checkpoint lands whole, and the aggregates agree with the records.
#[tokio::test]
async fn sqlite_writer_batches_land_whole_or_not_at_all() {
    use poortwachter::audit::Checkpoint;
    use poortwachter::audit::record::{AuditRecord, StoredRow};
    use poortwachter::audit::store::{Batch, Statement, Store};
    fn rows(instance: &str, n: i64) -> Vec<std::sync::Arc<StoredRow>> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let rec = AuditRecord::new(instance, &format!("r{seq}"), "t");
                let row = StoredRow::from_record(&rec, seq, &prev);
                prev.clone_from(&row.hash);
                std::sync::Arc::new(row)
            })
            .collect()
    }
    async fn count(store: &Store, instance: &str) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_records WHERE instance = $1")
            .bind(instance)
            .fetch_one(store.pool())
            .await
            .unwrap()
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let store = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    // Another process holds the write lock.
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();

    let mut conn = store
        .write_connection(Duration::from_millis(200), 8)
        .await
        .unwrap();
    let batch = |rows| Batch {
        rows,
        sides: Vec::new(),
        checkpoints: Vec::new(),
    };
    let e = conn.insert(batch(rows("busy", 3))).await.unwrap_err();
    assert!(e.is_definite() && e.is_busy(), "{e}");

    // Given up on while it waits for the lock (its bound is long).
    let mut conn = store
        .write_connection(Duration::from_secs(30), 8)
        .await
        .unwrap();
    let waiting = tokio::time::timeout(
        Duration::from_millis(300),
        conn.insert(batch(rows("abandoned", 3))),
    )
    .await;
    assert!(waiting.is_err(), "the batch cannot have finished");
    drop(conn);
    tokio::time::sleep(Duration::from_millis(100)).await;
    holder.execute_batch("COMMIT").unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&store, "busy").await, 0);
    assert_eq!(count(&store, "abandoned").await, 0);

    // A whole batch: records, a register change binding `$n` by name (one
    // used twice), a checkpoint.
    let mut conn = store
        .write_connection(Duration::from_secs(5), 8)
        .await
        .unwrap();
    let landed = rows("whole", 4);
    let last = landed.last().unwrap();
    let ck = Checkpoint {
        instance: "whole".into(),
        ck_no: 1,
        seq: last.seq,
        hash: last.hash.clone(),
        time: last.time.clone(),
        key_id: "k".into(),
        signature: "s".into(),
    };
    conn.insert(Batch {
        rows: landed,
        sides: vec![Statement {
            sql: "INSERT INTO case_registrations (id, overleg, subject, reference, begins_at, ends_at, registered_by, registered_role, registered_at, informed_at, informed_how) VALUES ($1,$2,$3,$4,$5,NULL,$6,$6,$5,NULL,NULL)",
            binds: ["reg-1", "o", "k1:ab", "ref", "2026-12-04T00:00:00.000000Z", "x"]
                .map(|v| Some(v.to_owned()))
                .to_vec(),
        }],
        checkpoints: vec![ck],
    })
    .await
    .unwrap();
    assert_eq!(count(&store, "whole").await, 4);
    let (registered_by, registered_role): (String, String) = sqlx::query_as(
        "SELECT registered_by, registered_role FROM case_registrations WHERE id = 'reg-1'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        (registered_by.as_str(), registered_role.as_str()),
        ("x", "x")
    );
    assert_eq!(store.last_checkpoint("whole").await.unwrap(), Some((1, 5)));
    let mut check = store.pool().acquire().await.unwrap();
    let stored = poortwachter::audit::aggregate::stored(&mut check)
        .await
        .unwrap();
    let rows_now = store.all_rows().await.unwrap();
    assert_eq!(stored, poortwachter::audit::aggregate::sums_of(&rows_now));
}
