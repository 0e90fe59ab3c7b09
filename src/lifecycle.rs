//! Wiring: builds the gateway's shared state from a configuration. Used by
//! `serve`, `demo` and the integration tests alike, so they run the same code.

use std::sync::Arc;

use crate::audit::{
    AuditError, AuditRecord, Auditor, Outcome, Pseudonymiser, Signer, Store, WeakAuditor,
    pseudonym::KeyError,
};
use crate::config::Config;
use crate::gateway::identity;
use crate::gateway::state::AppState;
use crate::gateway::tls::TlsRefusal;
use crate::gateway::tls::{ServerTls, TlsError};
use crate::gateway::upstream::Upstream;
use crate::policy::{PolicyStore, ReloadError};
use crate::registers::Registers;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("policy: {0}")]
    Policy(#[from] ReloadError),
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("audit: {0}")]
    Audit(#[from] AuditError),
    #[error("audit: {0}")]
    Key(#[from] KeyError),
    #[error("admin listener: {0}")]
    Dashboard(#[from] crate::review::dashboard::DashboardError),
    #[error("upstream.base_urls names bronnen that the policy set does not declare: {0}")]
    UnknownBron(String),
}

/// A built gateway, ready for [`crate::gateway::server::run`].
pub struct Gateway {
    pub state: Arc<AppState>,
    pub tls: Arc<ServerTls>,
    pub reload_stats: Arc<crate::gateway::reload::ReloadStats>,
    /// The audit writer; finishes after the last [`Auditor`] handle is dropped.
    pub audit_writer: tokio::task::JoinHandle<()>,
}

pub async fn build(cfg: &Config) -> Result<Gateway, AppError> {
    let policy = Arc::new(PolicyStore::open(&cfg.policy.dir).await?);
    // An override for a bron that does not exist is almost certainly a typo
    // that would leave the real bron pointing at its policy default.
    let unknown: Vec<&String> = cfg
        .upstream
        .base_urls
        .keys()
        .filter(|b| !policy.current().set.bronnen.contains_key(*b))
        .collect();
    if !unknown.is_empty() {
        return Err(AppError::UnknownBron(
            unknown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    let (refusals_tx, refusals) = tokio::sync::mpsc::channel(1024);
    let tls = Arc::new(ServerTls::with_refusals(
        cfg.tls.clone(),
        Some(refusals_tx),
    )?);
    let upstream = Upstream::new(&cfg.upstream)?;
    let pseudo = Pseudonymiser::from_file(&cfg.audit.pseudonym_key)?;
    let store = Store::connect(&cfg.audit.store)
        .await
        .map_err(AuditError::Store)?;
    let signer = Signer::from_file(&cfg.audit.signing_key).map_err(AuditError::SigningKey)?;
    let (audit, audit_writer) = Auditor::start(
        store.clone(),
        &cfg.server.instance,
        pseudo,
        signer,
        &cfg.audit,
    )
    .await?;
    let registers = Registers::new(
        store,
        audit.clone(),
        cfg.revocation_grace(),
        cfg.request_lifetime(),
        std::time::Duration::from_millis(cfg.registers.lookup_timeout_ms),
    );
    tokio::spawn(record_tls_refusals(
        refusals,
        audit.downgrade(),
        Arc::clone(&policy),
    ));
    let state = Arc::new(AppState {
        server: cfg.server.clone(),
        policy,
        upstream,
        audit,
        registers,
        metrics: Arc::default(),
    });
    Ok(Gateway {
        state,
        tls,
        reload_stats: Arc::default(),
        audit_writer,
    })
}

/// Records handshake refusals of genuine certificates (issued by a trusted
/// CA, refused for validity, revocation or key usage) of known organisations.
/// Certificates of unknown issuers are only logged: their subject is a claim,
/// and attributing it would put a false accusation in the trail.
async fn record_tls_refusals(
    mut rx: tokio::sync::mpsc::Receiver<TlsRefusal>,
    audit: WeakAuditor,
    policy: Arc<PolicyStore>,
) {
    while let Some(r) = rx.recv().await {
        let chain = [rustls::pki_types::CertificateDer::from(r.end_entity)];
        let cert = match identity::peer_cert(Some(&chain)) {
            Ok(c) => c,
            Err(_) => continue,
        };
        let org = identity::organisation_for(&policy.current().set, &cert).ok();
        tracing::info!(
            reason = r.reason,
            org = org.as_deref().unwrap_or("-"),
            genuine = r.genuine,
            "client certificate refused"
        );
        let (Some(org), true) = (org, r.genuine) else {
            continue;
        };
        let Some(auditor) = audit.upgrade() else {
            break;
        };
        let id = uuid::Uuid::new_v4();
        let mut rec = AuditRecord::new(
            auditor.instance(),
            &id.to_string(),
            &id.simple().to_string(),
        );
        rec.org = Some(org);
        rec.cert_fingerprint = Some(cert.fingerprint_hex());
        rec.outcome = Outcome::Denied;
        rec.reason = r.reason.to_owned();
        rec.side = Some("client");
        rec.policy_version = policy.current().version.to_string();
        if let Err(e) = auditor.commit(rec).await {
            tracing::error!(error = %e, "could not record a TLS refusal");
        }
    }
}

/// Starts hot reload for a built gateway: SIGHUP and, when
/// `policy.watch` is on, file changes. Background tasks hold only weak audit
/// handles, so shutdown can drain the audit writer. Keep the returned value
/// alive while serving.
pub fn start_reloading(
    gw: &Gateway,
    cfg: &Config,
) -> Result<Option<notify::RecommendedWatcher>, crate::gateway::reload::WatchError> {
    let audit = gw.state.audit.downgrade();
    #[cfg(unix)]
    {
        let policy = Arc::clone(&gw.state.policy);
        let tls = Arc::clone(&gw.tls);
        let stats = Arc::clone(&gw.reload_stats);
        let audit = audit.clone();
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while hup.recv().await.is_some() {
                crate::gateway::reload::reload_policy(&policy, &audit, &stats, "SIGHUP").await;
                crate::gateway::reload::reload_tls(&tls, &audit, &stats, "SIGHUP").await;
            }
        });
    }
    if !cfg.policy.watch {
        return Ok(None);
    }
    let mut tls_files = vec![cfg.tls.cert.clone(), cfg.tls.key.clone()];
    tls_files.extend(cfg.tls.client_ca.iter().cloned());
    tls_files.extend(cfg.tls.crls.iter().cloned());
    crate::gateway::reload::watch(crate::gateway::reload::Watched {
        policy: Arc::clone(&gw.state.policy),
        tls: Arc::clone(&gw.tls),
        audit,
        stats: Arc::clone(&gw.reload_stats),
        tls_files,
        debounce: std::time::Duration::from_millis(cfg.policy.watch_debounce_ms),
    })
    .map(Some)
}

/// Starts the admin listener (FG dashboard, health, readiness, metrics) when
/// `[admin]` is configured, on the gateway's TLS configuration (so reloads of
/// certificates and CRLs apply to both). Returns the bound address and the
/// server task, which ends after `shutdown` resolves. It holds only a weak
/// audit handle, so shutdown can still drain the audit writer.
pub async fn start_admin(
    gw: &Gateway,
    cfg: &Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Option<(std::net::SocketAddr, tokio::task::JoinHandle<()>)>, AppError> {
    let Some(admin) = &cfg.admin else {
        return Ok(None);
    };
    let dash = crate::review::dashboard::Dashboard::new(
        cfg,
        admin,
        Arc::clone(&gw.state.policy),
        gw.state.audit.downgrade(),
        Arc::clone(&gw.state.metrics),
        Arc::clone(&gw.reload_stats),
    )
    .await?;
    let listener = tokio::net::TcpListener::bind(admin.listen)
        .await
        .map_err(|source| crate::review::dashboard::DashboardError::Listen {
            addr: admin.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| {
        crate::review::dashboard::DashboardError::Listen {
            addr: admin.listen,
            source,
        }
    })?;
    tracing::info!(%addr, "admin listener (FG dashboard, /health, /ready, /metrics)");
    let handle = tokio::spawn(crate::review::dashboard::run(
        listener,
        Arc::clone(&gw.tls),
        Arc::new(dash),
        shutdown,
    ));
    Ok(Some((addr, handle)))
}
