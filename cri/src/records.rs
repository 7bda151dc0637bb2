//! What the server keeps of each container beyond the pod store:
//! Kubernetes' metadata, labels, annotations and log path, one JSON file
//! per container under `<dir>/cri/containers/`, written atomically before
//! its app is added (a record whose app never came is dropped on sight).
//! A sandbox needs no file of its own: its metadata rides in its pod's
//! annotations, written with the pod.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{CriError, Result};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    /// The sandbox's pod UUID.
    pub sandbox_id: String,
    /// The app's name in that pod.
    pub app: String,
    pub name: String,
    pub attempt: u32,
    /// The image as the kubelet named it.
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The log file on the host (`log_directory`/`log_path`), or empty.
    pub log_path: String,
    /// Nanoseconds since the epoch.
    pub created_at: i64,
    /// The sandbox's cgroup parent, where the app's cgroup is.
    #[serde(default)]
    pub cgroup_parent: Option<String>,
}

/// The sandbox's metadata, kept in its pod's annotation [`SANDBOX_KEY`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SandboxMeta {
    pub name: String,
    pub uid: String,
    pub namespace: String,
    pub attempt: u32,
    pub log_directory: String,
    pub runtime_handler: String,
    /// The cgroup the pod's is under (else skiff's `/skiff`).
    #[serde(default)]
    pub cgroup_parent: Option<String>,
}

/// The annotation that marks a pod as a CRI sandbox and holds its
/// [`SandboxMeta`] (JSON). Annotations under this prefix are the
/// server's, never shown to the kubelet.
pub const SANDBOX_KEY: &str = "io.skiff.cri/sandbox";
pub const RESERVED_PREFIX: &str = "io.skiff.cri/";

pub struct Records {
    dir: PathBuf,
}

impl Records {
    pub fn open(cri_dir: &std::path::Path) -> Result<Records> {
        let dir = cri_dir.join("containers");
        std::fs::create_dir_all(&dir)
            .map_err(|e| CriError::internal(&format!("cannot create {}", dir.display()), e))?;
        Ok(Records { dir })
    }

    pub fn save(&self, r: &ContainerRecord) -> Result<()> {
        let data = serde_json::to_vec_pretty(r).map_err(|e| CriError::internal("cannot encode a record", e))?;
        skiff_pods::atomic::write_atomic(&self.dir, &file_name(&r.id), &data)
            .map_err(|e| CriError::internal(&format!("cannot write the record of container {}", r.id), e))
    }

    pub fn remove(&self, id: &str) -> Result<()> {
        match std::fs::remove_file(self.dir.join(file_name(id))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(CriError::internal(&format!("cannot remove the record of container {id}"), e))
            }
            _ => Ok(()),
        }
    }

    /// Every record, oldest first; unreadable files are skipped.
    pub fn all(&self) -> Vec<ContainerRecord> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut out: Vec<ContainerRecord> = entries
            .flatten()
            .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".json") && !n.starts_with('.')))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|d| serde_json::from_slice(&d).ok())
            .collect();
        out.sort_by_key(|r| r.created_at);
        out
    }

    /// The one record whose ID is `id` or starts with it.
    pub fn find(&self, id: &str) -> Result<ContainerRecord> {
        if id.is_empty() {
            return Err(CriError::InvalidArgument("no container ID given".into()));
        }
        let mut found: Vec<ContainerRecord> = self.all().into_iter().filter(|r| r.id.starts_with(id)).collect();
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(CriError::NotFound(format!("no container with ID {id:?}"))),
            n => Err(CriError::InvalidArgument(format!("container ID prefix {id:?} matches {n} containers"))),
        }
    }
}

fn file_name(id: &str) -> String {
    format!("{id}.json")
}

/// A new container ID: 32 random bytes in hex, as other runtimes make them.
pub fn new_id() -> Result<String> {
    let mut b = [0u8; 32];
    rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty())
        .map_err(|e| CriError::internal("cannot read random bytes", e))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, t: i64) -> ContainerRecord {
        ContainerRecord {
            id: id.into(),
            sandbox_id: "s".into(),
            app: "a-0".into(),
            name: "a".into(),
            attempt: 0,
            image: "i".into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            log_path: String::new(),
            created_at: t,
            cgroup_parent: None,
        }
    }

    #[test]
    fn records_round_trip_and_prefixes_must_be_unique() {
        let d = tempfile::tempdir().unwrap();
        let r = Records::open(d.path()).unwrap();
        r.save(&rec("abc1", 2)).unwrap();
        r.save(&rec("abc2", 1)).unwrap();
        std::fs::write(d.path().join("containers/broken.json"), "{").unwrap();
        assert_eq!(r.all().iter().map(|x| x.id.as_str()).collect::<Vec<_>>(), ["abc2", "abc1"]);
        assert_eq!(r.find("abc1").unwrap(), rec("abc1", 2));
        assert!(matches!(r.find("abc"), Err(CriError::InvalidArgument(_))));
        assert!(matches!(r.find("zz"), Err(CriError::NotFound(_))));
        assert!(matches!(r.find(""), Err(CriError::InvalidArgument(_))));
        r.remove("abc1").unwrap();
        r.remove("abc1").unwrap();
        assert_eq!(r.all().len(), 1);
        let id = new_id().unwrap();
        assert!(id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
