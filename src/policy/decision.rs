//! Request-time decisions. A [`Snapshot`] is an immutable, verified view of
//! the policy set; [`Snapshot::decide`] returns either a [`Permit`] (the only
//! way to reach an upstream) or a [`Denial`] that explains itself.

use std::collections::HashMap;
use std::sync::Arc;

use crate::policy::bitset::BitSet;
use crate::policy::compile::{self, CompiledOverleg, DecisionTable, Grant, GrantKey};
use crate::policy::filter::FieldTrie;
use crate::policy::mandate::Direction;
use crate::policy::model::{
    Act, Bron, Consent, EmergencyReason, Grondslag, Overleg, PolicySet, Purpose, Resource, Role,
};
use crate::registers::CaseStatus;
use crate::registers::emergency::WindowState;
use crate::registers::rights::path_covers;

/// A request as the router parsed it (already checked for traversal tricks).
/// Its `Debug` leaves out the path segments, which name the pupil.
#[derive(Clone)]
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
    /// Value of `X-Bron-Eigenaar`: whose data a hosted bron is asked for
    /// (an owner's id or OIN).
    pub owner: Option<&'a str>,
    /// The moment of the request (Unix seconds), for mandates.
    pub now: i64,
    /// `X-Spoed-Reden` and `X-Spoed-Toelichting`: the request invokes the
    /// emergency path.
    pub emergency: Option<EmergencyClaim<'a>>,
}

/// What an emergency request claims, as the headers say it (checked by
/// [`Snapshot::decide`]). The justification is free text by a
/// professional: it is recorded, so it must not name the pupil.
#[derive(Clone, Copy)]
pub struct EmergencyClaim<'a> {
    pub reason: Option<&'a str>,
    pub justification: Option<&'a str>,
}

impl std::fmt::Debug for EmergencyClaim<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmergencyClaim")
            .field("reason", &self.reason)
            .field("justification", &self.justification.map(|_| REDACTED))
            .finish()
    }
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
    #[error(
        "an objection (bezwaar, AVG art. 21) against this processing of the pupil's data in `{overleg}` for purpose `{purpose}` is lodged or upheld, and role `{role}` receives on a ground open to objection ({basis})"
    )]
    Objection {
        overleg: String,
        purpose: String,
        role: String,
        basis: String,
    },
    #[error(
        "every field of resource `{resource}` the rules allow is restricted (beperking, AVG art. 18) for this pupil"
    )]
    Restricted { resource: String },
    #[error(
        "purpose `{purpose}` is not an emergency purpose; X-Spoed-Reden is only accepted for one"
    )]
    EmergencyNotApplicable { purpose: String },
    #[error("purpose `{purpose}` is an emergency purpose: send X-Spoed-Reden with one of {}, and X-Spoed-Toelichting", reasons.join(", "))]
    EmergencyReasonRequired {
        purpose: String,
        reasons: Vec<String>,
    },
    #[error(
        "X-Spoed-Reden is not one of {}",
        crate::policy::model::EmergencyReason::all_codes()
    )]
    EmergencyReasonUnknown,
    #[error("purpose `{purpose}` may not be invoked for reason `{reason}` (it may for {})", allowed.join(", "))]
    EmergencyReasonNotAllowed {
        purpose: String,
        reason: String,
        allowed: Vec<String>,
    },
    #[error("{0}")]
    EmergencyJustification(&'static str),
    #[error(
        "the emergency window of this organisation for this pupil ended at {ends_at}; it stays closed until the FG has reviewed it"
    )]
    EmergencyWindowEnded { ends_at: String },
    #[error("bron `{bron}` is hosted for several organisations in `{overleg}` ({}); say whose data in X-Bron-Eigenaar (OIN)", owners.join(", "))]
    OwnerRequired {
        bron: String,
        overleg: String,
        owners: Vec<String>,
    },
    #[error(
        "X-Bron-Eigenaar does not name an owner of bron `{bron}` that takes part in `{overleg}`"
    )]
    OwnerUnknown { bron: String, overleg: String },
    #[error(
        "bron `{bron}` has one owner; X-Bron-Eigenaar is only accepted for a bron a supplier hosts"
    )]
    OwnerNotHosted { bron: String },
    #[error(
        "`{owner}` has no active mandate for supplier `{supplier}` to host its bron `{bron}` in `{overleg}` ({why})"
    )]
    NoHostMandate {
        bron: String,
        owner: String,
        supplier: String,
        overleg: String,
        why: &'static str,
    },
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
            Denial::Objection { .. } => "objection",
            Denial::Restricted { .. } => "restricted",
            Denial::OwnerRequired { .. } => "owner-required",
            Denial::OwnerUnknown { .. } => "owner-unknown",
            Denial::OwnerNotHosted { .. } => "owner-not-hosted",
            Denial::NoHostMandate { .. } => "no-host-mandate",
            Denial::EmergencyNotApplicable { .. } => "emergency-not-applicable",
            Denial::EmergencyReasonRequired { .. } => "emergency-reason-required",
            Denial::EmergencyReasonUnknown => "emergency-reason-unknown",
            Denial::EmergencyReasonNotAllowed { .. } => "emergency-reason-not-allowed",
            Denial::EmergencyJustification(_) => "emergency-justification",
            Denial::EmergencyWindowEnded { .. } => "emergency-window-ended",
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
    pub fn pupil(&self) -> &str {
        &self.0.pupil
    }
    /// Whether the request invokes the emergency path: [`Tentative::bind`]
    /// then needs the window state in the status.
    pub fn is_emergency(&self) -> bool {
        self.0.emergency.is_some()
    }

    /// Applies case binding, objections, consent and restrictions, in the
    /// precedence README's table gives: no registration, nothing (unless
    /// an emergency purpose waives case binding); an objection that
    /// applies stops everything (consent or not; an emergency disclosure
    /// records it as not applied); an emergency needs a window that is
    /// open or may open; fields
    /// whose rule needs consent are added only when `status` holds an
    /// active consent of the right kind for this purpose; a restriction
    /// takes its fields away whatever else allows them.
    pub fn bind(self, status: &CaseStatus) -> Result<Permit, Denial> {
        let mut p = self.0;
        match (&status.registration, &p.emergency) {
            (Some(registration), _) => p.registration.clone_from(registration),
            (None, Some(e)) if !e.case_binding => {}
            (None, _) => {
                return Err(Denial::NotRegistered {
                    overleg: p.overleg.clone(),
                });
            }
        }
        p.objections = weigh_objections(&p, status)?;
        if let Some(e) = &mut p.emergency {
            e.window = Some(window_of(status)?);
        }
        let Some((unconditional, needs)) = p.grant.per_resource.get(p.resource) else {
            return Err(Denial::NoFieldOfResource {
                resource: p.resource_id().to_owned(),
            });
        };
        let (restricted, restrictions) = restricted_of(&p, unconditional, needs, status);
        let check =
            (!needs.is_empty()).then(|| ConsentCheck::of(&p.grant, needs, &p.purpose, status));
        if let Some(check) = &check {
            p.consents.clone_from(&check.used);
        }
        let consented = check.as_ref().is_some_and(|c| !c.consented.is_empty());
        if consented || !restricted.is_empty() {
            let mut effective = unconditional.clone();
            if let Some(check) = &check {
                effective.union_with(&check.consented);
            }
            effective.subtract(&restricted);
            p.effective = Some(effective);
        }
        if p.allowed().is_empty() {
            return Err(nothing_left(
                &p,
                unconditional,
                needs,
                &restricted,
                check.as_ref(),
            ));
        }
        if let Some(mut check) = check {
            check.missing.subtract(&restricted);
            p.consent_missing = Some(check.missing);
        }
        p.restricted = restricted;
        p.restrictions = restrictions;
        Ok(p)
    }
}

/// Why nothing is left of a request: every field that could flow is
/// restricted (`restricted`), or consent would unlock some
/// (`consent-required`), or the resource has none at all.
fn nothing_left(
    p: &Permit,
    unconditional: &BitSet,
    needs: &BitSet,
    restricted: &BitSet,
    check: Option<&ConsentCheck>,
) -> Denial {
    let mut could = unconditional.clone();
    could.union_with(needs);
    let any_at_all = !could.is_empty();
    could.subtract(restricted);
    if any_at_all && could.is_empty() {
        return Denial::Restricted {
            resource: p.resource_id().to_owned(),
        };
    }
    match check {
        Some(check) => Denial::ConsentRequired {
            consent: check
                .strictest_missing
                .unwrap_or(Consent::Parents)
                .as_str()
                .to_owned(),
            purpose: p.purpose.clone(),
        },
        None => Denial::NoFieldOfResource {
            resource: p.resource_id().to_owned(),
        },
    }
}

/// The objections that cover this request (its overleg, and its purpose
/// when they name one): an error when the receiving role's ground is open
/// to objection (AVG art. 6(1)(e)/(f) without (c)); otherwise the ids that
/// did not apply, for the record.
fn weigh_objections(p: &Permit, status: &CaseStatus) -> Result<Vec<String>, Denial> {
    let covering: Vec<&str> = status
        .objections
        .iter()
        .filter(|o| o.state.stops() && o.covers(&p.purpose))
        .map(|o| o.id.as_str())
        .collect();
    if covering.is_empty() {
        return Ok(Vec::new());
    }
    if p.grondslag.objectable() && p.emergency.is_none() {
        return Err(Denial::Objection {
            overleg: p.overleg.clone(),
            purpose: p.purpose.clone(),
            role: p.role.clone(),
            basis: basis_codes(&p.grondslag),
        });
    }
    let mut ids: Vec<String> = covering.into_iter().map(str::to_owned).collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// The emergency window a disclosure uses: the open one, or a new one;
/// refused when the last one ended and the FG has not reviewed it. A status
/// without a window lookup fails closed.
fn window_of(status: &CaseStatus) -> Result<WindowState, Denial> {
    match &status.emergency {
        Some(WindowState::Ended { ends_at, .. }) => Err(Denial::EmergencyWindowEnded {
            ends_at: ends_at.clone(),
        }),
        Some(w) => Ok(w.clone()),
        None => Err(Denial::EmergencyWindowEnded {
            ends_at: "(not looked up)".to_owned(),
        }),
    }
}

/// Why an objection did not stop an emergency disclosure (Dutch, for the
/// record and the FG, who reviews the disclosure).
pub const OBJECTION_EMERGENCY_REASON: &str = "spoed: bij acuut gevaar of een vermoeden van huiselijk geweld of kindermishandeling gaat de bescherming van de leerling voor (AVG art. 21 lid 1, dwingende gerechtvaardigde gronden); de FG beoordeelt deze verstrekking";

/// The emergency a request invokes, checked against its purpose: the
/// headers only for an emergency purpose (refused, never ignored, for any
/// other), a reason from the fixed list that the purpose allows.
fn claimed_emergency(
    purpose: &Purpose,
    claim: Option<EmergencyClaim<'_>>,
) -> Result<Option<EmergencyUse>, Denial> {
    let terms = match (&purpose.emergency, claim) {
        (None, None) => return Ok(None),
        (None, Some(_)) => {
            return Err(Denial::EmergencyNotApplicable {
                purpose: purpose.id.clone(),
            });
        }
        (Some(terms), _) => terms,
    };
    let allowed = || terms.reasons.iter().map(|r| r.code().to_owned()).collect();
    let Some(code) = claim.and_then(|c| c.reason) else {
        return Err(Denial::EmergencyReasonRequired {
            purpose: purpose.id.clone(),
            reasons: allowed(),
        });
    };
    let reason = EmergencyReason::parse(code).ok_or(Denial::EmergencyReasonUnknown)?;
    if !terms.reasons.contains(&reason) {
        return Err(Denial::EmergencyReasonNotAllowed {
            purpose: purpose.id.clone(),
            reason: reason.code().to_owned(),
            allowed: allowed(),
        });
    }
    Ok(Some(EmergencyUse {
        reason,
        justification: claim
            .and_then(|c| c.justification)
            .unwrap_or_default()
            .trim()
            .to_owned(),
        case_binding: terms.case_binding,
        window: None,
    }))
}

/// Fewest characters of an emergency justification.
pub const MIN_JUSTIFICATION_CHARS: usize = 10;
/// A run of this many digits in a justification may be a BSN or another
/// identifying number: refused.
const MAX_DIGIT_RUN: usize = 7;

/// The justification is recorded and shown to the FG: it must say why,
/// and must not identify the pupil (its id from the path, a long number).
fn check_justification(text: &str, pupil: &str) -> Result<(), Denial> {
    if text.chars().count() < MIN_JUSTIFICATION_CHARS || text.chars().any(char::is_control) {
        return Err(Denial::EmergencyJustification(
            "X-Spoed-Toelichting is required: at least 10 printable characters saying why, without the pupil's name or id",
        ));
    }
    if !pupil.is_empty() && text.to_lowercase().contains(&pupil.to_lowercase()) {
        return Err(Denial::EmergencyJustification(
            "X-Spoed-Toelichting must not contain the pupil's id: it is recorded in the trail",
        ));
    }
    let mut run = 0;
    for c in text.chars() {
        run = if c.is_ascii_digit() { run + 1 } else { 0 };
        if run > MAX_DIGIT_RUN {
            return Err(Denial::EmergencyJustification(
                "X-Spoed-Toelichting must not contain a BSN or another long number: it is recorded in the trail",
            ));
        }
    }
    Ok(())
}

/// An emergency disclosure's terms, as the permit carries them.
#[derive(Debug, Clone)]
pub struct EmergencyUse {
    pub reason: EmergencyReason,
    /// Checked free text (see `check_justification`); recorded, never logged.
    pub justification: String,
    pub case_binding: bool,
    /// The window it opens or uses; set by [`Tentative::bind`].
    pub window: Option<WindowState>,
}

/// The role's art. 6(1) grounds as codes, e.g. `6.1.c, 6.1.e`.
fn basis_codes(g: &Grondslag) -> String {
    g.basis
        .iter()
        .filter(|b| b.code().starts_with("6.1."))
        .map(|b| b.code())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why an objection did not apply to a role on `g` (Dutch, for the record
/// and the FG).
pub fn objection_not_applied_reason(g: &Grondslag) -> String {
    if g.names(crate::policy::model::LegalBasis::LegalObligation) {
        "grondslag 6.1.c: wettelijke plicht; tegen een wettelijke plicht is geen bezwaar mogelijk (AVG art. 21 lid 1)".to_owned()
    } else {
        format!(
            "grondslag {}: geen 6.1.e of 6.1.f, dus geen recht van bezwaar (AVG art. 21 lid 1)",
            basis_codes(g)
        )
    }
}

/// The fields of this request's resource (those the rules could let flow)
/// that an active restriction covers, and the restrictions that covered
/// at least one, sorted.
fn restricted_of(
    p: &Permit,
    unconditional: &BitSet,
    needs: &BitSet,
    status: &CaseStatus,
) -> (BitSet, Vec<String>) {
    let len = p.grant.fields.len();
    let mut restricted = BitSet::new(len);
    let mut ids = Vec::new();
    if status.restrictions.is_empty() {
        return (restricted, ids);
    }
    let mut could = unconditional.clone();
    could.union_with(needs);
    let cat = &p.bron.catalogue;
    let bron = p.bron.id.as_str();
    for r in &status.restrictions {
        let mut hit = false;
        match &r.fields {
            None => {
                restricted.union_with(&could);
                hit = !could.is_empty();
            }
            Some(entries) => {
                // Only this bron's entries; each is split once.
                let paths = entries
                    .iter()
                    .filter_map(|e| e.strip_prefix(bron)?.strip_prefix(':'));
                for path in paths {
                    for i in could.iter() {
                        if cat
                            .get(i)
                            .is_some_and(|f| path_covers(path, f.path.as_str()))
                        {
                            restricted.insert(i);
                            hit = true;
                        }
                    }
                }
            }
        }
        if hit {
            ids.push(r.id.clone());
        }
    }
    ids.sort();
    ids.dedup();
    (restricted, ids)
}

/// Which consent-requiring fields an active consent unlocks.
struct ConsentCheck {
    consented: BitSet,
    missing: BitSet,
    /// The strictest consent among the fields still missing one.
    strictest_missing: Option<Consent>,
    /// Consent ids relied on, sorted and unique.
    used: Vec<String>,
}

impl ConsentCheck {
    fn of(grant: &Grant, needs: &BitSet, purpose: &str, status: &CaseStatus) -> Self {
        // Sized by the catalogue, not by the number of fields: an index past
        // the end would be dropped silently.
        let len = grant.fields.len();
        let mut check = ConsentCheck {
            consented: BitSet::new(len),
            missing: BitSet::new(len),
            strictest_missing: None,
            used: Vec::new(),
        };
        for i in needs.iter() {
            // A field without a grant entry cannot be in `needs`; if it
            // were, the strictest consent keeps it closed.
            let required = grant
                .fields
                .get(i)
                .and_then(|f| f.as_ref())
                .map_or(Consent::ParentsAndYouth, |f| f.consent);
            match status.consent_for(purpose, required) {
                Some(ids) => {
                    check.consented.insert(i);
                    check.used.extend(ids.into_iter().map(str::to_owned));
                }
                None => {
                    check.missing.insert(i);
                    check.strictest_missing = check.strictest_missing.max(Some(required));
                }
            }
        }
        check.used.sort();
        check.used.dedup();
        check
    }
}

/// Proof that a request was authorised, by the policy and the registers.
/// Only [`Tentative::bind`] makes one; the upstream client takes one by
/// reference, so nothing is forwarded without a decision. Its `Debug`
/// leaves out the pupil and the upstream path, which names the pupil.
#[derive(Clone)]
pub struct Permit {
    org: String,
    role: String,
    grondslag: Grondslag,
    overleg: String,
    purpose: String,
    act: Act,
    bron: Arc<Bron>,
    /// Whose data the bron serves for this request (see [`GrantKey::owner`]).
    owner: String,
    /// For a hosted bron, the owner's OIN (its id when it has none): what
    /// the bron is told in `X-Poortwachter-Namens`.
    owner_oin: Option<String>,
    resource: usize,
    /// Request path below the bron's base URL, rebuilt from validated segments.
    upstream_path: String,
    /// The clear pupil id from the path (never logged or stored).
    pupil: String,
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
    /// Objections that cover the request but did not apply (the role's
    /// ground is not open to objection).
    objections: Vec<String>,
    /// Fields the rules allow that a restriction withholds.
    restricted: BitSet,
    /// Restrictions that withheld at least one field.
    restrictions: Vec<String>,
    /// The emergency this disclosure is made under, if any.
    emergency: Option<EmergencyUse>,
}

impl Permit {
    /// The emergency this disclosure is made under (spoed), with its window.
    pub fn emergency(&self) -> Option<&EmergencyUse> {
        self.emergency.as_ref()
    }
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
    /// The organisation whose data the bron serves for this request.
    pub fn owner(&self) -> &str {
        &self.owner
    }
    /// The owner, when the bron is hosted by a supplier for several (the
    /// record names it; a bron of its own names its owner already).
    pub fn hosted_owner(&self) -> Option<&str> {
        self.bron.hosted_by.as_ref().map(|_| self.owner.as_str())
    }
    /// For a hosted bron, the owner's OIN (or id) the bron is told.
    pub fn hosted_owner_oin(&self) -> Option<&str> {
        self.owner_oin.as_deref()
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
    pub fn pupil(&self) -> &str {
        &self.pupil
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
    /// Objections that cover this request but did not apply, because the
    /// role's ground is not open to objection (see
    /// [`objection_not_applied_reason`]).
    pub fn objections_not_applied(&self) -> &[String] {
        &self.objections
    }
    /// Fields the rules (and consent) would let flow that a restriction
    /// withholds.
    pub fn restricted(&self) -> &BitSet {
        &self.restricted
    }
    /// The restrictions that withheld at least one field.
    pub fn restrictions(&self) -> &[String] {
        &self.restrictions
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
            .flat_map(|i| {
                self.rules_for(i)
                    .iter()
                    .map(std::string::ToString::to_string)
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// What a decision established before it failed or succeeded: recorded in the
/// audit trail either way (the pupil as its pseudonym). Its `Debug` leaves
/// out the pupil.
#[derive(Clone, Default)]
pub struct DecisionContext {
    pub role: Option<String>,
    pub grondslag: Option<String>,
    pub purpose: Option<String>,
    pub resource_template: Option<String>,
    pub pupil: Option<String>,
    /// The owner chosen for a hosted bron.
    pub owner: Option<String>,
}

/// Prints in place of a clear pupil id in `Debug` output.
const REDACTED: &str = "(redacted)";

impl std::fmt::Debug for RouteRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteRequest")
            .field("overleg", &self.overleg)
            .field("bron", &self.bron)
            .field("segments", &REDACTED)
            .field("act", &self.act)
            .field("purpose", &self.purpose)
            .field("role", &self.role)
            .field("owner", &self.owner)
            .finish()
    }
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("org", &self.org)
            .field("role", &self.role)
            .field("overleg", &self.overleg)
            .field("purpose", &self.purpose)
            .field("act", &self.act)
            .field("bron", &self.bron.id)
            .field("resource", &self.resource)
            .field("upstream_path", &REDACTED)
            .field("pupil", &REDACTED)
            .field("registration", &self.registration)
            .field("consents", &self.consents)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for DecisionContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionContext")
            .field("role", &self.role)
            .field("grondslag", &self.grondslag)
            .field("purpose", &self.purpose)
            .field("resource_template", &self.resource_template)
            .field("pupil", &self.pupil.as_ref().map(|_| REDACTED))
            .field("owner", &self.owner)
            .finish()
    }
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
        let role = held_role(overleg, org, req.role)?;
        ctx.role = Some(role.id.clone());
        ctx.grondslag = Some(role.grondslag.to_string());
        let purpose = named_purpose(overleg, req.purpose)?;
        ctx.purpose = Some(purpose.id.clone());
        let emergency = claimed_emergency(purpose, req.emergency)?;
        let bron = self
            .set
            .bronnen
            .get(req.bron)
            .ok_or_else(|| Denial::UnknownBron(req.bron.to_owned()))?;
        let (resource_idx, resource, pupil) = matching_resource(bron, req.segments)?;
        ctx.resource_template = Some(resource.template.as_str().to_owned());
        ctx.pupil = Some(pupil.clone());
        accepts(bron, resource, req.act)?;
        if let Some(e) = &emergency {
            check_justification(&e.justification, &pupil)?;
        }
        let owner = self.owner_of(bron, overleg, req)?;
        if let Some(host) = &bron.hosted_by {
            ctx.owner = Some(owner.clone());
            self.host_mandate(bron, host, &owner, overleg, req.now)?;
        }
        let key = GrantKey {
            org: org.to_owned(),
            role: role.id.clone(),
            overleg: overleg.id.clone(),
            purpose: purpose.id.clone(),
            bron: bron.id.clone(),
            owner: owner.clone(),
            act: req.act,
        };
        let grant = self.grant_serving(key, resource_idx, resource)?;
        let trie = self
            .tries
            .get(&bron.id)
            .cloned()
            .unwrap_or_else(|| Arc::new(FieldTrie::new(&bron.catalogue)));
        Ok(Tentative(Permit {
            org: org.to_owned(),
            role: role.id.clone(),
            grondslag: role.grondslag.clone(),
            overleg: overleg.id.clone(),
            purpose: purpose.id.clone(),
            act: req.act,
            bron: Arc::clone(bron),
            owner_oin: bron
                .hosted_by
                .as_ref()
                .map(|_| self.oin_of(&owner).unwrap_or(&owner).to_owned()),
            owner,
            resource: resource_idx,
            upstream_path: format!("/{}", req.segments.join("/")),
            pupil,
            grant,
            trie,
            policy_version: Arc::clone(&self.version),
            effective: None,
            consent_missing: None,
            registration: String::new(),
            consents: Vec::new(),
            objections: Vec::new(),
            restricted: BitSet::EMPTY,
            restrictions: Vec::new(),
            emergency,
        }))
    }

    /// Whose data `bron` serves for `req`: its only owner; for a hosted bron
    /// the owner `X-Bron-Eigenaar` names (by id or OIN), or the only owner
    /// taking part in the overleg.
    fn owner_of(
        &self,
        bron: &Bron,
        overleg: &Overleg,
        req: &RouteRequest<'_>,
    ) -> Result<String, Denial> {
        if bron.hosted_by.is_none() {
            return match (req.owner, bron.owners.as_slice()) {
                (None, [only]) => Ok(only.clone()),
                _ => Err(Denial::OwnerNotHosted {
                    bron: bron.id.clone(),
                }),
            };
        }
        let taking_part: Vec<&String> = bron
            .owners
            .iter()
            .filter(|o| overleg.roles_of(o).next().is_some())
            .collect();
        let owner = match (req.owner, taking_part.as_slice()) {
            (Some(named), _) => taking_part
                .iter()
                .find(|o| **o == named || self.oin_of(o) == Some(named))
                .copied()
                .ok_or_else(|| Denial::OwnerUnknown {
                    bron: bron.id.clone(),
                    overleg: overleg.id.clone(),
                })?,
            (None, [only]) => *only,
            (None, _) => {
                return Err(Denial::OwnerRequired {
                    bron: bron.id.clone(),
                    overleg: overleg.id.clone(),
                    owners: taking_part.iter().map(|o| (*o).clone()).collect(),
                });
            }
        };
        Ok(owner.clone())
    }

    /// The active mandate in direction `bron` that lets `host` serve
    /// `owner`'s data in `overleg` at `now`.
    fn host_mandate(
        &self,
        bron: &Bron,
        host: &str,
        owner: &str,
        overleg: &Overleg,
        now: i64,
    ) -> Result<(), Denial> {
        self.set
            .mandates
            .find(host, owner, Direction::Bron, Some(&overleg.id), now)
            .map(|_| ())
            .map_err(|why| Denial::NoHostMandate {
                bron: bron.id.clone(),
                owner: owner.to_owned(),
                supplier: host.to_owned(),
                overleg: overleg.id.clone(),
                why: why.as_str(),
            })
    }

    /// The OIN of organisation `id`.
    fn oin_of(&self, id: &str) -> Option<&str> {
        self.set.organisations.get(id)?.oin.as_deref()
    }

    /// The table entry for `key`, refused when it does not exist or allows
    /// nothing at all of what `resource` serves. Consent and case binding
    /// are applied later, by [`Tentative::bind`].
    fn grant_serving(
        &self,
        key: GrantKey,
        resource_idx: usize,
        resource: &Resource,
    ) -> Result<Arc<Grant>, Denial> {
        let Some(grant) = self.table.get(&key) else {
            return Err(Denial::NoRule {
                overleg: key.overleg,
                role: key.role,
                purpose: key.purpose,
                bron: key.bron,
                act: key.act,
            });
        };
        match grant.per_resource.get(resource_idx) {
            Some((allowed, needs)) if !(allowed.is_empty() && needs.is_empty()) => {
                Ok(Arc::clone(grant))
            }
            _ => Err(Denial::NoFieldOfResource {
                resource: resource.id.clone(),
            }),
        }
    }
}

/// The role `org` acts in: the one named in `X-Rol`, or the only one it holds.
fn held_role<'o>(overleg: &'o Overleg, org: &str, named: Option<&str>) -> Result<&'o Role, Denial> {
    let held: Vec<&Role> = overleg.roles_of(org).collect();
    match (named, held.as_slice()) {
        (_, []) => Err(Denial::NotAParticipant {
            org: org.to_owned(),
            overleg: overleg.id.clone(),
        }),
        (Some(r), _) => {
            held.iter()
                .find(|h| h.id == r)
                .copied()
                .ok_or_else(|| Denial::RoleNotHeld {
                    org: org.to_owned(),
                    role: r.to_owned(),
                    overleg: overleg.id.clone(),
                })
        }
        (None, [only]) => Ok(only),
        (None, many) => Err(Denial::RoleRequired {
            org: org.to_owned(),
            overleg: overleg.id.clone(),
            roles: many.iter().map(|r| r.id.clone()).collect(),
        }),
    }
}

/// The purpose named in `X-Doelbinding`, which must be one of the overleg's.
fn named_purpose<'o>(overleg: &'o Overleg, named: Option<&str>) -> Result<&'o Purpose, Denial> {
    let Some(p) = named else {
        return Err(Denial::PurposeRequired {
            purposes: overleg.purposes.iter().map(|p| p.id.clone()).collect(),
        });
    };
    overleg.purpose(p).ok_or_else(|| Denial::UnknownPurpose {
        purpose: p.to_owned(),
        overleg: overleg.id.clone(),
    })
}

/// The first resource of `bron` whose template matches `segments`, with its
/// index and the betrokkene's identifier from the path.
fn matching_resource<'b>(
    bron: &'b Bron,
    segments: &[&str],
) -> Result<(usize, &'b Resource, String), Denial> {
    let (idx, resource, vars) = bron
        .resources
        .iter()
        .enumerate()
        .find_map(|(i, r)| r.template.matches(segments).map(|v| (i, r, v)))
        .ok_or_else(|| Denial::UndeclaredResource {
            bron: bron.id.clone(),
        })?;
    let pupil = vars
        .iter()
        .find(|(name, _)| *name == bron.pupil_variable)
        .map(|(_, v)| (*v).to_owned())
        .unwrap_or_default();
    Ok((idx, resource, pupil))
}

/// Whether `resource` accepts the request's method.
fn accepts(bron: &Bron, resource: &Resource, act: Act) -> Result<(), Denial> {
    let ok = match act {
        Act::Read => resource.read,
        Act::Write => resource.write,
    };
    if ok {
        return Ok(());
    }
    Err(Denial::MethodNotAllowed {
        bron: bron.id.clone(),
        resource: resource.id.clone(),
        allow: match (resource.read, resource.write) {
            (true, true) => "GET, POST, PUT",
            (true, false) => "GET",
            _ => "POST, PUT",
        },
    })
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn debug_output_never_names_the_pupil() {
        let segments = ["leerlingen", "L4242", "verzuim"];
        let route = RouteRequest {
            overleg: "o",
            bron: "b",
            segments: &segments,
            act: Act::Read,
            purpose: Some("p"),
            role: None,
            owner: None,
            now: 0,
            emergency: None,
        };
        let ctx = DecisionContext {
            pupil: Some("L4242".into()),
            ..DecisionContext::default()
        };
        for text in [format!("{route:?}"), format!("{ctx:?}")] {
            assert!(!text.contains("L4242"), "{text}");
            assert!(text.contains(REDACTED), "{text}");
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
    use crate::registers::{ActiveConsent, GivenBy, ObjectionState};

    /// A request as the router would hand it over.
    #[derive(Clone, Copy)]
    struct Ask<'a> {
        org: &'a str,
        role: Option<&'a str>,
        overleg: &'a str,
        purpose: Option<&'a str>,
        bron: &'a str,
        path: &'a str,
        act: Act,
    }

    /// WIJ reads the verzuim resource for `hulp`; tests change one part.
    const WIJ_VERZUIM: Ask<'static> = Ask {
        org: "wij",
        role: None,
        overleg: "team",
        purpose: Some("hulp"),
        bron: "las",
        path: "leerlingen/L1/verzuim",
        act: Act::Read,
    };

    fn decide(snap: &Snapshot, a: &Ask<'_>) -> Result<Tentative, Denial> {
        let segments: Vec<&str> = a.path.split('/').collect();
        let req = RouteRequest {
            overleg: a.overleg,
            bron: a.bron,
            segments: &segments,
            act: a.act,
            purpose: a.purpose,
            role: a.role,
            owner: None,
            now: 0,
            emergency: None,
        };
        snap.decide(a.org, &req, &mut DecisionContext::default())
    }

    fn registered(consents: &[(&str, GivenBy, &str)]) -> CaseStatus {
        CaseStatus {
            registration: Some("a-1".into()),
            consents: consents
                .iter()
                .map(|(id, by, purpose)| ActiveConsent {
                    id: (*id).to_owned(),
                    given_by: *by,
                    purposes: vec![(*purpose).to_owned()],
                })
                .collect(),
            ..CaseStatus::default()
        }
    }

    fn paths(p: &Permit, set: &BitSet) -> Vec<String> {
        set.iter()
            .map(|i| p.bron().catalogue[i].path.as_str().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn every_refusal_of_decide() {
        let snap = Fixture::new().snapshot().await;
        let w = WIJ_VERZUIM;
        let cases: [(&str, Ask<'_>, &str); 12] = [
            (
                "unknown-overleg",
                Ask {
                    overleg: "nope",
                    ..w
                },
                "`nope`",
            ),
            ("not-a-participant", Ask { org: "buiten", ..w }, "`buiten`"),
            (
                "role-required",
                Ask {
                    org: "gemeente",
                    ..w
                },
                "(leerplicht, rmc)",
            ),
            (
                "role-not-held",
                Ask {
                    role: Some("jgz"),
                    ..w
                },
                "role `jgz`",
            ),
            (
                "purpose-required",
                Ask { purpose: None, ..w },
                "hulp, handhaving",
            ),
            (
                "unknown-purpose",
                Ask {
                    purpose: Some("x"),
                    ..w
                },
                "`x`",
            ),
            ("unknown-bron", Ask { bron: "x", ..w }, "bron `x`"),
            (
                "undeclared-resource",
                Ask {
                    path: "leerlingen/L1/x",
                    ..w
                },
                "`las`",
            ),
            (
                "undeclared-resource",
                Ask {
                    path: "leerlingen/L.1",
                    ..w
                },
                "`las`",
            ),
            (
                "method-not-allowed",
                Ask {
                    act: Act::Write,
                    ..w
                },
                "accepts GET",
            ),
            (
                "no-rule",
                Ask {
                    purpose: Some("handhaving"),
                    ..w
                },
                "receive data from",
            ),
            (
                "no-field-of-resource",
                Ask {
                    path: "leerlingen/L1/zorg",
                    ..w
                },
                "`zorg`",
            ),
        ];
        for (code, ask, says) in cases {
            let Err(denial) = decide(&snap, &ask) else {
                panic!("{code}: allowed");
            };
            assert_eq!(denial.code(), code, "{denial}");
            assert!(denial.to_string().contains(says), "{code}: {denial}");
        }
        // A write that no rule allows names the other direction.
        let write = Ask {
            path: "leerlingen/L1/notities",
            act: Act::Write,
            purpose: Some("handhaving"),
            ..w
        };
        let denial = decide(&snap, &write).err().unwrap();
        assert!(denial.to_string().contains("send data to"), "{denial}");
    }

    #[tokio::test]
    async fn decide_fills_the_context_as_far_as_it_got() {
        let snap = Fixture::new().snapshot().await;
        let segments = ["leerlingen", "L1", "zorg"];
        let req = RouteRequest {
            overleg: "team",
            bron: "las",
            segments: &segments,
            act: Act::Read,
            purpose: Some("hulp"),
            role: None,
            owner: None,
            now: 0,
            emergency: None,
        };
        let mut ctx = DecisionContext::default();
        let denial = snap.decide("wij", &req, &mut ctx).err().unwrap();
        assert_eq!(denial.code(), "no-field-of-resource");
        assert_eq!(ctx.role.as_deref(), Some("jeugd"));
        assert_eq!(
            ctx.grondslag.as_deref(),
            Some("Jeugdwet (art. 2.1; AVG art. 6(1)(e))")
        );
        assert_eq!(ctx.purpose.as_deref(), Some("hulp"));
        assert_eq!(
            ctx.resource_template.as_deref(),
            Some("/leerlingen/{leerling}/zorg")
        );
        assert_eq!(ctx.pupil.as_deref(), Some("L1"));

        let mut ctx = DecisionContext::default();
        let req = RouteRequest {
            purpose: Some("x"),
            ..req
        };
        assert!(snap.decide("wij", &req, &mut ctx).is_err());
        assert_eq!(ctx.role.as_deref(), Some("jeugd"));
        assert_eq!((ctx.purpose, ctx.pupil), (None, None));
    }

    /// Permitted and withheld fields for each (request, registers) pair.
    #[tokio::test]
    async fn allowed_and_filtered_fields() {
        use GivenBy::{Parents, ParentsAndYouth, Youth};
        let snap = Fixture::new().snapshot().await;
        let w = WIJ_VERZUIM;
        let gemeente = Ask {
            org: "gemeente",
            purpose: Some("handhaving"),
            path: "leerlingen/L1",
            ..w
        };
        let ggd = Ask {
            org: "ggd",
            path: "leerlingen/L1/zorg",
            ..w
        };
        type Row<'a> = (
            Ask<'a>,
            Vec<(&'a str, GivenBy, &'a str)>,
            &'a [&'a str],
            &'a [&'a str],
            &'a [&'a str],
        );
        let cases: Vec<Row<'_>> = vec![
            // No consent: the field that needs one is withheld, the rest flows.
            (
                w,
                vec![],
                &["leerling.naam", "verzuim.uren"],
                &["verzuim.toelichting"],
                &[],
            ),
            (
                w,
                vec![("c-1", Parents, "hulp")],
                &["leerling.naam", "verzuim.uren", "verzuim.toelichting"],
                &[],
                &["c-1"],
            ),
            // A consent for another purpose does not count.
            (
                w,
                vec![("c-1", Parents, "handhaving")],
                &["leerling.naam", "verzuim.uren"],
                &["verzuim.toelichting"],
                &[],
            ),
            // The youth's consent is not the parents'.
            (
                w,
                vec![("c-1", Youth, "hulp")],
                &["leerling.naam", "verzuim.uren"],
                &["verzuim.toelichting"],
                &[],
            ),
            // The whole dossier resource: only what the rules allow.
            (
                Ask {
                    path: "leerlingen/L1",
                    ..w
                },
                vec![],
                &["leerling.naam", "verzuim.uren"],
                &["verzuim.toelichting"],
                &[],
            ),
            (
                Ask {
                    role: Some("leerplicht"),
                    ..gemeente
                },
                vec![],
                &[
                    "leerling.naam",
                    "leerling.bsn",
                    "verzuim.uren",
                    "verzuim.toelichting",
                ],
                &[],
                &[],
            ),
            (
                Ask {
                    role: Some("rmc"),
                    ..gemeente
                },
                vec![],
                &["leerling.naam"],
                &[],
                &[],
            ),
            (
                Ask {
                    path: "leerlingen/L1/notities",
                    act: Act::Write,
                    ..w
                },
                vec![],
                &["notities.tekst"],
                &[],
                &[],
            ),
            (
                ggd,
                vec![("c-2", ParentsAndYouth, "hulp")],
                &["zorg.diagnose"],
                &[],
                &["c-2"],
            ),
            // Separate consents of parents and youth together suffice.
            (
                ggd,
                vec![("c-3", Youth, "hulp"), ("c-2", Parents, "hulp")],
                &["zorg.diagnose"],
                &[],
                &["c-2", "c-3"],
            ),
        ];
        for (i, (ask, consents, allowed, withheld, used)) in cases.into_iter().enumerate() {
            let permit = decide(&snap, &ask)
                .and_then(|t| t.bind(&registered(&consents)))
                .unwrap_or_else(|d| panic!("case {i}: {d}"));
            assert_eq!(paths(&permit, permit.allowed()), allowed, "case {i}");
            assert_eq!(
                paths(&permit, permit.consent_withheld()),
                withheld,
                "case {i}"
            );
            assert_eq!(permit.consents(), used, "case {i}");
            assert_eq!(permit.registration(), "a-1", "case {i}");
        }
    }

    #[tokio::test]
    async fn a_permit_says_what_it_relies_on() {
        let snap = Fixture::new().snapshot().await;
        let status = registered(&[("c-1", GivenBy::Parents, "hulp")]);
        let permit = decide(&snap, &WIJ_VERZUIM).unwrap().bind(&status).unwrap();
        assert_eq!(
            (
                permit.org(),
                permit.role(),
                permit.overleg(),
                permit.purpose()
            ),
            ("wij", "jeugd", "team", "hulp")
        );
        assert_eq!(permit.grondslag().law, "Jeugdwet");
        assert_eq!(permit.resource_template(), "/leerlingen/{leerling}/verzuim");
        assert_eq!(permit.resource_id(), "verzuim");
        assert_eq!(permit.upstream_path(), "/leerlingen/L1/verzuim");
        assert_eq!(permit.pupil(), "L1");
        let debug = format!("{permit:?}");
        assert!(
            !debug.contains("L1") && debug.contains("(redacted)"),
            "{debug}"
        );
        assert_eq!(permit.policy_version(), snap.version.as_ref());
        assert_eq!(permit.deciding_rules(), ["t-01", "t-02"]);
        let toelichting = permit.bron().field_index("verzuim.toelichting").unwrap();
        assert_eq!(permit.rules_for(toelichting).len(), 1);
        assert_eq!(&*permit.rules_for(toelichting)[0], "t-02");
    }

    #[tokio::test]
    async fn every_refusal_of_bind() {
        use GivenBy::Parents;
        let snap = Fixture::new().snapshot().await;
        let ggd = Ask {
            org: "ggd",
            path: "leerlingen/L1/zorg",
            ..WIJ_VERZUIM
        };
        let not_registered = CaseStatus {
            registration: None,
            consents: registered(&[("c-1", GivenBy::ParentsAndYouth, "hulp")]).consents,
            ..CaseStatus::default()
        };
        let cases: [(&Ask<'_>, CaseStatus, &str, &str); 4] = [
            (
                &WIJ_VERZUIM,
                not_registered.clone(),
                "not-registered",
                "`team`",
            ),
            (&ggd, not_registered, "not-registered", "`team`"),
            // Every field of the resource needs a consent that is not there.
            (
                &ggd,
                registered(&[]),
                "consent-required",
                "(parents-and-youth) for purpose `hulp`",
            ),
            (
                &ggd,
                registered(&[("c-1", Parents, "hulp")]),
                "consent-required",
                "parents-and-youth",
            ),
        ];
        for (ask, status, code, says) in cases {
            let denial = decide(&snap, ask).unwrap().bind(&status).err().unwrap();
            assert_eq!(denial.code(), code, "{denial}");
            assert!(denial.to_string().contains(says), "{denial}");
        }
    }

    /// A table entry that allows nothing of the resource (which `decide`
    /// refuses first) still fails closed in `bind`, as does a resource
    /// index without an entry.
    #[tokio::test]
    async fn bind_refuses_a_resource_without_fields() {
        let snap = Fixture::new().snapshot().await;
        let status = registered(&[]);
        let mut t = decide(&snap, &WIJ_VERZUIM).unwrap();
        let mut grant = (*t.0.grant).clone();
        for r in &mut grant.per_resource {
            *r = (BitSet::new(6), BitSet::new(6));
        }
        t.0.grant = Arc::new(grant.clone());
        assert_eq!(
            t.bind(&status).err().unwrap().code(),
            "no-field-of-resource"
        );
        let mut t = decide(&snap, &WIJ_VERZUIM).unwrap();
        grant.per_resource.clear();
        t.0.grant = Arc::new(grant);
        let denial = t.bind(&status).err().unwrap();
        assert_eq!(
            denial,
            Denial::NoFieldOfResource {
                resource: "verzuim".into()
            }
        );
    }

    /// A consent-requiring field past the 64th catalogue entry is unlocked by
    /// its consent (the bit sets are sized by the catalogue, not by the
    /// number of fields that need consent).
    #[tokio::test]
    async fn consent_unlocks_a_field_far_down_the_catalogue() {
        let mut fields = String::new();
        for i in 0..70 {
            fields += &format!(
                "\n[[fields]]\npath = \"extra.f{i:02}\"\nlabel = \"Extra {i}\"\ncategory = \"normal\"\n"
            );
        }
        let rule = "\n[[rules]]\nid = \"t-07\"\npurpose = \"hulp\"\nfrom = \"school\"\nto = \"jgz\"\nbron = \"las\"\nfields = [\"extra.f69\"]\nconsent = \"parents\"\njustification = \"Ver weg.\"\n";
        let snap = Fixture::new()
            .append("bronnen/las.toml", &fields)
            .append("overleggen/team.toml", rule)
            .snapshot()
            .await;
        let ggd = Ask {
            org: "ggd",
            path: "leerlingen/L1",
            ..WIJ_VERZUIM
        };
        let permit = decide(&snap, &ggd)
            .unwrap()
            .bind(&registered(&[("c-1", GivenBy::Parents, "hulp")]))
            .unwrap();
        assert_eq!(paths(&permit, permit.allowed()), ["extra.f69"]);
        assert_eq!(paths(&permit, permit.consent_withheld()), ["zorg.diagnose"]);
    }

    /// What a row restricts.
    #[derive(Clone, Copy)]
    enum Restrict {
        Nothing,
        Everything,
        Fields(&'static [&'static str]),
    }

    /// One row of README's precedence table (Case binding and consent).
    #[allow(
        clippy::struct_excessive_bools,
        reason = "a table row: each bool is one column"
    )]
    struct Row {
        name: &'static str,
        /// `false`: WIJ (jeugd, 6.1.e) for `hulp`; `true`: the gemeente as
        /// leerplicht (6.1.c) for `handhaving`.
        legal_obligation: bool,
        registered: bool,
        consent: bool,
        /// (state, purpose) of one objection.
        objection: Option<(ObjectionState, Option<&'static str>)>,
        restriction: Restrict,
        /// The fields that flow, or the denial's code.
        expect: Result<&'static [&'static str], &'static str>,
        /// Whether the record notes an objection that did not apply.
        noted: bool,
    }

    /// The emergency rows of README's precedence table, on the example
    /// policies' `spoed-veiligheid` (aoj-vo-noorderlicht, rule aoj-spoed-01).
    #[tokio::test]
    async fn precedence_on_the_emergency_path() {
        use crate::registers::{ActiveObjection, ActiveRestriction};
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"));
        let mut set = crate::policy::load_dir(dir).unwrap();
        let snap = Snapshot::build(set.clone(), None).await.unwrap();
        let segments = ["leerlingen", "L7001"];
        let req = RouteRequest {
            overleg: "aoj-vo-noorderlicht",
            bron: "las-noorderlicht",
            segments: &segments,
            act: Act::Read,
            purpose: Some("spoed-veiligheid"),
            role: None,
            owner: None,
            now: 0,
            emergency: Some(EmergencyClaim {
                reason: Some("meldcode"),
                justification: Some("zorgen over de thuissituatie"),
            }),
        };
        let opens = WindowState::Opens {
            id: "w-1".into(),
            ends_at: "2026-12-06T00:00:00.000000Z".into(),
        };
        let bind = |snap: &Snapshot, status: &CaseStatus| {
            snap.decide("wij-groningen", &req, &mut DecisionContext::default())
                .and_then(|t| t.bind(status))
        };
        let paths = |p: &Permit, set: &BitSet| -> Vec<String> {
            set.iter()
                .filter_map(|i| p.bron().catalogue.get(i).map(|f| f.path.to_string()))
                .collect()
        };
        // Not registered, case binding waived: flows, relying on no registration.
        let unregistered = CaseStatus {
            emergency: Some(opens.clone()),
            ..CaseStatus::default()
        };
        let p = bind(&snap, &unregistered).unwrap();
        assert_eq!(p.registration(), "");
        assert!(paths(&p, p.allowed()).contains(&"ouders[].telefoon".to_owned()));
        assert_eq!(p.emergency().unwrap().window, Some(opens.clone()));
        // An objection: flows, recorded as not applied.
        let objected = CaseStatus {
            objections: vec![ActiveObjection {
                id: "bz-1".into(),
                purpose: None,
                state: ObjectionState::Upheld,
            }],
            ..unregistered.clone()
        };
        let p = bind(&snap, &objected).unwrap();
        assert_eq!(p.objections_not_applied(), ["bz-1"]);
        // A restriction still withholds its fields.
        let restricted = CaseStatus {
            restrictions: vec![ActiveRestriction {
                id: "bp-1".into(),
                fields: Some(vec!["las-noorderlicht:ouders".into()]),
            }],
            ..unregistered.clone()
        };
        let p = bind(&snap, &restricted).unwrap();
        assert!(paths(&p, p.restricted()).contains(&"ouders[].telefoon".to_owned()));
        assert!(
            !paths(&p, p.allowed())
                .iter()
                .any(|f| f.starts_with("ouders"))
        );
        // A window that ended unreviewed, or none looked up: refused.
        let ended = CaseStatus {
            emergency: Some(WindowState::Ended {
                id: "w-0".into(),
                ends_at: "2026-12-01T00:00:00.000000Z".into(),
            }),
            ..CaseStatus::default()
        };
        assert_eq!(
            bind(&snap, &ended).unwrap_err().code(),
            "emergency-window-ended"
        );
        assert_eq!(
            bind(&snap, &CaseStatus::default()).unwrap_err().code(),
            "emergency-window-ended"
        );
        // With case binding required, an unregistered pupil is refused.
        set.overleggen
            .get_mut("aoj-vo-noorderlicht")
            .unwrap()
            .purposes
            .iter_mut()
            .filter_map(|p| p.emergency.as_mut())
            .for_each(|t| t.case_binding = true);
        let bound = Snapshot::build(set, None).await.unwrap();
        assert_eq!(
            bind(&bound, &unregistered).unwrap_err().code(),
            "not-registered"
        );
        let registered = CaseStatus {
            registration: Some("a-1".into()),
            ..unregistered.clone()
        };
        assert_eq!(bind(&bound, &registered).unwrap().registration(), "a-1");
    }

    /// The precedence between case binding, consent, objection and
    /// restriction, as README's table states it, row by row.
    #[tokio::test]
    async fn precedence_of_consent_objection_and_restriction() {
        use ObjectionState::{Lodged, Rejected, Upheld};
        const BASE: &[&str] = &["leerling.naam", "verzuim.uren"];
        const ALL: &[&str] = &["leerling.naam", "verzuim.uren", "verzuim.toelichting"];
        let row = |name, legal_obligation, consent, objection, restriction, expect, noted| Row {
            name,
            legal_obligation,
            registered: true,
            consent,
            objection,
            restriction,
            expect,
            noted,
        };
        let rows = [
            row(
                "nothing registered but the case",
                false,
                false,
                None,
                Restrict::Nothing,
                Ok(BASE),
                false,
            ),
            row(
                "consent unlocks its fields",
                false,
                true,
                None,
                Restrict::Nothing,
                Ok(ALL),
                false,
            ),
            row(
                "a lodged objection stops a 6.1.e flow",
                false,
                false,
                Some((Lodged, None)),
                Restrict::Nothing,
                Err("objection"),
                false,
            ),
            row(
                "an objection wins over consent",
                false,
                true,
                Some((Lodged, None)),
                Restrict::Nothing,
                Err("objection"),
                false,
            ),
            row(
                "an upheld objection keeps stopping it",
                false,
                true,
                Some((Upheld, None)),
                Restrict::Nothing,
                Err("objection"),
                false,
            ),
            row(
                "a rejected objection does nothing",
                false,
                true,
                Some((Rejected, None)),
                Restrict::Nothing,
                Ok(ALL),
                false,
            ),
            row(
                "an objection for another purpose does not cover it",
                false,
                false,
                Some((Lodged, Some("handhaving"))),
                Restrict::Nothing,
                Ok(BASE),
                false,
            ),
            row(
                "an objection for this purpose covers it",
                false,
                false,
                Some((Lodged, Some("hulp"))),
                Restrict::Nothing,
                Err("objection"),
                false,
            ),
            row(
                "an objection never stops a 6.1.c flow (noted)",
                true,
                false,
                Some((Upheld, None)),
                Restrict::Nothing,
                Ok(ALL),
                true,
            ),
            row(
                "a restriction wins over consent for its fields",
                false,
                true,
                None,
                Restrict::Fields(&["las:verzuim.toelichting"][..]),
                Ok(BASE),
                false,
            ),
            row(
                "a restricted container covers its fields",
                false,
                true,
                None,
                Restrict::Fields(&["las:verzuim"][..]),
                Ok(&["leerling.naam"]),
                false,
            ),
            row(
                "a restriction of everything: nothing left",
                false,
                true,
                None,
                Restrict::Everything,
                Err("restricted"),
                false,
            ),
            row(
                "a restriction applies to a 6.1.c flow as well",
                true,
                false,
                Some((Lodged, None)),
                Restrict::Fields(&["las:verzuim.uren"][..]),
                Ok(&["leerling.naam", "verzuim.toelichting"]),
                true,
            ),
            row(
                "consent still missing where it would help",
                false,
                false,
                None,
                Restrict::Fields(&["las:leerling.naam", "las:verzuim.uren"][..]),
                Err("consent-required"),
                false,
            ),
            row(
                "a restriction of another bron's field changes nothing",
                false,
                false,
                None,
                Restrict::Fields(&["wij-dossier:verzuim.uren"][..]),
                Ok(BASE),
                false,
            ),
            Row {
                registered: false,
                ..row(
                    "no registration: nothing, objection or not",
                    true,
                    true,
                    Some((Lodged, None)),
                    Restrict::Nothing,
                    Err("not-registered"),
                    false,
                )
            },
        ];
        let snap = Fixture::new().snapshot().await;
        for r in rows {
            let ask = if r.legal_obligation {
                Ask {
                    org: "gemeente",
                    role: Some("leerplicht"),
                    purpose: Some("handhaving"),
                    ..WIJ_VERZUIM
                }
            } else {
                WIJ_VERZUIM
            };
            let purpose = ask.purpose.unwrap();
            let mut status = if r.consent {
                registered(&[("c-1", GivenBy::Parents, purpose)])
            } else {
                registered(&[])
            };
            if !r.registered {
                status.registration = None;
            }
            if let Some((state, purpose)) = r.objection {
                status.objections.push(crate::registers::ActiveObjection {
                    id: "b-1".into(),
                    purpose: purpose.map(str::to_owned),
                    state,
                });
                // What the store hands over: only objections that stop.
                status.objections.retain(|o| o.state.stops());
            }
            let fields = match r.restriction {
                Restrict::Nothing => None,
                Restrict::Everything => Some(None),
                Restrict::Fields(f) => Some(Some(f.iter().map(|s| (*s).to_owned()).collect())),
            };
            if let Some(fields) = fields {
                status
                    .restrictions
                    .push(crate::registers::ActiveRestriction {
                        id: "p-1".into(),
                        fields,
                    });
            }
            let got = decide(&snap, &ask).unwrap().bind(&status);
            match (r.expect, got) {
                (Ok(fields), Ok(p)) => {
                    assert_eq!(paths(&p, p.allowed()), fields, "{}", r.name);
                    assert_eq!(
                        !p.objections_not_applied().is_empty(),
                        r.noted,
                        "{}",
                        r.name
                    );
                }
                (Err(code), Err(d)) => assert_eq!(d.code(), code, "{}", r.name),
                (want, got) => panic!(
                    "{}: expected {want:?}, got {:?}",
                    r.name,
                    got.map(|p| paths(&p, p.allowed()))
                ),
            }
        }
    }

    #[test]
    fn the_record_says_why_an_objection_did_not_apply() {
        let g = |basis: &[crate::policy::model::LegalBasis]| Grondslag {
            law: "Leerplichtwet 1969".into(),
            article: "art. 16".into(),
            basis: basis.to_vec(),
        };
        use crate::policy::model::LegalBasis::{
            Consent as ConsentBasis, LegalObligation, PublicTask,
        };
        assert!(
            objection_not_applied_reason(&g(&[LegalObligation, PublicTask]))
                .starts_with("grondslag 6.1.c: wettelijke plicht")
        );
        assert!(
            objection_not_applied_reason(&g(&[ConsentBasis]))
                .starts_with("grondslag 6.1.a: geen 6.1.e of 6.1.f")
        );
    }
}
