//! Pupils' status in memory, so that a request needs no register query.
//!
//! Contracts:
//! - An entry is one pupil's status in one casusoverleg as the store gave
//!   it, valid until the earliest moment one of the pupil's rows begins or
//!   ends (`until`); past it the entry is not used.
//! - Every change to a register row, by any process, is numbered in the
//!   store's change feed ([`crate::audit::Store::feed_after`]) in its own
//!   transaction. A follower task applies the feed in order: it forgets the
//!   changed pupils and notes when the poll that found them *began*
//!   (`fresh_from`). Entries are used only while that is at most
//!   `staleness` ago: a change committed before a poll began is applied by
//!   that poll, so no entry outlives a change by more than `staleness`.
//!   While the store cannot be read, the feed goes stale and every request
//!   reads the store itself (and fails closed with it).
//! - A missing number (pruned rows) or a burst larger than one page makes
//!   the follower forget everything.
//! - Changes made by this process are forgotten as soon as their commit
//!   returns (before a revocation releases its stripe).
//! - A lookup that raced with any change is answered but not kept: every
//!   forget or applied change advances a generation, and a lookup stores
//!   its result only if the generation it began under is still current.
//! - At most `entries` entries; when full, everything is forgotten.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::types::CaseStatus;
use crate::audit::{Store, StoreError};

/// Changes read per poll; more than this at once forgets everything.
const FEED_PAGE: usize = 1_000;
/// Changes kept in the store behind the newest (a follower further behind
/// finds the gap and starts afresh).
const FEED_KEEP: i64 = 100_000;

/// `[registers]` cache settings.
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    /// Most entries (pupil × casusoverleg) held; 0 turns the cache off.
    pub entries: usize,
    /// How often the feed is read (sooner on a PostgreSQL notification).
    pub poll: Duration,
    /// Longest time since the newest applied poll began for which entries
    /// are used.
    pub staleness: Duration,
}

/// A lookup's claim to store its result: the generation it began under.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ticket(u64);

struct Entry {
    status: CaseStatus,
    /// First moment the status changes by time alone (RFC 3339), if any.
    until: Option<String>,
}

/// One held pupil: the pseudonyms it is known by, and its entries.
#[derive(Default)]
struct Pupil {
    pseudonyms: Vec<String>,
    overlegs: HashMap<String, Entry>,
}

#[derive(Default)]
struct Inner {
    generation: u64,
    fresh_from: Option<Instant>,
    applied: Option<i64>,
    /// By the pupil's pseudonym under the current key.
    pupils: HashMap<String, Pupil>,
    /// Every pseudonym of a held pupil -> its current pseudonym.
    aliases: HashMap<String, String>,
    entries: usize,
}

impl Inner {
    fn fresh(&self, staleness: Duration) -> bool {
        self.fresh_from.is_some_and(|t| t.elapsed() <= staleness)
    }

    fn forget(&mut self, pseudonym: &str) {
        self.generation += 1;
        if let Some(current) = self.aliases.remove(pseudonym)
            && let Some(pupil) = self.pupils.remove(&current)
        {
            self.entries -= pupil.overlegs.len();
            for p in &pupil.pseudonyms {
                self.aliases.remove(p);
            }
        }
    }

    fn clear(&mut self) {
        self.generation += 1;
        self.pupils.clear();
        self.aliases.clear();
        self.entries = 0;
    }
}

/// What one poll of the feed found.
#[derive(Debug)]
enum Step {
    /// Nothing new.
    Quiet,
    /// The changes after the last applied one, in order.
    Changes(Vec<(i64, String)>),
    /// Start afresh from this number (first poll, gap, or burst).
    Reset(i64),
}

/// The in-memory status index of one process.
pub struct StatusCache {
    inner: Mutex<Inner>,
    limits: CacheLimits,
    wake: Notify,
    /// Lookups answered from memory, and those that went to the store.
    from_memory: AtomicU64,
    from_store: AtomicU64,
}

impl std::fmt::Debug for StatusCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusCache")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl StatusCache {
    /// `None` when `limits.entries` is 0.
    pub fn new(limits: CacheLimits) -> Option<Arc<Self>> {
        (limits.entries > 0).then(|| {
            Arc::new(Self {
                inner: Mutex::new(Inner::default()),
                limits,
                wake: Notify::new(),
                from_memory: AtomicU64::new(0),
                from_store: AtomicU64::new(0),
            })
        })
    }

    pub fn limits(&self) -> CacheLimits {
        self.limits
    }

    /// (lookups answered from memory, lookups that read the store).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.from_memory.load(Ordering::Relaxed),
            self.from_store.load(Ordering::Relaxed),
        )
    }

    /// The held status of the pupil known by `pseudonyms` (current key
    /// last) in `overleg` at `now`, if held, valid and the feed is fresh;
    /// counted either way.
    pub(super) fn get(
        &self,
        overleg: &str,
        pseudonyms: &[String],
        now: &str,
    ) -> Option<CaseStatus> {
        let held = self.held(overleg, pseudonyms, now);
        let counter = if held.is_some() {
            &self.from_memory
        } else {
            &self.from_store
        };
        counter.fetch_add(1, Ordering::Relaxed);
        held
    }

    fn held(&self, overleg: &str, pseudonyms: &[String], now: &str) -> Option<CaseStatus> {
        let g = self.inner.lock().ok()?;
        if !g.fresh(self.limits.staleness) {
            return None;
        }
        let entry = g.pupils.get(pseudonyms.last()?)?.overlegs.get(overleg)?;
        if entry.until.as_deref().is_some_and(|u| u <= now) {
            return None;
        }
        Some(entry.status.clone())
    }

    /// Taken before a lookup in the store (see [`StatusCache::insert`]).
    pub(super) fn ticket(&self) -> Option<Ticket> {
        self.inner.lock().ok().map(|g| Ticket(g.generation))
    }

    /// Keeps what a lookup found, unless anything changed since `ticket`.
    pub(super) fn insert(
        &self,
        ticket: Ticket,
        overleg: &str,
        pseudonyms: &[String],
        status: &CaseStatus,
        until: Option<String>,
    ) {
        let Ok(mut g) = self.inner.lock() else { return };
        let Some(current) = pseudonyms.last() else {
            return;
        };
        if g.generation != ticket.0 || !g.fresh(self.limits.staleness) {
            return;
        }
        if g.entries >= self.limits.entries {
            g.clear();
        }
        for p in pseudonyms {
            g.aliases.insert(p.clone(), current.clone());
        }
        let entry = Entry {
            status: status.clone(),
            until,
        };
        let pupil = g.pupils.entry(current.clone()).or_default();
        if pupil.pseudonyms.is_empty() {
            pupil.pseudonyms = pseudonyms.to_vec();
        }
        let added = pupil.overlegs.insert(overleg.to_owned(), entry).is_none();
        g.entries += usize::from(added);
    }

    /// Forgets the pupil stored under `pseudonym` (any key version): this
    /// process changed its rows.
    pub(super) fn forget(&self, pseudonym: &str) {
        if let Ok(mut g) = self.inner.lock() {
            g.forget(pseudonym);
        }
    }

    fn applied(&self) -> Option<i64> {
        self.inner.lock().ok().and_then(|g| g.applied)
    }

    /// Applies one poll that began at `began`.
    fn apply(&self, began: Instant, step: Step) {
        let Ok(mut g) = self.inner.lock() else { return };
        match step {
            Step::Quiet => {}
            Step::Changes(changes) => {
                for (_, subject) in &changes {
                    g.forget(subject);
                }
                g.applied = changes.last().map(|c| c.0).or(g.applied);
            }
            Step::Reset(head) => {
                g.clear();
                g.applied = Some(head);
            }
        }
        g.fresh_from = Some(began);
    }
}

/// Reads the feed after what `cache` applied.
async fn read(store: &Store, applied: Option<i64>) -> Result<Step, StoreError> {
    let Some(after) = applied else {
        return Ok(Step::Reset(store.feed_head().await?));
    };
    let changes = store.feed_after(after, FEED_PAGE).await?;
    let Some(first) = changes.first() else {
        return Ok(Step::Quiet);
    };
    if first.0 != after + 1 || changes.len() >= FEED_PAGE {
        return Ok(Step::Reset(store.feed_head().await?));
    }
    Ok(Step::Changes(changes))
}

/// One poll: read, apply, and now and then prune what every follower has
/// long applied.
async fn poll(cache: &StatusCache, store: &Store) -> Result<(), StoreError> {
    let began = Instant::now();
    let step = read(store, cache.applied()).await?;
    // Whenever the numbers pass a multiple of 1,000.
    let prune = match &step {
        Step::Changes(c) => match (c.first(), c.last()) {
            (Some((first, _)), Some((last, _))) if (first - 1) / 1_000 != last / 1_000 => {
                Some(last - FEED_KEEP)
            }
            _ => None,
        },
        _ => None,
    };
    cache.apply(began, step);
    if let Some(up_to) = prune.filter(|n| *n > 0) {
        store.feed_prune(up_to).await?;
    }
    Ok(())
}

/// Follows the feed for `cache` until the cache is dropped. On PostgreSQL
/// a notification wakes it before its next poll.
pub fn follow(cache: &Arc<StatusCache>, store: Store) {
    let weak = Arc::downgrade(cache);
    tokio::spawn(listen(Weak::clone(&weak), store.clone()));
    tokio::spawn(async move {
        let mut failing = false;
        while let Some(c) = weak.upgrade() {
            // A read that takes longer than the staleness could not make
            // the cache fresh anyway; give up on it and read again.
            let read = tokio::time::timeout(c.limits.staleness, poll(&c, &store)).await;
            match read.unwrap_or(Err(StoreError::Deadline(c.limits.staleness))) {
                Ok(()) if failing => {
                    tracing::info!("register feed readable again; cache in use");
                    failing = false;
                }
                Err(e) if !failing => {
                    tracing::warn!(error = %e, "register feed unreadable; every request reads the store until it is back");
                    failing = true;
                }
                _ => {}
            }
            let wait = c.limits.poll;
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = c.wake.notified() => {}
            }
        }
    });
}

/// Wakes the follower on each PostgreSQL notification (reconnecting, and
/// leaving the polls to cover what it missed meanwhile).
async fn listen(cache: Weak<StatusCache>, store: Store) {
    let mut listener = None;
    while let Some(c) = cache.upgrade() {
        let poll = c.limits.poll;
        drop(c);
        if listener.is_none() {
            match store.feed_listener().await {
                Ok(Some(l)) => listener = Some(l),
                Ok(None) => return,
                Err(_) => {
                    tokio::time::sleep(poll).await;
                    continue;
                }
            }
        }
        let Some(l) = listener.as_mut() else { continue };
        match tokio::time::timeout(poll * 10, l.try_recv()).await {
            Ok(Ok(Some(_))) => {
                if let Some(c) = cache.upgrade() {
                    c.wake.notify_one();
                }
            }
            Ok(Ok(None)) | Err(_) => {}
            Ok(Err(_)) => listener = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: usize) -> Arc<StatusCache> {
        StatusCache::new(CacheLimits {
            entries,
            poll: Duration::from_millis(10),
            staleness: Duration::from_mins(1),
        })
        .unwrap()
    }

    fn registered(id: &str) -> CaseStatus {
        CaseStatus {
            registration: Some(id.into()),
            ..CaseStatus::default()
        }
    }

    fn pupil(n: u8) -> Vec<String> {
        vec![format!("k1:{n}"), format!("k2:{n}")]
    }

    const NOW: &str = "2026-12-04T10:00:00.000000Z";

    #[test]
    fn nothing_is_used_before_the_feed_was_read_once() {
        let c = cache(10);
        let t = c.ticket().unwrap();
        c.insert(t, "o", &pupil(1), &registered("r"), None);
        assert!(c.get("o", &pupil(1), NOW).is_none());
        c.apply(Instant::now(), Step::Reset(0));
        let t = c.ticket().unwrap();
        c.insert(t, "o", &pupil(1), &registered("r"), None);
        let held = c.get("o", &pupil(1), NOW).unwrap();
        assert_eq!(held.registration.as_deref(), Some("r"));
        assert!(c.get("other", &pupil(1), NOW).is_none());
        assert!(c.get("o", &pupil(2), NOW).is_none());
        assert_eq!(c.counts(), (1, 3));
    }

    #[test]
    fn a_lookup_that_raced_with_a_change_is_not_kept() {
        let c = cache(10);
        c.apply(Instant::now(), Step::Reset(0));
        let before_local = c.ticket().unwrap();
        c.forget("k1:9");
        c.insert(before_local, "o", &pupil(1), &registered("r"), None);
        assert!(c.get("o", &pupil(1), NOW).is_none(), "a local change");
        let before_feed = c.ticket().unwrap();
        c.apply(Instant::now(), Step::Changes(vec![(1, "k1:9".into())]));
        c.insert(before_feed, "o", &pupil(1), &registered("r"), None);
        assert!(c.get("o", &pupil(1), NOW).is_none(), "another's change");
        let quiet = c.ticket().unwrap();
        c.apply(Instant::now(), Step::Quiet);
        c.insert(quiet, "o", &pupil(1), &registered("r"), None);
        assert!(c.get("o", &pupil(1), NOW).is_some(), "a quiet poll");
    }

    #[test]
    fn a_change_under_any_key_version_forgets_the_pupil_in_every_overleg() {
        let c = cache(10);
        c.apply(Instant::now(), Step::Reset(0));
        for o in ["a", "b"] {
            let t = c.ticket().unwrap();
            c.insert(t, o, &pupil(1), &registered("r"), None);
        }
        let t = c.ticket().unwrap();
        c.insert(t, "a", &pupil(2), &registered("s"), None);
        c.apply(Instant::now(), Step::Changes(vec![(1, "k1:1".into())]));
        assert!(c.get("a", &pupil(1), NOW).is_none());
        assert!(c.get("b", &pupil(1), NOW).is_none());
        assert!(c.get("a", &pupil(2), NOW).is_some());
        assert_eq!(c.applied(), Some(1));
        assert_eq!(c.inner.lock().unwrap().entries, 1);
        assert_eq!(c.inner.lock().unwrap().aliases.len(), 2);
    }

    #[test]
    fn an_entry_expires_when_a_row_begins_or_ends_and_when_the_feed_is_stale() {
        let c = StatusCache::new(CacheLimits {
            entries: 10,
            poll: Duration::from_millis(10),
            staleness: Duration::from_millis(50),
        })
        .unwrap();
        c.apply(Instant::now(), Step::Reset(0));
        let t = c.ticket().unwrap();
        let until = Some("2026-12-04T10:00:00.000001Z".to_owned());
        c.insert(t, "o", &pupil(1), &registered("r"), until);
        assert!(c.get("o", &pupil(1), NOW).is_some());
        assert!(
            c.get("o", &pupil(1), "2026-12-04T10:00:00.000001Z")
                .is_none()
        );
        std::thread::sleep(Duration::from_millis(80));
        assert!(c.get("o", &pupil(1), NOW).is_none(), "stale feed");
        c.apply(Instant::now(), Step::Quiet);
        assert!(c.get("o", &pupil(1), NOW).is_some(), "fresh again");
    }

    #[test]
    fn a_full_cache_starts_afresh() {
        let c = cache(2);
        c.apply(Instant::now(), Step::Reset(0));
        for n in 1..=3 {
            let t = c.ticket().unwrap();
            c.insert(t, "o", &pupil(n), &registered("r"), None);
        }
        assert!(c.get("o", &pupil(1), NOW).is_none());
        assert!(c.get("o", &pupil(3), NOW).is_some());
        assert_eq!(c.inner.lock().unwrap().entries, 1);
        c.apply(Instant::now(), Step::Reset(7));
        assert!(c.get("o", &pupil(3), NOW).is_none());
        assert_eq!(c.applied(), Some(7));
    }
}
