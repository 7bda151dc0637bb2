//! The flavor's side of the report pipe of stage2's init: records each
//! app's exit in `apps/<name>/exit.json` (relative to the pod lock) and
//! prints setup errors, as the ABI asks of every flavor.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::poll::PollFlags;

use nix::sys::signal::Signal;
use skiff_pods::app_status::{self, AppExit};
use skiff_pods::layout::{PID_FILE, READY_FILE, RELEASED_FILE};
use skiff_pods::{atomic, time};
use skiff_stage2::report::{self, Report};

use crate::notify::Notifier;
use crate::supervise::{Source, Token};
use skiff_rt::error::Result;

pub struct Recorder {
    /// The pod lock: exit files are written relative to it.
    pub lock: OwnedFd,
    pub started_at: String,
    buf: Vec<u8>,
    /// The apps that SIGKILL ended.
    pub killed_apps: Vec<String>,
    /// Whether any report arrived (the init is up).
    pub heard: bool,
    /// Apps not reported started yet; `ready` is written when none is left.
    to_start: usize,
    /// The pod's apps whose exit has not been reported (yet).
    running: Vec<String>,
    /// How many times each app was started (more than once: restarted by
    /// its restart policy).
    starts: std::collections::HashMap<String, u32>,
    /// Told `READY=1` then (`NOTIFY_SOCKET`, unless the apps notify).
    pub notify: Option<Notifier>,
}

/// Records that the flavor's run freed everything it held outside the pod
/// directory (`released`, docs/stage1-abi.md): gc needs no `gc` call. The
/// `pid` file, of no use once the pod is over, is renamed to it: a new
/// file is a new inode, which on an aged filesystem costs as much as a
/// millisecond.
pub fn mark_released(lock: &OwnedFd) {
    let renamed = rustix::fs::renameat(lock, PID_FILE, lock, RELEASED_FILE);
    if let Err(e) = renamed.map_err(std::io::Error::from).or_else(|_| atomic::replace_at(lock, RELEASED_FILE, b"")) {
        eprintln!("skiff: cannot record that the pod released its resources: {e}");
    }
}

/// Records that every app has started: `ready`, and `READY=1` to systemd.
pub fn mark_ready(lock: &OwnedFd, notify: Option<&Notifier>) {
    let now = format!("{}\n", time::now_rfc3339());
    if let Err(e) = atomic::replace_at(lock, READY_FILE, now.as_bytes()) {
        eprintln!("skiff: cannot record that the pod is ready: {e}");
    }
    if let Some(n) = notify {
        if let Err(e) = n.send("READY=1") {
            eprintln!("skiff: {e}");
        }
    }
}

/// The init's report pipe, read by the supervise loop into a [`Recorder`]
/// until the init (the pipe's last writer) is gone.
pub struct ReportPipe {
    pub recorder: Recorder,
    pipe: File,
    open: bool,
}

impl ReportPipe {
    pub fn new(recorder: Recorder, pipe: File) -> ReportPipe {
        ReportPipe { recorder, pipe, open: true }
    }
}

impl Source for ReportPipe {
    fn fds(&self) -> Vec<(Token, BorrowedFd<'_>, PollFlags)> {
        if self.open {
            vec![(0, self.pipe.as_fd(), PollFlags::POLLIN)]
        } else {
            Vec::new()
        }
    }

    fn ready(&mut self, _token: Token) -> Result<()> {
        self.open = self.recorder.read(&mut self.pipe);
        Ok(())
    }

    /// The init is gone, so every write end is closed: what it reported
    /// last.
    fn drain(&mut self) {
        while self.open {
            self.open = self.recorder.read(&mut self.pipe);
        }
    }
}

impl Recorder {
    /// For a pod of the apps `apps` (their names).
    pub fn new(lock: OwnedFd, started_at: String, apps: Vec<String>) -> Recorder {
        Recorder {
            lock,
            started_at,
            buf: Vec::new(),
            killed_apps: Vec::new(),
            heard: false,
            to_start: apps.len(),
            running: apps,
            starts: Default::default(),
            notify: None,
        }
    }

    /// The pod's init died of `signal` (`stop --force`, the stop timeout's
    /// SIGKILL) before it could report every app's end: each app it did
    /// not report ended with it, by the same signal, and is recorded so
    /// (`status` shows the app's 128+N, as `run` exits with it).
    pub fn record_unreported(&mut self, signal: i32) {
        for app in std::mem::take(&mut self.running) {
            self.record(Report::Exited { app, exit_code: 128 + signal, signal: Some(signal) });
        }
    }

    /// Reads what is available; false once the pipe is closed.
    fn read(&mut self, reports: &mut File) -> bool {
        let mut chunk = [0u8; 4096];
        let n = match reports.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        self.heard = true;
        self.buf.extend_from_slice(&chunk[..n]);
        for r in report::drain_lines(&mut self.buf) {
            self.record(r);
        }
        true
    }

    fn record(&mut self, r: Report) {
        match r {
            Report::Error(msg) => eprintln!("skiff: {msg}"),
            Report::Started { app, .. } => {
                let starts = self.starts.entry(app.clone()).or_insert(0);
                *starts += 1;
                if *starts > 1 {
                    if let Err(e) = app_status::write_restart_at(&self.lock, &app, *starts - 1) {
                        eprintln!("skiff: cannot record the restart of app {app}: {e}");
                    }
                    if !self.running.contains(&app) {
                        self.running.push(app);
                    }
                    return;
                }
                self.to_start = self.to_start.saturating_sub(1);
                if self.to_start == 0 {
                    mark_ready(&self.lock, self.notify.as_ref());
                }
            }
            Report::Exited { app, exit_code, signal } => {
                self.running.retain(|a| *a != app);
                if signal == Some(Signal::SIGKILL as i32) {
                    self.killed_apps.push(app.clone());
                }
                let exit = AppExit {
                    exit_code,
                    signal,
                    started_at: Some(self.started_at.clone()),
                    exited_at: time::now_rfc3339(),
                };
                if let Err(e) = app_status::write_exit_at(&self.lock, &app, &exit) {
                    eprintln!("skiff: cannot record the exit status of app {app}: {e}");
                }
            }
        }
    }
}
