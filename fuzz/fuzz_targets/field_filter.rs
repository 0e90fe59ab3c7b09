//! JSON field filter: a document filtered with an input-derived allowed set
//! may only keep allowed catalogue paths.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use poortwachter_fuzz::{Filters, check_field_filter, load_policies};

static FILTERS: OnceLock<Filters> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let f = FILTERS.get_or_init(|| {
        Filters::new(&load_policies(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../policies"
        ))))
    });
    check_field_filter(f, data);
});
