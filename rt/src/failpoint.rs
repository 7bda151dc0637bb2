//! Failpoints: named places at the store's and the host's durable steps
//! where a test makes skiff fail (docs/reliability.md). `SKIFF_FAILPOINTS`
//! lists `NAME=ACTION` pairs separated by `;`, where ACTION is:
//!
//! - `kill`: SIGKILL to the process itself (a crash, an OOM kill, power loss
//!   as far as the store can tell);
//! - `eio`, `enospc`, `eintr`: the step fails with that error;
//! - `sleep(MS)`: the step waits first (to widen a race).
//!
//! `ACTION*N` acts on the first N passes only, for a long-lived process
//! (a sandbox's supervisor) whose next try must work.
//!
//! Only builds with debug assertions (what the tests run) have them: in a
//! release build this module is not there, the [`crate::failpoint!`]
//! macro is `Ok(())` and the variable is never read.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

/// Passes failpoint `name`: whatever `SKIFF_FAILPOINTS` asks for it.
pub fn hit(name: &str) -> io::Result<()> {
    let action = armed().iter().find(|p| p.name == name).and_then(|p| {
        let first = p.times.is_none_or(|n| p.passed.fetch_add(1, Ordering::Relaxed) < n);
        first.then_some(p.action)
    });
    match action {
        None => Ok(()),
        Some(Action::Kill) => {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            // SIGKILL cannot be blocked: not reached.
            Err(io::Error::other(format!("failpoint {name}: SIGKILL did not end the process")))
        }
        Some(Action::Fail(errno)) => Err(io::Error::from_raw_os_error(errno)),
        Some(Action::Sleep(ms)) => {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            Ok(())
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Kill,
    Fail(i32),
    Sleep(u64),
}

#[derive(Debug)]
struct Point {
    name: String,
    action: Action,
    /// Acts on this many passes (`*N`), every one if None.
    times: Option<u32>,
    passed: AtomicU32,
}

fn armed() -> &'static [Point] {
    static ARMED: std::sync::OnceLock<Vec<Point>> = std::sync::OnceLock::new();
    ARMED.get_or_init(|| parse(&std::env::var("SKIFF_FAILPOINTS").unwrap_or_default()))
}

/// `NAME=ACTION[*N];…`; pairs that do not parse are ignored (the tests
/// name points, never users).
fn parse(spec: &str) -> Vec<Point> {
    spec.split(';')
        .filter_map(|pair| {
            let (name, action) = pair.trim().split_once('=').filter(|(n, _)| !n.trim().is_empty())?;
            let (action, times) = match action.split_once('*') {
                Some((a, n)) => (a, Some(n.trim().parse().ok()?)),
                None => (action, None),
            };
            let action = match action.trim() {
                "kill" => Action::Kill,
                "eio" => Action::Fail(nix::libc::EIO),
                "enospc" => Action::Fail(nix::libc::ENOSPC),
                "eintr" => Action::Fail(nix::libc::EINTR),
                other => Action::Sleep(other.strip_prefix("sleep(")?.strip_suffix(')')?.parse().ok()?),
            };
            Some(Point { name: name.trim().to_string(), action, times, passed: AtomicU32::new(0) })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_hostile_specs() {
        let got = parse("a.b=kill; c=enospc;d=sleep(20);e=eio;f=eintr");
        let got: Vec<_> = got.into_iter().map(|p| (p.name, p.action)).collect();
        assert_eq!(
            got,
            [
                ("a.b".to_string(), Action::Kill),
                ("c".to_string(), Action::Fail(nix::libc::ENOSPC)),
                ("d".to_string(), Action::Sleep(20)),
                ("e".to_string(), Action::Fail(nix::libc::EIO)),
                ("f".to_string(), Action::Fail(nix::libc::EINTR)),
            ]
        );
        let counted = parse("a=eio*2;b=sleep(5)*0");
        assert_eq!((counted[0].action, counted[0].times), (Action::Fail(nix::libc::EIO), Some(2)));
        assert_eq!((counted[1].action, counted[1].times), (Action::Sleep(5), Some(0)));
        for bad in [
            "",
            "x",
            "x=",
            "x=boom",
            "x=sleep(",
            "x=sleep(-1)",
            "=kill",
            "=kill=",
            ";;",
            "x=kill=1",
            "x=eio*",
            "x=eio*-1",
            "x=eio*1*1",
        ] {
            assert!(parse(bad).is_empty(), "{bad:?}: {:?}", parse(bad));
        }
    }
}
