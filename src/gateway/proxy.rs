//! One request through the gateway: route → identity → decision (permit) →
//! request-body filter → upstream → response filter → durable audit record →
//! response. The audit record is committed before a single byte of the
//! response leaves; if it cannot be, the client gets 503 and nothing else.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;

use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard};

use crate::audit::{AuditError, AuditRecord, Outcome, SideWrite};
use crate::gateway::http::{
    TraceContext, ident_header, overleg_of, parse_path, read_json_body, text_header,
};
use crate::gateway::identity;
use crate::gateway::problem::{self, ClientError, ProxyError, UpstreamError};
use crate::gateway::registers_api;
use crate::gateway::state::{AppState, Peer};
use crate::gateway::upstream::{ForwardHeaders, UpstreamResponse};
use crate::policy::decision::{
    DecisionContext, Denial, EmergencyClaim, OBJECTION_EMERGENCY_REASON, Permit, RouteRequest,
    Snapshot, objection_not_applied_reason,
};
use crate::policy::filter::FilterOutcome;
use crate::policy::model::Act;
use crate::registers::Origin;
use crate::registers::emergency::{self, WindowState};

/// What a request holds on to until its response is handed over.
#[derive(Default)]
struct Flow {
    /// Read guard on the pupil's register stripe: a revocation of this
    /// pupil's registration or consent waits until it is dropped.
    guard: Option<OwnedRwLockReadGuard<()>>,
    /// The audit record was already committed (with a register change).
    recorded: bool,
    /// An emergency request's guard on its organisation and pupil: no
    /// other emergency request of theirs looks the window up until this
    /// one's record is committed.
    emergency_guard: Option<OwnedRwLockWriteGuard<()>>,
    /// The emergency window row a disclosure commits with its record.
    side: Option<SideWrite>,
    /// (reason, opened) of an emergency disclosure, for the metric.
    emergency: Option<(&'static str, bool)>,
}

/// Header naming how many fields were withheld from the response body.
pub const WITHHELD_HEADER: &str = "x-poortwachter-withheld";

/// The ids of one request, made before its handler runs, so that even a
/// handler that panics is answered and recorded under them.
pub struct RequestIds {
    pub request_id: String,
    pub trace: TraceContext,
}

/// Runs `handler` for one request in a task of its own (a client that
/// disconnects cancels hyper's future, but must not cancel the audit record
/// of what already happened). A handler that panics is logged, recorded
/// (`error`, `internal`, 500) and answered with a 500 problem under the
/// request's real id; if that record cannot be made durable, 503.
pub async fn guarded<B, F, Fut>(
    state: Arc<AppState>,
    peer: Arc<Peer>,
    req: Request<B>,
    handler: F,
) -> Response<Full<Bytes>>
where
    F: FnOnce(Arc<AppState>, Arc<Peer>, Request<B>, RequestIds) -> Fut,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let request_id = uuid::Uuid::new_v4().to_string();
    let trace = TraceContext::from_headers(req.headers());
    let ids = RequestIds {
        request_id: request_id.clone(),
        trace: TraceContext {
            trace_id: trace.trace_id.clone(),
            header: trace.header.clone(),
        },
    };
    // Boxed: the handler's future is ~8 KiB, and tokio copies a future
    // into its task by value (perf put ~2% of samples in those copies).
    let task = tokio::spawn(Box::pin(handler(
        Arc::clone(&state),
        Arc::clone(&peer),
        req,
        ids,
    )));
    match task.await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::error!(
                request_id,
                panicked = e.is_panic(),
                "request handler failed; answering 500"
            );
            let answer = tokio::spawn(record_failure(state, peer, request_id, trace));
            answer.await.unwrap_or_else(|_| {
                problem::response(
                    &ProxyError::Internal,
                    "00000000-0000-0000-0000-000000000000",
                )
            })
        }
    }
}

/// The record and the answer for a request whose handler failed.
async fn record_failure(
    state: Arc<AppState>,
    peer: Arc<Peer>,
    request_id: String,
    trace: TraceContext,
) -> Response<Full<Bytes>> {
    let mut rec = AuditRecord::new(&state.server.instance, &request_id, &trace.trace_id);
    if let Ok(c) = &peer.cert {
        rec.cert_fingerprint = Some(c.fingerprint_hex());
        rec.org = identity::organisation_for(&state.policy.current().set, c).ok();
    }
    let err = ProxyError::Internal;
    rec.reason = err.code().to_owned();
    rec.side = Some(err.side().as_str());
    let mut resp = problem::response(&err, &request_id);
    rec.status = resp.status().as_u16();
    if state.audit.commit(rec).await.is_err() {
        resp = problem::response(&ProxyError::AuditUnavailable, &request_id);
    }
    set_ids(resp.headers_mut(), &request_id, &trace);
    resp
}

fn set_ids(h: &mut HeaderMap, request_id: &str, trace: &TraceContext) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&trace.header) {
        h.insert("traceparent", v);
    }
}

/// Handles one request; never fails (errors become problem responses).
pub async fn handle(
    state: Arc<AppState>,
    peer: Arc<Peer>,
    req: Request<Incoming>,
    ids: RequestIds,
) -> Response<Full<Bytes>> {
    let mut x = Exchange::new(&state, &peer, ids);
    let result = x.route(&peer, req).await;
    x.respond(result).await
}

/// One request on its way through the gateway: its ids, its audit record
/// as the stages fill it in, and what it holds until the response is handed
/// over.
struct Exchange<'a> {
    state: &'a AppState,
    request_id: String,
    trace: TraceContext,
    rec: AuditRecord,
    flow: Flow,
    started: Instant,
}

impl<'a> Exchange<'a> {
    fn new(state: &'a AppState, peer: &Peer, ids: RequestIds) -> Self {
        let RequestIds { request_id, trace } = ids;
        let mut rec = AuditRecord::new(&state.server.instance, &request_id, &trace.trace_id);
        if let Ok(c) = &peer.cert {
            rec.cert_fingerprint = Some(c.fingerprint_hex());
        }
        Self {
            state,
            request_id,
            trace,
            rec,
            flow: Flow::default(),
            started: Instant::now(),
        }
    }

    /// Identity first (nothing about the request is looked at for an
    /// unknown peer), then one routing decision: the register API or the
    /// proxy.
    async fn route(
        &mut self,
        peer: &Peer,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, ProxyError> {
        let (snapshot, org) = identify(self.state, peer, &req, &mut self.rec)?;
        if req.uri().path().starts_with(registers_api::PREFIX) {
            drop(snapshot);
            return self.register_call(&org, req).await;
        }
        let limit = self.state.server.request_timeout();
        tokio::time::timeout(limit, self.proxy(&snapshot, &org, req))
            .await
            .unwrap_or(Err(ProxyError::Client(ClientError::Timeout)))
    }

    /// A register API call. A revocation first waits for in-flight requests
    /// about the pupil, then the grace (see `registers`). No outer timeout:
    /// the API applies this deadline to the steps before its commit only.
    async fn register_call(
        &mut self,
        org: &str,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, ProxyError> {
        let state = self.state;
        let deadline = tokio::time::Instant::now()
            + state.server.request_timeout()
            + state.registers.revocation_allowance();
        let origin = Origin {
            request_id: Some(self.request_id.clone()),
            trace_id: Some(self.trace.trace_id.clone()),
            cert_fingerprint: self.rec.cert_fingerprint.clone(),
            supplier: self.rec.supplier.clone(),
        };
        let call = registers_api::Call {
            org,
            origin,
            deadline,
        };
        let answered = registers_api::handle(state, call, req, &mut self.rec).await;
        self.flow.recorded = answered.recorded_by_writer;
        answered.result
    }

    /// The proxy: decide, bind to the registers, minimise a write's body,
    /// forward, minimise the answer.
    async fn proxy(
        &mut self,
        snapshot: &Snapshot,
        org: &str,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, ProxyError> {
        let route = Route::of(&req)?;
        self.rec.overleg = Some(route.overleg.to_owned());
        self.rec.bron = Some(route.bron.to_owned());
        if let Some(claim) = &route.emergency {
            flag_emergency(&mut self.rec);
            let max = self.state.registers.max_justification();
            if claim.justification.is_some_and(|j| j.chars().count() > max) {
                return Err(ClientError::BadHeader("x-spoed-toelichting").into());
            }
        }
        let permit = self.authorise(snapshot, org, &route.request()).await?;
        let act = route.act;
        let method = req.method().clone();
        let (body, request_withheld) = match act {
            Act::Write => {
                let (body, withheld) = self.request_body(&permit, req).await?;
                (Some(body), withheld)
            }
            Act::Read => (None, 0),
        };
        let up = self.forward(&permit, method, body).await?;
        let (body, withheld) = match act {
            Act::Read => self.filter_answer(&permit, &up)?,
            // The bron's answer to a write is not pupil data the caller may
            // receive under this rule; only the status is passed back.
            Act::Write => (Bytes::from_static(b"{}"), request_withheld),
        };
        self.rec.outcome = if withheld == 0 {
            Outcome::Allowed
        } else {
            Outcome::Filtered
        };
        self.rec.reason = if !permit.consent_withheld().is_empty() {
            "consent-required-for-some-fields".into()
        } else if !permit.restricted().is_empty() {
            "restricted-fields".into()
        } else {
            "allowed".into()
        };
        self.emergency_disclosure(&permit);
        Ok(json_response(up.status, body, withheld))
    }

    /// An emergency disclosure is a record of its own kind of reason
    /// (`emergency-window-opened` or `-used`), committed with the window
    /// row it opens or counts.
    fn emergency_disclosure(&mut self, permit: &Permit) {
        let Some(e) = permit.emergency() else {
            return;
        };
        let (reason, side, opened) = match &e.window {
            Some(WindowState::Opens { id, ends_at }) => {
                let opening = emergency::Opening {
                    id,
                    org: permit.org(),
                    subject: self.rec.pupil.as_deref().unwrap_or_default(),
                    overleg: permit.overleg(),
                    role: permit.role(),
                    reason: e.reason.code(),
                    justification: &e.justification,
                    request_id: &self.request_id,
                    ends_at,
                };
                (
                    "emergency-window-opened",
                    emergency::opening_write(&opening),
                    true,
                )
            }
            Some(WindowState::Open { id, .. }) => {
                ("emergency-window-used", emergency::use_write(id), false)
            }
            // `bind` refuses an ended or missing window.
            _ => return,
        };
        self.rec.reason = reason.to_owned();
        self.flow.side = Some(side);
        self.flow.emergency = Some((e.reason.code(), opened));
    }

    /// The policy decision, then case binding and consent. The register
    /// guard is taken before the lookup and held until the response is
    /// handed over, so a revocation either happened before the lookup (and
    /// is seen) or waits for this request.
    async fn authorise(
        &mut self,
        snapshot: &Snapshot,
        org: &str,
        route: &RouteRequest<'_>,
    ) -> Result<Permit, ProxyError> {
        let mut ctx = DecisionContext::default();
        let decided = snapshot.decide(org, route, &mut ctx);
        let rec = &mut self.rec;
        rec.role = ctx.role;
        rec.grondslag = ctx.grondslag;
        let ctx_purpose = ctx.purpose.clone();
        rec.purpose = ctx.purpose;
        rec.resource = ctx.resource_template;
        rec.owner = ctx.owner;
        if let Some(pupil) = &ctx.pupil {
            rec.pupil = Some(self.state.audit.pseudonymise(pupil));
        }
        if emergency_purpose(snapshot, ctx_purpose.as_deref(), route) {
            flag_emergency(rec);
        }
        let tentative = decided?;
        let registers = &self.state.registers;
        let (overleg, pupil) = (tentative.overleg(), tentative.pupil());
        if tentative.is_emergency() {
            self.flow.emergency_guard = Some(registers.emergency_guard(org, pupil).await);
        }
        self.flow.guard = Some(registers.read_guard(overleg, pupil).await);
        let unavailable = |e: crate::audit::StoreError| {
            tracing::error!(error = %e, "register lookup failed; refusing");
            ProxyError::RegistersUnavailable
        };
        let mut status = registers
            .status(overleg, pupil)
            .await
            .map_err(unavailable)?;
        if tentative.is_emergency() {
            let window = registers.emergency_window(org, pupil).await;
            status.emergency = Some(window.map_err(unavailable)?);
        }
        let permit = tentative.bind(&status)?;
        self.rec.rules = permit.deciding_rules();
        self.rec.detail = reliance_detail(&permit).to_string();
        Ok(permit)
    }

    /// Writes: the caller is the source; its body is minimised before it is
    /// forwarded. A body with nothing the rule lets through is refused:
    /// forwarding `{}` would still tell the bron something happened, on
    /// nobody's authority.
    async fn request_body(
        &mut self,
        permit: &Permit,
        req: Request<Incoming>,
    ) -> Result<(Bytes, usize), ProxyError> {
        let (body, outcome) = read_and_filter_request(self.state, permit, req).await?;
        record_fields(&mut self.rec, permit, &outcome);
        if outcome.shared.is_empty() {
            return Err(ProxyError::Denied(Denial::NoFieldOfResource {
                resource: permit.resource_id().to_owned(),
            }));
        }
        Ok((body, outcome.withheld_count()))
    }

    async fn forward(
        &mut self,
        permit: &Permit,
        method: Method,
        body: Option<Bytes>,
    ) -> Result<UpstreamResponse, ProxyError> {
        let state = self.state;
        let fwd = ForwardHeaders {
            traceparent: &self.trace.child_header(),
            request_id: &self.request_id,
            instance: &state.server.instance,
        };
        let limit = state.server.max_response_body_bytes;
        let up = state
            .upstream
            .send(permit, method, body, &fwd, limit)
            .await?;
        self.rec.upstream_status = Some(up.status.as_u16());
        if up.status == StatusCode::NOT_FOUND {
            return Err(UpstreamError::NotFound.into());
        }
        if !up.status.is_success() {
            return Err(UpstreamError::Status(up.status.as_u16()).into());
        }
        Ok(up)
    }

    /// The bron's JSON, minimised to what the permit allows.
    fn filter_answer(
        &mut self,
        permit: &Permit,
        up: &UpstreamResponse,
    ) -> Result<(Bytes, usize), ProxyError> {
        if !up.json {
            return Err(UpstreamError::NotJson.into());
        }
        let depth = self.state.server.max_json_depth;
        let (body, outcome) = permit
            .trie()
            .filter(&up.body, permit.allowed(), depth)
            .map_err(|_| UpstreamError::NotJson)?;
        record_fields(&mut self.rec, permit, &outcome);
        Ok((Bytes::from(body), outcome.withheld_count()))
    }

    /// The response stage. Fail closed: the response (allowed or not) leaves
    /// only once its record is durable; a failed commit replaces any body
    /// with a 503 problem. Only after the return may a revocation of this
    /// pupil's registration or consent proceed.
    async fn respond(
        mut self,
        result: Result<Response<Full<Bytes>>, ProxyError>,
    ) -> Response<Full<Bytes>> {
        let mut resp = match result {
            Ok(resp) => resp,
            Err(err) => {
                // Nothing was disclosed: no window opens or counts.
                self.flow.side = None;
                self.flow.emergency = None;
                let rec = &mut self.rec;
                rec.outcome = match err {
                    ProxyError::Denied(_) | ProxyError::Identity(_) | ProxyError::Register(_) => {
                        Outcome::Denied
                    }
                    _ => Outcome::Error,
                };
                rec.reason = err.code().to_owned();
                rec.side = Some(err.side().as_str());
                problem::response(&err, &self.request_id)
            }
        };
        self.rec.status = resp.status().as_u16();
        let elapsed = self.started.elapsed();
        self.rec.duration_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let state = self.state;
        if self.flow.recorded {
            let overleg = self.rec.overleg.as_deref();
            observe_recorded(state, Outcome::Event.as_str(), overleg, elapsed);
        } else if commit_observed(state, self.rec, self.flow.side.take())
            .await
            .is_err()
        {
            tracing::error!(
                request_id = self.request_id,
                "audit commit failed; answering 503"
            );
            resp = problem::response(&ProxyError::AuditUnavailable, &self.request_id);
        } else if let Some((reason, opened)) = self.flow.emergency {
            state.metrics.observe_emergency(reason, opened);
        }
        set_ids(resp.headers_mut(), &self.request_id, &self.trace);
        drop(self.flow);
        resp
    }
}

/// What the path and headers of a proxied request say, parsed at the edge.
struct Route<'r> {
    act: Act,
    overleg: &'r str,
    bron: &'r str,
    segments: Vec<&'r str>,
    purpose: Option<&'r str>,
    role: Option<&'r str>,
    owner: Option<&'r str>,
    now: i64,
    emergency: Option<EmergencyClaim<'r>>,
}

impl<'r> Route<'r> {
    fn of(req: &'r Request<Incoming>) -> Result<Self, ProxyError> {
        let act = match *req.method() {
            Method::GET => Act::Read,
            Method::POST | Method::PUT => Act::Write,
            ref m => {
                return Err(ClientError::Method(m.as_str().chars().take(16).collect()).into());
            }
        };
        let (overleg, bron, segments) = parse_path(req.uri())?;
        let reason = ident_header(req.headers(), "x-spoed-reden")?;
        let justification = text_header(req.headers(), "x-spoed-toelichting")?;
        let emergency = (reason.is_some() || justification.is_some()).then_some(EmergencyClaim {
            reason,
            justification,
        });
        Ok(Self {
            act,
            overleg,
            bron,
            segments,
            purpose: ident_header(req.headers(), "x-doelbinding")?,
            role: ident_header(req.headers(), "x-rol")?,
            owner: ident_header(req.headers(), "x-bron-eigenaar")?,
            now: crate::policy::mandate::now(),
            emergency,
        })
    }

    fn request(&self) -> RouteRequest<'_> {
        RouteRequest {
            overleg: self.overleg,
            bron: self.bron,
            segments: &self.segments,
            act: self.act,
            purpose: self.purpose,
            role: self.role,
            owner: self.owner,
            now: self.now,
            emergency: self.emergency,
        }
    }
}

fn json_response(status: StatusCode, body: Bytes, withheld: usize) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(WITHHELD_HEADER, HeaderValue::from(withheld as u64));
    problem::add_security_headers(h);
    resp
}

/// Commits a request's audit record (see [`crate::audit::Auditor::commit`]),
/// the commit the response waits for, and counts the request, its latency
/// and the commit latency.
async fn commit_observed(
    state: &AppState,
    rec: AuditRecord,
    side: Option<SideWrite>,
) -> Result<(), AuditError> {
    let decision = rec.outcome.as_str();
    let overleg = overleg_label(state, rec.overleg.as_deref());
    let duration = Duration::from_micros(rec.duration_us);
    let started = Instant::now();
    let result = match side {
        Some(side) => state.audit.commit_with(rec, side).await,
        None => state.audit.commit(rec).await,
    };
    let commit = started.elapsed();
    state.metrics.observe_commit(commit, result.is_ok());
    state
        .metrics
        .observe_request(decision, overleg, duration + commit);
    result
}

/// Counts a request whose record was committed elsewhere: a register change
/// commits its own record in the change's transaction (decision `event`,
/// as in the trail).
fn observe_recorded(
    state: &AppState,
    decision: &'static str,
    overleg: Option<&str>,
    duration: Duration,
) {
    let overleg = overleg_label(state, overleg);
    state.metrics.observe_request(decision, overleg, duration);
}

/// The overleg label of the request metrics: ids outside the policy set
/// count as `unknown`, so clients cannot grow the label set.
fn overleg_label(state: &AppState, overleg: Option<&str>) -> String {
    match overleg {
        Some(o) if state.policy.current().set.overleggen.contains_key(o) => o.to_owned(),
        Some(_) => "unknown".to_owned(),
        None => "none".to_owned(),
    }
}

/// The organisation behind the verified client certificate, under the
/// current policy snapshot: its own, or the one a supplier acts for under a
/// mandate covering the overleg the path names. Nothing else about the
/// request is looked at for an unknown peer.
fn identify(
    state: &AppState,
    peer: &Peer,
    req: &Request<Incoming>,
    rec: &mut AuditRecord,
) -> Result<(Arc<Snapshot>, String), ProxyError> {
    let snapshot = state.policy.current();
    rec.policy_version = snapshot.version.to_string();
    let cert = peer
        .cert
        .as_ref()
        .map_err(|e| ProxyError::Identity(e.clone()))?;
    // An unknown peer is refused before any header is read; a supplier is
    // recorded as who connected, also when it is refused.
    let holder = identity::holder(&snapshot.set, cert)?;
    if let identity::Holder::Supplier(s) = &holder {
        rec.supplier = Some(s.clone());
    }
    let principal = identity::principal(req.headers())?;
    let overleg = overleg_of(req.uri());
    let now = crate::policy::mandate::now();
    let caller = identity::act_for(&snapshot.set, holder, principal.as_deref(), overleg, now)?;
    rec.org = Some(caller.org.clone());
    rec.supplier = caller.supplier;
    Ok((snapshot, caller.org))
}

/// Flags a request's record as an emergency request whatever is decided:
/// inzage holds it back until the FG releases it (a permit's
/// `reliance_detail` replaces the flag with the full `spoed` detail).
fn flag_emergency(rec: &mut AuditRecord) {
    rec.detail = serde_json::json!({"spoed": {"gevraagd": true}}).to_string();
}

/// Whether the request named an emergency purpose of its overleg: its
/// record is flagged as an emergency request (held back from inzage) even
/// when it carried no emergency header.
fn emergency_purpose(snapshot: &Snapshot, purpose: Option<&str>, route: &RouteRequest<'_>) -> bool {
    purpose
        .and_then(|p| snapshot.set.overleggen.get(route.overleg)?.purpose(p))
        .is_some_and(|p| p.emergency.is_some())
}

/// What a shared response relied on, for its record's `detail`: the
/// registration and consents; objections that covered it but did not apply
/// (and why); restrictions that withheld fields (and which).
fn reliance_detail(permit: &Permit) -> serde_json::Value {
    let mut detail = serde_json::json!({
        "aanmelding": permit.registration(),
        "toestemmingen": permit.consents(),
    });
    if !permit.objections_not_applied().is_empty() {
        let reason = if permit.emergency().is_some() {
            OBJECTION_EMERGENCY_REASON.to_owned()
        } else {
            objection_not_applied_reason(permit.grondslag())
        };
        detail["bezwaren"] = permit
            .objections_not_applied()
            .iter()
            .map(|id| serde_json::json!({"id": id, "toegepast": false, "reden": reason}))
            .collect();
    }
    if !permit.restrictions().is_empty() {
        let cat = &permit.bron().catalogue;
        let fields: Vec<&str> = permit
            .restricted()
            .iter()
            .filter_map(|i| cat.get(i).map(|f| f.path.as_str()))
            .collect();
        detail["beperkingen"] = serde_json::json!({
            "ids": permit.restrictions(),
            "velden": fields,
        });
    }
    if let Some(e) = permit.emergency() {
        detail["spoed"] = serde_json::json!({
            "venster": e.window.as_ref().map(WindowState::id),
            "start": matches!(e.window, Some(WindowState::Opens { .. })),
            "einde": e.window.as_ref().map(WindowState::ends_at),
            "reden": e.reason.code(),
            "toelichting": e.justification,
            "aanmelding_vereist": e.case_binding,
        });
    }
    detail
}

/// Field names (never values) for the audit record. Consent-withheld fields
/// count as withheld even when the document lacked them: the FG wants to see
/// what consent would have unlocked.
fn record_fields(rec: &mut AuditRecord, permit: &Permit, outcome: &FilterOutcome) {
    let cat = &permit.bron().catalogue;
    rec.fields_shared = outcome
        .shared
        .iter()
        .filter_map(|i| cat.get(i).map(|f| f.path.as_str().to_owned()))
        .collect();
    let mut withheld: Vec<String> = outcome
        .withheld
        .iter()
        .filter_map(|i| cat.get(i).map(|f| f.path.as_str().to_owned()))
        .collect();
    // A restricted field is named as withheld even when the document
    // lacked it: the FG sees what the restriction kept back.
    for i in permit.restricted().iter() {
        if !outcome.withheld.contains(i)
            && let Some(f) = cat.get(i)
        {
            withheld.push(f.path.as_str().to_owned());
        }
    }
    withheld.extend(
        outcome
            .undeclared
            .iter()
            .map(|u| format!("(undeclared) {u}")),
    );
    rec.fields_withheld = withheld;
}

async fn read_and_filter_request(
    state: &AppState,
    permit: &Permit,
    req: Request<Incoming>,
) -> Result<(Bytes, FilterOutcome), ProxyError> {
    let bytes = read_json_body(req, state.server.max_request_body_bytes).await?;
    let (out, outcome) = permit
        .trie()
        .filter(&bytes, permit.allowed(), state.server.max_json_depth)
        .map_err(|_| ClientError::BadJson)?;
    Ok((Bytes::from(out), outcome))
}
