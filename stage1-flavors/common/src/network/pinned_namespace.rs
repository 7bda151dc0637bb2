//! A pod's network namespace, pinned by a bind mount on `netns` in the pod
//! directory (in the host's mount namespace), so that CNI plugins can be
//! given its path, and gc finds it to tear the network down even after the
//! flavor was killed.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::ForkResult;
use skiff_rt::error::{Context, Error, Result};

pub use skiff_pods::layout::{NETNS_FILE, NET_RESULT_FILE as RESULT_FILE};

/// Makes a network namespace with `lo` up, pinned on `path`; returns an fd
/// of it (for `setns`). Must be called before the caller makes a PID
/// namespace for its children (the helper child would become its init).
pub fn create(path: &Path) -> Result<OwnedFd> {
    File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    // SAFETY: the flavor is single-threaded, so the child may run any code.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            let r = nix::sched::unshare(CloneFlags::CLONE_NEWNET)
                .context("unshare")
                .and_then(|()| super::loopback::up())
                .and_then(|()| {
                    mount(Some("/proc/self/ns/net"), path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                        .context("mount")
                });
            std::process::exit(if r.is_ok() { 0 } else { 1 });
        }
        Ok(ForkResult::Parent { child }) => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => {}
            _ => {
                let _ = std::fs::remove_file(path);
                return Err(Error::refused("cannot create the pod's network namespace"));
            }
        },
        Err(e) => return Err(e).context("fork"),
    }
    File::open(path).map(OwnedFd::from).with_context(|| format!("cannot open {}", path.display()))
}

/// Unpins and removes it (harmless when already gone).
pub fn remove(path: &Path) {
    let _ = umount2(path, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(path);
}
