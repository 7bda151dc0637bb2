//! What the pod's init tells its stage1 flavor, one line per event over a
//! pipe. Lines are shorter than `PIPE_BUF`, so each write is atomic.

use std::io::{self, Write};
use std::os::fd::OwnedFd;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Report {
    /// Setting up the pod failed before any app ran.
    Error(String),
    /// An app's process was started (`pid` as seen inside the pod).
    Started { app: String, pid: i32 },
    /// An app ended; `signal` is set when a signal killed it.
    Exited { app: String, exit_code: i32, signal: Option<i32> },
}

impl Report {
    pub fn to_line(&self) -> String {
        match self {
            Report::Error(msg) => format!("error {}\n", msg.replace('\n', " ")),
            Report::Started { app, pid } => format!("started {app} {pid}\n"),
            Report::Exited { app, exit_code, signal } => {
                format!("exited {app} {exit_code} {}\n", signal.unwrap_or(0))
            }
        }
    }

    pub fn parse(line: &str) -> Option<Report> {
        let (kind, rest) = line.split_once(' ')?;
        match kind {
            "error" => Some(Report::Error(rest.to_string())),
            "started" => {
                let (app, pid) = rest.split_once(' ')?;
                Some(Report::Started { app: app.into(), pid: pid.parse().ok()? })
            }
            "exited" => {
                let mut it = rest.split(' ');
                let app = it.next()?.to_string();
                let exit_code = it.next()?.parse().ok()?;
                let sig: i32 = it.next()?.parse().ok()?;
                Some(Report::Exited { app, exit_code, signal: (sig != 0).then_some(sig) })
            }
            _ => None,
        }
    }
}

/// The write end, held by the pod's init.
pub struct Reporter {
    pipe: std::fs::File,
}

impl Reporter {
    pub fn new(fd: OwnedFd) -> Reporter {
        Reporter { pipe: std::fs::File::from(fd) }
    }

    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.pipe.as_fd()
    }

    pub fn send(&mut self, r: &Report) -> io::Result<()> {
        self.pipe.write_all(r.to_line().as_bytes())
    }
}

/// Splits buffered pipe input into complete reports; keeps a partial tail.
pub fn drain_lines(buf: &mut Vec<u8>) -> Vec<Report> {
    let mut out = Vec::new();
    while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = buf.drain(..=pos).collect();
        if let Some(r) = Report::parse(String::from_utf8_lossy(&line[..line.len() - 1]).as_ref()) {
            out.push(r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_through_lines() {
        let all = [
            Report::Error("mount failed: no such file\nsecond line".into()),
            Report::Started { app: "web".into(), pid: 2 },
            Report::Exited { app: "web".into(), exit_code: 137, signal: Some(9) },
            Report::Exited { app: "web".into(), exit_code: 3, signal: None },
        ];
        let mut buf: Vec<u8> = all.iter().flat_map(|r| r.to_line().into_bytes()).collect();
        buf.extend_from_slice(b"exited par");
        let got = drain_lines(&mut buf);
        assert_eq!(got[0], Report::Error("mount failed: no such file second line".into()));
        assert_eq!(&got[1..], &all[1..]);
        assert_eq!(buf, b"exited par");
    }

    #[test]
    fn garbage_lines_are_ignored() {
        for l in ["", "exited", "exited a b c", "started x", "bogus 1"] {
            assert_eq!(Report::parse(l), None, "{l}");
        }
    }
}
