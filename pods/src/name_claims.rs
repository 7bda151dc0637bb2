//! Who holds a pod name. A name belongs to one live pod (embryo,
//! preparing, prepared or running) at a time; once its pod has exited, it
//! still finds that pod until another pod takes the name or the pod is
//! removed. Claims hold the names lock, so of two pods
//! asking for one name at once exactly one gets it.

use crate::layout::Store;
use crate::names::{self, NameError};
use crate::state::PodState;

fn is_live(state: PodState) -> bool {
    matches!(state, PodState::Embryo | PodState::Preparing | PodState::Prepared | PodState::Running)
}

/// Gives `name` to pod `uuid`, unless a live pod other than it has it.
pub fn claim(store: &Store, name: &str, uuid: &str) -> Result<(), NameError> {
    names::check(name)?;
    let io = |err| NameError::Io { name: name.to_string(), err };
    let table = names::table(store);
    let _lock = table.lock().map_err(io)?;
    if let Some(pod) = table.holder(store, name).filter(|p| p.uuid() != uuid) {
        let state = pod.state();
        if is_live(state) {
            return Err(NameError::Taken { name: name.to_string(), uuid: pod.uuid().to_string(), state });
        }
    }
    table.link(name, uuid).map_err(io)
}

/// Removes `name`'s link if it is pod `uuid`'s (its pod is being removed).
pub fn release(store: &Store, name: &str, uuid: &str) {
    names::table(store).release(name, uuid);
}

/// Removes the links of pods that are gone (gc calls it).
pub fn sweep(store: &Store) {
    names::table(store).sweep(store);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::Pod;

    #[test]
    fn names_follow_their_live_pod() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path());
        store.ensure_pod_dirs().unwrap();
        let a = Pod::create(&store).unwrap();
        claim(&store, "web", a.uuid()).unwrap();
        assert_eq!(names::lookup(&store, "web").as_deref(), Some(a.uuid()));
        claim(&store, "web", a.uuid()).unwrap();
        let b = Pod::create(&store).unwrap();
        let err = claim(&store, "web", b.uuid()).unwrap_err();
        assert!(matches!(err, NameError::Taken { ref uuid, .. } if uuid == a.uuid()), "{err}");
        // Gone: the name is free again.
        std::fs::remove_dir(a.path()).unwrap();
        drop(a);
        claim(&store, "web", b.uuid()).unwrap();
        assert_eq!(names::lookup(&store, "web").as_deref(), Some(b.uuid()));
        std::fs::remove_dir(b.path()).unwrap();
        sweep(&store);
        assert_eq!(names::lookup(&store, "web"), None);
    }
}
