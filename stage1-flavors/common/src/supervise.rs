//! The supervise loop of every flavor: until the process it watches (the
//! pod's init, the app, systemd-nspawn) has exited, it forwards the
//! signals the flavor gets, kills the pod once a SIGTERM's stop timeout has
//! passed ([`Escalation`]), and serves the descriptors of its [`Source`]s
//! (the init's report pipe, the log pipes, the notify relay, a terminal).
//! Once the process has exited, each source reads what was left.
//! (Every pod of the end-to-end tests runs through it: a unit test would
//! need SIGCHLD blocked in every thread of the test harness.)

use std::os::fd::{AsFd, BorrowedFd};

use nix::poll::{PollFd, PollFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use skiff_rt::exit_code::{SIGNAL_BASE, SKIFF_ERROR};

use crate::escalation::Escalation;
use skiff_rt::error::{Context, Result};

/// Which of its descriptors a source is asked to serve.
pub type Token = usize;

/// Descriptors the supervisor serves beside its signals.
pub trait Source {
    /// What to poll now, each with a token [`Source::ready`] gets back.
    fn fds(&self) -> Vec<(Token, BorrowedFd<'_>, PollFlags)>;
    /// The descriptor of `token` is ready.
    fn ready(&mut self, token: Token) -> Result<()>;
    /// The watched process has exited: serve what is left.
    fn drain(&mut self) {}
    /// A SIGCHLD came: a source with children of its own reaps those that
    /// ended (by their PIDs; the supervised child is the loop's).
    fn reap(&mut self) {}
    /// A signal for this source rather than for the pod (SIGWINCH for a
    /// terminal); true if it took it.
    fn signal(&mut self, _sig: Signal) -> bool {
        false
    }
}

/// An optional source (the log capture of a pod without logs).
impl<S: Source> Source for Option<S> {
    fn fds(&self) -> Vec<(Token, BorrowedFd<'_>, PollFlags)> {
        self.as_ref().map(S::fds).unwrap_or_default()
    }

    fn ready(&mut self, token: Token) -> Result<()> {
        self.as_mut().map_or(Ok(()), |s| s.ready(token))
    }

    fn drain(&mut self) {
        if let Some(s) = self {
            s.drain();
        }
    }

    fn reap(&mut self) {
        if let Some(s) = self {
            s.reap();
        }
    }

    fn signal(&mut self, sig: Signal) -> bool {
        self.as_mut().is_some_and(|s| s.signal(sig))
    }
}

/// What the loop watches and where signals go.
pub struct Supervise<'a> {
    /// The process whose end ends the loop; SIGKILLed when a stop times out.
    pub child: Pid,
    /// Where a signal the flavor gets is passed on now (nspawn: nspawn
    /// itself until the container's init is known).
    pub forward_to: &'a dyn Fn() -> Pid,
    pub escalation: Escalation,
}

impl Supervise<'_> {
    /// Runs until `child` has exited; its status. `mask` is the set of
    /// signals the flavor has blocked to read them here.
    pub fn run(mut self, mask: &SigSet, sources: &mut [&mut dyn Source]) -> Result<WaitStatus> {
        let sfd = SignalFd::with_flags(mask, SfdFlags::SFD_CLOEXEC).context("signalfd")?;
        loop {
            let (signalled, ready) = poll(&sfd, sources, &self.escalation)?;
            if self.escalation.due() {
                let _ = nix::sys::signal::kill(self.child, Signal::SIGKILL);
            }
            for (i, token) in ready {
                sources[i].ready(token)?;
            }
            if !signalled {
                continue;
            }
            let sig = match sfd.read_signal() {
                Ok(Some(info)) => Signal::try_from(info.ssi_signo as i32).ok(),
                Ok(None) | Err(nix::errno::Errno::EINTR) => None,
                Err(e) => return Err(e).context("reading signals"),
            };
            match sig {
                None => {}
                Some(Signal::SIGCHLD) => {
                    for s in sources.iter_mut() {
                        s.reap();
                    }
                    match waitpid(self.child, Some(WaitPidFlag::WNOHANG)) {
                        Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                            for s in sources.iter_mut() {
                                s.drain();
                            }
                            return Ok(status);
                        }
                        Ok(_) => {}
                        Err(e) => return Err(e).with_context(|| format!("waiting for pid {}", self.child)),
                    }
                }
                Some(sig) if sources.iter_mut().any(|s| s.signal(sig)) => {}
                Some(sig) => {
                    let _ = nix::sys::signal::kill((self.forward_to)(), sig);
                    self.escalation.saw(sig);
                }
            }
        }
    }
}

/// The exit code and signal of a process [`Supervise::run`] saw end, as
/// skiff reports an app's: its status, or 128+N for signal N.
pub fn exit_of(status: WaitStatus) -> (i32, Option<i32>) {
    match status {
        WaitStatus::Exited(_, code) => (code, None),
        WaitStatus::Signaled(_, sig, _) => (SIGNAL_BASE + sig as i32, Some(sig as i32)),
        _ => (SKIFF_ERROR, None),
    }
}

/// One poll: whether a signal is waiting, and which sources' tokens are
/// ready (by the source's index).
fn poll(sfd: &SignalFd, sources: &[&mut dyn Source], escalation: &Escalation) -> Result<(bool, Vec<(usize, Token)>)> {
    let mut owners = Vec::new();
    let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
    for (i, s) in sources.iter().enumerate() {
        for (token, fd, flags) in s.fds() {
            owners.push((i, token));
            fds.push(PollFd::new(fd, flags));
        }
    }
    match nix::poll::poll(&mut fds, escalation.poll_timeout()) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => {}
        Err(e) => return Err(e).context("poll"),
    }
    let is_ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
    let ready = owners.into_iter().zip(&fds[1..]).filter(|(_, f)| is_ready(f)).map(|(o, _)| o).collect();
    Ok((is_ready(&fds[0]), ready))
}
