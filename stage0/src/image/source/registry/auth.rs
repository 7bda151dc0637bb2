//! Registry credentials (the `auths` map of Docker's and podman's
//! `auth.json`) and `WWW-Authenticate` challenges.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;

use crate::image::{io_err, ImageError, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl Credentials {
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.user, self.password);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }
}

#[derive(Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// Where credentials are looked for, first found wins: `--authfile`,
/// `$REGISTRY_AUTH_FILE`, podman's `$XDG_RUNTIME_DIR/containers/auth.json`
/// (`/run/containers/0/auth.json` for root), Docker's
/// `$HOME/.docker/config.json`.
pub fn default_paths(explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.to_path_buf()];
    }
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE") {
        out.push(PathBuf::from(p));
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) => out.push(PathBuf::from(d).join("containers/auth.json")),
        None => out.push(PathBuf::from("/run/containers/0/auth.json")),
    }
    if let Some(h) = std::env::var_os("HOME") {
        out.push(PathBuf::from(h).join(".docker/config.json"));
    }
    out
}

/// Credentials for `registry` (as the user wrote it, e.g. `docker.io` or
/// `127.0.0.1:5000`) from the first auth file that exists. An explicit
/// `--authfile` that is missing or unreadable is an error.
pub fn lookup(registry: &str, explicit: Option<&Path>) -> Result<Option<Credentials>> {
    for p in default_paths(explicit) {
        let data = match std::fs::read(&p) {
            Ok(d) => d,
            Err(e) if explicit.is_none() && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(format!("cannot read auth file {}", p.display()))(e)),
        };
        let file: AuthFile = serde_json::from_slice(&data)
            .map_err(|e| ImageError::Invalid(format!("auth file {} is invalid: {e}", p.display())))?;
        return find(&file, registry, &p);
    }
    Ok(None)
}

fn keys_for(registry: &str) -> Vec<String> {
    let mut keys = vec![registry.to_string(), format!("https://{registry}"), format!("http://{registry}")];
    if registry == "docker.io" {
        keys.extend([
            "https://index.docker.io/v1/".to_string(),
            "index.docker.io".to_string(),
            "registry-1.docker.io".to_string(),
        ]);
    }
    keys
}

fn find(file: &AuthFile, registry: &str, path: &Path) -> Result<Option<Credentials>> {
    for key in keys_for(registry) {
        let Some(e) = file.auths.get(&key).or_else(|| file.auths.get(&format!("{key}/"))) else {
            continue;
        };
        if let (Some(u), Some(p)) = (&e.username, &e.password) {
            return Ok(Some(Credentials { user: u.clone(), password: p.clone() }));
        }
        let Some(auth) = &e.auth else { continue };
        let bad = || {
            ImageError::Invalid(format!(
                "auth file {}: the entry for {key} is not base64 of user:password",
                path.display()
            ))
        };
        let raw = base64::engine::general_purpose::STANDARD.decode(auth.trim()).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let (user, password) = raw.split_once(':').ok_or_else(bad)?;
        return Ok(Some(Credentials { user: user.into(), password: password.into() }));
    }
    Ok(None)
}

/// A parsed `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
}

/// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
pub fn parse_challenge(h: &str) -> Option<Challenge> {
    let (scheme, params) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
    let mut map = HashMap::new();
    let mut rest = params.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], &q[end + 1..])
        } else {
            match after.find(',') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            }
        };
        map.insert(key, value.to_string());
        rest = tail.trim_start_matches([',', ' ']);
    }
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: map.remove("realm")?,
            service: map.remove("service"),
            scope: map.remove("scope"),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            })
        );
        assert_eq!(parse_challenge(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic));
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None, "a bearer challenge needs a realm");
        assert_eq!(parse_challenge(r#"Bearer realm="unterminated"#), None);
    }

    #[test]
    fn auth_files_in_both_formats() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("auth.json");
        let b64 = base64::engine::general_purpose::STANDARD.encode("alice:s3:cret");
        std::fs::write(&p, format!(r#"{{"auths":{{"127.0.0.1:5000":{{"auth":"{b64}"}},"https://index.docker.io/v1/":{{"username":"bob","password":"pw"}}}}}}"#)).unwrap();
        let c = lookup("127.0.0.1:5000", Some(&p)).unwrap().unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("alice", "s3:cret"));
        assert_eq!(lookup("docker.io", Some(&p)).unwrap().unwrap().user, "bob");
        assert_eq!(lookup("other:1", Some(&p)).unwrap(), None);
        std::fs::write(&p, r#"{"auths":{"r":{"auth":"%%%"}}}"#).unwrap();
        assert!(lookup("r", Some(&p)).is_err());
        assert!(lookup("r", Some(&d.path().join("missing.json"))).is_err(), "an explicit auth file must exist");
    }
}
