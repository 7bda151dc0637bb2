//! The app API of a pod sandbox (feature `app-api`, docs/stage1-abi.md):
//! while the sandbox runs, its flavor listens on the unix socket
//! [`CONTROL_SOCKET`] in the pod directory; a client (`skiff app start`)
//! connects, writes one [`Request`] as a line of JSON and reads one
//! [`Reply`] line. Apps are added to the manifest beforehand, under the
//! lock file [`APPS_LOCK`] of the pod directory.

use serde::{Deserialize, Serialize};

/// The flavor's listening socket, in the pod directory.
pub const CONTROL_SOCKET: &str = "control";
/// Serialises changes to a sandbox's apps (the pod's own lock is the
/// flavor's while it runs).
pub const APPS_LOCK: &str = "apps.lock";
/// In `apps/<name>/` of an added app: RFC 3339 time its flavor started it.
pub const STARTED_FILE: &str = "started";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Start the manifest's app `app` (added, not running).
    Start { app: String },
    /// SIGTERM to a running app, SIGKILL after `timeout_ms`; the reply
    /// comes at once (the client waits for its `exit.json`).
    Stop { app: String, timeout_ms: u64 },
    /// Detach the root of an app that does not run from the pod and
    /// remove its cgroup (the client then removes it from the manifest
    /// and the pod directory).
    Remove { app: String },
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// Why the request failed; None: it was done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The started app's PID on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
}

/// One line of JSON, as both sides write them.
pub fn to_line<T: Serialize>(v: &T) -> String {
    // Serialising plain strings and numbers cannot fail.
    serde_json::to_string(v).unwrap_or_default() + "\n"
}

/// What one line of JSON holds, or why it is not one.
pub fn from_line<T: for<'de> Deserialize<'de>>(line: &str) -> Result<T, String> {
    serde_json::from_str(line.trim_end()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_strangers_are_refused() {
        let r: Request = serde_json::from_str(r#"{"op": "start", "app": "web"}"#).unwrap();
        assert_eq!(r, Request::Start { app: "web".into() });
        assert!(serde_json::from_str::<Request>(r#"{"op": "explode"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"op": "start", "app": "a", "x": 1}"#).is_err());
        let ok = Reply { error: None, pid: Some(7) };
        assert_eq!(serde_json::to_string(&ok).unwrap(), r#"{"pid":7}"#);
    }
}
