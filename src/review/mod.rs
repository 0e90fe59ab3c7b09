//! Privacy-officer review of the audit trail (issue 6): search and export
//! ([`query`], [`export`]), the AVG art. 15 report for one pupil
//! ([`inzage`]), the DPIA accountability report ([`rapport`]), the check of
//! consent-relying disclosures against the consent register
//! ([`toestemming`]), the FHIR `AuditEvent` export ([`fhir`]), what an
//! organisation received per field ([`ontvangen`]), the recipients to
//! notify after a rectification, erasure or restriction and the tracking of
//! their notification ([`kennisgeving`]), and the recording of every access
//! to the trail ([`access`]).
//!
//! Everything here only *reads* `audit_records`; the writes are the
//! `kind = access` event that records who looked at what and the FG's
//! `kind = notification` records of a kennisgeving, which go through the
//! ordinary audit writer (and so into a hash chain).

pub mod access;
pub mod aggregates;
pub mod changes;
pub mod dashboard;
pub mod export;
pub mod fhir;
pub mod html;
pub mod inzage;
pub mod kennisgeving;
pub mod ontvangen;
pub mod pupil_counts;
pub mod query;
pub mod rapport;
pub mod session;
pub mod spoed;
pub mod toestemming;
pub mod when;

use crate::audit::{AuditError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid filter: {0}")]
    Filter(String),
    /// The access could not be recorded in the trail, so nothing is shown.
    #[error("the access could not be recorded in the audit trail: {0}")]
    Access(#[from] AuditError),
    #[error(transparent)]
    Admin(#[from] crate::audit::admin::AdminError),
    #[error(transparent)]
    Key(#[from] crate::audit::pseudonym::KeyError),
    #[error("policy: {0}")]
    Policy(#[from] crate::policy::LoadError),
    #[error("reading the registers")]
    Registers(#[from] crate::registers::RegisterError),
    /// A kennisgeving cannot be marked as asked (unknown, not a
    /// recipient, already marked).
    #[error("kennisgeving: {0}")]
    Notification(String),
    /// An emergency window cannot be reviewed or released (unknown, out
    /// of order).
    #[error("spoed: {0}")]
    Emergency(String),
    /// Writing an export failed (disk full, closed pipe): the output is incomplete.
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
}

impl From<sqlx::Error> for ReviewError {
    fn from(e: sqlx::Error) -> Self {
        ReviewError::Store(StoreError::Sql(e))
    }
}
