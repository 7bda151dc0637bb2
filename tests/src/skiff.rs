//! One test's private skiff: its own store directory, its own busybox image,
//! and cleanup (processes it started, pods, mounts, temp dirs) on drop, so a
//! failing test leaves the host as it found it.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Skiff {
    tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub image: String,
    children: RefCell<Vec<u32>>,
}

/// The workspace's built binaries (`cargo build` puts them next to `deps/`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir").to_path_buf();
    for b in ["skiff", "skiff-stage1-ns", "skiff-stage1-fly", "skiff-stage1-nspawn"] {
        assert!(dir.join(b).is_file(), "{} missing: run `cargo build --workspace` first", dir.join(b).display());
    }
    dir
}

fn require_root() {
    assert!(rustix_is_root(), "skiff's end-to-end tests run pods and must run as root");
}

fn rustix_is_root() -> bool {
    // /proc/self/status lists real, effective, saved and fs uids.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

impl Skiff {
    pub fn new() -> Skiff {
        require_root();
        let tmp = tempfile::Builder::new().prefix("skiff-test-").tempdir().expect("tempdir");
        let dir = tmp.path().join("store");
        let image = crate::fixture::busybox_image(tmp.path());
        Skiff { tmp, dir, image, children: RefCell::new(Vec::new()) }
    }

    pub fn tmp(&self) -> &Path {
        self.tmp.path()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin_dir().join("skiff"));
        c.arg("--dir").arg(&self.dir).args(args).stdin(Stdio::null());
        c
    }

    pub fn output(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run skiff")
    }

    /// Runs skiff, asserts it exited 0, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.output(args);
        assert!(
            o.status.success(),
            "skiff {args:?} failed: {:?}\nstderr: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Starts skiff in the background; it is killed on drop if still there.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.spawn_cmd(self.cmd(args))
    }

    /// [`Skiff::spawn`] for a command made by [`Skiff::cmd`] and changed
    /// (its environment, say).
    pub fn spawn_cmd(&self, mut cmd: Command) -> Child {
        let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn skiff");
        self.children.borrow_mut().push(child.id());
        child
    }

    /// Starts skiff with `terminal` as its controlling terminal and stdio
    /// (util-linux `setsid --ctty`, which execs skiff in the same process);
    /// it is killed on drop if still there.
    pub fn spawn_on_terminal(&self, args: &[&str], terminal: &std::fs::File) -> Child {
        let io = || Stdio::from(terminal.try_clone().expect("dup terminal"));
        let child = Command::new("setsid")
            .arg("--ctty")
            .arg(bin_dir().join("skiff"))
            .arg("--dir")
            .arg(&self.dir)
            .args(args)
            .stdin(io())
            .stdout(io())
            .stderr(io())
            .spawn()
            .expect("spawn setsid skiff");
        self.children.borrow_mut().push(child.id());
        child
    }

    /// `skiff run IMAGE --exec /bin/sh -- -c SCRIPT`, waited for.
    pub fn run_sh(&self, script: &str) -> Output {
        self.output(&["run", &self.image, "--exec", "/bin/sh", "--", "-c", script])
    }

    /// `skiff run IMAGE --exec /bin/sh -- -c SCRIPT`; asserts success and
    /// returns stdout.
    pub fn ok_sh(&self, image: &str, script: &str) -> String {
        self.ok(&["run", image, "--exec", "/bin/sh", "--", "-c", script])
    }

    /// `run_sh`, in the background.
    pub fn spawn_sh(&self, script: &str) -> Child {
        self.spawn(&["run", &self.image, "--exec", "/bin/sh", "--", "-c", script])
    }

    /// Waits until there are `n` pods, all running with their init's PID
    /// recorded (a pod is `running` from the moment stage0 moves it to
    /// `run/`, a little before its flavor writes the PID).
    pub fn wait_running(&self, n: usize) {
        self.wait_for(&format!("{n} running pod(s)"), || {
            self.list_json()
                .as_array()
                .is_some_and(|a| a.len() == n && a.iter().all(|p| p["state"] == "running" && p["pid"].is_i64()))
        });
    }

    /// Polls `f` every 20 ms for up to 20 s; panics with `what` if it never holds.
    pub fn wait_for(&self, what: &str, mut f: impl FnMut() -> bool) {
        let start = Instant::now();
        while !f() {
            assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn status_json(&self, uuid: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["status", "--format", "json", uuid])).expect("status json")
    }

    pub fn list_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["list", "--format", "json"])).expect("list json")
    }

    /// The root of app `app` of a running pod, seen through its init, once
    /// the init has pivoted into the pod's root (before that
    /// `/proc/<init>/root` is the host's root: writing there would write on
    /// the host). The ns flavor's init runs in the app's root in a pod of
    /// one app that takes no more; otherwise its own root holds each app's
    /// at `/apps/<name>`.
    pub fn app_root(&self, uuid: &str, app: &str) -> Option<PathBuf> {
        use std::os::unix::fs::MetadataExt;
        let pid = self.status_json(uuid)["pid"].as_i64()?;
        let root = PathBuf::from(format!("/proc/{pid}/root"));
        let (pod, host) = (std::fs::metadata(&root).ok()?, std::fs::metadata("/").ok()?);
        if (pod.dev(), pod.ino()) == (host.dev(), host.ino()) {
            return None;
        }
        let m: serde_json::Value = serde_json::from_str(&self.ok(&["cat-manifest", uuid])).ok()?;
        let one_app = m["apps"].as_array().is_some_and(|a| a.len() == 1) && m["sandbox"] != true;
        Some(if one_app { root } else { root.join("apps").join(app) })
    }

    /// Waits until `path` (absolute, inside the app) exists in the root of
    /// app `app`; returns its host-side path.
    pub fn wait_in_app(&self, uuid: &str, app: &str, path: &str) -> PathBuf {
        let mut found = None;
        self.wait_for(&format!("{path} in app {app} of pod {uuid}"), || {
            found = self.app_root(uuid, app).map(|r| r.join(path.trim_start_matches('/'))).filter(|p| p.exists());
            found.is_some()
        });
        found.unwrap_or_default()
    }

    /// [`Skiff::wait_in_app`] for a pod of one app.
    pub fn wait_in_pod(&self, uuid: &str, path: &str) -> PathBuf {
        let status = self.status_json(uuid);
        let app = status["apps"][0]["name"].as_str().unwrap_or("app").to_string();
        self.wait_in_app(uuid, &app, path)
    }

    /// What should be gone after gc: mounts under the store, cgroups and
    /// iptables rules of pods `uuids`, pod directories, leases and temp
    /// files in the store.
    pub fn leftovers(&self, uuids: &[String]) -> Vec<String> {
        let s = self;
        let mut out = Vec::new();
        let store = s.dir.to_str().unwrap();
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        out.extend(info.lines().filter(|l| l.contains(store)).map(|l| format!("mount {l}")));
        for root in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten().map(|e| e.path()) {
            for base in [root.join("skiff"), root.clone()] {
                out.extend(
                    uuids
                        .iter()
                        .filter(|u| base.join(u).exists())
                        .map(|u| format!("cgroup {}", base.join(u).display())),
                );
            }
        }
        let nat = std::process::Command::new("iptables").args(["-t", "nat", "-S"]).output().unwrap();
        let nat = String::from_utf8_lossy(&nat.stdout).into_owned();
        out.extend(
            nat.lines().filter(|l| uuids.iter().any(|u| l.contains(u.as_str()))).map(|l| format!("iptables {l}")),
        );
        let mut stack = vec![s.dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let (p, name) = (e.path(), e.file_name().to_string_lossy().into_owned());
                let under = |part: &str| p.starts_with(s.dir.join(part));
                if name.starts_with(".tmp-") || (under("tmp") && p != s.dir.join("tmp")) {
                    out.push(format!("temp file {}", p.display()));
                }
                if p.parent().and_then(Path::parent) == Some(&s.dir.join("pods")) {
                    out.push(format!("pod directory {}", p.display()));
                }
                if p.parent() == Some(&s.dir.join("net/ipam/default")) && name.starts_with("10.") {
                    out.push(format!("lease {}", p.display()));
                }
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(p);
                }
            }
        }
        out
    }

    /// The only pod in the store (tests that run one pod at a time).
    pub fn only_pod(&self) -> String {
        let l = self.list_json();
        let pods = l.as_array().expect("array");
        assert_eq!(pods.len(), 1, "expected one pod, got {l}");
        pods[0]["uuid"].as_str().expect("uuid").to_string()
    }
}

impl Drop for Skiff {
    fn drop(&mut self) {
        for pid in self.children.borrow().iter() {
            // Only processes this test started; a pid that already exited
            // and was reaped cannot be reused while its Child is unwaited,
            // and a reaped one gives ESRCH.
            let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).stderr(Stdio::null()).status();
        }
        // Pods started on the test's behalf by a process it started (a
        // CRI server's sandboxes) run in the test's own store: stopped
        // through skiff, so gc can take them.
        if let Ok(o) = self.cmd(&["list", "--format", "json"]).stderr(Stdio::null()).output() {
            let pods: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            for p in pods.as_array().into_iter().flatten().filter(|p| p["state"] == "running") {
                let uuid = p["uuid"].as_str().unwrap_or_default();
                let _ = self.cmd(&["stop", "--force", uuid]).stdout(Stdio::null()).stderr(Stdio::null()).status();
            }
        }
        let _ = self
            .cmd(&["gc", "--grace-period", "0", "--expire-prepared", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // Nothing should be mounted under the test dir; if something is,
        // unmount it rather than leave it (or delete through it).
        if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
            let mut mounts: Vec<&str> = info
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|m| m.starts_with(self.tmp.path().to_str().unwrap_or("/nonexistent")))
                .collect();
            mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
            for m in mounts {
                let _ = Command::new("umount").arg("-l").arg(m).status();
            }
        }
    }
}

impl Default for Skiff {
    fn default() -> Self {
        Self::new()
    }
}
