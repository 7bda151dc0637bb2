//! Timestamps as stored in the pod directory: RFC 3339 UTC strings.

use std::time::SystemTime;

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339(s.trim()).ok()
}
