//! Hot reload of policies and TLS material, on SIGHUP and on file changes
//! (debounced). A reload validates and compiles the new set aside and swaps
//! it in atomically; a failing one keeps the old set and says why. Every
//! reload, successful or not, is recorded in the audit trail with what
//! triggered it, the old and new version, and the access delta.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::audit::WeakAuditor;
use crate::gateway::tls::ServerTls;
use crate::policy::decision::Snapshot;
use crate::policy::{PolicyStore, ReloadError};

/// Counters for operations (and later the metrics endpoint).
#[derive(Debug, Default)]
pub struct ReloadStats {
    pub policy_ok: AtomicU64,
    pub policy_failed: AtomicU64,
    pub tls_ok: AtomicU64,
    pub tls_failed: AtomicU64,
}

/// Number of (grant key, field path) pairs allowed in `a` and not in `b`.
fn fields_not_in(a: &Snapshot, b: &Snapshot) -> (usize, BTreeSet<String>) {
    let mut n = 0;
    let mut overleggen = BTreeSet::new();
    for (key, grant) in a.table.iter() {
        let Some(bron_a) = a.set.bronnen.get(&key.bron) else {
            continue;
        };
        let other = b.table.get(key);
        let bron_b = b.set.bronnen.get(&key.bron);
        for (idx, f) in grant.fields.iter().enumerate() {
            let Some(f) = f else { continue };
            let path = bron_a.catalogue[idx].path.as_str();
            let same = other
                .zip(bron_b)
                .and_then(|(g, bb)| {
                    bb.field_index(path)
                        .and_then(|j| g.fields.get(j).cloned().flatten())
                })
                .is_some_and(|g| g.consent == f.consent);
            if !same {
                n += 1;
                overleggen.insert(key.overleg.clone());
            }
        }
    }
    (n, overleggen)
}

/// The access delta between two snapshots, as a JSON object for the trail.
pub fn delta(old: &Snapshot, new: &Snapshot) -> serde_json::Value {
    let (gained, og) = fields_not_in(new, old);
    let (lost, ol) = fields_not_in(old, new);
    let overleggen: BTreeSet<String> = og.union(&ol).cloned().collect();
    json!({
        "fields_gained": gained,
        "fields_lost_or_changed": lost,
        "overleggen": overleggen,
    })
}

/// Reloads the policy set and records the outcome. Never panics, never
/// leaves a half-loaded set: on error the current snapshot stays.
pub async fn reload_policy(
    policy: &PolicyStore,
    audit: &WeakAuditor,
    stats: &ReloadStats,
    trigger: &str,
) -> bool {
    let old = policy.current();
    let (ok, reason, detail) = match policy.reload().await {
        Ok(r) => {
            let new = policy.current();
            stats.policy_ok.fetch_add(1, Ordering::Relaxed);
            tracing::info!(trigger, old = %r.old_version, new = %r.new_version, "policy reloaded");
            (
                true,
                "policy-reloaded",
                json!({"trigger": trigger, "old_version": r.old_version, "new_version": r.new_version, "delta": delta(&old, &new), "approvals": r.approvals.summary()}),
            )
        }
        Err(e @ ReloadError::Unapproved { .. }) => {
            stats.policy_failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(trigger, error = %e, "policy set not approved; the current set stays in force");
            let mut detail = refusal_detail(trigger, &e);
            detail["kept_version"] = json!(&*old.version);
            (false, "policy-refused-unapproved", detail)
        }
        Err(e) => {
            stats.policy_failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(trigger, error = %e, "policy reload failed; the current set stays in force");
            (
                false,
                "policy-reload-failed",
                json!({"trigger": trigger, "kept_version": &*old.version, "error": e.to_string()}),
            )
        }
    };
    if let Some(a) = audit.upgrade()
        && let Err(e) = a.event("reload", reason, detail).await
    {
        tracing::error!(error = %e, "could not record the reload in the audit trail");
    }
    ok
}

/// What the trail records about a set refused for missing approvals.
pub fn refusal_detail(trigger: &str, e: &ReloadError) -> serde_json::Value {
    match e {
        ReloadError::Unapproved { version, missing } => {
            json!({"trigger": trigger, "refused_version": version, "missing_approvals": missing, "error": e.to_string()})
        }
        other => json!({"trigger": trigger, "error": other.to_string()}),
    }
}

/// Reloads certificates, trust anchors and CRLs and records the outcome.
pub async fn reload_tls(
    tls: &ServerTls,
    audit: &WeakAuditor,
    stats: &ReloadStats,
    trigger: &str,
) -> bool {
    let (ok, reason, detail) = match tls.reload() {
        Ok(()) => {
            stats.tls_ok.fetch_add(1, Ordering::Relaxed);
            tracing::info!(trigger, "TLS certificates and CRLs reloaded");
            (true, "tls-reloaded", json!({"trigger": trigger}))
        }
        Err(e) => {
            stats.tls_failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(trigger, error = %e, "TLS reload failed; the current configuration stays in force");
            (
                false,
                "tls-reload-failed",
                json!({"trigger": trigger, "error": e.to_string()}),
            )
        }
    };
    if let Some(a) = audit.upgrade()
        && let Err(e) = a.event("reload", reason, detail).await
    {
        tracing::error!(error = %e, "could not record the reload in the audit trail");
    }
    ok
}

/// What the watcher reloads.
pub struct Watched {
    pub policy: Arc<PolicyStore>,
    pub tls: Arc<ServerTls>,
    pub audit: WeakAuditor,
    pub stats: Arc<ReloadStats>,
    /// Files whose change reloads TLS (certificates, keys, trust anchors, CRLs).
    pub tls_files: Vec<PathBuf>,
    pub debounce: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot watch {path}: {message}")]
pub struct WatchError {
    path: String,
    message: String,
}

/// Watches the policy directory and the TLS files; after a burst of changes
/// has been quiet for `debounce`, reloads what changed. The returned watcher
/// must be kept alive; dropping it stops watching. Over 80 lines with its
/// comments (77 of code): the watcher's callback and the debounce task share
/// one set of captured state, read together.
pub fn watch(w: Watched) -> Result<notify::RecommendedWatcher, WatchError> {
    use notify::{RecursiveMode, Watcher};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
    let dir = w.policy.dir().to_owned();
    let tls_names: BTreeSet<std::ffi::OsString> = w
        .tls_files
        .iter()
        .filter_map(|f| f.file_name().map(std::borrow::ToOwned::to_owned))
        .collect();
    // Only changes that matter are forwarded: anything else in a watched
    // directory (the SQLite WAL next to the certificates, say) would keep
    // extending the debounce window forever.
    let relevant = {
        let dir = dir.clone();
        let tls_names = tls_names.clone();
        move |p: &std::path::Path| {
            (p.starts_with(&dir) && p.extension().is_some_and(|e| e == "toml"))
                || p.file_name().is_some_and(|n| tls_names.contains(n))
        }
    };
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res
            && !matches!(ev.kind, notify::EventKind::Access(_))
        {
            for p in ev.paths {
                if relevant(&p) {
                    let _ = tx.send(p);
                }
            }
        }
    })
    .map_err(|e| WatchError {
        path: "-".into(),
        message: e.to_string(),
    })?;
    watcher
        .watch(&dir, RecursiveMode::Recursive)
        .map_err(|e| WatchError {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
    // Watch the directories of the TLS files: editors and CRL refresh jobs
    // replace files by renaming, which a watch on the file itself would miss.
    let tls_dirs: BTreeSet<PathBuf> = w
        .tls_files
        .iter()
        .filter_map(|f| f.parent().map(std::borrow::ToOwned::to_owned))
        .collect();
    for d in &tls_dirs {
        if !d.starts_with(&dir) {
            watcher
                .watch(d, RecursiveMode::NonRecursive)
                .map_err(|e| WatchError {
                    path: d.display().to_string(),
                    message: e.to_string(),
                })?;
        }
    }
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut paths = vec![first];
            // Debounce: wait until the burst is over (at most 20 windows, so
            // a file rewritten continuously still gets reloaded).
            for _ in 0..20 {
                match tokio::time::timeout(w.debounce, rx.recv()).await {
                    Ok(Some(p)) => paths.push(p),
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            let policy_changed = paths
                .iter()
                .any(|p| p.starts_with(&dir) && p.extension().is_some_and(|e| e == "toml"));
            let tls_changed = paths
                .iter()
                .any(|p| p.file_name().is_some_and(|n| tls_names.contains(n)));
            if policy_changed {
                reload_policy(&w.policy, &w.audit, &w.stats, "file-change").await;
            }
            if tls_changed {
                reload_tls(&w.tls, &w.audit, &w.stats, "file-change").await;
            }
        }
    });
    Ok(watcher)
}
