//! Kubernetes YAML as users give it to `skiff play kube`: the documents
//! read, and the fields not honoured named, without a panic; an error
//! names the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_stage0::kube::{documents, fields};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match documents::read(text, "f.yaml") {
            Ok((pod, _sources)) => {
                for path in fields::unhonoured(&pod) {
                    assert!(!path.is_empty());
                }
            }
            Err(e) => assert!(format!("{e:#}").starts_with("f.yaml"), "{e:#}"),
        }
    }
});
