//! Where a registry's signatures are kept: the `registries.d` directory of
//! containers-registries.d(5) (`--registries.d DIR`, else
//! /etc/containers/registries.d), as skopeo and podman read it. Each
//! `*.yaml` file may give `default-docker` and per-scope `docker` entries;
//! a scope named twice, in one file or two, is an error.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// Read when `--registries.d` is not given.
pub const DEFAULT_DIR: &str = "/etc/containers/registries.d";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ConfigFile {
    default_docker: Option<Entry>,
    docker: Option<BTreeMap<String, Entry>>,
}

/// One scope's settings.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Entry {
    /// Where signatures are read (`file://` or `http(s)://`).
    pub lookaside: Option<String>,
    /// Where signing tools write them (skiff only reads).
    pub lookaside_staging: Option<String>,
    /// The old names of the two above.
    pub sigstore: Option<String>,
    pub sigstore_staging: Option<String>,
    pub use_sigstore_attachments: Option<bool>,
}

impl Entry {
    fn read_url(&self) -> Option<&str> {
        self.lookaside.as_deref().or(self.sigstore.as_deref())
    }
}

#[derive(Debug, Default)]
pub struct RegistriesD {
    default: Option<Entry>,
    scopes: BTreeMap<String, Entry>,
}

/// Reads every `*.yaml` of `dir`, in name order; a missing directory is
/// an empty configuration.
pub fn load(dir: &Path) -> Result<RegistriesD, String> {
    let mut out = RegistriesD::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(format!("cannot read registries.d {}: {e}", dir.display())),
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
        parse_into(&mut out, &text).map_err(|e| format!("{}: {e}", f.display()))?;
    }
    Ok(out)
}

/// One file's text, on its own.
pub fn parse(text: &str) -> Result<RegistriesD, String> {
    let mut out = RegistriesD::default();
    parse_into(&mut out, text)?;
    Ok(out)
}

fn parse_into(out: &mut RegistriesD, text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Ok(());
    }
    let file: ConfigFile = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    if let Some(d) = file.default_docker {
        if out.default.replace(d).is_some() {
            return Err("default-docker is given in more than one file".into());
        }
    }
    for (scope, entry) in file.docker.unwrap_or_default() {
        super::scope::check_docker_scope(&scope).map_err(|e| format!("docker: {e}"))?;
        if out.scopes.insert(scope.clone(), entry).is_some() {
            return Err(format!("docker: scope {scope} is given more than once"));
        }
    }
    Ok(())
}

impl RegistriesD {
    /// The lookaside store of the most specific scope among `candidates`
    /// that names one, else `default-docker`'s.
    /// Whether cosign signatures attached in the registry are read for the
    /// most specific scope that says (else `default-docker`; else not).
    pub fn use_sigstore_attachments(&self, candidates: &[String]) -> bool {
        candidates
            .iter()
            .filter_map(|c| self.scopes.get(c))
            .find_map(|e| e.use_sigstore_attachments)
            .or_else(|| self.default.as_ref().and_then(|d| d.use_sigstore_attachments))
            .unwrap_or(false)
    }

    pub fn lookaside(&self, candidates: &[String]) -> Option<&str> {
        candidates
            .iter()
            .find_map(|c| self.scopes.get(c))
            .and_then(Entry::read_url)
            .or_else(|| self.default.as_ref().and_then(Entry::read_url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_scope_gives_the_lookaside() {
        let mut d = RegistriesD::default();
        parse_into(
            &mut d,
            "default-docker:\n  lookaside: file:///var/sigs\ndocker:\n  r.example:5000/team:\n    lookaside: https://sigs.example/team\n    lookaside-staging: file:///srv/stage\n  r.example:5000:\n    sigstore: file:///old\n",
        )
        .unwrap();
        let c = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            d.lookaside(&c(&["r.example:5000/team/app:1", "r.example:5000/team/app", "r.example:5000/team"])),
            Some("https://sigs.example/team")
        );
        assert_eq!(d.lookaside(&c(&["r.example:5000/other/app", "r.example:5000"])), Some("file:///old"));
        assert_eq!(d.lookaside(&c(&["elsewhere.example/x"])), Some("file:///var/sigs"));
        let dup = parse_into(&mut d, "docker:\n  r.example:5000:\n    lookaside: file:///x\n").unwrap_err();
        assert!(dup.contains("more than once"), "{dup}");
        for (bad, want) in [
            ("docker:\n  r.example:\n    lookasid: file:///x\n", "lookasid"),
            ("docker:\n  busybox:\n    lookaside: file:///x\n", "registry host"),
            ("default-docker: [1]\n", ""),
        ] {
            let e = parse_into(&mut RegistriesD::default(), bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
