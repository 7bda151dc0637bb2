//! Content-addressed blobs: `cas/blobs/sha256/<hex>`. A blob only ever
//! enters the store after its digest (and size, when known) was verified,
//! via a temp file that is fsynced and renamed into place.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use super::digest::{Digest, HashingReader};
use super::{io_err, ImageError, ImageStore, Result};

/// Creates a uniquely named temp path in the store's scratch directory.
pub fn tmp_path(store: &ImageStore, what: &str) -> Result<PathBuf> {
    let uuid = skiff_pods::uuid::new_v4().map_err(io_err("cannot generate a temp name"))?;
    Ok(store.tmp_dir().join(format!("{what}-{uuid}")))
}

/// Copies `src` into the store as `expected`, verifying it on the way.
/// Does nothing when the blob is already present.
pub fn put(store: &ImageStore, expected: &Digest, size: Option<u64>, what: &str, src: impl Read) -> Result<PathBuf> {
    let dest = store.blob_path(expected);
    if dest.exists() {
        return Ok(dest);
    }
    let tmp = tmp_path(store, "blob")?;
    let result = copy_verified(&tmp, expected, size, what, src).and_then(|()| {
        skiff_rt::failpoint!("image.blob")
            .and_then(|()| std::fs::rename(&tmp, &dest))
            .map_err(io_err(format!("cannot store {what}")))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| dest)
}

fn copy_verified(tmp: &PathBuf, expected: &Digest, size: Option<u64>, what: &str, src: impl Read) -> Result<()> {
    let mut out = File::create(tmp).map_err(io_err(format!("cannot create {}", tmp.display())))?;
    // Never read more than one byte past the announced size: a hostile
    // source cannot make us fill the disk beyond what it declared.
    let limit = size.map_or(u64::MAX, |s| s.saturating_add(1));
    let mut reader = HashingReader::new(src.take(limit));
    io::copy(&mut reader, &mut out).map_err(io_err(format!("cannot copy {what}")))?;
    out.flush().and_then(|()| out.sync_all()).map_err(io_err(format!("cannot write {what}")))?;
    let (actual, n) = reader.finish().map_err(io_err(format!("cannot read {what}")))?;
    if let Some(expected_size) = size {
        if n != expected_size {
            return Err(ImageError::SizeMismatch { what: what.into(), expected: expected_size, actual: n });
        }
    }
    if &actual != expected {
        return Err(ImageError::DigestMismatch { what: what.into(), expected: expected.clone(), actual });
    }
    Ok(())
}

/// Stores a small in-memory blob whose digest was already checked.
pub fn put_bytes(store: &ImageStore, d: &Digest, data: &[u8], what: &str) -> Result<()> {
    put(store, d, Some(data.len() as u64), what, data).map(|_| ())
}

pub fn open(store: &ImageStore, d: &Digest) -> Result<File> {
    File::open(store.blob_path(d)).map_err(io_err(format!("blob {d} is missing from the store")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ImageStore) {
        let d = tempfile::tempdir().unwrap();
        let s = ImageStore::new(d.path());
        s.ensure_dirs().unwrap();
        (d, s)
    }

    #[test]
    fn verified_blob_is_stored() {
        let (_d, s) = store();
        let d = Digest::of(b"hello");
        let p = put(&s, &d, Some(5), "blob", &b"hello"[..]).unwrap();
        assert_eq!(std::fs::read(p).unwrap(), b"hello");
    }

    #[test]
    fn wrong_content_or_size_leaves_nothing() {
        let (_d, s) = store();
        let d = Digest::of(b"hello");
        assert!(matches!(put(&s, &d, Some(5), "blob", &b"hellO"[..]), Err(ImageError::DigestMismatch { .. })));
        assert!(matches!(put(&s, &d, Some(5), "blob", &b"hello world"[..]), Err(ImageError::SizeMismatch { .. })));
        assert!(matches!(put(&s, &d, Some(9), "blob", &b"hello"[..]), Err(ImageError::SizeMismatch { .. })));
        assert!(!s.blob_path(&d).exists());
        assert_eq!(std::fs::read_dir(s.tmp_dir()).unwrap().count(), 0);
    }
}
