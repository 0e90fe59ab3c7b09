//! Case binding (aanmeldingen), the consent register (toestemmingen), and
//! the objection and restriction registers (bezwaren, beperkingen: see
//! [`rights`]).
//!
//! Contracts:
//! - A request about a betrokkene is served only while that pupil has an
//!   active registration in the casusoverleg (begun, not ended).
//! - A field whose rule requires consent flows only while a matching consent
//!   is active for the request's purpose (valid, not withdrawn).
//! - The registers hold the pupil only as the audit trail's keyed pseudonym,
//!   and every change is committed in the same database transaction as its
//!   audit record ([`crate::audit::Auditor::commit_with`]): both or neither.
//! - Revocations (ending a registration, withdrawing consent) are
//!   acknowledged only when no response decided under the old state can
//!   still leave: requests about a pupil hold a read guard on that pupil's
//!   stripe from their status lookup until their response is handed over;
//!   a revocation takes the write guard, so it waits for those requests and
//!   every later request looks the status up again. Responses decided by
//!   *other* processes (several instances on PostgreSQL, or the CLI next to
//!   a running gateway) are covered by waiting `revocation_grace` before
//!   acknowledging: no request outlives `request_timeout + commit_timeout`.
//! - Statuses are served from memory when held ([`cache`]): another
//!   process's change reaches this one within the feed's staleness, which a
//!   revocation therefore waits on top of a non-zero grace; this process's
//!   own changes are forgotten before the stripe is released.

pub mod cache;
pub mod emergency;
mod lock;
pub mod rights;
mod sql;
mod types;

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use tokio::sync::OwnedRwLockReadGuard;

pub use sql::{ALL_OVERLEGGEN, history_of, status_of};
pub use types::{
    ActiveConsent, ActiveObjection, ActiveRestriction, Actor, CaseStatus, ConsentEntry, GivenBy,
    History, NewConsent, NewObjection, NewRegistration, NewRestriction, ObjectionEntry,
    ObjectionState, Origin, RegisterError, Registration, RestrictionEntry, RestrictionReason,
};

use cache::StatusCache;
use lock::Stripes;
use sql::{CONSENT_COLUMNS, REG_COLUMNS, consent_from, registration_from, status_until};

use crate::audit::record::{format_rfc3339, now_rfc3339};
use crate::audit::{
    AuditError, AuditRecord, Auditor, Outcome, SideWrite, Statement, Store, StoreError,
};
use crate::policy::model::{Overleg, PolicySet, Role};

/// Longest free-text reference (case reference, consent form) accepted.
const MAX_REFERENCE: usize = 200;
/// Longest pupil identifier accepted.
const MAX_PUPIL_ID: usize = 64;
/// Default length of an emergency window (`emergency.window_hours`).
pub const DEFAULT_EMERGENCY_WINDOW: Duration = Duration::from_hours(72);

/// The registers of one store, shared by the gateway's proxy, its register
/// API and the CLI.
#[derive(Clone)]
pub struct Registers {
    store: Store,
    audit: Auditor,
    stripes: Stripes,
    grace: Duration,
    /// Longest a revocation may wait for this process's in-flight requests
    /// (their lifetime: request timeout + commit timeout).
    drain: Duration,
    /// Deadline for [`Registers::status`] (`registers.lookup_timeout_ms`).
    lookup_timeout: Duration,
    /// How long an emergency window lasts (`emergency.window_hours`).
    emergency_window: Duration,
    /// `registers.max_emergency_justification_chars`.
    max_justification: usize,
    /// Serialises emergency requests per organisation and pupil in this
    /// process, so two of them cannot both open a window.
    emergency_stripes: Stripes,
    /// Pupils' status in memory (`None`: every request reads the store).
    cache: Option<Arc<StatusCache>>,
    /// Waited after every change's commit (see [`Registers::with_settle`]).
    settle: Duration,
}

impl std::fmt::Debug for Registers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registers")
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

/// Who changes which casusoverleg's registers, from where, under which
/// policy version.
#[derive(Debug, Clone, Copy)]
pub struct ChangeContext<'a> {
    pub origin: &'a Origin,
    pub set: &'a PolicySet,
    pub overleg: &'a str,
    pub actor: &'a Actor,
    /// The request's deadline, if any. It may refuse the change only before
    /// the change is handed to the audit writer: after that, the answer is
    /// what the writer decides (a deadline that cut in then could answer
    /// "failed" about a committed change).
    pub deadline: Option<tokio::time::Instant>,
}

impl ChangeContext<'_> {
    /// Runs a step that comes before the commit within the deadline.
    async fn before_commit<T>(&self, step: impl Future<Output = T>) -> Result<T, RegisterError> {
        match self.deadline {
            Some(d) => tokio::time::timeout_at(d, step)
                .await
                .map_err(|_| RegisterError::Timeout),
            None => Ok(step.await),
        }
    }
}

impl Registers {
    /// `grace`: how long revocations wait before they are acknowledged (see
    /// the module contract); zero when this process is the only gateway.
    /// `drain`: the longest a request can hold its guard (request timeout +
    /// commit timeout), which bounds how long a revocation waits for them.
    pub fn new(
        store: Store,
        audit: Auditor,
        grace: Duration,
        drain: Duration,
        lookup_timeout: Duration,
    ) -> Self {
        Self {
            store,
            audit,
            stripes: Stripes::new(),
            grace,
            drain,
            lookup_timeout,
            emergency_window: DEFAULT_EMERGENCY_WINDOW,
            max_justification: 500,
            emergency_stripes: Stripes::new(),
            cache: None,
            settle: Duration::ZERO,
        }
    }

    /// Every change waits `settle` after its commit before it is
    /// acknowledged: the CLI next to a running gateway waits the gateway's
    /// feed staleness, so that the change is in force there when the
    /// command returns.
    #[must_use]
    pub fn with_settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    /// Serves statuses from `cache`, which follows the store's change feed
    /// from now on (see [`cache`]).
    #[must_use]
    pub fn with_cache(mut self, cache: Option<Arc<StatusCache>>) -> Self {
        if let Some(c) = &cache {
            cache::follow(c, self.store.clone());
        }
        self.cache = cache;
        self
    }

    /// The status cache, if on (for its counts on `/metrics`).
    pub fn cache(&self) -> Option<&Arc<StatusCache>> {
        self.cache.as_ref()
    }

    /// With emergency windows of `length` (default 72 hours) and
    /// justifications of at most `max_chars` characters (default 500).
    #[must_use]
    pub fn with_emergency(mut self, length: Duration, max_chars: usize) -> Self {
        self.emergency_window = length;
        self.max_justification = max_chars;
        self
    }

    /// Longest emergency justification accepted (characters).
    pub fn max_justification(&self) -> usize {
        self.max_justification
    }

    /// Held by an emergency request of `org` about `pupil` from its window
    /// lookup until its response is handed over.
    pub async fn emergency_guard(
        &self,
        org: &str,
        pupil: &str,
    ) -> tokio::sync::OwnedRwLockWriteGuard<()> {
        self.emergency_stripes.write(org, pupil).await
    }

    /// The store the registers live in (the audit store).
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// Extra time a register API call may take beyond the request timeout:
    /// draining in-flight requests about the pupil, then the grace.
    pub fn revocation_allowance(&self) -> Duration {
        self.drain + self.grace
    }

    /// Held by a request from its status lookup until its response is
    /// handed over; revocations of that pupil wait for it.
    pub async fn read_guard(&self, overleg: &str, pupil: &str) -> OwnedRwLockReadGuard<()> {
        self.stripes.read(overleg, pupil).await
    }

    /// The pupil's status in `overleg` now, across every pseudonym key
    /// version: from memory when held (see [`cache`]), else from the store,
    /// `StoreError::Deadline` when the store does not answer within
    /// `registers.lookup_timeout_ms` (the pool would otherwise keep trying
    /// to connect to a store that is down for its whole acquire timeout).
    pub async fn status(&self, overleg: &str, pupil: &str) -> Result<CaseStatus, StoreError> {
        let pseudonyms = self.audit.pseudonymiser().all_pseudonyms(pupil);
        let Some(cache) = &self.cache else {
            return self
                .within_lookup(status_of(&self.store, &pseudonyms, overleg))
                .await;
        };
        let now = now_rfc3339();
        if let Some(held) = cache.get(overleg, &pseudonyms, &now) {
            return Ok(held);
        }
        let ticket = cache.ticket();
        let (status, until) = self
            .within_lookup(status_until(&self.store, &pseudonyms, overleg, &now))
            .await?;
        if let Some(t) = ticket {
            cache.insert(t, overleg, &pseudonyms, &status, until);
        }
        Ok(status)
    }

    async fn within_lookup<T>(
        &self,
        lookup: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.lookup_timeout, lookup)
            .await
            .map_err(|_| StoreError::Deadline(self.lookup_timeout))?
    }

    /// Commits a register change with its record, then forgets the pupil's
    /// held status (also when the commit's outcome is unknown) and waits
    /// the settle time, if any.
    async fn commit_change(&self, rec: AuditRecord, side: SideWrite) -> Result<(), AuditError> {
        let pseudonym = rec.pupil.clone();
        let done = self.audit.commit_with(rec, side).await;
        if let (Some(c), Some(p)) = (&self.cache, &pseudonym) {
            c.forget(p);
        }
        if done.is_ok() && !self.settle.is_zero() {
            tokio::time::sleep(self.settle).await;
        }
        done
    }

    /// Registers `new.pupil` in `overleg`.
    pub async fn register(
        &self,
        cx: &ChangeContext<'_>,
        new: NewRegistration,
    ) -> Result<Registration, RegisterError> {
        let o = overleg_of(cx.set, cx.overleg)?;
        check_pupil(&new.pupil)?;
        check_reference("referentie", &new.reference)?;
        let now = now_rfc3339();
        let (begins, ends) = period(
            ("begin", "einde"),
            new.begins_at.as_deref(),
            new.ends_at.as_deref(),
            &now,
        )?;
        let (informed_at, informed_how) = informing(&new, &now)?;
        let id = uuid::Uuid::new_v4().to_string();
        let pseudonym = self.audit.pseudonymise(&new.pupil);
        let side = SideWrite {
            apply: Statement {
                sql: "INSERT INTO case_registrations (id, overleg, subject, reference, begins_at, ends_at, registered_by, registered_role, registered_at, informed_at, informed_how) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
                binds: vec![
                    Some(id.clone()),
                    Some(o.id.clone()),
                    Some(pseudonym.clone()),
                    Some(new.reference.clone()),
                    Some(begins.clone()),
                    ends.clone(),
                    Some(cx.actor.org.clone()),
                    Some(cx.actor.role.clone()),
                    Some(now.clone()),
                    informed_at.clone(),
                    informed_how.clone(),
                ],
            },
            undo: Statement {
                sql: "DELETE FROM case_registrations WHERE id = $1",
                binds: vec![Some(id.clone())],
            },
        };
        let detail = serde_json::json!({
            "register": "aanmelding", "id": id, "referentie": new.reference,
            "begin": begins, "einde": ends,
            "geinformeerd_op": informed_at, "geinformeerd_hoe": informed_how,
        });
        let rec = self.change_record(cx, o, &pseudonym, "case-registered", 201, &detail);
        self.commit_change(rec, side).await?;
        // Answered from what was committed: a read-back that failed now
        // would tell the client "nothing changed" about a committed change.
        let active = begins <= now && ends.as_deref().is_none_or(|e| e > now.as_str());
        Ok(Registration {
            id,
            overleg: o.id.clone(),
            reference: new.reference,
            begin: begins,
            end: ends,
            registered_by: cx.actor.org.clone(),
            role: cx.actor.role.clone(),
            registered_at: now,
            ended_at: None,
            ended_by: None,
            informed_at,
            informed_how,
            active,
        })
    }

    /// Ends an active registration now. Acknowledged only after in-flight
    /// requests about the pupil have finished (see the module contract).
    pub async fn end_registration(
        &self,
        cx: &ChangeContext<'_>,
        id: &str,
        pupil: &str,
    ) -> Result<Registration, RegisterError> {
        let o = overleg_of(cx.set, cx.overleg)?;
        check_pupil(pupil)?;
        let guard = cx.before_commit(self.stripes.write(&o.id, pupil)).await?;
        let current = cx
            .before_commit(self.registration(id, o, pupil))
            .await??
            .ok_or(RegisterError::NotFound("registration"))?;
        let now = now_rfc3339();
        if current.ended_at.is_some() || current.end.as_deref().is_some_and(|e| e <= now.as_str()) {
            return Err(RegisterError::Closed("registration"));
        }
        let side = SideWrite {
            apply: Statement {
                sql: "UPDATE case_registrations SET ends_at = $1, ended_at = $1, ended_by = $2 WHERE id = $3 AND ended_at IS NULL",
                binds: vec![
                    Some(now.clone()),
                    Some(cx.actor.org.clone()),
                    Some(id.to_owned()),
                ],
            },
            undo: Statement {
                sql: "UPDATE case_registrations SET ends_at = $1, ended_at = NULL, ended_by = NULL WHERE id = $2 AND ended_at = $3",
                binds: vec![current.end.clone(), Some(id.to_owned()), Some(now.clone())],
            },
        };
        let detail = serde_json::json!({
            "register": "aanmelding", "id": id, "referentie": current.reference, "einde": now,
        });
        let pseudonym = self.audit.pseudonymise(pupil);
        let rec = self.change_record(cx, o, &pseudonym, "case-ended", 200, &detail);
        self.commit_change(rec, side).await?;
        drop(guard);
        self.wait_grace().await;
        Ok(Registration {
            end: Some(now.clone()),
            ended_at: Some(now),
            ended_by: Some(cx.actor.org.clone()),
            active: false,
            ..current
        })
    }

    /// Records when and how the pupil and parents were informed (AVG art.
    /// 13/14) on a registration that does not say so yet, once (409 after).
    /// It takes nothing away, so it waits for no request and no grace.
    pub async fn record_informing(
        &self,
        cx: &ChangeContext<'_>,
        id: &str,
        pupil: &str,
        at: &str,
        how: &str,
    ) -> Result<Registration, RegisterError> {
        let o = overleg_of(cx.set, cx.overleg)?;
        check_pupil(pupil)?;
        let now = now_rfc3339();
        let (Some(at), Some(how)) = informing_of(Some(at), Some(how), &now)? else {
            return Err(RegisterError::Invalid(
                "geinformeerd_op and geinformeerd_hoe are needed".into(),
            ));
        };
        let guard = cx.before_commit(self.stripes.write(&o.id, pupil)).await?;
        let current = cx
            .before_commit(self.registration(id, o, pupil))
            .await??
            .ok_or(RegisterError::NotFound("registration"))?;
        if current.informed_at.is_some() {
            return Err(RegisterError::AlreadyRecorded(
                "informing (geinformeerd_op)",
            ));
        }
        let side = SideWrite {
            apply: Statement {
                sql: "UPDATE case_registrations SET informed_at = $1, informed_how = $2 WHERE id = $3 AND informed_at IS NULL",
                binds: vec![Some(at.clone()), Some(how.clone()), Some(id.to_owned())],
            },
            undo: Statement {
                sql: "UPDATE case_registrations SET informed_at = NULL, informed_how = NULL WHERE id = $1 AND informed_at = $2",
                binds: vec![Some(id.to_owned()), Some(at.clone())],
            },
        };
        let detail = serde_json::json!({
            "register": "aanmelding", "id": id, "referentie": current.reference,
            "geinformeerd_op": at, "geinformeerd_hoe": how,
        });
        let pseudonym = self.audit.pseudonymise(pupil);
        let rec = self.change_record(cx, o, &pseudonym, "case-informed", 200, &detail);
        self.commit_change(rec, side).await?;
        drop(guard);
        Ok(Registration {
            informed_at: Some(at),
            informed_how: Some(how),
            ..current
        })
    }

    /// Records a consent.
    pub async fn give_consent(
        &self,
        cx: &ChangeContext<'_>,
        new: NewConsent,
    ) -> Result<ConsentEntry, RegisterError> {
        let o = overleg_of(cx.set, cx.overleg)?;
        check_pupil(&new.pupil)?;
        check_reference("formulier", &new.form_reference)?;
        let purposes = consent_purposes(o, &new.purposes)?;
        let now = now_rfc3339();
        let (from, until) = consent_validity(&new, &now)?;
        let id = uuid::Uuid::new_v4().to_string();
        let pseudonym = self.audit.pseudonymise(&new.pupil);
        let purposes_json = serde_json::to_string(&purposes).unwrap_or_else(|_| "[]".into());
        let side = SideWrite {
            apply: Statement {
                sql: "INSERT INTO consents (id, overleg, subject, given_by, purposes, valid_from, valid_until, form_reference, recorded_by, recorded_role, recorded_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
                binds: vec![
                    Some(id.clone()),
                    Some(o.id.clone()),
                    Some(pseudonym.clone()),
                    Some(new.given_by.as_str().to_owned()),
                    Some(purposes_json),
                    Some(from.clone()),
                    until.clone(),
                    Some(new.form_reference.clone()),
                    Some(cx.actor.org.clone()),
                    Some(cx.actor.role.clone()),
                    Some(now.clone()),
                ],
            },
            undo: Statement {
                sql: "DELETE FROM consents WHERE id = $1",
                binds: vec![Some(id.clone())],
            },
        };
        let detail = serde_json::json!({
            "register": "toestemming", "id": id, "gegeven_door": new.given_by.as_str(),
            "doelen": purposes, "geldig_van": from, "geldig_tot": until,
            "formulier": new.form_reference,
        });
        let rec = self.change_record(cx, o, &pseudonym, "consent-given", 201, &detail);
        self.commit_change(rec, side).await?;
        // Answered from what was committed (see `register`).
        let active = from <= now && until.as_deref().is_none_or(|u| u > now.as_str());
        Ok(ConsentEntry {
            id,
            overleg: o.id.clone(),
            given_by: new.given_by,
            purposes,
            valid_from: from,
            valid_until: until,
            form: new.form_reference,
            recorded_by: cx.actor.org.clone(),
            role: cx.actor.role.clone(),
            recorded_at: now,
            withdrawn_at: None,
            withdrawn_by: None,
            withdrawal_reference: None,
            active,
        })
    }

    /// Withdraws a consent. Takes effect for every request that looks the
    /// status up after it commits; acknowledged only once no response that
    /// relied on the consent can still leave (see the module contract).
    pub async fn withdraw_consent(
        &self,
        cx: &ChangeContext<'_>,
        id: &str,
        pupil: &str,
        reference: Option<String>,
    ) -> Result<ConsentEntry, RegisterError> {
        let o = overleg_of(cx.set, cx.overleg)?;
        check_pupil(pupil)?;
        if let Some(r) = &reference {
            check_reference("referentie", r)?;
        }
        // Drain first: requests about this pupil that already looked the
        // consent up finish (and are released) before the withdrawal commits;
        // requests arriving now queue behind it and will see it.
        let guard = cx.before_commit(self.stripes.write(&o.id, pupil)).await?;
        let current = cx
            .before_commit(self.consent(id, o, pupil))
            .await??
            .ok_or(RegisterError::NotFound("consent"))?;
        if current.withdrawn_at.is_some() {
            return Err(RegisterError::Closed("consent"));
        }
        let now = now_rfc3339();
        let side = SideWrite {
            apply: Statement {
                sql: "UPDATE consents SET withdrawn_at = $1, withdrawn_by = $2, withdrawal_reference = $3 WHERE id = $4 AND withdrawn_at IS NULL",
                binds: vec![
                    Some(now.clone()),
                    Some(cx.actor.org.clone()),
                    reference.clone(),
                    Some(id.to_owned()),
                ],
            },
            undo: Statement {
                sql: "UPDATE consents SET withdrawn_at = NULL, withdrawn_by = NULL, withdrawal_reference = NULL WHERE id = $1 AND withdrawn_at = $2",
                binds: vec![Some(id.to_owned()), Some(now.clone())],
            },
        };
        let detail = serde_json::json!({
            "register": "toestemming", "id": id, "ingetrokken_op": now,
            "referentie": reference, "formulier": current.form,
        });
        let pseudonym = self.audit.pseudonymise(pupil);
        let rec = self.change_record(cx, o, &pseudonym, "consent-withdrawn", 200, &detail);
        self.commit_change(rec, side).await?;
        drop(guard);
        self.wait_grace().await;
        Ok(ConsentEntry {
            withdrawn_at: Some(now),
            withdrawn_by: Some(cx.actor.org.clone()),
            withdrawal_reference: reference,
            active: false,
            ..current
        })
    }

    /// Records a read of a pupil's registers outside the API (CLI, explain):
    /// an access to personal data, findable by the pupil's pseudonym.
    pub async fn record_read(
        &self,
        overleg: Option<&str>,
        pupil: &str,
        via: &str,
    ) -> Result<(), AuditError> {
        let id = uuid::Uuid::new_v4();
        let mut rec = AuditRecord::new(
            self.audit.instance(),
            &id.to_string(),
            &id.simple().to_string(),
        );
        rec.kind = "access";
        rec.outcome = Outcome::Event;
        rec.reason = "register-read".into();
        rec.overleg = overleg.map(str::to_owned);
        rec.pupil = Some(self.audit.pseudonymise(pupil));
        rec.detail = serde_json::json!({ "via": via }).to_string();
        self.audit.commit(rec).await
    }

    /// Waits the revocation grace; when other processes may hold the
    /// pupil's status in memory (a grace is set), also the longest they may
    /// use it after the change ([`cache::CacheLimits::staleness`]).
    async fn wait_grace(&self) {
        if !self.grace.is_zero() {
            tokio::time::sleep(self.grace + self.cache_staleness()).await;
        }
    }

    /// How long another process may still use a status held before a
    /// change (zero without a cache).
    pub fn cache_staleness(&self) -> Duration {
        self.cache
            .as_ref()
            .map_or(Duration::ZERO, |c| c.limits().staleness)
    }

    /// Every registration and consent of `pupil` (in `overleg` if given),
    /// oldest first, across pseudonym key versions.
    pub async fn history(
        &self,
        overleg: Option<&str>,
        pupil: &str,
    ) -> Result<History, RegisterError> {
        let pseudonyms = self.audit.pseudonymiser().all_pseudonyms(pupil);
        history_of(&self.store, &pseudonyms, overleg).await
    }

    /// A registration of `pupil` in `o` by id; `None` when it does not
    /// exist or belongs to another pupil or overleg (indistinguishable on
    /// purpose: ids are not a way to probe other pupils).
    async fn registration(
        &self,
        id: &str,
        o: &Overleg,
        pupil: &str,
    ) -> Result<Option<Registration>, RegisterError> {
        let sql =
            format!("SELECT {REG_COLUMNS} FROM case_registrations WHERE id = $1 AND overleg = $2");
        match self.pupils_row(sql, id, o, pupil).await? {
            Some(row) => Ok(Some(registration_from(&row, &now_rfc3339())?)),
            None => Ok(None),
        }
    }

    /// A consent of `pupil` in `o` by id; `None` as for [`Self::registration`].
    async fn consent(
        &self,
        id: &str,
        o: &Overleg,
        pupil: &str,
    ) -> Result<Option<ConsentEntry>, RegisterError> {
        let sql = format!("SELECT {CONSENT_COLUMNS} FROM consents WHERE id = $1 AND overleg = $2");
        match self.pupils_row(sql, id, o, pupil).await? {
            Some(row) => Ok(Some(consent_from(&row, &now_rfc3339())?)),
            None => Ok(None),
        }
    }

    /// The row `sql` selects by (`id`, overleg), only if it is `pupil`'s.
    async fn pupils_row(
        &self,
        sql: String,
        id: &str,
        o: &Overleg,
        pupil: &str,
    ) -> Result<Option<sqlx::any::AnyRow>, RegisterError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(&o.id)
            .fetch_optional(self.store.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let pseudonym: String = row.try_get("subject")?;
        let mine = self
            .audit
            .pseudonymiser()
            .all_pseudonyms(pupil)
            .contains(&pseudonym);
        Ok(mine.then_some(row))
    }

    fn change_record(
        &self,
        cx: &ChangeContext<'_>,
        o: &Overleg,
        pseudonym: &str,
        reason: &str,
        status: u16,
        detail: &serde_json::Value,
    ) -> AuditRecord {
        let (origin, actor) = (cx.origin, cx.actor);
        let id = uuid::Uuid::new_v4();
        let mut rec = AuditRecord::new(
            self.audit.instance(),
            origin.request_id.as_deref().unwrap_or(&id.to_string()),
            origin
                .trace_id
                .as_deref()
                .unwrap_or(&id.simple().to_string()),
        );
        rec.cert_fingerprint.clone_from(&origin.cert_fingerprint);
        rec.supplier.clone_from(&origin.supplier);
        rec.kind = "register";
        rec.outcome = Outcome::Event;
        rec.reason = reason.to_owned();
        rec.org = Some(actor.org.clone());
        rec.role = Some(actor.role.clone());
        rec.grondslag = Some(actor.grondslag.clone());
        rec.overleg = Some(o.id.clone());
        rec.pupil = Some(pseudonym.to_owned());
        rec.status = status;
        rec.policy_version = cx.set.version.clone();
        rec.detail = detail.to_string();
        rec
    }
}

fn overleg_of<'a>(set: &'a PolicySet, id: &str) -> Result<&'a Overleg, RegisterError> {
    set.overleggen
        .get(id)
        .ok_or_else(|| RegisterError::UnknownOverleg(id.to_owned()))
}

/// What a role may change in the registers of its overleg (policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Registrations and consent: `may_register_cases`.
    Cases,
    /// Objections, and deciding them: `may_record_objections`.
    Objections,
    /// Restrictions, and lifting them: `may_record_restrictions`.
    Restrictions,
}

impl Capability {
    fn held_by(self, role: &Role) -> bool {
        match self {
            Self::Cases => role.may_register_cases,
            Self::Objections => role.may_record_objections,
            Self::Restrictions => role.may_record_restrictions,
        }
    }
    fn text(self) -> &'static str {
        match self {
            Self::Cases => "register cases or consent",
            Self::Objections => "record objections (may_record_objections)",
            Self::Restrictions => "record restrictions (may_record_restrictions)",
        }
    }
}

/// When and how the pupil and parents were informed (AVG art. 13/14), as
/// a registration records it: a time not in the future, with how; or
/// neither.
fn informing(
    new: &NewRegistration,
    now: &str,
) -> Result<(Option<String>, Option<String>), RegisterError> {
    informing_of(new.informed_at.as_deref(), new.informed_how.as_deref(), now)
}

/// [`informing`] of two optional values.
fn informing_of(
    at: Option<&str>,
    how: Option<&str>,
    now: &str,
) -> Result<(Option<String>, Option<String>), RegisterError> {
    match (at, how) {
        (None, None) => Ok((None, None)),
        (Some(at), Some(how)) => {
            let at = parse_time("geinformeerd_op", at)?;
            if at.as_str() > now {
                return Err(RegisterError::Invalid(
                    "geinformeerd_op lies in the future".into(),
                ));
            }
            check_reference("geinformeerd_hoe", how)?;
            Ok((Some(at), Some(how.to_owned())))
        }
        _ => Err(RegisterError::Invalid(
            "geinformeerd_op and geinformeerd_hoe go together".into(),
        )),
    }
}

/// The role in which `org` registers in `overleg`: one of its roles with
/// `may_register_cases`; `wanted` picks one when it holds several.
pub fn registering_role<'a>(
    set: &'a PolicySet,
    overleg: &str,
    org: &str,
    wanted: Option<&str>,
) -> Result<&'a Role, RegisterError> {
    role_for(set, overleg, org, wanted, Capability::Cases)
}

/// The role in which `org` may do `what` in `overleg`: one of its roles
/// that holds the capability; `wanted` picks one when it holds several.
pub fn role_for<'a>(
    set: &'a PolicySet,
    overleg: &str,
    org: &str,
    wanted: Option<&str>,
    what: Capability,
) -> Result<&'a Role, RegisterError> {
    let o = overleg_of(set, overleg)?;
    let may: Vec<&'a Role> = o
        .roles
        .iter()
        .filter(|r| what.held_by(r) && r.organisations.iter().any(|x| x == org))
        .collect();
    let not_allowed = || RegisterError::NotAllowed {
        org: org.to_owned(),
        overleg: o.id.clone(),
        what: what.text(),
    };
    match (wanted, may.as_slice()) {
        (_, []) => Err(not_allowed()),
        (Some(w), _) => may
            .iter()
            .find(|r| r.id == w)
            .copied()
            .ok_or_else(not_allowed),
        (None, [only]) => Ok(only),
        (None, many) => Err(RegisterError::RoleRequired {
            org: org.to_owned(),
            overleg: o.id.clone(),
            roles: many.iter().map(|r| r.id.clone()).collect(),
        }),
    }
}

/// An [`Actor`] for `org` in its registering role.
pub fn actor(
    set: &PolicySet,
    overleg: &str,
    org: &str,
    wanted: Option<&str>,
) -> Result<Actor, RegisterError> {
    actor_for(set, overleg, org, wanted, Capability::Cases)
}

/// An [`Actor`] for `org` in a role that may do `what`.
pub fn actor_for(
    set: &PolicySet,
    overleg: &str,
    org: &str,
    wanted: Option<&str>,
    what: Capability,
) -> Result<Actor, RegisterError> {
    let role = role_for(set, overleg, org, wanted, what)?;
    Ok(Actor {
        org: org.to_owned(),
        role: role.id.clone(),
        grondslag: role.grondslag.to_string(),
    })
}

/// Pupil ids: the characters a path segment may carry unambiguously.
pub fn check_pupil(id: &str) -> Result<(), RegisterError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_PUPIL_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(RegisterError::Invalid(format!(
            "leerling: 1 to {MAX_PUPIL_ID} characters from A-Z a-z 0-9 - _ ."
        )))
    }
}

fn check_reference(name: &str, s: &str) -> Result<(), RegisterError> {
    if s.trim().is_empty() || s.chars().count() > MAX_REFERENCE || s.chars().any(char::is_control) {
        return Err(RegisterError::Invalid(format!(
            "{name}: 1 to {MAX_REFERENCE} printable characters"
        )));
    }
    Ok(())
}

/// `YYYY-MM-DD` (midnight UTC) or RFC 3339, into the trail's time format.
pub fn parse_time(name: &str, s: &str) -> Result<String, RegisterError> {
    let bad = || RegisterError::Invalid(format!("{name}: expected YYYY-MM-DD or RFC 3339"));
    if s.len() == 10 {
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        let d = time::Date::parse(s, &fmt).map_err(|_| bad())?;
        return Ok(format_rfc3339(d.midnight().assume_utc()));
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| bad())?;
    Ok(format_rfc3339(t))
}

/// The purposes a consent names: at least one, each a purpose of the
/// overleg; sorted, without repeats.
fn consent_purposes(o: &Overleg, named: &[String]) -> Result<Vec<String>, RegisterError> {
    if named.is_empty() {
        return Err(RegisterError::Invalid(
            "doelen: name at least one purpose of the casusoverleg".into(),
        ));
    }
    let mut purposes = named.to_vec();
    purposes.sort();
    purposes.dedup();
    if let Some(bad) = purposes.iter().find(|p| o.purpose(p).is_none()) {
        return Err(RegisterError::Invalid(format!(
            "doelen: `{bad}` is not a purpose of casusoverleg `{}` (it has {})",
            o.id,
            o.purposes
                .iter()
                .map(|p| p.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(purposes)
}

/// A consent's validity: from `geldig_van` (default now) until `geldig_tot`
/// (default open), the end after the start.
fn consent_validity(
    new: &NewConsent,
    now: &str,
) -> Result<(String, Option<String>), RegisterError> {
    period(
        ("geldig_van", "geldig_tot"),
        new.valid_from.as_deref(),
        new.valid_until.as_deref(),
        now,
    )
}

/// A register entry's period: from `begin` (default now) until `end`
/// (default open), the end after the start; `names` are the wire names of
/// the two, for the messages.
pub(super) fn period(
    names: (&str, &str),
    begin: Option<&str>,
    end: Option<&str>,
    now: &str,
) -> Result<(String, Option<String>), RegisterError> {
    let from = match begin {
        Some(t) => parse_time(names.0, t)?,
        None => now.to_owned(),
    };
    let until = end.map(|t| parse_time(names.1, t)).transpose()?;
    if until.as_deref().is_some_and(|u| u <= from.as_str()) {
        return Err(RegisterError::Invalid(format!(
            "{} must be after {}",
            names.1, names.0
        )));
    }
    Ok((from, until))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::Consent;

    fn status(consents: &[(&str, GivenBy, &[&str])]) -> CaseStatus {
        CaseStatus {
            registration: Some("r".into()),
            objections: Vec::new(),
            restrictions: Vec::new(),
            emergency: None,
            consents: consents
                .iter()
                .map(|(id, g, p)| ActiveConsent {
                    id: (*id).into(),
                    given_by: *g,
                    purposes: p.iter().map(|s| (*s).into()).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn consent_kinds_satisfy_rules_by_whom_and_purpose() {
        let s = status(&[("p", GivenBy::Parents, &["a"])]);
        assert_eq!(s.consent_for("a", Consent::Parents), Some(vec!["p"]));
        assert_eq!(s.consent_for("b", Consent::Parents), None, "other purpose");
        assert_eq!(s.consent_for("a", Consent::Youth), None);
        assert_eq!(s.consent_for("a", Consent::ParentsAndYouth), None);
        assert_eq!(s.consent_for("a", Consent::None), Some(vec![]));
        let s = status(&[
            ("p", GivenBy::Parents, &["a"]),
            ("y", GivenBy::Youth, &["a"]),
        ]);
        assert_eq!(
            s.consent_for("a", Consent::ParentsAndYouth),
            Some(vec!["p", "y"])
        );
        let s = status(&[("b", GivenBy::ParentsAndYouth, &["a"])]);
        assert_eq!(s.consent_for("a", Consent::Youth), Some(vec!["b"]));
        assert_eq!(s.consent_for("a", Consent::Parents), Some(vec!["b"]));
        assert_eq!(
            s.consent_for("a", Consent::ParentsAndYouth),
            Some(vec!["b"])
        );
    }

    #[test]
    fn times_are_normalised_to_utc_micros() {
        assert_eq!(
            parse_time("t", "2026-03-01").unwrap(),
            "2026-03-01T00:00:00.000000Z"
        );
        assert_eq!(
            parse_time("t", "2026-03-01T10:00:00+01:00").unwrap(),
            "2026-03-01T09:00:00.000000Z"
        );
        assert!(parse_time("t", "1 maart").is_err());
    }

    #[test]
    fn pupil_ids_are_restricted() {
        assert!(check_pupil("L1001").is_ok());
        for bad in ["", "a/b", "a b", "%41", &"x".repeat(65)] {
            assert!(check_pupil(bad).is_err(), "{bad}");
        }
    }
}
