//! The pod manifest: the fully resolved description of a pod that stage0
//! writes into the pod directory and every later stage reads.
//!
//! "Resolved" means nothing in it needs the image any more: the argv, the
//! environment, the user and the layer trees are final, so stage1 and stage2
//! do no image work on the start path. See `docs/manifest.md`.

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
    /// The pod's network.
    #[serde(default)]
    pub net: Net,
    /// Extra `/etc/hosts` lines of the apps: (address, name).
    #[serde(default)]
    pub hosts_entries: Vec<(String, String)>,
    pub apps: Vec<App>,
}

/// The pod's network (docs/manifest.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Net {
    /// The host's network namespace.
    #[default]
    Host,
    /// A network namespace of the pod's own with only `lo`, up.
    None,
    /// A network namespace of the pod's own on skiff's bridge (CNI).
    Default,
}

impl Net {
    pub fn as_str(self) -> &'static str {
        match self {
            Net::Host => "host",
            Net::None => "none",
            Net::Default => "default",
        }
    }

    pub fn parse(s: &str) -> Result<Net, String> {
        match s {
            "host" => Ok(Net::Host),
            "none" => Ok(Net::None),
            "default" => Ok(Net::Default),
            _ => Err(format!("unsupported network {s:?}: this version has default, host and none")),
        }
    }
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
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain strings and numbers cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    pub fn from_json(data: &[u8]) -> Result<PodManifest, ManifestError> {
        let m: PodManifest = serde_json::from_slice(data).map_err(ManifestError::Parse)?;
        if m.version != MANIFEST_VERSION {
            return Err(ManifestError::Version(m.version));
        }
        if m.apps.is_empty() {
            return Err(ManifestError::NoApps);
        }
        for (i, a) in m.apps.iter().enumerate() {
            if m.apps[..i].iter().any(|b| b.name == a.name) {
                return Err(ManifestError::DuplicateApp(a.name.clone()));
            }
        }
        Ok(m)
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
                isolation: Isolation::default(),
                mounts: vec![Mount {
                    source: MountSource::Volume("data".into()),
                    target: "/data".into(),
                    read_only: false,
                }],
                resources: Default::default(),
                oom_score_adj: Some(100),
            }],
            masked_paths: true,
            resolv_conf: None,
            exit_policy: ExitPolicy::Any,
            net: Net::None,
            hosts_entries: vec![("192.0.2.1".into(), "db".into())],
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
}
