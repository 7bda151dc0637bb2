//! The `skiff` CLI as the server drives it: every change to the store goes
//! through the same commands a user runs, under the same locks, so a pod
//! never depends on this process (rktlet drove rkt the same way).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::de::DeserializeOwned;
use tokio::process::Command;

use crate::error::{CriError, Result};

#[derive(Clone, Debug)]
pub struct Skiff {
    pub bin: PathBuf,
    /// The store directory (`--dir`).
    pub dir: PathBuf,
    /// Global options before every command's own (after `--dir`, so one
    /// given here wins).
    pub globals: Vec<String>,
}

impl Skiff {
    /// `skiff --dir DIR ARGS`, its stdin closed; killed if the call that
    /// waits for it is dropped (a client that went away).
    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--dir").arg(&self.dir).args(&self.globals).args(args).stdin(Stdio::null()).kill_on_drop(true);
        // What systemd gave the server is not the pods': a sandbox would
        // notify the server's unit, or take its sockets.
        for var in ["NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"] {
            c.env_remove(var);
        }
        c
    }

    /// Runs `skiff ARGS` to its end: its stdout, or its error.
    pub async fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Result<Vec<u8>> {
        let out = self.command(args).output().await.map_err(|e| self.cannot_run(e))?;
        if !out.status.success() {
            return Err(CriError::from_skiff(&String::from_utf8_lossy(&out.stderr)));
        }
        Ok(out.stdout)
    }

    /// `skiff ARGS` whose stdout is one JSON document.
    pub async fn json<T: DeserializeOwned, S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Result<T> {
        let out = self.run(args).await?;
        serde_json::from_slice(&out).map_err(|e| CriError::internal("skiff printed JSON this server cannot read", e))
    }

    pub fn cannot_run(&self, e: std::io::Error) -> CriError {
        CriError::internal(&format!("cannot run {}", self.bin.display()), e)
    }

    /// The server's own directory in the store (`<dir>/cri`).
    pub fn cri_dir(&self) -> PathBuf {
        self.dir.join("cri")
    }
}

/// The `skiff` next to this binary (they are installed together).
pub fn beside_me() -> Option<PathBuf> {
    let me = std::env::current_exe().ok()?;
    let bin = me.parent().map(|d: &Path| d.join("skiff"))?;
    bin.is_file().then_some(bin)
}
