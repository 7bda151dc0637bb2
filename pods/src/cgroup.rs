//! The pod's cgroup: `/skiff/<uuid>` in every cgroup hierarchy of the host
//! (each v1 hierarchy but cpuset, and the v2 one, so hybrid hosts work as
//! well as pure v2 ones). The flavor creates it and sets limits before the
//! pod's init starts, the init joins it before the app is forked, and
//! whoever finds the pod exited removes it (the flavor on exit, gc after a
//! SIGKILL). A small own module rather than cgroups-rs: see docs/cgroups.md.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Name of the parent cgroup of all pods in each hierarchy.
pub const PARENT: &str = "skiff";

/// The init's leaf in a pod of several apps. App names cannot contain
/// `_`, so it never collides with an app's leaf.
pub const INIT_LEAF: &str = "_init";

/// Limits of an app (docs/manifest.md); `None`: no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub memory_bytes: Option<u64>,
    /// Memory the app is meant to keep under pressure (a soft limit):
    /// `memory.soft_limit_in_bytes` on v1, `memory.low` on v2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation_bytes: Option<u64>,
    /// CPU time per 100 ms period, in thousandths of a CPU (500 = half).
    pub cpu_millis: Option<u64>,
    /// Relative weight, cgroup v1 `cpu.shares` scale (2..262144).
    pub cpu_shares: Option<u64>,
    pub pids: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// A v1 hierarchy and the controllers (or `name=`) it carries.
    V1(Vec<String>),
    V2,
}

/// A cgroup's use of memory and CPU ([`PodCgroup::usage`]); None where the
/// hierarchy does not count it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub memory_bytes: Option<u64>,
    /// Memory less inactive file pages: what the kubelet calls the
    /// working set.
    pub working_set_bytes: Option<u64>,
    /// CPU time used, in nanoseconds.
    pub cpu_nanos: Option<u64>,
}

/// `bytes` as `--memory` takes it: the largest of T, G, M, K (powers of
/// 1024) that divides it, so a limit reads back as it was written (`64M`).
pub fn size_text(bytes: u64) -> String {
    for (unit, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
        if bytes != 0 && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

#[derive(Clone, Debug)]
pub struct PodCgroup {
    /// (hierarchy kind, this pod's directory in it).
    dirs: Vec<(Kind, PathBuf)>,
}

const PERIOD_US: u64 = 100_000;

fn hierarchies(mountinfo: &str) -> Vec<(Kind, PathBuf)> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else { continue };
        let mount_point = pre.split(' ').nth(4).unwrap_or("");
        let mut post = post.split(' ');
        let (fstype, opts) = (post.next().unwrap_or(""), post.nth(1).unwrap_or(""));
        match fstype {
            "cgroup2" => out.push((Kind::V2, PathBuf::from(mount_point))),
            "cgroup" => {
                let controllers: Vec<String> = opts
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro") && !o.starts_with("release_agent") && *o != "clone_children")
                    .map(str::to_string)
                    .collect();
                // cpuset children start without cpus or mems and refuse tasks.
                if !controllers.iter().any(|c| c == "cpuset") {
                    out.push((Kind::V1(controllers), PathBuf::from(mount_point)));
                }
            }
            _ => {}
        }
    }
    out
}

/// What went wrong with a pod's cgroups, and where.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// `create cgroup`, `open`, `write "VALUE" to`.
        what: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the {0} cgroup controller is not available on this host")]
    NoController(String),
}

fn io_err(what: impl Into<String>, path: &Path) -> impl FnOnce(io::Error) -> CgroupError {
    let (what, path) = (what.into(), path.to_path_buf());
    move |source| CgroupError::Io { what, path, source }
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(io_err(format!("write {value:?} to"), path))
}

impl PodCgroup {
    /// Pod `uuid`'s cgroup under `parent` (an absolute cgroup path,
    /// checked by [`check_parent`]), else under `/skiff`.
    pub fn for_pod_in(parent: Option<&str>, uuid: &str) -> PodCgroup {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        Self::from_mountinfo(&info, parent, uuid)
    }

    fn from_mountinfo(info: &str, parent: Option<&str>, uuid: &str) -> PodCgroup {
        let parent = parent.map_or(PARENT, |p| p.trim_start_matches('/'));
        let dirs = hierarchies(info).into_iter().map(|(k, root)| (k, root.join(parent).join(uuid))).collect();
        PodCgroup { dirs }
    }

    /// The cgroup as `/proc/PID/cgroup` shows it.
    pub fn name(parent: Option<&str>, uuid: &str) -> String {
        format!("/{}/{uuid}", parent.map_or(PARENT, |p| p.trim_matches('/')))
    }

    /// A child cgroup `name` of this one, in every hierarchy.
    pub fn child(&self, name: &str) -> PodCgroup {
        PodCgroup { dirs: self.dirs.iter().map(|(k, d)| (k.clone(), d.join(name))).collect() }
    }

    /// Where an app runs: with `leaves` (a pod of several apps, or a
    /// sandbox: `PodManifest::cgroup_leaves`) each app has its own leaf
    /// `/skiff/<uuid>/<app>` and the init runs in [`INIT_LEAF`]; a pod of
    /// one app has one cgroup (the app's limits are the pod's, and the app
    /// inherits it from the init for free).
    pub fn for_app(&self, leaves: bool, app: &str) -> PodCgroup {
        if leaves {
            self.child(app)
        } else {
            self.clone()
        }
    }

    /// Where the pod's init runs (see [`PodCgroup::for_app`]).
    pub fn for_init(&self, leaves: bool) -> PodCgroup {
        if leaves {
            self.child(INIT_LEAF)
        } else {
            self.clone()
        }
    }

    /// Opens the cgroup for processes to join it (see [`Join`]), which
    /// they can do after they have lost sight of the host's /sys.
    pub fn open_join(&self) -> Result<Join, CgroupError> {
        let mut join = Join { v1_tasks: Vec::new(), v2: None };
        for (kind, d) in &self.dirs {
            if *kind == Kind::V2 {
                let procs = d.join("cgroup.procs");
                let procs_file = OpenOptions::new().write(true).open(&procs).map_err(io_err("open", &procs))?;
                join.v2 = Some(V2 { dir: File::open(d).map_err(io_err("open", d))?, procs, procs_file });
            } else {
                let p = d.join("tasks");
                join.v1_tasks.push((p.clone(), OpenOptions::new().write(true).open(&p).map_err(io_err("open", &p))?));
            }
        }
        Ok(join)
    }

    fn dir_with(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(k, _)| matches!(k, Kind::V1(c) if c.iter().any(|x| x == controller)))
            .map(|(_, d)| d.as_path())
            .or_else(|| self.v2().filter(|d| controller_enabled(d, controller)))
    }

    fn v2(&self) -> Option<&Path> {
        self.dirs.iter().find(|(k, _)| *k == Kind::V2).map(|(_, d)| d.as_path())
    }

    pub fn create(&self) -> Result<(), CgroupError> {
        for (kind, dir) in &self.dirs {
            if *kind == Kind::V2 {
                // Controllers must be enabled top-down for a v2 child to
                // have their files; unavailable ones are simply absent.
                if let Some(parent) = dir.parent() {
                    let _ = std::fs::create_dir_all(parent);
                    // From the hierarchy's root (the first ancestor that
                    // is not a cgroup of skiff's) down to the parent.
                    let mut chain: Vec<&Path> =
                        parent.ancestors().take_while(|a| a.join("cgroup.procs").exists()).collect();
                    chain.reverse();
                    // Only what the hierarchy has and the parent does not
                    // enable yet: usually nothing, after the first pod.
                    let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap_or_default();
                    let available = chain.first().map(|root| read(root, "cgroup.controllers")).unwrap_or_default();
                    let enabled = read(parent, "cgroup.subtree_control");
                    let listed = |list: &str, c: &str| list.split_whitespace().any(|x| x == c);
                    let missing = ["memory", "cpu", "pids"].into_iter().filter(|c| listed(&available, c));
                    for c in missing.filter(|c| !listed(&enabled, c)) {
                        for d in &chain {
                            let _ = std::fs::write(d.join("cgroup.subtree_control"), format!("+{c}"));
                        }
                    }
                }
            }
            // A gc or rm may remove the empty parent between its
            // creation and ours: try again then.
            let mut made = std::fs::create_dir_all(dir);
            for _ in 0..3 {
                if made.is_ok() {
                    break;
                }
                made = std::fs::create_dir_all(dir);
            }
            made.map_err(io_err("create cgroup", dir))?;
        }
        Ok(())
    }

    pub fn apply(&self, r: &Resources) -> Result<(), CgroupError> {
        let need = |controller: &str| {
            self.dir_with(controller).ok_or_else(|| CgroupError::NoController(controller.to_string()))
        };
        if let Some(m) = r.memory_bytes {
            let d = need("memory")?;
            if self.is_v2(d) {
                write(&d.join("memory.max"), &m.to_string())?;
            } else {
                write(&d.join("memory.limit_in_bytes"), &m.to_string())?;
            }
        }
        if let Some(m) = r.memory_reservation_bytes {
            let d = need("memory")?;
            let file = if self.is_v2(d) { "memory.low" } else { "memory.soft_limit_in_bytes" };
            write(&d.join(file), &m.to_string())?;
        }
        if let Some(mc) = r.cpu_millis {
            let d = need("cpu")?;
            let quota = (mc * PERIOD_US / 1000).max(1000);
            if self.is_v2(d) {
                write(&d.join("cpu.max"), &format!("{quota} {PERIOD_US}"))?;
            } else {
                write(&d.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
                write(&d.join("cpu.cfs_quota_us"), &quota.to_string())?;
            }
        }
        if let Some(s) = r.cpu_shares {
            let d = need("cpu")?;
            if self.is_v2(d) {
                // runc's conversion of the v1 scale to cpu.weight.
                let weight = 1 + (s.clamp(2, 262_144) - 2) * 9999 / 262_142;
                write(&d.join("cpu.weight"), &weight.to_string())?;
            } else {
                write(&d.join("cpu.shares"), &s.to_string())?;
            }
        }
        if let Some(p) = r.pids {
            write(&need("pids")?.join("pids.max"), &p.to_string())?;
        }
        Ok(())
    }

    fn is_v2(&self, d: &Path) -> bool {
        self.v2() == Some(d)
    }

    /// What the cgroup's processes use now, where the kernel counts it.
    pub fn usage(&self) -> Usage {
        let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).ok();
        let stat = |text: Option<String>, key: &str| -> Option<u64> {
            text?.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        };
        let mut u = Usage::default();
        if let Some(d) = self.dir_with("memory") {
            let v2 = self.is_v2(d);
            u.memory_bytes = read(d, if v2 { "memory.current" } else { "memory.usage_in_bytes" })
                .and_then(|t| t.trim().parse().ok());
            let inactive = stat(read(d, "memory.stat"), if v2 { "inactive_file" } else { "total_inactive_file" });
            u.working_set_bytes = u.memory_bytes.map(|m| m.saturating_sub(inactive.unwrap_or(0)));
        }
        if let Some(d) = self.dir_with("cpuacct") {
            u.cpu_nanos = read(d, "cpuacct.usage").and_then(|t| t.trim().parse().ok());
        } else if let Some(d) = self.v2() {
            u.cpu_nanos = stat(read(d, "cpu.stat"), "usage_usec").map(|us| us.saturating_mul(1000));
        }
        u
    }

    /// The processes in it (those of its first hierarchy that lists any).
    pub fn procs(&self) -> Vec<i32> {
        self.dirs
            .iter()
            .find_map(|(_, d)| std::fs::read_to_string(d.join("cgroup.procs")).ok().filter(|t| !t.trim().is_empty()))
            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// How many processes the kernel OOM-killed for the memory limit.
    pub fn oom_kills(&self) -> u64 {
        let Some(d) = self.dir_with("memory") else { return 0 };
        let file = if self.is_v2(d) { "memory.events" } else { "memory.oom_control" };
        std::fs::read_to_string(d.join(file))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Removes the pod's directories and their child cgroups (they must
    /// hold no process any more). The parent [`PARENT`] stays for the next
    /// pod (making and removing it in each hierarchy was a tenth of a
    /// pod's start here): see [`remove_empty_parents`].
    pub fn remove(&self) -> io::Result<()> {
        let mut first_err = None;
        for (_, dir) in &self.dirs {
            match remove_tree(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// An absolute cgroup path for `--cgroup-parent`: `/` and names of
/// letters, digits, `_`, `-`, `.` and `:` (not `.` or `..` alone).
pub fn check_parent(p: &str) -> Result<(), String> {
    let bad =
        || format!("cgroup parent {p:?}: expected an absolute path like /kubepods/pod1 (letters, digits, _ - . :)");
    let rest = p.strip_prefix('/').ok_or_else(bad)?;
    let ok = |c: &str| {
        !c.is_empty() && c != "." && c != ".." && c.chars().all(|x| x.is_ascii_alphanumeric() || "_-.:".contains(x))
    };
    if rest.is_empty() || !rest.trim_end_matches('/').split('/').all(ok) {
        return Err(bad());
    }
    Ok(())
}

/// Removes the parent cgroup [`PARENT`] from every hierarchy where no pod
/// has a cgroup any more (`rm` and `gc` call it, so a host where skiff
/// runs no pod has none of its cgroups).
pub fn remove_empty_parents() {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for (_, root) in hierarchies(&info) {
        // Fails while a pod's cgroup is in it, as it should.
        let _ = std::fs::remove_dir(root.join(PARENT));
    }
}

/// A pod's cgroup, opened for a process to join it without the cost of a
/// write to `cgroup.procs`: that takes the kernel's global threadgroup
/// lock, whose first writer waits for an RCU grace period (about 7 ms on
/// this machine kind, more than a whole pod start). A single-threaded
/// process joins the v1 hierarchies by moving its one thread (`tasks`,
/// which takes no global lock) and is forked straight into the v2 one
/// (`skiff_rt::fork`).
pub struct Join {
    /// Each v1 hierarchy's `tasks` file.
    v1_tasks: Vec<(PathBuf, File)>,
    v2: Option<V2>,
}

/// The cgroup in the v2 hierarchy: its directory and its `cgroup.procs`.
struct V2 {
    dir: File,
    procs: PathBuf,
    procs_file: File,
}

impl Join {
    /// The cgroup's directory in the v2 hierarchy, if the host has one.
    pub fn v2_dir(&self) -> Option<BorrowedFd<'_>> {
        self.v2.as_ref().map(|v2| v2.dir.as_fd())
    }

    /// Moves the calling thread into the cgroup in every v1 hierarchy:
    /// the whole process, if it is single-threaded, as the caller must be.
    pub fn enter_v1(&self) -> Result<(), CgroupError> {
        for (path, f) in &self.v1_tasks {
            let mut f: &File = f;
            f.write_all(b"0").map_err(io_err("write \"0\" to", path))?;
        }
        Ok(())
    }

    /// Moves process `pid` (as the caller's PID namespace numbers it) into
    /// the cgroup in the v2 hierarchy, if the host has one.
    pub fn add_v2(&self, pid: i32) -> Result<(), CgroupError> {
        match &self.v2 {
            Some(v2) => (&v2.procs_file)
                .write_all(pid.to_string().as_bytes())
                .map_err(io_err(format!("write \"{pid}\" to"), &v2.procs)),
            None => Ok(()),
        }
    }
}

/// Child cgroups first: a cgroup with children cannot be removed.
fn remove_tree(dir: &Path) -> io::Result<()> {
    // Most pods' cgroups have no leaves: one rmdir, without listing the
    // directory's control files first (about 15 to 35 in each v1
    // hierarchy). A cgroup with children, or not yet released, is EBUSY.
    match std::fs::remove_dir(dir) {
        Err(e) if is_busy(&e) => {}
        r => return r,
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path())?;
            }
        }
    }
    remove_when_released(dir)
}

fn is_busy(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error())
}

/// `rmdir` of a cgroup whose last task has just been reaped can still
/// fail with EBUSY for a moment while the kernel lets go of it.
fn remove_when_released(dir: &Path) -> io::Result<()> {
    let mut tries = 0;
    loop {
        match std::fs::remove_dir(dir) {
            Err(e) if is_busy(&e) && tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            r => return r,
        }
    }
}

fn controller_enabled(dir: &Path, controller: &str) -> bool {
    std::fs::read_to_string(dir.join("cgroup.controllers")).is_ok_and(|c| c.split_whitespace().any(|x| x == controller))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn sizes_read_back_as_written() {
        assert_eq!(size_text(64 << 20), "64M");
        assert_eq!(size_text(1 << 30), "1G");
        assert_eq!(size_text(1536 << 20), "1536M");
        assert_eq!(size_text(5 << 40), "5T");
        assert_eq!(size_text(4100), "4100 bytes");
        assert_eq!(size_text(0), "0 bytes");
    }

    #[test]
    fn hybrid_layout() {
        let c = PodCgroup::from_mountinfo(HYBRID, None, "u1");
        let dirs: Vec<String> = c.dirs.iter().map(|(_, d)| d.display().to_string()).collect();
        assert_eq!(
            dirs,
            [
                "/sys/fs/cgroup/cpu/skiff/u1",
                "/sys/fs/cgroup/memory/skiff/u1",
                "/sys/fs/cgroup/systemd/skiff/u1",
                "/sys/fs/cgroup/unified/skiff/u1"
            ]
        );
        assert_eq!(c.dir_with("memory"), Some(Path::new("/sys/fs/cgroup/memory/skiff/u1")));
        assert_eq!(PodCgroup::name(None, "u1"), "/skiff/u1");
        assert_eq!(c.for_app(false, "web").dirs, c.dirs);
        assert_eq!(c.for_init(false).dirs, c.dirs);
        assert_eq!(c.for_app(true, "web").dir_with("memory"), Some(Path::new("/sys/fs/cgroup/memory/skiff/u1/web")));
        assert_eq!(c.for_init(true).dir_with("memory"), Some(Path::new("/sys/fs/cgroup/memory/skiff/u1/_init")));
    }

    #[test]
    fn pure_v2_layout() {
        let c =
            PodCgroup::from_mountinfo("30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n", None, "u2");
        assert_eq!(c.v2(), Some(Path::new("/sys/fs/cgroup/skiff/u2")));
    }

    #[test]
    fn a_parent_of_the_users_and_hostile_parents() {
        let c = PodCgroup::from_mountinfo(HYBRID, Some("/kubepods/burstable/pod-1"), "u3");
        assert_eq!(c.dir_with("memory"), Some(Path::new("/sys/fs/cgroup/memory/kubepods/burstable/pod-1/u3")));
        assert_eq!(PodCgroup::name(Some("/kubepods/pod-1/"), "u3"), "/kubepods/pod-1/u3");
        for good in ["/kubepods", "/kubepods/besteffort/pod0a1b:x", "/a/"] {
            assert_eq!(check_parent(good), Ok(()), "{good}");
        }
        for bad in ["", "/", "kubepods", "/a/../b", "/a/./b", "/a//b", "/a b", "/a\nb", "//"] {
            assert!(check_parent(bad).is_err(), "{bad:?}");
        }
    }
}
