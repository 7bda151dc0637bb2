//! The stage0 → stage1 hand-off, as constants and types both sides compile
//! against. The normative text is `docs/stage1-abi.md`.

use serde::{Deserialize, Serialize};

/// Version of the stage1 ABI described in `docs/stage1-abi.md`.
pub const ABI_VERSION: u32 = 2;

/// Environment variable holding the inherited, exclusively locked pod
/// directory fd. The flavor must keep it open for the pod's whole life.
pub const LOCK_FD_ENV: &str = "SKIFF_LOCK_FD";

/// Environment variable with the ABI version stage0 speaks.
pub const ABI_ENV: &str = "SKIFF_STAGE1_ABI";

/// Flavor binaries are named `skiff-stage1-<flavor>`.
pub fn flavor_binary(flavor: &str) -> String {
    format!("skiff-stage1-{flavor}")
}

/// What a flavor can do beyond the contract every flavor keeps (one app,
/// its argv, environment, working directory, user and groups, stdio, exit
/// codes, status files, stop, gc). stage0 refuses to give a flavor a pod
/// that asks for a feature it does not declare.
pub mod feature {
    /// More than one app per pod.
    pub const MULTI_APP: &str = "multi-app";
    /// A hostname of the pod's own (a UTS namespace).
    pub const HOSTNAME: &str = "hostname";
    /// Memory, CPU and pids limits (a cgroup per pod).
    pub const CGROUP_LIMITS: &str = "cgroup-limits";
    /// Capability sets as the manifest says.
    pub const CAPABILITIES: &str = "capabilities";
    /// A seccomp filter as the manifest says.
    pub const SECCOMP: &str = "seccomp";
    /// `no_new_privs`.
    pub const NO_NEW_PRIVILEGES: &str = "no-new-privileges";
    /// Hidden and read-only /proc and /sys paths.
    pub const MASKED_PATHS: &str = "masked-paths";
    /// A read-only root filesystem for the app.
    pub const READONLY_ROOTFS: &str = "readonly-rootfs";
    /// Host-path and pod-private volumes.
    pub const VOLUMES: &str = "volumes";
    /// A pseudo-terminal for the app (`run --tty` / `--interactive`).
    pub const TERMINAL: &str = "terminal";
    /// The `enter` entrypoint.
    pub const ENTER: &str = "enter";
    /// The pod's own PID namespace (apps do not see the host's processes).
    pub const PID_NAMESPACE: &str = "pid-namespace";
    /// The pod's own mount namespace and root, built on the image.
    pub const MOUNT_NAMESPACE: &str = "mount-namespace";
    /// Pods of several apps end as their `exit_policy` says.
    pub const EXIT_POLICY: &str = "exit-policy";
    /// `net: none`: a network namespace of the pod's own with only `lo`.
    pub const NET_NONE: &str = "net-none";
    /// `net: cni`: the pod's own network namespace attached to the
    /// manifest's CNI networks (the `default` bridge, named networks,
    /// published ports).
    pub const NET_CNI: &str = "net-cni";
    /// The app's `oom_score_adj`.
    pub const OOM_SCORE_ADJ: &str = "oom-score-adj";
    /// `run --rm`: the flavor removes the pod directory once the pod is
    /// over, and still exits with the pod's status.
    pub const REMOVE_ON_EXIT: &str = "remove-on-exit";
    /// Descriptors passed to the flavor with `LISTEN_FDS` (for its own PID)
    /// go to the pod's first app at the same numbers, with `LISTEN_PID`
    /// set to the app's PID.
    pub const SOCKET_ACTIVATION: &str = "socket-activation";
    /// With `NOTIFY_SOCKET`: `READY=1` once every app has started, or
    /// (`run --notify-app`) the apps' own notifications, relayed.
    pub const NOTIFY: &str = "notify";
    /// `log.driver = file`: the apps' stdout and stderr also kept in the
    /// pod directory (`apps/<name>/log`, rotated), for `skiff logs`.
    pub const LOGS: &str = "logs";
    /// The manifest's `user_namespace`: the pod in a user namespace of its
    /// own with that range, its image layers and volumes seen through it
    /// (docs/user-namespaces.md).
    pub const USER_NAMESPACES: &str = "user-namespaces";
    /// Apps with `init`: run one after another to their end before the
    /// pod's other apps (docs/manifest.md).
    pub const INIT_APPS: &str = "init-apps";
    /// Apps' `restart` policies: started again after they exit, with
    /// Kubernetes' back-off, their restarts counted in `apps/<name>/restarts`.
    pub const RESTART_POLICY: &str = "restart-policy";
    /// Pod volumes whose `new_volume.tmpfs` says so are a tmpfs, made
    /// before their first mount and shared by every app that mounts them.
    pub const MEMORY_VOLUMES: &str = "memory-volumes";
    /// An app's `groups_add`: supplementary groups beyond /etc/group's.
    pub const SUPPLEMENTARY_GROUPS: &str = "supplementary-groups";
    /// A pod volume mount's `sub_path`: only that path of the volume.
    pub const VOLUME_SUB_PATHS: &str = "volume-sub-paths";
    /// A pod of `sandbox: true` and no apps: its namespaces, network and
    /// cgroup held until it is stopped (`run --sandbox`, Kubernetes' pod
    /// sandbox).
    pub const SANDBOX: &str = "sandbox";
    /// Apps added to a running sandbox and started through its control
    /// socket (`skiff app add|start`, `pods::app_api`).
    pub const APP_API: &str = "app-api";
    /// An app's `log_path`: its log is written there instead of the pod
    /// directory (needs `logs`).
    pub const LOG_PATH: &str = "log-path";
    /// `cgroup_parent`: the pod's cgroup goes under that cgroup.
    pub const CGROUP_PARENT: &str = "cgroup-parent";

    /// Every feature this version of skiff knows, in the order the README
    /// table lists them.
    pub const ALL: [&str; 31] = [
        PID_NAMESPACE,
        MOUNT_NAMESPACE,
        HOSTNAME,
        NET_NONE,
        NET_CNI,
        MULTI_APP,
        EXIT_POLICY,
        CGROUP_LIMITS,
        CAPABILITIES,
        SECCOMP,
        NO_NEW_PRIVILEGES,
        MASKED_PATHS,
        READONLY_ROOTFS,
        VOLUMES,
        OOM_SCORE_ADJ,
        TERMINAL,
        ENTER,
        REMOVE_ON_EXIT,
        SOCKET_ACTIVATION,
        NOTIFY,
        LOGS,
        USER_NAMESPACES,
        INIT_APPS,
        RESTART_POLICY,
        MEMORY_VOLUMES,
        SUPPLEMENTARY_GROUPS,
        VOLUME_SUB_PATHS,
        SANDBOX,
        APP_API,
        LOG_PATH,
        CGROUP_PARENT,
    ];
}

/// What `skiff-stage1-<name> --describe` prints (one JSON object).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description {
    /// The flavor's name, e.g. `ns`.
    pub name: String,
    /// The ABI version the flavor implements.
    pub abi_version: u32,
    /// The features it implements (see [`feature`]); unknown ones are kept
    /// and ignored, so newer flavors work with older stage0s.
    pub features: Vec<String>,
    /// One line for humans.
    #[serde(default)]
    pub summary: String,
}

impl Description {
    pub fn new(name: &str, features: &[&str], summary: &str) -> Description {
        Description {
            name: name.to_string(),
            abi_version: ABI_VERSION,
            features: features.iter().map(|f| f.to_string()).collect(),
            summary: summary.to_string(),
        }
    }

    pub fn supports(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }

    pub fn to_json(&self) -> String {
        // Plain strings and numbers always serialise.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(data: &[u8]) -> Result<Description, String> {
        serde_json::from_slice(data).map_err(|e| format!("invalid --describe output: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_round_trip_and_tolerate_new_features() {
        let d = Description::new("ns", &[feature::ENTER], "x");
        assert_eq!(Description::from_json(d.to_json().as_bytes()).unwrap(), d);
        let newer = br#"{"name":"x","abi_version":2,"features":["enter","time-travel"]}"#;
        let d = Description::from_json(newer).unwrap();
        assert!(d.supports("enter") && !d.supports("multi-app"));
        assert!(Description::from_json(b"{\"name\":1}").is_err());
    }
}
