//! Bringing an image into the store: blobs verified into the CAS, each
//! layer unpacked once into a tree keyed by its diff_id, then the record.

use std::path::Path;

use oci_spec::image::ImageConfiguration;

use super::digest::{Digest, HashingReader};
use super::oci_layout::{descriptor_digest, Layout};
use super::record::{self, ImageRecord, LayerRecord, RunConfig};
use super::reference::ImageReference;
use super::unpack::unpack_layer;
use super::{cas, decompress, io_err, ImageError, ImageStore, Result};

/// A stored image and the name it was asked for by.
pub struct Fetched {
    pub record: ImageRecord,
    /// The canonical name (`oci:/abs/path:tag`), or for an ID, the image's
    /// first name (the ID itself if it has none).
    pub name: String,
}

/// Resolves `reference` to a stored image, importing it when needed. An
/// image already in the store is not copied or unpacked again.
pub fn fetch(store: &ImageStore, reference: &ImageReference) -> Result<Fetched> {
    match reference {
        ImageReference::Id(prefix) => {
            let record = record::find_by_prefix(store, prefix)?;
            let name = record
                .names
                .first()
                .cloned()
                .unwrap_or_else(|| record.id.clone());
            Ok(Fetched { record, name })
        }
        ImageReference::OciLayout { path, tag } => import_layout(store, path, tag.as_deref()),
    }
}

fn import_layout(store: &ImageStore, path: &Path, tag: Option<&str>) -> Result<Fetched> {
    let abs = std::fs::canonicalize(path)
        .map_err(io_err(format!("cannot find OCI layout {}", path.display())))?;
    let layout = Layout::open(&abs)?;
    let resolved = layout.resolve(tag)?;
    let name = match &resolved.tag {
        Some(t) => format!("oci:{}:{t}", abs.display()),
        None => format!("oci:{}", abs.display()),
    };
    let config_desc = resolved.manifest.config();
    let (id, config_bytes) = layout.read_small(config_desc, "config")?;

    if let Some(rec) = record::load(store, &id)? {
        if rec.manifest_digest == resolved.manifest_digest.to_string()
            && layers_present(store, &rec)
        {
            crate::debug!("image {id} from {name} is already in the store");
            if rec.names.contains(&name) {
                return Ok(Fetched { record: rec, name });
            }
            let mut rec = rec;
            rec.names = vec![name.clone()];
            let record = record::save_merging_names(store, rec)?;
            return Ok(Fetched { record, name });
        }
    }

    let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
        .map_err(|e| ImageError::Invalid(format!("image config {id} is invalid: {e}")))?;
    let (os, arch) = (config.os().to_string(), config.architecture().to_string());
    if os != "linux" || arch != "amd64" {
        return Err(ImageError::Invalid(format!(
            "image {id} is for {os}/{arch}; skiff runs linux/amd64 images"
        )));
    }
    let diff_ids = config.rootfs().diff_ids();
    let layers = resolved.manifest.layers();
    if diff_ids.len() != layers.len() {
        return Err(ImageError::Invalid(format!(
            "image {id}: the manifest has {} layers but the config lists {} diff_ids",
            layers.len(),
            diff_ids.len()
        )));
    }
    cas::put_bytes(
        store,
        &resolved.manifest_digest,
        &resolved.manifest_bytes,
        "manifest",
    )?;
    cas::put_bytes(store, &id, &config_bytes, "config")?;

    let mut layer_records = Vec::with_capacity(layers.len());
    for (desc, diff_id) in layers.iter().zip(diff_ids) {
        let digest = descriptor_digest(desc)?;
        let diff_id = Digest::parse(diff_id).map_err(ImageError::Invalid)?;
        let what = format!("layer {digest}");
        let src = layout.open_blob(&digest, desc.size())?;
        cas::put(store, &digest, Some(desc.size()), &what, src)?;
        crate::debug!("{what}: {} bytes verified into the store", desc.size());
        ensure_tree(store, &digest, &diff_id)?;
        layer_records.push(LayerRecord {
            digest: digest.to_string(),
            diff_id: diff_id.to_string(),
            media_type: desc.media_type().to_string(),
            size: desc.size(),
        });
    }

    let cfg = config.config().clone().unwrap_or_default();
    let rec = ImageRecord {
        id: id.to_string(),
        manifest_digest: resolved.manifest_digest.to_string(),
        names: vec![name.clone()],
        layers: layer_records,
        run: RunConfig {
            entrypoint: cfg.entrypoint().clone().unwrap_or_default(),
            cmd: cfg.cmd().clone().unwrap_or_default(),
            env: cfg.env().clone().unwrap_or_default(),
            working_dir: cfg.working_dir().clone().filter(|w| !w.is_empty()),
            user: cfg.user().clone().filter(|u| !u.is_empty()),
        },
        created: config.created().clone(),
        fetched_at: skiff_pods::time::now_rfc3339(),
    };
    let record = record::save_merging_names(store, rec)?;
    Ok(Fetched { record, name })
}

fn layers_present(store: &ImageStore, rec: &ImageRecord) -> bool {
    rec.layers.iter().all(|l| {
        Digest::parse(&l.diff_id)
            .map(|d| store.layers_dir().join(ImageStore::layer_name(&d)).is_dir())
            .unwrap_or(false)
    })
}

/// Unpacks the stored blob `digest` into `layers/sha256/<diff_id>` unless
/// that tree exists. The tree is built in scratch space and renamed into
/// place only after its uncompressed digest matched `diff_id`.
pub fn ensure_tree(store: &ImageStore, digest: &Digest, diff_id: &Digest) -> Result<()> {
    let dest = store.layers_dir().join(ImageStore::layer_name(diff_id));
    if dest.is_dir() {
        return Ok(());
    }
    let tmp = cas::tmp_path(store, "layer")?;
    std::fs::create_dir(&tmp).map_err(io_err(format!("cannot create {}", tmp.display())))?;
    let result = unpack_verified(store, digest, diff_id, &tmp).and_then(|()| {
        match std::fs::rename(&tmp, &dest) {
            Ok(()) => Ok(()),
            // A concurrent fetch finished the same layer first: use its tree.
            Err(_) if dest.is_dir() => Ok(()),
            Err(e) => Err(io_err(format!("cannot move layer {diff_id} into place"))(e)),
        }
    });
    if tmp.exists() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

fn unpack_verified(
    store: &ImageStore,
    digest: &Digest,
    diff_id: &Digest,
    tmp: &Path,
) -> Result<()> {
    let what = format!("layer {digest}");
    let blob = cas::open(store, digest)?;
    let reader = HashingReader::new(decompress::decoder(blob, &what)?);
    let (stats, reader) = unpack_layer(reader, tmp).map_err(|e| ImageError::Unpack {
        layer: digest.to_string(),
        err: e,
    })?;
    crate::debug!(
        "{what}: unpacked {} entries, {} bytes of file data, {} device nodes skipped",
        stats.entries,
        stats.bytes,
        stats.skipped_devices
    );
    let (actual, _) = reader
        .finish()
        .map_err(io_err(format!("cannot read {what}")))?;
    if &actual != diff_id {
        return Err(ImageError::DigestMismatch {
            what: format!("uncompressed {what} (diff_id)"),
            expected: diff_id.clone(),
            actual,
        });
    }
    let dir = std::fs::File::open(tmp).map_err(io_err(format!("cannot open {}", tmp.display())))?;
    rustix::fs::syncfs(&dir).map_err(|e| io_err(format!("cannot sync {what}"))(e.into()))
}
