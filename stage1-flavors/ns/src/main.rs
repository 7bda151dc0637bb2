//! `skiff-stage1-ns`: the default stage1 flavor. Runs a pod in fresh mount,
//! PID, UTS and IPC namespaces (the network namespace stays the host's) with
//! a root filesystem per app and skiff's init (stage2) as PID 1.
//!
//! Invoked by stage0 per `docs/stage1-abi.md`.

#![cfg_attr(not(test), no_main)]

mod app_api;
mod console;
mod rootfs;
mod supervisor;

use nix::sys::signal::{kill, Signal};
use skiff_pods::abi::{feature, Description};
use skiff_pods::PodManifest;
use skiff_rt::error::{Context, Result};
use skiff_stage1::enter::{self, pod_init};
use skiff_stage1::entry::{Flavor, RunPod, Stdio};

struct Ns;

impl Flavor for Ns {
    fn description(&self) -> Description {
        // Every feature this skiff knows.
        let features = feature::ALL;
        Description::new("ns", &features, "namespaces, an overlay root per app, cgroups, capabilities, seccomp")
    }

    fn run(&self, pod: RunPod, stdio: Stdio, debug: bool) -> Result<i32> {
        supervisor::run(pod, stdio, debug)
    }

    fn enter(&self, manifest: &PodManifest, pid: i32, app: &str, argv: &[String]) -> Result<i32> {
        let cgroup = manifest.cgroup();
        enter::enter(manifest, pod_init(pid)?, app, argv, Some(&cgroup))
    }

    fn stop(&self, _: &PodManifest, pid: i32, force: bool) -> Result<()> {
        // SIGTERM: the init forwards it to every app. SIGKILL to a PID
        // namespace's init ends every process in it.
        let sig = if force { Signal::SIGKILL } else { Signal::SIGTERM };
        kill(pod_init(pid)?, sig).context("cannot signal the pod's init")
    }

    fn gc(&self, manifest: &PodManifest) -> Result<()> {
        let dir = std::env::current_dir().context("pod directory")?;
        skiff_stage1::network::detach_leftover(manifest, &dir)?;
        manifest.cgroup().remove().with_context(|| format!("cannot remove the cgroup of pod {}", manifest.uuid))
    }
}

skiff_rt::main!(|| skiff_stage1::entry::main(&Ns));
