//! `image export IMAGE oci-archive:PATH[:NAME]`: the stored blobs as a tar
//! of an OCI image layout, readable by skopeo, podman and umoci.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde_json::json;

use super::cas;
use super::digest::Digest;
use super::record::ImageRecord;
use super::source::OCI_MANIFEST;
use super::{io_err, ImageError, ImageStore, Result};

fn append(b: &mut tar::Builder<impl Write>, name: &str, size: u64, data: impl std::io::Read) -> std::io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append_data(&mut h, name, data)
}

fn append_dir(b: &mut tar::Builder<impl Write>, name: &str) -> std::io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(0);
    h.set_mode(0o755);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Directory);
    h.set_cksum();
    b.append_data(&mut h, name, std::io::empty())
}

/// Writes `rec` to `dest` (via a temp file renamed into place), tagged
/// `tag` in the archive's index when given.
pub fn export(store: &ImageStore, rec: &ImageRecord, dest: &Path, tag: Option<&str>) -> Result<()> {
    let manifest_digest = Digest::parse(&rec.manifest_digest).map_err(ImageError::Invalid)?;
    let manifest = std::fs::read(store.blob_path(&manifest_digest))
        .map_err(io_err(format!("manifest {manifest_digest} is missing from the store")))?;
    let media_type = serde_json::from_slice::<serde_json::Value>(&manifest)
        .ok()
        .and_then(|v| v["mediaType"].as_str().map(str::to_string))
        .unwrap_or_else(|| OCI_MANIFEST.to_string());
    let mut desc = json!({"mediaType": media_type, "digest": manifest_digest.to_string(), "size": manifest.len()});
    if let Some(t) = tag {
        desc["annotations"] = json!({"org.opencontainers.image.ref.name": t});
    }
    let index =
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [desc]});
    let index = serde_json::to_vec(&index).map_err(|e| ImageError::Invalid(e.to_string()))?;

    let mut blobs = vec![manifest_digest, rec.id_digest()?];
    for l in &rec.layers {
        let d = Digest::parse(&l.digest).map_err(ImageError::Invalid)?;
        if !blobs.contains(&d) {
            blobs.push(d);
        }
    }
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        dest.file_name().and_then(|n| n.to_str()).unwrap_or("export"),
        std::process::id()
    ));
    let result = write(store, &tmp, &index, &blobs)
        .and_then(|()| std::fs::rename(&tmp, dest).map_err(io_err(format!("cannot write {}", dest.display()))));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write(store: &ImageStore, tmp: &Path, index: &[u8], blobs: &[Digest]) -> Result<()> {
    let what = format!("cannot write {}", tmp.display());
    let f = File::create(tmp).map_err(io_err(what.clone()))?;
    let mut b = tar::Builder::new(BufWriter::new(f));
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    append(&mut b, "oci-layout", layout.len() as u64, &layout[..]).map_err(io_err(what.clone()))?;
    append(&mut b, "index.json", index.len() as u64, index).map_err(io_err(what.clone()))?;
    for d in ["blobs", "blobs/sha256"] {
        append_dir(&mut b, d).map_err(io_err(what.clone()))?;
    }
    for d in blobs {
        let f = cas::open(store, d)?;
        let size = f.metadata().map_err(io_err(format!("cannot stat blob {d}")))?.len();
        append(&mut b, &format!("blobs/sha256/{}", d.hex()), size, f).map_err(io_err(what.clone()))?;
    }
    let out = b.into_inner().map_err(io_err(what.clone()))?;
    let f = out.into_inner().map_err(|e| io_err(what.clone())(e.into_error()))?;
    f.sync_all().map_err(io_err(what))
}
