//! `skiff fetch`: pulls or imports images into the store (under the store
//! lock), printing each image's ID.

use anyhow::Result;
use clap::Args;

use super::progress::CliProgress;
use super::Ctx;
use crate::image::fetch::{fetch, FetchOptions, PullPolicy};
use crate::image::lock::StoreLock;
use crate::image::platform::Platform;
use crate::image::reference::ImageReference;

#[derive(Args, Debug)]
pub struct FetchArgs {
    /// Platform to pick from multi-platform images.
    #[arg(long, default_value = "linux/amd64", value_parser = Platform::parse, value_name = "OS/ARCH[/VARIANT]")]
    platform: Platform,
    /// No progress on stderr; only the image IDs on stdout.
    #[arg(long, short)]
    quiet: bool,
    /// Images to fetch: docker://NAME, oci:PATH[:TAG], oci-archive:PATH[:TAG],
    /// docker-archive:PATH[:NAME].
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
}

/// Prints one image ID (the config digest) per image, in order.
pub fn run(ctx: &Ctx, a: FetchArgs) -> Result<i32> {
    ctx.images.ensure_dirs()?;
    let progress = CliProgress::new(a.quiet);
    let opts = FetchOptions {
        platform: a.platform,
        progress: &progress,
        registry: ctx.registry.clone(),
        policy: PullPolicy::Update,
        trust: &ctx.trust,
    };
    let lock = StoreLock::shared(&ctx.images)?;
    for name in &a.images {
        let r = ImageReference::parse(name).map_err(anyhow::Error::msg)?;
        let fetched = fetch(&ctx.images, &r, &opts, &lock)?;
        println!("{}", fetched.record.id);
    }
    Ok(0)
}
