//! Named volumes of the store: `<store>/volumes/<name>/`, data that
//! outlives pods (what `play kube` makes of a persistentVolumeClaim). A pod
//! binds one as a host path; `skiff volume list` and `skiff volume rm` show
//! and remove them.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use skiff_pods::manifest::MountSource;
use skiff_pods::{Pod, PodState, Store};

pub fn dir(store: &Store) -> PathBuf {
    store.root().join("volumes")
}

fn checked(store: &Store, name: &str) -> Result<PathBuf> {
    if !super::volume::valid_volume_name(name) {
        bail!("invalid volume name {name:?}: use letters, digits, '_', '.' and '-' (at most 64)");
    }
    Ok(dir(store).join(name))
}

/// Volume `name`'s directory, made (empty, 0755) if it is new.
pub fn ensure(store: &Store, name: &str) -> Result<PathBuf> {
    let path = checked(store, name)?;
    std::fs::create_dir_all(&path).with_context(|| format!("cannot create volume {name} ({})", path.display()))?;
    Ok(path)
}

/// The store's named volumes, by name.
pub fn list(store: &Store) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(dir(store))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().to_str().map(|n| (n.to_string(), e.path())))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The pods (UUIDs) whose apps mount `path`, and whether each is live.
pub fn users(store: &Store, path: &Path) -> Vec<(String, bool)> {
    Pod::all(store)
        .into_iter()
        .filter_map(|pod| {
            let m = pod.read_manifest().ok()?;
            let mounts = m.apps.iter().flat_map(|a| &a.mounts);
            let uses = mounts.into_iter().any(|mt| matches!(&mt.source, MountSource::Host(p) if p == path));
            let live =
                matches!(pod.state(), PodState::Embryo | PodState::Preparing | PodState::Prepared | PodState::Running);
            uses.then(|| (pod.uuid().to_string(), live))
        })
        .collect()
}

/// Removes volume `name` and what is in it, unless a live pod mounts it.
pub fn remove(store: &Store, name: &str) -> Result<()> {
    let path = checked(store, name)?;
    if !path.is_dir() {
        bail!("no volume named {name}");
    }
    if let Some((uuid, _)) = users(store, &path).into_iter().find(|(_, live)| *live) {
        bail!("volume {name} is in use by pod {uuid}: stop and remove the pod first");
    }
    std::fs::remove_dir_all(&path).with_context(|| format!("cannot remove volume {name} ({})", path.display()))
}
