//! fly's `run`: the flavor process builds the app's root in a private mount
//! namespace, forks the app into it (chroot), forwards signals, records the
//! app's exit and exits with its status.

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::ForkResult;
use skiff_pods::app_status::{self, AppExit};
use skiff_pods::layout::{PID_FILE, STARTED_FILE};
use skiff_pods::{atomic, time, App, PodManifest};
use skiff_rt::activation::Activation;
use skiff_rt::error::{Context, Error, Result};
use skiff_rt::exit_code::SKIFF_ERROR;
use skiff_stage1::entry::RunPod;
use skiff_stage1::entry::Stdio;
use skiff_stage1::escalation::Escalation;
use skiff_stage1::etc_layer::EtcLayer;
use skiff_stage1::logs::Capture;
use skiff_stage1::notify::Readiness;
use skiff_stage1::overlay::{mountpoint, Overlay};
use skiff_stage1::supervise::{self, Supervise};
use skiff_stage2::app::ExecWatch;
use skiff_stage2::app::Prepared;
use skiff_stage2::handover::Handover;

/// The app's root, relative to the pod directory.
pub fn rootfs(app: &App) -> PathBuf {
    Path::new("apps").join(&app.name).join("rootfs")
}

pub fn run(pod: RunPod, stdio: Stdio, debug: bool) -> Result<i32> {
    let activation = Activation::inherited();
    skiff_stage1::fds::close_on_exec_all(activation.as_ref().map_or(0..0, Activation::fds))?;
    let (mut readiness, m) = Readiness::new(&pod.manifest, &pod.dir, pod.notify_app)?;
    let m = &m;
    let [app] = m.apps.as_slice() else {
        return Err(Error::refused(format!(
            "the fly flavor runs one app per pod, pod {} has {}",
            m.uuid,
            m.apps.len()
        )));
    };
    let overlay = Overlay::for_app(m, app, &pod.dir)?;
    let root = pod.dir.join(rootfs(app));
    let mask = skiff_stage2::init::supervised_signals();
    mask.thread_block().context("cannot block signals")?;
    build_root(&overlay, &root, m, &pod.dir, app)?;
    let (mut capture, outputs) = match Capture::new(m, &pod.dir)?.filter(|_| stdio == Stdio::Inherit) {
        Some((c, o)) => (Some(c), o),
        None => (None, Vec::new()),
    };
    let handover = Handover { activation, outputs };
    let watch = ExecWatch::new()?;
    // SAFETY: this process is single-threaded, so the child may run any code.
    let child = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            drop(pod.lock);
            let failed = watch.into_child();
            let prepared =
                become_app(m, app, &root).and_then(|mut p| handover.apply(&mut p, &app.name, true).map(|()| p));
            let msg = match prepared {
                Ok(prepared) => prepared.exec(Some(&failed)),
                Err(msg) => msg,
            };
            ExecWatch::fail(&failed);
            eprintln!("skiff: stage1 fly: {msg}");
            std::process::exit(SKIFF_ERROR);
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => return Err(e).context("cannot fork the app"),
    };
    // The app's ends of its log pipes are the app's alone.
    drop(handover);
    let started_at = time::now_rfc3339();
    atomic::replace_at(&pod.lock, PID_FILE, format!("{child}\n").as_bytes())
        .and_then(|()| atomic::replace_at(&pod.lock, STARTED_FILE, format!("{started_at}\n").as_bytes()))
        .context("cannot record the pod's pid")?;
    if watch.exec_succeeded() {
        skiff_stage1::recorder::mark_ready(&pod.lock, readiness.ready_to.as_ref());
    }
    if debug {
        eprintln!("skiff: stage1 fly: pod {} app {} is pid {child}", m.uuid, app.name);
    }
    // Signals go to the app, with `--notify-app` its notifications to
    // systemd, and with the `file` log driver its output to the log.
    let to_app = || child;
    let sup = Supervise { child, forward_to: &to_app, escalation: Escalation::new(m.stop_timeout()) };
    let (exit_code, signal) = supervise::exit_of(sup.run(&mask, &mut [&mut readiness, &mut capture])?);
    let exit = AppExit { exit_code, signal, started_at: Some(started_at), exited_at: time::now_rfc3339() };
    if let Err(e) = app_status::write_exit_at(&pod.lock, &app.name, &exit) {
        eprintln!("skiff: cannot record the exit status of app {}: {e}", app.name);
    }
    // Everything fly made lived in its mount namespace, gone with it.
    skiff_stage1::recorder::mark_released(&pod.lock);
    Ok(exit_code)
}

/// The app's root in a mount namespace of this process's own: the overlay,
/// the host's /dev, /proc and /sys (recursively), the volumes. The pod's
/// /etc files are a layer of the overlay (skiff_stage1::etc_layer) on a
/// tmpfs mounted where the overlay then goes, which hides it.
fn build_root(overlay: &Overlay, root: &Path, m: &PodManifest, pod_dir: &Path, app: &App) -> Result<()> {
    nix::sched::unshare(CloneFlags::CLONE_NEWNS).context("cannot create a mount namespace")?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_SLAVE, None::<&str>)
        .context("cannot make / a slave mount")?;
    let etc = match EtcLayer::plan(overlay, m, &Default::default()) {
        Some(layer) => {
            let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            mount(Some("tmpfs"), root, Some("tmpfs"), flags, Some("mode=0700,size=1m"))
                .context("cannot mount a tmpfs for the pod's /etc files")?;
            let top = root.join(".etc");
            layer.write(&top, None)?;
            Some(top)
        }
        None => None,
    };
    overlay.mount(root, etc.as_deref())?;
    for d in ["dev", "proc", "sys"] {
        let target = mountpoint(root, d)?;
        mount(
            Some(Path::new("/").join(d).as_path()),
            &target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .with_context(|| format!("cannot bind the host's /{d}"))?;
    }
    skiff_stage1::volumes::mount_all(root, pod_dir, &app.mounts, None)
}

/// In the forked child: everything up to the `execve`.
fn become_app(m: &PodManifest, app: &App, root: &Path) -> Result<Prepared> {
    // The app must not outlive the flavor, which holds the pod's lock.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).context("prctl")?;
    nix::unistd::chroot(root).with_context(|| format!("chroot {}", root.display()))?;
    std::env::set_current_dir("/").context("chdir /")?;
    skiff_stage2::app_root::prepare(m, &Default::default(), app)?;
    Prepared::new(app, None)
}
