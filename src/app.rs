//! Wiring: builds the gateway's shared state from a configuration. Used by
//! `serve`, `demo` and the integration tests alike, so they run the same code.

use std::sync::Arc;

use crate::audit::{AuditError, Auditor, Pseudonymiser, Signer, Store, pseudonym::KeyError};
use crate::config::Config;
use crate::policy::{PolicyStore, ReloadError};
use crate::proxy::AppState;
use crate::tls::{ServerTls, TlsError};
use crate::upstream::Upstream;

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
}

/// A built gateway, ready for [`crate::server::run`].
pub struct Gateway {
    pub state: Arc<AppState>,
    pub tls: Arc<ServerTls>,
    /// The audit writer; finishes after the last [`Auditor`] handle is dropped.
    pub audit_writer: tokio::task::JoinHandle<()>,
}

pub async fn build(cfg: &Config) -> Result<Gateway, AppError> {
    let policy = Arc::new(PolicyStore::open(&cfg.policy.dir).await?);
    let tls = Arc::new(ServerTls::new(cfg.tls.clone())?);
    let upstream = Upstream::new(&cfg.upstream)?;
    let pseudo = Pseudonymiser::from_file(&cfg.audit.pseudonym_key)?;
    let store = Store::connect(&cfg.audit.store)
        .await
        .map_err(AuditError::Store)?;
    let signer = Signer::from_file(&cfg.audit.signing_key).map_err(AuditError::SigningKey)?;
    let (audit, audit_writer) =
        Auditor::start(store, &cfg.server.instance, pseudo, signer, &cfg.audit).await?;
    let state = Arc::new(AppState {
        server: cfg.server.clone(),
        policy,
        upstream,
        audit,
    });
    Ok(Gateway {
        state,
        tls,
        audit_writer,
    })
}
