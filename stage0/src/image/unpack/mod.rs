//! A layer extractor for untrusted tar streams.
//!
//! The `tar` crate only parses entries here; every file is created by this
//! module relative to directory fds, with parents resolved by `openat2`
//! under `RESOLVE_IN_ROOT` (so symlinks made by earlier entries resolve
//! inside the layer root, never outside), leaves created with `O_EXCL` /
//! `O_NOFOLLOW`, and directory metadata applied at the end through fds that
//! refuse symlinks. Entries with `..` are refused; absolute paths are made
//! relative; device nodes are skipped (a pod gets its own /dev).

pub mod path;
pub mod whiteout;

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid, XattrFlags};
use tar::EntryType;

use self::path::EntryPath;
use self::whiteout::Whiteout;

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("entry {path:?}: {reason}")]
    BadEntry { path: String, reason: String },
    #[error("entry {path:?}: cannot {op}: {err}")]
    Io { path: String, op: &'static str, err: io::Error },
    #[error("reading the tar stream: {0}")]
    Tar(io::Error),
}

type Result<T> = std::result::Result<T, UnpackError>;

/// What an unpack did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub entries: u64,
    pub bytes: u64,
    pub skipped_devices: u64,
}

impl Stats {
    /// One `--debug` line about an unpacked layer.
    pub fn log(&self, what: &str) {
        crate::debug!(
            "{what}: unpacked {} entries, {} bytes of file data, {} device nodes skipped",
            self.entries,
            self.bytes,
            self.skipped_devices
        );
    }
}

struct DirMeta {
    path: PathBuf,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
}

struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
}

/// Extracts the tar stream `reader` into the existing, empty directory
/// `target`. Does not fsync; the caller syncs once for the whole layer.
pub fn unpack_layer<R: Read>(reader: R, target: &Path) -> Result<(Stats, R)> {
    let root = File::open(target).map_err(|e| UnpackError::Io {
        path: target.display().to_string(),
        op: "open the target directory",
        err: e,
    })?;
    let mut x = Extractor { root: OwnedFd::from(root), dirs: Vec::new(), parent_cache: None, stats: Stats::default() };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(UnpackError::Tar)? {
        let entry = entry.map_err(UnpackError::Tar)?;
        x.entry(entry)?;
    }
    skiff_rt::failpoint!("image.unpack.layer").map_err(|e| UnpackError::Io {
        path: target.display().to_string(),
        op: "unpack the layer",
        err: e,
    })?;
    x.finish_dirs()?;
    Ok((x.stats, archive.into_inner()))
}

struct Extractor {
    root: OwnedFd,
    dirs: Vec<DirMeta>,
    /// The last parent directory opened, since consecutive entries mostly
    /// share one. Dropped whenever anything is removed.
    parent_cache: Option<(PathBuf, OwnedFd)>,
    stats: Stats,
}

fn io_at<'a>(p: &'a Path, op: &'static str) -> impl FnOnce(rustix::io::Errno) -> UnpackError + 'a {
    move |e| UnpackError::Io { path: p.display().to_string(), op, err: e.into() }
}

fn resolve_in_root() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV
}

impl Extractor {
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<()> {
        self.stats.entries += 1;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let bad = |reason: String| UnpackError::BadEntry { path: shown.clone(), reason };
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let Some(p) = path::normalize(&raw).map_err(bad)? else {
            return Ok(()); // the root directory itself keeps the store's mode
        };
        if let Some(w) = whiteout::classify(&p.name).map_err(bad)? {
            return self.whiteout(&p, w);
        }
        let meta = self.meta(&entry, &shown)?;
        match kind {
            EntryType::Directory => self.directory(&p, meta),
            EntryType::Regular | EntryType::Continuous => self.regular(&p, meta, &mut entry),
            EntryType::Symlink => {
                let target =
                    entry.link_name_bytes().ok_or_else(|| bad("symlink without a target".into()))?.into_owned();
                self.symlink(&p, &target, meta)
            }
            EntryType::Link => {
                let target =
                    entry.link_name_bytes().ok_or_else(|| bad("hard link without a target".into()))?.into_owned();
                self.hardlink(&p, &target)
            }
            EntryType::Fifo => self.fifo(&p, meta),
            EntryType::Char | EntryType::Block => {
                self.stats.skipped_devices += 1;
                Ok(())
            }
            EntryType::GNUSparse => Err(bad("sparse files are not supported".into())),
            other => Err(bad(format!("unsupported entry type {other:?}"))),
        }
    }

    fn meta<R: Read>(&self, entry: &tar::Entry<'_, R>, shown: &str) -> Result<Meta> {
        let h = entry.header();
        let bad = |reason: String| UnpackError::BadEntry { path: shown.to_string(), reason };
        let num = |v: io::Result<u64>, what: &str| -> Result<u32> {
            let v = v.map_err(|e| bad(format!("bad {what}: {e}")))?;
            u32::try_from(v).map_err(|_| bad(format!("{what} {v} is out of range")))
        };
        // 4294967295 is chown's "leave it as it is", not an owner: taken as
        // one, the file would keep the unpacker's (root).
        let id = |v: io::Result<u64>, what: &str| -> Result<u32> {
            num(v, what).and_then(|n| match n {
                u32::MAX => Err(bad(format!("{what} {n} is not an owner"))),
                n => Ok(n),
            })
        };
        let mtime = h.mtime().map_err(|e| bad(format!("bad mtime: {e}")))?;
        Ok(Meta {
            mode: num(h.mode().map(u64::from), "mode")? & 0o7777,
            uid: id(h.uid(), "uid")?,
            gid: id(h.gid(), "gid")?,
            mtime: i64::try_from(mtime).unwrap_or(i64::MAX),
        })
    }

    /// Opens (creating as needed) the parent directory of `p`, resolved
    /// inside the root.
    fn parent(&mut self, p: &EntryPath) -> Result<&OwnedFd> {
        let parent = p.parent_or_dot().to_path_buf();
        let hit = matches!(&self.parent_cache, Some((cached, _)) if *cached == parent);
        if !hit {
            let fd = self.open_dir_creating(&parent)?;
            self.parent_cache = Some((parent, fd));
        }
        match &self.parent_cache {
            Some((_, fd)) => Ok(fd),
            None => unreachable!("parent cache was just filled"),
        }
    }

    fn open_path(&self, rel: &Path) -> rustix::io::Result<OwnedFd> {
        rustix::fs::openat2(
            &self.root,
            rel,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            resolve_in_root(),
        )
    }

    fn open_dir_creating(&self, rel: &Path) -> Result<OwnedFd> {
        match self.open_path(rel) {
            Ok(fd) => return Ok(fd),
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(io_at(rel, "open parent directory")(e)),
        }
        // Some component is missing (tar streams need not list parents):
        // create them one by one, each resolved inside the root again.
        let mut cur = self.open_path(Path::new(".")).map_err(io_at(rel, "open the root"))?;
        let mut prefix = PathBuf::new();
        for c in rel.components() {
            prefix.push(c);
            cur = match self.open_path(&prefix) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) => {
                    match rustix::fs::mkdirat(&cur, c.as_os_str(), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(io_at(&prefix, "create parent directory")(e)),
                    }
                    self.open_path(&prefix).map_err(io_at(&prefix, "open parent directory"))?
                }
                Err(e) => return Err(io_at(&prefix, "open parent directory")(e)),
            };
        }
        Ok(cur)
    }

    /// Removes whatever this layer already has at `p` (a later entry for the
    /// same path wins). Non-empty directories are not removed.
    fn remove_existing(&mut self, p: &EntryPath, keep_dir: bool) -> Result<bool> {
        let full = p.full();
        let parent = self.parent(p)?;
        let st = match rustix::fs::statat(parent, p.name_os(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => return Ok(false),
            Err(e) => return Err(io_at(&full, "inspect existing entry")(e)),
        };
        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        if is_dir && keep_dir {
            return Ok(true);
        }
        let flags = if is_dir { AtFlags::REMOVEDIR } else { AtFlags::empty() };
        rustix::fs::unlinkat(parent, p.name_os(), flags).map_err(io_at(&full, "replace existing entry"))?;
        self.parent_cache = None;
        Ok(false)
    }

    fn directory(&mut self, p: &EntryPath, meta: Meta) -> Result<()> {
        let full = p.full();
        if !self.remove_existing(p, true)? {
            let parent = self.parent(p)?;
            rustix::fs::mkdirat(parent, p.name_os(), Mode::from_raw_mode(0o700))
                .map_err(io_at(&full, "create directory"))?;
        }
        self.dirs.push(DirMeta { path: full, mode: meta.mode, uid: meta.uid, gid: meta.gid, mtime: meta.mtime });
        Ok(())
    }

    fn regular<R: Read>(&mut self, p: &EntryPath, meta: Meta, data: &mut R) -> Result<()> {
        let full = p.full();
        self.remove_existing(p, false)?;
        let parent = self.parent(p)?;
        let fd = rustix::fs::openat(
            parent,
            p.name_os(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(io_at(&full, "create file"))?;
        let mut f = File::from(fd);
        let n = io::copy(data, &mut f).map_err(|e| UnpackError::Io {
            path: full.display().to_string(),
            op: "write file",
            err: e,
        })?;
        self.stats.bytes += n;
        apply_meta(&f, &full, &meta)
    }

    fn symlink(&mut self, p: &EntryPath, target: &[u8], meta: Meta) -> Result<()> {
        let full = p.full();
        self.remove_existing(p, false)?;
        let parent = self.parent(p)?;
        let target = std::ffi::OsStr::from_bytes(target);
        rustix::fs::symlinkat(target, parent, p.name_os()).map_err(io_at(&full, "create symlink"))?;
        meta_at(parent, p, &meta, false)
    }

    fn hardlink(&mut self, p: &EntryPath, target: &[u8]) -> Result<()> {
        let full = p.full();
        let shown = full.display().to_string();
        let t = path::normalize(target)
            .map_err(|r| UnpackError::BadEntry { path: shown.clone(), reason: format!("hard link target: {r}") })?
            .ok_or_else(|| UnpackError::BadEntry { path: shown.clone(), reason: "hard link to the root".into() })?;
        self.remove_existing(p, false)?;
        // The target's parent is resolved inside the root like any other
        // path, so a link can only ever point at a file of this layer.
        let tparent = self.open_path(t.parent_or_dot()).map_err(|e| UnpackError::BadEntry {
            path: shown.clone(),
            reason: format!("hard link target {:?} is not in this layer: {e}", t.full()),
        })?;
        let parent = self.parent(p)?;
        rustix::fs::linkat(&tparent, t.name_os(), parent, p.name_os(), AtFlags::empty()).map_err(|e| {
            UnpackError::BadEntry {
                path: shown,
                reason: format!("cannot link to {:?} (it must be a file earlier in this layer): {e}", t.full()),
            }
        })
    }

    fn fifo(&mut self, p: &EntryPath, meta: Meta) -> Result<()> {
        let full = p.full();
        self.remove_existing(p, false)?;
        let parent = self.parent(p)?;
        rustix::fs::mknodat(parent, p.name_os(), FileType::Fifo, Mode::from_raw_mode(0o600), 0)
            .map_err(io_at(&full, "create fifo"))?;
        meta_at(parent, p, &meta, true)
    }

    fn whiteout(&mut self, p: &EntryPath, w: Whiteout<'_>) -> Result<()> {
        match w {
            Whiteout::Opaque => {
                let dir = rustix::fs::openat2(
                    &self.root,
                    p.parent_or_dot(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                    resolve_in_root(),
                );
                let dir = match dir {
                    Ok(fd) => fd,
                    Err(rustix::io::Errno::NOENT) => {
                        drop(self.open_dir_creating(&p.parent)?);
                        rustix::fs::openat2(
                            &self.root,
                            p.parent_or_dot(),
                            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                            Mode::empty(),
                            resolve_in_root(),
                        )
                        .map_err(io_at(&p.parent, "open opaque directory"))?
                    }
                    Err(e) => return Err(io_at(&p.parent, "open opaque directory")(e)),
                };
                rustix::fs::fsetxattr(&dir, whiteout::OPAQUE_XATTR, b"y", XattrFlags::empty())
                    .map_err(io_at(&p.parent, "mark directory opaque"))
            }
            Whiteout::Remove(name) => {
                let target = EntryPath { parent: p.parent.clone(), name: name.to_vec() };
                let full = target.full();
                self.remove_existing(&target, false)?;
                let parent = self.parent(&target)?;
                rustix::fs::mknodat(
                    parent,
                    target.name_os(),
                    FileType::CharacterDevice,
                    Mode::empty(),
                    rustix::fs::makedev(0, 0),
                )
                .map_err(io_at(&full, "create whiteout"))
            }
        }
    }

    /// Directory modes, owners and mtimes go on last: creating children
    /// would change the mtime, and a mode such as 0555 would stop them
    /// being created. Each directory is reopened refusing symlinks, so a
    /// later entry that replaced it with a link cannot redirect the chmod.
    fn finish_dirs(&mut self) -> Result<()> {
        self.parent_cache = None;
        for d in self.dirs.iter().rev() {
            let fd = match rustix::fs::openat2(
                &self.root,
                &d.path,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
            ) {
                Ok(fd) => fd,
                Err(_) => continue, // replaced by a later entry
            };
            let meta = Meta { mode: d.mode, uid: d.uid, gid: d.gid, mtime: d.mtime };
            apply_meta(&File::from(fd), &d.path, &meta)?;
        }
        Ok(())
    }
}

fn times(mtime: i64) -> Timestamps {
    let t = Timespec { tv_sec: mtime, tv_nsec: 0 };
    Timestamps { last_access: t, last_modification: t }
}

/// Owner, (mode) and mtime of `p` by name in `parent`, never following a
/// symlink: for symlinks and fifos, which cannot be opened to use `fchown`.
fn meta_at(parent: &OwnedFd, p: &EntryPath, meta: &Meta, chmod: bool) -> Result<()> {
    let full = p.full();
    let (uid, gid) = (Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)));
    rustix::fs::chownat(parent, p.name_os(), uid, gid, AtFlags::SYMLINK_NOFOLLOW).map_err(io_at(&full, "chown"))?;
    if chmod {
        // Only ever called for fifos, which chmodat does not follow.
        rustix::fs::chmodat(parent, p.name_os(), Mode::from_raw_mode(meta.mode), AtFlags::empty())
            .map_err(io_at(&full, "chmod"))?;
    }
    rustix::fs::utimensat(parent, p.name_os(), &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(io_at(&full, "set mtime"))
}

/// Owner first, then mode: chown clears set-id bits.
fn apply_meta(f: &impl AsFd, path: &Path, meta: &Meta) -> Result<()> {
    rustix::fs::fchown(f, Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)))
        .map_err(io_at(path, "chown"))?;
    rustix::fs::fchmod(f, Mode::from_raw_mode(meta.mode)).map_err(io_at(path, "chmod"))?;
    rustix::fs::futimens(f, &times(meta.mtime)).map_err(io_at(path, "set mtime"))
}

#[cfg(test)]
mod tests;
