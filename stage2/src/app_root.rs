//! Moving a process from the pod's root into one app's root.
//!
//! A flavor that runs several apps in one pod gives the init a root of its
//! own holding each app's complete root filesystem at `/apps/<name>`. Every
//! app process (and every `enter`ed command) takes a private copy of that
//! mount namespace and pivots into its app's root, so it sees neither the
//! pod's root nor the other apps' files.

use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;
use skiff_pods::App;
use skiff_rt::error::{Context, Result};

/// Directory of the init's root that holds the apps' roots.
pub const APPS_DIR: &str = "apps";

/// Called in the process that will become the app (or run in its root):
/// a mount namespace of its own, rooted at the app's root, with the app's
/// root read-only when it asks for it.
pub fn enter(app: &App) -> Result<()> {
    nix::sched::unshare(CloneFlags::CLONE_NEWNS).context("cannot create a mount namespace")?;
    let root = Path::new("/").join(APPS_DIR).join(&app.name);
    std::env::set_current_dir(&root).with_context(|| format!("app {}: cannot enter its root", app.name))?;
    // As in the flavor: the old root stacks on the new one and is detached.
    nix::unistd::pivot_root(".", ".").with_context(|| format!("app {}: pivot_root", app.name))?;
    umount2(".", MntFlags::MNT_DETACH).with_context(|| format!("app {}: cannot detach the pod's root", app.name))?;
    std::env::set_current_dir("/").context("chdir /")
}

/// Makes the (already entered) app root read-only, after the init has
/// written what it writes there. Mounts under it (volumes, /proc, /dev)
/// keep their own flags.
pub fn make_readonly() -> Result<()> {
    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>).context("cannot make the root filesystem read-only")
}
