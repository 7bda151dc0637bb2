//! Reading the pod directory's small files (the manifest, `started`,
//! `pid`, an app's `exit.json`) in the fewest system calls: open with
//! O_CLOEXEC, read until the end (one read for a file under 8 KiB), close. `std::fs::read` adds an `fstat`
//! (and, under musl, an `fcntl` per open); `skiff list` of a thousand pods
//! reads three thousand of them.

use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use rustix::fs::{Mode, OFlags};

/// The whole file.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    read_at(rustix::fs::CWD, path)
}

/// The whole file at `path` relative to directory `dir`: a pod's files
/// through its open directory, without walking the store's path to each
/// (a tenth of `skiff list`'s time with a thousand pods).
pub fn read_at<Fd: AsFd>(dir: Fd, path: &Path) -> io::Result<Vec<u8>> {
    let fd = rustix::fs::openat(dir, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match rustix::io::read(&fd, &mut chunk) {
            Ok(0) => return Ok(out),
            // A regular file gives less than asked only at its end (the
            // pod directory is on a local filesystem): no read of nothing
            // to learn it.
            Ok(n) if n < chunk.len() => {
                out.extend_from_slice(&chunk[..n]);
                return Ok(out);
            }
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// The whole file as text, trimmed; None if it cannot be read or is not
/// UTF-8.
pub fn read_trimmed(path: &Path) -> Option<String> {
    read_trimmed_at(rustix::fs::CWD, path)
}

/// [`read_trimmed`] of `path` relative to directory `dir`.
pub fn read_trimmed_at<Fd: AsFd>(dir: Fd, path: &Path) -> Option<String> {
    let data = read_at(dir, path).ok()?;
    Some(String::from_utf8(data).ok()?.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_small_and_large_files_whole() {
        let d = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..16_384u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(d.path().join("big"), &big).unwrap();
        std::fs::write(d.path().join("pid"), b" 42\n").unwrap();
        assert_eq!(read(&d.path().join("big")).unwrap(), big);
        assert_eq!(read_trimmed(&d.path().join("pid")).as_deref(), Some("42"));
        assert_eq!(read(&d.path().join("missing")).unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(read_trimmed(&d.path().join("missing")), None);
        let dir = std::fs::File::open(d.path()).unwrap();
        assert_eq!(read_trimmed_at(&dir, Path::new("pid")).as_deref(), Some("42"));
        assert_eq!(read_at(&dir, Path::new("big")).unwrap(), big);
    }
}
