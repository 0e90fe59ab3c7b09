//! Case binding and the consent register, end to end over mTLS on both
//! stores: every state transition, authorisation by policy, the audit
//! record of every change, pseudonymisation, and withdrawal racing with
//! in-flight requests.
#![allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "a scenario reads top to bottom (tests are exempt from the 80-line rule); test counts are small"
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use http::Method;
use serde_json::{Value, json};

const VERZUIM: &str = "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1001/verzuim";
const ADVIES: &str = "/v1/expertteam-po/jgz-dossier/jeugdigen/L1001/advies";

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
    r.json()["id"].as_str().unwrap().to_owned()
}

/// Bytes of every register and audit row, as text, for the clear-id scan.
async fn all_store_text(store_url: &str) -> String {
    let store = poortwachter::audit::Store::connect(store_url)
        .await
        .unwrap();
    let mut out = String::new();
    for table in ["case_registrations", "consents", "audit_records"] {
        let sql = if store_url.starts_with("sqlite:") {
            format!("SELECT * FROM {table}")
        } else {
            format!("SELECT row_to_json(t)::text FROM {table} t")
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(store.pool())
            .await
            .unwrap();
        for r in rows {
            use sqlx::Row;
            for i in 0..r.len() {
                if let Ok(Some(v)) = r.try_get::<Option<String>, _>(i) {
                    out.push_str(&v);
                    out.push('\n');
                }
            }
        }
    }
    out
}

async fn case_binding_lifecycle(store: StoreKind) {
    let mut gw = TestGateway::start_with(Options {
        store,
        seed_cases: false,
        server_extra: "request_timeout_ms = 1000".into(),
        ..Options::default()
    })
    .await;
    let lp = gw.client("gemeente-groningen");
    let school = gw.client("vo-noorderlicht");
    let wij = gw.client("wij-groningen");
    let base = "/registers/v1/aoj-vo-noorderlicht";

    // Not registered: denied although the rule allows every field.
    let r = lp.get(VERZUIM, "aanpak-verzuim").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.problem_type(), "not-registered");
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("aoj-vo-noorderlicht")
    );

    // Only a role with may_register_cases may register.
    let r = post(
        &wij,
        &format!("{base}/aanmeldingen"),
        json!({"leerling": "L1001", "referentie": "AOJ-1"}),
    )
    .await;
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.problem_type(), "may-not-register");

    // Invalid bodies are refused with a reason, nothing stored.
    for bad in [
        json!({"leerling": "L1001"}),
        json!({"leerling": "L1001", "referentie": "x", "extra": 1}),
        json!({"leerling": "../L1", "referentie": "x"}),
        json!({"leerling": "L1001", "referentie": "x", "begin": "1 maart"}),
        json!({"leerling": "L1001", "referentie": "x", "begin": "2026-02-01", "einde": "2026-01-01"}),
    ] {
        let r = post(&school, &format!("{base}/aanmeldingen"), bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.problem_type(), "invalid-register-request", "{bad}");
    }

    // A registration that has not begun, and one that is over: still denied.
    for (begin, einde) in [("2099-01-01", None), ("2020-01-01", Some("2021-01-01"))] {
        let r = post(
            &school,
            &format!("{base}/aanmeldingen"),
            json!({"leerling": "L1001", "referentie": "AOJ-0", "begin": begin, "einde": einde}),
        )
        .await;
        assert_eq!(r.status, 201);
        assert_eq!(r.json()["actief"], false);
        assert_eq!(
            lp.get(VERZUIM, "aanpak-verzuim").await.problem_type(),
            "not-registered"
        );
    }

    // Registered: allowed, for this pupil only.
    let r = post(
        &school,
        &format!("{base}/aanmeldingen"),
        json!({"leerling": "L1001", "referentie": "AOJ-2026-17"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let reg = r.json();
    assert_eq!(reg["actief"], true);
    assert_eq!(reg["aangemeld_door"], "vo-noorderlicht");
    assert_eq!(reg["rol"], "school");
    let reg_id = id_of(&r);
    assert_eq!(lp.get(VERZUIM, "aanpak-verzuim").await.status, 200);
    let other = VERZUIM.replace("L1001", "L1002");
    assert_eq!(
        lp.get(&other, "aanpak-verzuim").await.problem_type(),
        "not-registered"
    );
    // Registered in this overleg only.
    let r = gw
        .client("ggd-groningen")
        .get(
            "/v1/mazl/las-noorderlicht/leerlingen/L1001/verzuim",
            "medisch-advies",
        )
        .await;
    assert_eq!(r.problem_type(), "not-registered");

    // The id alone is not enough: the pupil must match.
    let r = post(
        &school,
        &format!("{base}/aanmeldingen/{reg_id}/beeindigen"),
        json!({"leerling": "L1002"}),
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.problem_type(), "register-entry-not-found");

    // Ended: denied again; ending twice conflicts.
    let r = post(
        &school,
        &format!("{base}/aanmeldingen/{reg_id}/beeindigen"),
        json!({"leerling": "L1001"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["actief"], false);
    assert!(r.json()["beeindigd_op"].is_string());
    assert_eq!(
        lp.get(VERZUIM, "aanpak-verzuim").await.problem_type(),
        "not-registered"
    );
    let r = post(
        &school,
        &format!("{base}/aanmeldingen/{reg_id}/beeindigen"),
        json!({"leerling": "L1001"}),
    )
    .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.problem_type(), "register-entry-closed");

    // The pupil's registers, for a registering role; refused for others.
    let r = school.get(&format!("{base}/leerlingen/L1001"), "x").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["aanmeldingen"].as_array().unwrap().len(), 3);
    assert_eq!(
        wij.get(&format!("{base}/leerlingen/L1001"), "x")
            .await
            .problem_type(),
        "may-not-register"
    );

    // Every change is in the trail, pseudonymised; no clear id anywhere.
    let rows = gw.audit_rows().await;
    let changes: Vec<&str> = rows
        .iter()
        .filter(|r| r.kind == "register" && r.outcome == "event")
        .map(|r| r.reason.as_str())
        .collect();
    assert_eq!(
        changes,
        [
            "case-registered",
            "case-registered",
            "case-registered",
            "case-ended"
        ]
    );
    let pseudonym = gw.pseudonym("L1001");
    for r in rows
        .iter()
        .filter(|r| r.kind == "register" && r.outcome == "event")
    {
        assert_eq!(r.pupil.as_deref(), Some(pseudonym.as_str()));
        assert_eq!(r.org.as_deref(), Some("vo-noorderlicht"));
        assert_eq!(r.role.as_deref(), Some("school"));
    }
    let refused: Vec<&str> = rows
        .iter()
        .filter(|r| r.kind == "register" && r.outcome == "denied")
        .map(|r| r.reason.as_str())
        .collect();
    assert!(refused.contains(&"may-not-register"));
    assert!(refused.contains(&"register-entry-closed"));
    let reads = rows.iter().filter(|r| r.reason == "register-read").count();
    assert_eq!(reads, 1, "the registers read is recorded");
    let url = gw.store_url.clone();
    let (_tmp, _) = gw.stop().await;
    let text = all_store_text(&url).await;
    assert!(text.contains(&pseudonym));
    for clear in ["L1001", "L1002"] {
        assert!(!text.contains(clear), "clear pupil id {clear} in the store");
    }
}

#[tokio::test]
async fn sqlite_case_binding_lifecycle() {
    case_binding_lifecycle(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_case_binding_lifecycle() {
    case_binding_lifecycle(StoreKind::Postgres).await;
}

async fn consent_lifecycle(store: StoreKind) {
    let mut gw = TestGateway::start_with(Options {
        store,
        // A short request lifetime keeps the PostgreSQL revocation grace
        // (request + commit timeout) short.
        server_extra: "request_timeout_ms = 1000".into(),
        ..Options::default()
    })
    .await;
    let swv = gw.client("swv-po-groningen");
    let school = gw.client("po-de-wadden");
    let base = "/registers/v1/expertteam-po";
    let give = |body: Value| {
        let school = &school;
        async move { post(school, &format!("{base}/toestemmingen"), body).await }
    };
    let denied = || async { swv.get(ADVIES, "passende-plek").await };

    // No consent: the rule (consent = parents) lets nothing through.
    let r = denied().await;
    assert_eq!(r.status, 403);
    assert_eq!(r.problem_type(), "consent-required");

    // Consents that do not match: the youth's only, another purpose, an
    // expired one, one that starts in the future.
    for body in [
        json!({"leerling": "L1001", "gegeven_door": "youth", "doelen": ["passende-plek"], "formulier": "F-1"}),
        json!({"leerling": "L1001", "gegeven_door": "parents", "doelen": ["onderwijs-zorgarrangement"], "formulier": "F-2"}),
        json!({"leerling": "L1001", "gegeven_door": "parents", "doelen": ["passende-plek"], "formulier": "F-3",
               "geldig_van": "2020-01-01", "geldig_tot": "2021-01-01"}),
        json!({"leerling": "L1001", "gegeven_door": "parents", "doelen": ["passende-plek"], "formulier": "F-4",
               "geldig_van": "2099-01-01"}),
        // Another pupil's consent.
        json!({"leerling": "L1002", "gegeven_door": "parents", "doelen": ["passende-plek"], "formulier": "F-5"}),
    ] {
        let r = give(body.clone()).await;
        assert_eq!(
            r.status,
            201,
            "{body}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(denied().await.problem_type(), "consent-required", "{body}");
    }
    // Validation: unknown purpose, unknown gegeven_door.
    for bad in [
        json!({"leerling": "L1001", "gegeven_door": "parents", "doelen": ["iets-anders"], "formulier": "F"}),
        json!({"leerling": "L1001", "gegeven_door": "oma", "doelen": ["passende-plek"], "formulier": "F"}),
        json!({"leerling": "L1001", "gegeven_door": "parents", "doelen": [], "formulier": "F"}),
    ] {
        let r = give(bad.clone()).await;
        assert_eq!(r.problem_type(), "invalid-register-request", "{bad}");
    }

    // Given by the parents for this purpose: the advies flows.
    let r = give(json!({"leerling": "L1001", "gegeven_door": "parents", "doelen": ["passende-plek"], "formulier": "F-6"})).await;
    assert_eq!(r.status, 201);
    let consent_id = id_of(&r);
    let ok = swv.get(ADVIES, "passende-plek").await;
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    assert!(ok.json()["advies"]["schoolbelastbaarheid"].is_string());
    assert!(
        ok.json()["medisch"].is_null(),
        "fields outside the rule stay withheld"
    );

    // Withdrawn: the very next request is refused.
    let started = Instant::now();
    let r = post(
        &school,
        &format!("{base}/toestemmingen/{consent_id}/intrekken"),
        json!({"leerling": "L1001", "referentie": "brief ouders 2026-11-20"}),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["actief"], false);
    assert_eq!(r.json()["intrekking_referentie"], "brief ouders 2026-11-20");
    if store == StoreKind::Postgres {
        // Other instances may serve this store: the acknowledgement waits
        // out a request's lifetime (1 s request + 2 s commit + 0.5 s).
        assert!(took >= Duration::from_millis(3_500), "took {took:?}");
    }
    assert_eq!(denied().await.problem_type(), "consent-required");
    let r = post(
        &school,
        &format!("{base}/toestemmingen/{consent_id}/intrekken"),
        json!({"leerling": "L1001"}),
    )
    .await;
    assert_eq!(r.problem_type(), "register-entry-closed");

    // Given again: flows again.
    let r = give(json!({"leerling": "L1001", "gegeven_door": "parents-and-youth", "doelen": ["passende-plek", "onderwijs-zorgarrangement"], "formulier": "F-7"})).await;
    assert_eq!(r.status, 201);
    let again = id_of(&r);
    assert_eq!(swv.get(ADVIES, "passende-plek").await.status, 200);

    // The pupil's consent history, and the trail.
    let h = school
        .get(&format!("{base}/leerlingen/L1001"), "x")
        .await
        .json();
    let consents = h["toestemmingen"].as_array().unwrap();
    assert_eq!(
        consents.len(),
        6,
        "L1002's consent is not in L1001's history"
    );
    let active: Vec<&str> = consents
        .iter()
        .filter(|c| c["actief"] == true)
        .map(|c| c["formulier"].as_str().unwrap())
        .collect();
    assert_eq!(active, ["F-1", "F-2", "F-7"]);

    let rows = gw.audit_rows().await;
    let changes: Vec<&str> = rows
        .iter()
        .filter(|r| r.kind == "register" && r.outcome == "event")
        .map(|r| r.reason.as_str())
        .collect();
    assert_eq!(
        changes,
        [
            "consent-given",
            "consent-given",
            "consent-given",
            "consent-given",
            "consent-given",
            "consent-given",
            "consent-withdrawn",
            "consent-given"
        ]
    );
    // Shared records name the consent they relied on.
    let shared: Vec<&poortwachter::audit::StoredRow> = rows
        .iter()
        .filter(|r| r.kind == "request" && r.status == 200)
        .collect();
    assert_eq!(shared.len(), 2);
    assert!(shared[0].detail.contains(&consent_id));
    assert!(shared[1].detail.contains(&again));
    let url = gw.store_url.clone();
    let (_tmp, _) = gw.stop().await;
    let text = all_store_text(&url).await;
    assert!(!text.contains("L1001") && !text.contains("L1002"));
}

#[tokio::test]
async fn sqlite_consent_lifecycle() {
    consent_lifecycle(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_consent_lifecycle() {
    consent_lifecycle(StoreKind::Postgres).await;
}

/// The register lookup on the request path has its own deadline: a store
/// that does not answer (here: a table locked by another session) refuses
/// the request with 503 `register-unavailable` and nothing shared, and the
/// refusal is recorded; once the store answers again, so does the gateway.
#[tokio::test]
async fn postgres_register_lookup_past_its_deadline_refuses() {
    let mut gw = TestGateway::start_with(Options {
        store: StoreKind::Postgres,
        // Without the status cache: every request reads the registers.
        audit_extra: "[registers]\nlookup_timeout_ms = 300\ncache_entries = 0".into(),
        ..Options::default()
    })
    .await;
    let lp = gw.client("gemeente-groningen");
    assert_eq!(lp.get(VERZUIM, "aanpak-verzuim").await.status, 200);
    let s = poortwachter::audit::Store::connect(&gw.store_url)
        .await
        .unwrap();
    let tx = lock_table(&s, "case_registrations").await;
    let r = lp.get(VERZUIM, "aanpak-verzuim").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.problem_type(), "register-unavailable");
    assert!(!String::from_utf8_lossy(&r.body).contains("Sanne"));
    tx.rollback().await.unwrap();
    assert_eq!(lp.get(VERZUIM, "aanpak-verzuim").await.status, 200);

    let rows = gw.audit_rows().await;
    let reasons: Vec<(&str, i64)> = rows
        .iter()
        .filter(|r| r.kind == "request")
        .map(|r| (r.reason.as_str(), r.status))
        .collect();
    assert_eq!(
        reasons,
        [
            ("allowed", 200),
            ("register-unavailable", 503),
            ("allowed", 200)
        ]
    );
}

/// An advies document, served slowly so requests are in flight while the
/// consent is withdrawn.
fn slow_jgz(delay: Duration) -> Handler {
    Arc::new(move |_m, _p, _h| {
        let doc = json!({
            "leerling": {"voornaam": "Sanne"},
            "advies": {"datum": "2026-11-01", "schoolbelastbaarheid": "halve dagen", "tekst": "t"},
            "medisch": {"diagnose": "x"},
        });
        (200, "application/json", doc.to_string().into_bytes(), delay)
    })
}

/// Withdrawal racing with in-flight requests: responses that looked the
/// consent up before the withdrawal are released (and recorded) before it
/// commits; every request after the acknowledgement is refused.
#[tokio::test]
async fn withdrawal_orders_after_in_flight_requests() {
    let upstream = spawn_upstream(slow_jgz(Duration::from_millis(300))).await;
    let mut gw = TestGateway::start_with(Options::with_bron_url(
        "jgz-dossier",
        format!("http://{upstream}"),
    ))
    .await;
    let swv = Arc::new(gw.client("swv-po-groningen"));
    let school = gw.client("po-de-wadden");
    let base = "/registers/v1/expertteam-po";
    let r = post(
        &school,
        &format!("{base}/toestemmingen"),
        json!({"leerling": "L1001", "gegeven_door": "parents", "doelen": ["passende-plek"], "formulier": "F"}),
    )
    .await;
    let id = id_of(&r);

    let t0 = Instant::now();
    let mut tasks = Vec::new();
    // Requests every 25 ms for 1.2 s: some are in flight when the
    // withdrawal is sent (at 200 ms), some are sent after its acknowledgement
    // even when a loaded machine delays it well past the bron's 300 ms.
    for i in 0..48u64 {
        let swv = Arc::clone(&swv);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 25)).await;
            let start = t0.elapsed();
            let r = swv.get(ADVIES, "passende-plek").await;
            (start, t0.elapsed(), r.status.as_u16())
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = t0.elapsed();
    let r = post(
        &school,
        &format!("{base}/toestemmingen/{id}/intrekken"),
        json!({"leerling": "L1001"}),
    )
    .await;
    let acked = t0.elapsed();
    assert_eq!(r.status, 200);
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    // The race happened: requests that were in flight when the withdrawal
    // was sent were served (they had looked the consent up).
    let raced = results
        .iter()
        .filter(|(s, e, st)| *s < sent && *e > sent && *st == 200)
        .count();
    assert!(raced > 0, "no request was in flight: {results:?}");
    // The acknowledgement waited for them.
    assert!(
        acked >= sent + Duration::from_millis(50),
        "ack after {acked:?}"
    );
    // Every request sent after the acknowledgement was refused.
    for (s, _, st) in &results {
        if *s > acked {
            assert_eq!(*st, 403, "request sent at {s:?} after the ack at {acked:?}");
        }
    }
    assert!(results.iter().any(|(s, _, _)| *s > acked));

    // In the chain, every shared response precedes the withdrawal.
    let rows = gw.audit_rows().await;
    let withdrawal = rows
        .iter()
        .find(|r| r.reason == "consent-withdrawn")
        .unwrap()
        .seq;
    let shared: Vec<i64> = rows
        .iter()
        .filter(|r| r.kind == "request" && r.status == 200)
        .map(|r| r.seq)
        .collect();
    assert_eq!(
        shared.len(),
        results.iter().filter(|(_, _, st)| *st == 200).count()
    );
    assert!(
        shared.iter().all(|s| *s < withdrawal),
        "a shared response was recorded after the withdrawal: {shared:?} vs {withdrawal}"
    );
    let after: Vec<&str> = rows
        .iter()
        .filter(|r| r.kind == "request" && r.seq > withdrawal)
        .map(|r| r.reason.as_str())
        .collect();
    assert!(after.iter().all(|r| *r == "consent-required"), "{after:?}");
}

/// The CLI next to a running gateway: changes land in the same registers and
/// the admin chain; a CLI withdrawal waits out the gateway's request lifetime
/// before it is acknowledged.
#[tokio::test]
async fn cli_registers_and_withdraws_next_to_a_running_gateway() {
    let mut gw = TestGateway::start_with(Options {
        seed_cases: false,
        server_extra: "request_timeout_ms = 500".into(),
        ..Options::default()
    })
    .await;
    let cfg = gw.config_path.clone();
    let run = |args: Vec<String>| {
        let cfg = cfg.clone();
        async move {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_poortwachter"))
                .args(&args)
                .arg("--config")
                .arg(&cfg)
                .output()
                .await
                .unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        }
    };
    let s = |v: &[&str]| {
        v.iter()
            .map(std::string::ToString::to_string)
            .collect::<Vec<_>>()
    };
    let out = run(s(&[
        "cases",
        "register",
        "--overleg",
        "expertteam-po",
        "--leerling",
        "L1001",
        "--door",
        "po-de-wadden",
        "--referentie",
        "EPT-2026-3",
    ]))
    .await;
    let reg: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(reg["actief"], true);
    let out = run(s(&[
        "consent",
        "give",
        "--overleg",
        "expertteam-po",
        "--leerling",
        "L1001",
        "--door",
        "po-de-wadden",
        "--gegeven-door",
        "parents",
        "--doel",
        "passende-plek",
        "--formulier",
        "F-cli",
    ]))
    .await;
    let consent: Value = serde_json::from_str(&out).unwrap();
    let swv = gw.client("swv-po-groningen");
    assert_eq!(swv.get(ADVIES, "passende-plek").await.status, 200);

    // `policy explain` for one pupil shows case binding and consent.
    let explain = |pupil: &'static str| {
        let run = &run;
        async move {
            let out = run(s(&[
                "policy",
                "explain",
                "--dir",
                POLICIES,
                "--org",
                "swv-po-groningen",
                "--overleg",
                "expertteam-po",
                "--purpose",
                "passende-plek",
                "--bron",
                "jgz-dossier",
                "--field",
                "advies.schoolbelastbaarheid",
                "--format",
                "json",
                "--leerling",
                pupil,
            ]))
            .await;
            serde_json::from_str::<Value>(&out).unwrap()
        }
    };
    let e = explain("L1001").await;
    assert_eq!(e["allowed"], true);
    assert_eq!(e["consent"], "parents");
    assert_eq!(e["case"]["flows"], true, "{e}");
    assert_eq!(e["case"]["consents"][0], consent["id"]);
    let e = explain("L1002").await;
    assert_eq!(e["case"]["flows"], false);
    assert!(
        e["case"]["reason"]
            .as_str()
            .unwrap()
            .contains("not registered")
    );

    let started = Instant::now();
    run(s(&[
        "consent",
        "withdraw",
        "--overleg",
        "expertteam-po",
        "--leerling",
        "L1001",
        "--door",
        "po-de-wadden",
        "--id",
        consent["id"].as_str().unwrap(),
    ]))
    .await;
    // 0.5 s request + 2 s commit + 0.5 s: the running gateway's lifetime.
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(
        swv.get(ADVIES, "passende-plek").await.problem_type(),
        "consent-required"
    );
    let e = explain("L1001").await;
    assert_eq!(e["case"]["flows"], false);
    assert!(
        e["case"]["reason"]
            .as_str()
            .unwrap()
            .contains("no active consent (parents)")
    );
    let out = run(s(&[
        "cases",
        "list",
        "--leerling",
        "L1001",
        "--format",
        "json",
    ]))
    .await;
    let h: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(h["aanmeldingen"].as_array().unwrap().len(), 1);
    assert_eq!(h["toestemmingen"][0]["actief"], false);

    // A role without may_register_cases is refused by the CLI too.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_poortwachter"))
        .args(s(&[
            "cases",
            "register",
            "--overleg",
            "expertteam-po",
            "--leerling",
            "L1002",
            "--door",
            "wij-groningen",
            "--referentie",
            "x",
        ]))
        .arg("--config")
        .arg(&cfg)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("may register"));

    let rows = gw.audit_rows().await;
    let admin: Vec<&str> = rows
        .iter()
        .filter(|r| r.instance == "test-1/admin" && r.kind != "checkpoint")
        .map(|r| r.reason.as_str())
        .collect();
    assert_eq!(
        admin,
        [
            "case-registered",
            "consent-given",
            "register-read",
            "register-read",
            "consent-withdrawn",
            "register-read",
            "register-read"
        ],
        "{:?}",
        rows.iter()
            .filter(|r| r.instance == "test-1/admin")
            .map(|r| (r.seq, &r.kind, &r.reason, &r.detail))
            .collect::<Vec<_>>()
    );
}

/// Issue 16 point 4 (AVG art. 13/14): a registration records when and how
/// the pupil and parents were informed; the DPIA report lists disclosures
/// before that moment (or without a recorded informing) as an anomaly; the
/// inzage report shows it.
async fn informing_is_recorded_and_reported(store: StoreKind) {
    let mut gw = TestGateway::start_with(Options {
        store,
        seed_cases: false,
        ..Options::default()
    })
    .await;
    let lp = gw.client("gemeente-groningen");
    let school = gw.client("vo-noorderlicht");
    let base = "/registers/v1/aoj-vo-noorderlicht/aanmeldingen";
    // Bad input: one without the other, or a moment in the future.
    for bad in [
        json!({"leerling": "L1001", "referentie": "x", "geinformeerd_op": "2026-01-01"}),
        json!({"leerling": "L1001", "referentie": "x", "geinformeerd_hoe": "brief"}),
        json!({"leerling": "L1001", "referentie": "x", "geinformeerd_op": "2099-01-01", "geinformeerd_hoe": "brief"}),
    ] {
        let r = post(&school, base, bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", String::from_utf8_lossy(&r.body));
    }
    // Informed before (L1001), not recorded (L1002), informed later (L1003).
    let informed = json!({"leerling": "L1001", "referentie": "AOJ-1", "geinformeerd_op": "2026-01-05", "geinformeerd_hoe": "brief aan ouders en leerling"});
    let r = post(&school, base, informed).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["geinformeerd_hoe"], "brief aan ouders en leerling");
    let mut ids = Vec::new();
    for (pupil, reference) in [("L1002", "AOJ-2"), ("L1003", "AOJ-3")] {
        let r = post(
            &school,
            base,
            json!({"leerling": pupil, "referentie": reference}),
        )
        .await;
        assert_eq!(r.status, 201);
        ids.push(r.json()["id"].as_str().unwrap().to_owned());
    }
    for pupil in ["L1001", "L1002", "L1003"] {
        let path = format!("/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/{pupil}/verzuim");
        assert_eq!(lp.get(&path, "aanpak-verzuim").await.status, 200);
    }
    // L1003's parents were informed only after the disclosure.
    let s = poortwachter::audit::Store::connect(&gw.store_url)
        .await
        .unwrap();
    sqlx::query("UPDATE case_registrations SET informed_at = '2099-01-01T00:00:00.000000Z', informed_how = 'gesprek' WHERE reference = 'AOJ-3'")
        .execute(s.pool())
        .await
        .unwrap();

    let cfg = poortwachter::config::Config::load(&gw.config_path).unwrap();
    let set = poortwachter::policy::load_dir(&cfg.policy.dir).unwrap();
    let (from, to) = (
        poortwachter::review::when::bound("2026-01-01", false).unwrap(),
        poortwachter::review::when::bound("2099-12-31", true).unwrap(),
    );
    let r = poortwachter::review::rapport::build(
        &s,
        &set,
        &from,
        &to,
        poortwachter::review::rapport::Thresholds::default(),
    )
    .await
    .unwrap();
    let aoj = r
        .overleggen
        .iter()
        .find(|o| o.id == "aoj-vo-noorderlicht")
        .unwrap();
    let a = aoj
        .anomalies
        .iter()
        .find(|a| a.kind == "before-informing")
        .unwrap_or_else(|| panic!("{:?}", aoj.anomalies));
    assert!(
        a.description
            .starts_with("1 leerling(en) kregen een verstrekking voordat"),
        "{}",
        a.description
    );
    assert!(
        a.description.contains("bij 1 is niet vastgelegd"),
        "{}",
        a.description
    );

    // The inzage report shows it.
    let session = poortwachter::review::session::Session::open(&cfg)
        .await
        .unwrap();
    let opts = poortwachter::review::inzage::Options {
        include_denied: false,
    };
    let shown = |pupil: &'static str| {
        let session = &session;
        async move {
            session
                .inzage(
                    pupil,
                    opts,
                    poortwachter::review::session::ReportFormat::Json,
                )
                .await
                .unwrap()
        }
    };
    assert!(
        shown("L1001")
            .await
            .contains("leerling en ouders geïnformeerd")
    );
    assert!(
        shown("L1002")
            .await
            .contains("niet vastgelegd dat leerling en ouders zijn geïnformeerd")
    );

    // Informing recorded after the registration (…/geinformeerd): bad
    // input refused, another pupil's registration not found, once only;
    // recorded, and then the inzage report shows it.
    let informed = format!("{base}/{}/geinformeerd", ids[0]);
    let body = |pupil: &str, at: &str| json!({"leerling": pupil, "geinformeerd_op": at, "geinformeerd_hoe": "gesprek met ouders"});
    let r = post(
        &school,
        &informed,
        json!({"leerling": "L1002", "geinformeerd_op": "2026-02-01"}),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = post(&school, &informed, body("L1002", "2099-01-01")).await;
    assert_eq!(r.status, 400);
    let r = post(&school, &informed, body("L1003", "2026-02-01")).await;
    assert_eq!(r.status, 404);
    let r = post(
        &lp,
        &format!("{base}/{}/geinformeerd", ids[0]),
        body("L1002", "2026-02-01"),
    )
    .await;
    assert_eq!(r.status, 200, "leerplicht registers in the AOJ-team too");
    assert_eq!(r.json()["geinformeerd_hoe"], "gesprek met ouders");
    let r = post(&school, &informed, body("L1002", "2026-02-02")).await;
    assert_eq!(r.status, 409, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.problem_type(), "register-entry-closed");
    assert!(
        shown("L1002")
            .await
            .contains("leerling en ouders geïnformeerd")
    );
    let rows = gw.audit_rows().await;
    let changes: Vec<_> = rows
        .iter()
        .filter(|r| r.reason == "case-informed")
        .collect();
    assert_eq!(changes.len(), 1);
    assert!(changes[0].detail.contains("gesprek met ouders"));
    session.close().await;
}

#[tokio::test]
async fn sqlite_informing_is_recorded_and_reported() {
    informing_is_recorded_and_reported(StoreKind::Sqlite).await;
}

/// `cases register --informed-at --informed-how` records informing too;
/// one without the other is refused by the argument parser.
#[tokio::test]
async fn cli_register_records_informing() {
    let gw = TestGateway::start_with(Options {
        seed_cases: false,
        ..Options::default()
    })
    .await;
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_poortwachter"))
            .args(["cases", "register", "--overleg", "aoj-vo-noorderlicht"])
            .args(["--pupil", "L1004", "--org", "vo-noorderlicht"])
            .args(["--reference", "AOJ-CLI", "--config"])
            .arg(&gw.config_path)
            .args(extra)
            .output()
            .unwrap()
    };
    let half = run(&["--informed-at", "2026-02-01"]);
    assert_eq!(
        half.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&half.stderr)
    );
    let ok = run(&[
        "--informed-at",
        "2026-02-01",
        "--informed-how",
        "brief aan ouders",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let s = poortwachter::audit::Store::connect(&gw.store_url)
        .await
        .unwrap();
    let (at, how): (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT informed_at, informed_how FROM case_registrations WHERE reference = 'AOJ-CLI'",
    )
    .fetch_one(s.pool())
    .await
    .unwrap();
    assert!(at.unwrap().starts_with("2026-0"), "stored as a UTC time");
    assert_eq!(how.as_deref(), Some("brief aan ouders"));
    let rows = gw.audit_rows().await;
    let rec = rows
        .iter()
        .rev()
        .find(|r| r.reason == "case-registered")
        .unwrap();
    assert!(rec.detail.contains("brief aan ouders"), "{}", rec.detail);
}

#[tokio::test]
async fn postgres_informing_is_recorded_and_reported() {
    informing_is_recorded_and_reported(StoreKind::Postgres).await;
}
