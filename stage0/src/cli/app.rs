//! `skiff app add|start|list`: apps added to a running pod sandbox
//! (`run --sandbox`) and started through its flavor's control socket
//! (feature `app-api`, docs/stage1-abi.md).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use skiff_pods::abi::feature;
use skiff_pods::app_api::{self, Reply, Request, APPS_LOCK, CONTROL_SOCKET};
use skiff_pods::logfile::LogDriver;
use skiff_pods::manifest::{MountSource, NewVolume, MANIFEST_FILE};
use skiff_pods::{App, Pod, PodManifest, PodState};

use super::app_options::LimitOptions;
use super::Ctx;
use crate::image::fetch::{fetch, FetchOptions, PullPolicy};
use crate::image::lock::StoreLock;
use crate::image::platform::Platform;
use crate::image::reference::ImageReference;
use crate::output::{self, Format, TableArgs};
use crate::pod::prepare::{self, AppContext};
use crate::pod::security::Insecure;

#[derive(Subcommand, Debug)]
pub enum AppCommand {
    /// Add an app to a running sandbox (it does not start yet): fetch its
    /// image, prepare its root, record it in the pod's manifest; print its
    /// name.
    Add(AddArgs),
    /// Start an app added to a running sandbox; its exit does not end the
    /// sandbox.
    Start(StartArgs),
    /// Stop an app of a running sandbox: SIGTERM, SIGKILL after the
    /// timeout; returns once it has exited.
    Stop(StopArgs),
    /// Remove an app of a running sandbox that does not run: its root,
    /// cgroup, log and place in the manifest.
    Rm(StartArgs),
    /// List a pod's apps: state, exit code, restarts.
    List(ListArgs),
    /// Change the limits of an app of a running sandbox: its cgroup at
    /// once if it runs, and its manifest (what it starts with).
    Update(UpdateArgs),
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Name, UUID or unique UUID prefix of a running sandbox.
    pod: String,
    /// The app's name.
    #[arg(long, value_name = "NAME")]
    app: String,
    #[command(flatten)]
    limits: LimitOptions,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Name, UUID or unique UUID prefix of a running sandbox.
    pod: String,
    /// The app to stop.
    #[arg(long, value_name = "NAME")]
    app: String,
    /// Between SIGTERM and SIGKILL [default: the pod's stop timeout].
    #[arg(long, value_parser = super::parse_duration, value_name = "DURATION")]
    timeout: Option<Duration>,
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// Name, UUID or unique UUID prefix of a running sandbox.
    pod: String,
    /// When to pull a docker:// image.
    #[arg(long, value_enum, default_value_t = PullPolicy::New)]
    pull_policy: PullPolicy,
    /// The app as for `skiff run`: its image, its app options (at least
    /// --app-name when another app has the image's name) and its arguments.
    #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true, value_name = "IMAGE [APP OPTIONS] [-- ARGS]")]
    rest: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Name, UUID or unique UUID prefix of a running sandbox.
    pod: String,
    /// The app's name.
    #[arg(long, value_name = "NAME")]
    app: String,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Name, UUID or unique UUID prefix of the pod.
    pod: String,
    #[command(flatten)]
    table: TableArgs,
}

pub fn run(ctx: &Ctx, cmd: AppCommand) -> Result<i32> {
    match cmd {
        AppCommand::Add(a) => add(ctx, a),
        AppCommand::Start(a) => start(ctx, a),
        AppCommand::Stop(a) => stop(ctx, a),
        AppCommand::Rm(a) => remove(ctx, a),
        AppCommand::List(a) => list(ctx, a),
        AppCommand::Update(a) => update(ctx, a),
    }
}

/// A running sandbox whose flavor has the app API, and its manifest.
fn sandbox(ctx: &Ctx, id: &str) -> Result<(Pod, PodManifest)> {
    let pod = Pod::find(&ctx.store, id)?;
    let manifest = pod.read_manifest()?;
    if !manifest.sandbox {
        bail!("pod {} is not a sandbox (made by skiff run --sandbox)", pod.uuid());
    }
    ctx.flavor(&manifest.flavor)?.require(feature::APP_API, "skiff app")?;
    if pod.state() != PodState::Running {
        bail!("pod {} is {}, not running", pod.uuid(), pod.state());
    }
    if manifest.user_namespace.is_some() {
        bail!(
            "pod {}: apps cannot be added to a sandbox with a user namespace of its own (--private-users) yet",
            pod.uuid()
        );
    }
    Ok((pod, manifest))
}

fn add(ctx: &Ctx, a: AddArgs) -> Result<i32> {
    let (pod, _) = sandbox(ctx, &a.pod)?;
    let [(image, overrides)]: [_; 1] = super::app_options::parse_apps(&a.rest)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("app add takes one app (no ---)"))?;
    let _lock = lock_apps(&pod)?;
    let mut manifest = pod.read_manifest()?;
    ctx.images.ensure_dirs()?;
    let held = StoreLock::shared(&ctx.images)?;
    let progress = super::progress::CliProgress::terminal_only();
    let opts = FetchOptions {
        platform: Platform::default(),
        progress: &progress,
        registry: ctx.registry.clone(),
        policy: a.pull_policy,
        trust: &ctx.trust,
    };
    let reference = ImageReference::parse(&image).map_err(anyhow::Error::msg)?;
    let fetched = fetch(&ctx.images, &reference, &opts, &held)?;
    let flavor = ctx.flavor(&manifest.flavor)?;
    let cx = AppContext {
        images: &ctx.images,
        hostname: &manifest.hostname,
        pod_env: &[],
        insecure: Insecure { seccomp: false, paths: !manifest.masked_paths },
        flavor: &flavor.description,
    };
    let mut app = prepare::resolve_app(&fetched.record, &fetched.name, &overrides, &cx)?;
    // A volume new to the pod takes the image's owner and mode at its
    // target, as a pod's own apps' volumes do.
    // (An empty one no app mounts was left by an add that was killed.)
    let used =
        |n: &str| manifest.apps.iter().flat_map(|a| &a.mounts).any(|m| m.source == MountSource::Volume(n.into()));
    let new = |n: &str| {
        let dir = pod.path().join("volumes").join(n);
        std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none() && !used(n))
    };
    let mut fresh: Vec<_> = app.mounts.iter().map(|m| matches!(&m.source, MountSource::Volume(n) if new(n))).collect();
    crate::pod::volume::assign_new_volumes(std::slice::from_mut(&mut app)).map_err(anyhow::Error::msg)?;
    // (A volume the pod has already keeps its owner and mode unless this
    // app asks for others.)
    for (m, fresh) in app.mounts.iter_mut().zip(fresh.drain(..)) {
        if !fresh && m.new_volume == Some(NewVolume::default()) {
            m.new_volume = None;
        }
    }
    if let Some(m) = app.mounts.iter().find(|m| m.idmap || m.new_volume.is_some_and(|v| v.tmpfs.is_some())) {
        bail!("volume {}: idmapped and memory volumes of added apps are not supported yet", m.target);
    }
    if app.init {
        bail!("app {}: an added app cannot be an init app (--init)", app.name);
    }
    if app.log_path.is_some() {
        flavor.require(feature::LOG_PATH, "--log-path")?;
        if manifest.log.driver != LogDriver::File {
            bail!("--log-path needs the log driver file (pod {}'s is none)", pod.uuid());
        }
    }
    if manifest.apps.iter().any(|x| x.name == app.name) {
        bail!("pod {} has an app {} already: name this one with --app-name", pod.uuid(), app.name);
    }
    let name = app.name.clone();
    let mut made = Vec::new();
    let recorded = make_app_dirs(&pod, &app, &mut made).and_then(|()| {
        manifest.apps.push(app);
        skiff_rt::failpoint!("app.add").with_context(|| format!("cannot add app {name}"))?;
        skiff_pods::atomic::write_atomic(&pod.path(), MANIFEST_FILE, &manifest.to_json())
            .with_context(|| format!("cannot write the manifest of pod {}", pod.uuid()))
    });
    if let Err(e) = recorded {
        // An app the manifest does not have leaves nothing behind.
        for dir in made.iter().rev() {
            let _ = std::fs::remove_dir_all(dir);
        }
        return Err(e);
    }
    println!("{name}");
    Ok(0)
}

/// The app's directory and its new volumes' directories, each one made
/// here pushed to `made`.
fn make_app_dirs(pod: &Pod, app: &App, made: &mut Vec<PathBuf>) -> Result<()> {
    let volumes = app.mounts.iter().filter_map(|m| match &m.source {
        MountSource::Volume(n) => Some(pod.path().join("volumes").join(n)),
        _ => None,
    });
    let dir = pod.path().join("apps").join(&app.name);
    for d in volumes.chain([dir.join("upper"), dir.join("work")]) {
        if !d.exists() {
            std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
            made.push(if d.starts_with(&dir) { dir.clone() } else { d });
        }
    }
    Ok(())
}

/// Sends `req` to the sandbox's flavor; its reply, an error if it is one.
fn ask(pod: &Pod, req: &Request) -> Result<Reply> {
    let path = pod.path().join(CONTROL_SOCKET);
    let conn = UnixStream::connect(&path)
        .with_context(|| format!("cannot reach the sandbox's flavor at {}", path.display()))?;
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    (&conn).write_all(app_api::to_line(req).as_bytes())?;
    let mut line = String::new();
    BufReader::new(&conn).read_line(&mut line).context("no answer from the sandbox's flavor")?;
    if line.is_empty() {
        bail!("the sandbox's flavor ended without an answer (skiff status {} tells how the pod ended)", pod.uuid());
    }
    let reply: Reply =
        app_api::from_line(&line).map_err(|e| anyhow::anyhow!("the sandbox's flavor answered {line:?}: {e}"))?;
    match reply.error {
        Some(e) => bail!("{e}"),
        None => Ok(reply),
    }
}

/// An error naming the pod unless its manifest has the app `app`.
fn known(pod: &Pod, manifest: &PodManifest, app: &str) -> Result<()> {
    if !manifest.apps.iter().any(|x| x.name == app) {
        bail!("pod {} has no app {app:?}: add it with skiff app add", pod.uuid());
    }
    Ok(())
}

fn start(ctx: &Ctx, a: StartArgs) -> Result<i32> {
    let (pod, manifest) = sandbox(ctx, &a.pod)?;
    known(&pod, &manifest, &a.app)?;
    ask(&pod, &Request::Start { app: a.app.clone() }).with_context(|| format!("cannot start app {}", a.app))?;
    Ok(0)
}

fn stop(ctx: &Ctx, a: StopArgs) -> Result<i32> {
    let (pod, manifest) = sandbox(ctx, &a.pod)?;
    known(&pod, &manifest, &a.app)?;
    let timeout = a.timeout.unwrap_or_else(|| manifest.stop_timeout());
    let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    ask(&pod, &Request::Stop { app: a.app.clone(), timeout_ms })?;
    // Its exit is recorded once SIGTERM, or SIGKILL after the timeout,
    // ended it.
    let deadline = std::time::Instant::now() + timeout + Duration::from_secs(5);
    while skiff_pods::app_status::read_exit(&pod, &a.app).is_none() {
        if std::time::Instant::now() > deadline {
            bail!("app {} did not end within {} after SIGKILL", a.app, humantime::format_duration(timeout));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(0)
}

fn remove(ctx: &Ctx, a: StartArgs) -> Result<i32> {
    let (pod, _) = sandbox(ctx, &a.pod)?;
    let _lock = lock_apps(&pod)?;
    let mut manifest = pod.read_manifest()?;
    known(&pod, &manifest, &a.app)?;
    ask(&pod, &Request::Remove { app: a.app.clone() })?;
    // Killed or failed here, the app is detached but still listed: the
    // next `app rm` finds nothing to detach and finishes.
    skiff_rt::failpoint!("app.remove").with_context(|| format!("cannot remove app {}", a.app))?;
    manifest.apps.retain(|x| x.name != a.app);
    skiff_pods::atomic::write_atomic(&pod.path(), MANIFEST_FILE, &manifest.to_json())
        .with_context(|| format!("cannot write the manifest of pod {}", pod.uuid()))?;
    let dir = pod.path().join("apps").join(&a.app);
    std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    Ok(0)
}

fn update(ctx: &Ctx, a: UpdateArgs) -> Result<i32> {
    let (pod, _) = sandbox(ctx, &a.pod)?;
    let (given, oom_score_adj) = a.limits.resolve()?;
    let _lock = lock_apps(&pod)?;
    let mut manifest = pod.read_manifest()?;
    known(&pod, &manifest, &a.app)?;
    let cgroup = manifest.cgroup().for_app(true, &a.app);
    let uuid = manifest.uuid.clone();
    let app = manifest
        .apps
        .iter_mut()
        .find(|x| x.name == a.app)
        .with_context(|| format!("pod {uuid} has no app {:?}", a.app))?;
    let r = &mut app.resources;
    let merge = |old: &mut Option<u64>, new: Option<u64>| *old = new.or(*old);
    merge(&mut r.memory_bytes, given.memory_bytes);
    merge(&mut r.memory_reservation_bytes, given.memory_reservation_bytes);
    merge(&mut r.cpu_millis, given.cpu_millis);
    merge(&mut r.cpu_shares, given.cpu_shares);
    merge(&mut r.pids, given.pids);
    super::app_options::check_reservation(r)?;
    app.oom_score_adj = oom_score_adj.or(app.oom_score_adj);
    // A running app's cgroup and processes change now; one not started
    // yet gets the manifest's limits when it starts.
    let started = pod.path().join("apps").join(&a.app).join(app_api::STARTED_FILE).exists();
    if started && skiff_pods::app_status::read_exit(&pod, &a.app).is_none() {
        cgroup.apply(&given).with_context(|| format!("app {}: cannot change its limits", a.app))?;
        if let Some(adj) = oom_score_adj {
            for pid in cgroup.procs() {
                // A process may have ended since the list was read.
                let _ = std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string());
            }
        }
    }
    skiff_pods::atomic::write_atomic(&pod.path(), MANIFEST_FILE, &manifest.to_json())
        .with_context(|| format!("cannot write the manifest of pod {}", pod.uuid()))?;
    Ok(0)
}

/// The sandbox's `apps.lock`, held exclusively (the pod's own lock is
/// its flavor's while it runs).
fn lock_apps(pod: &Pod) -> Result<std::fs::File> {
    let path = pod.path().join(APPS_LOCK);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .with_context(|| format!("cannot lock {}", path.display()))?;
    Ok(lock)
}

fn list(ctx: &Ctx, a: ListArgs) -> Result<i32> {
    let pod = Pod::find(&ctx.store, &a.pod)?;
    let info = super::pod_info::PodInfo::of(&pod);
    let running = info.state == PodState::Running.to_string();
    let sandbox = pod.read_manifest().is_ok_and(|m| m.sandbox);
    // A sandbox's apps run once started (their flavor records when); a
    // pod's own apps run with it, once it has started.
    let started_at = |name: &str| match sandbox {
        true => std::fs::read_to_string(pod.path().join("apps").join(name).join(app_api::STARTED_FILE))
            .ok()
            .map(|t| t.trim().to_string()),
        false => info.started_at.clone(),
    };
    let rows: Vec<serde_json::Value> = info
        .apps
        .iter()
        .map(|app| {
            // One that ran and has no exit recorded ended with its pod
            // (a supervisor killed before it could record it).
            let started = started_at(&app.name);
            let state = match (app.exit_code, started.is_some(), running) {
                (Some(_), _, _) | (None, true, false) => "exited",
                (None, true, true) => "running",
                (None, false, _) => "created",
            };
            serde_json::json!({"name": app.name, "state": state, "image": app.image_name, "image_id": app.image_id,
                "started_at": started, "exit_code": app.exit_code, "signal": app.signal, "exited_at": app.exited_at,
                "restarts": app.restarts})
        })
        .collect();
    if a.table.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    let cell = |v: &serde_json::Value| {
        v.as_str().map_or_else(|| if v.is_null() { "-".to_string() } else { v.to_string() }, str::to_string)
    };
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| ["name", "state", "exit_code", "restarts", "image"].iter().map(|k| cell(&r[k])).collect())
        .collect();
    output::table(&["NAME", "STATE", "EXIT", "RESTARTS", "IMAGE"], &table, a.table.no_legend)?;
    Ok(0)
}
