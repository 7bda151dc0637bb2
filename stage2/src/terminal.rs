//! The app's pseudo-terminal, when the pod runs with one (`skiff run -t`
//! or `-i`). It comes from the app's own devpts instance, so inside the pod
//! it is `/dev/pts/N` like any terminal (`tty`, `ttyname(3)` work); the init
//! opens the master side and hands it to the flavor over a unix socket, and
//! the app becomes the session leader with the slave as its controlling
//! terminal and stdio.

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use rustix::fs::{Mode, OFlags};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage};
use rustix::pty::OpenptFlags;
use rustix::termios::Winsize;
use skiff_pods::App;

use crate::app_root::InitRoot;
use skiff_rt::error::{Context, Error, Result};

/// What the flavor gives the init when the pod has a terminal.
pub struct Console {
    /// The init's end of a unix socket pair: the master goes there.
    pub socket: OwnedFd,
    /// The caller's window size, set before the app starts.
    pub size: Option<Winsize>,
}

/// The master side, opened by the init in the app's devpts instance.
pub struct Master {
    fd: OwnedFd,
    /// The slave's path inside the app's root.
    slave: PathBuf,
    /// The init's own handle on the slave: with no slave open, the master
    /// reads as hung up, which the flavor would take for the end; the init
    /// holds one until the pod is over.
    hold: OwnedFd,
}

impl Master {
    /// Runs in the init, whose root is `root`.
    pub fn open(app: &App, size: Option<Winsize>, root: InitRoot) -> Result<Master> {
        let ptmx = root.of_app(app).join("dev/pts/ptmx");
        let err = |what: &str, e: rustix::io::Errno| format!("app {}: cannot {what} a terminal: {e}", app.name);
        let fd = rustix::fs::open(&ptmx, OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| err("allocate", e))?;
        rustix::pty::unlockpt(&fd).map_err(|e| err("unlock", e))?;
        let name = rustix::pty::ptsname(&fd, Vec::new()).map_err(|e| err("name", e))?;
        if let Some(ws) = size {
            rustix::termios::tcsetwinsize(&fd, ws).map_err(|e| err("size", e))?;
        }
        let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
        let hold = rustix::pty::ioctl_tiocgptpeer(&fd, flags).map_err(|e| err("open", e))?;
        Ok(Master { fd, slave: PathBuf::from(name.to_string_lossy().into_owned()), hold })
    }

    /// In the app process, inside its root: a session of its own with the
    /// slave as controlling terminal and as stdin, stdout and stderr.
    pub fn attach_slave(&self) -> Result<()> {
        let err = |what: &str, e: rustix::io::Errno| Error::Failed {
            what: format!("cannot {what} the terminal {}", self.slave.display()),
            source: Box::new(e),
        };
        rustix::process::setsid().map_err(|e| err("start a session for", e))?;
        let slave =
            rustix::fs::open(&self.slave, OFlags::RDWR | OFlags::NOCTTY, Mode::empty()).map_err(|e| err("open", e))?;
        rustix::process::ioctl_tiocsctty(&slave).map_err(|e| err("take", e))?;
        rustix::stdio::dup2_stdin(&slave).map_err(|e| err("use", e))?;
        rustix::stdio::dup2_stdout(&slave).map_err(|e| err("use", e))?;
        rustix::stdio::dup2_stderr(&slave).map_err(|e| err("use", e))
    }

    /// Hands the master to the flavor; the init keeps no copy of it, so
    /// the master reads EOF once the pod is gone. Returns the init's hold on
    /// the slave, to keep until then.
    pub fn send(self, socket: &OwnedFd) -> Result<OwnedFd> {
        let fds = [self.fd.as_fd()];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        control.push(SendAncillaryMessage::ScmRights(&fds));
        rustix::net::sendmsg(socket, &[IoSlice::new(b"m")], &mut control, rustix::net::SendFlags::empty())
            .context("cannot pass the terminal to the flavor")?;
        Ok(self.hold)
    }
}

/// The flavor's side of [`Master::send`]: the master, once it arrived.
pub fn receive_master(socket: &OwnedFd) -> Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    rustix::net::recvmsg(socket, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)
        .context("cannot receive the pod's terminal")?;
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
            return Ok(fds.next());
        }
    }
    Ok(None)
}
