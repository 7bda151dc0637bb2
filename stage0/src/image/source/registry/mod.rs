//! OCI distribution API v2, pull side: manifests and blobs of one
//! repository, synchronously (no async runtime in a daemonless CLI).

pub mod auth;
pub mod client;

use std::io::{self, Read};
use std::net::IpAddr;
use std::path::PathBuf;

use ureq::BodyReader;

use self::client::{Client, ATTEMPTS};
use super::{
    resolve, BlobReader, Resolved, Source, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, SMALL_BLOB_MAX,
};
use crate::image::digest::Digest;
use crate::image::platform::Platform;
use crate::image::reference::DockerRef;
use crate::image::{ImageError, Result};
use oci_spec::image::ImageManifest;

/// The layer annotation holding a cosign signature (base64).
const COSIGN_SIGNATURE: &str = "dev.cosignproject.cosign/signature";

/// Every manifest kind skiff reads, for the `Accept` header.
fn accept() -> String {
    [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST].join(", ")
}

#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Registries (`HOST[:PORT]`) that may be reached over plain HTTP.
    pub insecure: Vec<String>,
    pub authfile: Option<PathBuf>,
}

/// Loopback registries may use plain HTTP without being named insecure
/// (as Docker does): their traffic never leaves the machine.
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

pub struct Registry {
    client: Client,
    reference: DockerRef,
}

impl Registry {
    pub fn new(r: &DockerRef, opts: &RegistryOptions) -> Result<Registry> {
        let allow_http = opts.insecure.iter().any(|i| i == &r.registry) || is_loopback(&r.registry);
        let creds = auth::lookup(&r.registry, opts.authfile.as_deref())?;
        Ok(Registry {
            client: Client::new(r.api_host(), &r.registry, &r.repository, allow_http, creds),
            reference: r.clone(),
        })
    }

    fn read_manifest_body(&self, reference: &str) -> Result<(Option<String>, Option<String>, Vec<u8>)> {
        let what = format!("manifest {}", self.name_with(reference));
        let resp = self.client.get(&format!("manifests/{reference}"), Some(&accept()), None, &what)?;
        let header = |h: &str| {
            resp.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.split(';').next().unwrap_or(s).trim().to_string())
        };
        let content_type = header("content-type");
        let digest_header = header("docker-content-digest");
        let mut body = Vec::new();
        resp.into_body()
            .into_reader()
            .take(SMALL_BLOB_MAX + 1)
            .read_to_end(&mut body)
            .map_err(|e| ImageError::Invalid(format!("cannot read {what}: {e}")))?;
        if body.len() as u64 > SMALL_BLOB_MAX {
            return Err(ImageError::Invalid(format!("{what} is bigger than {SMALL_BLOB_MAX} bytes; refusing it")));
        }
        Ok((content_type, digest_header, body))
    }

    /// The cosign signatures attached to the manifest `d` (the tag
    /// `sha256-HEX.sig` of the same repository, whose layers are signed
    /// payloads): each payload (its digest checked) and its base64
    /// signature. None attached: empty.
    pub fn sigstore_attachments(&self, d: &Digest) -> Result<Vec<(Vec<u8>, String)>> {
        let tag = format!("sha256-{}.sig", d.hex());
        let body = match self.read_manifest_body(&tag) {
            Ok((_, _, body)) => body,
            Err(ImageError::NotInRegistry { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let what = format!("signature manifest {}", self.name_with(&tag));
        let manifest: ImageManifest = serde_json::from_slice(&body)
            .map_err(|e| ImageError::Invalid(format!("{what} is not an image manifest: {e}")))?;
        let mut out = Vec::new();
        for layer in manifest.layers() {
            let Some(sig) = layer.annotations().as_ref().and_then(|a| a.get(COSIGN_SIGNATURE)) else { continue };
            let ld = super::descriptor_digest(layer)?;
            if layer.size() > SMALL_BLOB_MAX {
                return Err(ImageError::Invalid(format!("{what}: a payload of {} bytes; refusing it", layer.size())));
            }
            let mut payload = Vec::new();
            self.open_blob(&ld, layer.size())?
                .take(SMALL_BLOB_MAX + 1)
                .read_to_end(&mut payload)
                .map_err(|e| ImageError::Invalid(format!("cannot read {what}'s payload {ld}: {e}")))?;
            super::check(&ld, layer.size(), &payload, "signature payload")?;
            out.push((payload, sig.clone()));
        }
        Ok(out)
    }

    fn name_with(&self, reference: &str) -> String {
        let sep = if reference.starts_with("sha256:") { '@' } else { ':' };
        format!("{}/{}{sep}{reference}", self.reference.registry, self.reference.repository)
    }

    /// Fetches the manifest the reference names and follows indexes to the
    /// one for `platform`. Also returns the digest of the manifest the
    /// reference names (an index, or the manifest itself): what signatures
    /// sign.
    pub fn resolve(&self, platform: &Platform) -> Result<(Digest, Resolved)> {
        let reference = self.reference.manifest_ref();
        let (content_type, digest_header, body) = self.read_manifest_body(&reference)?;
        let digest = Digest::of(&body);
        let expected = match &self.reference.digest {
            Some(d) => Some(d.clone()),
            None => digest_header.as_deref().and_then(|h| Digest::parse(h).ok()),
        };
        if let Some(e) = expected {
            if e != digest {
                return Err(ImageError::DigestMismatch {
                    what: format!("manifest {}", self.reference),
                    expected: e,
                    actual: digest,
                });
            }
        }
        Ok((digest.clone(), resolve(self, content_type.as_deref(), digest, body, platform)?))
    }
}

impl Source for Registry {
    fn describe(&self) -> String {
        format!("registry {}", self.client.registry())
    }

    fn open_blob(&self, d: &Digest, size: u64) -> Result<BlobReader<'_>> {
        let what = format!("blob {d} of {}/{}", self.reference.registry, self.reference.repository);
        let body = self.client.get(&format!("blobs/{d}"), None, None, &what)?.into_body().into_reader();
        Ok(Box::new(BlobStream { client: &self.client, digest: d.clone(), pos: 0, size, body: Some(body), resumed: 0 }))
    }

    fn read_manifest(&self, desc: &oci_spec::image::Descriptor) -> Result<Vec<u8>> {
        let d = super::descriptor_digest(desc)?;
        let (_, _, body) = self.read_manifest_body(&d.to_string())?;
        super::check(&d, desc.size(), &body, "manifest")?;
        Ok(body)
    }
}

/// A blob download that resumes where it broke off (`Range`) when the
/// connection fails mid-way, a bounded number of times.
struct BlobStream<'a> {
    client: &'a Client,
    digest: Digest,
    pos: u64,
    size: u64,
    body: Option<BodyReader<'static>>,
    resumed: u32,
}

impl BlobStream<'_> {
    fn reopen(&mut self) -> io::Result<()> {
        let what = format!("blob {}", self.digest);
        let resp = self
            .client
            .get(&format!("blobs/{}", self.digest), None, Some(self.pos), &what)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let partial = resp.status().as_u16() == 206;
        let mut body = resp.into_body().into_reader();
        if !partial {
            // The server ignored the range: skip what we already have.
            io::copy(&mut (&mut body).take(self.pos), &mut io::sink())?;
        }
        self.body = Some(body);
        Ok(())
    }
}

impl Read for BlobStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.body.is_none() {
                self.reopen()?;
            }
            let Some(body) = self.body.as_mut() else { continue };
            match body.read(buf) {
                Ok(n) => {
                    self.pos += n as u64;
                    return Ok(n);
                }
                Err(e) if self.resumed + 1 < ATTEMPTS && self.pos < self.size => {
                    crate::debug!("blob {}: {e}; resuming at byte {}", self.digest, self.pos);
                    self.resumed += 1;
                    self.body = None;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries() {
        for r in ["localhost", "localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000"] {
            assert!(is_loopback(r), "{r}");
        }
        for r in ["registry.example:5000", "10.0.0.1:5000", "localhost.example.com", "docker.io"] {
            assert!(!is_loopback(r), "{r}");
        }
    }
}
