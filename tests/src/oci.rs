//! Writes OCI image layouts (image-spec image-layout.md) from layer tars.

use std::io::Write;
use std::path::Path;

use serde_json::json;
use sha2::{Digest, Sha256};

pub fn sha256(data: &[u8]) -> String {
    let d = Sha256::digest(data);
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).expect("in-memory gzip");
    gz.finish().expect("in-memory gzip")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

pub struct Layer {
    /// Uncompressed tar.
    pub tar: Vec<u8>,
    pub compression: Compression,
}

impl Layer {
    pub fn gz(tar: Vec<u8>) -> Layer {
        Layer { tar, compression: Compression::Gzip }
    }
}

/// The image config's `config` object (Entrypoint, Cmd, Env, ...).
pub struct ImageSpec {
    pub layers: Vec<Layer>,
    pub config: serde_json::Value,
    pub tag: String,
}

fn put_blob(dir: &Path, data: &[u8]) -> String {
    let d = sha256(data);
    let p = dir.join("blobs/sha256").join(&d[7..]);
    std::fs::write(p, data).expect("write blob");
    d
}

/// Writes the layout into `dir`; returns the image ID (config digest).
pub fn write_layout(dir: &Path, spec: &ImageSpec) -> String {
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("create layout");
    let mut layer_descs = Vec::new();
    let mut diff_ids = Vec::new();
    for l in &spec.layers {
        diff_ids.push(sha256(&l.tar));
        let (blob, mt) = match l.compression {
            Compression::Gzip => (gzip(&l.tar), "application/vnd.oci.image.layer.v1.tar+gzip"),
            Compression::Zstd => (
                zstd::encode_all(&l.tar[..], 3).expect("in-memory zstd"),
                "application/vnd.oci.image.layer.v1.tar+zstd",
            ),
            Compression::None => (l.tar.clone(), "application/vnd.oci.image.layer.v1.tar"),
        };
        let d = put_blob(dir, &blob);
        layer_descs.push(json!({"mediaType": mt, "digest": d, "size": blob.len()}));
    }
    let config = json!({
        "created": "2023-11-14T22:13:20Z",
        "architecture": "amd64",
        "os": "linux",
        "config": spec.config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config_bytes = serde_json::to_vec(&config).expect("json");
    let config_digest = put_blob(dir, &config_bytes);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_bytes.len()},
        "layers": layer_descs,
    });
    let manifest_bytes = serde_json::to_vec(&manifest).expect("json");
    let manifest_digest = put_blob(dir, &manifest_bytes);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": spec.tag},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).expect("json")).expect("write index");
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("write oci-layout");
    config_digest
}
