//! A pod's own user namespace (the manifest's `user_namespace`,
//! docs/user-namespaces.md): made with its uid and gid maps by the flavor,
//! which stays host root; the pod's processes join it once everything that
//! needs the host's privileges is done. Host trees the pod sees through it
//! (image layers, `idmap` volumes) are idmapped mounts, so no file on disk
//! is chowned.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Gid, Uid};
use rustix::mount::{MoveMountFlags, OpenTreeFlags};
use skiff_pods::manifest::UserNamespace;
use skiff_rt::error::{Context, Error, Result};

/// The maps of `ns` as `/proc/PID/{uid,gid}_map` take them.
fn maps(ns: &UserNamespace) -> (String, String) {
    (format!("0 {} {}\n", ns.uid_base, ns.count), format!("0 {} {}\n", ns.gid_base, ns.count))
}

/// Runs `inside` in a child that has made new namespaces `flags` (with
/// `userns`, `CLONE_NEWUSER` among them: the user namespace is made first
/// and owns the others, and the parent writes its maps), and keeps it
/// waiting while `outside` gets its pid, to open or pin its namespaces.
/// The flavor must be single-threaded.
pub fn with_namespaces<T>(
    flags: CloneFlags,
    userns: Option<&UserNamespace>,
    inside: impl FnOnce() -> Result<()>,
    outside: impl FnOnce(i32) -> Result<T>,
) -> Result<T> {
    let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    let (done_r, done_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    // SAFETY: the flavor is single-threaded, so the child may run any code.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            drop((ready_r, done_w));
            // In a new user namespace the child holds every capability
            // there, maps or not, so it can bring `lo` up at once.
            let ok = nix::sched::unshare(flags).is_ok() && inside().is_ok();
            let _ = File::from(ready_w).write_all(if ok { b"1" } else { b"0" });
            // Wait for the parent to be done with this process's namespaces.
            let _ = File::from(done_r).read(&mut [0u8; 1]);
            std::process::exit(0);
        }
        Ok(ForkResult::Parent { child }) => {
            drop((ready_w, done_r));
            let mut byte = [0u8; 1];
            let ready = File::from(ready_r).read(&mut byte).is_ok_and(|n| n == 1) && byte[0] == b'1';
            let result = if !ready {
                Err(Error::refused("cannot create the pod's namespaces"))
            } else {
                let mapped = userns.map_or(Ok(()), |ns| write_maps(child.as_raw(), ns));
                mapped.and_then(|()| outside(child.as_raw()))
            };
            drop(done_w);
            let _ = waitpid(child, None);
            result
        }
        Err(e) => Err(e).context("fork"),
    }
}

fn write_maps(pid: i32, ns: &UserNamespace) -> Result<()> {
    let (uid_map, gid_map) = maps(ns);
    std::fs::write(format!("/proc/{pid}/uid_map"), uid_map)
        .and_then(|()| std::fs::write(format!("/proc/{pid}/gid_map"), gid_map))
        .with_context(|| {
            format!(
                "cannot map the pod's user namespace (uids from {}, gids from {}, {} each)",
                ns.uid_base, ns.gid_base, ns.count
            )
        })
}

/// The pod's user namespace: its ids, and an fd of it (for idmapped
/// mounts).
#[derive(Clone, Copy)]
pub struct PodUserns<'a> {
    pub ids: &'a UserNamespace,
    pub fd: BorrowedFd<'a>,
}

/// Makes the pod's user namespace and, with `net`, its network namespace
/// (`lo` up), owned by it, in one helper child; fds of them.
pub fn create(ns: &UserNamespace, net: bool) -> Result<(OwnedFd, Option<OwnedFd>)> {
    let mut flags = CloneFlags::CLONE_NEWUSER;
    if net {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    let lo = || if net { crate::network::loopback::up() } else { Ok(()) };
    with_namespaces(flags, Some(ns), lo, |pid| {
        let open = |what: &str| {
            File::open(format!("/proc/{pid}/ns/{what}"))
                .map(OwnedFd::from)
                .with_context(|| format!("cannot open the pod's {what} namespace"))
        };
        Ok((open("user")?, if net { Some(open("net")?) } else { None }))
    })
}

/// After `setns` into the pod's user namespace: the process becomes the
/// pod's root (its uid and gid 0, no supplementary groups), which is the
/// range's first host id; until then it would act on files as the host's
/// root.
fn become_root() -> nix::Result<()> {
    nix::unistd::setgroups(&[])?;
    nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))?;
    nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
}

/// Joins the pod's user namespace as its root (see [`become_root`]).
pub fn join(userns: impl AsFd) -> Result<()> {
    nix::sched::setns(userns, CloneFlags::CLONE_NEWUSER).context("cannot join the pod's user namespace")?;
    become_root().context("cannot become the root of the pod's user namespace")
}

/// `struct mount_attr` of `mount_setattr(2)` (not in rustix).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

fn set_idmap(tree: &OwnedFd, userns: BorrowedFd) -> std::io::Result<()> {
    let attr =
        MountAttr { attr_set: MOUNT_ATTR_IDMAP, attr_clr: 0, propagation: 0, userns_fd: userns.as_raw_fd() as u64 };
    set_attr(tree, &attr, false)
}

/// Read-only, nosuid and nodev, on `tree` and every mount under it.
pub fn set_read_only(tree: &OwnedFd) -> std::io::Result<()> {
    const RDONLY_NOSUID_NODEV: u64 = 0x1 | 0x2 | 0x4;
    set_attr(tree, &MountAttr { attr_set: RDONLY_NOSUID_NODEV, attr_clr: 0, propagation: 0, userns_fd: 0 }, true)
}

// SAFETY (of the call inside): `attr` is a valid `struct mount_attr` of the
// size passed, and `tree` a mount fd from `open_tree` that outlives the call.
fn set_attr(tree: &OwnedFd, attr: &MountAttr, recursive: bool) -> std::io::Result<()> {
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: see above; AT_EMPTY_PATH with "" names `tree` itself.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Mounts `source` on `target` as the pod's user namespace sees it: a
/// file the host's uid N owns is owned by the pod's uid N (and written so).
/// Needs the host's root (before the process joins the pod's namespace).
pub fn idmapped_bind(source: &Path, target: &Path, userns: BorrowedFd) -> Result<()> {
    let fail = |e: std::io::Error| {
        format!(
            "cannot mount {} idmapped into the pod's user namespace: {e} (not every filesystem can be idmapped, and no kernel before 5.12)",
            source.display()
        )
    };
    let tree = rustix::mount::open_tree(
        rustix::fs::CWD,
        source,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .map_err(|e| Error::refused(fail(e.into())))?;
    set_idmap(&tree, userns).map_err(|e| Error::refused(fail(e)))?;
    rustix::mount::move_mount(&tree, "", rustix::fs::CWD, target, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
        .map_err(|e| Error::refused(fail(e.into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_map_the_pods_root_to_the_base() {
        let ns = UserNamespace { uid_base: 100000, gid_base: 200000, count: 65536, slot: None };
        assert_eq!(maps(&ns), ("0 100000 65536\n".to_string(), "0 200000 65536\n".to_string()));
    }
}
