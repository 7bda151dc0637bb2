//! Platforms (`os/arch[/variant]`) and picking one from an image index.

use std::fmt;

use oci_spec::image::{Descriptor, ImageIndex};

use super::{ImageError, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Default for Platform {
    /// What skiff runs: linux/amd64.
    fn default() -> Self {
        Platform { os: "linux".into(), arch: "amd64".into(), variant: None }
    }
}

impl Platform {
    pub fn parse(s: &str) -> std::result::Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => {
                Ok(Platform { os: os.to_string(), arch: arch.to_string(), variant: None })
            }
            [os, arch, v] if ok(os) && ok(arch) && ok(v) => {
                Ok(Platform { os: os.to_string(), arch: arch.to_string(), variant: Some(v.to_string()) })
            }
            _ => Err(format!("invalid platform {s:?}: expected OS/ARCH[/VARIANT], e.g. linux/amd64")),
        }
    }

    /// True for an image config or index entry of this platform. A variant
    /// is compared only when one was asked for.
    pub fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        self.os == os && self.arch == arch && self.variant.as_deref().is_none_or(|v| Some(v) == variant)
    }

    /// The manifest for this platform in `index`, or an error listing
    /// what the index has.
    pub fn pick(&self, index: &ImageIndex) -> Result<Descriptor> {
        let mut seen = Vec::new();
        for d in index.manifests() {
            match d.platform() {
                Some(p) => {
                    let (os, arch, variant) = (p.os().to_string(), p.architecture().to_string(), p.variant().clone());
                    if self.matches(&os, &arch, variant.as_deref()) {
                        return Ok(d.clone());
                    }
                    seen.push(match variant {
                        Some(v) => format!("{os}/{arch}/{v}"),
                        None => format!("{os}/{arch}"),
                    });
                }
                None => seen.push("unknown".into()),
            }
        }
        Err(ImageError::Invalid(format!(
            "no {self} image in the index (available: {})",
            if seen.is_empty() { "none".into() } else { seen.join(", ") }
        )))
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.variant {
            Some(v) => write!(f, "{}/{}/{v}", self.os, self.arch),
            None => write!(f, "{}/{}", self.os, self.arch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(p.matches("linux", "arm64", Some("v8")));
        assert!(!p.matches("linux", "arm64", None));
        let d = Platform::default();
        assert!(d.matches("linux", "amd64", Some("v2")), "no variant asked: any variant");
        for bad in ["", "linux", "linux/", "/amd64", "a/b/c/d", "linux/amd 64"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }
}
