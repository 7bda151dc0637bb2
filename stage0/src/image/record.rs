//! Image records: `images/<config hex>.json`, one per image ID, holding what
//! `run` needs without touching the image's blobs again.

use std::fs::File;
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
    pub names: Vec<String>,
    pub layers: Vec<LayerRecord>,
    pub run: RunConfig,
    pub created: Option<String>,
    pub fetched_at: String,
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

/// Saves `rec`, keeping the names an earlier record for the same ID had.
/// Serialised by a lock so concurrent fetches do not lose names.
pub fn save_merging_names(store: &ImageStore, mut rec: ImageRecord) -> Result<ImageRecord> {
    let lock_path = store.images_dir().join(".lock");
    let lock =
        File::create(&lock_path).map_err(io_err(format!("cannot open {}", lock_path.display())))?;
    lock.lock()
        .map_err(io_err("cannot lock the image records"))?;
    let id = rec.id_digest()?;
    if let Some(old) = load(store, &id)? {
        for n in old.names {
            if !rec.names.contains(&n) {
                rec.names.push(n);
            }
        }
    }
    let data = serde_json::to_vec_pretty(&rec).map_err(|e| ImageError::Invalid(e.to_string()))?;
    skiff_pods::atomic::write_atomic(&store.images_dir(), &format!("{}.json", id.hex()), &data)
        .map_err(io_err("cannot write the image record"))?;
    Ok(rec)
}

/// Finds the one image whose ID starts with `prefix` (hex digits).
pub fn find_by_prefix(store: &ImageStore, prefix: &str) -> Result<ImageRecord> {
    let dir = store.images_dir();
    let mut hits: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
            .filter(|n| n.starts_with(prefix))
            .collect(),
        Err(_) => Vec::new(),
    };
    match hits.len() {
        0 => Err(ImageError::NotFound(format!("sha256:{prefix}"))),
        1 => {
            let id = Digest::parse(&format!("sha256:{}", hits.remove(0)))
                .map_err(ImageError::Invalid)?;
            load(store, &id)?.ok_or_else(|| ImageError::NotFound(format!("sha256:{prefix}")))
        }
        n => Err(ImageError::Invalid(format!(
            "image ID prefix sha256:{prefix} matches {n} images; give more digits"
        ))),
    }
}
