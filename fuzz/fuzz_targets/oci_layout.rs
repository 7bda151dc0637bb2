//! An OCI layout whose index.json is arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_stage0::image::platform::Platform;
use skiff_stage0::image::source::layout::{DirFiles, OciLayout};

fuzz_target!(|data: &[u8]| {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("write");
    std::fs::write(tmp.path().join("index.json"), data).expect("write");
    if let Ok(layout) = OciLayout::open(DirFiles::new(tmp.path())) {
        let _ = layout.resolve(None, &Platform::default());
        let _ = layout.resolve(Some("latest"), &Platform::default());
    }
});
