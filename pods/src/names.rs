//! Pod names (`--name`): `pods/names/<name>` is a symlink whose target is
//! the UUID of the pod that has the name. A name belongs to one live pod
//! (embryo, preparing, prepared or running) at a time; once its pod has
//! exited, it still finds that pod until another pod takes the name or the
//! pod is removed. Claims are serialised by a lock on `pods/names.lock`, so
//! of two pods asking for one name at once exactly one gets it.

use std::fs::File;
use std::path::PathBuf;

use crate::layout::Store;
use crate::pod::Pod;
use crate::state::PodState;

#[derive(Debug, thiserror::Error)]
pub enum NameError {
    #[error(
        "invalid pod name {0:?}: use letters, digits, '_', '.' and '-' (at most 64), starting with a letter or digit"
    )]
    Invalid(String),
    #[error("pod name {name} is taken by pod {uuid}, which is {state}")]
    Taken { name: String, uuid: String, state: PodState },
    #[error("cannot record pod name {name}: {err}")]
    Io { name: String, err: std::io::Error },
}

pub fn check(name: &str) -> Result<(), NameError> {
    let ok = name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(NameError::Invalid(name.to_string()))
    }
}

fn dir(store: &Store) -> PathBuf {
    store.root().join("pods").join("names")
}

/// The UUID the name points to, if it is a valid name that has a link.
pub fn lookup(store: &Store, name: &str) -> Option<String> {
    check(name).ok()?;
    let target = std::fs::read_link(dir(store).join(name)).ok()?;
    target.to_str().filter(|u| crate::uuid::is_valid(u)).map(str::to_string)
}

/// Held while a name's link changes.
fn lock(store: &Store) -> std::io::Result<File> {
    std::fs::create_dir_all(dir(store))?;
    let lock = File::create(store.root().join("pods").join("names.lock"))?;
    lock.lock()?;
    Ok(lock)
}

fn is_live(state: PodState) -> bool {
    matches!(state, PodState::Embryo | PodState::Preparing | PodState::Prepared | PodState::Running)
}

/// Gives `name` to pod `uuid`, unless a live pod other than it has it.
pub fn claim(store: &Store, name: &str, uuid: &str) -> Result<(), NameError> {
    check(name)?;
    let io = |err| NameError::Io { name: name.to_string(), err };
    let d = dir(store);
    let _lock = lock(store).map_err(io)?;
    if let Some(holder) = lookup(store, name).filter(|h| h != uuid) {
        if let Some(pod) = Pod::find(store, &holder).ok().filter(|p| p.uuid() == holder) {
            let state = pod.state();
            if is_live(state) {
                return Err(NameError::Taken { name: name.to_string(), uuid: holder, state });
            }
        }
    }
    // A new link renamed over the old one: the name never dangles half-made.
    let tmp = d.join(format!(".{name}.{uuid}"));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(uuid, &tmp).map_err(io)?;
    std::fs::rename(&tmp, d.join(name)).map_err(io)
}

/// Removes `name`'s link if it is pod `uuid`'s (its pod is being removed).
pub fn release(store: &Store, name: &str, uuid: &str) {
    let Ok(_lock) = lock(store) else { return };
    if lookup(store, name).as_deref() == Some(uuid) {
        let _ = std::fs::remove_file(dir(store).join(name));
    }
}

/// Removes the links of pods that are gone (gc calls it).
pub fn sweep(store: &Store) {
    let Ok(_lock) = lock(store) else { return };
    let Ok(rd) = std::fs::read_dir(dir(store)) else { return };
    for e in rd.flatten() {
        let gone = match std::fs::read_link(e.path()) {
            Ok(t) => t.to_str().is_none_or(|u| !Pod::find(store, u).is_ok_and(|p| p.uuid() == u)),
            Err(_) => true,
        };
        if gone {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_their_live_pod() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path());
        store.ensure_pod_dirs().unwrap();
        let a = Pod::create(&store).unwrap();
        claim(&store, "web", a.uuid()).unwrap();
        assert_eq!(lookup(&store, "web").as_deref(), Some(a.uuid()));
        claim(&store, "web", a.uuid()).unwrap();
        let b = Pod::create(&store).unwrap();
        let err = claim(&store, "web", b.uuid()).unwrap_err();
        assert!(matches!(err, NameError::Taken { ref uuid, .. } if uuid == a.uuid()), "{err}");
        // Gone: the name is free again.
        std::fs::remove_dir(a.path()).unwrap();
        drop(a);
        claim(&store, "web", b.uuid()).unwrap();
        assert_eq!(lookup(&store, "web").as_deref(), Some(b.uuid()));
        std::fs::remove_dir(b.path()).unwrap();
        sweep(&store);
        assert_eq!(lookup(&store, "web"), None);
        for bad in ["", "-x", "a/b", "..", ".hidden", &"x".repeat(65), "a b"] {
            assert!(matches!(check(bad), Err(NameError::Invalid(_))), "{bad}");
            assert_eq!(lookup(&store, bad), None);
        }
    }
}
