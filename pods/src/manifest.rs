//! The pod manifest: the fully resolved description of a pod that stage0
//! writes into the pod directory and every later stage reads.
//!
//! "Resolved" means nothing in it needs the image any more: the argv, the
//! environment, the user and the layer trees are final, so stage1 and stage2
//! do no image work on the start path. See `docs/manifest.md`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Bumped whenever a field changes meaning; stages refuse other versions.
pub const MANIFEST_VERSION: u32 = 1;

/// File name of the manifest inside the pod directory.
pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodManifest {
    pub version: u32,
    pub uuid: String,
    /// RFC 3339 time at which stage0 created the pod.
    pub created_at: String,
    /// The stage1 flavor that runs (or will run) the pod, e.g. `ns`.
    pub flavor: String,
    /// The pod's name (`--name`), unique among live pods.
    #[serde(default)]
    pub name: Option<String>,
    pub hostname: String,
    /// Hide and write-protect the sensitive parts of /proc and /sys.
    #[serde(default = "yes")]
    pub masked_paths: bool,
    /// Written as the pod's /etc/resolv.conf; None keeps the image's.
    #[serde(default)]
    pub resolv_conf: Option<String>,
    /// When the pod ends and which status it ends with.
    #[serde(default)]
    pub exit_policy: ExitPolicy,
    /// How long apps get between SIGTERM and SIGKILL when the pod is
    /// stopped: by its exit policy, by a SIGTERM to the flavor process, and
    /// by default by `skiff stop`.
    #[serde(default = "default_stop_timeout_ms")]
    pub stop_timeout_ms: u64,
    /// The pod's network namespace.
    #[serde(default)]
    pub net: Net,
    /// With `net: cni`: the networks, attached in this order.
    #[serde(default)]
    pub networks: Vec<Network>,
    /// Host ports forwarded to the pod (on its first network).
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    /// Where the flavor finds the CNI plugins, searched in order (and
    /// given to them as `CNI_PATH`).
    #[serde(default = "default_cni_path")]
    pub cni_path: Vec<PathBuf>,
    /// Write the pod's resolv.conf from the CNI result's DNS when it has
    /// nameservers (set when no `--dns` option was given), else
    /// `resolv_conf`.
    #[serde(default)]
    pub dns_from_network: bool,
    /// Whether and how the apps' output is kept in the pod directory.
    #[serde(default)]
    pub log: crate::logfile::LogConfig,
    /// Extra `/etc/hosts` lines of the apps: (address, name).
    #[serde(default)]
    pub hosts_entries: Vec<(String, String)>,
    /// What its maker attached to the pod (Kubernetes' labels and
    /// annotations); skiff only keeps and shows them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The pod's own user namespace (`--private-users`); None: the host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_namespace: Option<UserNamespace>,
    /// A pod sandbox (`run --sandbox`): it may have no apps, and it runs
    /// until it is stopped (feature `sandbox`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sandbox: bool,
    /// The cgroup the pod's own goes under, in every hierarchy (an
    /// absolute cgroup path such as `/kubepods/burstable/pod1`), instead of
    /// `/skiff`. Asks for the `cgroup-parent` feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_parent: Option<String>,
    pub apps: Vec<App>,
}

/// A user namespace whose ids `0..count` are the host's uids
/// `uid_base..uid_base + count` and gids `gid_base..gid_base + count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserNamespace {
    pub uid_base: u32,
    pub gid_base: u32,
    pub count: u32,
    /// The slot of skiff's pool the range is (`pods/userns/<slot>`); none
    /// for a range given explicitly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u32>,
}

impl UserNamespace {
    /// The host uid of the pod's `uid`.
    pub fn host_uid(&self, uid: u32) -> u32 {
        self.uid_base.saturating_add(uid)
    }

    pub fn host_gid(&self, gid: u32) -> u32 {
        self.gid_base.saturating_add(gid)
    }
}

/// The kind of network namespace the pod gets (docs/manifest.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Net {
    /// The host's network namespace.
    #[default]
    Host,
    /// A network namespace of the pod's own with only `lo`, up.
    None,
    /// A network namespace of the pod's own attached to the manifest's
    /// `networks` by CNI plugins.
    Cni,
}

/// One CNI network a pod is attached to, resolved by stage0 so that the
/// flavor (and gc, later) need no configuration of their own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// `default` or the `name` of a configured network list.
    pub name: String,
    /// The interface in the pod: `eth0` for the first network, then `eth1`…
    pub ifname: String,
    /// The CNI network configuration list (spec 1.0.0 JSON), complete.
    pub conflist: serde_json::Value,
    /// `CNI_ARGS` for this network (e.g. `IP=10.1.2.3`), in order.
    #[serde(default)]
    pub args: Vec<(String, String)>,
}

/// A published port: `host_ip:host_port` on the host forwarded to
/// `pod_port` of the pod's first network (CNI `portMappings`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortMapping {
    /// Empty: every address of the host.
    #[serde(default)]
    pub host_ip: String,
    pub host_port: u16,
    pub pod_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// What ends a pod of several apps. Either way the pod's status is that of
/// the first app that failed on its own (not one stopped by the policy),
/// or 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExitPolicy {
    /// Run until every app has exited; when one fails (non-zero status or
    /// a signal), stop the others.
    #[default]
    All,
    /// Stop the other apps as soon as the first one exits, whatever its
    /// status.
    Any,
}

impl ExitPolicy {
    pub fn parse(s: &str) -> Result<ExitPolicy, String> {
        match s {
            "all" => Ok(ExitPolicy::All),
            "any" => Ok(ExitPolicy::Any),
            _ => Err(format!("invalid exit policy {s:?}: expected all or any")),
        }
    }
}

fn yes() -> bool {
    true
}

/// docker's, podman's and systemd's default is 10 s too.
pub const DEFAULT_STOP_TIMEOUT_MS: u64 = 10_000;

fn default_stop_timeout_ms() -> u64 {
    DEFAULT_STOP_TIMEOUT_MS
}

/// Debian's containernetworking-plugins.
pub const DEFAULT_CNI_PLUGIN_DIR: &str = "/usr/lib/cni";

fn default_cni_path() -> Vec<PathBuf> {
    vec![PathBuf::from(DEFAULT_CNI_PLUGIN_DIR)]
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// Unique within the pod; names the app's directory `apps/<name>/`.
    pub name: String,
    pub image: ImageRef,
    pub rootfs: Rootfs,
    /// argv; `exec[0]` is an absolute path or a name looked up in `PATH`.
    pub exec: Vec<String>,
    /// `KEY=VALUE` entries, in the order they are passed to the app.
    pub env: Vec<String>,
    /// Absolute path inside the app's root.
    pub working_dir: String,
    /// User name or number, resolved in the app's own /etc/passwd when
    /// the app starts.
    pub user: String,
    /// Group name or number; default: the user's primary group, or 0.
    pub group: Option<String>,
    /// More supplementary groups (names or numbers, resolved as `group`)
    /// beside those /etc/group gives the user. Asks for the
    /// `supplementary-groups` feature.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups_add: Vec<String>,
    #[serde(default)]
    pub isolation: Isolation,
    /// Volumes mounted into the app's root, in order.
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// Limits, applied to the pod's cgroup (docs/cgroups.md).
    #[serde(default)]
    pub resources: crate::cgroup::Resources,
    /// Written to the app's /proc/self/oom_score_adj before it starts.
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
    /// An init app (Kubernetes' init container): the pod's init apps run one
    /// after another, each to its end, before its other apps start; one
    /// that fails ends the pod with its status. Asks for the `init-apps`
    /// feature.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub init: bool,
    /// When the pod's init starts the app again after it exited. Asks for
    /// the `restart-policy` feature unless `never`.
    #[serde(default, skip_serializing_if = "RestartPolicy::is_never")]
    pub restart: RestartPolicy,
    /// Where the app's log goes instead of `apps/<name>/log` (an absolute
    /// host path; rotated to PATH.1, PATH.2, …): the file a Kubernetes
    /// kubelet reads. Asks for the `log-path` feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_path: Option<PathBuf>,
}

/// Kubernetes' restart policies, per app: the app is started again after
/// a back-off of 10 s, doubled each time up to 5 minutes (back to 10 s
/// after a run of 10 minutes), until the pod is stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    Never,
    /// After it failed (a status other than 0, or a signal).
    OnFailure,
    /// After every exit.
    Always,
}

impl RestartPolicy {
    pub fn is_never(&self) -> bool {
        *self == RestartPolicy::Never
    }

    /// `never`, `on-failure` or `always`.
    pub fn parse(s: &str) -> Result<RestartPolicy, String> {
        match s {
            "never" => Ok(RestartPolicy::Never),
            "on-failure" => Ok(RestartPolicy::OnFailure),
            "always" => Ok(RestartPolicy::Always),
            _ => Err(format!("restart policy {s:?}: expected never, on-failure or always")),
        }
    }

    /// Whether an app that ended with `exit_code` is started again.
    pub fn restarts(&self, exit_code: i32) -> bool {
        match self {
            RestartPolicy::Never => false,
            RestartPolicy::OnFailure => exit_code != 0,
            RestartPolicy::Always => true,
        }
    }
}

/// Where a mount's content comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountSource {
    /// A host path, bound recursively.
    Host(PathBuf),
    /// A pod-private volume: `volumes/<name>` in the pod directory, empty
    /// at first and shared by every app that mounts it.
    Volume(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    pub source: MountSource,
    /// Absolute path inside the app's root, resolved there (symlinks in
    /// the image cannot lead it out).
    pub target: String,
    pub read_only: bool,
    /// A host path seen through the pod's user namespace (`idmap`): the
    /// pod's uid N acts on it as the host's uid N. Only in a pod with a
    /// `user_namespace`; not recursive (mounts under the source are not
    /// brought along).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub idmap: bool,
    /// Of a pod volume, only this path in it (relative; made as a
    /// directory when missing; resolved inside the volume, symlinks
    /// included). Asks for the `volume-sub-paths` feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<String>,
    /// Set on the one mount (the first, in app order) of a pod volume that
    /// gives the new volume its owner and mode; absent everywhere else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_volume: Option<NewVolume>,
}

/// The owner and mode a new pod volume gets before its first mount. Each
/// field left out is taken from the directory at the mount's target in the
/// app's root, when the image has one there (Docker's copy-up of a
/// volume's metadata), else kept as made (root, 0755).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVolume {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Permission bits, at most 0o7777.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// In memory: a tmpfs, shared by the apps that mount the volume, gone
    /// with the pod (Kubernetes' `emptyDir.medium: Memory`). Asks for the
    /// `memory-volumes` feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<Tmpfs>,
}

/// A pod volume's tmpfs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tmpfs {
    /// Its size limit in bytes (absent: the kernel's default, half the
    /// memory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// How an app is confined, resolved by stage0 (docs/manifest.md).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Isolation {
    /// Capabilities (`CAP_…`) kept in the bounding and inheritable sets, and
    /// in the permitted and effective sets of an app running as uid 0.
    /// `None`: the capability sets stay as the flavor's (a privileged app).
    pub capabilities: Option<Vec<String>>,
    pub no_new_privileges: bool,
    /// None: no seccomp filter.
    pub seccomp: Option<Seccomp>,
    pub readonly_rootfs: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeccompMode {
    /// The listed syscalls fail with `errno`; all others are allowed.
    Remove,
    /// Only the listed syscalls are allowed; all others fail with `errno`.
    Retain,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seccomp {
    pub mode: SeccompMode,
    pub errno: i32,
    pub syscalls: Vec<String>,
    /// Also refuse creating namespaces with clone/unshare (EPERM), device
    /// nodes with mknod (EPERM), and clone3 (ENOSYS, so libc falls back to
    /// clone, whose flags can be inspected).
    pub deny_namespaces_and_devices: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRef {
    /// What the user named, e.g. `oci:/srv/images/busybox:latest`.
    pub name: String,
    /// The image ID: the digest of the image's config blob.
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rootfs {
    /// Directory holding the unpacked layer trees.
    pub layers_dir: PathBuf,
    /// Layer tree names relative to `layers_dir`, lowest layer first.
    pub layers: Vec<String>,
}

impl PodManifest {
    pub fn stop_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.stop_timeout_ms)
    }

    /// A pod of several apps, or a sandbox, which may get apps added: each
    /// app has a cgroup leaf of its own (beside the init's), and the ns
    /// flavor's init a root of its own holding the apps'.
    pub fn may_hold_several_apps(&self) -> bool {
        self.apps.len() > 1 || self.sandbox
    }

    /// Whether the pod's cgroup holds a leaf per app (and the init's own).
    pub fn cgroup_leaves(&self) -> bool {
        self.may_hold_several_apps()
    }

    /// The pod's cgroup (under its `cgroup_parent`, else `/skiff`).
    pub fn cgroup(&self) -> crate::cgroup::PodCgroup {
        crate::cgroup::PodCgroup::for_pod_in(self.cgroup_parent.as_deref(), &self.uuid)
    }

    /// What the pod's network looks like to people: `host`, `none`, or the
    /// names of its CNI networks joined by commas.
    pub fn net_label(&self) -> String {
        net_label(self.net, self.networks.iter().map(|n| n.name.as_str()))
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain strings and numbers cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    pub fn from_json(data: &[u8]) -> Result<PodManifest, ManifestError> {
        let m: PodManifest = serde_json::from_slice(data).map_err(ManifestError::Parse)?;
        if m.version != MANIFEST_VERSION {
            return Err(ManifestError::Version(m.version));
        }
        if m.apps.is_empty() && !m.sandbox {
            return Err(ManifestError::NoApps);
        }
        for (i, a) in m.apps.iter().enumerate() {
            if m.apps[..i].iter().any(|b| b.name == a.name) {
                return Err(ManifestError::DuplicateApp(a.name.clone()));
            }
        }
        if (m.net == Net::Cni) == m.networks.is_empty() {
            return Err(ManifestError::Networks("net cni needs networks, and only net cni has them"));
        }
        if m.ports.iter().any(|p| p.host_port == 0 || p.pod_port == 0) || (!m.ports.is_empty() && m.net != Net::Cni) {
            return Err(ManifestError::Networks("ports need net cni and non-zero port numbers"));
        }
        for (i, n) in m.networks.iter().enumerate() {
            if m.networks[..i].iter().any(|o| o.ifname == n.ifname || o.name == n.name) {
                return Err(ManifestError::Networks("two networks with one name or interface"));
            }
        }
        Ok(m)
    }
}

/// What `list` and `status` show of a manifest: parsed without building
/// the rest (environments, seccomp profiles, CNI configurations), which a
/// listing of a thousand pods would do a thousand times for nothing.
#[derive(Clone, Debug, Deserialize)]
pub struct ManifestSummary {
    pub version: u32,
    pub created_at: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub net: Net,
    #[serde(default)]
    pub networks: Vec<NetworkName>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub apps: Vec<AppSummary>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct NetworkName {
    pub name: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct AppSummary {
    pub name: String,
    pub image: ImageRef,
}

impl ManifestSummary {
    pub fn from_json(data: &[u8]) -> Result<ManifestSummary, ManifestError> {
        let m: ManifestSummary = serde_json::from_slice(data).map_err(ManifestError::Parse)?;
        if m.version != MANIFEST_VERSION {
            return Err(ManifestError::Version(m.version));
        }
        Ok(m)
    }

    /// As [`PodManifest::net_label`].
    pub fn net_label(&self) -> String {
        net_label(self.net, self.networks.iter().map(|n| n.name.as_str()))
    }
}

/// `host`, `none`, or the CNI networks' names joined by commas.
fn net_label<'a>(net: Net, networks: impl Iterator<Item = &'a str>) -> String {
    match net {
        Net::Host => "host".into(),
        Net::None => "none".into(),
        Net::Cni => networks.collect::<Vec<_>>().join(","),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("invalid pod manifest: {0}")]
    Parse(serde_json::Error),
    #[error("pod manifest version {0} is not supported (this skiff reads version {MANIFEST_VERSION})")]
    Version(u32),
    #[error("pod manifest has no apps")]
    NoApps,
    #[error("invalid pod manifest: {0}")]
    Networks(&'static str),
    #[error("pod manifest has two apps named {0:?}")]
    DuplicateApp(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PodManifest {
        PodManifest {
            version: MANIFEST_VERSION,
            uuid: "3f2b9c1e-8d4a-4e2b-9f6a-1c2d3e4f5a6b".into(),
            created_at: "2026-11-22T07:00:00Z".into(),
            flavor: "ns".into(),
            name: Some("web".into()),
            hostname: "skiff-3f2b9c1e".into(),
            apps: vec![App {
                name: "busybox".into(),
                image: ImageRef { name: "oci:/x:latest".into(), id: "sha256:ab".into() },
                rootfs: Rootfs { layers_dir: "/var/lib/skiff/layers".into(), layers: vec!["sha256/ab".into()] },
                exec: vec!["/bin/sh".into()],
                env: vec!["PATH=/bin".into()],
                working_dir: "/".into(),
                user: "0".into(),
                group: None,
                groups_add: Vec::new(),
                isolation: Isolation::default(),
                mounts: vec![Mount {
                    source: MountSource::Volume("data".into()),
                    target: "/data".into(),
                    read_only: false,
                    idmap: false,
                    sub_path: None,
                    new_volume: None,
                }],
                resources: Default::default(),
                oom_score_adj: Some(100),
                init: false,
                restart: RestartPolicy::Never,
                log_path: None,
            }],
            masked_paths: true,
            resolv_conf: None,
            exit_policy: ExitPolicy::Any,
            stop_timeout_ms: 2500,
            log: crate::logfile::LogConfig { driver: crate::logfile::LogDriver::File, max_size: 4096, max_files: 3 },
            net: Net::Cni,
            networks: vec![Network {
                name: "default".into(),
                ifname: "eth0".into(),
                conflist: serde_json::json!({"cniVersion": "1.0.0", "name": "x", "plugins": [{"type": "bridge"}]}),
                args: vec![("IP".into(), "10.231.0.9".into())],
            }],
            ports: vec![PortMapping { host_ip: String::new(), host_port: 8080, pod_port: 80, protocol: "tcp".into() }],
            cni_path: vec![DEFAULT_CNI_PLUGIN_DIR.into()],
            dns_from_network: true,
            hosts_entries: vec![("192.0.2.1".into(), "db".into())],
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            user_namespace: None,
            sandbox: false,
            cgroup_parent: None,
        }
    }

    #[test]
    fn round_trips() {
        let m = sample();
        assert_eq!(PodManifest::from_json(&m.to_json()).unwrap(), m);
    }

    #[test]
    fn rejects_other_versions_unknown_fields_and_empty_pods() {
        let mut m = sample();
        m.version = 99;
        assert!(matches!(PodManifest::from_json(&m.to_json()), Err(ManifestError::Version(99))));
        let mut m = sample();
        m.apps.clear();
        assert!(matches!(PodManifest::from_json(&m.to_json()), Err(ManifestError::NoApps)));
        let mut m = sample();
        m.apps.push(m.apps[0].clone());
        assert!(matches!(PodManifest::from_json(&m.to_json()), Err(ManifestError::DuplicateApp(_))));
        let mut v: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        v["bogus"] = 1.into();
        assert!(PodManifest::from_json(v.to_string().as_bytes()).is_err());
        assert!(PodManifest::from_json(b"{").is_err());
    }

    #[test]
    fn networks_must_fit_the_mode() {
        let mut m = sample();
        m.net = Net::Host;
        assert!(matches!(PodManifest::from_json(&m.to_json()), Err(ManifestError::Networks(_))), "host with networks");
        let mut m = sample();
        m.networks.clear();
        assert!(matches!(PodManifest::from_json(&m.to_json()), Err(ManifestError::Networks(_))), "cni without any");
        let mut m = sample();
        m.networks.push(m.networks[0].clone());
        assert!(matches!(PodManifest::from_json(&m.to_json()), Err(ManifestError::Networks(_))), "eth0 twice");
        let mut m = sample();
        m.ports[0].host_port = 0;
        assert!(matches!(PodManifest::from_json(&m.to_json()), Err(ManifestError::Networks(_))), "port 0");
        assert_eq!(sample().net_label(), "default");
    }
}
