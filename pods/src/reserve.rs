//! Room kept for skiff's own state writes on a full disk. A pod's writes
//! land on the store's filesystem, so a pod can fill it; the records that
//! follow (an app's exit, its pod's state) must still be written. The
//! store keeps [`RESERVE_FILE`], [`RESERVE_BYTES`] allocated but unused: an
//! atomic write that fails with ENOSPC gives it back to the filesystem and
//! tries once more. `skiff gc` makes it again once there is room.

use std::io;
use std::path::Path;

use crate::layout::LAYOUT_FILE;

/// At the store's root.
pub const RESERVE_FILE: &str = ".reserve";
/// Room for about sixty small records.
pub const RESERVE_BYTES: u64 = 256 << 10;

/// Makes the reserve of the store at `root` unless it is there: an error
/// if the filesystem has no room for it (then there is none).
pub fn ensure(root: &Path) -> io::Result<()> {
    let path = root.join(RESERVE_FILE);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == RESERVE_BYTES) {
        return Ok(());
    }
    let tmp = root.join(format!(".tmp-{RESERVE_FILE}-{}", std::process::id()));
    let made = std::fs::File::create(&tmp).and_then(|f| {
        // Allocated, not just sized: a sparse file would give nothing back.
        rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, RESERVE_BYTES)?;
        std::fs::rename(&tmp, &path)
    });
    if made.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    made
}

/// Gives back the reserve of the store that `dir` is in, for a write
/// there that found the disk full: true if there was one to give.
pub fn release_for(dir: &Path) -> bool {
    let Some(root) = dir.ancestors().find(|a| a.join(LAYOUT_FILE).exists()) else { return false };
    std::fs::remove_file(root.join(RESERVE_FILE)).is_ok()
}

/// Runs `write` once more after releasing the reserve of the store that
/// `dir()` is in, if it failed for want of room and there was a reserve
/// (`dir` is only asked then).
pub fn retry_if_full<D: AsRef<Path>>(
    dir: impl FnOnce() -> D,
    mut write: impl FnMut() -> io::Result<()>,
) -> io::Result<()> {
    match write() {
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error()) && release_for(dir().as_ref()) => {
            write()
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_write_takes_the_reserve_once_and_ensure_makes_it_again() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(LAYOUT_FILE), b"").unwrap();
        ensure(d.path()).unwrap();
        let reserve = d.path().join(RESERVE_FILE);
        assert_eq!(std::fs::metadata(&reserve).unwrap().len(), RESERVE_BYTES);
        let deep = d.path().join("pods/run/x");
        std::fs::create_dir_all(&deep).unwrap();
        let full = || Err(io::Error::from_raw_os_error(rustix::io::Errno::NOSPC.raw_os_error()));
        let mut tries = 0;
        let r = retry_if_full(
            || &deep,
            || {
                tries += 1;
                if tries == 1 {
                    full()
                } else {
                    Ok(())
                }
            },
        );
        assert!(r.is_ok() && tries == 2 && !reserve.exists());
        // No reserve left: the second full write fails at once.
        let mut tries = 0;
        assert!(retry_if_full(
            || &deep,
            || {
                tries += 1;
                full()
            }
        )
        .is_err());
        assert_eq!(tries, 1);
        // Other errors are not retried, and a directory outside a store has none.
        ensure(d.path()).unwrap();
        let mut tries = 0;
        let _ = retry_if_full(
            || &deep,
            || {
                tries += 1;
                Err(io::Error::from_raw_os_error(rustix::io::Errno::IO.raw_os_error()))
            },
        );
        assert_eq!(tries, 1);
        assert!(!release_for(Path::new("/nonexistent/dir")) && reserve.exists());
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names.len(), 3, "no temp file: {names:?}");
    }
}
