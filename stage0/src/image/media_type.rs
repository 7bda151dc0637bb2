//! The layer media types skiff unpacks: exactly the OCI and Docker layer
//! types (tar, gzip, zstd, and their non-distributable variants). Anything
//! else is refused before anything is stored, rather than sniffed and
//! unpacked as if it were a tar: a type skiff does not know may mean
//! contents it would get wrong (an encrypted layer, an artifact).

use super::{ImageError, Result};

const LAYER_TYPES: [&str; 9] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// Refuses a layer whose media type is not one skiff unpacks, naming it.
pub fn check_layer(media_type: &str, digest: &str) -> Result<()> {
    if LAYER_TYPES.contains(&media_type) {
        return Ok(());
    }
    if media_type.ends_with("+encrypted") {
        return Err(ImageError::Invalid(format!(
            "layer {digest} is encrypted ({media_type}): skiff does not decrypt layers (decrypt the image first, e.g. with skopeo copy --decryption-key)"
        )));
    }
    Err(ImageError::Invalid(format!(
        "layer {digest} has media type {media_type:?}, which is not an OCI or Docker layer type (tar, tar+gzip, tar+zstd)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_layer_types_are_taken() {
        for t in LAYER_TYPES {
            assert!(check_layer(t, "sha256:x").is_ok(), "{t}");
        }
        let err = check_layer("application/vnd.acme.unknown.layer.v1+weird", "sha256:x").unwrap_err().to_string();
        assert!(err.contains("application/vnd.acme.unknown.layer.v1+weird") && err.contains("sha256:x"), "{err}");
        let err = check_layer("application/vnd.oci.image.layer.v1.tar+gzip+encrypted", "sha256:x").unwrap_err();
        assert!(err.to_string().contains("encrypted"), "{err}");
        for hostile in ["", "application/vnd.oci.image.layer.v1.tar ", "APPLICATION/VND.OCI.IMAGE.LAYER.V1.TAR", "tar"]
        {
            assert!(check_layer(hostile, "sha256:x").is_err(), "{hostile:?}");
        }
    }
}
