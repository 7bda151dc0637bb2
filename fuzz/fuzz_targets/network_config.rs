//! What users give for networks: `--net` and `--port` values, and CNI
//! configuration lists from /etc/skiff/net.d.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_stage0::pod::network::{check_conflist, parse_port, NetRequest};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(name) = check_conflist(&v) {
            assert!(!name.is_empty() && !name.contains('/'));
        }
    }
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(NetRequest::Cni(nets)) = NetRequest::parse(s) {
        for (name, args) in nets {
            // A network name never reaches outside a directory, and an
            // argument never breaks CNI_ARGS' `;`/`=` framing.
            assert!(!name.is_empty() && !name.contains('/') && name != "..");
            for (k, v) in args {
                assert!(!k.contains(['=', ';']) && !v.contains(['=', ';']));
            }
        }
    }
    if let Ok(p) = parse_port(s) {
        assert!(p.host_port != 0 && p.pod_port != 0 && (p.protocol == "tcp" || p.protocol == "udp"));
    }
});
