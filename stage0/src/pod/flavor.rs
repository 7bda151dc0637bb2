//! Choosing a stage1 flavor and knowing what it can do (docs/stage1-abi.md):
//! `--stage1 NAME` is `skiff-stage1-NAME` next to `skiff`, `--stage1 /PATH`
//! a flavor of the user's. What a flavor can do comes from its `--describe`,
//! cached per binary (keyed by path, size, mtime and inode) so that asking
//! costs a stat, not an exec, on every `run`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use skiff_pods::abi::{flavor_binary, Description, ABI_VERSION};

/// The flavor new pods get unless `--stage1` or the config file says.
pub const DEFAULT_FLAVOR: &str = "ns";

pub struct Flavor {
    /// What the manifest records: a name or an absolute path.
    pub id: String,
    pub path: PathBuf,
    pub description: Description,
}

#[derive(Serialize, Deserialize, PartialEq)]
struct CacheKey {
    path: PathBuf,
    size: u64,
    mtime_ns: i128,
    ino: u64,
}

#[derive(Serialize, Deserialize)]
struct CacheEntry {
    key: CacheKey,
    description: Description,
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 32 && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Where described flavors are cached, in the store.
pub fn cache_dir(store: &skiff_pods::Store) -> PathBuf {
    store.root().join("cache").join("stage1")
}

/// The binary for a flavor id.
pub fn path_of(id: &str) -> Result<PathBuf> {
    if id.starts_with('/') {
        return Ok(PathBuf::from(id));
    }
    if !valid_name(id) {
        bail!("invalid stage1 flavor {id:?}: give a name such as ns, fly, nspawn, or an absolute path");
    }
    Ok(skiff_dir()?.join(flavor_binary(id)))
}

/// The directory of the `skiff` executable, where its flavors and its CNI
/// plugin (`skiff-bridge`) are installed beside it.
pub fn skiff_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the skiff executable")?;
    Ok(exe.parent().ok_or_else(|| anyhow!("skiff executable has no directory"))?.to_path_buf())
}

impl Flavor {
    /// Finds flavor `id` and what it can do. `cache_dir` holds described
    /// flavors (inside the store).
    pub fn find(id: &str, cache_dir: &Path) -> Result<Flavor> {
        let path = path_of(id)?;
        let md = std::fs::metadata(&path)
            .map_err(|e| anyhow!("stage1 flavor {id:?} is not installed: {}: {e}", path.display()))?;
        if !md.is_file() {
            bail!("stage1 flavor {id:?}: {} is not a file", path.display());
        }
        let key = CacheKey {
            path: path.clone(),
            size: md.size(),
            mtime_ns: i128::from(md.mtime()) * 1_000_000_000 + i128::from(md.mtime_nsec()),
            ino: md.ino(),
        };
        let cache_name = format!("{}.json", id.trim_start_matches('/').replace('/', "_"));
        let cached = std::fs::read(cache_dir.join(&cache_name))
            .ok()
            .and_then(|d| serde_json::from_slice::<CacheEntry>(&d).ok())
            .filter(|e| e.key == key);
        let description = match cached {
            Some(e) => e.description,
            None => {
                let d = describe(id, &path)?;
                let entry = serde_json::to_vec(&CacheEntry { key, description: d.clone() }).unwrap_or_default();
                // A cache that cannot be written only costs the next run an exec.
                let _ = std::fs::create_dir_all(cache_dir)
                    .and_then(|()| skiff_pods::atomic::write_atomic(cache_dir, &cache_name, &entry));
                d
            }
        };
        if description.abi_version != ABI_VERSION {
            bail!(
                "stage1 flavor {id:?} speaks stage1 ABI {}, this skiff speaks {ABI_VERSION}",
                description.abi_version
            );
        }
        Ok(Flavor { id: id.to_string(), path, description })
    }

    pub fn name(&self) -> &str {
        &self.description.name
    }

    pub fn supports(&self, feature: &str) -> bool {
        self.description.supports(feature)
    }

    /// An error naming the flavor and the feature when it lacks it.
    pub fn require(&self, feature: &str, asked_by: &str) -> Result<()> {
        if !self.supports(feature) {
            bail!("stage1 flavor {} does not support {feature} (asked for by {asked_by})", self.name());
        }
        Ok(())
    }
}

fn describe(id: &str, path: &Path) -> Result<Description> {
    let out = std::process::Command::new(path)
        .arg("--describe")
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("cannot run stage1 flavor {id:?} ({})", path.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!("stage1 flavor {id:?}: --describe failed: {}", err.lines().next().unwrap_or("no message"));
    }
    Description::from_json(&out.stdout).map_err(|e| anyhow!("stage1 flavor {id:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavor_ids() {
        assert!(path_of("ns").unwrap().ends_with("skiff-stage1-ns"));
        assert_eq!(path_of("/opt/x/my-flavor").unwrap(), PathBuf::from("/opt/x/my-flavor"));
        for bad in ["", "../ns", "Ns", "a/b", "x y"] {
            assert!(path_of(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn described_flavors_are_cached_and_checked() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("flavor");
        let write = |json: &str| {
            std::fs::write(&bin, format!("#!/bin/sh\necho '{json}'\n")).unwrap();
            std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        };
        write(&format!(r#"{{"name":"t","abi_version":{ABI_VERSION},"features":["enter"]}}"#));
        let id = bin.to_str().unwrap();
        let f = Flavor::find(id, &d.path().join("cache")).unwrap();
        assert!(f.supports("enter") && f.require("terminal", "-t").unwrap_err().to_string().contains("terminal"));
        assert!(d.path().join("cache").read_dir().unwrap().count() == 1);
        // A changed binary is described again.
        write(r#"{"name":"t","abi_version":99,"features":[]}"#);
        let err = Flavor::find(id, &d.path().join("cache")).err().unwrap().to_string();
        assert!(err.contains("ABI 99"), "{err}");
        write("not json");
        assert!(Flavor::find(id, &d.path().join("cache")).is_err());
        assert!(Flavor::find("/nonexistent/flavor", &d.path().join("cache")).is_err());
    }
}
