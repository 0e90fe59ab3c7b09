//! Request-time decisions. A [`Snapshot`] is an immutable, verified view of
//! the policy set; [`Snapshot::decide`] returns either a [`Permit`] (the only
//! way to reach an upstream) or a [`Denial`] that explains itself.

use std::collections::HashMap;
use std::sync::Arc;

use crate::policy::bitset::BitSet;
use crate::policy::compile::{self, CompiledOverleg, DecisionTable, Grant, GrantKey};
use crate::policy::filter::FieldTrie;
use crate::policy::model::{Act, Bron, Consent, Grondslag, PolicySet};
use crate::registers::CaseStatus;

/// A request as the router parsed it (already checked for traversal tricks).
#[derive(Debug, Clone)]
pub struct RouteRequest<'a> {
    pub overleg: &'a str,
    pub bron: &'a str,
    /// Resource path segments after `/v1/{overleg}/{bron}`.
    pub segments: &'a [&'a str],
    pub act: Act,
    /// Value of `X-Doelbinding`.
    pub purpose: Option<&'a str>,
    /// Value of `X-Rol`.
    pub role: Option<&'a str>,
}

/// Why a request was refused. Every variant carries what the FG needs to
/// understand it; none carries pupil data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("casusoverleg `{0}` does not exist")]
    UnknownOverleg(String),
    #[error("organisation `{org}` holds no role in casusoverleg `{overleg}`")]
    NotAParticipant { org: String, overleg: String },
    #[error("organisation `{org}` holds several roles in `{overleg}` ({}); say which one in X-Rol", roles.join(", "))]
    RoleRequired {
        org: String,
        overleg: String,
        roles: Vec<String>,
    },
    #[error("organisation `{org}` does not hold role `{role}` in `{overleg}`")]
    RoleNotHeld {
        org: String,
        role: String,
        overleg: String,
    },
    #[error("no purpose given: send X-Doelbinding with one of {}", purposes.join(", "))]
    PurposeRequired { purposes: Vec<String> },
    #[error("purpose `{purpose}` is not a purpose of casusoverleg `{overleg}`")]
    UnknownPurpose { purpose: String, overleg: String },
    #[error("bron `{0}` does not exist")]
    UnknownBron(String),
    #[error("bron `{bron}` declares no such resource")]
    UndeclaredResource { bron: String },
    #[error(
        "resource `{resource}` of bron `{bron}` does not accept this method (it accepts {allow})"
    )]
    MethodNotAllowed {
        bron: String,
        resource: String,
        /// Value for the `Allow` header.
        allow: &'static str,
    },
    #[error("no rule of `{overleg}` lets role `{role}` {} bron `{bron}` for purpose `{purpose}`", if *act == Act::Read { "receive data from" } else { "send data to" })]
    NoRule {
        overleg: String,
        role: String,
        purpose: String,
        bron: String,
        act: Act,
    },
    #[error(
        "the pupil is not registered (aangemeld) in casusoverleg `{overleg}`, or the registration has ended"
    )]
    NotRegistered { overleg: String },
    #[error(
        "every field this request could receive requires consent ({consent}) for purpose `{purpose}`, and no such consent is active"
    )]
    ConsentRequired { consent: String, purpose: String },
    #[error("the rules allow no field that resource `{resource}` serves")]
    NoFieldOfResource { resource: String },
}

impl Denial {
    /// Stable machine-readable reason, used in audit records and problem types.
    pub fn code(&self) -> &'static str {
        match self {
            Denial::UnknownOverleg(_) => "unknown-overleg",
            Denial::NotAParticipant { .. } => "not-a-participant",
            Denial::RoleRequired { .. } => "role-required",
            Denial::RoleNotHeld { .. } => "role-not-held",
            Denial::PurposeRequired { .. } => "purpose-required",
            Denial::UnknownPurpose { .. } => "unknown-purpose",
            Denial::UnknownBron(_) => "unknown-bron",
            Denial::UndeclaredResource { .. } => "undeclared-resource",
            Denial::MethodNotAllowed { .. } => "method-not-allowed",
            Denial::NoRule { .. } => "no-rule",
            Denial::NotRegistered { .. } => "not-registered",
            Denial::ConsentRequired { .. } => "consent-required",
            Denial::NoFieldOfResource { .. } => "no-field-of-resource",
        }
    }
}

/// An empty field set, for the (unreachable) case of a resource index
/// without a precomputed entry: fails closed.
static NO_FIELDS: BitSet = BitSet::EMPTY;

/// A policy decision that still needs the registers: the pupil must be
/// registered in the overleg, and consent-requiring fields need an active
/// consent. Only [`Tentative::bind`] turns it into a [`Permit`].
#[derive(Debug)]
pub struct Tentative(Permit);

impl Tentative {
    pub fn overleg(&self) -> &str {
        &self.0.overleg
    }
    /// The betrokkene's identifier (personal data: never log).
    pub fn subject(&self) -> &str {
        &self.0.subject
    }

    /// Applies case binding and consent. Fields whose rule needs consent are
    /// added only when `status` holds an active consent of the right kind for
    /// this purpose; the others stay withheld.
    pub fn bind(self, status: &CaseStatus) -> Result<Permit, Denial> {
        let mut p = self.0;
        let Some(registration) = &status.registration else {
            return Err(Denial::NotRegistered {
                overleg: p.overleg.clone(),
            });
        };
        p.registration.clone_from(registration);
        let Some((unconditional, needs)) = p.grant.per_resource.get(p.resource) else {
            return Err(Denial::NoFieldOfResource {
                resource: p.resource_id().to_owned(),
            });
        };
        if !needs.is_empty() {
            let len = unconditional.len().max(needs.len());
            let mut consented = BitSet::new(len);
            let mut missing = BitSet::new(len);
            let mut strictest_missing = None;
            let mut used: Vec<String> = Vec::new();
            for i in needs.iter() {
                // A field without a grant entry cannot be in `needs`; if it
                // were, the strictest consent keeps it closed.
                let required = p.grant.fields[i]
                    .as_ref()
                    .map_or(Consent::ParentsAndYouth, |f| f.consent);
                match status.consent_for(&p.purpose, required) {
                    Some(ids) => {
                        consented.insert(i);
                        used.extend(ids.into_iter().map(str::to_owned));
                    }
                    None => {
                        missing.insert(i);
                        strictest_missing = strictest_missing.max(Some(required));
                    }
                }
            }
            used.sort();
            used.dedup();
            p.consents = used;
            if !consented.is_empty() {
                let mut effective = unconditional.clone();
                for i in consented.iter() {
                    effective.insert(i);
                }
                p.effective = Some(effective);
            }
            if p.allowed().is_empty() {
                return Err(Denial::ConsentRequired {
                    consent: strictest_missing
                        .unwrap_or(Consent::Parents)
                        .as_str()
                        .to_owned(),
                    purpose: p.purpose.clone(),
                });
            }
            p.consent_missing = Some(missing);
        }
        if p.allowed().is_empty() {
            return Err(Denial::NoFieldOfResource {
                resource: p.resource_id().to_owned(),
            });
        }
        Ok(p)
    }
}

/// Proof that a request was authorised, by the policy and the registers.
/// Only [`Tentative::bind`] makes one; the upstream client takes one by
/// reference, so nothing is forwarded without a decision.
#[derive(Debug, Clone)]
pub struct Permit {
    org: String,
    role: String,
    grondslag: Grondslag,
    overleg: String,
    purpose: String,
    act: Act,
    bron: Arc<Bron>,
    resource: usize,
    /// Request path below the bron's base URL, rebuilt from validated segments.
    upstream_path: String,
    subject: String,
    grant: Arc<Grant>,
    trie: Arc<FieldTrie>,
    policy_version: Arc<str>,
    /// Allowed fields including those unlocked by consent, when any were.
    effective: Option<BitSet>,
    /// Consent-requiring fields without an active consent.
    consent_missing: Option<BitSet>,
    /// The active registration the request relies on.
    registration: String,
    /// Consent ids the request relies on.
    consents: Vec<String>,
}

impl Permit {
    pub fn org(&self) -> &str {
        &self.org
    }
    pub fn role(&self) -> &str {
        &self.role
    }
    pub fn grondslag(&self) -> &Grondslag {
        &self.grondslag
    }
    pub fn overleg(&self) -> &str {
        &self.overleg
    }
    pub fn purpose(&self) -> &str {
        &self.purpose
    }
    pub fn act(&self) -> Act {
        self.act
    }
    pub fn bron(&self) -> &Bron {
        &self.bron
    }
    /// The resource's path template (safe to log; the raw path is not).
    pub fn resource_template(&self) -> &str {
        self.bron
            .resources
            .get(self.resource)
            .map_or("", |r| r.template.as_str())
    }
    pub fn resource_id(&self) -> &str {
        self.bron
            .resources
            .get(self.resource)
            .map_or("", |r| r.id.as_str())
    }
    pub fn upstream_path(&self) -> &str {
        &self.upstream_path
    }
    /// The betrokkene's identifier from the path. Personal data: pseudonymise
    /// before storing, never log.
    pub fn subject(&self) -> &str {
        &self.subject
    }
    /// Fields that may flow (including those an active consent unlocked).
    pub fn allowed(&self) -> &BitSet {
        if let Some(e) = &self.effective {
            return e;
        }
        self.grant
            .per_resource
            .get(self.resource)
            .map_or(&NO_FIELDS, |r| &r.0)
    }
    /// Fields a rule would allow with consent that is not active.
    pub fn consent_withheld(&self) -> &BitSet {
        if let Some(m) = &self.consent_missing {
            return m;
        }
        self.grant
            .per_resource
            .get(self.resource)
            .map_or(&NO_FIELDS, |r| &r.1)
    }
    /// The registration this request relies on.
    pub fn registration(&self) -> &str {
        &self.registration
    }
    /// The consents this request relies on (empty when it needs none).
    pub fn consents(&self) -> &[String] {
        &self.consents
    }
    pub fn trie(&self) -> &FieldTrie {
        &self.trie
    }
    pub fn policy_version(&self) -> &str {
        &self.policy_version
    }
    /// Rule ids that allow catalogue field `idx`.
    pub fn rules_for(&self, idx: usize) -> &[Arc<str>] {
        self.grant
            .fields
            .get(idx)
            .and_then(|f| f.as_ref())
            .map(|f| f.rules.as_slice())
            .unwrap_or(&[])
    }
    /// Distinct rule ids behind every allowed field, sorted.
    pub fn deciding_rules(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .allowed()
            .iter()
            .flat_map(|i| self.rules_for(i).iter().map(|r| r.to_string()))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// What a decision established before it failed or succeeded: recorded in the
/// audit trail either way.
#[derive(Debug, Clone, Default)]
pub struct DecisionContext {
    pub role: Option<String>,
    pub grondslag: Option<String>,
    pub purpose: Option<String>,
    pub resource_template: Option<String>,
    pub subject: Option<String>,
}

/// An immutable, verified policy snapshot.
#[derive(Debug)]
pub struct Snapshot {
    pub set: Arc<PolicySet>,
    pub table: DecisionTable,
    pub version: Arc<str>,
    tries: HashMap<String, Arc<FieldTrie>>,
    cache: HashMap<String, Arc<CompiledOverleg>>,
}

impl Snapshot {
    /// Compiles `set`, reusing unchanged overleggen of `previous`.
    pub async fn build(
        set: PolicySet,
        previous: Option<&Snapshot>,
    ) -> Result<Self, compile::CompileError> {
        let empty = HashMap::new();
        let prev_cache = previous.map(|p| &p.cache).unwrap_or(&empty);
        let (table, cache) = compile::compile_set(&set, prev_cache).await?;
        let tries = set
            .bronnen
            .iter()
            .map(|(id, b)| (id.clone(), Arc::new(FieldTrie::new(&b.catalogue))))
            .collect();
        Ok(Self {
            version: Arc::from(set.version.as_str()),
            set: Arc::new(set),
            table,
            tries,
            cache,
        })
    }

    /// Decides a request by `org` (already mapped from a verified certificate)
    /// as far as the policy goes; [`Tentative::bind`] adds the registers.
    /// `ctx` is filled with whatever was established, for the audit record.
    pub fn decide(
        &self,
        org: &str,
        req: &RouteRequest<'_>,
        ctx: &mut DecisionContext,
    ) -> Result<Tentative, Denial> {
        let overleg = self
            .set
            .overleggen
            .get(req.overleg)
            .ok_or_else(|| Denial::UnknownOverleg(req.overleg.to_owned()))?;
        let held: Vec<_> = overleg.roles_of(org).collect();
        let role = match (req.role, held.as_slice()) {
            (_, []) => {
                return Err(Denial::NotAParticipant {
                    org: org.to_owned(),
                    overleg: overleg.id.clone(),
                });
            }
            (Some(r), _) => {
                *held
                    .iter()
                    .find(|h| h.id == r)
                    .ok_or_else(|| Denial::RoleNotHeld {
                        org: org.to_owned(),
                        role: r.to_owned(),
                        overleg: overleg.id.clone(),
                    })?
            }
            (None, [only]) => *only,
            (None, many) => {
                return Err(Denial::RoleRequired {
                    org: org.to_owned(),
                    overleg: overleg.id.clone(),
                    roles: many.iter().map(|r| r.id.clone()).collect(),
                });
            }
        };
        ctx.role = Some(role.id.clone());
        ctx.grondslag = Some(role.grondslag.to_string());
        let purpose = match req.purpose {
            None => {
                return Err(Denial::PurposeRequired {
                    purposes: overleg.purposes.iter().map(|p| p.id.clone()).collect(),
                });
            }
            Some(p) => overleg.purpose(p).ok_or_else(|| Denial::UnknownPurpose {
                purpose: p.to_owned(),
                overleg: overleg.id.clone(),
            })?,
        };
        ctx.purpose = Some(purpose.id.clone());
        let bron = self
            .set
            .bronnen
            .get(req.bron)
            .ok_or_else(|| Denial::UnknownBron(req.bron.to_owned()))?;
        let (resource_idx, resource, vars) = bron
            .resources
            .iter()
            .enumerate()
            .find_map(|(i, r)| r.template.matches(req.segments).map(|v| (i, r, v)))
            .ok_or_else(|| Denial::UndeclaredResource {
                bron: bron.id.clone(),
            })?;
        ctx.resource_template = Some(resource.template.as_str().to_owned());
        let subject = vars
            .iter()
            .find(|(name, _)| *name == bron.subject)
            .map(|(_, v)| (*v).to_owned())
            .unwrap_or_default();
        ctx.subject = Some(subject.clone());
        let method_ok = match req.act {
            Act::Read => resource.read,
            Act::Write => resource.write,
        };
        if !method_ok {
            return Err(Denial::MethodNotAllowed {
                bron: bron.id.clone(),
                resource: resource.id.clone(),
                allow: match (resource.read, resource.write) {
                    (true, true) => "GET, POST, PUT",
                    (true, false) => "GET",
                    _ => "POST, PUT",
                },
            });
        }
        let key = GrantKey {
            org: org.to_owned(),
            role: role.id.clone(),
            overleg: overleg.id.clone(),
            purpose: purpose.id.clone(),
            bron: bron.id.clone(),
            act: req.act,
        };
        let grant = self.table.get(&key).ok_or_else(|| Denial::NoRule {
            overleg: overleg.id.clone(),
            role: role.id.clone(),
            purpose: purpose.id.clone(),
            bron: bron.id.clone(),
            act: req.act,
        })?;
        // Consent and case binding are applied by `Tentative::bind`; here only
        // a resource for which no rule allows anything at all is refused.
        match grant.per_resource.get(resource_idx) {
            Some((allowed, needs)) if !(allowed.is_empty() && needs.is_empty()) => {}
            _ => {
                return Err(Denial::NoFieldOfResource {
                    resource: resource.id.clone(),
                });
            }
        }
        let trie = self
            .tries
            .get(&bron.id)
            .cloned()
            .unwrap_or_else(|| Arc::new(FieldTrie::new(&bron.catalogue)));
        let upstream_path = format!("/{}", req.segments.join("/"));
        Ok(Tentative(Permit {
            org: org.to_owned(),
            role: role.id.clone(),
            grondslag: role.grondslag.clone(),
            overleg: overleg.id.clone(),
            purpose: purpose.id.clone(),
            act: req.act,
            bron: Arc::clone(bron),
            resource: resource_idx,
            upstream_path,
            subject,
            grant: Arc::clone(grant),
            trie,
            policy_version: Arc::clone(&self.version),
            effective: None,
            consent_missing: None,
            registration: String::new(),
            consents: Vec::new(),
        }))
    }
}
