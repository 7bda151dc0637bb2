//! stage2: the app side of a pod.
//!
//! [`init`] is the pod's PID 1 (reaps every zombie, forwards signals to the
//! app, reports each app's exit to the stage1 flavor); [`app`] turns one
//! resolved app spec into an `execve`. Both run inside the pod, after the
//! flavor has built the root filesystem, and hold no host file descriptors.

pub mod app;
pub mod app_root;
pub mod etc;
pub mod handover;
pub mod identity;
pub mod init;
pub mod report;
pub mod seccomp;
mod supervision;
pub mod terminal;
