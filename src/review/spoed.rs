//! The FG's review queue of emergency disclosures (spoed, issue 16 point
//! 5): `audit spoed` and the dashboard's "Te beoordelen" list each
//! emergency window that is not reviewed yet, or reviewed and not yet
//! released for inzage. The FG reviews a window (justified or not, with a
//! note), which closes it, and then releases it: from then on its
//! disclosures appear in the pupil's inzage report. Both are changes of the
//! emergency register, each committed in one transaction with its audit
//! record (`kind = register`, reasons `emergency-reviewed` and
//! `emergency-released`). Out of order (a second review, a release before
//! the review, a second release) is refused.
//!
//! The pupil appears only as its pseudonym; the justification is the
//! professional's free text as recorded with the opening disclosure.

use maud::{Markup, html};
use serde::Serialize;
use serde_json::json;

use super::access::Viewer;
use super::{ReviewError, when};
use crate::audit::{AuditRecord, Auditor, Outcome, Store};
use crate::policy::model::{EmergencyReason, PolicySet};
use crate::registers::emergency::{self, Listing, Review, Window};

/// `reason` of the record of a review.
pub const REVIEWED: &str = "emergency-reviewed";
/// `reason` of the record of a release.
pub const RELEASED: &str = "emergency-released";
/// Longest review note (characters).
const MAX_NOTE: usize = 2_000;

/// Serialises reviews and releases in this process: each reads the window's
/// state and commits a change guarded by it, so two at once (two tabs of the
/// dashboard) cannot both record a review of which only one changed the
/// window. A review from the CLI at the same moment as one on the dashboard
/// (two processes) is not covered; the guarded `UPDATE` then leaves the
/// first one standing and the trail holds both records.
static CHANGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One window as the FG sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    #[serde(flatten)]
    pub window: Window,
    pub org_name: String,
    pub overleg_name: String,
    pub reason_label: String,
    /// `te beoordelen` or `beoordeeld, achtergehouden`.
    pub state: &'static str,
    pub opened_when: String,
    pub ends_when: String,
}

/// The queue: windows still to review, then those still held back.
#[derive(Debug, Clone, Serialize)]
pub struct Queue {
    pub entries: Vec<Entry>,
}

/// The FG's queue now.
pub async fn queue(store: &Store, set: &PolicySet) -> Result<Queue, ReviewError> {
    let windows = emergency::windows(store, Listing::Queue).await?;
    let mut entries: Vec<Entry> = windows.into_iter().map(|w| entry(set, w)).collect();
    // To review first, then held back; oldest first within each.
    entries.sort_by_key(|e| e.window.review.is_some());
    Ok(Queue { entries })
}

fn entry(set: &PolicySet, w: Window) -> Entry {
    Entry {
        org_name: super::inzage::org_name(set, &w.org),
        overleg_name: set
            .overleggen
            .get(&w.overleg)
            .map_or_else(|| w.overleg.clone(), |o| o.name.clone()),
        reason_label: EmergencyReason::parse(&w.reason)
            .map_or_else(|| w.reason.clone(), |r| r.label().to_owned()),
        state: if w.review.is_none() {
            "te beoordelen"
        } else {
            "beoordeeld, achtergehouden"
        },
        opened_when: when::dutch_readable(&w.opened_at),
        ends_when: when::dutch_readable(&w.ends_at),
        window: w,
    }
}

/// Who reviews, as the record names them.
fn reviewer(viewer: &Viewer) -> (Option<String>, Option<String>, String) {
    match viewer {
        Viewer::Cli { user } => (None, None, format!("cli:{user}")),
        Viewer::Dashboard { org, fingerprint } => {
            (Some(org.clone()), Some(fingerprint.clone()), org.clone())
        }
    }
}

/// Records the FG's review of window `id`, once; it closes the window.
pub async fn review(
    store: &Store,
    auditor: &Auditor,
    viewer: &Viewer,
    set: &PolicySet,
    id: &str,
    verdict: Review,
    note: &str,
) -> Result<Window, ReviewError> {
    let note = note.trim();
    if note.is_empty() || note.chars().count() > MAX_NOTE || note.chars().any(char::is_control) {
        return Err(ReviewError::Filter(format!(
            "notitie: 1 to {MAX_NOTE} printable characters (the FG's reasons; never the pupil's name)"
        )));
    }
    let _one_at_a_time = CHANGES.lock().await;
    let current = find(store, id).await?;
    if let Some(done) = current.review {
        return Err(ReviewError::Emergency(format!(
            "window {id} was already reviewed ({})",
            done.dutch()
        )));
    }
    let now = crate::audit::record::now_rfc3339();
    let (_, _, by) = reviewer(viewer);
    let side = emergency::review_write(id, verdict, note, &by, &now);
    let detail = json!({
        "register": "spoed", "venster": id, "oordeel": verdict.dutch(),
        "notitie": note, "organisatie": current.org, "overleg": current.overleg,
    });
    let rec = change_record(auditor, viewer, set, &current, REVIEWED, &detail);
    auditor.commit_with(rec, side).await?;
    // Answered from what was committed: a read-back that failed now would
    // report a committed review as not made.
    Ok(Window {
        review: Some(verdict),
        review_note: Some(note.to_owned()),
        reviewed_by: Some(by),
        ends_at: if current.ends_at > now {
            now.clone()
        } else {
            current.ends_at.clone()
        },
        reviewed_at: Some(now),
        ..current
    })
}

/// Releases reviewed window `id` for inzage, once.
pub async fn release(
    store: &Store,
    auditor: &Auditor,
    viewer: &Viewer,
    set: &PolicySet,
    id: &str,
) -> Result<Window, ReviewError> {
    let _one_at_a_time = CHANGES.lock().await;
    let current = find(store, id).await?;
    if current.review.is_none() {
        return Err(ReviewError::Emergency(format!(
            "window {id} is not reviewed yet: review it before releasing it"
        )));
    }
    if current.released_at.is_some() {
        return Err(ReviewError::Emergency(format!(
            "window {id} was already released"
        )));
    }
    let now = crate::audit::record::now_rfc3339();
    let (_, _, by) = reviewer(viewer);
    let side = emergency::release_write(id, &by, &now);
    let detail = json!({
        "register": "spoed", "venster": id, "vrijgegeven": true,
        "organisatie": current.org, "overleg": current.overleg,
    });
    let rec = change_record(auditor, viewer, set, &current, RELEASED, &detail);
    auditor.commit_with(rec, side).await?;
    Ok(Window {
        released_at: Some(now),
        released_by: Some(by),
        ..current
    })
}

async fn find(store: &Store, id: &str) -> Result<Window, ReviewError> {
    let id = id.trim();
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(ReviewError::Filter(
            "venster: the window id the queue shows".into(),
        ));
    }
    emergency::window(store, id)
        .await?
        .ok_or_else(|| ReviewError::Emergency(format!("no emergency window {id}")))
}

/// The record of a review or release: the FG's organisation and
/// certificate (dashboard) or the CLI user, the window's overleg and pupil
/// pseudonym.
fn change_record(
    auditor: &Auditor,
    viewer: &Viewer,
    set: &PolicySet,
    w: &Window,
    reason: &str,
    detail: &serde_json::Value,
) -> AuditRecord {
    let id = uuid::Uuid::new_v4();
    let mut rec = AuditRecord::new(
        auditor.instance(),
        &id.to_string(),
        &id.simple().to_string(),
    );
    let (org, fingerprint, by) = reviewer(viewer);
    rec.kind = "register";
    rec.outcome = Outcome::Event;
    rec.reason = reason.to_owned();
    rec.org = org;
    rec.cert_fingerprint = fingerprint;
    rec.overleg = Some(w.overleg.clone());
    rec.pupil = Some(w.subject.clone());
    rec.status = 200;
    rec.policy_version = set.version.clone();
    let mut detail = detail.clone();
    detail["door"] = json!(by);
    rec.detail = detail.to_string();
    rec
}

impl Queue {
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into())
    }

    /// One line per window, for the terminal.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} spoedvenster(s): {} te beoordelen\n",
            self.entries.len(),
            self.entries
                .iter()
                .filter(|e| e.window.review.is_none())
                .count()
        );
        for e in &self.entries {
            let w = &e.window;
            out.push_str(&format!(
                "{}  {}  {} ({}), {}: {} verstrekking(en), {} tot {}; {}\n  toelichting: {}\n",
                w.id,
                e.state,
                e.org_name,
                w.role,
                w.reason,
                w.uses,
                e.opened_when,
                e.ends_when,
                e.overleg_name,
                w.justification,
            ));
        }
        out
    }

    /// The dashboard's "Te beoordelen" list, each window with the review
    /// form (or the release form once reviewed).
    pub fn html_body(&self) -> Markup {
        html! {
            h1 { "Te beoordelen: spoedverstrekkingen" } "\n"
            p { "Bij acuut gevaar of een vermoeden van huiselijk geweld of kindermishandeling (Meldcode, Veilig Thuis) kan een partner gegevens krijgen zonder aanmelding of toestemming. Elke spoedverstrekking opent of gebruikt een venster per leerling en organisatie. Beoordeel elk venster (dat sluit het); geef het daarna vrij, pas dan verschijnen de verstrekkingen in het inzageoverzicht van de leerling (artikel 41 UAVG)." } "\n"
            p id="aantal" { (self.entries.iter().filter(|e| e.window.review.is_none()).count()) " te beoordelen; " (self.entries.iter().filter(|e| e.window.review.is_some()).count()) " beoordeeld en nog achtergehouden." } "\n"
            @for e in &self.entries {
                (entry_html(e))
            }
        }
    }
}

fn entry_html(e: &Entry) -> Markup {
    let w = &e.window;
    html! {
        section.venster id={ "venster-" (w.id) } {
            h2 { (e.org_name) " — " (e.reason_label) } "\n"
            table {
                tr { th { "Status" } td.status { (e.state) } }
                tr { th { "Overleg en rol" } td { (e.overleg_name) " (" (w.role) ")" } }
                tr { th { "Reden" } td { (w.reason) } }
                tr { th { "Toelichting" } td.toelichting { (w.justification) } }
                tr { th { "Venster" } td { (e.opened_when) " tot " (e.ends_when) } }
                tr { th { "Verstrekkingen" } td { (w.uses) } }
                tr { th { "Leerling (pseudoniem)" } td { code { (w.subject) } } }
                @if let Some(r) = w.review {
                    tr { th { "Oordeel" } td.oordeel { (r.dutch()) ": " (w.review_note.as_deref().unwrap_or("")) } }
                }
            } "\n"
            @if w.review.is_none() {
                form.beoordelen method="post" action="/spoed" {
                    input type="hidden" name="venster" value=(w.id);
                    input type="hidden" name="actie" value="beoordelen";
                    label { input type="radio" name="oordeel" value="gerechtvaardigd" required; " gerechtvaardigd" }
                    label { input type="radio" name="oordeel" value="niet-gerechtvaardigd"; " niet gerechtvaardigd" }
                    label { "Notitie " textarea name="notitie" required maxlength="2000" {} }
                    button type="submit" { "Beoordeling vastleggen" }
                }
            } @else {
                form.vrijgeven method="post" action="/spoed" {
                    input type="hidden" name="venster" value=(w.id);
                    input type="hidden" name="actie" value="vrijgeven";
                    button type="submit" { "Vrijgeven voor inzage" }
                }
            }
        }
    }
}
