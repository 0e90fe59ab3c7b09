//! The registers' queries: a pupil's status on the request path, a pupil's
//! history, and rows into [`Registration`] / [`ConsentEntry`]. Pupils are
//! looked up by their pseudonyms under every key version.

use sqlx::Row;

use super::types::{
    ActiveConsent, ActiveObjection, ActiveRestriction, CaseStatus, ConsentEntry, GivenBy, History,
    ObjectionEntry, ObjectionState, RegisterError, Registration, RestrictionEntry,
    RestrictionReason,
};
use crate::audit::record::now_rfc3339;
use crate::audit::{Store, StoreError};

/// The pupil's active rows in one casusoverleg at `$3`.
macro_rules! status_sql {
    () => {
        "SELECT 'case' AS k, id, '' AS given_by, '' AS purposes FROM case_registrations \
         WHERE overleg = $1 AND subject = $2 AND begins_at <= $3 AND (ends_at IS NULL OR ends_at > $3) \
         UNION ALL \
         SELECT 'consent' AS k, id, given_by, purposes FROM consents \
         WHERE overleg = $1 AND subject = $2 AND valid_from <= $3 AND (valid_until IS NULL OR valid_until > $3) \
         AND withdrawn_at IS NULL \
         UNION ALL \
         SELECT 'objection' AS k, id, state AS given_by, COALESCE(purpose, '') AS purposes FROM objections \
         WHERE (overleg = $1 OR overleg = '*') AND subject = $2 AND state IN ('lodged', 'upheld') \
         UNION ALL \
         SELECT 'restriction' AS k, id, reason AS given_by, COALESCE(fields, '') AS purposes FROM restrictions \
         WHERE overleg = $1 AND subject = $2 AND begins_at <= $3 AND (ends_at IS NULL OR ends_at > $3) \
         AND lifted_at IS NULL"
    };
}

const STATUS_SQL: &str = status_sql!();

/// [`STATUS_SQL`] and one more row, `next`: the first moment after `$3` at
/// which one of those rows begins or ends ('' if none), until which the
/// status holds by time alone (for [`super::cache`]). Objections change
/// only by a decision, which the change feed reports.
const STATUS_UNTIL_SQL: &str = concat!(
    status_sql!(),
    " UNION ALL SELECT 'next' AS k, COALESCE(MIN(t), '') AS id, '' AS given_by, '' AS purposes FROM ( \
     SELECT begins_at AS t FROM case_registrations WHERE overleg = $1 AND subject = $2 AND begins_at > $3 \
     UNION ALL SELECT ends_at FROM case_registrations WHERE overleg = $1 AND subject = $2 AND ends_at > $3 \
     UNION ALL SELECT valid_from FROM consents WHERE overleg = $1 AND subject = $2 AND withdrawn_at IS NULL AND valid_from > $3 \
     UNION ALL SELECT valid_until FROM consents WHERE overleg = $1 AND subject = $2 AND withdrawn_at IS NULL AND valid_until > $3 \
     UNION ALL SELECT begins_at FROM restrictions WHERE overleg = $1 AND subject = $2 AND lifted_at IS NULL AND begins_at > $3 \
     UNION ALL SELECT ends_at FROM restrictions WHERE overleg = $1 AND subject = $2 AND lifted_at IS NULL AND ends_at > $3 \
     ) AS boundaries"
);

/// The `overleg` of an objection against every casusoverleg.
pub const ALL_OVERLEGGEN: &str = "*";

pub(super) const REG_COLUMNS: &str = "id, overleg, reference, begins_at, ends_at, registered_by, registered_role, registered_at, ended_at, ended_by, subject, informed_at, informed_how";
pub(super) const CONSENT_COLUMNS: &str = "id, overleg, given_by, purposes, valid_from, valid_until, form_reference, recorded_by, recorded_role, recorded_at, withdrawn_at, withdrawn_by, withdrawal_reference, subject";
pub(super) const OBJECTION_COLUMNS: &str = "id, overleg, subject, purpose, state, reference, lodged_at, recorded_by, recorded_role, decided_at, decided_by, decided_role, decision_reference";
pub(super) const RESTRICTION_COLUMNS: &str = "id, overleg, subject, fields, reason, reference, begins_at, ends_at, recorded_by, recorded_role, recorded_at, lifted_at, lifted_by, lift_reference";

/// The status now of the pupil stored under any of `subjects` (its
/// pseudonyms under each key version) in `overleg`: registration, consents,
/// objections and restrictions in one indexed query per key version.
pub async fn status_of(
    store: &Store,
    pseudonyms: &[String],
    overleg: &str,
) -> Result<CaseStatus, StoreError> {
    let now = now_rfc3339();
    Ok(status_rows(store, STATUS_SQL, pseudonyms, overleg, &now)
        .await?
        .0)
}

/// [`status_of`] at `now`, with the first later moment at which the status
/// changes by time alone (`None`: only a register change changes it).
pub(super) async fn status_until(
    store: &Store,
    pseudonyms: &[String],
    overleg: &str,
    now: &str,
) -> Result<(CaseStatus, Option<String>), StoreError> {
    status_rows(store, STATUS_UNTIL_SQL, pseudonyms, overleg, now).await
}

async fn status_rows(
    store: &Store,
    sql: &'static str,
    pseudonyms: &[String],
    overleg: &str,
    now: &str,
) -> Result<(CaseStatus, Option<String>), StoreError> {
    let mut status = CaseStatus::default();
    let mut until: Option<String> = None;
    for pseudonym in pseudonyms {
        let rows = sqlx::query(sql)
            .bind(overleg)
            .bind(pseudonym)
            .bind(now)
            .fetch_all(store.pool())
            .await?;
        for r in rows {
            let kind: String = r.try_get(0)?;
            let id: String = r.try_get(1)?;
            if kind == "next" {
                if !id.is_empty() && until.as_ref().is_none_or(|u| id < *u) {
                    until = Some(id);
                }
                continue;
            }
            let a: String = r.try_get(2)?;
            let b: String = r.try_get(3)?;
            add_status_row(&mut status, &kind, id, &a, &b)?;
        }
    }
    Ok((status, until))
}

/// One row of [`STATUS_SQL`] into `status`. An unreadable consent grants
/// nothing; an unreadable objection or restriction is an error (it could
/// only stop something, so it must not be skipped: fail closed).
fn add_status_row(
    status: &mut CaseStatus,
    kind: &str,
    id: String,
    a: &str,
    b: &str,
) -> Result<(), StoreError> {
    let bad = |what: &str| StoreError::Invalid(format!("unreadable {what} {id}"));
    match kind {
        "case" => {
            status.registration.get_or_insert(id);
        }
        "consent" => {
            if let (Some(given_by), Ok(purposes)) =
                (GivenBy::parse(a), serde_json::from_str::<Vec<String>>(b))
            {
                status.consents.push(ActiveConsent {
                    id,
                    given_by,
                    purposes,
                });
            }
        }
        "objection" => {
            let state = ObjectionState::parse(a).ok_or_else(|| bad("objection"))?;
            let purpose = (!b.is_empty()).then(|| b.to_owned());
            status
                .objections
                .push(ActiveObjection { id, purpose, state });
        }
        _ => {
            let fields = if b.is_empty() {
                None
            } else {
                Some(serde_json::from_str::<Vec<String>>(b).map_err(|_| bad("restriction"))?)
            };
            status.restrictions.push(ActiveRestriction { id, fields });
        }
    }
    Ok(())
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
    for pseudonym in pseudonyms {
        rights_of(store, pseudonym, overleg, &now, &mut h).await?;
    }
    h.registrations
        .sort_by(|a, b| a.registered_at.cmp(&b.registered_at));
    h.objections.sort_by(|a, b| a.lodged_at.cmp(&b.lodged_at));
    h.restrictions
        .sort_by(|a, b| a.recorded_at.cmp(&b.recorded_at));
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
        informed_at: r.try_get("informed_at")?,
        informed_how: r.try_get("informed_how")?,
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

/// The objections and restrictions stored under `pseudonym` (in `overleg`
/// if given) into `h`.
async fn rights_of(
    store: &Store,
    pseudonym: &str,
    overleg: Option<&str>,
    now: &str,
    h: &mut History,
) -> Result<(), RegisterError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {OBJECTION_COLUMNS} FROM objections WHERE subject = $1 ORDER BY lodged_at, id"
    )))
    .bind(pseudonym)
    .fetch_all(store.pool())
    .await?;
    for r in &rows {
        let o = objection_from(r)?;
        if overleg.is_none_or(|x| x == o.overleg || o.overleg == ALL_OVERLEGGEN) {
            h.objections.push(o);
        }
    }
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RESTRICTION_COLUMNS} FROM restrictions WHERE subject = $1 ORDER BY recorded_at, id"
    )))
    .bind(pseudonym)
    .fetch_all(store.pool())
    .await?;
    for r in &rows {
        let x = restriction_from(r, now)?;
        if overleg.is_none_or(|o| o == x.overleg) {
            h.restrictions.push(x);
        }
    }
    Ok(())
}

pub(super) fn objection_from(r: &sqlx::any::AnyRow) -> Result<ObjectionEntry, RegisterError> {
    let state: String = r.try_get("state")?;
    let state = ObjectionState::parse(&state).ok_or_else(|| {
        RegisterError::Store(StoreError::Invalid(format!("unknown state `{state}`")))
    })?;
    Ok(ObjectionEntry {
        id: r.try_get("id")?,
        overleg: r.try_get("overleg")?,
        purpose: r.try_get("purpose")?,
        state,
        reference: r.try_get("reference")?,
        lodged_at: r.try_get("lodged_at")?,
        recorded_by: r.try_get("recorded_by")?,
        role: r.try_get("recorded_role")?,
        decided_at: r.try_get("decided_at")?,
        decided_by: r.try_get("decided_by")?,
        decision_reference: r.try_get("decision_reference")?,
        active: state.stops(),
    })
}

pub(super) fn restriction_from(
    r: &sqlx::any::AnyRow,
    now: &str,
) -> Result<RestrictionEntry, RegisterError> {
    let invalid = |m: String| RegisterError::Store(StoreError::Invalid(m));
    let reason: String = r.try_get("reason")?;
    let reason = RestrictionReason::parse(&reason)
        .ok_or_else(|| invalid(format!("unknown restriction reason `{reason}`")))?;
    let fields: Option<String> = r.try_get("fields")?;
    let fields = fields
        .map(|f| serde_json::from_str::<Vec<String>>(&f))
        .transpose()
        .map_err(|_| invalid("unreadable restriction fields".into()))?;
    let begin: String = r.try_get("begins_at")?;
    let end: Option<String> = r.try_get("ends_at")?;
    let lifted_at: Option<String> = r.try_get("lifted_at")?;
    let active =
        lifted_at.is_none() && begin.as_str() <= now && end.as_deref().is_none_or(|e| e > now);
    Ok(RestrictionEntry {
        id: r.try_get("id")?,
        overleg: r.try_get("overleg")?,
        fields,
        reason,
        reference: r.try_get("reference")?,
        begin,
        end,
        recorded_by: r.try_get("recorded_by")?,
        role: r.try_get("recorded_role")?,
        recorded_at: r.try_get("recorded_at")?,
        lifted_at,
        lifted_by: r.try_get("lifted_by")?,
        lift_reference: r.try_get("lift_reference")?,
        active,
    })
}
