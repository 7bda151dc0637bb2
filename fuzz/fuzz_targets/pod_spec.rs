//! TOML pod manifests as users write them (`--pod-manifest`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_stage0::spec::PodSpec;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match PodSpec::from_toml(text) {
            Ok(spec) => assert!(!spec.apps.is_empty()),
            // Errors point inside the text (or at its end).
            Err(e) => assert!(e.line >= 1 && e.line <= text.lines().count() + 1, "{e}"),
        }
    }
});
