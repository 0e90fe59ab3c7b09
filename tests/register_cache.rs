//! Pupils' status held in memory (`registers::cache`), end to end over mTLS:
//! a held status serves without a register query; it expires when a row
//! begins or ends by time; it fails closed when the change feed cannot be
//! read; and two instances on one PostgreSQL store see each other's changes,
//! with a revocation made on one acknowledged only after no response the
//! other decided under the old status can still leave.
#![allow(
    clippy::too_many_lines,
    reason = "a scenario reads top to bottom (tests are exempt from the 80-line rule)"
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use http::Method;
use poortwachter::audit::record::format_rfc3339;
use serde_json::{Value, json};

const VERZUIM: &str = "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1001/verzuim";
const VERZUIM_2: &str = "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1002/verzuim";
const ADVIES: &str = "/v1/expertteam-po/jgz-dossier/jeugdigen/L1001/advies";
const CONSENTS: &str = "/registers/v1/expertteam-po/toestemmingen";

async fn post(c: &TestClient, path: &str, body: Value) -> TestResponse {
    c.request(
        Method::POST,
        path,
        &[("content-type", "application/json")],
        Some(body.to_string().into_bytes()),
    )
    .await
    .unwrap()
}

fn id_of(r: &TestResponse) -> String {
    assert!(
        r.status.is_success(),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()["id"].as_str().unwrap().to_owned()
}

fn in_secs(s: f64) -> String {
    format_rfc3339(time::OffsetDateTime::now_utc() + Duration::from_secs_f64(s))
}

/// Asks until `want` or `within` has passed; the time it took.
async fn until_status(
    c: &TestClient,
    (path, purpose): (&str, &str),
    want: u16,
    within: Duration,
) -> Duration {
    let t0 = Instant::now();
    loop {
        let r = c.get(path, purpose).await;
        if r.status.as_u16() == want {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < within,
            "still {} ({}) after {within:?}",
            r.status,
            r.problem_type()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A consent valid only from 1.5 s from now until 3.5 s from now: the held
/// "no consent" ends when it begins, the held consent when it ends.
async fn a_held_status_lasts_until_a_row_begins_or_ends(store: StoreKind) {
    let mut gw = TestGateway::start_with(Options {
        store,
        ..Options::default()
    })
    .await;
    let swv = gw.client("swv-po-groningen");
    let school = gw.client("po-de-wadden");
    let (from, until) = (in_secs(1.5), in_secs(3.5));
    let r = post(
        &school,
        CONSENTS,
        json!({"leerling": "L1001", "gegeven_door": "parents", "doelen": ["passende-plek"],
               "formulier": "F", "geldig_van": from, "geldig_tot": until}),
    )
    .await;
    id_of(&r);
    let r = swv.get(ADVIES, "passende-plek").await;
    assert_eq!(r.problem_type(), "consent-required");
    until_status(&swv, (ADVIES, "passende-plek"), 200, Duration::from_secs(5)).await;
    assert!(format_rfc3339(time::OffsetDateTime::now_utc()) >= from);
    until_status(&swv, (ADVIES, "passende-plek"), 403, Duration::from_secs(5)).await;
    assert!(format_rfc3339(time::OffsetDateTime::now_utc()) >= until);
}

#[tokio::test]
async fn sqlite_a_held_status_lasts_until_a_row_begins_or_ends() {
    a_held_status_lasts_until_a_row_begins_or_ends(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_a_held_status_lasts_until_a_row_begins_or_ends() {
    a_held_status_lasts_until_a_row_begins_or_ends(StoreKind::Postgres).await;
}

/// With the registers' table locked, a held status still serves (no
/// register query on the request path) and an unheld one is refused; once
/// the change feed cannot be read either, held statuses are not trusted
/// past `feed_staleness_ms` and the request fails closed.
#[tokio::test]
async fn postgres_held_statuses_need_no_register_query_and_fail_closed_with_the_feed() {
    let mut gw = TestGateway::start_with(Options {
        store: StoreKind::Postgres,
        audit_extra: "[registers]\nlookup_timeout_ms = 300\nfeed_staleness_ms = 400".into(),
        ..Options::default()
    })
    .await;
    let lp = gw.client("gemeente-groningen");
    until_status(
        &lp,
        (VERZUIM, "aanpak-verzuim"),
        200,
        Duration::from_secs(5),
    )
    .await;
    let s = poortwachter::audit::Store::connect(&gw.store_url)
        .await
        .unwrap();
    let registers = lock_table(&s, "case_registrations").await;
    for _ in 0..5 {
        assert_eq!(lp.get(VERZUIM, "aanpak-verzuim").await.status, 200);
    }
    let r = lp.get(VERZUIM_2, "aanpak-verzuim").await;
    assert_eq!(r.problem_type(), "register-unavailable");

    let feed = lock_table(&s, "register_changes").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let r = lp.get(VERZUIM, "aanpak-verzuim").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.problem_type(), "register-unavailable");
    assert!(!String::from_utf8_lossy(&r.body).contains("Sanne"));

    feed.rollback().await.unwrap();
    registers.rollback().await.unwrap();
    until_status(
        &lp,
        (VERZUIM, "aanpak-verzuim"),
        200,
        Duration::from_secs(5),
    )
    .await;
    let reasons: Vec<String> = gw
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.kind == "request")
        .map(|r| r.reason)
        .collect();
    assert!(reasons.iter().filter(|r| *r == "allowed").count() >= 7);
    assert_eq!(
        reasons
            .iter()
            .filter(|r| *r == "register-unavailable")
            .count(),
        2,
        "{reasons:?}"
    );
}

fn slow_jgz(delay: Duration) -> Handler {
    Arc::new(move |_m, _p, _h| {
        let doc = json!({
            "leerling": {"voornaam": "Sanne"},
            "advies": {"datum": "2026-11-01", "schoolbelastbaarheid": "halve dagen", "tekst": "t"},
        });
        (200, "application/json", doc.to_string().into_bytes(), delay)
    })
}

/// Instance A serves requests about a pupil whose status it holds while
/// instance B gives and then withdraws the consent they rely on: A follows
/// the consent within the feed's staleness, and B acknowledges the
/// withdrawal only after every response A shared has left; every request
/// sent to A after the acknowledgement is refused.
#[tokio::test]
async fn postgres_two_instances_follow_each_others_changes_and_revocations() {
    let upstream = spawn_upstream(slow_jgz(Duration::from_millis(300))).await;
    let server_extra = "request_timeout_ms = 600".to_owned();
    let mut a = TestGateway::start_with(Options {
        store: StoreKind::Postgres,
        instance: "gw-a".into(),
        server_extra: server_extra.clone(),
        ..Options::with_bron_url("jgz-dossier", format!("http://{upstream}"))
    })
    .await;
    let mut b = TestGateway::start_with(Options {
        store: StoreKind::Postgres,
        instance: "gw-b".into(),
        store_url: Some(a.store_url.clone()),
        pseudonym_key_from: Some(a.tmp.path().join("pseudonym.key")),
        seed_cases: false,
        server_extra,
        ..Options::default()
    })
    .await;
    let swv = Arc::new(a.client("swv-po-groningen"));
    let school = b.client("po-de-wadden");
    assert_eq!(
        swv.get(ADVIES, "passende-plek").await.problem_type(),
        "consent-required"
    );
    let r = post(
        &school,
        CONSENTS,
        json!({"leerling": "L1001", "gegeven_door": "parents", "doelen": ["passende-plek"], "formulier": "F"}),
    )
    .await;
    let id = id_of(&r);
    // A notices within the staleness bound (500 ms) plus a request's time.
    until_status(&swv, (ADVIES, "passende-plek"), 200, Duration::from_secs(3)).await;

    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..160u64 {
        let swv = Arc::clone(&swv);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 40)).await;
            let start = t0.elapsed();
            let r = swv.get(ADVIES, "passende-plek").await;
            (start, t0.elapsed(), r.status.as_u16())
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = t0.elapsed();
    let r = post(
        &school,
        &format!("{CONSENTS}/{id}/intrekken"),
        json!({"leerling": "L1001"}),
    )
    .await;
    let acked = t0.elapsed();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    assert!(
        results.iter().any(|(_, e, st)| *e > sent && *st == 200),
        "nothing was shared while the withdrawal was under way: {results:?}"
    );
    for (s, e, st) in &results {
        if *st == 200 {
            assert!(*e < acked, "shared at {e:?}, after the ack at {acked:?}");
        }
        if *s > acked {
            assert_eq!(*st, 403, "sent at {s:?}, after the ack at {acked:?}");
        }
    }
    assert!(results.iter().any(|(s, _, _)| *s > acked));
    // A's trail holds one shared record per response the client got.
    let shared = a
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.instance == "gw-a" && r.kind == "request" && r.status == 200)
        .count();
    assert_eq!(
        shared,
        1 + results.iter().filter(|(_, _, st)| *st == 200).count()
    );
}
