//! End-to-end behaviour of the gateway over real mTLS on loopback, on the
//! example policies, with certificates minted per test.
#![allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "a scenario reads top to bottom (tests are exempt from the 80-line rule); test counts are small"
)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use http::Method;
use poortwachter::dev::certs::ClientSpec;

const VERZUIM: &str = "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1001/verzuim";

#[tokio::test]
async fn allowed_request_returns_every_permitted_field_and_is_audited() {
    let mut gw = TestGateway::start().await;
    let lp = gw.client("gemeente-groningen");
    let r = lp.get(VERZUIM, "aanpak-verzuim").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.header("x-poortwachter-withheld"), Some("0"));
    let doc = r.json();
    assert_eq!(doc["leerling"]["voornaam"], "Sanne");
    assert!(
        doc["verzuim"]["meldingen"]
            .as_array()
            .is_some_and(|m| m.len() == 2)
    );
    // Dutch API Design Rules security headers.
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert!(r.header("traceparent").is_some());

    let rows = gw.audit_rows().await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.outcome, "allowed");
    assert_eq!(row.org.as_deref(), Some("gemeente-groningen"));
    assert_eq!(row.role.as_deref(), Some("leerplicht"));
    assert_eq!(
        row.resource.as_deref(),
        Some("/leerlingen/{leerling}/verzuim")
    );
    assert_eq!(row.pupil.as_deref(), Some(gw.pseudonym("L1001").as_str()));
    assert!(row.fields_shared.contains("verzuim.meldingen[].datum"));
    assert!(
        row.grondslag
            .as_deref()
            .is_some_and(|g| g.contains("Leerplichtwet"))
    );
    assert_eq!(row.status, 200);
}

#[tokio::test]
async fn filtered_request_withholds_fields_and_says_how_many() {
    let mut gw = TestGateway::start().await;
    let wij = gw.client("wij-groningen");
    let r = wij.get(VERZUIM, "afstemming-ondersteuning").await;
    assert_eq!(r.status, 200);
    let withheld: usize = r
        .header("x-poortwachter-withheld")
        .unwrap()
        .parse()
        .unwrap();
    assert!(withheld > 0);
    let doc = r.json();
    // The rule gives WIJ names but not the pupil number or absence details.
    assert_eq!(doc["leerling"]["voornaam"], "Sanne");
    assert!(doc["leerling"].get("leerlingnummer").is_none());
    assert!(doc.get("verzuim").is_none(), "{doc}");
    let rows = gw.audit_rows().await;
    assert_eq!(rows[0].outcome, "filtered");
    let withheld_names: Vec<String> = serde_json::from_str(&rows[0].fields_withheld).unwrap();
    assert_eq!(withheld_names.len(), withheld);
    assert!(withheld_names.contains(&"leerling.leerlingnummer".to_string()));
}

#[tokio::test]
async fn undeclared_upstream_keys_are_withheld_by_name() {
    let mut gw = TestGateway::start().await;
    let wij = gw.client("wij-groningen");
    // The demo school administration adds `interne_notitie`, which is not in
    // its catalogue, to the full dossier.
    let r = wij
        .get(
            "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1002",
            "afstemming-ondersteuning",
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json().get("interne_notitie").is_none());
    assert!(!String::from_utf8_lossy(&r.body).contains("catalogus"));
    let rows = gw.audit_rows().await;
    assert!(
        rows[0]
            .fields_withheld
            .contains("(undeclared) interne_notitie"),
        "{}",
        rows[0].fields_withheld
    );
}

#[tokio::test]
async fn denied_request_is_a_problem_and_audited_without_data() {
    let mut gw = TestGateway::start().await;
    let lp = gw.client("gemeente-groningen");
    let r = lp
        .get(
            "/v1/aoj-vo-noorderlicht/jgz-dossier/jeugdigen/L1001/advies",
            "aanpak-verzuim",
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.problem_type(), "no-rule");
    assert_eq!(r.json()["side"], "client");
    let rows = gw.audit_rows().await;
    assert_eq!(rows[0].outcome, "denied");
    assert_eq!(rows[0].reason, "no-rule");
    assert_eq!(rows[0].fields_shared, "[]");
    assert_eq!(
        rows[0].upstream_status, None,
        "a denied request never reaches the bron"
    );
}

#[tokio::test]
async fn consent_rules_deny_without_an_active_consent() {
    let mut gw = TestGateway::start().await;
    let school = gw.client("vo-noorderlicht");
    let r = school
        .get(
            "/v1/aoj-vo-noorderlicht/jgz-dossier/jeugdigen/L1001/advies",
            "belastbaarheid",
        )
        .await;
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.problem_type(), "consent-required");
    assert!(r.json()["detail"].as_str().unwrap().contains("consent"));
}

#[tokio::test]
async fn post_bodies_are_filtered_in_the_other_direction() {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen2 = Arc::clone(&seen);
    let upstream = spawn_upstream(Arc::new(move |_m, path, _h| {
        seen2.lock().unwrap().push(path.to_owned());
        (
            201,
            "application/json",
            br#"{"ok":true,"geheim":"x"}"#.to_vec(),
            Duration::ZERO,
        )
    }))
    .await;
    let opts = Options::with_bron_url("leerplicht-register", format!("http://{upstream}"));
    let mut gw = TestGateway::start_with(opts).await;
    let school = gw.client("vo-noorderlicht");
    let body = serde_json::json!({"melding": {"datum": "2026-11-20", "soort": "ongeoorloofd", "uren": 8}, "prive": "niet delen"});
    let r = school
        .request(
            Method::POST,
            "/v1/aoj-vo-noorderlicht/leerplicht-register/leerlingen/L1003/meldingen",
            &[
                ("x-doelbinding", "aanpak-verzuim"),
                ("content-type", "application/json"),
            ],
            Some(body.to_string().into_bytes()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("x-poortwachter-withheld"), Some("1"));
    // The bron's answer is not passed back: only the status.
    assert_eq!(r.json(), serde_json::json!({}));
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        ["/leerlingen/L1003/meldingen"]
    );
    let rows = gw.audit_rows().await;
    assert!(rows[0].fields_withheld.contains("prive"));
}

#[tokio::test]
async fn works_over_http2_and_http1() {
    let mut gw = TestGateway::start().await;
    let issued = gw.pki.client_for("gemeente-groningen");
    for h2 in [false, true] {
        let c = gw.client_with(Some(&issued), h2);
        let r = c.get(VERZUIM, "aanpak-verzuim").await;
        assert_eq!(r.status, 200, "http2={h2}");
    }
}

#[tokio::test]
async fn routing_and_policy_errors_are_clear_problems() {
    let mut gw = TestGateway::start().await;
    let lp = gw.client("gemeente-groningen");
    let wij = gw.client("wij-groningen");
    let cases: Vec<(TestResponse, u16, &str)> = vec![
        (
            lp.get(
                "/v1/bestaat-niet/las-noorderlicht/leerlingen/L1001/verzuim",
                "aanpak-verzuim",
            )
            .await,
            404,
            "unknown-overleg",
        ),
        (
            lp.get(
                "/v1/aoj-vo-noorderlicht/bestaat-niet/leerlingen/L1001/verzuim",
                "aanpak-verzuim",
            )
            .await,
            404,
            "unknown-bron",
        ),
        (
            lp.get(
                "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1001/cijfers",
                "aanpak-verzuim",
            )
            .await,
            404,
            "undeclared-resource",
        ),
        (
            lp.get(
                "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen",
                "aanpak-verzuim",
            )
            .await,
            404,
            "undeclared-resource",
        ),
        (lp.get(VERZUIM, "iets-anders").await, 403, "unknown-purpose"),
        (
            lp.request(Method::GET, VERZUIM, &[], None).await.unwrap(),
            400,
            "purpose-required",
        ),
        (
            lp.request(
                Method::GET,
                VERZUIM,
                &[("x-doelbinding", "aanpak-verzuim"), ("x-rol", "jeugdwet")],
                None,
            )
            .await
            .unwrap(),
            403,
            "role-not-held",
        ),
        (
            lp.request(
                Method::GET,
                VERZUIM,
                &[("x-doelbinding", "Aanpak Verzuim")],
                None,
            )
            .await
            .unwrap(),
            400,
            "bad-header",
        ),
        (
            lp.request(
                Method::DELETE,
                VERZUIM,
                &[("x-doelbinding", "aanpak-verzuim")],
                None,
            )
            .await
            .unwrap(),
            405,
            "method-not-supported",
        ),
        (
            lp.request(
                Method::POST,
                VERZUIM,
                &[
                    ("x-doelbinding", "aanpak-verzuim"),
                    ("content-type", "application/json"),
                ],
                Some(b"{}".to_vec()),
            )
            .await
            .unwrap(),
            405,
            "method-not-allowed",
        ),
        (
            wij.get(
                "/v1/mazl/las-noorderlicht/leerlingen/L1001/verzuim",
                "medisch-advies",
            )
            .await,
            403,
            "not-a-participant",
        ),
        (
            lp.get(&format!("{VERZUIM}?x=1"), "aanpak-verzuim").await,
            400,
            "query-not-allowed",
        ),
        (
            lp.get(
                "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L9999/verzuim",
                "aanpak-verzuim",
            )
            .await,
            404,
            "upstream-not-found",
        ),
    ];
    assert_eq!(cases[8].0.header("allow"), Some("GET, POST, PUT"));
    assert_eq!(cases[9].0.header("allow"), Some("GET"));
    for (i, (r, status, kind)) in cases.iter().enumerate() {
        assert_eq!(
            r.status.as_u16(),
            *status,
            "case {i}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.problem_type(), *kind, "case {i}");
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
    }
    // Every request, refused or not, has exactly one record.
    assert_eq!(gw.audit_rows().await.len(), cases.len());
}

#[tokio::test]
async fn an_organisation_with_two_hats_must_say_which() {
    let mut gw = TestGateway::start().await;
    let gem = gw.client("gemeente-groningen");
    let path = "/v1/verdiepend-verzuim-vo/las-noorderlicht/leerlingen/L1001/verzuim";
    let set = poortwachter::policy::load_dir(std::path::Path::new(POLICIES)).unwrap();
    let o = &set.overleggen["verdiepend-verzuim-vo"];
    let roles: Vec<_> = o
        .roles_of("gemeente-groningen")
        .map(|r| r.id.clone())
        .collect();
    assert!(
        roles.len() >= 2,
        "example policy must give the gemeente two hats here"
    );
    let purpose = &o.purposes[0].id;
    let r = gem.get(path, purpose).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.problem_type(), "role-required");
    let r = gem
        .request(
            Method::GET,
            path,
            &[("x-doelbinding", purpose), ("x-rol", &roles[0])],
            None,
        )
        .await
        .unwrap();
    assert_ne!(r.problem_type(), "role-required");
}

#[tokio::test]
async fn traversal_and_encoded_paths_are_refused() {
    let mut gw = TestGateway::start().await;
    let lp = gw.client("gemeente-groningen");
    for p in [
        "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/../leerlingen/L1001/verzuim",
        "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1001%2Fverzuim",
        "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1001%252Fverzuim",
        "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/%2e%2e/verzuim",
        "/v1/aoj-vo-noorderlicht/las-noorderlicht//leerlingen/L1001/verzuim",
        "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1001/verzuim/",
        "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1001\\verzuim",
    ] {
        let r = lp
            .request(Method::GET, p, &[("x-doelbinding", "aanpak-verzuim")], None)
            .await;
        match r {
            Ok(r) => {
                assert_eq!(r.status, 404, "{p}");
                assert!(
                    ["unsafe-path", "bad-path"].contains(&r.problem_type().as_str()),
                    "{p}: {}",
                    r.problem_type()
                );
            }
            // The client library may refuse to send some of these at all.
            Err(e) => assert!(!e.is_empty()),
        }
    }
}

#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_bron() {
    let seen = Arc::new(Mutex::new(Vec::<http::HeaderMap>::new()));
    let seen2 = Arc::clone(&seen);
    let upstream = spawn_upstream(Arc::new(move |_m, _p, h| {
        seen2.lock().unwrap().push(h.clone());
        (
            200,
            "application/json",
            br#"{"leerling":{"voornaam":"X"}}"#.to_vec(),
            Duration::ZERO,
        )
    }))
    .await;
    let opts = Options::with_bron_url("las-noorderlicht", format!("http://{upstream}"));
    let mut gw = TestGateway::start_with(opts).await;
    let wij = gw.client("wij-groningen");
    let r = wij
        .request(
            Method::GET,
            VERZUIM,
            &[
                ("x-doelbinding", "afstemming-ondersteuning"),
                ("x-poortwachter-organisatie", "gemeente-groningen"),
                ("x-poortwachter-rol", "leerplicht"),
                ("x-ssl-client-cert", "forged"),
                ("x-forwarded-for", "10.0.0.1"),
                ("authorization", "Bearer stolen"),
                ("cookie", "a=b"),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let h = seen.lock().unwrap()[0].clone();
    assert_eq!(h["x-poortwachter-organisatie"], "wij-groningen");
    assert_eq!(h["x-poortwachter-rol"], "jeugdwet");
    for name in [
        "x-ssl-client-cert",
        "x-forwarded-for",
        "authorization",
        "cookie",
        "x-doelbinding",
    ] {
        assert!(h.get(name).is_none(), "{name} was forwarded");
    }
    assert!(h.get("traceparent").is_some());
}

#[tokio::test]
async fn traceparent_is_propagated() {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen2 = Arc::clone(&seen);
    let upstream = spawn_upstream(Arc::new(move |_m, _p, h| {
        seen2
            .lock()
            .unwrap()
            .push(h["traceparent"].to_str().unwrap().to_owned());
        (200, "application/json", b"{}".to_vec(), Duration::ZERO)
    }))
    .await;
    let opts = Options::with_bron_url("las-noorderlicht", format!("http://{upstream}"));
    let mut gw = TestGateway::start_with(opts).await;
    let lp = gw.client("gemeente-groningen");
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = lp
        .request(
            Method::GET,
            VERZUIM,
            &[("x-doelbinding", "aanpak-verzuim"), ("traceparent", tp)],
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.header("traceparent"), Some(tp));
    assert!(seen.lock().unwrap()[0].contains("4bf92f3577b34da6a3ce929d0e0e4736"));
    assert_eq!(
        gw.audit_rows().await[0].trace_id,
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
}

async fn gateway_with_upstream(handler: Handler, server_extra: &str) -> TestGateway {
    let upstream = spawn_upstream(handler).await;
    TestGateway::start_with(Options {
        server_extra: server_extra.to_owned(),
        ..Options::with_bron_url("las-noorderlicht", format!("http://{upstream}"))
    })
    .await
}

#[tokio::test]
async fn bad_upstream_answers_are_refused_never_passed_through() {
    let cases: Vec<(Handler, u16, &str)> = vec![
        (
            Arc::new(|_, _, _| {
                (
                    200,
                    "application/json",
                    b"{not json".to_vec(),
                    Duration::ZERO,
                )
            }),
            502,
            "upstream-not-json",
        ),
        (
            Arc::new(|_, _, _| {
                (
                    200,
                    "text/html",
                    b"<html>Sanne de Vries</html>".to_vec(),
                    Duration::ZERO,
                )
            }),
            502,
            "upstream-not-json",
        ),
        (
            Arc::new(|_, _, _| {
                (
                    200,
                    "application/json",
                    b"[{\"a\":1}]".to_vec(),
                    Duration::ZERO,
                )
            }),
            502,
            "upstream-not-json",
        ),
        (
            Arc::new(|_, _, _| {
                (
                    500,
                    "application/json",
                    b"{\"stack\":\"secret\"}".to_vec(),
                    Duration::ZERO,
                )
            }),
            502,
            "upstream-error",
        ),
        (
            Arc::new(|_, _, _| {
                (
                    200,
                    "application/json",
                    format!(
                        "{{\"leerling\":{{\"voornaam\":\"{}\"}}}}",
                        "x".repeat(70_000)
                    )
                    .into_bytes(),
                    Duration::ZERO,
                )
            }),
            502,
            "upstream-too-large",
        ),
        (
            Arc::new(|_, _, _| {
                (
                    200,
                    "application/json",
                    b"{}".to_vec(),
                    Duration::from_secs(3),
                )
            }),
            504,
            "upstream-timeout",
        ),
    ];
    for (i, (h, status, kind)) in cases.into_iter().enumerate() {
        let mut gw = gateway_with_upstream(h, "max_response_body_bytes = 65536").await;
        let lp = gw.client("gemeente-groningen");
        let r = lp.get(VERZUIM, "aanpak-verzuim").await;
        assert_eq!(r.status.as_u16(), status, "case {i}");
        assert_eq!(r.problem_type(), kind, "case {i}");
        assert!(!String::from_utf8_lossy(&r.body).contains("secret"));
        assert!(!String::from_utf8_lossy(&r.body).contains("Sanne"));
        assert_eq!(r.json()["side"], "upstream");
    }
}

#[tokio::test]
async fn upstream_down_is_a_502() {
    // Bind and drop: nothing listens on that port any more.
    let port = spare_port();
    let opts = Options::with_bron_url("las-noorderlicht", format!("http://127.0.0.1:{port}"));
    let mut gw = TestGateway::start_with(opts).await;
    let r = gw
        .client("gemeente-groningen")
        .get(VERZUIM, "aanpak-verzuim")
        .await;
    assert_eq!(r.status, 502);
    assert_eq!(r.problem_type(), "upstream-unreachable");
}

#[tokio::test]
async fn oversized_request_body_is_refused() {
    let mut gw = TestGateway::start_with(Options {
        server_extra: "max_request_body_bytes = 1024".into(),
        ..Options::default()
    })
    .await;
    let school = gw.client("vo-noorderlicht");
    let big = format!(
        "{{\"melding\":{{\"toelichting\":\"{}\"}}}}",
        "x".repeat(5000)
    );
    let r = school
        .request(
            Method::POST,
            "/v1/aoj-vo-noorderlicht/leerplicht-register/leerlingen/L1003/meldingen",
            &[
                ("x-doelbinding", "aanpak-verzuim"),
                ("content-type", "application/json"),
            ],
            Some(big.into_bytes()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 413);
    assert_eq!(r.problem_type(), "body-too-large");
}

// ---- TLS and identity ----

async fn refused(client: &TestClient) -> bool {
    client
        .request(
            Method::GET,
            VERZUIM,
            &[("x-doelbinding", "aanpak-verzuim")],
            None,
        )
        .await
        .is_err()
}

#[tokio::test]
async fn tls_refuses_missing_foreign_expired_and_wrong_usage_certificates() {
    let mut gw = TestGateway::start().await;
    let set = poortwachter::policy::load_dir(std::path::Path::new(POLICIES)).unwrap();
    let oin = set.organisations["gemeente-groningen"].oin.clone();
    // Positive control.
    let good = gw.pki.client_for("gemeente-groningen");
    assert!(!refused(&gw.client_with(Some(&good), false)).await);
    // No certificate.
    assert!(refused(&gw.client_with(None, false)).await);
    // Another CA, same subject.
    let mut other = poortwachter::dev::certs::DevCa::new("Other CA").unwrap();
    let foreign = other
        .client(&ClientSpec::new("gemeente-groningen", oin.as_deref()))
        .unwrap();
    assert!(refused(&gw.client_with(Some(&foreign), false)).await);
    // Expired and not yet valid.
    let now = time::OffsetDateTime::now_utc();
    let mut spec = ClientSpec::new("gemeente-groningen", oin.as_deref());
    spec.not_before = now - time::Duration::days(30);
    spec.not_after = now - time::Duration::days(1);
    let expired = gw.pki.ca.client(&spec).unwrap();
    assert!(refused(&gw.client_with(Some(&expired), false)).await);
    let mut spec = ClientSpec::new("gemeente-groningen", oin.as_deref());
    spec.not_before = now + time::Duration::days(1);
    spec.not_after = now + time::Duration::days(30);
    let future = gw.pki.ca.client(&spec).unwrap();
    assert!(refused(&gw.client_with(Some(&future), false)).await);
    // Server-auth key usage only.
    let mut spec = ClientSpec::new("gemeente-groningen", oin.as_deref());
    spec.eku = rcgen::ExtendedKeyUsagePurpose::ServerAuth;
    let wrong_eku = gw.pki.ca.client(&spec).unwrap();
    assert!(refused(&gw.client_with(Some(&wrong_eku), false)).await);
    // The refusals of genuine certificates (issued by the trusted CA) are
    // audited; the missing and the foreign certificate are not attributable.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rows = gw.audit_rows().await;
    let mut reasons: Vec<&str> = rows.iter().map(|r| r.reason.as_str()).collect();
    reasons.sort_unstable();
    assert_eq!(
        reasons,
        [
            "allowed",
            "certificate-expired",
            "certificate-not-yet-valid",
            "certificate-wrong-key-usage"
        ]
    );
    assert!(
        rows.iter()
            .all(|r| r.org.as_deref() == Some("gemeente-groningen"))
    );
}

#[tokio::test]
async fn unknown_organisation_gets_403() {
    let mut gw = TestGateway::start().await;
    let stranger = gw
        .pki
        .ca
        .client(&ClientSpec::new("stranger", Some("00000099000000009999")))
        .unwrap();
    let r = gw
        .client_with(Some(&stranger), false)
        .get(VERZUIM, "aanpak-verzuim")
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.problem_type(), "unknown-organisation");
    let no_oin = gw.pki.ca.client(&ClientSpec::new("no-oin", None)).unwrap();
    let r = gw
        .client_with(Some(&no_oin), false)
        .get(VERZUIM, "aanpak-verzuim")
        .await;
    assert_eq!(r.problem_type(), "unknown-organisation");
}

#[tokio::test]
async fn revocation_is_enforced_and_crls_reload_without_restart() {
    let mut gw = TestGateway::start().await;
    let cert = gw.pki.client_for("gemeente-groningen");
    assert!(!refused(&gw.client_with(Some(&cert), false)).await);
    // Revoke it and reload: new connections are refused.
    let crl = gw.pki.ca.current_crl(&[cert.serial]).unwrap();
    std::fs::write(gw.pki.dir.join("crl.pem"), crl).unwrap();
    gw.tls.reload().unwrap();
    assert!(refused(&gw.client_with(Some(&cert), false)).await);
    let other = gw.pki.client_for("gemeente-groningen");
    assert!(!refused(&gw.client_with(Some(&other), false)).await);
}

#[tokio::test]
async fn an_expired_crl_denies_unless_allowed() {
    let mut gw = TestGateway::start().await;
    let cert = gw.pki.client_for("gemeente-groningen");
    let now = time::OffsetDateTime::now_utc();
    let stale = gw
        .pki
        .ca
        .crl(
            &[],
            now - time::Duration::days(10),
            now - time::Duration::days(1),
        )
        .unwrap();
    std::fs::write(gw.pki.dir.join("crl.pem"), &stale).unwrap();
    gw.tls.reload().unwrap();
    assert!(refused(&gw.client_with(Some(&cert), false)).await);

    let mut gw2 = TestGateway::start_with(Options {
        tls_extra: "allow_expired_crl = true".into(),
        ..Options::default()
    })
    .await;
    std::fs::write(
        gw2.pki.dir.join("crl.pem"),
        gw2.pki
            .ca
            .crl(
                &[],
                now - time::Duration::days(10),
                now - time::Duration::days(1),
            )
            .unwrap(),
    )
    .unwrap();
    gw2.tls.reload().unwrap();
    let cert2 = gw2.pki.client_for("gemeente-groningen");
    assert!(!refused(&gw2.client_with(Some(&cert2), false)).await);
}

#[tokio::test]
async fn tls12_is_opt_in() {
    let mut gw = TestGateway::start().await;
    let cert = gw.pki.client_for("gemeente-groningen");
    let tls12 = |ca: &str| {
        let roots = pem_roots(ca);
        let certs = pem_certs(&cert.cert_pem);
        let key = pem_key(&cert.key_pem);
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .unwrap()
    };
    let c = TestClient::from_config(gw.addr, tls12(&gw.pki.ca.cert_pem), false);
    assert!(refused(&c).await);

    let gw12 = TestGateway::start_with(Options {
        tls_extra: "min_version = \"1.2\"".into(),
        ..Options::default()
    })
    .await;
    // Same CA material is per gateway; mint for this one.
    let mut gw12 = gw12;
    let cert = gw12.pki.client_for("gemeente-groningen");
    let roots = pem_roots(&gw12.pki.ca.cert_pem);
    let certs = pem_certs(&cert.cert_pem);
    let key = pem_key(&cert.key_pem);
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(certs, key)
    .unwrap();
    let c = TestClient::from_config(gw12.addr, cfg, false);
    assert!(!refused(&c).await);
}

#[tokio::test]
async fn pupil_ids_never_reach_the_audit_store_in_clear() {
    let mut gw = TestGateway::start().await;
    let lp = gw.client("gemeente-groningen");
    let wij = gw.client("wij-groningen");
    for p in poortwachter::dev::demo::DEMO_PUPILS {
        let path = format!("/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/{p}/verzuim");
        assert_eq!(lp.get(&path, "aanpak-verzuim").await.status, 200);
        assert_eq!(wij.get(&path, "afstemming-ondersteuning").await.status, 200);
    }
    let (tmp, _) = gw.stop().await;
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(tmp.path()).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("audit.db")
        {
            bytes.extend(std::fs::read(&p).unwrap());
        }
    }
    assert!(bytes.len() > 4096, "audit database not found");
    for p in poortwachter::dev::demo::DEMO_PUPILS {
        assert!(
            !bytes.windows(p.len()).any(|w| w == p.as_bytes()),
            "{p} found in clear"
        );
    }
    // Nor a (demo) BSN or a name value.
    assert!(!bytes.windows(5).any(|w| w == b"Sanne"));
    for pupil in 0..poortwachter::dev::demo::DEMO_PUPILS.len() {
        let bsn = format!("00009{:04}", 1000 + pupil);
        assert!(
            !bytes.windows(bsn.len()).any(|w| w == bsn.as_bytes()),
            "{bsn}"
        );
    }
}

#[tokio::test]
async fn refused_genuine_certificates_of_known_organisations_are_audited() {
    let mut gw = TestGateway::start().await;
    let set = poortwachter::policy::load_dir(std::path::Path::new(POLICIES)).unwrap();
    let oin = set.organisations["wij-groningen"].oin.clone();
    let now = time::OffsetDateTime::now_utc();
    let mut spec = ClientSpec::new("wij-groningen", oin.as_deref());
    spec.not_before = now - time::Duration::days(30);
    spec.not_after = now - time::Duration::days(1);
    let expired = gw.pki.ca.client(&spec).unwrap();
    assert!(refused(&gw.client_with(Some(&expired), false)).await);
    // A certificate of another CA that merely claims the same OIN is not
    // attributed to WIJ (it is only logged).
    let mut other = poortwachter::dev::certs::DevCa::new("Other CA").unwrap();
    let forged = other
        .client(&ClientSpec::new("wij-groningen", oin.as_deref()))
        .unwrap();
    assert!(refused(&gw.client_with(Some(&forged), false)).await);
    // Recording a refusal is asynchronous (the handshake never waits for it).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rows = gw.audit_rows().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].org.as_deref(), Some("wij-groningen"));
    assert_eq!(rows[0].outcome, "denied");
    assert_eq!(rows[0].reason, "certificate-expired");
}

#[tokio::test]
async fn a_silent_client_is_cut_off_after_the_handshake_timeout() {
    use tokio::io::AsyncReadExt;
    let gw = TestGateway::start_with(Options {
        server_extra: "handshake_timeout_ms = 300".into(),
        ..Options::default()
    })
    .await;
    let mut tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let mut buf = [0u8; 16];
    // The gateway closes the connection; the bound only keeps a broken
    // gateway from hanging the suite.
    let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
        .await
        .expect("the gateway kept a silent connection open")
        .unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let mut gw = TestGateway::start_with(Options {
        server_extra: "max_connections = 2".into(),
        ..Options::default()
    })
    .await;
    let cert = gw.pki.client_for("gemeente-groningen");
    let a = gw.client_with(Some(&cert), false);
    let b = gw.client_with(Some(&cert), false);
    assert_eq!(a.get(VERZUIM, "aanpak-verzuim").await.status, 200);
    assert_eq!(b.get(VERZUIM, "aanpak-verzuim").await.status, 200);
    // Both keep their connection open (keep-alive): a third is not served.
    let c = gw.client_with(Some(&cert), false);
    let third = tokio::spawn(async move { c.get(VERZUIM, "aanpak-verzuim").await.status });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !third.is_finished(),
        "a third connection was served beyond max_connections"
    );
    drop(a);
    let status = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
}

/// A write whose body keeps no permitted field after filtering is refused
/// and recorded; the bron never sees it (it used to receive `{}`).
#[tokio::test]
async fn a_write_with_nothing_permitted_is_refused_and_never_forwarded() {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen2 = Arc::clone(&seen);
    let upstream = spawn_upstream(Arc::new(move |_m, path, _h| {
        seen2.lock().unwrap().push(path.to_owned());
        (201, "application/json", b"{}".to_vec(), Duration::ZERO)
    }))
    .await;
    let opts = Options::with_bron_url("leerplicht-register", format!("http://{upstream}"));
    let mut gw = TestGateway::start_with(opts).await;
    let school = gw.client("vo-noorderlicht");
    let r = school
        .request(
            Method::POST,
            "/v1/aoj-vo-noorderlicht/leerplicht-register/leerlingen/L1003/meldingen",
            &[
                ("x-doelbinding", "aanpak-verzuim"),
                ("content-type", "application/json"),
            ],
            Some(br#"{"prive": "niet delen", "ook": {"niet": 1}}"#.to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.problem_type(), "no-field-of-resource");
    assert!(seen.lock().unwrap().is_empty(), "nothing reaches the bron");
    let rows = gw.audit_rows().await;
    let rec = rows.iter().find(|r| r.kind == "request").unwrap();
    assert_eq!(
        (rec.status, rec.reason.as_str(), rec.fields_shared.as_str()),
        (403, "no-field-of-resource", "[]")
    );
    assert!(rec.fields_withheld.contains("prive"));
}

/// A request handler that panics: the client gets a 500 problem under the
/// request's real id (not a nil id), and the trail has its record.
#[tokio::test]
async fn a_panicking_handler_is_answered_and_recorded_under_its_request_id() {
    let mut gw = TestGateway::start().await;
    let issued = gw.pki.client_for("gemeente-groningen");
    let der = pem_certs(&issued.cert_pem);
    let peer = Arc::new(poortwachter::gateway::state::Peer {
        cert: poortwachter::gateway::identity::peer_cert(Some(&der)),
    });
    let req = http::Request::builder()
        .uri("/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1001/verzuim")
        .body(())
        .unwrap();
    let resp = poortwachter::gateway::proxy::guarded(
        Arc::clone(&gw.state),
        peer,
        req,
        |_, _, _, _| async { panic!("handler bug") },
    )
    .await;
    assert_eq!(resp.status(), 500);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id, "00000000-0000-0000-0000-000000000000");
    let body: serde_json::Value = {
        use http_body_util::BodyExt;
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap()
    };
    assert_eq!(body["type"], "urn:poortwachter:problem:internal");
    assert_eq!(body["instance"], format!("urn:uuid:{id}"));
    let rows = gw.audit_rows().await;
    let rec = rows.iter().find(|r| r.request_id == id).expect("recorded");
    assert_eq!(
        (
            rec.status,
            rec.outcome.as_str(),
            rec.reason.as_str(),
            rec.org.as_deref()
        ),
        (500, "error", "internal", Some("gemeente-groningen"))
    );
}
