//! Image records: `images/<config hex>.json`, one per image ID, holding what
//! `run` needs without touching the image's blobs again.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::{io_err, ImageError, ImageStore, Result};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerRecord {
    pub digest: String,
    pub diff_id: String,
    pub media_type: String,
    pub size: u64,
}

/// The parts of the image config that decide how an app runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// `sha256:<hex>` of the config blob.
    pub id: String,
    pub manifest_digest: String,
    pub layers: Vec<LayerRecord>,
    pub run: RunConfig,
    /// From the image config.
    pub created: Option<String>,
    pub fetched_at: String,
    /// Bytes of the manifest, the config and the (compressed) layers.
    pub size: u64,
    /// The signatures the signature policy required and skiff verified
    /// when the image was fetched (docs/trust.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<crate::image::trust::signatures::Verified>,
}

impl ImageRecord {
    pub fn id_digest(&self) -> Result<Digest> {
        Digest::parse(&self.id).map_err(ImageError::Invalid)
    }
}

fn path(store: &ImageStore, id: &Digest) -> PathBuf {
    store.images_dir().join(format!("{}.json", id.hex()))
}

pub fn load(store: &ImageStore, id: &Digest) -> Result<Option<ImageRecord>> {
    let p = path(store, id);
    let data = match std::fs::read(&p) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(format!("cannot read {}", p.display()))(e)),
    };
    serde_json::from_slice(&data)
        .map(Some)
        .map_err(|e| ImageError::Invalid(format!("image record {} is corrupt: {e}", p.display())))
}

pub fn save(store: &ImageStore, rec: &ImageRecord) -> Result<()> {
    let id = rec.id_digest()?;
    let data = serde_json::to_vec_pretty(rec).map_err(|e| ImageError::Invalid(e.to_string()))?;
    skiff_rt::failpoint!("image.record")
        .and_then(|()| skiff_pods::atomic::write_atomic(&store.images_dir(), &format!("{}.json", id.hex()), &data))
        .map_err(io_err("cannot write the image record"))
}

pub fn delete(store: &ImageStore, id: &Digest) -> Result<()> {
    match std::fs::remove_file(path(store, id)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(format!("cannot remove the record of {id}"))(e)),
    }
}

/// Every image record in the store.
pub fn all(store: &ImageStore) -> Result<Vec<ImageRecord>> {
    let mut out = Vec::new();
    for hex in ids(store) {
        let id = Digest::parse(&format!("sha256:{hex}")).map_err(ImageError::Invalid)?;
        if let Some(r) = load(store, &id)? {
            out.push(r);
        }
    }
    Ok(out)
}

fn ids(store: &ImageStore) -> Vec<String> {
    match std::fs::read_dir(store.images_dir()) {
        Ok(rd) => rd
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
            .filter(|n| Digest::parse(&format!("sha256:{n}")).is_ok())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Finds the one image whose ID starts with `prefix` (hex digits).
pub fn find_by_prefix(store: &ImageStore, prefix: &str) -> Result<ImageRecord> {
    // A whole ID names its record's file: no need to list the store.
    if prefix.len() == 64 {
        if let Ok(id) = Digest::parse(&format!("sha256:{prefix}")) {
            return load(store, &id)?.ok_or_else(|| ImageError::NotFound(format!("sha256:{prefix}")));
        }
    }
    let mut hits: Vec<String> = ids(store).into_iter().filter(|n| n.starts_with(prefix)).collect();
    match hits.len() {
        0 => Err(ImageError::NotFound(format!("sha256:{prefix}"))),
        1 => {
            let id = Digest::parse(&format!("sha256:{}", hits.remove(0))).map_err(ImageError::Invalid)?;
            load(store, &id)?.ok_or_else(|| ImageError::NotFound(format!("sha256:{prefix}")))
        }
        n => Err(ImageError::Invalid(format!("image ID prefix sha256:{prefix} matches {n} images; give more digits"))),
    }
}
