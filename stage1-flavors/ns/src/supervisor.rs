//! The flavor's outer process: the one stage0 exec'ed into, which the shell
//! or systemd supervises. It holds the pod lock, starts the pod's init in
//! new namespaces, forwards signals to it, records what the init reports,
//! and exits with the app's status.

use std::fs::File;
use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Pid};
use skiff_pods::cgroup::{size_text, CgroupError, Join, PodCgroup};
use skiff_pods::layout::{PID_FILE, STARTED_FILE};
use skiff_pods::manifest::Net;
use skiff_pods::{atomic, time, PodManifest};
use skiff_rt::activation::Activation;
use skiff_rt::exit_code::SKIFF_ERROR;
use skiff_stage1::entry::{RunPod, Stdio};
use skiff_stage1::escalation::Escalation;
use skiff_stage1::logs::Capture;
use skiff_stage1::network::{Home, PodNetwork};
use skiff_stage1::notify::Readiness;
use skiff_stage1::recorder::{Recorder, ReportPipe};
use skiff_stage1::supervise::{self, Supervise};
use skiff_stage2::handover::Handover;
use skiff_stage2::report::{Report, Reporter};
use skiff_stage2::terminal::Console;

use crate::app_api::AppApi;
use crate::console::Relay;
use crate::rootfs;
use skiff_rt::error::{Context, Error, Result};

pub fn run(pod: RunPod, stdio: Stdio, debug: bool) -> Result<i32> {
    let RunPod { manifest, dir, lock, notify_app } = pod;
    let (manifest, pod_dir) = (&manifest, dir.as_path());
    let activation = Activation::inherited();
    skiff_stage1::fds::close_on_exec_all(activation.as_ref().map_or(0..0, Activation::fds))?;
    if stdio != Stdio::Inherit && manifest.apps.len() > 1 {
        return Err(Error::refused(format!(
            "a terminal needs a pod of one app, pod {} has {}",
            manifest.uuid,
            manifest.apps.len()
        )));
    }
    let (mut readiness, manifest) = Readiness::new(manifest, pod_dir, notify_app)?;
    let manifest = &manifest;
    let plan = rootfs::Plan::new(manifest, pod_dir)?;
    // A terminal's output is the terminal's (stage0 gives such pods no log).
    let (mut capture, outputs) = match Capture::new(manifest, pod_dir)?.filter(|_| stdio == Stdio::Inherit) {
        Some((c, o)) => (Some(c), o),
        None => (None, Vec::new()),
    };
    let handover = Handover { activation, outputs };
    // From here on, whatever ends the run removes the cgroups and detaches
    // the network: the guards' drops (the network first).
    let mut cgroups = Cgroups::create(manifest).map_err(Error::other)?;
    skiff_rt::failpoint!("ns.cgroups").context("failpoint")?;
    let Namespaces { userns, network, netns } = Namespaces::create(manifest, pod_dir, &lock)?;
    skiff_rt::failpoint!("ns.network").context("failpoint")?;
    let mut mask = skiff_stage2::init::supervised_signals();
    let (mut relay, console) = terminal(stdio, &mut mask)?;
    mask.thread_block().context("cannot block signals")?;
    // Only children of this process enter the new PID namespace: the init
    // forked below becomes its PID 1, this supervisor stays on the host.
    nix::sched::unshare(CloneFlags::CLONE_NEWPID).context("cannot create a PID namespace")?;
    let net_state = network.as_ref().map(|n| n.state().clone()).unwrap_or_default();
    let setup = InitSetup {
        plan: &plan,
        manifest,
        net: PodNet { netns, state: net_state.clone() },
        userns,
        handover: &handover,
        cgroup: &cgroups.pod.for_init(manifest.cgroup_leaves()).open_join().map_err(Error::other)?,
        app_cgroups: &cgroups.app_joins,
        console,
    };
    let (init, reports, lock) = fork_init(setup, lock, &mut relay)?;
    // The apps' ends of their log pipes, and their cgroups' files, are the
    // init's now.
    drop(handover);
    cgroups.app_joins.clear();
    let started_at = record_init(init, &lock)?;
    if let Err(e) = skiff_rt::failpoint!("ns.init") {
        let _ = nix::sys::signal::kill(init, Signal::SIGKILL);
        let _ = waitpid(init, None);
        return Err(e).context("failpoint");
    }
    // A sandbox takes apps while it runs; they log through the same capture.
    let mut api = match manifest.sandbox {
        true => {
            let lock = lock.try_clone().context("cannot share the pod lock")?;
            Some(AppApi::new((manifest.cgroup(), pod_dir), lock, init, net_state, capture.take())?)
        }
        false => None,
    };
    if debug {
        eprintln!("skiff: stage1 ns: pod {} init is pid {init}", manifest.uuid);
    }
    let mut recorder = Recorder::new(lock, started_at, manifest.apps.iter().map(|a| a.name.clone()).collect());
    recorder.notify = readiness.ready_to.clone();
    // A sandbox without apps is ready once its init runs.
    if manifest.apps.is_empty() {
        skiff_stage1::recorder::mark_ready(&recorder.lock, recorder.notify.as_ref());
    }
    let mut reports = ReportPipe::new(recorder, reports);
    // Signals go to the init, which passes them on to the apps; SIGKILL to
    // a PID namespace's init ends the pod.
    let to_init = || init;
    let sup = Supervise { child: init, forward_to: &to_init, escalation: Escalation::new(manifest.stop_timeout()) };
    let status = sup.run(&mask, &mut [&mut reports, &mut readiness, &mut capture, &mut api, &mut relay])?;
    // The apps added to it are gone with the pod: their exits are recorded.
    if let Some(a) = &mut api {
        a.finish();
    }
    drop(api);
    if let WaitStatus::Signaled(_, sig, _) = status {
        reports.recorder.record_unreported(sig as i32);
    }
    say_out_of_memory(manifest, &cgroups.pod, &reports.recorder.killed_apps);
    release(cgroups, network, &reports.recorder.lock);
    Ok(supervise::exit_of(status).0)
}

/// Every process of the pod is gone with its init: removes its cgroups and
/// detaches its network, and marks the pod released if both went (what
/// cannot be removed now is removed by gc).
fn release(mut cgroups: Cgroups, network: Option<PodNetwork>, lock: &OwnedFd) {
    if let Err(e) = skiff_rt::failpoint!("ns.release") {
        // As if it could release nothing: gc's flavor gc does it all.
        eprintln!("skiff: stage1 ns: cannot release the pod: failpoint: {e}");
        return;
    }
    let mut released = cgroups.remove();
    if let Some(n) = network {
        if let Err(e) = n.detach() {
            eprintln!("skiff: {e}");
            released = false;
        }
    }
    if released {
        skiff_stage1::recorder::mark_released(lock);
    }
}

/// The namespaces made before the PID namespace, by helper children: the
/// pod's user namespace (if any) and its network namespace, with the CNI
/// networks attached to it.
struct Namespaces {
    userns: Option<OwnedFd>,
    network: Option<PodNetwork>,
    netns: Option<OwnedFd>,
}

impl Namespaces {
    fn create(manifest: &PodManifest, pod_dir: &std::path::Path, lock: &OwnedFd) -> Result<Namespaces> {
        // The pod's network namespace is owned by its user namespace, if it
        // has one: its root may then bind low ports in it.
        let (userns, made_netns) = match &manifest.user_namespace {
            Some(ns) => {
                let (u, n) = skiff_stage1::userns::create(ns, manifest.net != Net::Host)?;
                (Some(u), n)
            }
            None => (None, None),
        };
        let (network, netns) = match manifest.net {
            Net::Cni => match skiff_stage1::network::attach(manifest, pod_dir, lock, Home::Pid, made_netns)? {
                Some((n, fd)) => (Some(n), Some(fd)),
                None => (None, None),
            },
            _ => (None, made_netns),
        };
        Ok(Namespaces { userns, network, netns })
    }
}

/// With a terminal (`--tty`, `--interactive`): the supervisor's relay, the
/// init's side of it, and SIGWINCH among the signals the supervisor reads
/// (without one, a resize of the caller's terminal is not the pod's
/// business).
fn terminal(stdio: Stdio, mask: &mut SigSet) -> Result<(Option<Relay>, Option<Console>)> {
    Ok(match stdio {
        Stdio::Inherit => (None, None),
        Stdio::Tty | Stdio::Interactive => {
            mask.add(Signal::SIGWINCH);
            let (r, c) = Relay::new(stdio == Stdio::Interactive)?;
            (Some(r), Some(c))
        }
    })
}

/// Records the init's pid and start time (killing it if that fails); the
/// start time.
fn record_init(init: Pid, lock: &OwnedFd) -> Result<String> {
    let started_at = time::now_rfc3339();
    let recorded = atomic::replace_at(lock, PID_FILE, format!("{init}\n").as_bytes())
        .and_then(|()| atomic::replace_at(lock, STARTED_FILE, format!("{started_at}\n").as_bytes()));
    if let Err(e) = recorded {
        let _ = nix::sys::signal::kill(init, Signal::SIGKILL);
        let _ = waitpid(init, None);
        return Err(e).context("cannot record the pod's pid");
    }
    Ok(started_at)
}

/// For each app SIGKILL ended while its cgroup counted an OOM kill: that
/// it went over its memory limit, as the user wrote it.
fn say_out_of_memory(manifest: &PodManifest, pod: &PodCgroup, killed: &[String]) {
    for name in killed {
        let Some(app) = manifest.apps.iter().find(|a| &a.name == name) else { continue };
        if pod.for_app(manifest.cgroup_leaves(), name).oom_kills() > 0 {
            let limit = app
                .resources
                .memory_bytes
                .map_or("its memory limit".to_string(), |b| format!("its memory limit (--memory {})", size_text(b)));
            eprintln!("skiff: app {name} was killed by the kernel's OOM killer: it exceeded {limit}");
        }
    }
}

/// The pod's cgroups, made and limited before the init exists, and
/// removed when dropped (once the pod's processes are gone, or on an error
/// before any ran).
struct Cgroups {
    pod: PodCgroup,
    removed: bool,
    /// Per app, its own cgroup, opened for the init to place the app
    /// there (empty in a pod of one app, whose process inherits the init's
    /// cgroup).
    app_joins: Vec<(String, Join)>,
}

impl Cgroups {
    fn create(manifest: &PodManifest) -> Result<Cgroups, CgroupError> {
        let leaves = manifest.cgroup_leaves();
        let mut cgroups = Cgroups { pod: manifest.cgroup(), removed: false, app_joins: Vec::new() };
        cgroups.pod.create()?;
        // A pod of one app is its own leaf: init and app share its cgroup.
        if leaves {
            cgroups.pod.for_init(leaves).create()?;
        }
        for app in &manifest.apps {
            let cg = cgroups.pod.for_app(leaves, &app.name);
            if leaves {
                cg.create()?;
            }
            cg.apply(&app.resources)?;
            if leaves {
                cgroups.app_joins.push((app.name.clone(), cg.open_join()?));
            }
        }
        Ok(cgroups)
    }

    /// Removes them now (the pod's processes are gone); whether it could.
    fn remove(&mut self) -> bool {
        self.removed = self.pod.remove().is_ok();
        self.removed
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        if !self.removed {
            let _ = self.pod.remove();
        }
    }
}

/// The pod's own network, for its init: the namespace to join and what
/// its CNI networks gave the pod.
struct PodNet {
    netns: Option<OwnedFd>,
    state: skiff_pods::netstate::NetState,
}

/// What the pod's init is started with.
struct InitSetup<'a> {
    plan: &'a rootfs::Plan,
    manifest: &'a PodManifest,
    net: PodNet,
    handover: &'a Handover,
    /// The cgroup the init joins (see [`fork_init`]).
    cgroup: &'a Join,
    app_cgroups: &'a [(String, Join)],
    console: Option<Console>,
    /// The pod's own user namespace, if it has one.
    userns: Option<OwnedFd>,
}

/// Forks the pod's init into the new PID namespace, and into its cgroup:
/// born there in the v2 hierarchy, it moves itself in the v1 ones (see
/// [`Join`]). Returns its pid, the read end of its report pipe, and the
/// pod lock, which the init does not keep.
fn fork_init(setup: InitSetup, lock: OwnedFd, relay: &mut Option<Relay>) -> Result<(Pid, File, OwnedFd)> {
    let (report_r, report_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe")?;
    let forked = match setup.cgroup.v2_dir() {
        // SAFETY: this process is single-threaded, and the child is the
        // first process of the PID namespace made for it.
        Some(dir) => unsafe { skiff_rt::fork::fork_into_cgroup(dir) },
        // SAFETY: this process is single-threaded, so the child may run any code.
        None => unsafe { nix::unistd::fork() },
    };
    match forked {
        Ok(ForkResult::Child) => {
            drop(report_r);
            drop(lock);
            // The supervisor's relay: its drop would restore the caller's
            // terminal while the pod runs.
            std::mem::forget(relay.take());
            std::process::exit(pod_init(setup, report_w));
        }
        Ok(ForkResult::Parent { child }) => Ok((child, File::from(report_r), lock)),
        Err(e) => Err(e).context("cannot fork the pod's init into its cgroup"),
    }
}

/// Runs in the forked child: becomes the pod's PID 1.
fn pod_init(setup: InitSetup, report_w: OwnedFd) -> i32 {
    skiff_stage2::init::name_process();
    let mut reporter = Reporter::new(report_w);
    // First, while it is single-threaded and sees the host's cgroups.
    if let Err(e) = setup.cgroup.enter_v1() {
        let _ = reporter.send(&Report::Error(e.to_string()));
        return SKIFF_ERROR;
    }
    // The pod must never outlive its supervisor: if it dies (even by
    // SIGKILL) the init gets SIGKILL, and with it every process in the pod.
    // The supervisor may have died before the death signal was armed. Its
    // PID is not visible from the new PID namespace, but it is the only
    // reader of the report pipe, whose write end reports POLLERR once the
    // reader is gone.
    if !dies_with_supervisor(&reporter) {
        return SKIFF_ERROR;
    }
    let InitSetup { plan, manifest, net, handover, cgroup: _, app_cgroups, console, userns } = setup;
    let joins_userns = userns.is_some();
    if let Err(msg) = rootfs::enter(plan, manifest, &net.state, net.netns, userns) {
        let _ = reporter.send(&Report::Error(msg.to_string()));
        return SKIFF_ERROR;
    }
    // Becoming the root of the pod's user namespace changed this process's
    // credentials, which disarms the death signal: armed again.
    if joins_userns && !dies_with_supervisor(&reporter) {
        return SKIFF_ERROR;
    }
    skiff_stage2::init::run(manifest, reporter, console, &net.state, handover, app_cgroups, plan.init_root)
}

/// Arms SIGKILL for when the supervisor dies; false if it could not, or
/// if the supervisor is gone already.
fn dies_with_supervisor(reporter: &Reporter) -> bool {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_ok() && !reader_gone(reporter)
}

fn reader_gone(reporter: &Reporter) -> bool {
    let mut fds = [PollFd::new(reporter.as_fd(), PollFlags::POLLOUT)];
    match nix::poll::poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0].revents().is_some_and(|r| r.contains(PollFlags::POLLERR)),
        Err(_) => true,
    }
}
