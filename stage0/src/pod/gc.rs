//! Garbage collection of pods (rkt's two passes): mark exited and aborted
//! pods, then sweep what has been garbage for longer than the grace period.

use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Context, Result};
use skiff_pods::cgroup::PodCgroup;
use skiff_pods::layout::{GC_MARK_FILE, NETNS_FILE, RELEASED_FILE};
use skiff_pods::{atomic, time, Pod, PodState, StateDir, Store};

use super::flavor::{self, Flavor};
use super::handoff;
use super::unmount::unmount_all_under;

pub struct GcOptions {
    pub grace_period: Duration,
    pub expire_prepared: Duration,
}

fn older_than(t: Option<SystemTime>, age: Duration) -> bool {
    t.and_then(|t| SystemTime::now().duration_since(t).ok()).is_some_and(|d| d >= age)
}

/// What one gc run did. A pod that could not be handled does not stop the
/// others; it is listed in `failed` and retried by the next run.
#[derive(Debug, Default)]
pub struct GcReport {
    pub deleted: Vec<String>,
    pub failed: Vec<String>,
}

/// Runs both passes.
pub fn gc(store: &Store, opts: &GcOptions) -> GcReport {
    let mut report = GcReport::default();
    // What is mounted, read once: nothing is mounted under a pod that is
    // over while gc holds its lock, and most have nothing (reading the
    // mount table per pod was a tenth of a gc of a thousand pods).
    let mounts = Mounts::snapshot();
    skiff_pods::pod::sweep_unborn(store);
    for mut pod in Pod::all(store) {
        let to = match pod.state() {
            PodState::Exited => StateDir::ExitedGarbage,
            // (An embryo whose creator died is one too.)
            PodState::AbortedPrepare => StateDir::Garbage,
            PodState::Prepared if older_than(created_at(&pod), opts.expire_prepared) => StateDir::Garbage,
            _ => continue,
        };
        // Someone else may have taken it meanwhile: skip it this time.
        if pod.try_lock().is_err() {
            continue;
        }
        if to == StateDir::ExitedGarbage {
            // Not synced: a mark a crash loses only makes the pod wait
            // for the next gc.
            let _ = atomic::replace_at(&pod, GC_MARK_FILE, time::now_rfc3339().as_bytes());
        }
        if let Err(e) = pod.transition(to) {
            report.failed.push(format!("{e:#}"));
        }
    }
    for mut pod in Pod::all(store) {
        let due = match pod.state() {
            PodState::ExitedGarbage => older_than(marked_at(&pod), opts.grace_period),
            PodState::Garbage => true,
            _ => false,
        };
        if due && pod.try_lock().is_ok() {
            let uuid = pod.uuid().to_string();
            match destroy_in(store, pod, &mounts) {
                Ok(()) => report.deleted.push(uuid),
                Err(e) => report.failed.push(format!("{e:#}")),
            }
        }
    }
    skiff_pods::cgroup::remove_empty_parents();
    // What a full disk took is made again once there is room; until then
    // there is none to take.
    let _ = skiff_pods::reserve::ensure(store.root());
    report
}

fn created_at(pod: &Pod) -> Option<SystemTime> {
    pod.read_manifest().ok().and_then(|m| time::parse_rfc3339(&m.created_at)).or_else(|| pod.changed_at())
}

fn marked_at(pod: &Pod) -> Option<SystemTime> {
    std::fs::read_to_string(pod.path().join(GC_MARK_FILE))
        .ok()
        .and_then(|s| time::parse_rfc3339(&s))
        .or_else(|| pod.changed_at())
}

/// Deletes a pod this process has locked: moves it to `garbage/` first (so
/// an interrupted delete is finished by the next gc), lets its flavor free
/// what it holds outside the pod directory, unmounts whatever is still
/// mounted under it, then removes the tree.
pub fn destroy(store: &Store, pod: Pod) -> Result<()> {
    destroy_in(store, pod, &Mounts::Unknown)
}

/// What gc knows of the mount table.
enum Mounts {
    /// Read before the pods were handled.
    Snapshot(String),
    Unknown,
}

impl Mounts {
    fn snapshot() -> Mounts {
        std::fs::read_to_string("/proc/self/mountinfo").map_or(Mounts::Unknown, Mounts::Snapshot)
    }

    /// Whether anything may be mounted under pod `uuid`'s directory.
    fn maybe_under(&self, uuid: &str) -> bool {
        match self {
            Mounts::Snapshot(info) => info.contains(uuid),
            Mounts::Unknown => true,
        }
    }
}

fn destroy_in(store: &Store, mut pod: Pod, mounts: &Mounts) -> Result<()> {
    if pod.state_dir() != StateDir::Garbage {
        pod.transition(StateDir::Garbage)?;
    }
    let dir = pod.path();
    // A failed release keeps the pod for the next run to try again.
    release(store, &pod)?;
    if mounts.maybe_under(pod.uuid()) {
        let stuck = unmount_all_under(&dir);
        if !stuck.is_empty() {
            return Err(anyhow!("pod {}: cannot unmount {}", pod.uuid(), stuck[0].display()));
        }
    }
    skiff_rt::failpoint!("gc.pod")
        .and_then(|()| std::fs::remove_dir_all(&dir))
        .with_context(|| format!("cannot remove {}", dir.display()))
}

/// Removes a pod this process has locked ([`destroy`]) and frees its name
/// and user-namespace range.
pub fn remove(store: &Store, pod: Pod) -> Result<()> {
    let manifest = pod.read_manifest().ok();
    destroy(store, pod)?;
    if let Some(m) = manifest {
        skiff_pods::claims::release(store, &m);
    }
    Ok(())
}

/// Frees what a pod that is over still holds outside its directory: what
/// its flavor's `gc` entrypoint frees (the network: DNAT rules, veths, CNI
/// leases; cgroups) and the pod's (empty) cgroup. The pod itself stays as
/// it is. The caller holds the pod's lock.
pub fn release(store: &Store, pod: &Pod) -> Result<()> {
    // The flavor's run freed everything before it ended (docs/stage1-abi.md).
    if pod.path().join(RELEASED_FILE).exists() {
        return Ok(());
    }
    let manifest = pod.read_manifest().ok();
    if let Some(m) = &manifest {
        match Flavor::find(&m.flavor, &flavor::cache_dir(store)) {
            Ok(f) => handoff::call(&pod.path(), pod.uuid(), &f, false, "gc", &[])?,
            // Nothing can run the gc of a flavor that is gone; what skiff
            // itself knows of (cgroup, mounts) is cleaned anyway.
            Err(e) => eprintln!("skiff: pod {}: {e:#}", pod.uuid()),
        }
    }
    // A pod whose supervisor was SIGKILLed leaves its (empty) cgroup.
    let parent = manifest.as_ref().and_then(|m| m.cgroup_parent.as_deref());
    PodCgroup::for_pod_in(parent, pod.uuid()).remove().with_context(|| {
        format!("pod {}: cannot remove its cgroup {}", pod.uuid(), PodCgroup::name(parent, pod.uuid()))
    })
}

/// Releases the networks still attached to pods whose supervisor died
/// (killed, or its node crashed): such a pod reads as exited, but the
/// namespace its flavor pinned is still there, with the pod's published
/// ports and addresses. Called by whoever needs those next (a pod asking
/// for a port or an address), under the lock that serialises the claims;
/// each pod is released under its own lock and keeps its status. Returns
/// the pods that could not be released (their claims still stand).
pub fn release_dead_networks(store: &Store) -> Vec<(String, anyhow::Error)> {
    let mut failed = Vec::new();
    for mut pod in Pod::all(store) {
        if pod.state_dir() != StateDir::Run || !pod.path().join(NETNS_FILE).exists() {
            continue;
        }
        // Locked: it is running (or another skiff is releasing it).
        if pod.state() == PodState::Running || pod.try_lock().is_err() {
            continue;
        }
        crate::debug!("pod {}: its supervisor is gone; releasing its network", pod.uuid());
        if let Err(e) = release(store, &pod) {
            failed.push((pod.uuid().to_string(), e));
        }
    }
    failed
}
