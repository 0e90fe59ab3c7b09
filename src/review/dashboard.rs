//! The admin listener: a second mTLS listener (same certificates, trust
//! anchors and CRLs as the gateway, from [`crate::gateway::tls::ServerTls`]) with
//!
//! - the privacy officer's **read-only dashboard**, server-rendered HTML
//!   without scripts or external assets, only for client certificates of an
//!   organisation with `privacy_officer = true` (others get 403): search and
//!   record detail, inzage for a pupil, what an organisation received per
//!   field, the kennisgevingen still to be notified, the DPIA report, chain
//!   verification.
//!   Every page view is recorded in the audit trail (`kind = access`) before
//!   the page is sent; if it cannot be recorded, the page is not shown.
//! - **operations endpoints** for any verified client certificate:
//!   `/health` (the process answers), `/ready` (policy loaded, audit writer
//!   running, store reachable), `/metrics` (Prometheus text).
//!
//! A pupil id is only ever accepted in a POST body, never in a URL (it
//! would end up in browser history and proxy logs).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use maud::{Markup, html};
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::json;
use tokio::net::TcpListener;

use crate::audit::{AuditConfig, Pseudonymiser, Store, StoredRow, WeakAuditor, admin};
use crate::config::{AdminConfig, Config};
use crate::gateway::identity::{self, IdentityError, PeerCert};
use crate::gateway::metrics::{self, Metrics};
use crate::gateway::reload::ReloadStats;
use crate::gateway::server::{Accepted, ConnectionLimits, accept_loop};
use crate::gateway::tls::ServerTls;
use crate::policy::PolicyStore;
use crate::policy::model::{Bron, PolicySet};
use crate::review::access::{self, Access, Viewer};
use crate::review::html;
use crate::review::query::{self, FilterInput};
use crate::review::{ReviewError, inzage, kennisgeving, ontvangen, rapport, spoed, when};

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error(transparent)]
    Store(#[from] crate::audit::StoreError),
    #[error(transparent)]
    Key(#[from] crate::audit::pseudonym::KeyError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// Everything the admin listener reads.
pub struct Dashboard {
    cfg: AdminConfig,
    audit_cfg: AuditConfig,
    header_read_timeout: Duration,
    policy: Arc<PolicyStore>,
    store: Store,
    pseudo: Pseudonymiser,
    audit: WeakAuditor,
    metrics: Arc<Metrics>,
    reloads: Arc<ReloadStats>,
    /// (name, file) of certificates whose expiry `/metrics` exports.
    certificates: Vec<(String, PathBuf)>,
    /// The last chain verification the dashboard ran, and whether one runs.
    verification: tokio::sync::Mutex<Verification>,
    /// The gateway's status cache, for its counts.
    status_cache: Option<Arc<crate::registers::cache::StatusCache>>,
}

/// The dashboard's verifications: one at a time, in the background.
#[derive(Default)]
struct Verification {
    running: bool,
    last: Option<LastVerification>,
}

struct LastVerification {
    at: String,
    incremental: bool,
    report: crate::audit::verify::Report,
}

impl Dashboard {
    /// Opens its own read pool on the audit store. Holds only a weak audit
    /// handle, so it never keeps the writer alive at shutdown.
    pub async fn new(
        cfg: &Config,
        admin_cfg: &AdminConfig,
        policy: Arc<PolicyStore>,
        audit: WeakAuditor,
        metrics: Arc<Metrics>,
        reloads: Arc<ReloadStats>,
    ) -> Result<Self, DashboardError> {
        let mut certificates = vec![("gateway".to_owned(), cfg.tls.cert.clone())];
        for (i, ca) in cfg.tls.client_ca.iter().enumerate() {
            certificates.push((format!("client-ca-{i}"), ca.clone()));
        }
        Ok(Self {
            cfg: admin_cfg.clone(),
            audit_cfg: cfg.audit.clone(),
            header_read_timeout: cfg.server.header_read_timeout(),
            policy,
            store: Store::connect(&cfg.audit.store).await?,
            pseudo: Pseudonymiser::from_file(&cfg.audit.pseudonym_key)?,
            audit,
            metrics,
            reloads,
            certificates,
            verification: tokio::sync::Mutex::default(),
            status_cache: None,
        })
    }

    /// Exports the counts of the gateway's status cache on `/metrics`.
    #[must_use]
    pub fn with_status_cache(
        mut self,
        cache: Option<Arc<crate::registers::cache::StatusCache>>,
    ) -> Self {
        self.status_cache = cache;
        self
    }
}

/// Serves the admin listener until `shutdown` resolves, through the
/// gateway's accept loop with the admin listener's own limits (see
/// [`crate::gateway::server`]): a short handshake deadline and few handshake slots,
/// so idle connections cannot lock the FG out.
pub async fn run(
    listener: TcpListener,
    tls: Arc<ServerTls>,
    dash: Arc<Dashboard>,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(dash.header_read_timeout)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let limits = ConnectionLimits {
        max_connections: dash.cfg.max_connections,
        max_handshakes: dash.cfg.max_handshakes,
        handshake_timeout: Duration::from_millis(dash.cfg.handshake_timeout_ms),
        listener: "admin",
    };
    accept_loop(listener, &tls, limits, &graceful, shutdown, move |conn| {
        serve_connection(Arc::clone(&dash), Arc::clone(&builder), conn)
    })
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}

/// Serves the requests of one established admin connection.
async fn serve_connection(
    dash: Arc<Dashboard>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    conn: Accepted,
) {
    let Accepted {
        stream,
        remote,
        watcher,
    } = conn;
    let peer = Arc::new(identity::peer_cert(stream.get_ref().1.peer_certificates()));
    let service = service_fn(move |req| {
        let dash = Arc::clone(&dash);
        let peer = Arc::clone(&peer);
        async move {
            let deadline = Duration::from_millis(dash.cfg.request_timeout_ms);
            // Own task: a disconnecting browser must not cancel an
            // access record halfway.
            let work = tokio::spawn(handle(dash, peer, req));
            let resp = match tokio::time::timeout(deadline, work).await {
                Ok(Ok(r)) => r,
                _ => page_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Niet gelukt",
                    "De pagina kon niet op tijd worden gemaakt.",
                ),
            };
            Ok::<_, Infallible>(resp)
        }
    });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(conn.into_owned()).await {
        tracing::debug!(%remote, error = %e, "admin connection ended with an error");
    }
}

/// Security headers of the gateway, with a CSP that allows the inline
/// stylesheet and same-origin forms and nothing else (no scripts at all).
fn headers(resp: &mut Response<Full<Bytes>>, content_type: &'static str) {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    crate::gateway::problem::add_security_headers(h);
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    headers(&mut r, content_type);
    r
}

fn page_error(status: StatusCode, title: &str, text: &str) -> Response<Full<Bytes>> {
    respond(
        status,
        "text/html; charset=utf-8",
        html::page(title, html! { h1 { (title) } "\n" p { (text) } }),
    )
}

/// Decodes `application/x-www-form-urlencoded` (also query strings).
pub fn parse_form(s: &str) -> BTreeMap<String, String> {
    let dec = |v: &str| {
        percent_decode_str(&v.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    s.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (dec(k), dec(v)),
            None => (dec(kv), String::new()),
        })
        .collect()
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// A rendered dashboard page, not yet sent: the access is recorded first.
struct Shown {
    title: String,
    body: Markup,
    action: &'static str,
    parameters: serde_json::Value,
    records: usize,
    pupil: Option<String>,
}

async fn handle(
    dash: Arc<Dashboard>,
    peer: Arc<Result<PeerCert, IdentityError>>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    if method != Method::GET && method != Method::POST {
        return page_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Niet toegestaan",
            "Alleen GET en POST.",
        );
    }
    let path = req.uri().path().to_owned();
    match path.as_str() {
        "/health" => return respond(StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into()),
        "/ready" => return ready(&dash).await,
        "/metrics" => return metrics_page(&dash),
        _ => {}
    }
    let snapshot = dash.policy.current();
    let set = &snapshot.set;
    let (org, fingerprint) = match privacy_officer(set, &peer) {
        Ok(who) => who,
        Err(why) => return page_error(StatusCode::FORBIDDEN, "Geen toegang", why),
    };
    if method == Method::POST && !same_origin(&req) {
        tracing::info!(
            org,
            "dashboard form refused: not sent from the dashboard itself"
        );
        return page_error(
            StatusCode::FORBIDDEN,
            "Geen toegang",
            "Dit formulier kan alleen vanaf het dashboard zelf worden verstuurd.",
        );
    }
    let params = match form_parameters(&dash, req).await {
        Ok(params) => params,
        Err(refused) => return refused,
    };
    let viewer = Viewer::Dashboard {
        org: org.clone(),
        fingerprint,
    };
    // The page's work stops at the deadline (a little before the
    // listener's own, so its access record is written first): a page that
    // was not shown is recorded as not shown, with nothing read for the FG.
    let deadline = Duration::from_millis(dash.cfg.request_timeout_ms).saturating_sub(PAGE_MARGIN);
    if deadline.is_zero() {
        // No time at all: not attempted (a page whose first step happened
        // to finish at once would otherwise be shown now and then).
        return timed_out(&dash, &viewer, &path).await;
    }
    let mut shown =
        match tokio::time::timeout(deadline, route(&dash, set, &viewer, &path, &params)).await {
            Ok(Ok(shown)) => shown,
            Ok(Err(refused)) => return refused,
            Err(_) => return timed_out(&dash, &viewer, &path).await,
        };
    if let Err(e) = record_view(&dash, &viewer, &mut shown).await {
        tracing::error!(error = %e, "dashboard access not recorded; page withheld");
        return page_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Niet gelukt",
            "Uw inzage kon niet in het logboek worden vastgelegd; daarom wordt niets getoond.",
        );
    }
    let org_name = set
        .organisations
        .get(&org)
        .map(|o| o.name.as_str())
        .unwrap_or(org.as_str());
    respond(
        StatusCode::OK,
        "text/html; charset=utf-8",
        html::page(&shown.title, chrome(org_name, shown.body)),
    )
}

/// How much earlier than the listener's deadline a page's work stops, so
/// that its access record is durable before the listener answers 503.
const PAGE_MARGIN: Duration = Duration::from_millis(250);

/// A page whose work did not finish in time: the access is recorded as a
/// page that was requested and not shown (nothing of it reached the FG),
/// and the FG gets a 503.
async fn timed_out(dash: &Dashboard, viewer: &Viewer, path: &str) -> Response<Full<Bytes>> {
    let mut shown = Shown {
        title: String::new(),
        body: html! {},
        action: "page-timeout",
        parameters: json!({"page": path, "shown": false, "reason": "timeout"}),
        records: 0,
        pupil: None,
    };
    if let Err(e) = record_view(dash, viewer, &mut shown).await {
        tracing::error!(error = %e, "dashboard timeout not recorded");
    }
    page_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "Niet gelukt",
        "De pagina kon niet op tijd worden gemaakt; er is niets getoond.",
    )
}

/// The organisation and certificate fingerprint of a privacy officer's
/// certificate; for any other certificate, why it is refused.
fn privacy_officer(
    set: &PolicySet,
    peer: &Result<PeerCert, IdentityError>,
) -> Result<(String, String), &'static str> {
    let cert = peer.as_ref().map_err(|_| "Geen geldig certificaat.")?;
    match identity::organisation_for(set, cert) {
        Ok(org)
            if set
                .organisations
                .get(&org)
                .is_some_and(|o| o.privacy_officer) =>
        {
            Ok((org, cert.fingerprint_hex()))
        }
        Ok(org) => {
            tracing::info!(org, "dashboard refused: not a privacy officer");
            Err(
                "Dit overzicht is alleen voor de functionaris gegevensbescherming (FG). Uw certificaat hoort bij een organisatie zonder die rol.",
            )
        }
        Err(_) => Err("Uw certificaat hoort bij geen organisatie in het partnerregister."),
    }
}

/// Whether a form was sent by a page of the dashboard itself: a browser
/// says where a request comes from (`Sec-Fetch-Site`; older ones only
/// `Origin`, which is `null` under the dashboard's `no-referrer` policy);
/// a form of another site, sent with the FG's certificate, is refused (no
/// change made on the FG's authority by someone else's page). Clients that
/// send neither header (curl, scripts with the FG's certificate) pass.
fn same_origin<B>(req: &Request<B>) -> bool {
    let h = req.headers();
    let header = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    // HTTP/1.1 names the host in `Host`, HTTP/2 in `:authority` (the URI).
    let host = header("host").or_else(|| req.uri().authority().map(http::uri::Authority::as_str));
    match (header("origin"), host) {
        (Some(origin), Some(host)) => origin.strip_prefix("https://").is_some_and(|o| o == host),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// The parameters of the query string and, for a POST, of the form body.
/// A pupil id only counts in a POST body: never from a URL.
async fn form_parameters(
    dash: &Dashboard,
    req: Request<Incoming>,
) -> Result<BTreeMap<String, String>, Response<Full<Bytes>>> {
    let method = req.method().clone();
    let mut params = parse_form(req.uri().query().unwrap_or(""));
    if method == Method::POST {
        let limit = dash.cfg.max_form_bytes;
        let body = match Limited::new(req.into_body(), limit).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return Err(page_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Te groot",
                    "Het formulier is te groot.",
                ));
            }
        };
        params.extend(parse_form(&String::from_utf8_lossy(&body)));
    }
    if method == Method::GET {
        params.remove("leerling");
    }
    Ok(params)
}

/// The page at `path`, or the error page to answer with instead.
async fn route(
    dash: &Arc<Dashboard>,
    set: &PolicySet,
    viewer: &Viewer,
    path: &str,
    params: &BTreeMap<String, String>,
) -> Result<Shown, Response<Full<Bytes>>> {
    let Viewer::Dashboard { org, .. } = viewer else {
        return Err(page_error(
            StatusCode::FORBIDDEN,
            "Geen toegang",
            "Alleen het dashboard.",
        ));
    };
    let result = match path {
        "/" => Ok(home(set, org)),
        "/zoeken" => search(dash, set, params).await,
        "/record" => record(dash, set, params).await,
        "/inzage" => inzage_page(dash, set, params).await,
        "/ontvangen" => ontvangen_page(dash, set, params).await,
        "/kennisgevingen" => kennisgevingen_page(dash, set).await,
        "/spoed" => spoed_page(dash, set, viewer, params).await,
        "/rapport" => rapport_page(dash, set, params).await,
        "/verificatie" => verification(dash, viewer, params).await,
        "/wijzigingen" => changes_page(dash, params).await,
        _ => {
            return Err(page_error(
                StatusCode::NOT_FOUND,
                "Niet gevonden",
                "Deze pagina bestaat niet.",
            ));
        }
    };
    result.map_err(|e| match e {
        ReviewError::Filter(m) => page_error(StatusCode::BAD_REQUEST, "Ongeldige invoer", &m),
        ReviewError::Emergency(m) => page_error(StatusCode::CONFLICT, "Niet mogelijk", &m),
        e => {
            tracing::error!(error = %e, "dashboard page failed");
            page_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Niet gelukt",
                "Het logboek kon niet worden gelezen.",
            )
        }
    })
}

/// Records the view in the trail; returns once the record is durable,
/// before the page leaves.
async fn record_view(
    dash: &Dashboard,
    viewer: &Viewer,
    shown: &mut Shown,
) -> Result<(), ReviewError> {
    let Some(auditor) = dash.audit.upgrade() else {
        return Err(ReviewError::Access(crate::audit::AuditError::WriterGone));
    };
    access::record(
        &auditor,
        Access {
            viewer,
            action: shown.action,
            parameters: shown.parameters.take(),
            records: shown.records,
            pupil: shown.pupil.take(),
        },
    )
    .await
}

/// The menu and footer around every FG page.
#[allow(
    clippy::needless_pass_by_value,
    reason = "takes the Markup that html! produces, like maud's own API"
)]
fn chrome(org_name: &str, body: Markup) -> Markup {
    html! {
        nav.menu {
            a href="/" { "Start" }
            a href="/zoeken" { "Zoeken" }
            a href="/inzage" { "Inzage" }
            a href="/ontvangen" { "Ontvangen" }
            a href="/kennisgevingen" { "Kennisgevingen" }
            a href="/spoed" { "Te beoordelen" }
            a href="/rapport" { "Rapport" }
            a href="/wijzigingen" { "Wijzigingen" }
            a href="/verificatie" { "Ketenverificatie" }
            span.meta { "Ingelogd als " (org_name) }
        }
        "\n" (body) "\n"
        footer {
            p.meta { "Alleen-lezen overzicht van het Poortwachter-logboek. Elke pagina die u opent, wordt zelf vastgelegd." }
        }
    }
}

async fn ready(dash: &Dashboard) -> Response<Full<Bytes>> {
    let writer = dash.audit.upgrade().is_some();
    let store = sqlx::query("SELECT 1")
        .fetch_one(dash.store.pool())
        .await
        .is_ok();
    let ok = writer && store;
    respond(
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        "application/json",
        json!({"ready": ok, "policy_version": &*dash.policy.current().version, "audit_writer": writer, "audit_store": store})
            .to_string(),
    )
}

fn metrics_page(dash: &Dashboard) -> Response<Full<Bytes>> {
    let snapshot = dash.policy.current();
    let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    let gauges = metrics::Gauges {
        audit_queue_depth: dash.audit.upgrade().map(|a| a.queue_depth()),
        audit_unwritten: dash.audit.upgrade().map(|a| a.unwritten()),
        reloads: metrics::Reloads {
            policy_ok: count(&dash.reloads.policy_ok),
            policy_failed: count(&dash.reloads.policy_failed),
            tls_ok: count(&dash.reloads.tls_ok),
            tls_failed: count(&dash.reloads.tls_failed),
        },
        certificate_expiry: dash
            .certificates
            .iter()
            .filter_map(|(n, p)| Some((n.clone(), crate::gateway::tls::certificate_not_after(p)?)))
            .collect(),
        policy_version: &snapshot.version,
        register_lookups: dash.status_cache.as_ref().map(|c| c.counts()),
    };
    match metrics::render(&dash.metrics, &gauges) {
        Ok(text) => respond(StatusCode::OK, metrics::CONTENT_TYPE, text),
        Err(_) => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            "metrics could not be encoded\n".to_owned(),
        ),
    }
}

fn home(set: &PolicySet, org: &str) -> Shown {
    let name = set
        .organisations
        .get(org)
        .map(|o| o.name.clone())
        .unwrap_or_else(|| org.to_owned());
    let body = html! {
        h1 { "Poortwachter: overzicht voor de FG" } "\n"
        p { "Welkom, " (name) ". Hier ziet u wat er via Poortwachter is gedeeld." } "\n"
        ul {
            "\n"
            li { a href="/zoeken" { "Zoeken in het logboek" } ": per periode, overleg, organisatie, leverancier, rol, doel, gegeven, besluit of leerling." } "\n"
            li { a href="/inzage" { "Inzage voor een leerling" } " (artikel 15 AVG): alle verstrekkingen met ontvanger, doel en grondslag." } "\n"
            li { a href="/ontvangen" { "Ontvangen per gegeven" } ": wat een organisatie in een overleg over een periode ontving, hoe vaak en over hoeveel leerlingen." } "\n"
            li { a href="/kennisgevingen" { "Kennisgevingen: nog te melden" } " (artikel 19 AVG): ontvangers die nog moeten horen van een rectificatie, wissing of beperking." } "\n"
            li { a href="/spoed" { "Te beoordelen: spoedverstrekkingen" } " (Meldcode, Veilig Thuis, acuut gevaar): beoordelen en vrijgeven voor inzage." } "\n"
            li { a href="/rapport" { "Verantwoordingsrapportage" } " (DPIA) over een periode, met opvallendheden." } "\n"
            li { a href="/wijzigingen" { "Policywijzigingen" } ": elke herlading en weigering, met de toegangsverandering en wie de versie goedkeurde." } "\n"
            li { a href="/verificatie" { "Ketenverificatie" } ": is het logboek ongeschonden?" } "\n"
        }
    };
    Shown {
        title: "Poortwachter FG-overzicht".into(),
        body,
        action: "dashboard",
        parameters: json!({"page": "/"}),
        records: 0,
        pupil: None,
    }
}

fn get(params: &BTreeMap<String, String>, k: &str) -> Option<String> {
    params
        .get(k)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// A non-breaking space: the empty label above a form's button.
const NBSP: char = '\u{a0}';

fn select(name: &str, label: &str, current: Option<&str>, options: &[(String, String)]) -> Markup {
    html! {
        label {
            (label)
            select name=(name) {
                option value="" { "(alle)" }
                @for (value, text) in options {
                    option value=(value) selected[current == Some(value.as_str())] { (text) }
                }
            }
        }
    }
}

fn input(name: &str, label: &str, value: Option<&str>, kind: &str) -> Markup {
    html! {
        label { (label) input type=(kind) name=(name) value=(value.unwrap_or("")); }
    }
}

/// `-` for a column the record does not have.
fn or_dash(v: Option<&String>) -> &str {
    v.map_or("-", String::as_str)
}

async fn search(
    dash: &Dashboard,
    set: &PolicySet,
    params: &BTreeMap<String, String>,
) -> Result<Shown, ReviewError> {
    let inp = FilterInput {
        from: get(params, "van"),
        to: get(params, "tot"),
        overleg: get(params, "overleg"),
        org: get(params, "org"),
        via: get(params, "leverancier"),
        role: get(params, "rol"),
        purpose: get(params, "doel"),
        field: get(params, "veld"),
        decision: get(params, "besluit"),
        kind: get(params, "soort"),
        pupil: get(params, "leerling"),
        limit: Some(dash.cfg.page_size),
    };
    let mut filter = inp.parse(&dash.pseudo)?;
    filter.newest_first = true;
    let rows = query::run(&dash.store, &filter).await?;
    let body = html! {
        h1 { "Zoeken in het logboek" } "\n"
        (search_form(set, &inp)) "\n"
        p id="aantal" {
            (rows.len()) " vastlegging(en)"
            @if filter.pupil {
                " over de opgegeven leerling (gezocht op pseudoniem; het nummer wordt niet getoond of bewaard)"
            }
            @if rows.len() >= filter.limit { " (de eerste " (filter.limit) ")" }
            ", nieuwste eerst."
        } "\n"
        (search_results(&rows)) "\n"
    };
    let pupil = inp.pupil.as_deref().map(|p| dash.pseudo.pseudonymise(p));
    Ok(Shown {
        title: "Zoeken in het logboek".into(),
        body,
        action: "query",
        parameters: json!(filter),
        records: rows.len(),
        pupil,
    })
}

/// The search form with every filter of `audit query`, filled in with the
/// current ones. The pupil id (last field) is never echoed back into the
/// page nor kept by the browser's autofill.
fn search_form(set: &PolicySet, inp: &FilterInput) -> Markup {
    let pairs = |items: &[&str]| -> Vec<(String, String)> {
        items
            .iter()
            .map(|o| ((*o).to_owned(), (*o).to_owned()))
            .collect()
    };
    let overleggen: Vec<(String, String)> = set
        .overleggen
        .values()
        .map(|o| (o.id.clone(), o.name.clone()))
        .collect();
    let orgs: Vec<(String, String)> = set
        .organisations
        .values()
        .map(|o| (o.id.clone(), o.name.clone()))
        .collect();
    let suppliers: Vec<(String, String)> = set
        .mandates
        .suppliers
        .values()
        .map(|s| (s.id.clone(), s.name.clone()))
        .collect();
    let outcomes = pairs(&query::OUTCOMES);
    let mut kinds = pairs(&query::KINDS);
    kinds.insert(0, ("all".into(), "all".into()));
    html! {
        form.zoeken method="post" action="/zoeken" {
            (input("van", "Van (JJJJ-MM-DD)", inp.from.as_deref(), "text"))
            (input("tot", "Tot en met", inp.to.as_deref(), "text"))
            (select("overleg", "Overleg", inp.overleg.as_deref(), &overleggen))
            (select("org", "Organisatie", inp.org.as_deref(), &orgs))
            (select("leverancier", "Via leverancier", inp.via.as_deref(), &suppliers))
            (input("rol", "Rol", inp.role.as_deref(), "text"))
            (input("doel", "Doel", inp.purpose.as_deref(), "text"))
            (input("veld", "Gedeeld gegeven (pad)", inp.field.as_deref(), "text"))
            (select("besluit", "Besluit", inp.decision.as_deref(), &outcomes))
            (select("soort", "Soort (standaard: verzoeken)", inp.kind.as_deref(), &kinds))
            label { "Leerling (nummer)" input type="text" name="leerling" autocomplete="off"; }
            label { (NBSP) button type="submit" id="zoek" { "Zoeken" } }
        }
    }
}

/// The found records, newest first, each linking to its detail page.
fn search_results(rows: &[StoredRow]) -> Markup {
    html! {
        table id="resultaten" {
            thead { tr {
                th { "Tijd" } th { "Organisatie" } th { "Rol" } th { "Overleg" } th { "Doel" }
                th { "Bron" } th { "Betrokkene" } th { "Besluit" } th { "Reden" }
                th.num { "Gedeeld" } th {}
            } }
            tbody {
                "\n"
                @for r in rows {
                    tr {
                        td { (when::dutch_readable(&r.time)) }
                        td { (or_dash(r.org.as_ref())) } td { (or_dash(r.role.as_ref())) } td { (or_dash(r.overleg.as_ref())) }
                        td { (or_dash(r.purpose.as_ref())) } td { (or_dash(r.bron.as_ref())) }
                        td { code { (r.pupil.as_deref().map(query::short_subject).unwrap_or_else(|| "-".into())) } }
                        td { (r.outcome) } td { (r.reason) }
                        td.num { (query::list(&r.fields_shared).len()) }
                        td { a href={ "/record?instance=" (enc(&r.instance)) "&seq=" (r.seq) } { "details" } }
                    } "\n"
                }
            }
        }
    }
}

async fn record(
    dash: &Dashboard,
    set: &PolicySet,
    params: &BTreeMap<String, String>,
) -> Result<Shown, ReviewError> {
    let instance = get(params, "instance").unwrap_or_default();
    let seq: i64 = get(params, "seq")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ReviewError::Filter("seq must be a number".into()))?;
    let row = query::record(&dash.store, &instance, seq).await?;
    let heading = html! { h1 { "Vastlegging " (instance) "#" (seq) } "\n" };
    let Some(r) = row else {
        return Ok(Shown {
            title: "Vastlegging".into(),
            body: html! { (heading) p { "Deze vastlegging bestaat niet." } "\n" },
            action: "record",
            parameters: json!({"instance": instance, "seq": seq}),
            records: 0,
            pupil: None,
        });
    };
    Ok(Shown {
        title: format!("Vastlegging {instance}#{seq}"),
        body: html! { (heading) (record_details(set, &r)) "\n" },
        action: "record",
        parameters: json!({"instance": instance, "seq": seq}),
        records: 1,
        pupil: r.pupil.clone(),
    })
}

/// Every column of one record, with organisation names and field labels.
fn record_details(set: &PolicySet, r: &StoredRow) -> Markup {
    let bron = r
        .bron
        .as_deref()
        .and_then(|b| set.bronnen.get(b))
        .map(|b| &**b);
    let detail = serde_json::from_str::<serde_json::Value>(&r.detail)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| r.detail.clone());
    html! {
        dl.kenmerken {
            dt { "Tijd" } dd { (when::dutch_readable(&r.time)) " (" code { (r.time) } ")" }
            dt { "Soort" } dd { (r.kind) }
            dt { "Organisatie" } dd { (organisation(set, r.org.as_ref())) }
            dt { "Leverancier" } dd { (supplier(set, r.supplier.as_ref())) }
            dt { "Certificaat" } dd { code { (or_dash(r.cert_fingerprint.as_ref())) } }
            dt { "Rol" } dd { (or_dash(r.role.as_ref())) }
            dt { "Grondslag" } dd { (or_dash(r.grondslag.as_ref())) }
            dt { "Overleg" } dd { (or_dash(r.overleg.as_ref())) }
            dt { "Doel" } dd { (or_dash(r.purpose.as_ref())) }
            dt { "Bron" } dd { (or_dash(r.bron.as_ref())) }
            dt { "Resource" } dd { code { (or_dash(r.resource.as_ref())) } }
            dt { "Betrokkene" } dd { code { (or_dash(r.pupil.as_ref())) } }
            dt { "Besluit" } dd { (r.outcome) " (" (r.reason) ")" }
            dt { "Status" } dd { (r.status) }
            dt { "Regels" } dd { (query::list(&r.rules).join(", ")) }
            dt { "Gedeeld" } dd { (field_list(bron, &r.fields_shared)) }
            dt { "Achtergehouden" } dd { (field_list(bron, &r.fields_withheld)) }
            dt { "Details" } dd { pre { (detail) } }
            dt { "Request-id" } dd { code { (r.request_id) } }
            dt { "Trace-id" } dd { code { (r.trace_id) } }
            dt { "Policyversie" } dd { code { (r.policy_version) } }
            dt { "Hash" } dd { code { (r.hash) } }
            dt { "Verwijderd (bewaartermijn)" } dd { (or_dash(r.purged_at.as_ref())) }
        }
    }
}

/// An organisation by name and id (the id alone when the registry no
/// longer lists it).
fn organisation(set: &PolicySet, id: Option<&String>) -> Markup {
    html! {
        @match id {
            Some(id) => {
                @match set.organisations.get(id) {
                    Some(o) => { (o.name) " (" code { (id) } ")" }
                    None => { code { (id) } }
                }
            }
            None => { "-" }
        }
    }
}

/// The software supplier a request came through, by name and id (the id
/// alone when the registry no longer lists it); `-` for a request an
/// organisation made with its own certificate.
fn supplier(set: &PolicySet, id: Option<&String>) -> Markup {
    html! {
        @match id {
            Some(id) => {
                @match set.mandates.suppliers.get(id) {
                    Some(s) => { (s.name) " (" code { (id) } ")" }
                    None => { code { (id) } }
                }
            }
            None => { "-" }
        }
    }
}

/// The fields of a record's JSON list, each with its catalogue label.
fn field_list(bron: Option<&Bron>, json: &str) -> Markup {
    html! {
        ul {
            @for f in query::list(json) {
                li {
                    @if let Some(label) = bron.and_then(|b| b.field_index(&f).map(|i| &b.catalogue[i].label)) {
                        (label) " "
                    }
                    code { (f) }
                }
            }
        }
    }
}

/// The form of the inzage page; the pupil field is never filled in.
fn inzage_form() -> Markup {
    html! {
        form.zoeken method="post" action="/inzage" {
            label { "Leerling (nummer)" input type="text" name="leerling" id="leerling" autocomplete="off"; }
            label { span { input type="checkbox" name="weigeringen" value="ja"; " ook geweigerde verzoeken" } }
            label { (NBSP) button type="submit" id="maak-inzage" { "Overzicht maken" } }
        }
    }
}

async fn inzage_page(
    dash: &Dashboard,
    set: &PolicySet,
    params: &BTreeMap<String, String>,
) -> Result<Shown, ReviewError> {
    let Some(pupil) = get(params, "leerling") else {
        return Ok(Shown {
            title: "Inzage voor een leerling".into(),
            body: html! {
                h1 { "Inzage voor een leerling" } "\n"
                p { "Maak het overzicht (artikel 15 AVG) van alle verstrekkingen over één leerling. Het leerlingnummer wordt niet bewaard; Poortwachter zoekt op het pseudoniem." }
                (inzage_form())
            },
            action: "dashboard",
            parameters: json!({"page": "/inzage"}),
            records: 0,
            pupil: None,
        });
    };
    let opts = inzage::Options {
        include_denied: params.contains_key("weigeringen"),
    };
    let report = inzage::build(&dash.store, set, &dash.pseudo, &pupil, opts).await?;
    // The page names the pupil only by pseudonym: the id would stay in the
    // browser's title, history and autofill.
    let pseudonym = dash.pseudo.pseudonymise(&pupil);
    Ok(Shown {
        title: "Inzage voor een leerling: overzicht".into(),
        body: html! { (inzage_form()) "\n" (report.html_body(&pseudonym)) },
        action: "inzage",
        parameters: json!({"include_denied": opts.include_denied}),
        records: report.records_read,
        pupil: Some(pseudonym),
    })
}

/// What an organisation received in an overleg over a period, per field
/// (`audit ontvangen`); the form alone until organisation and overleg are
/// chosen.
async fn ontvangen_page(
    dash: &Dashboard,
    set: &PolicySet,
    params: &BTreeMap<String, String>,
) -> Result<Shown, ReviewError> {
    let today = time::OffsetDateTime::now_utc();
    let van =
        get(params, "van").unwrap_or_else(|| when::dutch_day(today - time::Duration::days(30)));
    let tot = get(params, "tot").unwrap_or_else(|| when::dutch_day(today));
    let (org, overleg) = (get(params, "org"), get(params, "overleg"));
    let form = ontvangen_form(set, org.as_deref(), overleg.as_deref(), &van, &tot);
    let heading = html! { h1 { "Ontvangen per gegeven" } "\n" };
    let (Some(org), Some(overleg)) = (org, overleg) else {
        return Ok(Shown {
            title: "Ontvangen per gegeven".into(),
            body: html! {
                (heading)
                p { "Kies een organisatie, een overleg en een periode: per gegeven ziet u hoe vaak de organisatie het ontving, over hoeveel leerlingen, volgens welke regels en op welke grondslag." }
                (form)
            },
            action: "dashboard",
            parameters: json!({"page": "/ontvangen"}),
            records: 0,
            pupil: None,
        });
    };
    let f = FilterInput {
        org: Some(org),
        overleg: Some(overleg),
        from: Some(van.clone()),
        to: Some(tot.clone()),
        ..Default::default()
    }
    .parse(&dash.pseudo)?;
    let (Some(org), Some(overleg), Some(from), Some(to)) = (f.org, f.overleg, f.from, f.to) else {
        return Err(ReviewError::Filter(
            "organisatie en overleg zijn nodig".into(),
        ));
    };
    let report = ontvangen::build(&dash.store, set, &org, &overleg, from, to).await?;
    Ok(Shown {
        title: format!(
            "Ontvangen door {} van {van} tot en met {tot}",
            report.org_name
        ),
        body: html! { (heading) (form) "\n" (report.html_body()) },
        action: "ontvangen",
        parameters: json!({
            "org": report.org, "overleg": report.overleg, "from": report.from, "to": report.to,
            "disclosures": report.disclosures, "fields": report.fields.len(),
        }),
        records: report.records_read,
        pupil: None,
    })
}

fn ontvangen_form(
    set: &PolicySet,
    org: Option<&str>,
    overleg: Option<&str>,
    van: &str,
    tot: &str,
) -> Markup {
    let orgs: Vec<(String, String)> = set
        .organisations
        .values()
        .map(|o| (o.id.clone(), o.name.clone()))
        .collect();
    let overleggen: Vec<(String, String)> = set
        .overleggen
        .values()
        .map(|o| (o.id.clone(), o.name.clone()))
        .collect();
    html! {
        form.zoeken method="get" action="/ontvangen" {
            (select("org", "Organisatie", org, &orgs))
            (select("overleg", "Overleg", overleg, &overleggen))
            (input("van", "Van (JJJJ-MM-DD)", Some(van), "text"))
            (input("tot", "Tot en met", Some(tot), "text"))
            label { (NBSP) button type="submit" id="toon-ontvangen" { "Tonen" } }
        }
    }
}

/// The registered kennisgevingen whose recipients are not all marked
/// notified yet (`audit kennisgeving --registreer`, `audit
/// kennisgeving-gemeld`).
async fn kennisgevingen_page(dash: &Dashboard, set: &PolicySet) -> Result<Shown, ReviewError> {
    let (all, read) = kennisgeving::statuses(&dash.store).await?;
    let (open, done): (Vec<_>, Vec<_>) = all.into_iter().partition(|s| !s.open.is_empty());
    let name = |id: &str| inzage::org_name(set, id);
    let body = html! {
        h1 { "Kennisgevingen: nog te melden" } "\n"
        p { "Na een rectificatie, wissing of beperking moet elke ontvanger van de gegevens het horen (artikel 19 AVG). Een kennisgeving staat hier tot elke ontvanger als gemeld is vastgelegd met " code { "poortwachter audit kennisgeving-gemeld" } "." } "\n"
        p id="open" { (open.len()) " kennisgeving(en) nog niet afgerond; " (done.len()) " afgerond." } "\n"
        @if !open.is_empty() {
            table id="kennisgevingen" {
                thead { tr {
                    th { "Kennisgeving" } th { "Opgesteld" } th { "Leerling" } th { "Sinds" }
                    th { "Nog te melden" } th { "Gemeld" }
                } }
                tbody {
                    "\n"
                    @for s in &open {
                        @let k = &s.kennisgeving;
                        tr {
                            td { code { (k.id) } }
                            td { (when::dutch_readable(&k.time)) }
                            td { code { (k.subject.as_deref().map(query::short_subject).unwrap_or_else(|| "-".into())) } }
                            td { (when::dutch_readable(&k.since)) }
                            td { ul { @for o in &s.open { li { (name(o)) " " code { (o) } } } } }
                            td { ul { @for n in &s.notified {
                                li { (name(&n.org)) ", " (when::dutch_readable(&n.time)) " (" (n.reference) ")" }
                            } } }
                        } "\n"
                    }
                }
            }
        }
    };
    Ok(Shown {
        title: "Kennisgevingen: nog te melden".into(),
        body,
        action: "kennisgevingen",
        parameters: json!({"open": open.len(), "done": done.len()}),
        records: read,
        pupil: None,
    })
}

/// "Te beoordelen": the emergency review queue, and the FG's review or
/// release of one window when the form was sent (POST `actie`,
/// `venster`, `oordeel`, `notitie`). The change is recorded with its
/// register change; the page view as ever.
async fn spoed_page(
    dash: &Dashboard,
    set: &PolicySet,
    viewer: &Viewer,
    params: &BTreeMap<String, String>,
) -> Result<Shown, ReviewError> {
    let action = get(params, "actie");
    let done = match action.as_deref() {
        None => None,
        Some(a) => {
            let Some(auditor) = dash.audit.upgrade() else {
                return Err(ReviewError::Access(crate::audit::AuditError::WriterGone));
            };
            let id = get(params, "venster").unwrap_or_default();
            let w = match a {
                "beoordelen" => {
                    let verdict = get(params, "oordeel")
                        .as_deref()
                        .and_then(crate::registers::emergency::Review::parse)
                        .ok_or_else(|| {
                            ReviewError::Filter(
                                "kies gerechtvaardigd of niet gerechtvaardigd".into(),
                            )
                        })?;
                    let note = get(params, "notitie").unwrap_or_default();
                    spoed::review(&dash.store, &auditor, viewer, set, &id, verdict, &note).await?
                }
                "vrijgeven" => spoed::release(&dash.store, &auditor, viewer, set, &id).await?,
                _ => return Err(ReviewError::Filter("actie: beoordelen of vrijgeven".into())),
            };
            Some((a.to_owned(), w.id))
        }
    };
    let queue = spoed::queue(&dash.store, set).await?;
    let body = html! {
        @if let Some((a, id)) = &done {
            p.gedaan id="gedaan" { "Vastgelegd: venster " code { (id) } (if a == "beoordelen" { " beoordeeld." } else { " vrijgegeven voor inzage." }) } "\n"
        }
        (queue.html_body())
    };
    Ok(Shown {
        title: "Te beoordelen: spoedverstrekkingen".into(),
        body,
        action: "spoed",
        parameters: json!({"page": "/spoed", "actie": done.as_ref().map(|d| &d.0), "venster": done.as_ref().map(|d| &d.1), "windows": queue.entries.len()}),
        records: queue.entries.len(),
        pupil: None,
    })
}

async fn rapport_page(
    dash: &Dashboard,
    set: &PolicySet,
    params: &BTreeMap<String, String>,
) -> Result<Shown, ReviewError> {
    let today = time::OffsetDateTime::now_utc();
    let van =
        get(params, "van").unwrap_or_else(|| when::dutch_day(today - time::Duration::days(30)));
    let tot = get(params, "tot").unwrap_or_else(|| when::dutch_day(today));
    let (from, to) = (when::bound(&van, false)?, when::bound(&tot, true)?);
    let report =
        rapport::build(&dash.store, set, &from, &to, rapport::Thresholds::default()).await?;
    let body = html! {
        form.zoeken method="get" action="/rapport" {
            (input("van", "Van (JJJJ-MM-DD)", Some(&van), "text"))
            (input("tot", "Tot en met", Some(&tot), "text"))
            label { (NBSP) button type="submit" { "Rapport maken" } }
        }
        "\n" (report.html_body())
    };
    Ok(Shown {
        title: format!("Verantwoordingsrapportage {van} tot en met {tot}"),
        body,
        action: "rapport",
        parameters: json!({"from": from, "to": to}),
        records: report.records_read,
        pupil: None,
    })
}

/// `/verificatie`: the last verification the dashboard ran (the first
/// visit runs a full one), and a form that starts an incremental (from the
/// last verified heads) or full verification in the background, so the
/// listener never waits for a walk of the trail. The run records its own
/// access when it ends.
async fn verification(
    dash: &Arc<Dashboard>,
    viewer: &Viewer,
    params: &BTreeMap<String, String>,
) -> Result<Shown, ReviewError> {
    let kind = get(params, "soort");
    let first = dash.verification.lock().await.last.is_none();
    if let Some(kind) = kind {
        let started = start_verification(dash, viewer, kind == "incrementeel").await;
        return Ok(verification_page(dash, started, "verify-start", 0).await);
    }
    if first {
        let report = admin::verify(&dash.store, &dash.audit_cfg, None, None).await?;
        let records = report.chains.iter().map(|c| c.records).sum();
        let mut v = dash.verification.lock().await;
        v.last = Some(LastVerification {
            at: crate::audit::record::now_rfc3339(),
            incremental: false,
            report,
        });
        drop(v);
        return Ok(verification_page(dash, false, "verify", records).await);
    }
    Ok(verification_page(dash, false, "verify-status", 0).await)
}

/// Starts a verification in its own task unless one runs; whether it did.
async fn start_verification(dash: &Arc<Dashboard>, viewer: &Viewer, incremental: bool) -> bool {
    let mut v = dash.verification.lock().await;
    if v.running {
        return false;
    }
    v.running = true;
    let anchors = v
        .last
        .as_ref()
        .filter(|l| incremental && l.report.ok())
        .map(|l| l.report.witness.clone());
    drop(v);
    let (dash, viewer) = (Arc::clone(dash), viewer.clone());
    tokio::spawn(async move {
        let result = match &anchors {
            Some(a) => admin::verify_from(&dash.store, &dash.audit_cfg, None, a).await,
            None => admin::verify(&dash.store, &dash.audit_cfg, None, None).await,
        };
        let mut v = dash.verification.lock().await;
        v.running = false;
        let Ok(report) = result else {
            tracing::error!("background verification could not read the trail");
            return;
        };
        let mut shown = Shown {
            title: String::new(),
            body: html! {},
            action: "verify",
            parameters: json!({"ok": report.ok(), "findings": report.findings.len(), "incremental": anchors.is_some(), "background": true}),
            records: report.chains.iter().map(|c| c.records).sum(),
            pupil: None,
        };
        if let Err(e) = record_view(&dash, &viewer, &mut shown).await {
            tracing::error!(error = %e, "background verification not recorded; result discarded");
            return;
        }
        v.last = Some(LastVerification {
            at: crate::audit::record::now_rfc3339(),
            incremental: anchors.is_some(),
            report,
        });
    });
    true
}

/// The verification page: status, the last result, the start form.
async fn verification_page(
    dash: &Dashboard,
    started: bool,
    action: &'static str,
    records: usize,
) -> Shown {
    let v = dash.verification.lock().await;
    let body = html! {
        h1 { "Ketenverificatie" } "\n"
        @if v.running || started {
            p.meta #bezig { "Er loopt een verificatie; ververs deze pagina voor de uitkomst." } "\n"
        }
        @if let Some(last) = &v.last {
            p.meta { "Laatste verificatie: " (when::dutch_readable(&last.at))
                @if last.incremental { " (incrementeel, vanaf de vorige verificatie)" } @else { " (volledig)" } } "\n"
            (verification_result(&last.report))
        }
        form.zoeken method="post" action="/verificatie" {
            button type="submit" name="soort" value="incrementeel" { "Incrementeel verifiëren" } " "
            button type="submit" name="soort" value="volledig" { "Volledig verifiëren" }
        } "\n"
    };
    let ok = v.last.as_ref().map(|l| l.report.ok());
    Shown {
        title: "Ketenverificatie".into(),
        body,
        action,
        parameters: json!({"ok": ok, "started": started}),
        records,
        pupil: None,
    }
}

fn verification_result(report: &crate::audit::verify::Report) -> Markup {
    html! {
        @if report.ok() {
            p.ok #status { "In orde: elke hash klopt, elke keten sluit aan, elk ondertekend controlepunt is geldig." } "\n"
        } @else {
            p.fout #status { "NIET in orde: " (report.findings.len()) " bevinding(en)." }
            ul { "\n" @for f in &report.findings { li { (f) } "\n" } } "\n"
        }
        table {
            thead { tr {
                th { "Keten" } th.num { "Gecontroleerd" } th.num { "Laatste" }
                th.num { "Controlepunten" } th.num { "Verzegeld t/m" }
            } }
            tbody {
                "\n"
                @for c in &report.chains {
                    tr {
                        td { (c.instance) } td.num { (c.records) } td.num { (c.last_seq) }
                        td.num { (c.checkpoints) } td.num { (c.sealed_through) }
                    } "\n"
                }
            }
        }
        p.meta { "Vastleggingen na het laatste controlepunt zijn nog niet verzegeld; het volgende controlepunt dekt ze." } "\n"
    }
}

/// `/wijzigingen`: the policy changes of a period (default: everything),
/// with their access delta and approvals, as `audit wijzigingen`.
async fn changes_page(
    dash: &Dashboard,
    params: &BTreeMap<String, String>,
) -> Result<Shown, ReviewError> {
    let filter = FilterInput {
        from: get(params, "van"),
        to: get(params, "tot"),
        ..Default::default()
    }
    .parse(&dash.pseudo)?;
    let (changes, read) = crate::review::changes::list(&dash.store, &filter).await?;
    let short = |v: &str| v.get(..16).unwrap_or(v).to_owned();
    let body = html! {
        h1 { "Policywijzigingen" } "\n"
        form.zoeken method="get" action="/wijzigingen" {
            (input("van", "Van", get(params, "van").as_deref(), "date"))
            (input("tot", "Tot en met", get(params, "tot").as_deref(), "date"))
            button type="submit" { "Toon" }
        } "\n"
        table {
            thead { tr {
                th { "Tijd" } th { "Uitkomst" } th { "Aanleiding" } th { "Oud" } th { "Nieuw" }
                th.num { "Erbij" } th.num { "Eraf of gewijzigd" } th { "Goedgekeurd door" }
            } }
            tbody {
                "\n"
                @for c in &changes {
                    tr {
                        td { (when::dutch_readable(&c.time)) } td { (c.outcome) } td { (c.trigger) }
                        td { code { (short(&c.old_version)) } } td { code { (short(&c.new_version)) } }
                        td.num { (c.fields_gained.map_or("-".to_owned(), |n| n.to_string())) }
                        td.num { (c.fields_lost_or_changed.map_or("-".to_owned(), |n| n.to_string())) }
                        td {
                            @if c.missing_approvals.is_empty() { (c.approved_by.join(", ")) }
                            @else { strong { "ontbreekt: " (c.missing_approvals.join(", ")) } }
                        }
                    } "\n"
                }
            }
        }
        p.meta { (changes.len()) " wijziging(en)." } "\n"
    };
    Ok(Shown {
        title: "Policywijzigingen".into(),
        body,
        action: "wijzigingen",
        parameters: json!({"page": "/wijzigingen", "from": filter.from, "to": filter.to, "changes": changes.len()}),
        records: read,
        pupil: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditRecord;
    use crate::review::html::hostile::{self, TEXT};

    fn example_set() -> PolicySet {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");
        crate::policy::load_dir(std::path::Path::new(dir)).unwrap()
    }

    #[tokio::test]
    async fn error_pages_escape_the_message() {
        let resp = page_error(StatusCode::BAD_REQUEST, TEXT, TEXT);
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        // Title, heading and text.
        hostile::assert_escaped(&String::from_utf8_lossy(&body), 3);
    }

    #[test]
    fn form_fields_and_the_menu_escape_their_values() {
        let options = [(TEXT.to_owned(), TEXT.to_owned())];
        let form = html! {
            (input("van", TEXT, Some(TEXT), "text"))
            (select("org", TEXT, Some(TEXT), &options))
        }
        .into_string();
        hostile::assert_escaped(&form, 5);
        assert!(form.contains(&format!("value=\"{}\">", hostile::ESCAPED)));
        assert!(form.contains(&format!(
            "<option value=\"{0}\" selected>{0}</option>",
            hostile::ESCAPED
        )));
        let page = chrome(TEXT, html! { p { (TEXT) } }).into_string();
        hostile::assert_escaped(&page, 2);
    }

    #[test]
    fn record_details_escape_every_column() {
        let mut rec = AuditRecord::new("test-1", TEXT, TEXT);
        for column in [
            &mut rec.org,
            &mut rec.cert_fingerprint,
            &mut rec.role,
            &mut rec.grondslag,
            &mut rec.overleg,
            &mut rec.purpose,
            &mut rec.bron,
            &mut rec.resource,
            &mut rec.pupil,
            &mut rec.supplier,
        ] {
            *column = Some(TEXT.into());
        }
        rec.reason = TEXT.into();
        rec.rules = vec![TEXT.into()];
        rec.fields_shared = vec![TEXT.into()];
        rec.fields_withheld = vec![TEXT.into()];
        rec.policy_version = TEXT.into();
        rec.detail = TEXT.into();
        let row = StoredRow::from_owned(rec, 1, "0");
        let html = record_details(&example_set(), &row).into_string();
        // The ten columns above, reason, rules, both field lists, detail,
        // request id, trace id and policy version.
        hostile::assert_escaped(&html, 18);
    }

    /// The record view names the supplier a request came through: by its
    /// registry name, by id once the registry no longer lists it, and `-`
    /// for an organisation's own request.
    #[test]
    fn record_details_name_the_supplier() {
        let set = example_set();
        let row_via = |supplier: Option<&str>| {
            let mut rec = AuditRecord::new("test-1", "r1", &"0".repeat(32));
            rec.org = Some("vo-noorderlicht".into());
            rec.supplier = supplier.map(str::to_owned);
            StoredRow::from_owned(rec, 1, "0")
        };
        let shown = |supplier: Option<&str>| {
            let html = record_details(&set, &row_via(supplier)).into_string();
            let at = html.find("<dt>Leverancier</dt><dd>").unwrap() + 24;
            html[at..at + html[at..].find("</dd>").unwrap()].to_owned()
        };
        let name = &set.mandates.suppliers["las-leverancier"].name;
        assert_eq!(
            shown(Some("las-leverancier")),
            format!("{name} (<code>las-leverancier</code>)")
        );
        assert_eq!(
            shown(Some("vertrokken-leverancier")),
            "<code>vertrokken-leverancier</code>"
        );
        assert_eq!(shown(None), "-");
    }

    #[test]
    fn forms_decode() {
        let f = parse_form(
            "leerling=L1001&van=2026-11-01&veld=verzuim.meldingen%5B%5D.datum&x=a+b&leeg",
        );
        assert_eq!(f["leerling"], "L1001");
        assert_eq!(f["veld"], "verzuim.meldingen[].datum");
        assert_eq!(f["x"], "a b");
        assert_eq!(f["leeg"], "");
    }
}
