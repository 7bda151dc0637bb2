//! The app API of a running sandbox (feature `app-api`, docs/stage1-abi.md):
//! the supervisor listens on the pod directory's `control` socket and
//! starts the apps `skiff app add` put in the manifest. Each such app is a
//! child of the supervisor born in the pod's PID namespace: it joins its
//! cgroup and the pod's other namespaces, attaches its root (an overlay
//! made on the host side, where the store is in sight, as a detached
//! mount) at `/apps/<name>` of the pod's mount namespace, mounts its /proc,
//! /dev and /sys there, and becomes the app as the init's apps do. The
//! supervisor logs its output, reaps it and records its exit.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::PollFlags;
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};
use skiff_pods::app_api::{self, Reply, Request, CONTROL_SOCKET};
use skiff_pods::app_status::{self, AppExit};
use skiff_pods::cgroup::{Join, PodCgroup};
use skiff_pods::manifest::{Net, MANIFEST_FILE};
use skiff_pods::netstate::NetState;
use skiff_pods::{time, App, PodManifest};
use skiff_rt::error::{Context, Error, Result};
use skiff_rt::exit_code::{SIGNAL_BASE, SKIFF_ERROR};
use skiff_stage1::logs::Capture;
use skiff_stage1::supervise::{Source, Token};
use skiff_stage2::app::Prepared;
use skiff_stage2::handover::AppOutput;

/// An added app while it runs.
struct Running {
    pid: Pid,
    name: String,
    started_at: String,
    /// Set by a stop: when SIGKILL follows the SIGTERM.
    kill_at: Option<Instant>,
}

pub struct AppApi {
    /// The pod's cgroup, where each added app gets its own.
    cgroup: PodCgroup,
    listener: UnixListener,
    pod_dir: PathBuf,
    /// The pod lock (a duplicate): the directory the exits are written in.
    lock: OwnedFd,
    init: Pid,
    net: NetState,
    /// The pod's log capture, which added apps join.
    capture: Option<Capture>,
    running: Vec<Running>,
    /// Rings at the next stop's SIGKILL.
    timer: TimerFd,
}

impl AppApi {
    /// Listens on the pod directory's control socket (a stale one, from a
    /// run that was killed, is replaced).
    pub fn new(
        (cgroup, pod_dir): (PodCgroup, &Path),
        lock: OwnedFd,
        init: Pid,
        net: NetState,
        capture: Option<Capture>,
    ) -> Result<AppApi> {
        let path = pod_dir.join(CONTROL_SOCKET);
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).with_context(|| format!("cannot listen on {}", path.display()))?;
        listener.set_nonblocking(true).context("control socket")?;
        let timer = TimerFd::new(ClockId::CLOCK_MONOTONIC, TimerFlags::TFD_CLOEXEC | TimerFlags::TFD_NONBLOCK)
            .context("timerfd")?;
        let pod_dir = pod_dir.to_path_buf();
        Ok(AppApi { cgroup, listener, pod_dir, lock, init, net, capture, running: Vec::new(), timer })
    }

    fn serve(&mut self, conn: UnixStream) {
        let _ = conn.set_nonblocking(false);
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        let mut line = String::new();
        let reply = match BufReader::new(&conn).read_line(&mut line) {
            Err(e) => Reply { error: Some(format!("cannot read the request: {e}")), pid: None },
            Ok(_) => match app_api::from_line::<Request>(&line) {
                Err(e) => Reply { error: Some(format!("invalid request: {e}")), pid: None },
                Ok(Request::Start { app }) => match self.start(&app) {
                    Ok(pid) => Reply { error: None, pid: Some(pid.as_raw()) },
                    Err(e) => Reply { error: Some(e.to_string()), pid: None },
                },
                Ok(Request::Stop { app, timeout_ms }) => Reply {
                    error: self.stop(&app, Duration::from_millis(timeout_ms)).err().map(|e| e.to_string()),
                    pid: None,
                },
                Ok(Request::Remove { app }) => {
                    Reply { error: self.remove(&app).err().map(|e| e.to_string()), pid: None }
                }
            },
        };
        let _ = (&conn).write_all(app_api::to_line(&reply).as_bytes());
    }

    fn start(&mut self, name: &str) -> Result<Pid> {
        let path = self.pod_dir.join(MANIFEST_FILE);
        let data = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let manifest = PodManifest::from_json(&data).map_err(Error::other)?;
        let app = manifest
            .apps
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| Error::refused(format!("pod {} has no app {name:?}", manifest.uuid)))?;
        if self.running.iter().any(|r| r.name == name) {
            return Err(Error::refused(format!("app {name} is running")));
        }
        if app_status::read_exit(&self.lock, name).is_some() {
            return Err(Error::refused(format!("app {name} has run already: remove it and add it again")));
        }
        let root = skiff_stage1::overlay::detached(app, &self.pod_dir)?;
        let cgroup = self.cgroup.for_app(true, name);
        let started =
            cgroup.create().map_err(Error::other).and_then(|()| self.start_in(app, &manifest, &root, &cgroup));
        if started.is_err() {
            // A start that fails leaves nothing: the next one starts afresh.
            drop(root);
            let _ = cgroup.remove();
            skiff_stage1::overlay::reuse_work(&self.pod_dir.join("apps").join(name));
        }
        started
    }

    /// The rest of [`Self::start`], once the app's cgroup exists.
    fn start_in(&mut self, app: &App, manifest: &PodManifest, root: &OwnedFd, cgroup: &PodCgroup) -> Result<Pid> {
        let name = app.name.as_str();
        cgroup.apply(&app.resources).map_err(Error::other)?;
        skiff_rt::failpoint!("app.start").context("failpoint")?;
        let join = cgroup.open_join().map_err(Error::other)?;
        let output = match &mut self.capture {
            Some(c) => Some(c.add_app(app, &self.pod_dir, &manifest.log)?),
            None => None,
        };
        let open = |ns: &str| -> Result<OwnedFd> {
            File::open(format!("/proc/{}/ns/{ns}", self.init))
                .map(OwnedFd::from)
                .with_context(|| format!("cannot open the pod's {ns} namespace"))
        };
        let mut namespaces = vec![(open("ipc")?, CloneFlags::CLONE_NEWIPC), (open("uts")?, CloneFlags::CLONE_NEWUTS)];
        if manifest.net != Net::Host {
            namespaces.push((open("net")?, CloneFlags::CLONE_NEWNET));
        }
        namespaces.push((open("mnt")?, CloneFlags::CLONE_NEWNS));
        let (pod_pid, own_pid) = (open("pid")?, File::open("/proc/self/ns/pid").context("own PID namespace")?);
        let (report_r, report_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
        // Children are born in the pod's PID namespace, this process stays
        // where it is; its later children (none but apps) go back to its own.
        nix::sched::setns(&pod_pid, CloneFlags::CLONE_NEWPID).context("cannot join the pod's PID namespace")?;
        // SAFETY: the supervisor is single-threaded, so the child may run
        // any code.
        let forked = unsafe { nix::unistd::fork() };
        let back = nix::sched::setns(&own_pid, CloneFlags::CLONE_NEWPID);
        match forked {
            Ok(ForkResult::Child) => {
                drop(report_r);
                let child = Child { app, manifest, net: &self.net, pod_dir: &self.pod_dir };
                match child.become_app(root, &join, &namespaces, output.as_ref()) {
                    Ok(prepared) => prepared.exec(Some(&report_w)),
                    Err(e) => {
                        let _ = nix::unistd::write(&report_w, e.to_string().as_bytes());
                        std::process::exit(SKIFF_ERROR)
                    }
                }
            }
            Ok(ForkResult::Parent { child }) => {
                back.context("cannot leave the pod's PID namespace")?;
                drop(report_w);
                drop(output);
                let mut failure = Vec::new();
                let _ = File::from(report_r).read_to_end(&mut failure);
                if !failure.is_empty() {
                    let _ = waitpid(child, None);
                    // It may have attached its root before it failed.
                    let _ = self.detach_root(name);
                    return Err(Error::refused(if failure == b"x" {
                        format!("app {name} could not be executed (its log says why)")
                    } else {
                        format!("app {name}: {}", String::from_utf8_lossy(&failure))
                    }));
                }
                let started_at = time::now_rfc3339();
                let dir = self.pod_dir.join("apps").join(name);
                // It runs, recorded or not: it is watched either way.
                if let Err(e) = skiff_pods::atomic::write_atomic(&dir, app_api::STARTED_FILE, started_at.as_bytes()) {
                    eprintln!("skiff: cannot record the start of app {name}: {e}");
                }
                self.running.push(Running { pid: child, name: name.to_string(), started_at, kill_at: None });
                Ok(child)
            }
            Err(e) => Err(e).context("cannot fork an added app"),
        }
    }
}

impl AppApi {
    fn stop(&mut self, name: &str, timeout: Duration) -> Result<()> {
        let Some(r) = self.running.iter_mut().find(|r| r.name == name) else {
            if app_status::read_exit(&self.lock, name).is_some() {
                return Ok(()); // stopped already
            }
            return Err(Error::refused(format!("app {name} is not running")));
        };
        let _ = kill(r.pid, Signal::SIGTERM);
        let at = Instant::now() + timeout;
        r.kill_at = Some(r.kill_at.map_or(at, |k| k.min(at)));
        self.arm();
        Ok(())
    }

    /// The timer, at the earliest SIGKILL due.
    fn arm(&self) {
        let next = self.running.iter().filter_map(|r| r.kill_at).min();
        let _ = match next {
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
                self.timer.set(Expiration::OneShot(TimeSpec::from_duration(left)), TimerSetTimeFlags::empty())
            }
            None => self.timer.unset(),
        };
    }

    fn kill_due(&mut self) {
        let now = Instant::now();
        for r in self.running.iter_mut().filter(|r| r.kill_at.is_some_and(|at| at <= now)) {
            let _ = kill(r.pid, Signal::SIGKILL);
            r.kill_at = None;
        }
        self.arm();
    }

    /// Detaches the app's root from the pod's mount namespace and removes
    /// its cgroup.
    fn remove(&mut self, name: &str) -> Result<()> {
        if self.running.iter().any(|r| r.name == name) {
            return Err(Error::refused(format!("app {name} is running: stop it first")));
        }
        self.detach_root(name)?;
        self.cgroup.for_app(true, name).remove().with_context(|| format!("cannot remove the cgroup of app {name}"))
    }

    /// Detaches the app's root from the pod's mount namespace (a child
    /// there does it); done if it is not attached.
    fn detach_root(&self, name: &str) -> Result<()> {
        let mnt = File::open(format!("/proc/{}/ns/mnt", self.init)).context("cannot open the pod's mount namespace")?;
        let target = Path::new("/").join(skiff_stage2::app_root::APPS_DIR).join(name);
        // SAFETY: the supervisor is single-threaded, so the child may run
        // any code.
        match unsafe { nix::unistd::fork() } {
            Ok(ForkResult::Child) => {
                let detach = || -> Result<()> {
                    nix::sched::setns(&mnt, CloneFlags::CLONE_NEWNS)
                        .context("cannot join the pod's mount namespace")?;
                    match nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH) {
                        Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
                        Err(e) => return Err(e).with_context(|| format!("cannot detach the root of app {name}")),
                    }
                    match std::fs::remove_dir(&target) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).context("rmdir"),
                        _ => Ok(()),
                    }
                };
                std::process::exit(if detach().is_ok() { 0 } else { SKIFF_ERROR })
            }
            Ok(ForkResult::Parent { child }) => match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, 0)) => Ok(()),
                _ => Err(Error::refused(format!("cannot detach the root of app {name} from the pod"))),
            },
            Err(e) => Err(e).context("fork"),
        }
    }
}

/// What the added app's process (a child of the supervisor, born in the
/// pod's PID namespace) starts from.
struct Child<'a> {
    app: &'a App,
    manifest: &'a PodManifest,
    net: &'a NetState,
    pod_dir: &'a Path,
}

impl Child<'_> {
    /// Everything up to the app's `execve`: its cgroup, volumes cloned on
    /// the host's side, the pod's namespaces, its root and volumes
    /// attached, then what stage2 does for the pod's own apps.
    fn become_app(
        &self,
        root: &OwnedFd,
        join: &Join,
        namespaces: &[(OwnedFd, CloneFlags)],
        output: Option<&AppOutput>,
    ) -> Result<Prepared> {
        let app = self.app;
        join.enter_v1().map_err(Error::other)?;
        join.add_v2(0).map_err(Error::other)?;
        // Cloned while the host's paths are in sight.
        let volumes = skiff_stage1::volumes::detach_all(root, self.pod_dir, &app.mounts)?;
        for (fd, flag) in namespaces {
            nix::sched::setns(fd, *flag).context("cannot join the pod's namespaces")?;
        }
        let rootfs = attach_root(app, root, self.manifest.masked_paths)?;
        skiff_stage1::volumes::attach_all(&rootfs, volumes)?;
        skiff_stage2::app_root::enter(app)?;
        skiff_stage2::app_root::prepare(self.manifest, self.net, app)?;
        // Not the sandbox's caller's stdin: nothing, as for a CRI container.
        let null = File::open("/dev/null").context("cannot open /dev/null")?;
        rustix::stdio::dup2_stdin(&null).context("cannot give the app its stdin")?;
        if let Some(o) = output {
            rustix::stdio::dup2_stdout(&o.stdout).context("cannot give the app its log")?;
            rustix::stdio::dup2_stderr(&o.stderr).context("cannot give the app its log")?;
        }
        let filter = app.isolation.seccomp.as_ref().map(skiff_stage2::seccomp::compile).transpose()?;
        Prepared::new(app, filter)
    }
}

/// In the added app's process, in the pod's mount namespace: its root at
/// `/apps/<name>` (returned), and its /proc, /dev, /sys.
fn attach_root(app: &App, root: &OwnedFd, masked_paths: bool) -> Result<PathBuf> {
    let target = Path::new("/").join(skiff_stage2::app_root::APPS_DIR).join(&app.name);
    std::fs::create_dir_all(&target).with_context(|| format!("cannot create {}", target.display()))?;
    rustix::mount::move_mount(
        root,
        "",
        rustix::fs::CWD,
        &target,
        rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .with_context(|| format!("cannot attach the root of app {}", app.name))?;
    skiff_stage1::apifs::mount(&target, masked_paths, None)?;
    Ok(target)
}

impl Source for AppApi {
    fn fds(&self) -> Vec<(Token, BorrowedFd<'_>, PollFlags)> {
        let mut out = vec![(0, self.listener.as_fd(), PollFlags::POLLIN), (1, self.timer.as_fd(), PollFlags::POLLIN)];
        out.extend(self.capture.fds().into_iter().map(|(t, fd, f)| (t + 2, fd, f)));
        out
    }

    fn ready(&mut self, token: Token) -> Result<()> {
        if token == 1 {
            let _ = self.timer.wait();
            self.kill_due();
            return Ok(());
        }
        if token > 1 {
            return self.capture.ready(token - 2);
        }
        while let Ok((conn, _)) = self.listener.accept() {
            self.serve(conn);
        }
        Ok(())
    }

    fn drain(&mut self) {
        self.capture.drain();
    }

    fn reap(&mut self) {
        self.reap_apps(Some(WaitPidFlag::WNOHANG));
    }
}

impl AppApi {
    /// Once the pod's init is gone: the kernel killed what ran in its PID
    /// namespace; each added app's end is waited for and recorded.
    pub fn finish(&mut self) {
        self.reap_apps(None);
    }

    fn reap_apps(&mut self, flags: Option<WaitPidFlag>) {
        let mut i = 0;
        while i < self.running.len() {
            let (code, signal) = match waitpid(self.running[i].pid, flags) {
                Ok(WaitStatus::Exited(_, c)) => (c, None),
                Ok(WaitStatus::Signaled(_, s, _)) => (SIGNAL_BASE + s as i32, Some(s as i32)),
                _ => {
                    i += 1;
                    continue;
                }
            };
            let r = self.running.remove(i);
            let exit =
                AppExit { exit_code: code, signal, started_at: Some(r.started_at), exited_at: time::now_rfc3339() };
            if let Err(e) = app_status::write_exit_at(&self.lock, &r.name, &exit) {
                eprintln!("skiff: cannot record the exit of app {}: {e}", r.name);
            }
        }
    }
}

impl Drop for AppApi {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.pod_dir.join(CONTROL_SOCKET));
    }
}
