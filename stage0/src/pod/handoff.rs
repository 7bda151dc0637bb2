//! Calling the pod's stage1 flavor (docs/stage1-abi.md). `run` and `enter`
//! are an `exec`, not a fork, so the process the caller started becomes
//! the pod's supervisor (or the entered command); `stop` and `gc` are
//! waited for.

use std::os::fd::IntoRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::{FcntlArg, FdFlag};
use skiff_pods::abi::{flavor_binary, ABI_ENV, ABI_VERSION, LOCK_FD_ENV};
use skiff_pods::Pod;

use super::flavor::Flavor;

fn command(flavor: &Flavor, entrypoint: &str, debug: bool, dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(&flavor.path);
    cmd.arg0(flavor_binary(flavor.name())).arg(entrypoint).current_dir(dir).env(ABI_ENV, ABI_VERSION.to_string());
    if debug {
        cmd.arg("--debug");
    }
    cmd
}

/// Replaces this process with the flavor's `run` entrypoint. Returns only
/// if the exec failed; the pod is then left unlocked in `run/`, which reads
/// as exited and is collected by gc. `stdio` are the flavor's options for
/// the apps' stdio (`--tty`, `--interactive`).
/// `args` are the `run` options; `env_remove`, variables of skiff's own
/// environment the flavor must not see.
pub fn exec_run(pod: Pod, flavor: &Flavor, debug: bool, args: &[&str], env_remove: &[&str]) -> anyhow::Error {
    let dir = pod.path();
    let uuid = pod.uuid().to_string();
    let fd = pod.into_fd();
    if let Err(e) = nix::fcntl::fcntl(&fd, FcntlArg::F_SETFD(FdFlag::empty())) {
        return anyhow!("cannot pass the pod lock to stage1: {e}");
    }
    // The fd must outlive this process image: exec keeps it open.
    let raw = fd.into_raw_fd();
    crate::debug!("pod {uuid}: exec {} run (lock fd {raw}, cwd {})", flavor.path.display(), dir.display());
    let mut cmd = command(flavor, "run", debug, &dir);
    for v in env_remove {
        cmd.env_remove(v);
    }
    let err = cmd.args(args).arg(&uuid).env(LOCK_FD_ENV, raw.to_string()).exec();
    anyhow!("cannot execute stage1 {}: {err}", flavor.path.display())
}

/// Replaces this process with the flavor's `enter` entrypoint, which runs
/// `argv` in app `app` of the running pod.
pub fn exec_enter(pod: &Pod, flavor: &Flavor, debug: bool, app: &str, argv: &[String]) -> anyhow::Error {
    let err = command(flavor, "enter", debug, &pod.path()).args(["--app", app, pod.uuid(), "--"]).args(argv).exec();
    anyhow!("cannot execute stage1 {}: {err}", flavor.path.display())
}

/// Runs the flavor's `stop` or `gc` entrypoint for a pod and waits for it.
pub fn call(pod_dir: &Path, uuid: &str, flavor: &Flavor, debug: bool, entrypoint: &str, opts: &[&str]) -> Result<()> {
    let status = command(flavor, entrypoint, debug, pod_dir)
        .args(opts)
        .arg(uuid)
        .stdin(std::process::Stdio::null())
        .status()
        .with_context(|| format!("cannot run stage1 {} {entrypoint}", flavor.path.display()))?;
    if !status.success() {
        bail!("stage1 {} {entrypoint} failed for pod {uuid} ({status})", flavor.name());
    }
    Ok(())
}
