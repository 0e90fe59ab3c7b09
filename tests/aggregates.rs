//! The aggregates the DPIA report reads (issue 18 point 1), on both stores:
//! after varied traffic through the gateway (allowed, filtered, denied,
//! through a supplier, an emergency disclosure, register changes, dashboard
//! views) the table equals a walk of every record; the report from the
//! aggregates equals the report from the walk; a purge that erases every
//! record's personal columns takes the same out of both; a batch whose
//! commit fails leaves neither its records nor its aggregates; and
//! `audit aggregates --recompute` rebuilds a table that was wrong.
#![allow(
    clippy::too_many_lines,
    reason = "a scenario reads top to bottom (tests are exempt from the 80-line rule)"
)]

mod common;

use std::collections::BTreeMap;

use common::*;
use http::Method;
use poortwachter::audit::Store;
use poortwachter::review::{aggregates, pupil_counts, rapport, when};

const VERZUIM: &str = "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen";

fn verzuim(pupil: &str) -> String {
    format!("{VERZUIM}/{pupil}/verzuim")
}

/// The report as JSON without the moment it was made.
fn comparable(r: &rapport::Rapport) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap();
    v["generated_at"] = serde_json::Value::Null;
    v
}

async fn traffic(gw: &mut TestGateway) {
    let lp = gw.client("gemeente-groningen");
    let wij = gw.client("wij-groningen");
    let ggd = gw.client("ggd-groningen");
    let lev = gw.client("las-leverancier");
    for p in ["L1001", "L1002", "L1003", "L1002"] {
        assert_eq!(lp.get(&verzuim(p), "aanpak-verzuim").await.status, 200);
        assert_eq!(
            wij.get(&verzuim(p), "afstemming-ondersteuning")
                .await
                .status,
            200
        );
    }
    // Denied: no rule, not registered, no purpose.
    let jgz = "/v1/aoj-vo-noorderlicht/jgz-dossier/jeugdigen/L1002/advies";
    assert_eq!(lp.get(jgz, "aanpak-verzuim").await.status, 403);
    assert_eq!(
        lp.get(&verzuim("L7777"), "aanpak-verzuim").await.status,
        403
    );
    let r = ggd
        .request(Method::GET, &verzuim("L1001"), &[], None)
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    // Through the school's supplier, under its mandate.
    let r = lev
        .request(
            Method::GET,
            "/v1/aoj-vo-noorderlicht/leerplicht-register/leerlingen/L1001/zaak",
            &[
                ("x-namens", "00000099000000000101"),
                ("x-doelbinding", "aanpak-verzuim"),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    // An emergency disclosure.
    let r = wij
        .request(
            Method::GET,
            &format!("{VERZUIM}/L1004"),
            &[
                ("x-doelbinding", "spoed-veiligheid"),
                ("x-spoed-reden", "meldcode"),
                ("x-spoed-toelichting", "zorgen over de thuissituatie"),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    // An outside-the-overleggen refusal and a dashboard view (an access).
    let r = lp
        .get(
            "/v1/bestaat-niet/las-noorderlicht/leerlingen/L1001/verzuim",
            "x",
        )
        .await;
    assert_eq!(r.status, 404);
    let fg = gw.admin_client("fg-convenant");
    let r = fg.request(Method::GET, "/zoeken", &[], None).await.unwrap();
    assert_eq!(r.status, 200);
}

async fn check_ok(store: &Store, when: &str) {
    let (check, _) = aggregates::check(store).await.unwrap();
    assert!(check.ok(), "{when}: {}", check.text());
    assert!(check.aggregates > 10, "{when}: {}", check.text());
}

/// The report from the aggregates equals the report from the walk, for
/// today (a Dutch day) and the report took the aggregates' path.
async fn reports_agree(store: &Store, gw: &TestGateway, when_: &str) -> rapport::Rapport {
    let set = gw.state.policy.current().set.clone();
    let today = when::dutch_day(time::OffsetDateTime::now_utc());
    let (from, to) = (
        when::bound(&today, false).unwrap(),
        when::bound(&today, true).unwrap(),
    );
    let th = rapport::Thresholds::default();
    let fast = rapport::build_from_aggregates(store, &set, &from, &to, th)
        .await
        .unwrap()
        .expect("the aggregates answer for a whole Dutch day");
    let walk = rapport::build_paged(store, &set, &from, &to, th, 7)
        .await
        .unwrap();
    assert_eq!(comparable(&fast), comparable(&walk), "{when_}");
    // A period that does not start at a Dutch midnight is walked.
    let odd = when::stored(time::OffsetDateTime::now_utc() - time::Duration::hours(1));
    assert!(
        rapport::build_from_aggregates(store, &set, &odd, &to, th)
            .await
            .unwrap()
            .is_none()
    );
    fast
}

async fn aggregates_equal_the_walk(kind: StoreKind) {
    let mut gw = TestGateway::start_with(Options {
        store: kind,
        admin: true,
        ..Options::default()
    })
    .await;
    traffic(&mut gw).await;
    let store = Store::connect(&gw.store_url).await.unwrap();
    check_ok(&store, "after traffic").await;
    let report = reports_agree(&store, &gw, "after traffic").await;
    let aoj = report
        .overleggen
        .iter()
        .find(|o| o.id == "aoj-vo-noorderlicht")
        .unwrap();
    assert!(aoj.requests >= 12 && aoj.distinct_pupils >= 4, "{aoj:?}");
    assert!(report.supplier_requests >= 1 && report.outside_overleggen >= 1);
    assert!(report.trail_accesses >= 1);

    // A commit that fails (PostgreSQL: the aggregates table locked while a
    // batch commits) leaves neither the records nor their aggregates.
    if kind == StoreKind::Postgres {
        let lock = lock_table(&store, "audit_aggregates").await;
        let lp = gw.client("gemeente-groningen");
        let r = lp.get(&verzuim("L1003"), "aanpak-verzuim").await;
        assert_eq!(r.status, 503, "the batch could not commit");
        lock.rollback().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        check_ok(&store, "after a failed commit").await;
    }

    // Purge with every record expired: the pupils and fields go out of the
    // records and the aggregates alike.
    let retention: BTreeMap<String, u32> = BTreeMap::new();
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(400);
    let purged = poortwachter::audit::purge::purge(&store, &retention, 30, later)
        .await
        .unwrap();
    assert!(purged.total >= 12, "{purged:?}");
    check_ok(&store, "after purge").await;
    let after = reports_agree(&store, &gw, "after purge").await;
    let aoj = after
        .overleggen
        .iter()
        .find(|o| o.id == "aoj-vo-noorderlicht")
        .unwrap();
    assert_eq!(aoj.distinct_pupils, 0);
    assert!(aoj.fields.is_empty());
    let mut conn = store.pool().acquire().await.unwrap();
    let pupils: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_aggregates WHERE kind = 'pupil'")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(
        pupils, 0,
        "no pseudonym survives the purge in the aggregates"
    );

    // A wrong table is found, and --recompute mends it.
    sqlx::query("UPDATE audit_aggregates SET n = n + 5 WHERE kind = 'request'")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_poortwachter"))
        .args(["audit", "aggregates", "--config"])
        .arg(&gw.config_path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_poortwachter"))
        .args(["audit", "aggregates", "--recompute", "--config"])
        .arg(&gw.config_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_ok(&store, "after --recompute").await;
    let rows = gw.audit_rows().await;
    assert!(
        rows.iter()
            .any(|r| r.kind == "access" && r.reason == "aggregates")
    );
}

#[tokio::test]
async fn sqlite_aggregates_equal_the_walk() {
    aggregates_equal_the_walk(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_aggregates_equal_the_walk() {
    aggregates_equal_the_walk(StoreKind::Postgres).await;
}

/// A request record about `pupil` by `org` at `time` (the chain is not
/// what this test is about; the aggregates and the walk read the columns).
fn request(seq: i64, time: &str, org: &str, pupil: &str) -> poortwachter::audit::StoredRow {
    poortwachter::audit::StoredRow {
        instance: "agg-test".into(),
        seq,
        kind: "request".into(),
        time: time.into(),
        request_id: format!("r-{seq}"),
        trace_id: format!("t-{seq}"),
        org: Some(org.into()),
        cert_fingerprint: None,
        role: Some("leerplicht".into()),
        grondslag: None,
        overleg: Some("aoj-vo-noorderlicht".into()),
        purpose: Some("aanpak-verzuim".into()),
        bron: Some("las-noorderlicht".into()),
        resource: None,
        pupil: Some(format!("k1:{pupil}")),
        outcome: "allowed".into(),
        reason: "allowed".into(),
        side: None,
        rules: r#"["aoj-03"]"#.into(),
        fields_shared: r#"["verzuim.geoorloofd_uren"]"#.into(),
        fields_withheld: "[]".into(),
        status: 200,
        upstream_status: Some(200),
        duration_us: 1000,
        policy_version: "v".into(),
        detail: "{}".into(),
        personal_digest: "d".into(),
        purged_at: None,
        prev_hash: "p".into(),
        hash: format!("h-{seq}"),
        supplier: None,
        owner: None,
    }
}

/// Days of history and a surge, written through the writer's own batch
/// insert: the store counts the distinct pupils per organisation and day
/// for the aggregates' report, the walk holds the pseudonyms; both find the
/// same surge, the same distinct counts and the same report.
async fn distinct_counts_and_surges(url: String) {
    let store = Store::connect(&url).await.unwrap();
    let mut rows = Vec::new();
    let mut seq = 0;
    for day in 20..=24 {
        for p in ["a", "b", "c"] {
            seq += 1;
            rows.push(request(
                seq,
                &format!("2026-11-{day}T10:00:00.000000Z"),
                "gemeente-groningen",
                p,
            ));
        }
        // The same pupil twice on a day counts once.
        seq += 1;
        rows.push(request(
            seq,
            &format!("2026-11-{day}T11:00:00.000000Z"),
            "gemeente-groningen",
            "a",
        ));
    }
    for i in 0..20 {
        seq += 1;
        rows.push(request(
            seq,
            "2026-11-25T09:00:00.000000Z",
            "gemeente-groningen",
            &format!("s{i}"),
        ));
        seq += 1;
        let mut r = request(
            seq,
            "2026-11-25T22:30:00.000000Z",
            "wij-groningen",
            &format!("s{i}"),
        );
        // Some through a supplier, which has its own distinct count.
        if i % 3 == 0 {
            r.supplier = Some("las-leverancier".into());
        }
        rows.push(r);
    }
    for chunk in rows.chunks(7) {
        store.insert_batch(chunk, &[], None).await.unwrap();
    }
    check_ok(&store, "synthetic days").await;
    let set = poortwachter::policy::load_dir(std::path::Path::new(POLICIES)).unwrap();
    let th = rapport::Thresholds::default();
    for (from, to) in [("2026-11-25", "2026-11-25"), ("2026-11-20", "2026-11-25")] {
        let from_day = from.to_owned();
        let (from, to) = (
            when::bound(from, false).unwrap(),
            when::bound(to, true).unwrap(),
        );
        let since: Option<String> = sqlx::query_scalar("SELECT since FROM audit_aggregates_since")
            .fetch_optional(store.pool())
            .await
            .unwrap();
        let fast = rapport::build_from_aggregates(&store, &set, &from, &to, th)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no aggregates path for {from} {to}, since {since:?}"));
        let walk = rapport::build_paged(&store, &set, &from, &to, th, 5)
            .await
            .unwrap();
        assert_eq!(comparable(&fast), comparable(&walk), "{from}");
        // The counts the report read (on SQLite one pass of its own) are
        // those the store's COUNT(DISTINCT) gives.
        let days = pupil_counts::Days {
            from: from_day,
            to: "2026-11-26".into(),
            baseline: "2026-10-01".into(),
        };
        let counts = pupil_counts::count(&store, &days).await.unwrap();
        let reference = pupil_counts::counted_by_the_server(&store, &days)
            .await
            .unwrap();
        assert_eq!(counts, reference);
        assert!(!counts.per_supplier.is_empty() && counts.per_day.len() >= 6);
        let aoj = fast
            .overleggen
            .iter()
            .find(|o| o.id == "aoj-vo-noorderlicht")
            .unwrap();
        let surges: Vec<_> = aoj.anomalies.iter().filter(|a| a.kind == "surge").collect();
        assert_eq!(surges.len(), 1, "{:?}", aoj.anomalies);
        assert!(
            surges[0]
                .description
                .contains("20 verschillende leerlingen"),
            "{}",
            surges[0].description
        );
        // WIJ's requests at 23:30 Dutch time: outside office hours.
        assert!(
            aoj.anomalies
                .iter()
                .any(|a| a.kind == "outside-office-hours"
                    && a.org.as_deref() == Some("wij-groningen")),
            "{:?}",
            aoj.anomalies
        );
    }
}

#[tokio::test]
async fn sqlite_distinct_counts_and_surges_agree() {
    let dir = tempfile::tempdir().unwrap();
    distinct_counts_and_surges(format!("sqlite://{}/agg.db", dir.path().display())).await;
}

#[tokio::test]
async fn postgres_distinct_counts_and_surges_agree() {
    distinct_counts_and_surges(fresh_pg_database().await).await;
}
