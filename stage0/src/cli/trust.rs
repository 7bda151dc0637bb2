//! `skiff image trust show|set`: the signature policy in force, and edits
//! of skiff's policy file (docs/trust.md).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};

use super::Ctx;
use crate::image::trust::policy::{self, Policy, Requirement, SignedBy, SigstoreSigned};
use crate::image::trust::{scope, Trust, SKIFF_POLICY};
use crate::output::{self, Format, TableArgs};

#[derive(Subcommand, Debug)]
pub enum TrustCommand {
    /// Print the signature policy in force, per transport and scope (the
    /// file it comes from on stderr).
    Show(ShowArgs),
    /// Set the requirement of one scope in skiff's policy file
    /// (--signature-policy, else /etc/skiff/policy.json, made from the
    /// policy in force when it does not exist yet), atomically.
    Set(SetArgs),
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    table: TableArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "verbatim")]
pub enum TrustType {
    /// Any image (insecureAcceptAnything).
    #[value(name = "accept")]
    Accept,
    /// No image.
    #[value(name = "reject")]
    Reject,
    /// Images with a GPG simple-signing signature by the key of --pubkey.
    #[value(name = "signedBy")]
    SignedBy,
    /// Images with a cosign signature by the public key (PEM) of --pubkey.
    #[value(name = "sigstoreSigned")]
    SigstoreSigned,
}

#[derive(Args, Debug)]
pub struct SetArgs {
    /// What images of the scope must meet.
    #[arg(long = "type", value_enum)]
    kind: TrustType,
    /// The trusted public key (signedBy: a GPG key file; sigstoreSigned: a
    /// PEM public key).
    #[arg(long, value_name = "FILE")]
    pubkey: Option<PathBuf>,
    /// `default` (every image no scope names), a registry scope
    /// (`registry.example:5000`, `registry.example/team`,
    /// `registry.example/team/app:1`, `*.example.com`), or
    /// `oci:PATH`, `oci-archive:PATH`, `docker-archive:PATH` (absolute).
    scope: String,
}

pub fn run(ctx: &Ctx, cmd: TrustCommand) -> Result<i32> {
    match cmd {
        TrustCommand::Show(a) => show(ctx, a),
        TrustCommand::Set(a) => set(ctx, a),
    }
}

fn describe(reqs: &[Requirement]) -> String {
    let one = |r: &Requirement| match r {
        Requirement::SignedBy(SignedBy { key_path, key_paths, key_data, .. }) => {
            format!("signedBy {}", keys(key_path, key_paths, key_data.is_some()))
        }
        Requirement::SigstoreSigned(SigstoreSigned { key_path, key_paths, key_data, key_datas, .. }) => {
            format!("sigstoreSigned {}", keys(key_path, key_paths, key_data.is_some() || key_datas.is_some()))
        }
        r => r.kind().to_string(),
    };
    reqs.iter().map(one).collect::<Vec<_>>().join(", ")
}

fn keys(path: &Option<String>, paths: &Option<Vec<String>>, data: bool) -> String {
    match (path, paths) {
        (Some(p), _) => p.clone(),
        (_, Some(ps)) => ps.join(" "),
        _ if data => "(key data in the file)".to_string(),
        _ => String::new(),
    }
}

fn show(ctx: &Ctx, a: ShowArgs) -> Result<i32> {
    let trust = ctx.trust.load()?;
    match &trust.file {
        Some(f) => eprintln!("skiff: signature policy {}", f.display()),
        None => eprintln!("skiff: no signature policy file: every image is accepted"),
    }
    if trust.insecure {
        eprintln!("skiff: --insecure-policy: the policy is not applied");
    }
    if a.table.format == Format::Json {
        let v = serde_json::json!({"file": trust.file, "insecure": trust.insecure, "policy": trust.policy});
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let mut rows = vec![vec!["*".to_string(), "default".to_string(), describe(&trust.policy.default)]];
    for (transport, scopes) in &trust.policy.transports {
        for (s, reqs) in scopes {
            let s = if s.is_empty() { "(transport default)".to_string() } else { s.clone() };
            rows.push(vec![transport.clone(), s, describe(reqs)]);
        }
    }
    output::table(&["TRANSPORT", "SCOPE", "REQUIREMENTS"], &rows, a.table.no_legend)?;
    Ok(0)
}

/// (transport, scope) of `default` (`None`), `TRANSPORT:PATH` or a
/// registry scope.
fn parse_scope(s: &str) -> Result<Option<(String, String)>> {
    if s == "default" {
        return Ok(None);
    }
    for t in ["oci", "oci-archive", "docker-archive"] {
        if let Some(p) = s.strip_prefix(t).and_then(|r| r.strip_prefix(':')) {
            if !p.starts_with('/') {
                bail!("scope {s:?}: the path of {t}: is absolute");
            }
            return Ok(Some((t.to_string(), p.to_string())));
        }
    }
    let registry = s.strip_prefix("docker://").unwrap_or(s);
    scope::check_docker_scope(registry).map_err(|e| anyhow::anyhow!("scope {e}"))?;
    if registry.is_empty() {
        bail!("scope \"\": give default, a registry scope or TRANSPORT:PATH");
    }
    Ok(Some(("docker".to_string(), registry.to_string())))
}

fn requirement(a: &SetArgs) -> Result<Requirement> {
    let key = || -> Result<String> {
        let p = a.pubkey.as_deref().with_context(|| format!("--type {:?} needs --pubkey FILE", a.kind))?;
        let abs = std::path::absolute(p)?;
        std::fs::metadata(&abs).with_context(|| format!("--pubkey {}", abs.display()))?;
        Ok(abs.display().to_string())
    };
    if a.pubkey.is_some() && matches!(a.kind, TrustType::Accept | TrustType::Reject) {
        bail!("--pubkey is for --type signedBy and sigstoreSigned");
    }
    Ok(match a.kind {
        TrustType::Accept => Requirement::InsecureAcceptAnything,
        TrustType::Reject => Requirement::Reject,
        TrustType::SignedBy => Requirement::SignedBy(SignedBy {
            key_type: "GPGKeys".into(),
            key_path: Some(key()?),
            key_paths: None,
            key_data: None,
            signed_identity: None,
        }),
        TrustType::SigstoreSigned => Requirement::SigstoreSigned(SigstoreSigned {
            key_path: Some(key()?),
            key_paths: None,
            key_data: None,
            key_datas: None,
            fulcio: None,
            rekor_public_key_path: None,
            rekor_public_key_data: None,
            signed_identity: None,
        }),
    })
}

fn set(ctx: &Ctx, a: SetArgs) -> Result<i32> {
    let target = ctx.trust.policy_file.clone().unwrap_or_else(|| PathBuf::from(SKIFF_POLICY));
    let where_ = parse_scope(&a.scope)?;
    let req = requirement(&a)?;
    // skiff's file starts as a copy of the policy in force.
    let mut p: Policy =
        if target.exists() { Trust::load(Some(&target), false)?.policy } else { Trust::load(None, false)?.policy };
    match where_ {
        None => p.default = vec![req],
        Some((transport, s)) => {
            p.transports.entry(transport).or_default().insert(s, vec![req]);
        }
    }
    let text = serde_json::to_string_pretty(&p)? + "\n";
    policy::parse(text.as_bytes(), "the new policy").map_err(anyhow::Error::msg)?;
    write(&target, text.as_bytes())?;
    eprintln!("skiff: {} set in {}", a.scope, target.display());
    Ok(0)
}

fn write(target: &Path, data: &[u8]) -> Result<()> {
    let dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name =
        target.file_name().and_then(|n| n.to_str()).with_context(|| format!("{} is no file name", target.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    skiff_pods::atomic::write_atomic(dir, name, data).with_context(|| format!("cannot write {}", target.display()))
}
