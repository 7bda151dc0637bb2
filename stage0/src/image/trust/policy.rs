//! The signature policy file, in the format of containers-policy.json(5)
//! (the one podman, skopeo and CRI-O read): per transport and scope, the
//! requirements an image must meet to enter the store. Parsed as strictly
//! as containers/image does: an unknown, duplicated or invalid field
//! refuses the whole file, naming it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Transports a policy may name (containers-transports(5)); skiff reads
/// images from `docker`, `oci`, `oci-archive` and `docker-archive`.
pub const TRANSPORTS: [&str; 10] = [
    "docker",
    "oci",
    "oci-archive",
    "docker-archive",
    "dir",
    "containers-storage",
    "docker-daemon",
    "atomic",
    "sif",
    "tarball",
];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub default: Vec<Requirement>,
    /// transport → scope (`""`: the transport's default) → requirements.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub transports: BTreeMap<String, BTreeMap<String, Vec<Requirement>>>,
}

/// One requirement; an image must meet every requirement of its scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Requirement {
    InsecureAcceptAnything,
    Reject,
    SignedBy(SignedBy),
    SigstoreSigned(SigstoreSigned),
}

/// `signedBy`: GPG "simple signing" signatures by one of the keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SignedBy {
    pub key_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_identity: Option<SignedIdentity>,
}

/// `sigstoreSigned`: cosign signatures by one of the public keys (PEM).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SigstoreSigned {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_datas: Option<Vec<String>>,
    /// Keyless signing: refused for now (see [`parse`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulcio: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rekor_public_key_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rekor_public_key_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_identity: Option<SignedIdentity>,
}

/// Which identity a signature must claim, relative to the image's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum SignedIdentity {
    MatchExact,
    MatchRepoDigestOrExact,
    MatchRepository,
    #[serde(rename_all = "camelCase")]
    ExactReference {
        docker_reference: String,
    },
    #[serde(rename_all = "camelCase")]
    ExactRepository {
        docker_repository: String,
    },
    #[serde(rename_all = "camelCase")]
    RemapIdentity {
        prefix: String,
        signed_prefix: String,
    },
}

impl Requirement {
    /// Its `type`, as the file spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Requirement::InsecureAcceptAnything => "insecureAcceptAnything",
            Requirement::Reject => "reject",
            Requirement::SignedBy(_) => "signedBy",
            Requirement::SigstoreSigned(_) => "sigstoreSigned",
        }
    }
}

/// Parses and checks a policy; the error names the place (`where_` is
/// the file's name) and the field that is wrong.
pub fn parse(data: &[u8], where_: &str) -> Result<Policy, String> {
    // (serde would also take a struct written as an array.)
    if data.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b != b'{') {
        return Err(format!("{where_}: a policy is a JSON object ({{\"default\": […], \"transports\": {{…}}}})"));
    }
    let p: Policy = serde_json::from_slice(data).map_err(|e| format!("{where_}: {e}"))?;
    check(&p).map_err(|e| format!("{where_}: {e}"))?;
    Ok(p)
}

fn check(p: &Policy) -> Result<(), String> {
    check_list(&p.default, "default")?;
    for (transport, scopes) in &p.transports {
        if !TRANSPORTS.contains(&transport.as_str()) {
            return Err(format!("transports: unknown transport {transport:?} (known: {})", TRANSPORTS.join(", ")));
        }
        for (scope, reqs) in scopes {
            let at = format!("transports.{transport}[{scope:?}]");
            if transport == "docker" {
                super::scope::check_docker_scope(scope).map_err(|e| format!("{at}: {e}"))?;
            } else if !scope.is_empty() && !scope.starts_with('/') {
                return Err(format!("{at}: a scope of {transport} is an absolute path"));
            }
            check_list(reqs, &at)?;
        }
    }
    Ok(())
}

fn check_list(reqs: &[Requirement], at: &str) -> Result<(), String> {
    if reqs.is_empty() {
        return Err(format!(
            "{at}: an empty list of requirements (use [{{\"type\": \"reject\"}}] or insecureAcceptAnything)"
        ));
    }
    for (i, r) in reqs.iter().enumerate() {
        let at = format!("{at}[{i}] ({})", r.kind());
        match r {
            Requirement::InsecureAcceptAnything | Requirement::Reject => {}
            Requirement::SignedBy(s) => {
                if !matches!(s.key_type.as_str(), "GPGKeys" | "signedByGPGKeys") {
                    return Err(format!("{at}: keyType {:?} (skiff knows GPGKeys)", s.key_type));
                }
                one_of(
                    &at,
                    &[
                        ("keyPath", s.key_path.is_some()),
                        ("keyPaths", s.key_paths.is_some()),
                        ("keyData", s.key_data.is_some()),
                    ],
                )?;
                check_identity(s.signed_identity.as_ref(), &at)?;
            }
            Requirement::SigstoreSigned(s) => {
                if s.fulcio.is_some() {
                    return Err(format!("{at}: fulcio (keyless signing) is not supported by skiff yet: trust a public key (keyPath or keyData)"));
                }
                one_of(
                    &at,
                    &[
                        ("keyPath", s.key_path.is_some()),
                        ("keyPaths", s.key_paths.is_some()),
                        ("keyData", s.key_data.is_some()),
                        ("keyDatas", s.key_datas.is_some()),
                    ],
                )?;
                check_identity(s.signed_identity.as_ref(), &at)?;
            }
        }
    }
    Ok(())
}

fn one_of(at: &str, given: &[(&str, bool)]) -> Result<(), String> {
    let names: Vec<&str> = given.iter().map(|(n, _)| *n).collect();
    match given.iter().filter(|(_, g)| *g).count() {
        1 => Ok(()),
        0 => Err(format!("{at}: give one of {}", names.join(", "))),
        _ => Err(format!("{at}: give only one of {}", names.join(", "))),
    }
}

fn check_identity(id: Option<&SignedIdentity>, at: &str) -> Result<(), String> {
    let at = format!("{at}.signedIdentity");
    match id {
        Some(SignedIdentity::ExactReference { docker_reference }) => {
            super::scope::check_docker_scope(docker_reference).map_err(|e| format!("{at}.dockerReference: {e}"))
        }
        Some(SignedIdentity::ExactRepository { docker_repository }) => {
            super::scope::check_docker_scope(docker_repository).map_err(|e| format!("{at}.dockerRepository: {e}"))
        }
        Some(SignedIdentity::RemapIdentity { prefix, signed_prefix }) => {
            super::scope::check_docker_scope(prefix).map_err(|e| format!("{at}.prefix: {e}"))?;
            super::scope::check_docker_scope(signed_prefix).map_err(|e| format!("{at}.signedPrefix: {e}"))
        }
        _ => Ok(()),
    }
}

/// The policy's requirements for an image whose scopes, most specific
/// first, are `candidates` in `transport`, and the scope that matched
/// (`""` for the transport's default, `None` for the global default).
pub fn requirements_for<'a>(
    p: &'a Policy,
    transport: &str,
    candidates: &[String],
) -> (&'a [Requirement], Option<String>) {
    if let Some(scopes) = p.transports.get(transport) {
        for c in candidates.iter().map(String::as_str).chain([""]) {
            if let Some(r) = scopes.get(c) {
                return (r, Some(c.to_string()));
            }
        }
    }
    (&p.default, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        parse(json.as_bytes(), "policy.json").unwrap_err()
    }

    #[test]
    fn a_full_policy_round_trips() {
        let json = r#"{
          "default": [{"type": "reject"}],
          "transports": {
            "docker": {
              "": [{"type": "insecureAcceptAnything"}],
              "registry.example:5000/team": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k.gpg",
                 "signedIdentity": {"type": "remapIdentity", "prefix": "mirror.example/team", "signedPrefix": "registry.example:5000/team"}}],
              "*.example.com": [{"type": "sigstoreSigned", "keyPath": "/cosign.pub", "signedIdentity": {"type": "matchRepository"}}]
            },
            "oci": {"/srv/images": [{"type": "insecureAcceptAnything"}]}
          }
        }"#;
        let p = parse(json.as_bytes(), "p").unwrap();
        let again = parse(serde_json::to_string(&p).unwrap().as_bytes(), "p").unwrap();
        assert_eq!(p, again);
        assert_eq!(p.transports["docker"]["registry.example:5000/team"][0].kind(), "signedBy");
    }

    #[test]
    fn hostile_and_wrong_policies_are_refused_naming_the_field() {
        for (json, want) in [
            ("", "policy.json: EOF"),
            ("[]", "a policy is a JSON object"),
            (r#"[[{"type": "reject"}]]"#, "a policy is a JSON object"),
            (r#"{"transports": {}}"#, "missing field `default`"),
            (r#"{"default": []}"#, "default: an empty list"),
            (r#"{"default": [{"type": "accept"}]}"#, "unknown variant `accept`"),
            (r#"{"default": [{"type": "reject"}], "extra": 1}"#, "unknown field `extra`"),
            (
                r#"{"default": [{"type": "reject"}], "transports": {"ftp": {"": [{"type": "reject"}]}}}"#,
                "unknown transport \"ftp\"",
            ),
            (
                r#"{"default": [{"type": "reject"}], "transports": {"docker": {"HTTP://x": [{"type": "reject"}]}}}"#,
                "transports.docker[\"HTTP://x\"]",
            ),
            (r#"{"default": [{"type": "reject"}], "transports": {"docker": {"a.example/x": []}}}"#, "an empty list"),
            (
                r#"{"default": [{"type": "reject"}], "transports": {"oci": {"relative/dir": [{"type": "reject"}]}}}"#,
                "absolute path",
            ),
            (
                r#"{"default": [{"type": "signedBy", "keyType": "GPGKeys"}]}"#,
                "default[0] (signedBy): give one of keyPath, keyPaths, keyData",
            ),
            (
                r#"{"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/a", "keyData": "x"}]}"#,
                "give only one of",
            ),
            (r#"{"default": [{"type": "signedBy", "keyType": "X509", "keyPath": "/a"}]}"#, "keyType \"X509\""),
            (r#"{"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPth": "/a"}]}"#, "unknown field `keyPth`"),
            (r#"{"default": [{"type": "sigstoreSigned", "fulcio": {}}]}"#, "fulcio (keyless signing) is not supported"),
            (
                r#"{"default": [{"type": "sigstoreSigned", "keyPath": "/k", "signedIdentity": {"type": "exactRepository", "dockerRepository": "Bad Repo"}}]}"#,
                "signedIdentity.dockerRepository",
            ),
            (
                r#"{"default": [{"type": "sigstoreSigned", "keyPath": "/k", "signedIdentity": {"type": "matchEverything"}}]}"#,
                "unknown variant `matchEverything`",
            ),
        ] {
            let e = err(json);
            assert!(e.contains(want), "{json}: {e}");
            assert!(e.starts_with("policy.json: "), "{e}");
        }
    }

    #[test]
    fn the_most_specific_scope_wins() {
        let json = r#"{"default": [{"type": "reject"}], "transports": {"docker": {
            "": [{"type": "insecureAcceptAnything"}],
            "r.example/team": [{"type": "reject"}],
            "r.example/team/app:1": [{"type": "insecureAcceptAnything"}]}}}"#;
        let p = parse(json.as_bytes(), "p").unwrap();
        let c = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (r, s) = requirements_for(
            &p,
            "docker",
            &c(&["r.example/team/app:1", "r.example/team/app", "r.example/team", "r.example"]),
        );
        assert_eq!((r[0].kind(), s.as_deref()), ("insecureAcceptAnything", Some("r.example/team/app:1")));
        let (r, s) = requirements_for(
            &p,
            "docker",
            &c(&["r.example/team/app:2", "r.example/team/app", "r.example/team", "r.example"]),
        );
        assert_eq!((r[0].kind(), s.as_deref()), ("reject", Some("r.example/team")));
        let (r, s) = requirements_for(&p, "docker", &c(&["o.example/x:1", "o.example/x", "o.example"]));
        assert_eq!((r[0].kind(), s.as_deref()), ("insecureAcceptAnything", Some("")));
        let (r, s) = requirements_for(&p, "oci", &c(&["/srv/x"]));
        assert_eq!((r[0].kind(), s), ("reject", None));
    }
}
