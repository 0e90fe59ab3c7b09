//! Audit writer throughput (records/s, durable: SQLite WAL synchronous=FULL,
//! PostgreSQL default synchronous_commit=on) and commit latency at a constant
//! 1,000 records/s next to the disk's own fdatasync floor, and the memory of
//! `audit verify` over 300,000 records (paged walk vs. all rows in memory).
//! Run: `cargo bench --bench audit`. `INSERT_ONLY=1` measures the store's
//! batch insert alone; `REGISTER_LOOKUP=1` the per-request register lookup.
//! PostgreSQL: POORTWACHTER_BENCH_PG (default postgres://postgres@127.0.0.1:5432/test).
#![allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a benchmark reads top to bottom; percentiles index by truncated floats"
)]

mod support;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::peak_rss_mib;

use poortwachter::audit::{
    AuditConfig, AuditRecord, Auditor, Outcome, Pseudonymiser, Signer, Store,
};

fn record(i: u64) -> AuditRecord {
    let mut r = AuditRecord::new(
        "bench",
        &format!("req-{i}"),
        "4bf92f3577b34da6a3ce929d0e0e4736",
    );
    r.org = Some("gemeente-groningen".into());
    r.role = Some("leerplicht".into());
    r.grondslag = Some("Leerplichtwet 1969 (art. 16; AVG art. 6(1)(c))".into());
    r.overleg = Some("aoj-vo-noorderlicht".into());
    r.purpose = Some("aanpak-verzuim".into());
    r.bron = Some("las-noorderlicht".into());
    r.resource = Some("/leerlingen/{leerling}/verzuim".into());
    r.pupil = Some(format!("k1:{i:064x}"));
    r.outcome = Outcome::Filtered;
    r.reason = "allowed".into();
    r.rules = vec!["aoj-03".into()];
    r.fields_shared = (0..12)
        .map(|f| format!("verzuim.meldingen[].veld{f}"))
        .collect();
    r.fields_withheld = (0..6).map(|f| format!("leerling.veld{f}")).collect();
    r.status = 200;
    r.upstream_status = Some(200);
    r.duration_us = 850;
    r.policy_version = "9cec6421c20d9911".repeat(4);
    r
}

async fn start(
    url: &str,
    dir: &std::path::Path,
) -> (Auditor, tokio::task::JoinHandle<()>, AuditConfig) {
    Pseudonymiser::generate_file(&dir.join("p.key")).unwrap();
    Signer::generate_file(&dir.join("s.key")).unwrap();
    let cfg = support::audit_config(url, dir);
    let store = Store::connect(url).await.unwrap();
    let (auditor, writer) = Auditor::start(
        store,
        "bench",
        Pseudonymiser::from_file(&cfg.pseudonym_key).unwrap(),
        Signer::from_file(&cfg.signing_key).unwrap(),
        &cfg,
    )
    .await
    .unwrap();
    (auditor, writer, cfg)
}

/// Each committer task builds its records itself, as a request task does
/// (records built up front on the main thread made every free a
/// cross-thread free, which request tasks do not pay in that form).
async fn throughput(auditor: &Auditor, secs: u64, committers: usize) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let n = Arc::new(AtomicU64::new(0));
    let per_task = 60_000 * secs as usize / committers + 1;
    let mut tasks = Vec::new();
    for c in 0..committers {
        let a = auditor.clone();
        let stop = Arc::clone(&stop);
        let n = Arc::clone(&n);
        let base = c as u64 * 1_000_000_000;
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task as u64 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                a.commit(record(base + i)).await.unwrap();
                n.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    n.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64()
}

async fn latency_at_rate(auditor: &Auditor, rate: u64, secs: u64) -> (f64, f64, f64) {
    let mut tasks = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..rate * secs {
        tick.tick().await;
        let a = auditor.clone();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            a.commit(record(u64::MAX / 2 + i)).await.unwrap();
            t.elapsed()
        }));
    }
    let mut v = Vec::new();
    for t in tasks {
        v.push(t.await.unwrap());
    }
    v.sort_unstable();
    let p = |q: f64| v[((v.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    (p(0.5), p(0.99), p(0.999))
}

/// `audit verify` over a trail of at least 300,000 records: the paged walk
/// the CLI uses, then (same run, after it) every row held in memory as
/// before. Peak RSS can only grow, so the paged walk goes first.
async fn verify_memory(label: &str, url: &str, auditor: &Auditor, cfg: &AuditConfig) {
    let store = Store::connect(url).await.unwrap();
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM audit_records")
            .fetch_one(store.pool())
            .await
            .unwrap()
    };
    while count().await < 300_000 {
        one_task(auditor).await;
    }
    auditor.checkpoint().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let n = count().await;
    // For a profiler to attach to the verification alone (`perf record -p`).
    eprintln!("{label}: {n} records written; verification starts");
    let base = peak_rss_mib();
    let t = Instant::now();
    let paged = poortwachter::audit::admin::verify(&store, cfg, None, None)
        .await
        .unwrap();
    let paged_s = t.elapsed().as_secs_f64();
    let paged_peak = peak_rss_mib();
    assert!(paged.ok(), "{paged}");
    // The walk before `audit::walk`: pages of the pool's `Any` rows, each
    // row copied into a `StoredRow`, then the same verifier.
    let t = Instant::now();
    let cks = store.checkpoints().await.unwrap();
    let public = poortwachter::audit::admin::public_key(cfg, None).unwrap();
    let mut v = poortwachter::audit::verify::Verifier::new(&[], &public);
    v.add_checkpoints(&cks);
    let mut after = None;
    loop {
        let rows = store
            .rows_after(
                after
                    .as_ref()
                    .map(|(i, s): &(String, i64)| (i.as_str(), *s)),
                10_000,
            )
            .await
            .unwrap();
        for r in &rows {
            v.push(r);
        }
        match rows.last() {
            Some(r) if rows.len() == 10_000 => after = Some((r.instance.clone(), r.seq)),
            _ => break,
        }
    }
    let any = v.finish();
    let any_s = t.elapsed().as_secs_f64();
    assert!(any.ok() && any.witness == paged.witness);
    let any_peak = peak_rss_mib();
    println!(
        "{label:<36} verify {n} records: {paged_s:.2} s ({:.0} records/s), peak RSS +{:.0} MiB; through the pool's Any rows (before) {any_s:.2} s ({:.0} records/s), peak RSS +{:.0} MiB; ratio {:.1}x",
        n as f64 / paged_s,
        (paged_peak - base).max(0.0),
        n as f64 / any_s,
        (any_peak - base).max(0.0),
        any_s / paged_s
    );
    // Incremental (`audit verify --state`): 10% growth after the witnessed
    // heads, verified from them, against a full run over the grown trail.
    while count().await < n + 30_000 {
        one_task(auditor).await;
    }
    auditor.checkpoint().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown = count().await;
    let t = Instant::now();
    let inc = poortwachter::audit::admin::verify_from(&store, cfg, None, &paged.witness)
        .await
        .unwrap();
    let inc_s = t.elapsed().as_secs_f64();
    assert!(inc.ok(), "{inc}");
    let t = Instant::now();
    let full = poortwachter::audit::admin::verify(&store, cfg, None, None)
        .await
        .unwrap();
    let full_s = t.elapsed().as_secs_f64();
    assert_eq!(inc.witness, full.witness);
    let read: usize = inc.chains.iter().map(|c| c.records).sum();
    println!(
        "{label:<36} verify --state after +{} records: incremental {inc_s:.2} s ({read} records read); full {full_s:.1} s ({grown} records)",
        grown - n
    );
}

/// Checkpoint signatures, the cost of a full verification that grows with
/// the number of checkpoints (up to a million a year): 20,000 signed
/// checkpoints checked one by one, then by `verify::signatures_valid` on
/// every core, same run.
fn checkpoint_signatures(label: &str, cfg: &AuditConfig) {
    let signer = Signer::from_file(&cfg.signing_key).unwrap();
    let public = signer.public_key();
    let hash = "ab".repeat(32);
    let cks: Vec<_> = (1..=20_000)
        .map(|n| signer.sign("bench", n, n * 100, &hash, "2026-12-03T12:00:00Z"))
        .collect();
    let t = Instant::now();
    let one = cks.iter().filter(|c| c.verify(&public)).count();
    let one_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let all = poortwachter::audit::verify::signatures_valid(&cks, &public);
    let all_s = t.elapsed().as_secs_f64();
    assert_eq!(one, cks.len());
    assert!(all.iter().all(|ok| *ok) && all.len() == cks.len());
    println!(
        "{label:<36} {} checkpoint signatures: one core {one_s:.2} s ({:.0} µs each); every core {all_s:.2} s; ratio {:.1}x",
        cks.len(),
        one_s * 1e6 / cks.len() as f64,
        one_s / all_s
    );
}

/// `audit verify` of a chain with many checkpoints (`BENCH_PHASE=checkpoints`,
/// `CHECKPOINTS=N`, default 100,000; a year of a busy chain has up to a
/// million): each checkpoint seals three records, all generated with valid
/// hashes and signatures and inserted directly. Prints the verification's
/// time and its peak RSS growth, then (same process, after it) what holding
/// every checkpoint row costs, which the verifier did before (twice).
async fn checkpoint_heavy(label: &str, url: &str, cfg: &AuditConfig) {
    let n: i64 = std::env::var("CHECKPOINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let store = Store::connect(url).await.unwrap();
    let signer = Signer::from_file(&cfg.signing_key).unwrap();
    let mut prev = poortwachter::audit::record::GENESIS.to_string();
    let (mut seq, mut rows, mut cks) = (0, Vec::new(), Vec::new());
    for ck_no in 1..=n {
        for _ in 0..3 {
            seq += 1;
            let mut r = record(seq as u64);
            r.instance = "heavy".into();
            let row = poortwachter::audit::StoredRow::from_owned(r, seq, &prev);
            prev.clone_from(&row.hash);
            rows.push(row);
        }
        cks.push(signer.sign("heavy", ck_no, seq, &prev, "2026-12-03T12:00:00.000000Z"));
        seq += 1;
        let mut r = AuditRecord::new("heavy", &format!("ck-{ck_no}"), "t");
        r.kind = "checkpoint";
        r.detail = format!("{{\"ck_no\":{ck_no}}}");
        let row = poortwachter::audit::StoredRow::from_owned(r, seq, &prev);
        prev.clone_from(&row.hash);
        rows.push(row);
        if cks.len() == 2_000 || ck_no == n {
            store.insert_batch(&rows, &[], None).await.unwrap();
            insert_checkpoints(&store, &cks).await;
            rows.clear();
            cks.clear();
        }
    }
    drop((rows, cks));
    // Peak RSS from here on (Linux: 5 > clear_refs resets VmHWM).
    let reset = || std::fs::write("/proc/self/clear_refs", "5").unwrap();
    reset();
    let base = peak_rss_mib();
    let t = Instant::now();
    let report = poortwachter::audit::admin::verify(&store, cfg, None, None)
        .await
        .unwrap();
    let verify_s = t.elapsed().as_secs_f64();
    assert!(report.ok(), "{report}");
    let verify_mib = peak_rss_mib() - base;
    reset();
    let base = peak_rss_mib();
    let rows = store.checkpoints().await.unwrap();
    let rows_mib = peak_rss_mib() - base;
    assert_eq!(i64::try_from(rows.len()).unwrap(), n);
    println!(
        "{label:<36} verify {seq} records with {n} checkpoints: {verify_s:.2} s, peak RSS +{verify_mib:.0} MiB; every checkpoint row held (as before): +{rows_mib:.0} MiB"
    );
}

async fn insert_checkpoints(store: &Store, cks: &[poortwachter::audit::checkpoint::Checkpoint]) {
    let mut tx = store.pool().begin().await.unwrap();
    for c in cks {
        poortwachter::audit::store::insert_checkpoint(&mut tx, c)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

/// The disk's own floor, measured in the same run: one 8 KiB overwrite plus
/// `fdatasync` at 1,000/s on the file system the SQLite store uses (p50, p99,
/// p99.9 of the sync alone, ms). No durable commit can be faster than this.
async fn disk_floor(dir: &std::path::Path, rate: u64, secs: u64) -> (f64, f64, f64) {
    use std::os::unix::fs::FileExt;
    let path = dir.join("fdatasync.probe");
    let file = std::fs::File::create(&path).unwrap();
    file.write_at(&[0u8; 8192], 0).unwrap();
    file.sync_all().unwrap();
    let file = Arc::new(file);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    let mut v = Vec::new();
    for _ in 0..rate * secs {
        tick.tick().await;
        let f = Arc::clone(&file);
        v.push(
            tokio::task::spawn_blocking(move || {
                f.write_at(&[1u8; 8192], 0).unwrap();
                let t = Instant::now();
                f.sync_data().unwrap();
                t.elapsed()
            })
            .await
            .unwrap(),
        );
    }
    std::fs::remove_file(path).unwrap();
    v.sort_unstable();
    let p = |q: f64| v[((v.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    (p(0.5), p(0.99), p(0.999))
}

/// `REGISTER_LOOKUP=1`: the case-binding lookup every request makes (one
/// indexed SELECT), on a store holding 10,000 registrations: latency one at a
/// time, and throughput from 64 concurrent tasks.
async fn register_lookup(label: &str, url: &str) {
    let store = Store::connect(url).await.unwrap();
    let mut tx = store.pool().begin().await.unwrap();
    for i in 0..10_000 {
        sqlx::query("INSERT INTO case_registrations (id, overleg, subject, reference, begins_at, ends_at, registered_by, registered_role, registered_at) VALUES ($1,'o',$2,'r','2020-01-01T00:00:00.000000Z',NULL,'x','x','2020-01-01T00:00:00.000000Z')")
            .bind(format!("id-{i}"))
            .bind(format!("k1:{i:064}"))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let subject = |i: usize| vec![format!("k1:{:064}", i % 10_000)];
    let mut v = Vec::with_capacity(2_000);
    for i in 0..2_000 {
        let t = Instant::now();
        let s = poortwachter::registers::status_of(&store, &subject(i * 7), "o")
            .await
            .unwrap();
        v.push(t.elapsed());
        assert!(s.registration.is_some());
    }
    v.sort();
    let pct = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1e3;
    println!(
        "{label:<36} register lookup, one at a time: p50 {:.3} ms, p99 {:.3} ms",
        pct(0.5),
        pct(0.99)
    );
    let t = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..200 {
                poortwachter::registers::status_of(
                    &store,
                    &[format!("k1:{:064}", (k * 200 + i) % 10_000)],
                    "o",
                )
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!(
        "{label:<36} register lookup, 64 tasks: {:.0} lookups/s",
        12_800.0 / t.elapsed().as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let pg_admin = std::env::var("POORTWACHTER_BENCH_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let tmp = tempfile::tempdir().unwrap();
    // A fresh PostgreSQL database for the run.
    sqlx::any::install_default_drivers();
    let name = format!("pw_bench_{}", std::process::id());
    {
        use sqlx::{Connection, Executor};
        let mut c = sqlx::AnyConnection::connect(&pg_admin).await.unwrap();
        c.execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .await
        .unwrap();
        c.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap();
    }
    let pg_url = format!("{}/{name}", pg_admin.rsplit_once('/').unwrap().0);
    let stores = [
        (
            "SQLite (WAL, synchronous=FULL)",
            format!("sqlite://{}/audit.db", tmp.path().display()),
            tmp.path().join("sqlite"),
        ),
        (
            "PostgreSQL (synchronous_commit=on)",
            pg_url,
            tmp.path().join("pg"),
        ),
    ];
    // `BENCH_STORE=sqlite|postgres` and `BENCH_PHASE=latency|tasks|one|verify`
    // narrow a run down (for profiling one phase).
    let only_store = std::env::var("BENCH_STORE").ok();
    let phase = std::env::var("BENCH_PHASE").ok();
    let runs = |p: &str| phase.as_deref().is_none_or(|x| x == p);
    for (label, url, dir) in stores {
        if only_store
            .as_deref()
            .is_some_and(|s| !label.to_lowercase().starts_with(s))
        {
            continue;
        }
        std::fs::create_dir_all(&dir).unwrap();
        if std::env::var("REGISTER_LOOKUP").is_ok() {
            register_lookup(label, &url).await;
            continue;
        }
        if std::env::var("INSERT_ONLY").is_ok() {
            let store = Store::connect(&url).await.unwrap();
            let mut prev = poortwachter::audit::record::GENESIS.to_string();
            let t = Instant::now();
            let mut seq = 0;
            let mut ins = Duration::ZERO;
            while t.elapsed() < Duration::from_secs(5) {
                let mut rows = Vec::new();
                for _ in 0..512 {
                    seq += 1;
                    let mut r = record(seq as u64);
                    r.instance = "io".into();
                    let row = poortwachter::audit::StoredRow::from_owned(r, seq, &prev);
                    prev = row.hash.clone();
                    rows.push(row);
                }
                let t1 = Instant::now();
                store.insert_batch(&rows, &[], None).await.unwrap();
                ins += t1.elapsed();
            }
            println!(
                "{label}: insert-only {:.0} rows/s, {:.1} µs/row in insert",
                seq as f64 / t.elapsed().as_secs_f64(),
                ins.as_secs_f64() * 1e6 / seq as f64
            );
            continue;
        }
        let (auditor, writer, cfg) = start(&url, &dir).await;
        if phase.as_deref() == Some("checkpoints") {
            checkpoint_heavy(label, &url, &cfg).await;
            continue;
        }
        // Latency first, on a fresh store: after the throughput phase the
        // database is busy flushing and vacuuming for a while.
        if runs("latency") {
            // The floor just before, so both see the same disk weather.
            let (f50, f99, f999) = disk_floor(tmp.path(), 1_000, 5).await;
            println!(
                "{label:<36} disk floor, fdatasync at 1,000/s:     p50 {f50:.2} ms, p99 {f99:.2} ms, p99.9 {f999:.2} ms"
            );
            let (p50, p99, p999) = latency_at_rate(&auditor, 1_000, 5).await;
            println!(
                "{label:<36} commit latency at 1,000 records/s: p50 {p50:.2} ms, p99 {p99:.2} ms, p99.9 {p999:.2} ms (target p99 <= 2 ms; {:.2}x the disk's p99)",
                p99 / f99
            );
        }
        if runs("tasks") {
            let rps = throughput(&auditor, 5, 512).await;
            println!(
                "{label:<36} sustained {rps:>9.0} records/s (512 committer tasks, 5 s; target >= 20,000)"
            );
        }
        if runs("one") {
            let rps = one_task(&auditor).await;
            println!(
                "{label:<36} sustained {rps:>9.0} records/s (one task, 512 commits in flight, 5 s; target >= 20,000)"
            );
        }
        if runs("verify") {
            verify_memory(label, &url, &auditor, &cfg).await;
            checkpoint_signatures(label, &cfg);
        }
        drop(auditor);
        writer.await.unwrap();
    }
    use sqlx::{Connection, Executor};
    let mut c = sqlx::AnyConnection::connect(&pg_admin).await.unwrap();
    c.execute(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .await
    .unwrap();
}

/// The writer's own capacity: one task keeps 512 commits in flight, so the
/// figure is not dominated by waking 512 tasks per transaction on 2 cores.
async fn one_task(auditor: &Auditor) -> f64 {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    let recs: Vec<AuditRecord> = (0..100_000u64).map(record).collect();
    let t = Instant::now();
    let mut inflight: FuturesUnordered<_> = FuturesUnordered::new();
    let mut n = 0u64;
    for r in recs {
        if inflight.len() >= 512 {
            let x: Result<(), poortwachter::audit::AuditError> = inflight.next().await.unwrap();
            x.unwrap();
            n += 1;
        }
        inflight.push(auditor.commit(r));
        if t.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    while let Some(x) = inflight.next().await {
        x.unwrap();
        n += 1;
    }
    n as f64 / t.elapsed().as_secs_f64()
}
