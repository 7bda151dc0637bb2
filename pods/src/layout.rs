//! Where things live under the store directory (default `/var/lib/skiff`).

use std::io;
use std::path::{Path, PathBuf};

use crate::state::StateDir;

pub const DEFAULT_DIR: &str = "/var/lib/skiff";

/// Files stage1 writes into the pod directory (see `docs/stage1-abi.md`).
pub const PID_FILE: &str = "pid";
pub const STARTED_FILE: &str = "started";
/// Written by stage1 once every app of the pod has been started.
pub const READY_FILE: &str = "ready";
/// A flavor's own scratch directory in the pod directory.
pub const STAGE1_DIR: &str = "stage1";
/// The pod's network namespace, pinned by a bind mount (docs/networking.md).
pub const NETNS_FILE: &str = "netns";
/// The CNI result of the pod's network attachment.
pub const NET_RESULT_FILE: &str = "net.json";
/// Written by a flavor whose `run` freed, before it ended, everything it
/// held outside the pod directory: gc then has no `gc` entrypoint to call.
pub const RELEASED_FILE: &str = "released";
/// Written by gc when it marks an exited pod as garbage.
pub const GC_MARK_FILE: &str = "gc-marked";
/// In the store directory, created once every directory of the store
/// exists: while it does, making sure of the layout is one stat instead of
/// one per directory (a dozen, on every pod start).
pub const LAYOUT_FILE: &str = ".layout";

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

    /// The store a pod directory (`<root>/pods/<state>/<uuid>`) is in.
    pub fn of_pod_dir(pod_dir: &Path) -> Option<Store> {
        pod_dir.ancestors().nth(3).map(Store::new)
    }

    /// Creates the store directory itself, readable by root only: pod
    /// manifests hold the apps' environment and pods' upper dirs their data.
    pub fn ensure_root(&self) -> io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        if self.root.is_dir() {
            return Ok(());
        }
        if let Some(parent) = self.root.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(&self.root) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
            _ => Ok(()),
        }
    }

    /// Creates the store's directories, the pod state directories and
    /// `extra` (the image half's, which stage0 owns), once: then
    /// [`LAYOUT_FILE`] says they exist. (A directory removed by hand after
    /// that makes the commands that need it fail, naming it; removing the
    /// marker too has the next command make them again; `Pod::create`
    /// remakes missing pod state directories itself.)
    pub fn ensure_layout(&self, extra: &[PathBuf]) -> io::Result<()> {
        let marker = self.root.join(LAYOUT_FILE);
        if marker.exists() {
            return Ok(());
        }
        self.ensure_pod_dirs()?;
        for d in extra {
            create_dir_all(d)?;
        }
        // A store made on a full disk has none until gc finds room.
        let _ = crate::reserve::ensure(&self.root);
        // Only its existence matters, and only after everything above.
        std::fs::File::create(marker).map(drop)
    }

    /// Creates the pod state directories; cheap when they exist.
    pub fn ensure_pod_dirs(&self) -> io::Result<()> {
        self.ensure_root()?;
        for d in StateDir::ALL {
            let p = self.pods_dir(d);
            if !p.is_dir() {
                create_dir_all(&p)?;
            }
        }
        Ok(())
    }
}

/// `create_dir_all`, whose error names the directory (the callers name
/// only the store).
fn create_dir_all(d: &Path) -> io::Result<()> {
    std::fs::create_dir_all(d).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", d.display())))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_store_is_private() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path().join("a/store"));
        s.ensure_pod_dirs().unwrap();
        let mode = std::fs::metadata(s.root()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(s.pods_dir(StateDir::ExitedGarbage).is_dir());
    }

    #[test]
    fn the_layout_is_made_once_and_then_trusted() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path().join("store"));
        let extra = s.root().join("cas/blobs");
        s.ensure_layout(std::slice::from_ref(&extra)).unwrap();
        assert!(extra.is_dir() && s.pods_dir(StateDir::Embryo).is_dir());
        assert!(s.root().join(LAYOUT_FILE).is_file());
        // Trusted: a directory removed behind its back is not made again...
        std::fs::remove_dir(&extra).unwrap();
        s.ensure_layout(std::slice::from_ref(&extra)).unwrap();
        assert!(!extra.exists());
        // ...until the marker goes too.
        std::fs::remove_file(s.root().join(LAYOUT_FILE)).unwrap();
        s.ensure_layout(std::slice::from_ref(&extra)).unwrap();
        assert!(extra.is_dir());
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_named() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path().join("store"));
        std::fs::create_dir_all(s.root()).unwrap();
        std::fs::write(s.root().join("cas"), "a file where a directory goes").unwrap();
        let err = s.ensure_layout(&[s.root().join("cas/blobs")]).unwrap_err().to_string();
        assert!(err.contains("store/cas/blobs"), "{err}");
        assert!(!s.root().join(LAYOUT_FILE).exists(), "no marker for a layout not made");
    }
}
