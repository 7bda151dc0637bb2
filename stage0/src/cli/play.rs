//! `skiff play kube`: the pod of a Kubernetes YAML file, run like `skiff
//! run` (docs/kube.md).

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use super::run::{PodOptions, PrepareOptions};
use super::run_options::RunOnlyOptions;
use super::Ctx;
use crate::kube;

#[derive(Subcommand, Debug)]
pub enum PlayCommand {
    /// Run the pod of a Kubernetes YAML file (a Pod, or a Deployment's or
    /// Job's template, with the ConfigMaps and Secrets it uses) in the
    /// foreground, as `skiff run` does; pod options given here win over the
    /// file's.
    Kube(PlayKubeArgs),
}

#[derive(Args, Debug)]
pub struct PlayKubeArgs {
    /// Prepare the pod instead of running it, and print its UUID.
    #[arg(long)]
    prepare: bool,
    /// Refuse (exit 125, nothing made) a file with fields skiff does not
    /// honour, instead of warning of each.
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    run: RunOnlyOptions,
    #[command(flatten)]
    pod: PodOptions,
    #[command(flatten)]
    image: PrepareOptions,
    /// The YAML file; `-` reads it from stdin.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// Kubernetes YAML is small; a bigger file is not a pod.
const MAX_YAML: u64 = 4 << 20;

pub fn run(ctx: &Ctx, c: PlayCommand) -> Result<i32> {
    let PlayCommand::Kube(a) = c;
    let (text, origin) = if a.file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().take(MAX_YAML + 1).read_to_string(&mut text).context("cannot read the YAML from stdin")?;
        (text, "<stdin>".to_string())
    } else {
        let f = std::fs::File::open(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
        let mut text = String::new();
        f.take(MAX_YAML + 1).read_to_string(&mut text).with_context(|| format!("cannot read {}", a.file.display()))?;
        (text, a.file.display().to_string())
    };
    if text.len() as u64 > MAX_YAML {
        bail!("{origin}: larger than {} MiB: not a pod's YAML", MAX_YAML >> 20);
    }
    if a.prepare && a.run.rm {
        bail!("--rm removes a pod once it has run: not with --prepare");
    }
    let (pod, sources) = kube::documents::read(&text, &origin)?;
    let unhonoured = kube::fields::unhonoured(&pod);
    if a.strict && !unhonoured.is_empty() {
        bail!("{origin}: skiff does not honour {} (--strict)", unhonoured.join(", "));
    }
    for field in &unhonoured {
        eprintln!("skiff: {origin}: not honoured: {field}");
    }
    let spec = kube::to_spec::to_spec(&pod, &sources, &ctx.store).with_context(|| origin.clone())?;
    super::run::play(ctx, a.run, a.pod, a.image, (spec, origin), a.prepare)
}
