//! Atomic file writes: temp file in the same directory, fsync, rename.
//!
//! Readers either see the old content or the new one, never a torn file, and
//! a crash leaves at worst a `.tmp-*` file that the next writer overwrites.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags};

fn tmp_name(name: &str) -> String {
    format!(".tmp-{name}-{}", std::process::id())
}

/// Writes `data` to `dir/name` atomically; on a full disk, with the
/// store's reserve ([`crate::reserve`]).
pub fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> io::Result<()> {
    crate::reserve::retry_if_full(|| dir, || write_once(dir, name, data))
}

fn write_once(dir: &Path, name: &str, data: &[u8]) -> io::Result<()> {
    let tmp = dir.join(tmp_name(name));
    let written = File::create(&tmp).and_then(|mut f| {
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        skiff_rt::failpoint!("atomic.{name}")?;
        std::fs::rename(&tmp, dir.join(name))
    });
    // Nothing half-written stays: a full disk leaves no temp file.
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Replaces `name` inside the directory `dir` atomically (temp file and
/// rename, so readers never see a torn file) but without fsync: for the
/// runtime state of a live pod (pid, start time, exit codes), which sits on
/// the pod's start and exit paths and describes processes that a machine
/// crash ends anyway. Resolves nothing through paths: used by stages that
/// only hold a directory fd. On a full disk, with the store's reserve.
pub fn replace_at<Fd: AsFd>(dir: Fd, name: &str, data: &[u8]) -> io::Result<()> {
    let fd = dir.as_fd();
    // The directory's path is looked up only on a full disk.
    let path = || std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default();
    crate::reserve::retry_if_full(path, || replace_once(fd, name, data))
}

fn replace_once(dir: BorrowedFd, name: &str, data: &[u8]) -> io::Result<()> {
    let tmp = tmp_name(name);
    let fd: OwnedFd = rustix::fs::openat(
        dir,
        tmp.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(0o644),
    )?;
    let mut f = File::from(fd);
    let written = f.write_all(data).and_then(|()| {
        drop(f);
        skiff_rt::failpoint!("atomic.{name}")?;
        Ok(rustix::fs::renameat(dir, tmp.as_str(), dir, name)?)
    });
    if written.is_err() {
        let _ = rustix::fs::unlinkat(dir, tmp.as_str(), rustix::fs::AtFlags::empty());
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let d = tempfile::tempdir().unwrap();
        write_atomic(d.path(), "f", b"one").unwrap();
        write_atomic(d.path(), "f", b"two").unwrap();
        assert_eq!(std::fs::read(d.path().join("f")).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn replace_at_uses_the_directory_fd() {
        let d = tempfile::tempdir().unwrap();
        let dirf = File::open(d.path()).unwrap();
        replace_at(&dirf, "pid", b"42\n").unwrap();
        assert_eq!(std::fs::read(d.path().join("pid")).unwrap(), b"42\n");
    }
}
