//! The objection (bezwaar, AVG art. 21) and restriction (beperking, art. 18)
//! registers: same store, same audit and same standards as consent.
//!
//! - Lodging an objection and setting a restriction take processing away,
//!   so they are revocations: they drain in-flight requests about the pupil
//!   and wait the grace before they are acknowledged, like a withdrawal.
//! - Deciding an objection and lifting a restriction are serialised with
//!   requests the same way (the write guard), without the grace: they give
//!   nothing back that a request could have relied on before.
//! - Every change commits with its audit record (`kind = register`).

use std::collections::BTreeSet;

use super::sql::{
    ALL_OVERLEGGEN, OBJECTION_COLUMNS, RESTRICTION_COLUMNS, objection_from, restriction_from,
};
use super::types::{
    NewObjection, NewRestriction, ObjectionEntry, ObjectionState, RegisterError, RestrictionEntry,
};
use super::{
    ChangeContext, Registers, check_pupil, check_reference, overleg_of, parse_time, period,
};
use crate::audit::record::now_rfc3339;
use crate::audit::{SideWrite, Statement};
use crate::policy::fieldpath::FieldPath;
use crate::policy::model::{Overleg, PolicySet};

/// Most field paths one restriction may name.
const MAX_FIELDS: usize = 200;

impl Registers {
    /// Records an objection (state `lodged`). It stops covered flows on an
    /// objectable ground from the next request on.
    pub async fn lodge_objection(
        &self,
        cx: &ChangeContext<'_>,
        new: NewObjection,
    ) -> Result<ObjectionEntry, RegisterError> {
        let o = overleg_of(cx.set, cx.overleg)?;
        let lodged = checked_objection(o, &new)?;
        // Against every overleg: drain the requests about the pupil in each.
        let scope: Vec<&str> = if new.all_overleggen {
            cx.set.overleggen.keys().map(String::as_str).collect()
        } else {
            vec![o.id.as_str()]
        };
        let guard = cx
            .before_commit(self.stripes.write_all(scope.into_iter(), &new.pupil))
            .await?;
        let stored_overleg = if new.all_overleggen {
            ALL_OVERLEGGEN.to_owned()
        } else {
            o.id.clone()
        };
        let id = uuid::Uuid::new_v4().to_string();
        let pseudonym = self.audit.pseudonymise(&new.pupil);
        let side = SideWrite {
            apply: Statement {
                sql: "INSERT INTO objections (id, overleg, subject, purpose, state, reference, lodged_at, recorded_by, recorded_role) VALUES ($1,$2,$3,$4,'lodged',$5,$6,$7,$8)",
                binds: vec![
                    Some(id.clone()),
                    Some(stored_overleg.clone()),
                    Some(pseudonym.clone()),
                    new.purpose.clone(),
                    Some(new.reference.clone()),
                    Some(lodged.clone()),
                    Some(cx.actor.org.clone()),
                    Some(cx.actor.role.clone()),
                ],
            },
            undo: Statement {
                sql: "DELETE FROM objections WHERE id = $1",
                binds: vec![Some(id.clone())],
            },
        };
        let detail = serde_json::json!({
            "register": "bezwaar", "id": id, "doel": new.purpose, "status": "ingediend",
            "referentie": new.reference, "ingediend_op": lodged,
            "alle_overleggen": new.all_overleggen,
        });
        let rec = self.change_record(cx, o, &pseudonym, "objection-lodged", 201, &detail);
        self.commit_change(rec, side).await?;
        drop(guard);
        self.wait_grace().await;
        Ok(ObjectionEntry {
            id,
            overleg: stored_overleg,
            purpose: new.purpose,
            state: ObjectionState::Lodged,
            reference: new.reference,
            lodged_at: lodged,
            recorded_by: cx.actor.org.clone(),
            role: cx.actor.role.clone(),
            decided_at: None,
            decided_by: None,
            decision_reference: None,
            active: true,
        })
    }

    /// Decides a lodged objection: `Upheld` or `Rejected`, once. Deciding
    /// one that was already decided is refused ([`RegisterError::AlreadyDecided`]).
    pub async fn decide_objection(
        &self,
        cx: &ChangeContext<'_>,
        id: &str,
        pupil: &str,
        decision: ObjectionState,
        reference: String,
    ) -> Result<ObjectionEntry, RegisterError> {
        let o = overleg_of(cx.set, cx.overleg)?;
        check_pupil(pupil)?;
        check_reference("referentie", &reference)?;
        if decision == ObjectionState::Lodged {
            return Err(RegisterError::Invalid(
                "besluit: `toegewezen` or `afgewezen`".into(),
            ));
        }
        // The objection may cover every overleg: serialise with the
        // requests about the pupil in each (deciding is rare).
        let all = cx.set.overleggen.keys().map(String::as_str);
        let guard = cx.before_commit(self.stripes.write_all(all, pupil)).await?;
        let current = cx
            .before_commit(self.objection(id, o, pupil))
            .await??
            .ok_or(RegisterError::NotFound("objection"))?;
        if current.state != ObjectionState::Lodged {
            return Err(RegisterError::AlreadyDecided(current.state.dutch()));
        }
        let now = now_rfc3339();
        let side = SideWrite {
            apply: Statement {
                sql: "UPDATE objections SET state = $1, decided_at = $2, decided_by = $3, decided_role = $4, decision_reference = $5 WHERE id = $6 AND state = 'lodged'",
                binds: vec![
                    Some(decision.as_str().to_owned()),
                    Some(now.clone()),
                    Some(cx.actor.org.clone()),
                    Some(cx.actor.role.clone()),
                    Some(reference.clone()),
                    Some(id.to_owned()),
                ],
            },
            undo: Statement {
                sql: "UPDATE objections SET state = 'lodged', decided_at = NULL, decided_by = NULL, decided_role = NULL, decision_reference = NULL WHERE id = $1 AND decided_at = $2",
                binds: vec![Some(id.to_owned()), Some(now.clone())],
            },
        };
        let detail = serde_json::json!({
            "register": "bezwaar", "id": id, "doel": current.purpose,
            "besluit": decision.dutch(), "referentie": reference, "besloten_op": now,
        });
        let reason = match decision {
            ObjectionState::Upheld => "objection-upheld",
            _ => "objection-rejected",
        };
        let pseudonym = self.audit.pseudonymise(pupil);
        let rec = self.change_record(cx, o, &pseudonym, reason, 200, &detail);
        self.commit_change(rec, side).await?;
        drop(guard);
        Ok(ObjectionEntry {
            state: decision,
            decided_at: Some(now),
            decided_by: Some(cx.actor.org.clone()),
            decision_reference: Some(reference),
            active: decision.stops(),
            ..current
        })
    }

    /// Records a restriction: from its begin (default now) until its end or
    /// until it is lifted, its fields (or every field) do not flow.
    pub async fn restrict(
        &self,
        cx: &ChangeContext<'_>,
        new: NewRestriction,
    ) -> Result<RestrictionEntry, RegisterError> {
        let o = overleg_of(cx.set, cx.overleg)?;
        check_pupil(&new.pupil)?;
        check_reference("referentie", &new.reference)?;
        let fields = new
            .fields
            .as_deref()
            .map(|f| restricted_fields(cx.set, o, f))
            .transpose()?;
        let now = now_rfc3339();
        let (begins, ends) = period(
            ("begin", "einde"),
            new.begins_at.as_deref(),
            new.ends_at.as_deref(),
            &now,
        )?;
        let guard = cx
            .before_commit(self.stripes.write(&o.id, &new.pupil))
            .await?;
        let id = uuid::Uuid::new_v4().to_string();
        let pseudonym = self.audit.pseudonymise(&new.pupil);
        let fields_json = fields
            .as_ref()
            .map(|f| serde_json::to_string(f).unwrap_or_else(|_| "[]".into()));
        let side = SideWrite {
            apply: Statement {
                sql: "INSERT INTO restrictions (id, overleg, subject, fields, reason, reference, begins_at, ends_at, recorded_by, recorded_role, recorded_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
                binds: vec![
                    Some(id.clone()),
                    Some(o.id.clone()),
                    Some(pseudonym.clone()),
                    fields_json,
                    Some(new.reason.as_str().to_owned()),
                    Some(new.reference.clone()),
                    Some(begins.clone()),
                    ends.clone(),
                    Some(cx.actor.org.clone()),
                    Some(cx.actor.role.clone()),
                    Some(now.clone()),
                ],
            },
            undo: Statement {
                sql: "DELETE FROM restrictions WHERE id = $1",
                binds: vec![Some(id.clone())],
            },
        };
        let detail = serde_json::json!({
            "register": "beperking", "id": id, "velden": fields, "reden": new.reason.as_str(),
            "referentie": new.reference, "begin": begins, "einde": ends,
        });
        let rec = self.change_record(cx, o, &pseudonym, "restriction-set", 201, &detail);
        self.commit_change(rec, side).await?;
        drop(guard);
        self.wait_grace().await;
        let active = begins <= now && ends.as_deref().is_none_or(|e| e > now.as_str());
        Ok(RestrictionEntry {
            id,
            overleg: o.id.clone(),
            fields,
            reason: new.reason,
            reference: new.reference,
            begin: begins,
            end: ends,
            recorded_by: cx.actor.org.clone(),
            role: cx.actor.role.clone(),
            recorded_at: now,
            lifted_at: None,
            lifted_by: None,
            lift_reference: None,
            active,
        })
    }

    /// Lifts a restriction now (opheffen); lifting one that was already
    /// lifted is refused ([`RegisterError::Closed`]).
    pub async fn lift_restriction(
        &self,
        cx: &ChangeContext<'_>,
        id: &str,
        pupil: &str,
        reference: Option<String>,
    ) -> Result<RestrictionEntry, RegisterError> {
        let o = overleg_of(cx.set, cx.overleg)?;
        check_pupil(pupil)?;
        if let Some(r) = &reference {
            check_reference("referentie", r)?;
        }
        let guard = cx.before_commit(self.stripes.write(&o.id, pupil)).await?;
        let current = cx
            .before_commit(self.restriction(id, o, pupil))
            .await??
            .ok_or(RegisterError::NotFound("restriction"))?;
        if current.lifted_at.is_some() {
            return Err(RegisterError::Closed("restriction"));
        }
        let now = now_rfc3339();
        let side = SideWrite {
            apply: Statement {
                sql: "UPDATE restrictions SET lifted_at = $1, lifted_by = $2, lift_reference = $3 WHERE id = $4 AND lifted_at IS NULL",
                binds: vec![
                    Some(now.clone()),
                    Some(cx.actor.org.clone()),
                    reference.clone(),
                    Some(id.to_owned()),
                ],
            },
            undo: Statement {
                sql: "UPDATE restrictions SET lifted_at = NULL, lifted_by = NULL, lift_reference = NULL WHERE id = $1 AND lifted_at = $2",
                binds: vec![Some(id.to_owned()), Some(now.clone())],
            },
        };
        let detail = serde_json::json!({
            "register": "beperking", "id": id, "opgeheven_op": now, "referentie": reference,
        });
        let pseudonym = self.audit.pseudonymise(pupil);
        let rec = self.change_record(cx, o, &pseudonym, "restriction-lifted", 200, &detail);
        self.commit_change(rec, side).await?;
        drop(guard);
        Ok(RestrictionEntry {
            lifted_at: Some(now),
            lifted_by: Some(cx.actor.org.clone()),
            lift_reference: reference,
            active: false,
            ..current
        })
    }

    /// An objection of `pupil` in `o` by id; `None` when it does not exist
    /// or is another pupil's (see [`Registers::registration`]).
    async fn objection(
        &self,
        id: &str,
        o: &Overleg,
        pupil: &str,
    ) -> Result<Option<ObjectionEntry>, RegisterError> {
        // Recorded in this overleg, or against every overleg (`*`): found
        // through any overleg the deciding role may decide in.
        let sql = format!(
            "SELECT {OBJECTION_COLUMNS} FROM objections WHERE id = $1 AND (overleg = $2 OR overleg = '{ALL_OVERLEGGEN}')"
        );
        match self.pupils_row(sql, id, o, pupil).await? {
            Some(row) => Ok(Some(objection_from(&row)?)),
            None => Ok(None),
        }
    }

    /// A restriction of `pupil` in `o` by id; `None` as for objections.
    async fn restriction(
        &self,
        id: &str,
        o: &Overleg,
        pupil: &str,
    ) -> Result<Option<RestrictionEntry>, RegisterError> {
        let sql = format!(
            "SELECT {RESTRICTION_COLUMNS} FROM restrictions WHERE id = $1 AND overleg = $2"
        );
        match self.pupils_row(sql, id, o, pupil).await? {
            Some(row) => Ok(Some(restriction_from(&row, &now_rfc3339())?)),
            None => Ok(None),
        }
    }
}

/// A new objection's pupil, reference and purpose checked (a purpose of
/// the overleg; none against every overleg); its lodging time, not in the
/// future (default now).
fn checked_objection(o: &Overleg, new: &NewObjection) -> Result<String, RegisterError> {
    check_pupil(&new.pupil)?;
    check_reference("referentie", &new.reference)?;
    if new.all_overleggen && new.purpose.is_some() {
        return Err(RegisterError::Invalid(
            "doel: an objection against every casusoverleg names no purpose (purposes belong to one overleg)".into(),
        ));
    }
    if let Some(p) = &new.purpose
        && o.purpose(p).is_none()
    {
        return Err(RegisterError::Invalid(format!(
            "doel: `{p}` is not a purpose of casusoverleg `{}`",
            o.id
        )));
    }
    let now = now_rfc3339();
    let lodged = match &new.lodged_at {
        Some(t) => parse_time("ingediend_op", t)?,
        None => now.clone(),
    };
    if lodged > now {
        return Err(RegisterError::Invalid(
            "ingediend_op may not lie in the future".into(),
        ));
    }
    Ok(lodged)
}

/// The fields a restriction names, each as `bron:path`: a `bron:path` names
/// one bron of the overleg, a bare `path` every bron of the overleg whose
/// catalogue has it. A path is a catalogue field or a container of some
/// (`advies` covers `advies.tekst`). Unknown bronnen or paths are refused;
/// the result is sorted, without repeats.
pub fn restricted_fields(
    set: &PolicySet,
    o: &Overleg,
    named: &[String],
) -> Result<Vec<String>, RegisterError> {
    if named.is_empty() || named.len() > MAX_FIELDS {
        return Err(RegisterError::Invalid(format!(
            "velden: 1 to {MAX_FIELDS} field paths (leave velden out to restrict every field)"
        )));
    }
    let bronnen: BTreeSet<&str> = o.rules.iter().map(|r| r.bron.as_str()).collect();
    let mut out = BTreeSet::new();
    for entry in named {
        let (bron, path) = match entry.split_once(':') {
            Some((b, p)) => (Some(b), p),
            None => (None, entry.as_str()),
        };
        let path =
            FieldPath::parse(path).map_err(|e| RegisterError::Invalid(format!("velden: {e}")))?;
        if let Some(b) = bron.filter(|b| !bronnen.contains(b)) {
            return Err(RegisterError::Invalid(format!(
                "velden: `{b}` is not a bron of casusoverleg `{}`",
                o.id
            )));
        }
        let mut matched = false;
        for b in bronnen.iter().filter(|b| bron.is_none_or(|x| x == **b)) {
            let Some(cat) = set.bronnen.get(*b).map(|x| &x.catalogue) else {
                continue;
            };
            if cat
                .iter()
                .any(|f| f.path == path || path.is_strict_prefix_of(&f.path))
            {
                out.insert(format!("{b}:{path}"));
                matched = true;
            }
        }
        if !matched {
            return Err(RegisterError::Invalid(format!(
                "velden: `{entry}` is not a field of {} in casusoverleg `{}`",
                bron.map_or_else(|| "any bron".to_owned(), |b| format!("bron `{b}`")),
                o.id
            )));
        }
    }
    Ok(out.into_iter().collect())
}

/// Whether a restricted `path` covers the catalogue field at `field`: the
/// same path, or a container of it (`verzuim` covers `verzuim.uren` and
/// `verzuim.meldingen[].datum`; `verzuim.meldingen` covers the latter too).
pub fn path_covers(path: &str, field: &str) -> bool {
    field == path
        || (field.len() > path.len()
            && field.starts_with(path)
            && matches!(field.as_bytes().get(path.len()), Some(b'.' | b'[')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::fixture::Fixture;

    #[test]
    fn a_path_covers_itself_and_what_lies_below_it() {
        assert!(path_covers("verzuim", "verzuim.uren"));
        assert!(path_covers(
            "verzuim.meldingen",
            "verzuim.meldingen[].datum"
        ));
        assert!(path_covers("verzuim.uren", "verzuim.uren"));
        assert!(!path_covers("verzuim", "verzuimx.uren"));
        assert!(!path_covers("verzuim.uren", "verzuim"));
    }

    #[test]
    fn restricted_fields_are_checked_against_the_overlegs_bronnen() {
        let set = Fixture::new().set();
        let o = &set.overleggen["team"];
        let named = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            restricted_fields(
                &set,
                o,
                &named(&["verzuim", "las:zorg.diagnose", "verzuim"])
            )
            .unwrap(),
            ["las:verzuim", "las:zorg.diagnose"]
        );
        for bad in [
            &["nope"][..],
            &["las:nope"],
            &["elders:verzuim"],
            &["Verzuim"],
            &[],
        ] {
            assert!(restricted_fields(&set, o, &named(bad)).is_err(), "{bad:?}");
        }
    }
}
