//! Builds the pod's root filesystem inside its own mount namespace and
//! pivots into it. Because every mount lives in that namespace, they all
//! vanish with the pod: nothing is left in the host's mount table, even
//! when the pod is killed with SIGKILL.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sched::CloneFlags;
use skiff_pods::layout::STAGE1_DIR;
use skiff_pods::manifest::Net;
use skiff_pods::manifest::UserNamespace;
use skiff_pods::netstate::NetState;
use skiff_pods::PodManifest;
use skiff_rt::error::{Context, Result};
use skiff_stage1::apifs;
use skiff_stage1::etc_layer::EtcLayer;
use skiff_stage1::overlay::Overlay;
use skiff_stage1::userns::PodUserns;
use skiff_stage2::app_root::{InitRoot, APPS_DIR};

/// One app's root filesystem, computed before `fork`.
struct AppPlan {
    name: String,
    overlay: Overlay,
    mounts: Vec<skiff_pods::manifest::Mount>,
}

/// Everything computed before `fork`, so the child only makes syscalls.
pub struct Plan {
    /// Mount point of the pod's own root (a tmpfs holding the apps' roots).
    pod_root: PathBuf,
    pod_dir: PathBuf,
    masked_paths: bool,
    net: Net,
    apps: Vec<AppPlan>,
    /// The pod's own user namespace, if it has one.
    user_namespace: Option<UserNamespace>,
    /// A sandbox: its root stays writable, for the apps added later.
    sandbox: bool,
    /// Where the init pivots to: the pod's root, or its only app's.
    pub init_root: InitRoot,
}

impl Plan {
    pub fn new(manifest: &PodManifest, pod_dir: &Path) -> Result<Plan> {
        let apps = manifest
            .apps
            .iter()
            .map(|app| {
                Ok(AppPlan {
                    name: app.name.clone(),
                    overlay: Overlay::for_app(manifest, app, pod_dir)?,
                    mounts: app.mounts.clone(),
                })
            })
            .collect::<Result<_>>()?;
        // The flavor's own directory is the mount point itself: one inode
        // fewer per pod (on an aged ext4 without a journal, about a
        // millisecond each).
        let pod_root = pod_dir.join(STAGE1_DIR);
        match std::fs::create_dir(&pod_root) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(e).with_context(|| format!("cannot create {}", pod_root.display()))
            }
            _ => {}
        }
        Ok(Plan {
            pod_root,
            pod_dir: pod_dir.to_path_buf(),
            masked_paths: manifest.masked_paths,
            net: manifest.net,
            apps,
            user_namespace: manifest.user_namespace,
            sandbox: manifest.sandbox,
            init_root: InitRoot::of(manifest),
        })
    }
}

/// Runs in the pod's init: new mount/UTS/IPC namespaces; the pod's root, a
/// small read-only tmpfs holding each app's complete root filesystem (overlay,
/// /proc, /dev, /sys, volumes) at `/apps/<name>`; hostname; pivot_root into
/// the pod's root. Each app then pivots into its own root (stage2), so no app
/// sees another's files; the init of a pod of one app pivots into that
/// app's root instead ([`InitRoot::App`]). Returns a one-line error.
/// `netns`: the pod's network namespace to join, made by the flavor.
/// `userns`: the pod's user namespace, made by the flavor. The mounts are
/// made as the host's root, with the image's layers seen through the user
/// namespace (idmapped); then the init joins it as its root and takes a
/// copy of the mount namespace owned by it (with every mount locked in
/// place), and new UTS and IPC namespaces.
/// `manifest` and `net` give each app's /etc files (see [`etc_layer`]).
pub fn enter(
    plan: &Plan,
    manifest: &PodManifest,
    net: &NetState,
    netns: Option<OwnedFd>,
    userns: Option<OwnedFd>,
) -> Result<()> {
    let own = CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    let mut flags = CloneFlags::CLONE_NEWNS;
    if userns.is_none() {
        flags |= own;
        // (A pod of its own user namespace gets its namespace, owned by
        // that, from the flavor.)
        if plan.net == Net::None {
            flags |= CloneFlags::CLONE_NEWNET;
        }
    }
    nix::sched::unshare(flags).context("cannot create namespaces")?;
    if flags.contains(CloneFlags::CLONE_NEWNET) {
        skiff_stage1::network::loopback::up()?;
    }
    if let Some(fd) = netns {
        nix::sched::setns(fd, CloneFlags::CLONE_NEWNET).context("cannot join the pod's network")?;
    }
    // Nothing mounted from here on may propagate back to the host.
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_SLAVE, None::<&str>)
        .context("cannot make / a slave mount")?;
    let root = &plan.pod_root;
    let tmpfs_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let owner =
        plan.user_namespace.map_or(String::new(), |ns| format!(",uid={},gid={}", ns.host_uid(0), ns.host_gid(0)));
    mount(Some("tmpfs"), root, Some("tmpfs"), tmpfs_flags, Some(format!("mode=0700,size=1m{owner}").as_str()))
        .context("cannot mount the pod's root")?;
    let old_umask = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    for app in &plan.apps {
        let app_root = root.join(APPS_DIR).join(&app.name);
        std::fs::create_dir_all(&app_root).with_context(|| format!("cannot create {}", app_root.display()))?;
        mount_app(plan, app, &app_root, userns.as_ref(), (manifest, net))?;
    }
    // (Only the init sees it: each app pivots into its own root.)
    if !plan.sandbox {
        mount(None::<&str>, root, None::<&str>, tmpfs_flags | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, None::<&str>)
            .context("cannot make the pod's root read-only")?;
    }
    // Entered from its parent: the pod's root cannot reach it from "/"
    // through the store (private to the host's root).
    let (parent, name) = (root.parent().unwrap_or(root), root.file_name().unwrap_or_default());
    std::env::set_current_dir(parent).with_context(|| format!("cannot enter {}", parent.display()))?;
    if let Some(fd) = userns {
        skiff_stage1::userns::join(fd)?;
        nix::sched::unshare(CloneFlags::CLONE_NEWNS | own).context("cannot create namespaces")?;
    }
    let hostname = &manifest.hostname;
    nix::unistd::sethostname(hostname).with_context(|| format!("cannot set hostname {hostname:?}"))?;
    let new_root = match (plan.init_root, plan.apps.first()) {
        (InitRoot::App, Some(app)) => Path::new(name).join(APPS_DIR).join(&app.name),
        _ => PathBuf::from(name),
    };
    skiff_stage2::app_root::pivot_into(&new_root).context("cannot enter the pod's root")?;
    nix::sys::stat::umask(old_umask);
    // A session of its own: the caller's terminal signals reach the pod
    // only through the supervisor, which forwards them once.
    nix::unistd::setsid().context("setsid")?;
    Ok(())
}

fn mount_app(
    plan: &Plan,
    app: &AppPlan,
    rootfs: &Path,
    userns: Option<&OwnedFd>,
    pod: (&PodManifest, &NetState),
) -> Result<()> {
    let pod_userns = plan.user_namespace.as_ref().zip(userns).map(|(ids, fd)| PodUserns { ids, fd: fd.as_fd() });
    let etc = etc_layer(plan, app, pod)?;
    match pod_userns {
        None => app.overlay.mount(rootfs, etc.as_deref())?,
        Some(u) => app.overlay.mount_idmapped(rootfs, &plan.pod_root.join(".layers"), u, etc.as_deref())?,
    };
    apifs::mount(rootfs, plan.masked_paths, plan.user_namespace.as_ref())?;
    skiff_stage1::volumes::mount_all(rootfs, &plan.pod_dir, &app.mounts, pod_userns)
}

/// The app's /etc files as a layer on the pod's root, `.etc/<app>`
/// (skiff_stage1::etc_layer); None when only the mounted root can tell.
fn etc_layer(plan: &Plan, app: &AppPlan, (manifest, net): (&PodManifest, &NetState)) -> Result<Option<PathBuf>> {
    let Some(layer) = EtcLayer::plan(&app.overlay, manifest, net) else { return Ok(None) };
    let top = plan.pod_root.join(".etc").join(&app.name);
    layer.write(&top, plan.user_namespace.as_ref()).with_context(|| format!("app {}", app.name))?;
    Ok(Some(top))
}
