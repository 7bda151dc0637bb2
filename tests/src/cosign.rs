//! cosign signatures for tests, made as `cosign sign --key` makes them:
//! Debian packages no cosign and builds skopeo with sigstore signing
//! disabled ("Debian-local change: sigstore disabled"). A P-256 key signs
//! the simple-signing payload (ECDSA, SHA-256, DER, base64), and the
//! signature goes to the registry as cosign lays it out: an OCI manifest
//! tagged `sha256-HEX.sig` in the image's repository, one layer per
//! signature (the payload, media type
//! `application/vnd.dev.cosign.simplesigning.v1+json`) carrying the
//! signature in the annotation `dev.cosignproject.cosign/signature`,
//! pushed with skopeo from an OCI layout written here.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};

/// A key made from `seed` (tests need no randomness) and its public key
/// written as PEM to `DIR/NAME.pub`.
pub fn key_pair(dir: &Path, name: &str, seed: u8) -> (SigningKey, PathBuf) {
    let sk = SigningKey::from_slice(&[seed; 32]).expect("a valid P-256 scalar");
    let public = dir.join(format!("{name}.pub"));
    std::fs::write(&public, sk.verifying_key().to_public_key_pem(LineEnding::LF).unwrap()).unwrap();
    (sk, public)
}

fn blob(layout: &Path, data: &[u8]) -> (String, usize) {
    let digest = crate::oci::sha256(data);
    std::fs::write(layout.join("blobs/sha256").join(&digest[7..]), data).unwrap();
    (digest, data.len())
}

/// Signs `reference` (the image as the signer names it) with manifest
/// `digest` and attaches the signature in `registry` (`HOST:PORT`) to
/// `REPOSITORY@digest`; `scratch` holds the layout skopeo pushes.
pub fn attach(key: &SigningKey, reference: &str, digest: &str, registry: &str, repository: &str, scratch: &Path) {
    let payload = serde_json::json!({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature"
        },
        "optional": null
    })
    .to_string();
    let sig: Signature = key.sign(payload.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes());
    let layout = scratch.join(format!("sig-{}", &digest[7..19]));
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    std::fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let (payload_digest, payload_size) = blob(&layout, payload.as_bytes());
    let config = serde_json::json!({
        "architecture": "", "os": "", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [payload_digest]}
    })
    .to_string();
    let (config_digest, config_size) = blob(&layout, config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "digest": payload_digest, "size": payload_size,
            "annotations": {"dev.cosignproject.cosign/signature": sig}
        }]
    })
    .to_string();
    let (manifest_digest, manifest_size) = blob(&layout, manifest.as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": "sig"}
        }]
    });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    let tag = format!("{}.sig", digest.replace(':', "-"));
    let o = Command::new("skopeo")
        .args(["copy", "-q", "--preserve-digests", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:sig", layout.display()))
        .arg(format!("docker://{registry}/{repository}:{tag}"))
        .output()
        .expect("skopeo is installed");
    assert!(o.status.success(), "skopeo push of the signature: {}", String::from_utf8_lossy(&o.stderr));
}
