//! Poortwachter: a privacy-covenant-aware data-sharing gateway.
//!
//! Map of the crate (request flow top to bottom):
//! - [`server`]: accept loop, connection limits, graceful shutdown (`run(listener, ...)`).
//! - [`tls`]: the only module that touches rustls: server config with client
//!   certificate verification and CRLs, upstream client config.
//! - [`identity`]: maps a *verified* client certificate to an organisation.
//! - [`proxy`]: one request: route, decide, forward, filter, audit, respond.
//! - [`decision`]: the policy snapshot; returns a [`decision::Tentative`] that
//!   the registers turn into a typed [`decision::Permit`], or a [`decision::Denial`].
//! - [`registers`]: case binding (aanmeldingen) and the consent register
//!   (toestemmingen), their API, and the guard that orders revocations
//!   against in-flight requests.
//! - [`policy`]: policy files, validation, casbin compilation, hot reload.
//! - [`filter`]: JSON data minimisation.
//! - [`upstream`]: forwarding to bronnen; needs a permit.
//! - [`problem`]: the single place errors become `application/problem+json`.
//! - [`config`]: the serve configuration file.
//! - [`certs`]: development PKI (rcgen). [`demo`]: the embedded demo.
//! - [`review`]: the privacy officer's view of the trail: query, export,
//!   inzage (AVG art. 15), DPIA report; every access recorded.
//! - [`dashboard`]: the admin listener (FG dashboard, health, readiness,
//!   metrics); [`metrics`]: the counters behind `/metrics`.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod audit;
pub mod config;
pub mod dev;
pub mod gateway;
pub mod hex;
pub mod lifecycle;
pub mod policy;
pub mod registers;
pub mod review;
