//! Who holds which user-namespace range (`--private-users`, docs/pod-store.md).
//! skiff's pool of host ids (from `/etc/subuid` and `/etc/subgid`) is cut
//! into slots of [`IDS_PER_POD`] uids and gids; `pods/userns/<slot>` is a
//! symlink to the UUID of the pod that holds the slot (a [`LinkTable`],
//! changed under `pods/userns.lock`, so two pods starting at once never get
//! one slot). A pod keeps its slot until it is removed: its upper directory
//! holds files owned by the range.

use crate::layout::Store;
use crate::link_table::LinkTable;
use crate::manifest::UserNamespace;

/// The ids a pod gets: 0..65536 inside, as a distribution's users and
/// `nobody` (65534) expect.
pub const IDS_PER_POD: u32 = 65536;

/// The host ids skiff may hand out: uids `uid_base..uid_base + count` and
/// gids `gid_base..gid_base + count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    pub uid_base: u32,
    pub gid_base: u32,
    pub count: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum RangeError {
    #[error("every user-namespace range of skiff's pool is taken ({slots} pods of {IDS_PER_POD} ids); remove exited pods (skiff gc) or give skiff a bigger range in /etc/subuid and /etc/subgid")]
    Exhausted { slots: u32 },
    #[error("cannot record the pod's user-namespace range: {0}")]
    Io(std::io::Error),
}

fn table(store: &Store) -> LinkTable {
    LinkTable::new(store, "userns")
}

/// Gives pod `uuid` the first free slot of `pool`.
pub fn claim(store: &Store, pool: Pool, uuid: &str) -> Result<UserNamespace, RangeError> {
    let table = table(store);
    let _lock = table.lock().map_err(RangeError::Io)?;
    let slots = pool.count / IDS_PER_POD;
    // The first slot without a link; only when every slot has one are the
    // holders looked at (gc sweeps the links of removed pods), so a start
    // reads one directory, however many pods there are.
    let linked: std::collections::HashSet<u32> = table.keys().iter().filter_map(|k| k.parse().ok()).collect();
    let free = (0..slots)
        .find(|s| !linked.contains(s))
        .or_else(|| (0..slots).find(|s| table.holder(store, &s.to_string()).is_none()));
    let slot = free.ok_or(RangeError::Exhausted { slots })?;
    table.link(&slot.to_string(), uuid).map_err(RangeError::Io)?;
    Ok(UserNamespace {
        uid_base: pool.uid_base + slot * IDS_PER_POD,
        gid_base: pool.gid_base + slot * IDS_PER_POD,
        count: IDS_PER_POD,
        slot: Some(slot),
    })
}

/// Frees the slot of pod `uuid`'s range (the pod is being removed).
pub fn release(store: &Store, userns: &UserNamespace, uuid: &str) {
    if let Some(slot) = userns.slot {
        table(store).release(&slot.to_string(), uuid);
    }
}

/// Frees the slots of pods that are gone (gc calls it).
pub fn sweep(store: &Store) {
    table(store).sweep(store);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::Pod;

    #[test]
    fn pods_get_disjoint_ranges_until_the_pool_is_exhausted() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path());
        store.ensure_pod_dirs().unwrap();
        let pool = Pool { uid_base: 100_000, gid_base: 200_000, count: 2 * IDS_PER_POD + 5 };
        let a = Pod::create(&store).unwrap();
        let b = Pod::create(&store).unwrap();
        let c = Pod::create(&store).unwrap();
        let ra = claim(&store, pool, a.uuid()).unwrap();
        assert_eq!((ra.uid_base, ra.gid_base, ra.count), (100_000, 200_000, IDS_PER_POD));
        let rb = claim(&store, pool, b.uuid()).unwrap();
        assert_eq!(rb.uid_base, 100_000 + IDS_PER_POD);
        let e = claim(&store, pool, c.uuid()).unwrap_err();
        assert!(matches!(e, RangeError::Exhausted { slots: 2 }), "{e}");
        // Released by its removal, the range goes to the next pod.
        release(&store, &ra, a.uuid());
        assert_eq!(claim(&store, pool, c.uuid()).unwrap().uid_base, 100_000);
        // A slot whose pod vanished without releasing it is free again.
        std::fs::remove_dir(b.path()).unwrap();
        drop(b);
        let d2 = Pod::create(&store).unwrap();
        assert_eq!(claim(&store, pool, d2.uuid()).unwrap().uid_base, 100_000 + IDS_PER_POD);
        release(&store, &rb, "not-its-holder");
        assert!(table(&store).lookup("1").is_some(), "only the holder releases a slot");
    }
}
