//! Compiling a validated [`PolicySet`] into casbin, and deriving the decision
//! table from casbin's own rows.
//!
//! casbin is the source of truth, but `enforce()` scans every row (~1 µs a
//! row), so it cannot sit on the request path at 50,000 rows. Instead, on every
//! (re)load we:
//! 1. generate casbin `p` and `g` rows from the validated set, checking arity;
//! 2. load them into one fresh enforcer per (overleg, caller role) through the
//!    memory adapter (never `load_policy()` on a live enforcer: it empties the
//!    policy first; never `CachedEnforcer`: it serves revoked rows);
//! 3. read the rows back from casbin and derive the table from them;
//! 4. verify every table entry with casbin's `enforce()`.
//!
//! Compiled overleggen are cached by content hash, so a reload that changes one
//! overleg recompiles only that one.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use casbin::prelude::{CoreApi, DefaultModel, Enforcer, MemoryAdapter, MgmtApi};

use super::bitset::BitSet;
use super::model::{Act, Bron, Consent, Overleg, PolicySet};

/// The casbin model. Request and policy tuples are fixed-arity; see
/// [`P_ARITY`] and [`R_ARITY`]. Comparisons are ordered most selective first,
/// the role-manager lookup last, because rhai evaluates `&&` lazily.
pub const MODEL: &str = r"
[request_definition]
r = org, role, overleg, purpose, bron, owner, act, field, consent

[policy_definition]
p = role, overleg, purpose, bron, owner, act, field, consent, rule

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.field == p.field && r.purpose == p.purpose && r.bron == p.bron && r.owner == p.owner && r.act == p.act && r.consent == p.consent && r.role == p.role && r.overleg == p.overleg && g(r.org, p.role, r.overleg)
";

/// Columns of a `p` row.
pub const P_ARITY: usize = 9;
/// Columns of a `g` row.
pub const G_ARITY: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("casbin rejected the model or rows for overleg `{overleg}`: {message}")]
    Casbin { overleg: String, message: String },
    #[error("casbin row for overleg `{overleg}` has {got} columns, expected {expected}: {row:?}")]
    Arity {
        overleg: String,
        got: usize,
        expected: usize,
        row: Vec<String>,
    },
    #[error("casbin row for overleg `{overleg}` has an unknown value: {what}")]
    Vocabulary { overleg: String, what: String },
    #[error(
        "decision table disagrees with casbin for {key} field `{field}`: table allows, enforce() denies"
    )]
    Disagreement { key: String, field: String },
}

/// Key of the decision table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GrantKey {
    pub org: String,
    pub role: String,
    pub overleg: String,
    pub purpose: String,
    pub bron: String,
    /// The organisation whose data the bron serves: its only owner, or,
    /// for a hosted bron, the one chosen for the request.
    pub owner: String,
    pub act: Act,
}

impl std::fmt::Display for GrantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "(org {}, role {}, overleg {}, purpose {}, bron {} of {}, {})",
            self.org, self.role, self.overleg, self.purpose, self.bron, self.owner, self.act
        )
    }
}

/// Per-field entry of a grant: the least restrictive consent any rule asks
/// for, and every rule that allows the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldGrant {
    pub consent: Consent,
    pub rules: Vec<Arc<str>>,
}

/// What one key may receive, indexed by the bron's catalogue.
#[derive(Debug, Clone)]
pub struct Grant {
    /// Fields allowed without consent.
    pub unconditional: BitSet,
    /// Fields allowed only with consent (and not unconditionally).
    pub needs_consent: BitSet,
    /// Per resource of the bron (same order): (`unconditional`, `needs_consent`)
    /// restricted to the fields that resource serves. Precomputed so a
    /// decision allocates nothing for them.
    pub per_resource: Vec<(BitSet, BitSet)>,
    /// Per catalogue index, `None` when no rule allows the field.
    pub fields: Vec<Option<FieldGrant>>,
}

/// One compiled overleg: its share of the decision table.
#[derive(Debug)]
pub struct CompiledOverleg {
    pub content_hash: String,
    pub shared_hash: String,
    pub grants: Vec<(GrantKey, Arc<Grant>)>,
    /// Number of casbin `p` rows (for figures and the policy-size lint).
    pub p_rows: usize,
}

/// Which caller role and act a rule produces for a bron owned by `owner`:
/// read when the owner holds `from` (the caller is `to`), write when it
/// holds only `to`, nothing when it holds neither (an owner of a hosted
/// bron that does not take part in the rule).
pub fn rule_direction<'a>(
    overleg: &'a Overleg,
    rule: &'a super::model::Rule,
    owner: &str,
) -> Option<(Act, &'a str)> {
    let holds = |role: &str| {
        overleg
            .role(role)
            .is_some_and(|r| r.organisations.iter().any(|o| o == owner))
    };
    if holds(&rule.from) {
        Some((Act::Read, &rule.to))
    } else if holds(&rule.to) {
        Some((Act::Write, &rule.from))
    } else {
        None
    }
}

/// The act of `rule` on `bron`: the same for every owner that takes part
/// (the loader refuses a rule that reads for one owner and writes for
/// another, P094).
pub fn rule_act(overleg: &Overleg, rule: &super::model::Rule, bron: &Bron) -> Act {
    bron.owners
        .iter()
        .find_map(|o| rule_direction(overleg, rule, o))
        .map_or(Act::Read, |(act, _)| act)
}

/// The casbin `p` rows of one overleg, grouped by caller role: one row per
/// field of each rule, for each owner of the bron that takes part.
pub fn p_rows(set: &PolicySet, overleg: &Overleg) -> BTreeMap<String, Vec<Vec<String>>> {
    let mut out: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for rule in &overleg.rules {
        let Some(bron) = set.bronnen.get(&rule.bron) else {
            continue;
        };
        for owner in &bron.owners {
            let Some((act, caller)) = rule_direction(overleg, rule, owner) else {
                continue;
            };
            for &f in &rule.fields {
                let Some(field) = bron.catalogue.get(f) else {
                    continue;
                };
                out.entry(caller.to_owned()).or_default().push(vec![
                    caller.to_owned(),
                    overleg.id.clone(),
                    rule.purpose.clone(),
                    bron.id.clone(),
                    owner.clone(),
                    act.as_str().to_owned(),
                    field.path.as_str().to_owned(),
                    rule.consent.as_str().to_owned(),
                    rule.id.clone(),
                ]);
            }
        }
    }
    out
}

/// The casbin `g` rows of one overleg for one role: (org, role, overleg).
pub fn g_rows(overleg: &Overleg, role: &str) -> Vec<Vec<String>> {
    overleg
        .role(role)
        .map(|r| {
            r.organisations
                .iter()
                .map(|o| vec![o.clone(), r.id.clone(), overleg.id.clone()])
                .collect()
        })
        .unwrap_or_default()
}

/// Builds a fresh enforcer holding exactly `p` and `g`, after checking arity.
pub async fn enforcer(
    overleg: &str,
    p: Vec<Vec<String>>,
    g: Vec<Vec<String>>,
) -> Result<Enforcer, CompileError> {
    for (rows, expected) in [(&p, P_ARITY), (&g, G_ARITY)] {
        if let Some(row) = rows.iter().find(|r| r.len() != expected) {
            return Err(CompileError::Arity {
                overleg: overleg.to_owned(),
                got: row.len(),
                expected,
                row: row.clone(),
            });
        }
    }
    let casbin_err = |e: casbin::Error| CompileError::Casbin {
        overleg: overleg.to_owned(),
        message: e.to_string(),
    };
    let model = DefaultModel::from_str(MODEL).await.map_err(casbin_err)?;
    let mut e = Enforcer::new(model, MemoryAdapter::default())
        .await
        .map_err(casbin_err)?;
    if !g.is_empty() {
        e.add_grouping_policies(g).await.map_err(casbin_err)?;
    }
    if !p.is_empty() {
        // Duplicate rows (two rules granting the same field with the same
        // consent) would make casbin refuse the whole batch; the rule id column
        // keeps rows distinct, so a refusal here is a genuine error.
        e.add_policies(p).await.map_err(casbin_err)?;
    }
    Ok(e)
}

/// Compiles one overleg: casbin rows, table derived from casbin's rows, every
/// entry verified with `enforce()`.
pub async fn compile_overleg(
    set: &PolicySet,
    overleg: &Overleg,
) -> Result<CompiledOverleg, CompileError> {
    let mut grants: BTreeMap<GrantKey, Grant> = BTreeMap::new();
    let mut p_total = 0;
    for (role, p) in p_rows(set, overleg) {
        let e = enforcer(&overleg.id, p, g_rows(overleg, &role)).await?;
        // Derive from what casbin holds, not from what we meant to give it.
        let rows = e.get_policy();
        let members = members_of(overleg, &role, &e.get_grouping_policy())?;
        p_total += rows.len();
        let mut keys_here: Vec<GrantKey> = Vec::new();
        for row in &rows {
            let row = PolicyRow::read(set, overleg, &role, row)?;
            for org in &members {
                let key = row.key(org, &role, &overleg.id);
                let grant = grants.entry(key.clone()).or_insert_with(|| {
                    keys_here.push(key);
                    Grant::empty(row.bron.catalogue.len())
                });
                grant.allow(row.field, row.consent, row.rule);
            }
        }
        // Verify every entry of this enforcer's share against enforce().
        for key in &keys_here {
            let (Some(grant), Some(bron)) = (grants.get_mut(key), set.bronnen.get(&key.bron))
            else {
                continue;
            };
            verify(&e, &overleg.id, key, grant, bron)?;
            grant.index(bron);
        }
    }
    Ok(CompiledOverleg {
        content_hash: overleg.content_hash.clone(),
        shared_hash: set.shared_hash.clone(),
        grants: grants.into_iter().map(|(k, g)| (k, Arc::new(g))).collect(),
        p_rows: p_total,
    })
}

/// The organisations casbin holds as members of `role` in `overleg`.
fn members_of(
    overleg: &Overleg,
    role: &str,
    grouping: &[Vec<String>],
) -> Result<Vec<String>, CompileError> {
    let mut out = Vec::new();
    for m in grouping {
        let [org, m_role, m_overleg] = m.as_slice() else {
            return Err(CompileError::Arity {
                overleg: overleg.id.clone(),
                got: m.len(),
                expected: G_ARITY,
                row: m.clone(),
            });
        };
        if m_role == role && m_overleg == &overleg.id {
            out.push(org.clone());
        }
    }
    Ok(out)
}

/// One casbin `p` row as read back from the enforcer, checked against the
/// set's vocabulary.
struct PolicyRow<'a> {
    purpose: &'a str,
    bron: &'a Bron,
    owner: &'a str,
    field: usize,
    act: Act,
    consent: Consent,
    rule: &'a str,
}

impl<'a> PolicyRow<'a> {
    fn read(
        set: &'a PolicySet,
        overleg: &Overleg,
        role: &str,
        row: &'a [String],
    ) -> Result<Self, CompileError> {
        let vocab = |what: String| CompileError::Vocabulary {
            overleg: overleg.id.clone(),
            what,
        };
        let [
            r_role,
            r_overleg,
            purpose,
            bron_id,
            owner,
            act,
            field,
            consent,
            rule,
        ] = row
        else {
            return Err(CompileError::Arity {
                overleg: overleg.id.clone(),
                got: row.len(),
                expected: P_ARITY,
                row: row.to_vec(),
            });
        };
        if r_overleg != &overleg.id || r_role != role || overleg.purpose(purpose).is_none() {
            return Err(vocab(format!("{row:?}")));
        }
        let bron = set
            .bronnen
            .get(bron_id)
            .ok_or_else(|| vocab(format!("bron {bron_id}")))?;
        if !bron.owners.iter().any(|o| o == owner) {
            return Err(vocab(format!("owner {owner} of bron {bron_id}")));
        }
        let field = bron
            .field_index(field)
            .ok_or_else(|| vocab(format!("field {field} of bron {bron_id}")))?;
        let act = match act.as_str() {
            "read" => Act::Read,
            "write" => Act::Write,
            other => return Err(vocab(format!("act {other}"))),
        };
        let consent = Consent::parse(consent).ok_or_else(|| vocab(format!("consent {consent}")))?;
        Ok(Self {
            purpose,
            bron,
            owner,
            field,
            act,
            consent,
            rule,
        })
    }

    fn key(&self, org: &str, role: &str, overleg: &str) -> GrantKey {
        GrantKey {
            org: org.to_owned(),
            role: role.to_owned(),
            overleg: overleg.to_owned(),
            purpose: self.purpose.to_owned(),
            bron: self.bron.id.clone(),
            owner: self.owner.to_owned(),
            act: self.act,
        }
    }
}

impl Grant {
    /// A grant of nothing, for a catalogue of `len` fields.
    fn empty(len: usize) -> Self {
        Grant {
            unconditional: BitSet::new(len),
            needs_consent: BitSet::new(len),
            per_resource: Vec::new(),
            fields: vec![None; len],
        }
    }

    /// Adds that `rule` allows catalogue field `idx` with `consent`; the
    /// least restrictive consent of all rules for a field is the one kept.
    fn allow(&mut self, idx: usize, consent: Consent, rule: &str) {
        let Some(slot) = self.fields.get_mut(idx) else {
            return;
        };
        match slot {
            Some(fg) => {
                fg.consent = fg.consent.min(consent);
                if !fg.rules.iter().any(|r| &**r == rule) {
                    fg.rules.push(Arc::from(rule));
                }
            }
            None => {
                *slot = Some(FieldGrant {
                    consent,
                    rules: vec![Arc::from(rule)],
                });
            }
        }
    }

    /// Derives `unconditional`, `needs_consent` and `per_resource` from
    /// `fields`, for `bron`'s resources.
    pub(crate) fn index(&mut self, bron: &Bron) {
        let len = bron.catalogue.len();
        self.unconditional = BitSet::new(len);
        self.needs_consent = BitSet::new(len);
        for (idx, slot) in self.fields.iter().enumerate() {
            match slot {
                Some(fg) if fg.consent == Consent::None => self.unconditional.insert(idx),
                Some(_) => self.needs_consent.insert(idx),
                None => {}
            }
        }
        self.per_resource = bron
            .resources
            .iter()
            .map(|r| {
                let served = BitSet::from_indices(len, r.fields.iter().copied());
                let mut a = self.unconditional.clone();
                a.intersect_with(&served);
                let mut c = self.needs_consent.clone();
                c.intersect_with(&served);
                (a, c)
            })
            .collect();
    }
}

/// casbin's `enforce()` for one field of a table entry: the request in the
/// order of the model's `request_definition`.
pub fn enforce(
    e: &Enforcer,
    overleg: &str,
    key: &GrantKey,
    field: &str,
    consent: Consent,
) -> Result<bool, CompileError> {
    e.enforce((
        key.org.as_str(),
        key.role.as_str(),
        key.overleg.as_str(),
        key.purpose.as_str(),
        key.bron.as_str(),
        key.owner.as_str(),
        key.act.as_str(),
        field,
        consent.as_str(),
    ))
    .map_err(|err| CompileError::Casbin {
        overleg: overleg.to_owned(),
        message: err.to_string(),
    })
}

/// Checks every field of one table entry with casbin's `enforce()`.
fn verify(
    e: &Enforcer,
    overleg: &str,
    key: &GrantKey,
    grant: &Grant,
    bron: &Bron,
) -> Result<(), CompileError> {
    for (idx, slot) in grant.fields.iter().enumerate() {
        let (Some(fg), Some(field)) = (slot, bron.catalogue.get(idx)) else {
            continue;
        };
        let field = field.path.as_str();
        if !enforce(e, overleg, key, field, fg.consent)? {
            return Err(CompileError::Disagreement {
                key: key.to_string(),
                field: field.to_owned(),
            });
        }
    }
    Ok(())
}

/// The full decision table.
#[derive(Debug, Default)]
pub struct DecisionTable {
    map: HashMap<GrantKey, Arc<Grant>>,
    pub p_rows: usize,
}

impl DecisionTable {
    pub fn get(&self, key: &GrantKey) -> Option<&Arc<Grant>> {
        self.map.get(key)
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = (&GrantKey, &Arc<Grant>)> {
        self.map.iter()
    }
    /// Replaces (or adds) one entry behind the compiler's back: for tests
    /// that show a tool reads this very table.
    #[cfg(test)]
    pub(crate) fn replace(&mut self, key: GrantKey, grant: Arc<Grant>) {
        self.map.insert(key, grant);
    }
}

/// Compiles a whole set, reusing unchanged overleggen from `previous`.
/// Returns the table and the per-overleg compile cache for the next reload.
#[allow(
    clippy::implicit_hasher,
    reason = "the compile cache is only ever the one this function returns"
)]
pub async fn compile_set(
    set: &PolicySet,
    previous: &HashMap<String, Arc<CompiledOverleg>>,
) -> Result<(DecisionTable, HashMap<String, Arc<CompiledOverleg>>), CompileError> {
    let mut cache = HashMap::new();
    let mut table = DecisionTable::default();
    for (id, overleg) in &set.overleggen {
        let compiled = match previous.get(id) {
            Some(c)
                if c.content_hash == overleg.content_hash && c.shared_hash == set.shared_hash =>
            {
                Arc::clone(c)
            }
            _ => Arc::new(compile_overleg(set, overleg).await?),
        };
        table.p_rows += compiled.p_rows;
        for (k, g) in &compiled.grants {
            table.map.insert(k.clone(), Arc::clone(g));
        }
        cache.insert(id.clone(), compiled);
    }
    Ok((table, cache))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::fixture::Fixture;

    fn key(org: &str, role: &str, purpose: &str, act: Act) -> GrantKey {
        GrantKey {
            org: org.into(),
            role: role.into(),
            overleg: "team".into(),
            purpose: purpose.into(),
            bron: "las".into(),
            owner: "school".into(),
            act,
        }
    }

    /// (consent, rules) per field of one key, `None` where nothing allows it.
    fn entry(
        table: &DecisionTable,
        set: &PolicySet,
        k: &GrantKey,
        field: &str,
    ) -> Option<(Consent, Vec<String>)> {
        let idx = set.bronnen["las"].field_index(field).unwrap();
        let fg = table.get(k)?.fields[idx].as_ref()?;
        Some((
            fg.consent,
            fg.rules
                .iter()
                .map(std::string::ToString::to_string)
                .collect(),
        ))
    }

    #[tokio::test]
    async fn the_table_holds_per_field_consent_and_rules() {
        use Act::{Read, Write};
        use Consent::{None as Free, Parents, ParentsAndYouth};
        // t-08 also gives the name, with consent: the least restrictive wins
        // and both rules are named.
        let set = Fixture::new()
            .append(
                "overleggen/team.toml",
                "\n[[rules]]\nid = \"t-08\"\npurpose = \"hulp\"\nfrom = \"school\"\nto = \"jeugd\"\nbron = \"las\"\nfields = [\"leerling.naam\", \"zorg.diagnose\"]\nconsent = \"parents\"\njustification = \"Met toestemming.\"\n",
            )
            .set();
        let (table, _) = compile_set(&set, &HashMap::new()).await.unwrap();
        let rules = |r: &[&str]| {
            r.iter()
                .map(std::string::ToString::to_string)
                .collect::<Vec<_>>()
        };
        let cases = [
            (
                key("wij", "jeugd", "hulp", Read),
                "leerling.naam",
                Some((Free, rules(&["t-01", "t-08"]))),
            ),
            (
                key("wij", "jeugd", "hulp", Read),
                "verzuim.toelichting",
                Some((Parents, rules(&["t-02"]))),
            ),
            (
                key("wij", "jeugd", "hulp", Read),
                "zorg.diagnose",
                Some((Parents, rules(&["t-08"]))),
            ),
            (key("wij", "jeugd", "hulp", Read), "leerling.bsn", None),
            (
                key("wij", "jeugd", "hulp", Write),
                "notities.tekst",
                Some((Free, rules(&["t-05"]))),
            ),
            (key("wij", "jeugd", "hulp", Write), "leerling.naam", None),
            (
                key("ggd", "jgz", "hulp", Read),
                "zorg.diagnose",
                Some((ParentsAndYouth, rules(&["t-03"]))),
            ),
            (
                key("gemeente", "leerplicht", "handhaving", Read),
                "leerling.bsn",
                Some((Free, rules(&["t-04"]))),
            ),
            (
                key("gemeente", "leerplicht", "handhaving", Read),
                "verzuim.toelichting",
                Some((Free, rules(&["t-04"]))),
            ),
            (
                key("gemeente", "rmc", "handhaving", Read),
                "leerling.bsn",
                None,
            ),
            (key("gemeente", "rmc", "hulp", Read), "leerling.naam", None),
            (
                key("school", "school", "hulp", Read),
                "notities.tekst",
                None,
            ),
        ];
        for (k, field, expected) in cases {
            assert_eq!(entry(&table, &set, &k, field), expected, "{k} {field}");
        }
        // Five keys; one casbin row per (rule, field): 2+1+1+4+1+1+2.
        assert_eq!(table.len(), 5);
        assert_eq!(table.p_rows, 12);
    }

    #[tokio::test]
    async fn per_resource_sets_split_free_and_consent_fields() {
        let set = Fixture::new().set();
        let (table, _) = compile_set(&set, &HashMap::new()).await.unwrap();
        let bron = &set.bronnen["las"];
        let g = table.get(&key("wij", "jeugd", "hulp", Act::Read)).unwrap();
        let names = |b: &BitSet| -> Vec<&str> {
            b.iter().map(|i| bron.catalogue[i].path.as_str()).collect()
        };
        let per: Vec<(&str, Vec<&str>, Vec<&str>)> = bron
            .resources
            .iter()
            .zip(&g.per_resource)
            .map(|(r, (a, c))| (r.id.as_str(), names(a), names(c)))
            .collect();
        assert_eq!(
            per,
            [
                (
                    "dossier",
                    vec!["leerling.naam", "verzuim.uren"],
                    vec!["verzuim.toelichting"]
                ),
                (
                    "verzuim",
                    vec!["leerling.naam", "verzuim.uren"],
                    vec!["verzuim.toelichting"]
                ),
                ("zorg", vec![], vec![]),
                ("notities", vec![], vec![]),
            ]
        );
        assert_eq!(names(&g.unconditional), ["leerling.naam", "verzuim.uren"]);
        assert_eq!(names(&g.needs_consent), ["verzuim.toelichting"]);
    }

    #[tokio::test]
    async fn every_member_of_a_role_gets_the_entry() {
        let set = Fixture::new()
            .edit(
                "overleggen/team.toml",
                "organisations = [\"wij\"]",
                "organisations = [\"wij\", \"buiten\"]",
            )
            .set();
        let (table, _) = compile_set(&set, &HashMap::new()).await.unwrap();
        for org in ["wij", "buiten"] {
            let k = key(org, "jeugd", "hulp", Act::Read);
            assert_eq!(entry(&table, &set, &k, "verzuim.uren").unwrap().1, ["t-01"]);
        }
        assert_eq!(table.len(), 7);
    }

    #[test]
    fn a_rule_reads_when_the_owner_gives_and_writes_when_it_receives() {
        let set = Fixture::new().set();
        let team = &set.overleggen["team"];
        let direction: Vec<(&str, Act, &str)> = team
            .rules
            .iter()
            .map(|r| {
                let (act, caller) = rule_direction(team, r, "school").unwrap();
                (r.id.as_str(), act, caller)
            })
            .collect();
        assert_eq!(direction[0], ("t-01", Act::Read, "jeugd"));
        assert_eq!(direction[4], ("t-05", Act::Write, "jeugd"));
        let rows = p_rows(&set, team);
        assert_eq!(
            rows.keys().collect::<Vec<_>>(),
            ["jeugd", "jgz", "leerplicht", "rmc"]
        );
        assert!(
            rows["jeugd"].contains(
                &[
                    "jeugd",
                    "team",
                    "hulp",
                    "las",
                    "school",
                    "write",
                    "notities.tekst",
                    "none",
                    "t-05"
                ]
                .map(String::from)
                .to_vec()
            )
        );
        assert_eq!(
            g_rows(team, "rmc"),
            [["gemeente", "rmc", "team"].map(String::from).to_vec()]
        );
        assert!(g_rows(team, "nope").is_empty());
    }

    #[tokio::test]
    async fn casbin_enforces_exactly_the_rows() {
        let set = Fixture::new().set();
        let team = &set.overleggen["team"];
        let rows = p_rows(&set, team).remove("jeugd").unwrap();
        let e = enforcer("team", rows, g_rows(team, "jeugd")).await.unwrap();
        let ask = |org, field, consent| {
            e.enforce((
                org, "jeugd", "team", "hulp", "las", "school", "read", field, consent,
            ))
            .unwrap()
        };
        assert!(ask("wij", "verzuim.uren", "none"));
        assert!(ask("wij", "verzuim.toelichting", "parents"));
        // The consent is part of the row; another organisation is no member.
        assert!(!ask("wij", "verzuim.toelichting", "none"));
        assert!(!ask("gemeente", "verzuim.uren", "none"));
        assert!(!ask("wij", "leerling.bsn", "none"));
    }

    #[tokio::test]
    async fn rows_of_the_wrong_arity_are_refused() {
        let short = vec![vec!["jeugd".to_owned(); P_ARITY - 1]];
        let err = enforcer("team", short, Vec::new()).await.err().unwrap();
        assert!(
            matches!(
                err,
                CompileError::Arity {
                    got: 8,
                    expected: 9,
                    ..
                }
            ),
            "{err}"
        );
        let long = vec![vec!["x".to_owned(); G_ARITY + 1]];
        let err = enforcer("team", Vec::new(), long).await.err().unwrap();
        assert!(
            matches!(
                err,
                CompileError::Arity {
                    got: 4,
                    expected: 3,
                    ..
                }
            ),
            "{err}"
        );
        let bad = [vec!["wij".to_owned(), "jeugd".to_owned()]];
        let err = members_of(&Fixture::new().set().overleggen["team"], "jeugd", &bad)
            .err()
            .unwrap();
        assert!(matches!(err, CompileError::Arity { got: 2, .. }), "{err}");
    }

    #[test]
    fn a_row_outside_the_vocabulary_is_refused() {
        let set = Fixture::new().set();
        let team = &set.overleggen["team"];
        let row = |i: usize, v: &str| {
            let mut r = [
                "jeugd",
                "team",
                "hulp",
                "las",
                "school",
                "read",
                "verzuim.uren",
                "none",
                "t-01",
            ]
            .map(String::from);
            r[i] = v.to_owned();
            r
        };
        assert!(PolicyRow::read(&set, team, "jeugd", &row(0, "jeugd")).is_ok());
        for (i, v, what) in [
            (0, "jgz", "jgz"),
            (1, "ander", "ander"),
            (2, "x", "\"x\""),
            (3, "x", "bron x"),
            (4, "wij", "owner wij of bron las"),
            (5, "delete", "act delete"),
            (6, "verzuim.x", "field verzuim.x"),
            (7, "ouders", "consent ouders"),
        ] {
            let err = PolicyRow::read(&set, team, "jeugd", &row(i, v))
                .err()
                .unwrap();
            let CompileError::Vocabulary { what: got, .. } = &err else {
                panic!("{err}")
            };
            assert!(got.contains(what), "{i}: {got}");
        }
    }

    #[tokio::test]
    async fn an_unchanged_overleg_is_reused_and_a_changed_one_recompiled() {
        let base = Fixture::new().append(
            "overleggen/ander.toml",
            &crate::policy::fixture::TEAM.replace("id = \"team\"", "id = \"ander\""),
        );
        let set = base.set();
        let (_, cache) = compile_set(&set, &HashMap::new()).await.unwrap();
        let changed = base
            .edit(
                "overleggen/ander.toml",
                "retention_days = 365",
                "retention_days = 30",
            )
            .set();
        let (table, again) = compile_set(&changed, &cache).await.unwrap();
        assert!(Arc::ptr_eq(&cache["team"], &again["team"]));
        assert!(!Arc::ptr_eq(&cache["ander"], &again["ander"]));
        assert_eq!(table.len(), 10);
    }
}
