//! A real registry for tests: Debian's docker-registry (the CNCF
//! distribution server) on 127.0.0.1, storage in the test's temp dir,
//! optionally with htpasswd basic auth. Stopped (by PID) on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Registry {
    child: Child,
    pub addr: String,
    pub storage: PathBuf,
    /// `user:password` when auth is on.
    pub creds: Option<String>,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

impl Registry {
    /// Starts a registry under `dir`; with `auth`, user `skiff` password
    /// `s3cret` is required.
    pub fn start(dir: &Path, auth: bool) -> Registry {
        Self::start_with(dir, auth, None)
    }

    /// A registry serving HTTPS only, with a certificate for 127.0.0.1
    /// signed by a CA made here; returns it and the CA's PEM file.
    pub fn start_tls(dir: &Path) -> (Registry, PathBuf) {
        let run = |args: &[&str]| {
            let o = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl is installed");
            assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=skiff test CA",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "tls.key",
            "-out",
            "tls.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
            .expect("write ext");
        run(&[
            "x509",
            "-req",
            "-in",
            "tls.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "tls.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        let r = Self::start_with(dir, false, Some((dir.join("tls.pem"), dir.join("tls.key"))));
        (r, dir.join("ca.pem"))
    }

    fn start_with(dir: &Path, auth: bool, tls: Option<(PathBuf, PathBuf)>) -> Registry {
        let storage = dir.join("registry-data");
        std::fs::create_dir_all(&storage).expect("registry storage");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            storage.display()
        );
        if let Some((cert, key)) = &tls {
            config.push_str(&format!("  tls:\n    certificate: {}\n    key: {}\n", cert.display(), key.display()));
        }
        let creds = if auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", "skiff", "s3cret"])
                .output()
                .expect("htpasswd is installed (apt-get install apache2-utils)");
            let htpasswd = dir.join("htpasswd");
            std::fs::write(&htpasswd, &out.stdout).expect("write htpasswd");
            config.push_str(&format!("auth:\n  htpasswd:\n    realm: skiff-test\n    path: {}\n", htpasswd.display()));
            Some("skiff:s3cret".to_string())
        } else {
            None
        };
        let cfg = dir.join("registry.yml");
        std::fs::write(&cfg, config).expect("write registry config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is installed (apt-get install docker-registry)");
        let r = Registry { child, addr, storage, creds };
        let start = Instant::now();
        while std::net::TcpStream::connect(&r.addr).is_err() {
            assert!(start.elapsed() < Duration::from_secs(20), "registry did not start on {}", r.addr);
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    /// Pushes an OCI layout (`oci:PATH:TAG`) as `REPO:TAG` with skopeo.
    pub fn push(&self, oci_ref: &str, repo_tag: &str) -> String {
        let dest = format!("docker://{}/{repo_tag}", self.addr);
        let mut c = Command::new("skopeo");
        c.args(["copy", "-q", "--dest-tls-verify=false"]);
        if let Some(cr) = &self.creds {
            c.args(["--dest-creds", cr]);
        }
        let o = c.arg(oci_ref).arg(&dest).output().expect("skopeo is installed");
        assert!(o.status.success(), "skopeo push {oci_ref} -> {dest}: {}", String::from_utf8_lossy(&o.stderr));
        dest
    }

    /// Every blob file of the registry's storage.
    pub fn blob_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![self.storage.join("docker/registry/v2/blobs")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.file_name().is_some_and(|n| n == "data") {
                    out.push(p);
                }
            }
        }
        out
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
