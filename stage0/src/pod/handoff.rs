//! The hand-off to stage1: `exec`, not fork, so the process the caller
//! started becomes the pod's supervisor (see docs/stage1-abi.md).

use std::os::fd::IntoRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use nix::fcntl::{FcntlArg, FdFlag};
use skiff_pods::abi::{flavor_binary, ABI_ENV, ABI_VERSION, LOCK_FD_ENV};
use skiff_pods::Pod;

/// The flavor new pods get (the only one this version ships).
pub const DEFAULT_FLAVOR: &str = "ns";

/// Flavors live next to the `skiff` binary.
pub fn flavor_path(flavor: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the skiff executable")?;
    let dir = exe.parent().ok_or_else(|| anyhow!("skiff executable has no directory"))?;
    let p = dir.join(flavor_binary(flavor));
    if !p.is_file() {
        return Err(anyhow!("stage1 flavor {flavor:?} is not installed: {} does not exist", p.display()));
    }
    Ok(p)
}

/// Replaces this process with the flavor's `run` entrypoint. Returns only
/// if the exec failed; the pod is then left unlocked in `run/`, which reads
/// as exited and is collected by gc.
/// `stdio` are the flavor's options for the apps' stdio (`--tty`,
/// `--interactive`).
pub fn exec_run(pod: Pod, flavor: &str, debug: bool, stdio: &[&str]) -> anyhow::Error {
    let bin = match flavor_path(flavor) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let dir = pod.path();
    let uuid = pod.uuid().to_string();
    let fd = pod.into_fd();
    if let Err(e) = nix::fcntl::fcntl(&fd, FcntlArg::F_SETFD(FdFlag::empty())) {
        return anyhow!("cannot pass the pod lock to stage1: {e}");
    }
    // The fd must outlive this process image: exec keeps it open.
    let raw = fd.into_raw_fd();
    crate::debug!("pod {uuid}: exec {} run (lock fd {raw}, cwd {})", bin.display(), dir.display());
    let mut cmd = flavor_command(&bin, flavor, "run", debug, &dir);
    let err = cmd.args(stdio).arg(&uuid).env(LOCK_FD_ENV, raw.to_string()).exec();
    anyhow!("cannot execute stage1 {}: {err}", bin.display())
}

fn flavor_command(
    bin: &std::path::Path,
    flavor: &str,
    entrypoint: &str,
    debug: bool,
    dir: &std::path::Path,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(bin);
    cmd.arg0(flavor_binary(flavor)).arg(entrypoint).current_dir(dir).env(ABI_ENV, ABI_VERSION.to_string());
    if debug {
        cmd.arg("--debug");
    }
    cmd
}

/// Replaces this process with the flavor's `enter` entrypoint, which runs
/// `argv` in app `app` of the running pod whose init is `pid`.
pub fn exec_enter(pod: &Pod, flavor: &str, debug: bool, pid: i32, app: &str, argv: &[String]) -> anyhow::Error {
    let bin = match flavor_path(flavor) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let mut cmd = flavor_command(&bin, flavor, "enter", debug, &pod.path());
    let err = cmd.args(["--pid", &pid.to_string(), "--app", app, pod.uuid(), "--"]).args(argv).exec();
    anyhow!("cannot execute stage1 {}: {err}", bin.display())
}
