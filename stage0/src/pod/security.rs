//! Confinement policy: default capabilities and seccomp profile, and the
//! user's changes to them (`--caps-retain`, `--caps-remove`, `--seccomp`,
//! `--insecure-options`). stage2 applies what this decides.

use std::str::FromStr;

use caps::Capability;
use skiff_pods::manifest::{Seccomp, SeccompMode};
use skiff_rt::syscall_names::{errno_number, syscall_number};

/// Docker's, podman's and rkt's default set.
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_MKNOD",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// Syscalls the default profile refuses (EPERM) unless the app keeps the
/// capability that makes them legitimate. Modelled on Docker's default
/// profile; `None` means always refused.
const DENIED: [(&str, Option<&str>); 44] = [
    ("acct", Some("CAP_SYS_PACCT")),
    ("add_key", None),
    ("bpf", Some("CAP_SYS_ADMIN")),
    ("clock_adjtime", Some("CAP_SYS_TIME")),
    ("clock_settime", Some("CAP_SYS_TIME")),
    ("create_module", None),
    ("delete_module", Some("CAP_SYS_MODULE")),
    ("fanotify_init", Some("CAP_SYS_ADMIN")),
    ("finit_module", Some("CAP_SYS_MODULE")),
    ("fsconfig", Some("CAP_SYS_ADMIN")),
    ("fsmount", Some("CAP_SYS_ADMIN")),
    ("fsopen", Some("CAP_SYS_ADMIN")),
    ("get_kernel_syms", None),
    ("init_module", Some("CAP_SYS_MODULE")),
    ("ioperm", Some("CAP_SYS_RAWIO")),
    ("iopl", Some("CAP_SYS_RAWIO")),
    ("kcmp", Some("CAP_SYS_PTRACE")),
    ("kexec_file_load", None),
    ("kexec_load", None),
    ("keyctl", None),
    ("lookup_dcookie", Some("CAP_SYS_ADMIN")),
    ("mount", Some("CAP_SYS_ADMIN")),
    ("mount_setattr", Some("CAP_SYS_ADMIN")),
    ("move_mount", Some("CAP_SYS_ADMIN")),
    ("name_to_handle_at", Some("CAP_SYS_ADMIN")),
    ("nfsservctl", None),
    ("open_by_handle_at", Some("CAP_DAC_READ_SEARCH")),
    ("open_tree", Some("CAP_SYS_ADMIN")),
    ("perf_event_open", Some("CAP_SYS_ADMIN")),
    ("pivot_root", Some("CAP_SYS_ADMIN")),
    ("process_vm_readv", Some("CAP_SYS_PTRACE")),
    ("process_vm_writev", Some("CAP_SYS_PTRACE")),
    ("ptrace", Some("CAP_SYS_PTRACE")),
    ("query_module", None),
    ("quotactl", Some("CAP_SYS_ADMIN")),
    ("reboot", Some("CAP_SYS_BOOT")),
    ("request_key", None),
    ("settimeofday", Some("CAP_SYS_TIME")),
    ("swapoff", Some("CAP_SYS_ADMIN")),
    ("swapon", Some("CAP_SYS_ADMIN")),
    ("umount2", Some("CAP_SYS_ADMIN")),
    ("uselib", None),
    ("userfaultfd", None),
    ("ustat", None),
];

/// `sys_admin`, `SYS_ADMIN` and `CAP_SYS_ADMIN` all name CAP_SYS_ADMIN.
pub fn parse_caps(list: &str) -> Result<Vec<String>, String> {
    list.split(',')
        .filter(|c| !c.trim().is_empty())
        .map(|c| {
            let up = c.trim().to_ascii_uppercase();
            let name = if up.starts_with("CAP_") { up } else { format!("CAP_{up}") };
            Capability::from_str(&name).map(|cap| cap.to_string()).map_err(|_| format!("unknown capability {c:?}"))
        })
        .collect()
}

/// Kubernetes' capabilities (names without `CAP_`, upper case): the
/// defaults (none if `drop` has `ALL`) less `drop`, plus `add`; sorted.
pub fn add_and_drop(add: &[String], drop: &[String]) -> Result<Vec<String>, String> {
    if add.iter().any(|c| c == "ALL") {
        return Err("ALL is a privileged container: name the capabilities".into());
    }
    let mut set: Vec<String> = if drop.iter().any(|c| c == "ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPS.iter().map(|c| c.trim_start_matches("CAP_").to_string()).filter(|c| !drop.contains(c)).collect()
    };
    set.extend(add.iter().cloned());
    set.sort();
    set.dedup();
    Ok(set)
}

/// The app's capability set: the defaults, or exactly `retain`, or the
/// defaults less `remove`.
pub fn resolve_caps(retain: Option<&str>, remove: Option<&str>) -> Result<Vec<String>, String> {
    let mut set: Vec<String> = match (retain, remove) {
        (Some(_), Some(_)) => return Err("--caps-retain and --caps-remove cannot be combined".into()),
        (Some(r), None) => parse_caps(r)?,
        (None, Some(r)) => {
            let drop = parse_caps(r)?;
            DEFAULT_CAPS.iter().map(|c| c.to_string()).filter(|c| !drop.contains(c)).collect()
        }
        (None, None) => DEFAULT_CAPS.iter().map(|c| c.to_string()).collect(),
    };
    set.sort();
    set.dedup();
    Ok(set)
}

/// The default profile for an app with `caps`.
pub fn default_seccomp(caps: &[String]) -> Seccomp {
    let held = |c: &str| caps.iter().any(|x| x == c);
    let syscalls = DENIED
        .iter()
        .filter(|(_, cap)| !cap.is_some_and(held))
        .map(|(s, _)| s.to_string())
        .filter(|s| syscall_number(s).is_some())
        .collect();
    Seccomp {
        mode: SeccompMode::Remove,
        errno: 1, // EPERM
        syscalls,
        deny_namespaces_and_devices: !held("CAP_SYS_ADMIN"),
    }
}

/// Parses `mode=remove|retain[,errno=NAME],SYSCALL,…`.
/// What `--seccomp` asks for: a profile of the user's, or none at all.
#[derive(Clone, Debug, PartialEq)]
pub enum SeccompChoice {
    Profile(Seccomp),
    /// `--seccomp unconfined`: no filter for this app (Kubernetes'
    /// `Unconfined`).
    Unconfined,
}

/// `--seccomp unconfined` or a profile ([`parse_seccomp`]).
pub fn parse_seccomp_choice(spec: &str) -> Result<SeccompChoice, String> {
    match spec.trim() {
        "unconfined" => Ok(SeccompChoice::Unconfined),
        profile => parse_seccomp(profile).map(SeccompChoice::Profile),
    }
}

pub fn parse_seccomp(spec: &str) -> Result<Seccomp, String> {
    let mut mode = None;
    let mut errno = 1;
    let mut syscalls = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some(m) = part.strip_prefix("mode=") {
            mode = Some(match m {
                "remove" => SeccompMode::Remove,
                "retain" => SeccompMode::Retain,
                _ => return Err(format!("--seccomp: mode must be remove or retain, not {m:?}")),
            });
        } else if let Some(e) = part.strip_prefix("errno=") {
            errno =
                errno_number(e).ok_or_else(|| format!("--seccomp: unknown errno {e:?} (use a name such as EPERM)"))?;
        } else if syscall_number(part).is_some() {
            syscalls.push(part.to_string());
        } else {
            return Err(format!("--seccomp: unknown syscall {part:?}"));
        }
    }
    let mode = mode.ok_or("--seccomp: missing mode=remove or mode=retain")?;
    if syscalls.is_empty() {
        return Err("--seccomp: no syscalls listed".into());
    }
    Ok(Seccomp { mode, errno, syscalls, deny_namespaces_and_devices: false })
}

/// `--insecure-options`: which default protections to lift.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Insecure {
    pub seccomp: bool,
    pub paths: bool,
}

impl Insecure {
    pub fn parse(s: &str) -> Result<Insecure, String> {
        let mut i = Insecure::default();
        for o in s.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            match o {
                "seccomp" => i.seccomp = true,
                "paths" => i.paths = true,
                "none" => {}
                _ => return Err(format!("unknown --insecure-options value {o:?} (seccomp, paths)")),
            }
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities() {
        assert_eq!(parse_caps("sys_admin,CAP_NET_ADMIN").unwrap(), ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]);
        assert!(parse_caps("CAP_BOGUS").is_err());
        assert_eq!(resolve_caps(None, None).unwrap().len(), 14);
        assert_eq!(resolve_caps(Some("chown"), None).unwrap(), ["CAP_CHOWN"]);
        let r = resolve_caps(None, Some("net_raw,mknod")).unwrap();
        assert_eq!(r.len(), 12);
        assert!(!r.contains(&"CAP_NET_RAW".to_string()));
        assert!(resolve_caps(Some("chown"), Some("kill")).is_err());
    }

    #[test]
    fn the_default_profile_follows_the_capabilities() {
        let p = default_seccomp(&resolve_caps(None, None).unwrap());
        assert!(p.syscalls.contains(&"mount".to_string()) && p.syscalls.contains(&"kexec_load".to_string()));
        assert!(p.deny_namespaces_and_devices);
        let p = default_seccomp(&["CAP_SYS_ADMIN".to_string()]);
        assert!(!p.syscalls.contains(&"mount".to_string()) && p.syscalls.contains(&"kexec_load".to_string()));
        assert!(!p.deny_namespaces_and_devices);
    }

    #[test]
    fn seccomp_options() {
        let s = parse_seccomp("mode=retain,errno=ENOSYS,read,write").unwrap();
        assert_eq!((s.mode, s.errno, s.syscalls.len()), (SeccompMode::Retain, 38, 2));
        for bad in ["", "read", "mode=maybe,read", "mode=remove", "mode=remove,errno=EWHAT,read", "mode=remove,nosuch"]
        {
            assert!(parse_seccomp(bad).is_err(), "{bad}");
        }
        assert_eq!(Insecure::parse("seccomp,paths").unwrap(), Insecure { seccomp: true, paths: true });
        assert!(Insecure::parse("all").is_err());
    }
}
