//! A pod's network namespace, pinned by a bind mount on `netns` in the pod
//! directory (in the host's mount namespace), so that CNI plugins can be
//! given its path, and gc finds it to tear the network down even after the
//! flavor was killed.

use std::fs::File;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;
use skiff_rt::error::{Context, Result};

use crate::userns::{with_namespaces, Owner};

pub use skiff_pods::layout::{NETNS_FILE, NET_RESULT_FILE as RESULT_FILE};

/// Makes a network namespace with `lo` up, owned by `owner`'s user
/// namespace, pinned on `path`; returns an fd of it (for `setns`). Must be
/// called before the caller makes a PID namespace for its children (the
/// helper child would become its init).
pub fn create(path: &Path, owner: Owner) -> Result<OwnedFd> {
    File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let pinned = with_namespaces(CloneFlags::CLONE_NEWNET, owner, super::loopback::up, |pid| {
        mount(Some(format!("/proc/{pid}/ns/net").as_str()), path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .context("cannot pin the pod's network namespace")
    });
    if let Err(e) = pinned {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    File::open(path).map(OwnedFd::from).with_context(|| format!("cannot open {}", path.display()))
}

/// A network namespace with `lo` up owned by the pod's user namespace
/// (`--net none` in one), not pinned: it lives as long as the pod.
pub fn unpinned(userns: BorrowedFd) -> Result<OwnedFd> {
    with_namespaces(CloneFlags::CLONE_NEWNET, Owner::Join(userns), super::loopback::up, |pid| {
        File::open(format!("/proc/{pid}/ns/net")).map(OwnedFd::from).context("cannot open the pod's network namespace")
    })
}

/// Unpins and removes it (harmless when already gone).
pub fn remove(path: &Path) {
    let _ = umount2(path, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(path);
}
