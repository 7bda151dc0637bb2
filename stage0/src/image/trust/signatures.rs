//! Checking a registry image against the signature requirements of its
//! scope, once its manifest digest is known and before anything of it is
//! stored. GPG simple signatures are read from the lookaside store that
//! `registries.d` names for the image (`file://` or `http(s)://`, laid out
//! as skopeo writes it: `REPOSITORY@sha256=HEX/signature-N`, N from 1);
//! cosign signatures from the registry's `sha256-HEX.sig` attachment, when
//! `registries.d` enables `use-sigstore-attachments` for the image.

use serde::{Deserialize, Serialize};

use super::policy::{Requirement, SignedBy, SigstoreSigned};
use super::{cosign, gpg, registries_d, scope, simple_signing, Trust, Verdict};
use crate::image::digest::Digest;
use crate::image::reference::DockerRef;
use crate::image::source::registry::Registry;
use crate::image::{ImageError, Result};

/// A signature that was verified, as `image inspect` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verified {
    /// The requirement it met: `signedBy` or `sigstoreSigned`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The key that made it: a GPG fingerprint, or the cosign public key's
    /// file (`keyData N` for keys given inline).
    pub key: String,
    /// The image the signer named.
    pub identity: String,
}

/// More signatures than this per image are not read.
const MAX_SIGNATURES: usize = 64;

/// Checks `image` (shown to the user as `shown`), whose manifest has
/// `digest`, against every signature requirement of `verdict`.
pub fn verify(
    trust: &Trust,
    verdict: &Verdict,
    (registry, image): (&Registry, &DockerRef),
    shown: &str,
    digest: &Digest,
) -> Result<Vec<Verified>> {
    let fail = |kind: &str, why: String| {
        ImageError::Invalid(format!(
            "image {shown}: the signature policy ({}) requires {kind}: {why}; nothing stored",
            verdict.place
        ))
    };
    let mut out = Vec::new();
    let mut fetched: Option<Vec<Vec<u8>>> = None;
    let mut attached: Option<Vec<(Vec<u8>, String)>> = None;
    for req in &verdict.signatures {
        match req {
            Requirement::SignedBy(s) => {
                let ring = gpg::Keyring::of(s).map_err(|e| fail("signedBy", e))?;
                if fetched.is_none() {
                    fetched = Some(lookaside(trust, image, digest).map_err(|e| fail("signedBy", e))?);
                }
                let sigs = fetched.as_deref().unwrap_or_default();
                let mut why = Vec::new();
                let found = sigs.iter().enumerate().find_map(|(i, sig)| match check(s, &ring, image, digest, sig) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        why.push(format!("signature {}: {e}", i + 1));
                        None
                    }
                });
                out.push(found.ok_or_else(|| fail("signedBy", why.join("; ")))?);
            }
            Requirement::SigstoreSigned(s) => {
                let keys = cosign::Keys::of(s).map_err(|e| fail("sigstoreSigned", e))?;
                if attached.is_none() {
                    attached = Some(attachments(trust, registry, image, digest).map_err(|e| match e {
                        Attachments::Missing(why) => fail("sigstoreSigned", why),
                        Attachments::Registry(e) => e,
                    })?);
                }
                let sigs = attached.as_deref().unwrap_or_default();
                let mut why = Vec::new();
                let found = sigs.iter().enumerate().find_map(|(i, (payload, sig))| {
                    match check_cosign(s, &keys, image, digest, payload, sig) {
                        Ok(v) => Some(v),
                        Err(e) => {
                            why.push(format!("signature {}: {e}", i + 1));
                            None
                        }
                    }
                });
                out.push(found.ok_or_else(|| fail("sigstoreSigned", why.join("; ")))?);
            }
            Requirement::InsecureAcceptAnything | Requirement::Reject => {}
        }
    }
    Ok(out)
}

fn check(
    req: &SignedBy,
    ring: &gpg::Keyring,
    image: &DockerRef,
    digest: &Digest,
    sig: &[u8],
) -> std::result::Result<Verified, String> {
    let (payload, key) = gpg::verify(ring, sig)?;
    let claim = simple_signing::parse(&payload, "atomic container signature")?;
    if claim.manifest_digest != digest.to_string() {
        return Err(format!("it signs manifest {}, not {digest}", claim.manifest_digest));
    }
    if !simple_signing::identity_fits(req.signed_identity.as_ref(), image, &claim.docker_reference)? {
        return Err(format!("it signs image {}, which does not match", claim.docker_reference));
    }
    Ok(Verified { kind: "signedBy".into(), key, identity: claim.docker_reference })
}

fn check_cosign(
    req: &SigstoreSigned,
    keys: &cosign::Keys,
    image: &DockerRef,
    digest: &Digest,
    payload: &[u8],
    sig: &str,
) -> std::result::Result<Verified, String> {
    let key = cosign::verify(keys, payload, sig)?;
    let claim = simple_signing::parse(payload, "cosign container image signature")?;
    if claim.manifest_digest != digest.to_string() {
        return Err(format!("it signs manifest {}, not {digest}", claim.manifest_digest));
    }
    if !simple_signing::identity_fits(req.signed_identity.as_ref(), image, &claim.docker_reference)? {
        return Err(format!("it signs image {}, which does not match", claim.docker_reference));
    }
    Ok(Verified { kind: "sigstoreSigned".into(), key: key.to_string(), identity: claim.docker_reference })
}

enum Attachments {
    /// Why there is none to check.
    Missing(String),
    /// The registry failed.
    Registry(ImageError),
}

/// The image's cosign attachments (payload, base64 signature).
fn attachments(
    trust: &Trust,
    registry: &Registry,
    image: &DockerRef,
    digest: &Digest,
) -> std::result::Result<Vec<(Vec<u8>, String)>, Attachments> {
    let config = registries_d::load(&trust.registries_d).map_err(Attachments::Missing)?;
    if !config.use_sigstore_attachments(&scope::docker_candidates(image)) {
        return Err(Attachments::Missing(format!(
            "no signature: use-sigstore-attachments is not enabled for {}/{} in {}",
            image.registry,
            image.repository,
            trust.registries_d.display()
        )));
    }
    let found = registry.sigstore_attachments(digest).map_err(Attachments::Registry)?;
    if found.is_empty() {
        return Err(Attachments::Missing(format!(
            "no signature attached to {}/{}@{digest}",
            image.registry, image.repository
        )));
    }
    Ok(found)
}

/// The image's signatures in its lookaside store; an error when none is
/// configured or none is there.
fn lookaside(trust: &Trust, image: &DockerRef, digest: &Digest) -> std::result::Result<Vec<Vec<u8>>, String> {
    let config = registries_d::load(&trust.registries_d)?;
    let base = config.lookaside(&scope::docker_candidates(image)).ok_or_else(|| {
        format!(
            "no signature: no lookaside store is configured for {}/{} in {}",
            image.registry,
            image.repository,
            trust.registries_d.display()
        )
    })?;
    let dir = format!("{}/{}@sha256={}", base.trim_end_matches('/'), image.repository, digest.hex());
    let mut out = Vec::new();
    for n in 1..=MAX_SIGNATURES {
        let url = format!("{dir}/signature-{n}");
        match read(&url)? {
            Some(s) => out.push(s),
            None => break,
        }
    }
    if out.is_empty() {
        return Err(format!("no signature in {dir}"));
    }
    Ok(out)
}

/// A lookaside file; `None` when it does not exist.
fn read(url: &str) -> std::result::Result<Option<Vec<u8>>, String> {
    if let Some(path) = url.strip_prefix("file://") {
        return match std::fs::read(path) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {path}: {e}")),
        };
    }
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(format!("lookaside {url}: skiff reads file://, http:// and https:// stores"));
    }
    let resp = crate::image::source::registry::client::agent().get(url).call().map_err(|e| format!("{url}: {e}"))?;
    match resp.status().as_u16() {
        200 => {
            let mut body = resp.into_body();
            body.with_config().limit(4 << 20).read_to_vec().map(Some).map_err(|e| format!("{url}: {e}"))
        }
        404 => Ok(None),
        s => Err(format!("{url}: HTTP status {s}")),
    }
}
