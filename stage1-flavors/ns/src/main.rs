//! `skiff-stage1-ns`: the default stage1 flavor. Runs a pod in fresh mount,
//! PID, UTS and IPC namespaces (the network namespace stays the host's) on
//! an overlayfs root, with skiff's init (stage2) as PID 1.
//!
//! Invoked by stage0 per `docs/stage1-abi.md`:
//! `skiff-stage1-ns run [--debug] UUID`, cwd = pod directory,
//! `SKIFF_LOCK_FD` = the locked pod directory.

mod dev;
mod rootfs;
mod supervisor;
mod volumes;

use std::os::fd::{FromRawFd, OwnedFd};

use skiff_pods::abi::{ABI_ENV, ABI_VERSION, LOCK_FD_ENV};
use skiff_pods::manifest::MANIFEST_FILE;
use skiff_pods::PodManifest;
use skiff_stage2::exit_code::SKIFF_ERROR;

struct Args {
    debug: bool,
    uuid: String,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    match it.next().as_deref() {
        Some("run") => {}
        Some(other) => return Err(format!("unknown entrypoint {other:?} (this flavor has: run)")),
        None => return Err("missing entrypoint (usage: skiff-stage1-ns run [--debug] UUID)".into()),
    }
    let mut debug = false;
    let mut uuid = None;
    for a in it {
        match a.as_str() {
            "--debug" => debug = true,
            s if s.starts_with("--") => return Err(format!("unknown option {s:?}")),
            s => uuid = Some(s.to_string()),
        }
    }
    let uuid = uuid.ok_or("missing pod UUID")?;
    Ok(Args { debug, uuid })
}

fn lock_fd() -> Result<OwnedFd, String> {
    let raw: i32 = std::env::var(LOCK_FD_ENV)
        .map_err(|_| format!("{LOCK_FD_ENV} is not set: stage1 must be started by skiff"))?
        .parse()
        .map_err(|_| format!("{LOCK_FD_ENV} is not a file descriptor number"))?;
    // The fd must really be open before this process takes ownership of it.
    if std::fs::symlink_metadata(format!("/proc/self/fd/{raw}")).is_err() {
        return Err(format!("{LOCK_FD_ENV}={raw} is not an open file descriptor"));
    }
    // SAFETY: the fd is open (checked above) and stage0 handed it to this
    // process for it alone to own (see docs/stage1-abi.md).
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn start() -> Result<i32, String> {
    let args = parse_args()?;
    if let Ok(v) = std::env::var(ABI_ENV) {
        if v != ABI_VERSION.to_string() {
            return Err(format!("stage0 speaks stage1 ABI {v}, this flavor speaks {ABI_VERSION}"));
        }
    }
    let lock = lock_fd()?;
    let data = std::fs::read(MANIFEST_FILE).map_err(|e| format!("cannot read {MANIFEST_FILE}: {e}"))?;
    let manifest = PodManifest::from_json(&data).map_err(|e| e.to_string())?;
    if manifest.uuid != args.uuid {
        return Err(format!("pod directory holds pod {}, not {}", manifest.uuid, args.uuid));
    }
    if manifest.apps.len() != 1 {
        return Err(format!("the ns flavor runs exactly one app per pod, the manifest has {}", manifest.apps.len()));
    }
    let pod_dir = std::env::current_dir().map_err(|e| format!("cannot find the pod directory: {e}"))?;
    supervisor::run(&manifest, &pod_dir, lock, args.debug)
}

fn main() {
    let code = match start() {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("skiff: stage1 ns: {msg}");
            SKIFF_ERROR
        }
    };
    std::process::exit(code);
}
