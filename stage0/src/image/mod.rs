//! The image store: content-addressed blobs, unpacked layer trees and image
//! records, filled from OCI image layouts.

pub mod build;
pub mod cas;
pub mod catalog;
pub mod decompress;
pub mod digest;
pub mod export;
pub mod fetch;
pub mod gc;
pub mod import;
pub mod lock;
pub mod media_type;
pub mod names;
pub mod platform;
pub mod record;
pub mod reference;
pub mod source;
pub mod trust;
pub mod unpack;

use std::io;
use std::path::PathBuf;

use digest::Digest;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    Invalid(String),
    #[error("{what}: {err}")]
    Io { what: String, err: io::Error },
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { what: String, expected: Digest, actual: Digest },
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch { what: String, expected: u64, actual: u64 },
    #[error("layer {layer}: {err}")]
    Unpack { layer: String, err: unpack::UnpackError },
    #[error("no image matches {0:?} (fetch it first)")]
    NotFound(String),
    /// A registry answered 404 for something it was asked for.
    #[error("{what}: not found in registry {registry} (HTTP 404)")]
    NotInRegistry { what: String, registry: String },
}

pub type Result<T> = std::result::Result<T, ImageError>;

pub fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> ImageError {
    let what = what.into();
    move |err| ImageError::Io { what, err }
}

/// Paths of the image half of the store directory.
#[derive(Clone, Debug)]
pub struct ImageStore {
    root: PathBuf,
}

impl ImageStore {
    pub fn new(root: impl Into<PathBuf>) -> ImageStore {
        ImageStore { root: root.into() }
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("cas/blobs/sha256")
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blobs_dir().join(d.hex())
    }

    /// Parent of all unpacked layer trees; the pod manifest names trees
    /// relative to it.
    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    pub fn layer_name(diff_id: &Digest) -> String {
        format!("sha256/{}", diff_id.hex())
    }

    pub fn locks_dir(&self) -> PathBuf {
        self.root.join("locks")
    }

    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    /// Scratch space on the store's filesystem, so finished work can be
    /// renamed into place atomically.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Makes the whole store's directories, pods' and images', the first
    /// time (see `skiff_pods::layout::LAYOUT_FILE`).
    pub fn ensure_dirs(&self) -> Result<()> {
        let dirs =
            [self.blobs_dir(), self.layers_dir().join("sha256"), self.images_dir(), self.tmp_dir(), self.locks_dir()];
        skiff_pods::Store::new(&self.root)
            .ensure_layout(&dirs)
            .map_err(io_err(format!("cannot create the store {}", self.root.display())))
    }
}
