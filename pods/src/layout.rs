//! Where things live under the store directory (default `/var/lib/skiff`).

use std::io;
use std::path::{Path, PathBuf};

use crate::state::StateDir;

pub const DEFAULT_DIR: &str = "/var/lib/skiff";

/// Files stage1 writes into the pod directory (see `docs/stage1-abi.md`).
pub const PID_FILE: &str = "pid";
pub const STARTED_FILE: &str = "started";
/// Written by gc when it marks an exited pod as garbage.
pub const GC_MARK_FILE: &str = "gc-marked";

#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn pods_dir(&self, d: StateDir) -> PathBuf {
        self.root.join("pods").join(d.dir_name())
    }

    pub fn pod_path(&self, d: StateDir, uuid: &str) -> PathBuf {
        self.pods_dir(d).join(uuid)
    }

    /// Creates the pod state directories; cheap when they exist.
    pub fn ensure_pod_dirs(&self) -> io::Result<()> {
        for d in StateDir::ALL {
            let p = self.pods_dir(d);
            if !p.is_dir() {
                std::fs::create_dir_all(&p)?;
            }
        }
        Ok(())
    }
}
