//! What `list` and `status` know about a pod; the JSON schema of both
//! (docs/json.md).

use std::collections::BTreeMap;

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
    /// How many times its restart policy started it again.
    pub restarts: u32,
}

/// One CNI network of a running pod.
#[derive(Debug, Serialize)]
pub struct NetworkInfo {
    pub name: String,
    pub ifname: String,
    pub ips: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct PodInfo {
    pub uuid: String,
    /// `--name`, if the pod was given one.
    pub name: Option<String>,
    pub state: String,
    pub created_at: Option<String>,
    pub started_at: Option<String>,
    pub pid: Option<i32>,
    /// `host`, `none`, or the CNI networks' names joined by commas
    /// (docs/networking.md).
    pub net: String,
    /// The pod's addresses (CIDR) while it runs on CNI networks.
    pub ips: Vec<String>,
    /// Its CNI networks while it runs, in the order they were attached.
    pub networks: Vec<NetworkInfo>,
    /// What its maker attached to it (`play kube`: the pod's labels and
    /// annotations); empty: none.
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub apps: Vec<AppInfo>,
}

impl PodInfo {
    /// The NETWORKS column of `list`: each network with its addresses
    /// while the pod runs (`default:10.231.0.5/16`), else the pod's
    /// network mode.
    pub fn networks_column(&self) -> String {
        if self.networks.is_empty() {
            return self.net.clone();
        }
        let each = self.networks.iter().map(|n| {
            let ips: Vec<&str> = n.ips.iter().map(|ip| ip.split('/').next().unwrap_or(ip)).collect();
            format!("{}:{}", n.name, ips.join("+"))
        });
        each.collect::<Vec<_>>().join(",")
    }

    pub fn of(pod: &Pod) -> PodInfo {
        Self::read(pod, true)
    }

    /// Without the apps' exit statuses (the `list` table does not show
    /// them, and they are a file per app to read).
    pub fn without_exits(pod: &Pod) -> PodInfo {
        Self::read(pod, false)
    }

    fn read(pod: &Pod, exits: bool) -> PodInfo {
        let state = pod.state();
        let manifest = pod.read_manifest_summary().ok();
        let apps = manifest
            .as_ref()
            .map(|m| {
                m.apps
                    .iter()
                    .map(|a| {
                        let exit = if exits { app_status::read_exit(pod, &a.name) } else { None };
                        AppInfo {
                            name: a.name.clone(),
                            image_name: a.image.name.clone(),
                            image_id: a.image.id.clone(),
                            exit_code: exit.as_ref().map(|e| e.exit_code),
                            signal: exit.as_ref().and_then(|e| e.signal),
                            exited_at: exit.map(|e| e.exited_at),
                            restarts: if exits { app_status::read_restarts(pod, &a.name) } else { 0 },
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let running = state == skiff_pods::PodState::Running;
        let net_state = if running { pod.net_state() } else { Default::default() };
        PodInfo {
            net: manifest.as_ref().map(|m| m.net_label()).unwrap_or_default(),
            ips: net_state.addresses(),
            networks: net_state
                .0
                .iter()
                .map(|a| NetworkInfo { name: a.network.clone(), ifname: a.ifname.clone(), ips: a.addresses() })
                .collect(),
            uuid: pod.uuid().to_string(),
            name: manifest.as_ref().and_then(|m| m.name.clone()),
            labels: manifest.as_ref().map(|m| m.labels.clone()).unwrap_or_default(),
            annotations: manifest.as_ref().map(|m| m.annotations.clone()).unwrap_or_default(),
            state: state.to_string(),
            created_at: manifest.map(|m| m.created_at),
            started_at: pod.started_at(),
            pid: if state == skiff_pods::PodState::Running { pod.pid() } else { None },
            apps,
        }
    }
}
