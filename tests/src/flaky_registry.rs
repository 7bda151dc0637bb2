//! A scripted registry for what a real one will not do on demand: bearer
//! token auth, 503s, and connections that drop in the middle of a blob.
//! Serves one OCI layout on 127.0.0.1 over plain HTTP/1.1, one thread per
//! connection; stops when dropped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

pub const TOKEN: &str = "tok-123";

#[derive(Default)]
pub struct Faults {
    /// Answer this many requests with 503 before serving.
    pub unavailable: AtomicUsize,
    /// Cut the first download of each blob after this many bytes (0: never).
    pub cut_blobs_after: AtomicUsize,
    /// Require `Authorization: Bearer TOKEN` (from `/token`).
    pub bearer: AtomicBool,
    pub requests: AtomicUsize,
    pub range_requests: AtomicUsize,
}

pub struct FlakyRegistry {
    pub addr: String,
    pub faults: Arc<Faults>,
    stop: Arc<AtomicBool>,
}

struct Shared {
    layout: PathBuf,
    addr: String,
    faults: Arc<Faults>,
    cut_done: std::sync::Mutex<HashMap<String, bool>>,
}

impl FlakyRegistry {
    /// Serves the OCI layout at `layout` as repository `repo`, tag `latest`.
    pub fn start(layout: &Path) -> FlakyRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let faults = Arc::new(Faults::default());
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            layout: layout.to_path_buf(),
            addr: addr.clone(),
            faults: faults.clone(),
            cut_done: Default::default(),
        });
        let stop2 = stop.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &shared);
                });
            }
        });
        FlakyRegistry { addr, faults, stop }
    }
}

impl Drop for FlakyRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(&self.addr); // wake the accept loop
    }
}

fn respond(out: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) -> std::io::Result<()> {
    let mut h = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    out.write_all(h.as_bytes())?;
    out.write_all(body)
}

fn serve(conn: TcpStream, s: &Shared) -> std::io::Result<()> {
    let mut out = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        s.faults.requests.fetch_add(1, Ordering::Relaxed);
        if s.faults.unavailable.load(Ordering::Relaxed) > 0 {
            s.faults.unavailable.fetch_sub(1, Ordering::Relaxed);
            respond(&mut out, "503 Service Unavailable", &[], b"busy")?;
            continue;
        }
        if path.starts_with("/token") {
            respond(
                &mut out,
                "200 OK",
                &[("Content-Type", "application/json".into())],
                format!(r#"{{"token":"{TOKEN}"}}"#).as_bytes(),
            )?;
            continue;
        }
        if s.faults.bearer.load(Ordering::Relaxed)
            && headers.get("authorization").map(String::as_str) != Some(&format!("Bearer {TOKEN}"))
        {
            let challenge =
                format!(r#"Bearer realm="http://{}/token",service="flaky",scope="repository:test/img:pull""#, s.addr);
            respond(&mut out, "401 Unauthorized", &[("WWW-Authenticate", challenge)], b"")?;
            continue;
        }
        if let Some(reference) = path.strip_prefix("/v2/test/img/manifests/") {
            let digest = if reference.starts_with("sha256:") {
                reference.to_string()
            } else {
                let idx: serde_json::Value = serde_json::from_slice(&std::fs::read(s.layout.join("index.json"))?)?;
                idx["manifests"][0]["digest"].as_str().unwrap_or_default().to_string()
            };
            match std::fs::read(s.layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))) {
                Ok(body) => respond(
                    &mut out,
                    "200 OK",
                    &[
                        ("Content-Type", "application/vnd.oci.image.manifest.v1+json".into()),
                        ("Docker-Content-Digest", digest),
                    ],
                    &body,
                )?,
                Err(_) => respond(&mut out, "404 Not Found", &[], b"")?,
            }
            continue;
        }
        if let Some(digest) = path.strip_prefix("/v2/test/img/blobs/") {
            let Ok(body) = std::fs::read(s.layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:")))
            else {
                respond(&mut out, "404 Not Found", &[], b"")?;
                continue;
            };
            let from: usize = headers
                .get("range")
                .and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok())
                .unwrap_or(0);
            if from > 0 {
                s.faults.range_requests.fetch_add(1, Ordering::Relaxed);
                let part = &body[from.min(body.len())..];
                let range = format!("bytes {from}-{}/{}", body.len().saturating_sub(1), body.len());
                respond(&mut out, "206 Partial Content", &[("Content-Range", range)], part)?;
                continue;
            }
            let cut = s.faults.cut_blobs_after.load(Ordering::Relaxed);
            let first = !s.cut_done.lock().map(|mut m| m.insert(digest.to_string(), true).is_some()).unwrap_or(true);
            if cut > 0 && first && body.len() > cut {
                // Promise the whole blob, send part of it, hang up.
                out.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes())?;
                out.write_all(&body[..cut])?;
                return Ok(());
            }
            respond(&mut out, "200 OK", &[], &body)?;
            continue;
        }
        if path == "/v2/" {
            respond(&mut out, "200 OK", &[], b"{}")?;
            continue;
        }
        respond(&mut out, "404 Not Found", &[], b"")?;
    }
}
