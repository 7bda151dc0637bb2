//! Removing every mount under a directory before deleting it, so that no
//! mount is ever left behind (or deleted through).

use std::path::{Path, PathBuf};

use nix::mount::{umount2, MntFlags};

/// Mount points at or below `dir`, deepest first, from mountinfo text.
pub fn mounts_under(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .filter(|m| m.starts_with(dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    out.dedup();
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmounts everything under `dir`; falls back to a lazy unmount for busy
/// mounts. Returns the mount points it could not remove at all.
pub fn unmount_all_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    mounts_under(&info, dir)
        .into_iter()
        .filter(|m| umount2(m, MntFlags::empty()).is_err() && umount2(m, MntFlags::MNT_DETACH).is_err())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_mounts_deepest_first() {
        let info = "\
22 27 0:21 / /proc rw - proc proc rw
90 27 0:50 / /var/lib/skiff/pods/run/u/apps/a/rootfs rw - overlay overlay rw
91 90 0:51 / /var/lib/skiff/pods/run/u/apps/a/rootfs/proc rw - proc proc rw
92 27 0:52 / /var/lib/skiff/pods/run/u2 rw - tmpfs t rw
93 27 0:53 / /var/lib/skiff/pods/run/u/with\\040space rw - tmpfs t rw
";
        let got = mounts_under(info, Path::new("/var/lib/skiff/pods/run/u"));
        assert_eq!(
            got,
            vec![
                PathBuf::from("/var/lib/skiff/pods/run/u/apps/a/rootfs/proc"),
                PathBuf::from("/var/lib/skiff/pods/run/u/apps/a/rootfs"),
                PathBuf::from("/var/lib/skiff/pods/run/u/with space"),
            ]
        );
    }
}
