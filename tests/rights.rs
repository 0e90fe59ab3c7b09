//! The objection (bezwaar) and restriction (beperking) registers end to end
//! over mTLS, on both stores (issue 16, point 2): who may record them, bad
//! input, out-of-order changes, an objection stopping a 6(1)(e) flow but not
//! a leerplicht 6(1)(c) flow (nothing reaches the bron when it stops),
//! restrictions withholding fields or everything, a supplier under a
//! mandate, the audit record of every change, and the trail still verifying.
#![allow(
    clippy::too_many_lines,
    reason = "a scenario reads top to bottom (tests are exempt from the 80-line rule)"
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use http::Method;
use serde_json::{Value, json};

const BASE: &str = "/registers/v1/aoj-vo-noorderlicht";
const NOORDERLICHT_OIN: &str = "00000099000000000101";

fn verzuim(pupil: &str) -> String {
    format!("/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/{pupil}/verzuim")
}

async fn post(c: &TestClient, path: &str, body: Value) -> TestResponse {
    post_with(c, path, body, &[]).await
}

async fn post_with(
    c: &TestClient,
    path: &str,
    body: Value,
    extra: &[(&str, &str)],
) -> TestResponse {
    let mut h = vec![("content-type", "application/json")];
    h.extend_from_slice(extra);
    c.request(Method::POST, path, &h, Some(body.to_string().into_bytes()))
        .await
        .unwrap()
}

fn text(r: &TestResponse) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

fn id_of(r: &TestResponse) -> String {
    r.json()["id"].as_str().unwrap().to_owned()
}

/// The bron, counting the requests that reach it.
async fn counting_las() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&hits);
    let doc = json!({
        "leerling": {"voornaam": "Sanne", "achternaam": "de Vries", "klas": "2B"},
        "verzuim": {
            "geoorloofd_uren": 4, "ongeoorloofd_uren": 12,
            "meldingen": [{"datum": "2026-11-02", "soort": "ongeoorloofd", "uren": 6, "toelichting": "x"}]
        }
    })
    .to_string()
    .into_bytes();
    let addr = spawn_upstream(Arc::new(move |_, _, _| {
        seen.fetch_add(1, Ordering::SeqCst);
        (200, "application/json", doc.clone(), Duration::ZERO)
    }))
    .await;
    (format!("http://{addr}"), hits)
}

fn records<'a>(
    rows: &'a [poortwachter::audit::StoredRow],
    reason: &str,
) -> Vec<&'a poortwachter::audit::StoredRow> {
    rows.iter().filter(|r| r.reason == reason).collect()
}

async fn objections(store: StoreKind) {
    let (url, hits) = counting_las().await;
    let mut gw = TestGateway::start_with(Options {
        store,
        // A short request lifetime keeps the PostgreSQL revocation grace
        // (request + commit timeout), which lodging and restricting wait, short.
        server_extra: "request_timeout_ms = 1000".into(),
        ..Options::with_bron_url("las-noorderlicht", url)
    })
    .await;
    let school = gw.client("vo-noorderlicht");
    let wij = gw.client("wij-groningen");
    let lp = gw.client("gemeente-groningen");
    let objection = |pupil: &str, doel: Option<&str>| {
        let mut b = json!({"leerling": pupil, "referentie": "BZW-2026-7"});
        if let Some(d) = doel {
            b["doel"] = json!(d);
        }
        b
    };

    // Before: WIJ (jeugdwet, 6.1.e) receives the verzuim pattern.
    let r = wij.get(&verzuim("L1001"), "aanpak-verzuim").await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // A role that may not record objections (WIJ; leerplicht only registers
    // cases): 403, nothing stored.
    for c in [&wij, &lp] {
        let r = post(c, &format!("{BASE}/bezwaren"), objection("L1001", None)).await;
        assert_eq!(r.status, 403, "{}", text(&r));
        assert_eq!(r.problem_type(), "may-not-register");
        assert!(
            r.json()["detail"]
                .as_str()
                .unwrap()
                .contains("may_record_objections")
        );
    }
    // An unknown overleg: 404; an unknown purpose: 400; bad bodies: 400.
    let r = post(
        &school,
        "/registers/v1/bestaat-niet/bezwaren",
        objection("L1001", None),
    )
    .await;
    assert_eq!(r.status, 404, "{}", text(&r));
    assert_eq!(r.problem_type(), "unknown-overleg");
    for bad in [
        objection("L1001", Some("bestaat-niet")),
        json!({"leerling": "L1001"}),
        json!({"leerling": "L1001", "referentie": "x", "extra": 1}),
        json!({"leerling": "L1001", "referentie": "x", "ingediend_op": "2099-01-01"}),
        json!({"leerling": "../x", "referentie": "x"}),
    ] {
        let r = post(&school, &format!("{BASE}/bezwaren"), bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", text(&r));
        assert_eq!(r.problem_type(), "invalid-register-request", "{bad}");
    }
    assert!(records(&gw.audit_rows().await, "objection-lodged").is_empty());

    // Lodged: WIJ is stopped (403 objection) and the bron is not asked.
    let r = post(
        &school,
        &format!("{BASE}/bezwaren"),
        objection("L1001", None),
    )
    .await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let lodged = r.json();
    assert_eq!(lodged["status"], "ingediend");
    assert_eq!(lodged["actief"], true);
    let id = id_of(&r);
    let r = wij.get(&verzuim("L1001"), "aanpak-verzuim").await;
    assert_eq!(r.status, 403, "{}", text(&r));
    assert_eq!(r.problem_type(), "objection");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "nothing reached the bron");
    // Another pupil is not affected.
    assert_eq!(
        wij.get(&verzuim("L1002"), "aanpak-verzuim").await.status,
        200
    );
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    // Leerplicht (6.1.c + 6.1.e: a legal obligation) keeps receiving; its
    // record says the objection did not apply, and why.
    let r = lp.get(&verzuim("L1001"), "aanpak-verzuim").await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    let rows = gw.audit_rows().await;
    let rec = rows
        .iter()
        .rev()
        .find(|r| r.kind == "request" && r.org.as_deref() == Some("gemeente-groningen"))
        .unwrap();
    let detail: Value = serde_json::from_str(&rec.detail).unwrap();
    assert_eq!(detail["bezwaren"][0]["id"], id.as_str());
    assert_eq!(detail["bezwaren"][0]["toegepast"], false);
    assert!(
        detail["bezwaren"][0]["reden"]
            .as_str()
            .unwrap()
            .starts_with("grondslag 6.1.c: wettelijke plicht"),
        "{detail}"
    );
    let refused = rows.iter().rev().find(|r| r.reason == "objection").unwrap();
    assert_eq!(refused.org.as_deref(), Some("wij-groningen"));
    assert_eq!(refused.status, 403);
    assert_eq!(refused.upstream_status, None);

    // Upheld: still stopped. Deciding it again (rejecting it now) is out of
    // order: 409, and nothing changes.
    let besluit = format!("{BASE}/bezwaren/{id}/besluit");
    let decide = |b: &str| json!({"leerling": "L1001", "besluit": b, "referentie": "BSL-1"});
    let r = post(
        &school,
        &besluit,
        json!({"leerling": "L1001", "besluit": "ingediend", "referentie": "x"}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", text(&r));
    let r = post(
        &school,
        &besluit,
        json!({"leerling": "L1002", "besluit": "toegewezen", "referentie": "x"}),
    )
    .await;
    assert_eq!(r.status, 404, "another pupil's id: {}", text(&r));
    let r = post(&school, &besluit, decide("toegewezen")).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.json()["status"], "toegewezen");
    let r = post(&school, &besluit, decide("afgewezen")).await;
    assert_eq!(r.status, 409, "{}", text(&r));
    assert_eq!(r.problem_type(), "register-entry-closed");
    assert_eq!(
        wij.get(&verzuim("L1001"), "aanpak-verzuim")
            .await
            .problem_type(),
        "objection"
    );

    // An objection against one purpose covers that purpose only; rejected,
    // it stops nothing. Recorded by the SWV (it also may).
    let swv = gw.client("swv-vo-groningen");
    let r = post(
        &swv,
        &format!("{BASE}/bezwaren"),
        objection("L1003", Some("afstemming-ondersteuning")),
    )
    .await;
    assert_eq!(r.status, 201, "{}", text(&r));
    assert_eq!(
        wij.get(&verzuim("L1003"), "aanpak-verzuim").await.status,
        200
    );
    let r = post(
        &swv,
        &format!("{BASE}/bezwaren"),
        objection("L1003", Some("aanpak-verzuim")),
    )
    .await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let second = id_of(&r);
    assert_eq!(
        wij.get(&verzuim("L1003"), "aanpak-verzuim")
            .await
            .problem_type(),
        "objection"
    );
    let r = post(
        &swv,
        &format!("{BASE}/bezwaren/{second}/besluit"),
        json!({"leerling": "L1003", "besluit": "afgewezen", "referentie": "BSL-2"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.json()["actief"], false);
    assert_eq!(
        wij.get(&verzuim("L1003"), "aanpak-verzuim").await.status,
        200
    );

    // A supplier under the school's mandate records one as the school.
    let supplier_cert = gw.pki.client_for("las-leverancier");
    let supplier = gw.client_with(Some(&supplier_cert), false);
    let r = post_with(
        &supplier,
        &format!("{BASE}/bezwaren"),
        objection("L1004", None),
        &[("x-namens", NOORDERLICHT_OIN)],
    )
    .await;
    assert_eq!(r.status, 201, "{}", text(&r));
    assert_eq!(r.json()["vastgelegd_door"], "vo-noorderlicht");
    assert_eq!(
        wij.get(&verzuim("L1004"), "aanpak-verzuim")
            .await
            .problem_type(),
        "objection"
    );

    // The pupil's registers show them (read by a registering role).
    let r = school
        .request(Method::GET, &format!("{BASE}/leerlingen/L1001"), &[], None)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", text(&r));
    let h = r.json();
    assert_eq!(h["bezwaren"].as_array().unwrap().len(), 1);
    assert_eq!(h["bezwaren"][0]["status"], "toegewezen");
    assert_eq!(h["bezwaren"][0]["besluit_referentie"], "BSL-1");

    // Every change is one register record with the pupil's pseudonym; the
    // supplier is named on its own; the trail verifies.
    let rows = gw.audit_rows().await;
    assert_eq!(records(&rows, "objection-lodged").len(), 4);
    assert_eq!(records(&rows, "objection-upheld").len(), 1);
    assert_eq!(records(&rows, "objection-rejected").len(), 1);
    for r in records(&rows, "objection-lodged") {
        assert_eq!(r.kind, "register");
        assert!(r.pupil.as_deref().is_some_and(|p| !p.starts_with('L')));
    }
    let upheld = records(&rows, "objection-upheld")[0];
    assert_eq!(
        upheld.pupil.as_deref(),
        Some(gw.pseudonym("L1001").as_str())
    );
    let via = records(&rows, "objection-lodged")[3];
    assert_eq!(via.supplier.as_deref(), Some("las-leverancier"));
    assert_eq!(via.org.as_deref(), Some("vo-noorderlicht"));
    verify_trail(&gw).await;
    assert_no_clear_ids(&gw.store_url, &["L1001", "L1003", "L1004"]).await;
}

async fn restrictions(store: StoreKind) {
    let (url, hits) = counting_las().await;
    let mut gw = TestGateway::start_with(Options {
        store,
        // A short request lifetime keeps the PostgreSQL revocation grace
        // (request + commit timeout), which lodging and restricting wait, short.
        server_extra: "request_timeout_ms = 1000".into(),
        ..Options::with_bron_url("las-noorderlicht", url)
    })
    .await;
    let school = gw.client("vo-noorderlicht");
    let wij = gw.client("wij-groningen");
    let lp = gw.client("gemeente-groningen");
    let restriction = |pupil: &str, velden: Option<Value>| {
        let mut b =
            json!({"leerling": pupil, "reden": "juistheid-betwist", "referentie": "BPK-2026-3"});
        if let Some(v) = velden {
            b["velden"] = v;
        }
        b
    };
    let url = format!("{BASE}/beperkingen");

    // Who may not: 403. Unknown field paths, bronnen not of the overleg,
    // unknown reasons, an empty list: 400. Nothing stored.
    let r = post(&wij, &url, restriction("L1001", None)).await;
    assert_eq!(r.status, 403, "{}", text(&r));
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("may_record_restrictions")
    );
    for velden in [
        json!(["bestaat.niet"]),
        json!(["las-noorderlicht:bestaat.niet"]),
        json!(["jgz-dossier:verzuim"]),
        json!(["verzuim.Uren"]),
        json!(["verzuim..uren"]),
        json!([]),
    ] {
        let r = post(&school, &url, restriction("L1001", Some(velden.clone()))).await;
        assert_eq!(r.status, 400, "{velden}: {}", text(&r));
        assert_eq!(r.problem_type(), "invalid-register-request");
    }
    let mut bad_reason = restriction("L1001", None);
    bad_reason["reden"] = json!("zomaar");
    assert_eq!(post(&school, &url, bad_reason).await.status, 400);
    assert!(records(&gw.audit_rows().await, "restriction-set").is_empty());

    // Contested accuracy of the verzuim registrations: leerplicht gets the
    // rest, the verzuim fields are withheld, counted and recorded.
    let before = lp.get(&verzuim("L1001"), "aanpak-verzuim").await;
    assert_eq!(before.status, 200);
    let r = post(
        &school,
        &url,
        restriction("L1001", Some(json!(["verzuim"]))),
    )
    .await;
    assert_eq!(r.status, 201, "{}", text(&r));
    assert_eq!(r.json()["velden"], json!(["las-noorderlicht:verzuim"]));
    let id = id_of(&r);
    let after = lp.get(&verzuim("L1001"), "aanpak-verzuim").await;
    assert_eq!(after.status, 200, "{}", text(&after));
    let body = after.json();
    assert!(body.get("verzuim").is_none(), "{body}");
    assert_eq!(body["leerling"]["voornaam"], "Sanne");
    let withheld = |r: &TestResponse| {
        r.header("x-poortwachter-withheld")
            .unwrap()
            .parse::<usize>()
            .unwrap()
    };
    assert!(
        withheld(&after) >= withheld(&before) + 6,
        "{} vs {}",
        withheld(&after),
        withheld(&before)
    );
    let rows = gw.audit_rows().await;
    let rec = rows.iter().rev().find(|r| r.kind == "request").unwrap();
    assert_eq!(rec.reason, "restricted-fields");
    assert!(
        rec.fields_withheld.contains("verzuim.ongeoorloofd_uren"),
        "{}",
        rec.fields_withheld
    );
    assert!(
        !rec.fields_shared.contains("verzuim"),
        "{}",
        rec.fields_shared
    );
    let detail: Value = serde_json::from_str(&rec.detail).unwrap();
    assert_eq!(detail["beperkingen"]["ids"][0], id.as_str());

    // Every field: 403 restricted, and the bron is not asked.
    let r = post(&school, &url, restriction("L1002", None)).await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let all = id_of(&r);
    let n = hits.load(Ordering::SeqCst);
    for c in [&lp, &wij] {
        let r = c.get(&verzuim("L1002"), "aanpak-verzuim").await;
        assert_eq!(r.status, 403, "{}", text(&r));
        assert_eq!(r.problem_type(), "restricted");
    }
    assert_eq!(hits.load(Ordering::SeqCst), n, "nothing reached the bron");

    // Lifted: flows again. Lifting twice is out of order (409); another
    // pupil's id is not found (404).
    let lift = format!("{url}/{all}/opheffen");
    let r = post(&school, &lift, json!({"leerling": "L1001"})).await;
    assert_eq!(r.status, 404, "{}", text(&r));
    let r = post(
        &school,
        &lift,
        json!({"leerling": "L1002", "referentie": "gecorrigeerd"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.json()["actief"], false);
    assert_eq!(
        lp.get(&verzuim("L1002"), "aanpak-verzuim").await.status,
        200
    );
    let r = post(&school, &lift, json!({"leerling": "L1002"})).await;
    assert_eq!(r.status, 409, "{}", text(&r));
    assert_eq!(r.problem_type(), "register-entry-closed");

    // A restriction that begins later, or is over, restricts nothing now.
    let mut later = restriction("L1003", None);
    later["begin"] = json!("2099-01-01");
    let r = post(&school, &url, later).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["actief"], false);
    assert_eq!(
        lp.get(&verzuim("L1003"), "aanpak-verzuim").await.status,
        200
    );

    let r = school
        .request(Method::GET, &format!("{BASE}/leerlingen/L1002"), &[], None)
        .await
        .unwrap();
    let h = r.json();
    assert_eq!(h["beperkingen"][0]["opheffing_referentie"], "gecorrigeerd");
    assert_eq!(h["beperkingen"][0]["reden"], "juistheid-betwist");

    let rows = gw.audit_rows().await;
    assert_eq!(records(&rows, "restriction-set").len(), 3);
    assert_eq!(records(&rows, "restriction-lifted").len(), 1);
    assert_eq!(records(&rows, "restricted").len(), 2);
    verify_trail(&gw).await;
    assert_no_clear_ids(&gw.store_url, &["L1001", "L1002", "L1003"]).await;
}

async fn verify_trail(gw: &TestGateway) {
    let cfg = poortwachter::config::Config::load(&gw.config_path).unwrap();
    let store = poortwachter::audit::Store::connect(&gw.store_url)
        .await
        .unwrap();
    let report = poortwachter::audit::admin::verify(&store, &cfg.audit, None, None)
        .await
        .unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

/// No clear pupil id in the registers or the trail.
async fn assert_no_clear_ids(store_url: &str, pupils: &[&str]) {
    let store = poortwachter::audit::Store::connect(store_url)
        .await
        .unwrap();
    let mut out = String::new();
    for table in ["objections", "restrictions", "audit_records"] {
        let sql = if store_url.starts_with("sqlite:") {
            format!("SELECT * FROM {table}")
        } else {
            format!("SELECT row_to_json(t)::text FROM {table} t")
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert!(!rows.is_empty() || table != "audit_records");
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
    for p in pupils {
        assert!(!out.contains(p), "clear pupil id {p} in the store");
    }
}

/// An objection against every casusoverleg (`alle_overleggen`), recorded in
/// the AOJ-team, stops WIJ's 6(1)(e) flow in the Thuiszittersteam too,
/// leaves leerplicht's 6(1)(c) flow, shows in the other overleg's register
/// view and in the inzage report, and stops nothing once rejected.
async fn objection_against_every_overleg(store: StoreKind) {
    let (url, hits) = counting_las().await;
    let mut gw = TestGateway::start_with(Options {
        store,
        server_extra: "request_timeout_ms = 1000".into(),
        ..Options::with_bron_url("las-noorderlicht", url)
    })
    .await;
    let school = gw.client("vo-noorderlicht");
    let wij = gw.client("wij-groningen");
    let lp = gw.client("gemeente-groningen");
    let tzt = "/v1/thuiszittersteam/las-noorderlicht/leerlingen/L1003/verzuim";
    assert_eq!(wij.get(tzt, "terugleiding").await.status, 200);

    // Not with a purpose: purposes belong to one overleg.
    let body = json!({"leerling": "L1003", "referentie": "BZW-2026-9", "alle_overleggen": true});
    let mut with_purpose = body.clone();
    with_purpose["doel"] = json!("aanpak-verzuim");
    let r = post(&school, &format!("{BASE}/bezwaren"), with_purpose).await;
    assert_eq!(r.status, 400, "{}", text(&r));
    let r = post(&school, &format!("{BASE}/bezwaren"), body).await;
    assert_eq!(r.status, 201, "{}", text(&r));
    assert_eq!(r.json()["overleg"], "*");
    let id = id_of(&r);

    // It covers the Thuiszittersteam, where it was not recorded.
    let before = hits.load(Ordering::SeqCst);
    let r = wij.get(tzt, "terugleiding").await;
    assert_eq!(r.status, 403, "{}", text(&r));
    assert_eq!(r.problem_type(), "objection");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        before,
        "nothing reached the bron"
    );
    // And the AOJ-team: WIJ stopped, leerplicht (6.1.c) not.
    let r = wij.get(&verzuim("L1003"), "aanpak-verzuim").await;
    assert_eq!(r.problem_type(), "objection");
    let r = lp.get(&verzuim("L1003"), "aanpak-verzuim").await;
    assert_eq!(r.status, 200, "{}", text(&r));
    // The Thuiszittersteam's register view lists it (for a role there that
    // may register: the school).
    let r = school
        .request(
            Method::GET,
            "/registers/v1/thuiszittersteam/leerlingen/L1003",
            &[],
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.json()["bezwaren"][0]["id"], id.as_str());
    assert_eq!(r.json()["bezwaren"][0]["overleg"], "*");

    // Rejected (through the AOJ-team, where the school may decide): WIJ
    // receives again in both overleggen.
    let r = post(
        &school,
        &format!("{BASE}/bezwaren/{id}/besluit"),
        json!({"leerling": "L1003", "besluit": "afgewezen", "referentie": "BSL-2026-9"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(wij.get(tzt, "terugleiding").await.status, 200);
    assert_eq!(
        wij.get(&verzuim("L1003"), "aanpak-verzuim").await.status,
        200
    );

    // The inzage report shows the objection and the decision.
    let store = poortwachter::audit::Store::connect(&gw.store_url)
        .await
        .unwrap();
    let set = gw.state.policy.current().set.clone();
    let report = poortwachter::review::inzage::build(
        &store,
        &set,
        gw.state.audit.pseudonymiser(),
        "L1003",
        poortwachter::review::inzage::Options::default(),
    )
    .await
    .unwrap();
    let html = report.html();
    assert!(html.contains("bezwaar gemaakt (artikel 21 AVG)"), "{html}");
    assert!(html.contains("bezwaar afgewezen"));
    assert!(html.contains("alle casusoverleggen"));
    let rows = gw.audit_rows().await;
    let lodged = records(&rows, "objection-lodged");
    assert_eq!(lodged.len(), 1);
    assert!(lodged[0].detail.contains("\"alle_overleggen\":true"));
    verify_trail(&gw).await;
}

#[tokio::test]
async fn sqlite_an_objection_against_every_overleg() {
    objection_against_every_overleg(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_an_objection_against_every_overleg() {
    objection_against_every_overleg(StoreKind::Postgres).await;
}

#[tokio::test]
async fn sqlite_objections() {
    objections(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_objections() {
    objections(StoreKind::Postgres).await;
}

#[tokio::test]
async fn sqlite_restrictions() {
    restrictions(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_restrictions() {
    restrictions(StoreKind::Postgres).await;
}

/// `poortwachter cases object|decide|restrict|lift|list` next to a running
/// gateway: the same registers, the same refusals, recorded in the trail.
#[tokio::test]
async fn cli_objections_and_restrictions() {
    let (url, hits) = counting_las().await;
    let mut gw = TestGateway::start_with(Options {
        server_extra: "request_timeout_ms = 500".into(),
        ..Options::with_bron_url("las-noorderlicht", url)
    })
    .await;
    let cfg = gw.config_path.clone();
    let run = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let cfg = cfg.clone();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_poortwachter"))
                .arg("cases")
                .args(&args)
                .arg("--config")
                .arg(&cfg)
                .output()
                .await
                .unwrap()
        }
    };
    let ok = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let o = "aoj-vo-noorderlicht";
    // WIJ may not record an objection.
    let out = run(&[
        "object",
        "--overleg",
        o,
        "--leerling",
        "L1001",
        "--door",
        "wij-groningen",
        "--referentie",
        "B-1",
    ])
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("may_record_objections"));
    let b = ok(run(&[
        "object",
        "--overleg",
        o,
        "--leerling",
        "L1001",
        "--door",
        "vo-noorderlicht",
        "--referentie",
        "B-1",
        "--doel",
        "aanpak-verzuim",
    ])
    .await);
    assert_eq!(b["status"], "ingediend");
    let wij = gw.client("wij-groningen");
    assert_eq!(
        wij.get(&verzuim("L1001"), "aanpak-verzuim")
            .await
            .problem_type(),
        "objection"
    );
    let id = b["id"].as_str().unwrap();
    let b = ok(run(&[
        "decide",
        "--overleg",
        o,
        "--id",
        id,
        "--leerling",
        "L1001",
        "--door",
        "vo-noorderlicht",
        "--besluit",
        "afgewezen",
        "--referentie",
        "BSL-9",
    ])
    .await);
    assert_eq!(b["status"], "afgewezen");
    let out = run(&[
        "decide",
        "--overleg",
        o,
        "--id",
        id,
        "--leerling",
        "L1001",
        "--door",
        "vo-noorderlicht",
        "--besluit",
        "toegewezen",
        "--referentie",
        "BSL-9",
    ])
    .await;
    assert!(!out.status.success(), "decided twice");
    assert_eq!(
        wij.get(&verzuim("L1001"), "aanpak-verzuim").await.status,
        200
    );

    let out = run(&[
        "restrict",
        "--overleg",
        o,
        "--leerling",
        "L1002",
        "--door",
        "vo-noorderlicht",
        "--reden",
        "juistheid-betwist",
        "--referentie",
        "P-1",
        "--veld",
        "bestaat.niet",
    ])
    .await;
    assert!(!out.status.success());
    let p = ok(run(&[
        "restrict",
        "--overleg",
        o,
        "--leerling",
        "L1002",
        "--door",
        "vo-noorderlicht",
        "--reden",
        "juistheid-betwist",
        "--referentie",
        "P-1",
    ])
    .await);
    let n = hits.load(Ordering::SeqCst);
    assert_eq!(
        wij.get(&verzuim("L1002"), "aanpak-verzuim")
            .await
            .problem_type(),
        "restricted"
    );
    assert_eq!(hits.load(Ordering::SeqCst), n);
    let id = p["id"].as_str().unwrap();
    ok(run(&[
        "lift",
        "--overleg",
        o,
        "--id",
        id,
        "--leerling",
        "L1002",
        "--door",
        "vo-noorderlicht",
    ])
    .await);
    assert_eq!(
        wij.get(&verzuim("L1002"), "aanpak-verzuim").await.status,
        200
    );

    let h = ok(run(&[
        "list",
        "--leerling",
        "L1002",
        "--overleg",
        o,
        "--format",
        "json",
    ])
    .await);
    assert_eq!(h["beperkingen"][0]["actief"], false);
    let rows = gw.audit_rows().await;
    for reason in [
        "objection-lodged",
        "objection-rejected",
        "restriction-set",
        "restriction-lifted",
    ] {
        assert_eq!(records(&rows, reason).len(), 1, "{reason}");
    }
    verify_trail(&gw).await;
}
