//! A table of symlinks in the store, `<key> → <pod UUID>`, changed under
//! one lock: the pod names (`pods/names`, [`crate::names`]) and the
//! user-namespace ranges (`pods/userns`, [`crate::id_ranges`]). A link is
//! made as a new symlink renamed over the old one, so a key never dangles
//! half-made.

use std::fs::File;
use std::path::PathBuf;

use crate::layout::Store;
use crate::pod::Pod;

pub(crate) struct LinkTable {
    dir: PathBuf,
    lock: PathBuf,
}

impl LinkTable {
    /// The table in `pods/<name>`, locked on `pods/<name>.lock`.
    pub(crate) fn new(store: &Store, name: &str) -> LinkTable {
        let pods = store.root().join("pods");
        LinkTable { dir: pods.join(name), lock: pods.join(format!("{name}.lock")) }
    }

    /// The UUID `key` points to, if it points to one.
    pub(crate) fn lookup(&self, key: &str) -> Option<String> {
        let target = std::fs::read_link(self.dir.join(key)).ok()?;
        target.to_str().filter(|u| crate::uuid::is_valid(u)).map(str::to_string)
    }

    /// Held while a link changes.
    pub(crate) fn lock(&self) -> std::io::Result<File> {
        std::fs::create_dir_all(&self.dir)?;
        let lock = File::create(&self.lock)?;
        lock.lock()?;
        Ok(lock)
    }

    /// Points `key` at `uuid`. The caller holds [`LinkTable::lock`].
    pub(crate) fn link(&self, key: &str, uuid: &str) -> std::io::Result<()> {
        let tmp = self.dir.join(format!(".{key}.{uuid}"));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(uuid, &tmp)?;
        std::fs::rename(&tmp, self.dir.join(key))
    }

    /// Removes `key`'s link if it points to `uuid` (its pod is being
    /// removed).
    pub(crate) fn release(&self, key: &str, uuid: &str) {
        let Ok(_lock) = self.lock() else { return };
        if self.lookup(key).as_deref() == Some(uuid) {
            let _ = std::fs::remove_file(self.dir.join(key));
        }
    }

    /// The pod `key` points to, if it still exists (else the key is free
    /// for a new holder).
    pub(crate) fn holder(&self, store: &Store, key: &str) -> Option<Pod> {
        let holder = self.lookup(key)?;
        Pod::find(store, &holder).ok().filter(|p| p.uuid() == holder)
    }

    /// The keys that have a link (whether their pod exists or not).
    pub(crate) fn keys(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        rd.flatten()
            .filter_map(|e| e.file_name().to_str().filter(|k| !k.starts_with('.')).map(str::to_string))
            .collect()
    }

    /// Removes the links of pods that are gone (gc calls it).
    pub(crate) fn sweep(&self, store: &Store) {
        let Ok(_lock) = self.lock() else { return };
        for key in self.keys() {
            if self.holder(store, &key).is_none() {
                let _ = std::fs::remove_file(self.dir.join(key));
            }
        }
    }
}
