//! A pod's network namespace, pinned by a bind mount on `netns` in the pod
//! directory (in the host's mount namespace), so that CNI plugins can be
//! given its path, and gc finds it to tear the network down even after the
//! flavor was killed.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;
use skiff_rt::error::{Context, Result};

use crate::userns::with_namespaces;

pub use skiff_pods::layout::{NETNS_FILE, NET_RESULT_FILE as RESULT_FILE};

/// Makes a network namespace with `lo` up, pinned on `path`; returns an
/// fd of it (for `setns`). Must be called before the caller makes a PID
/// namespace for its children (the helper child would become its init).
pub fn create(path: &Path) -> Result<OwnedFd> {
    File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let pinned = with_namespaces(CloneFlags::CLONE_NEWNET, None, super::loopback::up, |pid| {
        bind(&format!("/proc/{pid}/ns/net"), path)
    });
    if let Err(e) = pinned {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    File::open(path).map(OwnedFd::from).with_context(|| format!("cannot open {}", path.display()))
}

/// Pins the network namespace `netns` (made with the pod's user namespace)
/// on `path`.
pub fn pin(netns: OwnedFd, path: &Path) -> Result<OwnedFd> {
    File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    if let Err(e) = bind(&format!("/proc/self/fd/{}", netns.as_raw_fd()), path) {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(netns)
}

fn bind(ns: &str, path: &Path) -> Result<()> {
    mount(Some(ns), path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .context("cannot pin the pod's network namespace")
}

/// Unpins and removes it (harmless when already gone).
pub fn remove(path: &Path) {
    let _ = umount2(path, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(path);
}
