//! The emergency windows (spoed, issue 16 point 5). A disclosure under an
//! emergency rule opens a window for the pupil and the receiving
//! organisation (`emergency.window_hours`), or uses the one that is open;
//! after it ends, the emergency path stays closed for that pupil and
//! organisation until the FG has reviewed the window. The window row is
//! written in the same transaction as the disclosure's audit record
//! ([`SideWrite`]): a window exists exactly when a disclosure that opened it
//! is in the trail.
//!
//! The FG reviews a window (justified or not, with a note: that closes it)
//! and releases it; until released, its disclosures are held back from the
//! inzage report (AVG art. 15, UAVG art. 41). Reviews and releases are
//! made in `review::spoed`, with the statements here.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::Row;

use super::Registers;
use crate::audit::record::{format_rfc3339, now_rfc3339};
use crate::audit::{SideWrite, Statement, Store, StoreError};

/// What the emergency path finds for a pupil and organisation now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowState {
    /// No window is open: a disclosure opens this one.
    Opens { id: String, ends_at: String },
    /// A window is open until `ends_at`.
    Open { id: String, ends_at: String },
    /// The last window ended at `ends_at` and the FG has not reviewed it:
    /// the emergency path is closed.
    Ended { id: String, ends_at: String },
}

impl WindowState {
    pub fn id(&self) -> &str {
        match self {
            Self::Opens { id, .. } | Self::Open { id, .. } | Self::Ended { id, .. } => id,
        }
    }
    pub fn ends_at(&self) -> &str {
        match self {
            Self::Opens { ends_at, .. }
            | Self::Open { ends_at, .. }
            | Self::Ended { ends_at, .. } => ends_at,
        }
    }
}

/// The FG's judgement of an emergency window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Review {
    Justified,
    NotJustified,
}

impl Review {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Justified => "justified",
            Self::NotJustified => "not-justified",
        }
    }
    /// From the stored value, or the Dutch words of the dashboard and CLI.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "justified" | "gerechtvaardigd" => Some(Self::Justified),
            "not-justified" | "niet-gerechtvaardigd" => Some(Self::NotJustified),
            _ => None,
        }
    }
    pub fn dutch(self) -> &'static str {
        match self {
            Self::Justified => "gerechtvaardigd",
            Self::NotJustified => "niet gerechtvaardigd",
        }
    }
}

/// One window as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Window {
    pub id: String,
    pub org: String,
    /// The pupil's pseudonym.
    pub subject: String,
    pub overleg: String,
    pub role: String,
    pub reason: String,
    pub justification: String,
    pub opened_at: String,
    pub opened_request: String,
    pub ends_at: String,
    pub uses: i64,
    pub review: Option<Review>,
    pub review_note: Option<String>,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<String>,
    pub released_at: Option<String>,
    pub released_by: Option<String>,
}

const COLUMNS: &str = "id, org, subject, overleg, role, reason, justification, opened_at, opened_request, ends_at, uses, review, review_note, reviewed_by, reviewed_at, released_at, released_by";

impl Registers {
    /// The window state for `pupil` and `org` now, across every pseudonym
    /// key version. Only emergency requests look it up.
    pub async fn emergency_window(
        &self,
        org: &str,
        pupil: &str,
    ) -> Result<WindowState, StoreError> {
        let pseudonyms = self.audit.pseudonymiser().all_pseudonyms(pupil);
        tokio::time::timeout(
            self.lookup_timeout,
            latest_window(&self.store, org, &pseudonyms, self.emergency_window),
        )
        .await
        .map_err(|_| StoreError::Deadline(self.lookup_timeout))?
    }
}

/// The latest window of `org` for the pupil under any of `pseudonyms`,
/// judged at now: open, ended without review, or none (a new one opens,
/// lasting `length`).
async fn latest_window(
    store: &Store,
    org: &str,
    pseudonyms: &[String],
    length: Duration,
) -> Result<WindowState, StoreError> {
    let now = time::OffsetDateTime::now_utc();
    let now_text = format_rfc3339(now);
    let mut latest: Option<(String, String, String, bool)> = None;
    for subject in pseudonyms {
        let row = sqlx::query(
            "SELECT id, opened_at, ends_at, review FROM emergency_windows \
             WHERE org = $1 AND subject = $2 ORDER BY opened_at DESC LIMIT 1",
        )
        .bind(org)
        .bind(subject)
        .fetch_optional(store.pool())
        .await?;
        if let Some(r) = row {
            let w: (String, String, String, bool) = (
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get::<Option<String>, _>(3)?.is_some(),
            );
            if latest.as_ref().is_none_or(|l| w.1 > l.1) {
                latest = Some(w);
            }
        }
    }
    Ok(match latest {
        Some((id, _, ends_at, _)) if ends_at > now_text => WindowState::Open { id, ends_at },
        Some((id, _, ends_at, false)) => WindowState::Ended { id, ends_at },
        _ => WindowState::Opens {
            id: uuid::Uuid::new_v4().to_string(),
            ends_at: format_rfc3339(now + length),
        },
    })
}

/// What an opening disclosure writes with its record.
#[derive(Debug, Clone)]
pub struct Opening<'a> {
    pub id: &'a str,
    pub org: &'a str,
    pub subject: &'a str,
    pub overleg: &'a str,
    pub role: &'a str,
    pub reason: &'a str,
    pub justification: &'a str,
    pub request_id: &'a str,
    pub ends_at: &'a str,
}

/// The window row an opening disclosure commits with its record (a fresh
/// id: it cannot fail for data reasons).
pub fn opening_write(o: &Opening<'_>) -> SideWrite {
    SideWrite {
        apply: Statement {
            sql: "INSERT INTO emergency_windows (id, org, subject, overleg, role, reason, justification, opened_at, opened_request, ends_at, uses) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,1)",
            binds: vec![
                Some(o.id.to_owned()),
                Some(o.org.to_owned()),
                Some(o.subject.to_owned()),
                Some(o.overleg.to_owned()),
                Some(o.role.to_owned()),
                Some(o.reason.to_owned()),
                Some(o.justification.to_owned()),
                Some(now_rfc3339()),
                Some(o.request_id.to_owned()),
                Some(o.ends_at.to_owned()),
            ],
        },
        undo: Statement {
            sql: "DELETE FROM emergency_windows WHERE id = $1 AND opened_request = $2",
            binds: vec![Some(o.id.to_owned()), Some(o.request_id.to_owned())],
        },
    }
}

/// The count a disclosure in an open window adds with its record.
pub fn use_write(id: &str) -> SideWrite {
    SideWrite {
        apply: Statement {
            sql: "UPDATE emergency_windows SET uses = uses + 1 WHERE id = $1",
            binds: vec![Some(id.to_owned())],
        },
        undo: Statement {
            sql: "UPDATE emergency_windows SET uses = uses - 1 WHERE id = $1",
            binds: vec![Some(id.to_owned())],
        },
    }
}

/// Which windows to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing<'a> {
    /// Not reviewed yet, or reviewed and not released: the FG's queue.
    Queue,
    /// Opened in `[from, to)` (the DPIA report).
    Opened { from: &'a str, to: &'a str },
}

/// The windows `listing` selects, oldest first.
pub async fn windows(store: &Store, listing: Listing<'_>) -> Result<Vec<Window>, StoreError> {
    let rows = match listing {
        Listing::Queue => {
            let sql = format!(
                "SELECT {COLUMNS} FROM emergency_windows WHERE review IS NULL OR released_at IS NULL ORDER BY opened_at, id"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(store.pool())
                .await?
        }
        Listing::Opened { from, to } => {
            let sql = format!(
                "SELECT {COLUMNS} FROM emergency_windows WHERE opened_at >= $1 AND opened_at < $2 ORDER BY opened_at, id"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(from)
                .bind(to)
                .fetch_all(store.pool())
                .await?
        }
    };
    rows.iter().map(window_from).collect()
}

/// One window by id.
pub async fn window(store: &Store, id: &str) -> Result<Option<Window>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM emergency_windows WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(store.pool())
        .await?;
    row.as_ref().map(window_from).transpose()
}

/// Ids of the released windows of the pupil under `pseudonyms`: the only
/// emergency disclosures an inzage report shows.
pub async fn released(store: &Store, pseudonyms: &[String]) -> Result<HashSet<String>, StoreError> {
    let mut out = HashSet::new();
    for subject in pseudonyms {
        let rows = sqlx::query(
            "SELECT id FROM emergency_windows WHERE subject = $1 AND released_at IS NOT NULL",
        )
        .bind(subject)
        .fetch_all(store.pool())
        .await?;
        for r in rows {
            out.insert(r.try_get::<String, _>(0)?);
        }
    }
    Ok(out)
}

/// The statement that records a review: it closes the window (its end
/// becomes the review time when it was still open), once.
pub fn review_write(id: &str, review: Review, note: &str, by: &str, now: &str) -> SideWrite {
    SideWrite {
        apply: Statement {
            sql: "UPDATE emergency_windows SET review = $1, review_note = $2, reviewed_by = $3, reviewed_at = $4, ends_at = CASE WHEN ends_at > $4 THEN $4 ELSE ends_at END WHERE id = $5 AND review IS NULL",
            binds: vec![
                Some(review.as_str().to_owned()),
                Some(note.to_owned()),
                Some(by.to_owned()),
                Some(now.to_owned()),
                Some(id.to_owned()),
            ],
        },
        // A review that is undone leaves the window closed at the review
        // time: closing is the safe side.
        undo: Statement {
            sql: "UPDATE emergency_windows SET review = NULL, review_note = NULL, reviewed_by = NULL, reviewed_at = NULL WHERE id = $1 AND reviewed_at = $2",
            binds: vec![Some(id.to_owned()), Some(now.to_owned())],
        },
    }
}

/// The statement that releases a reviewed window for inzage, once.
pub fn release_write(id: &str, by: &str, now: &str) -> SideWrite {
    SideWrite {
        apply: Statement {
            sql: "UPDATE emergency_windows SET released_at = $1, released_by = $2 WHERE id = $3 AND review IS NOT NULL AND released_at IS NULL",
            binds: vec![
                Some(now.to_owned()),
                Some(by.to_owned()),
                Some(id.to_owned()),
            ],
        },
        undo: Statement {
            sql: "UPDATE emergency_windows SET released_at = NULL, released_by = NULL WHERE id = $1 AND released_at = $2",
            binds: vec![Some(id.to_owned()), Some(now.to_owned())],
        },
    }
}

fn window_from(r: &sqlx::any::AnyRow) -> Result<Window, StoreError> {
    let review: Option<String> = r.try_get(11)?;
    Ok(Window {
        id: r.try_get(0)?,
        org: r.try_get(1)?,
        subject: r.try_get(2)?,
        overleg: r.try_get(3)?,
        role: r.try_get(4)?,
        reason: r.try_get(5)?,
        justification: r.try_get(6)?,
        opened_at: r.try_get(7)?,
        opened_request: r.try_get(8)?,
        ends_at: r.try_get(9)?,
        uses: r.try_get(10)?,
        // An unreadable review reads as not reviewed: the window stays in
        // the queue and held back (fail closed).
        review: review.as_deref().and_then(Review::parse),
        review_note: r.try_get(12)?,
        reviewed_by: r.try_get(13)?,
        reviewed_at: r.try_get(14)?,
        released_at: r.try_get(15)?,
        released_by: r.try_get(16)?,
    })
}
