//! The init's watch over the apps it started: reaps them (and every orphan
//! that ends up its child), reports their exits, starts them again as
//! their restart policy says (Kubernetes' back-off), forwards termination
//! signals, and applies the pod's exit policy.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use skiff_pods::manifest::ExitPolicy;
use skiff_pods::{App, PodManifest};
use skiff_rt::error::Result;
use skiff_rt::exit_code::SIGNAL_BASE;

use crate::report::{Report, Reporter};
use crate::seccomp::Compiled;

/// Kubernetes' back-off between restarts: 10 s, doubled each time, at most
/// 5 minutes, back to 10 s after a run of 10 minutes.
const BACKOFF_FIRST: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(600);

/// One app under watch: running, or waiting to be started again.
pub struct Slot<'a> {
    pub app: &'a App,
    /// The pod's first app (socket-activation descriptors go to it).
    pub first: bool,
    pub filter: Option<Compiled>,
    pid: Option<Pid>,
    restart_at: Option<Instant>,
    backoff: Duration,
    since: Instant,
    /// The status of its last run, while it waits to run again.
    last_exit: i32,
}

impl<'a> Slot<'a> {
    /// An app just started as `pid`.
    pub fn started(app: &'a App, first: bool, filter: Option<Compiled>, pid: Pid) -> Slot<'a> {
        Slot {
            app,
            first,
            filter,
            pid: Some(pid),
            restart_at: None,
            backoff: BACKOFF_FIRST,
            since: Instant::now(),
            last_exit: 0,
        }
    }

    fn live(&self) -> bool {
        self.pid.is_some() || self.restart_at.is_some()
    }
}

/// Starts an app again (as the init started it first, without a terminal).
pub type Restart<'s, 'a> = dyn FnMut(&Slot<'a>, &mut Reporter) -> Result<Pid> + 's;

pub struct Supervision<'a> {
    slots: Vec<Slot<'a>>,
    policy: ExitPolicy,
    /// Between the policy's SIGTERM and SIGKILL.
    stop_timeout: Duration,
    /// The pod's status: the first app that failed on its own.
    pub status: Option<i32>,
    /// Set once the policy stopped the pod: when SIGKILL follows SIGTERM.
    kill_at: Option<Instant>,
    killed: bool,
    /// A termination signal came: no app is started again.
    stopping: bool,
    /// A pod sandbox: it runs, with or without apps, until it is stopped.
    sandbox: bool,
}

impl<'a> Supervision<'a> {
    pub fn new(slots: Vec<Slot<'a>>, m: &PodManifest) -> Supervision<'a> {
        let (policy, stop_timeout) = (m.exit_policy, m.stop_timeout());
        Supervision {
            slots,
            policy,
            stop_timeout,
            status: None,
            kill_at: None,
            killed: false,
            stopping: false,
            sandbox: m.sandbox,
        }
    }

    /// Watches until no app runs or waits to run again (a sandbox: until
    /// it is stopped, too); the pod's status.
    pub fn run(mut self, sfd: &SignalFd, reporter: &mut Reporter, restart: &mut Restart<'_, 'a>) -> i32 {
        loop {
            self.restart_due(reporter, restart);
            if !self.slots.iter().any(Slot::live) && (self.stopping || !self.sandbox) {
                return self.status.unwrap_or(0);
            }
            let mut fds = [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, self.timeout()) {
                Ok(0) => {
                    if !self.killed && self.kill_at.is_some_and(|at| Instant::now() >= at) {
                        self.signal_all(Signal::SIGKILL);
                        self.killed = true;
                    }
                    continue;
                }
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return crate::init::fail(reporter, &format!("poll: {e}")),
            }
            let sig = match sfd.read_signal() {
                Ok(Some(info)) => info.ssi_signo as i32,
                Ok(None) | Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return crate::init::fail(reporter, &format!("reading signals: {e}")),
            };
            if sig == Signal::SIGCHLD as i32 {
                self.reap(reporter);
            } else if let Ok(s) = Signal::try_from(sig) {
                // The pod is being stopped: what waits to restart stays
                // down.
                self.stopping = true;
                self.cancel_restarts();
                self.signal_all(s);
            }
        }
    }

    /// Until the next thing to do without a signal: SIGKILL after the
    /// stop timeout, or a restart.
    fn timeout(&self) -> PollTimeout {
        let kill = self.kill_at.filter(|_| !self.killed);
        let next = self.slots.iter().filter_map(|s| s.restart_at).chain(kill).min();
        match next {
            None => PollTimeout::NONE,
            Some(at) => {
                let ms = at.saturating_duration_since(Instant::now()).as_millis();
                PollTimeout::from(u16::try_from(ms).unwrap_or(u16::MAX))
            }
        }
    }

    fn restart_due(&mut self, reporter: &mut Reporter, restart: &mut Restart<'_, 'a>) {
        let now = Instant::now();
        for i in 0..self.slots.len() {
            if self.slots[i].restart_at.is_none_or(|at| at > now) {
                continue;
            }
            self.slots[i].restart_at = None;
            match restart(&self.slots[i], reporter) {
                Ok(pid) => {
                    self.slots[i].pid = Some(pid);
                    self.slots[i].since = Instant::now();
                }
                Err(e) => {
                    let _ =
                        reporter.send(&Report::Error(format!("cannot restart app {}: {e}", self.slots[i].app.name)));
                    self.status.get_or_insert(skiff_rt::exit_code::SKIFF_ERROR);
                    self.stop_all();
                }
            }
        }
    }

    fn signal_all(&self, sig: Signal) {
        for pid in self.slots.iter().filter_map(|s| s.pid) {
            let _ = kill(pid, sig);
        }
    }

    /// What waits to run again stays down; its last run's failure is the
    /// pod's, as if it had not been restarted.
    fn cancel_restarts(&mut self) {
        for slot in &mut self.slots {
            if slot.restart_at.take().is_some() && slot.last_exit != 0 {
                self.status.get_or_insert(slot.last_exit);
            }
        }
    }

    pub fn stop_all(&mut self) {
        self.cancel_restarts();
        if self.kill_at.is_none() {
            self.kill_at = Some(Instant::now() + self.stop_timeout);
            self.signal_all(Signal::SIGTERM);
        }
    }

    /// Reaps every exited child; reports the apps' exits, schedules the
    /// restarts their policies ask for, and applies the exit policy to the
    /// others.
    fn reap(&mut self, reporter: &mut Reporter) {
        loop {
            let (pid, exit_code, signal) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, code, None),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, SIGNAL_BASE + sig as i32, Some(sig as i32)),
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            };
            let Some(slot) = self.slots.iter_mut().find(|s| s.pid == Some(pid)) else { continue };
            slot.pid = None;
            let _ = reporter.send(&Report::Exited { app: slot.app.name.clone(), exit_code, signal });
            if self.kill_at.is_some() {
                continue; // stopped by the policy: not a failure of its own
            }
            slot.last_exit = exit_code;
            if !self.stopping && slot.app.restart.restarts(exit_code) {
                if slot.since.elapsed() >= BACKOFF_RESET_AFTER {
                    slot.backoff = BACKOFF_FIRST;
                }
                slot.restart_at = Some(Instant::now() + slot.backoff);
                slot.backoff = (slot.backoff * 2).min(BACKOFF_MAX);
                continue;
            }
            if exit_code != 0 {
                self.status.get_or_insert(exit_code);
            }
            if exit_code != 0 || self.policy == ExitPolicy::Any {
                self.stop_all();
            }
        }
    }
}
