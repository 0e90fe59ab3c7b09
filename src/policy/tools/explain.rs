//! `policy explain`: why one field may or may not flow, from the rules and
//! confirmed by casbin's own `enforce()` on the rows those rules produce.

use serde::Serialize;

use crate::policy::compile::{self, CompileError};
use crate::policy::model::{Act, Consent, PolicySet};
use crate::registers::CaseStatus;
use casbin::CoreApi;

/// The question: may `org` (as `role`) in `overleg`, for `purpose`,
/// receive (or send) `field` of `bron`?
#[derive(Debug, Clone)]
pub struct Question<'a> {
    pub org: &'a str,
    pub role: Option<&'a str>,
    pub overleg: &'a str,
    pub purpose: &'a str,
    pub bron: &'a str,
    pub field: &'a str,
    pub act: Act,
}

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
    /// Adds the pupil's status from the registers: the field flows only when
    /// the policy allows it, the pupil is registered in the overleg, and (if
    /// the rule needs consent) a matching consent for `purpose` is active.
    pub fn with_case(mut self, overleg: &str, purpose: &str, status: &CaseStatus) -> Self {
        let registration = status.registration.clone();
        let required = self
            .consent
            .and_then(Consent::parse)
            .unwrap_or(Consent::None);
        let consents: Option<Vec<String>> = status
            .consent_for(purpose, required)
            .map(|ids| ids.into_iter().map(str::to_owned).collect());
        let (flows, reason) = if !self.allowed {
            (false, "the policy does not allow it".to_owned())
        } else if registration.is_none() {
            (
                false,
                format!(
                    "the pupil is not registered (aangemeld) in `{overleg}`, or the registration has ended"
                ),
            )
        } else {
            match &consents {
                Some(ids) if ids.is_empty() => (true, "registered; no consent needed".to_owned()),
                Some(ids) => (
                    true,
                    format!("registered, with active consent {}", ids.join(" + ")),
                ),
                None => (
                    false,
                    format!(
                        "registered, but no active consent ({}) for purpose `{purpose}`",
                        required.as_str()
                    ),
                ),
            }
        };
        self.case = Some(CaseCheck {
            registration,
            consents: consents.unwrap_or_default(),
            flows,
            reason,
        });
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error(transparent)]
    Compile(#[from] CompileError),
}

fn rule_ref(r: &crate::policy::model::Rule) -> RuleRef {
    RuleRef {
        id: r.id.clone(),
        from: r.from.clone(),
        to: r.to.clone(),
        consent: r.consent.as_str(),
        justification: r.justification.clone(),
        line: r.line,
    }
}

fn denied(reason: String) -> Explanation {
    Explanation {
        allowed: false,
        consent: None,
        role: None,
        grondslag: None,
        allowing: Vec::new(),
        near_misses: Vec::new(),
        casbin: false,
        reason,
        case: None,
    }
}

pub async fn explain(set: &PolicySet, q: &Question<'_>) -> Result<Explanation, ExplainError> {
    let Some(overleg) = set.overleggen.get(q.overleg) else {
        return Ok(denied(format!(
            "casusoverleg `{}` does not exist",
            q.overleg
        )));
    };
    let held: Vec<_> = overleg.roles_of(q.org).collect();
    let role = match (q.role, held.as_slice()) {
        (_, []) => {
            return Ok(denied(format!(
                "organisation `{}` holds no role in `{}`",
                q.org, q.overleg
            )));
        }
        (Some(r), _) => match held.iter().find(|h| h.id == r) {
            Some(h) => *h,
            None => {
                return Ok(denied(format!(
                    "organisation `{}` does not hold role `{r}` in `{}`",
                    q.org, q.overleg
                )));
            }
        },
        (None, [one]) => *one,
        (None, many) => {
            return Ok(denied(format!(
                "organisation `{}` holds several roles in `{}` ({}); name one",
                q.org,
                q.overleg,
                many.iter()
                    .map(|r| r.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };
    if overleg.purpose(q.purpose).is_none() {
        let mut e = denied(format!(
            "`{}` is not a purpose of `{}`",
            q.purpose, q.overleg
        ));
        e.role = Some(role.id.clone());
        return Ok(e);
    }
    let Some(bron) = set.bronnen.get(q.bron) else {
        return Ok(denied(format!("bron `{}` does not exist", q.bron)));
    };
    let Some(idx) = bron.field_index(q.field) else {
        return Ok(denied(format!(
            "`{}` is not in the catalogue of bron `{}`: undeclared fields are always withheld",
            q.field, q.bron
        )));
    };
    let mut allowing = Vec::new();
    let mut near = Vec::new();
    for r in &overleg.rules {
        if r.bron != bron.id || r.purpose != q.purpose {
            continue;
        }
        let (act, caller) = compile::rule_direction(overleg, r, &bron.owner);
        if act != q.act || caller != role.id {
            continue;
        }
        if r.fields.contains(&idx) {
            allowing.push(r);
        } else {
            near.push(rule_ref(r));
        }
    }
    let consent = allowing.iter().map(|r| r.consent).min();
    // Ask casbin itself, on exactly the rows the compiler produces.
    let rows = compile::p_rows(set, overleg)
        .remove(&role.id)
        .unwrap_or_default();
    let e = compile::enforcer(&overleg.id, rows, compile::g_rows(overleg, &role.id)).await?;
    let casbin = e
        .enforce((
            q.org,
            role.id.as_str(),
            overleg.id.as_str(),
            q.purpose,
            bron.id.as_str(),
            q.act.as_str(),
            q.field,
            consent.unwrap_or(Consent::None).as_str(),
        ))
        .map_err(|err| CompileError::Casbin {
            overleg: overleg.id.clone(),
            message: err.to_string(),
        })?;
    let allowed = !allowing.is_empty();
    let field = &bron.catalogue[idx];
    let reason = if allowed {
        let c = consent.unwrap_or(Consent::None);
        if c == Consent::None {
            format!(
                "allowed by {} ({} `{}`, category {})",
                allowing
                    .iter()
                    .map(|r| r.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                field.label,
                field.path,
                field.category.as_str()
            )
        } else {
            format!(
                "allowed only with consent ({}) by {}: it flows only while a matching consent is active in the consent register",
                c.as_str(),
                allowing
                    .iter()
                    .map(|r| r.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    } else if near.is_empty() {
        format!(
            "no rule of `{}` lets role `{}` {} bron `{}` for purpose `{}`",
            overleg.id,
            role.id,
            if q.act == Act::Read {
                "receive data from"
            } else {
                "send data to"
            },
            bron.id,
            q.purpose
        )
    } else {
        format!(
            "rules {} cover this role, purpose and bron, but not `{}`",
            near.iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            field.path
        )
    };
    Ok(Explanation {
        allowed,
        consent: consent.map(|c| c.as_str()),
        role: Some(role.id.clone()),
        grondslag: Some(role.grondslag.to_string()),
        allowing: allowing.into_iter().map(rule_ref).collect(),
        near_misses: near,
        casbin,
        reason,
        case: None,
    })
}
