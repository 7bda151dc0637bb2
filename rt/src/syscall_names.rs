//! Syscall and errno names as users write them in seccomp profiles
//! (`--seccomp mode=remove,errno=EPERM,mount`): checked by stage0 when the
//! pod is prepared, compiled by stage2 when it starts.

use std::str::FromStr;

/// The x86_64 number of a syscall name, if it has one.
pub fn syscall_number(name: &str) -> Option<i64> {
    syscalls::Sysno::from_str(name).ok().map(|s| i64::from(s.id()))
}

/// `EPERM` → 1, by the names nix knows.
pub fn errno_number(name: &str) -> Option<i32> {
    (1..200).find(|&i| format!("{:?}", nix::errno::Errno::from_raw(i)) == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(syscall_number("mount"), Some(165));
        assert_eq!(syscall_number("no_such_call"), None);
        assert_eq!(errno_number("EPERM"), Some(1));
        assert_eq!(errno_number("ENOSYS"), Some(38));
        assert_eq!(errno_number("EXFULL"), Some(54));
        assert_eq!(errno_number("eperm"), None);
    }
}
