//! Failpoints: named places at the store's and the host's durable steps
//! where a test makes skiff fail (docs/reliability.md). `SKIFF_FAILPOINTS`
//! lists `NAME=ACTION` pairs separated by `;`, where ACTION is:
//!
//! - `kill`: SIGKILL to the process itself (a crash, an OOM kill, power loss
//!   as far as the store can tell);
//! - `eio`, `enospc`, `eintr`: the step fails with that error;
//! - `sleep(MS)`: the step waits first (to widen a race).
//!
//! Only builds with debug assertions (what the tests run) have them: in a
//! release build this module is not there, the [`crate::failpoint!`]
//! macro is `Ok(())` and the variable is never read.

use std::io;

/// Passes failpoint `name`: whatever `SKIFF_FAILPOINTS` asks for it.
pub fn hit(name: &str) -> io::Result<()> {
    match armed().iter().find(|(n, _)| n == name).map(|(_, a)| *a) {
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

fn armed() -> &'static [(String, Action)] {
    static ARMED: std::sync::OnceLock<Vec<(String, Action)>> = std::sync::OnceLock::new();
    ARMED.get_or_init(|| parse(&std::env::var("SKIFF_FAILPOINTS").unwrap_or_default()))
}

/// `NAME=ACTION;…`; pairs that do not parse are ignored (the tests name
/// points, never users).
fn parse(spec: &str) -> Vec<(String, Action)> {
    spec.split(';')
        .filter_map(|pair| {
            let (name, action) = pair.trim().split_once('=').filter(|(n, _)| !n.trim().is_empty())?;
            let action = match action.trim() {
                "kill" => Action::Kill,
                "eio" => Action::Fail(nix::libc::EIO),
                "enospc" => Action::Fail(nix::libc::ENOSPC),
                "eintr" => Action::Fail(nix::libc::EINTR),
                other => Action::Sleep(other.strip_prefix("sleep(")?.strip_suffix(')')?.parse().ok()?),
            };
            Some((name.trim().to_string(), action))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_hostile_specs() {
        let got = parse("a.b=kill; c=enospc;d=sleep(20);e=eio;f=eintr");
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
        for bad in ["", "x", "x=", "x=boom", "x=sleep(", "x=sleep(-1)", "=kill", "=kill=", ";;", "x=kill=1"] {
            assert!(parse(bad).is_empty(), "{bad:?}: {:?}", parse(bad));
        }
    }
}
