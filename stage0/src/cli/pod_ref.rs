//! How commands name pods: by name (`--name`), UUID or unique UUID prefix,
//! or with `--uuid-file FILE` holding a UUID (as `--uuid-file-save` wrote
//! it, for scripts and systemd units).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use skiff_pods::{Pod, PodError, Store};

fn read_uuid_file(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read --uuid-file {}", path.display()))?;
    let uuid = text.trim();
    if !skiff_pods::uuid::is_valid(uuid) {
        anyhow::bail!("--uuid-file {} does not hold a pod UUID", path.display());
    }
    Ok(uuid.to_string())
}

// One pod. (Not a doc comment: a flattened struct's doc would replace the
// about of the subcommand it is flattened into; cli::tests checks.)
#[derive(Args, Debug)]
pub struct PodRef {
    /// Name, UUID or unique UUID prefix of the pod.
    #[arg(value_name = "POD", required_unless_present = "uuid_file")]
    id: Option<String>,
    /// Read the pod's UUID from FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "id")]
    uuid_file: Option<PathBuf>,
}

/// A wait for a pod to appear ran out of time (`status --wait*`: 124).
#[derive(Debug, thiserror::Error)]
#[error("no pod named or with UUID prefix {0:?} appeared in time")]
pub struct NotYet(pub String);

impl PodRef {
    /// The pod; with `until`, a pod (or `--uuid-file`) that does not exist
    /// yet is waited for, until the deadline if there is one: right after
    /// `skiff run --name X … &` the pod may not have its name yet.
    pub fn find_waiting(&self, store: &Store, until: Option<Option<Instant>>) -> Result<Pod> {
        let Some(deadline) = until else { return Ok(Pod::find(store, &self.id()?)?) };
        loop {
            let missing_file = self.uuid_file.as_ref().is_some_and(|f| !f.exists());
            let found = match missing_file {
                true => None,
                false => match Pod::find(store, &self.id()?) {
                    Ok(pod) => Some(pod),
                    Err(PodError::NotFound(_)) => None,
                    Err(e) => return Err(e.into()),
                },
            };
            if let Some(pod) = found {
                return Ok(pod);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                let what = self.id.clone().or_else(|| self.uuid_file.as_ref().map(|f| f.display().to_string()));
                return Err(NotYet(what.unwrap_or_default()).into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn id(&self) -> Result<String> {
        match (&self.id, &self.uuid_file) {
            (_, Some(f)) => read_uuid_file(f),
            (Some(id), None) => Ok(id.clone()),
            (None, None) => anyhow::bail!("no pod given"),
        }
    }
}

// One or more pods.
#[derive(Args, Debug)]
pub struct PodRefs {
    /// Names, UUIDs or unique UUID prefixes of the pods.
    #[arg(value_name = "POD", required_unless_present = "uuid_file")]
    ids: Vec<String>,
    /// Read a pod's UUID from FILE (repeatable).
    #[arg(long, value_name = "FILE")]
    uuid_file: Vec<PathBuf>,
}

impl PodRefs {
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut out = self.ids.clone();
        for f in &self.uuid_file {
            out.push(read_uuid_file(f)?);
        }
        Ok(out)
    }
}

/// The app of pod `uuid` a command acts on: `asked` (`--app`), else its
/// only app; an error naming the apps otherwise.
pub fn pick_app(uuid: &str, apps: &[skiff_pods::App], asked: Option<&str>) -> anyhow::Result<String> {
    let names = || apps.iter().map(|x| x.name.as_str()).collect::<Vec<_>>().join(", ");
    match (asked, apps) {
        (Some(n), apps) if apps.iter().any(|x| x.name == n) => Ok(n.to_string()),
        (_, []) => anyhow::bail!("pod {uuid} has no apps (a sandbox)"),
        (Some(n), _) => anyhow::bail!("pod {uuid} has no app {n:?} (apps: {})", names()),
        (None, [only]) => Ok(only.name.clone()),
        (None, _) => anyhow::bail!("pod {uuid} has several apps: choose one with --app ({})", names()),
    }
}
