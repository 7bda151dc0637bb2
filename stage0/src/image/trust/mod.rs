//! Whether an image may enter the store: the signature policy
//! (containers-policy.json(5), the file podman and skopeo read), looked up
//! per transport and scope before anything of the image is stored.
//! Requirements skiff cannot verify yet (signatures) refuse the image:
//! a policy is never weakened by skiff's gaps.

pub mod policy;
pub mod scope;

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
}

impl TrustOptions {
    pub fn load(&self) -> Result<Trust> {
        Trust::load(self.policy_file.as_deref(), self.insecure)
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
        Ok(Trust { file, policy, insecure })
    }

    /// Checks an image about to enter the store: `image` as the user named
    /// it, its `transport` and its scopes, most specific first.
    pub fn check(&self, image: &str, transport: &str, candidates: &[String]) -> Result<()> {
        if self.insecure {
            eprintln!("skiff: --insecure-policy: image {image} enters the store unchecked by any signature policy");
            return Ok(());
        }
        let (reqs, scope) = policy::requirements_for(&self.policy, transport, candidates);
        let scope = match scope {
            Some(s) if s.is_empty() => format!("the default of transport {transport}"),
            Some(s) => format!("scope {transport}:{s}"),
            None => "the default".to_string(),
        };
        let file = self.file.as_ref().map_or("no file".to_string(), |f| f.display().to_string());
        for r in reqs {
            match r {
                Requirement::InsecureAcceptAnything => {}
                Requirement::Reject => {
                    return Err(ImageError::Invalid(format!(
                        "image {image} is rejected by the signature policy ({file}, {scope}: reject); nothing stored"
                    )))
                }
                Requirement::SignedBy(_) | Requirement::SigstoreSigned(_) => {
                    return Err(ImageError::Invalid(format!(
                        "image {image}: the signature policy ({file}, {scope}) requires {} signatures, which skiff cannot verify yet; nothing stored",
                        r.kind()
                    )))
                }
            }
        }
        Ok(())
    }
}
