//! Covenant lint rules over a validated policy set: what is well-formed but
//! not acceptable under the covenant (AVG art. 9 and 10 data without a legal
//! basis or consent, BSN without permission, unexplained broad globs, unused
//! participants, duplicate and overlapping rules). Each rule has a stable
//! code; errors fail `policy check`, warnings only report.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::policy::model::{Category, Consent, PolicySet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    pub file: String,
    pub line: usize,
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}: {} {sev}: {}",
            self.file, self.line, self.code, self.message
        )
    }
}

/// Every lint rule, with its code and what it checks (for `--help` and docs).
pub const RULES: &[(&str, &str)] = &[
    (
        "L001",
        "health data (AVG art. 9) only to a role whose grondslag allows it (special_categories contains \"health\"), or with consent",
    ),
    (
        "L002",
        "criminal-law data (AVG art. 10) only to a role whose grondslag allows it (special_categories contains \"criminal\")",
    ),
    (
        "L003",
        "BSN only to a role explicitly permitted (special_categories contains \"bsn\")",
    ),
    (
        "L004",
        "a rule that uses a glob needs a written justification",
    ),
    (
        "L005",
        "every rule states why the fields are necessary (justification)",
    ),
    ("L006", "a role that neither gives nor receives anything"),
    ("L007", "a purpose that no rule uses"),
    (
        "L008",
        "two rules with the same flow and the same fields (duplicate)",
    ),
    ("L009", "two rules with the same flow whose fields overlap"),
    (
        "L010",
        "no role may register cases (may_register_cases): no pupil can be brought in, so the overleg shares nothing",
    ),
    (
        "L011",
        "a glob that covers health, criminal-law or BSN fields: name them one by one, so a field added to the catalogue later does not flow unreviewed",
    ),
];

pub fn lint(set: &PolicySet) -> Vec<Finding> {
    let mut out = Vec::new();
    for o in set.overleggen.values() {
        let mut push = |line: usize, code: &'static str, severity: Severity, message: String| {
            out.push(Finding {
                file: o.file.clone(),
                line,
                code,
                severity,
                message,
            })
        };
        for r in &o.rules {
            let Some(bron) = set.bronnen.get(&r.bron) else {
                continue;
            };
            // The data always flows to the `to` role (for a write, the bron's
            // owner holds it), so its grondslag is the one that must allow it.
            let Some(receiver) = o.role(&r.to) else {
                continue;
            };
            let allows = |c: Category| receiver.special_categories.contains(&c);
            for &i in &r.fields {
                let f = &bron.catalogue[i];
                match f.category {
                    Category::Health if !allows(Category::Health) && r.consent == Consent::None => {
                        push(
                            r.line,
                            "L001",
                            Severity::Error,
                            format!(
                                "rule `{}` shares health data `{}` with role `{}` without consent, and the role's grondslag does not list \"health\"",
                                r.id, f.path, receiver.id
                            ),
                        )
                    }
                    Category::Criminal if !allows(Category::Criminal) => push(
                        r.line,
                        "L002",
                        Severity::Error,
                        format!(
                            "rule `{}` shares criminal-law data `{}` with role `{}`, whose grondslag does not list \"criminal\"",
                            r.id, f.path, receiver.id
                        ),
                    ),
                    Category::Bsn if !allows(Category::Bsn) => push(
                        r.line,
                        "L003",
                        Severity::Error,
                        format!(
                            "rule `{}` shares the BSN (`{}`) with role `{}`, which is not permitted to receive it",
                            r.id, f.path, receiver.id
                        ),
                    ),
                    _ => {}
                }
            }
            for p in r.patterns.iter().filter(|p| !p.is_literal()) {
                let special: Vec<&str> = bron
                    .catalogue
                    .iter()
                    .filter(|f| f.category != Category::Normal && p.matches(&f.path))
                    .map(|f| f.path.as_str())
                    .collect();
                if !special.is_empty() {
                    push(
                        r.line,
                        "L011",
                        Severity::Warning,
                        format!(
                            "rule `{}` shares special-category data through the glob `{}` ({}): list these fields by name, so a field added to the catalogue later does not flow unreviewed",
                            r.id,
                            p.as_str(),
                            special.join(", ")
                        ),
                    );
                }
            }
            let has_glob = r.patterns.iter().any(|p| !p.is_literal());
            if r.justification.trim().is_empty() {
                if has_glob {
                    push(
                        r.line,
                        "L004",
                        Severity::Error,
                        format!(
                            "rule `{}` uses a glob ({}) but has no justification",
                            r.id,
                            r.patterns
                                .iter()
                                .filter(|p| !p.is_literal())
                                .map(|p| p.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                } else {
                    push(
                        r.line,
                        "L005",
                        Severity::Warning,
                        format!("rule `{}` has no justification", r.id),
                    );
                }
            }
        }
        for role in &o.roles {
            if !o.rules.iter().any(|r| r.from == role.id || r.to == role.id) {
                push(
                    role.line,
                    "L006",
                    Severity::Warning,
                    format!(
                        "role `{}` takes part in `{}` but neither gives nor receives anything",
                        role.id, o.id
                    ),
                );
            }
        }
        if !o.roles.iter().any(|r| r.may_register_cases) {
            push(
                1,
                "L010",
                Severity::Warning,
                format!(
                    "no role of `{}` may register cases (may_register_cases): requests about a pupil need an active registration, so nothing can be shared",
                    o.id
                ),
            );
        }
        for p in &o.purposes {
            if !o.rules.iter().any(|r| r.purpose == p.id) {
                push(
                    1,
                    "L007",
                    Severity::Warning,
                    format!("purpose `{}` is used by no rule", p.id),
                );
            }
        }
        for (i, a) in o.rules.iter().enumerate() {
            for b in &o.rules[i + 1..] {
                if (
                    a.purpose.as_str(),
                    a.from.as_str(),
                    a.to.as_str(),
                    a.bron.as_str(),
                ) != (
                    b.purpose.as_str(),
                    b.from.as_str(),
                    b.to.as_str(),
                    b.bron.as_str(),
                ) {
                    continue;
                }
                let fa: BTreeSet<usize> = a.fields.iter().copied().collect();
                let fb: BTreeSet<usize> = b.fields.iter().copied().collect();
                if fa == fb {
                    push(
                        b.line,
                        "L008",
                        Severity::Error,
                        format!(
                            "rule `{}` duplicates rule `{}` (same flow, same fields)",
                            b.id, a.id
                        ),
                    );
                } else if !fa.is_disjoint(&fb) {
                    push(
                        b.line,
                        "L009",
                        Severity::Warning,
                        format!(
                            "rule `{}` overlaps rule `{}` ({} field(s) in both)",
                            b.id,
                            a.id,
                            fa.intersection(&fb).count()
                        ),
                    );
                }
            }
        }
    }
    out.sort();
    out
}
