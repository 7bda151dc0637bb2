//! The one import pipeline every source goes through. Each layer is read
//! once: the stream is copied into a CAS temp file and hashed while being
//! decompressed, hashed again (diff_id) and unpacked; only when both
//! digests match are the blob and the tree renamed into place. Layers are
//! imported in parallel; a layer already in the store is not read again.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use oci_spec::image::{Descriptor, ImageConfiguration};
use sha2::{Digest as _, Sha256};

use super::digest::{Digest, HashingReader};
use super::platform::Platform;
use super::record::{self, ImageRecord, LayerRecord, RunConfig};
use super::source::{descriptor_digest, read_verified, Resolved, Source};
use super::unpack::unpack_layer;
use super::{cas, decompress, io_err, media_type, names, ImageError, ImageStore, Result};

/// At most this many layers are read at once.
const PARALLEL_LAYERS: usize = 4;

/// Reports per-layer progress (bars on a terminal, lines otherwise).
pub trait Progress: Sync {
    /// A layer of `size` bytes starts; returns its tracker.
    fn layer(&self, digest: &Digest, size: u64) -> Box<dyn LayerProgress + '_>;
}

pub trait LayerProgress: Send {
    fn advance(&self, bytes: u64);
    fn finish(&self, skipped: bool);
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn layer(&self, _: &Digest, _: u64) -> Box<dyn LayerProgress + '_> {
        Box::new(NoProgress)
    }
}

impl LayerProgress for NoProgress {
    fn advance(&self, _: u64) {}
    fn finish(&self, _: bool) {}
}

/// Copies what is read through it into a file and hashes it.
struct Tee<'a, R> {
    inner: R,
    out: File,
    hasher: Sha256,
    count: u64,
    progress: &'a dyn LayerProgress,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

impl<R: Read> Tee<'_, R> {
    /// Reads the rest of the stream (bytes after the compressed end) and
    /// makes the copy durable.
    fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        self.out.sync_all()?;
        Ok((Digest::from_sha256(self.hasher), self.count))
    }
}

/// Temp paths of one layer import, removed unless renamed into place.
struct Scratch(Vec<PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        for p in &self.0 {
            if p.is_dir() {
                let _ = std::fs::remove_dir_all(p);
            } else {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

fn tree_path(store: &ImageStore, diff_id: &Digest) -> PathBuf {
    store.layers_dir().join(ImageStore::layer_name(diff_id))
}

/// Moves a finished temp file or tree into place; if a concurrent import
/// got there first, its copy (identical, same digest) is kept.
fn publish(tmp: &Path, dest: &Path, what: &str) -> Result<()> {
    match std::fs::rename(tmp, dest) {
        Ok(()) => Ok(()),
        Err(_) if dest.exists() => Ok(()),
        Err(e) => Err(io_err(format!("cannot store {what}"))(e)),
    }
}

/// Reads one layer from `src` into the CAS and the layer store.
fn ingest_layer(
    store: &ImageStore,
    src: &dyn Source,
    desc: &Descriptor,
    diff_id: &Digest,
    p: &dyn LayerProgress,
) -> Result<()> {
    let digest = descriptor_digest(desc)?;
    let what = format!("layer {digest}");
    let blob_tmp = cas::tmp_path(store, "blob")?;
    let tree_tmp = cas::tmp_path(store, "layer")?;
    let _scratch = Scratch(vec![blob_tmp.clone(), tree_tmp.clone()]);
    std::fs::create_dir(&tree_tmp).map_err(io_err(format!("cannot create {}", tree_tmp.display())))?;
    let out = File::create(&blob_tmp).map_err(io_err(format!("cannot create {}", blob_tmp.display())))?;
    // Never read more than one byte past the announced size.
    let raw = src.open_blob(&digest, desc.size())?.take(desc.size().saturating_add(1));
    let mut tee = Tee { inner: raw, out, hasher: Sha256::new(), count: 0, progress: p };
    let unpacked = unpack_through(&mut tee, &tree_tmp, &digest, diff_id);
    // The compressed digest is checked even when decoding failed: a
    // corrupt blob is reported as what it is, not as a gzip error.
    let (actual, n) = tee.finish().map_err(io_err(format!("cannot read {what} from {}", src.describe())))?;
    if actual != digest {
        return Err(ImageError::DigestMismatch { what, expected: digest, actual });
    }
    if n != desc.size() {
        return Err(ImageError::SizeMismatch { what, expected: desc.size(), actual: n });
    }
    unpacked?;
    sync_store(&tree_tmp, &what)?;
    publish(&blob_tmp, &store.blob_path(&digest), &what)?;
    publish(&tree_tmp, &tree_path(store, diff_id), &what)
}

/// Makes everything written to the store's filesystem durable (one
/// `syncfs` instead of an fsync per unpacked file) before it is renamed
/// into place.
fn sync_store(tree: &Path, what: &str) -> Result<()> {
    let dir = File::open(tree).map_err(io_err(format!("cannot open {}", tree.display())))?;
    rustix::fs::syncfs(&dir).map_err(|e| io_err(format!("cannot sync {what}"))(e.into()))
}

/// Unpacks a layer whose blob is already stored (its tree was lost or
/// never made) from the store's own copy.
fn tree_from_stored_blob(store: &ImageStore, digest: &Digest, diff_id: &Digest) -> Result<()> {
    let what = format!("layer {digest}");
    let tree_tmp = cas::tmp_path(store, "layer")?;
    let _scratch = Scratch(vec![tree_tmp.clone()]);
    std::fs::create_dir(&tree_tmp).map_err(io_err(format!("cannot create {}", tree_tmp.display())))?;
    unpack_through(&mut cas::open(store, digest)?, &tree_tmp, digest, diff_id)?;
    sync_store(&tree_tmp, &what)?;
    publish(&tree_tmp, &tree_path(store, diff_id), &what)
}

/// Decompresses, hashes (diff_id) and unpacks one layer stream.
fn unpack_through(blob: &mut impl Read, tree: &Path, digest: &Digest, diff_id: &Digest) -> Result<()> {
    let what = format!("layer {digest}");
    let plain = HashingReader::new(decompress::decoder(blob, &what)?);
    let (stats, plain) =
        unpack_layer(plain, tree).map_err(|e| ImageError::Unpack { layer: digest.to_string(), err: e })?;
    stats.log(&what);
    let (actual, _) = plain.finish().map_err(io_err(format!("cannot read {what}")))?;
    if &actual != diff_id {
        return Err(ImageError::DigestMismatch {
            what: format!("uncompressed {what} (diff_id)"),
            expected: diff_id.clone(),
            actual,
        });
    }
    Ok(())
}

/// Brings a layer into the store unless both its blob and tree are there.
fn ensure_layer(
    store: &ImageStore,
    src: &dyn Source,
    desc: &Descriptor,
    diff_id: &Digest,
    progress: &dyn Progress,
) -> Result<()> {
    let digest = descriptor_digest(desc)?;
    let p = progress.layer(&digest, desc.size());
    let have_blob = store.blob_path(&digest).is_file();
    let have_tree = tree_path(store, diff_id).is_dir();
    let result = match (have_blob, have_tree) {
        (true, true) => Ok(()),
        (true, false) => tree_from_stored_blob(store, &digest, diff_id),
        (false, true) => {
            let r = src.open_blob(&digest, desc.size())?;
            cas::put(store, &digest, Some(desc.size()), &format!("layer {digest}"), r).map(|_| ())
        }
        (false, false) => ingest_layer(store, src, desc, diff_id, p.as_ref()),
    };
    if result.is_ok() {
        p.finish(have_blob && have_tree);
    }
    result
}

/// Imports the resolved image from `src` and names it `name`.
pub fn import(
    store: &ImageStore,
    src: &dyn Source,
    resolved: &Resolved,
    name: Option<&str>,
    platform: &Platform,
    progress: &dyn Progress,
) -> Result<ImageRecord> {
    for layer in resolved.manifest.layers() {
        media_type::check_layer(layer.media_type().as_ref(), layer.digest().as_ref())?;
    }
    let (id, config_bytes) = read_verified(src, resolved.manifest.config(), "config")?;
    if let Some(rec) = record::load(store, &id)? {
        if rec.manifest_digest == resolved.manifest_digest.to_string() && layers_present(store, &rec) {
            crate::debug!("image {id} from {} is already in the store", src.describe());
            if let Some(n) = name {
                names::set(store, n, &id)?;
            }
            return Ok(rec);
        }
    }
    let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
        .map_err(|e| ImageError::Invalid(format!("image config {id} is invalid: {e}")))?;
    let (os, arch) = (config.os().to_string(), config.architecture().to_string());
    if !platform.matches(&os, &arch, config.variant().as_deref()) {
        return Err(ImageError::Invalid(format!("image {id} is for {os}/{arch}, not {platform}")));
    }
    let diff_ids = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| Digest::parse(d).map_err(ImageError::Invalid))
        .collect::<Result<Vec<_>>>()?;
    let layers = resolved.manifest.layers();
    if diff_ids.len() != layers.len() {
        return Err(ImageError::Invalid(format!(
            "image {id}: the manifest has {} layers but the config lists {} diff_ids",
            layers.len(),
            diff_ids.len()
        )));
    }
    import_layers(store, src, layers, &diff_ids, progress)?;
    cas::put_bytes(store, &resolved.manifest_digest, &resolved.manifest_bytes, "manifest")?;
    cas::put_bytes(store, &id, &config_bytes, "config")?;

    let cfg = config.config().clone().unwrap_or_default();
    let layer_records: Vec<LayerRecord> = layers
        .iter()
        .zip(&diff_ids)
        .map(|(d, diff)| LayerRecord {
            digest: d.digest().to_string(),
            diff_id: diff.to_string(),
            media_type: d.media_type().to_string(),
            size: d.size(),
        })
        .collect();
    let size = layer_records.iter().map(|l| l.size).sum::<u64>()
        + config_bytes.len() as u64
        + resolved.manifest_bytes.len() as u64;
    let rec = ImageRecord {
        id: id.to_string(),
        manifest_digest: resolved.manifest_digest.to_string(),
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
        size,
        signatures: Vec::new(),
    };
    record::save(store, &rec)?;
    if let Some(n) = name {
        names::set(store, n, &id)?;
    }
    Ok(rec)
}

fn import_layers(
    store: &ImageStore,
    src: &dyn Source,
    layers: &[Descriptor],
    diff_ids: &[Digest],
    progress: &dyn Progress,
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<ImageError>> = Mutex::new(None);
    let workers = layers.len().clamp(1, PARALLEL_LAYERS);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= layers.len() || failed.load(Ordering::Relaxed) {
                    return;
                }
                if let Err(e) = ensure_layer(store, src, &layers[i], &diff_ids[i], progress) {
                    failed.store(true, Ordering::Relaxed);
                    let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
                    slot.get_or_insert(e);
                }
            });
        }
    });
    match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

pub fn layers_present(store: &ImageStore, rec: &ImageRecord) -> bool {
    rec.layers.iter().all(|l| {
        Digest::parse(&l.diff_id).is_ok_and(|d| tree_path(store, &d).is_dir())
            && Digest::parse(&l.digest).is_ok_and(|d| store.blob_path(&d).is_file())
    })
}
