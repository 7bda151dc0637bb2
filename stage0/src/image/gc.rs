//! `image gc`: deletes blobs and layer trees that no image record and no
//! pod references, and whatever an interrupted import left in `tmp/`.
//! Holds the store lock exclusively, so no import or pod preparation runs
//! meanwhile.

use std::collections::HashSet;
use std::path::Path;

use skiff_pods::{Pod, Store};

use super::digest::Digest;
use super::lock::StoreLock;
use super::record;
use super::{io_err, ImageError, ImageStore, Result};

#[derive(Debug, Default)]
pub struct ImageGcReport {
    pub blobs: usize,
    pub layers: usize,
    pub scratch: usize,
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default()
}

fn remove(p: &Path) -> Result<()> {
    let r = skiff_rt::failpoint!("image.gc").and_then(|()| match p.is_dir() && !p.is_symlink() {
        true => std::fs::remove_dir_all(p),
        false => std::fs::remove_file(p),
    });
    r.map_err(io_err(format!("cannot remove {}", p.display())))
}

pub fn gc(images: &ImageStore, pods: &Store) -> Result<ImageGcReport> {
    let _lock = StoreLock::exclusive(images)?;
    let mut keep_blobs: HashSet<String> = HashSet::new();
    let mut keep_trees: HashSet<String> = HashSet::new();
    for rec in record::all(images)? {
        let hex = |d: &str| Digest::parse(d).map(|d| d.hex().to_string()).map_err(ImageError::Invalid);
        keep_blobs.insert(hex(&rec.id)?);
        keep_blobs.insert(hex(&rec.manifest_digest)?);
        for l in &rec.layers {
            keep_blobs.insert(hex(&l.digest)?);
            keep_trees.insert(hex(&l.diff_id)?);
        }
    }
    // Pods keep the trees they were prepared with, even after their image
    // was removed. A pod whose manifest cannot be read keeps gc from
    // deciding: better to keep everything than to break it.
    for pod in Pod::all(pods) {
        if !pod.path().join(skiff_pods::manifest::MANIFEST_FILE).exists() {
            continue; // an embryo or aborted prepare references nothing
        }
        let m = pod.read_manifest().map_err(|e| ImageError::Invalid(format!("image gc stopped: {e}")))?;
        for app in m.apps {
            for l in app.rootfs.layers {
                if let Some(hex) = l.strip_prefix("sha256/") {
                    keep_trees.insert(hex.to_string());
                }
            }
        }
    }
    let mut report = ImageGcReport::default();
    for name in entries(&images.blobs_dir()) {
        if !keep_blobs.contains(&name) {
            remove(&images.blobs_dir().join(&name))?;
            report.blobs += 1;
        }
    }
    let trees = images.layers_dir().join("sha256");
    for name in entries(&trees) {
        if !keep_trees.contains(&name) {
            remove(&trees.join(&name))?;
            report.layers += 1;
        }
    }
    for name in entries(&images.tmp_dir()) {
        remove(&images.tmp_dir().join(&name))?;
        report.scratch += 1;
    }
    // The temp files of atomic writes (records, the names table) that a
    // killed fetch left: under the exclusive lock no writer is alive.
    for name in entries(&images.images_dir()).into_iter().filter(|n| n.starts_with(".tmp-")) {
        remove(&images.images_dir().join(&name))?;
        report.scratch += 1;
    }
    Ok(report)
}
