//! What `skiff list`, `status` and `app list` print (docs/json.md), as the
//! server reads it, and the CRI's view of it.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::records::{SandboxMeta, RESERVED_PREFIX, SANDBOX_KEY};

#[derive(Clone, Debug, Deserialize)]
pub struct PodJson {
    pub uuid: String,
    pub state: String,
    pub created_at: Option<String>,
    #[serde(default)]
    pub ips: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl PodJson {
    /// Its CRI metadata: None if the pod is not a CRI sandbox.
    pub fn sandbox(&self) -> Option<SandboxMeta> {
        serde_json::from_str(self.annotations.get(SANDBOX_KEY)?).ok()
    }

    pub fn running(&self) -> bool {
        self.state == "running"
    }

    /// The annotations the kubelet gave (not the server's own).
    pub fn user_annotations(&self) -> HashMap<String, String> {
        self.annotations
            .iter()
            .filter(|(k, _)| !k.starts_with(RESERVED_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Its addresses without their prefix lengths.
    pub fn addresses(&self) -> Vec<String> {
        self.ips.iter().map(|ip| ip.split('/').next().unwrap_or(ip).to_string()).collect()
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct AppJson {
    pub name: String,
    pub state: String,
    pub image_id: Option<String>,
    pub started_at: Option<String>,
    pub exit_code: Option<i32>,
    pub exited_at: Option<String>,
}

/// RFC 3339 as nanoseconds since the epoch (0 if absent or unreadable).
pub fn nanos(t: Option<&str>) -> i64 {
    t.and_then(|t| humantime::parse_rfc3339_weak(t.trim_end_matches('Z')).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Whether `labels` has every pair of `selector`.
pub fn selected<'a>(labels: impl Fn(&str) -> Option<&'a str>, selector: &HashMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels(k) == Some(v.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_hostile_times() {
        assert_eq!(nanos(Some("2026-11-22T07:26:10.107731156Z")), 1_795_332_370_107_731_156);
        assert_eq!(nanos(Some("1970-01-01T00:00:01Z")), 1_000_000_000);
        for bad in [None, Some(""), Some("yesterday"), Some("2026-13-40T99:00:00Z")] {
            assert_eq!(nanos(bad), 0, "{bad:?}");
        }
    }
}
