//! Random access to the members of a tar file on disk, without unpacking
//! it: one pass records where each member's data starts, then members are
//! read in place with `pread` (several at once, for parallel layers).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::layout::{open_regular, LayoutFiles};
use super::BlobReader;
use crate::image::{io_err, ImageError, Result};

enum Member {
    File {
        offset: u64,
        size: u64,
    },
    /// A symlink or hard link to another member (docker save links
    /// repeated layers), by normalised path.
    Link(String),
}

pub struct TarFile {
    path: PathBuf,
    file: File,
    members: HashMap<String, Member>,
}

/// `./a/b/` and `/a/b` both name `a/b`; `..` is resolved lexically, never
/// above the archive's root.
fn normalize(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

impl TarFile {
    pub fn open(path: &Path) -> Result<TarFile> {
        let file = open_regular(path).map_err(io_err(format!("cannot open archive {}", path.display())))?;
        let mut members = HashMap::new();
        let mut archive = tar::Archive::new(&file);
        let bad = |e: io::Error| ImageError::Invalid(format!("{} is not a valid tar archive: {e}", path.display()));
        for entry in archive.entries_with_seek().map_err(bad)? {
            let entry = entry.map_err(bad)?;
            let name = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
            let member = match entry.header().entry_type() {
                EntryType::Regular | EntryType::Continuous => {
                    Member::File { offset: entry.raw_file_position(), size: entry.size() }
                }
                EntryType::Symlink | EntryType::Link => {
                    let Some(target) = entry.link_name_bytes() else {
                        continue;
                    };
                    let target = String::from_utf8_lossy(&target).into_owned();
                    let resolved = if entry.header().entry_type() == EntryType::Symlink && !target.starts_with('/') {
                        let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                        normalize(&format!("{dir}/{target}"))
                    } else {
                        normalize(&target)
                    };
                    Member::Link(resolved)
                }
                _ => continue,
            };
            members.insert(name, member);
        }
        Ok(TarFile { path: path.to_path_buf(), file, members })
    }

    /// The data of a regular member (following links), with its size.
    pub fn member(&self, name: &str) -> Result<(RangeReader<'_>, u64)> {
        let mut name = normalize(name);
        for _ in 0..8 {
            match self.members.get(&name) {
                Some(Member::File { offset, size }) => {
                    return Ok((RangeReader { file: &self.file, pos: *offset, end: offset + size }, *size))
                }
                Some(Member::Link(target)) => name = target.clone(),
                None => break,
            }
        }
        Err(ImageError::Invalid(format!("{name} is missing from archive {}", self.path.display())))
    }

    /// Reads a small member whole.
    pub fn read_small(&self, name: &str, max: u64) -> Result<Vec<u8>> {
        let (r, size) = self.member(name)?;
        if size > max {
            return Err(ImageError::Invalid(format!("{name} in {} is {size} bytes, too big", self.path.display())));
        }
        let mut data = Vec::new();
        r.take(max)
            .read_to_end(&mut data)
            .map_err(io_err(format!("cannot read {name} from {}", self.path.display())))?;
        Ok(data)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A byte range of the archive file, read with `pread` so readers of
/// different members do not share a file position.
pub struct RangeReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end.saturating_sub(self.pos);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "archive ends inside a member"));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl LayoutFiles for TarFile {
    fn describe(&self) -> String {
        format!("archive {}", self.path.display())
    }

    fn open(&self, rel: &str) -> Result<(BlobReader<'_>, u64)> {
        let (r, size) = self.member(rel)?;
        Ok((Box::new(r), size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_stays_inside() {
        assert_eq!(normalize("./blobs/sha256/ab"), "blobs/sha256/ab");
        assert_eq!(normalize("/x//y/"), "x/y");
        assert_eq!(normalize("../../etc/passwd"), "etc/passwd");
        assert_eq!(normalize("a/../b"), "b");
    }

    #[test]
    fn members_and_links_are_read_in_place() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.tar");
        let mut b = tar::Builder::new(File::create(&p).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "dir/one/layer.tar", &b"hello"[..]).unwrap();
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(EntryType::Symlink);
        l.set_size(0);
        b.append_link(&mut l, "dir/two/layer.tar", "../one/layer.tar").unwrap();
        b.finish().unwrap();
        drop(b);
        let t = TarFile::open(&p).unwrap();
        let mut s = String::new();
        t.member("./dir/two/layer.tar").unwrap().0.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
        assert!(t.member("missing").is_err());
        assert!(t.read_small("dir/one/layer.tar", 2).is_err(), "size cap");
    }
}
