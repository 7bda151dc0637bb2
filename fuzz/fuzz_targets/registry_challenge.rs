//! WWW-Authenticate headers as registries (or anyone on the path) send them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_stage0::image::source::registry::auth::parse_challenge;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = parse_challenge(s);
    }
});
