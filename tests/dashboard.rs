//! The admin listener over real mTLS: the FG dashboard (search, record
//! detail, inzage, report, chain verification) only for a privacy officer's
//! certificate, every page view recorded in the trail, and the operations
//! endpoints (health, readiness, Prometheus metrics).
#![allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "a scenario reads top to bottom (tests are exempt from the 80-line rule); test counts are small"
)]

mod common;

use std::io::Read as _;
use std::time::{Duration, Instant};

use common::*;
use http::Method;

fn verzuim(pupil: &str) -> String {
    format!("/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/{pupil}/verzuim")
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

async fn post(c: &TestClient, path: &str, form: &str) -> TestResponse {
    c.request(Method::POST, path, &[FORM], Some(form.as_bytes().to_vec()))
        .await
        .unwrap()
}

async fn get(c: &TestClient, path: &str) -> TestResponse {
    c.request(Method::GET, path, &[], None).await.unwrap()
}

fn text(r: &TestResponse) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

async fn gateway_with_traffic() -> TestGateway {
    let mut gw = TestGateway::start_with(Options {
        admin: true,
        ..Options::default()
    })
    .await;
    let lp = gw.client("gemeente-groningen");
    let wij = gw.client("wij-groningen");
    for p in ["L1001", "L1002", "L1002"] {
        assert_eq!(lp.get(&verzuim(p), "aanpak-verzuim").await.status, 200);
    }
    assert_eq!(
        wij.get(&verzuim("L1001"), "afstemming-ondersteuning")
            .await
            .status,
        200
    );
    gw
}

#[tokio::test]
async fn the_fg_searches_views_records_makes_an_inzage_and_every_view_is_recorded() {
    let mut gw = gateway_with_traffic().await;
    let fg = gw.admin_client("fg-convenant");

    let home = get(&fg, "/").await;
    assert_eq!(home.status, 200);
    assert!(
        home.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let csp = home.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert!(text(&home).contains("Functionaris gegevensbescherming van de convenantpartners"));

    // Search by pupil (POST): only L1001's two records; the id is not echoed.
    let found = post(&fg, "/zoeken", "leerling=L1001").await;
    assert_eq!(found.status, 200);
    let page = text(&found);
    assert!(
        page.contains("<p id=\"aantal\">2 vastlegging(en)"),
        "{page}"
    );
    assert!(!page.contains("L1001"));
    let short = &gw.pseudonym("L1001")[..11];
    assert_eq!(page.matches(short).count(), 2);
    assert!(!page.contains(&gw.pseudonym("L1002")[..11]));
    // A pupil id in a URL is ignored: GET shows every request record.
    let all = get(&fg, "/zoeken?leerling=L1001").await;
    assert!(text(&all).contains("<p id=\"aantal\">4 vastlegging(en)"));
    let filtered = get(&fg, "/zoeken?org=wij-groningen&besluit=filtered").await;
    assert!(text(&filtered).contains("<p id=\"aantal\">1 vastlegging(en)"));
    let bad = get(&fg, "/zoeken?besluit=misschien").await;
    assert_eq!(bad.status, 400);
    // The supplier filter of `audit query --via`: the form offers the
    // registry's suppliers; none of this traffic came through one.
    let via = text(&get(&fg, "/zoeken?leverancier=las-leverancier").await);
    assert!(via.contains("<p id=\"aantal\">0 vastlegging(en)"), "{via}");
    assert!(via.contains("<select name=\"leverancier\">"), "{via}");
    assert!(via.contains("<option value=\"las-leverancier\" selected>Demo LAS-leverancier B.V."));
    let own = text(&get(&fg, "/zoeken?org=gemeente-groningen").await);
    assert!(own.contains("<p id=\"aantal\">3 vastlegging(en)"), "{own}");
    assert_eq!(get(&fg, "/zoeken?leverancier=Geen+id").await.status, 400);

    // Record detail with readable field labels.
    let detail = get(&fg, "/record?instance=test-1&seq=1").await;
    assert_eq!(detail.status, 200);
    let d = text(&detail);
    assert!(
        d.contains("Ongeoorloofd verzuim dit schooljaar (uren)"),
        "{d}"
    );
    assert!(d.contains("Gemeente Groningen, Leerplicht/RMC (demo)"));

    // Inzage for one pupil: recipients by name, nothing about L1002.
    let inz = post(&fg, "/inzage", "leerling=L1001&weigeringen=ja").await;
    assert_eq!(inz.status, 200);
    let i = text(&inz);
    assert!(i.contains("Verstrekkingen (2)"), "{i}");
    assert!(i.contains("WIJ Groningen (demo)"));
    assert!(i.contains("Vroegtijdig signaleren"));
    assert!(!i.contains("L1002") && !i.contains(&gw.pseudonym("L1002")[3..]));

    let report = get(&fg, "/rapport").await;
    assert_eq!(report.status, 200);
    assert!(text(&report).contains("<svg"));
    let verify = get(&fg, "/verificatie").await;
    assert_eq!(verify.status, 200);
    assert!(
        text(&verify).contains("id=\"status\">In orde"),
        "{}",
        text(&verify)
    );

    // Every page view is in the trail, as the FG, before it was shown.
    let rows = gw.audit_rows().await;
    let access: Vec<_> = rows.iter().filter(|r| r.kind == "access").collect();
    let actions: Vec<&str> = access.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(
        actions,
        [
            "dashboard",
            "query",
            "query",
            "query",
            "query",
            "query",
            "record",
            "inzage",
            "rapport",
            "verify"
        ],
        "the invalid search shows nothing and records nothing"
    );
    assert!(
        access
            .iter()
            .all(|r| r.org.as_deref() == Some("fg-convenant"))
    );
    assert!(access.iter().all(|r| r.cert_fingerprint.is_some()));
    assert_eq!(
        access[1].pupil.as_deref(),
        Some(gw.pseudonym("L1001").as_str())
    );
    assert_eq!(
        access[7].pupil.as_deref(),
        Some(gw.pseudonym("L1001").as_str())
    );
    // The search by supplier is recorded with what was searched for.
    assert!(
        access[4]
            .detail
            .contains("\"supplier\":\"las-leverancier\""),
        "{}",
        access[4].detail
    );
    assert!(rows.iter().all(|r| !r.detail.contains("L1001")));
    gw.stop().await;
}

#[tokio::test]
async fn hostile_parameters_are_shown_escaped() {
    let mut gw = TestGateway::start_with(Options {
        admin: true,
        ..Options::default()
    })
    .await;
    let fg = gw.admin_client("fg-convenant");
    let hostile = "%3Cscript%3Ealert(1)%3C%2Fscript%3E%22'%26";
    let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&amp;";
    // An invalid period is refused with a message that names it.
    for r in [
        get(&fg, &format!("/zoeken?van={hostile}")).await,
        post(&fg, "/zoeken", &format!("tot={hostile}")).await,
        get(&fg, &format!("/rapport?van={hostile}")).await,
    ] {
        assert_eq!(r.status, 400);
        let page = text(&r);
        assert!(!page.contains("<script"), "{page}");
        assert!(page.contains(&format!("`{escaped}`")), "{page}");
    }
    // A record is looked up by the instance asked for, which the page names.
    let r = get(&fg, &format!("/record?instance={hostile}&seq=1")).await;
    assert_eq!(r.status, 200);
    let page = text(&r);
    assert!(!page.contains("<script"), "{page}");
    assert!(page.contains(&format!("<h1>Vastlegging {escaped}#1</h1>")));
    gw.stop().await;
}

#[tokio::test]
async fn other_organisations_are_refused_and_leave_no_access_record() {
    let mut gw = gateway_with_traffic().await;
    for org in ["wij-groningen", "gemeente-groningen"] {
        let c = gw.admin_client(org);
        for r in [
            get(&c, "/").await,
            get(&c, "/zoeken").await,
            post(&c, "/inzage", "leerling=L1001").await,
            get(&c, "/rapport").await,
        ] {
            assert_eq!(r.status, 403, "{org}");
            assert!(text(&r).contains("Geen toegang"));
            assert!(!text(&r).contains("WIJ Groningen (demo)"));
        }
        // Operations endpoints need only a verified certificate.
        assert_eq!(get(&c, "/health").await.status, 200);
    }
    let rows = gw.audit_rows().await;
    assert!(rows.iter().all(|r| r.kind != "access"));
    gw.stop().await;
}

#[tokio::test]
async fn operations_endpoints_report_health_readiness_and_metrics() {
    let mut gw = gateway_with_traffic().await;
    let ops = gw.admin_client("gemeente-groningen");
    let health = get(&ops, "/health").await;
    assert_eq!(
        (health.status.as_u16(), text(&health).as_str()),
        (200, "ok\n")
    );
    let ready = get(&ops, "/ready").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["ready"], true);

    // One denied request with an overleg that does not exist: counted as unknown.
    let lp = gw.client("gemeente-groningen");
    assert_eq!(
        lp.get(
            "/v1/bestaat-niet/las-noorderlicht/leerlingen/L1001/verzuim",
            "aanpak-verzuim"
        )
        .await
        .status,
        404
    );
    let m = text(&get(&ops, "/metrics").await);
    assert!(
        m.contains(
            "poortwachter_requests_total{decision=\"allowed\",overleg=\"aoj-vo-noorderlicht\"} 3\n"
        ),
        "{m}"
    );
    assert!(
        m.contains(
            "poortwachter_requests_total{decision=\"filtered\",overleg=\"aoj-vo-noorderlicht\"} 1\n"
        ),
        "{m}"
    );
    assert!(
        m.contains("poortwachter_requests_total{decision=\"denied\",overleg=\"unknown\"} 1\n"),
        "{m}"
    );
    assert!(!m.contains("bestaat-niet"));
    assert!(
        m.contains("poortwachter_audit_commit_seconds_count 5\n"),
        "{m}"
    );
    assert!(m.contains("poortwachter_request_duration_seconds_bucket{le=\"+Inf\"} 5\n"));
    assert!(m.contains("poortwachter_audit_queue_depth 0\n"));
    assert!(m.contains("poortwachter_audit_records_unwritten_total 0\n"));
    assert!(m.contains("poortwachter_reloads_total{kind=\"policy\",result=\"ok\"} 0\n"));
    // Four status lookups (L1001, L1002, L1002, L1001 in one overleg): the
    // repeats are answered from memory.
    let lookups = |source: &str| -> u64 {
        let prefix = format!("poortwachter_register_lookups_total{{source=\"{source}\"}} ");
        m.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(lookups("memory") + lookups("store"), 4, "{m}");
    assert!(lookups("memory") >= 1, "{m}");
    assert!(lookups("store") >= 2, "{m}");
    let expiry: i64 = m
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                "poortwachter_certificate_expiry_timestamp_seconds{certificate=\"gateway\"} ",
            )
        })
        .unwrap()
        .parse()
        .unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(expiry > now + 300 * 86_400 && expiry < now + 400 * 86_400);

    // A register change commits its own record (with the change); it is
    // counted as well, as `event` like its record in the trail.
    let r = lp
        .request(
            Method::POST,
            "/registers/v1/aoj-vo-noorderlicht/aanmeldingen",
            &[("content-type", "application/json")],
            Some(br#"{"leerling":"L2001","referentie":"AOJ-2026-17"}"#.to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let m = text(&get(&ops, "/metrics").await);
    assert!(
        m.contains(
            "poortwachter_requests_total{decision=\"event\",overleg=\"aoj-vo-noorderlicht\"} 1\n"
        ),
        "{m}"
    );
    assert!(m.contains("poortwachter_request_duration_seconds_bucket{le=\"+Inf\"} 6\n"));
    assert!(!m.contains("L2001"));

    gw.stop().await;
}

/// Whether the gateway has closed `s` (end of stream or reset); `false` while
/// it is still open. `s` is non-blocking.
fn closed_by_peer(mut s: &std::net::TcpStream) -> bool {
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

/// Opens `n` TCP connections to `addr` that never send a TLS byte.
async fn idle_flood(addr: std::net::SocketAddr, n: usize) -> Vec<std::net::TcpStream> {
    let mut flood = Vec::new();
    for _ in 0..n {
        let s = tokio::net::TcpStream::connect(addr).await.unwrap();
        flood.push(s.into_std().unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    flood
}

/// The flood holds at most `max_handshakes` connections open (every older
/// one was closed to make room for a newer one), and the rest are closed by
/// the handshake deadline: between `deadline` and 2 s after it, from `started`.
async fn assert_flood_bounded(
    flood: &[std::net::TcpStream],
    max_handshakes: usize,
    started: Instant,
    deadline: Duration,
) {
    let open = flood.iter().filter(|s| !closed_by_peer(s)).count();
    assert!(open <= max_handshakes, "{open} idle connections still open");
    while flood.iter().any(|s| !closed_by_peer(s)) {
        assert!(
            started.elapsed() < deadline + Duration::from_secs(2),
            "idle connections still open after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(started.elapsed() > deadline.checked_sub(Duration::from_millis(500)).unwrap());
}

#[tokio::test]
async fn an_idle_tcp_flood_does_not_lock_the_fg_out_of_the_admin_listener() {
    let mut gw = TestGateway::start_with(Options {
        admin: true,
        ..Options::default()
    })
    .await;
    let fg = gw.admin_client("fg-convenant");
    // 200 connections that never start TLS, against the default limits:
    // admin.max_connections 64, admin.max_handshakes 16, and
    // admin.handshake_timeout_ms 2500 (the gateway's is 10 s).
    let started = Instant::now();
    let flood = idle_flood(gw.admin_addr.unwrap(), 200).await;

    // While the flood is open, the FG's own handshake completes and is served.
    let asked = Instant::now();
    let health = fg.request(Method::GET, "/health", &[], None).await;
    let took = asked.elapsed();
    let status = health.as_ref().map(|r| r.status.as_u16());
    assert_eq!(status, Ok(200), "after {took:?}");
    assert!(took < Duration::from_millis(1500), "/health took {took:?}");

    assert_flood_bounded(&flood, 16, started, Duration::from_millis(2500)).await;
    assert_eq!(get(&fg, "/health").await.status, 200);
    gw.stop().await;
}

/// The gateway listener runs the same accept loop with its own limits.
#[tokio::test]
async fn an_idle_tcp_flood_does_not_lock_partners_out_of_the_gateway() {
    let mut gw = TestGateway::start_with(Options {
        server_extra: "max_connections = 64\nmax_handshakes = 16\nhandshake_timeout_ms = 2000"
            .into(),
        ..Options::default()
    })
    .await;
    let lp = gw.client("gemeente-groningen");
    let started = Instant::now();
    let flood = idle_flood(gw.addr, 200).await;

    let asked = Instant::now();
    let r = lp
        .request(
            Method::GET,
            &verzuim("L1001"),
            &[("x-doelbinding", "aanpak-verzuim")],
            None,
        )
        .await;
    let took = asked.elapsed();
    let status = r.as_ref().map(|r| r.status.as_u16());
    assert_eq!(status, Ok(200), "after {took:?}");
    assert!(took < Duration::from_millis(1500), "request took {took:?}");

    assert_flood_bounded(&flood, 16, started, Duration::from_secs(2)).await;
    gw.stop().await;
}

#[tokio::test]
async fn the_inzage_page_never_echoes_the_pupil_id() {
    let mut gw = gateway_with_traffic().await;
    let fg = gw.admin_client("fg-convenant");
    let inz = post(&fg, "/inzage", "leerling=L1001").await;
    assert_eq!(inz.status, 200);
    let page = text(&inz);
    // Not in the title, the headings, the form nor anywhere else.
    assert!(!page.contains("L1001"), "{page}");
    let title = page
        .split_once("<title>")
        .and_then(|(_, t)| t.split_once("</title>"))
        .map(|(t, _)| t)
        .unwrap();
    assert!(!title.contains("k1:"), "{title}");
    // The pupil input stays empty, and the browser is asked not to keep it.
    let input = page
        .split("<input")
        .find(|i| i.contains("name=\"leerling\""))
        .unwrap();
    assert!(!input.contains("value="), "{input}");
    assert!(input.contains("autocomplete=\"off\""), "{input}");
    // Still the report, naming the pupil by pseudonym.
    assert!(page.contains("Verstrekkingen (2)"), "{page}");
    assert!(page.contains("WIJ Groningen (demo)"));
    assert!(page.contains(&format!(
        "Inzageverzoek (artikel 15 AVG) voor leerling <strong>{}</strong>",
        gw.pseudonym("L1001")
    )));
    // The pupil id is not in the headers either (no redirect, no cookie).
    for (name, value) in &inz.headers {
        assert!(
            !value.as_bytes().windows(5).any(|w| w == b"L1001"),
            "{name}"
        );
    }
    assert_eq!(inz.header("cache-control"), Some("no-store"));
    gw.stop().await;
}

/// `/ontvangen` (what an organisation received per field) and
/// `/kennisgevingen` (open notifications until every recipient is marked),
/// each view recorded; the kennisgeving is registered and marked with the
/// CLI's session while the gateway serves.
async fn received_and_open_notifications(store: StoreKind) {
    let mut gw = TestGateway::start_with(Options {
        admin: true,
        store,
        ..Options::default()
    })
    .await;
    let lp = gw.client("gemeente-groningen");
    let wij = gw.client("wij-groningen");
    for p in ["L1001", "L1002", "L1002"] {
        assert_eq!(lp.get(&verzuim(p), "aanpak-verzuim").await.status, 200);
    }
    assert_eq!(
        wij.get(&verzuim("L1001"), "afstemming-ondersteuning")
            .await
            .status,
        200
    );
    let fg = gw.admin_client("fg-convenant");

    let form = text(&get(&fg, "/ontvangen").await);
    assert!(form.contains("<select name=\"org\">"), "{form}");
    assert!(!form.contains("id=\"samenvatting\""));
    let page = text(
        &get(
            &fg,
            "/ontvangen?org=gemeente-groningen&overleg=aoj-vo-noorderlicht&van=2020-01-01&tot=2999-12-31",
        )
        .await,
    );
    assert!(
        page.contains("<strong>3 verstrekking(en)</strong> over <strong>2 leerling(en)</strong>"),
        "{page}"
    );
    assert!(page.contains("Ongeoorloofd verzuim dit schooljaar (uren)"));
    assert!(page.contains("<option value=\"gemeente-groningen\" selected>"));
    assert!(!page.contains("k1:"), "counts only, no pseudonyms");
    let bad = get(&fg, "/ontvangen?org=Geen+id&overleg=aoj-vo-noorderlicht").await;
    assert_eq!(bad.status, 400);

    let open = |page: &str, n: usize| {
        page.contains(&format!(
            "<p id=\"open\">{n} kennisgeving(en) nog niet afgerond"
        ))
    };
    let empty = text(&get(&fg, "/kennisgevingen").await);
    assert!(
        empty.contains("<h1>Kennisgevingen: nog te melden</h1>"),
        "{empty}"
    );
    assert!(open(&empty, 0), "{empty}");

    let cfg = poortwachter::config::Config::load(&gw.config_path).unwrap();
    let s = poortwachter::review::session::Session::open(&cfg)
        .await
        .unwrap();
    let k = s
        .kennisgeving(
            "L1001",
            "2020-01-01",
            &[],
            true,
            poortwachter::review::session::ReportFormat::Json,
        )
        .await
        .unwrap();
    let id = k.id.clone().unwrap();
    let listed = text(&get(&fg, "/kennisgevingen").await);
    assert!(open(&listed, 1), "{listed}");
    assert!(listed.contains(&format!("<code>{id}</code>")));
    assert!(
        listed.contains(
            "<li>Gemeente Groningen, Leerplicht/RMC (demo) <code>gemeente-groningen</code></li>"
        ),
        "{listed}"
    );
    assert!(listed.contains("<li>WIJ Groningen (demo) <code>wij-groningen</code></li>"));
    assert!(listed.contains(&gw.pseudonym("L1001")[..11]));
    assert!(!listed.contains("L1001"));

    s.kennisgeving_gemeld(&id, "gemeente-groningen", "brief 2026-118")
        .await
        .unwrap();
    let half = text(&get(&fg, "/kennisgevingen").await);
    assert!(open(&half, 1), "{half}");
    assert!(half.contains("<li>WIJ Groningen (demo) <code>wij-groningen</code></li>"));
    assert!(!half.contains("<li>Gemeente Groningen, Leerplicht/RMC (demo) <code>"));
    assert!(half.contains("(brief 2026-118)"), "{half}");

    s.kennisgeving_gemeld(&id, "wij-groningen", "mail 12")
        .await
        .unwrap();
    s.close().await;
    let done = text(&get(&fg, "/kennisgevingen").await);
    assert!(
        done.contains("<p id=\"open\">0 kennisgeving(en) nog niet afgerond; 1 afgerond."),
        "{done}"
    );
    assert!(!done.contains(&id));

    // Other organisations see neither page.
    let other = gw.admin_client("wij-groningen");
    for path in ["/ontvangen", "/kennisgevingen"] {
        assert_eq!(get(&other, path).await.status, 403);
    }
    let rows = gw.audit_rows().await;
    let views: Vec<&str> = rows
        .iter()
        .filter(|r| r.kind == "access" && r.org.as_deref() == Some("fg-convenant"))
        .map(|r| r.reason.as_str())
        .collect();
    assert_eq!(
        views,
        [
            "dashboard",
            "ontvangen",
            "kennisgevingen",
            "kennisgevingen",
            "kennisgevingen",
            "kennisgevingen"
        ]
    );
    let seen = rows
        .iter()
        .find(|r| r.kind == "access" && r.reason == "ontvangen")
        .unwrap();
    assert!(seen.detail.contains("\"disclosures\":3"), "{}", seen.detail);
    assert!(
        rows.iter()
            .all(|r| !serde_json::to_string(r).unwrap().contains("L1001"))
    );
    gw.stop().await;
}

#[tokio::test]
async fn sqlite_the_fg_sees_what_was_received_and_the_open_notifications() {
    received_and_open_notifications(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_the_fg_sees_what_was_received_and_the_open_notifications() {
    received_and_open_notifications(StoreKind::Postgres).await;
}

/// Issue 18: the verification page runs a verification in the background
/// (incremental from the last verified heads, or full) without holding the
/// request, and shows its outcome when it is done; the policy changes page
/// lists reloads with their approvals; every view and every run is recorded.
#[tokio::test]
async fn verification_runs_in_the_background_and_policy_changes_are_listed() {
    let mut gw = gateway_with_traffic().await;
    let fg = gw.admin_client("fg-convenant");
    // The first visit runs a full verification, as before.
    let first = get(&fg, "/verificatie").await;
    assert_eq!(first.status, 200);
    assert!(
        text(&first).contains("id=\"status\">In orde"),
        "{}",
        text(&first)
    );
    assert!(text(&first).contains("(volledig)"));
    // More traffic, then an incremental run started from the form.
    let lp = gw.client("gemeente-groningen");
    for _ in 0..3 {
        assert_eq!(
            lp.get(&verzuim("L1003"), "aanpak-verzuim").await.status,
            200
        );
    }
    let started = post(&fg, "/verificatie", "soort=incrementeel").await;
    assert_eq!(started.status, 200);
    assert!(
        text(&started).contains("id=\"bezig\""),
        "{}",
        text(&started)
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let done = loop {
        let page = get(&fg, "/verificatie").await;
        let t = text(&page);
        if !t.contains("id=\"bezig\"") && t.contains("(incrementeel") {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "the background verification did not finish: {t}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(done.contains("id=\"status\">In orde"), "{done}");

    // A reload, then the changes page.
    let stats = poortwachter::gateway::reload::ReloadStats::default();
    let audit = gw.state.audit.downgrade();
    assert!(
        poortwachter::gateway::reload::reload_policy(&gw.state.policy, &audit, &stats, "test")
            .await
    );
    let changes = get(&fg, "/wijzigingen").await;
    assert_eq!(changes.status, 200);
    assert!(
        text(&changes).contains("policy-reloaded"),
        "{}",
        text(&changes)
    );
    assert!(text(&changes).contains("1 wijziging(en)"));

    let rows = gw.audit_rows().await;
    let access: Vec<(&str, serde_json::Value)> = rows
        .iter()
        .filter(|r| r.kind == "access")
        .map(|r| (r.reason.as_str(), serde_json::from_str(&r.detail).unwrap()))
        .collect();
    let actions: Vec<&str> = access.iter().map(|a| a.0).collect();
    for a in ["verify", "verify-start", "verify-status", "wijzigingen"] {
        assert!(actions.contains(&a), "{a} not in {actions:?}");
    }
    let background = access
        .iter()
        .find(|a| a.0 == "verify" && a.1["parameters"]["background"] == true)
        .unwrap_or_else(|| panic!("no background run recorded: {access:?}"));
    assert_eq!(background.1["parameters"]["incremental"], true);
}

/// Issue 18: a page that cannot be made before the deadline stops, answers
/// 503, and its access record says it was not shown (nothing read for the
/// FG), instead of working on and recording a page nobody saw.
#[tokio::test]
async fn a_page_that_times_out_is_recorded_as_not_shown() {
    let mut gw = TestGateway::start_with(Options {
        admin: true,
        // The page's own deadline is 250 ms before this: none at all.
        admin_extra: "request_timeout_ms = 250".into(),
        ..Options::default()
    })
    .await;
    let fg = gw.admin_client("fg-convenant");
    let r = get(&fg, "/verificatie").await;
    assert_eq!(r.status, 503);
    assert!(text(&r).contains("niets getoond"), "{}", text(&r));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rows = gw.audit_rows().await;
    let access: Vec<_> = rows.iter().filter(|r| r.kind == "access").collect();
    assert_eq!(access.len(), 1, "{access:?}");
    assert_eq!(access[0].reason, "page-timeout");
    let d: serde_json::Value = serde_json::from_str(&access[0].detail).unwrap();
    assert_eq!(d["parameters"]["shown"], false);
    assert_eq!(d["parameters"]["page"], "/verificatie");
    assert_eq!(d["records"], 0);
}
