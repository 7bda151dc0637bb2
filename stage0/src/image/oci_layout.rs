//! Reading an OCI image layout directory (image-spec `image-layout.md`):
//! `oci-layout`, `index.json` and `blobs/sha256/*`. Every blob read here is
//! checked against the digest and size of the descriptor that named it.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

use super::digest::Digest;
use super::{io_err, ImageError, Result};

/// Manifests and configs are small; anything bigger is not one.
const SMALL_BLOB_MAX: u64 = 4 << 20;
const REF_NAME: &str = "org.opencontainers.image.ref.name";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

pub struct Layout {
    root: PathBuf,
}

/// The manifest chosen for a tag, with its verified digest.
pub struct Resolved {
    pub manifest_digest: Digest,
    pub manifest_bytes: Vec<u8>,
    pub manifest: ImageManifest,
    /// The tag the manifest was found under, if the index names one.
    pub tag: Option<String>,
}

enum Kind {
    Index,
    Manifest,
}

fn kind_of(mt: &MediaType) -> Result<Kind> {
    match mt {
        MediaType::ImageIndex => Ok(Kind::Index),
        MediaType::ImageManifest => Ok(Kind::Manifest),
        MediaType::Other(s) if s == DOCKER_LIST => Ok(Kind::Index),
        MediaType::Other(s) if s == DOCKER_MANIFEST => Ok(Kind::Manifest),
        MediaType::Other(s) if s.contains("manifest.v1") => Err(ImageError::Invalid(format!(
            "Docker schema 1 manifests ({s}) are not supported"
        ))),
        other => Err(ImageError::Invalid(format!(
            "unsupported manifest media type {other}"
        ))),
    }
}

pub fn descriptor_digest(d: &Descriptor) -> Result<Digest> {
    Digest::parse(d.digest().as_ref()).map_err(ImageError::Invalid)
}

impl Layout {
    pub fn open(path: &Path) -> Result<Layout> {
        let marker = path.join("oci-layout");
        if !marker.is_file() {
            return Err(ImageError::Invalid(format!(
                "{} is not an OCI image layout (no oci-layout file)",
                path.display()
            )));
        }
        Ok(Layout {
            root: path.to_path_buf(),
        })
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    /// Opens a blob and checks its size against the descriptor's. Only
    /// regular files qualify (a FIFO or device planted in a layout would
    /// block or never end); `O_NONBLOCK` keeps even the open from hanging.
    pub fn open_blob(&self, d: &Digest, size: u64) -> Result<File> {
        let p = self.blob_path(d);
        let f = open_regular(&p).map_err(io_err(format!("blob {d} in {}", self.root.display())))?;
        let actual = f
            .metadata()
            .map_err(io_err(format!("cannot stat {}", p.display())))?
            .len();
        if actual != size {
            return Err(ImageError::SizeMismatch {
                what: format!("blob {d}"),
                expected: size,
                actual,
            });
        }
        Ok(f)
    }

    /// Reads and verifies a small blob (manifest, index, config).
    pub fn read_small(&self, desc: &Descriptor, what: &str) -> Result<(Digest, Vec<u8>)> {
        let d = descriptor_digest(desc)?;
        if desc.size() > SMALL_BLOB_MAX {
            return Err(ImageError::Invalid(format!(
                "{what} {d} is {} bytes, too big for a {what}",
                desc.size()
            )));
        }
        let mut data = Vec::new();
        self.open_blob(&d, desc.size())?
            .take(SMALL_BLOB_MAX)
            .read_to_end(&mut data)
            .map_err(io_err(format!("cannot read {what} {d}")))?;
        let actual = Digest::of(&data);
        if actual != d {
            return Err(ImageError::DigestMismatch {
                what: format!("{what} blob"),
                expected: d,
                actual,
            });
        }
        Ok((d, data))
    }

    /// Finds the manifest for `tag` (or the only one when no tag is given),
    /// descending into image indexes to pick linux/amd64.
    pub fn resolve(&self, tag: Option<&str>) -> Result<Resolved> {
        let index_path = self.root.join("index.json");
        let mut data = Vec::new();
        open_regular(&index_path)
            .and_then(|f| f.take(SMALL_BLOB_MAX).read_to_end(&mut data))
            .map_err(io_err(format!("cannot read {}", index_path.display())))?;
        let index: ImageIndex = serde_json::from_slice(&data).map_err(|e| {
            ImageError::Invalid(format!(
                "{} is not a valid image index: {e}",
                index_path.display()
            ))
        })?;
        let (desc, found_tag) = self.pick_tagged(&index, tag)?;
        self.descend(&desc, found_tag, 0)
    }

    fn pick_tagged(
        &self,
        index: &ImageIndex,
        tag: Option<&str>,
    ) -> Result<(Descriptor, Option<String>)> {
        let ref_name = |d: &Descriptor| {
            d.annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .cloned()
        };
        let tags: Vec<String> = index.manifests().iter().filter_map(ref_name).collect();
        match tag {
            Some(t) => index
                .manifests()
                .iter()
                .find(|d| ref_name(d).as_deref() == Some(t))
                .map(|d| (d.clone(), Some(t.to_string())))
                .ok_or_else(|| {
                    ImageError::Invalid(format!(
                        "tag {t:?} not found in {} (tags: {})",
                        self.root.display(),
                        if tags.is_empty() {
                            "none".into()
                        } else {
                            tags.join(", ")
                        }
                    ))
                }),
            None => match index.manifests().as_slice() {
                [one] => Ok((one.clone(), ref_name(one))),
                [] => Err(ImageError::Invalid(format!(
                    "{} has no images",
                    self.root.display()
                ))),
                _ => Err(ImageError::Invalid(format!(
                    "{} holds several images; name one with oci:PATH:TAG (tags: {})",
                    self.root.display(),
                    tags.join(", ")
                ))),
            },
        }
    }

    fn descend(&self, desc: &Descriptor, tag: Option<String>, depth: u32) -> Result<Resolved> {
        if depth > 4 {
            return Err(ImageError::Invalid("image indexes nest too deeply".into()));
        }
        match kind_of(desc.media_type())? {
            Kind::Manifest => {
                let (manifest_digest, manifest_bytes) = self.read_small(desc, "manifest")?;
                let manifest: ImageManifest =
                    serde_json::from_slice(&manifest_bytes).map_err(|e| {
                        ImageError::Invalid(format!("manifest {manifest_digest} is invalid: {e}"))
                    })?;
                Ok(Resolved {
                    manifest_digest,
                    manifest_bytes,
                    manifest,
                    tag,
                })
            }
            Kind::Index => {
                let (d, bytes) = self.read_small(desc, "index")?;
                let index: ImageIndex = serde_json::from_slice(&bytes)
                    .map_err(|e| ImageError::Invalid(format!("image index {d} is invalid: {e}")))?;
                let chosen = pick_platform(&index)?;
                self.descend(&chosen, tag, depth + 1)
            }
        }
    }
}

fn open_regular(p: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nonblock_flag())
        .open(p)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(f)
}

fn nonblock_flag() -> i32 {
    i32::try_from(rustix::fs::OFlags::NONBLOCK.bits()).unwrap_or(0)
}

/// skiff runs linux/amd64 images.
fn pick_platform(index: &ImageIndex) -> Result<Descriptor> {
    let mut seen = Vec::new();
    for d in index.manifests() {
        match d.platform() {
            Some(p) => {
                let (os, arch) = (p.os().to_string(), p.architecture().to_string());
                if os == "linux" && arch == "amd64" {
                    return Ok(d.clone());
                }
                seen.push(format!("{os}/{arch}"));
            }
            None => seen.push("unknown".into()),
        }
    }
    Err(ImageError::Invalid(format!(
        "no linux/amd64 image in the index (available: {})",
        if seen.is_empty() {
            "none".into()
        } else {
            seen.join(", ")
        }
    )))
}
