//! `image build --from-dir`: a root filesystem directory becomes a
//! single-layer OCI image, reproducibly (entries sorted bytewise, mtimes
//! fixed to `SOURCE_DATE_EPOCH` or 0 unless kept, gzip without a
//! timestamp), so the same directory and options give the same digest.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde_json::json;
use tar::{EntryType, Header};

use super::cas;
use super::digest::{Digest, HashingWriter};
use super::import::{import, Progress};
use super::platform::Platform;
use super::record::ImageRecord;
use super::source::{resolve, BlobReader, Source, OCI_MANIFEST};
use super::{io_err, ImageError, ImageStore, Result};

#[derive(Clone, Debug, Default)]
pub struct BuildSpec {
    pub from_dir: PathBuf,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub keep_mtimes: bool,
    /// Seconds since the epoch for mtimes and `created` (SOURCE_DATE_EPOCH).
    pub epoch: Option<i64>,
    /// `--created`: seconds since the epoch for `created` alone, above
    /// `epoch`. Without either, the newest mtime in the tree (so the same
    /// tree still gives the same digest).
    pub created: Option<i64>,
}

/// What a build made, and what it left out.
pub struct BuildOutcome {
    pub record: ImageRecord,
    /// Device nodes and sockets of the tree, which images do not carry.
    pub skipped_special: usize,
}

/// The files of a build, as an image source.
struct Built {
    blobs: HashMap<Digest, Blob>,
}

enum Blob {
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl Source for Built {
    fn describe(&self) -> String {
        "image build".into()
    }

    fn open_blob(&self, d: &Digest, _size: u64) -> Result<BlobReader<'_>> {
        match self.blobs.get(d) {
            Some(Blob::File(p)) => Ok(Box::new(File::open(p).map_err(io_err(format!("cannot open {}", p.display())))?)),
            Some(Blob::Bytes(b)) => Ok(Box::new(&b[..])),
            None => Err(ImageError::Invalid(format!("image build has no blob {d}"))),
        }
    }
}

/// Removes the built layer file however the build ends.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub fn build(store: &ImageStore, spec: &BuildSpec, name: &str, progress: &dyn Progress) -> Result<BuildOutcome> {
    let md = std::fs::symlink_metadata(&spec.from_dir)
        .map_err(io_err(format!("cannot read --from-dir {}", spec.from_dir.display())))?;
    if !md.is_dir() {
        return Err(ImageError::Invalid(format!("--from-dir {} is not a directory", spec.from_dir.display())));
    }
    let layer_path = TempFile(cas::tmp_path(store, "build")?);
    let layer = write_layer(spec, &layer_path.0)?;
    let created = spec.created.or(spec.epoch).unwrap_or(layer.newest_mtime);
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(created).unwrap_or(0));
    let created = humantime::format_rfc3339_seconds(t).to_string();

    let mut config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "created": created,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id.to_string()]},
        "history": [{"created": created, "created_by": "skiff image build --from-dir"}],
    });
    let c = &mut config["config"];
    if let Some(ep) = &spec.entrypoint {
        c["Entrypoint"] = json!(ep);
    }
    if let Some(cmd) = &spec.cmd {
        c["Cmd"] = json!(cmd);
    }
    if !spec.env.is_empty() {
        c["Env"] = json!(spec.env);
    }
    if let Some(w) = &spec.workdir {
        c["WorkingDir"] = json!(w);
    }
    if let Some(u) = &spec.user {
        c["User"] = json!(u);
    }
    let config = serde_json::to_vec(&config).map_err(|e| ImageError::Invalid(e.to_string()))?;
    let config_digest = Digest::of(&config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer.digest.to_string(), "size": layer.size}],
    });
    let manifest = serde_json::to_vec(&manifest).map_err(|e| ImageError::Invalid(e.to_string()))?;
    let manifest_digest = Digest::of(&manifest);
    let src = Built {
        blobs: HashMap::from([
            (layer.digest, Blob::File(layer_path.0.clone())),
            (config_digest, Blob::Bytes(config)),
            (manifest_digest.clone(), Blob::Bytes(manifest.clone())),
        ]),
    };
    let platform = Platform::default();
    let resolved = resolve(&src, Some(OCI_MANIFEST), manifest_digest, manifest, &platform)?;
    let record = import(store, &src, &resolved, Some(name), &platform, progress)?;
    Ok(BuildOutcome { record, skipped_special: layer.skipped_special })
}

/// The gzipped layer as written.
struct Layer {
    diff_id: Digest,
    digest: Digest,
    size: u64,
    newest_mtime: i64,
    skipped_special: usize,
}

fn write_layer(spec: &BuildSpec, out: &Path) -> Result<Layer> {
    let what = format!("cannot write the layer of {}", spec.from_dir.display());
    let f = File::create(out).map_err(io_err(what.clone()))?;
    let gz = flate2::write::GzEncoder::new(HashingWriter::new(BufWriter::new(f)), flate2::Compression::default());
    let mut tar = tar::Builder::new(HashingWriter::new(gz));
    tar.mode(tar::HeaderMode::Complete);
    let mut w = Walker { spec, links: HashMap::new(), newest_mtime: 0, skipped_special: 0 };
    w.dir(&mut tar, &spec.from_dir, Path::new(""))?;
    let plain = tar.into_inner().map_err(io_err(what.clone()))?;
    let (gz, diff_id, _) = plain.finish();
    let compressed = gz.finish().map_err(io_err(what.clone()))?;
    let (mut file, digest, size) = compressed.finish();
    file.flush().map_err(io_err(what.clone()))?;
    Ok(Layer { diff_id, digest, size, newest_mtime: w.newest_mtime, skipped_special: w.skipped_special })
}

struct Walker<'a> {
    spec: &'a BuildSpec,
    /// First path of each multiply linked inode, for hard link entries.
    links: HashMap<(u64, u64), PathBuf>,
    newest_mtime: i64,
    skipped_special: usize,
}

impl Walker<'_> {
    fn dir<W: Write>(&mut self, tar: &mut tar::Builder<W>, abs: &Path, rel: &Path) -> Result<()> {
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(abs)
            .map_err(io_err(format!("cannot list {}", abs.display())))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()
            .map_err(io_err(format!("cannot list {}", abs.display())))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            self.entry(tar, &abs.join(&name), &rel.join(&name))?;
        }
        Ok(())
    }

    fn header(&self, md: &std::fs::Metadata, kind: EntryType, size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(md.mode() & 0o7777);
        h.set_uid(u64::from(md.uid()));
        h.set_gid(u64::from(md.gid()));
        let mtime = if self.spec.keep_mtimes { md.mtime() } else { self.spec.epoch.unwrap_or(0) };
        h.set_mtime(u64::try_from(mtime).unwrap_or(0));
        h
    }

    fn entry<W: Write>(&mut self, tar: &mut tar::Builder<W>, abs: &Path, rel: &Path) -> Result<()> {
        let what = format!("cannot add {} to the layer", abs.display());
        let md = std::fs::symlink_metadata(abs).map_err(io_err(what.clone()))?;
        let ft = md.file_type();
        self.newest_mtime = self.newest_mtime.max(md.mtime());
        if ft.is_dir() {
            let mut h = self.header(&md, EntryType::Directory, 0);
            tar.append_data(&mut h, rel, std::io::empty()).map_err(io_err(what))?;
            return self.dir(tar, abs, rel);
        }
        if ft.is_symlink() {
            let target = std::fs::read_link(abs).map_err(io_err(what.clone()))?;
            let mut h = self.header(&md, EntryType::Symlink, 0);
            return tar.append_link(&mut h, rel, target).map_err(io_err(what));
        }
        if ft.is_fifo() {
            let mut h = self.header(&md, EntryType::Fifo, 0);
            return tar.append_data(&mut h, rel, std::io::empty()).map_err(io_err(what));
        }
        if !ft.is_file() {
            self.skipped_special += 1;
            return Ok(());
        }
        if md.nlink() > 1 {
            if let Some(first) = self.links.get(&(md.dev(), md.ino())) {
                let mut h = self.header(&md, EntryType::Link, 0);
                return tar.append_link(&mut h, rel, first).map_err(io_err(what));
            }
            self.links.insert((md.dev(), md.ino()), rel.to_path_buf());
        }
        let f = File::open(abs).map_err(io_err(what.clone()))?;
        let mut h = self.header(&md, EntryType::Regular, md.len());
        tar.append_data(&mut h, rel, f.take(md.len())).map_err(io_err(what))
    }
}
