//! A CRI client for `skiff cri`, generated from the same proto (kubelet,
//! crictl and critest are not installable here), and the server it talks
//! to, started by the test's own Skiff (killed by PID when it drops).

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

use crate::skiff::Skiff;

pub struct Cri {
    pub socket: PathBuf,
    pub server: Child,
    pub rt: tokio::runtime::Runtime,
    pub runtime: RuntimeServiceClient<Channel>,
    pub images: ImageServiceClient<Channel>,
}

impl Cri {
    /// Starts `skiff cri` on a socket in the test's directory and connects.
    pub fn start(s: &Skiff) -> Cri {
        Self::start_failing(s, "")
    }

    /// [`Cri::start`] with `SKIFF_FAILPOINTS=failpoints` (docs/reliability.md).
    pub fn start_failing(s: &Skiff, failpoints: &str) -> Cri {
        let socket = s.tmp().join("cri.sock");
        let server = Self::spawn(s, &socket, failpoints);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
        let channel = connect(&rt, &socket);
        Cri {
            socket,
            server,
            rt,
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
        }
    }

    fn spawn(s: &Skiff, socket: &std::path::Path, failpoints: &str) -> Child {
        let mut cmd = s.cmd(&["cri", "--listen", &format!("unix://{}", socket.display())]);
        cmd.env("SKIFF_FAILPOINTS", failpoints);
        let child = s.spawn_cmd(cmd);
        let start = Instant::now();
        while std::os::unix::net::UnixStream::connect(socket).is_err() {
            assert!(start.elapsed() < Duration::from_secs(20), "skiff cri did not listen on {}", socket.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    /// Kills the server with SIGKILL (if it did not die already) and starts
    /// a new one on the same socket, without failpoints (what a crash and
    /// a restart by systemd do).
    pub fn restart_after_kill(&mut self, s: &Skiff) {
        let _ = self.server.kill();
        self.server.wait().expect("reap skiff cri");
        self.server = Self::spawn(s, &self.socket, "");
        let channel = connect(&self.rt, &self.socket);
        self.runtime = RuntimeServiceClient::new(channel.clone());
        self.images = ImageServiceClient::new(channel);
    }
}

fn connect(rt: &tokio::runtime::Runtime, socket: &std::path::Path) -> Channel {
    let path = socket.to_path_buf();
    rt.block_on(async move {
        // The URI is not used: every connection goes to the socket.
        tonic::transport::Endpoint::try_from("http://[::]:50051")
            .expect("an endpoint")
            .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tokio::net::UnixStream::connect(path).await?))
                }
            }))
            .await
            .expect("connect to skiff cri")
    })
}

/// A cgroup parent of the test's own (`/skiff-test-<pid>-<name>/pod`),
/// removed from every hierarchy when dropped: skiff leaves parents it was
/// given in place, as a kubelet wants for the ones it makes. Declare it
/// before the test's Skiff, so it drops after the pods are gone.
pub struct CgroupParent {
    pub path: String,
}

impl CgroupParent {
    pub fn new(name: &str) -> CgroupParent {
        CgroupParent { path: format!("/skiff-test-{}-{name}/pod", std::process::id()) }
    }

    /// Where it is in every mounted cgroup hierarchy.
    pub fn dirs(&self) -> Vec<PathBuf> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        info.lines()
            .filter(|l| l.contains(" - cgroup ") || l.contains(" - cgroup2 "))
            .filter_map(|l| l.split_whitespace().nth(4))
            .map(|mnt| PathBuf::from(mnt).join(self.path.trim_start_matches('/')))
            .collect()
    }
}

impl Drop for CgroupParent {
    fn drop(&mut self) {
        // Deepest first: what a failed test left under it goes too (empty
        // cgroups only; the kernel refuses the others).
        fn remove_tree(d: &std::path::Path) {
            for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    remove_tree(&e.path());
                }
            }
            let _ = std::fs::remove_dir(d);
        }
        for d in self.dirs() {
            if let Some(top) = d.parent() {
                remove_tree(top);
            }
        }
    }
}
