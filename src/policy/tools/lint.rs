//! Covenant lint rules over a validated policy set: what is well-formed but
//! not acceptable under the covenant (AVG art. 9 and 10 data without a legal
//! basis or consent, BSN without permission, unexplained broad globs, unused
//! participants, duplicate and overlapping rules, mandates that cannot be
//! used or have ended, processors without an agreement). Each rule has a
//! stable code; errors fail `policy check`, warnings only report.
//!
//! The partner registry's findings (L012-L014) point at the supplier's or
//! mandate's line in `partners.toml`.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::policy::mandate::{self, Coverage, Direction, Mandate};
use crate::policy::model::{Bron, Category, Consent, LegalBasis, Overleg, PolicySet, Role, Rule};

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
    (
        "L012",
        "a mandate for an organisation that holds a role in none of the casusoverleggen it covers: the supplier can never act on it",
    ),
    (
        "L013",
        "an expired mandate (valid_until before today) still listed: remove it, so the registry shows only what holds",
    ),
    (
        "L014",
        "a supplier (processor, AVG art. 28) without a processor_agreement reference",
    ),
    (
        "L015",
        "a role allowed health data (special_categories contains \"health\") whose grondslag basis names no exception of AVG art. 9(2) (or UAVG art. 30), or allowed criminal-law data without AVG art. 10",
    ),
    (
        "L016",
        "a rule without consent to a role that relies on consent: its only ground is AVG art. 6(1)(a), or (for health data) its only art. 9 exception is 9(2)(a)",
    ),
];

/// Every finding of every lint rule over `set`, sorted by file, line and
/// code; "today" (L013) is now.
pub fn lint(set: &PolicySet) -> Vec<Finding> {
    lint_at(set, mandate::now())
}

/// [`lint`] as of `now` (unix seconds).
pub fn lint_at(set: &PolicySet, now: i64) -> Vec<Finding> {
    let mut out = Vec::new();
    let partners = partners_file(set);
    let mut found = Findings {
        file: &partners,
        out: &mut out,
    };
    for m in &set.mandates.all {
        unusable_mandate(set, m, &mut found);
        expired_mandate(m, now, &mut found);
    }
    processor_agreements(set, &mut found);
    for o in set.overleggen.values() {
        let mut found = Findings {
            file: &o.file,
            out: &mut out,
        };
        for role in &o.roles {
            exceptions_named(role, &mut found);
        }
        for r in &o.rules {
            let Some(bron) = set.bronnen.get(&r.bron) else {
                continue;
            };
            special_categories(o, r, bron, &mut found);
            consent_grounds(o, r, bron, &mut found);
            special_globs(r, bron, &mut found);
            justification(r, &mut found);
        }
        idle_roles(o, &mut found);
        no_registering_role(o, &mut found);
        unused_purposes(o, &mut found);
        duplicate_rules(o, &mut found);
    }
    out.sort();
    out
}

/// Findings of one file (an overleg, or the partner registry).
struct Findings<'a> {
    file: &'a str,
    out: &'a mut Vec<Finding>,
}

impl Findings<'_> {
    fn push(&mut self, line: usize, code: &'static str, severity: Severity, message: String) {
        self.out.push(Finding {
            file: self.file.to_owned(),
            line,
            code,
            severity,
            message,
        });
    }
}

/// `partners.toml` as the loader names it (beside `overleggen/`).
fn partners_file(set: &PolicySet) -> String {
    set.overleggen
        .values()
        .next()
        .and_then(|o| {
            let dir = std::path::Path::new(&o.file).parent()?.parent()?;
            Some(dir.join("partners.toml").display().to_string())
        })
        .unwrap_or_else(|| "partners.toml".to_owned())
}

/// "mandate of `supplier` for `organisation` (direction)".
fn mandate_name(m: &Mandate) -> String {
    format!(
        "mandate of `{}` for `{}` ({})",
        m.supplier,
        m.organisation,
        m.direction.as_str()
    )
}

/// L012: a mandate for an organisation that sits in none of the overleggen
/// it covers (all overleggen for `["*"]`).
fn unusable_mandate(set: &PolicySet, m: &Mandate, found: &mut Findings<'_>) {
    let holds_role = |o: &Overleg| {
        o.roles
            .iter()
            .any(|r| r.organisations.contains(&m.organisation))
    };
    let covered: Vec<&Overleg> = set
        .overleggen
        .values()
        .filter(|o| m.overleggen.covers(Some(&o.id)))
        .collect();
    if covered.iter().any(|o| holds_role(o)) {
        return;
    }
    let which = match &m.overleggen {
        Coverage::All => "any casusoverleg".to_owned(),
        Coverage::Only(ids) => ids
            .iter()
            .map(|id| format!("`{id}`"))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let consequence = match m.direction {
        Direction::Client => "the supplier can never call the gateway on its behalf",
        Direction::Bron => "no rule can read its bronnen there",
    };
    found.push(
        m.line,
        "L012",
        Severity::Warning,
        format!(
            "{}: `{}` holds no role in {which}, so {consequence}",
            mandate_name(m),
            m.organisation
        ),
    );
}

/// L013: a mandate whose last day is before today.
fn expired_mandate(m: &Mandate, now: i64, found: &mut Findings<'_>) {
    if let (Some(until), Some(day)) = (m.until, &m.valid_until)
        && until <= now
    {
        found.push(
            m.line,
            "L013",
            Severity::Warning,
            format!(
                "{}: expired (valid until {day}) but still listed",
                mandate_name(m)
            ),
        );
    }
}

/// L014: a supplier without a processing agreement reference.
fn processor_agreements(set: &PolicySet, found: &mut Findings<'_>) {
    for s in set.mandates.suppliers.values() {
        if s.processor_agreement.is_none() {
            found.push(
                s.line,
                "L014",
                Severity::Error,
                format!(
                    "supplier `{}` is a processor (AVG art. 28) but names no processor_agreement (verwerkersovereenkomst)",
                    s.id
                ),
            );
        }
    }
}

/// L001, L002, L003: health, criminal-law and BSN fields only to a role whose
/// grondslag lists them (health also with consent).
fn special_categories(o: &Overleg, r: &Rule, bron: &Bron, found: &mut Findings<'_>) {
    // The data always flows to the `to` role (for a write, the bron's
    // owner holds it), so its grondslag is the one that must allow it.
    let Some(receiver) = o.role(&r.to) else {
        return;
    };
    let allows = |c: Category| receiver.special_categories.contains(&c);
    for f in r.fields.iter().filter_map(|&i| bron.catalogue.get(i)) {
        let (code, what) = match f.category {
            Category::Health if !allows(Category::Health) && r.consent == Consent::None => (
                "L001",
                format!(
                    "rule `{}` shares health data `{}` with role `{}` without consent, and the role's grondslag does not list \"health\"",
                    r.id, f.path, receiver.id
                ),
            ),
            Category::Criminal if !allows(Category::Criminal) => (
                "L002",
                format!(
                    "rule `{}` shares criminal-law data `{}` with role `{}`, whose grondslag does not list \"criminal\"",
                    r.id, f.path, receiver.id
                ),
            ),
            Category::Bsn if !allows(Category::Bsn) => (
                "L003",
                format!(
                    "rule `{}` shares the BSN (`{}`) with role `{}`, which is not permitted to receive it",
                    r.id, f.path, receiver.id
                ),
            ),
            _ => continue,
        };
        found.push(r.line, code, Severity::Error, what);
    }
}

/// L015: a role the covenant allows health or criminal-law data names the
/// provision that lifts the ban on it: an exception of AVG art. 9(2) (or
/// UAVG art. 30) for health, art. 10 for criminal-law data.
fn exceptions_named(role: &Role, found: &mut Findings<'_>) {
    let g = &role.grondslag;
    let missing = [
        (
            Category::Health,
            g.basis.iter().any(|b| b.is_special_category_exception()),
            "exception of AVG art. 9(2) (e.g. `9.2.h`, `9.2.a`) or UAVG art. 30",
        ),
        (
            Category::Criminal,
            g.names(LegalBasis::CriminalData),
            "AVG art. 10 (`10`)",
        ),
    ];
    for (category, named, needs) in missing {
        if role.special_categories.contains(&category) && !named {
            found.push(
                role.line,
                "L015",
                Severity::Error,
                format!(
                    "role `{}` may receive {} data, but its grondslag basis ({}) names no {needs}",
                    role.id,
                    category.as_str(),
                    g.basis_text()
                ),
            );
        }
    }
}

/// L016: a rule without consent to a role whose only ground for it is
/// consent: AVG art. 6(1)(a) as its only art. 6 ground, or, for health data,
/// explicit consent (art. 9(2)(a)) as its only art. 9 exception.
fn consent_grounds(o: &Overleg, r: &Rule, bron: &Bron, found: &mut Findings<'_>) {
    let Some(receiver) = o.role(&r.to) else {
        return;
    };
    if r.consent != Consent::None {
        return;
    }
    let only = |pick: fn(LegalBasis) -> bool, b: LegalBasis| {
        let picked: Vec<LegalBasis> = receiver
            .grondslag
            .basis
            .iter()
            .copied()
            .filter(|x| pick(*x))
            .collect();
        picked == [b]
    };
    let health = r
        .fields
        .iter()
        .filter_map(|&i| bron.catalogue.get(i))
        .find(|f| f.category == Category::Health);
    let (what, why) = if only(LegalBasis::is_lawful_ground, LegalBasis::Consent) {
        (
            "data".to_owned(),
            "its only ground is consent (AVG art. 6(1)(a))",
        )
    } else if let Some(f) = health
        && only(
            LegalBasis::is_special_category_exception,
            LegalBasis::ExplicitConsent,
        )
    {
        (
            format!("health data `{}`", f.path),
            "its only art. 9 exception is explicit consent (AVG art. 9(2)(a))",
        )
    } else {
        return;
    };
    found.push(
        r.line,
        "L016",
        Severity::Error,
        format!(
            "rule `{}` gives {what} to role `{}` without consent, but {why}: the rule needs `consent`",
            r.id, receiver.id
        ),
    );
}

/// L011: a glob that covers health, criminal-law or BSN fields.
fn special_globs(r: &Rule, bron: &Bron, found: &mut Findings<'_>) {
    for p in r.patterns.iter().filter(|p| !p.is_literal()) {
        let special: Vec<&str> = bron
            .catalogue
            .iter()
            .filter(|f| f.category != Category::Normal && p.matches(&f.path))
            .map(|f| f.path.as_str())
            .collect();
        if !special.is_empty() {
            found.push(
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
}

/// L004 (with a glob) and L005: every rule says why it needs its fields.
fn justification(r: &Rule, found: &mut Findings<'_>) {
    if !r.justification.trim().is_empty() {
        return;
    }
    let globs: Vec<&str> = r
        .patterns
        .iter()
        .filter(|p| !p.is_literal())
        .map(super::super::fieldpath::FieldGlob::as_str)
        .collect();
    if globs.is_empty() {
        let message = format!("rule `{}` has no justification", r.id);
        found.push(r.line, "L005", Severity::Warning, message);
    } else {
        let message = format!(
            "rule `{}` uses a glob ({}) but has no justification",
            r.id,
            globs.join(", ")
        );
        found.push(r.line, "L004", Severity::Error, message);
    }
}

/// L006: a role that neither gives nor receives anything.
fn idle_roles(o: &Overleg, found: &mut Findings<'_>) {
    for role in &o.roles {
        if !o.rules.iter().any(|r| r.from == role.id || r.to == role.id) {
            found.push(
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
}

/// L010: no role may register cases, so nothing can be shared.
fn no_registering_role(o: &Overleg, found: &mut Findings<'_>) {
    if !o.roles.iter().any(|r| r.may_register_cases) {
        found.push(
            1,
            "L010",
            Severity::Warning,
            format!(
                "no role of `{}` may register cases (may_register_cases): requests about a pupil need an active registration, so nothing can be shared",
                o.id
            ),
        );
    }
}

/// L007: a purpose no rule uses.
fn unused_purposes(o: &Overleg, found: &mut Findings<'_>) {
    for p in &o.purposes {
        if !o.rules.iter().any(|r| r.purpose == p.id) {
            let message = format!("purpose `{}` is used by no rule", p.id);
            found.push(1, "L007", Severity::Warning, message);
        }
    }
}

/// L008 and L009: two rules with the same flow and the same, or shared, fields.
fn duplicate_rules(o: &Overleg, found: &mut Findings<'_>) {
    let flow = |r: &Rule| {
        (
            r.purpose.clone(),
            r.from.clone(),
            r.to.clone(),
            r.bron.clone(),
        )
    };
    for (i, a) in o.rules.iter().enumerate() {
        for b in o.rules[i + 1..].iter().filter(|b| flow(b) == flow(a)) {
            let fa: BTreeSet<usize> = a.fields.iter().copied().collect();
            let fb: BTreeSet<usize> = b.fields.iter().copied().collect();
            if fa == fb {
                let message = format!(
                    "rule `{}` duplicates rule `{}` (same flow, same fields)",
                    b.id, a.id
                );
                found.push(b.line, "L008", Severity::Error, message);
            } else if !fa.is_disjoint(&fb) {
                let message = format!(
                    "rule `{}` overlaps rule `{}` ({} field(s) in both)",
                    b.id,
                    a.id,
                    fa.intersection(&fb).count()
                );
                found.push(b.line, "L009", Severity::Warning, message);
            }
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::too_many_lines,
    reason = "table-driven tests list their cases in one place"
)]
mod tests {
    use super::*;
    use crate::policy::fixture::Fixture;

    const TEAM: &str = "overleggen/team.toml";

    fn rule(id: &str, purpose: &str, to: &str, fields: &str) -> String {
        format!(
            "\n[[rules]]\nid = \"{id}\"\npurpose = \"{purpose}\"\nfrom = \"school\"\nto = \"{to}\"\nbron = \"las\"\nfields = [{fields}]\nconsent = \"none\"\njustification = \"Test.\"\n"
        )
    }

    #[test]
    fn the_fixture_is_clean() {
        assert_eq!(lint(&Fixture::new().set()), []);
    }

    /// Each rule fires on a minimal change of the clean fixture, alone, at
    /// the line of what it is about.
    #[test]
    fn each_rule_fires_on_its_own_fixture() {
        let base = Fixture::new();
        let criminal = "\n[[fields]]\npath = \"justitie.pv\"\nlabel = \"Proces-verbaal\"\ncategory = \"criminal\"\n";
        let cases: Vec<(&str, Fixture, &str, &str)> = vec![
            (
                "L001",
                base.clone()
                    .edit(TEAM, "special_categories = [\"health\"]\n", "")
                    .edit(TEAM, "consent = \"parents-and-youth\"", "consent = \"none\""),
                "id = \"t-03\"",
                "health data `zorg.diagnose` with role `jgz` without consent",
            ),
            (
                "L002",
                base.clone()
                    .append("bronnen/las.toml", criminal)
                    .append(TEAM, &rule("t-09", "handhaving", "leerplicht", "\"justitie.pv\"")),
                "id = \"t-09\"",
                "criminal-law data `justitie.pv` with role `leerplicht`",
            ),
            (
                "L003",
                base.clone().edit(TEAM, "fields = [\"leerling.naam\"]", "fields = [\"leerling.naam\", \"leerling.bsn\"]"),
                "id = \"t-06\"",
                "the BSN (`leerling.bsn`) with role `rmc`",
            ),
            (
                "L004",
                base.clone().edit(TEAM, "\"Het hele verzuim voor de handhaving.\"", "\"\""),
                "id = \"t-04\"",
                "uses a glob (verzuim.*) but has no justification",
            ),
            (
                "L005",
                base.clone().edit(TEAM, "\"De naam voor het RMC.\"", "\" \""),
                "id = \"t-06\"",
                "rule `t-06` has no justification",
            ),
            (
                "L006",
                base.clone().append(
                    TEAM,
                    "\n[[roles]]\nid = \"toeschouwer\"\nname = \"T\"\ngrondslag = { law = \"W\", article = \"a\", basis = [\"6.1.e\"] }\norganisations = [\"buiten\"]\n",
                ),
                "id = \"toeschouwer\"",
                "role `toeschouwer` takes part in `team` but neither gives nor receives anything",
            ),
            (
                "L007",
                base.clone().append(TEAM, "\n[[purposes]]\nid = \"ongebruikt\"\ntext = \"Niets\"\n"),
                "",
                "purpose `ongebruikt` is used by no rule",
            ),
            (
                "L008",
                base.clone().append(TEAM, &rule("t-10", "handhaving", "rmc", "\"leerling.naam\"")),
                "id = \"t-10\"",
                "rule `t-10` duplicates rule `t-06`",
            ),
            (
                "L009",
                base.clone().append(TEAM, &rule("t-10", "handhaving", "rmc", "\"leerling.naam\", \"verzuim.uren\"")),
                "id = \"t-10\"",
                "rule `t-10` overlaps rule `t-06` (1 field(s) in both)",
            ),
            (
                "L010",
                base.clone().edit(TEAM, "may_register_cases = true", "may_register_cases = false"),
                "",
                "no role of `team` may register cases",
            ),
            (
                "L011",
                base.clone().edit(TEAM, "\"leerling.naam\", \"leerling.bsn\", \"verzuim.*\"", "\"leerling.*\", \"verzuim.*\""),
                "id = \"t-04\"",
                "through the glob `leerling.*` (leerling.bsn)",
            ),
            (
                "L015",
                base.clone().edit(TEAM, "[\"6.1.e\", \"9.2.h\"]", "[\"6.1.e\"]"),
                "id = \"jgz\"",
                "role `jgz` may receive health data, but its grondslag basis (AVG art. 6(1)(e)) names no exception of AVG art. 9(2)",
            ),
            (
                "L015",
                base.clone().edit(TEAM, "special_categories = [\"bsn\"]", "special_categories = [\"bsn\", \"criminal\"]"),
                "id = \"leerplicht\"",
                "role `leerplicht` may receive criminal data, but its grondslag basis (AVG art. 6(1)(c)) names no AVG art. 10",
            ),
            (
                "L016",
                base.clone().edit(TEAM, "basis = [\"6.1.e\"] }\norganisations = [\"gemeente\"]", "basis = [\"6.1.a\"] }\norganisations = [\"gemeente\"]"),
                "id = \"t-06\"",
                "rule `t-06` gives data to role `rmc` without consent, but its only ground is consent (AVG art. 6(1)(a))",
            ),
            (
                "L016",
                base.clone()
                    .edit(TEAM, "[\"6.1.e\", \"9.2.h\"]", "[\"6.1.e\", \"9.2.a\"]")
                    .edit(TEAM, "consent = \"parents-and-youth\"", "consent = \"none\""),
                "id = \"t-03\"",
                "rule `t-03` gives health data `zorg.diagnose` to role `jgz` without consent, but its only art. 9 exception is explicit consent (AVG art. 9(2)(a))",
            ),
        ];
        for (code, fixture, at, says) in cases {
            let tmp = fixture.write();
            let set = crate::policy::load_dir(tmp.path()).unwrap_or_else(|e| panic!("{code}: {e}"));
            let found = lint(&set);
            let codes: Vec<&str> = found.iter().map(|f| f.code).collect();
            assert_eq!(codes, [code], "{found:#?}");
            let f = &found[0];
            assert!(f.message.contains(says), "{code}: {}", f.message);
            assert!(f.file.ends_with("team.toml"), "{code}: {}", f.file);
            let text = std::fs::read_to_string(tmp.path().join(TEAM)).unwrap();
            let line = match at {
                "" => 1,
                at => text[..text.find(at).unwrap()].matches('\n').count(),
            };
            assert_eq!(f.line, line, "{code}: {f}");
            assert!(
                RULES.iter().any(|(c, _)| *c == code),
                "{code} is not listed in RULES"
            );
        }
    }

    /// A supplier with its agreement and a mandate of the school for `team`.
    const SUPPLIER: &str = "\n[[suppliers]]\nid = \"lev\"\nname = \"Leverancier\"\noin = \"00000099000000000901\"\nprocessor_agreement = \"VWO-1\"\n\n[[mandates]]\nsupplier = \"lev\"\norganisation = \"school\"\ndirection = \"client\"\noverleggen = [\"team\"]\nvalid_from = \"2026-01-01\"\nvalid_until = \"2026-06-30\"\n";

    /// Each rule about the partner registry fires on a minimal change of the
    /// clean fixture with a supplier, alone, at `partners.toml`, as of
    /// 1 March 2026 (inside the mandate's validity).
    #[test]
    fn each_registry_rule_fires_on_its_own_fixture() {
        const P: &str = "partners.toml";
        let now = mandate::day_start("2026-03-01").unwrap();
        let base = Fixture::new().append(P, SUPPLIER);
        assert_eq!(
            lint_at(&base.set(), now),
            [],
            "the fixture with a supplier is clean"
        );
        let cases: Vec<(&str, Fixture, i64, &str)> = vec![
            (
                "L012",
                base.clone()
                    .edit(P, "organisation = \"school\"", "organisation = \"buiten\""),
                now,
                "mandate of `lev` for `buiten` (client): `buiten` holds no role in `team`",
            ),
            (
                "L012",
                base.clone()
                    .edit(P, "organisation = \"school\"", "organisation = \"buiten\"")
                    .edit(P, "overleggen = [\"team\"]", "overleggen = [\"*\"]")
                    .edit(P, "direction = \"client\"", "direction = \"bron\""),
                now,
                "`buiten` holds no role in any casusoverleg, so no rule can read its bronnen there",
            ),
            (
                "L013",
                base.clone(),
                mandate::day_start("2026-07-01").unwrap(),
                "mandate of `lev` for `school` (client): expired (valid until 2026-06-30) but still listed",
            ),
            (
                "L014",
                base.clone()
                    .edit(P, "processor_agreement = \"VWO-1\"\n", ""),
                now,
                "supplier `lev` is a processor (AVG art. 28) but names no processor_agreement",
            ),
            (
                "L014",
                base.clone().edit(
                    P,
                    "processor_agreement = \"VWO-1\"",
                    "processor_agreement = \" \"",
                ),
                now,
                "supplier `lev` is a processor",
            ),
        ];
        for (code, fixture, at, says) in cases {
            let set = fixture.set();
            let found = lint_at(&set, at);
            let codes: Vec<&str> = found.iter().map(|f| f.code).collect();
            assert_eq!(codes, [code], "{found:#?}");
            let f = &found[0];
            assert!(f.message.contains(says), "{code}: {}", f.message);
            assert!(f.file.ends_with("partners.toml"), "{code}: {}", f.file);
            // The supplier's or mandate's own line, past the organisations.
            let first_own = crate::policy::fixture::PARTNERS.lines().count();
            assert!(f.line > first_own, "{code}: {f}");
            assert!(
                RULES.iter().any(|(c, _)| *c == code),
                "{code} is not listed in RULES"
            );
        }
        // Valid on all of its last day; no end never expires.
        let last_day = mandate::day_start("2026-06-30").unwrap() + 23 * 3600;
        assert_eq!(lint_at(&base.set(), last_day), []);
        let open = base.edit(P, "valid_until = \"2026-06-30\"\n", "").set();
        assert_eq!(
            lint_at(&open, mandate::day_start("2099-01-01").unwrap()),
            []
        );
    }

    #[test]
    fn a_finding_reads_file_line_code_severity_message() {
        let set = Fixture::new()
            .edit(TEAM, "\"De naam voor het RMC.\"", "\"\"")
            .set();
        let f = &lint(&set)[0];
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.to_string().ends_with(&format!(
            ":{}: L005 warning: rule `t-06` has no justification",
            f.line
        )));
    }
}
