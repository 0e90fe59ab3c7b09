//! Policy parser/validator: the input is one policy file (an overleg, or a
//! bron with a `#bron` first line, or partners.toml with `#partners`) loaded
//! together with the committed policy set; plus field path, glob and template
//! parsing on each line. Must never panic.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use poortwachter_fuzz::{PolicyDir, check_policy_strings};

static DIR: OnceLock<PolicyDir> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| {
        PolicyDir::new(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../policies"
        )))
    });
    dir.check(data);
    check_policy_strings(data);
});
