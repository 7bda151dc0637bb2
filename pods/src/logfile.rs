//! An app's log in the pod directory (`apps/<name>/log`, rotated to
//! `log.1`, `log.2`, …): what the app wrote to stdout and stderr, one record
//! per line, in the CRI log format that Kubernetes and podman use:
//!
//! ```text
//! 2026-12-01T19:20:28.123456789Z stdout F the line, without its newline
//! 2026-12-01T19:20:28.123456790Z stderr P a part of a line (no newline yet)
//! ```
//!
//! The flavor writes it (docs/stage1-abi.md), `skiff logs` reads it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::manifest::App;

/// How a pod's apps are logged (docs/manifest.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `file`: kept in the pod directory (and still passed to the caller);
    /// `none`: the apps write to the caller's stdout and stderr directly.
    pub driver: LogDriver,
    /// A log file is rotated before it would grow past this.
    pub max_size: u64,
    /// Files kept per app, the current one included (at least 1).
    pub max_files: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogDriver {
    File,
    None,
}

pub const DEFAULT_MAX_SIZE: u64 = 1 << 20;
pub const DEFAULT_MAX_FILES: u32 = 2;

impl LogConfig {
    pub fn none() -> LogConfig {
        LogConfig { driver: LogDriver::None, max_size: DEFAULT_MAX_SIZE, max_files: DEFAULT_MAX_FILES }
    }
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig::none()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub time: String,
    pub stream: Stream,
    /// The line goes on in the next record of the stream.
    pub partial: bool,
    pub text: Vec<u8>,
}

impl Record {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out =
            format!("{} {} {} ", self.time, self.stream.as_str(), if self.partial { "P" } else { "F" }).into_bytes();
        out.extend_from_slice(&self.text);
        out.push(b'\n');
        out
    }

    /// One line of a log file, without its newline; None if it is not a
    /// record (a torn write, or not a log file).
    pub fn parse(line: &[u8]) -> Option<Record> {
        let mut parts = line.splitn(4, |&b| b == b' ');
        let time = std::str::from_utf8(parts.next()?).ok()?.to_string();
        let stream = match parts.next()? {
            b"stdout" => Stream::Stdout,
            b"stderr" => Stream::Stderr,
            _ => return None,
        };
        let partial = match parts.next()? {
            b"P" => true,
            b"F" => false,
            _ => return None,
        };
        Some(Record { time, stream, partial, text: parts.next().unwrap_or_default().to_vec() })
    }
}

/// Splits what an app wrote into records: one per line, and a partial one
/// for the rest when `flush` (else the rest stays in `buf` for later).
pub fn split(buf: &mut Vec<u8>, stream: Stream, time: &str, flush: bool) -> Vec<Record> {
    let mut out = Vec::new();
    while let Some(i) = buf.iter().position(|&b| b == b'\n') {
        let text = buf[..i].to_vec();
        buf.drain(..=i);
        out.push(Record { time: time.to_string(), stream, partial: false, text });
    }
    if flush && !buf.is_empty() {
        out.push(Record { time: time.to_string(), stream, partial: true, text: std::mem::take(buf) });
    }
    out
}

/// The log files whose current one is `current`, oldest first.
pub fn files(current: &Path, max_files: u32) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = (1..max_files.max(1)).rev().map(|i| rotated(current, i)).collect();
    out.push(current.to_path_buf());
    out.retain(|p| p.exists());
    out
}

/// The current log file of `app` in pod directory `pod_dir`: its
/// `log_path`, else `apps/<name>/log`.
pub fn current(pod_dir: &Path, app: &App) -> PathBuf {
    match &app.log_path {
        Some(p) => p.clone(),
        None => pod_dir.join("apps").join(&app.name).join("log"),
    }
}

/// The `n`th file rotated from `current` (`log.1`, `0.log.1`).
pub fn rotated(current: &Path, n: u32) -> PathBuf {
    let mut name = current.as_os_str().to_os_string();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_hostile_lines_are_not_records() {
        let r = Record {
            time: "2026-12-01T00:00:00.1Z".into(),
            stream: Stream::Stderr,
            partial: true,
            text: b"a b".to_vec(),
        };
        let bytes = r.to_bytes();
        assert_eq!(bytes, b"2026-12-01T00:00:00.1Z stderr P a b\n");
        assert_eq!(Record::parse(&bytes[..bytes.len() - 1]), Some(r));
        let empty = Record::parse(b"t stdout F").unwrap();
        assert!(empty.text.is_empty() && !empty.partial);
        for bad in [&b""[..], b"t", b"t stdin F x", b"t stdout X x", b"\xff stdout F x"] {
            assert_eq!(Record::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn output_splits_into_lines() {
        let mut buf = b"one\ntwo\nthr".to_vec();
        let r = split(&mut buf, Stream::Stdout, "t", false);
        assert_eq!(r.iter().map(|r| r.text.as_slice()).collect::<Vec<_>>(), [&b"one"[..], b"two"]);
        assert_eq!(buf, b"thr");
        buf.extend_from_slice(b"ee");
        let r = split(&mut buf, Stream::Stdout, "t", true);
        assert_eq!((r[0].text.as_slice(), r[0].partial), (&b"three"[..], true));
        assert!(buf.is_empty());
    }
}
