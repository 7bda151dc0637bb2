//! Volumes: host paths and pod-private volumes bound into the app's root.
//! Targets are resolved inside the root with `openat2(RESOLVE_IN_ROOT)`,
//! creating what is missing, so a symlink in the image can never send a
//! mount to a host path; the mount then goes to the resolved path.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::mount::{mount, MsFlags};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use skiff_pods::manifest::{Mount, MountSource, NewVolume};

use crate::userns::PodUserns;
use skiff_rt::error::{Context, Error, Result};

fn in_root() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

fn open_in_root(root: &OwnedFd, rel: &Path, dir: bool) -> rustix::io::Result<OwnedFd> {
    let flags = if dir { OFlags::PATH | OFlags::DIRECTORY } else { OFlags::PATH };
    rustix::fs::openat2(root, rel, flags | OFlags::CLOEXEC, Mode::empty(), in_root())
}

fn relative(target: &str) -> PathBuf {
    Path::new(target).components().filter(|c| matches!(c, Component::Normal(_))).collect()
}

/// Gives a new pod volume the owner and mode the manifest asks for, each
/// field it leaves out taken from the directory at `target` in the app's
/// root when the image has one there (so postgres finds its data
/// directory owned by its user, mode 0700, as the image made it).
/// `owner`: whose it is when neither says (the pod's root in a pod of its
/// own user namespace; else it stays the host root's).
fn make_new_volume(
    root: &OwnedFd,
    volume: &Path,
    target: &str,
    asked: NewVolume,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    let image = match open_in_root(root, &relative(target), true) {
        Ok(fd) => Some(rustix::fs::fstat(&fd).with_context(|| format!("volume target {target}"))?),
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => None,
        Err(e) => return Err(e).with_context(|| format!("volume target {target}")),
    };
    if let Some(t) = asked.tmpfs {
        // Mounted where the volume is, in the pod's own mount namespace:
        // every app that mounts the volume binds this tmpfs.
        let size = t.size.map_or(String::new(), |s| format!(",size={s}"));
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        mount(Some("tmpfs"), volume, Some("tmpfs"), flags, Some(format!("mode=0755{size}").as_str()))
            .with_context(|| format!("cannot mount a tmpfs on volume {}", volume.display()))?;
    }
    let uid = asked.uid.or(image.map(|st| st.st_uid)).or(owner.map(|o| o.0));
    let gid = asked.gid.or(image.map(|st| st.st_gid)).or(owner.map(|o| o.1));
    let mode = asked.mode.or(image.map(|st| st.st_mode & 0o7777));
    if (uid, gid, mode) == (None, None, None) {
        return Ok(());
    }
    let dir = rustix::fs::open(
        volume,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("volume {}", volume.display()))?;
    let fail = |e: rustix::io::Errno| format!("cannot give volume {} its owner and mode: {e}", volume.display());
    // chown clears the set-id bits, so the mode goes
    // last.
    rustix::fs::fchown(&dir, uid.map(rustix::fs::Uid::from_raw), gid.map(rustix::fs::Gid::from_raw)).map_err(fail)?;
    if let Some(mode) = mode {
        rustix::fs::fchmod(&dir, Mode::from_raw_mode(mode)).map_err(fail)?;
    }
    Ok(())
}

/// Opens `target` inside `root`, creating missing parents (mode 0755) and
/// the final entry (a directory, or an empty file when `dir` is false).
/// What it creates is owned by `owner` (host uid and gid; the pod's root
/// in a pod of its own user namespace), else by the caller.
fn resolve_creating(root: &OwnedFd, target: &str, dir: bool, owner: Option<(u32, u32)>) -> Result<OwnedFd> {
    let rel = relative(target);
    let comps: Vec<_> = rel.components().collect();
    let mut prefix = PathBuf::new();
    for (i, c) in comps.iter().enumerate() {
        prefix.push(c);
        let last = i + 1 == comps.len();
        let want_dir = !last || dir;
        match open_in_root(root, &prefix, want_dir) {
            Ok(fd) if last => return Ok(fd),
            Ok(_) => continue,
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(e).with_context(|| format!("volume target {target}: /{}", prefix.display())),
        }
        let parent_path = prefix.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let parent = open_in_root(root, parent_path, true).with_context(|| format!("volume target {target}"))?;
        let name = c.as_os_str();
        let made = if want_dir {
            rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o755))
        } else {
            rustix::fs::openat(
                &parent,
                name,
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            )
            .map(drop)
        };
        let owned = |()| match owner {
            Some((u, g)) => rustix::fs::chownat(
                &parent,
                name,
                Some(rustix::fs::Uid::from_raw(u)),
                Some(rustix::fs::Gid::from_raw(g)),
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            ),
            None => Ok(()),
        };
        match made.and_then(owned) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => {
                return Err(e).with_context(|| format!("volume target {target}: cannot create /{}", prefix.display()))
            }
        }
        if last {
            return open_in_root(root, &prefix, want_dir).with_context(|| format!("volume target {target}"));
        }
    }
    rustix::fs::openat(root, ".", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .with_context(|| format!("volume target {target}"))
}

/// The mount points at or below `dir` (deepest last), from mountinfo.
fn mounts_at_or_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines().filter_map(|l| l.split(' ').nth(4)).map(PathBuf::from).filter(|m| m.starts_with(dir)).collect()
}

/// Path `sub` of the volume `volume` (at `source`), resolved inside it so
/// a symlink the pod made there cannot lead out; made as a directory
/// (owned by `owner`) when missing.
fn open_sub_path(volume: &OwnedFd, sub: &str, owner: Option<(u32, u32)>, source: &Path) -> Result<OwnedFd> {
    let at = || format!("volume {}: subpath {sub}", source.display());
    match open_in_root(volume, Path::new(sub), false) {
        Ok(fd) => Ok(fd),
        Err(rustix::io::Errno::NOENT) => resolve_creating(volume, sub, true, owner).with_context(at),
        Err(e) => Err(e).with_context(at),
    }
}

/// Where a mount's source is on the host: the path, or the pod volume's
/// directory in the pod directory.
fn source_of(m: &Mount, pod_dir: &Path) -> Result<PathBuf> {
    match &m.source {
        MountSource::Host(p) => Ok(p.clone()),
        MountSource::Volume(name) if !name.is_empty() && !name.contains(['/', '\0']) && name != ".." && name != "." => {
            Ok(pod_dir.join("volumes").join(name))
        }
        MountSource::Volume(name) => Err(Error::refused(format!("invalid volume name {name:?}"))),
    }
}

/// `userns`: the pod's own user namespace, if it has one (the ids a
/// volume is given are the pod's; `idmap` volumes are seen through it).
pub fn mount_all(rootfs: &Path, pod_dir: &Path, mounts: &[Mount], userns: Option<PodUserns>) -> Result<()> {
    if mounts.is_empty() {
        return Ok(());
    }
    let root = rustix::fs::open(rootfs, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .context("cannot open the pod's root")?;
    for m in mounts {
        let source = source_of(m, pod_dir)?;
        let ids = userns.map(|u| u.ids);
        let owner = ids.map(|ns| (ns.host_uid(0), ns.host_gid(0)));
        if let (Some(asked), MountSource::Volume(_)) = (m.new_volume, &m.source) {
            let asked = match ids {
                Some(ns) => NewVolume {
                    uid: asked.uid.map(|u| ns.host_uid(u)),
                    gid: asked.gid.map(|g| ns.host_gid(g)),
                    ..asked
                },
                None => asked,
            };
            make_new_volume(&root, &source, &m.target, asked, owner)?;
        }
        // Only a path of the volume: resolved inside it, so a symlink the
        // pod made there cannot send the mount out; bound through its fd.
        let _sub_fd;
        let source = match &m.sub_path {
            None => source,
            Some(sub) => {
                let volume =
                    rustix::fs::open(&source, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                        .with_context(|| format!("volume {}", source.display()))?;
                let fd = open_sub_path(&volume, sub, owner, &source)?;
                let path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
                _sub_fd = fd;
                path
            }
        };
        let md = std::fs::metadata(&source).with_context(|| format!("volume source {}", source.display()))?;
        let target = resolve_creating(&root, &m.target, md.is_dir(), owner)?;
        // The resolved entry's real path: inside the root by construction.
        let real = std::fs::read_link(format!("/proc/self/fd/{}", target.as_raw_fd()))
            .with_context(|| format!("volume target {}", m.target))?;
        if !real.starts_with(rootfs) {
            return Err(Error::refused(format!("volume target {} resolves outside the pod's root", m.target)));
        }
        match (m.idmap, userns) {
            (false, _) => mount(Some(&source), &real, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                .with_context(|| format!("cannot mount {} on {}", source.display(), m.target))?,
            (true, Some(u)) => crate::userns::idmapped_bind(&source, &real, u.fd)?,
            (true, None) => {
                return Err(Error::refused(format!(
                    "volume {}: idmap needs a pod with its own user namespace",
                    m.target
                )))
            }
        }
        if m.read_only {
            // A remount changes one mount; every mount the recursive bind
            // brought along must be made read-only too.
            for mp in mounts_at_or_under(&real) {
                let flags = MsFlags::MS_REMOUNT
                    | MsFlags::MS_BIND
                    | MsFlags::MS_RDONLY
                    | MsFlags::MS_NOSUID
                    | MsFlags::MS_NODEV;
                mount(None::<&str>, &mp, None::<&str>, flags, None::<&str>)
                    .with_context(|| format!("cannot make {} read-only", mp.display()))?;
            }
        }
    }
    Ok(())
}

/// A volume of an app added to a running sandbox: its source cloned as a
/// detached mount tree while the host's paths are in sight, attached in
/// the pod's mount namespace later ([`attach_all`]).
pub struct Detached {
    tree: OwnedFd,
    target: String,
    dir: bool,
}

/// On the host's side, for an added app whose root is the detached mount
/// `root`: each mount's source cloned (recursively, as [`mount_all`] binds
/// it; read-only where asked; a `sub_path` resolved inside its volume), a
/// new volume given its owner and mode. Memory volumes and idmapped ones
/// are refused: added apps do not have them yet.
pub fn detach_all(root: &OwnedFd, pod_dir: &Path, mounts: &[Mount]) -> Result<Vec<Detached>> {
    use rustix::mount::{open_tree, OpenTreeFlags};
    let mut out = Vec::new();
    for m in mounts {
        let source = source_of(m, pod_dir)?;
        if m.idmap || m.new_volume.is_some_and(|v| v.tmpfs.is_some()) {
            return Err(Error::refused(format!(
                "volume {}: idmapped and memory volumes of added apps are not supported yet",
                m.target
            )));
        }
        if let (Some(asked), MountSource::Volume(_)) = (m.new_volume, &m.source) {
            make_new_volume(root, &source, &m.target, asked, None)?;
        }
        let dir = rustix::fs::open(&source, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
            .with_context(|| format!("volume source {}", source.display()))?;
        let from = match &m.sub_path {
            None => dir,
            Some(sub) => open_sub_path(&dir, sub, None, &source)?,
        };
        let is_dir = rustix::fs::fstat(&from).is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir());
        let flags = OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE
            | OpenTreeFlags::AT_EMPTY_PATH;
        let tree = open_tree(&from, "", flags).with_context(|| format!("cannot clone {}", source.display()))?;
        if m.read_only {
            crate::userns::set_read_only(&tree).with_context(|| format!("cannot make {} read-only", m.target))?;
        }
        out.push(Detached { tree, target: m.target.clone(), dir: is_dir });
    }
    Ok(out)
}

/// In the pod's mount namespace: each volume attached at its target
/// inside `rootfs`, resolved there (what is missing created), so a symlink
/// in the image cannot send it out.
pub fn attach_all(rootfs: &Path, volumes: Vec<Detached>) -> Result<()> {
    use rustix::mount::{move_mount, MoveMountFlags};
    if volumes.is_empty() {
        return Ok(());
    }
    let root = rustix::fs::open(rootfs, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .context("cannot open the app's root")?;
    for v in volumes {
        let target = resolve_creating(&root, &v.target, v.dir, None)?;
        let flags = MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH;
        move_mount(&v.tree, "", &target, "", flags).with_context(|| format!("cannot mount volume {}", v.target))?;
    }
    Ok(())
}
