//! `docker save` / `podman save` / `skopeo copy … docker-archive:` output:
//! `manifest.json` (`[{Config, RepoTags, Layers}]`, or the legacy
//! `repositories` file for names) with the config and layer tars as
//! members. An OCI manifest is synthesised for it so the import pipeline
//! (and every digest check) is the same as for any other source.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde_json::json;

use super::tarfile::TarFile;
use super::{BlobReader, Resolved, Source, OCI_MANIFEST, SMALL_BLOB_MAX};
use crate::image::digest::Digest;
use crate::image::reference::DockerRef;
use crate::image::{ImageError, Result};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

pub struct DockerArchive {
    tar: TarFile,
    /// Archive member holding each blob, by digest.
    members: HashMap<Digest, String>,
}

/// Normal form of a RepoTag (`busybox:latest` is Docker Hub's).
fn normal(tag: &str) -> String {
    DockerRef::parse(tag).map_or_else(|_| tag.to_string(), |r| r.to_string())
}

impl DockerArchive {
    /// Opens the archive and picks the image named `name` (one of its
    /// RepoTags), or its only image. Returns the image's name, if it has one.
    pub fn open(path: &Path, name: Option<&str>) -> Result<(DockerArchive, Resolved, Option<String>)> {
        let tar = TarFile::open(path)?;
        let what = format!("docker archive {}", path.display());
        let entries: Vec<Entry> = serde_json::from_slice(&tar.read_small("manifest.json", SMALL_BLOB_MAX)?)
            .map_err(|e| ImageError::Invalid(format!("manifest.json of {what} is invalid: {e}")))?;
        let tags_of = |e: &Entry| e.repo_tags.clone().unwrap_or_default();
        let all_tags: Vec<String> = entries.iter().flat_map(tags_of).collect();
        let entry = match name {
            Some(n) => {
                let want = normal(n);
                entries.iter().find(|e| tags_of(e).iter().any(|t| normal(t) == want)).ok_or_else(|| {
                    ImageError::Invalid(format!("{what} has no image named {n} (it has: {})", all_tags.join(", ")))
                })?
            }
            None => match entries.as_slice() {
                [one] => one,
                [] => return Err(ImageError::Invalid(format!("{what} holds no image"))),
                _ => {
                    return Err(ImageError::Invalid(format!(
                        "{what} holds several images; name one with docker-archive:PATH:NAME (names: {})",
                        all_tags.join(", ")
                    )))
                }
            },
        };
        let image_name = match name {
            Some(n) => Some(normal(n)),
            None => tags_of(entry).first().map(|t| normal(t)).or_else(|| legacy_name(&tar)),
        };

        let config = tar.read_small(&entry.config, SMALL_BLOB_MAX)?;
        let config_digest = Digest::of(&config);
        let diff_ids: Vec<String> = serde_json::from_slice::<serde_json::Value>(&config)
            .ok()
            .and_then(|v| v["rootfs"]["diff_ids"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|d| d.as_str().map(str::to_string))
            .collect();
        if diff_ids.len() != entry.layers.len() {
            return Err(ImageError::Invalid(format!(
                "{what}: {} layers but the config lists {} diff_ids",
                entry.layers.len(),
                diff_ids.len()
            )));
        }
        let mut members = HashMap::from([(config_digest.clone(), entry.config.clone())]);
        let mut layers = Vec::new();
        for (path, diff_id) in entry.layers.iter().zip(&diff_ids) {
            // Newer saves store layers as blobs/sha256/<digest>; classic
            // ones as uncompressed tars, whose digest is their diff_id.
            let digest = match path.strip_prefix("blobs/sha256/") {
                Some(hex) => Digest::parse(&format!("sha256:{hex}")),
                None => Digest::parse(diff_id),
            }
            .map_err(ImageError::Invalid)?;
            let (_, size) = tar.member(path)?;
            let media_type = if digest.to_string() == *diff_id {
                "application/vnd.oci.image.layer.v1.tar"
            } else {
                "application/vnd.oci.image.layer.v1.tar+gzip"
            };
            layers.push(json!({"mediaType": media_type, "digest": digest.to_string(), "size": size}));
            members.insert(digest, path.clone());
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
            "layers": layers,
        });
        let manifest_bytes = serde_json::to_vec(&manifest).map_err(|e| ImageError::Invalid(e.to_string()))?;
        let resolved = Resolved {
            manifest_digest: Digest::of(&manifest_bytes),
            manifest: serde_json::from_slice(&manifest_bytes)
                .map_err(|e| ImageError::Invalid(format!("{what}: {e}")))?,
            manifest_bytes,
        };
        Ok((DockerArchive { tar, members }, resolved, image_name))
    }
}

/// The first `repo:tag` of the legacy `repositories` file, if any.
fn legacy_name(tar: &TarFile) -> Option<String> {
    let data = tar.read_small("repositories", SMALL_BLOB_MAX).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&data).ok()?;
    let (repo, tags) = v.as_object()?.iter().next()?;
    let tag = tags.as_object()?.keys().next()?;
    Some(normal(&format!("{repo}:{tag}")))
}

impl Source for DockerArchive {
    fn describe(&self) -> String {
        format!("docker archive {}", self.tar.path().display())
    }

    fn open_blob(&self, d: &Digest, size: u64) -> Result<BlobReader<'_>> {
        let name = self
            .members
            .get(d)
            .ok_or_else(|| ImageError::Invalid(format!("blob {d} is not in {}", self.describe())))?;
        let (r, actual) = self.tar.member(name)?;
        if actual != size {
            return Err(ImageError::SizeMismatch { what: format!("blob {d}"), expected: size, actual });
        }
        Ok(Box::new(r.take(size)))
    }
}
