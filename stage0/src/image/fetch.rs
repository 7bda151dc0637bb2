//! `fetch`: from a reference to a stored image, importing when needed.

use std::path::{Path, PathBuf};

use super::digest::Digest;
use super::import::{self, import, Progress};
use super::lock::StoreLock;
use super::platform::Platform;
use super::record::{self, ImageRecord};
use super::reference::{DockerRef, ImageReference};
use super::source::docker_archive::DockerArchive;
use super::source::layout::{DirFiles, LayoutFiles, OciLayout};
use super::source::registry::{Registry, RegistryOptions};
use super::source::tarfile::TarFile;
use super::trust::{scope, signatures, TrustOptions};
use super::{catalog, io_err, names, ImageError, ImageStore, Result};

/// A stored image and the name it was asked for by.
pub struct Fetched {
    pub record: ImageRecord,
    /// The name the image is stored under for this reference (e.g.
    /// `oci:/abs/path:tag`); for an ID, its first name or the ID itself.
    pub name: String,
}

/// When to ask a registry (for `docker://` references; local transports
/// are always read, which is cheap and verified).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PullPolicy {
    /// Use the stored image; pull only if the name is not in the store.
    #[default]
    New,
    /// Always ask the registry; download only what changed.
    Update,
    /// Never contact a registry.
    Never,
}

pub struct FetchOptions<'a> {
    pub platform: Platform,
    pub progress: &'a dyn Progress,
    pub registry: RegistryOptions,
    pub policy: PullPolicy,
    /// The signature policy, checked before an image enters the store.
    pub trust: &'a TrustOptions,
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path).map_err(io_err(format!("cannot find {}", path.display())))
}

/// Resolves `reference` to a stored image, importing it when needed. An
/// image already in the store is not copied or unpacked again. The caller
/// holds the store's shared lock (`_held`), for as long as it needs what
/// was fetched to stay: a pod's preparation, until its manifest names it.
pub fn fetch(
    store: &ImageStore,
    reference: &ImageReference,
    opts: &FetchOptions<'_>,
    _held: &StoreLock,
) -> Result<Fetched> {
    match reference {
        ImageReference::Id(prefix) => Ok(catalog::resolve(store, &format!("sha256:{prefix}"))?.0),
        ImageReference::Name(n) => Ok(catalog::resolve(store, n)?.0),
        ImageReference::OciLayout { path, tag } => {
            let abs = absolute(path)?;
            check_path(opts, "oci", &abs, tag.as_deref())?;
            from_layout(store, DirFiles::new(&abs), "oci", &abs, tag.as_deref(), opts)
        }
        ImageReference::OciArchive { path, tag } => {
            let abs = absolute(path)?;
            check_path(opts, "oci-archive", &abs, tag.as_deref())?;
            from_layout(store, TarFile::open(&abs)?, "oci-archive", &abs, tag.as_deref(), opts)
        }
        ImageReference::DockerArchive { path, name } => {
            let abs = absolute(path)?;
            check_path(opts, "docker-archive", &abs, name.as_deref())?;
            let (archive, resolved, found) = DockerArchive::open(&abs, name.as_deref())?;
            let name = found.unwrap_or_else(|| format!("docker-archive:{}", abs.display()));
            let record = import(store, &archive, &resolved, Some(&name), &opts.platform, opts.progress)?;
            Ok(Fetched { record, name })
        }
        ImageReference::Docker(r) => pull(store, r, opts),
    }
}

/// The signature policy's verdict on an image read from a file or
/// directory (scopes: its path and the directories above it).
fn check_path(opts: &FetchOptions<'_>, transport: &str, abs: &Path, reference: Option<&str>) -> Result<()> {
    let image = match reference {
        Some(r) => format!("{transport}:{}:{r}", abs.display()),
        None => format!("{transport}:{}", abs.display()),
    };
    opts.trust.load()?.verdict(&image, transport, &scope::path_candidates(abs, reference))?.local(&image)
}

/// An OCI layout (a directory or a tar), named `TRANSPORT:/abs/path[:tag]`.
fn from_layout<F: LayoutFiles>(
    store: &ImageStore,
    files: F,
    transport: &str,
    abs: &Path,
    tag: Option<&str>,
    opts: &FetchOptions<'_>,
) -> Result<Fetched> {
    let layout = OciLayout::open(files)?;
    let (resolved, found) = layout.resolve(tag, &opts.platform)?;
    let name = match found {
        Some(t) => format!("{transport}:{}:{t}", abs.display()),
        None => format!("{transport}:{}", abs.display()),
    };
    let record = import(store, &layout, &resolved, Some(&name), &opts.platform, opts.progress)?;
    Ok(Fetched { record, name })
}

fn pull(store: &ImageStore, r: &DockerRef, opts: &FetchOptions<'_>) -> Result<Fetched> {
    let name = r.to_string();
    if opts.policy != PullPolicy::Update {
        match stored(store, &name) {
            Ok(f) if import::layers_present(store, &f.record) => return Ok(f),
            _ if opts.policy == PullPolicy::Never => {
                return Err(ImageError::Invalid(format!("{name} is not in the store and --pull-policy is never")))
            }
            _ => {}
        }
    }
    let shown = format!("docker://{name}");
    let trust = opts.trust.load()?;
    let verdict = trust.verdict(&shown, "docker", &scope::docker_candidates(r))?;
    let registry = Registry::new(r, &opts.registry)?;
    let (top, resolved) = registry.resolve(&opts.platform)?;
    let verified = signatures::verify(&trust, &verdict, (&registry, r), &shown, &top)?;
    let mut record = import(store, &registry, &resolved, Some(&name), &opts.platform, opts.progress)?;
    if !verified.is_empty() {
        record.signatures = verified;
        record::save(store, &record)?;
    }
    Ok(Fetched { record, name })
}

/// An image already in the store, by one of its names.
pub fn stored(store: &ImageStore, name: &str) -> Result<Fetched> {
    let names = names::load(store)?;
    for c in names::candidates(name) {
        if let Some(id) = names.get(&c) {
            let d = Digest::parse(id).map_err(ImageError::Invalid)?;
            let record = record::load(store, &d)?.ok_or_else(|| ImageError::NotFound(name.to_string()))?;
            return Ok(Fetched { record, name: c });
        }
    }
    Err(ImageError::NotFound(name.to_string()))
}
