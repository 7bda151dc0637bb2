//! `skiff cri`: becomes the CRI server (`skiff-cri`, installed beside
//! skiff), which drives this CLI with the same global options.

use std::os::unix::process::CommandExt;

use anyhow::{Context, Result};
use clap::Args;

use super::Ctx;

#[derive(Args, Debug)]
pub struct CriArgs {
    /// Where to listen: unix://PATH.
    #[arg(long, value_name = "unix://PATH", default_value = "unix:///run/skiff/cri.sock")]
    listen: String,
    /// The stage1 flavor of new sandboxes (it needs the sandbox and
    /// app-api features: ns).
    #[arg(long, value_name = "NAME|PATH")]
    stage1: Option<String>,
}

pub fn run(ctx: &Ctx, a: CriArgs) -> Result<i32> {
    let exe = std::env::current_exe().context("cannot find the skiff executable")?;
    let server = crate::pod::flavor::skiff_dir()?.join("skiff-cri");
    let mut cmd = std::process::Command::new(&server);
    cmd.arg("--dir").arg(ctx.store.root()).arg("--listen").arg(&a.listen).arg("--skiff").arg(&exe);
    if let Some(s) = &a.stage1 {
        cmd.arg("--stage1").arg(s);
    }
    // The store is the server's own --dir.
    for g in ctx.globals.iter().filter(|g| !g.starts_with("--dir=")) {
        cmd.arg(format!("--global={g}"));
    }
    let e = cmd.exec();
    Err(e).with_context(|| format!("cannot run {}", server.display()))
}
