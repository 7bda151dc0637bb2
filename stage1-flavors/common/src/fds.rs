//! File descriptors a flavor must not hand to the apps.

use std::os::fd::BorrowedFd;

use nix::fcntl::{FcntlArg, FdFlag};

/// Marks every inherited descriptor above stderr close-on-exec, so nothing
/// the caller leaked (nor the lock fd) reaches the app; but for `keep`, the
/// socket-activation descriptors the caller passed for the app.
pub fn close_on_exec_all(keep: std::ops::Range<i32>) -> Result<(), String> {
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| format!("cannot list open files: {e}"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2 && !keep.contains(&fd))
        .collect();
    for fd in fds {
        set_cloexec_raw(fd);
    }
    Ok(())
}

fn set_cloexec_raw(fd: i32) {
    // SAFETY: the number was just listed in /proc/self/fd of this
    // single-threaded process; the borrow lives for one fcntl call, which
    // fails harmlessly with EBADF if it was the read_dir's own, now closed, fd.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let _ = nix::fcntl::fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
}
