//! What `list` and `status` know about a pod; the JSON schema of both
//! (docs/json.md).

use serde::Serialize;
use skiff_pods::{app_status, Pod};

#[derive(Debug, Serialize)]
pub struct AppInfo {
    pub name: String,
    pub image_name: String,
    pub image_id: String,
    /// Set once the app has exited.
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub exited_at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PodInfo {
    pub uuid: String,
    pub state: String,
    pub created_at: Option<String>,
    pub started_at: Option<String>,
    pub pid: Option<i32>,
    /// `host`, `none` or `default` (docs/networking.md).
    pub net: String,
    /// The pod's addresses (CIDR) while it runs on a CNI network.
    pub ips: Vec<String>,
    pub apps: Vec<AppInfo>,
}

impl PodInfo {
    pub fn of(pod: &Pod) -> PodInfo {
        let state = pod.state();
        let manifest = pod.read_manifest().ok();
        let path = pod.path();
        let apps = manifest
            .as_ref()
            .map(|m| {
                m.apps
                    .iter()
                    .map(|a| {
                        let exit = app_status::read_exit(&path, &a.name);
                        AppInfo {
                            name: a.name.clone(),
                            image_name: a.image.name.clone(),
                            image_id: a.image.id.clone(),
                            exit_code: exit.as_ref().map(|e| e.exit_code),
                            signal: exit.as_ref().and_then(|e| e.signal),
                            exited_at: exit.map(|e| e.exited_at),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let running = state == skiff_pods::PodState::Running;
        PodInfo {
            net: manifest.as_ref().map(|m| m.net.as_str().to_string()).unwrap_or_default(),
            ips: if running { pod.addresses() } else { Vec::new() },
            uuid: pod.uuid().to_string(),
            state: state.to_string(),
            created_at: manifest.map(|m| m.created_at),
            started_at: pod.started_at(),
            pid: if state == skiff_pods::PodState::Running { pod.pid() } else { None },
            apps,
        }
    }
}
