//! `skiff status`: one pod's state, apps and exits; with `--wait` or
//! `--wait-ready` it first waits for the pod to appear and reach that point.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use skiff_pods::layout::READY_FILE;
use skiff_pods::{Pod, PodState};

use super::pod_info::PodInfo;
use super::{parse_duration, Ctx};
use crate::output::{self, Format};

/// Exit code of `status --wait=DURATION` when the pod is still running.
pub const EXIT_WAIT_TIMEOUT: i32 = 124;

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Wait until the pod has exited, at most DURATION (e.g. 30s, 5m) if
    /// given; exits 124 if it is still running then.
    #[arg(long, value_name = "DURATION", num_args = 0..=1, require_equals = true, default_missing_value = "forever")]
    wait: Option<String>,
    /// Wait until every app of the pod has been started, at most DURATION
    /// if given; exits 124 if they have not by then, 125 if the pod ended
    /// without starting them all.
    #[arg(
        long,
        value_name = "DURATION",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "forever",
        conflicts_with = "wait"
    )]
    wait_ready: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    pod: super::pod_ref::PodRef,
}

/// `--wait[=DURATION]`: None (no wait), Some(None) (no deadline), or the
/// deadline.
fn deadline(arg: Option<&str>) -> Result<Option<Option<Instant>>> {
    Ok(match arg {
        None => None,
        Some("forever") => Some(None),
        Some(d) => Some(Some(Instant::now() + parse_duration(d).map_err(anyhow::Error::msg)?)),
    })
}

pub fn run(ctx: &Ctx, a: StatusArgs) -> Result<i32> {
    let exited_by = deadline(a.wait.as_deref())?;
    let ready_by = deadline(a.wait_ready.as_deref())?;
    // A name is resolved once: it may pass to another pod while we wait.
    // Waiting for the pod starts with waiting for it to exist.
    let uuid = match a.pod.find_waiting(&ctx.store, exited_by.or(ready_by)) {
        Ok(pod) => pod.uuid().to_string(),
        Err(e) if e.downcast_ref::<super::pod_ref::NotYet>().is_some() => {
            eprintln!("skiff: {e:#}");
            return Ok(EXIT_WAIT_TIMEOUT);
        }
        Err(e) => return Err(e),
    };
    let mut code = 0;
    if let Some(deadline) = exited_by {
        if !wait_exited(ctx, &uuid, deadline)? {
            code = EXIT_WAIT_TIMEOUT;
        }
    }
    if let Some(deadline) = ready_by {
        code = match wait_ready(ctx, &uuid, deadline)? {
            Ready::Yes => 0,
            Ready::TimedOut => EXIT_WAIT_TIMEOUT,
            Ready::Never => {
                eprintln!("skiff: pod {uuid} ended without starting all its apps");
                super::EXIT_SKIFF_ERROR
            }
        };
    }
    let info = PodInfo::of(&Pod::find(&ctx.store, &uuid)?);
    if a.format == Format::Json {
        output::json(&serde_json::to_value(&info)?)?;
        return Ok(code);
    }
    println!("state={}", info.state);
    println!("created={}", info.created_at.as_deref().unwrap_or(""));
    println!("started={}", info.started_at.as_deref().unwrap_or(""));
    println!("net={}", info.net);
    for ip in &info.ips {
        println!("ip={ip}");
    }
    for n in &info.networks {
        println!("network-{}={}", n.name, n.ips.join(","));
    }
    if let Some(pid) = info.pid {
        println!("pid={pid}");
    }
    for app in &info.apps {
        if let Some(c) = app.exit_code {
            println!("app-{}={c}", app.name);
        }
    }
    Ok(code)
}

pub(super) enum Ready {
    Yes,
    TimedOut,
    Never,
}

/// Waits until the pod's flavor has recorded that every app was started
/// (`ready`).
fn wait_ready(ctx: &Ctx, uuid: &str, deadline: Option<Instant>) -> Result<Ready> {
    wait_for_file(ctx, uuid, READY_FILE, deadline)
}

/// Waits until the pod's flavor has written `name` into the pod directory
/// (Never: the pod ended without it), polling every 10 ms: it is one
/// file's appearance, and the wait is short.
pub(super) fn wait_for_file(ctx: &Ctx, uuid: &str, name: &str, deadline: Option<Instant>) -> Result<Ready> {
    loop {
        let pod = Pod::find(&ctx.store, uuid)?;
        if pod.path().join(name).exists() {
            return Ok(Ready::Yes);
        }
        let state = pod.state();
        if !matches!(state, PodState::Embryo | PodState::Preparing | PodState::Prepared | PodState::Running) {
            // It may have been written just before the pod ended.
            return Ok(if pod.path().join(name).exists() { Ready::Yes } else { Ready::Never });
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(Ready::TimedOut);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until the pod has exited; false if the deadline passed first.
/// A running pod is waited for on its lock (no polling); a prepared one is
/// re-checked every 100 ms until someone runs it.
pub(super) fn wait_exited(ctx: &Ctx, uuid: &str, deadline: Option<Instant>) -> Result<bool> {
    loop {
        let pod = match Pod::find(&ctx.store, uuid) {
            Ok(p) => p,
            // Removed meanwhile (a concurrent `rm` or gc): only a pod that
            // is over can be.
            Err(skiff_pods::PodError::NotFound(_)) => return Ok(true),
            Err(e) => return Err(e.into()),
        };
        let state = pod.state();
        if state.has_exited() || matches!(state, PodState::Garbage | PodState::Deleting | PodState::AbortedPrepare) {
            return Ok(true);
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left == Some(Duration::ZERO) {
            return Ok(false);
        }
        if state == PodState::Running {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(pod.wait_unlocked());
            });
            let got = match left {
                Some(l) => rx.recv_timeout(l).ok(),
                None => rx.recv().ok(),
            };
            match got {
                Some(Ok(())) => {}
                // Its directory removed under the wait: it is over.
                Some(Err(_)) if matches!(Pod::find(&ctx.store, uuid), Err(skiff_pods::PodError::NotFound(_))) => {
                    return Ok(true)
                }
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(false),
            }
        } else {
            std::thread::sleep(left.map_or(Duration::from_millis(100), |l| l.min(Duration::from_millis(100))));
        }
    }
}
