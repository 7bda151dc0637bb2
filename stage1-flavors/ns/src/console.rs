//! The supervisor's side of a pod's terminal (`run --tty` / `--interactive`):
//! relays the pod's pseudo-terminal to the caller's stdout and, when
//! interactive, the caller's stdin to it; puts the caller's terminal in raw
//! mode (so keys such as ^C reach the app's terminal, which turns them into
//! signals) and restores it, whatever the end; passes window size changes on.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use rustix::termios::{OptionalActions, Termios};
use skiff_rt::error::{Context, Result};
use skiff_stage1::supervise::{Source, Token};
use skiff_stage2::terminal::{self, Console};

/// End-of-file for the pod's terminal (^D), sent when a non-terminal stdin
/// ends.
const EOF_CHAR: u8 = 0x04;

/// The relay's descriptors, as [`Source`] tokens.
const SOCKET: Token = 0;
const MASTER: Token = 1;
const STDIN: Token = 2;

pub struct Relay {
    socket: Option<OwnedFd>,
    master: Option<File>,
    forward_stdin: bool,
    /// The caller's terminal settings, restored on drop.
    saved: Option<Termios>,
}

impl Relay {
    /// Before the init is forked: the socket pair (the init gets the
    /// returned [`Console`]) and the caller's window size.
    pub fn new(interactive: bool) -> Result<(Relay, Console)> {
        let (ours, theirs) =
            rustix::net::socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)
                .context("socketpair")?;
        let size = rustix::termios::tcgetwinsize(std::io::stdin())
            .or_else(|_| rustix::termios::tcgetwinsize(std::io::stdout()))
            .ok();
        let mut relay = Relay { socket: Some(ours), master: None, forward_stdin: interactive, saved: None };
        if interactive && rustix::termios::isatty(std::io::stdin()) {
            let saved = rustix::termios::tcgetattr(std::io::stdin()).context("tcgetattr")?;
            let mut raw = saved.clone();
            raw.make_raw();
            rustix::termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &raw)
                .context("cannot put the terminal in raw mode")?;
            relay.saved = Some(saved);
        }
        Ok((relay, Console { socket: theirs, size }))
    }

    /// One read from the pod's terminal to stdout; false once it is over.
    fn copy_out(&mut self) -> bool {
        let Some(m) = &mut self.master else { return false };
        let mut buf = [0u8; 8192];
        match m.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                let mut out = std::io::stdout().lock();
                // A caller that closed its stdout only loses the output.
                let _ = out.write_all(&buf[..n]).and_then(|()| out.flush());
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => true,
            // EIO: the pod's last process holding the terminal is gone.
            Err(_) => false,
        }
    }

    fn copy_in(&mut self) {
        let Some(m) = &mut self.master else { return };
        let mut buf = [0u8; 8192];
        match std::io::stdin().lock().read(&mut buf) {
            Ok(0) | Err(_) => {
                self.forward_stdin = false;
                let _ = m.write_all(&[EOF_CHAR]);
            }
            Ok(n) => {
                let _ = m.write_all(&buf[..n]);
            }
        }
    }

    /// SIGWINCH: the caller's terminal changed size.
    fn resize(&self) {
        let Some(m) = &self.master else { return };
        let size = rustix::termios::tcgetwinsize(std::io::stdin())
            .or_else(|_| rustix::termios::tcgetwinsize(std::io::stdout()));
        if let Ok(ws) = size {
            let _ = rustix::termios::tcsetwinsize(m, ws);
        }
    }

    /// After the pod is over: what the app wrote last.
    fn drain_output(&mut self) {
        while let Some(m) = &self.master {
            let mut fds = [PollFd::new(m.as_fd(), PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, PollTimeout::ZERO) {
                Ok(n) if n > 0 => {}
                _ => return,
            }
            if !self.copy_out() {
                self.master = None;
            }
        }
    }
}

/// The socket the init sends the terminal's master over, then the master
/// and (with `--interactive`) the caller's stdin.
impl Source for Relay {
    fn fds(&self) -> Vec<(Token, BorrowedFd<'_>, PollFlags)> {
        let mut out = Vec::new();
        if let Some(s) = &self.socket {
            out.push((SOCKET, s.as_fd(), PollFlags::POLLIN));
        }
        if let Some(m) = &self.master {
            out.push((MASTER, m.as_fd(), PollFlags::POLLIN));
            if self.forward_stdin {
                out.push((STDIN, rustix::stdio::stdin(), PollFlags::POLLIN));
            }
        }
        out
    }

    fn ready(&mut self, token: Token) -> Result<()> {
        match token {
            SOCKET => {
                if let Some(s) = self.socket.take() {
                    self.master = terminal::receive_master(&s)?.map(File::from);
                }
            }
            MASTER => {
                if !self.copy_out() {
                    self.master = None;
                }
            }
            _ => self.copy_in(),
        }
        Ok(())
    }

    fn drain(&mut self) {
        self.drain_output();
    }

    fn signal(&mut self, sig: Signal) -> bool {
        if sig == Signal::SIGWINCH {
            self.resize();
        }
        sig == Signal::SIGWINCH
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = rustix::termios::tcsetattr(std::io::stdin(), OptionalActions::Now, t);
        }
    }
}
