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
//! register) are reported alongside.
//!
//! Everything is sorted, so the same two sets always give the same delta and
//! the same text.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::render::{category_marker, consent_label, escape_markdown, short_version};
use crate::policy::compile::{CompileError, GrantKey};
use crate::policy::decision::Snapshot;
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
    /// Overleggen with at least one change, sorted by id.
    pub overleggen: Vec<OverlegDelta>,
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
    let old_access = access_map(&old_snap);
    let new_access = access_map(&new_snap);

    let mut access_by_overleg: BTreeMap<String, Vec<AccessDelta>> = BTreeMap::new();
    let keys: BTreeSet<&GrantKey> = old_access.keys().chain(new_access.keys()).collect();
    let empty = BTreeMap::new();
    for key in keys {
        let before = old_access.get(key).unwrap_or(&empty);
        let after = new_access.get(key).unwrap_or(&empty);
        let gained: Vec<FieldChange> = after
            .iter()
            .filter(|(p, _)| !before.contains_key(*p))
            .map(|(p, f)| f.change(p))
            .collect();
        let lost: Vec<FieldChange> = before
            .iter()
            .filter(|(p, _)| !after.contains_key(*p))
            .map(|(p, f)| f.change(p))
            .collect();
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
            continue;
        }
        // Names from the new set where the key still exists there, so a
        // rename shows once under the current name.
        let names = |id: &str| org_name(new, id).or_else(|| org_name(old, id));
        let bron_name = new
            .bronnen
            .get(&key.bron)
            .or_else(|| old.bronnen.get(&key.bron))
            .map_or_else(|| key.bron.clone(), |b| b.name.clone());
        access_by_overleg
            .entry(key.overleg.clone())
            .or_default()
            .push(AccessDelta {
                org: key.org.clone(),
                org_name: names(&key.org).unwrap_or_else(|| key.org.clone()),
                role: key.role.clone(),
                purpose: key.purpose.clone(),
                bron: key.bron.clone(),
                bron_name,
                act: key.act,
                gained,
                lost,
                consent_changed,
            });
    }

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

    Ok(Delta {
        old_version: old.version.clone(),
        new_version: new.version.clone(),
        partners: partner_changes(&old.organisations, &new.organisations),
        overleggen,
    })
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
fn access_map(snap: &Snapshot) -> BTreeMap<GrantKey, BTreeMap<String, Allowed>> {
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
        (Some(o), Some(n)) => {
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
    }

    // An added overleg is compared with an empty one, so the FG sees every
    // purpose, role, grondslag and member it introduces.
    let old_purposes: BTreeMap<&str, &str> = old
        .map(|o| {
            o.purposes
                .iter()
                .map(|p| (p.id.as_str(), p.text.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let new_purposes: BTreeMap<&str, &str> = new
        .map(|o| {
            o.purposes
                .iter()
                .map(|p| (p.id.as_str(), p.text.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let purpose_ids: BTreeSet<&str> = old_purposes
        .keys()
        .chain(new_purposes.keys())
        .copied()
        .collect();
    for id in purpose_ids {
        match (old_purposes.get(id), new_purposes.get(id)) {
            (None, Some(text)) => out.push(Structural::PurposeAdded {
                id: id.to_owned(),
                text: (*text).to_owned(),
            }),
            (Some(text), None) => out.push(Structural::PurposeRemoved {
                id: id.to_owned(),
                text: (*text).to_owned(),
            }),
            (Some(a), Some(b)) if a != b => out.push(Structural::PurposeTextChanged {
                id: id.to_owned(),
                old: (*a).to_owned(),
                new: (*b).to_owned(),
            }),
            _ => {}
        }
    }

    let old_roles: BTreeMap<&str, &Role> = old
        .map(|o| o.roles.iter().map(|r| (r.id.as_str(), r)).collect())
        .unwrap_or_default();
    let new_roles: BTreeMap<&str, &Role> = new
        .map(|o| o.roles.iter().map(|r| (r.id.as_str(), r)).collect())
        .unwrap_or_default();
    let role_ids: BTreeSet<&str> = old_roles.keys().chain(new_roles.keys()).copied().collect();
    for id in role_ids {
        let o = old_roles.get(id).copied();
        let n = new_roles.get(id).copied();
        match (o, n) {
            (None, Some(n)) => out.push(Structural::RoleAdded {
                id: id.to_owned(),
                name: n.name.clone(),
                grondslag: n.grondslag.clone(),
                special_categories: sorted_categories(n),
                may_register_cases: n.may_register_cases,
            }),
            (Some(o), None) => out.push(Structural::RoleRemoved {
                id: id.to_owned(),
                name: o.name.clone(),
            }),
            (Some(o), Some(n)) => {
                if o.name != n.name {
                    out.push(Structural::RoleNameChanged {
                        role: id.to_owned(),
                        old: o.name.clone(),
                        new: n.name.clone(),
                    });
                }
                if !same_grondslag(&o.grondslag, &n.grondslag) {
                    out.push(Structural::GrondslagChanged {
                        role: id.to_owned(),
                        old: o.grondslag.clone(),
                        new: n.grondslag.clone(),
                    });
                }
                let (oc, nc) = (sorted_categories(o), sorted_categories(n));
                if oc != nc {
                    out.push(Structural::SpecialCategoriesChanged {
                        role: id.to_owned(),
                        old: oc,
                        new: nc,
                    });
                }
                if o.may_register_cases != n.may_register_cases {
                    out.push(Structural::CaseRegistrationChanged {
                        role: id.to_owned(),
                        may: n.may_register_cases,
                    });
                }
            }
            (None, None) => {}
        }
        // Membership, sorted by organisation name (then id) as everywhere.
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
    out
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
    format!("{}: {}; {}", g.law, g.article, g.basis)
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

impl Structural {
    /// One Dutch sentence; `f` formats free text.
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
        self.partners.is_empty() && self.overleggen.is_empty()
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
        for o in &self.overleggen {
            let _ = writeln!(out, "## {} (`{}`)\n", md(&o.name), o.id);
            if !o.structural.is_empty() {
                let _ = writeln!(out, "### Structurele wijzigingen\n");
                for s in &o.structural {
                    let _ = writeln!(out, "- {}", s.describe(&md));
                }
                out.push('\n');
            }
            let mut current_holder: Option<(&str, &str)> = None;
            let mut current_purpose: Option<&str> = None;
            for a in &o.access {
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
                let (gain, lose, consent, prep) = phrases(a.act);
                let head = |verb: &str| {
                    format!(
                        "**{}**, {prep} {} (`{}`):\n",
                        capitalise(verb),
                        md(&a.bron_name),
                        a.bron
                    )
                };
                let item = |path: &str, label: &str, category: Category, c: Option<Consent>| {
                    let mut s = format!("`{path}` ({})", md(label));
                    if let Some(m) = category_marker(category) {
                        let _ = write!(s, " **({m})**");
                    }
                    if let Some(c) = c.filter(|c| *c != Consent::None) {
                        let _ = write!(s, ", alleen met toestemming van {}", consent_label(c));
                    }
                    s
                };
                for (verb, fields) in [(gain, &a.gained), (lose, &a.lost)] {
                    if fields.is_empty() {
                        continue;
                    }
                    let _ = writeln!(out, "{}", head(verb));
                    for x in fields {
                        let _ = writeln!(
                            out,
                            "- {}",
                            item(&x.path, &x.label, x.category, Some(x.consent))
                        );
                    }
                    out.push('\n');
                }
                if !a.consent_changed.is_empty() {
                    let _ = writeln!(out, "{}", head(consent));
                    for x in &a.consent_changed {
                        let _ = writeln!(
                            out,
                            "- {}: toestemming {} → {}",
                            item(&x.path, &x.label, x.category, None),
                            consent_label(x.old),
                            consent_label(x.new)
                        );
                    }
                    out.push('\n');
                }
            }
        }
        out
    }
}
