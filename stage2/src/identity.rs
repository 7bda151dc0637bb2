//! Who the app runs as: user and group names or numbers resolved in the
//! app's own `/etc/passwd` and `/etc/group`, read inside the pod (after
//! pivot_root), so image symlinks cannot point the lookup at the host.

use skiff_rt::error::Result;
use std::path::Path;

/// Bigger account files than this are not believed.
const MAX_FILE: u64 = 4 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, the primary group first.
    pub groups: Vec<u32>,
    pub home: String,
}

struct Passwd {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct Group {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn read(path: &Path) -> String {
    use std::io::Read;
    let mut s = String::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(MAX_FILE).read_to_string(&mut s);
    }
    s
}

fn passwd(text: &str) -> Vec<Passwd> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 7).then(|| {
                Some(Passwd { name: f[0].into(), uid: f[2].parse().ok()?, gid: f[3].parse().ok()?, home: f[5].into() })
            })?
        })
        .collect()
}

fn groups(text: &str) -> Vec<Group> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4).then(|| {
                Some(Group {
                    name: f[0].into(),
                    gid: f[2].parse().ok()?,
                    members: f[3].split(',').filter(|m| !m.is_empty()).map(str::to_string).collect(),
                })
            })?
        })
        .collect()
}

/// Resolves `user` (name or number) and `group` (name or number; default:
/// the user's primary group, or 0) against the account files under `root`;
/// `add` (names or numbers) joins the supplementary groups.
pub fn resolve(root: &Path, user: &str, group: Option<&str>, add: &[String]) -> Result<Identity> {
    let users = passwd(&read(&root.join("etc/passwd")));
    let all_groups = groups(&read(&root.join("etc/group")));
    let entry = match user.parse::<u32>() {
        Ok(uid) => users.iter().find(|p| p.uid == uid),
        Err(_) => Some(
            users
                .iter()
                .find(|p| p.name == user)
                .ok_or_else(|| format!("user {user:?} is not in the image's /etc/passwd"))?,
        ),
    };
    let uid = entry.map_or_else(|| user.parse::<u32>().unwrap_or(0), |p| p.uid);
    let gid_of = |g: &str| match g.parse::<u32>() {
        Ok(n) => Ok(n),
        Err(_) => all_groups
            .iter()
            .find(|x| x.name == g)
            .map(|x| x.gid)
            .ok_or_else(|| format!("group {g:?} is not in the image's /etc/group")),
    };
    let gid = match group {
        Some(g) => gid_of(g)?,
        None => entry.map_or(0, |p| p.gid),
    };
    let mut gids = vec![gid];
    if let Some(p) = entry {
        for g in all_groups.iter().filter(|g| g.members.contains(&p.name)) {
            if !gids.contains(&g.gid) {
                gids.push(g.gid);
            }
        }
    }
    for g in add {
        let n = gid_of(g)?;
        if !gids.contains(&n) {
            gids.push(n);
        }
    }
    let home = entry.map(|p| p.home.clone()).filter(|h| h.starts_with('/')).unwrap_or_else(|| "/".into());
    Ok(Identity { uid, gid, groups: gids, home })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1000::/srv/web:/bin/sh\nbroken line\nodd:x:notanumber:1::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(d.path().join("etc/group"), "root:x:0:\nweb:x:1000:\nwheel:x:10:web,other\naudio:x:29:web\n")
            .unwrap();
        d
    }

    #[test]
    fn names_numbers_groups_and_home() {
        let d = root();
        let id = resolve(d.path(), "web", None, &[]).unwrap();
        assert_eq!(id, Identity { uid: 1000, gid: 1000, groups: vec![1000, 10, 29], home: "/srv/web".into() });
        let add = ["audio".to_string(), "4000".to_string()];
        assert_eq!(resolve(d.path(), "0", None, &add).unwrap().groups, [0, 29, 4000]);
        assert!(resolve(d.path(), "0", None, &["video".to_string()]).unwrap_err().to_string().contains("video"));
        let id = resolve(d.path(), "1000", Some("wheel"), &[]).unwrap();
        assert_eq!((id.uid, id.gid, id.groups[0]), (1000, 10, 10));
        let id = resolve(d.path(), "4242", None, &[]).unwrap();
        assert_eq!(id, Identity { uid: 4242, gid: 0, groups: vec![0], home: "/".into() }, "unknown numbers are fine");
        assert_eq!(resolve(d.path(), "0", None, &[]).unwrap().home, "/root");
    }

    #[test]
    fn unknown_names_are_errors() {
        let d = root();
        assert!(resolve(d.path(), "nobody", None, &[]).unwrap_err().to_string().contains("nobody"));
        assert!(resolve(d.path(), "web", Some("staff"), &[]).unwrap_err().to_string().contains("staff"));
        let empty = tempfile::tempdir().unwrap();
        assert!(resolve(empty.path(), "web", None, &[]).is_err());
        assert_eq!(resolve(empty.path(), "7", Some("8"), &[]).unwrap().gid, 8);
    }
}
