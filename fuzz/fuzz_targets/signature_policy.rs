//! Signature policy files (containers-policy.json(5)) as users and other
//! tools write them: parsed and checked without a panic, an error naming
//! the file; what parses round-trips and resolves scopes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_stage0::image::trust::{policy, scope};

fuzz_target!(|data: &[u8]| {
    match policy::parse(data, "p.json") {
        Ok(p) => {
            let again = policy::parse(serde_json::to_string(&p).unwrap().as_bytes(), "p.json").unwrap();
            assert_eq!(p, again);
            for scopes in p.transports.values() {
                for s in scopes.keys() {
                    let _ = scope::check_docker_scope(s);
                }
            }
            let (reqs, _) = policy::requirements_for(&p, "docker", &["r.example/a:1".to_string()]);
            assert!(!reqs.is_empty());
        }
        Err(e) => assert!(e.starts_with("p.json"), "{e}"),
    }
});
