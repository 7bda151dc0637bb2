//! A pseudo-terminal for the test to play the user's terminal: the test
//! holds the master, skiff gets the slave as its controlling terminal.

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};
use rustix::termios::Winsize;

pub struct Pty {
    pub master: File,
    pub slave: File,
}

impl Pty {
    pub fn new(rows: u16, cols: u16) -> Pty {
        let master =
            rustix::pty::openpt(rustix::pty::OpenptFlags::RDWR | rustix::pty::OpenptFlags::NOCTTY).expect("openpt");
        rustix::pty::unlockpt(&master).expect("unlockpt");
        let name = rustix::pty::ptsname(&master, Vec::new()).expect("ptsname");
        let slave: OwnedFd =
            rustix::fs::open(name.as_c_str(), OFlags::RDWR | OFlags::NOCTTY, Mode::empty()).expect("open slave");
        let pty = Pty { master: File::from(master), slave: File::from(slave) };
        pty.resize(rows, cols);
        pty
    }

    pub fn resize(&self, rows: u16, cols: u16) {
        let ws = Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        rustix::termios::tcsetwinsize(&self.master, ws).expect("TIOCSWINSZ");
    }

    /// The terminal's local modes (shared by master and slave).
    pub fn local_modes(&self) -> rustix::termios::LocalModes {
        rustix::termios::tcgetattr(&self.slave).expect("tcgetattr").local_modes
    }

    /// Everything read from the master, as it comes, until the terminal
    /// is closed by its last user.
    pub fn reader(&self) -> Output {
        let mut m = self.master.try_clone().expect("dup master");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = m.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Output { rx, seen: String::new() }
    }
}

pub struct Output {
    rx: mpsc::Receiver<Vec<u8>>,
    pub seen: String,
}

impl Output {
    /// Waits up to `secs` for `needle` in what the terminal showed.
    pub fn wait_for(&mut self, needle: &str, secs: u64) -> bool {
        let end = Instant::now() + Duration::from_secs(secs);
        while !self.seen.contains(needle) {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(b) => self.seen.push_str(&String::from_utf8_lossy(&b)),
                Err(_) => return false,
            }
        }
        true
    }
}
