//! `skiff-stage1-fly`: runs one app chrooted into its image's root with the
//! host's PID, network, IPC and UTS namespaces, for privileged tools that
//! must see the host (rkt's fly). **It isolates nothing**: the app runs as
//! the user says, with every capability, no seccomp filter and no cgroup.
//! Unlike rkt's fly, its mounts (the overlay root, `/dev`, `/proc`, `/sys`,
//! volumes) live in a private mount namespace, so the host's mount table
//! never sees them and nothing is left to unmount after the pod.

#![cfg_attr(not(test), no_main)]

mod supervisor;

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use skiff_pods::abi::{feature, Description};
use skiff_pods::PodManifest;
use skiff_rt::error::{Context, Result};
use skiff_stage1::entry::{Flavor, RunPod, Stdio};
use skiff_stage2::app::Prepared;

struct Fly;

impl Flavor for Fly {
    fn description(&self) -> Description {
        use feature::*;
        let features = [
            MOUNT_NAMESPACE,
            READONLY_ROOTFS,
            VOLUMES,
            OOM_SCORE_ADJ,
            ENTER,
            REMOVE_ON_EXIT,
            SOCKET_ACTIVATION,
            NOTIFY,
            LOGS,
            LOG_PATH,
            SUPPLEMENTARY_GROUPS,
        ];
        Description::new("fly", &features, "chroot only, the host's namespaces: no isolation, for privileged tools")
    }

    fn run(&self, pod: RunPod, stdio: Stdio, debug: bool) -> Result<i32> {
        supervisor::run(pod, stdio, debug)
    }

    fn enter(&self, manifest: &PodManifest, pid: i32, app: &str, argv: &[String]) -> Result<i32> {
        let app = manifest
            .apps
            .iter()
            .find(|a| a.name == app)
            .ok_or_else(|| format!("pod {} has no app {app:?}", manifest.uuid))?;
        // The app's mount namespace (the supervisor's private one) holds
        // its root where the supervisor mounted it.
        let mnt =
            std::fs::File::open(format!("/proc/{pid}/ns/mnt")).context("cannot open the pod's mount namespace")?;
        let root = std::env::current_dir().context("pod directory")?.join(supervisor::rootfs(app));
        nix::sched::setns(mnt, CloneFlags::CLONE_NEWNS).context("cannot join the pod")?;
        nix::unistd::chroot(&root).with_context(|| format!("chroot {}", root.display()))?;
        std::env::set_current_dir("/").context("chdir /")?;
        let mut spec = app.clone();
        spec.exec = argv.to_vec();
        Prepared::new(&spec, None)?.spawn_and_wait()
    }

    fn stop(&self, _: &PodManifest, pid: i32, force: bool) -> Result<()> {
        let sig = if force { Signal::SIGKILL } else { Signal::SIGTERM };
        kill(Pid::from_raw(pid), sig).context("cannot signal the app")
    }

    fn gc(&self, _: &PodManifest) -> Result<()> {
        // Everything fly made lived in a mount namespace that is gone.
        Ok(())
    }
}

skiff_rt::main!(|| skiff_stage1::entry::main(&Fly));
