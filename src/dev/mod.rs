//! Development tools: the development PKI ([`certs`]), the embedded demo
//! with its bronnen ([`demo`]) and synthetic policy sets for benchmarks
//! ([`synth`]).

pub mod certs;
pub mod demo;
pub mod synth;
