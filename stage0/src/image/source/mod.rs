//! Where images come from. Every source hands out raw blob streams; the
//! resolution of tags, indexes and platforms and every digest check happen
//! here and in `import`, the same for all sources.

pub mod docker_archive;
pub mod layout;
pub mod registry;
pub mod tarfile;

use std::io::Read;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use super::digest::Digest;
use super::platform::Platform;
use super::{io_err, ImageError, Result};

/// Manifests, indexes and configs are small; anything bigger is refused.
pub const SMALL_BLOB_MAX: u64 = 4 << 20;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

pub type BlobReader<'a> = Box<dyn Read + Send + 'a>;

/// A place blobs can be read from. Implementations must be usable from
/// several threads at once (layers are read in parallel).
pub trait Source: Sync {
    /// Names the source in messages, e.g. `OCI layout /srv/bb`.
    fn describe(&self) -> String;

    /// Streams blob `d`, announced as `size` bytes. The caller verifies the
    /// digest and stops reading after `size + 1` bytes.
    fn open_blob(&self, d: &Digest, size: u64) -> Result<BlobReader<'_>>;

    /// Reads the manifest or index `desc` names, verified.
    fn read_manifest(&self, desc: &Descriptor) -> Result<Vec<u8>> {
        read_verified(self, desc, "manifest").map(|(_, b)| b)
    }
}

pub fn descriptor_digest(d: &Descriptor) -> Result<Digest> {
    Digest::parse(d.digest().as_ref()).map_err(ImageError::Invalid)
}

/// Reads a small blob whole and checks its size and digest.
pub fn read_verified<S: Source + ?Sized>(src: &S, desc: &Descriptor, what: &str) -> Result<(Digest, Vec<u8>)> {
    let d = descriptor_digest(desc)?;
    if desc.size() > SMALL_BLOB_MAX {
        return Err(ImageError::Invalid(format!(
            "{what} {d} is {} bytes, more than the {SMALL_BLOB_MAX} a {what} may have",
            desc.size()
        )));
    }
    let mut data = Vec::new();
    src.open_blob(&d, desc.size())?
        .take(desc.size() + 1)
        .read_to_end(&mut data)
        .map_err(io_err(format!("cannot read {what} {d} from {}", src.describe())))?;
    check(&d, desc.size(), &data, what)?;
    Ok((d, data))
}

/// Checks bytes against a digest and an announced size.
pub fn check(d: &Digest, size: u64, data: &[u8], what: &str) -> Result<()> {
    if data.len() as u64 != size {
        return Err(ImageError::SizeMismatch {
            what: format!("{what} {d}"),
            expected: size,
            actual: data.len() as u64,
        });
    }
    let actual = Digest::of(data);
    if &actual != d {
        return Err(ImageError::DigestMismatch { what: format!("{what} blob"), expected: d.clone(), actual });
    }
    Ok(())
}

/// The image manifest chosen for a reference and platform.
pub struct Resolved {
    pub manifest_digest: Digest,
    pub manifest_bytes: Vec<u8>,
    pub manifest: ImageManifest,
}

enum Node {
    Index(Box<ImageIndex>),
    Manifest(Box<ImageManifest>),
}

/// Classifies a manifest-ish document by its media type (from the
/// descriptor or the registry's Content-Type) and its body.
fn parse_node(media_type: Option<&str>, bytes: &[u8], d: &Digest) -> Result<Node> {
    match media_type {
        Some(OCI_INDEX | OCI_MANIFEST | DOCKER_LIST | DOCKER_MANIFEST) | None => {}
        Some(mt) if mt.contains("distribution.manifest.v1") => {
            return Err(ImageError::Invalid(format!(
                "{d} is a Docker schema 1 manifest ({mt}), which skiff does not support; re-push the image with a current tool"
            )))
        }
        // Registries may answer application/json for OCI documents.
        Some("application/json") => {}
        Some(mt) => return Err(ImageError::Invalid(format!("{d} has unsupported media type {mt:?}"))),
    }
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ImageError::Invalid(format!("manifest {d} is not JSON: {e}")))?;
    if v.get("schemaVersion").and_then(|s| s.as_u64()) == Some(1) {
        return Err(ImageError::Invalid(format!("{d} is a Docker schema 1 manifest, which skiff does not support")));
    }
    if v.get("manifests").is_some() {
        serde_json::from_value(v)
            .map(Node::Index)
            .map_err(|e| ImageError::Invalid(format!("image index {d} is invalid: {e}")))
    } else if v.get("config").is_some() {
        serde_json::from_value(v)
            .map(Node::Manifest)
            .map_err(|e| ImageError::Invalid(format!("manifest {d} is invalid: {e}")))
    } else {
        Err(ImageError::Invalid(format!("{d} is neither an image manifest nor an index")))
    }
}

/// Follows a manifest-ish document down through indexes to the manifest
/// for `platform`.
pub fn resolve<S: Source + ?Sized>(
    src: &S,
    media_type: Option<&str>,
    digest: Digest,
    bytes: Vec<u8>,
    platform: &Platform,
) -> Result<Resolved> {
    let (mut media_type, mut digest, mut bytes) = (media_type.map(str::to_string), digest, bytes);
    for _ in 0..4 {
        match parse_node(media_type.as_deref(), &bytes, &digest)? {
            Node::Manifest(manifest) => {
                return Ok(Resolved { manifest_digest: digest, manifest_bytes: bytes, manifest: *manifest })
            }
            Node::Index(index) => {
                let desc = platform.pick(&index)?;
                digest = descriptor_digest(&desc)?;
                bytes = src.read_manifest(&desc)?;
                media_type = Some(desc.media_type().to_string());
            }
        }
    }
    Err(ImageError::Invalid("image indexes nest too deeply".into()))
}

/// `resolve` starting from a descriptor.
pub fn resolve_descriptor<S: Source + ?Sized>(src: &S, desc: &Descriptor, platform: &Platform) -> Result<Resolved> {
    let bytes = src.read_manifest(desc)?;
    resolve(src, Some(desc.media_type().as_ref()), descriptor_digest(desc)?, bytes, platform)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source with no blobs: resolution must decide from the document.
    struct Empty;

    impl Source for Empty {
        fn describe(&self) -> String {
            "nothing".into()
        }

        fn open_blob(&self, d: &Digest, _: u64) -> Result<BlobReader<'_>> {
            Err(ImageError::Invalid(format!("no blob {d}")))
        }
    }

    fn res(media_type: Option<&str>, body: &str) -> Result<Resolved> {
        resolve(&Empty, media_type, Digest::of(body.as_bytes()), body.as_bytes().to_vec(), &Platform::default())
    }

    fn err(r: Result<Resolved>) -> String {
        match r {
            Ok(_) => panic!("resolved"),
            Err(e) => e.to_string(),
        }
    }

    const MANIFEST: &str = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#;

    #[test]
    fn manifests_are_recognised_by_type_and_body() {
        assert!(res(Some(OCI_MANIFEST), MANIFEST).is_ok());
        assert!(res(Some(DOCKER_MANIFEST), MANIFEST).is_ok());
        assert!(res(None, MANIFEST).is_ok(), "no media type: decided by the body");
        assert!(res(Some("application/json"), MANIFEST).is_ok());
    }

    #[test]
    fn schema1_unknown_types_and_junk_are_refused() {
        let s1 = r#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        assert!(err(res(Some("application/vnd.docker.distribution.manifest.v1+prettyjws"), s1)).contains("schema 1"));
        assert!(err(res(None, s1)).contains("schema 1"));
        assert!(err(res(Some("application/vnd.example.thing"), MANIFEST)).contains("unsupported media type"));
        assert!(err(res(None, "not json")).contains("not JSON"));
        assert!(err(res(None, r#"{"schemaVersion":2}"#)).contains("neither"));
    }

    #[test]
    fn an_index_without_the_platform_lists_what_it_has() {
        let index = r#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]}"#;
        assert!(err(res(Some(OCI_INDEX), index)).contains("linux/arm64/v8"));
    }

    #[test]
    fn oversized_small_blobs_are_refused_before_reading() {
        let desc: Descriptor = serde_json::from_str(&format!(
            r#"{{"mediaType":"{OCI_MANIFEST}","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":{}}}"#,
            SMALL_BLOB_MAX + 1
        ))
        .unwrap();
        let e = read_verified(&Empty, &desc, "manifest").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("more than"), "{e}");
    }
}
