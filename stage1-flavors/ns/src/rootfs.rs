//! Builds the pod's root filesystem inside its own mount namespace and
//! pivots into it. Because every mount lives in that namespace, they all
//! vanish with the pod: nothing is left in the host's mount table, even
//! when the pod is killed with SIGKILL.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;
use skiff_pods::layout::STAGE1_DIR;
use skiff_pods::manifest::Net;
use skiff_pods::PodManifest;
use skiff_rt::error::{Context, Result};
use skiff_stage1::apifs;
use skiff_stage1::overlay::Overlay;
use skiff_stage2::app_root::APPS_DIR;

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
        let pod_root = pod_dir.join(STAGE1_DIR).join("root");
        std::fs::create_dir_all(&pod_root).with_context(|| format!("cannot create {}", pod_root.display()))?;
        Ok(Plan {
            pod_root,
            pod_dir: pod_dir.to_path_buf(),
            masked_paths: manifest.masked_paths,
            net: manifest.net,
            apps,
        })
    }
}

/// Runs in the pod's init: new mount/UTS/IPC namespaces; the pod's root, a
/// small read-only tmpfs holding each app's complete root filesystem (overlay,
/// /proc, /dev, /sys, volumes) at `/apps/<name>`; hostname; pivot_root into
/// the pod's root. Each app then pivots into its own root (stage2), so no app
/// sees another's files. Returns a one-line error.
/// `netns`: the pod's network namespace to join, made by the flavor.
pub fn enter(plan: &Plan, hostname: &str, netns: Option<std::os::fd::OwnedFd>) -> Result<()> {
    let mut flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    if plan.net == Net::None {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    nix::sched::unshare(flags).context("cannot create namespaces")?;
    if plan.net == Net::None {
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
    mount(Some("tmpfs"), root, Some("tmpfs"), tmpfs_flags, Some("mode=0700,size=64k"))
        .context("cannot mount the pod's root")?;
    let old_umask = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    for app in &plan.apps {
        let app_root = root.join(APPS_DIR).join(&app.name);
        std::fs::create_dir_all(&app_root).with_context(|| format!("cannot create {}", app_root.display()))?;
        mount_app(plan, app, &app_root)?;
    }
    mount(None::<&str>, root, None::<&str>, tmpfs_flags | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, None::<&str>)
        .context("cannot make the pod's root read-only")?;
    nix::unistd::sethostname(hostname).with_context(|| format!("cannot set hostname {hostname:?}"))?;
    pivot(root)?;
    nix::sys::stat::umask(old_umask);
    // A session of its own: the caller's terminal signals reach the pod
    // only through the supervisor, which forwards them once.
    nix::unistd::setsid().context("setsid")?;
    Ok(())
}

fn mount_app(plan: &Plan, app: &AppPlan, rootfs: &Path) -> Result<()> {
    app.overlay.mount(rootfs)?;
    apifs::mount(rootfs, plan.masked_paths)?;
    skiff_stage1::volumes::mount_all(rootfs, &plan.pod_dir, &app.mounts)
}

fn pivot(rootfs: &Path) -> Result<()> {
    std::env::set_current_dir(rootfs).context("cannot enter the pod's root")?;
    // pivot_root(".", ".") stacks the old root on top of the new one at
    // "/"; detaching it then leaves only the pod's root (pivot_root(2)).
    nix::unistd::pivot_root(".", ".").context("pivot_root")?;
    umount2(".", MntFlags::MNT_DETACH).context("cannot detach the host's root")?;
    std::env::set_current_dir("/").context("chdir /")
}
