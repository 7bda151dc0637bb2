use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
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
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    pod: super::pod_ref::PodRef,
}

pub fn run(ctx: &Ctx, a: StatusArgs) -> Result<i32> {
    let deadline = match a.wait.as_deref() {
        None => None,
        Some("forever") => Some(None),
        Some(d) => Some(Some(Instant::now() + parse_duration(d).map_err(anyhow::Error::msg)?)),
    };
    // A name is resolved once: it may pass to another pod while we wait.
    let uuid = Pod::find(&ctx.store, &a.pod.id()?)?.uuid().to_string();
    let mut code = 0;
    if let Some(deadline) = deadline {
        if !wait_exited(ctx, &uuid, deadline)? {
            code = EXIT_WAIT_TIMEOUT;
        }
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

/// Waits until the pod has exited; false if the deadline passed first.
/// A running pod is waited for on its lock (no polling); a prepared one is
/// re-checked every 100 ms until someone runs it.
pub(super) fn wait_exited(ctx: &Ctx, uuid: &str, deadline: Option<Instant>) -> Result<bool> {
    loop {
        let pod = Pod::find(&ctx.store, uuid)?;
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
                Some(r) => r?,
                None => return Ok(false),
            }
        } else {
            std::thread::sleep(left.map_or(Duration::from_millis(100), |l| l.min(Duration::from_millis(100))));
        }
    }
}
