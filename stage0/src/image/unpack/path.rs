//! Turning a tar entry's path into something safe to create under a root.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A path inside the layer root: zero or more parent components and a
/// final name, none of them empty, `.`, `..` or containing `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryPath {
    pub parent: PathBuf,
    pub name: Vec<u8>,
}

impl EntryPath {
    pub fn name_os(&self) -> &OsStr {
        OsStr::from_bytes(&self.name)
    }

    pub fn full(&self) -> PathBuf {
        self.parent.join(self.name_os())
    }

    /// The parent as a path usable with `*at` calls ("." for the root).
    pub fn parent_or_dot(&self) -> &Path {
        if self.parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &self.parent
        }
    }
}

/// Normalises a tar path. Leading `/` and `./` are dropped (every tar tool
/// treats member paths as relative to the extraction root); `.` components
/// are skipped; any `..` component is refused, since no honest layer needs
/// one. `Ok(None)` means the entry is the root itself.
pub fn normalize(raw: &[u8]) -> Result<Option<EntryPath>, String> {
    if raw.contains(&0) {
        return Err("path contains a NUL byte".into());
    }
    let mut comps: Vec<&[u8]> = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("path has a '..' component".into()),
            c => comps.push(c),
        }
    }
    let Some(name) = comps.pop() else {
        return Ok(None);
    };
    let mut parent = PathBuf::new();
    for c in comps {
        parent.push(OsStr::from_bytes(c));
    }
    Ok(Some(EntryPath { parent, name: name.to_vec() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Result<Option<(String, String)>, String> {
        normalize(s.as_bytes()).map(|o| {
            o.map(|e| (e.parent.to_string_lossy().into_owned(), String::from_utf8_lossy(&e.name).into_owned()))
        })
    }

    #[test]
    fn ordinary_paths() {
        assert_eq!(n("bin/sh").unwrap(), Some(("bin".into(), "sh".into())));
        assert_eq!(n("./usr/lib/").unwrap(), Some(("usr".into(), "lib".into())));
        assert_eq!(n("a//b/./c").unwrap(), Some(("a/b".into(), "c".into())));
        assert_eq!(n("top").unwrap(), Some(("".into(), "top".into())));
        assert_eq!(n("./").unwrap(), None);
        assert_eq!(n("").unwrap(), None);
    }

    #[test]
    fn absolute_paths_are_made_relative() {
        assert_eq!(n("/etc/passwd").unwrap(), Some(("etc".into(), "passwd".into())));
        assert_eq!(n("///etc//shadow").unwrap(), Some(("etc".into(), "shadow".into())));
    }

    #[test]
    fn traversal_is_refused() {
        for p in ["..", "../etc/passwd", "a/../../b", "a/..", "./../x", "/../../etc/shadow", "a/b/../c"] {
            assert!(n(p).is_err(), "{p}");
        }
        assert!(normalize(b"a\0b").is_err());
    }

    #[test]
    fn dots_in_names_are_fine() {
        assert_eq!(n("a/..b").unwrap(), Some(("a".into(), "..b".into())));
        assert_eq!(n(".wh..wh..opq").unwrap(), Some(("".into(), ".wh..wh..opq".into())));
    }
}
