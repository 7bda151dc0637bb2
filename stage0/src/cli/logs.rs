//! `skiff logs`: an app's stdout and stderr as its flavor kept them in the
//! pod directory (skiff_pods::logfile), the app's stdout on stdout and its
//! stderr on stderr.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use skiff_pods::logfile::{self, LogDriver, Record, Stream};
use skiff_pods::{App, Pod, PodState};

use super::pod_ref::PodRef;
use super::Ctx;

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// The app whose output to show (required when the pod has several).
    #[arg(long, value_name = "NAME")]
    app: Option<String>,
    /// Keep printing what the app writes until the pod has exited.
    #[arg(short, long)]
    follow: bool,
    /// Only the last N records (lines) kept.
    #[arg(long, value_name = "N")]
    tail: Option<usize>,
    /// Prefix each line with the time it was written (RFC 3339, UTC).
    #[arg(long)]
    timestamps: bool,
    #[command(flatten)]
    pod: PodRef,
}

struct Printer {
    timestamps: bool,
}

impl Printer {
    fn print(&self, r: &Record) -> Result<()> {
        let mut line = Vec::with_capacity(r.text.len() + 40);
        if self.timestamps {
            line.extend_from_slice(r.time.as_bytes());
            line.push(b' ');
        }
        line.extend_from_slice(&r.text);
        if !r.partial {
            line.push(b'\n');
        }
        match r.stream {
            Stream::Stdout => std::io::stdout().write_all(&line).and_then(|()| std::io::stdout().flush()),
            Stream::Stderr => std::io::stderr().write_all(&line),
        }
        .context("cannot write the log")
    }
}

/// Whole records in `buf` (what is left is a record still being written).
fn records(buf: &mut Vec<u8>) -> Vec<Record> {
    let mut out = Vec::new();
    while let Some(i) = buf.iter().position(|&b| b == b'\n') {
        out.extend(Record::parse(&buf[..i]));
        buf.drain(..=i);
    }
    out
}

fn read_all(path: &Path) -> Result<Vec<Record>> {
    let mut data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(records(&mut data))
}

pub fn run(ctx: &Ctx, a: LogsArgs) -> Result<i32> {
    let pod = Pod::find(&ctx.store, &a.pod.id()?)?;
    let uuid = pod.uuid().to_string();
    let m = pod.read_manifest()?;
    if m.log.driver != LogDriver::File {
        bail!("pod {uuid} keeps no log (its log driver is none)");
    }
    let name = super::pod_ref::pick_app(&uuid, &m.apps, a.app.as_deref())?;
    let app = m.apps.iter().find(|x| x.name == name).context("the app is gone from the manifest")?;
    let printer = Printer { timestamps: a.timestamps };
    let dir = pod.path();
    let current = logfile::current(&dir, app);
    // The current file is opened first: a rotation while the older ones
    // are read then cannot lose what it moved.
    let mut file = File::open(&current).ok();
    let mut kept = Vec::new();
    for f in logfile::files(&current, m.log.max_files).iter().filter(|f| **f != current) {
        kept.extend(read_all(f)?);
    }
    let mut buf = Vec::new();
    if let Some(f) = &mut file {
        f.read_to_end(&mut buf).context("cannot read the log")?;
        kept.extend(records(&mut buf));
    }
    let skip = a.tail.map_or(0, |n| kept.len().saturating_sub(n));
    for r in &kept[skip..] {
        printer.print(r)?;
    }
    if a.follow {
        follow(ctx, &uuid, app, file, buf, &printer)?;
    }
    Ok(0)
}

/// Prints what is appended to the current log, following rotations, until
/// the pod has exited and its log holds nothing more.
fn follow(ctx: &Ctx, uuid: &str, app: &App, mut file: Option<File>, mut buf: Vec<u8>, printer: &Printer) -> Result<()> {
    loop {
        // The state first, then the log: what a pod wrote before it ended
        // is read before the loop sees it ended.
        let Ok(pod) = Pod::find(&ctx.store, uuid) else { return Ok(()) };
        let running = pod.state() == PodState::Running;
        let current = logfile::current(&pod.path(), app);
        if let Some(f) = &mut file {
            f.read_to_end(&mut buf).context("cannot read the log")?;
            for r in records(&mut buf) {
                printer.print(&r)?;
            }
        }
        // Rotated (or made): finish the old file above, then the new one.
        let same = match (&file, std::fs::metadata(&current)) {
            (Some(f), Ok(md)) => f.metadata().is_ok_and(|o| o.ino() == md.ino() && o.dev() == md.dev()),
            (None, Err(_)) => true,
            _ => false,
        };
        if !same {
            file = File::open(&current).ok();
            buf.clear();
            continue;
        }
        if !running {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
