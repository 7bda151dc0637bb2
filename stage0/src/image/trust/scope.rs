//! Scopes of a signature policy: which of its entries an image falls
//! under, most specific first (containers-policy.json(5)).

use std::path::Path;

use crate::image::reference::DockerRef;

fn is_component(s: &str) -> bool {
    !s.is_empty()
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

fn is_host(s: &str) -> bool {
    let (host, port) = s.split_once(':').map_or((s, None), |(h, p)| (h, Some(p)));
    !host.is_empty()
        && host.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && port.is_none_or(|p| p.parse::<u16>().is_ok())
}

/// A scope of the `docker` transport: `*.DOMAIN` (every host under it), or
/// a fully qualified prefix of a reference: `HOST[:PORT]`, with
/// `/NAMESPACE…/REPO`, and `:TAG` or `@sha256:…` for one image. `""` is
/// the transport's default.
pub fn check_docker_scope(scope: &str) -> Result<(), String> {
    if scope.is_empty() {
        return Ok(());
    }
    if let Some(domain) = scope.strip_prefix("*.") {
        return if is_host(domain) && !domain.contains(':') {
            Ok(())
        } else {
            Err(format!("{scope:?}: a wildcard is *.DOMAIN, without a port"))
        };
    }
    let (rest, digest) = scope.split_once('@').map_or((scope, None), |(r, d)| (r, Some(d)));
    if let Some(d) = digest {
        let hex = d.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(format!("{scope:?}: a digest is sha256: and 64 hex digits"));
        }
    }
    let mut parts = rest.split('/');
    let host = parts.next().unwrap_or("");
    if !is_host(host) || !(host.contains(['.', ':']) || host == "localhost") {
        return Err(format!(
            "{scope:?}: a scope starts with a registry host (e.g. docker.io/library/busybox, not busybox)"
        ));
    }
    let path: Vec<&str> = parts.collect();
    let (last, tag) = match path.last().and_then(|l| l.split_once(':')) {
        Some((l, t)) => (Some(l), Some(t)),
        None => (path.last().copied(), None),
    };
    if (tag.is_some() || digest.is_some()) && path.is_empty() {
        return Err(format!("{scope:?}: a tag or digest needs a repository"));
    }
    let valid_tag = |t: &str| {
        !t.is_empty() && t.len() <= 128 && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    };
    if tag.is_some_and(|t| !valid_tag(t)) {
        return Err(format!("{scope:?}: invalid tag"));
    }
    let n = path.len();
    for (i, c) in path.iter().enumerate() {
        let c = if i + 1 == n { last.unwrap_or(c) } else { c };
        if !is_component(c) {
            return Err(format!("{scope:?}: invalid repository path component {c:?}"));
        }
    }
    Ok(())
}

/// The scopes a registry image falls under, most specific first: the
/// reference itself (by tag and by digest), its repository, each
/// namespace above it, its registry, and `*.` wildcards of the registry's
/// domains (not for a registry with a port).
pub fn docker_candidates(r: &DockerRef) -> Vec<String> {
    let repo = format!("{}/{}", r.registry, r.repository);
    let mut out = Vec::new();
    if let Some(d) = &r.digest {
        out.push(format!("{repo}@{d}"));
    }
    if let Some(t) = &r.tag {
        out.push(format!("{repo}:{t}"));
    }
    let mut prefix = repo.as_str();
    out.push(prefix.to_string());
    while let Some((up, _)) = prefix.rsplit_once('/') {
        out.push(up.to_string());
        prefix = up;
    }
    if !r.registry.contains(':') {
        let mut domain = r.registry.as_str();
        while let Some((_, up)) = domain.split_once('.') {
            out.push(format!("*.{up}"));
            domain = up;
        }
    }
    out
}

/// The scopes of an image in a file or directory (`oci:`, `oci-archive:`,
/// `docker-archive:`): `PATH:REF` when a reference was named, the path,
/// then each directory above it (not `/`).
pub fn path_candidates(path: &Path, reference: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(r) = reference {
        out.push(format!("{}:{r}", path.display()));
    }
    let mut p = Some(path);
    while let Some(dir) = p.filter(|d| d.parent().is_some()) {
        out.push(dir.display().to_string());
        p = dir.parent();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_scopes() {
        for ok in
            ["", "docker.io", "docker.io/library/busybox", "r.example:5000/a/b:1.0", "localhost/x", "*.example.com"]
        {
            check_docker_scope(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let digest = format!("r.example/a@sha256:{}", "a".repeat(64));
        check_docker_scope(&digest).unwrap();
        for bad in [
            "busybox",
            "library/busybox",
            "docker://docker.io/x",
            "*.example.com:5000",
            "*",
            "r.example/A",
            "r.example/a:",
            "r.example/a@sha256:12",
            "r.example:99999/a",
            "r.example:5000:1",
            "r.example/../x",
            "r.example:tag",
            " r.example",
        ] {
            assert!(check_docker_scope(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn candidates_go_from_the_image_to_the_registry() {
        let r = DockerRef::parse("r.example.com/team/app:1").unwrap();
        assert_eq!(
            docker_candidates(&r),
            [
                "r.example.com/team/app:1",
                "r.example.com/team/app",
                "r.example.com/team",
                "r.example.com",
                "*.example.com",
                "*.com"
            ]
        );
        let r = DockerRef::parse("127.0.0.1:5000/app").unwrap();
        assert_eq!(docker_candidates(&r), ["127.0.0.1:5000/app:latest", "127.0.0.1:5000/app", "127.0.0.1:5000"]);
        let r = DockerRef::parse("busybox").unwrap();
        assert_eq!(docker_candidates(&r)[..2], ["docker.io/library/busybox:latest", "docker.io/library/busybox"]);
        assert_eq!(
            path_candidates(Path::new("/srv/images/app"), Some("1")),
            ["/srv/images/app:1", "/srv/images/app", "/srv/images", "/srv"]
        );
    }
}
