//! Fetch progress on stderr: a bar per layer on a terminal, at most one
//! line per layer otherwise, nothing with `--quiet`.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::image::digest::Digest;
use crate::image::import::{LayerProgress, NoProgress, Progress};

pub enum CliProgress {
    Bars(MultiProgress),
    Lines,
    Quiet,
}

impl CliProgress {
    /// For `run`: bars on a terminal, otherwise silent, so a script's
    /// stderr only carries the app's own output.
    pub fn terminal_only() -> CliProgress {
        if std::io::stderr().is_terminal() {
            CliProgress::Bars(MultiProgress::new())
        } else {
            CliProgress::Quiet
        }
    }

    pub fn new(quiet: bool) -> CliProgress {
        if quiet {
            CliProgress::Quiet
        } else if std::io::stderr().is_terminal() {
            CliProgress::Bars(MultiProgress::new())
        } else {
            CliProgress::Lines
        }
    }
}

fn short(d: &Digest) -> String {
    format!("sha256:{}", &d.hex()[..12])
}

impl Progress for CliProgress {
    fn layer(&self, digest: &Digest, size: u64) -> Box<dyn LayerProgress + '_> {
        match self {
            CliProgress::Quiet => Box::new(NoProgress),
            CliProgress::Lines => Box::new(Line { name: short(digest), size, start: Instant::now() }),
            CliProgress::Bars(multi) => {
                let bar = multi.add(ProgressBar::new(size));
                if let Ok(style) =
                    ProgressStyle::with_template("{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec}")
                {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.set_prefix(short(digest));
                Box::new(Bar(bar))
            }
        }
    }
}

struct Bar(ProgressBar);

impl LayerProgress for Bar {
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }

    fn finish(&self, skipped: bool) {
        if skipped {
            self.0.finish_with_message("already in the store");
        } else {
            self.0.finish();
        }
    }
}

struct Line {
    name: String,
    size: u64,
    start: Instant,
}

impl LayerProgress for Line {
    fn advance(&self, _: u64) {}

    fn finish(&self, skipped: bool) {
        if skipped {
            eprintln!("skiff: layer {}: already in the store", self.name);
        } else {
            let secs = self.start.elapsed().as_secs_f64();
            eprintln!("skiff: layer {}: {} bytes in {secs:.2}s", self.name, self.size);
        }
    }
}
