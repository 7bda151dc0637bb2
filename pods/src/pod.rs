//! One pod directory: finding it, locking it, moving it between states.

use std::fs::{File, TryLockError};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::layout::{Store, PID_FILE, STARTED_FILE};
use crate::manifest::{ManifestError, ManifestSummary, PodManifest, MANIFEST_FILE};
use crate::small_file;
use crate::state::{PodState, StateDir};
use crate::uuid;

#[derive(Debug, thiserror::Error)]
pub enum PodError {
    /// Also for what cannot be a name or a UUID prefix (`../etc`): to the
    /// user it is one more thing no pod is called.
    #[error("no pod named or with UUID prefix {0:?}")]
    NotFound(String),
    #[error("{0:?} matches several pods ({1}); give more of the UUID")]
    Ambiguous(String, String),
    #[error("pod {0} is locked by another skiff process")]
    Busy(String),
    #[error("pod {uuid}: cannot move from {from} to {to}: {err}")]
    Transition { uuid: String, from: &'static str, to: &'static str, err: io::Error },
    #[error("pod {uuid}: {what}: {err}")]
    Io { uuid: String, what: String, err: io::Error },
    #[error("pod {uuid}: {err}")]
    Manifest { uuid: String, err: ManifestError },
}

type Result<T> = std::result::Result<T, PodError>;

/// How long [`Pod::try_lock`] waits out other skiffs' momentary looks at a
/// pod (microseconds each, unless the machine is very busy).
pub const LOCK_SETTLE: Duration = Duration::from_millis(100);

/// An open pod directory. The lock (if taken) lives on `dir` and goes with
/// it: handing `dir` to another process hands over the lock.
#[derive(Debug)]
pub struct Pod {
    store: Store,
    uuid: String,
    state_dir: StateDir,
    dir: File,
    locked: bool,
}

/// The pod directory itself, for writes relative to it (`atomic::replace_at`).
impl AsFd for Pod {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }
}

impl Pod {
    /// Creates `pods/embryo/<uuid>` and takes its exclusive lock.
    pub fn create(store: &Store) -> Result<Pod> {
        let uuid = uuid::new_v4().map_err(|e| PodError::Io {
            uuid: String::new(),
            what: "cannot generate a UUID".into(),
            err: e,
        })?;
        let path = store.pod_path(StateDir::Embryo, &uuid);
        // Made under a name no reader lists, locked, then renamed: an
        // embryo whose lock is free has a creator that died, and gc may
        // take it at once (see `sweep_unborn` for one killed before the
        // rename).
        let unborn = store.pod_path(StateDir::Embryo, &format!("{UNBORN}{uuid}"));
        let io_err = |what: &str, e| PodError::Io { uuid: uuid.clone(), what: what.into(), err: e };
        // The store's layout is trusted (Store::ensure_layout), but a state
        // directory removed since is made again rather than failing the pod.
        let created = match std::fs::create_dir(&unborn) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                store.ensure_pod_dirs().and_then(|()| std::fs::create_dir(&unborn))
            }
            r => r,
        };
        created.map_err(|e| io_err(&format!("cannot create {}", unborn.display()), e))?;
        let born = File::open(&unborn).and_then(|dir| {
            // gc may be looking at it already.
            lock_settled(&dir).map_err(lock_err)?;
            std::fs::rename(&unborn, &path)?;
            Ok(dir)
        });
        let dir = match born.and_then(|dir| skiff_rt::failpoint!("pod.create").map(|()| dir)) {
            Ok(dir) => dir,
            Err(e) => {
                let _ = std::fs::remove_dir(&unborn).or_else(|_| std::fs::remove_dir(&path));
                return Err(io_err("cannot create the pod's directory", e));
            }
        };
        Ok(Pod { store: store.clone(), uuid, state_dir: StateDir::Embryo, dir, locked: true })
    }

    /// Finds a pod by name (`--name`), full UUID or unique prefix, in any
    /// state. A name wins over a UUID prefix that happens to spell it, even
    /// when its pod is gone: `rm a` after pod `a` was removed must not
    /// remove whichever pod's UUID starts with `a`.
    pub fn find(store: &Store, id: &str) -> Result<Pod> {
        match crate::names::lookup(store, id) {
            Some(uuid) => Self::find_full(store, &uuid).map_err(|_| PodError::NotFound(id.into())),
            None => Self::find_uuid(store, id),
        }
    }

    fn find_uuid(store: &Store, id: &str) -> Result<Pod> {
        if !uuid::is_valid_prefix(id) {
            return Err(PodError::NotFound(id.into()));
        }
        if uuid::is_valid(id) {
            return Self::find_full(store, id);
        }
        // A pod may move between state directories while we look: retry a
        // few times before saying it does not exist.
        for _ in 0..3 {
            let matches = Self::matching(store, id);
            match matches.len() {
                0 => return Err(PodError::NotFound(id.into())),
                1 => {
                    let (d, u) = &matches[0];
                    if let Ok(dir) = File::open(store.pod_path(*d, u)) {
                        return Ok(Pod { store: store.clone(), uuid: u.clone(), state_dir: *d, dir, locked: false });
                    }
                }
                _ => {
                    let names: Vec<_> = matches.iter().map(|(_, u)| u.as_str()).collect();
                    return Err(PodError::Ambiguous(id.into(), names.join(", ")));
                }
            }
        }
        Err(PodError::NotFound(id.into()))
    }

    /// A full UUID's directory, opened where it is: no state directory is
    /// listed (a store of a thousand pods made that a millisecond). It may
    /// move on between two looks: a few rounds before it does not exist.
    fn find_full(store: &Store, uuid: &str) -> Result<Pod> {
        for _ in 0..3 {
            for d in StateDir::ALL {
                if let Ok(dir) = File::open(store.pod_path(d, uuid)) {
                    return Ok(Pod { store: store.clone(), uuid: uuid.to_string(), state_dir: d, dir, locked: false });
                }
            }
        }
        Err(PodError::NotFound(uuid.into()))
    }

    fn matching(store: &Store, id: &str) -> Vec<(StateDir, String)> {
        let mut out: Vec<(StateDir, String)> = Vec::new();
        for d in StateDir::ALL {
            for u in list_dir(store, d) {
                if u.starts_with(id) && !out.iter().any(|(_, x)| *x == u) {
                    out.push((d, u));
                }
            }
        }
        out
    }

    /// Every pod in the store, in no particular order. Pods that vanish
    /// while listing are skipped.
    pub fn all(store: &Store) -> Vec<Pod> {
        let mut pods: Vec<Pod> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for d in StateDir::ALL {
            for u in list_dir(store, d) {
                if seen.contains(&u) {
                    continue;
                }
                if let Ok(dir) = open_dir(&store.pod_path(d, &u)) {
                    seen.insert(u.clone());
                    pods.push(Pod { store: store.clone(), uuid: u, state_dir: d, dir, locked: false });
                }
            }
        }
        pods
    }

    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    pub fn state_dir(&self) -> StateDir {
        self.state_dir
    }

    pub fn path(&self) -> PathBuf {
        self.store.pod_path(self.state_dir, &self.uuid)
    }

    /// The state as other processes see it: probes the lock with a shared
    /// lock on this process's own open directory, which holds no lock of
    /// its own then (flock locks belong to open files), and lets it go.
    pub fn state(&self) -> PodState {
        if self.locked {
            return self.state_dir.state(true);
        }
        let locked = match self.dir.try_lock_shared() {
            Ok(()) => {
                let _ = self.dir.unlock();
                false
            }
            Err(TryLockError::WouldBlock) => true,
            // Cannot tell: treat as busy, as a pod that moved on.
            Err(TryLockError::Error(_)) => true,
        };
        self.state_dir.state(locked)
    }

    /// Takes the exclusive lock; `Busy` if someone holds it. Other skiffs
    /// read a pod's state by taking its shared lock for a moment
    /// ([`Pod::state`], `status --wait`), so a lock found taken is tried
    /// again for up to [`LOCK_SETTLE`] before the pod counts as busy: a
    /// `status` polling a prepared pod must not make `run-prepared` of it
    /// fail. A pod that may well be running is better asked [`Pod::state`]
    /// first, which does not wait.
    pub fn try_lock(&mut self) -> Result<()> {
        if self.locked {
            return Ok(());
        }
        match lock_settled(&self.dir) {
            Ok(()) => {
                self.locked = true;
                Ok(())
            }
            Err(TryLockError::WouldBlock) => Err(PodError::Busy(self.uuid.clone())),
            Err(TryLockError::Error(e)) => Err(self.io("cannot lock pod directory", e)),
        }
    }

    /// Blocks until no process holds the exclusive lock (the pod's stage1
    /// has exited). Used by `status --wait`.
    pub fn wait_unlocked(&self) -> Result<()> {
        let f = File::open(self.path()).map_err(|e| self.io("cannot open pod directory", e))?;
        f.lock_shared().map_err(|e| self.io("cannot wait for pod lock", e))?;
        Ok(())
    }

    /// Moves the pod to another state directory with one `rename(2)`.
    pub fn transition(&mut self, to: StateDir) -> Result<()> {
        let from = self.path();
        let dest = self.store.pod_path(to, &self.uuid);
        let fail = skiff_rt::failpoint!("pod.transition.{}", to.dir_name());
        fail.and_then(|()| std::fs::rename(&from, &dest)).map_err(|e| PodError::Transition {
            uuid: self.uuid.clone(),
            from: self.state_dir.dir_name(),
            to: to.dir_name(),
            err: e,
        })?;
        self.state_dir = to;
        Ok(())
    }

    pub fn read_manifest(&self) -> Result<PodManifest> {
        let data = self.read_manifest_file()?;
        PodManifest::from_json(&data).map_err(|e| PodError::Manifest { uuid: self.uuid.clone(), err: e })
    }

    /// What `list` and `status` show of the manifest, without building
    /// the rest of it.
    pub fn read_manifest_summary(&self) -> Result<ManifestSummary> {
        let data = self.read_manifest_file()?;
        ManifestSummary::from_json(&data).map_err(|e| PodError::Manifest { uuid: self.uuid.clone(), err: e })
    }

    fn read_manifest_file(&self) -> Result<Vec<u8>> {
        small_file::read_at(&self.dir, MANIFEST_FILE.as_ref()).map_err(|e| self.io("cannot read the pod manifest", e))
    }

    /// The host PID of the pod's init, once stage1 has started it.
    pub fn pid(&self) -> Option<i32> {
        small_file::read_trimmed_at(&self.dir, PID_FILE.as_ref())?.parse().ok()
    }

    pub fn started_at(&self) -> Option<String> {
        small_file::read_trimmed_at(&self.dir, STARTED_FILE.as_ref())
    }

    /// The networks the flavor recorded as attached.
    pub fn net_state(&self) -> crate::netstate::NetState {
        crate::netstate::NetState::read_at(&self.dir)
    }

    /// When the pod directory last changed state (the ctime of the
    /// directory, which `rename(2)` updates).
    pub fn changed_at(&self) -> Option<SystemTime> {
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(self.path()).ok()?;
        let secs = u64::try_from(md.ctime()).ok()?;
        Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs))
    }

    /// Gives up the directory handle (and with it the lock) so it can be
    /// inherited by the stage1 flavor across `exec`.
    pub fn into_fd(self) -> OwnedFd {
        OwnedFd::from(self.dir)
    }

    fn io(&self, what: &str, e: io::Error) -> PodError {
        PodError::Io { uuid: self.uuid.clone(), what: what.into(), err: e }
    }
}

/// `dir`'s exclusive lock, waiting out momentary shared ones for up to
/// [`LOCK_SETTLE`] (see [`Pod::try_lock`]).
fn lock_settled(dir: &File) -> std::result::Result<(), TryLockError> {
    let mut waited = Duration::ZERO;
    let mut pause = Duration::from_millis(1);
    loop {
        match dir.try_lock() {
            Err(TryLockError::WouldBlock) if waited < LOCK_SETTLE => {
                std::thread::sleep(pause);
                waited += pause;
                pause = (pause * 2).min(Duration::from_millis(16));
            }
            r => return r,
        }
    }
}

fn lock_err(e: TryLockError) -> io::Error {
    match e {
        TryLockError::WouldBlock => io::Error::from(io::ErrorKind::WouldBlock),
        TryLockError::Error(e) => e,
    }
}

/// A pod directory, opened for its lock (one system call: std's open
/// under musl adds an `fcntl`).
fn open_dir(path: &std::path::Path) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    Ok(File::from(fd))
}

/// The name prefix of a pod directory being made ([`Pod::create`]).
const UNBORN: &str = ".new-";

/// How old an unborn pod's directory must be before [`sweep_unborn`]
/// takes it: its creator locks it right after `mkdir`, and one found
/// unlocked in between must not be taken from under it.
const UNBORN_MIN_AGE: Duration = Duration::from_secs(10);

/// Removes the directories of pods whose creator died before naming them
/// (none is listed); how many. A creator still alive holds the lock.
pub fn sweep_unborn(store: &Store) -> usize {
    let Ok(rd) = std::fs::read_dir(store.pods_dir(StateDir::Embryo)) else { return 0 };
    let mut n = 0;
    for e in rd.flatten() {
        let unborn = e.file_name().to_str().is_some_and(|f| f.strip_prefix(UNBORN).is_some_and(uuid::is_valid));
        let old = || {
            let made = e.metadata().and_then(|m| m.modified()).ok();
            made.and_then(|t| t.elapsed().ok()).is_some_and(|age| age >= UNBORN_MIN_AGE)
        };
        if !unborn || !old() {
            continue;
        }
        let Ok(dir) = File::open(e.path()) else { continue };
        if dir.try_lock().is_ok() && std::fs::remove_dir_all(e.path()).is_ok() {
            n += 1;
        }
    }
    n
}

fn list_dir(store: &Store, d: StateDir) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(store.pods_dir(d)) else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).filter(|n| uuid::is_valid(n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        s.ensure_pod_dirs().unwrap();
        (d, s)
    }

    #[test]
    fn a_pod_is_made_even_where_its_state_directories_were_removed() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path().join("store"));
        s.ensure_layout(&[]).unwrap();
        std::fs::remove_dir_all(d.path().join("store/pods")).unwrap();
        let mut p = Pod::create(&s).unwrap();
        p.transition(StateDir::Prepare).unwrap();
        p.transition(StateDir::Run).unwrap();
        assert_eq!(p.state(), PodState::Running);
    }

    #[test]
    fn unborn_pods_of_dead_creators_are_swept_and_live_ones_kept() {
        let (_d, s) = store();
        let live = Pod::create(&s).unwrap();
        let dead = s.pod_path(StateDir::Embryo, &format!("{UNBORN}{}", uuid::new_v4().unwrap()));
        let held = s.pod_path(StateDir::Embryo, &format!("{UNBORN}{}", uuid::new_v4().unwrap()));
        let stranger = s.pod_path(StateDir::Embryo, ".new-not-a-uuid");
        for d in [&dead, &held, &stranger] {
            std::fs::create_dir(d).unwrap();
        }
        let holder = File::open(&held).unwrap();
        holder.lock().unwrap();
        assert_eq!(sweep_unborn(&s), 0, "a fresh one may be getting its lock");
        let past = std::time::SystemTime::now() - UNBORN_MIN_AGE - Duration::from_secs(1);
        for d in [&dead, &held, &stranger] {
            File::open(d).unwrap().set_modified(past).unwrap();
        }
        assert_eq!(sweep_unborn(&s), 1);
        assert!(!dead.exists() && held.exists() && stranger.exists());
        assert!(live.path().exists(), "a named embryo is gc's, not the sweep's");
        assert_eq!(Pod::all(&s).len(), 1, "no unborn pod is listed");
    }

    #[test]
    fn lifecycle_through_rename_and_lock() {
        let (_d, s) = store();
        let mut p = Pod::create(&s).unwrap();
        assert_eq!(p.state(), PodState::Embryo);
        p.transition(StateDir::Prepare).unwrap();
        let other = Pod::find(&s, p.uuid()).unwrap();
        assert_eq!(other.state(), PodState::Preparing, "lock held by the creator");
        p.transition(StateDir::Run).unwrap();
        let uuid = p.uuid().to_string();
        drop(p);
        let mut again = Pod::find(&s, &uuid[..8]).unwrap();
        assert_eq!(again.state(), PodState::Exited, "lock released: exited");
        again.try_lock().unwrap();
        let third = Pod::find(&s, &uuid).unwrap();
        assert_eq!(third.state(), PodState::Running);
    }

    #[test]
    fn a_locked_pod_cannot_be_locked_twice() {
        let (_d, s) = store();
        let p = Pod::create(&s).unwrap();
        let mut q = Pod::find(&s, p.uuid()).unwrap();
        assert!(matches!(q.try_lock(), Err(PodError::Busy(_))));
    }

    #[test]
    fn a_momentary_look_at_the_state_does_not_make_the_pod_busy() {
        let (_d, s) = store();
        let uuid = Pod::create(&s).unwrap().uuid().to_string();
        let mut p = Pod::find(&s, &uuid).unwrap();
        let look = File::open(p.path()).unwrap();
        look.lock_shared().unwrap();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            drop(look);
        });
        p.try_lock().unwrap();
        t.join().unwrap();
    }

    #[test]
    fn a_name_whose_pod_is_gone_does_not_fall_back_to_a_uuid_prefix() {
        let (_d, s) = store();
        let other = Pod::create(&s).unwrap();
        let prefix = &other.uuid()[..1];
        let names = crate::names::table(&s);
        let _lock = names.lock().unwrap();
        names.link(prefix, &uuid::new_v4().unwrap()).unwrap();
        assert!(matches!(Pod::find(&s, prefix), Err(PodError::NotFound(_))));
        names.link(prefix, other.uuid()).unwrap();
        assert_eq!(Pod::find(&s, prefix).unwrap().uuid(), other.uuid());
    }

    #[test]
    fn lookup_errors_are_precise() {
        let (_d, s) = store();
        assert!(matches!(Pod::find(&s, "../etc"), Err(PodError::NotFound(_))));
        assert!(matches!(Pod::find(&s, "abcd"), Err(PodError::NotFound(_))));
    }
}
