//! Route matching: request target parsing and resource templates.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use poortwachter::policy::model::PolicySet;
use poortwachter_fuzz::{check_route, load_policies};

static SET: OnceLock<PolicySet> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let set = SET.get_or_init(|| {
        load_policies(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../policies"
        )))
    });
    check_route(set, data);
});
