//! The `enter` entrypoint: runs a command in a running pod, in the app's
//! namespaces, cgroup, root, user, environment and confinement.
//!
//! `skiff-stage1-ns enter [--debug] --app NAME UUID -- CMD ARGS…` with the
//! pod directory as cwd.

use std::os::fd::OwnedFd;

use nix::sched::CloneFlags;
use nix::unistd::Pid;
use skiff_pods::cgroup::PodCgroup;
use skiff_pods::PodManifest;
use skiff_stage2::app::Prepared;

fn open_ns(pid: Pid, ns: &str) -> Result<OwnedFd, String> {
    std::fs::File::open(format!("/proc/{pid}/ns/{ns}"))
        .map(OwnedFd::from)
        .map_err(|e| format!("cannot open the pod's {ns} namespace: {e}"))
}

pub fn enter(manifest: &PodManifest, init: Pid, app: &str, argv: &[String]) -> Result<i32, String> {
    let app = manifest
        .apps
        .iter()
        .find(|x| x.name == app)
        .ok_or_else(|| format!("pod {} has no app {app:?}", manifest.uuid))?;
    // All namespace fds first: /proc of the host is out of reach once the
    // pod's mount namespace is joined.
    let fds: Vec<(OwnedFd, CloneFlags)> = [
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ]
    .into_iter()
    .map(|(ns, f)| open_ns(init, ns).map(|fd| (fd, f)))
    .collect::<Result<_, _>>()?;
    PodCgroup::for_pod(&manifest.uuid).for_app(manifest.apps.len(), &app.name).enter_self()?;
    for (fd, flag) in &fds {
        nix::sched::setns(fd, *flag).map_err(|e| format!("cannot join the pod's namespace: {e}"))?;
    }
    // Joining the init's mount namespace lands in the pod's root; the app's
    // own view is a private copy rooted at its root, as the app got it.
    skiff_stage2::app_root::enter(app)?;
    if app.isolation.readonly_rootfs {
        skiff_stage2::app_root::make_readonly()?;
    }
    let mut spec = app.clone();
    spec.exec = argv.to_vec();
    // Resolved inside the pod, like the app itself (its /etc/passwd).
    let filter = spec.isolation.seccomp.as_ref().map(skiff_stage2::seccomp::compile).transpose()?;
    let prepared = Prepared::new(&spec, filter)?;
    // The PID namespace applies to children: the command is one.
    prepared.spawn_and_wait()
}
