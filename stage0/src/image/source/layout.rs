//! OCI image layouts (image-spec `image-layout.md`): `oci-layout`,
//! `index.json` and `blobs/sha256/*`, found either in a directory or inside
//! a tar (`oci-archive:`), through the same code.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex};

use super::{resolve_descriptor, BlobReader, Resolved, Source, SMALL_BLOB_MAX};
use crate::image::digest::Digest;
use crate::image::platform::Platform;
use crate::image::{io_err, ImageError, Result};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Read access to the files of a layout, by path relative to its root.
pub trait LayoutFiles: Sync {
    fn describe(&self) -> String;
    /// Opens a regular file; returns it with its size.
    fn open(&self, rel: &str) -> Result<(BlobReader<'_>, u64)>;
}

/// A layout in a directory.
pub struct DirFiles {
    root: PathBuf,
}

impl DirFiles {
    pub fn new(root: &Path) -> DirFiles {
        DirFiles { root: root.to_path_buf() }
    }
}

/// Only regular files qualify (a FIFO or device planted in a layout would
/// block or never end); `O_NONBLOCK` keeps even the open from hanging.
pub fn open_regular(p: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let nonblock = i32::try_from(rustix::fs::OFlags::NONBLOCK.bits()).unwrap_or(0);
    let f = std::fs::OpenOptions::new().read(true).custom_flags(nonblock).open(p)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(f)
}

impl LayoutFiles for DirFiles {
    fn describe(&self) -> String {
        format!("OCI layout {}", self.root.display())
    }

    fn open(&self, rel: &str) -> Result<(BlobReader<'_>, u64)> {
        let p = self.root.join(rel);
        let f = open_regular(&p).map_err(io_err(format!("{rel} in {}", self.describe())))?;
        let size = f.metadata().map_err(io_err(format!("cannot stat {}", p.display())))?.len();
        Ok((Box::new(f), size))
    }
}

pub struct OciLayout<F> {
    files: F,
}

impl<F: LayoutFiles> OciLayout<F> {
    pub fn open(files: F) -> Result<OciLayout<F>> {
        if files.open("oci-layout").is_err() {
            return Err(ImageError::Invalid(format!(
                "{} is not an OCI image layout (no oci-layout file)",
                files.describe()
            )));
        }
        Ok(OciLayout { files })
    }

    fn index(&self) -> Result<ImageIndex> {
        let (r, _) = self.files.open("index.json")?;
        let mut data = Vec::new();
        r.take(SMALL_BLOB_MAX)
            .read_to_end(&mut data)
            .map_err(io_err(format!("cannot read index.json of {}", self.describe())))?;
        serde_json::from_slice(&data).map_err(|e| {
            ImageError::Invalid(format!("index.json of {} is not a valid image index: {e}", self.describe()))
        })
    }

    /// Finds the image for `tag` (or the only one when no tag is given) and
    /// the manifest for `platform` in it. Returns the tag found, if any.
    pub fn resolve(&self, tag: Option<&str>, platform: &Platform) -> Result<(Resolved, Option<String>)> {
        let index = self.index()?;
        let ref_name = |d: &Descriptor| d.annotations().as_ref().and_then(|a| a.get(REF_NAME)).cloned();
        let tags: Vec<String> = index.manifests().iter().filter_map(ref_name).collect();
        let (desc, found) = match tag {
            Some(t) => index
                .manifests()
                .iter()
                .find(|d| ref_name(d).as_deref() == Some(t))
                .map(|d| (d.clone(), Some(t.to_string())))
                .ok_or_else(|| {
                    ImageError::Invalid(format!(
                        "tag {t:?} not found in {} (tags: {})",
                        self.describe(),
                        if tags.is_empty() { "none".into() } else { tags.join(", ") }
                    ))
                })?,
            None => match index.manifests().as_slice() {
                [one] => (one.clone(), ref_name(one)),
                [] => return Err(ImageError::Invalid(format!("{} has no images", self.describe()))),
                _ => {
                    return Err(ImageError::Invalid(format!(
                        "{} holds several images; name one with :TAG (tags: {})",
                        self.describe(),
                        tags.join(", ")
                    )))
                }
            },
        };
        Ok((resolve_descriptor(self, &desc, platform)?, found))
    }
}

impl<F: LayoutFiles> Source for OciLayout<F> {
    fn describe(&self) -> String {
        self.files.describe()
    }

    fn open_blob(&self, d: &Digest, size: u64) -> Result<BlobReader<'_>> {
        let (r, actual) = self.files.open(&format!("blobs/sha256/{}", d.hex()))?;
        if actual != size {
            return Err(ImageError::SizeMismatch { what: format!("blob {d}"), expected: size, actual });
        }
        Ok(r)
    }
}
