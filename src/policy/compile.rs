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
use super::model::{Act, Consent, Overleg, PolicySet};

/// The casbin model. Request and policy tuples are fixed-arity; see
/// [`P_ARITY`] and [`R_ARITY`]. Comparisons are ordered most selective first,
/// the role-manager lookup last, because rhai evaluates `&&` lazily.
pub const MODEL: &str = r#"
[request_definition]
r = org, role, overleg, purpose, bron, act, field, consent

[policy_definition]
p = role, overleg, purpose, bron, act, field, consent, rule

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.field == p.field && r.purpose == p.purpose && r.bron == p.bron && r.act == p.act && r.consent == p.consent && r.role == p.role && r.overleg == p.overleg && g(r.org, p.role, r.overleg)
"#;

/// Columns of a `p` row.
pub const P_ARITY: usize = 8;
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
    pub act: Act,
}

impl std::fmt::Display for GrantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "(org {}, role {}, overleg {}, purpose {}, bron {}, {})",
            self.org, self.role, self.overleg, self.purpose, self.bron, self.act
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

/// Which caller role and act a rule produces: read when the bron's owner
/// holds `from` (the caller is `to`), write when it holds only `to`.
pub fn rule_direction<'a>(
    overleg: &'a Overleg,
    rule: &'a super::model::Rule,
    owner: &str,
) -> (Act, &'a str) {
    let holds = |role: &str| {
        overleg
            .role(role)
            .is_some_and(|r| r.organisations.iter().any(|o| o == owner))
    };
    if holds(&rule.from) {
        (Act::Read, &rule.to)
    } else {
        (Act::Write, &rule.from)
    }
}

/// The casbin `p` rows of one overleg, grouped by caller role.
pub fn p_rows(set: &PolicySet, overleg: &Overleg) -> BTreeMap<String, Vec<Vec<String>>> {
    let mut out: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for rule in &overleg.rules {
        let Some(bron) = set.bronnen.get(&rule.bron) else {
            continue;
        };
        let (act, caller) = rule_direction(overleg, rule, &bron.owner);
        for &f in &rule.fields {
            let Some(field) = bron.catalogue.get(f) else {
                continue;
            };
            out.entry(caller.to_owned()).or_default().push(vec![
                caller.to_owned(),
                overleg.id.clone(),
                rule.purpose.clone(),
                bron.id.clone(),
                act.as_str().to_owned(),
                field.path.as_str().to_owned(),
                rule.consent.as_str().to_owned(),
                rule.id.clone(),
            ]);
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
        let g = g_rows(overleg, &role);
        let e = enforcer(&overleg.id, p, g).await?;
        // Derive from what casbin holds, not from what we meant to give it.
        let rows = e.get_policy();
        let members = e.get_grouping_policy();
        p_total += rows.len();
        let vocab = |what: String| CompileError::Vocabulary {
            overleg: overleg.id.clone(),
            what,
        };
        let mut keys_here: Vec<GrantKey> = Vec::new();
        for row in &rows {
            let [
                r_role,
                r_overleg,
                purpose,
                bron_id,
                act,
                field,
                consent,
                rule,
            ] = row.as_slice()
            else {
                return Err(CompileError::Arity {
                    overleg: overleg.id.clone(),
                    got: row.len(),
                    expected: P_ARITY,
                    row: row.clone(),
                });
            };
            if r_overleg != &overleg.id || r_role != &role || overleg.purpose(purpose).is_none() {
                return Err(vocab(format!("{row:?}")));
            }
            let bron = set
                .bronnen
                .get(bron_id)
                .ok_or_else(|| vocab(format!("bron {bron_id}")))?;
            let idx = bron
                .field_index(field)
                .ok_or_else(|| vocab(format!("field {field} of bron {bron_id}")))?;
            let act = match act.as_str() {
                "read" => Act::Read,
                "write" => Act::Write,
                other => return Err(vocab(format!("act {other}"))),
            };
            let consent =
                Consent::parse(consent).ok_or_else(|| vocab(format!("consent {consent}")))?;
            for m in &members {
                let [org, m_role, m_overleg] = m.as_slice() else {
                    return Err(CompileError::Arity {
                        overleg: overleg.id.clone(),
                        got: m.len(),
                        expected: G_ARITY,
                        row: m.clone(),
                    });
                };
                if m_role != &role || m_overleg != &overleg.id {
                    continue;
                }
                let key = GrantKey {
                    org: org.clone(),
                    role: role.clone(),
                    overleg: overleg.id.clone(),
                    purpose: purpose.clone(),
                    bron: bron_id.clone(),
                    act,
                };
                let grant = grants.entry(key.clone()).or_insert_with(|| {
                    keys_here.push(key);
                    Grant {
                        unconditional: BitSet::new(bron.catalogue.len()),
                        needs_consent: BitSet::new(bron.catalogue.len()),
                        per_resource: Vec::new(),
                        fields: vec![None; bron.catalogue.len()],
                    }
                });
                let slot = &mut grant.fields[idx];
                match slot {
                    Some(fg) => {
                        fg.consent = fg.consent.min(consent);
                        if !fg.rules.iter().any(|r| &**r == rule.as_str()) {
                            fg.rules.push(Arc::from(rule.as_str()));
                        }
                    }
                    None => {
                        *slot = Some(FieldGrant {
                            consent,
                            rules: vec![Arc::from(rule.as_str())],
                        })
                    }
                }
            }
        }
        // Verify every entry of this enforcer's share against enforce().
        for key in &keys_here {
            let Some(grant) = grants.get_mut(key) else {
                continue;
            };
            let Some(bron) = set.bronnen.get(&key.bron) else {
                continue;
            };
            for (idx, slot) in grant.fields.iter().enumerate() {
                let Some(fg) = slot else { continue };
                let field = bron.catalogue[idx].path.as_str();
                let ok = e
                    .enforce((
                        key.org.as_str(),
                        key.role.as_str(),
                        key.overleg.as_str(),
                        key.purpose.as_str(),
                        key.bron.as_str(),
                        key.act.as_str(),
                        field,
                        fg.consent.as_str(),
                    ))
                    .map_err(|err| CompileError::Casbin {
                        overleg: overleg.id.clone(),
                        message: err.to_string(),
                    })?;
                if !ok {
                    return Err(CompileError::Disagreement {
                        key: key.to_string(),
                        field: field.to_owned(),
                    });
                }
            }
            for (idx, slot) in grant.fields.iter().enumerate() {
                match slot {
                    Some(fg) if fg.consent == Consent::None => grant.unconditional.insert(idx),
                    Some(_) => grant.needs_consent.insert(idx),
                    None => {}
                }
            }
            grant.per_resource = bron
                .resources
                .iter()
                .map(|r| {
                    let served =
                        BitSet::from_indices(bron.catalogue.len(), r.fields.iter().copied());
                    let mut a = grant.unconditional.clone();
                    a.intersect_with(&served);
                    let mut c = grant.needs_consent.clone();
                    c.intersect_with(&served);
                    (a, c)
                })
                .collect();
        }
    }
    Ok(CompiledOverleg {
        content_hash: overleg.content_hash.clone(),
        shared_hash: set.shared_hash.clone(),
        grants: grants.into_iter().map(|(k, g)| (k, Arc::new(g))).collect(),
        p_rows: p_total,
    })
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
}

/// Compiles a whole set, reusing unchanged overleggen from `previous`.
/// Returns the table and the per-overleg compile cache for the next reload.
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
