//! Policy files (machine-readable Bijlage 3): the model ([`model`]), parsing
//! and validation ([`raw`], [`load`]), casbin compilation ([`compile`]), the
//! decision table and typed permits ([`decision`]), the field filter a
//! permit applies ([`filter`]), and the atomically published snapshot
//! ([`store`]). [`tools`] holds the administrators' tooling (check and lint,
//! explain, diff, render, expected-decision tests).

pub mod approval;
pub mod bitset;
pub mod compile;
pub mod decision;
pub mod fieldpath;
pub mod filter;
#[cfg(test)]
pub(crate) mod fixture;
pub mod load;
pub mod mandate;
pub mod model;
pub mod oin;
pub mod raw;
pub mod store;
pub mod template;
pub mod tools;

pub use load::{LoadError, Problem, load_dir};
pub use store::{PolicyStore, ReloadError, Reloaded};
