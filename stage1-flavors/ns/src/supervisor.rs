//! The flavor's outer process: the one stage0 exec'ed into, which the shell
//! or systemd supervises. It holds the pod lock, starts the pod's init in
//! new namespaces, forwards signals to it, records what the init reports,
//! and exits with the app's status.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};
use skiff_pods::cgroup::{size_text, PodCgroup};
use skiff_pods::layout::{PID_FILE, STARTED_FILE};
use skiff_pods::{atomic, time, PodManifest};
use skiff_rt::exit_code::{SIGNAL_BASE, SKIFF_ERROR};
use skiff_stage2::report::{Report, Reporter};

use crate::console::{self, Relay};
use crate::rootfs;
use skiff_rt::activation::Activation;
use skiff_stage1::entry::Stdio;
use skiff_stage1::escalation::Escalation;
use skiff_stage1::logs::Capture;
use skiff_stage1::notify::Readiness;
use skiff_stage1::recorder::Recorder;
use skiff_stage2::handover::Handover;
use skiff_stage2::terminal::Console;

pub fn run(
    manifest: &PodManifest,
    pod_dir: &Path,
    lock: OwnedFd,
    debug: bool,
    stdio: Stdio,
    notify_app: bool,
) -> Result<i32, String> {
    let activation = Activation::inherited();
    skiff_stage1::fds::close_on_exec_all(activation.as_ref().map_or(0..0, Activation::fds))?;
    if stdio != Stdio::Inherit && manifest.apps.len() > 1 {
        return Err(format!("a terminal needs a pod of one app, pod {} has {}", manifest.uuid, manifest.apps.len()));
    }
    let (readiness, manifest) = Readiness::new(manifest, pod_dir, notify_app)?;
    let manifest = &manifest;
    let plan = rootfs::Plan::new(manifest, pod_dir)?;
    // A terminal's output is the terminal's (stage0 gives such pods no log).
    let (capture, outputs) = match Capture::new(manifest, pod_dir)?.filter(|_| stdio == Stdio::Inherit) {
        Some((c, o)) => (Some(c), o),
        None => (None, Vec::new()),
    };
    let handover = Handover { activation, outputs };
    let cgroup = PodCgroup::for_pod(&manifest.uuid);
    let cgroups = match Cgroups::create(manifest, &cgroup) {
        Ok(c) => c,
        Err(e) => {
            let _ = cgroup.remove();
            return Err(e);
        }
    };
    // Before the PID namespace: the namespace is made by a helper child.
    let network = match skiff_stage1::network::attach(manifest, pod_dir, &lock) {
        Ok(n) => n,
        Err(e) => {
            let _ = cgroup.remove();
            return Err(e);
        }
    };
    let (network, netns) = match network {
        Some((n, fd)) => (Some(n), Some(fd)),
        None => (None, None),
    };
    let net_state = network.as_ref().map(|n| n.state().clone()).unwrap_or_default();
    let mut mask = skiff_stage2::init::supervised_signals();
    mask.add(Signal::SIGWINCH);
    mask.thread_block().map_err(|e| format!("cannot block signals: {e}"))?;
    let (mut relay, console) = match stdio {
        Stdio::Inherit => (None, None),
        Stdio::Tty | Stdio::Interactive => {
            let (r, c) = Relay::new(stdio == Stdio::Interactive)?;
            (Some(r), Some(c))
        }
    };
    // The CNI plugins that detach the network run after the pod's PID
    // namespace is gone, where no child can be forked: they go back here.
    let host_pid_ns = match &network {
        Some(_) => Some(File::open("/proc/self/ns/pid").map_err(|e| format!("cannot open the PID namespace: {e}"))?),
        None => None,
    };
    // Only children of this process enter the new PID namespace: the init
    // forked below becomes its PID 1, this supervisor stays on the host.
    nix::sched::unshare(CloneFlags::CLONE_NEWPID).map_err(|e| format!("cannot create a PID namespace: {e}"))?;
    let (report_r, report_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    // The supervisor places the init in the pod's cgroup (moving a process
    // between v1 cgroups costs milliseconds per hierarchy) while the init
    // builds the root filesystem; one byte on this pipe says it is done.
    let (placed_r, placed_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: this process is single-threaded, so the child may run any code.
    let init = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            drop(report_r);
            drop(placed_w);
            drop(lock);
            // The supervisor's relay: its drop would restore the caller's
            // terminal while the pod runs.
            std::mem::forget(relay);
            let net = PodNet { netns, state: net_state };
            let code = pod_init(&plan, manifest, net, &handover, cgroups.app_procs, console, report_w, placed_r);
            std::process::exit(code);
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => return Err(format!("cannot fork the pod's init: {e}")),
    };
    drop(report_w);
    drop(placed_r);
    // The apps' ends of their log pipes are the init's now.
    drop(handover);
    drop(cgroups.app_procs);
    drop(console);
    drop(netns);
    let started_at = time::now_rfc3339();
    atomic::replace_at(&lock, PID_FILE, format!("{init}\n").as_bytes())
        .and_then(|()| atomic::replace_at(&lock, STARTED_FILE, format!("{started_at}\n").as_bytes()))
        .map_err(|e| format!("cannot record the pod's pid: {e}"))?;
    if let Err(e) = cgroup.for_init(manifest.apps.len()).add_pid(init.as_raw()) {
        let _ = nix::sys::signal::kill(init, Signal::SIGKILL);
        let _ = waitpid(init, None);
        let _ = cgroup.remove();
        return Err(e);
    }
    let _ = File::from(placed_w).write_all(b"1");
    if debug {
        eprintln!("skiff: stage1 ns: pod {} init is pid {init}", manifest.uuid);
    }
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC).map_err(|e| format!("signalfd: {e}"))?;
    let mut recorder = Recorder::new(lock, started_at, manifest.apps.iter().map(|a| a.name.clone()).collect());
    recorder.notify = readiness.ready_to.clone();
    let escalation = Escalation::new(manifest.stop_timeout());
    let mut sup = Supervisor { init, recorder, escalation, readiness, capture };
    let status = sup.wait(&sfd, File::from(report_r), relay.as_mut())?;
    if let WaitStatus::Signaled(_, sig, _) = status {
        sup.recorder.record_unreported(sig as i32);
    }
    for name in &sup.recorder.killed_apps {
        let Some(app) = manifest.apps.iter().find(|a| &a.name == name) else { continue };
        if cgroup.for_app(manifest.apps.len(), name).oom_kills() > 0 {
            let limit = app
                .resources
                .memory_bytes
                .map_or("its memory limit".to_string(), |b| format!("its memory limit (--memory {})", size_text(b)));
            eprintln!("skiff: app {name} was killed by the kernel's OOM killer: it exceeded {limit}");
        }
    }
    // Every process of the pod is gone with its init; a cgroup or network
    // that cannot be removed now is removed by gc.
    let _ = cgroup.remove();
    if let (Some(n), Some(ns)) = (network, host_pid_ns) {
        let r = nix::sched::setns(ns, CloneFlags::CLONE_NEWPID)
            .map_err(|e| format!("setns: {e}"))
            .and_then(|()| n.detach());
        if let Err(e) = r {
            eprintln!("skiff: {e}");
        }
    }
    Ok(match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => SIGNAL_BASE + sig as i32,
        _ => SKIFF_ERROR,
    })
}

/// The pod's cgroups, made and limited before the init exists.
struct Cgroups {
    /// Per app, the `cgroup.procs` files of its own cgroup, for the init
    /// to place the app there (empty in a pod of one app, whose process
    /// inherits the init's cgroup).
    app_procs: Vec<(String, Vec<File>)>,
}

impl Cgroups {
    fn create(manifest: &PodManifest, pod: &PodCgroup) -> Result<Cgroups, String> {
        let n = manifest.apps.len();
        pod.create()?;
        pod.for_init(n).create()?;
        let mut app_procs = Vec::new();
        for app in &manifest.apps {
            let cg = pod.for_app(n, &app.name);
            cg.create()?;
            cg.apply(&app.resources)?;
            if n > 1 {
                app_procs.push((app.name.clone(), cg.open_procs()?));
            }
        }
        Ok(Cgroups { app_procs })
    }
}

/// The pod's own network, for its init: the namespace to join and what
/// its CNI networks gave the pod.
struct PodNet {
    netns: Option<OwnedFd>,
    state: skiff_pods::netstate::NetState,
}

/// Runs in the forked child: becomes the pod's PID 1.
#[allow(clippy::too_many_arguments)]
fn pod_init(
    plan: &rootfs::Plan,
    manifest: &PodManifest,
    net: PodNet,
    handover: &Handover,
    app_procs: Vec<(String, Vec<File>)>,
    console: Option<Console>,
    report_w: OwnedFd,
    placed: OwnedFd,
) -> i32 {
    skiff_stage2::init::name_process();
    let mut reporter = Reporter::new(report_w);
    // The pod must never outlive its supervisor: if it dies (even by
    // SIGKILL) the init gets SIGKILL, and with it every process in the pod.
    // The supervisor may have died before the death signal was armed. Its
    // PID is not visible from the new PID namespace, but it is the only
    // reader of the report pipe, whose write end reports POLLERR once the
    // reader is gone.
    if nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_err() || reader_gone(&reporter) {
        return SKIFF_ERROR;
    }
    if let Err(msg) = rootfs::enter(plan, &manifest.hostname, net.netns) {
        let _ = reporter.send(&Report::Error(msg));
        return SKIFF_ERROR;
    }
    // Apps are forked only once the supervisor has put this process in
    // the pod's cgroup: they run there from their first instruction.
    let wait_placed = move || {
        let mut byte = [0u8; 1];
        match File::from(placed).read(&mut byte) {
            Ok(1) => Ok(()),
            _ => Err("the pod's cgroup could not be set up".to_string()),
        }
    };
    // A PID written to cgroup.procs is read in the writer's PID namespace:
    // the init's, in which `pid` is given.
    let place = |app: &skiff_pods::App, pid: nix::unistd::Pid| {
        let Some((_, files)) = app_procs.iter().find(|(n, _)| *n == app.name) else { return Ok(()) };
        for mut f in files {
            f.write_all(pid.to_string().as_bytes())
                .map_err(|e| format!("cannot put app {} in its cgroup: {e}", app.name))?;
        }
        Ok(())
    };
    skiff_stage2::init::run(manifest, reporter, console, &net.state, handover, wait_placed, place)
}

fn reader_gone(reporter: &Reporter) -> bool {
    let mut fds = [PollFd::new(reporter.as_fd(), PollFlags::POLLOUT)];
    match nix::poll::poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0].revents().is_some_and(|r| r.contains(PollFlags::POLLERR)),
        Err(_) => true,
    }
}

#[derive(Clone, Copy)]
enum Source {
    Signals,
    Reports,
    Notify,
    Log(usize),
    Console(console::Source),
}

struct Supervisor {
    init: Pid,
    recorder: Recorder,
    escalation: Escalation,
    readiness: Readiness,
    /// The apps' output, with the `file` log driver.
    capture: Option<Capture>,
}

impl Supervisor {
    /// Forwards signals, records reports and relays the pod's terminal
    /// until the init has exited.
    fn wait(&mut self, sfd: &SignalFd, mut reports: File, mut relay: Option<&mut Relay>) -> Result<WaitStatus, String> {
        let mut pipe_open = true;
        loop {
            let ready: Vec<Source> = {
                let input = PollFlags::POLLIN;
                let mut sources = vec![(Source::Signals, sfd.as_fd(), input)];
                if pipe_open {
                    sources.push((Source::Reports, reports.as_fd(), input));
                }
                if let Some(fd) = self.readiness.relay_fd() {
                    sources.push((Source::Notify, fd, input));
                }
                if let Some(c) = &self.capture {
                    sources.extend(c.fds().into_iter().map(|(i, fd, flags)| (Source::Log(i), fd, flags)));
                }
                if let Some(r) = &relay {
                    sources.extend(r.sources().into_iter().map(|(s, fd)| (Source::Console(s), fd, input)));
                }
                let mut fds: Vec<PollFd> = sources.iter().map(|(_, fd, flags)| PollFd::new(*fd, *flags)).collect();
                match nix::poll::poll(&mut fds, self.escalation.poll_timeout()) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(format!("poll: {e}")),
                }
                if self.escalation.due() {
                    // SIGKILL to the PID namespace's init ends the pod.
                    let _ = nix::sys::signal::kill(self.init, Signal::SIGKILL);
                }
                sources
                    .iter()
                    .zip(&fds)
                    .filter(|(_, f)| f.revents().is_some_and(|r| !r.is_empty()))
                    .map(|((s, _, _), _)| *s)
                    .collect()
            };
            for source in ready {
                match source {
                    Source::Reports => pipe_open = self.read_reports(&mut reports),
                    Source::Notify => self.readiness.forward(),
                    Source::Log(i) => {
                        if let Some(c) = &mut self.capture {
                            c.handle(i);
                        }
                    }
                    Source::Console(c) => {
                        if let Some(r) = relay.as_deref_mut() {
                            r.handle(c)?;
                        }
                    }
                    Source::Signals => {
                        if let Some(status) = self.handle_signal(sfd, relay.as_deref())? {
                            // The init is gone, so every write end is closed:
                            // read whatever it reported and wrote last.
                            while pipe_open {
                                pipe_open = self.read_reports(&mut reports);
                            }
                            if let Some(r) = relay.as_deref_mut() {
                                r.drain();
                            }
                            if let Some(c) = &mut self.capture {
                                c.drain();
                            }
                            return Ok(status);
                        }
                    }
                }
            }
        }
    }

    fn handle_signal(&mut self, sfd: &SignalFd, relay: Option<&Relay>) -> Result<Option<WaitStatus>, String> {
        let Ok(Some(info)) = sfd.read_signal() else {
            return Ok(None);
        };
        let sig = Signal::try_from(info.ssi_signo as i32).map_err(|e| format!("signal: {e}"))?;
        if sig == Signal::SIGWINCH {
            if let Some(r) = relay {
                r.resize();
            }
            return Ok(None);
        }
        if sig != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(self.init, sig);
            self.escalation.saw(sig);
            return Ok(None);
        }
        match waitpid(self.init, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => Ok(None),
            Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => Ok(Some(s)),
            Ok(_) => Ok(None),
            Err(e) => Err(format!("waiting for the pod's init: {e}")),
        }
    }

    fn read_reports(&mut self, reports: &mut File) -> bool {
        self.recorder.read(reports)
    }
}
