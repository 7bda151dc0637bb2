//! The entrypoints stage0 invokes (docs/stage1-abi.md), parsed once for
//! every flavor, and the flow around them: ABI check, manifest, lock, pid.

use std::os::fd::{FromRawFd, OwnedFd};

use skiff_pods::abi::{Description, ABI_ENV, ABI_VERSION, LOCK_FD_ENV};
use skiff_pods::layout::PID_FILE;
use skiff_pods::manifest::MANIFEST_FILE;
use skiff_pods::PodManifest;
use skiff_rt::error::{Context, Error, Result};
use skiff_rt::exit_code::SKIFF_ERROR;

/// How the pod's app gets its stdio (`run` options).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stdio {
    /// The caller's stdin, stdout and stderr, as they are.
    Inherit,
    /// A pseudo-terminal, relayed to the caller's stdout (`--tty`).
    Tty,
    /// A pseudo-terminal, relayed both ways (`--interactive`).
    Interactive,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Entrypoint {
    /// `remove`: `--rm`, delete the pod directory once the pod is over;
    /// `notify_app`: `--notify-app`, relay the apps' own notifications.
    Run {
        stdio: Stdio,
        remove: bool,
        notify_app: bool,
    },
    Enter {
        app: String,
        argv: Vec<String>,
    },
    Stop {
        force: bool,
    },
    Gc,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Invocation {
    pub debug: bool,
    pub uuid: String,
    pub entrypoint: Entrypoint,
}

/// A pod being started by `run`: its manifest, directory (the cwd) and the
/// inherited lock the flavor must hold until the pod is over.
pub struct RunPod {
    pub manifest: PodManifest,
    pub dir: std::path::PathBuf,
    pub lock: OwnedFd,
    /// `--notify-app` (see [`crate::notify`]).
    pub notify_app: bool,
}

/// What a flavor implements. Each returns the flavor's exit status or a
/// one-line error (exit 125).
pub trait Flavor {
    fn description(&self) -> Description;
    fn run(&self, pod: RunPod, stdio: Stdio, debug: bool) -> Result<i32>;
    /// `pid` is what the flavor wrote to `pid`, still alive.
    fn enter(&self, manifest: &PodManifest, pid: i32, app: &str, argv: &[String]) -> Result<i32>;
    /// Asks the pod to stop (`force`: at once). Returns without waiting.
    fn stop(&self, manifest: &PodManifest, pid: i32, force: bool) -> Result<()>;
    /// Frees what the flavor keeps outside the pod directory, for a pod
    /// that is over (its lock is held by stage0's gc).
    fn gc(&self, manifest: &PodManifest) -> Result<()>;
}

fn usage(name: &str) -> String {
    format!(
        "usage: skiff-stage1-{name} --describe | run [--debug] [--tty|--interactive] [--rm] [--notify-app] UUID | \
         enter [--debug] --app NAME UUID -- CMD [ARG...] | stop [--debug] [--force] UUID | gc [--debug] UUID"
    )
}

/// Parses argv (without argv[0]); `None` for `--describe`.
pub fn parse(d: &Description, mut it: impl Iterator<Item = String>) -> Result<Option<Invocation>> {
    let u = usage(&d.name);
    let entry = it.next().ok_or_else(|| format!("missing entrypoint ({u})"))?;
    if entry == "--describe" {
        return Ok(None);
    }
    if !matches!(entry.as_str(), "run" | "enter" | "stop" | "gc") {
        return Err(Error::refused(format!("unknown entrypoint {entry:?} ({u})")));
    }
    let (mut debug, mut uuid, mut app, mut argv, mut force, mut remove) = (false, None, None, Vec::new(), false, false);
    let mut stdio = Stdio::Inherit;
    let terminal = d.supports(skiff_pods::abi::feature::TERMINAL);
    let removes = d.supports(skiff_pods::abi::feature::REMOVE_ON_EXIT);
    let notifies = d.supports(skiff_pods::abi::feature::NOTIFY);
    let mut notify_app = false;
    while let Some(a) = it.next() {
        match (entry.as_str(), a.as_str()) {
            (_, "--debug") => debug = true,
            ("run", "--tty") if terminal && stdio == Stdio::Inherit => stdio = Stdio::Tty,
            ("run", "--tty") if terminal => {}
            ("run", "--interactive") if terminal => stdio = Stdio::Interactive,
            ("run", "--rm") if removes => remove = true,
            ("run", "--notify-app") if notifies => notify_app = true,
            ("enter", "--app") => app = it.next(),
            ("enter", "--") => argv = it.by_ref().collect(),
            ("stop", "--force") => force = true,
            (_, s) if s.starts_with('-') => {
                return Err(Error::refused(format!("unknown option {s:?} for {entry} ({u})")))
            }
            (_, s) if uuid.is_none() => uuid = Some(s.to_string()),
            (_, s) => return Err(Error::refused(format!("unexpected argument {s:?} ({u})"))),
        }
    }
    let uuid = uuid.ok_or_else(|| format!("missing pod UUID ({u})"))?;
    let entrypoint = match entry.as_str() {
        "run" => Entrypoint::Run { stdio, remove, notify_app },
        "enter" => {
            let app = app.ok_or_else(|| format!("enter needs --app ({u})"))?;
            if argv.is_empty() {
                return Err(Error::refused(format!("enter needs a command after -- ({u})")));
            }
            Entrypoint::Enter { app, argv }
        }
        "stop" => Entrypoint::Stop { force },
        _ => Entrypoint::Gc,
    };
    Ok(Some(Invocation { debug, uuid, entrypoint }))
}

fn lock_fd() -> Result<OwnedFd> {
    let raw: i32 = std::env::var(LOCK_FD_ENV)
        .map_err(|_| format!("{LOCK_FD_ENV} is not set: stage1 must be started by skiff"))?
        .parse()
        .map_err(|_| format!("{LOCK_FD_ENV} is not a file descriptor number"))?;
    // The fd must really be open before this process takes ownership of it.
    if !crate::fds::is_open(raw) {
        return Err(Error::refused(format!("{LOCK_FD_ENV}={raw} is not an open file descriptor")));
    }
    // SAFETY: the fd is open (checked above) and stage0 handed it to this
    // process for it alone to own (see docs/stage1-abi.md).
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// The pod's first process as this flavor wrote it to `pid`, if it is
/// still alive.
pub fn live_pid() -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(PID_FILE).ok()?.trim().parse().ok()?;
    (pid > 0 && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()).then_some(pid)
}

fn start(flavor: &dyn Flavor) -> Result<i32> {
    let d = flavor.description();
    let Some(inv) = parse(&d, skiff_rt::process_start::args().into_iter().skip(1))? else {
        println!("{}", d.to_json());
        return Ok(0);
    };
    if let Ok(v) = std::env::var(ABI_ENV) {
        if v != ABI_VERSION.to_string() {
            return Err(Error::refused(format!("stage0 speaks stage1 ABI {v}, this flavor speaks {ABI_VERSION}")));
        }
    }
    let data = std::fs::read(MANIFEST_FILE).with_context(|| format!("cannot read {MANIFEST_FILE}"))?;
    let manifest = PodManifest::from_json(&data).map_err(Error::other)?;
    if manifest.uuid != inv.uuid {
        return Err(Error::refused(format!("pod directory holds pod {}, not {}", manifest.uuid, inv.uuid)));
    }
    match inv.entrypoint {
        Entrypoint::Run { stdio, remove, notify_app } => {
            let lock = lock_fd()?;
            let dir = std::env::current_dir().context("cannot find the pod directory")?;
            // Flavors may move into a mount namespace of their own, where
            // the pod's mounts are still there after the pod: the directory
            // is removed from this one.
            // Kept for --rm only: a plain run does not copy its manifest.
            let host_mnt = match remove {
                true => {
                    Some((std::fs::File::open("/proc/self/ns/mnt").context("--rm")?, manifest.clone(), dir.clone()))
                }
                false => None,
            };
            let pod = RunPod { manifest, dir, lock, notify_app };
            let status = flavor.run(pod, stdio, inv.debug);
            if let Some((mnt, manifest, dir)) = host_mnt {
                let removed = nix::sched::setns(mnt, nix::sched::CloneFlags::CLONE_NEWNS)
                    .context("cannot return to the caller's mount namespace")
                    .and_then(|()| remove_pod(flavor, &manifest, &dir));
                if let Err(e) = removed {
                    eprintln!("skiff: stage1 {}: pod {} is left for gc: {e}", flavor.description().name, manifest.uuid);
                }
            }
            status
        }
        Entrypoint::Enter { app, argv } => {
            let pid = live_pid().ok_or_else(|| format!("pod {} is not running", manifest.uuid))?;
            flavor.enter(&manifest, pid, &app, &argv)
        }
        Entrypoint::Stop { force } => match live_pid() {
            Some(pid) => flavor.stop(&manifest, pid, force).map(|()| 0),
            None => Ok(0), // nothing left to stop
        },
        Entrypoint::Gc => flavor.gc(&manifest).map(|()| 0),
    }
}

/// `run --rm`, once the pod is over (its lock released): takes the lock
/// again (gc may have been quicker, then it removes the pod), frees what the
/// flavor holds outside the directory, and deletes the directory the way gc
/// does: moved to `garbage/` first, so an interrupted delete is finished by
/// the next gc.
fn remove_pod(flavor: &dyn Flavor, manifest: &PodManifest, dir: &std::path::Path) -> Result<()> {
    let store =
        skiff_pods::Store::of_pod_dir(dir).ok_or_else(|| Error::refused("the pod directory is not in a store"))?;
    let Ok(mut pod) = skiff_pods::Pod::find(&store, &manifest.uuid) else { return Ok(()) };
    if pod.try_lock().is_err() {
        return Ok(());
    }
    flavor.gc(manifest)?;
    pod.transition(skiff_pods::StateDir::Garbage).map_err(Error::other)?;
    let gone = pod.path();
    std::fs::remove_dir_all(&gone).with_context(|| format!("cannot remove {}", gone.display()))?;
    skiff_pods::claims::release(&store, manifest);
    Ok(())
}

/// The flavor's whole `main`: the entrypoint's status, or 125 with one
/// line on stderr.
pub fn main(flavor: &dyn Flavor) -> i32 {
    match start(flavor) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("skiff: stage1 {}: {msg}", flavor.description().name);
            SKIFF_ERROR
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_pods::abi::feature;

    fn args(s: &[&str]) -> impl Iterator<Item = String> {
        s.iter().map(|a| a.to_string()).collect::<Vec<_>>().into_iter()
    }

    #[test]
    fn entrypoints() {
        let d = Description::new("x", &[feature::TERMINAL], "");
        let p = |s: &[&str]| parse(&d, args(s));
        assert_eq!(p(&["--describe"]).unwrap(), None);
        let run = p(&["run", "--debug", "--interactive", "u1"]).unwrap().unwrap();
        assert_eq!(
            (run.debug, run.entrypoint),
            (true, Entrypoint::Run { stdio: Stdio::Interactive, remove: false, notify_app: false })
        );
        let d = Description::new("x", &[feature::REMOVE_ON_EXIT], "");
        let rm = parse(&d, args(&["run", "--rm", "u1"])).unwrap().unwrap();
        assert_eq!(rm.entrypoint, Entrypoint::Run { stdio: Stdio::Inherit, remove: true, notify_app: false });
        let d = Description::new("x", &[feature::TERMINAL], "");
        let p = |s: &[&str]| parse(&d, args(s));
        let enter = p(&["enter", "--app", "web", "u1", "--", "/bin/sh", "-c", "--"]).unwrap().unwrap();
        let argv = vec!["/bin/sh".to_string(), "-c".into(), "--".into()];
        assert_eq!(enter.entrypoint, Entrypoint::Enter { app: "web".into(), argv });
        assert_eq!(p(&["stop", "--force", "u1"]).unwrap().unwrap().entrypoint, Entrypoint::Stop { force: true });
        assert_eq!(p(&["gc", "u1"]).unwrap().unwrap().entrypoint, Entrypoint::Gc);
        for bad in [&["fly"][..], &["run"], &["run", "--bogus", "u"], &["enter", "u", "--", "x"], &["gc", "a", "b"]] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
        let plain = Description::new("x", &[], "");
        assert!(parse(&plain, args(&["run", "--tty", "u"])).unwrap_err().to_string().contains("--tty"));
        assert!(parse(&plain, args(&["run", "--rm", "u"])).unwrap_err().to_string().contains("--rm"));
    }
}
