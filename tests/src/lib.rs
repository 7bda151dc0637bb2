//! Helpers for skiff's end-to-end tests: image fixtures built here from the
//! host's busybox-static (no network), raw (possibly hostile) tar layers,
//! and a private store directory per test that is cleaned even on failure.

pub mod cosign;
pub mod cri;
pub mod fixture;
pub mod flaky_registry;
pub mod oci;
pub mod pty;
pub mod rawtar;
pub mod registry;
pub mod skiff;

pub use fixture::busybox_image;
pub use skiff::Skiff;

/// A command's stderr, as text (for assertions and their messages).
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A free TCP port on the host (bound on every address, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0").expect("a free port").local_addr().expect("its address").port()
}

/// The body of `GET /` from `addr` (`IP:PORT`), once the server answers;
/// each try gives up after a few seconds (a SYN nothing answers would
/// otherwise wait for minutes).
pub fn http_get(s: &Skiff, addr: &str) -> String {
    use std::io::{Read, Write};
    use std::time::Duration;
    let mut body = String::new();
    s.wait_for(&format!("an answer from {addr}"), || {
        let Ok(sock) = addr.parse::<std::net::SocketAddr>() else { return false };
        let Ok(mut c) = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(2)) else { return false };
        let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
        let mut resp = String::new();
        if c.write_all(b"GET / HTTP/1.0\r\n\r\n").is_err() || c.read_to_string(&mut resp).is_err() {
            return false;
        }
        body = resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        !body.is_empty()
    });
    body
}

/// Runs a crash matrix (docs/reliability.md): each row's failpoint killed,
/// then failed with EIO, by `run(point, action)` (its outcome, or what went
/// wrong). Prints the table and fails naming every row that went wrong.
/// `rows`: failpoint and what passes it (the table's second column, `what`).
pub fn crash_matrix(what: &str, rows: &[(&str, &str)], run: impl Fn(&str, &str) -> Result<String, String>) {
    let mut table = vec![format!("| failpoint | {what} | SIGKILL | EIO |"), "|---|---|---|---|".to_string()];
    let mut failures = Vec::new();
    for (point, label) in rows {
        let cells: Vec<String> = ["kill", "eio"]
            .iter()
            .map(|action| match run(point, action) {
                Ok(outcome) => outcome.replace('|', "/"),
                Err(e) => {
                    failures.push(format!("{point}={action}: {e}"));
                    "FAILED".into()
                }
            })
            .collect();
        table.push(format!("| `{point}` | {label} | {} | {} |", cells[0], cells[1]));
    }
    println!("{}", table.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
