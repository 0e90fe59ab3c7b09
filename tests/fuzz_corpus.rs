//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/`) through
//! the same checks the cargo-fuzz targets run (`fuzz/src/lib.rs`, included
//! here), so regressions show up in an ordinary `cargo test` on stable Rust.
#![allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "a scenario reads top to bottom (tests are exempt from the 80-line rule); test counts are small"
)]

mod common;

#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let data = std::fs::read(&p).unwrap();
            (p, data)
        })
        .collect()
}

/// Runs `check` on every file, naming the file that fails.
fn replay(target: &str, mut check: impl FnMut(&[u8])) -> usize {
    let files = corpus(target);
    for (path, data) in &files {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(data)));
        if let Err(e) = r {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| {
                    e.downcast_ref::<&str>()
                        .map(std::string::ToString::to_string)
                })
                .unwrap_or_default();
            panic!("{target}: {} fails: {msg}", path.display());
        }
    }
    files.len()
}

#[test]
fn policy_parser_corpus() {
    let dir = harness::PolicyDir::new(Path::new(common::POLICIES));
    let mut loaded = 0;
    let n = replay("policy_parser", |data| {
        if dir.check(data) {
            loaded += 1;
        }
        harness::check_policy_strings(data);
    });
    // The valid seeds (an overleg, a bron, partners.toml) must load.
    assert!(loaded >= 3, "only {loaded} of {n} policy inputs loaded");
}

#[test]
fn field_filter_corpus() {
    let set = harness::load_policies(Path::new(common::POLICIES));
    let filters = harness::Filters::new(&set);
    replay("field_filter", |data| {
        harness::check_field_filter(&filters, data);
    });
}

#[test]
fn route_matching_corpus() {
    let set = harness::load_policies(Path::new(common::POLICIES));
    replay("route_matching", |data| harness::check_route(&set, data));
}

#[test]
fn header_handling_corpus() {
    replay("header_handling", harness::check_headers);
}
