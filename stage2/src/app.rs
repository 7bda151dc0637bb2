//! Turning one resolved app spec into the app's process image.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Gid, Uid};
use skiff_pods::App;

use crate::{identity, seccomp};
use skiff_rt::error::{Context, Error, Result};
use skiff_rt::exit_code::{CANNOT_INVOKE, NOT_FOUND, SIGNAL_BASE, SKIFF_ERROR};

/// Used when the app's environment has no `PATH` (same as Docker's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything `execve` needs, converted before `fork` so the child only
/// makes syscalls.
#[derive(Debug)]
pub struct Prepared {
    name: String,
    candidates: Vec<CString>,
    argv: Vec<CString>,
    env: Vec<CString>,
    working_dir: CString,
    uid: Uid,
    gid: Gid,
    groups: Vec<Gid>,
    /// `None`: left as they are.
    caps: Option<CapsHashSet>,
    no_new_privileges: bool,
    seccomp: Option<seccomp::Compiled>,
    oom_score_adj: Option<i32>,
}

fn cstring(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::refused(format!("{what} {s:?} contains a NUL byte")))
}

impl Prepared {
    /// Runs inside the pod (the account files read are the app's own).
    /// `seccomp` is the app's filter, compiled (see [`seccomp::compile_all`]).
    pub fn new(app: &App, seccomp: Option<seccomp::Compiled>) -> Result<Prepared> {
        let id = identity::resolve(Path::new("/"), &app.user, app.group.as_deref(), &app.groups_add)
            .with_context(|| format!("app {}", app.name))?;
        let mut env = app.env.clone();
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!("HOME={}", id.home));
        }
        let Some(exec) = app.exec.first() else {
            return Err(Error::refused(format!(
                "app {}: nothing to execute (the image has no entrypoint or cmd; use --exec)",
                app.name
            )));
        };
        let path_var = env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH);
        let candidates = exec_candidates(exec, path_var)
            .iter()
            .map(|p| {
                CString::new(p.as_os_str().as_bytes()).map_err(|_| format!("exec path {exec:?} contains a NUL byte"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Prepared {
            name: exec.clone(),
            candidates,
            argv: app.exec.iter().map(|a| cstring(a, "argument")).collect::<Result<_, _>>()?,
            env: env.iter().map(|e| cstring(e, "environment entry")).collect::<Result<_, _>>()?,
            working_dir: cstring(&app.working_dir, "working directory")?,
            uid: Uid::from_raw(id.uid),
            gid: Gid::from_raw(id.gid),
            groups: id.groups.iter().map(|g| Gid::from_raw(*g)).collect(),
            caps: app
                .isolation
                .capabilities
                .as_ref()
                .map(|list| {
                    list.iter()
                        .map(|c| {
                            Capability::from_str(c).map_err(|_| format!("app {}: unknown capability {c:?}", app.name))
                        })
                        .collect::<Result<_, _>>()
                })
                .transpose()?,
            no_new_privileges: app.isolation.no_new_privileges,
            seccomp,
            oom_score_adj: app.oom_score_adj,
        })
    }

    /// Sets environment entries (`KEY=VALUE`) in the forked child, for what
    /// is only known there (socket activation's `LISTEN_PID`).
    pub fn set_env(&mut self, entries: &[String]) -> Result<()> {
        for e in entries {
            let key = e.split('=').next().unwrap_or(e);
            self.env.retain(|x| x.as_bytes().split(|&b| b == b'=').next() != Some(key.as_bytes()));
            self.env.push(cstring(e, "environment entry")?);
        }
        Ok(())
    }

    /// Becomes the app. Runs in the freshly forked child; never returns.
    /// Failures print one line to the app's stderr and exit with 125 (setup),
    /// 126 (cannot invoke) or 127 (not found), as shells do, after writing a
    /// byte to `failed`, when given: the parent's [`ExecWatch`] end.
    pub fn exec(&self, failed: Option<&OwnedFd>) -> ! {
        let die = |code, msg: &str| -> ! {
            if let Some(fd) = failed {
                ExecWatch::fail(fd);
            }
            die(code, msg)
        };
        reset_signals();
        if let Err(msg) = self.become_user() {
            die(SKIFF_ERROR, &msg.to_string());
        }
        let mut saw_eacces = false;
        let mut last = Errno::ENOENT;
        for c in &self.candidates {
            let Err(e) = nix::unistd::execve(c, &self.argv, &self.env);
            match e {
                Errno::ENOENT | Errno::ENOTDIR => {}
                Errno::EACCES => saw_eacces = true,
                other => {
                    last = other;
                    break;
                }
            }
        }
        if saw_eacces || last != Errno::ENOENT {
            let why = if saw_eacces { Errno::EACCES } else { last };
            let code = if why == Errno::ENOEXEC || why == Errno::EACCES || why == Errno::EISDIR {
                CANNOT_INVOKE
            } else {
                SKIFF_ERROR
            };
            die(code, &format!("cannot execute {} in the pod: {}", self.name, why.desc()));
        }
        die(NOT_FOUND, &format!("{}: not found in the app's root filesystem", self.name));
    }

    /// Runs the app as a child (for `enter`) and returns its status (128+N
    /// for signal N).
    pub fn spawn_and_wait(&self) -> Result<i32> {
        // SAFETY: the callers are single-threaded, so the child may run
        // any code.
        match unsafe { nix::unistd::fork() } {
            Ok(ForkResult::Child) => self.exec(None),
            Ok(ForkResult::Parent { child }) => loop {
                match waitpid(child, None) {
                    Ok(WaitStatus::Exited(_, code)) => return Ok(code),
                    Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(SIGNAL_BASE + sig as i32),
                    Ok(_) | Err(Errno::EINTR) => continue,
                    Err(e) => return Err(e).context("waiting for the command"),
                }
            },
            Err(e) => Err(e).context("cannot fork"),
        }
    }

    /// Confines the process, then becomes the app's user. The seccomp
    /// filter goes on first, while CAP_SYS_ADMIN still allows loading it
    /// with or without no_new_privs; the bounding set is cut while
    /// CAP_SETPCAP is held; permitted and effective sets are set after the
    /// uid change (which empties them for a non-root user).
    fn become_user(&self) -> Result<()> {
        if let Some(adj) = self.oom_score_adj {
            // Lowering it needs CAP_SYS_RESOURCE: the error says so.
            std::fs::write("/proc/self/oom_score_adj", adj.to_string())
                .with_context(|| format!("cannot set oom_score_adj to {adj}"))?;
        }
        if let Some(f) = &self.seccomp {
            seccomp::apply(f)?;
        }
        if self.no_new_privileges {
            nix::sys::prctl::set_no_new_privs().context("cannot set no_new_privs")?;
        }
        if let Some(keep) = &self.caps {
            limit_caps(keep)?;
        }
        // Replaces the supplementary groups inherited from the host, which
        // would otherwise follow the app into the pod.
        nix::unistd::setgroups(&self.groups).context("setgroups")?;
        nix::unistd::setresgid(self.gid, self.gid, self.gid).with_context(|| format!("setgid {}", self.gid))?;
        nix::unistd::setresuid(self.uid, self.uid, self.uid).with_context(|| format!("setuid {}", self.uid))?;
        if let (true, Some(keep)) = (self.uid.is_root(), &self.caps) {
            // Effective first: it must stay a subset of permitted.
            caps::set(None, CapSet::Effective, keep).context("cannot set effective capabilities")?;
            caps::set(None, CapSet::Permitted, keep).context("cannot set permitted capabilities")?;
        }
        nix::unistd::chdir(self.working_dir.as_c_str())
            .with_context(|| format!("cannot change to working directory {}", self.working_dir.to_string_lossy()))
    }
}

/// Cuts the bounding set to `keep` (while CAP_SETPCAP is held), clears the
/// ambient set and sets the inheritable one.
fn limit_caps(keep: &CapsHashSet) -> Result<()> {
    for cap in caps::all() {
        if !keep.contains(&cap) {
            match caps::drop(None, CapSet::Bounding, cap) {
                // A capability this kernel does not know is not held.
                Err(_) if !caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) => {}
                Err(e) => return Err(e).with_context(|| format!("cannot drop {cap} from the bounding set")),
                Ok(()) => {}
            }
        }
    }
    caps::clear(None, CapSet::Ambient).context("cannot clear the ambient capabilities")?;
    caps::set(None, CapSet::Inheritable, keep).context("cannot set inheritable capabilities")
}

/// The app starts as systemd starts a service: no signal blocked and every
/// signal at its default. An ignored signal survives `execve`, so without
/// this an app would inherit what its caller ignored: SIGINT and SIGQUIT
/// for a script's `skiff run … &`, SIGHUP under `nohup`, SIGPIPE from
/// stage1 (`process_start`), and a shell app's `trap … INT` would never
/// fire. (Handlers need no reset: `execve` resets them itself.)
fn reset_signals() {
    // (SIGRTMAX is the kernel's _NSIG - 1, 64, whatever the C library
    // keeps for itself.)
    for signo in 1..=64 {
        if signo == libc::SIGKILL || signo == libc::SIGSTOP {
            continue;
        }
        set_default(signo);
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// The kernel's `struct sigaction` (x86_64 and aarch64 layout).
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Puts signal `signo` back at SIG_DFL, through the system call: the C
/// library refuses the real-time signals it keeps for itself (32-34 in
/// musl), which a caller may still have ignored.
fn set_default(signo: libc::c_int) {
    let action = KernelSigaction { handler: libc::SIG_DFL, flags: 0, restorer: 0, mask: 0 };
    // SAFETY: `action` is a valid kernel sigaction that installs no handler
    // (SIG_DFL), so no code of this process runs in signal context; the old
    // action is not asked for (null); the size is the kernel's sigset's.
    unsafe {
        libc::syscall(libc::SYS_rt_sigaction, signo, &action, std::ptr::null_mut::<KernelSigaction>(), 8usize);
    }
}

/// Whether a forked child got as far as `execve`: the child keeps the
/// close-on-exec write end, which a successful `execve` closes without a
/// byte, and a failure writes one to before the child exits.
pub struct ExecWatch {
    read: OwnedFd,
    write: OwnedFd,
}

impl ExecWatch {
    pub fn new() -> Result<ExecWatch> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
        Ok(ExecWatch { read, write })
    }

    /// In the child: the end to pass to [`Prepared::exec`].
    pub fn into_child(self) -> OwnedFd {
        self.write
    }

    /// In the child, on a failure before `execve`.
    pub fn fail(fd: &OwnedFd) {
        let _ = nix::unistd::write(fd, b"x");
    }

    /// In the parent: blocks until the child has exec'd (true) or failed.
    pub fn exec_succeeded(self) -> bool {
        drop(self.write);
        let mut byte = [0u8; 1];
        loop {
            match nix::unistd::read(&self.read, &mut byte) {
                Err(Errno::EINTR) => continue,
                Ok(0) => return true,
                _ => return false,
            }
        }
    }
}

fn die(code: i32, msg: &str) -> ! {
    eprintln!("skiff: {msg}");
    std::process::exit(code)
}

/// The paths to try for `exec`: itself when it names a path, else each
/// `PATH` entry joined with it (like `execvp`).
pub fn exec_candidates(exec: &str, path_var: &str) -> Vec<PathBuf> {
    if exec.contains('/') {
        return vec![PathBuf::from(exec)];
    }
    path_var
        .split(':')
        .map(|d| if d.is_empty() { Path::new(".") } else { Path::new(d) })
        .map(|d| d.join(exec))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_are_searched_in_path() {
        assert_eq!(
            exec_candidates("sh", "/bin:/usr/bin"),
            vec![PathBuf::from("/bin/sh"), PathBuf::from("/usr/bin/sh")]
        );
        assert_eq!(exec_candidates("/bin/sh", "/x"), vec![PathBuf::from("/bin/sh")]);
        assert_eq!(exec_candidates("./run", "/x"), vec![PathBuf::from("./run")]);
    }

    #[test]
    fn nul_bytes_are_refused_before_exec() {
        let mut app = skiff_pods::test_util::test_app("a");
        app.exec = vec!["/bin/sh".into(), "a\0b".into()];
        assert!(Prepared::new(&app, None).unwrap_err().to_string().contains("NUL"));
    }
}
