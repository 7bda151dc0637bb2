//! The "simple signing" payload that GPG and cosign signatures sign (the
//! containers/image signature format): which manifest digest and which
//! image identity the signer vouched for, and whether that identity fits
//! the image being fetched under the policy's `signedIdentity`.

use serde::Deserialize;

use super::policy::SignedIdentity;
use crate::image::reference::DockerRef;

/// What a signature claims.
#[derive(Debug, PartialEq, Eq)]
pub struct Claim {
    pub docker_reference: String,
    pub manifest_digest: String,
}

#[derive(Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    #[serde(rename = "type")]
    kind: String,
    image: Image,
    identity: Identity,
}

#[derive(Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

#[derive(Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

/// `kind`: `atomic container signature` (GPG) or `cosign container image
/// signature` (cosign).
pub fn parse(payload: &[u8], kind: &str) -> Result<Claim, String> {
    let p: Payload = serde_json::from_slice(payload).map_err(|e| format!("its payload is not a signature: {e}"))?;
    if p.critical.kind != kind {
        return Err(format!("its payload is a {:?}, not a {kind:?}", p.critical.kind));
    }
    Ok(Claim {
        docker_reference: p.critical.identity.docker_reference,
        manifest_digest: p.critical.image.docker_manifest_digest,
    })
}

fn same_repository(a: &DockerRef, b: &DockerRef) -> bool {
    a.registry == b.registry && a.repository == b.repository
}

fn exact(a: &DockerRef, b: &DockerRef) -> bool {
    same_repository(a, b) && a.tag == b.tag && a.digest == b.digest
}

/// Whether a signature claiming `signed` fits `image` under `rule`
/// (default: `matchRepoDigestOrExact`, as containers/image).
pub fn identity_fits(rule: Option<&SignedIdentity>, image: &DockerRef, signed: &str) -> Result<bool, String> {
    let signed = DockerRef::parse(signed).map_err(|e| format!("it names an invalid image {signed:?}: {e}"))?;
    let repo_digest_or_exact = |image: &DockerRef| {
        if image.digest.is_some() && image.tag.is_none() {
            same_repository(image, &signed)
        } else {
            exact(image, &signed)
        }
    };
    Ok(match rule {
        None | Some(SignedIdentity::MatchRepoDigestOrExact) => repo_digest_or_exact(image),
        Some(SignedIdentity::MatchExact) => exact(image, &signed),
        Some(SignedIdentity::MatchRepository) => same_repository(image, &signed),
        Some(SignedIdentity::ExactReference { docker_reference }) => {
            let want = DockerRef::parse(docker_reference).map_err(|e| format!("dockerReference: {e}"))?;
            exact(&want, &signed)
        }
        Some(SignedIdentity::ExactRepository { docker_repository }) => {
            let want = DockerRef::parse(docker_repository).map_err(|e| format!("dockerRepository: {e}"))?;
            same_repository(&want, &signed)
        }
        Some(SignedIdentity::RemapIdentity { prefix, signed_prefix }) => {
            let name = image.to_string();
            // The prefix matches whole components (or the whole name).
            let remapped = name
                .strip_prefix(prefix.as_str())
                .filter(|rest| rest.is_empty() || rest.starts_with(['/', ':', '@']))
                .map(|rest| format!("{signed_prefix}{rest}"));
            match remapped {
                Some(r) => repo_digest_or_exact(&DockerRef::parse(&r).map_err(|e| format!("remapIdentity: {e}"))?),
                None => repo_digest_or_exact(image),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_and_identities() {
        let p = br#"{"critical":{"identity":{"docker-reference":"r.example/a:1"},"image":{"docker-manifest-digest":"sha256:aa"},"type":"atomic container signature"},"optional":{"creator":"x"}}"#;
        let c = parse(p, "atomic container signature").unwrap();
        assert_eq!(c, Claim { docker_reference: "r.example/a:1".into(), manifest_digest: "sha256:aa".into() });
        assert!(parse(p, "cosign container image signature").unwrap_err().contains("not a"));
        assert!(parse(b"{}", "x").is_err() && parse(b"\xff", "x").is_err());
        let img = |s: &str| DockerRef::parse(s).unwrap();
        let digest = format!("sha256:{}", "a".repeat(64));
        // Default: a tag must match exactly; a digest only the repository.
        assert!(identity_fits(None, &img("r.example/a:1"), "r.example/a:1").unwrap());
        assert!(!identity_fits(None, &img("r.example/a:1"), "r.example/a:2").unwrap());
        assert!(!identity_fits(None, &img("r.example/a:1"), "r.example/b:1").unwrap());
        assert!(identity_fits(None, &img(&format!("r.example/a@{digest}")), "r.example/a:9").unwrap());
        assert!(identity_fits(Some(&SignedIdentity::MatchRepository), &img("r.example/a:1"), "r.example/a:2").unwrap());
        assert!(!identity_fits(
            Some(&SignedIdentity::MatchExact),
            &img(&format!("r.example/a@{digest}")),
            "r.example/a:9"
        )
        .unwrap());
        let exact_repo = SignedIdentity::ExactRepository { docker_repository: "upstream.example/a".into() };
        assert!(identity_fits(Some(&exact_repo), &img("mirror.example/a:1"), "upstream.example/a:7").unwrap());
        let remap = SignedIdentity::RemapIdentity {
            prefix: "mirror.example/team".into(),
            signed_prefix: "upstream.example/team".into(),
        };
        assert!(identity_fits(Some(&remap), &img("mirror.example/team/a:1"), "upstream.example/team/a:1").unwrap());
        assert!(!identity_fits(Some(&remap), &img("mirror.example/teams/a:1"), "upstream.example/team/a:1").unwrap());
        assert!(identity_fits(None, &img("r.example/a:1"), "Not A Ref").is_err());
    }
}
