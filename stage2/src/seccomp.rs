//! Seccomp: from the manifest's profile to BPF (seccompiler, pure Rust),
//! compiled once per app spec before the app's process is forked.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
};
use skiff_pods::manifest::{Seccomp, SeccompMode};
use skiff_pods::App;
use skiff_rt::error::{Context, Error, Result};
use skiff_rt::syscall_names::syscall_number;

/// What skiff itself calls between loading the filter and `execve`; a
/// `retain` profile always allows them, or no app could start.
pub const SETUP_SYSCALLS: &[&str] = &[
    "capget",
    "capset",
    "prctl",
    "setgroups",
    "setresuid",
    "setresgid",
    "chdir",
    "execve",
    "exit_group",
    "write",
    "brk",
    "mmap",
    "munmap",
    "rt_sigprocmask",
    "rt_sigaction",
];

const CLONE_NAMESPACE_FLAGS: [u64; 7] = [
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
];
const S_IFMT: u64 = 0o170_000;
const DEVICE_TYPES: [u64; 2] = [0o020_000 /* S_IFCHR */, 0o060_000 /* S_IFBLK */];
const ENOSYS: u32 = 38;

/// BPF programs to load, in order (the kernel applies the strictest).
#[derive(Clone, Debug)]
pub struct Compiled(Vec<BpfProgram>);

/// Each app's filter, compiled once per distinct profile in the pod (apps
/// of a pod usually share the default one).
pub fn compile_all(apps: &[App]) -> Result<Vec<Option<Compiled>>> {
    let mut out: Vec<Option<Compiled>> = Vec::with_capacity(apps.len());
    for (i, app) in apps.iter().enumerate() {
        let Some(spec) = &app.isolation.seccomp else {
            out.push(None);
            continue;
        };
        let same = apps[..i].iter().position(|a| a.isolation.seccomp.as_ref() == Some(spec));
        out.push(Some(match same.and_then(|j| out[j].clone()) {
            Some(c) => c,
            None => compile(spec).with_context(|| format!("app {}", app.name))?,
        }));
    }
    Ok(out)
}

fn rule(arg: u8, mask: u64, value: u64) -> Result<SeccompRule> {
    let c = SeccompCondition::new(arg, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(mask), value)
        .context("seccomp: a rule's condition")?;
    SeccompRule::new(vec![c]).context("seccomp: a rule")
}

fn number(name: &str) -> Result<i64> {
    syscall_number(name).ok_or_else(|| Error::refused(format!("seccomp: unknown syscall {name:?}")))
}

pub fn compile(spec: &Seccomp) -> Result<Compiled> {
    let errno = u32::try_from(spec.errno).map_err(|_| format!("seccomp: invalid errno {}", spec.errno))?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let names = spec.syscalls.iter().map(String::as_str);
    let (mismatch, matched) = match spec.mode {
        SeccompMode::Remove => (SeccompAction::Allow, SeccompAction::Errno(errno)),
        SeccompMode::Retain => (SeccompAction::Errno(errno), SeccompAction::Allow),
    };
    let listed: Vec<&str> = match spec.mode {
        SeccompMode::Remove => names.collect(),
        SeccompMode::Retain => names.chain(SETUP_SYSCALLS.iter().copied()).collect(),
    };
    for n in listed {
        rules.insert(number(n)?, Vec::new());
    }
    let mut programs = Vec::new();
    if spec.deny_namespaces_and_devices && spec.mode == SeccompMode::Remove {
        // Conditional denials join the same filter unless the syscall is
        // already denied outright (an empty rule list matches always).
        let mut add = |name: &str, arg: u8, mask: u64, values: &[u64]| -> Result<()> {
            let n = number(name)?;
            if rules.get(&n).is_some_and(Vec::is_empty) {
                return Ok(());
            }
            let list = rules.entry(n).or_default();
            for v in values {
                list.push(rule(arg, mask, *v)?);
            }
            Ok(())
        };
        for f in CLONE_NAMESPACE_FLAGS {
            add("clone", 0, f, &[f])?;
        }
        add("mknod", 1, S_IFMT, &DEVICE_TYPES)?;
        add("mknodat", 2, S_IFMT, &DEVICE_TYPES)?;
        rules.insert(number("unshare")?, Vec::new());
        rules.insert(number("setns")?, Vec::new());
        // clone3 passes its flags in memory, out of a filter's reach:
        // ENOSYS makes libc fall back to clone.
        let clone3: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::from([(number("clone3")?, Vec::new())]);
        let f = SeccompFilter::new(
            clone3,
            SeccompAction::Allow,
            SeccompAction::Errno(ENOSYS),
            seccompiler::TargetArch::x86_64,
        )
        .context("seccomp")?;
        programs.push(BpfProgram::try_from(f).context("seccomp")?);
    }
    let f = SeccompFilter::new(rules, mismatch, matched, seccompiler::TargetArch::x86_64).context("seccomp")?;
    programs.insert(0, BpfProgram::try_from(f).context("seccomp")?);
    Ok(Compiled(programs))
}

/// Loads the filters into the calling thread (and so into the app).
/// Unlike seccompiler's `apply_filter`, this does not set no_new_privs on
/// its own: whether the app gets it is the user's choice, and loading a
/// filter without it is allowed while the process holds CAP_SYS_ADMIN.
pub fn apply(c: &Compiled) -> Result<()> {
    for p in &c.0 {
        let insns: Vec<libc::sock_filter> =
            p.iter().map(|i| libc::sock_filter { code: i.code, jt: i.jt, jf: i.jf, k: i.k }).collect();
        load(&insns).context("cannot load the seccomp filter")?;
    }
    Ok(())
}

fn load(insns: &[libc::sock_filter]) -> std::io::Result<()> {
    let len = u16::try_from(insns.len()).map_err(|_| std::io::Error::other("filter too long"))?;
    let prog = libc::sock_fprog { len, filter: insns.as_ptr().cast_mut() };
    // SAFETY: `prog` points at `insns`, valid for the whole call; the kernel
    // copies the program and keeps no pointer to it (seccomp(2)).
    let rc = unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &raw const prog) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mode: SeccompMode, syscalls: &[&str], deny: bool) -> Seccomp {
        Seccomp {
            mode,
            errno: 1,
            syscalls: syscalls.iter().map(|s| s.to_string()).collect(),
            deny_namespaces_and_devices: deny,
        }
    }

    #[test]
    fn profiles_compile() {
        assert_eq!(compile(&spec(SeccompMode::Remove, &["mount", "kexec_load"], true)).unwrap().0.len(), 2);
        assert_eq!(compile(&spec(SeccompMode::Retain, &["read"], false)).unwrap().0.len(), 1);
        assert_eq!(compile(&spec(SeccompMode::Remove, &["clone", "unshare"], true)).unwrap().0.len(), 2);
        assert!(compile(&spec(SeccompMode::Remove, &["not_a_syscall"], false))
            .unwrap_err()
            .to_string()
            .contains("not_a_syscall"));
    }

    #[test]
    fn one_compile_per_distinct_profile() {
        let with = |name: &str, s: Option<Seccomp>| {
            let mut a = skiff_pods::test_util::test_app(name);
            a.isolation.seccomp = s;
            a
        };
        let default = spec(SeccompMode::Remove, &["mount"], true);
        let apps = [with("a", Some(default.clone())), with("b", None), with("c", Some(default))];
        let got = compile_all(&apps).unwrap();
        assert!(got[0].is_some() && got[1].is_none() && got[2].is_some());
        let bad = [with("x", Some(spec(SeccompMode::Remove, &["bogus"], false)))];
        assert!(compile_all(&bad).unwrap_err().to_string().starts_with("app x: "));
    }
}
