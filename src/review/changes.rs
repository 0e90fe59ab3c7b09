//! `audit wijzigingen`: every policy change the trail holds (issue 18,
//! question (c)): each reload, refused reload and refused start, with the
//! versions, the access delta the reload record carries, and who approved
//! the new version. Reads only `kind = 'reload'` records (an index on
//! `(kind, time)` serves it) through the paged walk.

use std::ops::ControlFlow;

use serde::Serialize;
use serde_json::Value;

use super::ReviewError;
use super::query::{self, Filter};
use crate::audit::{Store, StoredRow};

/// One policy change as the trail recorded it.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyChange {
    pub time: String,
    /// `policy-reloaded`, `policy-reload-failed` or `policy-refused-unapproved`.
    pub outcome: String,
    /// What triggered it: `SIGHUP`, `file-change`, `start`.
    pub trigger: String,
    pub old_version: String,
    pub new_version: String,
    pub fields_gained: Option<u64>,
    pub fields_lost_or_changed: Option<u64>,
    pub overleggen: Vec<String>,
    /// Approvers of the new version (or, refused, those missing).
    pub approved_by: Vec<String>,
    pub missing_approvals: Vec<String>,
    pub error: Option<String>,
}

/// Records per page.
const PAGE: usize = 2_000;

/// The policy changes in `filter`'s period (its kind is set here).
pub async fn list(
    store: &Store,
    filter: &Filter,
) -> Result<(Vec<PolicyChange>, usize), ReviewError> {
    let filter = Filter {
        kind: Some("reload".into()),
        ..filter.clone()
    };
    let mut out = Vec::new();
    let mut read = 0;
    query::for_each(store, &filter, PAGE, |r| {
        read += 1;
        if r.reason.starts_with("policy-") {
            out.push(change(r));
        }
        ControlFlow::Continue(())
    })
    .await?;
    Ok((out, read))
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().or_else(|| x["approver"].as_str()))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

fn change(r: &StoredRow) -> PolicyChange {
    let d: Value = serde_json::from_str(&r.detail).unwrap_or(Value::Null);
    let delta = &d["delta"];
    let new_version = [text(&d, "new_version"), text(&d, "refused_version")]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    let old_version = [text(&d, "old_version"), text(&d, "kept_version")]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    PolicyChange {
        time: r.time.clone(),
        outcome: r.reason.clone(),
        trigger: text(&d, "trigger"),
        old_version,
        new_version,
        fields_gained: delta["fields_gained"].as_u64(),
        fields_lost_or_changed: delta["fields_lost_or_changed"].as_u64(),
        overleggen: strings(delta, "overleggen"),
        approved_by: strings(&d, "approvals"),
        missing_approvals: strings(&d, "missing_approvals"),
        error: d["error"].as_str().map(str::to_owned),
    }
}

/// A table for the terminal (Dutch headings, versions shortened).
pub fn table(changes: &[PolicyChange]) -> String {
    let short = |v: &str| v.get(..16).unwrap_or(v).to_owned();
    let mut out = String::from(
        "tijd                         uitkomst                   aanleiding   oud              nieuw            +velden -velden goedgekeurd door\n",
    );
    for c in changes {
        let count = |n: Option<u64>| n.map_or("-".to_owned(), |n| n.to_string());
        let approvals = if c.missing_approvals.is_empty() {
            c.approved_by.join(", ")
        } else {
            format!("ONTBREEKT: {}", c.missing_approvals.join(", "))
        };
        out.push_str(&format!(
            "{:<28} {:<26} {:<12} {:<16} {:<16} {:>7} {:>7} {}\n",
            c.time,
            c.outcome,
            c.trigger,
            short(&c.old_version),
            short(&c.new_version),
            count(c.fields_gained),
            count(c.fields_lost_or_changed),
            if approvals.is_empty() {
                "-".to_owned()
            } else {
                approvals
            },
        ));
    }
    out.push_str(&format!("{} wijziging(en)\n", changes.len()));
    out
}
