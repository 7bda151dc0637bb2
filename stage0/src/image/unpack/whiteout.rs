//! OCI whiteouts, translated into overlayfs' own format: a `.wh.NAME` entry
//! becomes a 0:0 character device `NAME`, and `.wh..wh..opq` marks its
//! directory opaque with the `trusted.overlay.opaque` xattr. The layer tree
//! can then be used as an overlay lowerdir as is.

pub const PREFIX: &[u8] = b".wh.";
pub const OPAQUE: &[u8] = b".wh..wh..opq";
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

#[derive(Debug, PartialEq, Eq)]
pub enum Whiteout<'a> {
    /// Hide everything the lower layers have in this directory.
    Opaque,
    /// Hide `name` from the lower layers.
    Remove(&'a [u8]),
}

/// Classifies an entry's final path component.
pub fn classify(name: &[u8]) -> Result<Option<Whiteout<'_>>, String> {
    if name == OPAQUE {
        return Ok(Some(Whiteout::Opaque));
    }
    let Some(target) = name.strip_prefix(PREFIX) else {
        return Ok(None);
    };
    if target.is_empty() || target == b"." || target == b".." || target.starts_with(PREFIX) {
        return Err(format!("invalid whiteout {:?}", String::from_utf8_lossy(name)));
    }
    Ok(Some(Whiteout::Remove(target)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(classify(b".wh..wh..opq").unwrap(), Some(Whiteout::Opaque));
        assert_eq!(classify(b".wh.blob").unwrap(), Some(Whiteout::Remove(b"blob")));
        assert_eq!(classify(b"blob").unwrap(), None);
        assert_eq!(classify(b".whx").unwrap(), None);
    }

    #[test]
    fn hostile_whiteouts_are_refused() {
        for n in [&b".wh."[..], b".wh..", b".wh...", b".wh..wh.x"] {
            assert!(classify(n).is_err(), "{:?}", String::from_utf8_lossy(n));
        }
    }
}
