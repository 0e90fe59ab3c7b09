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
use crate::policy::model::{Act, PolicySet};

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

/// Runs every `*.toml` case file in `dir` against `set`.
pub async fn run(set: &PolicySet, dir: &Path) -> Result<TestReport, TestError> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(e) => {
            return Err(TestError::Read {
                path: dir.display().to_string(),
                message: e.to_string(),
            });
        }
    };
    files.sort();
    let mut results = Vec::new();
    let mut covered: BTreeSet<String> = BTreeSet::new();
    for path in files {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| TestError::Read {
            path: p.clone(),
            message: e.to_string(),
        })?;
        let file: CaseFile = toml::from_str(&text).map_err(|e| TestError::Parse {
            path: p.clone(),
            line: crate::policy::load::line_at(&text, e.span().map(|s| s.start).unwrap_or(0)),
            message: e.message().trim().to_owned(),
        })?;
        for c in file.cases {
            let line = crate::policy::load::line_at(&text, c.span().start);
            let c = c.into_inner();
            let q = Question {
                org: &c.org,
                role: c.role.as_deref(),
                overleg: &c.overleg,
                purpose: &c.purpose,
                bron: &c.bron,
                field: &c.field,
                act: if c.write { Act::Write } else { Act::Read },
            };
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
            let e = explain(set, &q).await?;
            let got = match (e.allowed, e.consent) {
                (false, _) => "deny".to_owned(),
                (true, Some("none")) | (true, None) => "allow".to_owned(),
                (true, Some(who)) => format!("consent:{who}"),
            };
            let passed = got == c.expect || (c.expect == "consent" && got.starts_with("consent:"));
            if passed && e.allowed {
                for r in &e.allowing {
                    covered.insert(format!("{}/{}", c.overleg, r.id));
                }
            }
            results.push(CaseResult {
                file: p.clone(),
                line,
                name: c.name,
                passed,
                expected: c.expect,
                got,
                reason: e.reason,
            });
        }
    }
    let all: Vec<String> = set
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
