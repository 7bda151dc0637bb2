//! Readiness for systemd (`sd_notify(3)`): with `NOTIFY_SOCKET` set, the
//! flavor says `READY=1` once every app has started, or, with `run
//! --notify-app`, relays what the apps themselves send: a socket of its own
//! (`notify` in the pod directory) is bound into every app's root at
//! [`APP_SOCKET`], and each message goes on to systemd with `MAINPID` set to
//! the flavor's PID (systemd's main process; an app's PID means nothing to
//! systemd, and systemd by default listens to the main process only).

use std::borrow::Cow;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};

use skiff_pods::manifest::{Mount, MountSource};
use skiff_pods::PodManifest;

use crate::supervise::{Source, Token};
use skiff_rt::error::{Context, Result};

/// Where apps find the relay (their `NOTIFY_SOCKET`).
pub const APP_SOCKET: &str = "/run/skiff/notify";

/// The relay's name in the pod directory.
const RELAY_FILE: &str = "notify";

/// systemd's socket, from `NOTIFY_SOCKET` (a path, or `@name` for an
/// abstract one).
#[derive(Clone, Debug)]
pub struct Notifier {
    target: String,
}

impl Notifier {
    pub fn from_env() -> Option<Notifier> {
        std::env::var("NOTIFY_SOCKET").ok().filter(|t| !t.is_empty()).map(|target| Notifier { target })
    }

    fn addr(&self) -> std::io::Result<SocketAddr> {
        match self.target.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
            None => SocketAddr::from_pathname(&self.target),
        }
    }

    pub fn send(&self, msg: &str) -> Result<()> {
        let sock = UnixDatagram::unbound().context("notify socket")?;
        let addr = self.addr().with_context(|| format!("NOTIFY_SOCKET {}", self.target))?;
        sock.send_to_addr(msg.as_bytes(), &addr).with_context(|| format!("cannot notify {}", self.target))?;
        Ok(())
    }
}

/// An app's message as systemd gets it: its lines, but `MAINPID` the
/// flavor's.
pub fn rewrite(msg: &str, main_pid: u32) -> String {
    let mut out: Vec<&str> = msg.lines().filter(|l| !l.starts_with("MAINPID=") && !l.is_empty()).collect();
    let main = format!("MAINPID={main_pid}");
    out.push(&main);
    out.join("\n")
}

/// The apps' end of `--notify-app`.
pub struct AppRelay {
    sock: UnixDatagram,
    path: PathBuf,
}

impl AppRelay {
    /// Binds the relay in the pod directory `pod_dir`.
    pub fn bind(pod_dir: &Path) -> Result<AppRelay> {
        let path = pod_dir.join(RELAY_FILE);
        let _ = std::fs::remove_file(&path);
        // Relative to the pod directory (the cwd): a store path may be
        // longer than a socket address holds.
        let sock = match std::env::current_dir() {
            Ok(cwd) if cwd == pod_dir => UnixDatagram::bind(RELAY_FILE),
            _ => UnixDatagram::bind(&path),
        }
        .context("cannot make the apps' notify socket")?;
        // Any app user may notify, as with systemd's own socket (0777): an
        // app not run as root, or as the root of a user namespace of the
        // pod's own (a host uid of its range), could not connect to 0755.
        // The pod directory keeps it from other host users.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .context("cannot open the apps' notify socket to them")?;
        sock.set_nonblocking(true).context("notify socket")?;
        Ok(AppRelay { sock, path })
    }

    pub fn socket(&self) -> &UnixDatagram {
        &self.sock
    }

    /// The manifest the flavor runs: every app gets the relay bound at
    /// [`APP_SOCKET`] and `NOTIFY_SOCKET` pointing at it.
    pub fn for_apps(&self, m: &PodManifest) -> PodManifest {
        let mut m = m.clone();
        for app in &mut m.apps {
            app.mounts.push(Mount {
                source: MountSource::Host(self.path.clone()),
                target: APP_SOCKET.into(),
                read_only: false,
                idmap: false,
                sub_path: None,
                new_volume: None,
            });
            app.env.retain(|e| !e.starts_with("NOTIFY_SOCKET="));
            app.env.push(format!("NOTIFY_SOCKET={APP_SOCKET}"));
        }
        m
    }

    /// Passes on the messages waiting, at most 64 per call: an app that
    /// floods the socket must not keep the flavor from its other duties.
    pub fn forward(&self, to: &Notifier) {
        let mut buf = [0u8; 4096];
        for _ in 0..64 {
            let Ok(n) = self.sock.recv(&mut buf) else { break };
            let msg = String::from_utf8_lossy(&buf[..n]);
            if let Err(e) = to.send(&rewrite(&msg, std::process::id())) {
                eprintln!("skiff: {e}");
            }
        }
    }
}

/// What a flavor's `run` does about readiness.
#[derive(Default)]
pub struct Readiness {
    /// Told `READY=1` once every app has started.
    pub ready_to: Option<Notifier>,
    /// With `--notify-app`: the apps' socket and where their messages go.
    pub relay: Option<(AppRelay, Notifier)>,
}

impl Readiness {
    /// For pod `m` in `pod_dir`: also the manifest to run (the relay bound
    /// into every app with `--notify-app`). Without `NOTIFY_SOCKET` nothing
    /// is sent.
    pub fn new<'m>(m: &'m PodManifest, pod_dir: &Path, notify_app: bool) -> Result<(Readiness, Cow<'m, PodManifest>)> {
        let Some(to) = Notifier::from_env() else { return Ok((Readiness::default(), Cow::Borrowed(m))) };
        if !notify_app {
            return Ok((Readiness { ready_to: Some(to), relay: None }, Cow::Borrowed(m)));
        }
        let relay = AppRelay::bind(pod_dir)?;
        let m = relay.for_apps(m);
        Ok((Readiness { ready_to: None, relay: Some((relay, to)) }, Cow::Owned(m)))
    }
}

/// The relay's socket, for the flavor's poll loop, which passes on what
/// the apps sent.
impl Source for Readiness {
    fn fds(&self) -> Vec<(Token, std::os::fd::BorrowedFd<'_>, nix::poll::PollFlags)> {
        use std::os::fd::AsFd;
        self.relay.iter().map(|(r, _)| (0, r.socket().as_fd(), nix::poll::PollFlags::POLLIN)).collect()
    }

    fn ready(&mut self, _token: Token) -> Result<()> {
        if let Some((relay, to)) = &self.relay {
            relay.forward(to);
        }
        Ok(())
    }
}

impl Drop for AppRelay {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_pid_is_the_flavors() {
        assert_eq!(rewrite("READY=1\nMAINPID=7\nSTATUS=up\n", 42), "READY=1\nSTATUS=up\nMAINPID=42");
        assert_eq!(rewrite("", 42), "MAINPID=42");
    }

    #[test]
    fn messages_reach_the_socket() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("sd");
        let listener = UnixDatagram::bind(&path).unwrap();
        let n = Notifier { target: path.to_str().unwrap().into() };
        n.send("READY=1").unwrap();
        let mut buf = [0u8; 64];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
        assert!(Notifier { target: d.path().join("none").to_str().unwrap().into() }.send("x").is_err());
    }
}
