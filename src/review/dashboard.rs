//! The admin listener: a second mTLS listener (same certificates, trust
//! anchors and CRLs as the gateway, from [`crate::gateway::tls::ServerTls`]) with
//!
//! - the privacy officer's **read-only dashboard**, server-rendered HTML
//!   without scripts or external assets, only for client certificates of an
//!   organisation with `privacy_officer = true` (others get 403): search and
//!   record detail, inzage for a pupil, the DPIA report, chain verification.
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
use std::fmt::Write as _;
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
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::json;
use tokio::net::TcpListener;

use crate::audit::{AuditConfig, Pseudonymiser, Store, WeakAuditor, admin};
use crate::config::{AdminConfig, Config};
use crate::gateway::identity::{self, IdentityError, PeerCert};
use crate::gateway::metrics::{self, Metrics};
use crate::gateway::reload::ReloadStats;
use crate::gateway::server::{Accepted, ConnectionLimits, accept_loop};
use crate::gateway::tls::ServerTls;
use crate::policy::PolicyStore;
use crate::policy::model::PolicySet;
use crate::review::access::{self, Access, Viewer};
use crate::review::html::{self, esc};
use crate::review::query::{self, FilterInput};
use crate::review::{ReviewError, inzage, rapport, when};

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
        })
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
        html::page(
            title,
            &format!("<h1>{}</h1>\n<p>{}</p>", esc(title), esc(text)),
        ),
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
    body: String,
    action: &'static str,
    parameters: serde_json::Value,
    records: usize,
    subject: Option<String>,
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
    // Identity: a privacy officer's certificate, or nothing.
    let (org, fingerprint) = match peer.as_ref() {
        Ok(cert) => match identity::organisation_for(set, cert) {
            Ok(org)
                if set
                    .organisations
                    .get(&org)
                    .is_some_and(|o| o.privacy_officer) =>
            {
                (org, cert.fingerprint_hex())
            }
            Ok(org) => {
                tracing::info!(org, "dashboard refused: not a privacy officer");
                return page_error(
                    StatusCode::FORBIDDEN,
                    "Geen toegang",
                    "Dit overzicht is alleen voor de functionaris gegevensbescherming (FG). Uw certificaat hoort bij een organisatie zonder die rol.",
                );
            }
            Err(_) => {
                return page_error(
                    StatusCode::FORBIDDEN,
                    "Geen toegang",
                    "Uw certificaat hoort bij geen organisatie in het partnerregister.",
                );
            }
        },
        Err(_) => {
            return page_error(
                StatusCode::FORBIDDEN,
                "Geen toegang",
                "Geen geldig certificaat.",
            );
        }
    };
    let query_string = req.uri().query().unwrap_or("").to_owned();
    let mut params = parse_form(&query_string);
    if method == Method::POST {
        let limit = dash.cfg.max_form_bytes;
        let body = match Limited::new(req.into_body(), limit).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return page_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Te groot",
                    "Het formulier is te groot.",
                );
            }
        };
        params.extend(parse_form(&String::from_utf8_lossy(&body)));
    }
    // A pupil id only counts in a POST body: never from a URL.
    if method == Method::GET {
        params.remove("leerling");
    }
    let result = match path.as_str() {
        "/" => Ok(home(set, &org)),
        "/zoeken" => search(&dash, set, &params).await,
        "/record" => record(&dash, set, &params).await,
        "/inzage" => inzage_page(&dash, set, &params).await,
        "/rapport" => rapport_page(&dash, set, &params).await,
        "/verificatie" => verification(&dash).await,
        _ => {
            return page_error(
                StatusCode::NOT_FOUND,
                "Niet gevonden",
                "Deze pagina bestaat niet.",
            );
        }
    };
    let shown = match result {
        Ok(s) => s,
        Err(ReviewError::Filter(m)) => {
            return page_error(StatusCode::BAD_REQUEST, "Ongeldige invoer", &m);
        }
        Err(e) => {
            tracing::error!(error = %e, "dashboard page failed");
            return page_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Niet gelukt",
                "Het logboek kon niet worden gelezen.",
            );
        }
    };
    // The access is durable before the page leaves.
    let viewer = Viewer::Dashboard {
        org: org.clone(),
        fingerprint,
    };
    let recorded = match dash.audit.upgrade() {
        Some(auditor) => {
            access::record(
                &auditor,
                Access {
                    viewer: &viewer,
                    action: shown.action,
                    parameters: shown.parameters,
                    records: shown.records,
                    subject: shown.subject,
                },
            )
            .await
        }
        None => Err(ReviewError::Access(crate::audit::AuditError::WriterGone)),
    };
    if let Err(e) = recorded {
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
    let body = format!(
        "<nav class=\"menu\"><a href=\"/\">Start</a><a href=\"/zoeken\">Zoeken</a><a href=\"/inzage\">Inzage</a><a href=\"/rapport\">Rapport</a><a href=\"/verificatie\">Ketenverificatie</a><span class=\"meta\">Ingelogd als {}</span></nav>\n{}\n<footer><p class=\"meta\">Alleen-lezen overzicht van het Poortwachter-logboek. Elke pagina die u opent, wordt zelf vastgelegd.</p></footer>",
        esc(org_name),
        shown.body
    );
    respond(
        StatusCode::OK,
        "text/html; charset=utf-8",
        html::page(&shown.title, &body),
    )
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
    let body = format!(
        "<h1>Poortwachter: overzicht voor de FG</h1>\n<p>Welkom, {}. Hier ziet u wat er via Poortwachter is gedeeld.</p>\n<ul>\n<li><a href=\"/zoeken\">Zoeken in het logboek</a>: per periode, overleg, organisatie, rol, doel, gegeven, besluit of leerling.</li>\n<li><a href=\"/inzage\">Inzage voor een leerling</a> (artikel 15 AVG): alle verstrekkingen met ontvanger, doel en grondslag.</li>\n<li><a href=\"/rapport\">Verantwoordingsrapportage</a> (DPIA) over een periode, met opvallendheden.</li>\n<li><a href=\"/verificatie\">Ketenverificatie</a>: is het logboek ongeschonden?</li>\n</ul>",
        esc(&name)
    );
    Shown {
        title: "Poortwachter FG-overzicht".into(),
        body,
        action: "dashboard",
        parameters: json!({"page": "/"}),
        records: 0,
        subject: None,
    }
}

fn get(params: &BTreeMap<String, String>, k: &str) -> Option<String> {
    params
        .get(k)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn select(name: &str, label: &str, current: Option<&str>, options: &[(String, String)]) -> String {
    let mut s = format!(
        "<label>{}<select name=\"{name}\"><option value=\"\">(alle)</option>",
        esc(label)
    );
    for (value, text) in options {
        let sel = if current == Some(value.as_str()) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            s,
            "<option value=\"{}\"{sel}>{}</option>",
            esc(value),
            esc(text)
        );
    }
    s.push_str("</select></label>");
    s
}

fn input(name: &str, label: &str, value: Option<&str>, kind: &str) -> String {
    format!(
        "<label>{}<input type=\"{kind}\" name=\"{name}\" value=\"{}\"></label>",
        esc(label),
        esc(value.unwrap_or(""))
    )
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
    let outcomes: Vec<(String, String)> = query::OUTCOMES
        .iter()
        .map(|o| ((*o).to_owned(), (*o).to_owned()))
        .collect();
    let kinds: Vec<(String, String)> = ["all", "reload", "purge", "access", "checkpoint"]
        .iter()
        .map(|k| ((*k).to_owned(), (*k).to_owned()))
        .collect();
    let mut o = String::new();
    let _ = writeln!(o, "<h1>Zoeken in het logboek</h1>");
    // The pupil id (last field) is never echoed back into the page nor kept
    // by the browser's autofill.
    let _ = writeln!(
        o,
        "<form class=\"zoeken\" method=\"post\" action=\"/zoeken\">{}{}{}{}{}{}{}{}{}<label>Leerling (nummer)<input type=\"text\" name=\"leerling\" autocomplete=\"off\"></label><label>&nbsp;<button type=\"submit\" id=\"zoek\">Zoeken</button></label></form>",
        input("van", "Van (JJJJ-MM-DD)", inp.from.as_deref(), "text"),
        input("tot", "Tot en met", inp.to.as_deref(), "text"),
        select("overleg", "Overleg", inp.overleg.as_deref(), &overleggen),
        select("org", "Organisatie", inp.org.as_deref(), &orgs),
        input("rol", "Rol", inp.role.as_deref(), "text"),
        input("doel", "Doel", inp.purpose.as_deref(), "text"),
        input(
            "veld",
            "Gedeeld gegeven (pad)",
            inp.field.as_deref(),
            "text"
        ),
        select("besluit", "Besluit", inp.decision.as_deref(), &outcomes),
        select(
            "soort",
            "Soort (standaard: verzoeken)",
            inp.kind.as_deref(),
            &kinds
        ),
    );
    let _ = writeln!(
        o,
        "<p id=\"aantal\">{} vastlegging(en){}{}, nieuwste eerst.</p>",
        rows.len(),
        if filter.pupil {
            " over de opgegeven leerling (gezocht op pseudoniem; het nummer wordt niet getoond of bewaard)"
        } else {
            ""
        },
        if rows.len() >= filter.limit {
            format!(" (de eerste {})", filter.limit)
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        o,
        "<table id=\"resultaten\"><thead><tr><th>Tijd</th><th>Organisatie</th><th>Rol</th><th>Overleg</th><th>Doel</th><th>Bron</th><th>Betrokkene</th><th>Besluit</th><th>Reden</th><th class=\"num\">Gedeeld</th><th></th></tr></thead><tbody>"
    );
    for r in &rows {
        let d = |v: &Option<String>| esc(v.as_deref().unwrap_or("-"));
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td><a href=\"/record?instance={}&amp;seq={}\">details</a></td></tr>",
            esc(&when::dutch_readable(&r.time)),
            d(&r.org),
            d(&r.role),
            d(&r.overleg),
            d(&r.purpose),
            d(&r.bron),
            esc(&r
                .subject
                .as_deref()
                .map(query::short_subject)
                .unwrap_or_else(|| "-".into())),
            esc(&r.outcome),
            esc(&r.reason),
            query::list(&r.fields_shared).len(),
            enc(&r.instance),
            r.seq
        );
    }
    let _ = writeln!(o, "</tbody></table>");
    let subject = inp.pupil.as_deref().map(|p| dash.pseudo.pseudonymise(p));
    Ok(Shown {
        title: "Zoeken in het logboek".into(),
        body: o,
        action: "query",
        parameters: json!(filter),
        records: rows.len(),
        subject,
    })
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
    let mut o = String::new();
    let _ = writeln!(o, "<h1>Vastlegging {}#{}</h1>", esc(&instance), seq);
    let Some(r) = row else {
        let _ = writeln!(o, "<p>Deze vastlegging bestaat niet.</p>");
        return Ok(Shown {
            title: "Vastlegging".into(),
            body: o,
            action: "record",
            parameters: json!({"instance": instance, "seq": seq}),
            records: 0,
            subject: None,
        });
    };
    let bron = r.bron.as_deref().and_then(|b| set.bronnen.get(b));
    let fields = |json: &str| {
        let mut s = String::from("<ul>");
        for f in query::list(json) {
            let label = bron
                .and_then(|b| b.field_index(&f).map(|i| b.catalogue[i].label.clone()))
                .map(|l| format!("{} ", esc(&l)))
                .unwrap_or_default();
            let _ = write!(s, "<li>{label}<code>{}</code></li>", esc(&f));
        }
        s.push_str("</ul>");
        s
    };
    let org_name = |id: &Option<String>| match id {
        Some(id) => set
            .organisations
            .get(id)
            .map(|o| format!("{} (<code>{}</code>)", esc(&o.name), esc(id)))
            .unwrap_or_else(|| format!("<code>{}</code>", esc(id))),
        None => "-".into(),
    };
    let d = |v: &Option<String>| esc(v.as_deref().unwrap_or("-"));
    let detail = serde_json::from_str::<serde_json::Value>(&r.detail)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| r.detail.clone());
    let _ = writeln!(
        o,
        "<dl class=\"kenmerken\"><dt>Tijd</dt><dd>{} (<code>{}</code>)</dd><dt>Soort</dt><dd>{}</dd><dt>Organisatie</dt><dd>{}</dd><dt>Certificaat</dt><dd><code>{}</code></dd><dt>Rol</dt><dd>{}</dd><dt>Grondslag</dt><dd>{}</dd><dt>Overleg</dt><dd>{}</dd><dt>Doel</dt><dd>{}</dd><dt>Bron</dt><dd>{}</dd><dt>Resource</dt><dd><code>{}</code></dd><dt>Betrokkene</dt><dd><code>{}</code></dd><dt>Besluit</dt><dd>{} ({})</dd><dt>Status</dt><dd>{}</dd><dt>Regels</dt><dd>{}</dd><dt>Gedeeld</dt><dd>{}</dd><dt>Achtergehouden</dt><dd>{}</dd><dt>Details</dt><dd><pre>{}</pre></dd><dt>Request-id</dt><dd><code>{}</code></dd><dt>Trace-id</dt><dd><code>{}</code></dd><dt>Policyversie</dt><dd><code>{}</code></dd><dt>Hash</dt><dd><code>{}</code></dd><dt>Verwijderd (bewaartermijn)</dt><dd>{}</dd></dl>",
        esc(&when::dutch_readable(&r.time)),
        esc(&r.time),
        esc(&r.kind),
        org_name(&r.org),
        d(&r.cert_fingerprint),
        d(&r.role),
        d(&r.grondslag),
        d(&r.overleg),
        d(&r.purpose),
        d(&r.bron),
        d(&r.resource),
        d(&r.subject),
        esc(&r.outcome),
        esc(&r.reason),
        r.status,
        esc(&query::list(&r.rules).join(", ")),
        fields(&r.fields_shared),
        fields(&r.fields_withheld),
        esc(&detail),
        esc(&r.request_id),
        esc(&r.trace_id),
        esc(&r.policy_version),
        esc(&r.hash),
        d(&r.purged_at),
    );
    Ok(Shown {
        title: format!("Vastlegging {instance}#{seq}"),
        body: o,
        action: "record",
        parameters: json!({"instance": instance, "seq": seq}),
        records: 1,
        subject: r.subject.clone(),
    })
}

async fn inzage_page(
    dash: &Dashboard,
    set: &PolicySet,
    params: &BTreeMap<String, String>,
) -> Result<Shown, ReviewError> {
    let form = "<form class=\"zoeken\" method=\"post\" action=\"/inzage\"><label>Leerling (nummer)<input type=\"text\" name=\"leerling\" id=\"leerling\" autocomplete=\"off\"></label><label><span><input type=\"checkbox\" name=\"weigeringen\" value=\"ja\"> ook geweigerde verzoeken</span></label><label>&nbsp;<button type=\"submit\" id=\"maak-inzage\">Overzicht maken</button></label></form>";
    let Some(pupil) = get(params, "leerling") else {
        return Ok(Shown {
            title: "Inzage voor een leerling".into(),
            body: format!(
                "<h1>Inzage voor een leerling</h1>\n<p>Maak het overzicht (artikel 15 AVG) van alle verstrekkingen over één leerling. Het leerlingnummer wordt niet bewaard; Poortwachter zoekt op het pseudoniem.</p>{form}"
            ),
            action: "dashboard",
            parameters: json!({"page": "/inzage"}),
            records: 0,
            subject: None,
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
        body: format!("{form}\n{}", report.html_body(&pseudonym)),
        action: "inzage",
        parameters: json!({"include_denied": opts.include_denied}),
        records: report.records_read,
        subject: Some(pseudonym),
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
    let form = format!(
        "<form class=\"zoeken\" method=\"get\" action=\"/rapport\">{}{}<label>&nbsp;<button type=\"submit\">Rapport maken</button></label></form>",
        input("van", "Van (JJJJ-MM-DD)", Some(&van), "text"),
        input("tot", "Tot en met", Some(&tot), "text"),
    );
    Ok(Shown {
        title: format!("Verantwoordingsrapportage {van} tot en met {tot}"),
        body: format!("{form}\n{}", report.html_body()),
        action: "rapport",
        parameters: json!({"from": from, "to": to}),
        records: report.records_read,
        subject: None,
    })
}

async fn verification(dash: &Dashboard) -> Result<Shown, ReviewError> {
    let report = admin::verify(&dash.store, &dash.audit_cfg, None, None).await?;
    let mut o = String::new();
    let _ = writeln!(o, "<h1>Ketenverificatie</h1>");
    if report.ok() {
        let _ = writeln!(
            o,
            "<p class=\"ok\" id=\"status\">In orde: elke hash klopt, elke keten sluit aan, elk ondertekend controlepunt is geldig.</p>"
        );
    } else {
        let _ = writeln!(
            o,
            "<p class=\"fout\" id=\"status\">NIET in orde: {} bevinding(en).</p><ul>",
            report.findings.len()
        );
        for f in &report.findings {
            let _ = writeln!(o, "<li>{}</li>", esc(&f.to_string()));
        }
        let _ = writeln!(o, "</ul>");
    }
    let _ = writeln!(
        o,
        "<table><thead><tr><th>Keten</th><th class=\"num\">Vastleggingen</th><th class=\"num\">Laatste</th><th class=\"num\">Controlepunten</th><th class=\"num\">Verzegeld t/m</th></tr></thead><tbody>"
    );
    let mut records = 0;
    for c in &report.chains {
        records += c.records;
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&c.instance),
            c.records,
            c.last_seq,
            c.checkpoints,
            c.sealed_through
        );
    }
    let _ = writeln!(
        o,
        "</tbody></table><p class=\"meta\">Vastleggingen na het laatste controlepunt zijn nog niet verzegeld; het volgende controlepunt dekt ze.</p>"
    );
    Ok(Shown {
        title: "Ketenverificatie".into(),
        body: o,
        action: "verify",
        parameters: json!({"ok": report.ok(), "findings": report.findings.len()}),
        records,
        subject: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
