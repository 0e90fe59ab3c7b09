//! The review commands as the CLI runs them (`audit query`, `export`,
//! `inzage`, `rapport`): open the store, record the access on the
//! `<instance>/admin` chain, and produce the output text. `main.rs` only
//! parses flags and prints.

use serde_json::json;

use super::access::{self, Access, Viewer};
use super::query::FilterInput;
use super::{ReviewError, export, inzage, query, rapport, when};
use crate::audit::{Auditor, Pseudonymiser, Store, admin};
use crate::config::Config;
use crate::policy::set::PolicySet;

/// An open review session: the store, the policy set (for names and
/// labels), the pseudonymiser, and an audit writer for the access records.
pub struct Session {
    pub store: Store,
    pub set: PolicySet,
    pub pseudo: Pseudonymiser,
    pub viewer: Viewer,
    auditor: Auditor,
    writer: tokio::task::JoinHandle<()>,
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
        })
    }

    /// Stops the access writer after it sealed its chain.
    pub async fn close(self) {
        drop(self.auditor);
        let _ = self.writer.await;
    }

    async fn record(
        &self,
        action: &'static str,
        parameters: serde_json::Value,
        records: usize,
        subject: Option<String>,
    ) -> Result<(), ReviewError> {
        access::record(
            &self.auditor,
            Access {
                viewer: &self.viewer,
                action,
                parameters,
                records,
                subject,
            },
        )
        .await
    }

    /// `audit query`: `format` is table, json or csv.
    pub async fn query(&self, input: &FilterInput, format: &str) -> Result<String, ReviewError> {
        let filter = input.parse(&self.pseudo)?;
        let rows = query::run(&self.store, &filter).await?;
        let subject = input
            .pupil
            .as_deref()
            .map(|p| self.pseudo.pseudonymise(p.trim()));
        self.record("query", json!(filter), rows.len(), subject)
            .await?;
        Ok(match format {
            "json" => query::json(&rows),
            "csv" => export::csv(&rows),
            _ => query::table(&rows),
        })
    }

    /// `audit export`: every matching record (no limit).
    pub async fn export(
        &self,
        input: &FilterInput,
        format: export::Format,
    ) -> Result<String, ReviewError> {
        let filter = input.parse(&self.pseudo)?;
        let rows = query::all(&self.store, &filter).await?;
        let subject = input
            .pupil
            .as_deref()
            .map(|p| self.pseudo.pseudonymise(p.trim()));
        self.record(
            "export",
            json!({"filter": filter, "format": format!("{format:?}")}),
            rows.len(),
            subject,
        )
        .await?;
        Ok(export::render(&rows, format))
    }

    /// `audit inzage`: `format` is html or json.
    pub async fn inzage(
        &self,
        pupil: &str,
        opts: inzage::Options,
        format: &str,
    ) -> Result<String, ReviewError> {
        let report = inzage::build(&self.store, &self.set, &self.pseudo, pupil, opts).await?;
        self.record(
            "inzage",
            json!({"include_denied": opts.include_denied, "format": format}),
            report.records_read,
            Some(self.pseudo.pseudonymise(pupil.trim())),
        )
        .await?;
        Ok(match format {
            "json" => report.json(),
            _ => report.html(),
        })
    }

    /// `audit rapport`: `format` is html or json.
    pub async fn rapport(&self, from: &str, to: &str, format: &str) -> Result<String, ReviewError> {
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
            json!({"from": from, "to": to, "format": format}),
            report.records_read,
            None,
        )
        .await?;
        Ok(match format {
            "json" => report.json(),
            _ => report.html(),
        })
    }
}
