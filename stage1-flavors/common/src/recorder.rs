//! The flavor's side of the report pipe of stage2's init: records each
//! app's exit in `apps/<name>/exit.json` (relative to the pod lock) and
//! prints setup errors, as the ABI asks of every flavor.

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;

use nix::sys::signal::Signal;
use skiff_pods::app_status::{self, AppExit};
use skiff_pods::time;
use skiff_stage2::report::{self, Report};

pub struct Recorder {
    /// The pod lock: exit files are written relative to it.
    pub lock: OwnedFd,
    pub started_at: String,
    buf: Vec<u8>,
    /// The apps that SIGKILL ended.
    pub killed_apps: Vec<String>,
    /// Whether any report arrived (the init is up).
    pub heard: bool,
}

impl Recorder {
    pub fn new(lock: OwnedFd, started_at: String) -> Recorder {
        Recorder { lock, started_at, buf: Vec::new(), killed_apps: Vec::new(), heard: false }
    }

    /// Reads what is available; false once the pipe is closed.
    pub fn read(&mut self, reports: &mut File) -> bool {
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
            Report::Started { .. } => {}
            Report::Exited { app, exit_code, signal } => {
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
