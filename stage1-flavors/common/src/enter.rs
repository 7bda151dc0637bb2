//! `enter` for flavors whose pod has an init (PID 1 of the pod's PID
//! namespace) with each app's root at `/apps/<name>` of its mount namespace
//! (stage2's layout): runs a command in the app's namespaces, cgroup, root,
//! user, environment and confinement.

use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;

use nix::sched::CloneFlags;
use nix::unistd::Pid;
use skiff_pods::cgroup::PodCgroup;
use skiff_pods::manifest::Net;
use skiff_pods::PodManifest;
use skiff_rt::error::{Context, Error, Result};
use skiff_stage2::app::Prepared;
use skiff_stage2::app_root::InitRoot;

fn open_ns(pid: Pid, ns: &str) -> Result<OwnedFd> {
    std::fs::File::open(format!("/proc/{pid}/ns/{ns}"))
        .map(OwnedFd::from)
        .with_context(|| format!("cannot open the pod's {ns} namespace"))
}

/// The pod's init, checked to still be PID 1 of a PID namespace of its own
/// (so a recycled PID is never signalled or entered).
/// Whether process `pid` is in this process's `ns` namespace.
fn same_namespace(pid: Pid, ns: &str) -> bool {
    let id = |p: &str| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    id(&format!("/proc/{pid}/ns/{ns}")) == id(&format!("/proc/self/ns/{ns}"))
}

pub fn pod_init(pid: i32) -> Result<Pid> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let ids: Vec<&str> = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|n| n.split_whitespace().collect())
        .unwrap_or_default();
    if ids.len() >= 2 && ids.last() == Some(&"1") {
        Ok(Pid::from_raw(pid))
    } else {
        Err(Error::refused(format!("process {pid} is not the pod's init (the pod is stopping)")))
    }
}

/// `cgroup`: the app's cgroup to join first, for flavors that make one.
pub fn enter(manifest: &PodManifest, init: Pid, app: &str, argv: &[String], cgroup: Option<&PodCgroup>) -> Result<i32> {
    let app = manifest
        .apps
        .iter()
        .find(|x| x.name == app)
        .ok_or_else(|| format!("pod {} has no app {app:?}", manifest.uuid))?;
    // All namespace fds first: /proc of the host is out of reach once the
    // pod's mount namespace is joined.
    let mut namespaces =
        vec![("ipc", CloneFlags::CLONE_NEWIPC), ("uts", CloneFlags::CLONE_NEWUTS), ("pid", CloneFlags::CLONE_NEWPID)];
    if manifest.net != Net::Host {
        namespaces.push(("net", CloneFlags::CLONE_NEWNET));
    }
    // The mount namespace last: the others are opened through the host's /proc.
    // The pod's own user namespace is joined (as its root) after the
    // namespaces its owner, the host's, has the rights to, and before its
    // mount namespace, which it owns.
    if manifest.user_namespace.is_some() {
        namespaces.push(("user", CloneFlags::CLONE_NEWUSER));
    }
    namespaces.push(("mnt", CloneFlags::CLONE_NEWNS));
    let fds: Vec<(OwnedFd, CloneFlags)> =
        namespaces.into_iter().map(|(ns, f)| open_ns(init, ns).map(|fd| (fd, f))).collect::<Result<_, _>>()?;
    // The init joins the pod's user namespace only once it has built the
    // pod's root: before, this would enter as the host's root.
    if manifest.user_namespace.is_some() && same_namespace(init, "user") {
        return Err(Error::refused(format!("pod {} is still starting: try again", manifest.uuid)));
    }
    if let Some(cg) = cgroup {
        // As the pod's own processes join it (this one is single-threaded).
        let join = cg.for_app(manifest.cgroup_leaves(), &app.name).open_join().map_err(Error::other)?;
        join.enter_v1().and_then(|()| join.add_v2(0)).map_err(Error::other)?;
    }
    for (fd, flag) in &fds {
        if *flag == CloneFlags::CLONE_NEWUSER {
            crate::userns::join(fd)?;
        } else {
            nix::sched::setns(fd, *flag).context("cannot join the pod's namespace")?;
        }
    }
    // Joining the init's mount namespace lands in its root: the app's own
    // (made read-only already when it asks for it), or the pod's, where the
    // app's view is a private copy rooted at its root, as the app got it.
    if InitRoot::of(manifest) == InitRoot::Pod {
        skiff_stage2::app_root::enter(app)?;
        if app.isolation.readonly_rootfs {
            skiff_stage2::app_root::make_readonly()?;
        }
    }
    let mut spec = app.clone();
    spec.exec = argv.to_vec();
    // Resolved inside the pod, like the app itself (its /etc/passwd).
    let filter = spec.isolation.seccomp.as_ref().map(skiff_stage2::seccomp::compile).transpose()?;
    let prepared = Prepared::new(&spec, filter)?;
    // The PID namespace applies to children: the command is one.
    prepared.spawn_and_wait()
}
