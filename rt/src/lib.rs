//! skiff-rt: what every skiff binary (`skiff` and the stage1 flavors)
//! shares at run time, and nothing about pods: how a binary starts
//! ([`process_start`], the [`main!`] macro), forking into a cgroup
//! ([`fork`]), the exit codes every stage uses, the socket-activation
//! descriptors passed in by systemd, syscall and errno names, and the error
//! type of the code that runs pods. stage0, stage2 and the flavors depend
//! on it; it depends on no other skiff crate.

pub mod activation;
pub mod error;
#[cfg(debug_assertions)]
pub mod failpoint;
pub mod fork;
pub mod process_start;
pub mod syscall_names;

/// Passes the failpoint named by the `format!` arguments
/// ([`failpoint`]): an `io::Result<()>`, the injected error if the test
/// asked for one. In a release build it is `Ok(())` and formats nothing.
#[macro_export]
macro_rules! failpoint {
    ($($name:tt)+) => {{
        #[cfg(debug_assertions)]
        let hit = $crate::failpoint::hit(&format!($($name)+));
        // (The name's variables count as used; the closure is never run.)
        #[cfg(not(debug_assertions))]
        let hit: ::std::io::Result<()> = {
            let _ = || format!($($name)+);
            Ok(())
        };
        hit
    }};
}

/// Exit codes shared by every stage (see `docs/exit-codes.md`).
pub mod exit_code {
    /// skiff itself failed (bad input, setup error).
    pub const SKIFF_ERROR: i32 = 125;
    /// The app's file exists but cannot be executed.
    pub const CANNOT_INVOKE: i32 = 126;
    /// The app's file does not exist in the pod.
    pub const NOT_FOUND: i32 = 127;
    /// Added to the signal number when the app died of a signal.
    pub const SIGNAL_BASE: i32 = 128;
}
