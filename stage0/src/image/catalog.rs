//! What is in the store, by name or ID: lookup, listing, last use, removal.

use std::time::SystemTime;

use super::digest::Digest;
use super::fetch::{self, Fetched};
use super::names::{self, Names};
use super::record::{self, ImageRecord};
use super::{io_err, ImageError, ImageStore, Result};

/// An image of the store as `image list` and `image inspect` show it.
pub struct Entry {
    pub record: ImageRecord,
    pub names: Vec<String>,
    pub last_used: Option<SystemTime>,
}

fn used_marker(store: &ImageStore, id: &Digest) -> std::path::PathBuf {
    store.images_dir().join(format!("{}.used", id.hex()))
}

/// Records that a pod was made from `id` (the marker's mtime). A lost
/// update only loses a timestamp, so this is not a synced write: it sits
/// on the pod start path, where it sets the times of the marker (a
/// truncating create dirtied more of the inode), created the first time.
pub fn touch_used(store: &ImageStore, id: &Digest) {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    let p = used_marker(store, id);
    let now = TimeSpec::UTIME_NOW;
    if utimensat(nix::fcntl::AT_FDCWD, &p, &now, &now, UtimensatFlags::NoFollowSymlink).is_err() {
        let _ = std::fs::File::create(p);
    }
}

pub fn last_used(store: &ImageStore, id: &Digest) -> Option<SystemTime> {
    std::fs::metadata(used_marker(store, id)).and_then(|m| m.modified()).ok()
}

/// Every image, newest fetch first.
pub fn list(store: &ImageStore) -> Result<Vec<Entry>> {
    let names = names::load(store)?;
    let mut out: Vec<Entry> = record::all(store)?.into_iter().map(|r| entry(store, &names, r)).collect();
    out.sort_by(|a, b| b.record.fetched_at.cmp(&a.record.fetched_at));
    Ok(out)
}

fn entry(store: &ImageStore, names: &Names, record: ImageRecord) -> Entry {
    let last_used = record.id_digest().ok().and_then(|d| last_used(store, &d));
    Entry { names: names::names_of(names, &record.id), record, last_used }
}

/// What the user named: a stored name, `sha256:` and an ID prefix, or a
/// bare hex ID prefix of at least 4 digits.
pub enum Selector {
    Name(String),
    Id,
}

/// The one resolver of a stored image, for every command that takes one
/// (`run`, `prepare`, `image inspect|rm|export`): a name or short name
/// first (`busybox`, `mytool:1`, `oci:/abs/layout:tag`), then an ID or a
/// unique ID prefix of at least 4 hex digits, with or without `sha256:`
/// (what `image list` prints).
pub fn resolve(store: &ImageStore, what: &str) -> Result<(Fetched, Selector)> {
    if let Some((name, digest)) = what.rsplit_once('@').filter(|(_, d)| d.starts_with("sha256:")) {
        return resolve_pinned(store, what, name, digest);
    }
    if let Ok(f) = fetch::stored(store, what) {
        let name = f.name.clone();
        return Ok((f, Selector::Name(name)));
    }
    let hex = what.strip_prefix("sha256:").unwrap_or(what);
    if (4..=64).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        let record = record::find_by_prefix(store, hex).map_err(|e| match e {
            ImageError::NotFound(_) => ImageError::NotFound(what.to_string()),
            e => e,
        })?;
        let name = names::names_of(&names::load(store)?, &record.id).into_iter().next();
        let name = name.unwrap_or_else(|| record.id.clone());
        return Ok((Fetched { record, name }, Selector::Id));
    }
    Err(ImageError::NotFound(what.to_string()))
}

/// `NAME@sha256:HEX`, as Kubernetes and `generate kube` pin an image: the
/// stored image whose manifest has that digest (the tag, if any, does not
/// count, as in Kubernetes). Known by NAME when NAME is one of its names.
fn resolve_pinned(store: &ImageStore, what: &str, name: &str, digest: &str) -> Result<(Fetched, Selector)> {
    Digest::parse(digest).map_err(|e| ImageError::Invalid(format!("image {what:?}: {e}")))?;
    if let Ok(f) = fetch::stored(store, name) {
        if f.record.manifest_digest == digest {
            let name = f.name.clone();
            return Ok((f, Selector::Name(name)));
        }
    }
    let record = record::all(store)?
        .into_iter()
        .find(|r| r.manifest_digest == digest)
        .ok_or_else(|| ImageError::NotFound(what.to_string()))?;
    Ok((Fetched { record, name: what.to_string() }, Selector::Id))
}

/// Finds one stored image; `Name` when it was found by one of its names.
pub fn find(store: &ImageStore, what: &str) -> Result<(Entry, Selector)> {
    let (f, sel) = resolve(store, what)?;
    Ok((entry(store, &names::load(store)?, f.record), sel))
}

/// Removes a name, or (by ID) the image and all its names. An image whose
/// last name goes is removed too. Blobs and layer trees stay until
/// `image gc`, so pods already prepared from the image keep working.
/// Returns the IDs of the images removed.
pub fn remove(store: &ImageStore, what: &str) -> Result<Vec<String>> {
    let (entry, sel) = find(store, what)?;
    let id = entry.record.id_digest()?;
    let id_str = id.to_string();
    let left = names::update(store, |n| {
        match &sel {
            Selector::Name(name) => {
                n.remove(name);
            }
            Selector::Id => n.retain(|_, v| *v != id_str),
        }
        names::names_of(n, &id_str).len()
    })?;
    if left > 0 {
        return Ok(Vec::new());
    }
    record::delete(store, &id)?;
    match std::fs::remove_file(used_marker(store, &id)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io_err(format!("cannot remove the use marker of {id}"))(e))
        }
        _ => {}
    }
    Ok(vec![id_str])
}
