//! Recording every access to the trail (`kind = access`), from the CLI and
//! from the dashboard. The record is committed *before* anything is shown:
//! if the access cannot be recorded, the FG gets an error, not the data.
//!
//! The record names who looked (the FG's organisation and certificate for
//! the dashboard, the operating-system user for the CLI), what they did, the
//! filters (never a clear pupil id), and how many records they saw. When the
//! access concerns one pupil, the pupil's pseudonym goes in `subject`, so the
//! access is found with that pupil's records and purged with them.

use serde_json::{Value, json};

use super::ReviewError;
use crate::audit::{AuditRecord, Auditor, Outcome};

/// Who is looking.
#[derive(Debug, Clone)]
pub enum Viewer {
    /// The command line, as the operating-system user.
    Cli { user: String },
    /// The dashboard, as a privacy officer's verified client certificate.
    Dashboard { org: String, fingerprint: String },
}

impl Viewer {
    /// The CLI user from the environment (`USER`, else `LOGNAME`).
    pub fn cli_from_env() -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into());
        Viewer::Cli { user }
    }
}

/// One access, as recorded.
#[derive(Debug, Clone)]
pub struct Access<'a> {
    pub viewer: &'a Viewer,
    /// What was done: `query`, `export`, `inzage`, `rapport`, `record`,
    /// `verify`, `dashboard` (the start page).
    pub action: &'static str,
    /// The filters or parameters, without clear pupil ids.
    pub parameters: Value,
    /// How many audit records the viewer was shown (or exported).
    pub records: usize,
    /// The pupil's current pseudonym when the access concerns one pupil.
    pub pupil: Option<String>,
}

/// Commits the access record; returns only once it is durable.
pub async fn record(auditor: &Auditor, access: Access<'_>) -> Result<(), ReviewError> {
    let id = uuid::Uuid::new_v4();
    let mut rec = AuditRecord::new(
        auditor.instance(),
        &id.to_string(),
        &id.simple().to_string(),
    );
    rec.kind = "access";
    rec.outcome = Outcome::Event;
    rec.reason = access.action.to_owned();
    rec.pupil = access.pupil;
    let (channel, who) = match access.viewer {
        Viewer::Cli { user } => ("cli", user.clone()),
        Viewer::Dashboard { org, fingerprint } => {
            rec.org = Some(org.clone());
            rec.cert_fingerprint = Some(fingerprint.clone());
            ("dashboard", org.clone())
        }
    };
    rec.detail = json!({
        "channel": channel,
        "viewer": who,
        "parameters": access.parameters,
        "records": access.records,
    })
    .to_string();
    auditor.commit(rec).await?;
    Ok(())
}
