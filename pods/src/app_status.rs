//! Per-app runtime records inside the pod directory, written by the stage1
//! flavor from what the pod's init reports: `apps/<name>/exit.json` and,
//! for an app restarted by its restart policy, `apps/<name>/restarts`.

use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::atomic;

/// Name of the per-app exit record inside `apps/<name>/`.
pub const EXIT_FILE: &str = "exit.json";

/// How many times the app was restarted (a number and a newline).
pub const RESTARTS_FILE: &str = "restarts";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppExit {
    /// What `skiff run` exits with for this app: the app's status, or
    /// 128+N when it was killed by signal N.
    pub exit_code: i32,
    /// The signal that killed the app, if one did.
    pub signal: Option<i32>,
    pub started_at: Option<String>,
    pub exited_at: String,
}

/// `apps/<name>` relative to the pod directory.
pub fn app_dir(name: &str) -> String {
    format!("apps/{name}")
}

pub fn write_exit_at<Fd: AsFd>(pod_dir: Fd, app: &str, exit: &AppExit) -> io::Result<()> {
    let data = serde_json::to_vec(exit).map_err(io::Error::other)?;
    atomic::replace_at(&open_app_dir(pod_dir, app)?, EXIT_FILE, &data)
}

fn open_app_dir<Fd: AsFd>(pod_dir: Fd, app: &str) -> io::Result<std::os::fd::OwnedFd> {
    Ok(rustix::fs::openat(
        &pod_dir,
        app_dir(app).as_str(),
        rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC | rustix::fs::OFlags::NOFOLLOW,
        rustix::fs::Mode::empty(),
    )?)
}

/// Records that the app was started again, the `count`th time: the exit
/// of its last run goes (it runs now).
pub fn write_restart_at<Fd: AsFd>(pod_dir: Fd, app: &str, count: u32) -> io::Result<()> {
    let dir = open_app_dir(pod_dir, app)?;
    atomic::replace_at(&dir, RESTARTS_FILE, format!("{count}\n").as_bytes())?;
    match rustix::fs::unlinkat(&dir, EXIT_FILE, rustix::fs::AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// How many times the app was restarted (0 when never).
/// How many times app `app`'s restart policy started it again, read in
/// the pod directory `pod_dir` (open: no walk of the store's path for each
/// file).
pub fn read_restarts<Fd: AsFd>(pod_dir: Fd, app: &str) -> u32 {
    crate::small_file::read_trimmed_at(pod_dir, &Path::new(&app_dir(app)).join(RESTARTS_FILE))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// App `app`'s exit, once recorded, read in the pod directory `pod_dir`.
pub fn read_exit<Fd: AsFd>(pod_dir: Fd, app: &str) -> Option<AppExit> {
    let data = crate::small_file::read_at(pod_dir, &Path::new(&app_dir(app)).join(EXIT_FILE)).ok()?;
    serde_json::from_slice(&data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_exit_is_read_back() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("apps/web")).unwrap();
        let e = AppExit { exit_code: 3, signal: None, started_at: None, exited_at: "t".into() };
        let f = std::fs::File::open(d.path()).unwrap();
        write_exit_at(&f, "web", &e).unwrap();
        assert_eq!(read_exit(&f, "web"), Some(e));
        assert_eq!(read_exit(&f, "other"), None);
    }
}
