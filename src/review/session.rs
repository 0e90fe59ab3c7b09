//! An administrative session on a configuration's store, the one way the
//! CLI opens the trail: the store, the policy set (for names and labels),
//! the pseudonymiser, and a short-lived writer on the `<instance>/admin`
//! chain for the access records and the changes it makes. [`Session::close`]
//! lets that writer seal its chain. The review commands run on it (`audit
//! query`, `export`, `inzage`, `rapport`): they record the access before
//! they produce their output. `audit toestemming`, `ontvangen`,
//! `kennisgeving` and `kennisgeving-gemeld` too.

use std::ops::ControlFlow;

use serde_json::json;

use super::access::{self, Access, Viewer};
use super::query::FilterInput;
use super::{
    ReviewError, export, inzage, kennisgeving, ontvangen, query, rapport, spoed, toestemming, when,
};
use crate::audit::{AuditRecord, Auditor, Outcome, Pseudonymiser, Store, admin};
use crate::config::Config;
use crate::policy::model::PolicySet;

/// An open review session: the store, the policy set (for names and
/// labels), the pseudonymiser, and an audit writer for the access records.
pub struct Session {
    pub store: Store,
    pub set: PolicySet,
    pub pseudo: Pseudonymiser,
    pub viewer: Viewer,
    auditor: Auditor,
    writer: tokio::task::JoinHandle<()>,
    cfg: Config,
}

impl Session {
    pub async fn open(cfg: &Config) -> Result<Self, ReviewError> {
        let set = crate::policy::load_dir(&cfg.policy.dir)?;
        let store = Store::connect(&cfg.audit.store).await?;
        let pseudo = Pseudonymiser::from_file(&cfg.audit.pseudonym_key)?;
        let (auditor, writer) =
            admin::admin_auditor(&store, &cfg.audit, &cfg.server.instance).await?;
        Ok(Self {
            store,
            set,
            pseudo,
            viewer: Viewer::cli_from_env(),
            auditor,
            writer,
            cfg: cfg.clone(),
        })
    }

    /// Stops the access writer after it sealed its chain.
    pub async fn close(self) {
        drop(self.auditor);
        let _ = self.writer.await;
    }

    /// The configuration the session was opened with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The writer of the `<instance>/admin` chain, for changes made by the
    /// administrative process (register changes, purges).
    pub fn auditor(&self) -> &Auditor {
        &self.auditor
    }

    /// Records an access to the trail on the admin chain; returns once it
    /// is durable (the caller shows nothing otherwise).
    pub async fn record(
        &self,
        action: &'static str,
        parameters: serde_json::Value,
        records: usize,
        pupil: Option<String>,
    ) -> Result<(), ReviewError> {
        access::record(
            &self.auditor,
            Access {
                viewer: &self.viewer,
                action,
                parameters,
                records,
                pupil,
            },
        )
        .await
    }
}

/// Output of `audit query` (`--format table|json|csv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QueryFormat {
    Table,
    Json,
    Csv,
}

/// Output of `audit inzage` and `audit rapport` (`--format html|json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Html,
    Json,
}

impl ReportFormat {
    /// The name on the command line, as the access record states it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Html => "html",
            Self::Json => "json",
        }
    }
}

/// The review commands (`audit query`, `export`, `inzage`, `rapport`).
impl Session {
    /// `audit query`.
    pub async fn query(
        &self,
        input: &FilterInput,
        format: QueryFormat,
    ) -> Result<String, ReviewError> {
        let filter = input.parse(&self.pseudo)?;
        let rows = query::run(&self.store, &filter).await?;
        let pupil = input
            .pupil
            .as_deref()
            .map(|p| self.pseudo.pseudonymise(p.trim()));
        self.record("query", json!(filter), rows.len(), pupil)
            .await?;
        Ok(match format {
            QueryFormat::Json => query::json(&rows),
            QueryFormat::Csv => export::csv(&rows),
            QueryFormat::Table => query::table(&rows),
        })
    }

    /// `audit export`: every matching record (no limit), as a string.
    pub async fn export(
        &self,
        input: &FilterInput,
        format: export::Format,
    ) -> Result<String, ReviewError> {
        let mut out = Vec::new();
        self.export_to(input, format, &mut out).await?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// `audit export` into `out`, page by page, so an export of any size
    /// needs the memory of one page. The access is recorded first, with the
    /// number of records that matched when the export started; the export
    /// stops at that moment too, so it never contains its own access record
    /// or anything written while it runs.
    pub async fn export_to(
        &self,
        input: &FilterInput,
        format: export::Format,
        out: &mut dyn std::io::Write,
    ) -> Result<u64, ReviewError> {
        let asked = input.parse(&self.pseudo)?;
        let mut filter = asked.clone();
        let now = crate::audit::record::now_rfc3339();
        if filter.to.as_ref().is_none_or(|t| *t > now) {
            filter.to = Some(now);
        }
        let n = query::count(&self.store, &filter).await?;
        let pupil = input
            .pupil
            .as_deref()
            .map(|p| self.pseudo.pseudonymise(p.trim()));
        self.record(
            "export",
            json!({"filter": asked, "format": format!("{format:?}")}),
            usize::try_from(n).unwrap_or(usize::MAX),
            pupil,
        )
        .await?;
        let mut failed: Option<std::io::Error> = None;
        if let Err(e) = out.write_all(export::header(format).as_bytes()) {
            failed = Some(e);
        }
        if failed.is_none() {
            query::for_each(&self.store, &filter, EXPORT_PAGE, |r| {
                match out.write_all(export::line(r, format, &self.set).as_bytes()) {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(e) => {
                        failed = Some(e);
                        ControlFlow::Break(())
                    }
                }
            })
            .await?;
        }
        match failed {
            Some(e) => Err(e.into()),
            None => Ok(n),
        }
    }

    /// `audit inzage`.
    pub async fn inzage(
        &self,
        pupil: &str,
        opts: inzage::Options,
        format: ReportFormat,
    ) -> Result<String, ReviewError> {
        let report = inzage::build(&self.store, &self.set, &self.pseudo, pupil, opts).await?;
        self.record(
            "inzage",
            json!({"include_denied": opts.include_denied, "format": format.name()}),
            report.records_read,
            Some(self.pseudo.pseudonymise(pupil.trim())),
        )
        .await?;
        Ok(match format {
            ReportFormat::Json => report.json(),
            ReportFormat::Html => report.html(),
        })
    }

    /// `audit rapport`.
    pub async fn rapport(
        &self,
        from: &str,
        to: &str,
        format: ReportFormat,
    ) -> Result<String, ReviewError> {
        let (from, to) = (when::bound(from, false)?, when::bound(to, true)?);
        let report = rapport::build(
            &self.store,
            &self.set,
            &from,
            &to,
            rapport::Thresholds::default(),
        )
        .await?;
        self.record(
            "rapport",
            json!({"from": from, "to": to, "format": format.name()}),
            report.records_read,
            None,
        )
        .await?;
        Ok(match format {
            ReportFormat::Json => report.json(),
            ReportFormat::Html => report.html(),
        })
    }
}

/// `audit toestemming`.
impl Session {
    /// Checks the consent-relying disclosures of `overleg` in the period
    /// (to now when `to` is not given) against the consent register. The
    /// access is recorded after the check (so the check never reads its own
    /// record) and before anything is shown, with the number of findings.
    pub async fn toestemming(
        &self,
        overleg: &str,
        from: Option<&str>,
        to: Option<&str>,
        format: QueryFormat,
    ) -> Result<toestemming::Report, ReviewError> {
        let o = query::FilterInput {
            overleg: Some(overleg.to_owned()),
            from: from.map(str::to_owned),
            to: to.map(str::to_owned),
            ..Default::default()
        }
        .parse(&self.pseudo)?;
        let overleg = o.overleg.unwrap_or_default();
        if overleg.is_empty() {
            return Err(ReviewError::Filter("overleg is required".into()));
        }
        let now = crate::audit::record::now_rfc3339();
        let to = match o.to {
            Some(t) if t <= now => t,
            _ => now,
        };
        let report = toestemming::build(&self.store, &overleg, o.from, to).await?;
        self.record(
            "toestemming",
            json!({
                "overleg": report.overleg, "from": report.from, "to": report.to,
                "format": format!("{format:?}").to_lowercase(),
                "disclosures": report.disclosures, "findings": report.findings,
            }),
            report.records_read,
            None,
        )
        .await?;
        Ok(report)
    }

    /// `audit wijzigingen`: the policy changes of a period, with their
    /// access delta and approvals.
    pub async fn changes(
        &self,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<super::changes::PolicyChange>, ReviewError> {
        let filter = query::FilterInput {
            from: from.map(str::to_owned),
            to: to.map(str::to_owned),
            ..Default::default()
        }
        .parse(&self.pseudo)?;
        let (changes, read) = super::changes::list(&self.store, &filter).await?;
        self.record(
            "wijzigingen",
            json!({"from": filter.from, "to": filter.to, "changes": changes.len()}),
            read,
            None,
        )
        .await?;
        Ok(changes)
    }
}

/// `audit ontvangen`, `audit kennisgeving` and `audit kennisgeving-gemeld`.
impl Session {
    /// What `org` received in `overleg` in the period, per field. The
    /// access is recorded before anything is shown.
    pub async fn ontvangen(
        &self,
        org: &str,
        overleg: &str,
        from: &str,
        to: &str,
        format: QueryFormat,
    ) -> Result<ontvangen::Report, ReviewError> {
        let f = query::FilterInput {
            org: Some(org.to_owned()),
            overleg: Some(overleg.to_owned()),
            from: Some(from.to_owned()),
            to: Some(to.to_owned()),
            ..Default::default()
        }
        .parse(&self.pseudo)?;
        let (Some(org), Some(overleg), Some(from), Some(to)) = (f.org, f.overleg, f.from, f.to)
        else {
            return Err(ReviewError::Filter(
                "org, overleg, van and tot are required".into(),
            ));
        };
        let report = ontvangen::build(&self.store, &self.set, &org, &overleg, from, to).await?;
        self.record(
            "ontvangen",
            json!({
                "org": report.org, "overleg": report.overleg, "from": report.from, "to": report.to,
                "format": format!("{format:?}").to_lowercase(),
                "disclosures": report.disclosures, "fields": report.fields.len(),
            }),
            report.records_read,
            None,
        )
        .await?;
        Ok(report)
    }

    /// The recipients of `pupil`'s data since `since`; with `register`,
    /// also registered for notification tracking (a `notification`
    /// record listing the recipients). Both records are durable before
    /// anything is shown.
    pub async fn kennisgeving(
        &self,
        pupil: &str,
        since: &str,
        fields: &[String],
        register: bool,
        format: ReportFormat,
    ) -> Result<kennisgeving::Kennisgeving, ReviewError> {
        let mut k =
            kennisgeving::build(&self.store, &self.set, &self.pseudo, pupil, since, fields).await?;
        if register {
            let id = uuid::Uuid::new_v4().to_string();
            let detail = json!({
                "kennisgeving": id, "since": k.since, "fields": k.fields,
                "recipients": k.recipient_ids(), "viewer": self.viewer_name(),
            });
            self.notification(kennisgeving::REGISTERED, Some(k.subject.clone()), &detail)
                .await?;
            k.id = Some(id);
        }
        self.record(
            "kennisgeving",
            json!({
                "since": k.since, "fields": k.fields, "format": format.name(),
                "registered": k.id, "recipients": k.recipients.len(),
            }),
            k.records_read,
            Some(k.subject.clone()),
        )
        .await?;
        Ok(k)
    }

    /// Records that recipient `org` of kennisgeving `id` was notified,
    /// under the FG's `reference`; returns the kennisgeving's status after
    /// it. Refused for an unknown kennisgeving, an organisation it does not
    /// list, or one already marked.
    pub async fn kennisgeving_gemeld(
        &self,
        id: &str,
        org: &str,
        reference: &str,
    ) -> Result<kennisgeving::Status, ReviewError> {
        let (id, org, reference) = (id.trim(), org.trim(), reference.trim());
        if !kennisgeving::is_id(id) {
            return Err(ReviewError::Filter(
                "kennisgeving: the id that --registreer printed".into(),
            ));
        }
        kennisgeving::check_reference(reference)?;
        let (all, read) = kennisgeving::statuses(&self.store).await?;
        let mut status = all
            .into_iter()
            .find(|s| s.kennisgeving.id == id)
            .ok_or_else(|| ReviewError::Notification(format!("{id} is not registered")))?;
        if !status.kennisgeving.recipients.iter().any(|o| o == org) {
            return Err(ReviewError::Notification(format!(
                "{org} is not a recipient of {id} (recipients: {})",
                status.kennisgeving.recipients.join(", ")
            )));
        }
        if let Some(n) = status.notified.iter().find(|n| n.org == org) {
            return Err(ReviewError::Notification(format!(
                "{org} was already marked notified on {} (reference {})",
                n.time, n.reference
            )));
        }
        let subject = status.kennisgeving.subject.clone();
        let detail = json!({
            "kennisgeving": id, "org": org, "referentie": reference, "viewer": self.viewer_name(),
        });
        self.notification(kennisgeving::NOTIFIED, subject.clone(), &detail)
            .await?;
        self.record(
            "kennisgeving-gemeld",
            json!({"kennisgeving": id, "org": org}),
            read,
            subject,
        )
        .await?;
        status.open.retain(|o| o != org);
        status.notified.push(kennisgeving::Notified {
            org: org.to_owned(),
            time: crate::audit::record::now_rfc3339(),
            reference: reference.to_owned(),
            record: String::new(),
        });
        Ok(status)
    }

    /// `audit aggregates`: checks the aggregates against a walk of every
    /// record and, with `recompute`, replaces them with the walk's. The
    /// access is recorded after the walk, before anything is shown.
    pub async fn aggregates(
        &self,
        recompute: bool,
    ) -> Result<super::aggregates::Check, ReviewError> {
        let (check, walk) = super::aggregates::check(&self.store).await?;
        if recompute {
            super::aggregates::replace(&self.store, &walk).await?;
        }
        self.record(
            "aggregates",
            json!({"recompute": recompute, "different": check.different}),
            check.records,
            None,
        )
        .await?;
        Ok(check)
    }

    /// The emergency review queue (`audit spoed`); the access is recorded
    /// first.
    pub async fn spoed(&self) -> Result<spoed::Queue, ReviewError> {
        let queue = spoed::queue(&self.store, &self.set).await?;
        self.record(
            "spoed",
            json!({"windows": queue.entries.len()}),
            queue.entries.len(),
            None,
        )
        .await?;
        Ok(queue)
    }

    /// Records the FG's review of an emergency window (`audit
    /// spoed-beoordelen`).
    pub async fn spoed_review(
        &self,
        id: &str,
        verdict: &str,
        note: &str,
    ) -> Result<crate::registers::emergency::Window, ReviewError> {
        let verdict = crate::registers::emergency::Review::parse(verdict).ok_or_else(|| {
            ReviewError::Filter("oordeel: gerechtvaardigd or niet-gerechtvaardigd".into())
        })?;
        spoed::review(
            &self.store,
            &self.auditor,
            &self.viewer,
            &self.set,
            id,
            verdict,
            note,
        )
        .await
    }

    /// Releases a reviewed emergency window for inzage (`audit
    /// spoed-vrijgeven`).
    pub async fn spoed_release(
        &self,
        id: &str,
    ) -> Result<crate::registers::emergency::Window, ReviewError> {
        spoed::release(&self.store, &self.auditor, &self.viewer, &self.set, id).await
    }

    /// Who is looking, as the records name them.
    fn viewer_name(&self) -> String {
        match &self.viewer {
            Viewer::Cli { user } => user.clone(),
            Viewer::Dashboard { org, .. } => org.clone(),
        }
    }

    /// Commits a `notification` record on the admin chain.
    async fn notification(
        &self,
        reason: &str,
        pupil: Option<String>,
        detail: &serde_json::Value,
    ) -> Result<(), ReviewError> {
        let id = uuid::Uuid::new_v4();
        let mut rec = AuditRecord::new(
            self.auditor.instance(),
            &id.to_string(),
            &id.simple().to_string(),
        );
        rec.kind = kennisgeving::KIND;
        rec.outcome = Outcome::Event;
        rec.reason = reason.to_owned();
        rec.pupil = pupil;
        rec.detail = detail.to_string();
        self.auditor.commit(rec).await?;
        Ok(())
    }
}

/// Records per page while `audit export` walks the trail.
const EXPORT_PAGE: usize = 10_000;
