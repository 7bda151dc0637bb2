//! What a registry, a lookaside store or an admin hands the signature
//! checks: registries.d YAML, OpenPGP signature messages and
//! simple-signing payloads, read without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_stage0::image::trust::{gpg, registries_d, simple_signing};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(d) = registries_d::parse(text) {
            let _ = d.lookaside(&["r.example/a:1".to_string(), "r.example".to_string()]);
            let _ = d.use_sigstore_attachments(&["r.example".to_string()]);
        }
    }
    if let Ok((_, payload)) = gpg::read(data) {
        let _ = simple_signing::parse(&payload, "atomic container signature");
    }
    let _ = simple_signing::parse(data, "cosign container image signature");
});
