//! Acting on behalf (issue 15): a software supplier's certificate plus
//! `X-Namens` becomes the organisation it names, only while an active client
//! mandate covers the casusoverleg; every refusal is problem+json, shares
//! nothing, and is recorded with the supplier. Real mTLS on loopback, both
//! audit stores where the record path differs.
#![allow(
    clippy::too_many_lines,
    clippy::type_complexity,
    reason = "a scenario reads top to bottom (tests are exempt from the 80-line rule)"
)]

mod common;

use common::*;
use http::Method;
use poortwachter::audit::StoredRow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The school reads its leerplicht case in its own overleg (rule aoj-…:
/// leerplicht → school, aanpak-verzuim).
const ZAAK: &str = "/v1/aoj-vo-noorderlicht/leerplicht-register/leerlingen/L1001/zaak";
const NOORDERLICHT: &str = "00000099000000000101";
const DE_WADDEN: &str = "00000099000000000103";
const DE_BORG: &str = "00000099000000000102";

async fn get_as(c: &TestClient, path: &str, headers: &[(&str, &str)]) -> TestResponse {
    let mut h = vec![("x-doelbinding", "aanpak-verzuim")];
    h.extend_from_slice(headers);
    c.request(Method::GET, path, &h, None).await.unwrap()
}

fn last_request(rows: &[StoredRow]) -> &StoredRow {
    rows.iter().rev().find(|r| r.kind == "request").unwrap()
}

async fn supplier_reads_for_the_school_it_holds_a_mandate_of(store: StoreKind) {
    let mut gw = TestGateway::start_with(Options {
        store,
        ..Options::default()
    })
    .await;
    let school = gw.client("vo-noorderlicht");
    let supplier_cert = gw.pki.client_for("las-leverancier");
    let supplier = gw.client_with(Some(&supplier_cert), false);

    let own = get_as(&school, ZAAK, &[]).await;
    assert_eq!(own.status, 200, "{}", String::from_utf8_lossy(&own.body));
    let via = get_as(&supplier, ZAAK, &[("x-namens", NOORDERLICHT)]).await;
    assert_eq!(via.status, 200, "{}", String::from_utf8_lossy(&via.body));
    // Decided for the school: exactly what the school itself receives.
    assert_eq!(via.json(), own.json());

    let rows = gw.audit_rows().await;
    let r = last_request(&rows);
    assert_eq!(r.org.as_deref(), Some("vo-noorderlicht"));
    assert_eq!(r.supplier.as_deref(), Some("las-leverancier"));
    assert_eq!(r.role.as_deref(), Some("school"));
    let fp = {
        let der = pem_certs(&supplier_cert.cert_pem).remove(0);
        poortwachter::hex::encode(
            ring::digest::digest(&ring::digest::SHA256, der.as_ref()).as_ref(),
        )
    };
    assert_eq!(r.cert_fingerprint.as_deref(), Some(fp.as_str()));
    assert_eq!(r.status, 200);
    // The school's own request carries no supplier.
    let own_rec = rows
        .iter()
        .filter(|r| r.kind == "request")
        .find(|r| r.supplier.is_none())
        .unwrap();
    assert_eq!(own_rec.org.as_deref(), Some("vo-noorderlicht"));

    // A refusal names the supplier that connected, shares nothing.
    let r = get_as(&supplier, ZAAK, &[]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.problem_type(), "principal-required");
    let rows = gw.audit_rows().await;
    let rec = last_request(&rows);
    assert_eq!(rec.reason, "principal-required");
    assert_eq!(rec.supplier.as_deref(), Some("las-leverancier"));
    assert_eq!(rec.org, None);
    assert_eq!(rec.fields_shared, "[]");

    // Every record, with the supplier, still verifies.
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
async fn sqlite_supplier_reads_for_the_school_it_holds_a_mandate_of() {
    supplier_reads_for_the_school_it_holds_a_mandate_of(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_supplier_reads_for_the_school_it_holds_a_mandate_of() {
    supplier_reads_for_the_school_it_holds_a_mandate_of(StoreKind::Postgres).await;
}

/// Each bad input: status, problem type, nothing shared, recorded.
#[tokio::test]
async fn bad_principals_are_refused_and_recorded() {
    let mut gw = TestGateway::start().await;
    let supplier = gw.client("las-leverancier");
    let school = gw.client("vo-noorderlicht");
    let other_overleg = "/v1/verdiepend-verzuim-vo/leerplicht-register/leerlingen/L1001/zaak";
    let cases: Vec<(&str, &TestClient, &str, Vec<(&str, &str)>, u16, &str)> = vec![
        (
            "no principal",
            &supplier,
            ZAAK,
            vec![],
            400,
            "principal-required",
        ),
        (
            "principal twice",
            &supplier,
            ZAAK,
            vec![("x-namens", NOORDERLICHT), ("x-namens", NOORDERLICHT)],
            400,
            "principal-malformed",
        ),
        (
            "not an OIN",
            &supplier,
            ZAAK,
            vec![("x-namens", "vo-noorderlicht")],
            400,
            "principal-malformed",
        ),
        (
            "smuggled as hop-by-hop",
            &supplier,
            ZAAK,
            vec![("x-namens", NOORDERLICHT), ("connection", "x-namens")],
            400,
            "principal-malformed",
        ),
        (
            "principal not in the registry",
            &supplier,
            ZAAK,
            vec![("x-namens", "00000099000000009999")],
            403,
            "no-mandate",
        ),
        (
            "a school without a mandate",
            &supplier,
            ZAAK,
            vec![("x-namens", DE_BORG)],
            403,
            "no-mandate",
        ),
        (
            "a mandate for another overleg",
            &supplier,
            other_overleg,
            vec![("x-namens", NOORDERLICHT)],
            403,
            "no-mandate",
        ),
        (
            "a school's mandate for its other overleg",
            &supplier,
            ZAAK,
            vec![("x-namens", DE_WADDEN)],
            403,
            "no-mandate",
        ),
        (
            "an organisation naming another",
            &school,
            ZAAK,
            vec![("x-namens", DE_WADDEN)],
            403,
            "principal-not-allowed",
        ),
        (
            "an organisation naming itself",
            &school,
            ZAAK,
            vec![("x-namens", NOORDERLICHT)],
            403,
            "principal-not-allowed",
        ),
    ];
    let n = cases.len();
    for (what, client, path, headers, status, problem) in cases {
        let r = get_as(client, path, &headers).await;
        assert_eq!(
            r.status,
            status,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.problem_type(), problem, "{what}");
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("application/problem+json")),
            "{what}"
        );
        assert!(
            !String::from_utf8_lossy(&r.body).contains("L1001"),
            "{what}"
        );
    }
    let rows = gw.audit_rows().await;
    let refused: Vec<&StoredRow> = rows.iter().filter(|r| r.kind == "request").collect();
    assert_eq!(refused.len(), n, "one record per request");
    for r in &refused {
        assert_eq!(r.fields_shared, "[]");
        assert_eq!(r.outcome, "denied", "{}", r.reason);
        assert!(r.status == 400 || r.status == 403);
    }
    // The supplier's refusals name the supplier; the school's do not.
    let by_supplier = refused
        .iter()
        .filter(|r| r.supplier.as_deref() == Some("las-leverancier"))
        .count();
    assert_eq!(by_supplier, n - 2);
    // An unknown peer is refused as unknown before its headers are read.
    let stranger = gw
        .pki
        .ca
        .client(&poortwachter::dev::certs::ClientSpec::new(
            "stranger",
            Some("00000099000000008888"),
        ))
        .unwrap();
    let r = get_as(
        &gw.client_with(Some(&stranger), false),
        ZAAK,
        &[("x-namens", "not-an-oin")],
    )
    .await;
    assert_eq!(r.problem_type(), "unknown-organisation");
    // The detail says why (closest reason), without naming data.
    let r = get_as(&supplier, other_overleg, &[("x-namens", NOORDERLICHT)]).await;
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("does not cover this casusoverleg"),
        "{}",
        r.json()
    );
}

/// Expired, not yet valid and other-direction mandates, on a copy of the
/// example policies; and the register API through a mandate.
#[tokio::test]
async fn mandate_validity_and_direction_are_enforced() {
    let (_tmp, dir) = copy_policies();
    let partners = dir.join("partners.toml");
    // Noorderlicht's mandate ended yesterday, De Wadden's starts tomorrow,
    // and De Borg gave one for hosting its bronnen only.
    let day = |offset: i64| {
        let t = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * offset);
        t.to_zoned_datetime(jiff::tz::get!("Europe/Amsterdam"))
            .date()
            .to_string()
    };
    edit(
        &partners,
        "valid_from = \"2026-08-01\"\nvalid_until = \"2031-07-31\"",
        &format!("valid_from = \"2026-01-01\"\nvalid_until = \"{}\"", day(-1)),
    );
    edit(
        &partners,
        "overleggen = [\"expertteam-po\"]\nvalid_from = \"2026-08-01\"",
        &format!(
            "overleggen = [\"expertteam-po\"]\nvalid_from = \"{}\"",
            day(1)
        ),
    );
    let mut text = std::fs::read_to_string(&partners).unwrap();
    text.push_str(
        "\n[[mandates]]\nsupplier = \"las-leverancier\"\norganisation = \"vso-de-borg\"\ndirection = \"bron\"\noverleggen = [\"*\"]\nvalid_from = \"2026-01-01\"\n\n[[mandates]]\nsupplier = \"las-leverancier\"\norganisation = \"gemeente-groningen\"\ndirection = \"client\"\noverleggen = [\"*\"]\nvalid_from = \"2026-01-01\"\n",
    );
    std::fs::write(&partners, text).unwrap();
    let mut gw = TestGateway::start_with(Options {
        policies: dir.clone(),
        ..Options::default()
    })
    .await;
    let supplier = gw.client("las-leverancier");
    let detail = |r: &TestResponse| r.json()["detail"].as_str().unwrap_or("").to_owned();

    let r = get_as(&supplier, ZAAK, &[("x-namens", NOORDERLICHT)]).await;
    assert_eq!(r.problem_type(), "no-mandate");
    assert!(detail(&r).contains("expired"), "{}", detail(&r));

    let advies = "/v1/expertteam-po/jgz-dossier/jeugdigen/L1001/advies";
    let r = supplier
        .request(
            Method::GET,
            advies,
            &[("x-doelbinding", "passende-plek"), ("x-namens", DE_WADDEN)],
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.problem_type(), "no-mandate");
    assert!(detail(&r).contains("not valid yet"), "{}", detail(&r));

    let borg = "/v1/cvb-de-borg/leerplicht-register/leerlingen/L1001/zaak";
    let r = get_as(&supplier, borg, &[("x-namens", DE_BORG)]).await;
    assert_eq!(r.problem_type(), "no-mandate");
    assert!(detail(&r).contains("other direction"), "{}", detail(&r));

    // The register API decides for the principal too: Leerplicht (through
    // its supplier, a mandate for all overleggen) registers a case where
    // its role may.
    let r = supplier
        .request(
            Method::POST,
            "/registers/v1/aoj-vo-noorderlicht/aanmeldingen",
            &[
                ("content-type", "application/json"),
                ("x-namens", "00000099000000000501"),
            ],
            Some(
                serde_json::json!({"leerling": "L1004", "referentie": "M-1"})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await
        .unwrap();
    let rows = gw.audit_rows().await;
    let change = rows.iter().rev().find(|r| r.kind == "register").unwrap();
    assert_eq!(change.supplier.as_deref(), Some("las-leverancier"));
    assert_eq!(change.org.as_deref(), Some("gemeente-groningen"));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(change.status, 201);
}

/// `policy explain --via` checks the mandate as serving does before it
/// explains for the principal.
#[test]
fn explain_via_a_supplier_checks_the_mandate_first() {
    let explain = |org: &str, overleg: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_poortwachter"))
            .args(["policy", "explain", "--dir", POLICIES, "--org", org])
            .args(["--overleg", overleg, "--purpose", "aanpak-verzuim"])
            .args(["--bron", "leerplicht-register", "--field", "zaak.status"])
            .args(["--via", "las-leverancier", "--format", "json"])
            .output()
            .unwrap()
    };
    let ok = explain("vo-noorderlicht", "aoj-vo-noorderlicht");
    assert!(ok.status.success());
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["allowed"], true);
    assert_eq!(v["via"]["supplier"], "las-leverancier");
    assert_eq!(v["via"]["organisation"], "vo-noorderlicht");

    // De Wadden's mandate covers expertteam-po only.
    let refused = explain("po-de-wadden", "aoj-vo-noorderlicht");
    assert_eq!(refused.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(v["allowed"], false);
    assert!(
        v["reason"].as_str().unwrap().contains("does not cover"),
        "{v}"
    );
}

/// `cases register --via`: the CLI acts for the organisation through its
/// supplier only under a mandate, and the change record names the supplier.
#[tokio::test]
async fn cli_register_via_a_supplier_needs_the_mandate() {
    let gw = TestGateway::start_with(Options {
        seed_cases: false,
        ..Options::default()
    })
    .await;
    let run = |overleg: &str, org: &str, reference: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_poortwachter"))
            .args([
                "cases",
                "register",
                "--overleg",
                overleg,
                "--pupil",
                "L1002",
            ])
            .args(["--org", org, "--via", "las-leverancier"])
            .args(["--reference", reference, "--config"])
            .arg(&gw.config_path)
            .output()
            .unwrap()
    };
    let ok = run("expertteam-po", "po-de-wadden", "EPT-via-1");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Noorderlicht's mandate covers the AOJ-team only.
    let refused = run("expertteam-po", "vo-noorderlicht", "EPT-via-2");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no mandate"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let rows = gw.audit_rows().await;
    let changes: Vec<&StoredRow> = rows.iter().filter(|r| r.kind == "register").collect();
    assert_eq!(changes.len(), 1, "the refused change left no record");
    assert_eq!(changes[0].supplier.as_deref(), Some("las-leverancier"));
    assert_eq!(changes[0].org.as_deref(), Some("po-de-wadden"));
}

/// A supplier's revoked certificate ends at the handshake, whatever it
/// names; its other certificate keeps working under the same mandate.
#[tokio::test]
async fn a_revoked_supplier_certificate_is_refused_at_the_handshake() {
    let mut gw = TestGateway::start().await;
    let revoked = gw.pki.client_for("las-leverancier");
    let other = gw.pki.client_for("las-leverancier");
    let crl = gw.pki.ca.current_crl(&[revoked.serial]).unwrap();
    std::fs::write(gw.pki.dir.join("crl.pem"), crl).unwrap();
    gw.tls.reload().unwrap();
    let named = [
        ("x-doelbinding", "aanpak-verzuim"),
        ("x-namens", NOORDERLICHT),
    ];
    let r = gw
        .client_with(Some(&revoked), false)
        .request(Method::GET, ZAAK, &named, None)
        .await;
    assert!(r.is_err(), "a revoked certificate got an HTTP answer");
    let r = gw
        .client_with(Some(&other), false)
        .request(Method::GET, ZAAK, &named, None)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // Nothing about the revoked connection claims a disclosure.
    let rows = gw.audit_rows().await;
    let shared = rows
        .iter()
        .filter(|r| r.kind == "request" && r.status == 200)
        .count();
    assert_eq!(shared, 1);
}

/// A bron a supplier hosts for several schools (`ziekmeldingen-saas`, MAZL).
const ZIEK: &str = "/v1/mazl/ziekmeldingen-saas/leerlingen/L1001/ziekmeldingen";

/// A hosted bron (issue 15 point 3): the client names the school whose data
/// it wants, the gateway tells the supplier's one API in its own header (the
/// school's OIN; a client's copy of that header never passes), applies that
/// school's rule, and records the school as owner; the upstream connection
/// is the gateway's own.
async fn a_hosted_bron_serves_the_owner_named_per_request(store: StoreKind) {
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let seen_in = Arc::clone(&seen);
    let bron = spawn_upstream(Arc::new(move |_m, _p, h| {
        let namens = h
            .get("x-poortwachter-namens")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        seen_in.lock().unwrap().push(namens);
        let doc = serde_json::json!({
            "leerling": {"voornaam": "Sam", "achternaam": "Jansen", "geboortedatum": "2015-01-01"},
            "ziekmeldingen": [{"datum": "2026-11-02", "duur_dagen": 2, "gemeld_door": "ouder", "reden": "griep"}],
        });
        (200, "application/json", doc.to_string().into_bytes(), Duration::ZERO)
    }))
    .await;
    let mut gw = TestGateway::start_with(Options {
        store,
        ..Options::with_bron_url("ziekmeldingen-saas", format!("http://{bron}"))
    })
    .await;
    let ggd = gw.client("ggd-groningen");
    let ask = |owner: Option<&'static str>, smuggled: bool| {
        let mut h = vec![("x-doelbinding", "medisch-advies")];
        if let Some(o) = owner {
            h.push(("x-bron-eigenaar", o));
        }
        if smuggled {
            h.push(("x-poortwachter-namens", NOORDERLICHT));
        }
        h
    };

    // De Wadden by OIN: its rule (mazl-08) gives who reported; the parent's
    // free text never flows.
    let r = ggd
        .request(Method::GET, ZIEK, &ask(Some(DE_WADDEN), true), None)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let melding = &r.json()["ziekmeldingen"][0];
    assert_eq!(melding["gemeld_door"], "ouder");
    assert!(melding.get("reden").is_none());
    // Noorderlicht by id: its rule (mazl-07) does not give who reported.
    let r = ggd
        .request(
            Method::GET,
            ZIEK,
            &ask(Some("vo-noorderlicht"), false),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json()["ziekmeldingen"][0].get("gemeld_door").is_none());
    // The API was told the owner's OIN each time, never the client's copy.
    assert_eq!(
        *seen.lock().unwrap(),
        [Some(DE_WADDEN.to_owned()), Some(NOORDERLICHT.to_owned())]
    );

    let rows = gw.audit_rows().await;
    let requests: Vec<&StoredRow> = rows.iter().filter(|r| r.kind == "request").collect();
    assert_eq!(requests[0].owner.as_deref(), Some("po-de-wadden"));
    assert_eq!(requests[0].rules, "[\"mazl-08\"]");
    assert!(
        requests[0]
            .fields_withheld
            .contains("ziekmeldingen[].reden")
    );
    assert_eq!(requests[1].owner.as_deref(), Some("vo-noorderlicht"));
    assert_eq!(requests[1].rules, "[\"mazl-07\"]");
    assert!(
        requests
            .iter()
            .all(|r| r.org.as_deref() == Some("ggd-groningen"))
    );

    // Refusals: nothing reaches the bron, each is recorded with its reason
    // (and with the owner, once one was named).
    let refusals: Vec<(Option<&'static str>, u16, &str, Option<&str>)> = vec![
        (None, 400, "owner-required", None),
        (Some("gemeente-groningen"), 403, "owner-unknown", None),
        (Some(DE_BORG), 403, "no-host-mandate", Some("vso-de-borg")),
    ];
    for (owner, status, problem, recorded_owner) in refusals {
        let r = ggd
            .request(Method::GET, ZIEK, &ask(owner, false), None)
            .await
            .unwrap();
        assert_eq!(
            r.status,
            status,
            "{problem}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.problem_type(), problem);
        let rows = gw.audit_rows().await;
        let rec = last_request(&rows);
        assert_eq!(rec.reason, problem);
        assert_eq!(rec.owner.as_deref(), recorded_owner, "{problem}");
        assert_eq!(rec.fields_shared, "[]");
    }
    // X-Bron-Eigenaar for a bron with one owner of its own: refused, never
    // ignored.
    let r = get_as(
        &gw.client("gemeente-groningen"),
        ZAAK_LEERPLICHT,
        &[("x-bron-eigenaar", NOORDERLICHT)],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.problem_type(), "owner-not-hosted");
    assert_eq!(seen.lock().unwrap().len(), 2, "no refusal reached the bron");

    // The records with an owner verify (the hash covers it only when set).
    let cfg = poortwachter::config::Config::load(&gw.config_path).unwrap();
    let store = poortwachter::audit::Store::connect(&gw.store_url)
        .await
        .unwrap();
    let report = poortwachter::audit::admin::verify(&store, &cfg.audit, None, None)
        .await
        .unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

/// Leerplicht's own read in the AOJ-team (a bron with one owner).
const ZAAK_LEERPLICHT: &str = "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1001/verzuim";

#[tokio::test]
async fn sqlite_a_hosted_bron_serves_the_owner_named_per_request() {
    a_hosted_bron_serves_the_owner_named_per_request(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_a_hosted_bron_serves_the_owner_named_per_request() {
    a_hosted_bron_serves_the_owner_named_per_request(StoreKind::Postgres).await;
}
