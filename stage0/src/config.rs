//! skiff's configuration file: `/etc/skiff/config.toml`, or `--config FILE`
//! (docs/config.md). Absent file, defaults.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use serde::Deserialize;

pub const DEFAULT_PATH: &str = "/etc/skiff/config.toml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// The stage1 flavor of new pods (a name or an absolute path).
    pub stage1: Option<String>,
    /// New pods' `--private-users` when they do not say (`auto`, `no`,
    /// `BASE:COUNT`).
    pub private_users: Option<String>,
    /// Where skiff's range of subordinate uids is [default: /etc/subuid].
    pub subuid_file: Option<PathBuf>,
    /// Where skiff's range of subordinate gids is [default: /etc/subgid].
    pub subgid_file: Option<PathBuf>,
}

impl Config {
    /// `path` given by `--config` must exist; the default one may not.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let (path, required) = match path {
            Some(p) => (p, true),
            None => (Path::new(DEFAULT_PATH), false),
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read config file {}", path.display())),
        };
        crate::spec::from_toml(&text).map_err(|e| anyhow!("{}:{e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.toml");
        std::fs::write(&p, "stage1 = \"fly\"\n").unwrap();
        assert_eq!(Config::load(Some(&p)).unwrap().stage1.as_deref(), Some("fly"));
        std::fs::write(&p, "stage1 = \"fly\"\nstgae2 = 1\n").unwrap();
        let e = Config::load(Some(&p)).unwrap_err().to_string();
        assert!(e.contains(":2:1:") && e.contains("stgae2"), "{e}");
        assert!(Config::load(Some(&d.path().join("missing"))).is_err());
    }
}
