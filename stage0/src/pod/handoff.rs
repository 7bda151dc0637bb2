//! Calling the pod's stage1 flavor (docs/stage1-abi.md). `run` and `enter`
//! are an `exec`, not a fork, so the process the caller started becomes
//! the pod's supervisor (or the entered command); `stop` and `gc` are
//! waited for.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::IntoRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::{FcntlArg, FdFlag};
use skiff_pods::abi::{flavor_binary, ABI_ENV, ABI_VERSION, LOCK_FD_ENV};
use skiff_pods::Pod;

use super::flavor::Flavor;

/// `flavor entrypoint [--debug] ARGS` and the variables set for it (over
/// the caller's environment), as docs/stage1-abi.md has them.
struct Invocation {
    argv: Vec<OsString>,
    env: Vec<(&'static str, String)>,
}

impl Invocation {
    fn new<A: AsRef<OsStr>>(
        flavor: &Flavor,
        entrypoint: &str,
        debug: bool,
        args: impl IntoIterator<Item = A>,
        mut env: Vec<(&'static str, String)>,
    ) -> Invocation {
        let mut argv: Vec<OsString> = vec![flavor_binary(flavor.name()).into(), entrypoint.into()];
        if debug {
            argv.push("--debug".into());
        }
        argv.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        env.push((ABI_ENV, ABI_VERSION.to_string()));
        Invocation { argv, env }
    }
}

fn c_string(b: &[u8]) -> Result<CString> {
    CString::new(b).map_err(|_| anyhow!("{:?} holds a NUL byte", OsStr::from_bytes(b)))
}

/// argv and environment for `execve`: the caller's variables but those
/// set or in `remove`, then those set.
fn exec_vectors(inv: &Invocation, remove: &[&str]) -> Result<(Vec<CString>, Vec<CString>)> {
    let argv = inv.argv.iter().map(|a| c_string(a.as_bytes())).collect::<Result<_>>()?;
    let dropped = |k: &[u8]| remove.iter().chain(inv.env.iter().map(|(k, _)| k)).any(|n| n.as_bytes() == k);
    let mut envp = Vec::new();
    for (k, v) in std::env::vars_os().filter(|(k, _)| !dropped(k.as_bytes())) {
        envp.push(c_string(&[k.as_bytes(), b"=", v.as_bytes()].concat())?);
    }
    for (k, v) in &inv.env {
        envp.push(c_string(format!("{k}={v}").as_bytes())?);
    }
    Ok((argv, envp))
}

/// Replaces this process with the invocation, in `dir`, without the
/// caller's variables in `remove`. Done by hand rather than by std's
/// `Command`, which copies the whole environment into a map first: about a
/// tenth of the instructions of a `skiff run`'s stage0. Returns only on
/// failure.
fn exec(flavor: &Flavor, inv: &Invocation, dir: &Path, remove: &[&str]) -> anyhow::Error {
    let fail = |e: &dyn std::fmt::Display| anyhow!("cannot execute stage1 {}: {e}", flavor.path.display());
    let vectors = c_string(flavor.path.as_os_str().as_bytes()).and_then(|p| Ok((p, exec_vectors(inv, remove)?)));
    let (path, (argv, envp)) = match vectors {
        Ok(v) => v,
        Err(e) => return fail(&e),
    };
    if let Err(e) = nix::unistd::chdir(dir) {
        return anyhow!("cannot enter pod directory {}: {e}", dir.display());
    }
    skiff_rt::process_start::restore_sigpipe();
    let Err(e) = nix::unistd::execve(&path, &argv, &envp);
    fail(&std::io::Error::from(e))
}

/// Replaces this process with the flavor's `run` entrypoint. Returns only
/// if the exec failed; the pod is then left unlocked in `run/`, which reads
/// as exited and is collected by gc. `stdio` are the flavor's options for
/// the apps' stdio (`--tty`, `--interactive`).
/// `args` are the `run` options; `env_remove`, variables of skiff's own
/// environment the flavor must not see.
pub fn exec_run(pod: Pod, flavor: &Flavor, debug: bool, args: &[&str], env_remove: &[&str]) -> anyhow::Error {
    let dir = pod.path();
    let uuid = pod.uuid().to_string();
    let fd = pod.into_fd();
    if let Err(e) = nix::fcntl::fcntl(&fd, FcntlArg::F_SETFD(FdFlag::empty())) {
        return anyhow!("cannot pass the pod lock to stage1: {e}");
    }
    // The fd must outlive this process image: exec keeps it open.
    let raw = fd.into_raw_fd();
    crate::debug!("pod {uuid}: exec {} run (lock fd {raw}, cwd {})", flavor.path.display(), dir.display());
    let inv = Invocation::new(
        flavor,
        "run",
        debug,
        args.iter().chain([&uuid.as_str()]),
        vec![(LOCK_FD_ENV, raw.to_string())],
    );
    exec(flavor, &inv, &dir, env_remove)
}

/// Replaces this process with the flavor's `enter` entrypoint, which runs
/// `argv` in app `app` of the running pod.
pub fn exec_enter(pod: &Pod, flavor: &Flavor, debug: bool, app: &str, argv: &[String]) -> anyhow::Error {
    let args = ["--app", app, pod.uuid(), "--"].into_iter().chain(argv.iter().map(String::as_str));
    exec(flavor, &Invocation::new(flavor, "enter", debug, args, Vec::new()), &pod.path(), &[])
}

/// Runs the flavor's `stop` or `gc` entrypoint for a pod and waits for it.
pub fn call(pod_dir: &Path, uuid: &str, flavor: &Flavor, debug: bool, entrypoint: &str, opts: &[&str]) -> Result<()> {
    let inv = Invocation::new(flavor, entrypoint, debug, opts.iter().chain([&uuid]), Vec::new());
    let status = std::process::Command::new(&flavor.path)
        .arg0(&inv.argv[0])
        .args(&inv.argv[1..])
        .envs(inv.env.iter().map(|(k, v)| (k, v)))
        .current_dir(pod_dir)
        .stdin(std::process::Stdio::null())
        .status()
        .with_context(|| format!("cannot run stage1 {} {entrypoint}", flavor.path.display()))?;
    if !status.success() {
        bail!("stage1 {} {entrypoint} failed for pod {uuid} ({status})", flavor.name());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flavor_gets_the_callers_environment_less_what_is_removed_or_replaced() {
        let names: Vec<String> = std::env::vars().map(|(k, _)| k).take(2).collect();
        let [removed, replaced] = [&names[0], &names[1]].map(|n| &*String::leak(n.clone()));
        let inv = Invocation {
            argv: vec!["skiff-stage1-x".into(), "run".into(), "a b".into()],
            env: vec![(replaced, "new".into()), (ABI_ENV, ABI_VERSION.to_string())],
        };
        let (argv, envp) = exec_vectors(&inv, &[removed]).unwrap();
        assert_eq!(argv, [c"skiff-stage1-x", c"run", c"a b"]);
        let envp: Vec<&str> = envp.iter().map(|e| e.to_str().unwrap()).collect();
        let of = |name: &str| envp.iter().filter(|e| e.split_once('=').unwrap().0 == name).copied().collect::<Vec<_>>();
        assert!(of(removed).is_empty(), "{envp:?}");
        assert_eq!(of(replaced), [format!("{replaced}=new")]);
        assert_eq!(of(ABI_ENV), [format!("{ABI_ENV}={ABI_VERSION}")]);
        assert_eq!(envp.len(), std::env::vars_os().count() - 1 + usize::from(std::env::var_os(ABI_ENV).is_none()));
    }

    #[test]
    fn a_nul_byte_is_an_error_not_a_truncated_argument() {
        let inv = Invocation { argv: vec!["x".into(), "a\0b".into()], env: Vec::new() };
        let err = exec_vectors(&inv, &[]).unwrap_err().to_string();
        assert!(err.contains("NUL"), "{err}");
    }
}
