//! Covenant lint rules: each has a failing fixture (a small edit of the
//! example set) and the example set passes them all.
#![allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "a scenario reads top to bottom (tests are exempt from the 80-line rule); test counts are small"
)]

mod common;

use std::path::Path;

use common::{POLICIES, copy_policies};
use poortwachter::policy;
use poortwachter::policy::decision::Snapshot;
use poortwachter::policy::tools::lint;

fn rule(
    id: &str,
    from: &str,
    to: &str,
    bron: &str,
    fields: &str,
    consent: &str,
    justification: &str,
) -> String {
    format!(
        "\n[[rules]]\nid = \"{id}\"\npurpose = \"afstemming-ondersteuning\"\nfrom = \"{from}\"\nto = \"{to}\"\nbron = \"{bron}\"\nfields = [{fields}]\nconsent = \"{consent}\"\njustification = \"{justification}\"\n"
    )
}

fn codes_after(append: &str) -> Vec<&'static str> {
    let (_tmp, dir) = copy_policies();
    let aoj = dir.join("overleggen/aoj-vo-noorderlicht.toml");
    let mut text = std::fs::read_to_string(&aoj).unwrap();
    text.push_str(append);
    std::fs::write(&aoj, text).unwrap();
    let set = policy::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    lint::lint(&set).into_iter().map(|f| f.code).collect()
}

#[test]
fn the_example_policies_pass_every_lint_rule() {
    let set = policy::load_dir(Path::new(POLICIES)).unwrap();
    let findings = lint::lint(&set);
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn each_lint_rule_catches_its_case() {
    let cases: Vec<(&str, String)> = vec![
        ("L001", rule("t-1", "jgz", "school", "jgz-dossier", "\"medisch.diagnose\"", "none", "x")),
        ("L002", rule("t-2", "leerplicht", "school", "leerplicht-register", "\"processen_verbaal[].feit\"", "none", "x")),
        ("L003", rule("t-3", "jgz", "jeugdwet", "jgz-dossier", "\"leerling.bsn\"", "none", "x")),
        ("L004", rule("t-4", "school", "jeugdwet", "las-noorderlicht", "\"verzuim.**\"", "none", "")),
        ("L005", rule("t-5", "school", "jeugdwet", "las-noorderlicht", "\"leerling.voornaam\"", "none", "")),
        ("L006", "\n[[roles]]\nid = \"stille-gast\"\nname = \"Toehoorder\"\ngrondslag = { law = \"X\", article = \"art. 1\", basis = [\"6.1.e\"] }\norganisations = [\"opdc-doorstart\"]\n".to_string()),
        ("L007", "\n[[purposes]]\nid = \"ongebruikt\"\ntext = \"Een doel zonder regels.\"\n".to_string()),
        ("L008", rule("t-8a", "school", "swv", "las-noorderlicht", "\"leerling.voornaam\", \"leerling.klas\"", "none", "x")
            + rule("t-8b", "school", "swv", "las-noorderlicht", "\"leerling.klas\", \"leerling.voornaam\"", "none", "x").as_str()),
        ("L009", rule("t-9a", "school", "swv", "las-noorderlicht", "\"leerling.voornaam\", \"leerling.klas\"", "none", "x")
            + rule("t-9b", "school", "swv", "las-noorderlicht", "\"leerling.klas\", \"leerling.leerjaar\"", "none", "x").as_str()),
        ("L011", rule("t-11", "school", "leerplicht", "leerplicht-register", "\"melding.*\"", "none", "x")),
        // Allowed health data, but the basis lifts no art. 9 ban.
        ("L015", "\n[[roles]]\nid = \"zorg\"\nname = \"Zorg\"\ngrondslag = { law = \"X\", article = \"art. 1\", basis = [\"6.1.e\"] }\norganisations = [\"opdc-doorstart\"]\nspecial_categories = [\"health\"]\n".to_string()),
        // Consent is the role's only ground, and the rule asks none.
        ("L016", "\n[[roles]]\nid = \"vrijwillig\"\nname = \"Vrijwillig\"\ngrondslag = { law = \"X\", article = \"art. 1\", basis = [\"6.1.a\"] }\norganisations = [\"opdc-doorstart\"]\n".to_string()
            + rule("t-16", "school", "vrijwillig", "las-noorderlicht", "\"leerling.voornaam\"", "none", "x").as_str()),
    ];
    for (code, append) in cases {
        let codes = codes_after(&append);
        assert!(codes.contains(&code), "{code} not reported: {codes:?}");
    }
    // Consent makes health data acceptable (L001 is about a missing basis).
    let codes = codes_after(&rule(
        "t-1c",
        "jgz",
        "school",
        "jgz-dossier",
        "\"medisch.diagnose\"",
        "parents",
        "x",
    ));
    assert!(!codes.contains(&"L001"), "{codes:?}");
    // With consent, a role whose only ground is consent may receive.
    let codes = codes_after(
        &("\n[[roles]]\nid = \"vrijwillig\"\nname = \"Vrijwillig\"\ngrondslag = { law = \"X\", article = \"art. 1\", basis = [\"6.1.a\"] }\norganisations = [\"opdc-doorstart\"]\n".to_string()
            + rule("t-16", "school", "vrijwillig", "las-noorderlicht", "\"leerling.voornaam\"", "parents-and-youth", "x").as_str()),
    );
    assert!(codes.is_empty(), "{codes:?}");
    // L010: an overleg where nobody may register cases.
    let (_tmp, dir) = copy_policies();
    let aoj = dir.join("overleggen/aoj-vo-noorderlicht.toml");
    let text = std::fs::read_to_string(&aoj).unwrap();
    assert!(text.contains("may_register_cases = true"));
    std::fs::write(
        &aoj,
        text.replace("may_register_cases = true", "may_register_cases = false"),
    )
    .unwrap();
    let set = policy::load_dir(&dir).unwrap();
    let codes: Vec<&str> = lint::lint(&set).into_iter().map(|f| f.code).collect();
    assert_eq!(codes, ["L010"]);
    // Every rule code is documented.
    assert_eq!(lint::RULES.len(), 16);
}

/// The partner registry's rules on a copy of the example registry: a
/// mandate its organisation cannot use, one that has ended, and a supplier
/// without a processing agreement (an error: `policy check` fails).
#[test]
fn registry_lint_rules_catch_their_cases() {
    let codes_after = |from: &str, to: &str| -> Vec<lint::Finding> {
        let (_tmp, dir) = copy_policies();
        common::edit(&dir.join("partners.toml"), from, to);
        let set = policy::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
        lint::lint(&set)
    };
    let cases = [
        (
            "L012",
            "organisation = \"vo-noorderlicht\"",
            "organisation = \"opdc-doorstart\"",
            "`opdc-doorstart` holds no role in `aoj-vo-noorderlicht`",
        ),
        (
            "L013",
            "valid_from = \"2026-08-01\"\nvalid_until = \"2031-07-31\"",
            "valid_from = \"2019-08-01\"\nvalid_until = \"2020-07-31\"",
            "expired (valid until 2020-07-31) but still listed",
        ),
        (
            "L014",
            "processor_agreement = \"VWO-2026-LAS-001\"\n",
            "",
            "supplier `las-leverancier` is a processor (AVG art. 28)",
        ),
    ];
    for (code, from, to, says) in cases {
        let found = codes_after(from, to);
        assert_eq!(found.len(), 1, "{code}: {found:#?}");
        assert_eq!(found[0].code, code);
        assert!(found[0].message.contains(says), "{}", found[0].message);
        assert_eq!(found[0].file, "policies/partners.toml");
        // The finding points at the supplier's or mandate's own table.
        let text = std::fs::read_to_string(Path::new(POLICIES).join("partners.toml")).unwrap();
        let header = if code == "L014" {
            "[[suppliers]]"
        } else {
            "[[mandates]]"
        };
        let line = text.lines().nth(found[0].line - 1).unwrap_or("");
        assert_eq!(line, header, "{code} at line {}", found[0].line);
    }

    // An error: `policy check` fails on it.
    let (_tmp, dir) = copy_policies();
    common::edit(
        &dir.join("partners.toml"),
        "processor_agreement = \"VWO-2026-LAS-001\"\n",
        "",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_poortwachter"))
        .args(["policy", "check", "--format", "json", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["lint"][0]["code"], "L014");
    assert_eq!(json["lint"][0]["severity"], "error");
}

#[test]
fn policy_check_fails_on_lint_errors_and_passes_on_the_examples() {
    let bin = env!("CARGO_BIN_EXE_poortwachter");
    let ok = std::process::Command::new(bin)
        .args(["policy", "check", "--dir", POLICIES])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let (_tmp, dir) = copy_policies();
    let aoj = dir.join("overleggen/aoj-vo-noorderlicht.toml");
    let mut text = std::fs::read_to_string(&aoj).unwrap();
    text.push_str(&rule(
        "t-3",
        "jgz",
        "jeugdwet",
        "jgz-dossier",
        "\"leerling.bsn\"",
        "none",
        "x",
    ));
    std::fs::write(&aoj, text).unwrap();
    let bad = std::process::Command::new(bin)
        .args(["policy", "check", "--format", "json", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(json["lint"][0]["code"], "L003");
    assert!(json["lint"][0]["line"].as_u64().unwrap() > 1);
}

#[tokio::test]
async fn policy_test_cases_pass_and_a_wrong_expectation_fails_with_its_line() {
    let set = policy::load_dir(Path::new(POLICIES)).unwrap();
    let snap = Snapshot::build(set, None).await.unwrap();
    let report = policy::tools::test::run(&snap, &Path::new(POLICIES).join("tests"))
        .await
        .unwrap();
    assert!(report.results.len() >= 10);
    assert_eq!(report.failed(), 0, "{:#?}", report.results);
    assert!(report.uncovered_rules.len() < report.total_rules);
    assert!(
        !report
            .uncovered_rules
            .iter()
            .any(|r| r == "aoj-vo-noorderlicht/aoj-02")
    );

    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("wrong.toml"),
        "[[cases]]\nname = \"ok\"\norg = \"wij-groningen\"\noverleg = \"aoj-vo-noorderlicht\"\npurpose = \"aanpak-verzuim\"\nbron = \"las-noorderlicht\"\nfield = \"leerling.bsn\"\nexpect = \"deny\"\n\n[[cases]]\nname = \"wrong\"\norg = \"wij-groningen\"\noverleg = \"aoj-vo-noorderlicht\"\npurpose = \"aanpak-verzuim\"\nbron = \"las-noorderlicht\"\nfield = \"leerling.bsn\"\nexpect = \"allow\"\n",
    )
    .unwrap();
    let report = policy::tools::test::run(&snap, tmp.path()).await.unwrap();
    assert_eq!(report.failed(), 1);
    let bad = report.results.iter().find(|r| !r.passed).unwrap();
    assert_eq!(
        (bad.name.as_str(), bad.line, bad.got.as_str()),
        ("wrong", 10, "deny")
    );
}

/// `consent:<who>` pins whose consent a rule asks for: the covenant's age
/// rule. A PO rule asks the parents; expecting the youth's consent fails,
/// plain `consent` passes, and an unknown expectation is refused with its line.
#[tokio::test]
async fn policy_test_pins_whose_consent_a_rule_needs() {
    let set = policy::load_dir(Path::new(POLICIES)).unwrap();
    let snap = Snapshot::build(set, None).await.unwrap();
    let case = |name: &str, expect: &str| {
        format!(
            "[[cases]]\nname = \"{name}\"\norg = \"po-de-wadden\"\noverleg = \"expertteam-po\"\npurpose = \"onderwijs-zorgarrangement\"\nbron = \"wij-dossier\"\nfield = \"zorgaanbieders[].soort_hulp\"\nexpect = \"{expect}\"\n\n"
        )
    };
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("consent.toml"),
        [
            case("any", "consent"),
            case("parents", "consent:parents"),
            case("youth", "consent:youth"),
        ]
        .concat(),
    )
    .unwrap();
    let report = policy::tools::test::run(&snap, tmp.path()).await.unwrap();
    let outcome: Vec<(&str, bool, &str)> = report
        .results
        .iter()
        .map(|r| (r.name.as_str(), r.passed, r.got.as_str()))
        .collect();
    assert_eq!(
        outcome,
        [
            ("any", true, "consent:parents"),
            ("parents", true, "consent:parents"),
            ("youth", false, "consent:parents"),
        ]
    );

    std::fs::write(
        tmp.path().join("consent.toml"),
        [case("ok", "consent"), case("typo", "consnet")].concat(),
    )
    .unwrap();
    let err = policy::tools::test::run(&snap, tmp.path())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("consent.toml:10:"), "{err}");
    assert!(err.contains("consnet"), "{err}");
}
