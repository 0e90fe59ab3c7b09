//! What the registers hold and hand out: registrations, consents, a
//! pupil's case status as a decision sees it, and their errors. The JSON
//! shape (the register API's wire format) is Dutch; the code is English.

use serde::{Deserialize, Serialize};

use crate::audit::{AuditError, StoreError};
use crate::policy::model::Consent;

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("{0}")]
    Invalid(String),
    #[error("casusoverleg `{0}` does not exist")]
    UnknownOverleg(String),
    #[error("organisation `{org}` holds no role in casusoverleg `{overleg}` that may {what}")]
    NotAllowed {
        org: String,
        overleg: String,
        /// What it may not do, e.g. `register cases or consent`.
        what: &'static str,
    },
    #[error("organisation `{org}` holds several roles in `{overleg}` that may do this ({}); say which one in X-Rol", roles.join(", "))]
    RoleRequired {
        org: String,
        overleg: String,
        roles: Vec<String>,
    },
    #[error("no such {0} for this pupil in this casusoverleg")]
    NotFound(&'static str),
    #[error("this {0} has already ended or been withdrawn")]
    Closed(&'static str),
    #[error("this objection has already been decided ({0}); a decision is final")]
    AlreadyDecided(&'static str),
    #[error("{0} was already recorded for this registration")]
    AlreadyRecorded(&'static str),
    #[error("the request's deadline passed before the change was made")]
    Timeout,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl From<sqlx::Error> for RegisterError {
    fn from(e: sqlx::Error) -> Self {
        RegisterError::Store(StoreError::from(e))
    }
}

impl RegisterError {
    /// Stable machine-readable reason (audit records, problem types).
    pub fn code(&self) -> &'static str {
        match self {
            RegisterError::Invalid(_) => "invalid-register-request",
            RegisterError::UnknownOverleg(_) => "unknown-overleg",
            RegisterError::NotAllowed { .. } => "may-not-register",
            RegisterError::RoleRequired { .. } => "role-required",
            RegisterError::NotFound(_) => "register-entry-not-found",
            RegisterError::Closed(_)
            | RegisterError::AlreadyDecided(_)
            | RegisterError::AlreadyRecorded(_) => "register-entry-closed",
            RegisterError::Timeout => "request-timeout",
            RegisterError::Store(_) | RegisterError::Audit(_) => "register-unavailable",
        }
    }
}

/// Who gave consent. The policy's `consent` says whose consent a rule
/// needs (the covenant's age rule: parents below 12, both from 12 to 15,
/// the youth from 16); a consent satisfies a rule when it covers that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GivenBy {
    Parents,
    Youth,
    ParentsAndYouth,
}

impl GivenBy {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "parents" => Self::Parents,
            "youth" => Self::Youth,
            "parents-and-youth" => Self::ParentsAndYouth,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Parents => "parents",
            Self::Youth => "youth",
            Self::ParentsAndYouth => "parents-and-youth",
        }
    }
}

/// Who makes a change: an organisation in one of its roles ("hats").
#[derive(Debug, Clone)]
pub struct Actor {
    pub org: String,
    pub role: String,
    pub grondslag: String,
}

/// Where a change came from, for its audit record: the register API passes
/// its request and trace ids and the certificate fingerprint; the CLI none.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
    pub cert_fingerprint: Option<String>,
    /// The software supplier the change came through, under a mandate.
    pub supplier: Option<String>,
}

/// One active consent, as a decision sees it.
#[derive(Debug, Clone)]
pub struct ActiveConsent {
    pub id: String,
    pub given_by: GivenBy,
    pub purposes: Vec<String>,
}

/// The state of an objection (bezwaar, AVG art. 21): lodged, then upheld
/// or rejected once. Dutch on the wire, English in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectionState {
    #[serde(rename = "ingediend")]
    Lodged,
    #[serde(rename = "toegewezen")]
    Upheld,
    #[serde(rename = "afgewezen")]
    Rejected,
}

impl ObjectionState {
    /// The value in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lodged => "lodged",
            Self::Upheld => "upheld",
            Self::Rejected => "rejected",
        }
    }
    /// From the store's value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "lodged" => Self::Lodged,
            "upheld" => Self::Upheld,
            "rejected" => Self::Rejected,
            _ => return None,
        })
    }
    /// The value on the wire.
    pub fn dutch(self) -> &'static str {
        match self {
            Self::Lodged => "ingediend",
            Self::Upheld => "toegewezen",
            Self::Rejected => "afgewezen",
        }
    }
    /// Whether the objection stops processing it covers (lodged: while it
    /// is weighed; upheld: for good).
    pub fn stops(self) -> bool {
        matches!(self, Self::Lodged | Self::Upheld)
    }
}

/// Why data is restricted (AVG art. 18(1) a-d). Dutch on the wire and in
/// the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestrictionReason {
    /// (a) the accuracy is contested, while it is verified.
    JuistheidBetwist,
    /// (b) the processing is unlawful and the pupil wants restriction.
    OnrechtmatigeVerwerking,
    /// (c) needed for a legal claim.
    Rechtsvordering,
    /// (d) an objection is being weighed.
    BezwaarInBehandeling,
}

impl RestrictionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::JuistheidBetwist => "juistheid-betwist",
            Self::OnrechtmatigeVerwerking => "onrechtmatige-verwerking",
            Self::Rechtsvordering => "rechtsvordering",
            Self::BezwaarInBehandeling => "bezwaar-in-behandeling",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "juistheid-betwist" => Self::JuistheidBetwist,
            "onrechtmatige-verwerking" => Self::OnrechtmatigeVerwerking,
            "rechtsvordering" => Self::Rechtsvordering,
            "bezwaar-in-behandeling" => Self::BezwaarInBehandeling,
            _ => return None,
        })
    }
}

/// One objection that stops processing (lodged or upheld), as a decision
/// sees it.
#[derive(Debug, Clone)]
pub struct ActiveObjection {
    pub id: String,
    /// The one purpose it is against; `None`: every purpose of the overleg.
    pub purpose: Option<String>,
    pub state: ObjectionState,
}

impl ActiveObjection {
    /// Whether it covers a request for `purpose`.
    pub fn covers(&self, purpose: &str) -> bool {
        self.purpose.as_deref().is_none_or(|p| p == purpose)
    }
}

/// One active restriction, as a decision sees it.
#[derive(Debug, Clone)]
pub struct ActiveRestriction {
    pub id: String,
    /// `bron:field.path` entries (a path covers the fields under it);
    /// `None`: every field.
    pub fields: Option<Vec<String>>,
}

/// What the registers say about one pupil in one casusoverleg, now.
#[derive(Debug, Clone, Default)]
pub struct CaseStatus {
    /// Id of an active registration, if any.
    pub registration: Option<String>,
    pub consents: Vec<ActiveConsent>,
    /// Objections that stop processing (lodged or upheld).
    pub objections: Vec<ActiveObjection>,
    /// Restrictions in force.
    pub restrictions: Vec<ActiveRestriction>,
    /// For an emergency request: the window of the receiving organisation
    /// for this pupil (see [`super::emergency`]).
    pub emergency: Option<super::emergency::WindowState>,
}

impl CaseStatus {
    /// Ids of the active consents that together satisfy `required` for
    /// `purpose`, or `None` when they do not. `Consent::None` needs none.
    pub fn consent_for(&self, purpose: &str, required: Consent) -> Option<Vec<&str>> {
        let by = |g: GivenBy| {
            self.consents
                .iter()
                .find(|c| c.given_by == g && c.purposes.iter().any(|p| p == purpose))
                .map(|c| c.id.as_str())
        };
        let both = by(GivenBy::ParentsAndYouth);
        match required {
            Consent::None => Some(Vec::new()),
            Consent::Parents => by(GivenBy::Parents).or(both).map(|id| vec![id]),
            Consent::Youth => by(GivenBy::Youth).or(both).map(|id| vec![id]),
            Consent::ParentsAndYouth => match both {
                Some(id) => Some(vec![id]),
                None => Some(vec![by(GivenBy::Parents)?, by(GivenBy::Youth)?]),
            },
        }
    }
}

/// A registration (aanmelding) as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Registration {
    pub id: String,
    pub overleg: String,
    #[serde(rename = "referentie")]
    pub reference: String,
    pub begin: String,
    #[serde(rename = "einde")]
    pub end: Option<String>,
    #[serde(rename = "aangemeld_door")]
    pub registered_by: String,
    #[serde(rename = "rol")]
    pub role: String,
    #[serde(rename = "aangemeld_op")]
    pub registered_at: String,
    #[serde(rename = "beeindigd_op")]
    pub ended_at: Option<String>,
    #[serde(rename = "beeindigd_door")]
    pub ended_by: Option<String>,
    /// When the pupil and parents were informed (AVG art. 13/14).
    #[serde(rename = "geinformeerd_op")]
    pub informed_at: Option<String>,
    /// How (letter, conversation, reference to the privacy statement).
    #[serde(rename = "geinformeerd_hoe")]
    pub informed_how: Option<String>,
    #[serde(rename = "actief")]
    pub active: bool,
}

/// A consent (toestemming) as stored.
#[derive(Debug, Clone, Serialize)]
pub struct ConsentEntry {
    pub id: String,
    pub overleg: String,
    #[serde(rename = "gegeven_door")]
    pub given_by: GivenBy,
    #[serde(rename = "doelen")]
    pub purposes: Vec<String>,
    #[serde(rename = "geldig_van")]
    pub valid_from: String,
    #[serde(rename = "geldig_tot")]
    pub valid_until: Option<String>,
    #[serde(rename = "formulier")]
    pub form: String,
    #[serde(rename = "vastgelegd_door")]
    pub recorded_by: String,
    #[serde(rename = "rol")]
    pub role: String,
    #[serde(rename = "vastgelegd_op")]
    pub recorded_at: String,
    #[serde(rename = "ingetrokken_op")]
    pub withdrawn_at: Option<String>,
    #[serde(rename = "ingetrokken_door")]
    pub withdrawn_by: Option<String>,
    #[serde(rename = "intrekking_referentie")]
    pub withdrawal_reference: Option<String>,
    #[serde(rename = "actief")]
    pub active: bool,
}

/// An objection (bezwaar) as stored.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectionEntry {
    pub id: String,
    pub overleg: String,
    /// The one purpose it is against; absent: every purpose.
    #[serde(rename = "doel")]
    pub purpose: Option<String>,
    #[serde(rename = "status")]
    pub state: ObjectionState,
    #[serde(rename = "referentie")]
    pub reference: String,
    #[serde(rename = "ingediend_op")]
    pub lodged_at: String,
    #[serde(rename = "vastgelegd_door")]
    pub recorded_by: String,
    #[serde(rename = "rol")]
    pub role: String,
    #[serde(rename = "besloten_op")]
    pub decided_at: Option<String>,
    #[serde(rename = "besloten_door")]
    pub decided_by: Option<String>,
    #[serde(rename = "besluit_referentie")]
    pub decision_reference: Option<String>,
    /// Whether it stops processing (lodged or upheld).
    #[serde(rename = "actief")]
    pub active: bool,
}

/// A restriction (beperking) as stored.
#[derive(Debug, Clone, Serialize)]
pub struct RestrictionEntry {
    pub id: String,
    pub overleg: String,
    /// `bron:field.path` entries; absent: every field.
    #[serde(rename = "velden")]
    pub fields: Option<Vec<String>>,
    #[serde(rename = "reden")]
    pub reason: RestrictionReason,
    #[serde(rename = "referentie")]
    pub reference: String,
    pub begin: String,
    #[serde(rename = "einde")]
    pub end: Option<String>,
    #[serde(rename = "vastgelegd_door")]
    pub recorded_by: String,
    #[serde(rename = "rol")]
    pub role: String,
    #[serde(rename = "vastgelegd_op")]
    pub recorded_at: String,
    #[serde(rename = "opgeheven_op")]
    pub lifted_at: Option<String>,
    #[serde(rename = "opgeheven_door")]
    pub lifted_by: Option<String>,
    #[serde(rename = "opheffing_referentie")]
    pub lift_reference: Option<String>,
    #[serde(rename = "actief")]
    pub active: bool,
}

/// Everything the registers hold about one pupil (optionally in one overleg).
#[derive(Debug, Clone, Default, Serialize)]
pub struct History {
    #[serde(rename = "aanmeldingen")]
    pub registrations: Vec<Registration>,
    #[serde(rename = "toestemmingen")]
    pub consents: Vec<ConsentEntry>,
    #[serde(rename = "bezwaren")]
    pub objections: Vec<ObjectionEntry>,
    #[serde(rename = "beperkingen")]
    pub restrictions: Vec<RestrictionEntry>,
}

/// A new registration, validated. Its `Debug` does not print the pupil.
#[derive(Clone)]
pub struct NewRegistration {
    pub pupil: String,
    pub reference: String,
    pub begins_at: Option<String>,
    pub ends_at: Option<String>,
    /// When and how the pupil and parents were informed, if already.
    pub informed_at: Option<String>,
    pub informed_how: Option<String>,
}

impl std::fmt::Debug for NewRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewRegistration")
            .field("pupil", &"(redacted)")
            .field("reference", &self.reference)
            .field("begins_at", &self.begins_at)
            .field("ends_at", &self.ends_at)
            .field("informed_at", &self.informed_at)
            .field("informed_how", &self.informed_how)
            .finish()
    }
}

/// A new consent, validated against the overleg's purposes on use. Its
/// `Debug` does not print the pupil.
#[derive(Clone)]
pub struct NewConsent {
    pub pupil: String,
    pub given_by: GivenBy,
    pub purposes: Vec<String>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    pub form_reference: String,
}

impl std::fmt::Debug for NewConsent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewConsent")
            .field("pupil", &"(redacted)")
            .field("given_by", &self.given_by)
            .field("purposes", &self.purposes)
            .field("valid_from", &self.valid_from)
            .field("valid_until", &self.valid_until)
            .field("form_reference", &self.form_reference)
            .finish()
    }
}

/// A new objection, validated against the overleg's purposes on use. Its
/// `Debug` does not print the pupil.
#[derive(Clone)]
pub struct NewObjection {
    pub pupil: String,
    pub purpose: Option<String>,
    pub reference: String,
    /// When it was lodged (default: now).
    pub lodged_at: Option<String>,
    /// Against every casusoverleg, not only the one it is recorded in
    /// (stored with overleg `*`; no purpose then).
    pub all_overleggen: bool,
}

impl std::fmt::Debug for NewObjection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewObjection")
            .field("pupil", &"(redacted)")
            .field("purpose", &self.purpose)
            .field("reference", &self.reference)
            .field("lodged_at", &self.lodged_at)
            .field("all_overleggen", &self.all_overleggen)
            .finish()
    }
}

/// A new restriction, validated against the overleg's bronnen on use. Its
/// `Debug` does not print the pupil.
#[derive(Clone)]
pub struct NewRestriction {
    pub pupil: String,
    /// Field paths (`path` or `bron:path`); `None`: every field.
    pub fields: Option<Vec<String>>,
    pub reason: RestrictionReason,
    pub reference: String,
    pub begins_at: Option<String>,
    pub ends_at: Option<String>,
}

impl std::fmt::Debug for NewRestriction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewRestriction")
            .field("pupil", &"(redacted)")
            .field("fields", &self.fields)
            .field("reason", &self.reason)
            .field("reference", &self.reference)
            .field("begins_at", &self.begins_at)
            .field("ends_at", &self.ends_at)
            .finish()
    }
}
