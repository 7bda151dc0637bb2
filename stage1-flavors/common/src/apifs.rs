//! An app's API filesystems, mounted by a process in the pod's PID
//! namespace (so /proc shows the pod): a fresh /proc, a minimal /dev, a
//! read-only /sys, and the sensitive paths of /proc and /sys hidden or
//! read-only.

use std::path::Path;

use nix::mount::{mount as mount_fs, MsFlags};

use skiff_pods::manifest::UserNamespace;

use crate::dev;
use crate::overlay::mountpoint;
use skiff_rt::error::{Context, Result};

/// Mounts /proc, /dev and /sys in the app root `rootfs` (umask 0
/// expected), then masks the sensitive paths when `masked_paths`.
/// `userns`: the pod's own user namespace, whose root then owns /dev.
pub fn mount(rootfs: &Path, masked_paths: bool, userns: Option<&UserNamespace>) -> Result<()> {
    mount_api_filesystems(rootfs, userns)?;
    if masked_paths {
        mask_paths(rootfs)?;
    }
    Ok(())
}

fn mount_api_filesystems(rootfs: &Path, userns: Option<&UserNamespace>) -> Result<()> {
    let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let proc = mountpoint(rootfs, "proc")?;
    mount_fs(Some("proc"), &proc, Some("proc"), nosuid_nodev_noexec, None::<&str>).context("cannot mount /proc")?;
    dev::populate(&mountpoint(rootfs, "dev")?, userns)?;
    let sys = mountpoint(rootfs, "sys")?;
    mount_fs(Some("sysfs"), &sys, Some("sysfs"), nosuid_nodev_noexec | MsFlags::MS_RDONLY, None::<&str>)
        .context("cannot mount /sys")?;
    Ok(())
}

/// Hidden: files get /dev/null bound over them, directories an empty
/// read-only tmpfs (Docker's list).
const MASKED: [&str; 10] = [
    "proc/acpi",
    "proc/kcore",
    "proc/keys",
    "proc/latency_stats",
    "proc/timer_list",
    "proc/timer_stats",
    "proc/sched_debug",
    "proc/scsi",
    "sys/firmware",
    "sys/devices/virtual/powercap",
];

/// Visible but read-only.
const READ_ONLY: [&str; 5] = ["proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger"];

fn mask_paths(rootfs: &Path) -> Result<()> {
    let null = rootfs.join("dev/null");
    for rel in MASKED {
        let p = rootfs.join(rel);
        // These live in the pod's fresh procfs and sysfs, not in the image,
        // so following them cannot leave the pod's root.
        let Ok(md) = std::fs::metadata(&p) else { continue };
        let r = if md.is_dir() {
            mount_fs(
                Some("tmpfs"),
                &p,
                Some("tmpfs"),
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("size=0"),
            )
        } else {
            mount_fs(Some(&null), &p, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        };
        r.with_context(|| format!("cannot mask /{rel}"))?;
    }
    for rel in READ_ONLY {
        let p = rootfs.join(rel);
        if !p.exists() {
            continue;
        }
        mount_fs(Some(&p), &p, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .and_then(|()| {
                let ro = MsFlags::MS_REMOUNT
                    | MsFlags::MS_BIND
                    | MsFlags::MS_RDONLY
                    | MsFlags::MS_NOSUID
                    | MsFlags::MS_NODEV
                    | MsFlags::MS_NOEXEC;
                mount_fs(None::<&str>, &p, None::<&str>, ro, None::<&str>)
            })
            .with_context(|| format!("cannot make /{rel} read-only"))?;
    }
    Ok(())
}
