//! `stop` and `cat-manifest`.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use skiff_pods::abi::feature;
use skiff_pods::layout::PID_FILE;
use skiff_pods::{Pod, PodState};

use super::status::{wait_exited, wait_for_file, Ready};
use super::{parse_duration, Ctx};
use crate::pod::handoff;

#[derive(Args, Debug)]
pub struct StopArgs {
    /// SIGKILL the pod at once instead of SIGTERM first.
    #[arg(long)]
    force: bool,
    /// How long the apps get to exit after SIGTERM before SIGKILL.
    /// [default: the pod's --stop-timeout, 10s unless set]
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    timeout: Option<Duration>,
    #[command(flatten)]
    pods: super::pod_ref::PodRefs,
}

fn stop_one(ctx: &Ctx, id: &str, force: bool, timeout: Option<Duration>) -> Result<String> {
    let pod = Pod::find(&ctx.store, id)?;
    let uuid = pod.uuid().to_string();
    match pod.state() {
        PodState::Running => {}
        s if s.has_exited() || s == PodState::Garbage => return Ok(uuid),
        s => bail!("pod {uuid} is {s}, not running"),
    }
    let manifest = pod.read_manifest()?;
    let timeout = timeout.unwrap_or(manifest.stop_timeout());
    let flavor = ctx.flavor(&manifest.flavor)?;
    let stop = |opts: &[&str]| handoff::call(&pod.path(), &uuid, &flavor, ctx.debug, "stop", opts);
    let deadline = Instant::now() + timeout;
    // A pod whose flavor has not yet written its pid (it is still starting
    // its first process) has nothing to signal: the flavor's `stop` would
    // find nothing, and the pod would run on until `--force` at the
    // deadline. So the pid is waited for first, within the same deadline.
    if let Ready::Never = wait_for_file(ctx, &uuid, PID_FILE, Some(deadline))? {
        return Ok(uuid); // it ended before it started
    }
    // A stop that fails because the pod ended (and was removed) meanwhile
    // has nothing left to do.
    let ended = || wait_exited(ctx, &uuid, Some(Instant::now())).unwrap_or(false);
    if !force {
        // The flavor asks every app to stop (SIGTERM).
        if let Err(e) = stop(&[]) {
            return if ended() { Ok(uuid) } else { Err(e) };
        }
        if wait_exited(ctx, &uuid, Some(deadline))? {
            return Ok(uuid);
        }
    }
    if let Err(e) = stop(&["--force"]) {
        return if ended() { Ok(uuid) } else { Err(e) };
    }
    if !wait_exited(ctx, &uuid, Some(Instant::now() + Duration::from_secs(10)))? {
        bail!("pod {uuid} did not exit after stop --force");
    }
    Ok(uuid)
}

/// Prints the UUID of each pod stopped (or already exited).
pub fn stop(ctx: &Ctx, a: StopArgs) -> Result<i32> {
    let mut failed = false;
    for id in &a.pods.ids()? {
        match stop_one(ctx, id, a.force, a.timeout) {
            Ok(u) => println!("{u}"),
            Err(e) => {
                eprintln!("skiff: {e:#}");
                failed = true;
            }
        }
    }
    Ok(if failed { super::EXIT_SKIFF_ERROR } else { 0 })
}

#[derive(Args, Debug)]
pub struct EnterArgs {
    /// The app whose root, user, environment and confinement the command
    /// gets (required when the pod has several).
    #[arg(long, value_name = "NAME")]
    app: Option<String>,
    /// A running pod.
    #[command(flatten)]
    pod: super::pod_ref::PodRef,
    /// Command and arguments [default: /bin/sh].
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

/// Replaces this process with the command inside the pod; exits with its
/// status (128+N for signal N).
pub fn enter(ctx: &Ctx, a: EnterArgs) -> Result<i32> {
    let pod = Pod::find(&ctx.store, &a.pod.id()?)?;
    let uuid = pod.uuid().to_string();
    if pod.state() != PodState::Running {
        bail!("pod {uuid} is {}, not running", pod.state());
    }
    let manifest = pod.read_manifest()?;
    let flavor = ctx.flavor(&manifest.flavor)?;
    flavor.require(feature::ENTER, "enter")?;
    let app = super::pod_ref::pick_app(&uuid, &manifest.apps, a.app.as_deref())?;
    let command = if a.command.is_empty() { vec!["/bin/sh".to_string()] } else { a.command };
    Err(handoff::exec_enter(&pod, &flavor, ctx.debug, &app, &command))
}

#[derive(Args, Debug)]
pub struct CatManifestArgs {
    /// Output format (the resolved manifest is JSON; accepted for scripts
    /// that pass it to every command).
    #[arg(long, value_enum, default_value_t = ManifestFormat::Json)]
    format: ManifestFormat,
    #[command(flatten)]
    pod: super::pod_ref::PodRef,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ManifestFormat {
    Json,
}

/// Prints the pod's resolved manifest (docs/manifest.md).
pub fn cat_manifest(ctx: &Ctx, a: CatManifestArgs) -> Result<i32> {
    let m = Pod::find(&ctx.store, &a.pod.id()?)?.read_manifest()?;
    match a.format {
        ManifestFormat::Json => println!("{}", String::from_utf8_lossy(&m.to_json())),
    }
    Ok(0)
}
