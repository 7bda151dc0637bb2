use anyhow::Result;
use clap::Args;

use super::Ctx;
use crate::image::fetch::fetch;
use crate::image::reference::ImageReference;

#[derive(Args, Debug)]
pub struct FetchArgs {
    /// Images to fetch: oci:PATH[:TAG] (an OCI image layout).
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
}

/// Prints one image ID (the config digest) per image, in order.
pub fn run(ctx: &Ctx, a: FetchArgs) -> Result<i32> {
    ctx.images.ensure_dirs()?;
    for name in &a.images {
        let r = ImageReference::parse(name).map_err(anyhow::Error::msg)?;
        let fetched = fetch(&ctx.images, &r)?;
        println!("{}", fetched.record.id);
    }
    Ok(0)
}
