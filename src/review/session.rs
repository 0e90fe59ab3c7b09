//! An administrative session on a configuration's store, the one way the
//! CLI opens the trail: the store, the policy set (for names and labels),
//! the pseudonymiser, and a short-lived writer on the `<instance>/admin`
//! chain for the access records and the changes it makes. [`Session::close`]
//! lets that writer seal its chain.

use super::ReviewError;
use super::access::{self, Access, Viewer};
use crate::audit::{Auditor, Pseudonymiser, Store, admin};
use crate::config::Config;
use crate::policy::model::PolicySet;

/// An open review session: the store, the policy set (for names and
/// labels), the pseudonymiser, and an audit writer for the access records.
pub struct Session {
    pub store: Store,
    pub set: PolicySet,
    pub pseudo: Pseudonymiser,
    pub viewer: Viewer,
    auditor: Auditor,
    writer: tokio::task::JoinHandle<()>,
    cfg: Config,
}

impl Session {
    pub async fn open(cfg: &Config) -> Result<Self, ReviewError> {
        let set = crate::policy::load_dir(&cfg.policy.dir)?;
        let store = Store::connect(&cfg.audit.store).await?;
        let pseudo = Pseudonymiser::from_file(&cfg.audit.pseudonym_key)?;
        let (auditor, writer) =
            admin::admin_auditor(&store, &cfg.audit, &cfg.server.instance).await?;
        Ok(Self {
            store,
            set,
            pseudo,
            viewer: Viewer::cli_from_env(),
            auditor,
            writer,
            cfg: cfg.clone(),
        })
    }

    /// Stops the access writer after it sealed its chain.
    pub async fn close(self) {
        drop(self.auditor);
        let _ = self.writer.await;
    }

    /// The configuration the session was opened with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The writer of the `<instance>/admin` chain, for changes made by the
    /// administrative process (register changes, purges).
    pub fn auditor(&self) -> &Auditor {
        &self.auditor
    }

    /// Records an access to the trail on the admin chain; returns once it
    /// is durable (the caller shows nothing otherwise).
    pub async fn record(
        &self,
        action: &'static str,
        parameters: serde_json::Value,
        records: usize,
        subject: Option<String>,
    ) -> Result<(), ReviewError> {
        access::record(
            &self.auditor,
            Access {
                viewer: &self.viewer,
                action,
                parameters,
                records,
                subject,
            },
        )
        .await
    }
}
