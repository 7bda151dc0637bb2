//! The start of every skiff binary (`skiff` and the flavors), which are
//! `#![no_main]`: Rust's own runtime start costs about 0.12 ms per process
//! here (it reads `/proc/self/maps` to find the main thread's stack guard
//! and maps an alternate signal stack), and `skiff run` starts two of them
//! before the app. Of what it does, skiff needs two things, done here.
//! Given up: the "has overflowed its stack" message (an overflow is a plain
//! SIGSEGV instead) and the main thread's name in panic messages.
//!
//! The command line comes from `main`'s own `argv` ([`args_os`]): without
//! Rust's runtime start, `std::env::args` is empty where the C library does
//! not pass `argv` to initialisers as glibc does (musl).
//!
//! The binaries allocate with dlmalloc ([`Allocator`]), not musl's own
//! malloc, which maps and unmaps small groups of pages as it goes: 33 `mmap`
//! and 12 `munmap` calls in stage0 of one `skiff run`, against 3 `mmap`s
//! with dlmalloc (fly pod start 0.3 ms faster).

use std::ffi::{c_char, CStr, OsString};
use std::os::fd::{AsFd, IntoRawFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::OnceLock;

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigHandler, Signal};
use nix::sys::stat::Mode;

/// The binaries' global allocator (declared by [`main!`]).
pub use dlmalloc::GlobalDlmalloc as Allocator;

/// `main`'s arguments, as [`init`] was given them.
static ARGS: OnceLock<Vec<OsString>> = OnceLock::new();

/// Call first in `main`, before anything opens a file, with `main`'s
/// `argc` and `argv`.
///
/// # Safety
/// `argv` must hold `argc` valid NUL-terminated strings, as the C runtime
/// passes to `main`.
pub unsafe fn init(argc: i32, argv: *const *const c_char) {
    // Takes the allocator's lock around every fork, so that a forked child
    // can allocate whatever another thread was doing.
    // SAFETY: `init` runs first in `main`, and nothing before `main`
    // allocates with [`Allocator`] (Rust's runtime start does not run).
    unsafe { dlmalloc::enable_alloc_after_fork() };
    let args = (0..usize::try_from(argc).unwrap_or(0))
        // SAFETY: the caller guarantees argc valid C strings in argv, which
        // are copied here.
        .map(|i| OsString::from(std::ffi::OsStr::from_bytes(unsafe { CStr::from_ptr(*argv.add(i)) }.to_bytes())))
        .collect();
    let _ = ARGS.set(args);
    open_missing_stdio();
    ignore_sigpipe();
}

/// The command line, program name first, like `std::env::args_os` (which
/// it falls back to where [`init`] did not run: in test harnesses).
pub fn args_os() -> Vec<OsString> {
    ARGS.get().cloned().unwrap_or_else(|| std::env::args_os().collect())
}

/// [`args_os`] as strings; an argument that is not UTF-8 is taken lossily
/// (where `std::env::args` would panic).
pub fn args() -> Vec<String> {
    args_os().into_iter().map(|a| a.to_string_lossy().into_owned()).collect()
}

/// A closed fd 0, 1 or 2 becomes `/dev/null`: otherwise the next file
/// opened (a pod's manifest, its lock) would take its number and
/// `println!` or an app's output would be written into it.
fn open_missing_stdio() {
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let mut fds = [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()].map(|fd| PollFd::new(fd, PollFlags::empty()));
    if nix::poll::poll(&mut fds, PollTimeout::ZERO).is_err() {
        return;
    }
    let closed = fds.iter().map(|f| f.revents().is_some_and(|r| r.contains(PollFlags::POLLNVAL))).collect::<Vec<_>>();
    for closed in closed {
        if !closed {
            continue;
        }
        // The lowest free number is the closed one: the fds below it are
        // open by now. Not close-on-exec: the apps inherit these.
        match nix::fcntl::open("/dev/null", OFlag::O_RDWR, Mode::empty()) {
            Ok(null) => {
                let _ = null.into_raw_fd();
            }
            // Nothing to print to, nothing sane to run with.
            Err(_) => std::process::exit(crate::exit_code::SKIFF_ERROR),
        }
    }
}

/// Writes to a closed pipe fail with EPIPE, which skiff reports, instead of
/// killing the process (a flavor killed that way would take its app with
/// it). Apps get SIGPIPE back at its default: [`crate::app`].
fn ignore_sigpipe() {
    // SAFETY: SIG_IGN installs no handler, so no code of ours runs in
    // signal context.
    let _ = unsafe { nix::sys::signal::signal(Signal::SIGPIPE, SigHandler::SigIgn) };
}

/// Before an `execve` of another program: SIG_IGN, unlike a handler,
/// survives the exec, and the program should start with SIGPIPE at its
/// default (so `yes | head` ends `yes`).
pub fn restore_sigpipe() {
    // SAFETY: installing SIG_DFL runs no code in this process; it only
    // changes the disposition the exec'ed program inherits.
    let _ = unsafe { nix::sys::signal::signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

/// The C `main` of a `#![cfg_attr(not(test), no_main)]` binary: [`init`],
/// then `body` (a `fn() -> i32`), whose result is the exit status.
/// `std::process::exit` flushes stdout as Rust's runtime would have.
/// (In a test build the harness has the `main` symbol and this one is an
/// ordinary function.)
#[macro_export]
macro_rules! main {
    ($body:expr) => {
        // (A test build keeps the system's: its harness's threads allocate
        // before any `init` could make forks safe.)
        #[cfg(not(test))]
        #[global_allocator]
        static ALLOCATOR: $crate::process_start::Allocator = $crate::process_start::Allocator;

        #[cfg_attr(not(test), unsafe(no_mangle))]
        extern "C" fn main(argc: ::std::ffi::c_int, argv: *const *const ::std::ffi::c_char) -> ::std::ffi::c_int {
            // SAFETY: these are the C runtime's own argc and argv.
            unsafe { $crate::process_start::init(argc, argv) };
            let body: fn() -> i32 = $body;
            ::std::process::exit(body())
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_mains_own_argv() {
        let owned = [c"skiff".to_owned(), c"run".to_owned(), std::ffi::CString::new(b"\xffx".to_vec()).unwrap()];
        let argv: Vec<*const c_char> = owned.iter().map(|a| a.as_ptr()).collect();
        // SAFETY: three valid C strings, alive for the call (init copies them).
        unsafe { init(3, argv.as_ptr()) };
        let expected: Vec<OsString> =
            [&b"skiff"[..], b"run", b"\xffx"].iter().map(|a| std::ffi::OsStr::from_bytes(a).to_owned()).collect();
        assert_eq!(args_os(), expected, "bytes kept as they are");
        assert_eq!(args(), ["skiff", "run", "\u{fffd}x"], "not UTF-8: taken lossily, no panic");
    }
}
