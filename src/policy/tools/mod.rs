//! The administrators' policy tooling: validation and the covenant lint
//! rules ([`lint`]), one question answered with its reasons ([`explain`]),
//! the access delta between two sets ([`diff`]), the human-readable Bijlage 3
//! ([`render`]) and the expected-decision cases ([`test`]).

pub mod diff;
pub mod explain;
pub mod lint;
pub mod render;
pub mod test;
