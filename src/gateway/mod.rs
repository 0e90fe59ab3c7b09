//! The request path, in the order a connection meets it: [`server`] (accept
//! loop, limits, graceful shutdown) → [`tls`] (the only module touching
//! rustls) → [`identity`] (certificate → organisation) → [`proxy`] (one
//! request: route, decide, forward, filter, audit, respond) or
//! [`registers_api`] (the register API) → [`upstream`] (needs a permit) →
//! [`problem`] (the single place errors become problem+json). [`http`] has
//! the request-parsing helpers both routes share, [`metrics`] the counters
//! behind `/metrics`, [`reload`] hot reloads of policies and TLS material.

pub mod http;
pub mod identity;
pub mod metrics;
pub mod problem;
pub mod proxy;
pub mod registers_api;
pub mod reload;
pub mod server;
pub mod state;
pub mod tls;
pub mod upstream;
