//! The register API on the gateway's mTLS listener. Who may call it is
//! decided by the policy: a role with `may_register_cases` in the overleg.
//!
//! ```text
//! POST /registers/v1/{overleg}/aanmeldingen                     register a pupil      201
//! POST /registers/v1/{overleg}/aanmeldingen/{id}/beeindigen     end a registration    200
//! POST /registers/v1/{overleg}/toestemmingen                    record consent        201
//! POST /registers/v1/{overleg}/toestemmingen/{id}/intrekken     withdraw consent      200
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
    ChangeContext, GivenBy, NewConsent, NewRegistration, Origin, RegisterError, actor, check_pupil,
};

/// Path prefix of the register API.
pub const PREFIX: &str = "/registers/v1/";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AanmeldingBody {
    leerling: String,
    referentie: String,
    #[serde(default)]
    begin: Option<String>,
    #[serde(default)]
    einde: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeerlingBody {
    leerling: String,
    #[serde(default)]
    referentie: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToestemmingBody {
    leerling: String,
    gegeven_door: GivenBy,
    doelen: Vec<String>,
    #[serde(default)]
    geldig_van: Option<String>,
    #[serde(default)]
    geldig_tot: Option<String>,
    formulier: String,
}

enum Route<'a> {
    Register,
    End(&'a str),
    Consent,
    Withdraw(&'a str),
    Status(&'a str),
}

fn route<'a>(method: &Method, segs: &[&'a str]) -> Result<Route<'a>, ProxyError> {
    let r = match segs {
        ["aanmeldingen"] => (Method::POST, Route::Register),
        ["aanmeldingen", id, "beeindigen"] => (Method::POST, Route::End(id)),
        ["toestemmingen"] => (Method::POST, Route::Consent),
        ["toestemmingen", id, "intrekken"] => (Method::POST, Route::Withdraw(id)),
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

/// Handles one register API call by `org` (from its verified certificate).
/// Sets `*recorded` when the call's audit record was committed with a change.
pub async fn handle(
    state: &AppState,
    org: &str,
    req: Request<Incoming>,
    origin: Origin,
    rec: &mut AuditRecord,
    recorded: &mut bool,
    deadline: Instant,
) -> Result<Response<Full<Bytes>>, ProxyError> {
    rec.kind = "register";
    let method = req.method().clone();
    let uri = req.uri().clone();
    let segs = safe_segments(&uri, PREFIX)?;
    let (overleg, rest) = match segs.split_first() {
        Some((o, rest)) => (*o, rest),
        None => return Err(ClientError::BadPath.into()),
    };
    rec.overleg = Some(overleg.to_owned());
    let route = route(&method, rest)?;
    let snapshot = state.policy.current();
    let set = &snapshot.set;
    rec.policy_version = snapshot.version.to_string();
    let wanted = ident_header(req.headers(), "x-rol")?;
    let who = actor(set, overleg, org, wanted)?;
    rec.role = Some(who.role.clone());
    rec.grondslag = Some(who.grondslag.clone());
    let regs = &state.registers;
    let cx = ChangeContext {
        origin: &origin,
        set,
        overleg,
        actor: &who,
        deadline: Some(deadline),
    };
    let body_of = |req| {
        within(
            deadline,
            read_json_body(req, state.server.max_request_body_bytes),
        )
    };
    let (status, body) = match route {
        Route::Register => {
            let b: AanmeldingBody = parse(&body_of(req).await?)?;
            rec.subject = Some(state.audit.pseudonymise(&b.leerling));
            let new = NewRegistration {
                leerling: b.leerling,
                reference: b.referentie,
                begins_at: b.begin,
                ends_at: b.einde,
            };
            let r = writer_owns(regs.register(&cx, new).await, recorded)?;
            (StatusCode::CREATED, serde_json::to_vec(&r))
        }
        Route::End(id) => {
            let b: LeerlingBody = parse(&body_of(req).await?)?;
            rec.subject = Some(state.audit.pseudonymise(&b.leerling));
            let r = writer_owns(regs.end_registration(&cx, id, &b.leerling).await, recorded)?;
            (StatusCode::OK, serde_json::to_vec(&r))
        }
        Route::Consent => {
            let b: ToestemmingBody = parse(&body_of(req).await?)?;
            rec.subject = Some(state.audit.pseudonymise(&b.leerling));
            let new = NewConsent {
                leerling: b.leerling,
                given_by: b.gegeven_door,
                purposes: b.doelen,
                valid_from: b.geldig_van,
                valid_until: b.geldig_tot,
                form_reference: b.formulier,
            };
            let c = writer_owns(regs.give_consent(&cx, new).await, recorded)?;
            (StatusCode::CREATED, serde_json::to_vec(&c))
        }
        Route::Withdraw(id) => {
            let b: LeerlingBody = parse(&body_of(req).await?)?;
            rec.subject = Some(state.audit.pseudonymise(&b.leerling));
            let c = writer_owns(
                regs.withdraw_consent(&cx, id, &b.leerling, b.referentie)
                    .await,
                recorded,
            )?;
            (StatusCode::OK, serde_json::to_vec(&c))
        }
        Route::Status(leerling) => {
            drop(req);
            check_pupil(leerling)?;
            rec.subject = Some(state.audit.pseudonymise(leerling));
            let h = within(deadline, async {
                Ok(regs.history(Some(overleg), leerling).await?)
            })
            .await?;
            rec.reason = "register-read".into();
            (StatusCode::OK, serde_json::to_vec(&h))
        }
    };
    let body = body.map_err(|_| ProxyError::Internal)?;
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
