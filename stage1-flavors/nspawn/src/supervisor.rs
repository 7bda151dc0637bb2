//! The flavor process: builds the container's root in a mount namespace of
//! its own (a tmpfs with the host's /usr read-only, this binary, the pod
//! directory, and each app's overlay root and volumes at `/apps/<name>`),
//! starts `systemd-nspawn` on it with this binary as the container's init,
//! records what the init reports, forwards signals to it and exits with the
//! pod's status.

use std::cell::Cell;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::poll::PollFlags;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use skiff_pods::layout::{NETNS_FILE, PID_FILE, STAGE1_DIR, STARTED_FILE};
use skiff_pods::manifest::Net;
use skiff_pods::{atomic, time, PodManifest};
use skiff_rt::exit_code::SIGNAL_BASE;
use skiff_stage1::entry::RunPod;
use skiff_stage1::escalation::Escalation;
use skiff_stage1::network::Home;
use skiff_stage1::overlay::Overlay;
use skiff_stage1::recorder::{Recorder, ReportPipe};
use skiff_stage1::supervise::{self, Source, Supervise, Token};
use skiff_stage1::userns::PodUserns;
use skiff_stage2::app_root::APPS_DIR;

use crate::container;
use skiff_rt::error::{Context, Error, Result};

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

fn find_nspawn() -> Result<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    path.split(':')
        .map(|d| Path::new(d).join("systemd-nspawn"))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::refused("systemd-nspawn is not installed: install Debian's systemd-container package"))
}

pub fn run(pod: RunPod, debug: bool) -> Result<i32> {
    let nspawn = find_nspawn()?;
    // nspawn joins a given network namespace from inside the user namespace
    // it makes, which has no rights over it; nor over the host's, where the
    // container gets neither a sysfs of its own nor the apps' capabilities.
    if pod.manifest.user_namespace.is_some() && pod.manifest.net != Net::None {
        return Err(Error::refused(
            "the nspawn flavor runs a pod with --private-users only with --net none (the ns flavor takes every network)",
        ));
    }
    skiff_stage1::fds::close_on_exec_all(0..0)?;
    let m = &pod.manifest;
    let overlays = m.apps.iter().map(|a| Overlay::for_app(m, a, &pod.dir)).collect::<Result<Vec<_>, _>>()?;
    let root = pod.dir.join(STAGE1_DIR).join("root");
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let mask = skiff_stage2::init::supervised_signals();
    mask.thread_block().context("cannot block signals")?;
    // In the host's mount namespace (the pin must be there for gc), before
    // the flavor makes its own; detached (back in the host's) however the
    // run ends.
    let network = skiff_stage1::network::attach(m, &pod.dir, &pod.lock, Home::Mount, None)?.map(|(n, _fd)| n);
    // nspawn makes the pod's user namespace (--private-users); one with the
    // same maps, made here, idmaps the image's layers for it.
    let userns =
        m.user_namespace.as_ref().map(|ns| skiff_stage1::userns::create(ns, false).map(|(u, _)| u)).transpose()?;
    build_root(m, &overlays, &root, &pod.dir, userns.as_ref())?;
    let (report_r, report_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe")?;
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
    let child = cmd.spawn().context("cannot start systemd-nspawn")?;
    let child = Pid::from_raw(child.id() as i32);
    drop(report_w);
    let started_at = time::now_rfc3339();
    atomic::replace_at(&pod.lock, STARTED_FILE, format!("{started_at}\n").as_bytes())
        .context("cannot record the pod's start")?;
    let init = Cell::new(None);
    let recorder = Recorder::new(pod.lock, started_at, m.apps.iter().map(|a| a.name.clone()).collect());
    let mut reports =
        InitReports { reports: ReportPipe::new(recorder, File::from(report_r)), nspawn: child, init: &init };
    // Signals go to the container's init, which passes them on to the
    // apps; before it is known, nspawn passes SIGTERM on as its
    // --kill-signal. A stop that times out kills nspawn, and the init
    // with it (its death signal).
    let forward_to = || init.get().unwrap_or(child);
    let sup = Supervise { child, forward_to: &forward_to, escalation: Escalation::new(m.stop_timeout()) };
    let status = sup.run(&mask, &mut [&mut reports]);
    remove_nspawn_leftovers(&m.uuid);
    let (code, _) = supervise::exit_of(status?);
    // nspawn killed (`stop --force`, the stop timeout), or its container's
    // init: the init died before it could report every app's end.
    if code > SIGNAL_BASE {
        reports.reports.recorder.record_unreported(code - SIGNAL_BASE);
    }
    let mut released = true;
    if let Some(n) = network {
        if let Err(e) = n.detach() {
            eprintln!("skiff: {e}");
            released = false;
        }
    }
    if released {
        skiff_stage1::recorder::mark_released(&reports.reports.recorder.lock);
    }
    Ok(code)
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
    if let Some(ns) = &m.user_namespace {
        // Its files already have the range's ids (idmapped layers, upper
        // directories given to the pod's root): nspawn chowns nothing.
        cmd.arg(format!("--private-users={}:{}", ns.uid_base, ns.count));
        cmd.arg("--private-users-ownership=off");
    }
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

fn bind(src: &Path, target: &Path, read_only: bool) -> Result<()> {
    mount(Some(src), target, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .with_context(|| format!("cannot bind {} into the container", src.display()))?;
    if read_only {
        let ro = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
        mount(None::<&str>, target, None::<&str>, ro, None::<&str>)
            .with_context(|| format!("cannot make {} read-only", target.display()))?;
    }
    Ok(())
}

fn build_root(
    m: &PodManifest,
    overlays: &[Overlay],
    root: &Path,
    pod_dir: &Path,
    userns: Option<&std::os::fd::OwnedFd>,
) -> Result<()> {
    nix::sched::unshare(CloneFlags::CLONE_NEWNS).context("cannot create a mount namespace")?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_SLAVE, None::<&str>)
        .context("cannot make / a slave mount")?;
    let owner = m.user_namespace.map_or(String::new(), |ns| format!(",uid={},gid={}", ns.host_uid(0), ns.host_gid(0)));
    let options = format!("mode=0755,size=1m{owner}");
    mount(Some("tmpfs"), root, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some(options.as_str()))
        .context("cannot mount the container's root")?;
    let mkdir = |p: &Path| std::fs::create_dir_all(p).with_context(|| format!("cannot create {}", p.display()));
    // nspawn removes its mount-propagation directory at the end only from
    // a tmpfs, and where /run is on disk says on every pod's end
    // `Attempted to remove disk file system under …, and we can't allow
    // that.` A tmpfs of this namespace's own keeps it quiet and the host's
    // /run clean.
    let propagate = Path::new(PROPAGATE_DIR);
    mkdir(propagate)?;
    mount(Some("tmpfs"), propagate, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=0755,size=1m"))
        .with_context(|| format!("cannot mount a tmpfs on {PROPAGATE_DIR}"))?;
    // The container's init is this binary: it needs the host's libraries
    // (merged /usr: /lib and /lib64 are links into it) and nspawn wants /usr.
    mkdir(&root.join("usr"))?;
    bind(Path::new("/usr"), &root.join("usr"), true)?;
    for (link, target) in [("lib", "usr/lib"), ("lib64", "usr/lib64"), ("bin", "usr/bin"), ("sbin", "usr/sbin")] {
        std::os::unix::fs::symlink(target, root.join(link)).with_context(|| format!("cannot create /{link}"))?;
    }
    let exe = std::env::current_exe().context("cannot find this flavor's executable")?;
    let stage1 = root.join("skiff/stage1");
    mkdir(&root.join(container::POD_DIR.trim_start_matches('/')))?;
    File::create(&stage1).with_context(|| format!("cannot create {}", stage1.display()))?;
    bind(&exe, &stage1, true)?;
    bind(pod_dir, &root.join(container::POD_DIR.trim_start_matches('/')), false)?;
    for (app, overlay) in m.apps.iter().zip(overlays) {
        let app_root = root.join(APPS_DIR).join(&app.name);
        mkdir(&app_root)?;
        let pod_userns = m.user_namespace.as_ref().zip(userns).map(|(ids, fd)| PodUserns { ids, fd: fd.as_fd() });
        match pod_userns {
            None => overlay.mount(&app_root, None)?,
            Some(u) => overlay.mount_idmapped(&app_root, &root.join(".layers"), u, None)?,
        };
        skiff_stage1::volumes::mount_all(&app_root, pod_dir, &app.mounts, pod_userns)?;
    }
    Ok(())
}

/// The init's report pipe, and finding the init (the container's PID 1)
/// once it has spoken.
struct InitReports<'a> {
    reports: ReportPipe,
    nspawn: Pid,
    init: &'a Cell<Option<Pid>>,
}

impl InitReports<'_> {
    /// The container's init is nspawn's only child (nspawn is a subreaper).
    fn find_init(&self) {
        let n = self.nspawn;
        let children = std::fs::read_to_string(format!("/proc/{n}/task/{n}/children")).unwrap_or_default();
        let Some(pid) = children.split_whitespace().find_map(|p| p.parse::<i32>().ok()) else { return };
        if skiff_stage1::enter::pod_init(pid).is_ok() {
            self.init.set(Some(Pid::from_raw(pid)));
            if let Err(e) = atomic::replace_at(&self.reports.recorder.lock, PID_FILE, format!("{pid}\n").as_bytes()) {
                eprintln!("skiff: stage1 nspawn: cannot record the pod's pid: {e}");
            }
        }
    }
}

impl Source for InitReports<'_> {
    fn fds(&self) -> Vec<(Token, BorrowedFd<'_>, PollFlags)> {
        self.reports.fds()
    }

    fn ready(&mut self, token: Token) -> Result<()> {
        self.reports.ready(token)?;
        if self.reports.recorder.heard && self.init.get().is_none() {
            self.find_init();
        }
        Ok(())
    }

    fn drain(&mut self) {
        self.reports.drain();
    }
}
