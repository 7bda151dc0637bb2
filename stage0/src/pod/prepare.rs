//! Resolving an image plus the user's overrides into a final app spec, and
//! creating the pod directory that holds it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use skiff_pods::abi::{feature, Description};
use skiff_pods::cgroup::Resources;
use skiff_pods::manifest::{ImageRef, Isolation, Mount, MountSource, Net, Network, PortMapping, Rootfs};
use skiff_pods::{App, Pod, PodManifest, StateDir, Store};

use crate::image::digest::Digest;
use crate::image::record::ImageRecord;
use crate::image::ImageStore;
use crate::pod::security::{self, Insecure, SeccompChoice};

/// Used when neither the image nor the user sets `PATH` (Docker's value).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the user said about one app, after its image on the command line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AppOverrides {
    pub exec: Option<String>,
    /// The arguments after `--`; `Some` even when empty if `--` was given.
    pub args: Option<Vec<String>>,
    pub set_env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    /// `--user USER[:GROUP]`.
    pub user: Option<(String, Option<String>)>,
    /// `--group GROUP` (wins over a group given with --user).
    pub group: Option<String>,
    /// `--set-env-file` entries, below `set_env`.
    pub env_file: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    /// `--app-name`: the app's name in the pod (default: from the image).
    pub app_name: Option<String>,
    pub resources: Resources,
    pub oom_score_adj: Option<i32>,
    /// `--log-path`.
    pub log_path: Option<std::path::PathBuf>,
    /// The app's capabilities when `--caps-retain`/`--caps-remove` were
    /// given (resolved against the default set).
    pub caps: Option<Vec<String>>,
    /// `--seccomp`, when given.
    pub seccomp: Option<security::SeccompChoice>,
    /// `--no-new-privileges`, when given.
    pub no_new_privileges: Option<bool>,
    pub readonly_rootfs: bool,
    /// `--init`: an init app.
    pub init: bool,
    /// `--group-add`.
    pub groups_add: Vec<String>,
}

fn valid_account(v: &str) -> bool {
    !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Parses `USER[:GROUP]`, each a name or a number. Names are resolved in
/// the app's own /etc/passwd and /etc/group when it starts.
pub fn parse_user(s: &str) -> std::result::Result<(String, Option<String>), String> {
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    for part in std::iter::once(u).chain(g) {
        if !valid_account(part) {
            return Err(format!("invalid user or group {part:?} in {s:?}"));
        }
    }
    Ok((u.to_string(), g.map(str::to_string)))
}

/// Parses `--hosts-entry IP=NAME`.
pub fn parse_hosts_entry(s: &str) -> std::result::Result<(String, String), String> {
    let bad = || format!("invalid --hosts-entry {s:?}: expected IP=NAME");
    let (ip, name) = s.split_once('=').ok_or_else(bad)?;
    ip.parse::<std::net::IpAddr>().map_err(|_| bad())?;
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if !ok {
        return Err(bad());
    }
    Ok((ip.to_string(), name.to_string()))
}

/// An app name: what `apps/<name>/`, `--app` and `status` use.
pub fn check_app_name(n: &str) -> std::result::Result<(), String> {
    let ok = !n.is_empty()
        && n.len() <= 64
        && n.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!("invalid app name {n:?}: use lowercase letters, digits and '-', at most 64"))
    }
}

/// Parses an environment file: `KEY=VALUE` lines; blank lines and lines
/// starting with `#` are skipped.
pub fn parse_env_file(path: &std::path::Path) -> std::result::Result<Vec<(String, String)>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read --set-env-file {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((k, v)) if !k.is_empty() && !k.contains(char::is_whitespace) => {
                out.push((k.to_string(), v.to_string()))
            }
            _ => return Err(format!("{}:{}: expected KEY=VALUE", path.display(), n + 1)),
        }
    }
    Ok(out)
}

fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env.iter_mut().find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key) {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// An app name from the image name: the layout directory's base name,
/// reduced to `[a-z0-9-]`.
pub fn app_name_for(image_name: &str) -> String {
    let base = image_name.strip_prefix("oci:").unwrap_or(image_name);
    let base = match base.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') => p,
        _ => base,
    };
    let base = base.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let name: String =
        base.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    let name = name.trim_matches('-');
    if name.is_empty() || name.starts_with("sha256") {
        "app".into()
    } else {
        name.chars().take(64).collect()
    }
}

/// What every app of a pod is resolved against.
pub struct AppContext<'a> {
    pub images: &'a ImageStore,
    pub hostname: &'a str,
    /// The pod's environment, below the image's (see `resolve_app`).
    pub pod_env: &'a [(String, String)],
    pub insecure: Insecure,
    pub flavor: &'a Description,
}

pub fn resolve_app(rec: &ImageRecord, image_name: &str, o: &AppOverrides, cx: &AppContext) -> Result<App> {
    let AppContext { images: store, hostname, pod_env, insecure, flavor } = *cx;
    let run = &rec.run;
    let exec: Vec<String> = match &o.exec {
        Some(e) => std::iter::once(e.clone()).chain(o.args.clone().unwrap_or_default()).collect(),
        None => run.entrypoint.iter().cloned().chain(o.args.clone().unwrap_or_else(|| run.cmd.clone())).collect(),
    };
    if exec.is_empty() {
        bail!("image {image_name} has no entrypoint or cmd: give the program with --exec");
    }
    let (user, group) = match (&o.user, &run.user) {
        (Some(u), _) => u.clone(),
        (None, Some(u)) => parse_user(u).map_err(|e| anyhow::anyhow!("image {image_name}: {e}"))?,
        (None, None) => ("0".to_string(), None),
    };
    let group = o.group.clone().or(group);
    let working_dir = o.working_dir.clone().or_else(|| run.working_dir.clone()).unwrap_or_else(|| "/".into());
    if !working_dir.starts_with('/') {
        bail!("working directory {working_dir:?} is not an absolute path");
    }
    // Lowest first: defaults, the pod's (TERM, inherited), the image's,
    // --set-env-file, --set-env. HOME comes from the app's passwd entry
    // at start when nothing here sets it.
    let mut env = Vec::new();
    set_env(&mut env, "PATH", DEFAULT_PATH);
    set_env(&mut env, "HOSTNAME", hostname);
    for (k, v) in pod_env {
        set_env(&mut env, k, v);
    }
    for e in &run.env {
        let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
        set_env(&mut env, k, v);
    }
    for (k, v) in o.env_file.iter().chain(&o.set_env) {
        set_env(&mut env, k, v);
    }
    let layers = lower_layers(rec)?;
    Ok(App {
        name: o.app_name.clone().unwrap_or_else(|| app_name_for(image_name)),
        image: ImageRef { name: image_name.to_string(), id: rec.id.clone() },
        rootfs: Rootfs { layers_dir: store.layers_dir(), layers },
        exec,
        env,
        working_dir,
        user,
        group,
        isolation: isolation(o, insecure, flavor)?,
        mounts: o.mounts.clone(),
        resources: o.resources.clone(),
        oom_score_adj: o.oom_score_adj,
        init: o.init,
        groups_add: o.groups_add.clone(),
        // The pod's, set with the others (`pod::plan`).
        restart: Default::default(),
        log_path: o.log_path.clone(),
    })
}

/// The app's confinement: what the user asked for, else the defaults of
/// what the flavor can do (a flavor without capabilities, seccomp or
/// no_new_privs, such as fly, runs privileged tools unconfined).
fn isolation(o: &AppOverrides, insecure: Insecure, flavor: &Description) -> Result<Isolation> {
    let capabilities = match &o.caps {
        Some(c) => Some(c.clone()),
        None if flavor.supports(feature::CAPABILITIES) => {
            Some(security::DEFAULT_CAPS.iter().map(|c| c.to_string()).collect())
        }
        None => None,
    };
    let seccomp = match (&o.seccomp, insecure.seccomp) {
        (Some(SeccompChoice::Unconfined), _) => None,
        (Some(_), true) => bail!("--seccomp and --insecure-options=seccomp contradict each other"),
        (Some(SeccompChoice::Profile(s)), false) => Some(s.clone()),
        (None, true) => None,
        (None, false) if flavor.supports(feature::SECCOMP) => {
            // Without a capability list the app keeps every capability.
            let all: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
            Some(security::default_seccomp(capabilities.as_deref().unwrap_or(&all)))
        }
        (None, false) => None,
    };
    Ok(Isolation {
        capabilities,
        no_new_privileges: o.no_new_privileges.unwrap_or(flavor.supports(feature::NO_NEW_PRIVILEGES)),
        seccomp,
        readonly_rootfs: o.readonly_rootfs,
    })
}

/// The image's layer trees, lowest first, each once. overlayfs refuses a
/// lowerdir listed twice; keeping only the topmost occurrence of a repeated
/// layer gives the same view, since that copy defines every path the
/// layer has, whatever the layers between did to them.
fn lower_layers(rec: &ImageRecord) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for l in rec.layers.iter().rev() {
        let name = Digest::parse(&l.diff_id).map(|d| ImageStore::layer_name(&d)).map_err(anyhow::Error::msg)?;
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out.reverse();
    Ok(out)
}

pub fn default_hostname(uuid: &str) -> String {
    format!("skiff-{}", &uuid[..8])
}

/// What a new pod is for, which decides how durably its manifest is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// `prepare`: kept for a later `run-prepared`, perhaps after a reboot.
    Later,
    /// `run`: started at once, by the process that made it.
    RunNow,
}

/// Files a pod volume starts with (Kubernetes' configMap and secret
/// volumes): kept in the pod directory, removed with the pod.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VolumeFiles {
    pub volume: String,
    /// (path relative to the volume, content, mode); parents are made
    /// 0755.
    pub files: Vec<(PathBuf, Vec<u8>, u32)>,
}

/// Creates a pod in `prepare/`, locked, with its manifest, app directories
/// and the `files` of its volumes written. `build` gets the new UUID and
/// returns the manifest. The store's directories exist
/// (`ImageStore::ensure_dirs`).
pub fn create(
    store: &Store,
    purpose: Purpose,
    files: &[VolumeFiles],
    build: impl FnOnce(&str) -> Result<PodManifest>,
) -> Result<Pod> {
    let mut pod = Pod::create(store)?;
    pod.transition(StateDir::Prepare)?;
    let result = build(pod.uuid())
        .and_then(|m| write_volume_files(&pod.path(), files).map(|()| m))
        .and_then(|m| write_pod(&pod, &m, purpose));
    if let Err(e) = result {
        // Leave nothing half-made where users look: garbage is swept by gc.
        if pod.transition(StateDir::Garbage).is_ok() {
            let _ = std::fs::remove_dir_all(pod.path());
        }
        return Err(e);
    }
    Ok(pod)
}

/// Writes each volume's files under `volumes/` of the pod directory
/// `dir`, which only the host's root may enter (the volumes reach the apps
/// through their mounts). Paths are relative and never climb: they come
/// from a file users were given.
fn write_volume_files(dir: &Path, files: &[VolumeFiles]) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if files.is_empty() {
        return Ok(());
    }
    let volumes = dir.join("volumes");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&volumes)
        .or_else(|e| if e.kind() == std::io::ErrorKind::AlreadyExists { Ok(()) } else { Err(e) })
        .with_context(|| format!("cannot create {}", volumes.display()))?;
    for v in files {
        for (rel, data, mode) in &v.files {
            if rel.is_absolute() || rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
                anyhow::bail!("volume {}: file path {} must stay inside the volume", v.volume, rel.display());
            }
            let path = volumes.join(&v.volume).join(rel);
            if let Some(parent) = path.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(*mode & 0o777)
                .open(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            std::io::Write::write_all(&mut f, data).with_context(|| format!("cannot write {}", path.display()))?;
            // The mode as given, whatever the umask.
            f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(*mode & 0o777))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(())
}

/// The manifest is always replaced atomically (a reader never sees half of
/// it); it is fsynced unless the pod runs at once and a host crash would
/// leave nothing that needs it: such a pod is dead after the crash, and gc
/// removes a pod whose manifest is unreadable. A pod on CNI networks is
/// synced either way, since only its manifest lets gc release its addresses.
/// (The fsync was a tenth of `skiff run`'s start; docs/pod-store.md.)
fn write_pod(pod: &Pod, m: &PodManifest, purpose: Purpose) -> Result<()> {
    let dir = pod.path();
    let mkdir = |p: &Path| match std::fs::create_dir(p) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(e).with_context(|| format!("cannot create {}", p.display()))
        }
        _ => Ok(()),
    };
    if !m.apps.is_empty() {
        mkdir(&dir.join("apps"))?;
    }
    for app in &m.apps {
        // One level at a time: the pod directory is new, so create_dir_all
        // would fail its way up from the deepest path first.
        let app_dir = dir.join("apps").join(&app.name);
        mkdir(&app_dir)?;
        for sub in ["upper", "work", "rootfs"] {
            mkdir(&app_dir.join(sub))?;
        }
        for mount in &app.mounts {
            if let MountSource::Volume(name) = &mount.source {
                let p = dir.join("volumes").join(name);
                std::fs::create_dir_all(&p).with_context(|| format!("cannot create {}", p.display()))?;
            }
        }
    }
    let (name, data) = (skiff_pods::manifest::MANIFEST_FILE, m.to_json());
    let written = if purpose == Purpose::RunNow && m.networks.is_empty() {
        skiff_pods::atomic::replace_at(pod, name, &data)
    } else {
        skiff_pods::atomic::write_atomic(&dir, name, &data)
    };
    written.with_context(|| format!("cannot write the manifest of pod {}", pod.uuid()))
}

/// The pod's network, resolved (see `pod::network`).
#[derive(Clone, Debug)]
pub struct PodNet {
    pub net: Net,
    pub networks: Vec<Network>,
    pub ports: Vec<PortMapping>,
    pub cni_path: Vec<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_groups() {
        assert_eq!(parse_user("1000").unwrap(), ("1000".to_string(), None));
        assert_eq!(parse_user("web:staff").unwrap(), ("web".to_string(), Some("staff".to_string())));
        for bad in ["", ":", "a:", "a b", "../x", "x:y:z"] {
            assert!(parse_user(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hosts_entries() {
        assert_eq!(parse_hosts_entry("192.0.2.1=db").unwrap(), ("192.0.2.1".to_string(), "db".to_string()));
        assert!(parse_hosts_entry("::1=v6.local").is_ok());
        for bad in ["db", "300.0.0.1=db", "192.0.2.1=", "192.0.2.1=a b", "192.0.2.1=x\ny"] {
            assert!(parse_hosts_entry(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn app_names_given() {
        assert!(check_app_name("web-1").is_ok());
        for bad in ["", "Web", "-x", "a/b", "..", &"x".repeat(65)] {
            assert!(check_app_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("env");
        std::fs::write(&p, "# comment\nA=1\n\n  B=two words=x\n").unwrap();
        assert_eq!(parse_env_file(&p).unwrap(), [("A".into(), "1".into()), ("B".into(), "two words=x".into())]);
        std::fs::write(&p, "A=1\nnot a pair\n").unwrap();
        assert!(parse_env_file(&p).unwrap_err().contains(":2:"));
    }

    #[test]
    fn app_names() {
        assert_eq!(app_name_for("oci:/srv/Busybox_Layout:latest"), "busybox-layout");
        assert_eq!(app_name_for("oci:/srv/bb/"), "bb");
        assert_eq!(app_name_for("sha256:abcd"), "app");
    }

    #[test]
    fn repeated_layers_are_listed_once_at_their_top() {
        let layer = |n: char| crate::image::record::LayerRecord {
            digest: String::new(),
            diff_id: format!("sha256:{}", n.to_string().repeat(64)),
            media_type: String::new(),
            size: 0,
        };
        let rec = ImageRecord {
            id: String::new(),
            manifest_digest: String::new(),
            layers: vec![layer('a'), layer('b'), layer('a'), layer('c')],
            run: Default::default(),
            created: None,
            fetched_at: String::new(),
            size: 0,
            signatures: Vec::new(),
        };
        let got: Vec<String> = lower_layers(&rec).unwrap().iter().map(|l| l[7..8].to_string()).collect();
        assert_eq!(got, ["b", "a", "c"]);
    }

    #[test]
    fn env_precedence() {
        let mut env = vec!["PATH=/a".to_string()];
        set_env(&mut env, "PATH", "/b");
        set_env(&mut env, "X", "1=2");
        assert_eq!(env, vec!["PATH=/b", "X=1=2"]);
    }
}
