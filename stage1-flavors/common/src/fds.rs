//! File descriptors a flavor must not hand to the apps, and those it is
//! handed.

use std::ops::Range;
use std::os::fd::BorrowedFd;

use nix::fcntl::{FcntlArg, FdFlag};
use skiff_rt::error::{Context, Result};

/// Whether `raw` is an open descriptor of this process (one the caller
/// says it passed), without taking it over.
pub fn is_open(raw: i32) -> bool {
    // SAFETY: F_GETFD only reads the flags of whatever `raw` is; an fd
    // that is not open fails with EBADF.
    unsafe { libc::fcntl(raw, libc::F_GETFD) >= 0 }
}

/// Marks every inherited descriptor above stderr close-on-exec, so nothing
/// the caller leaked (nor the lock fd) reaches the app; but for `keep`, the
/// socket-activation descriptors the caller passed for the app.
pub fn close_on_exec_all(keep: Range<i32>) -> Result<()> {
    // The fds above stderr but `keep`: [3, start) and [end, ∞).
    let (start, end) = if keep.is_empty() { (3, 3) } else { (keep.start.max(3), keep.end.max(3)) };
    let ranges = [(3, start.unsigned_abs().saturating_sub(1)), (end.unsigned_abs(), u32::MAX)];
    if ranges.into_iter().filter(|(first, last)| first <= last).all(|(first, last)| cloexec_range(first, last)) {
        return Ok(());
    }
    // Kernels before 5.11 have no CLOSE_RANGE_CLOEXEC: list the fds.
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .context("cannot list open files")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2 && !keep.contains(&fd))
        .collect();
    for fd in fds {
        set_cloexec_raw(fd);
    }
    Ok(())
}

/// One syscall for the whole range, where listing /proc/self/fd and
/// setting each flag was several on every pod start.
fn cloexec_range(first: u32, last: u32) -> bool {
    // SAFETY: with CLOSE_RANGE_CLOEXEC nothing is closed: the kernel only
    // sets the close-on-exec flag of this process's fds in the range. (The
    // raw syscall: musl's libc has no close_range wrapper.)
    unsafe { libc::syscall(libc::SYS_close_range, first, last, libc::CLOSE_RANGE_CLOEXEC) == 0 }
}

fn set_cloexec_raw(fd: i32) {
    // SAFETY: the number was just listed in /proc/self/fd of this
    // single-threaded process; the borrow lives for one fcntl call, which
    // fails harmlessly with EBADF if it was the read_dir's own, now closed, fd.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let _ = nix::fcntl::fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, OwnedFd};

    use super::*;

    fn cloexec(fd: i32) -> bool {
        // SAFETY: F_GETFD reads a flag of an fd this test owns.
        unsafe { libc::fcntl(fd, libc::F_GETFD) & libc::FD_CLOEXEC != 0 }
    }

    /// An fd open without close-on-exec, leaked the way a caller leaks one.
    fn inheritable() -> OwnedFd {
        let fd = OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
        nix::fcntl::fcntl(&fd, FcntlArg::F_SETFD(FdFlag::empty())).unwrap();
        assert!(!cloexec(fd.as_raw_fd()));
        fd
    }

    #[test]
    fn inherited_fds_become_close_on_exec_but_the_kept_ones() {
        let (a, b, c) = (inheritable(), inheritable(), inheritable());
        let kept = b.as_raw_fd()..b.as_raw_fd() + 1;
        close_on_exec_all(kept).unwrap();
        assert!(cloexec(a.as_raw_fd()) && cloexec(c.as_raw_fd()));
        assert!(!cloexec(b.as_raw_fd()));
    }

    #[test]
    fn open_fds_are_told_from_others() {
        let fd = inheritable();
        assert!(is_open(fd.as_raw_fd()));
        // Above any open-files limit, and not a descriptor at all.
        assert!(!is_open(1 << 30) && !is_open(-1));
    }
}
