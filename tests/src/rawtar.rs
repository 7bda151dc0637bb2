//! Tar members written byte for byte, so tests can produce what honest
//! tools never would: `..` paths, absolute links, devices, whiteouts.

use tar::{EntryType, Header};

pub struct Entry<'a> {
    pub name: &'a [u8],
    pub kind: EntryType,
    pub data: &'a [u8],
    pub link: &'a [u8],
    pub mode: u32,
    pub uid: u64,
    pub mtime: u64,
}

pub fn entry(name: &str, kind: EntryType) -> Entry<'_> {
    Entry { name: name.as_bytes(), kind, data: b"", link: b"", mode: 0o644, uid: 0, mtime: 1_600_000_000 }
}

pub fn dir(name: &str) -> Entry<'_> {
    Entry { mode: 0o755, ..entry(name, EntryType::Directory) }
}

pub fn file<'a>(name: &'a str, data: &'a [u8]) -> Entry<'a> {
    Entry { data, ..entry(name, EntryType::Regular) }
}

pub fn link<'a>(name: &'a str, kind: EntryType, target: &'a str) -> Entry<'a> {
    Entry { link: target.as_bytes(), ..entry(name, kind) }
}

/// A tar stream of `entries` in order. Names must fit the 100-byte field.
pub fn tar_of(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for en in entries {
        let mut h = Header::new_gnu();
        if let Some(g) = h.as_gnu_mut() {
            g.name[..en.name.len()].copy_from_slice(en.name);
            g.linkname[..en.link.len()].copy_from_slice(en.link);
        }
        h.set_entry_type(en.kind);
        h.set_size(en.data.len() as u64);
        h.set_mode(en.mode);
        h.set_uid(en.uid);
        h.set_gid(en.uid);
        h.set_mtime(en.mtime);
        if matches!(en.kind, EntryType::Char | EntryType::Block) {
            let _ = h.set_device_major(8);
            let _ = h.set_device_minor(0);
        }
        h.set_cksum();
        b.append(&h, en.data).expect("writing to a Vec cannot fail");
    }
    b.into_inner().expect("writing to a Vec cannot fail")
}
