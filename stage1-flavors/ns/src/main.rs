//! `skiff-stage1-ns`: the default stage1 flavor. Runs a pod in fresh mount,
//! PID, UTS and IPC namespaces (the network namespace stays the host's) on
//! an overlayfs root, with skiff's init (stage2) as PID 1.
//!
//! Invoked by stage0 per `docs/stage1-abi.md`:
//! `skiff-stage1-ns run [--debug] UUID`, cwd = pod directory,
//! `SKIFF_LOCK_FD` = the locked pod directory.

mod console;
mod dev;
mod enter;
mod rootfs;
mod supervisor;
mod volumes;

use std::os::fd::{FromRawFd, OwnedFd};

use skiff_pods::abi::{ABI_ENV, ABI_VERSION, LOCK_FD_ENV};
use skiff_pods::manifest::MANIFEST_FILE;
use skiff_pods::PodManifest;
use skiff_stage2::exit_code::SKIFF_ERROR;

enum Entrypoint {
    Run,
    Enter(enter::EnterArgs),
}

struct Args {
    debug: bool,
    stdio: supervisor::Stdio,
    uuid: String,
    entrypoint: Entrypoint,
}

const USAGE: &str =
    "usage: skiff-stage1-ns run [--debug] [--tty|--interactive] UUID | enter [--debug] --pid PID --app NAME UUID -- CMD [ARG...]";

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let entry = it.next().ok_or_else(|| format!("missing entrypoint ({USAGE})"))?;
    if entry != "run" && entry != "enter" {
        return Err(format!("unknown entrypoint {entry:?} (this flavor has: run, enter)"));
    }
    let (mut debug, mut uuid, mut pid, mut app, mut argv) = (false, None, None, None, Vec::new());
    let mut stdio = supervisor::Stdio::Inherit;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--debug" => debug = true,
            "--tty" if entry == "run" && stdio == supervisor::Stdio::Inherit => stdio = supervisor::Stdio::Tty,
            "--tty" if entry == "run" => {}
            "--interactive" if entry == "run" => stdio = supervisor::Stdio::Interactive,
            "--pid" if entry == "enter" => pid = it.next().and_then(|p| p.parse::<i32>().ok()),
            "--app" if entry == "enter" => app = it.next(),
            "--" if entry == "enter" => {
                argv = it.by_ref().collect();
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s:?} ({USAGE})")),
            s => uuid = Some(s.to_string()),
        }
    }
    let uuid = uuid.ok_or_else(|| format!("missing pod UUID ({USAGE})"))?;
    let entrypoint = if entry == "run" {
        Entrypoint::Run
    } else {
        let pid = pid.ok_or_else(|| format!("enter needs --pid ({USAGE})"))?;
        let app = app.ok_or_else(|| format!("enter needs --app ({USAGE})"))?;
        if argv.is_empty() {
            return Err(format!("enter needs a command after -- ({USAGE})"));
        }
        Entrypoint::Enter(enter::EnterArgs { pid, app, argv })
    };
    Ok(Args { debug, stdio, uuid, entrypoint })
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
    let data = std::fs::read(MANIFEST_FILE).map_err(|e| format!("cannot read {MANIFEST_FILE}: {e}"))?;
    let manifest = PodManifest::from_json(&data).map_err(|e| e.to_string())?;
    if manifest.uuid != args.uuid {
        return Err(format!("pod directory holds pod {}, not {}", manifest.uuid, args.uuid));
    }
    if let Entrypoint::Enter(e) = &args.entrypoint {
        return enter::enter(&manifest, e);
    }
    let lock = lock_fd()?;
    let pod_dir = std::env::current_dir().map_err(|e| format!("cannot find the pod directory: {e}"))?;
    supervisor::run(&manifest, &pod_dir, lock, args.debug, args.stdio)
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
