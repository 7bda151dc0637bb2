//! Pod manifests as stage1 reads them from the pod directory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_pods::PodManifest;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = PodManifest::from_json(data) {
        assert_eq!(PodManifest::from_json(&m.to_json()).ok(), Some(m));
    }
});
