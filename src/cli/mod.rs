//! The command bodies of the `poortwachter` binary.

pub mod cases;
