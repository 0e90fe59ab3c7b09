//! `policy test`: files of expected decisions, run against the policy set,
//! with a coverage summary naming the rules no case exercises.
//!
//! ```toml
//! [[cases]]
//! name = "WIJ ziet het verzuimpatroon voor de aanpak van verzuim"
//! org = "wij-groningen"
//! role = "jeugdwet"                # optional
//! overleg = "aoj-vo-noorderlicht"
//! purpose = "aanpak-verzuim"
//! bron = "las-noorderlicht"
//! field = "verzuim.meldingen[].datum"
//! write = false                    # optional: the caller sends (POST/PUT)
//! expect = "allow"                 # allow | deny | consent | consent:<who>
//! ```
//!
//! `consent` passes for any consent requirement; `consent:parents`,
//! `consent:youth` and `consent:parents-and-youth` pin down whose consent the
//! rule asks for (the covenant's age rule), so a rule with the wrong one fails.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::explain::{ExplainError, Question, explain};
use crate::policy::decision::Snapshot;
use crate::policy::model::Act;

/// The values `expect` may take.
const EXPECT: [&str; 6] = [
    "allow",
    "deny",
    "consent",
    "consent:parents",
    "consent:youth",
    "consent:parents-and-youth",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    cases: Vec<toml::Spanned<Case>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    org: String,
    #[serde(default)]
    role: Option<String>,
    overleg: String,
    purpose: String,
    bron: String,
    field: String,
    #[serde(default)]
    write: bool,
    /// For a bron a supplier hosts: whose data (as X-Bron-Eigenaar).
    #[serde(default)]
    owner: Option<String>,
    /// For an emergency purpose: the reason code (as X-Spoed-Reden).
    #[serde(default)]
    emergency: Option<String>,
    expect: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub file: String,
    pub line: usize,
    pub name: String,
    pub passed: bool,
    pub expected: String,
    pub got: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    pub results: Vec<CaseResult>,
    /// `overleg/rule` ids that no passing allow/consent case exercises.
    pub uncovered_rules: Vec<String>,
    pub total_rules: usize,
}

impl TestReport {
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| !r.passed).count()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TestError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: String,
        line: usize,
        message: String,
    },
    #[error(transparent)]
    Explain(#[from] ExplainError),
}

/// Runs every `*.toml` case file in `dir` against the decision table of
/// `snap` (the one that serves requests), through [`explain`].
pub async fn run(snap: &Snapshot, dir: &Path) -> Result<TestReport, TestError> {
    let mut results = Vec::new();
    let mut covered: BTreeSet<String> = BTreeSet::new();
    for path in case_files(dir)? {
        let p = path.display().to_string();
        let (text, file) = read_case_file(&path, &p)?;
        for c in file.cases {
            let line = crate::policy::load::line_at(&text, c.span().start);
            let c = c.into_inner();
            if !EXPECT.contains(&c.expect.as_str()) {
                return Err(TestError::Parse {
                    path: p.clone(),
                    line,
                    message: format!(
                        "expect = \"{}\": must be one of {}",
                        c.expect,
                        EXPECT.join(", ")
                    ),
                });
            }
            let (result, allowing) = run_case(snap, c, &p, line).await?;
            covered.extend(allowing);
            results.push(result);
        }
    }
    let all: Vec<String> = snap
        .set
        .overleggen
        .values()
        .flat_map(|o| o.rules.iter().map(move |r| format!("{}/{}", o.id, r.id)))
        .collect();
    let uncovered_rules = all
        .iter()
        .filter(|r| !covered.contains(*r))
        .cloned()
        .collect();
    Ok(TestReport {
        results,
        uncovered_rules,
        total_rules: all.len(),
    })
}

/// The `*.toml` files in `dir`, sorted.
fn case_files(dir: &Path) -> Result<Vec<PathBuf>, TestError> {
    let rd = std::fs::read_dir(dir).map_err(|e| TestError::Read {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

fn read_case_file(path: &Path, display: &str) -> Result<(String, CaseFile), TestError> {
    let text = std::fs::read_to_string(path).map_err(|e| TestError::Read {
        path: display.to_owned(),
        message: e.to_string(),
    })?;
    let file = toml::from_str(&text).map_err(|e| TestError::Parse {
        path: display.to_owned(),
        line: crate::policy::load::line_at(&text, e.span().map(|s| s.start).unwrap_or(0)),
        message: e.message().trim().to_owned(),
    })?;
    Ok((text, file))
}

/// Runs one case; returns its result and the `overleg/rule` ids it
/// exercises (those that allow the field, when the case passed). A case
/// whose answer casbin's `enforce()` contradicts fails, whatever it expected.
async fn run_case(
    snap: &Snapshot,
    c: Case,
    file: &str,
    line: usize,
) -> Result<(CaseResult, Vec<String>), TestError> {
    let q = Question {
        org: &c.org,
        role: c.role.as_deref(),
        overleg: &c.overleg,
        purpose: &c.purpose,
        bron: &c.bron,
        field: &c.field,
        act: if c.write { Act::Write } else { Act::Read },
        owner: c.owner.as_deref(),
        emergency: c.emergency.as_deref(),
    };
    let e = explain(snap, &q).await?;
    let got = match (e.allowed, e.consent) {
        (false, _) => "deny".to_owned(),
        (true, Some("none") | None) => "allow".to_owned(),
        (true, Some(who)) => format!("consent:{who}"),
    };
    let expected = got == c.expect || (c.expect == "consent" && got.starts_with("consent:"));
    let passed = expected && e.casbin == e.allowed;
    let reason = match e.casbin == e.allowed {
        true => e.reason,
        false => format!(
            "{}; but casbin enforce() says {}",
            e.reason,
            if e.casbin { "allow" } else { "deny" }
        ),
    };
    let allowing = match passed && e.allowed {
        true => e
            .allowing
            .iter()
            .map(|r| format!("{}/{}", c.overleg, r.id))
            .collect(),
        false => Vec::new(),
    };
    let result = CaseResult {
        file: file.to_owned(),
        line,
        name: c.name,
        passed,
        expected: c.expect,
        got,
        reason,
    };
    Ok((result, allowing))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::policy::compile::{FieldGrant, GrantKey};
    use crate::policy::fixture::Fixture;
    use crate::policy::model::Consent;

    fn case(name: &str, field: &str, expect: &str) -> String {
        format!(
            "[[cases]]\nname = \"{name}\"\norg = \"wij\"\noverleg = \"team\"\npurpose = \"hulp\"\nbron = \"las\"\nfield = \"{field}\"\nexpect = \"{expect}\"\n\n"
        )
    }

    fn outcome(report: &TestReport) -> Vec<(&str, bool, &str)> {
        report
            .results
            .iter()
            .map(|r| (r.name.as_str(), r.passed, r.got.as_str()))
            .collect()
    }

    /// `policy test` answers from the decision table that serves requests:
    /// change one entry of that table (not the rules, not casbin) and the
    /// cases about it fail, with casbin's disagreement named.
    #[tokio::test]
    async fn policy_test_reads_the_table_that_serves_requests() {
        let mut snap = Fixture::new().snapshot().await;
        let tmp = tempfile::tempdir().unwrap();
        let cases = [
            case("uren", "verzuim.uren", "allow"),
            case("bsn", "leerling.bsn", "deny"),
            case("toelichting", "verzuim.toelichting", "consent:parents"),
        ];
        std::fs::write(tmp.path().join("team.toml"), cases.concat()).unwrap();
        let report = run(&snap, tmp.path()).await.unwrap();
        assert_eq!(
            outcome(&report),
            [
                ("uren", true, "allow"),
                ("bsn", true, "deny"),
                ("toelichting", true, "consent:parents")
            ]
        );

        // WIJ's entry loses the hours and gains the BSN.
        let key = GrantKey {
            org: "wij".into(),
            role: "jeugd".into(),
            overleg: "team".into(),
            purpose: "hulp".into(),
            bron: "las".into(),
            owner: "school".into(),
            act: Act::Read,
        };
        let bron = Arc::clone(&snap.set.bronnen["las"]);
        let mut grant = (**snap.table.get(&key).unwrap()).clone();
        let idx = |path| bron.field_index(path).unwrap();
        grant.fields[idx("verzuim.uren")] = None;
        grant.fields[idx("leerling.bsn")] = Some(FieldGrant {
            consent: Consent::None,
            rules: vec![Arc::from("t-01")],
        });
        grant.index(&bron);
        snap.table.replace(key, Arc::new(grant));

        let report = run(&snap, tmp.path()).await.unwrap();
        assert_eq!(
            outcome(&report),
            [
                ("uren", false, "deny"),
                ("bsn", false, "allow"),
                ("toelichting", true, "consent:parents")
            ]
        );
        assert_eq!(report.failed(), 2);
        assert!(
            report.results[0]
                .reason
                .ends_with("but casbin enforce() says allow")
        );
        assert!(
            report.results[1]
                .reason
                .ends_with("but casbin enforce() says deny")
        );
    }

    #[tokio::test]
    async fn coverage_names_the_rules_no_passing_case_exercises() {
        let snap = Fixture::new().snapshot().await;
        let tmp = tempfile::tempdir().unwrap();
        let cases = [
            case("uren", "verzuim.uren", "allow"),
            // A failing case exercises nothing.
            case("toelichting", "verzuim.toelichting", "allow"),
        ];
        std::fs::write(tmp.path().join("a.toml"), cases.concat()).unwrap();
        std::fs::write(tmp.path().join("notes.txt"), "not a case file").unwrap();
        let report = run(&snap, tmp.path()).await.unwrap();
        assert_eq!(
            outcome(&report),
            [
                ("uren", true, "allow"),
                ("toelichting", false, "consent:parents")
            ]
        );
        assert_eq!(report.results[1].line, 10);
        assert_eq!(report.total_rules, 6);
        assert_eq!(
            report.uncovered_rules,
            [
                "team/t-02",
                "team/t-03",
                "team/t-04",
                "team/t-05",
                "team/t-06"
            ]
        );
    }

    #[tokio::test]
    async fn a_bad_case_file_is_refused_with_its_line() {
        let snap = Fixture::new().snapshot().await;
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a.toml");
        let cases: [(String, &str); 3] = [
            (
                [
                    case("a", "verzuim.uren", "allow"),
                    case("b", "verzuim.uren", "maybe"),
                ]
                .concat(),
                "a.toml:10: expect = \"maybe\"",
            ),
            (
                case("a", "verzuim.uren", "allow").replace("org =", "organisatie ="),
                "a.toml:3: unknown field `organisatie`",
            ),
            ("[[cases]]\nname = 3\n".into(), "a.toml:2:"),
        ];
        for (text, says) in cases {
            std::fs::write(&file, text).unwrap();
            let err = run(&snap, tmp.path()).await.err().unwrap().to_string();
            assert!(err.contains(says), "{err}");
        }
        let err = run(&snap, &tmp.path().join("absent")).await.err().unwrap();
        assert!(matches!(err, TestError::Read { .. }), "{err}");
    }
}
