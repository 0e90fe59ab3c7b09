//! End-to-end: the FG dashboard in Debian's headless Chromium, driven by
//! playwright-core (which never downloads a browser) with a client
//! certificate per browser context. Logs in as the privacy officer, runs a
//! search and an inzage, reviews and releases an emergency window in the
//! "Te beoordelen" queue, and checks what the pages show; another
//! organisation's certificate is refused.
//!
//! Needs `chromium` (Debian package) and `node`; installs playwright-core
//! from `tests/browser/package-lock.json` when it is missing. `.ci/run`
//! installs chromium when missing. Fails loudly, never skips.
//! `SCREENSHOTS=<dir>` writes the PNGs used in README (docs/).
#![allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "a scenario reads top to bottom (tests are exempt from the 80-line rule); test counts are small"
)]

mod common;

use std::path::Path;

use common::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");

async fn ensure_playwright() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is needed for the browser tests: apt-get install -y chromium (.ci/run does it)"
    );
    if Path::new(DIR).join("node_modules/playwright-core").exists() {
        return;
    }
    let out = tokio::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix", DIR])
        .output()
        .await
        .expect("npm (nodejs) is needed for the browser tests");
    assert!(
        out.status.success(),
        "npm ci in tests/browser failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn verzuim(pupil: &str) -> String {
    format!("/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/{pupil}/verzuim")
}

#[tokio::test]
async fn fg_uses_the_dashboard_in_chromium_and_others_are_refused() {
    ensure_playwright().await;
    let mut gw = TestGateway::start_with(Options {
        admin: true,
        ..Options::default()
    })
    .await;
    let lp = gw.client("gemeente-groningen");
    let wij = gw.client("wij-groningen");
    for p in ["L1001", "L1002", "L1003"] {
        assert_eq!(lp.get(&verzuim(p), "aanpak-verzuim").await.status, 200);
    }
    assert_eq!(
        wij.get(&verzuim("L1002"), "afstemming-ondersteuning")
            .await
            .status,
        200
    );
    let denied = "/v1/aoj-vo-noorderlicht/jgz-dossier/jeugdigen/L1002/advies";
    assert_eq!(lp.get(denied, "aanpak-verzuim").await.status, 403);
    // An emergency disclosure (spoed) for the FG's review queue.
    let spoed = wij
        .request(
            http::Method::GET,
            "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1004",
            &[
                ("x-doelbinding", "spoed-veiligheid"),
                ("x-spoed-reden", "meldcode"),
                (
                    "x-spoed-toelichting",
                    "signalen van mishandeling; ouders onbereikbaar",
                ),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(spoed.status, 200);

    let dir = gw.tmp.path().to_owned();
    let fg = gw.pki.client_for("fg-convenant");
    let other = gw.pki.client_for("wij-groningen");
    for (name, pem) in [
        ("fg.pem", &fg.cert_pem),
        ("fg-key.pem", &fg.key_pem),
        ("other.pem", &other.cert_pem),
        ("other-key.pem", &other.key_pem),
    ] {
        std::fs::write(dir.join(name), pem).unwrap();
    }
    let base = format!("https://localhost:{}", gw.admin_addr.unwrap().port());
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(Path::new(DIR).join("dashboard.mjs"))
        .env("BASE", &base)
        .env("FG_CERT", dir.join("fg.pem"))
        .env("FG_KEY", dir.join("fg-key.pem"))
        .env("OTHER_CERT", dir.join("other.pem"))
        .env("OTHER_KEY", dir.join("other-key.pem"))
        .env("PUPIL", "L1002")
        .env("HOME", &dir)
        .kill_on_drop(true);
    let out = tokio::time::timeout(std::time::Duration::from_mins(2), cmd.output())
        .await
        .expect("the browser run took over 2 minutes")
        .unwrap();
    assert!(
        out.status.success(),
        "browser run failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();

    assert_eq!(v["home_status"], 200);
    assert_eq!(s("home_heading"), "Poortwachter: overzicht voor de FG");
    assert!(s("home_user").contains("Functionaris gegevensbescherming"));
    // Search: L1002 has an allowed, a filtered and a denied request.
    assert!(
        s("search_url").ends_with("/zoeken"),
        "pupil id in the URL: {}",
        s("search_url")
    );
    assert!(
        s("search_count").starts_with("3 vastlegging(en)"),
        "{}",
        s("search_count")
    );
    assert_eq!(v["search_rows"], 3);
    let orgs: Vec<String> = serde_json::from_value(v["search_orgs"].clone()).unwrap();
    assert_eq!(
        orgs.iter().filter(|o| *o == "gemeente-groningen").count(),
        2
    );
    assert_eq!(orgs.iter().filter(|o| *o == "wij-groningen").count(), 1);
    assert_eq!(v["search_has_pupil"], false, "the pupil id is not echoed");
    assert!(s("record_heading").starts_with("Vastlegging test-1#"));
    assert!(s("record_text").contains(&gw.pseudonym("L1002")));
    // Inzage: two disclosures with named recipients, the refusal flagged,
    // nothing about L1001 or L1003.
    assert!(s("inzage_url").ends_with("/inzage"));
    let headings: Vec<String> = serde_json::from_value(v["inzage_headings"].clone()).unwrap();
    assert!(
        headings.contains(&"Verstrekkingen (2)".to_owned()),
        "{headings:?}"
    );
    assert!(
        headings.contains(&"Geweigerde verzoeken (1)".to_owned()),
        "{headings:?}"
    );
    let sections: Vec<String> = serde_json::from_value(v["inzage_sections"].clone()).unwrap();
    assert!(
        sections.iter().any(|t| t.contains(
            "Gemeente Groningen, Leerplicht/RMC (demo) ontving gegevens van Noorderlicht College"
        )),
        "{sections:?}"
    );
    assert!(sections.iter().any(|t| t.contains("WIJ Groningen (demo)")));
    let text = s("inzage_text");
    assert!(text.contains("Ongeoorloofd verzuim dit schooljaar (uren)"));
    assert!(!text.contains("L1001") && !text.contains("L1003"));
    assert!(
        s("verify_status").starts_with("In orde"),
        "{}",
        s("verify_status")
    );
    assert!(v["rapport_svgs"].as_u64().unwrap() >= 1);
    // The review queue: one window to review; reviewed (with the form's
    // radio and note), then released.
    assert_eq!(
        s("spoed_before"),
        "1 te beoordelen; 0 beoordeeld en nog achtergehouden."
    );
    assert_eq!(s("spoed_status"), "te beoordelen");
    assert_eq!(
        s("spoed_why"),
        "signalen van mishandeling; ouders onbereikbaar"
    );
    assert!(
        s("spoed_reviewed").ends_with("beoordeeld."),
        "{}",
        s("spoed_reviewed")
    );
    assert_eq!(
        s("spoed_after_review"),
        "0 te beoordelen; 1 beoordeeld en nog achtergehouden."
    );
    assert_eq!(
        s("spoed_verdict"),
        "gerechtvaardigd: acuut gevaar bevestigd door Veilig Thuis"
    );
    assert!(s("spoed_released").ends_with("vrijgegeven voor inzage."));
    assert_eq!(
        s("spoed_after_release"),
        "0 te beoordelen; 0 beoordeeld en nog achtergehouden."
    );
    // Another organisation: refused.
    assert_eq!(v["other_status"], 403);
    assert!(s("other_text").contains("Geen toegang"));
    assert!(!s("other_text").contains("vastlegging"));

    // The browser session's page views are in the trail, as the FG.
    let rows = gw.audit_rows().await;
    let access: Vec<&str> = rows
        .iter()
        .filter(|r| r.kind == "access")
        .map(|r| r.reason.as_str())
        .collect();
    assert_eq!(
        access,
        [
            "dashboard",
            "query",
            "query",
            "record",
            "dashboard",
            "inzage",
            "verify",
            "rapport",
            "spoed",
            "spoed",
            "spoed"
        ]
    );
    let reviews: Vec<&str> = rows
        .iter()
        .filter(|r| r.kind == "register" && r.org.as_deref() == Some("fg-convenant"))
        .map(|r| r.reason.as_str())
        .collect();
    assert_eq!(reviews, ["emergency-reviewed", "emergency-released"]);
    gw.stop().await;
}
