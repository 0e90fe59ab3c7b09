//! The register API on the gateway's mTLS listener. Who may call it is
//! decided by the policy: a role with `may_register_cases` in the overleg
//! (registrations, consent, reading a pupil's registers),
//! `may_record_objections` (objections) or `may_record_restrictions`
//! (restrictions).
//!
//! ```text
//! POST /registers/v1/{overleg}/aanmeldingen                     register a pupil      201
//! POST /registers/v1/{overleg}/aanmeldingen/{id}/beeindigen     end a registration    200
//! POST /registers/v1/{overleg}/aanmeldingen/{id}/geinformeerd   informing (art. 13/14) 200
//! POST /registers/v1/{overleg}/toestemmingen                    record consent        201
//! POST /registers/v1/{overleg}/toestemmingen/{id}/intrekken     withdraw consent      200
//! POST /registers/v1/{overleg}/bezwaren                         record an objection   201
//! POST /registers/v1/{overleg}/bezwaren/{id}/besluit            decide it             200
//! POST /registers/v1/{overleg}/beperkingen                      record a restriction  201
//! POST /registers/v1/{overleg}/beperkingen/{id}/opheffen        lift it               200
//! GET  /registers/v1/{overleg}/leerlingen/{leerling}            a pupil's registers   200
//! ```
//!
//! The pupil id travels in the JSON body (or the path for GET) and is
//! stored only as its pseudonym. Every call leaves one audit record: a
//! change commits its record together with the change; a read, refusal or
//! failure is recorded by the proxy like any request.

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use serde::Deserialize;
use tokio::time::Instant;

use crate::audit::AuditRecord;
use crate::gateway::http::{ident_header, read_json_body, safe_segments};
use crate::gateway::problem::{self, ClientError, ProxyError};
use crate::gateway::state::AppState;
use crate::registers::{
    Capability, ChangeContext, GivenBy, NewConsent, NewObjection, NewRegistration, NewRestriction,
    ObjectionState, Origin, RegisterError, RestrictionReason, actor_for, check_pupil,
};

/// Path prefix of the register API.
pub const PREFIX: &str = "/registers/v1/";

/// `POST …/aanmeldingen`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrationBody {
    #[serde(rename = "leerling")]
    pupil: String,
    #[serde(rename = "referentie")]
    reference: String,
    #[serde(default)]
    begin: Option<String>,
    #[serde(default, rename = "einde")]
    end: Option<String>,
    #[serde(default, rename = "geinformeerd_op")]
    informed_at: Option<String>,
    #[serde(default, rename = "geinformeerd_hoe")]
    informed_how: Option<String>,
}

/// `POST …/aanmeldingen/{id}/geinformeerd`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InformedBody {
    #[serde(rename = "leerling")]
    pupil: String,
    #[serde(rename = "geinformeerd_op")]
    at: String,
    #[serde(rename = "geinformeerd_hoe")]
    how: String,
}

/// `POST …/{id}/beeindigen` and `…/{id}/intrekken`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PupilBody {
    #[serde(rename = "leerling")]
    pupil: String,
    #[serde(default, rename = "referentie")]
    reference: Option<String>,
}

/// `POST …/toestemmingen`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentBody {
    #[serde(rename = "leerling")]
    pupil: String,
    #[serde(rename = "gegeven_door")]
    given_by: GivenBy,
    #[serde(rename = "doelen")]
    purposes: Vec<String>,
    #[serde(default, rename = "geldig_van")]
    valid_from: Option<String>,
    #[serde(default, rename = "geldig_tot")]
    valid_until: Option<String>,
    #[serde(rename = "formulier")]
    form: String,
}

impl ConsentBody {
    fn into_new(self) -> NewConsent {
        NewConsent {
            pupil: self.pupil,
            given_by: self.given_by,
            purposes: self.purposes,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            form_reference: self.form,
        }
    }
}

/// `POST …/bezwaren`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectionBody {
    #[serde(rename = "leerling")]
    pupil: String,
    #[serde(default, rename = "doel")]
    purpose: Option<String>,
    #[serde(rename = "referentie")]
    reference: String,
    #[serde(default, rename = "ingediend_op")]
    lodged_at: Option<String>,
    /// Against every casusoverleg, not only this one.
    #[serde(default, rename = "alle_overleggen")]
    all_overleggen: bool,
}

/// `POST …/bezwaren/{id}/besluit`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    #[serde(rename = "leerling")]
    pupil: String,
    #[serde(rename = "besluit")]
    decision: ObjectionState,
    #[serde(rename = "referentie")]
    reference: String,
}

/// `POST …/beperkingen`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestrictionBody {
    #[serde(rename = "leerling")]
    pupil: String,
    #[serde(default, rename = "velden")]
    fields: Option<Vec<String>>,
    #[serde(rename = "reden")]
    reason: RestrictionReason,
    #[serde(rename = "referentie")]
    reference: String,
    #[serde(default)]
    begin: Option<String>,
    #[serde(default, rename = "einde")]
    end: Option<String>,
}

enum Route<'a> {
    Register,
    End(&'a str),
    Informed(&'a str),
    Consent,
    Withdraw(&'a str),
    Object,
    Decide(&'a str),
    Restrict,
    Lift(&'a str),
    Status(&'a str),
}

impl Route<'_> {
    /// What the caller's role must be allowed to do.
    fn capability(&self) -> Capability {
        match self {
            Route::Object | Route::Decide(_) => Capability::Objections,
            Route::Restrict | Route::Lift(_) => Capability::Restrictions,
            _ => Capability::Cases,
        }
    }
}

fn route<'a>(method: &Method, segs: &[&'a str]) -> Result<Route<'a>, ProxyError> {
    let r = match segs {
        ["aanmeldingen"] => (Method::POST, Route::Register),
        ["aanmeldingen", id, "beeindigen"] => (Method::POST, Route::End(id)),
        ["aanmeldingen", id, "geinformeerd"] => (Method::POST, Route::Informed(id)),
        ["toestemmingen"] => (Method::POST, Route::Consent),
        ["toestemmingen", id, "intrekken"] => (Method::POST, Route::Withdraw(id)),
        ["bezwaren"] => (Method::POST, Route::Object),
        ["bezwaren", id, "besluit"] => (Method::POST, Route::Decide(id)),
        ["beperkingen"] => (Method::POST, Route::Restrict),
        ["beperkingen", id, "opheffen"] => (Method::POST, Route::Lift(id)),
        ["leerlingen", l] => (Method::GET, Route::Status(l)),
        _ => return Err(ClientError::BadPath.into()),
    };
    if *method != r.0 {
        return Err(ClientError::Method(method.as_str().chars().take(16).collect()).into());
    }
    Ok(r.1)
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, ProxyError> {
    // serde's message names the offending field (or echoes the caller's own
    // value); it is returned to the caller only, never logged.
    serde_json::from_slice(bytes)
        .map_err(|e| ProxyError::Register(RegisterError::Invalid(format!("body: {e}"))))
}

/// `step` within the request's deadline (the register API has no outer
/// timeout: one that cut in after a commit would contradict it).
async fn within<T>(
    deadline: Instant,
    step: impl Future<Output = Result<T, ProxyError>>,
) -> Result<T, ProxyError> {
    tokio::time::timeout_at(deadline, step)
        .await
        .unwrap_or(Err(ProxyError::Client(ClientError::Timeout)))
}

/// A change that reached the audit writer has its record there in every
/// outcome: committed with the change, or written as the 503 refusal the
/// client gets (see `audit::writer`). Only a writer that is gone has none.
fn writer_owns<T>(r: Result<T, RegisterError>, recorded: &mut bool) -> Result<T, ProxyError> {
    match &r {
        Ok(_) => *recorded = true,
        Err(RegisterError::Audit(e)) if !matches!(e, crate::audit::AuditError::WriterGone) => {
            *recorded = true;
        }
        Err(_) => {}
    }
    Ok(r?)
}

/// Who calls and within which deadline (see [`crate::gateway::proxy`]).
pub struct Call<'a> {
    /// The organisation of the verified client certificate.
    pub org: &'a str,
    pub origin: Origin,
    /// Applies to the steps before the change is handed to the audit writer.
    pub deadline: Instant,
}

/// What a register API call leaves for the response stage.
pub struct Answered {
    pub result: Result<Response<Full<Bytes>>, ProxyError>,
    /// The call's audit record is the writer's (committed with its change,
    /// or written as the refusal the client gets): the proxy must not
    /// record the call a second time.
    pub recorded_by_writer: bool,
}

/// Handles one register API call.
pub async fn handle(
    state: &AppState,
    call: Call<'_>,
    req: Request<Incoming>,
    rec: &mut AuditRecord,
) -> Answered {
    let mut recorded = false;
    let result = serve(state, call, req, rec, &mut recorded).await;
    Answered {
        result,
        recorded_by_writer: recorded,
    }
}

async fn serve(
    state: &AppState,
    call: Call<'_>,
    req: Request<Incoming>,
    rec: &mut AuditRecord,
    recorded: &mut bool,
) -> Result<Response<Full<Bytes>>, ProxyError> {
    rec.kind = "register";
    let uri = req.uri().clone();
    let segs = safe_segments(&uri, PREFIX)?;
    let Some((overleg, rest)) = segs.split_first() else {
        return Err(ClientError::BadPath.into());
    };
    rec.overleg = Some((*overleg).to_owned());
    let route = route(req.method(), rest)?;
    let snapshot = state.policy.current();
    rec.policy_version = snapshot.version.to_string();
    let wanted = ident_header(req.headers(), "x-rol")?;
    let who = actor_for(&snapshot.set, overleg, call.org, wanted, route.capability())?;
    rec.role = Some(who.role.clone());
    rec.grondslag = Some(who.grondslag.clone());
    let cx = ChangeContext {
        origin: &call.origin,
        set: &snapshot.set,
        overleg,
        actor: &who,
        deadline: Some(call.deadline),
    };
    let api = Api {
        state,
        cx: &cx,
        deadline: call.deadline,
    };
    let (status, body) = api.perform(route, req, rec, recorded).await?;
    if !*recorded {
        rec.outcome = crate::audit::Outcome::Allowed;
    }
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    problem::add_security_headers(h);
    Ok(resp)
}

/// One call's context for the routes.
struct Api<'a> {
    state: &'a AppState,
    cx: &'a ChangeContext<'a>,
    deadline: Instant,
}

impl Api<'_> {
    async fn body<T: serde::de::DeserializeOwned>(
        &self,
        req: Request<Incoming>,
    ) -> Result<T, ProxyError> {
        let limit = self.state.server.max_request_body_bytes;
        parse(&within(self.deadline, read_json_body(req, limit)).await?)
    }

    fn pupil(&self, rec: &mut AuditRecord, pupil: &str) {
        rec.pupil = Some(self.state.audit.pseudonymise(pupil));
    }

    async fn perform(
        &self,
        route: Route<'_>,
        req: Request<Incoming>,
        rec: &mut AuditRecord,
        recorded: &mut bool,
    ) -> Result<(StatusCode, Vec<u8>), ProxyError> {
        let regs = &self.state.registers;
        let json = |v: Result<Vec<u8>, serde_json::Error>| v.map_err(|_| ProxyError::Internal);
        match route {
            Route::Register => {
                let b: RegistrationBody = self.body(req).await?;
                self.pupil(rec, &b.pupil);
                let new = NewRegistration {
                    pupil: b.pupil,
                    reference: b.reference,
                    begins_at: b.begin,
                    ends_at: b.end,
                    informed_at: b.informed_at,
                    informed_how: b.informed_how,
                };
                let r = writer_owns(regs.register(self.cx, new).await, recorded)?;
                Ok((StatusCode::CREATED, json(serde_json::to_vec(&r))?))
            }
            Route::End(id) => {
                let b: PupilBody = self.body(req).await?;
                self.pupil(rec, &b.pupil);
                let r = regs.end_registration(self.cx, id, &b.pupil).await;
                Ok((
                    StatusCode::OK,
                    json(serde_json::to_vec(&writer_owns(r, recorded)?))?,
                ))
            }
            Route::Informed(id) => {
                let b: InformedBody = self.body(req).await?;
                self.pupil(rec, &b.pupil);
                let r = regs
                    .record_informing(self.cx, id, &b.pupil, &b.at, &b.how)
                    .await;
                Ok((
                    StatusCode::OK,
                    json(serde_json::to_vec(&writer_owns(r, recorded)?))?,
                ))
            }
            Route::Consent => {
                let b: ConsentBody = self.body(req).await?;
                self.pupil(rec, &b.pupil);
                let c = writer_owns(regs.give_consent(self.cx, b.into_new()).await, recorded)?;
                Ok((StatusCode::CREATED, json(serde_json::to_vec(&c))?))
            }
            Route::Withdraw(id) => {
                let b: PupilBody = self.body(req).await?;
                self.pupil(rec, &b.pupil);
                let c = regs
                    .withdraw_consent(self.cx, id, &b.pupil, b.reference)
                    .await;
                Ok((
                    StatusCode::OK,
                    json(serde_json::to_vec(&writer_owns(c, recorded)?))?,
                ))
            }
            Route::Object | Route::Decide(_) | Route::Restrict | Route::Lift(_) => {
                self.rights(route, req, rec, recorded).await
            }
            Route::Status(pupil) => {
                drop(req);
                check_pupil(pupil)?;
                self.pupil(rec, pupil);
                let overleg = Some(self.cx.overleg);
                let h = within(self.deadline, async {
                    Ok(regs.history(overleg, pupil).await?)
                })
                .await?;
                rec.reason = "register-read".into();
                Ok((StatusCode::OK, json(serde_json::to_vec(&h))?))
            }
        }
    }
}

impl Api<'_> {
    /// The objection and restriction routes.
    async fn rights(
        &self,
        route: Route<'_>,
        req: Request<Incoming>,
        rec: &mut AuditRecord,
        recorded: &mut bool,
    ) -> Result<(StatusCode, Vec<u8>), ProxyError> {
        let regs = &self.state.registers;
        let json = |v: Result<Vec<u8>, serde_json::Error>| v.map_err(|_| ProxyError::Internal);
        match route {
            Route::Object => {
                let b: ObjectionBody = self.body(req).await?;
                self.pupil(rec, &b.pupil);
                let new = NewObjection {
                    pupil: b.pupil,
                    purpose: b.purpose,
                    reference: b.reference,
                    lodged_at: b.lodged_at,
                    all_overleggen: b.all_overleggen,
                };
                let o = writer_owns(regs.lodge_objection(self.cx, new).await, recorded)?;
                Ok((StatusCode::CREATED, json(serde_json::to_vec(&o))?))
            }
            Route::Decide(id) => {
                let b: DecisionBody = self.body(req).await?;
                self.pupil(rec, &b.pupil);
                let o = regs
                    .decide_objection(self.cx, id, &b.pupil, b.decision, b.reference)
                    .await;
                Ok((
                    StatusCode::OK,
                    json(serde_json::to_vec(&writer_owns(o, recorded)?))?,
                ))
            }
            Route::Restrict => {
                let b: RestrictionBody = self.body(req).await?;
                self.pupil(rec, &b.pupil);
                let new = NewRestriction {
                    pupil: b.pupil,
                    fields: b.fields,
                    reason: b.reason,
                    reference: b.reference,
                    begins_at: b.begin,
                    ends_at: b.end,
                };
                let r = writer_owns(regs.restrict(self.cx, new).await, recorded)?;
                Ok((StatusCode::CREATED, json(serde_json::to_vec(&r))?))
            }
            Route::Lift(id) => {
                let b: PupilBody = self.body(req).await?;
                self.pupil(rec, &b.pupil);
                let r = regs
                    .lift_restriction(self.cx, id, &b.pupil, b.reference)
                    .await;
                Ok((
                    StatusCode::OK,
                    json(serde_json::to_vec(&writer_owns(r, recorded)?))?,
                ))
            }
            _ => Err(ClientError::BadPath.into()),
        }
    }
}
