//! A SIGTERM to the flavor process (what systemd's `KillMode=mixed` sends
//! the unit's main process, or `kill` from a shell) stops the pod
//! gracefully: the flavor passes it on to the apps and, if the pod has not
//! ended once the pod's stop timeout has passed, kills it.

use std::time::{Duration, Instant};

use nix::poll::PollTimeout;
use nix::sys::signal::Signal;

pub struct Escalation {
    timeout: Duration,
    kill_at: Option<Instant>,
}

impl Escalation {
    pub fn new(timeout: Duration) -> Escalation {
        Escalation { timeout, kill_at: None }
    }

    /// Notes a signal the flavor received (and passed on).
    pub fn saw(&mut self, sig: Signal) {
        if sig == Signal::SIGTERM && self.kill_at.is_none() {
            self.kill_at = Some(Instant::now() + self.timeout);
        }
    }

    /// How long the flavor's poll may block.
    pub fn poll_timeout(&self) -> PollTimeout {
        match self.kill_at {
            None => PollTimeout::NONE,
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now()).as_millis().saturating_add(1);
                PollTimeout::try_from(left.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
            }
        }
    }

    /// True once, when the pod is due to be killed.
    pub fn due(&mut self) -> bool {
        match self.kill_at {
            Some(at) if Instant::now() >= at => {
                self.kill_at = None;
                self.timeout = Duration::MAX;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sigterm_starts_the_clock_and_it_fires_once() {
        let mut e = Escalation::new(Duration::ZERO);
        assert_eq!(e.poll_timeout(), PollTimeout::NONE);
        e.saw(Signal::SIGINT);
        assert!(!e.due(), "not for SIGINT");
        e.saw(Signal::SIGTERM);
        assert!(e.due());
        assert!(!e.due(), "once");
        let mut e = Escalation::new(Duration::from_secs(60));
        e.saw(Signal::SIGTERM);
        assert!(!e.due());
        assert!(e.poll_timeout() > PollTimeout::ZERO && e.poll_timeout() != PollTimeout::NONE);
    }
}
