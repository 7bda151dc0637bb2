//! What users may name an image with.

use std::fmt;
use std::path::PathBuf;

use super::digest::Digest;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageReference {
    /// `docker://[HOST[:PORT]/]NAME[:TAG|@DIGEST]`: a registry.
    Docker(DockerRef),
    /// `oci:PATH[:REF]`: an OCI image layout directory; REF is a tag or a
    /// full name (the path ends at the first ':', as in skopeo).
    OciLayout { path: PathBuf, tag: Option<String> },
    /// `oci-archive:PATH[:REF]`: a tar of an OCI image layout.
    OciArchive { path: PathBuf, tag: Option<String> },
    /// `docker-archive:PATH[:NAME[:TAG]]`: `docker save` output.
    DockerArchive { path: PathBuf, name: Option<String> },
    /// `sha256:HEX` (full or a unique prefix of at least 4 digits).
    Id(String),
    /// A name of an image in the store, e.g. `mytool:1` or
    /// `docker.io/library/busybox:latest`.
    Name(String),
}

fn is_tag(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// An OCI ref name (`org.opencontainers.image.ref.name`): a tag such as
/// `latest`, or a full name such as `localhost/redis:1`, as skopeo and
/// podman write them.
fn is_ref_name(s: &str) -> bool {
    s.len() <= 255
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/' | ':' | '@' | '+'))
}

/// Splits `PATH[:REF]` of the file-based transports by skopeo's rule: the
/// path ends at its first ':' and everything after it is the reference, so
/// `oci-archive:/x.tar:localhost/redis:1` names `localhost/redis:1`.
fn path_and_ref(rest: &str, whole: &str) -> Result<(PathBuf, Option<String>), String> {
    let (path, reference) = match rest.split_once(':') {
        Some((p, r)) => (p, Some(r)),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(format!("image reference {whole:?} has no path"));
    }
    if let Some(r) = reference.filter(|r| !is_ref_name(r)) {
        return Err(format!(
            "image reference {whole:?}: {r:?} is not a tag or image name (the path ends at the first ':')"
        ));
    }
    Ok((PathBuf::from(path), reference.map(str::to_string)))
}

impl ImageReference {
    pub fn parse(s: &str) -> Result<ImageReference, String> {
        if let Some(rest) = s.strip_prefix("docker://") {
            return DockerRef::parse(rest).map(ImageReference::Docker);
        }
        if let Some(rest) = s.strip_prefix("oci:") {
            let (path, tag) = path_and_ref(rest, s)?;
            return Ok(ImageReference::OciLayout { path, tag });
        }
        if let Some(rest) = s.strip_prefix("oci-archive:") {
            let (path, tag) = path_and_ref(rest, s)?;
            return Ok(ImageReference::OciArchive { path, tag });
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            // The path ends at the first ':' (a name may follow).
            let (path, name) = match rest.split_once(':') {
                Some((p, n)) => (p, Some(n.to_string())),
                None => (rest, None),
            };
            if path.is_empty() {
                return Err(format!("image reference {s:?} has no path"));
            }
            return Ok(ImageReference::DockerArchive { path: PathBuf::from(path), name });
        }
        if let Some(hex) = s.strip_prefix("sha256:") {
            if (4..=64).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                return Ok(ImageReference::Id(hex.to_string()));
            }
            return Err(format!("invalid image ID {s:?}: expected sha256: and 4 to 64 lowercase hex digits"));
        }
        if s.is_empty() || s.contains(char::is_whitespace) || s.contains("://") {
            return Err(format!(
                "invalid image reference {s:?}: use docker://NAME, oci:PATH[:TAG], oci-archive:PATH, docker-archive:PATH, sha256:ID or the name of a stored image"
            ));
        }
        Ok(ImageReference::Name(s.to_string()))
    }
}

/// A registry reference, normalised as Docker does:
/// `busybox` is `docker.io/library/busybox:latest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerRef {
    /// `HOST[:PORT]` as written (docker.io for Docker Hub).
    pub registry: String,
    /// Repository path, e.g. `library/busybox`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

fn is_path_component(c: &str) -> bool {
    !c.is_empty()
        && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
        && c.as_bytes()[0].is_ascii_alphanumeric()
        && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
}

impl DockerRef {
    pub fn parse(s: &str) -> Result<DockerRef, String> {
        let bad = |why: &str| format!("invalid image reference {s:?}: {why}");
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d).map_err(|e| bad(&e))?)),
            None => (s, None),
        };
        let (name, tag) = match rest.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => {
                if !is_tag(t) {
                    return Err(bad(&format!("invalid tag {t:?}")));
                }
                (n, Some(t.to_string()))
            }
            _ => (rest, None),
        };
        let (registry, path) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first.to_string(), rest),
            _ => ("docker.io".to_string(), name),
        };
        let registry = if registry == "index.docker.io" { "docker.io".to_string() } else { registry };
        let (host, port) = registry.split_once(':').unwrap_or((&registry, "0"));
        if host.is_empty()
            || host.contains(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-')))
            || port.parse::<u16>().is_err()
        {
            return Err(bad("invalid registry HOST[:PORT]"));
        }
        if path.is_empty() || !path.split('/').all(is_path_component) {
            return Err(bad("repository names use lowercase letters, digits and . _ - separated by /"));
        }
        let repository =
            if registry == "docker.io" && !path.contains('/') { format!("library/{path}") } else { path.to_string() };
        let tag = if tag.is_none() && digest.is_none() { Some("latest".to_string()) } else { tag };
        Ok(DockerRef { registry, repository, tag, digest })
    }

    /// The host to talk to (Docker Hub's API lives elsewhere than its name).
    pub fn api_host(&self) -> &str {
        if self.registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// What to ask `/manifests/` for: the digest when pinned, else the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }
}

impl fmt::Display for DockerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oci(p: &str, t: Option<&str>) -> ImageReference {
        ImageReference::OciLayout { path: p.into(), tag: t.map(Into::into) }
    }

    #[test]
    fn layouts_with_and_without_tags() {
        assert_eq!(ImageReference::parse("oci:./bb:latest").unwrap(), oci("./bb", Some("latest")));
        assert_eq!(ImageReference::parse("oci:/srv/bb").unwrap(), oci("/srv/bb", None));
        assert_eq!(ImageReference::parse("oci:/a:b/c").unwrap(), oci("/a", Some("b/c")));
        assert_eq!(
            ImageReference::parse("oci-archive:/x.tar:localhost/redis:1").unwrap(),
            ImageReference::OciArchive { path: "/x.tar".into(), tag: Some("localhost/redis:1".into()) }
        );
        assert_eq!(
            ImageReference::parse("docker-archive:/x.tar:localhost/bb:1").unwrap(),
            ImageReference::DockerArchive { path: "/x.tar".into(), name: Some("localhost/bb:1".into()) }
        );
    }

    #[test]
    fn ids_names_and_bad_input() {
        assert_eq!(ImageReference::parse("sha256:abcd").unwrap(), ImageReference::Id("abcd".into()));
        assert_eq!(ImageReference::parse("mytool:1").unwrap(), ImageReference::Name("mytool:1".into()));
        for bad in [
            "",
            "oci:",
            "oci::latest",
            "oci:/x:",
            "oci:/x:a b",
            "oci:/x:../y",
            "sha256:ab",
            "sha256:XYZW",
            "sha256:../../x",
            "http://x",
            "a b",
            "docker://",
        ] {
            assert!(ImageReference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn docker_normalisation() {
        let n = |s: &str| DockerRef::parse(s).unwrap().to_string();
        assert_eq!(n("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(n("team/app:1.4"), "docker.io/team/app:1.4");
        assert_eq!(n("index.docker.io/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(n("registry.example:5000/team/app:1.4"), "registry.example:5000/team/app:1.4");
        assert_eq!(n("localhost/app"), "localhost/app:latest");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(n(&format!("127.0.0.1:5000/x@{d}")), format!("127.0.0.1:5000/x@{d}"));
        assert_eq!(DockerRef::parse("busybox").unwrap().api_host(), "registry-1.docker.io");
        for bad in ["", "UPPER/case", "a//b", "a:", "a:b:c/d", "-a", "a@sha256:12", "reg:5000/", "x/../y"] {
            assert!(DockerRef::parse(bad).is_err(), "{bad}");
        }
    }
}
