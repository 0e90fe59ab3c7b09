//! The emergency path (spoed, issue 16 point 5) end to end over mTLS, on
//! both stores: every bad input refused with nothing reaching the bron; an
//! emergency disclosure without registration opening a window, the next
//! one using it, each a distinct record and counted in the metric; the FG's
//! queue on the dashboard (review and release, each recorded; not for a
//! non-FG certificate nor from another site's form; out of order refused);
//! the window that ended closing the path until reviewed; inzage holding
//! the disclosures back (CLI report and dashboard) until released, saying
//! only that something is held back; the DPIA report's counts; a store
//! failure at the commit opening no window; and the trail still verifying.
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

const PURPOSE: &str = "spoed-veiligheid";
const WHY: &str = "leerling vertelt over geweld thuis; ouders niet bereikbaar";
const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

fn dossier(pupil: &str) -> String {
    format!("/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/{pupil}")
}

fn text(r: &TestResponse) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// The school's administration, counting the requests that reach it.
async fn counting_las() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&hits);
    let doc = json!({
        "leerling": {"voornaam": "Sanne", "achternaam": "de Vries", "woonplaats": "Groningen",
                     "klas": "2B", "bsn": "123456782"},
        "ouders": [{"naam": "J. de Vries", "relatie": "moeder", "telefoon": "0612345678", "email": "j@example.org"}],
        "verzuim": {"ongeoorloofd_uren": 12},
        "ondersteuning": {"zorgsignalen": ["zorgen over thuissituatie"], "medische_bijzonderheden": "x"}
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

async fn emergency(
    c: &TestClient,
    path: &str,
    purpose: &str,
    headers: &[(&str, &str)],
) -> TestResponse {
    let mut h = vec![("x-doelbinding", purpose)];
    h.extend_from_slice(headers);
    c.request(Method::GET, path, &h, None).await.unwrap()
}

async fn spoed(c: &TestClient, pupil: &str, reason: &str) -> TestResponse {
    emergency(
        c,
        &dossier(pupil),
        PURPOSE,
        &[("x-spoed-reden", reason), ("x-spoed-toelichting", WHY)],
    )
    .await
}

async fn form(c: &TestClient, path: &str, body: &str, extra: &[(&str, &str)]) -> TestResponse {
    let mut h = vec![FORM];
    h.extend_from_slice(extra);
    c.request(Method::POST, path, &h, Some(body.as_bytes().to_vec()))
        .await
        .unwrap()
}

fn detail(r: &poortwachter::audit::StoredRow) -> Value {
    serde_json::from_str(&r.detail).unwrap()
}

async fn windows(gw: &TestGateway) -> Vec<poortwachter::registers::emergency::Window> {
    let store = poortwachter::audit::Store::connect(&gw.store_url)
        .await
        .unwrap();
    poortwachter::registers::emergency::windows(
        &store,
        poortwachter::registers::emergency::Listing::Opened {
            from: "2000-01-01T00:00:00.000000Z",
            to: "2100-01-01T00:00:00.000000Z",
        },
    )
    .await
    .unwrap()
}

async fn inzage(
    gw: &TestGateway,
    pupil: &str,
    include_denied: bool,
) -> poortwachter::review::inzage::Inzage {
    let store = poortwachter::audit::Store::connect(&gw.store_url)
        .await
        .unwrap();
    let set = gw.state.policy.current().set.clone();
    poortwachter::review::inzage::build(
        &store,
        &set,
        gw.state.audit.pseudonymiser(),
        pupil,
        poortwachter::review::inzage::Options { include_denied },
    )
    .await
    .unwrap()
}

async fn start(store: StoreKind) -> (TestGateway, Arc<AtomicUsize>, tempfile::TempDir) {
    let (url, hits) = counting_las().await;
    // The purpose allows two of the three reasons here, to test the third.
    let (dir, policies) = copy_policies();
    edit(
        &policies.join("overleggen/aoj-vo-noorderlicht.toml"),
        r#"reasons = ["meldcode", "veilig-thuis", "acuut-gevaar"]"#,
        r#"reasons = ["meldcode", "acuut-gevaar"]"#,
    );
    let gw = TestGateway::start_with(Options {
        store,
        policies,
        admin: true,
        audit_extra: "[registers]\nmax_emergency_justification_chars = 120".into(),
        ..Options::with_bron_url("las-noorderlicht", url)
    })
    .await;
    (gw, hits, dir)
}

/// (client, purpose, headers, status, problem type)
type BadInput<'a> = (
    &'a TestClient,
    &'a str,
    Vec<(&'a str, &'a str)>,
    u16,
    &'a str,
);

async fn the_emergency_path(store: StoreKind) {
    let (mut gw, hits, _dir) = start(store).await;
    let wij = gw.client("wij-groningen");
    let lp = gw.client("gemeente-groningen");
    // An unregistered pupil: the emergency purpose waives case binding.
    let pupil = "L7001";
    let path = dossier(pupil);

    // Bad input: each refused, nothing reaches the bron.
    let long = "x".repeat(121);
    let cases: [BadInput<'_>; 10] = [
        (&wij, PURPOSE, vec![], 400, "emergency-reason-required"),
        (
            &wij,
            PURPOSE,
            vec![("x-spoed-toelichting", WHY)],
            400,
            "emergency-reason-required",
        ),
        (
            &wij,
            PURPOSE,
            vec![("x-spoed-reden", "paniek"), ("x-spoed-toelichting", WHY)],
            400,
            "emergency-reason-unknown",
        ),
        (
            &wij,
            PURPOSE,
            vec![("x-spoed-reden", "Meldcode"), ("x-spoed-toelichting", WHY)],
            400,
            "bad-header",
        ),
        (
            &wij,
            PURPOSE,
            vec![
                ("x-spoed-reden", "veilig-thuis"),
                ("x-spoed-toelichting", WHY),
            ],
            403,
            "emergency-reason-not-allowed",
        ),
        (
            &wij,
            PURPOSE,
            vec![("x-spoed-reden", "meldcode")],
            400,
            "emergency-justification",
        ),
        (
            &wij,
            PURPOSE,
            vec![
                ("x-spoed-reden", "meldcode"),
                (
                    "x-spoed-toelichting",
                    "zorgen over l7001, ouders onbereikbaar",
                ),
            ],
            400,
            "emergency-justification",
        ),
        (
            &wij,
            PURPOSE,
            vec![
                ("x-spoed-reden", "meldcode"),
                ("x-spoed-toelichting", "bsn 123456782 volgens de mentor"),
            ],
            400,
            "emergency-justification",
        ),
        (
            &wij,
            PURPOSE,
            vec![
                ("x-spoed-reden", "meldcode"),
                ("x-spoed-toelichting", long.as_str()),
            ],
            400,
            "bad-header",
        ),
        // A role without the emergency rule.
        (
            &lp,
            PURPOSE,
            vec![("x-spoed-reden", "meldcode"), ("x-spoed-toelichting", WHY)],
            403,
            "no-rule",
        ),
    ];
    for (c, purpose, headers, status, problem) in &cases {
        let r = emergency(c, &path, purpose, headers).await;
        assert_eq!(r.status, *status, "{problem}: {}", text(&r));
        assert_eq!(r.problem_type(), *problem, "{}", text(&r));
    }
    // The headers on an ordinary purpose: refused, never ignored (L1001 is
    // registered, so without them this would flow).
    let r = emergency(
        &wij,
        &dossier("L1001"),
        "afstemming-ondersteuning",
        &[("x-spoed-reden", "meldcode"), ("x-spoed-toelichting", WHY)],
    )
    .await;
    assert_eq!(r.status, 400, "{}", text(&r));
    assert_eq!(r.problem_type(), "emergency-not-applicable");
    // Case binding still holds for an ordinary purpose (another pupil,
    // so that this refusal is not in the inzage report below).
    let r = wij.get(&dossier("L7003"), "afstemming-ondersteuning").await;
    assert_eq!(r.problem_type(), "not-registered");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing reached the bron");
    assert!(windows(&gw).await.is_empty(), "no window opened");

    // The emergency disclosure: 200 without registration, only the
    // emergency rule's fields; it opens a window.
    let r = spoed(&wij, pupil, "acuut-gevaar").await;
    assert_eq!(r.status, 200, "{}", text(&r));
    let body = r.json();
    assert_eq!(body["ouders"][0]["telefoon"], "0612345678");
    assert!(body["ouders"][0].get("email").is_none());
    assert!(body["leerling"].get("bsn").is_none());
    assert!(body.get("verzuim").is_none());
    assert!(
        body["ondersteuning"]
            .get("medische_bijzonderheden")
            .is_none()
    );
    // The next one uses the open window.
    let r = spoed(&wij, pupil, "meldcode").await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    let rows = gw.audit_rows().await;
    let opened: Vec<_> = rows
        .iter()
        .filter(|r| r.reason == "emergency-window-opened")
        .collect();
    let used: Vec<_> = rows
        .iter()
        .filter(|r| r.reason == "emergency-window-used")
        .collect();
    assert_eq!((opened.len(), used.len()), (1, 1));
    let (o, u) = (detail(opened[0]), detail(used[0]));
    assert_eq!(o["spoed"]["start"], true);
    assert_eq!(u["spoed"]["start"], false);
    assert_eq!(o["spoed"]["venster"], u["spoed"]["venster"]);
    assert_eq!(o["spoed"]["reden"], "acuut-gevaar");
    assert_eq!(u["spoed"]["reden"], "meldcode");
    assert_eq!(o["spoed"]["toelichting"], WHY);
    assert_eq!(o["aanmelding"], "", "no registration was relied on");
    assert_eq!(opened[0].outcome, "filtered");
    // The FHIR export marks them: break the glass, and the opening one as
    // DICOM 110127 "Emergency Override Started".
    let set = gw.state.policy.current().set.clone();
    let fhir_opened = poortwachter::review::fhir::audit_event(&set, opened[0]).unwrap();
    let fhir_used = poortwachter::review::fhir::audit_event(&set, used[0]).unwrap();
    assert!(fhir_opened["subtype"].to_string().contains("\"110127\""));
    assert!(!fhir_used["subtype"].to_string().contains("\"110127\""));
    for e in [&fhir_opened, &fhir_used] {
        assert!(e["purposeOfEvent"].to_string().contains("\"BTG\""));
    }
    assert_eq!(
        opened[0].pupil.as_deref(),
        Some(gw.pseudonym(pupil).as_str())
    );
    // Every refused emergency request is flagged as one too (inzage holds
    // them back): the bad inputs (one without any emergency header, for an
    // emergency purpose) and the ordinary-purpose one, except the reason
    // that is not even an identifier (refused while the headers are read:
    // that record names no overleg, purpose or pupil).
    let refused: Vec<&poortwachter::audit::StoredRow> = rows
        .iter()
        .filter(|r| r.kind == "request" && (r.outcome == "denied" || r.outcome == "error"))
        .collect();
    let flagged = refused
        .iter()
        .filter(|r| r.detail.contains("\"spoed\""))
        .count();
    assert_eq!((refused.len(), flagged), (12, 10));
    assert!(refused.iter().all(|r| r.detail.contains("\"spoed\"")
        || r.reason == "not-registered"
        || r.pupil.is_none()));
    let ws = windows(&gw).await;
    assert_eq!(ws.len(), 1);
    let first = ws[0].id.clone();
    assert_eq!(o["spoed"]["venster"], first.as_str());
    assert_eq!((ws[0].uses, ws[0].org.as_str()), (2, "wij-groningen"));
    assert_eq!(ws[0].subject, gw.pseudonym(pupil));

    // The metric counts both.
    let fg = gw.admin_client("fg-convenant");
    let m = text(
        &fg.request(Method::GET, "/metrics", &[], None)
            .await
            .unwrap(),
    );
    assert!(
        m.contains(
            r#"poortwachter_emergency_disclosures_total{reason="acuut-gevaar",window="opened"} 1"#
        ),
        "{m}"
    );
    assert!(m.contains(
        r#"poortwachter_emergency_disclosures_total{reason="meldcode",window="used"} 1"#
    ));

    // Inzage holds the disclosures back and says only that something is
    // held back: not what, not to whom, not when.
    let report = inzage(&gw, pupil, true).await;
    assert!(report.held_back);
    assert!(report.disclosures.is_empty() && report.denied.is_empty());
    let (html, json) = (report.html(), report.json());
    for doc in [&html, &json] {
        assert!(!doc.contains("WIJ Groningen"), "{doc}");
        assert!(!doc.contains("wij-groningen"));
        assert!(!doc.contains(&opened[0].time));
        assert!(!doc.contains("spoed") && !doc.contains("acuut"));
    }
    assert!(html.contains("artikel 41 van de Uitvoeringswet AVG"));
    assert!(json.contains(r#""achtergehouden": true"#));
    let dash = form(
        &fg,
        "/inzage",
        &format!("leerling={pupil}&weigeringen=ja"),
        &[],
    )
    .await;
    assert_eq!(dash.status, 200);
    let d = text(&dash);
    assert!(d.contains("artikel 41 van de Uitvoeringswet AVG"));
    assert!(!d.contains("WIJ Groningen") && !d.contains("acuut"));
    assert!(d.contains("Verstrekkingen (0)"), "{d}");

    // The queue: on the dashboard for the FG only.
    let q = fg.request(Method::GET, "/spoed", &[], None).await.unwrap();
    assert_eq!(q.status, 200);
    let qt = text(&q);
    assert!(qt.contains(&first) && qt.contains("te beoordelen") && qt.contains(WHY));
    assert!(qt.contains("1 te beoordelen"));
    let school = gw.admin_client("vo-noorderlicht");
    let denied = school
        .request(Method::GET, "/spoed", &[], None)
        .await
        .unwrap();
    assert_eq!(denied.status, 403);
    assert!(!text(&denied).contains(&first));
    let review_form = format!(
        "actie=beoordelen&venster={first}&oordeel=gerechtvaardigd&notitie=acuut+gevaar+bevestigd+door+Veilig+Thuis"
    );
    let r = form(&school, "/spoed", &review_form, &[]).await;
    assert_eq!(r.status, 403, "a non-FG certificate cannot review");
    // A form another site makes the FG's browser send is refused.
    let r = form(
        &fg,
        "/spoed",
        &review_form,
        &[("sec-fetch-site", "cross-site")],
    )
    .await;
    assert_eq!(r.status, 403);
    let r = form(
        &fg,
        "/spoed",
        &review_form,
        &[("origin", "https://elders.example")],
    )
    .await;
    assert_eq!(r.status, 403);
    // Release before review: refused.
    let r = form(
        &fg,
        "/spoed",
        &format!("actie=vrijgeven&venster={first}"),
        &[],
    )
    .await;
    assert_eq!(r.status, 409, "{}", text(&r));
    assert!(windows(&gw).await[0].review.is_none());

    // The window ends (its time passes) before the FG reviewed it: the
    // emergency path is closed for this pupil and organisation.
    let store = poortwachter::audit::Store::connect(&gw.store_url)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE emergency_windows SET ends_at = '2026-01-01T00:00:00.000000Z' WHERE id = $1",
    )
    .bind(&first)
    .execute(store.pool())
    .await
    .unwrap();
    let r = spoed(&wij, pupil, "meldcode").await;
    assert_eq!(r.status, 403, "{}", text(&r));
    assert_eq!(r.problem_type(), "emergency-window-ended");
    assert_eq!(hits.load(Ordering::SeqCst), 2, "nothing reached the bron");

    // The FG reviews it (with the dashboard's own form): recorded, closed.
    let r = form(
        &fg,
        "/spoed",
        &review_form,
        &[("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert!(text(&r).contains("Vastgelegd"));
    let r = form(&fg, "/spoed", &review_form, &[]).await;
    assert_eq!(r.status, 409, "a second review is refused");
    let w = &windows(&gw).await[0];
    assert_eq!(
        w.review,
        Some(poortwachter::registers::emergency::Review::Justified)
    );
    assert_eq!(w.reviewed_by.as_deref(), Some("fg-convenant"));

    // Reviewed: a new emergency opens a new window.
    let r = spoed(&wij, pupil, "meldcode").await;
    assert_eq!(r.status, 200, "{}", text(&r));
    let ws = windows(&gw).await;
    assert_eq!(ws.len(), 2);
    let second = ws.iter().find(|w| w.id != first).unwrap().id.clone();

    // Released: the first window's disclosures appear in inzage; the
    // second's stay held back.
    let r = form(
        &fg,
        "/spoed",
        &format!("actie=vrijgeven&venster={first}"),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    let r = form(
        &fg,
        "/spoed",
        &format!("actie=vrijgeven&venster={first}"),
        &[],
    )
    .await;
    assert_eq!(r.status, 409, "a second release is refused");
    let report = inzage(&gw, pupil, false).await;
    assert_eq!(report.disclosures.len(), 2, "the released window's two");
    assert!(report.held_back, "the second window is not released");
    assert!(
        report
            .disclosures
            .iter()
            .all(|d| d.recipient_id == "wij-groningen")
    );
    let q = text(&fg.request(Method::GET, "/spoed", &[], None).await.unwrap());
    assert!(q.contains(&second) && !q.contains(&first));

    // The review and the release are records of their own, by the FG.
    let rows = gw.audit_rows().await;
    for reason in ["emergency-reviewed", "emergency-released"] {
        let r: Vec<_> = rows.iter().filter(|r| r.reason == reason).collect();
        assert_eq!(r.len(), 1, "{reason}");
        assert_eq!(r[0].org.as_deref(), Some("fg-convenant"));
        assert_eq!(detail(r[0])["venster"], first.as_str());
    }

    // The CLI: the queue lists the second window; a bad verdict is refused;
    // the FG's review through it is recorded as the CLI user's.
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_poortwachter"))
            .arg("audit")
            .args(args)
            .arg("--config")
            .arg(&gw.config_path)
            .output()
            .unwrap()
    };
    let out = cli(&["spoed", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["entries"].as_array().unwrap().len(), 1);
    assert_eq!(listed["entries"][0]["id"], second.as_str());
    assert_eq!(listed["entries"][0]["state"], "te beoordelen");
    let out = cli(&[
        "spoed-beoordelen",
        "--venster",
        &second,
        "--oordeel",
        "misschien",
        "--notitie",
        "x",
    ]);
    assert!(!out.status.success());
    let out = cli(&[
        "spoed-beoordelen",
        "--venster",
        &second,
        "--oordeel",
        "niet-gerechtvaardigd",
        "--notitie",
        "geen acuut gevaar; gewone route via aanmelding",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["spoed-vrijgeven", "--venster", &second]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["spoed-vrijgeven", "--venster", &second]);
    assert!(!out.status.success(), "a second release is refused");
    let report = inzage(&gw, pupil, false).await;
    assert_eq!(report.disclosures.len(), 3);
    assert!(!report.held_back, "every window released");
    // Refused emergency requests have no window: never shown, and with
    // refusals asked for, the report says that something is held back.
    let report = inzage(&gw, pupil, true).await;
    assert!(report.held_back && report.denied.is_empty());
    let rows = gw.audit_rows().await;
    let by_cli: Vec<_> = rows
        .iter()
        .filter(|r| r.reason == "emergency-reviewed" && r.org.is_none())
        .collect();
    assert_eq!(by_cli.len(), 1);
    assert!(
        detail(by_cli[0])["door"]
            .as_str()
            .unwrap()
            .starts_with("cli:")
    );
    assert!(
        rows.iter()
            .any(|r| r.kind == "access" && r.reason == "spoed")
    );

    // The DPIA report counts emergency use per organisation and outcome.
    let rapport = poortwachter::review::rapport::build(
        &store,
        &set,
        "2000-01-01T00:00:00.000000Z",
        "2100-01-01T00:00:00.000000Z",
        poortwachter::review::rapport::Thresholds::default(),
    )
    .await
    .unwrap();
    assert_eq!(rapport.emergency.len(), 1);
    let e = &rapport.emergency[0];
    assert_eq!(
        (
            e.org.as_str(),
            e.windows,
            e.disclosures,
            e.justified,
            e.not_justified,
            e.to_review
        ),
        ("wij-groningen", 2, 3, 1, 1, 0)
    );
    assert!(rapport.html().contains("Spoedverstrekkingen"));

    // No clear pupil id in the windows; the trail verifies.
    let all = windows(&gw).await;
    let dump = serde_json::to_string(&all).unwrap();
    assert!(!dump.contains(pupil) && !dump.to_lowercase().contains("l7001"));
    verify(&gw).await;
}

async fn verify(gw: &TestGateway) {
    let cfg = poortwachter::config::Config::load(&gw.config_path).unwrap();
    let store = poortwachter::audit::Store::connect(&gw.store_url)
        .await
        .unwrap();
    let report = poortwachter::audit::admin::verify(&store, &cfg.audit, None, None)
        .await
        .unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

#[tokio::test]
async fn sqlite_the_emergency_path() {
    the_emergency_path(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_the_emergency_path() {
    the_emergency_path(StoreKind::Postgres).await;
}

/// A store that cannot commit the opening disclosure's record (its table
/// is locked while the bron answers, after the window lookup): the client
/// gets 503, and no window exists (a 503 means nothing changed); once the
/// store is back, the next emergency request opens the window afresh.
async fn no_window_without_its_record(store: StoreKind) {
    let doc = json!({"ouders": [{"telefoon": "0612345678"}]})
        .to_string()
        .into_bytes();
    let addr = spawn_upstream(Arc::new(move |_, _, _| {
        (
            200,
            "application/json",
            doc.clone(),
            Duration::from_millis(600),
        )
    }))
    .await;
    let mut gw = TestGateway::start_with(Options {
        store,
        audit_extra: "commit_timeout_ms = 1000\ntransaction_timeout_ms = 500".into(),
        ..Options::with_bron_url("las-noorderlicht", format!("http://{addr}"))
    })
    .await;
    let wij = gw.client("wij-groningen");
    let pg = poortwachter::audit::Store::connect(&gw.store_url)
        .await
        .unwrap();
    let request = tokio::spawn(async move { spoed(&wij, "L7002", "meldcode").await });
    tokio::time::sleep(Duration::from_millis(250)).await;
    let lock = lock_table(&pg, "emergency_windows").await;
    let r = request.await.unwrap();
    assert_eq!(r.status, 503, "{}", text(&r));
    assert_eq!(r.problem_type(), "audit-unavailable");
    lock.rollback().await.unwrap();
    // The writer settles the batch it could not commit; then nothing of it
    // may claim a window, and no record may say one was opened unless a
    // correction says the client got 503.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(windows(&gw).await.is_empty());
    let rows = gw.audit_rows().await;
    assert!(
        rows.iter()
            .filter(|r| r.reason == "emergency-window-opened")
            .all(|r| rows
                .iter()
                .any(|c| c.kind == "correction" && detail(c)["corrects"]["seq"] == r.seq)),
        "an opening record without its window is corrected"
    );
    let wij = gw.client("wij-groningen");
    let r = spoed(&wij, "L7002", "meldcode").await;
    assert_eq!(r.status, 200, "{}", text(&r));
    let ws = windows(&gw).await;
    assert_eq!((ws.len(), ws[0].uses), (1, 1));
    verify(&gw).await;
}

/// PostgreSQL only: SQLite has no table lock of its own (a locked file
/// stops every write; `tests/trail_truth.rs` covers that store-wide).
#[tokio::test]
async fn postgres_no_window_without_its_record() {
    no_window_without_its_record(StoreKind::Postgres).await;
}
