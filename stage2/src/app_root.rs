//! Moving a process from the pod's root into one app's root.
//!
//! A flavor that runs several apps in one pod gives the init a root of its
//! own holding each app's complete root filesystem at `/apps/<name>`. Every
//! app process (and every `enter`ed command) takes a private copy of that
//! mount namespace and pivots into its app's root, so it sees neither the
//! pod's root nor the other apps' files. A pod of one app that takes no
//! more ([`InitRoot::App`]) spares its app that copy: its init runs in the
//! app's root itself.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;
use skiff_pods::netstate::NetState;
use skiff_pods::{App, PodManifest};
use skiff_rt::error::{Context, Result};

/// Directory of the init's root that holds the apps' roots.
pub const APPS_DIR: &str = "apps";

/// Where a pod's init runs, which decides how an app's processes (and
/// `enter`ed commands) reach the app's root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitRoot {
    /// A root of the init's own, holding each app's at `/apps/<name>`:
    /// each app process enters its root ([`enter`]).
    Pod,
    /// The pod's only app's root: its processes are in it already (a
    /// second mount namespace, pivot and detach of the old root were about
    /// 0.2 ms of the app's own start, bench/phases.sh, and a mount
    /// namespace more per pod).
    App,
}

impl InitRoot {
    /// The ns flavor's choice for a pod: its own root for the apps of a
    /// pod of several, or of a sandbox (which takes apps while it runs).
    pub fn of(manifest: &PodManifest) -> InitRoot {
        match manifest.may_hold_several_apps() {
            true => InitRoot::Pod,
            false => InitRoot::App,
        }
    }

    /// Where app `app`'s root is in the init's root.
    pub fn of_app(self, app: &App) -> PathBuf {
        match self {
            InitRoot::Pod => Path::new("/").join(APPS_DIR).join(&app.name),
            InitRoot::App => PathBuf::from("/"),
        }
    }
}

/// Called in the process that will become the app (or run in its root):
/// a mount namespace of its own, rooted at the app's root, with the app's
/// root read-only when it asks for it.
pub fn enter(app: &App) -> Result<()> {
    nix::sched::unshare(CloneFlags::CLONE_NEWNS).context("cannot create a mount namespace")?;
    pivot_into(&InitRoot::Pod.of_app(app)).with_context(|| format!("app {}: cannot enter its root", app.name))
}

/// Makes `dir` (absolute, or relative to the working directory) the root
/// of the caller's mount namespace: pivot_root(".", ".") stacks the old
/// root on top of the new one at "/", and detaching it leaves only `dir`
/// (pivot_root(2)).
pub fn pivot_into(dir: &Path) -> Result<()> {
    std::env::set_current_dir(dir).context("chdir")?;
    match nix::unistd::pivot_root(".", ".") {
        // A mount that came locked from a more privileged mount namespace
        // (a pod with a user namespace of its own) cannot be the new root;
        // a recursive bind of it onto itself, made here, can, and the
        // mounts under it stay locked. The bind is entered from its parent
        // (the pod's root may not reach `dir` from "/").
        Err(Errno::EINVAL) => {
            mount(Some("."), ".", None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                .context("cannot bind the new root onto itself")?;
            let name = dir.file_name().unwrap_or(dir.as_os_str());
            std::env::set_current_dir("..").and_then(|()| std::env::set_current_dir(name)).context("chdir")?;
            nix::unistd::pivot_root(".", ".").context("pivot_root")?;
        }
        r => r.context("pivot_root")?,
    }
    umount2(".", MntFlags::MNT_DETACH).context("cannot detach the old root")?;
    std::env::set_current_dir("/").context("chdir /")
}

/// What an app's root gets before its first process, written from inside
/// it (once entered): the /etc files, its working directory, and then,
/// when it asks for it, a read-only root.
pub fn prepare(manifest: &PodManifest, net: &NetState, app: &App) -> Result<()> {
    crate::etc::populate(Path::new("/"), manifest, net)?;
    std::fs::create_dir_all(&app.working_dir)
        .with_context(|| format!("app {}: cannot create working directory {}", app.name, app.working_dir))?;
    if app.isolation.readonly_rootfs {
        make_readonly()?;
    }
    Ok(())
}

/// Makes the (already entered) app root read-only, after the init has
/// written what it writes there. Mounts under it (volumes, /proc, /dev)
/// keep their own flags.
pub fn make_readonly() -> Result<()> {
    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>).context("cannot make the root filesystem read-only")
}
