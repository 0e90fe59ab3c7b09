//! The published policy snapshot and its reloads.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::Mutex;

use super::approval::{Approvers, Standing};
use super::compile;
use super::decision::Snapshot;
use super::load::{LoadError, load_dir};

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Compile(#[from] compile::CompileError),
    /// `[policy.approval] required` names approvers without a valid
    /// approval of this version.
    #[error("policy version {} is not approved by {} (policy approve; [policy.approval])", short(.version), .missing.join(", "))]
    Unapproved {
        version: String,
        missing: Vec<String>,
    },
}

fn short(version: &str) -> &str {
    version.get(..16).unwrap_or(version)
}

/// Outcome of a successful (re)load.
#[derive(Debug, Clone)]
pub struct Reloaded {
    pub old_version: String,
    pub new_version: String,
    /// The valid approvals of the new version.
    pub approvals: Standing,
}

/// The published policy snapshot. Readers take a cheap `Arc` with
/// [`PolicyStore::current`]; a reload builds the next snapshot aside and
/// swaps it in only when it is complete and verified, so no request ever sees
/// a half-loaded set, and a failing reload leaves the old one serving.
pub struct PolicyStore {
    dir: PathBuf,
    approvers: Approvers,
    current: ArcSwap<Snapshot>,
    /// Serialises reloads (SIGHUP and file events may race).
    reload_lock: Mutex<()>,
}

impl PolicyStore {
    /// Loads and compiles `dir`; fails if the set is invalid, or when
    /// `approvers` require approvals it does not have.
    pub async fn open(dir: &Path, approvers: Approvers) -> Result<Self, ReloadError> {
        let set = load_dir(dir)?;
        let snap = Snapshot::build(set, None).await?;
        approved(&approvers, dir, &snap)?;
        Ok(Self {
            dir: dir.to_owned(),
            approvers,
            current: ArcSwap::from_pointee(snap),
            reload_lock: Mutex::new(()),
        })
    }

    /// The valid approvals of the serving version.
    pub fn approvals(&self) -> Standing {
        self.approvers.standing(&self.dir, &self.current().version)
    }

    pub fn current(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Re-reads the directory; on any error the current snapshot stays.
    pub async fn reload(&self) -> Result<Reloaded, ReloadError> {
        let _guard = self.reload_lock.lock().await;
        let old = self.current();
        let set = load_dir(&self.dir)?;
        let snap = Snapshot::build(set, Some(&old)).await?;
        let approvals = approved(&self.approvers, &self.dir, &snap)?;
        let new_version = snap.version.to_string();
        self.current.store(Arc::new(snap));
        Ok(Reloaded {
            old_version: old.version.to_string(),
            new_version,
            approvals,
        })
    }
}

/// The approvals of `snap`'s version, or the refusal when required ones are
/// missing.
fn approved(approvers: &Approvers, dir: &Path, snap: &Snapshot) -> Result<Standing, ReloadError> {
    let standing = approvers.standing(dir, &snap.version);
    if approvers.enforced() && !standing.missing.is_empty() {
        return Err(ReloadError::Unapproved {
            version: snap.version.to_string(),
            missing: standing.missing,
        });
    }
    Ok(standing)
}
