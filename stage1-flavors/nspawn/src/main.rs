//! `skiff-stage1-nspawn`: runs a pod in a container made by the host's
//! `systemd-nspawn` (Debian's systemd-container), like rkt's default flavor,
//! with skiff's init (stage2) as the container's PID 1, so apps get the same
//! semantics as in `ns`. Works where systemd is not PID 1 (`--register=no
//! --keep-unit`). See docs/stage1-abi.md, "How `nspawn` implements it".

#![cfg_attr(not(test), no_main)]

mod container;
mod supervisor;

use nix::sys::signal::{kill, Signal};
use skiff_pods::abi::{feature, Description};
use skiff_pods::PodManifest;
use skiff_rt::error::{Context, Result};
use skiff_stage1::enter::{self, pod_init};
use skiff_stage1::entry::{Flavor, RunPod, Stdio};

struct Nspawn;

impl Flavor for Nspawn {
    fn description(&self) -> Description {
        // All but cgroup limits (nspawn makes them systemd unit properties,
        // which need systemd as PID 1) and a terminal of skiff's own.
        // nspawn's own LISTEN_FDS carries the report pipe to the init.
        // Nor readiness yet: the container's init reads the manifest from
        // the pod directory, where the apps' relay is not.
        let lacks = [
            feature::CGROUP_LIMITS,
            feature::CGROUP_PARENT,
            feature::TERMINAL,
            feature::SOCKET_ACTIVATION,
            feature::NOTIFY,
            feature::LOGS,
            feature::LOG_PATH,
            feature::SANDBOX,
            feature::APP_API,
        ];
        let features: Vec<&str> = feature::ALL.into_iter().filter(|f| !lacks.contains(f)).collect();
        Description::new("nspawn", &features, "a systemd-nspawn container with skiff's init as PID 1")
    }

    fn run(&self, pod: RunPod, _stdio: Stdio, debug: bool) -> Result<i32> {
        supervisor::run(pod, debug)
    }

    fn enter(&self, manifest: &PodManifest, pid: i32, app: &str, argv: &[String]) -> Result<i32> {
        enter::enter(manifest, pod_init(pid)?, app, argv, None)
    }

    fn stop(&self, _: &PodManifest, pid: i32, force: bool) -> Result<()> {
        let init = pod_init(pid)?;
        if force {
            // nspawn reports its container's death by a signal as a plain
            // failure (1); killing nspawn itself (the init dies with it, by
            // its death signal) lets the supervisor see and report SIGKILL.
            if let Some(nspawn) = parent_nspawn(pid) {
                let _ = kill(nspawn, Signal::SIGKILL);
            }
            return kill(init, Signal::SIGKILL).or(Ok(()));
        }
        kill(init, Signal::SIGTERM).context("cannot signal the pod's init")
    }

    fn gc(&self, manifest: &PodManifest) -> Result<()> {
        supervisor::remove_nspawn_leftovers(&manifest.uuid);
        let dir = std::env::current_dir().context("pod directory")?;
        skiff_stage1::network::detach_leftover(manifest, &dir)
    }
}

/// The systemd-nspawn process whose container's init is `pid`.
fn parent_nspawn(pid: i32) -> Option<nix::unistd::Pid> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let ppid: i32 = status.lines().find_map(|l| l.strip_prefix("PPid:"))?.trim().parse().ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{ppid}/comm")).ok()?;
    (comm.trim() == "systemd-nspawn").then(|| nix::unistd::Pid::from_raw(ppid))
}

skiff_rt::main!(|| {
    // Not an ABI entrypoint: how this binary runs inside the container.
    if skiff_rt::process_start::args().get(1).map(String::as_str) == Some(container::ENTRYPOINT) {
        return container::main();
    }
    skiff_stage1::entry::main(&Nspawn)
});
