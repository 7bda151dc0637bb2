//! Arbitrary bytes as a layer tar: the extractor must never panic, and
//! nothing may appear outside the target directory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_stage0::image::unpack::unpack_layer;

fuzz_target!(|data: &[u8]| {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).expect("mkdir");
    let _ = unpack_layer(data, &root);
    let outside: Vec<_> = std::fs::read_dir(tmp.path()).expect("readdir").collect();
    assert_eq!(outside.len(), 1, "the unpacker wrote next to its target");
});
