//! What the flavor hands the pod's apps besides their specs: the
//! socket-activation descriptors (for the first app) and, with the `file`
//! log driver, the write ends of each app's stdout and stderr pipes.

use std::os::fd::{AsRawFd, OwnedFd};

use crate::app::Prepared;
use skiff_rt::activation::Activation;
use skiff_rt::error::{Error, Result};

/// The write ends of one app's stdout and stderr pipes (close-on-exec:
/// only the app they are `dup2`ed into keeps them).
pub struct AppOutput {
    pub app: String,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

#[derive(Default)]
pub struct Handover {
    pub activation: Option<Activation>,
    pub outputs: Vec<AppOutput>,
}

impl Handover {
    /// In the forked child that becomes app `app` (`first`: the pod's first
    /// app), just before `execve`.
    pub fn apply(&self, p: &mut Prepared, app: &str, first: bool) -> Result<()> {
        match &self.activation {
            Some(a) if first => p.set_env(&a.env(nix::unistd::getpid().as_raw()))?,
            Some(a) => a.withhold(),
            None => {}
        }
        if let Some(o) = self.outputs.iter().find(|o| o.app == app) {
            for (fd, target) in [(&o.stdout, 1), (&o.stderr, 2)] {
                // SAFETY: dup2 onto stdout or stderr of this single-threaded,
                // just-forked process; `fd` is an open pipe end it owns.
                if unsafe { nix::libc::dup2(fd.as_raw_fd(), target) } < 0 {
                    return Err(Error::refused(format!(
                        "app {app}: cannot attach its output: {}",
                        std::io::Error::last_os_error()
                    )));
                }
            }
        }
        Ok(())
    }
}
