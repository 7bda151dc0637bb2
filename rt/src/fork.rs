//! fork(2) straight into a cgroup v2 directory, with clone3's
//! `CLONE_INTO_CGROUP`. Moving a process after it started (a write to
//! `cgroup.procs`) takes the kernel's global threadgroup lock, whose first
//! writer waits for an RCU grace period: about 7 ms on this machine kind,
//! more than a whole pod start. A child born in its cgroup costs nothing.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::unistd::{ForkResult, Pid};

/// `struct clone_args` of clone3(2), up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Forks like fork(2); the child starts in the cgroup v2 directory `cgroup`
/// (an open directory of a cgroup2 hierarchy; the other hierarchies are
/// inherited as usual). Fails with the kernel's error (ENOSYS before Linux
/// 5.7) without forking.
///
/// # Safety
/// As for fork(2): the caller must be single-threaded. Besides, clone3 has
/// no C library wrapper, so in the child the C library's cached thread id
/// is still the parent's; musl reads it only to signal the thread itself
/// (raise(3), abort(3)). The child must therefore be the first process of
/// a PID namespace its parent is not in: there that id names no process of
/// the host, and every process it could name dies with the child.
pub unsafe fn fork_into_cgroup(cgroup: BorrowedFd) -> nix::Result<ForkResult> {
    let fd = u64::try_from(cgroup.as_raw_fd()).map_err(|_| Errno::EBADF)?;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: nix::libc::SIGCHLD as u64,
        cgroup: fd,
        ..CloneArgs::default()
    };
    // SAFETY: `args` outlives the call and its size is passed; without a
    // stack of its own the child continues on a copy of this one, as after
    // fork(2) (the caller's contract covers the rest).
    let ret = unsafe {
        nix::libc::syscall(nix::libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>())
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(ForkResult::Child),
        pid => Ok(ForkResult::Parent { child: Pid::from_raw(pid as i32) }),
    }
}
