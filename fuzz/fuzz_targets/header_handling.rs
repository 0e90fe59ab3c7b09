//! Header handling: W3C traceparent parsing and propagation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use poortwachter_fuzz::check_headers;

fuzz_target!(|data: &[u8]| {
    check_headers(data);
});
