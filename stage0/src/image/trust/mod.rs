//! Whether an image may enter the store: the signature policy
//! (containers-policy.json(5), the file podman and skopeo read), looked up
//! per transport and scope before anything of the image is stored.
//! Requirements skiff cannot verify yet (signatures) refuse the image:
//! a policy is never weakened by skiff's gaps.

pub mod cosign;
pub mod gpg;
pub mod policy;
pub mod registries_d;
pub mod scope;
pub mod signatures;
pub mod simple_signing;

use std::path::{Path, PathBuf};

use policy::{Policy, Requirement};

use super::{ImageError, Result};

/// skiff's own policy file, read first.
pub const SKIFF_POLICY: &str = "/etc/skiff/policy.json";
/// The one podman, skopeo and CRI-O read, read when skiff has none.
pub const CONTAINERS_POLICY: &str = "/etc/containers/policy.json";

/// How to find the policy (`--signature-policy`, `--insecure-policy`); it
/// is read only when an image is about to enter the store.
#[derive(Clone, Debug, Default)]
pub struct TrustOptions {
    pub policy_file: Option<PathBuf>,
    pub insecure: bool,
    /// `--registries.d`: where lookaside stores are configured.
    pub registries_d: Option<PathBuf>,
}

impl TrustOptions {
    pub fn load(&self) -> Result<Trust> {
        let mut t = Trust::load(self.policy_file.as_deref(), self.insecure)?;
        t.registries_d = self.registries_d.clone().unwrap_or_else(|| PathBuf::from(registries_d::DEFAULT_DIR));
        Ok(t)
    }
}

/// The policy in force for one invocation.
#[derive(Clone, Debug)]
pub struct Trust {
    /// The file it was read from; `None`: no file, every image accepted.
    pub file: Option<PathBuf>,
    pub policy: Policy,
    /// `--insecure-policy`: every image accepted, whatever the file says.
    pub insecure: bool,
    /// Where lookaside stores are configured.
    pub registries_d: PathBuf,
}

/// The policy when no file exists: every image, as before policies.
pub fn accept_anything() -> Policy {
    Policy { default: vec![Requirement::InsecureAcceptAnything], transports: Default::default() }
}

impl Trust {
    /// `explicit` (`--signature-policy`), else [`SKIFF_POLICY`], else
    /// [`CONTAINERS_POLICY`], else [`accept_anything`]. A file that exists
    /// and cannot be read or is invalid is an error naming it.
    pub fn load(explicit: Option<&Path>, insecure: bool) -> Result<Trust> {
        let file = match explicit {
            Some(p) => Some(p.to_path_buf()),
            None => [SKIFF_POLICY, CONTAINERS_POLICY].iter().map(PathBuf::from).find(|p| p.exists()),
        };
        let policy = match &file {
            Some(p) => {
                let data = std::fs::read(p).map_err(|e| {
                    ImageError::Invalid(format!("cannot read the signature policy {}: {e}", p.display()))
                })?;
                policy::parse(&data, &format!("signature policy {}", p.display())).map_err(ImageError::Invalid)?
            }
            None => accept_anything(),
        };
        Ok(Trust { file, policy, insecure, registries_d: PathBuf::from(registries_d::DEFAULT_DIR) })
    }

    /// What the policy asks of an image about to enter the store: `image`
    /// as the user named it, its `transport` and its scopes, most specific
    /// first. Refuses it at once (`reject`), or returns the signature
    /// requirements it must still meet once its manifest is known (none:
    /// accepted).
    pub fn verdict(&self, image: &str, transport: &str, candidates: &[String]) -> Result<Verdict> {
        if self.insecure {
            eprintln!("skiff: --insecure-policy: image {image} enters the store unchecked by any signature policy");
            return Ok(Verdict::default());
        }
        let (reqs, scope) = policy::requirements_for(&self.policy, transport, candidates);
        let scope = match scope {
            Some(s) if s.is_empty() => format!("the default of transport {transport}"),
            Some(s) => format!("scope {transport}:{s}"),
            None => "the default".to_string(),
        };
        let place =
            format!("{}, {scope}", self.file.as_ref().map_or("no file".to_string(), |f| f.display().to_string()));
        let mut out = Verdict { place: place.clone(), signatures: Vec::new() };
        for r in reqs {
            match r {
                Requirement::InsecureAcceptAnything => {}
                Requirement::Reject => {
                    return Err(ImageError::Invalid(format!(
                        "image {image} is rejected by the signature policy ({place}: reject); nothing stored"
                    )))
                }
                Requirement::SignedBy(_) | Requirement::SigstoreSigned(_) => out.signatures.push(r.clone()),
            }
        }
        Ok(out)
    }
}

/// The signature requirements an image must still meet, and where in the
/// policy they come from (for messages).
#[derive(Debug, Default)]
pub struct Verdict {
    pub place: String,
    pub signatures: Vec<Requirement>,
}

impl Verdict {
    /// For an image read from a file or directory: local transports carry
    /// no signatures skiff can check, so any requirement refuses it.
    pub fn local(&self, image: &str) -> Result<()> {
        match self.signatures.first() {
            None => Ok(()),
            Some(r) => Err(ImageError::Invalid(format!(
                "image {image}: the signature policy ({}) requires {} signatures, which images read from files do not carry; nothing stored",
                self.place,
                r.kind()
            ))),
        }
    }
}
