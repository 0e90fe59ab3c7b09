//! `audit inzage` over a large trail: generates a SQLite store with
//! 10 million request records (200,000 pupils, in large multi-row
//! transactions generated inside SQLite), then times the art. 15 report for
//! one pupil (query through the `subject` index + rendering to HTML), first
//! at 1 million records and then at 10 million, side by side in one run.
//! The store is deleted afterwards.
//!
//! Run: `cargo bench --bench inzage`. `INZAGE_RECORDS` changes the final size.
//!
//! `REPORTS=1` instead generates `INZAGE_RECORDS` records (default here
//! 1,000,000), builds their aggregates (as `audit aggregates --recompute`),
//! and times the DPIA report for the year from the aggregates and by
//! walking the records, side by side, checking they are identical. With
//! `WHOLE=1` also a CSV export paged and both with every record held in
//! memory (as they were before), with the peak RSS each adds.
#![allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a benchmark reads top to bottom; percentiles index by truncated floats"
)]

mod support;
use std::path::Path;
use std::time::{Duration, Instant};
use support::peak_rss_mib;

use poortwachter::audit::{Pseudonymiser, Store};
use poortwachter::review::inzage;
use sqlx::Executor;

const PUPILS: i64 = 200_000;
/// Rows per generated transaction.
const CHUNK: i64 = 500_000;
/// Records of the pupil whose report is timed, spread over the whole trail.
const TARGET_RECORDS: i64 = 60;

const INSERT: &str = r#"
WITH RECURSIVE s(n) AS (SELECT $1 UNION ALL SELECT n + 1 FROM s WHERE n < $2)
INSERT INTO audit_records (instance, seq, kind, time, request_id, trace_id, org, cert_fingerprint, role, grondslag, overleg, purpose, bron, resource, subject, outcome, reason, side, rules, fields_shared, fields_withheld, status, upstream_status, duration_us, policy_version, detail, personal_digest, purged_at, prev_hash, hash)
SELECT 'bench-1', n, 'request',
  strftime('%Y-%m-%dT%H:%M:%S', '2026-01-01', '+' || (n / 4) || ' seconds') || '.000000Z',
  printf('%08x-0000-4000-8000-%012x', n % 4294967295, n), printf('%032x', n * 2654435761),
  CASE n % 3 WHEN 0 THEN 'gemeente-groningen' WHEN 1 THEN 'wij-groningen' ELSE 'ggd-groningen' END,
  printf('%064x', n % 977),
  CASE n % 3 WHEN 0 THEN 'leerplicht' WHEN 1 THEN 'jeugdwet' ELSE 'jgz' END,
  'Leerplichtwet 1969 (art. 16, 18 en 21; AVG art. 6(1)(c))', 'aoj-vo-noorderlicht', 'aanpak-verzuim',
  'las-noorderlicht', '/leerlingen/{leerling}/verzuim',
  CASE WHEN n % $3 = 0 THEN $4 ELSE printf('k1:%064x', (n * 7919) % $5) END,
  CASE n % 10 WHEN 0 THEN 'denied' WHEN 1 THEN 'filtered' ELSE 'allowed' END,
  CASE n % 10 WHEN 0 THEN 'no-rule' ELSE 'allowed' END, NULL,
  '["aoj-02"]',
  CASE n % 10 WHEN 0 THEN '[]' ELSE '["verzuim.geoorloofd_uren","verzuim.ongeoorloofd_uren","verzuim.ziekmeldingen_aantal","leerling.voornaam","leerling.achternaam"]' END,
  '["leerling.bsn"]', 200, 200, 850 + n % 300, printf('%064x', 7), '{}',
  printf('%064x', n * 31), NULL, printf('%064x', n - 1), printf('%064x', n)
FROM s
"#;

async fn grow(store: &Store, from: i64, to: i64, every: i64, target: &str) {
    let mut conn = store.pool().acquire().await.unwrap();
    conn.execute("PRAGMA synchronous=OFF").await.unwrap();
    conn.execute("PRAGMA cache_size=-1048576").await.unwrap();
    let mut n = from;
    while n <= to {
        let end = (n + CHUNK - 1).min(to);
        sqlx::query(INSERT)
            .bind(n)
            .bind(end)
            .bind(every)
            .bind(target)
            .bind(PUPILS)
            .execute(&mut *conn)
            .await
            .unwrap();
        n = end + 1;
    }
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        .await
        .unwrap();
}

async fn time_inzage(url: &str, pseudo: &Pseudonymiser, expect: usize) -> (Duration, Duration) {
    let set =
        poortwachter::policy::load_dir(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies")))
            .unwrap();
    // A fresh pool, as a CLI run would open it.
    let store = Store::connect(url).await.unwrap();
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let report = inzage::build(
            &store,
            &set,
            pseudo,
            "L1001",
            inzage::Options {
                include_denied: true,
            },
        )
        .await
        .unwrap();
        let html = report.html();
        times.push(t.elapsed());
        assert_eq!(report.disclosures.len() + report.denied.len(), expect);
        assert!(html.len() > 1000);
    }
    let first = times[0];
    times.sort();
    (first, times[times.len() / 2])
}

/// `REPORTS=1`: the DPIA report and a CSV export over the whole generated
/// trail, paged first (peak RSS only grows), then with every record in memory.
async fn reports(total: i64) {
    use poortwachter::review::{export, query, rapport, when};
    use std::ops::ControlFlow;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/reports-bench.db", dir.path().display());
    let store = Store::connect(&url).await.unwrap();
    let t = Instant::now();
    grow(&store, 1, total, total, "k1:none").await;
    println!("generated {total} records in {:.1?}", t.elapsed());
    let set = poortwachter::policy::load_dir(Path::new("policies")).unwrap();
    let from = when::bound("2026-01-01", false).unwrap();
    let to = when::bound("2026-12-31", true).unwrap();
    let th = rapport::Thresholds::default();
    let filter = query::Filter {
        from: Some(from.clone()),
        to: Some(to.clone()),
        kind: Some("request".into()),
        ..Default::default()
    };

    // The generated records have no aggregates yet: build them as
    // `audit aggregates --recompute` does (a walk of every record).
    let t = Instant::now();
    let (sums, walked) = poortwachter::review::aggregates::recomputed(&store)
        .await
        .unwrap();
    poortwachter::review::aggregates::replace(&store, &sums)
        .await
        .unwrap();
    let recompute = t.elapsed();
    println!(
        "aggregates recomputed from {walked} records ({} rows) in {recompute:.1?} ({:.0} records/s)",
        sums.len(),
        walked as f64 / recompute.as_secs_f64()
    );
    drop(sums);

    let base = peak_rss_mib();
    let t = Instant::now();
    let fast = rapport::build_from_aggregates(&store, &set, &from, &to, th)
        .await
        .unwrap()
        .expect("a whole-day period");
    let (rapport_fast, rapport_fast_mib) = (t.elapsed(), peak_rss_mib() - base);
    let t = Instant::now();
    let paged = rapport::build_paged(&store, &set, &from, &to, th, 10_000)
        .await
        .unwrap();
    let (rapport_paged, rapport_paged_mib) = (t.elapsed(), peak_rss_mib() - base);
    let json = |r: &rapport::Rapport| {
        let mut v = serde_json::to_value(r).unwrap();
        v["generated_at"] = serde_json::Value::Null;
        v
    };
    assert_eq!(json(&fast), json(&paged), "aggregates and walk agree");
    println!(
        "rapport for the year over {total} records: from the aggregates {rapport_fast:.2?} (peak RSS +{rapport_fast_mib:.0} MiB, {} aggregate rows read); walking the records {rapport_paged:.1?} (peak RSS +{rapport_paged_mib:.0} MiB); ratio {:.1}x; identical reports",
        fast.records_read,
        rapport_paged.as_secs_f64() / rapport_fast.as_secs_f64().max(1e-9)
    );
    if std::env::var("WHOLE").is_err() {
        return;
    }
    let t = Instant::now();
    let mut bytes = 0usize;
    let mut sink = export::header(export::Format::Csv).len();
    query::for_each(&store, &filter, 10_000, |r| {
        sink += export::line(r, export::Format::Csv, &set).len();
        ControlFlow::Continue(())
    })
    .await
    .unwrap();
    bytes += sink;
    let (export_paged, export_paged_mib) = (t.elapsed(), peak_rss_mib() - base);

    let t = Instant::now();
    let period = query::all(&store, &filter).await.unwrap();
    let whole = rapport::from_rows(&set, &from, &to, &period, &[], th);
    let rapport_whole = t.elapsed();
    assert_eq!(whole.total_requests, paged.total_requests);
    let t = Instant::now();
    let csv = export::render(&period, export::Format::Csv, &set);
    let export_whole = t.elapsed() + rapport_whole;
    assert_eq!(csv.len(), bytes);
    drop((csv, period));
    let whole_mib = peak_rss_mib() - base;
    println!(
        "rapport over {total} records: paged {rapport_paged:.1?} (peak RSS +{rapport_paged_mib:.0} MiB); every record in memory {rapport_whole:.1?}"
    );
    println!(
        "CSV export of {total} records ({:.0} MiB): paged {export_paged:.1?} (peak RSS +{export_paged_mib:.0} MiB, rapport included); in memory (rows read once for both) {export_whole:.1?}; peak RSS in memory +{whole_mib:.0} MiB",
        bytes as f64 / (1u64 << 20) as f64
    );
}

#[tokio::main]
async fn main() {
    if std::env::var("REPORTS").is_ok() {
        let total: i64 = std::env::var("INZAGE_RECORDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000);
        reports(total).await;
        return;
    }
    let total: i64 = std::env::var("INZAGE_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let small = (total / 10).max(1);
    let every = (total / TARGET_RECORDS).max(1);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/inzage-bench.db", dir.path().display());
    Pseudonymiser::generate_file(&dir.path().join("p.key")).unwrap();
    let pseudo = Pseudonymiser::from_file(&dir.path().join("p.key")).unwrap();
    let target = pseudo.pseudonymise("L1001");
    let store = Store::connect(&url).await.unwrap();

    let t = Instant::now();
    grow(&store, 1, small, every, &target).await;
    let gen_small = t.elapsed();
    let expect_small = (small / every) as usize;
    let (first_small, median_small) = time_inzage(&url, &pseudo, expect_small).await;

    let t = Instant::now();
    grow(&store, small + 1, total, every, &target).await;
    let gen_rest = t.elapsed();
    let expect = (total / every) as usize;
    let (first, median) = time_inzage(&url, &pseudo, expect).await;
    let size = std::fs::metadata(dir.path().join("inzage-bench.db")).map_or(0, |m| m.len());
    drop(store);

    println!(
        "generated {small} records in {gen_small:.1?}, {} more in {gen_rest:.1?}; store {:.1} GiB",
        total - small,
        size as f64 / (1u64 << 30) as f64
    );
    println!(
        "inzage (query + HTML) for one pupil, {expect_small} records of it among {small}: first {first_small:.2?}, median of 5 {median_small:.2?}"
    );
    println!(
        "inzage (query + HTML) for one pupil, {expect} records of it among {total}: first {first:.2?}, median of 5 {median:.2?} (target <= 5 s)"
    );
    println!(
        "ratio {total} / {small} records: first {:.2}, median {:.2}",
        first.as_secs_f64() / first_small.as_secs_f64().max(1e-9),
        median.as_secs_f64() / median_small.as_secs_f64().max(1e-9)
    );
    // The temporary directory (and the multi-GB store) is removed here.
    drop(dir);
}
