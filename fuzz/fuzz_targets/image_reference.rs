//! Image references and digests as users type them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_stage0::image::digest::Digest;
use skiff_stage0::image::reference::ImageReference;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = ImageReference::parse(s);
        if let Ok(d) = Digest::parse(s) {
            // A parsed digest is safe as a file name.
            assert!(!d.hex().contains('/') && d.hex().len() == 64);
        }
    }
});
