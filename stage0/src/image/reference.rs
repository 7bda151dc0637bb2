//! What users may name an image with (today: an OCI layout or an image ID).

use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageReference {
    /// `oci:PATH[:TAG]`: an OCI image layout directory.
    OciLayout { path: PathBuf, tag: Option<String> },
    /// `sha256:HEX` (full or a unique prefix of at least 4 digits): an image
    /// already in the store.
    Id(String),
}

fn is_tag(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl ImageReference {
    pub fn parse(s: &str) -> Result<ImageReference, String> {
        if let Some(rest) = s.strip_prefix("oci:") {
            let (path, tag) = match rest.rsplit_once(':') {
                Some((p, t)) if is_tag(t) && !p.is_empty() => (p, Some(t.to_string())),
                _ => (rest, None),
            };
            if path.is_empty() || path.starts_with(':') {
                return Err(format!(
                    "image reference {s:?} has no path (expected oci:PATH[:TAG])"
                ));
            }
            return Ok(ImageReference::OciLayout {
                path: PathBuf::from(path),
                tag,
            });
        }
        if let Some(hex) = s.strip_prefix("sha256:") {
            if hex.len() >= 4
                && hex.len() <= 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Ok(ImageReference::Id(hex.to_string()));
            }
            return Err(format!(
                "invalid image ID {s:?}: expected sha256: and 4 to 64 lowercase hex digits"
            ));
        }
        Err(format!(
            "unsupported image reference {s:?}: use oci:PATH[:TAG] for an OCI image layout or sha256:ID for a fetched image"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oci(p: &str, t: Option<&str>) -> ImageReference {
        ImageReference::OciLayout {
            path: p.into(),
            tag: t.map(Into::into),
        }
    }

    #[test]
    fn layouts_with_and_without_tags() {
        assert_eq!(
            ImageReference::parse("oci:./bb:latest").unwrap(),
            oci("./bb", Some("latest"))
        );
        assert_eq!(
            ImageReference::parse("oci:/srv/bb").unwrap(),
            oci("/srv/bb", None)
        );
        assert_eq!(
            ImageReference::parse("oci:/a:b/c").unwrap(),
            oci("/a:b/c", None)
        );
        assert_eq!(
            ImageReference::parse("oci:/a:b/c:v1.2").unwrap(),
            oci("/a:b/c", Some("v1.2"))
        );
    }

    #[test]
    fn ids_and_bad_input() {
        assert_eq!(
            ImageReference::parse("sha256:abcd").unwrap(),
            ImageReference::Id("abcd".into())
        );
        for bad in [
            "",
            "oci:",
            "oci::latest",
            "sha256:ab",
            "sha256:XYZW",
            "docker.io/busybox",
            "sha256:../../x",
        ] {
            assert!(ImageReference::parse(bad).is_err(), "{bad}");
        }
    }
}
