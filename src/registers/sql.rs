//! The registers' queries: a pupil's status on the request path, a pupil's
//! history, and rows into [`Registration`] / [`ConsentEntry`]. Pupils are
//! looked up by their pseudonyms under every key version.

use sqlx::Row;

use super::types::{
    ActiveConsent, CaseStatus, ConsentEntry, GivenBy, History, RegisterError, Registration,
};
use crate::audit::record::now_rfc3339;
use crate::audit::{Store, StoreError};

const STATUS_SQL: &str = "SELECT 'case' AS k, id, '' AS given_by, '' AS purposes FROM case_registrations \
     WHERE overleg = $1 AND subject = $2 AND begins_at <= $3 AND (ends_at IS NULL OR ends_at > $3) \
     UNION ALL \
     SELECT 'consent' AS k, id, given_by, purposes FROM consents \
     WHERE overleg = $1 AND subject = $2 AND valid_from <= $3 AND (valid_until IS NULL OR valid_until > $3) \
     AND withdrawn_at IS NULL";

pub(super) const REG_COLUMNS: &str = "id, overleg, reference, begins_at, ends_at, registered_by, registered_role, registered_at, ended_at, ended_by, subject";
pub(super) const CONSENT_COLUMNS: &str = "id, overleg, given_by, purposes, valid_from, valid_until, form_reference, recorded_by, recorded_role, recorded_at, withdrawn_at, withdrawn_by, withdrawal_reference, subject";

/// The status now of the pupil stored under any of `subjects` (its
/// pseudonyms under each key version) in `overleg`: one indexed query per
/// key version, on every request.
pub async fn status_of(
    store: &Store,
    pseudonyms: &[String],
    overleg: &str,
) -> Result<CaseStatus, StoreError> {
    let now = now_rfc3339();
    let mut status = CaseStatus::default();
    for pseudonym in pseudonyms {
        let rows = sqlx::query(STATUS_SQL)
            .bind(overleg)
            .bind(pseudonym)
            .bind(&now)
            .fetch_all(store.pool())
            .await?;
        for r in rows {
            let kind: String = r.try_get(0)?;
            let id: String = r.try_get(1)?;
            if kind == "case" {
                status.registration.get_or_insert(id);
            } else {
                let given: String = r.try_get(2)?;
                let purposes: String = r.try_get(3)?;
                // An unreadable row grants nothing (fail closed).
                if let (Some(given_by), Ok(purposes)) = (
                    GivenBy::parse(&given),
                    serde_json::from_str::<Vec<String>>(&purposes),
                ) {
                    status.consents.push(ActiveConsent {
                        id,
                        given_by,
                        purposes,
                    });
                }
            }
        }
    }
    Ok(status)
}

/// Every registration and consent stored under any of `subjects` (the
/// pupil's pseudonyms under each key version), in `overleg` if given, oldest
/// first. For the FG's inzage report as well as the register API.
pub async fn history_of(
    store: &Store,
    pseudonyms: &[String],
    overleg: Option<&str>,
) -> Result<History, RegisterError> {
    let now = now_rfc3339();
    let mut h = History::default();
    for pseudonym in pseudonyms {
        let regs = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REG_COLUMNS} FROM case_registrations WHERE subject = $1 ORDER BY registered_at, id"
        )))
        .bind(pseudonym)
        .fetch_all(store.pool())
        .await?;
        for r in &regs {
            let reg = registration_from(r, &now)?;
            if overleg.is_none_or(|o| o == reg.overleg) {
                h.registrations.push(reg);
            }
        }
        let cons = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONSENT_COLUMNS} FROM consents WHERE subject = $1 ORDER BY recorded_at, id"
        )))
        .bind(pseudonym)
        .fetch_all(store.pool())
        .await?;
        for r in &cons {
            let c = consent_from(r, &now)?;
            if overleg.is_none_or(|o| o == c.overleg) {
                h.consents.push(c);
            }
        }
    }
    h.registrations
        .sort_by(|a, b| a.registered_at.cmp(&b.registered_at));
    h.consents.sort_by(|a, b| a.recorded_at.cmp(&b.recorded_at));
    Ok(h)
}

pub(super) fn registration_from(
    r: &sqlx::any::AnyRow,
    now: &str,
) -> Result<Registration, RegisterError> {
    let begin: String = r.try_get("begins_at")?;
    let end: Option<String> = r.try_get("ends_at")?;
    let ended_at: Option<String> = r.try_get("ended_at")?;
    let active = begin.as_str() <= now && end.as_deref().is_none_or(|e| e > now);
    Ok(Registration {
        id: r.try_get("id")?,
        overleg: r.try_get("overleg")?,
        reference: r.try_get("reference")?,
        begin,
        end,
        registered_by: r.try_get("registered_by")?,
        role: r.try_get("registered_role")?,
        registered_at: r.try_get("registered_at")?,
        ended_at,
        ended_by: r.try_get("ended_by")?,
        active,
    })
}

pub(super) fn consent_from(
    r: &sqlx::any::AnyRow,
    now: &str,
) -> Result<ConsentEntry, RegisterError> {
    let given: String = r.try_get("given_by")?;
    let purposes: String = r.try_get("purposes")?;
    let valid_from: String = r.try_get("valid_from")?;
    let valid_until: Option<String> = r.try_get("valid_until")?;
    let withdrawn_at: Option<String> = r.try_get("withdrawn_at")?;
    let active = withdrawn_at.is_none()
        && valid_from.as_str() <= now
        && valid_until.as_deref().is_none_or(|u| u > now);
    Ok(ConsentEntry {
        id: r.try_get("id")?,
        overleg: r.try_get("overleg")?,
        given_by: GivenBy::parse(&given).ok_or_else(|| {
            RegisterError::Store(StoreError::Invalid(format!("unknown given_by `{given}`")))
        })?,
        purposes: serde_json::from_str(&purposes).unwrap_or_default(),
        valid_from,
        valid_until,
        form: r.try_get("form_reference")?,
        recorded_by: r.try_get("recorded_by")?,
        role: r.try_get("recorded_role")?,
        recorded_at: r.try_get("recorded_at")?,
        withdrawn_at,
        withdrawn_by: r.try_get("withdrawn_by")?,
        withdrawal_reference: r.try_get("withdrawal_reference")?,
        active,
    })
}
