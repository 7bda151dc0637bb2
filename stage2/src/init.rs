//! The pod's PID 1: starts every app, reaps every process that ends up as
//! its child, forwards termination signals, applies the pod's exit policy,
//! reports exits, and exits with the pod's status.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};
use skiff_pods::cgroup::Join;
use skiff_pods::netstate::NetState;
use skiff_pods::{App, PodManifest};

use crate::app::{ExecWatch, Prepared};
use crate::app_root::InitRoot;
use crate::handover::Handover;
use crate::report::{Report, Reporter};
use crate::seccomp::Compiled;
use crate::supervision::{Slot, Supervision};
use crate::terminal::{Console, Master};
use skiff_rt::error::{Context, Error, Result};
use skiff_rt::exit_code::SKIFF_ERROR;

/// Signals a pod's init passes on to its apps.
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
/// exit with. Runs in `root`: the pod's root, which holds each app's root
/// at `/apps/<name>`, or the only app's (see [`crate::app_root`]); expects
/// [`supervised_signals`] to be blocked.
///
/// `app_cgroups`: the cgroups of the apps that get one of their own (a pod
/// of several apps), which each app joins before it execs; the others stay
/// in the init's.
/// With `console`, the first app (a pod with a terminal has one app) gets a
/// pseudo-terminal (see [`crate::terminal`]).
/// `net`: the pod's CNI networks as attached (for /etc/hosts and
/// resolv.conf). `handover`: what the apps get from the flavor besides
/// their specs (socket-activation descriptors, log pipes).
/// Names the pod's PID 1 `skiff-init` for `ps` (its comm and its command
/// line), where /proc still shows this process: flavors call it before
/// they leave the host's mount namespace (ns) or once /proc is mounted.
pub fn name_process() {
    let _ = nix::sys::prctl::set_name(c"skiff-init");
    set_title("skiff-init");
}

/// Makes `ps` show the init as `title` rather than the flavor's command
/// line it was forked with, as setproctitle(3) does: the title over the
/// argument area, NUL-ended, and the area's last byte not NUL, which tells
/// the kernel to read /proc/PID/cmdline only up to the first NUL. Written
/// through /proc/self/mem, so no raw pointer is needed. Best effort: a
/// title too long for the area is not set.
fn set_title(title: &str) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return };
    // The fields after the command name, which may hold spaces and ')';
    // arg_start and arg_end are fields 48 and 49 (proc(5)), the state 3.
    let Some((_, fields)) = stat.rsplit_once(')') else { return };
    let field = |n: usize| fields.split_whitespace().nth(n - 3).and_then(|f| f.parse::<u64>().ok());
    let (Some(start), Some(end)) = (field(48), field(49)) else { return };
    let Ok(len) = usize::try_from(end.saturating_sub(start)) else { return };
    if len < title.len() + 2 {
        return;
    }
    let mut area = vec![0u8; len];
    area[..title.len()].copy_from_slice(title.as_bytes());
    area[len - 1] = b' ';
    if let Ok(mem) = std::fs::OpenOptions::new().write(true).open("/proc/self/mem") {
        let _ = std::os::unix::fs::FileExt::write_all_at(&mem, &area, start);
    }
}

pub fn run(
    manifest: &PodManifest,
    mut reporter: Reporter,
    mut console: Option<Console>,
    net: &NetState,
    handover: &Handover,
    app_cgroups: &[(String, Join)],
    root: InitRoot,
) -> i32 {
    // The init's root holds every app's root: apps (even root in the pod,
    // without CAP_SYS_PTRACE) must not reach it through /proc/1/root.
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        return fail(&mut reporter, &format!("cannot make the init non-dumpable: {e}"));
    }
    let sfd = match SignalFd::with_flags(&supervised_signals(), SfdFlags::SFD_CLOEXEC) {
        Ok(s) => s,
        Err(e) => return fail(&mut reporter, &format!("signalfd: {e}")),
    };
    let filters = match crate::seccomp::compile_all(&manifest.apps) {
        Ok(f) => f,
        Err(msg) => return fail(&mut reporter, &msg.to_string()),
    };
    // In the app's own root, it is prepared once, for every start of the app.
    if root == InitRoot::App {
        if let Err(msg) = manifest.apps.iter().try_for_each(|app| crate::app_root::prepare(manifest, net, app)) {
            return fail(&mut reporter, &msg.to_string());
        }
    }
    // Held until the init exits (see terminal::Master::send).
    let mut _terminal_hold = None;
    let pod = PodContext { manifest, net, handover, app_cgroups, root };
    // Init apps first, one after another, each to its end.
    let apps = manifest.apps.iter().zip(filters).enumerate().map(|(i, (a, f))| (i, a, f));
    let (inits, others): (Vec<_>, Vec<_>) = apps.partition(|(_, a, _)| a.init);
    let launch = |app: &App, first: bool, filter: Option<Compiled>, console, reporter: &mut Reporter| {
        start(&pod, app, first, filter, console, reporter)
    };
    for (i, app, filter) in inits {
        let status = match launch(app, i == 0, filter.clone(), console.take(), &mut reporter) {
            Ok((pid, _)) => {
                let slot = Slot::started(app, i == 0, filter, pid);
                Supervision::new(vec![slot], manifest).run(&sfd, &mut reporter, &mut |s, r| {
                    launch(s.app, s.first, s.filter.clone(), None, r).map(|(pid, _)| pid)
                })
            }
            Err(msg) => fail(&mut reporter, &msg.to_string()),
        };
        if status != 0 {
            return status;
        }
    }
    let mut slots = Vec::new();
    let mut failed = false;
    for (i, app, filter) in others {
        match launch(app, i == 0, filter.clone(), console.take(), &mut reporter) {
            Ok((pid, hold)) => {
                slots.push(Slot::started(app, i == 0, filter, pid));
                _terminal_hold = _terminal_hold.or(hold);
            }
            Err(msg) => {
                // The apps already started are stopped like a failed app's
                // siblings; the pod fails with skiff's own status.
                let _ = reporter.send(&Report::Error(msg.to_string()));
                failed = true;
                break;
            }
        }
    }
    let mut sup = Supervision::new(slots, manifest);
    if failed {
        sup.status = Some(SKIFF_ERROR);
        sup.stop_all();
    }
    sup.run(&sfd, &mut reporter, &mut |s, r| launch(s.app, s.first, s.filter.clone(), None, r).map(|(pid, _)| pid))
}

pub(crate) fn fail(reporter: &mut Reporter, msg: &str) -> i32 {
    let _ = reporter.send(&Report::Error(msg.to_string()));
    SKIFF_ERROR
}

/// What every app of the pod starts from.
struct PodContext<'a> {
    manifest: &'a PodManifest,
    net: &'a NetState,
    /// What the flavor passes on to the apps (socket activation to the
    /// first, log pipes to each).
    handover: &'a Handover,
    app_cgroups: &'a [(String, Join)],
    root: InitRoot,
}

/// Forks one app (`first`: the pod's first): the child joins its cgroup,
/// enters the app's root and prepares, then waits for the init's go. The app is
/// reported started once its program is running: the end of a
/// close-on-exec pipe that only `execve` closes without a byte.
/// An app that fails before that is not reported started (the pod never
/// becomes ready); its exit (125, 126, 127) is reported as usual.
fn start(
    pod: &PodContext,
    app: &App,
    first: bool,
    filter: Option<Compiled>,
    console: Option<Console>,
    reporter: &mut Reporter,
) -> Result<(Pid, Option<OwnedFd>)> {
    let cgroup = pod.app_cgroups.iter().find(|(n, _)| *n == app.name).map(|(_, j)| j);
    let terminal = console.map(|c| Master::open(app, c.size, pod.root).map(|m| (m, c.socket))).transpose()?;
    let (go_r, go_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe")?;
    let watch = ExecWatch::new()?;
    // SAFETY: the init is single-threaded, so the child may do anything.
    let child = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            drop(go_w);
            let failed = watch.into_child();
            let joined = cgroup
                .map_or(Ok(()), |c| c.enter_v1().with_context(|| format!("cannot put app {} in its cgroup", app.name)));
            let msg = match joined
                .and_then(|()| become_app(pod, app, filter, terminal.as_ref().map(|(m, _)| m), go_r))
                .and_then(|mut p| pod.handover.apply(&mut p, &app.name, first).map(|()| p))
            {
                Ok(prepared) => prepared.exec(Some(&failed)),
                Err(msg) => msg,
            };
            ExecWatch::fail(&failed);
            let _ = reporter.send(&Report::Error(msg.to_string()));
            std::process::exit(SKIFF_ERROR);
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => return Err(e).with_context(|| format!("cannot fork app {}", app.name)),
    };
    drop(go_r);
    let hold = terminal.map(|(master, socket)| master.send(&socket)).transpose()?;
    // A PID written to cgroup.procs is read in the writer's PID namespace:
    // this one, in which `child` is given.
    if let Some(Err(e)) = cgroup.map(|c| c.add_v2(child.as_raw())) {
        let _ = kill(child, Signal::SIGKILL);
        let _ = waitpid(child, None);
        return Err(Error::other(e)).with_context(|| format!("cannot put app {} in its cgroup", app.name));
    }
    // Closing the pipe without this byte makes the child give up.
    File::from(go_w).write_all(b"1").with_context(|| format!("cannot start app {}", app.name))?;
    if watch.exec_succeeded() {
        let _ = reporter.send(&Report::Started { app: app.name.clone(), pid: child.as_raw() });
    }
    Ok((child, hold))
}

/// In the forked child: everything up to the `execve`.
fn become_app(
    pod: &PodContext,
    app: &App,
    filter: Option<Compiled>,
    terminal: Option<&Master>,
    go: OwnedFd,
) -> Result<Prepared> {
    if pod.root == InitRoot::Pod {
        crate::app_root::enter(app)?;
        crate::app_root::prepare(pod.manifest, pod.net, app)?;
    }
    if let Some(t) = terminal {
        t.attach_slave()?;
    }
    let prepared = Prepared::new(app, filter)?;
    let mut byte = [0u8; 1];
    match File::from(go).read(&mut byte) {
        Ok(1) => Ok(prepared),
        _ => Err(Error::refused(format!("app {}: the pod did not start it", app.name))),
    }
}
