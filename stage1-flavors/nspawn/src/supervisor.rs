//! The flavor process: builds the container's root in a mount namespace of
//! its own (a tmpfs with the host's /usr read-only, this binary, the pod
//! directory, and each app's overlay root and volumes at `/apps/<name>`),
//! starts `systemd-nspawn` on it with this binary as the container's init,
//! records what the init reports, forwards signals to it and exits with the
//! pod's status.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::poll::{PollFd, PollFlags};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use skiff_pods::layout::{NETNS_FILE, PID_FILE, STAGE1_DIR, STARTED_FILE};
use skiff_pods::manifest::Net;
use skiff_pods::{atomic, time, PodManifest};
use skiff_rt::exit_code::SIGNAL_BASE;
use skiff_stage1::entry::RunPod;
use skiff_stage1::escalation::Escalation;
use skiff_stage1::overlay::Overlay;
use skiff_stage1::recorder::Recorder;
use skiff_stage2::app_root::APPS_DIR;

use crate::container;

/// The machine name nspawn uses for the pod (its lock and propagation
/// directories under /run/systemd/nspawn are named after it).
fn machine(uuid: &str) -> String {
    format!("skiff-{uuid}")
}

/// nspawn leaves an empty `propagate/<machine>` directory behind when /run
/// is not a tmpfs; gc and the end of `run` remove it.
pub fn remove_nspawn_leftovers(uuid: &str) {
    let _ = std::fs::remove_dir(Path::new(PROPAGATE_DIR).join(machine(uuid)));
}

/// Where nspawn keeps a directory per container for mounts it propagates.
const PROPAGATE_DIR: &str = "/run/systemd/nspawn/propagate";

fn find_nspawn() -> Result<PathBuf, String> {
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    path.split(':')
        .map(|d| Path::new(d).join("systemd-nspawn"))
        .find(|p| p.is_file())
        .ok_or_else(|| "systemd-nspawn is not installed: install Debian's systemd-container package".to_string())
}

pub fn run(pod: RunPod, debug: bool) -> Result<i32, String> {
    let nspawn = find_nspawn()?;
    skiff_stage1::fds::close_on_exec_all(0..0)?;
    let m = &pod.manifest;
    let overlays = m.apps.iter().map(|a| Overlay::for_app(m, a, &pod.dir)).collect::<Result<Vec<_>, _>>()?;
    let root = pod.dir.join(STAGE1_DIR).join("root");
    std::fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    let mask = skiff_stage2::init::supervised_signals();
    mask.thread_block().map_err(|e| format!("cannot block signals: {e}"))?;
    // In the host's mount namespace (the pin must be there for gc), before
    // the flavor makes its own.
    let network = skiff_stage1::network::attach(m, &pod.dir, &pod.lock)?.map(|(n, _fd)| n);
    // The pin is unmounted where it was mounted: back in this namespace.
    let host_mnt = File::open("/proc/self/ns/mnt").map_err(|e| format!("cannot open the mount namespace: {e}"))?;
    let detach = |n: skiff_stage1::network::PodNetwork| {
        nix::sched::setns(&host_mnt, CloneFlags::CLONE_NEWNS)
            .map_err(|e| format!("cannot return to the host's mount namespace: {e}"))
            .and_then(|()| n.detach())
    };
    if let Err(e) = build_root(m, &overlays, &root, &pod.dir) {
        if let Some(n) = network {
            let _ = detach(n);
        }
        return Err(e);
    }
    let (report_r, report_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let mut cmd = nspawn_command(&nspawn, m, &pod.dir, &root, debug);
    let report_fd = report_w.as_raw_fd();
    // SAFETY: runs in the forked child before exec and only makes
    // async-signal-safe calls (prctl, dup2).
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // fd 3 for the container's init, passed on by nspawn as a
            // socket-activation fd (LISTEN_FDS=1, LISTEN_PID=its pid).
            if nix::libc::dup2(report_fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| format!("cannot start systemd-nspawn: {e}"))?;
    let child = Pid::from_raw(child.id() as i32);
    drop(report_w);
    let started_at = time::now_rfc3339();
    atomic::replace_at(&pod.lock, STARTED_FILE, format!("{started_at}\n").as_bytes())
        .map_err(|e| format!("cannot record the pod's start: {e}"))?;
    let mut sup = Supervisor {
        nspawn: child,
        init: None,
        recorder: Recorder::new(pod.lock, started_at, m.apps.iter().map(|a| a.name.clone()).collect()),
        escalation: Escalation::new(m.stop_timeout()),
    };
    let status = sup.wait(&mask, File::from(report_r));
    remove_nspawn_leftovers(&m.uuid);
    if let Some(n) = network {
        if let Err(e) = detach(n) {
            eprintln!("skiff: {e}");
        }
    }
    status
}

/// `systemd-nspawn …`, started through `sh` because nspawn takes passed fds
/// only when LISTEN_PID is its own pid, known only once it is forked (sh
/// sets it to its own and execs nspawn in the same process).
fn nspawn_command(nspawn: &Path, m: &PodManifest, pod_dir: &Path, root: &Path, debug: bool) -> std::process::Command {
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.args(["-c", "LISTEN_PID=$$ exec \"$0\" \"$@\""]).arg(nspawn);
    cmd.arg("--directory").arg(root);
    cmd.args(["--register=no", "--keep-unit", "--console=pipe", "--resolv-conf=off", "--timezone=off"]);
    cmd.args(["--link-journal=no", "--kill-signal=SIGTERM"]);
    cmd.arg(format!("--machine={}", machine(&m.uuid)));
    cmd.arg(format!("--hostname={}", m.hostname));
    match m.net {
        // A network namespace with only lo, which nspawn brings up.
        Net::None => {
            cmd.arg("--private-network");
        }
        // The namespace the flavor pinned and attached (docs/networking.md).
        Net::Cni => {
            cmd.arg(format!("--network-namespace-path={}", pod_dir.join(NETNS_FILE).display()));
        }
        Net::Host => {}
    }
    // nspawn's bounding set is the container's; the apps' own sets are cut
    // from it by stage2. Ask for what the apps need beyond nspawn's default.
    let mut caps: Vec<String> = Vec::new();
    for app in &m.apps {
        match &app.isolation.capabilities {
            None => caps = vec!["all".to_string()],
            Some(list) if !caps.iter().any(|c| c == "all") => caps.extend(list.iter().cloned()),
            Some(_) => {}
        }
    }
    caps.sort();
    caps.dedup();
    if !caps.is_empty() {
        cmd.arg(format!("--capability={}", caps.join(",")));
    }
    if !debug {
        cmd.arg("--quiet");
    }
    cmd.arg("--").arg("/skiff/stage1").arg(container::ENTRYPOINT);
    cmd.env("LISTEN_FDS", "1").env_remove("LISTEN_FDNAMES").env_remove("LISTEN_PID");
    cmd
}

fn bind(src: &Path, target: &Path, read_only: bool) -> Result<(), String> {
    mount(Some(src), target, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .map_err(|e| format!("cannot bind {} into the container: {e}", src.display()))?;
    if read_only {
        let ro = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
        mount(None::<&str>, target, None::<&str>, ro, None::<&str>)
            .map_err(|e| format!("cannot make {} read-only: {e}", target.display()))?;
    }
    Ok(())
}

fn build_root(m: &PodManifest, overlays: &[Overlay], root: &Path, pod_dir: &Path) -> Result<(), String> {
    nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("cannot create a mount namespace: {e}"))?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_SLAVE, None::<&str>)
        .map_err(|e| format!("cannot make / a slave mount: {e}"))?;
    mount(Some("tmpfs"), root, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=0755,size=1m"))
        .map_err(|e| format!("cannot mount the container's root: {e}"))?;
    let mkdir = |p: &Path| std::fs::create_dir_all(p).map_err(|e| format!("cannot create {}: {e}", p.display()));
    // nspawn removes its mount-propagation directory at the end only from
    // a tmpfs, and where /run is on disk says on every pod's end
    // `Attempted to remove disk file system under …, and we can't allow
    // that.` A tmpfs of this namespace's own keeps it quiet and the host's
    // /run clean.
    let propagate = Path::new(PROPAGATE_DIR);
    mkdir(propagate)?;
    mount(Some("tmpfs"), propagate, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=0755,size=1m"))
        .map_err(|e| format!("cannot mount a tmpfs on {PROPAGATE_DIR}: {e}"))?;
    // The container's init is this binary: it needs the host's libraries
    // (merged /usr: /lib and /lib64 are links into it) and nspawn wants /usr.
    mkdir(&root.join("usr"))?;
    bind(Path::new("/usr"), &root.join("usr"), true)?;
    for (link, target) in [("lib", "usr/lib"), ("lib64", "usr/lib64"), ("bin", "usr/bin"), ("sbin", "usr/sbin")] {
        std::os::unix::fs::symlink(target, root.join(link)).map_err(|e| format!("cannot create /{link}: {e}"))?;
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this flavor's executable: {e}"))?;
    let stage1 = root.join("skiff/stage1");
    mkdir(&root.join(container::POD_DIR.trim_start_matches('/')))?;
    File::create(&stage1).map_err(|e| format!("cannot create {}: {e}", stage1.display()))?;
    bind(&exe, &stage1, true)?;
    bind(pod_dir, &root.join(container::POD_DIR.trim_start_matches('/')), false)?;
    for (app, overlay) in m.apps.iter().zip(overlays) {
        let app_root = root.join(APPS_DIR).join(&app.name);
        mkdir(&app_root)?;
        overlay.mount(&app_root)?;
        skiff_stage1::volumes::mount_all(&app_root, pod_dir, &app.mounts)?;
    }
    Ok(())
}

struct Supervisor {
    nspawn: Pid,
    /// The container's PID 1 (skiff's init), once found.
    init: Option<Pid>,
    recorder: Recorder,
    escalation: Escalation,
}

impl Supervisor {
    fn wait(&mut self, mask: &nix::sys::signal::SigSet, mut reports: File) -> Result<i32, String> {
        let sfd = SignalFd::with_flags(mask, SfdFlags::SFD_CLOEXEC).map_err(|e| format!("signalfd: {e}"))?;
        let mut pipe_open = true;
        loop {
            let (sig_ready, pipe_ready) = {
                let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
                if pipe_open {
                    fds.push(PollFd::new(reports.as_fd(), PollFlags::POLLIN));
                }
                match nix::poll::poll(&mut fds, self.escalation.poll_timeout()) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(format!("poll: {e}")),
                }
                if self.escalation.due() {
                    // As `stop --force`: the container's init dies with
                    // nspawn (its death signal), and the pod ends 137.
                    let _ = nix::sys::signal::kill(self.nspawn, Signal::SIGKILL);
                }
                let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
                (ready(&fds[0]), fds.get(1).is_some_and(ready))
            };
            if pipe_ready {
                pipe_open = self.recorder.read(&mut reports);
                if self.recorder.heard && self.init.is_none() {
                    self.find_init();
                }
            }
            if sig_ready {
                if let Some(code) = self.handle_signal(&sfd)? {
                    while pipe_open {
                        pipe_open = self.recorder.read(&mut reports);
                    }
                    // nspawn killed (`stop --force`, the stop timeout): the
                    // container's init died with it.
                    if code > SIGNAL_BASE {
                        self.recorder.record_unreported(code - SIGNAL_BASE);
                    }
                    return Ok(code);
                }
            }
        }
    }

    /// The container's init is nspawn's only child (nspawn is a subreaper).
    fn find_init(&mut self) {
        let n = self.nspawn;
        let children = std::fs::read_to_string(format!("/proc/{n}/task/{n}/children")).unwrap_or_default();
        let Some(pid) = children.split_whitespace().find_map(|p| p.parse::<i32>().ok()) else { return };
        if skiff_stage1::enter::pod_init(pid).is_ok() {
            self.init = Some(Pid::from_raw(pid));
            if let Err(e) = atomic::replace_at(&self.recorder.lock, PID_FILE, format!("{pid}\n").as_bytes()) {
                eprintln!("skiff: stage1 nspawn: cannot record the pod's pid: {e}");
            }
        }
    }

    fn handle_signal(&mut self, sfd: &SignalFd) -> Result<Option<i32>, String> {
        let Ok(Some(info)) = sfd.read_signal() else { return Ok(None) };
        let sig = Signal::try_from(info.ssi_signo as i32).map_err(|e| format!("signal: {e}"))?;
        if sig != Signal::SIGCHLD {
            // The init forwards it to the apps; before the init is known,
            // nspawn passes SIGTERM on as its --kill-signal.
            let target = self.init.unwrap_or(self.nspawn);
            let _ = nix::sys::signal::kill(target, sig);
            self.escalation.saw(sig);
            return Ok(None);
        }
        match waitpid(self.nspawn, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => Ok(Some(code)),
            Ok(WaitStatus::Signaled(_, s, _)) => Ok(Some(SIGNAL_BASE + s as i32)),
            Ok(_) => Ok(None),
            Err(e) => Err(format!("waiting for systemd-nspawn: {e}")),
        }
    }
}
