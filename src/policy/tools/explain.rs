//! `policy explain`: why one field may or may not flow. The answer comes from
//! the decision path that serves requests: the question becomes a request
//! ([`Snapshot::decide`]) about a resource of the bron that serves the field,
//! bound ([`Tentative::bind`]) to a pupil who is registered, with no consent
//! and then with each kind of consent in turn; the rules, grondslag and
//! consent behind the answer are those the table entry carries. casbin's own
//! `enforce()` on the rows those rules produce is asked as well, as an
//! independent second check.

use serde::Serialize;

use crate::policy::compile::{self, CompileError, Grant, GrantKey};
use crate::policy::decision::{
    DecisionContext, Denial, EmergencyClaim, Permit, RouteRequest, Snapshot, Tentative,
};
use crate::policy::model::{Act, Bron, Consent, Overleg, Resource, Rule};
use crate::policy::template::TemplateSegment;
use crate::registers::emergency::WindowState;
use crate::registers::{ActiveConsent, CaseStatus, GivenBy};

/// The question: may `org` (as `role`) in `overleg`, for `purpose`,
/// receive (or send) `field` of `bron`?
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    pub org: &'a str,
    pub role: Option<&'a str>,
    pub overleg: &'a str,
    pub purpose: &'a str,
    pub bron: &'a str,
    pub field: &'a str,
    pub act: Act,
    /// For a bron a supplier hosts: whose data (X-Bron-Eigenaar).
    pub owner: Option<&'a str>,
    /// For an emergency purpose: the reason code (X-Spoed-Reden); the
    /// question is then asked with a stand-in justification and a window
    /// that may open.
    pub emergency: Option<&'a str>,
}

/// The justification an explained emergency request carries.
const EXPLAIN_JUSTIFICATION: &str = "voorbeeld van een spoedverzoek";

#[derive(Debug, Clone, Serialize)]
pub struct RuleRef {
    pub id: String,
    pub from: String,
    pub to: String,
    pub consent: &'static str,
    pub justification: String,
    pub line: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub allowed: bool,
    /// Consent the least restrictive allowing rule requires.
    pub consent: Option<&'static str>,
    pub role: Option<String>,
    pub grondslag: Option<String>,
    /// Rules that allow the field.
    pub allowing: Vec<RuleRef>,
    /// Rules for this role, purpose and bron that do not include the field.
    pub near_misses: Vec<RuleRef>,
    /// casbin's `enforce()` on the compiled rows, for the consent above
    /// (or "none" when denied): must equal `allowed`.
    pub casbin: bool,
    pub reason: String,
    /// A pupil's case binding and consent, when asked about one pupil
    /// (`allowed` stays the policy's answer; `case.flows` is the final one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case: Option<CaseCheck>,
}

/// What the registers add to a policy answer for one pupil.
#[derive(Debug, Clone, Serialize)]
pub struct CaseCheck {
    /// Id of the pupil's active registration in the overleg, if any.
    pub registration: Option<String>,
    /// Ids of the active consents that satisfy the rule's consent, if needed.
    pub consents: Vec<String>,
    /// Whether the field flows for this pupil now.
    pub flows: bool,
    pub reason: String,
}

impl Explanation {
    /// Adds the pupil's status from the registers, decided as the gateway
    /// would decide a request about this pupil now: the field flows only when
    /// the policy allows it, the pupil is registered in the overleg, and (if
    /// the rule needs consent) a matching consent for the purpose is active.
    #[must_use]
    pub fn with_case(mut self, snap: &Snapshot, q: &Question<'_>, status: &CaseStatus) -> Self {
        let required = self
            .consent
            .and_then(Consent::parse)
            .unwrap_or(Consent::None);
        let (flows, reason) = if self.allowed {
            case_outcome(snap, q, status, required)
        } else {
            (false, "the policy does not allow it".to_owned())
        };
        let consents = match flows {
            true => status
                .consent_for(q.purpose, required)
                .map(|ids| ids.into_iter().map(str::to_owned).collect())
                .unwrap_or_default(),
            false => Vec::new(),
        };
        self.case = Some(CaseCheck {
            registration: status.registration.clone(),
            consents,
            flows,
            reason,
        });
        self
    }
}

/// Whether the field flows for a pupil with `status`, and why.
fn case_outcome(
    snap: &Snapshot,
    q: &Question<'_>,
    status: &CaseStatus,
    required: Consent,
) -> (bool, String) {
    let route = Route::for_question(snap, q);
    let (Some(field), true) = (route.field, route.served) else {
        return (false, Route::unserved_reason(q));
    };
    let no_consent = || {
        format!(
            "registered, but no active consent ({}) for purpose `{}`",
            required.as_str(),
            q.purpose
        )
    };
    match route.decide(snap, q).and_then(|t| t.bind(status)) {
        Ok(p) if p.allowed().contains(field) => match status.consent_for(q.purpose, required) {
            Some(ids) if ids.is_empty() => (true, "registered; no consent needed".to_owned()),
            Some(ids) => (
                true,
                format!("registered, with active consent {}", ids.join(" + ")),
            ),
            None => (true, "registered, with active consent".to_owned()),
        },
        Ok(_) | Err(Denial::ConsentRequired { .. }) => (false, no_consent()),
        Err(Denial::NotRegistered { .. }) => (
            false,
            format!(
                "the pupil is not registered (aangemeld) in `{}`, or the registration has ended",
                q.overleg
            ),
        ),
        Err(d) => (false, d.to_string()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error(transparent)]
    Compile(#[from] CompileError),
}

/// Answers `q` from the decision table `snap` serves requests with.
pub async fn explain(snap: &Snapshot, q: &Question<'_>) -> Result<Explanation, ExplainError> {
    let route = Route::for_question(snap, q);
    let mut ctx = DecisionContext::default();
    let decided = route.decide_with(snap, q, &mut ctx);
    // Refusals before the bron's catalogue is reached say all there is.
    if let Err(d) = &decided
        && refused_before_the_table(d)
    {
        // The role is named only when the purpose was what failed.
        let role = ctx
            .role
            .filter(|_| matches!(d, Denial::UnknownPurpose { .. }));
        return Ok(denied(role, d.to_string()));
    }
    let (Some(overleg), Some(bron), Some(field), Some(role)) = (
        snap.set.overleggen.get(q.overleg),
        snap.set.bronnen.get(q.bron),
        route.field,
        ctx.role.clone(),
    ) else {
        let reason = format!(
            "`{}` is not in the catalogue of bron `{}`: undeclared fields are always withheld",
            q.field, q.bron
        );
        return Ok(denied(None, reason));
    };
    // The owner the decision chose (a hosted bron), or the bron's only one.
    let owner = ctx
        .owner
        .clone()
        .or_else(|| bron.owners.first().cloned())
        .unwrap_or_default();
    let key = GrantKey {
        org: q.org.to_owned(),
        role,
        overleg: overleg.id.clone(),
        purpose: q.purpose.to_owned(),
        bron: bron.id.clone(),
        owner,
        act: q.act,
    };
    let entry = snap.table.get(&key).map(|g| &**g);
    let consent = match route.served {
        true => least_consent_that_flows(&route, snap, q, field),
        false => entry.and_then(|g| g.fields.get(field)?.as_ref().map(|f| f.consent)),
    };
    let why = Why::of(overleg, entry, field, consent.is_some());
    let casbin = casbin_agrees(snap, overleg, &key, q.field, consent).await?;
    let mut reason = why.reason(&key, bron, field, consent);
    if consent.is_some() && !route.served {
        reason = format!("{reason}; but {}", Route::unserved_reason(q));
    }
    Ok(Explanation {
        allowed: consent.is_some(),
        consent: consent.map(Consent::as_str),
        grondslag: ctx.grondslag,
        role: Some(key.role),
        allowing: why.allowing,
        near_misses: why.near_misses,
        casbin,
        reason,
        case: None,
    })
}

/// Whether `d` comes from a step before the bron's catalogue and the table:
/// the overleg, the organisation's role, the purpose or the bron itself.
fn refused_before_the_table(d: &Denial) -> bool {
    matches!(
        d,
        Denial::UnknownOverleg(_)
            | Denial::NotAParticipant { .. }
            | Denial::RoleRequired { .. }
            | Denial::RoleNotHeld { .. }
            | Denial::PurposeRequired { .. }
            | Denial::UnknownPurpose { .. }
            | Denial::UnknownBron(_)
            | Denial::OwnerRequired { .. }
            | Denial::OwnerUnknown { .. }
            | Denial::OwnerNotHosted { .. }
            | Denial::NoHostMandate { .. }
            | Denial::EmergencyNotApplicable { .. }
            | Denial::EmergencyReasonRequired { .. }
            | Denial::EmergencyReasonUnknown
            | Denial::EmergencyReasonNotAllowed { .. }
            | Denial::EmergencyJustification(_)
    )
}

fn denied(role: Option<String>, reason: String) -> Explanation {
    Explanation {
        allowed: false,
        consent: None,
        role,
        grondslag: None,
        allowing: Vec::new(),
        near_misses: Vec::new(),
        casbin: false,
        reason,
        case: None,
    }
}

/// The consents a question is asked with, least restrictive first: a pupil
/// who is registered with none, then with only the parents', only the
/// youth's, and both.
const PROBES: [(Consent, Option<GivenBy>); 4] = [
    (Consent::None, None),
    (Consent::Parents, Some(GivenBy::Parents)),
    (Consent::Youth, Some(GivenBy::Youth)),
    (Consent::ParentsAndYouth, Some(GivenBy::ParentsAndYouth)),
];

/// The least consent with which the serving path lets `field` flow (`None`
/// when no consent does): a registered pupil with each probe in turn.
fn least_consent_that_flows(
    route: &Route,
    snap: &Snapshot,
    q: &Question<'_>,
    field: usize,
) -> Option<Consent> {
    PROBES.iter().find_map(|(consent, given)| {
        let status = CaseStatus {
            registration: Some("explain".to_owned()),
            consents: given
                .map(|given_by| ActiveConsent {
                    id: "explain".to_owned(),
                    given_by,
                    purposes: vec![q.purpose.to_owned()],
                })
                .into_iter()
                .collect(),
            emergency: q.emergency.map(|_| stand_in_window()),
            ..CaseStatus::default()
        };
        let permit: Permit = route.decide(snap, q).and_then(|t| t.bind(&status)).ok()?;
        permit.allowed().contains(field).then_some(*consent)
    })
}

/// The window an explained emergency request finds: one that may open.
fn stand_in_window() -> WindowState {
    WindowState::Opens {
        id: "explain".to_owned(),
        ends_at: String::new(),
    }
}

/// casbin's `enforce()` on exactly the rows the compiler produces for the
/// role, with the consent found (`none` when the field does not flow).
async fn casbin_agrees(
    snap: &Snapshot,
    overleg: &Overleg,
    key: &GrantKey,
    field: &str,
    consent: Option<Consent>,
) -> Result<bool, ExplainError> {
    let rows = compile::p_rows(&snap.set, overleg)
        .remove(&key.role)
        .unwrap_or_default();
    let e = compile::enforcer(&overleg.id, rows, compile::g_rows(overleg, &key.role)).await?;
    let consent = consent.unwrap_or(Consent::None);
    Ok(compile::enforce(&e, &overleg.id, key, field, consent)?)
}

/// The request a question becomes: a resource of the bron that serves the
/// field for this method, its path with a stand-in for each variable.
struct Route {
    segments: Vec<String>,
    /// Catalogue index of the field, when the bron declares it.
    field: Option<usize>,
    /// Whether the resource serves the field (otherwise no resource of the
    /// bron serves it for this method, and a request carries it nowhere).
    served: bool,
}

impl Route {
    fn for_question(snap: &Snapshot, q: &Question<'_>) -> Self {
        let Some(bron) = snap.set.bronnen.get(q.bron) else {
            return Route {
                segments: Vec::new(),
                field: None,
                served: false,
            };
        };
        let field = bron.field_index(q.field);
        let accepts = |r: &Resource| match q.act {
            Act::Read => r.read,
            Act::Write => r.write,
        };
        // Only a resource a request actually reaches: the first whose
        // template matches its own path.
        let reachable: Vec<(&Resource, Vec<String>)> = bron
            .resources
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let segments = stand_in_path(r);
                (first_match(bron, &segments) == Some(i)).then_some((r, segments))
            })
            .collect();
        let serving = reachable
            .iter()
            .find(|(r, _)| accepts(r) && field.is_some_and(|f| r.fields.contains(&f)));
        if let Some((_, segments)) = serving {
            return Route {
                segments: segments.clone(),
                field,
                served: true,
            };
        }
        // No resource serves it: the request still goes as far as it can
        // (a resource that accepts the method, or any), for the refusals
        // before the field.
        let nearest = reachable
            .iter()
            .find(|(r, _)| accepts(r))
            .or(reachable.first());
        Route {
            segments: nearest.map(|(_, s)| s.clone()).unwrap_or_default(),
            field,
            served: false,
        }
    }

    fn decide(&self, snap: &Snapshot, q: &Question<'_>) -> Result<Tentative, Denial> {
        self.decide_with(snap, q, &mut DecisionContext::default())
    }

    fn decide_with(
        &self,
        snap: &Snapshot,
        q: &Question<'_>,
        ctx: &mut DecisionContext,
    ) -> Result<Tentative, Denial> {
        let segments: Vec<&str> = self.segments.iter().map(String::as_str).collect();
        let req = RouteRequest {
            overleg: q.overleg,
            bron: q.bron,
            segments: &segments,
            act: q.act,
            purpose: Some(q.purpose),
            role: q.role,
            owner: q.owner,
            now: crate::policy::mandate::now(),
            emergency: q.emergency.map(|reason| EmergencyClaim {
                reason: Some(reason),
                justification: Some(EXPLAIN_JUSTIFICATION),
            }),
        };
        snap.decide(q.org, &req, ctx)
    }

    fn unserved_reason(q: &Question<'_>) -> String {
        format!(
            "no resource of bron `{}` that accepts {} serves `{}`, so no request carries it",
            q.bron,
            match q.act {
                Act::Read => "reads (GET)",
                Act::Write => "writes (POST, PUT)",
            },
            q.field
        )
    }
}

/// A path for resource `r` with a stand-in value for every variable.
fn stand_in_path(r: &Resource) -> Vec<String> {
    r.template
        .segments()
        .iter()
        .map(|s| match s {
            TemplateSegment::Literal(l) => l.clone(),
            TemplateSegment::Variable(_) => "explain".to_owned(),
        })
        .collect()
}

/// Index of the resource a request for `segments` reaches.
fn first_match(bron: &Bron, segments: &[String]) -> Option<usize> {
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    bron.resources
        .iter()
        .position(|r| r.template.matches(&segments).is_some())
}

/// The rules behind an answer, from the rule ids the table entry carries.
struct Why {
    /// Rules that allow the field.
    allowing: Vec<RuleRef>,
    /// The entry's other rules: they cover the flow, not the field.
    near_misses: Vec<RuleRef>,
}

impl Why {
    fn of(overleg: &Overleg, entry: Option<&Grant>, field: usize, allowed: bool) -> Self {
        let rule = |id: &str| overleg.rules.iter().find(|r| r.id == id).map(rule_ref);
        let allowing_ids: Vec<&str> = match (allowed, entry) {
            (true, Some(g)) => g
                .fields
                .get(field)
                .and_then(|f| f.as_ref())
                .map(|f| f.rules.iter().map(|r| &**r).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let in_entry = |id: &str| {
            entry.is_some_and(|g| {
                g.fields
                    .iter()
                    .flatten()
                    .any(|f| f.rules.iter().any(|r| &**r == id))
            })
        };
        let near_misses = overleg
            .rules
            .iter()
            .filter(|r| in_entry(&r.id) && !allowing_ids.contains(&r.id.as_str()))
            .map(rule_ref)
            .collect();
        Why {
            allowing: allowing_ids.into_iter().filter_map(rule).collect(),
            near_misses,
        }
    }

    fn reason(
        &self,
        key: &GrantKey,
        bron: &Bron,
        field: usize,
        consent: Option<Consent>,
    ) -> String {
        let ids = |rules: &[RuleRef]| {
            rules
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let f = &bron.catalogue[field];
        match consent {
            Some(Consent::None) => format!(
                "allowed by {} ({} `{}`, category {})",
                ids(&self.allowing),
                f.label,
                f.path,
                f.category.as_str()
            ),
            Some(c) => format!(
                "allowed only with consent ({}) by {}: it flows only while a matching consent is active in the consent register",
                c.as_str(),
                ids(&self.allowing)
            ),
            None if self.near_misses.is_empty() => Denial::NoRule {
                overleg: key.overleg.clone(),
                role: key.role.clone(),
                purpose: key.purpose.clone(),
                bron: key.bron.clone(),
                act: key.act,
            }
            .to_string(),
            None => format!(
                "rules {} cover this role, purpose and bron, but not `{}`",
                ids(&self.near_misses),
                f.path
            ),
        }
    }
}

fn rule_ref(r: &Rule) -> RuleRef {
    RuleRef {
        id: r.id.clone(),
        from: r.from.clone(),
        to: r.to.clone(),
        consent: r.consent.as_str(),
        justification: r.justification.clone(),
        line: r.line,
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

    const WIJ: Question<'static> = Question {
        org: "wij",
        role: None,
        overleg: "team",
        purpose: "hulp",
        bron: "las",
        field: "verzuim.uren",
        act: Act::Read,
        owner: None,
        emergency: None,
    };

    fn ids(rules: &[RuleRef]) -> Vec<&str> {
        rules.iter().map(|r| r.id.as_str()).collect()
    }

    #[tokio::test]
    async fn answers_with_rules_grondslag_and_consent() {
        let snap = Fixture::new().snapshot().await;
        let gemeente = Question {
            org: "gemeente",
            purpose: "handhaving",
            ..WIJ
        };
        // (question, consent or deny, allowing, near misses, role, reason)
        type Row<'a> = (
            Question<'a>,
            Option<&'a str>,
            &'a [&'a str],
            &'a [&'a str],
            Option<&'a str>,
            &'a str,
        );
        let cases: [Row<'_>; 12] = [
            (
                WIJ,
                Some("none"),
                &["t-01"],
                &["t-02"],
                Some("jeugd"),
                "allowed by t-01 (Uren verzuim `verzuim.uren`, category normal)",
            ),
            (
                Question {
                    field: "verzuim.toelichting",
                    ..WIJ
                },
                Some("parents"),
                &["t-02"],
                &["t-01"],
                Some("jeugd"),
                "allowed only with consent (parents) by t-02",
            ),
            (
                Question {
                    field: "leerling.bsn",
                    ..WIJ
                },
                None,
                &[],
                &["t-01", "t-02"],
                Some("jeugd"),
                "rules t-01, t-02 cover this role, purpose and bron, but not `leerling.bsn`",
            ),
            (
                Question {
                    purpose: "handhaving",
                    ..WIJ
                },
                None,
                &[],
                &[],
                Some("jeugd"),
                "no rule of `team` lets role `jeugd` receive data from bron `las` for purpose `handhaving`",
            ),
            (
                Question {
                    org: "ggd",
                    field: "zorg.diagnose",
                    ..WIJ
                },
                Some("parents-and-youth"),
                &["t-03"],
                &[],
                Some("jgz"),
                "(parents-and-youth) by t-03",
            ),
            (
                Question {
                    field: "notities.tekst",
                    act: Act::Write,
                    ..WIJ
                },
                Some("none"),
                &["t-05"],
                &[],
                Some("jeugd"),
                "allowed by t-05",
            ),
            (
                Question {
                    role: Some("leerplicht"),
                    field: "leerling.bsn",
                    ..gemeente
                },
                Some("none"),
                &["t-04"],
                &[],
                Some("leerplicht"),
                "allowed by t-04",
            ),
            (
                Question {
                    role: Some("rmc"),
                    field: "leerling.bsn",
                    ..gemeente
                },
                None,
                &[],
                &["t-06"],
                Some("rmc"),
                "rules t-06 cover",
            ),
            (
                gemeente,
                None,
                &[],
                &[],
                None,
                "several roles in `team` (leerplicht, rmc)",
            ),
            (
                Question {
                    org: "buiten",
                    ..WIJ
                },
                None,
                &[],
                &[],
                None,
                "holds no role",
            ),
            (
                Question {
                    purpose: "x",
                    ..WIJ
                },
                None,
                &[],
                &[],
                Some("jeugd"),
                "`x` is not a purpose",
            ),
            (
                Question {
                    field: "verzuim.x",
                    ..WIJ
                },
                None,
                &[],
                &[],
                None,
                "`verzuim.x` is not in the catalogue of bron `las`",
            ),
        ];
        for (q, consent, allowing, near, role, says) in cases {
            let e = explain(&snap, &q).await.unwrap();
            let what = format!("{} {} {}: {}", q.org, q.purpose, q.field, e.reason);
            assert_eq!(e.allowed, consent.is_some(), "{what}");
            assert_eq!(e.consent, consent, "{what}");
            assert_eq!(e.casbin, e.allowed, "{what}");
            assert_eq!(ids(&e.allowing), allowing, "{what}");
            assert_eq!(ids(&e.near_misses), near, "{what}");
            assert_eq!(e.role.as_deref(), role, "{what}");
            assert!(e.reason.contains(says), "{what}");
            // The grondslag is named when the question reached the table.
            assert_eq!(
                e.grondslag.is_some(),
                role.is_some() && q.purpose != "x" && q.field != "verzuim.x",
                "{what}"
            );
        }
    }

    #[tokio::test]
    async fn for_one_pupil_the_registers_decide() {
        use GivenBy::{Parents, Youth};
        let snap = Fixture::new().snapshot().await;
        let toelichting = Question {
            field: "verzuim.toelichting",
            ..WIJ
        };
        let status = |registered: bool, consents: &[(&str, GivenBy)]| CaseStatus {
            registration: registered.then(|| "a-1".to_owned()),
            consents: consents
                .iter()
                .map(|(id, given_by)| ActiveConsent {
                    id: (*id).to_owned(),
                    given_by: *given_by,
                    purposes: vec!["hulp".to_owned()],
                })
                .collect(),
            ..CaseStatus::default()
        };
        let cases = [
            (
                WIJ,
                status(true, &[]),
                true,
                "registered; no consent needed",
                vec![],
            ),
            (
                WIJ,
                status(false, &[]),
                false,
                "not registered (aangemeld) in `team`",
                vec![],
            ),
            (
                toelichting,
                status(true, &[("c-1", Parents)]),
                true,
                "registered, with active consent c-1",
                vec!["c-1"],
            ),
            (
                toelichting,
                status(true, &[("c-2", Youth)]),
                false,
                "registered, but no active consent (parents) for purpose `hulp`",
                vec![],
            ),
            (
                toelichting,
                status(false, &[("c-1", Parents)]),
                false,
                "not registered",
                vec![],
            ),
            (
                Question {
                    field: "leerling.bsn",
                    ..WIJ
                },
                status(true, &[]),
                false,
                "the policy does not allow it",
                vec![],
            ),
            // Every field of the zorg resource needs consent.
            (
                Question {
                    org: "ggd",
                    field: "zorg.diagnose",
                    ..WIJ
                },
                status(true, &[("c-1", Parents)]),
                false,
                "no active consent (parents-and-youth)",
                vec![],
            ),
        ];
        for (q, status, flows, says, consents) in cases {
            let e = explain(&snap, &q)
                .await
                .unwrap()
                .with_case(&snap, &q, &status);
            let case = e.case.unwrap();
            assert_eq!(case.flows, flows, "{}: {}", q.field, case.reason);
            assert!(case.reason.contains(says), "{}: {}", q.field, case.reason);
            assert_eq!(case.consents, consents);
            assert_eq!(case.registration, status.registration);
        }
    }

    /// A rule can allow a field that no resource serves for the method (or
    /// only one that an earlier template hides): the table allows it, and
    /// explain says that no request carries it.
    #[tokio::test]
    async fn a_field_no_resource_serves_is_named_as_such() {
        let rule = "\n[[rules]]\nid = \"t-07\"\npurpose = \"hulp\"\nfrom = \"jeugd\"\nto = \"school\"\nbron = \"las\"\nfields = [\"leerling.naam\"]\nconsent = \"none\"\njustification = \"Schrijven.\"\n";
        let snap = Fixture::new()
            .append("overleggen/team.toml", rule)
            .snapshot()
            .await;
        let q = Question {
            field: "leerling.naam",
            act: Act::Write,
            ..WIJ
        };
        let e = explain(&snap, &q).await.unwrap();
        assert!(e.allowed && e.casbin);
        assert!(
            e.reason.ends_with("but no resource of bron `las` that accepts writes (POST, PUT) serves `leerling.naam`, so no request carries it"),
            "{}",
            e.reason
        );
        let registered = CaseStatus {
            registration: Some("a-1".into()),
            ..CaseStatus::default()
        };
        let case = e.with_case(&snap, &q, &registered).case.unwrap();
        assert!(
            !case.flows && case.reason.starts_with("no resource"),
            "{}",
            case.reason
        );

        // An earlier catch-all template hides the verzuim resource, and the
        // dossier serves only the name: the hours reach no request.
        let catch_all = "[[resources]]\nid = \"deel\"\npath = \"/leerlingen/{leerling}/{deel}\"\nmethods = [\"GET\"]\nfields = [\"leerling.naam\"]\n\n[[resources]]\nid = \"verzuim\"";
        let snap = Fixture::new()
            .edit(
                "bronnen/las.toml",
                "[[resources]]\nid = \"verzuim\"",
                catch_all,
            )
            .edit(
                "bronnen/las.toml",
                "methods = [\"GET\"]\n\n[[resources]]\nid = \"deel\"",
                "methods = [\"GET\"]\nfields = [\"leerling.naam\"]\n\n[[resources]]\nid = \"deel\"",
            )
            .snapshot()
            .await;
        let e = explain(&snap, &WIJ).await.unwrap();
        assert!(
            e.reason.contains(
                "no resource of bron `las` that accepts reads (GET) serves `verzuim.uren`"
            ),
            "{}",
            e.reason
        );
        let e = explain(
            &snap,
            &Question {
                field: "leerling.naam",
                ..WIJ
            },
        )
        .await
        .unwrap();
        assert_eq!(
            e.reason,
            "allowed by t-01 (Naam `leerling.naam`, category normal)"
        );
    }
}
