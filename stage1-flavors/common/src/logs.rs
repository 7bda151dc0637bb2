//! `log.driver = file`: each app's stdout and stderr are pipes to the
//! flavor, which copies what arrives to its own stdout and stderr (the
//! caller's, so a terminal or journald still gets it) and appends it, as
//! records, to the app's log in the pod directory, rotated at `max_size`
//! (skiff_pods::logfile).
//!
//! The flavor never blocks on the caller's stdout or stderr: it writes them
//! only when poll says they take at least `PIPE_BUF` bytes, and at most that
//! much at once; while more than [`MAX_PENDING`] bytes wait, it stops
//! reading the apps' pipes, so an app whose output is not read blocks, as it
//! would writing to the caller directly, and the flavor still handles
//! signals.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::poll::PollFlags;
use skiff_pods::logfile::{self, LogConfig, LogDriver, Record, Stream};
use skiff_pods::manifest::App;
use skiff_pods::{time, PodManifest};
use skiff_stage2::handover::AppOutput;

use crate::supervise::{Source, Token};
use skiff_rt::error::{Context, Result};

/// A line longer than this is logged in parts (as partial records).
const MAX_LINE: usize = 16384;

/// Bytes waiting for the caller's stdout or stderr before the apps' pipes
/// are left unread.
pub const MAX_PENDING: usize = 1 << 20;

/// What poll guarantees a pipe that says POLLOUT takes without blocking.
const PIPE_BUF: usize = 4096;

/// One log file with its rotation.
struct Writer {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    config: LogConfig,
}

impl Writer {
    fn append(&mut self, bytes: &[u8]) {
        if self.size > 0 && self.size + bytes.len() as u64 > self.config.max_size {
            self.rotate();
        }
        if self.file.is_none() {
            self.file = OpenOptions::new().create(true).append(true).open(&self.path).ok();
            self.size = self.file.as_ref().and_then(|f| f.metadata().ok()).map_or(0, |m| m.len());
        }
        if let Some(f) = &mut self.file {
            if f.write_all(bytes).is_ok() {
                self.size += bytes.len() as u64;
            }
        }
    }

    /// log.(n-1) → log.n … log → log.1; the oldest beyond `max_files` goes.
    fn rotate(&mut self) {
        self.file = None;
        self.size = 0;
        let keep = self.config.max_files.max(1);
        let name = |i: u32| if i == 0 { self.path.clone() } else { logfile::rotated(&self.path, i) };
        let _ = std::fs::remove_file(name(keep - 1));
        for i in (0..keep - 1).rev() {
            let _ = std::fs::rename(name(i), name(i + 1));
        }
    }
}

struct Pipe {
    read: File,
    stream: Stream,
    buf: Vec<u8>,
    open: bool,
    /// Index of the app's writer.
    app: usize,
}

/// Every app's output pipes, read by the flavor.
pub struct Capture {
    pipes: Vec<Pipe>,
    writers: Vec<Writer>,
    /// What waits for the caller's stdout and stderr.
    pending: [Vec<u8>; 2],
}

/// The flavor's own stdout (1) or stderr (2).
fn std_fd(fd: i32) -> BorrowedFd<'static> {
    // SAFETY: stdout and stderr are open for the flavor's whole life (stage0
    // hands it the caller's; nothing in the flavor closes them).
    unsafe { BorrowedFd::borrow_raw(fd) }
}

fn slot(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

impl Capture {
    /// The pipes for a manifest whose log driver is `file` (None for `none`),
    /// and their write ends for the apps.
    pub fn new(m: &PodManifest, pod_dir: &std::path::Path) -> Result<Option<(Capture, Vec<AppOutput>)>> {
        if m.log.driver != LogDriver::File {
            return Ok(None);
        }
        let mut cap = Capture { pipes: Vec::new(), writers: Vec::new(), pending: [Vec::new(), Vec::new()] };
        let outputs = m.apps.iter().map(|app| cap.add_app(app, pod_dir, &m.log)).collect::<Result<_>>()?;
        Ok(Some((cap, outputs)))
    }

    /// Pipes for one more app, logged to its log (in `pod_dir` unless it
    /// has a `log_path`) with `config`; their write ends for the app.
    pub fn add_app(&mut self, app: &App, pod_dir: &std::path::Path, config: &LogConfig) -> Result<AppOutput> {
        let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).context("cannot make a log pipe");
        let ((out_r, out_w), (err_r, err_w)) = (pipe()?, pipe()?);
        let index = self.writers.len();
        for (read, stream) in [(out_r, Stream::Stdout), (err_r, Stream::Stderr)] {
            self.pipes.push(Pipe { read: File::from(read), stream, buf: Vec::new(), open: true, app: index });
        }
        let path = logfile::current(pod_dir, app);
        self.writers.push(Writer { path, file: None, size: 0, config: config.clone() });
        Ok(AppOutput { app: app.name.clone(), stdout: out_w, stderr: err_w })
    }

    /// What the flavor's poll loop waits for, by index (for [`Self::handle`]):
    /// the apps' pipes to read while little output waits, and the caller's
    /// stdout and stderr to write while some does.
    fn poll_fds(&self) -> Vec<(usize, BorrowedFd<'_>, PollFlags)> {
        let backlog = self.pending.iter().map(Vec::len).sum::<usize>() >= MAX_PENDING;
        let mut out: Vec<(usize, BorrowedFd<'_>, PollFlags)> = Vec::new();
        if !backlog {
            let open = self.pipes.iter().enumerate().filter(|(_, p)| p.open);
            out.extend(open.map(|(i, p)| (i, p.read.as_fd(), PollFlags::POLLIN)));
        }
        let n = self.pipes.len();
        if !self.pending[0].is_empty() {
            out.push((n, std_fd(1), PollFlags::POLLOUT));
        }
        if !self.pending[1].is_empty() {
            out.push((n + 1, std_fd(2), PollFlags::POLLOUT));
        }
        out
    }

    /// Does what index `i` of [`Self::poll_fds`] was ready for.
    fn handle(&mut self, i: usize) {
        let n = self.pipes.len();
        if i >= n {
            self.flush_some(i - n);
            return;
        }
        let mut chunk = [0u8; 16384];
        let p = &mut self.pipes[i];
        match p.read.read(&mut chunk) {
            Err(e) if matches!(e.kind(), std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock) => {}
            Ok(0) | Err(_) => {
                p.open = false;
                self.write(i, &[], true);
            }
            Ok(n) => self.write(i, &chunk[..n], false),
        }
    }

    /// At most PIPE_BUF bytes of what waits for the caller's stdout (0) or
    /// stderr (1), which poll said takes them. A caller's stream that is
    /// gone (EPIPE) gets nothing more.
    fn flush_some(&mut self, which: usize) {
        let pending = &mut self.pending[which];
        let n = pending.len().min(PIPE_BUF);
        match nix::unistd::write(std_fd(1 + which as i32), &pending[..n]) {
            Ok(w) => {
                pending.drain(..w);
            }
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
            Err(_) => pending.clear(),
        }
    }

    /// Queues `data` for the flavor's own stream and logs whole lines (and,
    /// with `flush`, what is left).
    fn write(&mut self, i: usize, data: &[u8], flush: bool) {
        let p = &mut self.pipes[i];
        self.pending[slot(p.stream)].extend_from_slice(data);
        p.buf.extend_from_slice(data);
        let now = time::now_rfc3339();
        let mut records: Vec<Record> = logfile::split(&mut p.buf, p.stream, &now, flush);
        // What is left is the start of a line: logged in parts when long.
        if p.buf.len() > MAX_LINE {
            records.extend(logfile::split(&mut p.buf, p.stream, &now, true));
        }
        let w = &mut self.writers[p.app];
        for r in records {
            w.append(&r.to_bytes());
        }
    }

    /// Once the pod is over: what is left in the pipes, without waiting for
    /// writers that may outlive the apps (a fly app's background process).
    fn drain_pipes(&mut self) {
        for i in 0..self.pipes.len() {
            if !self.pipes[i].open {
                continue;
            }
            let _ = nix::fcntl::fcntl(&self.pipes[i].read, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
            let mut chunk = [0u8; 16384];
            loop {
                match self.pipes[i].read.read(&mut chunk) {
                    Ok(n) if n > 0 => self.write(i, &chunk[..n], false),
                    _ => break,
                }
            }
            self.pipes[i].open = false;
            self.write(i, &[], true);
        }
        // The pod is over: what waits for the caller is written, waiting
        // for the caller to take it like any program's output.
        let _ = std::io::stdout().write_all(&std::mem::take(&mut self.pending[0]));
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().write_all(&std::mem::take(&mut self.pending[1]));
    }
}

impl Source for Capture {
    fn fds(&self) -> Vec<(Token, BorrowedFd<'_>, PollFlags)> {
        self.poll_fds()
    }

    fn ready(&mut self, token: Token) -> Result<()> {
        self.handle(token);
        Ok(())
    }

    fn drain(&mut self) {
        self.drain_pipes();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_long_unfinished_lines_are_logged_in_parts() {
        let d = tempfile::tempdir().unwrap();
        let (read, _write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let config = LogConfig { driver: LogDriver::File, max_size: 1 << 20, max_files: 1 };
        let pipe = Pipe { read: File::from(read), stream: Stream::Stdout, buf: Vec::new(), open: true, app: 0 };
        let writer = Writer { path: d.path().join("log"), file: None, size: 0, config };
        let mut cap = Capture { pipes: vec![pipe], writers: vec![writer], pending: [Vec::new(), Vec::new()] };
        // A chunk of many lines with the start of the next one: whole lines only.
        let mut chunk = "line\n".repeat(4000).into_bytes();
        chunk.extend_from_slice(b"unfinished");
        cap.write(0, &chunk, false);
        let log = std::fs::read_to_string(d.path().join("log")).unwrap();
        assert_eq!((log.lines().count(), log.contains(" P ")), (4000, false));
        // A line longer than MAX_LINE is logged before its end comes.
        cap.write(0, &vec![b'x'; MAX_LINE + 1], false);
        let log = std::fs::read_to_string(d.path().join("log")).unwrap();
        assert!(log.lines().last().unwrap().contains(" stdout P unfinishedxxx"), "a partial record");
        assert_eq!(cap.pending[0].len(), chunk.len() + MAX_LINE + 1, "all of it is still for the caller");
    }

    #[test]
    fn rotation_keeps_the_cap() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("log");
        let config = LogConfig { driver: LogDriver::File, max_size: 100, max_files: 3 };
        let mut w = Writer { path: path.clone(), file: None, size: 0, config };
        for i in 0..50 {
            w.append(format!("record {i:03} ........................\n").as_bytes());
        }
        let sizes: Vec<u64> =
            ["log", "log.1", "log.2"].iter().map(|f| std::fs::metadata(d.path().join(f)).unwrap().len()).collect();
        assert!(sizes.iter().all(|&s| s <= 100), "{sizes:?}");
        assert!(!d.path().join("log.3").exists());
        let newest = std::fs::read_to_string(&path).unwrap();
        assert!(newest.ends_with("record 049 ........................\n"), "{newest}");
        let oldest = std::fs::read_to_string(d.path().join("log.2")).unwrap();
        assert!(oldest.starts_with("record 04"), "only the newest records are kept: {oldest}");
    }
}
