//! `rm` and `gc`.

use anyhow::Result;
use clap::Args;
use skiff_pods::{Pod, PodState};

use super::{parse_duration, Ctx};
use crate::pod::gc::{self, GcOptions};

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Exited or prepared pods.
    #[command(flatten)]
    pods: super::pod_ref::PodRefs,
}

/// Removes each pod; prints the UUID of each removed one. Running pods are
/// refused. Exits 125 if any pod could not be removed.
pub fn rm(ctx: &Ctx, a: RmArgs) -> Result<i32> {
    let mut failed = false;
    for id in &a.pods.ids()? {
        match rm_one(ctx, id) {
            Ok(uuid) => println!("{uuid}"),
            Err(e) => {
                eprintln!("skiff: {e:#}");
                failed = true;
            }
        }
    }
    skiff_pods::cgroup::remove_empty_parents();
    Ok(if failed { super::EXIT_SKIFF_ERROR } else { 0 })
}

fn rm_one(ctx: &Ctx, id: &str) -> Result<String> {
    let mut pod = Pod::find(&ctx.store, id)?;
    let uuid = pod.uuid().to_string();
    match pod.state() {
        PodState::Running => {
            anyhow::bail!("pod {uuid} is running; it can be removed once it has exited")
        }
        PodState::Preparing | PodState::Embryo | PodState::Deleting | PodState::ExitedDeleting => {
            anyhow::bail!("pod {uuid} is {}; try again later", pod.state())
        }
        _ => {}
    }
    pod.try_lock()?;
    gc::remove(&ctx.store, pod)?;
    Ok(uuid)
}

#[derive(Args, Debug)]
pub struct GcArgs {
    /// How long exited pods stay (as exited-garbage) before deletion; 0
    /// deletes them now.
    #[arg(long, default_value = "30m", value_parser = parse_duration, value_name = "DURATION")]
    grace_period: std::time::Duration,
    /// Remove prepared pods that were never run after this long.
    #[arg(long, default_value = "24h", value_parser = parse_duration, value_name = "DURATION")]
    expire_prepared: std::time::Duration,
}

/// Prints the UUID of each deleted pod; exits 125 if some pod could not be
/// collected (after collecting all the others).
pub fn gc(ctx: &Ctx, a: GcArgs) -> Result<i32> {
    let opts = GcOptions { grace_period: a.grace_period, expire_prepared: a.expire_prepared };
    let mut report = gc::gc(&ctx.store, &opts);
    skiff_pods::claims::sweep(&ctx.store);
    let ipam = ctx.store.root().join("net").join("ipam");
    let gc_net = crate::pod::flavor::skiff_dir()
        .map_err(|e| format!("{e:#}"))
        .and_then(|dir| crate::pod::network::gc_default_network(&ipam, &dir));
    if let Err(e) = gc_net {
        report.failed.push(e);
    }
    for uuid in &report.deleted {
        println!("{uuid}");
    }
    for e in &report.failed {
        eprintln!("skiff: gc: {e}");
    }
    Ok(if report.failed.is_empty() { 0 } else { super::EXIT_SKIFF_ERROR })
}
