//! The gateway's lifecycle, one sequence for `serve`, `demo` and the tests:
//! [`Gateway::start`] builds everything from a configuration and serves on
//! already bound [`Listeners`] (tests bind port 0); [`Running::stop`] (or
//! the shutdown future) stops accepting and drains the gateway listener,
//! stops the admin listener, the purge scheduler and the reload watchers,
//! and waits for the audit writer to write what is queued and seal its
//! chain with a final checkpoint.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::audit::{
    AuditError, AuditRecord, Auditor, Outcome, Pseudonymiser, Signer, Store, WeakAuditor,
    pseudonym::KeyError,
};
use crate::config::Config;
use crate::gateway::identity;
use crate::gateway::reload::{self, ReloadStats, WatchError};
use crate::gateway::server;
use crate::gateway::state::AppState;
use crate::gateway::tls::{ServerTls, TlsError, TlsRefusal};
use crate::gateway::upstream::Upstream;
use crate::policy::approval::Approvers;
use crate::policy::{PolicyStore, ReloadError};
use crate::registers::Registers;
use crate::registers::cache::StatusCache;
use crate::review::dashboard::{self, Dashboard, DashboardError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("policy")]
    Policy(#[from] ReloadError),
    #[error("TLS")]
    Tls(#[from] TlsError),
    #[error("audit")]
    Audit(#[from] AuditError),
    #[error("audit keys")]
    Key(#[from] KeyError),
    #[error("admin listener")]
    Dashboard(#[from] DashboardError),
    #[error("hot reload")]
    Watch(#[from] WatchError),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("upstream.base_urls names bronnen that the policy set does not declare: {0}")]
    UnknownBron(String),
    #[error("policy approval keys")]
    ApprovalKeys(#[source] crate::audit::checkpoint::SigningKeyError),
}

/// An unapproved policy set at start: the refusal is recorded in the trail
/// (as a reload would record it) before the gateway gives up, so the FG sees
/// that an unapproved version was tried. Returns the refusal.
async fn refuse_unapproved(cfg: &Config, refusal: ReloadError) -> AppError {
    let recorded = async {
        let pseudo = Pseudonymiser::from_file(&cfg.audit.pseudonym_key)?;
        let store = Store::connect(&cfg.audit.store)
            .await
            .map_err(AuditError::Store)?;
        let signer = Signer::from_file(&cfg.audit.signing_key).map_err(AuditError::SigningKey)?;
        let (audit, writer) =
            Auditor::start(store, &cfg.server.instance, pseudo, signer, &cfg.audit).await?;
        audit
            .event(
                "reload",
                "policy-refused-unapproved",
                reload::refusal_detail("start", &refusal),
            )
            .await?;
        drop(audit);
        let _ = writer.await;
        Ok::<(), AppError>(())
    };
    if let Err(e) = recorded.await {
        tracing::error!(error = %e, "could not record the refused policy set in the audit trail");
    }
    AppError::Policy(refusal)
}

/// The sockets the gateway serves on, bound before it starts.
pub struct Listeners {
    pub gateway: TcpListener,
    /// The admin listener's socket; used only when `[admin]` is configured.
    pub admin: Option<TcpListener>,
}

impl Listeners {
    /// Binds `server.listen` and, when configured, `admin.listen`.
    pub async fn bind(cfg: &Config) -> Result<Self, AppError> {
        let gateway = bind(cfg.server.listen).await?;
        let admin = match &cfg.admin {
            Some(a) => Some(bind(a.listen).await?),
            None => None,
        };
        Ok(Self { gateway, admin })
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, AppError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Listen { addr, source })
}

/// What [`Gateway::start`] builds before it serves.
struct Built {
    state: Arc<AppState>,
    tls: Arc<ServerTls>,
    reload_stats: Arc<ReloadStats>,
    /// The audit writer; finishes after the last [`Auditor`] handle is dropped.
    writer: JoinHandle<()>,
}

/// Starts gateways.
pub struct Gateway;

impl Gateway {
    /// Builds the gateway from `cfg` and serves on `listeners` until
    /// `shutdown` resolves or [`Running::stop`] is called.
    pub async fn start(
        cfg: &Config,
        listeners: Listeners,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Running, AppError> {
        let built = build(cfg).await?;
        let stop = CancellationToken::new();
        let on_signal = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown => on_signal.cancel(),
                () = on_signal.cancelled() => {}
            }
        });
        let (watcher, hup) = start_reloading(&built, cfg)?;
        let purge = cfg
            .audit
            .purge_interval_hours
            .map(|h| spawn_purge(&built, cfg, Duration::from_secs(h.max(1) * 3600)));
        let admin = match listeners.admin {
            Some(l) => Some(start_admin(&built, cfg, l, stop.clone()).await?),
            None => None,
        };
        let addr = local_addr(&listeners.gateway, cfg.server.listen)?;
        tracing::info!(%addr, instance = %cfg.server.instance, "poortwachter listening");
        let server = tokio::spawn(server::run(
            listeners.gateway,
            Arc::clone(&built.tls),
            Arc::clone(&built.state),
            stop.clone().cancelled_owned(),
        ));
        Ok(Running {
            addr,
            admin_addr: admin.as_ref().map(|a| a.0),
            state: built.state,
            tls: built.tls,
            reload_stats: built.reload_stats,
            stop,
            server,
            admin: admin.map(|a| a.1),
            purge,
            watcher,
            hup,
            writer: built.writer,
            drain: cfg.server.shutdown_grace(),
        })
    }
}

fn local_addr(l: &TcpListener, configured: SocketAddr) -> Result<SocketAddr, AppError> {
    l.local_addr().map_err(|source| AppError::Listen {
        addr: configured,
        source,
    })
}

/// A serving gateway. Dropping it without [`Running::stop`] leaves its
/// tasks running until the shutdown future resolves.
pub struct Running {
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    state: Arc<AppState>,
    tls: Arc<ServerTls>,
    reload_stats: Arc<ReloadStats>,
    stop: CancellationToken,
    server: JoinHandle<()>,
    admin: Option<JoinHandle<()>>,
    purge: Option<JoinHandle<()>>,
    watcher: Option<notify::RecommendedWatcher>,
    hup: Option<JoinHandle<()>>,
    writer: JoinHandle<()>,
    /// `server.shutdown_grace_ms`: how long the audit writer may take to
    /// drain once everything else stopped.
    drain: Duration,
}

impl Running {
    /// The gateway listener's address (the bound port when configured as 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin listener's address, when `[admin]` is configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    pub fn tls(&self) -> &Arc<ServerTls> {
        &self.tls
    }

    pub fn reload_stats(&self) -> &Arc<ReloadStats> {
        &self.reload_stats
    }

    /// Serves until the shutdown future resolves, then stops (see [`Running::stop`]).
    pub async fn wait(self) {
        self.stop.cancelled().await;
        self.stop().await;
    }

    /// The one shutdown sequence: stop accepting and give in-flight requests
    /// `server.shutdown_grace_ms`; stop the admin listener, the purge
    /// scheduler and the reload watchers; then let the audit writer write
    /// what is queued and seal its chain. Every other holder of the
    /// [`AppState`] must have dropped it by then, or the writer cannot finish
    /// (it is given `shutdown_grace_ms`, and a warning is logged).
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.server.await;
        if let Some(a) = self.admin {
            let _ = a.await;
        }
        for task in [self.purge, self.hup].into_iter().flatten() {
            task.abort();
            let _ = task.await;
        }
        drop(self.watcher);
        drop(self.state);
        drop(self.tls);
        if tokio::time::timeout(self.drain, self.writer).await.is_err() {
            tracing::warn!(
                "the audit writer did not finish in time: something still holds the gateway's state"
            );
        }
    }
}

async fn build(cfg: &Config) -> Result<Built, AppError> {
    let approvers = Approvers::from_config(&cfg.policy.approval).map_err(AppError::ApprovalKeys)?;
    let policy = match PolicyStore::open(&cfg.policy.dir, approvers).await {
        Ok(p) => Arc::new(p),
        Err(e @ ReloadError::Unapproved { .. }) => return Err(refuse_unapproved(cfg, e).await),
        Err(e) => return Err(e.into()),
    };
    check_base_urls(cfg, &policy)?;
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
    let (audit, writer) = Auditor::start(
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
        Duration::from_millis(cfg.registers.lookup_timeout_ms),
    )
    .with_emergency(
        cfg.registers.emergency_window(),
        cfg.registers.max_emergency_justification_chars,
    )
    .with_cache(StatusCache::new(cfg.registers.cache()));
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
    Ok(Built {
        state,
        tls,
        reload_stats: Arc::default(),
        writer,
    })
}

/// An override for a bron that does not exist is almost certainly a typo
/// that would leave the real bron pointing at its policy default.
fn check_base_urls(cfg: &Config, policy: &PolicyStore) -> Result<(), AppError> {
    let snapshot = policy.current();
    let unknown: Vec<&str> = cfg
        .upstream
        .base_urls
        .keys()
        .filter(|b| !snapshot.set.bronnen.contains_key(*b))
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(AppError::UnknownBron(unknown.join(", ")))
    }
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
        let Ok(cert) = identity::peer_cert(Some(&chain)) else {
            continue;
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

/// Hot reload: SIGHUP (Unix) and, when `policy.watch` is on, file changes.
/// Background tasks hold only weak audit handles, so shutdown can drain the
/// audit writer.
fn start_reloading(
    gw: &Built,
    cfg: &Config,
) -> Result<(Option<notify::RecommendedWatcher>, Option<JoinHandle<()>>), AppError> {
    let audit = gw.state.audit.downgrade();
    let hup = spawn_sighup(gw, audit.clone());
    if !cfg.policy.watch {
        return Ok((None, hup));
    }
    let mut tls_files = vec![cfg.tls.cert.clone(), cfg.tls.key.clone()];
    tls_files.extend(cfg.tls.client_ca.iter().cloned());
    tls_files.extend(cfg.tls.crls.iter().cloned());
    let watcher = reload::watch(reload::Watched {
        policy: Arc::clone(&gw.state.policy),
        tls: Arc::clone(&gw.tls),
        audit,
        stats: Arc::clone(&gw.reload_stats),
        tls_files,
        debounce: Duration::from_millis(cfg.policy.watch_debounce_ms),
    })?;
    Ok((Some(watcher), hup))
}

#[cfg(unix)]
fn spawn_sighup(gw: &Built, audit: WeakAuditor) -> Option<JoinHandle<()>> {
    let policy = Arc::clone(&gw.state.policy);
    let tls = Arc::clone(&gw.tls);
    let stats = Arc::clone(&gw.reload_stats);
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()?;
    Some(tokio::spawn(async move {
        while hup.recv().await.is_some() {
            reload::reload_policy(&policy, &audit, &stats, "SIGHUP").await;
            reload::reload_tls(&tls, &audit, &stats, "SIGHUP").await;
        }
    }))
}

#[cfg(not(unix))]
fn spawn_sighup(_: &Built, _: WeakAuditor) -> Option<JoinHandle<()>> {
    None
}

/// Runs the retention purge at start and then every `every`, recorded in
/// the gateway's own chain. Aborted by [`Running::stop`] (it holds an
/// [`Auditor`] handle, which would keep the writer from finishing).
fn spawn_purge(gw: &Built, cfg: &Config, every: Duration) -> JoinHandle<()> {
    let store = gw.state.registers.store().clone();
    let auditor = gw.state.audit.clone();
    let policy = Arc::clone(&gw.state.policy);
    let default_days = cfg.audit.default_retention_days;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let retention = policy
                .current()
                .set
                .overleggen
                .values()
                .map(|o| (o.id.clone(), o.retention_days))
                .collect();
            let now = time::OffsetDateTime::now_utc();
            match crate::audit::admin::purge_and_record(
                &store,
                &auditor,
                &retention,
                default_days,
                now,
            )
            .await
            {
                Ok(r) => tracing::info!(records = r.total, "retention purge done"),
                Err(e) => tracing::error!(error = %e, "retention purge failed"),
            }
        }
    })
}

/// Starts the admin listener (FG dashboard, health, readiness, metrics) on
/// the gateway's TLS configuration (so reloads of certificates and CRLs
/// apply to both). It holds only a weak audit handle, so shutdown can still
/// drain the audit writer.
async fn start_admin(
    gw: &Built,
    cfg: &Config,
    listener: TcpListener,
    stop: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<()>), AppError> {
    let Some(admin) = &cfg.admin else {
        return Err(AppError::Listen {
            addr: cfg.server.listen,
            source: std::io::Error::other("an admin listener without [admin]"),
        });
    };
    let dash = Dashboard::new(
        cfg,
        admin,
        Arc::clone(&gw.state.policy),
        gw.state.audit.downgrade(),
        Arc::clone(&gw.state.metrics),
        Arc::clone(&gw.reload_stats),
    )
    .await?
    .with_status_cache(gw.state.registers.cache().cloned());
    let addr = local_addr(&listener, admin.listen)?;
    tracing::info!(%addr, "admin listener (FG dashboard, /health, /ready, /metrics)");
    let handle = tokio::spawn(dashboard::run(
        listener,
        Arc::clone(&gw.tls),
        Arc::new(dash),
        stop.cancelled_owned(),
    ));
    Ok((addr, handle))
}
