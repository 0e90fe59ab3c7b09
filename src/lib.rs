//! Poortwachter: a privacy-covenant-aware data-sharing gateway.
//!
//! Map of the crate (a request meets the modules top to bottom):
//! - [`lifecycle`]: `Gateway::start(config, listeners, shutdown) -> Running`
//!   and `Running::stop()`, the one start and shutdown sequence that
//!   `serve`, `demo` and the tests share.
//! - [`gateway`]: the request path: accept loop and limits (`server`), the
//!   only rustls code (`tls`), certificate → organisation (`identity`), one
//!   request in named stages (`proxy`), the register API (`registers_api`),
//!   forwarding that needs a permit (`upstream`), the single place errors
//!   become problem+json (`problem`), `/metrics`, hot reload.
//! - [`policy`]: Bijlage 3 as data: model, parsing and validation, casbin
//!   compilation, the decision table and typed `Permit`, the field filter,
//!   the published snapshot; `policy::tools` holds the administrators'
//!   check/lint, explain, diff, render and test (through the same decision).
//! - [`registers`]: case binding (aanmeldingen) and consent (toestemmingen),
//!   and the revocation stripes that order a withdrawal against requests in
//!   flight.
//! - [`audit`]: the hash-chained, pseudonymised trail: the group-commit
//!   writer (fail closed), the store (SQLite, PostgreSQL), checkpoints,
//!   verification and purge.
//! - [`review`]: the FG's side: query, export, inzage (AVG art. 15), the
//!   DPIA report and the dashboard; every access recorded.
//! - [`config`]: the serve configuration file. [`dev`]: development PKI,
//!   the embedded demo, synthetic policy sets. [`hex`]: hex encoding.
//!
//! The binary (`src/main.rs`, `src/cli/`) is a thin clap front over this
//! library.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod audit;
pub mod config;
pub mod dev;
pub mod dutch_time;
pub mod gateway;
pub mod hex;
pub mod lifecycle;
pub mod policy;
pub mod registers;
pub mod review;
