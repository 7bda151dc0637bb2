//! Socket activation (`sd_listen_fds(3)`): the descriptors 3, 4, … that
//! systemd (or `systemd-socket-activate`) passed to skiff with `LISTEN_FDS`,
//! passed on to the pod's first app at the same numbers, with `LISTEN_PID`
//! set to the app's own PID (as the app sees it, inside the pod).

use std::ops::Range;
use std::os::fd::BorrowedFd;

use nix::fcntl::{FcntlArg, FdFlag};

/// `SD_LISTEN_FDS_START`.
pub const FIRST_FD: i32 = 3;

/// The variables of the protocol, which no app inherits otherwise.
pub const VARIABLES: [&str; 3] = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activation {
    pub count: i32,
    pub names: Option<String>,
}

impl Activation {
    /// What the environment gives process `pid`: only descriptors meant
    /// for it (`LISTEN_PID` is its PID), as `sd_listen_fds` decides.
    pub fn from_env(get: impl Fn(&str) -> Option<String>, pid: u32) -> Option<Activation> {
        if get("LISTEN_PID")?.trim().parse::<u32>().ok()? != pid {
            return None;
        }
        let count = get("LISTEN_FDS")?.trim().parse::<i32>().ok().filter(|n| (1..=1024).contains(n))?;
        Some(Activation { count, names: get("LISTEN_FDNAMES") })
    }

    /// What this process was given.
    pub fn inherited() -> Option<Activation> {
        Activation::from_env(|k| std::env::var(k).ok(), std::process::id())
    }

    pub fn fds(&self) -> Range<i32> {
        FIRST_FD..FIRST_FD + self.count
    }

    /// The app's `LISTEN_*` variables; `pid` is its PID as it sees it.
    pub fn env(&self, pid: i32) -> Vec<String> {
        let mut env = vec![format!("LISTEN_FDS={}", self.count), format!("LISTEN_PID={pid}")];
        if let Some(n) = &self.names {
            env.push(format!("LISTEN_FDNAMES={n}"));
        }
        env
    }

    /// In an app that does not get them: closed when it execs.
    pub fn withhold(&self) {
        for fd in self.fds() {
            // SAFETY: the descriptors were passed to this process by its
            // caller for the pod; the borrow lasts one fcntl call, which
            // fails harmlessly (EBADF) for one that is not open.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            let _ = nix::fcntl::fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn only_descriptors_meant_for_this_process() {
        let a = Activation::from_env(env(&[("LISTEN_PID", "42"), ("LISTEN_FDS", "2"), ("LISTEN_FDNAMES", "a:b")]), 42);
        let a = a.unwrap();
        assert_eq!(a.fds(), 3..5);
        assert_eq!(a.env(7), ["LISTEN_FDS=2", "LISTEN_PID=7", "LISTEN_FDNAMES=a:b"]);
        for bad in [
            &[("LISTEN_PID", "41"), ("LISTEN_FDS", "2")][..],
            &[("LISTEN_FDS", "2")],
            &[("LISTEN_PID", "42"), ("LISTEN_FDS", "0")],
            &[("LISTEN_PID", "42"), ("LISTEN_FDS", "-1")],
            &[("LISTEN_PID", "42"), ("LISTEN_FDS", "99999")],
            &[("LISTEN_PID", "x"), ("LISTEN_FDS", "1")],
        ] {
            assert_eq!(Activation::from_env(env(bad), 42), None, "{bad:?}");
        }
    }
}
