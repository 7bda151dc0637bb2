//! `--private-users`: whether a pod gets a user namespace of its own, and
//! skiff's pool of host ids to give such pods ranges from: the entries of
//! user `skiff` in `/etc/subuid` and `/etc/subgid` (the files podman and
//! newuidmap read), added with [`DEFAULT_POOL`] when there are none
//! (docs/user-namespaces.md).

use std::path::Path;

use anyhow::{bail, Context, Result};
use skiff_pods::id_ranges::{Pool, IDS_PER_POD};
use skiff_pods::manifest::UserNamespace;

pub const SUBUID: &str = "/etc/subuid";
pub const SUBGID: &str = "/etc/subgid";
const OWNER: &str = "skiff";

/// The range added for `skiff` when the files have none: 2048 pods from
/// uid 1879048192 (0x70000000), above systemd-nspawn's `pick` range
/// (524288…1879048191) and the 100000-based ranges useradd hands out, and
/// below 2^31, which some tools still read as negative.
pub const DEFAULT_POOL: (u32, u32) = (0x7000_0000, 2048 * IDS_PER_POD);

/// What a pod asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PrivateUsers {
    /// The host's user namespace.
    #[default]
    No,
    /// A range of its own from skiff's pool.
    Auto,
    /// Exactly this range (uids and gids alike), not checked against
    /// other pods': the user asked for it.
    Range { base: u32, count: u32 },
}

impl PrivateUsers {
    /// `auto` (also `yes`, and the flag alone), `no`, or `BASE:COUNT`.
    pub fn parse(s: &str) -> Result<PrivateUsers, String> {
        match s {
            "auto" | "yes" | "" => return Ok(PrivateUsers::Auto),
            "no" => return Ok(PrivateUsers::No),
            _ => {}
        }
        let bad = || {
            format!("--private-users {s:?}: expected auto, no or BASE:COUNT (host uid and gid of the pod's root, how many ids)")
        };
        let (base, count) = s.split_once(':').ok_or_else(bad)?;
        let (base, count): (u32, u32) = (base.parse().map_err(|_| bad())?, count.parse().map_err(|_| bad())?);
        if base == 0 || count == 0 || base.checked_add(count - 1).is_none() {
            return Err(format!(
                "--private-users {s}: the range must start above 0 (the host's root) and have ids, within 32 bits"
            ));
        }
        Ok(PrivateUsers::Range { base, count })
    }

    /// The range an explicit `BASE:COUNT` gives (None for the others).
    pub fn explicit(self) -> Option<UserNamespace> {
        match self {
            PrivateUsers::Range { base, count } => {
                Some(UserNamespace { uid_base: base, gid_base: base, count, slot: None })
            }
            _ => None,
        }
    }
}

/// skiff's pool: the `skiff` entries of `subuid` and `subgid`, each file
/// given one (the default) if it has none.
pub fn pool(subuid: &Path, subgid: &Path) -> Result<Pool> {
    let (uid_base, uids) = entry(subuid)?;
    let (gid_base, gids) = entry(subgid)?;
    let count = uids.min(gids);
    if count < IDS_PER_POD {
        bail!(
            "skiff's user-namespace range is too small ({count} ids in {} and {}; a pod needs {IDS_PER_POD})",
            subuid.display(),
            subgid.display()
        );
    }
    Ok(Pool { uid_base, gid_base, count })
}

/// The first `skiff:START:COUNT` line of `file`, added when there is none
/// (under a lock on the file, so two skiffs add one line between them).
fn entry(file: &Path) -> Result<(u32, u32)> {
    if let Some(e) = read_entry(file)? {
        return Ok(e);
    }
    let lock = match std::fs::File::open(file) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    if let Some(f) = &lock {
        f.lock().with_context(|| format!("cannot lock {}", file.display()))?;
    }
    // Another skiff may have added it meanwhile (its new file replaced the
    // one locked here).
    if let Some(e) = read_entry(file)? {
        return Ok(e);
    }
    let mut text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let (start, count) = DEFAULT_POOL;
    text.push_str(&format!("{OWNER}:{start}:{count}\n"));
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name =
        file.file_name().and_then(|n| n.to_str()).with_context(|| format!("{} is not a file", file.display()))?;
    skiff_pods::atomic::write_atomic(dir, name, text.as_bytes())
        .with_context(|| format!("cannot add skiff's range to {}", file.display()))?;
    eprintln!("skiff: added {OWNER}:{start}:{count} to {} (user-namespace ranges for pods)", file.display());
    Ok((start, count))
}

fn read_entry(file: &Path) -> Result<Option<(u32, u32)>> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    for (n, line) in text.lines().enumerate() {
        let mut f = line.trim().split(':');
        if f.next() != Some(OWNER) {
            continue;
        }
        let parsed = (f.next().and_then(|s| s.parse::<u32>().ok()), f.next().and_then(|s| s.parse::<u32>().ok()));
        match parsed {
            (Some(start), Some(count)) if f.next().is_none() && start > 0 && start.checked_add(count).is_some() => {
                return Ok(Some((start, count)))
            }
            _ => bail!("{}:{}: invalid entry {line:?} (expected skiff:START:COUNT)", file.display(), n + 1),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_users_write() {
        assert_eq!(PrivateUsers::parse("auto"), Ok(PrivateUsers::Auto));
        assert_eq!(PrivateUsers::parse(""), Ok(PrivateUsers::Auto));
        assert_eq!(PrivateUsers::parse("no"), Ok(PrivateUsers::No));
        assert_eq!(PrivateUsers::parse("100000:65536"), Ok(PrivateUsers::Range { base: 100000, count: 65536 }));
        for bad in ["0:65536", "1:0", "x:1", "100000", "4294967295:2", "1:2:3", "-1:5"] {
            let e = PrivateUsers::parse(bad).unwrap_err();
            assert!(e.contains("--private-users"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_pool_comes_from_the_files_and_is_added_when_absent() {
        let d = tempfile::tempdir().unwrap();
        let (u, g) = (d.path().join("subuid"), d.path().join("subgid"));
        std::fs::write(&u, "alice:100000:65536\nskiff:300000:131072\n").unwrap();
        let p = pool(&u, &g).unwrap();
        assert_eq!(p, Pool { uid_base: 300000, gid_base: DEFAULT_POOL.0, count: 131072 });
        assert_eq!(std::fs::read_to_string(&g).unwrap(), format!("skiff:{}:{}\n", DEFAULT_POOL.0, DEFAULT_POOL.1));
        std::fs::write(&u, "alice:100000:65536").unwrap();
        pool(&u, &g).unwrap();
        assert_eq!(
            std::fs::read_to_string(&u).unwrap(),
            format!("alice:100000:65536\nskiff:{}:{}\n", DEFAULT_POOL.0, DEFAULT_POOL.1),
            "kept, with skiff's line after it"
        );
        std::fs::write(&u, "skiff:5:1000\n").unwrap();
        assert!(pool(&u, &g).unwrap_err().to_string().contains("too small"));
        for bad in ["skiff:x:65536\n", "skiff:0:65536\n", "skiff:1\n", "skiff:4294967295:65536\n"] {
            std::fs::write(&u, bad).unwrap();
            let e = pool(&u, &g).unwrap_err().to_string();
            assert!(e.contains("subuid:1: invalid entry"), "{bad}: {e}");
        }
    }
}
