//! This binary as the container's PID 1: mounts each app's /proc, /dev and
//! /sys (from inside the container's PID namespace), then runs stage2's
//! init. The supervisor passed the report pipe as fd 3 through
//! systemd-nspawn's socket-activation fd passing (`LISTEN_FDS=1`).

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;

use nix::mount::MsFlags;
use nix::sys::signal::Signal;
use skiff_pods::PodManifest;
use skiff_rt::error::{Context, Result};
use skiff_rt::exit_code::SKIFF_ERROR;
use skiff_stage2::app_root::{InitRoot, APPS_DIR};
use skiff_stage2::report::{Report, Reporter};

pub const ENTRYPOINT: &str = "container-init";

/// Where the supervisor binds the pod directory in the container.
pub const POD_DIR: &str = "/skiff/pod";

/// fd 3, the first fd `LISTEN_FDS` passes.
const REPORT_FD: i32 = 3;

pub fn main() -> i32 {
    // stage2's init takes these from a signalfd: they must be blocked
    // before any child exists (nspawn started this process fresh).
    if let Err(e) = skiff_stage2::init::supervised_signals().thread_block() {
        eprintln!("skiff: stage1 nspawn: cannot block signals: {e}");
        return SKIFF_ERROR;
    }
    if std::env::var("LISTEN_FDS").as_deref() != Ok("1") {
        eprintln!("skiff: stage1 nspawn: {ENTRYPOINT} is run by the nspawn flavor inside its container");
        return SKIFF_ERROR;
    }
    if !skiff_stage1::fds::is_open(REPORT_FD) {
        eprintln!("skiff: stage1 nspawn: the report pipe (fd {REPORT_FD}) is missing");
        return SKIFF_ERROR;
    }
    skiff_stage2::init::name_process();
    // SAFETY: fd 3 is open (checked above) and was passed to this process
    // alone by systemd-nspawn (LISTEN_FDS=1), for it to own.
    let mut reporter = Reporter::new(unsafe { OwnedFd::from_raw_fd(REPORT_FD) });
    // The pod must not outlive nspawn (and nspawn not its supervisor).
    let ready = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .context("prctl")
        .and_then(|()| read_manifest())
        .and_then(|m| setup(&m).map(|()| m));
    match ready {
        Ok(manifest) => {
            let net = skiff_pods::netstate::NetState::read(Path::new(POD_DIR));
            let handover = skiff_stage2::handover::Handover::default();
            skiff_stage2::init::run(&manifest, reporter, None, &net, &handover, &[], InitRoot::Pod)
        }
        Err(msg) => {
            let _ = reporter.send(&Report::Error(msg.to_string()));
            SKIFF_ERROR
        }
    }
}

fn read_manifest() -> Result<PodManifest> {
    let path = Path::new(POD_DIR).join(skiff_pods::manifest::MANIFEST_FILE);
    let data = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    PodManifest::from_json(&data).with_context(|| format!("pod manifest {}", path.display()))
}

fn setup(m: &PodManifest) -> Result<()> {
    // nspawn's mounts are shared; pivot_root (each app's, in a copy of this
    // namespace) refuses a shared parent, and nothing here should propagate.
    nix::mount::mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .context("cannot make the container's mounts private")?;
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    for app in &m.apps {
        let root = Path::new("/").join(APPS_DIR).join(&app.name);
        skiff_stage1::apifs::mount(&root, m.masked_paths, None)?;
    }
    nix::sys::stat::umask(old);
    Ok(())
}
