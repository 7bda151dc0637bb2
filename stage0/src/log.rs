//! `--debug` diagnostics: one line per step on stderr, off by default.

use std::sync::atomic::{AtomicBool, Ordering};

static DEBUG: AtomicBool = AtomicBool::new(false);

pub fn set_debug(on: bool) {
    DEBUG.store(on, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    DEBUG.load(Ordering::Relaxed)
}

/// `debug!("…", args)` prints `skiff: debug: …` to stderr under `--debug`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => {
        if $crate::log::enabled() {
            eprintln!("skiff: debug: {}", format_args!($($arg)*));
        }
    };
}
