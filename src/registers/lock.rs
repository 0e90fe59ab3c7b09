//! The guard that orders revocations against requests in flight: a fixed
//! set of read-write locks ("stripes"), keyed by overleg and pupil, so the
//! memory is bounded whatever the number of pupils. A request about a pupil
//! holds the read guard from its status lookup until its response is handed
//! over; a revocation takes the write guard (write-preferring: later
//! requests queue behind it and see the change).

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

/// Number of stripes.
const STRIPES: usize = 64;

#[derive(Clone)]
pub(super) struct Stripes(Arc<[Arc<RwLock<()>>]>);

impl Stripes {
    pub(super) fn new() -> Self {
        let stripes: Vec<Arc<RwLock<()>>> =
            (0..STRIPES).map(|_| Arc::new(RwLock::new(()))).collect();
        Self(stripes.into())
    }

    fn index(&self, overleg: &str, pupil: &str) -> usize {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (overleg, pupil).hash(&mut h);
        usize::try_from(h.finish() % STRIPES as u64).unwrap_or(0) % self.0.len()
    }

    fn stripe(&self, overleg: &str, pupil: &str) -> Arc<RwLock<()>> {
        Arc::clone(&self.0[self.index(overleg, pupil)])
    }

    /// Held by a request about `pupil` in `overleg`.
    pub(super) async fn read(&self, overleg: &str, pupil: &str) -> OwnedRwLockReadGuard<()> {
        self.stripe(overleg, pupil).read_owned().await
    }

    /// Held by a revocation about `pupil` in `overleg` until it is committed.
    pub(super) async fn write(&self, overleg: &str, pupil: &str) -> OwnedRwLockWriteGuard<()> {
        self.stripe(overleg, pupil).write_owned().await
    }

    /// The write guards of `pupil` in every one of `overleggen` (a change
    /// that covers them all), each stripe once and in index order, so two
    /// such changes cannot deadlock and a stripe two overleggen share is
    /// not locked twice.
    pub(super) async fn write_all<'a>(
        &self,
        overleggen: impl Iterator<Item = &'a str>,
        pupil: &str,
    ) -> Vec<OwnedRwLockWriteGuard<()>> {
        let mut indices: Vec<usize> = overleggen.map(|o| self.index(o, pupil)).collect();
        indices.sort_unstable();
        indices.dedup();
        let mut guards = Vec::with_capacity(indices.len());
        for i in indices {
            guards.push(Arc::clone(&self.0[i]).write_owned().await);
        }
        guards
    }
}
