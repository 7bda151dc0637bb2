//! What a server killed in the middle of a call left behind, healed by the
//! next one before it serves (docs/reliability.md): a container record
//! whose app was never added or is removed already, the records and logs
//! of removed sandboxes, and the UUID files and logs of sandboxes whose
//! start it did not see through. Only one server serves a store
//! ([`ServerLock`]), so nothing here is another call's work in progress.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;

use crate::error::{CriError, Result};
use crate::pods::PodJson;
use crate::runtime::Runtime;

/// `<store>/cri/server.lock`, held while a server serves the store.
pub struct ServerLock {
    _file: File,
}

impl ServerLock {
    pub fn take(cri_dir: &Path) -> std::result::Result<ServerLock, String> {
        let path = cri_dir.join("server.lock");
        let f = File::create(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        match f.try_lock() {
            Ok(()) => Ok(ServerLock { _file: f }),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(format!("another skiff cri serves this store (it holds {})", path.display()))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
        }
    }
}

impl Runtime {
    /// Removes what no finished call would have left; what it removed,
    /// one line each.
    pub async fn heal(&self) -> Result<Vec<String>> {
        let pods: Vec<PodJson> = self.skiff.json(&["list", "--format", "json"]).await?;
        let sandboxes: BTreeSet<&str> =
            pods.iter().filter(|p| p.sandbox().is_some()).map(|p| p.uuid.as_str()).collect();
        let mut healed = Vec::new();
        // (A record of a pod that is gone has no app either.)
        for (r, _) in self.containers(None).await?.into_iter().filter(|(_, app)| app.is_none()) {
            self.records.remove(&r.id)?;
            healed.push(format!("container {} (no app {} in pod {})", r.id, r.app, r.sandbox_id));
        }
        let runs = self.skiff.cri_dir().join("runs");
        for entry in std::fs::read_dir(&runs).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pod = name.strip_suffix(".log").filter(|u| sandboxes.contains(u));
            if pod.is_none() {
                std::fs::remove_file(entry.path())
                    .map_err(|e| CriError::internal(&format!("cannot remove {}", entry.path().display()), e))?;
                healed.push(format!("file {}", entry.path().display()));
            }
        }
        Ok(healed)
    }
}
