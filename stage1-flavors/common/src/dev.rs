//! The pod's minimal /dev: a fresh tmpfs with the usual character devices,
//! a private devpts instance and /dev/shm. No other device exists.

use std::os::unix::fs::symlink;
use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::unistd::{Gid, Uid};
use skiff_pods::manifest::UserNamespace;
use skiff_rt::error::{Context, Result};

/// (name, major, minor) of the nodes every pod gets, all mode 0666.
const NODES: [(&str, u64, u64); 6] =
    [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)];

const LINKS: [(&str, &str); 5] = [
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

fn bind_node(node: &Path, name: &str) -> nix::Result<()> {
    std::fs::File::create(node).map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    mount(Some(&Path::new("/dev").join(name)), node, None::<&str>, MsFlags::MS_BIND, None::<&str>)
}

/// Expects umask 0 (the modes below are final). In a pod of its own user
/// namespace (`userns`), what is made here is owned by the pod's root, and
/// ptys by its `tty` group (5), as they are by the host's without one.
pub fn populate(dev: &Path, userns: Option<&UserNamespace>) -> Result<()> {
    let (uid, gid) = userns.map_or((0, 0), |ns| (ns.host_uid(0), ns.host_gid(0)));
    let owner = format!(",uid={uid},gid={gid}");
    mount(
        Some("tmpfs"),
        dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some(format!("mode=755,size=65536k{owner}").as_str()),
    )
    .context("cannot mount /dev")?;
    for (name, major, minor) in NODES {
        let node = dev.join(name);
        let made = match mknod(&node, SFlag::S_IFCHR, Mode::from_bits_truncate(0o666), makedev(major, minor)) {
            Ok(()) => match userns {
                Some(_) => nix::unistd::chown(&node, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))),
                None => Ok(()),
            },
            // In a user namespace (the nspawn flavor's container with a
            // user namespace of the pod's own) no device can be made: the
            // one this process sees is bound instead.
            Err(nix::errno::Errno::EPERM) => bind_node(&node, name),
            Err(e) => Err(e),
        };
        made.with_context(|| format!("cannot create /dev/{name}"))?;
    }
    let pts = dev.join("pts");
    std::fs::create_dir(&pts).context("cannot create /dev/pts")?;
    mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some(format!("newinstance,ptmxmode=0666,mode=0620,gid={}", userns.map_or(5, |ns| ns.host_gid(5))).as_str()),
    )
    .context("cannot mount /dev/pts")?;
    let shm = dev.join("shm");
    std::fs::create_dir(&shm).context("cannot create /dev/shm")?;
    mount(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(format!("mode=1777,size=65536k{owner}").as_str()),
    )
    .context("cannot mount /dev/shm")?;
    for (name, target) in LINKS {
        symlink(target, dev.join(name)).with_context(|| format!("cannot create /dev/{name}"))?;
    }
    Ok(())
}
