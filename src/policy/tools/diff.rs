//! Access delta between two policy sets, in covenant terms.
//!
//! Before a new policy set is published the FG (privacy officer) approves what
//! changes for whom. Comparing policy *files* says little ("a glob changed");
//! this module compiles both sets and compares the decision tables themselves,
//! so the delta is exactly what the gateway will let through differently:
//! which organisation, in which role, for which purpose, gains or loses which
//! field of which bron. Fields are matched by catalogue *path*, since catalogue
//! indices may differ between the two sets. Structural changes that do not
//! show up as a field (purposes, retention, grondslag, membership, the partner
//! register, software suppliers and the mandates organisations gave them) are
//! reported alongside.
//!
//! Everything is sorted, so the same two sets always give the same delta and
//! the same text.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::render::{category_marker, consent_label, escape_markdown, short_version};
use crate::policy::compile::{CompileError, GrantKey};
use crate::policy::decision::Snapshot;
use crate::policy::mandate::{Coverage, Direction, Mandates};
use crate::policy::model::{
    Act, Category, Consent, Grondslag, Organisation, Overleg, PolicySet, Role,
};

/// The complete delta between two policy sets. Build it with [`diff`].
#[derive(Debug, Clone)]
pub struct Delta {
    pub old_version: String,
    pub new_version: String,
    /// Changes to the partner register (certificate mapping decides who holds
    /// the access below), sorted by organisation id.
    pub partners: Vec<PartnerChange>,
    /// Software suppliers added, removed or given another OIN, sorted by id.
    pub suppliers: Vec<SupplierChange>,
    /// Mandates gained, lost or valid on other days, sorted by supplier,
    /// organisation, direction and coverage.
    pub mandates: Vec<MandateChange>,
    /// Overleggen with at least one change, sorted by id.
    pub overleggen: Vec<OverlegDelta>,
}

/// A software supplier (processor) added to or removed from `partners.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupplierChange {
    Added {
        id: String,
        name: String,
        processor_agreement: Option<String>,
    },
    Removed {
        id: String,
        name: String,
    },
    /// A different certificate now acts as this supplier.
    OinChanged {
        id: String,
        name: String,
        old: String,
        new: String,
    },
}

/// A mandate (supplier → organisation, direction, coverage) that one set
/// has and the other lacks, or that both have for other days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MandateChange {
    pub supplier: String,
    pub supplier_name: String,
    pub organisation: String,
    pub organisation_name: String,
    pub direction: Direction,
    /// The covered overleggen, sorted; `None` for all (`["*"]`).
    pub overleggen: Option<Vec<String>>,
    /// Its validity in the old set (`vanaf … [tot en met …]`, one per
    /// listed mandate); empty when the mandate is gained.
    pub old: Vec<String>,
    /// Its validity in the new set; empty when the mandate is lost.
    pub new: Vec<String>,
}

/// A change in `partners.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartnerChange {
    Added {
        id: String,
        name: String,
    },
    Removed {
        id: String,
        name: String,
    },
    Renamed {
        id: String,
        old: String,
        new: String,
    },
    /// A different certificate now maps to this organisation.
    OinChanged {
        id: String,
        name: String,
        old: Option<String>,
        new: Option<String>,
    },
    /// The set of pinned certificate fingerprints changed.
    PinsChanged {
        id: String,
        name: String,
        old: usize,
        new: usize,
    },
}

/// Everything that changed in one casusoverleg.
#[derive(Debug, Clone)]
pub struct OverlegDelta {
    pub id: String,
    /// Name in the new set, or in the old one if the overleg was removed.
    pub name: String,
    /// In a fixed order: overleg-level changes, purposes by id, roles by id.
    pub structural: Vec<Structural>,
    /// Sorted by organisation name, organisation id, role, purpose, bron, act.
    pub access: Vec<AccessDelta>,
}

/// A change to an overleg that is not (only) a field flowing differently.
#[derive(Debug, Clone)]
pub enum Structural {
    OverlegAdded {
        retention_days: u32,
    },
    OverlegRemoved,
    NameChanged {
        old: String,
        new: String,
    },
    DescriptionChanged {
        old: String,
        new: String,
    },
    RetentionChanged {
        old: u32,
        new: u32,
    },
    PurposeAdded {
        id: String,
        text: String,
    },
    PurposeRemoved {
        id: String,
        text: String,
    },
    PurposeTextChanged {
        id: String,
        old: String,
        new: String,
    },
    RoleAdded {
        id: String,
        name: String,
        grondslag: Grondslag,
        special_categories: Vec<Category>,
        may_register_cases: bool,
    },
    RoleRemoved {
        id: String,
        name: String,
    },
    RoleNameChanged {
        role: String,
        old: String,
        new: String,
    },
    GrondslagChanged {
        role: String,
        old: Grondslag,
        new: Grondslag,
    },
    SpecialCategoriesChanged {
        role: String,
        old: Vec<Category>,
        new: Vec<Category>,
    },
    /// `may_register_cases` changed: whether this role may register and end
    /// pupils' cases (aanmeldingen) and record or withdraw consent. That
    /// decides whose data can flow at all, so the FG sees it like a field.
    CaseRegistrationChanged {
        role: String,
        may: bool,
    },
    /// `may_record_objections` or `may_record_restrictions` changed: who may
    /// record (and decide or lift) what stops data from flowing.
    RightsRecordingChanged {
        role: String,
        /// `bezwaar` or `beperking`.
        what: &'static str,
        may: bool,
    },
    OrganisationJoined {
        role: String,
        org: String,
        org_name: String,
    },
    OrganisationLeft {
        role: String,
        org: String,
        org_name: String,
    },
}

/// How access changed for one decision-table key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessDelta {
    pub org: String,
    pub org_name: String,
    pub role: String,
    pub purpose: String,
    pub bron: String,
    pub bron_name: String,
    pub act: Act,
    /// Allowed in the new set, not in the old one; sorted by path.
    pub gained: Vec<FieldChange>,
    /// Allowed in the old set, not in the new one; sorted by path.
    pub lost: Vec<FieldChange>,
    /// Allowed in both, with a different consent requirement; sorted by path.
    pub consent_changed: Vec<ConsentChange>,
}

/// One field gained or lost. Label and category come from the set in which
/// the field is allowed (the new set for gains, the old one for losses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    pub path: String,
    pub label: String,
    pub category: Category,
    pub consent: Consent,
}

/// One field whose consent requirement changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentChange {
    pub path: String,
    pub label: String,
    pub category: Category,
    pub old: Consent,
    pub new: Consent,
}

/// Compiles both sets (each exactly as the gateway would, verified against
/// casbin) and compares them. Fails only if either set does not compile.
pub async fn diff(old: &PolicySet, new: &PolicySet) -> Result<Delta, CompileError> {
    let old_snap = Snapshot::build(old.clone(), None).await?;
    let new_snap = Snapshot::build(new.clone(), None).await?;
    let access = access_deltas(old, new, &access_map(&old_snap), &access_map(&new_snap));
    Ok(Delta {
        old_version: old.version.clone(),
        new_version: new.version.clone(),
        partners: partner_changes(&old.organisations, &new.organisations),
        suppliers: supplier_changes(&old.mandates, &new.mandates),
        mandates: mandate_changes(old, new),
        overleggen: overleg_deltas(old, new, access),
    })
}

/// Table entries by key, each as field path -> how it is allowed.
type AccessMap = BTreeMap<GrantKey, BTreeMap<String, Allowed>>;

/// The access changes of every key, grouped by overleg.
fn access_deltas(
    old: &PolicySet,
    new: &PolicySet,
    old_access: &AccessMap,
    new_access: &AccessMap,
) -> BTreeMap<String, Vec<AccessDelta>> {
    let mut by_overleg: BTreeMap<String, Vec<AccessDelta>> = BTreeMap::new();
    let keys: BTreeSet<&GrantKey> = old_access.keys().chain(new_access.keys()).collect();
    let empty = BTreeMap::new();
    for key in keys {
        let before = old_access.get(key).unwrap_or(&empty);
        let after = new_access.get(key).unwrap_or(&empty);
        if let Some(delta) = key_delta(old, new, key, before, after) {
            by_overleg
                .entry(key.overleg.clone())
                .or_default()
                .push(delta);
        }
    }
    by_overleg
}

/// How access changed for one key; `None` when it did not.
fn key_delta(
    old: &PolicySet,
    new: &PolicySet,
    key: &GrantKey,
    before: &BTreeMap<String, Allowed>,
    after: &BTreeMap<String, Allowed>,
) -> Option<AccessDelta> {
    let only_in =
        |a: &BTreeMap<String, Allowed>, b: &BTreeMap<String, Allowed>| -> Vec<FieldChange> {
            a.iter()
                .filter(|(p, _)| !b.contains_key(*p))
                .map(|(p, f)| f.change(p))
                .collect()
        };
    let gained = only_in(after, before);
    let lost = only_in(before, after);
    let consent_changed: Vec<ConsentChange> = after
        .iter()
        .filter_map(|(p, f)| {
            let was = before.get(p)?;
            (was.consent != f.consent).then(|| ConsentChange {
                path: p.clone(),
                label: f.label.clone(),
                category: f.category,
                old: was.consent,
                new: f.consent,
            })
        })
        .collect();
    if gained.is_empty() && lost.is_empty() && consent_changed.is_empty() {
        return None;
    }
    // Names from the new set where the key still exists there, so a
    // rename shows once under the current name.
    let org_name = org_name(new, &key.org)
        .or_else(|| org_name(old, &key.org))
        .unwrap_or_else(|| key.org.clone());
    let bron = new
        .bronnen
        .get(&key.bron)
        .or_else(|| old.bronnen.get(&key.bron));
    let bron_name = match bron {
        // A bron hosted for several owners: the change is per owner.
        Some(b) if b.hosted_by.is_some() => {
            let owner = self::org_name(new, &key.owner)
                .or_else(|| self::org_name(old, &key.owner))
                .unwrap_or_else(|| key.owner.clone());
            format!("{} (gegevens van {owner})", b.name)
        }
        Some(b) => b.name.clone(),
        None => key.bron.clone(),
    };
    Some(AccessDelta {
        org: key.org.clone(),
        org_name,
        role: key.role.clone(),
        purpose: key.purpose.clone(),
        bron: key.bron.clone(),
        bron_name,
        act: key.act,
        gained,
        lost,
        consent_changed,
    })
}

/// Every overleg with a change, in id order, its access sorted by
/// organisation name, organisation, role, purpose, bron and act.
fn overleg_deltas(
    old: &PolicySet,
    new: &PolicySet,
    mut access_by_overleg: BTreeMap<String, Vec<AccessDelta>>,
) -> Vec<OverlegDelta> {
    let ids: BTreeSet<&String> = old.overleggen.keys().chain(new.overleggen.keys()).collect();
    let mut overleggen = Vec::new();
    for id in ids {
        let o = old.overleggen.get(id);
        let n = new.overleggen.get(id);
        let structural = structural(old, new, o, n);
        let mut access = access_by_overleg.remove(id).unwrap_or_default();
        access.sort_by(|a, b| {
            (&a.org_name, &a.org, &a.role, &a.purpose, &a.bron, a.act).cmp(&(
                &b.org_name,
                &b.org,
                &b.role,
                &b.purpose,
                &b.bron,
                b.act,
            ))
        });
        if structural.is_empty() && access.is_empty() {
            continue;
        }
        let name = n.or(o).map_or_else(|| id.clone(), |x| x.name.clone());
        overleggen.push(OverlegDelta {
            id: id.clone(),
            name,
            structural,
            access,
        });
    }
    overleggen
}

/// A field as allowed by one table entry.
struct Allowed {
    label: String,
    category: Category,
    consent: Consent,
}

impl Allowed {
    fn change(&self, path: &str) -> FieldChange {
        FieldChange {
            path: path.to_owned(),
            label: self.label.clone(),
            category: self.category,
            consent: self.consent,
        }
    }
}

/// The decision table keyed by field path instead of catalogue index, in
/// sorted maps (the table itself is a `HashMap`).
fn access_map(snap: &Snapshot) -> AccessMap {
    let mut out = BTreeMap::new();
    for (key, grant) in snap.table.iter() {
        let Some(bron) = snap.set.bronnen.get(&key.bron) else {
            continue;
        };
        let fields: BTreeMap<String, Allowed> = grant
            .fields
            .iter()
            .enumerate()
            .filter_map(|(idx, slot)| {
                let fg = slot.as_ref()?;
                let field = bron.catalogue.get(idx)?;
                Some((
                    field.path.as_str().to_owned(),
                    Allowed {
                        label: field.label.clone(),
                        category: field.category,
                        consent: fg.consent,
                    },
                ))
            })
            .collect();
        out.insert(key.clone(), fields);
    }
    out
}

fn org_name(set: &PolicySet, id: &str) -> Option<String> {
    set.organisations.get(id).map(|o| o.name.clone())
}

fn same_grondslag(a: &Grondslag, b: &Grondslag) -> bool {
    a.law == b.law && a.article == b.article && a.basis == b.basis
}

fn sorted_categories(role: &Role) -> Vec<Category> {
    let mut v = role.special_categories.clone();
    v.sort_unstable();
    v.dedup();
    v
}

/// Structural changes of one overleg; `None` on a side means it does not
/// exist there.
fn structural(
    old_set: &PolicySet,
    new_set: &PolicySet,
    old: Option<&Overleg>,
    new: Option<&Overleg>,
) -> Vec<Structural> {
    let mut out = Vec::new();
    match (old, new) {
        (None, None) => return out,
        (Some(_), None) => {
            // Its purposes and roles go with it; the losses are listed as
            // access changes, so the details would only repeat them.
            out.push(Structural::OverlegRemoved);
            return out;
        }
        (None, Some(n)) => out.push(Structural::OverlegAdded {
            retention_days: n.retention_days,
        }),
        (Some(o), Some(n)) => overleg_changes(o, n, &mut out),
    }
    // An added overleg is compared with an empty one, so the FG sees every
    // purpose, role, grondslag and member it introduces.
    purpose_changes(old, new, &mut out);
    let (old_roles, new_roles) = (roles_by_id(old), roles_by_id(new));
    let role_ids: BTreeSet<&str> = old_roles.keys().chain(new_roles.keys()).copied().collect();
    for id in role_ids {
        let o = old_roles.get(id).copied();
        let n = new_roles.get(id).copied();
        role_changes(id, o, n, &mut out);
        membership_changes(old_set, new_set, id, o, n, &mut out);
    }
    out
}

fn roles_by_id(o: Option<&Overleg>) -> BTreeMap<&str, &Role> {
    o.map(|o| o.roles.iter().map(|r| (r.id.as_str(), r)).collect())
        .unwrap_or_default()
}

/// Name, description and retention of an overleg in both sets.
fn overleg_changes(o: &Overleg, n: &Overleg, out: &mut Vec<Structural>) {
    if o.name != n.name {
        out.push(Structural::NameChanged {
            old: o.name.clone(),
            new: n.name.clone(),
        });
    }
    if o.description != n.description {
        out.push(Structural::DescriptionChanged {
            old: o.description.clone(),
            new: n.description.clone(),
        });
    }
    if o.retention_days != n.retention_days {
        out.push(Structural::RetentionChanged {
            old: o.retention_days,
            new: n.retention_days,
        });
    }
}

/// Purposes added, removed or reworded, by id.
fn purpose_changes(old: Option<&Overleg>, new: Option<&Overleg>, out: &mut Vec<Structural>) {
    let purposes = |x: Option<&Overleg>| -> BTreeMap<String, String> {
        x.map(|o| {
            o.purposes
                .iter()
                .map(|p| (p.id.clone(), p.text.clone()))
                .collect()
        })
        .unwrap_or_default()
    };
    let (old_purposes, new_purposes) = (purposes(old), purposes(new));
    let ids: BTreeSet<&String> = old_purposes.keys().chain(new_purposes.keys()).collect();
    for id in ids {
        let id = id.clone();
        match (old_purposes.get(&id), new_purposes.get(&id)) {
            (None, Some(text)) => out.push(Structural::PurposeAdded {
                id,
                text: text.clone(),
            }),
            (Some(text), None) => out.push(Structural::PurposeRemoved {
                id,
                text: text.clone(),
            }),
            (Some(a), Some(b)) if a != b => out.push(Structural::PurposeTextChanged {
                id,
                old: a.clone(),
                new: b.clone(),
            }),
            _ => {}
        }
    }
}

/// A role added, removed, or changed in name, grondslag, special
/// categories or whether it may register cases.
fn role_changes(id: &str, o: Option<&Role>, n: Option<&Role>, out: &mut Vec<Structural>) {
    let role = id.to_owned();
    match (o, n) {
        (None, Some(n)) => out.push(Structural::RoleAdded {
            id: role,
            name: n.name.clone(),
            grondslag: n.grondslag.clone(),
            special_categories: sorted_categories(n),
            may_register_cases: n.may_register_cases,
        }),
        (Some(o), None) => out.push(Structural::RoleRemoved {
            id: role,
            name: o.name.clone(),
        }),
        (Some(o), Some(n)) => {
            if o.name != n.name {
                out.push(Structural::RoleNameChanged {
                    role: role.clone(),
                    old: o.name.clone(),
                    new: n.name.clone(),
                });
            }
            if !same_grondslag(&o.grondslag, &n.grondslag) {
                out.push(Structural::GrondslagChanged {
                    role: role.clone(),
                    old: o.grondslag.clone(),
                    new: n.grondslag.clone(),
                });
            }
            let (oc, nc) = (sorted_categories(o), sorted_categories(n));
            if oc != nc {
                out.push(Structural::SpecialCategoriesChanged {
                    role: role.clone(),
                    old: oc,
                    new: nc,
                });
            }
            if o.may_register_cases != n.may_register_cases {
                out.push(Structural::CaseRegistrationChanged {
                    role: role.clone(),
                    may: n.may_register_cases,
                });
            }
            for (what, old, new) in [
                ("bezwaar", o.may_record_objections, n.may_record_objections),
                (
                    "beperking",
                    o.may_record_restrictions,
                    n.may_record_restrictions,
                ),
            ] {
                if old != new {
                    out.push(Structural::RightsRecordingChanged {
                        role: role.clone(),
                        what,
                        may: new,
                    });
                }
            }
        }
        (None, None) => {}
    }
}

/// Organisations that joined or left role `id`, sorted by organisation name
/// (then id) as everywhere.
fn membership_changes(
    old_set: &PolicySet,
    new_set: &PolicySet,
    id: &str,
    o: Option<&Role>,
    n: Option<&Role>,
    out: &mut Vec<Structural>,
) {
    let members = |r: Option<&Role>| -> BTreeSet<String> {
        r.map(|r| r.organisations.iter().cloned().collect())
            .unwrap_or_default()
    };
    let (om, nm) = (members(o), members(n));
    let mut changes: Vec<(String, String, bool)> = nm
        .difference(&om)
        .map(|org| {
            let name = org_name(new_set, org).unwrap_or_else(|| org.clone());
            (name, org.clone(), true)
        })
        .chain(om.difference(&nm).map(|org| {
            let name = org_name(old_set, org).unwrap_or_else(|| org.clone());
            (name, org.clone(), false)
        }))
        .collect();
    changes.sort();
    for (org_name, org, joined) in changes {
        let role = id.to_owned();
        out.push(if joined {
            Structural::OrganisationJoined {
                role,
                org,
                org_name,
            }
        } else {
            Structural::OrganisationLeft {
                role,
                org,
                org_name,
            }
        });
    }
}

fn partner_changes(
    old: &BTreeMap<String, Organisation>,
    new: &BTreeMap<String, Organisation>,
) -> Vec<PartnerChange> {
    let ids: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut out = Vec::new();
    for id in ids {
        match (old.get(id), new.get(id)) {
            (None, Some(n)) => out.push(PartnerChange::Added {
                id: id.clone(),
                name: n.name.clone(),
            }),
            (Some(o), None) => out.push(PartnerChange::Removed {
                id: id.clone(),
                name: o.name.clone(),
            }),
            (Some(o), Some(n)) => {
                if o.name != n.name {
                    out.push(PartnerChange::Renamed {
                        id: id.clone(),
                        old: o.name.clone(),
                        new: n.name.clone(),
                    });
                }
                if o.oin != n.oin {
                    out.push(PartnerChange::OinChanged {
                        id: id.clone(),
                        name: n.name.clone(),
                        old: o.oin.clone(),
                        new: n.oin.clone(),
                    });
                }
                let pins = |x: &Organisation| {
                    x.fingerprints
                        .iter()
                        .copied()
                        .collect::<BTreeSet<[u8; 32]>>()
                };
                if pins(o) != pins(n) {
                    out.push(PartnerChange::PinsChanged {
                        id: id.clone(),
                        name: n.name.clone(),
                        old: o.fingerprints.len(),
                        new: n.fingerprints.len(),
                    });
                }
            }
            (None, None) => {}
        }
    }
    out
}

/// Suppliers added, removed, or mapped to another certificate, by id.
fn supplier_changes(old: &Mandates, new: &Mandates) -> Vec<SupplierChange> {
    let ids: BTreeSet<&String> = old.suppliers.keys().chain(new.suppliers.keys()).collect();
    let mut out = Vec::new();
    for id in ids {
        match (old.suppliers.get(id), new.suppliers.get(id)) {
            (None, Some(n)) => out.push(SupplierChange::Added {
                id: id.clone(),
                name: n.name.clone(),
                processor_agreement: n.processor_agreement.clone(),
            }),
            (Some(o), None) => out.push(SupplierChange::Removed {
                id: id.clone(),
                name: o.name.clone(),
            }),
            (Some(o), Some(n)) if o.oin != n.oin => out.push(SupplierChange::OinChanged {
                id: id.clone(),
                name: n.name.clone(),
                old: o.oin.clone(),
                new: n.oin.clone(),
            }),
            _ => {}
        }
    }
    out
}

/// A mandate's identity in a delta: supplier, organisation, direction and
/// the covered overleggen (`None` for all).
type MandateKey = (String, String, Direction, Option<Vec<String>>);

/// Every mandate of `set` by key, each with its validities.
fn mandate_map(set: &PolicySet) -> BTreeMap<MandateKey, BTreeSet<String>> {
    let mut out: BTreeMap<MandateKey, BTreeSet<String>> = BTreeMap::new();
    for m in &set.mandates.all {
        let coverage = match &m.overleggen {
            Coverage::All => None,
            Coverage::Only(ids) => Some(ids.iter().cloned().collect()),
        };
        let validity = match &m.valid_until {
            Some(until) => format!("vanaf {} tot en met {until}", m.valid_from),
            None => format!("vanaf {}", m.valid_from),
        };
        out.entry((
            m.supplier.clone(),
            m.organisation.clone(),
            m.direction,
            coverage,
        ))
        .or_default()
        .insert(validity);
    }
    out
}

/// Mandates gained, lost, or valid on other days; names from the new set
/// where it still has them.
fn mandate_changes(old: &PolicySet, new: &PolicySet) -> Vec<MandateChange> {
    let (before, after) = (mandate_map(old), mandate_map(new));
    let keys: BTreeSet<&MandateKey> = before.keys().chain(after.keys()).collect();
    let empty = BTreeSet::new();
    let supplier_name = |id: &str| {
        new.mandates
            .suppliers
            .get(id)
            .or_else(|| old.mandates.suppliers.get(id))
            .map_or_else(|| id.to_owned(), |s| s.name.clone())
    };
    let mut out = Vec::new();
    for key in keys {
        let o = before.get(key).unwrap_or(&empty);
        let n = after.get(key).unwrap_or(&empty);
        if o == n {
            continue;
        }
        let (supplier, organisation, direction, overleggen) = key.clone();
        out.push(MandateChange {
            supplier_name: supplier_name(&supplier),
            organisation_name: org_name(new, &organisation)
                .or_else(|| org_name(old, &organisation))
                .unwrap_or_else(|| organisation.clone()),
            supplier,
            organisation,
            direction,
            overleggen,
            old: o.iter().cloned().collect(),
            new: n.iter().cloned().collect(),
        });
    }
    out
}

// --- Rendering -----------------------------------------------------------------

/// How a field is introduced in a line: path, label, category marker and any
/// consent it needs.
fn field_text(path: &str, label: &str, category: Category, consent: Option<Consent>) -> String {
    let mut s = format!("{path} ({})", one_line(label));
    if let Some(m) = category_marker(category) {
        let _ = write!(s, " ({m})");
    }
    if let Some(c) = consent.filter(|c| *c != Consent::None) {
        let _ = write!(s, ", alleen met toestemming van {}", consent_label(c));
    }
    s
}

/// Folds line breaks and runs of whitespace into single spaces, so that every
/// item of the plain-text report stays on one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn categories_text(c: &[Category]) -> String {
    if c.is_empty() {
        "geen".to_owned()
    } else {
        c.iter()
            .map(|c| category_marker(*c).unwrap_or("gewoon"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn grondslag_text(g: &Grondslag) -> String {
    format!("{}: {}; {}", g.law, g.article, g.basis_text())
}

/// Verb phrases for one access group: (gained, lost, consent changed,
/// preposition before the bron).
fn phrases(act: Act) -> (&'static str, &'static str, &'static str, &'static str) {
    match act {
        Act::Read => (
            "krijgt er bij",
            "verliest",
            "krijgt met gewijzigde toestemming",
            "uit",
        ),
        Act::Write => (
            "mag er bij aanleveren",
            "mag niet meer aanleveren",
            "levert aan met gewijzigde toestemming",
            "aan",
        ),
    }
}

impl PartnerChange {
    /// One Dutch sentence; `f` formats free text (identity for plain text,
    /// escaping for Markdown).
    fn describe(&self, f: &dyn Fn(&str) -> String) -> String {
        let opt = |s: &Option<String>| s.clone().unwrap_or_else(|| "geen".to_owned());
        match self {
            PartnerChange::Added { id, name } => {
                format!("nieuwe organisatie {} ({id})", f(name))
            }
            PartnerChange::Removed { id, name } => {
                format!("organisatie {} ({id}) verwijderd", f(name))
            }
            PartnerChange::Renamed { id, old, new } => {
                format!("organisatie {id} heet nu {} (was {})", f(new), f(old))
            }
            PartnerChange::OinChanged { id, name, old, new } => format!(
                "OIN van {} ({id}) gewijzigd: {} → {} (een ander certificaat krijgt deze toegang)",
                f(name),
                opt(old),
                opt(new)
            ),
            PartnerChange::PinsChanged { id, name, old, new } => format!(
                "certificaatpins van {} ({id}) gewijzigd ({old} → {new} pins)",
                f(name)
            ),
        }
    }
}

impl SupplierChange {
    /// One Dutch sentence; `f` formats free text.
    fn describe(&self, f: &dyn Fn(&str) -> String) -> String {
        match self {
            SupplierChange::Added {
                id,
                name,
                processor_agreement,
            } => format!(
                "nieuwe leverancier (verwerker) {} ({id}), verwerkersovereenkomst {}",
                f(name),
                processor_agreement
                    .as_deref()
                    .map_or_else(|| "ontbreekt".to_owned(), f)
            ),
            SupplierChange::Removed { id, name } => {
                format!("leverancier {} ({id}) verwijderd", f(name))
            }
            SupplierChange::OinChanged { id, name, old, new } => format!(
                "OIN van leverancier {} ({id}) gewijzigd: {old} → {new} (een ander certificaat handelt als deze leverancier)",
                f(name)
            ),
        }
    }
}

impl MandateChange {
    /// One Dutch sentence; `f` formats free text.
    fn describe(&self, f: &dyn Fn(&str) -> String) -> String {
        let coverage = match &self.overleggen {
            None => "alle casusoverleggen".to_owned(),
            Some(ids) => format!("overleg {}", ids.join(", ")),
        };
        let what = format!(
            "{} ({}) namens {} ({}), richting {}, {coverage}",
            f(&self.supplier_name),
            self.supplier,
            f(&self.organisation_name),
            self.organisation,
            self.direction.as_str()
        );
        let (old, new) = (self.old.join(" en "), self.new.join(" en "));
        if self.old.is_empty() {
            format!("machtiging erbij: {what}, geldig {new}")
        } else if self.new.is_empty() {
            format!("machtiging vervalt: {what} (was geldig {old})")
        } else {
            format!("geldigheid van machtiging gewijzigd: {what}: {old} → {new}")
        }
    }
}

impl Structural {
    /// One Dutch sentence; `f` formats free text.
    // Over 80 lines: one arm per variant of `Structural`, a flat table of
    // Dutch sentences read at once; splitting it would only scatter them.
    fn describe(&self, f: &dyn Fn(&str) -> String) -> String {
        match self {
            Structural::OverlegAdded { retention_days } => {
                format!("nieuw casusoverleg, bewaartermijn {retention_days} dagen")
            }
            Structural::OverlegRemoved => "casusoverleg verwijderd".to_owned(),
            Structural::NameChanged { old, new } => {
                format!("naam gewijzigd: {} → {}", f(old), f(new))
            }
            Structural::DescriptionChanged { old, new } => {
                format!("omschrijving gewijzigd: \"{}\" → \"{}\"", f(old), f(new))
            }
            Structural::RetentionChanged { old, new } => {
                format!("bewaartermijn gewijzigd: {old} → {new} dagen")
            }
            Structural::PurposeAdded { id, text } => {
                format!("doel {id} toegevoegd: \"{}\"", f(text))
            }
            Structural::PurposeRemoved { id, text } => {
                format!("doel {id} verwijderd (was: \"{}\")", f(text))
            }
            Structural::PurposeTextChanged { id, old, new } => format!(
                "omschrijving van doel {id} gewijzigd: \"{}\" → \"{}\"",
                f(old),
                f(new)
            ),
            Structural::RoleAdded {
                id,
                name,
                grondslag,
                special_categories,
                may_register_cases,
            } => format!(
                "rol {id} ({}) toegevoegd; grondslag {}; bijzondere gegevens toegestaan: {}{}",
                f(name),
                f(&grondslag_text(grondslag)),
                categories_text(special_categories),
                if *may_register_cases {
                    "; mag leerlingen aanmelden en toestemming vastleggen"
                } else {
                    ""
                }
            ),
            Structural::RoleRemoved { id, name } => {
                format!("rol {id} ({}) verwijderd", f(name))
            }
            Structural::RoleNameChanged { role, old, new } => {
                format!("rol {role} heet nu {} (was {})", f(new), f(old))
            }
            Structural::GrondslagChanged { role, old, new } => format!(
                "grondslag van rol {role} gewijzigd: {} → {}",
                f(&grondslag_text(old)),
                f(&grondslag_text(new))
            ),
            Structural::SpecialCategoriesChanged { role, old, new } => format!(
                "bijzondere gegevens toegestaan voor rol {role} gewijzigd: {} → {}",
                categories_text(old),
                categories_text(new)
            ),
            Structural::CaseRegistrationChanged { role, may: true } => format!(
                "rol {role} mag nu leerlingen aanmelden en afmelden en toestemming vastleggen en intrekken"
            ),
            Structural::CaseRegistrationChanged { role, may: false } => format!(
                "rol {role} mag niet meer leerlingen aanmelden of afmelden, of toestemming vastleggen of intrekken"
            ),
            Structural::RightsRecordingChanged { role, what, may } => format!(
                "rol {role} mag {}{what} vastleggen",
                if *may { "nu " } else { "niet meer " }
            ),
            Structural::OrganisationJoined {
                role,
                org,
                org_name,
            } => format!("{} ({org}) neemt deel als {role}", f(org_name)),
            Structural::OrganisationLeft {
                role,
                org,
                org_name,
            } => format!("{} ({org}) neemt niet meer deel als {role}", f(org_name)),
        }
    }
}

impl Delta {
    /// True when the two sets grant exactly the same access and have the same
    /// structure (purposes, roles, members, grondslagen, retention, partners).
    pub fn is_empty(&self) -> bool {
        self.partners.is_empty()
            && self.suppliers.is_empty()
            && self.mandates.is_empty()
            && self.overleggen.is_empty()
    }

    /// The supplier and mandate changes, one sentence each.
    fn registry_lines(&self, f: &dyn Fn(&str) -> String) -> Vec<String> {
        let suppliers = self.suppliers.iter().map(|c| c.describe(f));
        suppliers
            .chain(self.mandates.iter().map(|c| c.describe(f)))
            .collect()
    }

    /// Plain-text report, one sentence header per (organisation, role,
    /// purpose, bron, kind of change) with the fields beneath it. Stable.
    pub fn text(&self) -> String {
        let plain = one_line;
        let mut out = String::new();
        // `write!` into a String cannot fail; the results are ignored on purpose.
        let _ = writeln!(
            out,
            "Toegangswijzigingen van policyversie {} naar {}",
            short_version(&self.old_version),
            short_version(&self.new_version)
        );
        if self.is_empty() {
            let _ = writeln!(out, "\nGeen wijzigingen.");
            return out;
        }
        if !self.partners.is_empty() {
            let _ = writeln!(out, "\nPartnerregister");
            for c in &self.partners {
                let _ = writeln!(out, "  - {}", c.describe(&plain));
            }
        }
        let registry = self.registry_lines(&plain);
        if !registry.is_empty() {
            let _ = writeln!(out, "\nLeveranciers en machtigingen");
            for line in registry {
                let _ = writeln!(out, "  - {line}");
            }
        }
        for o in &self.overleggen {
            let _ = writeln!(out, "\nCasusoverleg {} ({})", one_line(&o.name), o.id);
            if !o.structural.is_empty() {
                let _ = writeln!(out, "  Structureel:");
                for s in &o.structural {
                    let _ = writeln!(out, "    - {}", s.describe(&plain));
                }
            }
            if !o.access.is_empty() {
                let _ = writeln!(out, "  Toegang:");
            }
            for a in &o.access {
                let (gain, lose, consent, prep) = phrases(a.act);
                let head = |verb: &str| {
                    format!(
                        "    {} als {} {verb}, doel {}, {prep} {}:",
                        one_line(&a.org_name),
                        a.role,
                        a.purpose,
                        one_line(&a.bron_name)
                    )
                };
                for (verb, sign, fields) in [(gain, '+', &a.gained), (lose, '-', &a.lost)] {
                    if fields.is_empty() {
                        continue;
                    }
                    let _ = writeln!(out, "{}", head(verb));
                    for x in fields {
                        let t = field_text(&x.path, &x.label, x.category, Some(x.consent));
                        let _ = writeln!(out, "      {sign} {t}");
                    }
                }
                if !a.consent_changed.is_empty() {
                    let _ = writeln!(out, "{}", head(consent));
                    for x in &a.consent_changed {
                        let t = field_text(&x.path, &x.label, x.category, None);
                        let _ = writeln!(
                            out,
                            "      ~ {t}: toestemming {} → {}",
                            consent_label(x.old),
                            consent_label(x.new)
                        );
                    }
                }
            }
        }
        out
    }

    /// Markdown report for the FG, grouped per overleg → organisation and role
    /// → purpose → gains, losses and consent changes. Stable.
    pub fn markdown(&self) -> String {
        let md = |s: &str| escape_markdown(s);
        let mut out = String::new();
        // `write!` into a String cannot fail; the results are ignored on purpose.
        let _ = writeln!(out, "# Toegangswijzigingen\n");
        let _ = writeln!(
            out,
            "Van policyversie `{}` naar `{}`.\n",
            short_version(&self.old_version),
            short_version(&self.new_version)
        );
        if self.is_empty() {
            let _ = writeln!(out, "Geen wijzigingen.");
            return out;
        }
        if !self.partners.is_empty() {
            let _ = writeln!(out, "## Partnerregister\n");
            for c in &self.partners {
                let _ = writeln!(out, "- {}", c.describe(&md));
            }
            out.push('\n');
        }
        let registry = self.registry_lines(&md);
        if !registry.is_empty() {
            let _ = writeln!(out, "## Leveranciers en machtigingen\n");
            for line in registry {
                let _ = writeln!(out, "- {line}");
            }
            out.push('\n');
        }
        for o in &self.overleggen {
            let _ = writeln!(out, "## {} (`{}`)\n", md(&o.name), o.id);
            if !o.structural.is_empty() {
                let _ = writeln!(out, "### Structurele wijzigingen\n");
                for s in &o.structural {
                    let _ = writeln!(out, "- {}", s.describe(&md));
                }
                out.push('\n');
            }
            markdown_access(&mut out, &o.access);
        }
        out
    }
}

/// The access changes of one overleg in Markdown: a heading per organisation
/// and role, a subheading per purpose, then gains, losses and consent changes.
fn markdown_access(out: &mut String, access: &[AccessDelta]) {
    let md = |s: &str| escape_markdown(s);
    let mut current_holder: Option<(&str, &str)> = None;
    let mut current_purpose: Option<&str> = None;
    for a in access {
        let holder = (a.org.as_str(), a.role.as_str());
        if current_holder != Some(holder) {
            let _ = writeln!(out, "### {} als `{}`\n", md(&a.org_name), a.role);
            current_holder = Some(holder);
            current_purpose = None;
        }
        if current_purpose != Some(a.purpose.as_str()) {
            let _ = writeln!(out, "#### Doel `{}`\n", a.purpose);
            current_purpose = Some(a.purpose.as_str());
        }
        markdown_fields(out, a);
    }
}

/// One access group's gained, lost and consent-changed fields in Markdown.
fn markdown_fields(out: &mut String, a: &AccessDelta) {
    let md = |s: &str| escape_markdown(s);
    let (gain, lose, consent, prep) = phrases(a.act);
    let head = |verb: &str| {
        format!(
            "**{}**, {prep} {} (`{}`):\n",
            capitalise(verb),
            md(&a.bron_name),
            a.bron
        )
    };
    for (verb, fields) in [(gain, &a.gained), (lose, &a.lost)] {
        if fields.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{}", head(verb));
        for x in fields {
            let item = markdown_item(&x.path, &x.label, x.category, Some(x.consent));
            let _ = writeln!(out, "- {item}");
        }
        out.push('\n');
    }
    if !a.consent_changed.is_empty() {
        let _ = writeln!(out, "{}", head(consent));
        for x in &a.consent_changed {
            let _ = writeln!(
                out,
                "- {}: toestemming {} → {}",
                markdown_item(&x.path, &x.label, x.category, None),
                consent_label(x.old),
                consent_label(x.new)
            );
        }
        out.push('\n');
    }
}

/// One field in a Markdown list item: path, label, category marker and any
/// consent it needs.
fn markdown_item(path: &str, label: &str, category: Category, consent: Option<Consent>) -> String {
    let mut s = format!("`{path}` ({})", escape_markdown(label));
    if let Some(m) = category_marker(category) {
        let _ = write!(s, " **({m})**");
    }
    if let Some(c) = consent.filter(|c| *c != Consent::None) {
        let _ = write!(s, ", alleen met toestemming van {}", consent_label(c));
    }
    s
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

    /// Each access change as `org role purpose act: +gained -lost ~consent`.
    fn access(d: &Delta) -> Vec<String> {
        d.overleggen
            .iter()
            .flat_map(|o| &o.access)
            .map(|a| {
                let mut s = format!("{} {} {} {}:", a.org, a.role, a.purpose, a.act);
                for f in &a.gained {
                    s += &format!(" +{}", f.path);
                }
                for f in &a.lost {
                    s += &format!(" -{}", f.path);
                }
                for c in &a.consent_changed {
                    s += &format!(" ~{} {}>{}", c.path, c.old.as_str(), c.new.as_str());
                }
                s
            })
            .collect()
    }

    fn structural(d: &Delta) -> Vec<String> {
        let plain = |s: &str| s.to_owned();
        let partners = d.partners.iter().map(|c| c.describe(&plain));
        let overleggen = d.overleggen.iter().flat_map(|o| {
            o.structural
                .iter()
                .map(|s| format!("{}: {}", o.id, s.describe(&plain)))
        });
        partners.chain(overleggen).collect()
    }

    #[tokio::test]
    async fn each_kind_of_change_is_reported() {
        let base = Fixture::new();
        let old = base.set();
        let cases: Vec<(&str, Fixture, Vec<&str>, Vec<&str>)> = vec![
            ("nothing", base.clone(), vec![], vec![]),
            (
                "gained field",
                base.clone().edit(
                    TEAM,
                    "fields = [\"leerling.naam\"]",
                    "fields = [\"leerling.naam\", \"verzuim.uren\"]",
                ),
                vec![],
                vec!["gemeente rmc handhaving read: +verzuim.uren"],
            ),
            (
                "lost field",
                base.clone().edit(
                    TEAM,
                    "fields = [\"leerling.naam\", \"verzuim.uren\"]",
                    "fields = [\"leerling.naam\"]",
                ),
                vec![],
                vec!["wij jeugd hulp read: -verzuim.uren"],
            ),
            (
                "consent",
                base.clone()
                    .edit(TEAM, "consent = \"parents\"", "consent = \"youth\""),
                vec![],
                vec!["wij jeugd hulp read: ~verzuim.toelichting parents>youth"],
            ),
            (
                "grondslag",
                base.clone()
                    .edit(TEAM, "article = \"art. 2.1\"", "article = \"art. 2.3\""),
                vec![
                    "team: grondslag van rol jeugd gewijzigd: Jeugdwet: art. 2.1; AVG art. 6(1)(e) → Jeugdwet: art. 2.3; AVG art. 6(1)(e)",
                ],
                vec![],
            ),
            (
                "legal basis",
                base.clone().edit(
                    TEAM,
                    "basis = [\"6.1.c\"]",
                    "basis = [\"6.1.e\", \"6.1.c\"]",
                ),
                vec![
                    "team: grondslag van rol leerplicht gewijzigd: Leerplichtwet 1969: art. 16; AVG art. 6(1)(c) → Leerplichtwet 1969: art. 16; AVG art. 6(1)(c); art. 6(1)(e)",
                ],
                vec![],
            ),
            (
                "may register cases",
                base.clone().edit(
                    TEAM,
                    "may_register_cases = true",
                    "may_register_cases = false",
                ),
                vec![
                    "team: rol school mag niet meer leerlingen aanmelden of afmelden, of toestemming vastleggen of intrekken",
                ],
                vec![],
            ),
            (
                "may register cases, given",
                base.clone().edit(
                    TEAM,
                    "organisations = [\"wij\"]",
                    "organisations = [\"wij\"]\nmay_register_cases = true",
                ),
                vec![
                    "team: rol jeugd mag nu leerlingen aanmelden en afmelden en toestemming vastleggen en intrekken",
                ],
                vec![],
            ),
            (
                "may record objections and restrictions, given",
                base.clone().edit(
                    TEAM,
                    "organisations = [\"wij\"]",
                    "organisations = [\"wij\"]\nmay_record_objections = true\nmay_record_restrictions = true",
                ),
                vec![
                    "team: rol jeugd mag nu bezwaar vastleggen",
                    "team: rol jeugd mag nu beperking vastleggen",
                ],
                vec![],
            ),
            (
                "member joins",
                base.clone().edit(
                    TEAM,
                    "organisations = [\"wij\"]",
                    "organisations = [\"wij\", \"buiten\"]",
                ),
                vec!["team: Buiten (buiten) neemt deel als jeugd"],
                vec![
                    "buiten jeugd hulp read: +leerling.naam +verzuim.toelichting +verzuim.uren",
                    "buiten jeugd hulp write: +notities.tekst",
                ],
            ),
            (
                "purposes and retention",
                base.clone()
                    .edit(TEAM, "text = \"Hulp bieden\"", "text = \"Hulp geven\"")
                    .edit(TEAM, "retention_days = 365", "retention_days = 30")
                    .append(TEAM, "\n[[purposes]]\nid = \"nazorg\"\ntext = \"Nazorg\"\n"),
                vec![
                    "team: bewaartermijn gewijzigd: 365 → 30 dagen",
                    "team: omschrijving van doel hulp gewijzigd: \"Hulp bieden\" → \"Hulp geven\"",
                    "team: doel nazorg toegevoegd: \"Nazorg\"",
                ],
                vec![],
            ),
            (
                "partners",
                base.clone()
                    .edit("partners.toml", "name = \"Buiten\"", "name = \"Elders\"")
                    .edit(
                        "partners.toml",
                        "00000099000000000005",
                        "00000099000000000006",
                    ),
                vec![
                    "organisatie buiten heet nu Elders (was Buiten)",
                    "OIN van Elders (buiten) gewijzigd: 00000099000000000005 → 00000099000000000006 (een ander certificaat krijgt deze toegang)",
                ],
                vec![],
            ),
        ];
        for (name, fixture, expected_structural, expected_access) in cases {
            let new = fixture.set();
            let d = diff(&old, &new).await.unwrap();
            assert_eq!(structural(&d), expected_structural, "{name}");
            assert_eq!(access(&d), expected_access, "{name}");
            assert_eq!(d.is_empty(), name == "nothing", "{name}");
        }
    }

    /// A supplier with a client mandate of the school for `team`.
    const SUPPLIER: &str = "\n[[suppliers]]\nid = \"lev\"\nname = \"Leverancier\"\noin = \"00000099000000000901\"\nprocessor_agreement = \"VWO-1\"\n\n[[mandates]]\nsupplier = \"lev\"\norganisation = \"school\"\ndirection = \"client\"\noverleggen = [\"team\"]\nvalid_from = \"2026-01-01\"\nvalid_until = \"2026-06-30\"\n";

    /// Suppliers added and removed, and mandates gained, lost or valid on
    /// other days: each reported on its own, none as an access change (a
    /// mandate changes who may connect, not what flows).
    #[tokio::test]
    async fn supplier_and_mandate_changes_are_reported() {
        const P: &str = "partners.toml";
        let plain = Fixture::new();
        let base = Fixture::new().append(P, SUPPLIER);
        let what = "Leverancier (lev) namens School (school), richting client";
        let cases: Vec<(&str, &Fixture, Fixture, Vec<String>)> = vec![
            ("nothing", &base, base.clone(), vec![]),
            (
                "supplier added",
                &plain,
                base.clone(),
                vec![
                    "nieuwe leverancier (verwerker) Leverancier (lev), verwerkersovereenkomst VWO-1".into(),
                    format!("machtiging erbij: {what}, overleg team, geldig vanaf 2026-01-01 tot en met 2026-06-30"),
                ],
            ),
            (
                "supplier removed",
                &base,
                plain.clone(),
                vec![
                    "leverancier Leverancier (lev) verwijderd".into(),
                    format!("machtiging vervalt: {what}, overleg team (was geldig vanaf 2026-01-01 tot en met 2026-06-30)"),
                ],
            ),
            (
                "coverage",
                &base,
                base.clone().edit(P, "overleggen = [\"team\"]", "overleggen = [\"*\"]"),
                vec![
                    format!("machtiging erbij: {what}, alle casusoverleggen, geldig vanaf 2026-01-01 tot en met 2026-06-30"),
                    format!("machtiging vervalt: {what}, overleg team (was geldig vanaf 2026-01-01 tot en met 2026-06-30)"),
                ],
            ),
            (
                "validity",
                &base,
                base.clone().edit(P, "valid_until = \"2026-06-30\"\n", ""),
                vec![format!(
                    "geldigheid van machtiging gewijzigd: {what}, overleg team: vanaf 2026-01-01 tot en met 2026-06-30 → vanaf 2026-01-01"
                )],
            ),
            (
                "direction and OIN",
                &base,
                base.clone()
                    .edit(P, "direction = \"client\"", "direction = \"bron\"")
                    .edit(P, "00000099000000000901", "00000099000000000902"),
                vec![
                    "OIN van leverancier Leverancier (lev) gewijzigd: 00000099000000000901 → 00000099000000000902 (een ander certificaat handelt als deze leverancier)".into(),
                    format!("machtiging vervalt: {what}, overleg team (was geldig vanaf 2026-01-01 tot en met 2026-06-30)"),
                    "machtiging erbij: Leverancier (lev) namens School (school), richting bron, overleg team, geldig vanaf 2026-01-01 tot en met 2026-06-30".into(),
                ],
            ),
        ];
        for (name, old, new, expected) in cases {
            let d = diff(&old.set(), &new.set()).await.unwrap();
            let plain_text = |s: &str| s.to_owned();
            assert_eq!(d.registry_lines(&plain_text), expected, "{name}");
            assert!(access(&d).is_empty() && structural(&d).is_empty(), "{name}");
            assert_eq!(d.is_empty(), name == "nothing", "{name}");
            if let Some(first) = expected.first() {
                let text = d.text();
                assert!(
                    text.contains(&format!("\nLeveranciers en machtigingen\n  - {first}\n")),
                    "{name}: {text}"
                );
                let md = d.markdown();
                assert!(
                    md.contains("\n## Leveranciers en machtigingen\n\n- "),
                    "{name}: {md}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_removed_overleg_lists_its_losses_not_its_details() {
        let with = Fixture::new()
            .append(
                "overleggen/ander.toml",
                &crate::policy::fixture::TEAM.replace("id = \"team\"", "id = \"ander\""),
            )
            .set();
        let without = Fixture::new().set();
        let d = diff(&with, &without).await.unwrap();
        assert_eq!(structural(&d), ["ander: casusoverleg verwijderd"]);
        let lost = access(&d);
        assert_eq!(lost.len(), 5, "{lost:?}");
        assert!(
            lost.iter().all(|l| l.contains(": -") && !l.contains('+')),
            "{lost:?}"
        );
        // Added back: every purpose, role, grondslag and member is named,
        // and every field gained.
        let d = diff(&without, &with).await.unwrap();
        assert_eq!(
            structural(&d),
            [
                "ander: nieuw casusoverleg, bewaartermijn 365 dagen",
                "ander: doel handhaving toegevoegd: \"Leerplicht handhaven\"",
                "ander: doel hulp toegevoegd: \"Hulp bieden\"",
                "ander: rol jeugd (Jeugdhulp) toegevoegd; grondslag Jeugdwet: art. 2.1; AVG art. 6(1)(e); bijzondere gegevens toegestaan: geen",
                "ander: WIJ (wij) neemt deel als jeugd",
                "ander: rol jgz (Jeugdarts) toegevoegd; grondslag Wpg: art. 5; AVG art. 6(1)(e); art. 9(2)(h); bijzondere gegevens toegestaan: bijzonder persoonsgegeven, art. 9 AVG",
                "ander: GGD (ggd) neemt deel als jgz",
                "ander: rol leerplicht (Leerplicht) toegevoegd; grondslag Leerplichtwet 1969: art. 16; AVG art. 6(1)(c); bijzondere gegevens toegestaan: BSN",
                "ander: Gemeente (gemeente) neemt deel als leerplicht",
                "ander: rol rmc (RMC) toegevoegd; grondslag RMC-wet: art. 8; AVG art. 6(1)(e); bijzondere gegevens toegestaan: geen",
                "ander: Gemeente (gemeente) neemt deel als rmc",
                "ander: rol school (School) toegevoegd; grondslag WVO: art. 8; AVG art. 6(1)(e); bijzondere gegevens toegestaan: geen; mag leerlingen aanmelden en toestemming vastleggen",
                "ander: School (school) neemt deel als school",
            ]
        );
        let gained = access(&d);
        assert_eq!(gained.len(), 5, "{gained:?}");
        assert!(
            gained
                .iter()
                .all(|l| l.contains(": +") && !l.contains(" -")),
            "{gained:?}"
        );
    }

    #[tokio::test]
    async fn text_and_markdown_say_the_same() {
        let old = Fixture::new().set();
        let new = Fixture::new()
            .edit(TEAM, "consent = \"parents\"", "consent = \"none\"")
            .edit(
                TEAM,
                "fields = [\"leerling.naam\"]",
                "fields = [\"verzuim.uren\"]",
            )
            .set();
        let d = diff(&old, &new).await.unwrap();
        let text = d.text();
        let md = d.markdown();
        for line in [
            "Casusoverleg Team (team)",
            "    Gemeente als rmc krijgt er bij, doel handhaving, uit Leerlingadministratie:",
            "      + verzuim.uren (Uren verzuim)",
            "    Gemeente als rmc verliest, doel handhaving, uit Leerlingadministratie:",
            "      - leerling.naam (Naam)",
            "      ~ verzuim.toelichting (Toelichting): toestemming ouders → geen",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
        for line in [
            "## Team (`team`)",
            "### Gemeente als `rmc`",
            "#### Doel `handhaving`",
            "**Krijgt er bij**, uit Leerlingadministratie (`las`):",
            "- `verzuim.uren` (Uren verzuim)",
            "- `leerling.naam` (Naam)",
            "### WIJ als `jeugd`",
            "- `verzuim.toelichting` (Toelichting): toestemming ouders → geen",
        ] {
            assert!(md.lines().any(|l| l == line), "{line}\n{md}");
        }
    }
}
