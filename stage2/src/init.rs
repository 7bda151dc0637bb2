//! The pod's PID 1: starts the app, reaps every process that ends up as its
//! child, forwards termination signals, reports exits, and exits with the
//! app's status.

use nix::mount::MsFlags;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};
use skiff_pods::PodManifest;

use crate::app::Prepared;
use crate::exit_code::{SIGNAL_BASE, SKIFF_ERROR};
use crate::report::{Report, Reporter};

/// Signals a pod's init passes on to its app.
pub const FORWARDED: [Signal; 4] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGQUIT];

/// The signals the flavor must block before forking the init, so none is
/// lost between `fork` and the init's `signalfd`.
pub fn supervised_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    set
}

/// Runs the pod's init duties and returns the exit code the init should
/// exit with. Runs inside the pod's root; expects [`supervised_signals`]
/// to be blocked.
/// `ready` is called right before the app is forked and must return once
/// the pod may start (the flavor uses it to finish cgroup placement in
/// parallel with the root filesystem setup).
pub fn run(manifest: &PodManifest, mut reporter: Reporter, ready: impl FnOnce() -> Result<(), String>) -> i32 {
    let _ = nix::sys::prctl::set_name(c"skiff-init");
    let app = &manifest.apps[0];
    if let Err(msg) = crate::etc::populate(std::path::Path::new("/"), manifest) {
        return fail(&mut reporter, &msg);
    }
    let prepared = match Prepared::new(app) {
        Ok(p) => p,
        Err(msg) => return fail(&mut reporter, &msg),
    };
    if let Err(e) = std::fs::create_dir_all(&app.working_dir) {
        return fail(&mut reporter, &format!("cannot create working directory {}: {e}", app.working_dir));
    }
    if app.isolation.readonly_rootfs {
        let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
        if let Err(e) = nix::mount::mount(None::<&str>, "/", None::<&str>, flags, None::<&str>) {
            return fail(&mut reporter, &format!("cannot make the root filesystem read-only: {e}"));
        }
    }
    if let Err(msg) = ready() {
        return fail(&mut reporter, &msg);
    }
    let sfd = match SignalFd::with_flags(&supervised_signals(), SfdFlags::SFD_CLOEXEC) {
        Ok(s) => s,
        Err(e) => return fail(&mut reporter, &format!("signalfd: {e}")),
    };
    // SAFETY: the init is single-threaded, so the child may do anything.
    let child = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => prepared.exec(),
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => return fail(&mut reporter, &format!("cannot fork the app: {e}")),
    };
    let _ = reporter.send(&Report::Started { app: app.name.clone(), pid: child.as_raw() });
    supervise(&sfd, child, &app.name, &mut reporter)
}

fn fail(reporter: &mut Reporter, msg: &str) -> i32 {
    let _ = reporter.send(&Report::Error(msg.to_string()));
    SKIFF_ERROR
}

fn supervise(sfd: &SignalFd, app: Pid, name: &str, reporter: &mut Reporter) -> i32 {
    loop {
        let sig = match sfd.read_signal() {
            Ok(Some(info)) => info.ssi_signo as i32,
            Ok(None) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return fail(reporter, &format!("reading signals: {e}")),
        };
        if sig != Signal::SIGCHLD as i32 {
            if let Ok(s) = Signal::try_from(sig) {
                let _ = kill(app, s);
            }
            continue;
        }
        if let Some(code) = reap(app, name, reporter) {
            return code;
        }
    }
}

/// Reaps every exited child; returns the app's exit code once it is gone.
fn reap(app: Pid, name: &str, reporter: &mut Reporter) -> Option<i32> {
    let mut result = None;
    loop {
        let (pid, exit_code, signal) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, code, None),
            Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, SIGNAL_BASE + sig as i32, Some(sig as i32)),
            Ok(WaitStatus::StillAlive) | Err(_) => return result,
            Ok(_) => continue,
        };
        if pid == app {
            let _ = reporter.send(&Report::Exited { app: name.to_string(), exit_code, signal });
            result = Some(exit_code);
        }
    }
}
