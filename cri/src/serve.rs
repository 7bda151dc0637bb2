//! The server's process: its options, the socket it listens on, and the
//! two services until SIGTERM or SIGINT.

use std::path::{Path, PathBuf};

use clap::Parser;
use k8s_cri::v1::image_service_server::ImageServiceServer;
use k8s_cri::v1::runtime_service_server::RuntimeServiceServer;
use skiff_rt::exit_code::SKIFF_ERROR;

use crate::{heal, images, records, runtime, skiff};

#[derive(Parser, Debug)]
#[command(name = "skiff cri", version, about = "Serve the Kubernetes CRI (runtime.v1) for skiff's store")]
struct Args {
    /// Where to listen: unix://PATH.
    #[arg(long, value_name = "unix://PATH", default_value = "unix:///run/skiff/cri.sock")]
    listen: String,
    /// The store directory.
    #[arg(long, env = "SKIFF_DIR", default_value = "/var/lib/skiff")]
    dir: PathBuf,
    /// The stage1 flavor of new sandboxes (it needs the sandbox and app-api features).
    #[arg(long, value_name = "NAME|PATH")]
    stage1: Option<String>,
    /// The skiff binary [default: the one beside this one].
    #[arg(long, value_name = "PATH")]
    skiff: Option<PathBuf>,
    /// A global option for every skiff command run (`skiff cri` passes its
    /// own: --insecure-registry, --authfile, --config, …).
    #[arg(long = "global", value_name = "OPTION", allow_hyphen_values = true, hide = true)]
    globals: Vec<String>,
}

pub fn main() {
    let args = Args::parse();
    if let Err(e) = serve(args) {
        eprintln!("skiff cri: {e}");
        std::process::exit(SKIFF_ERROR);
    }
}

fn serve(args: Args) -> Result<(), String> {
    let path = args
        .listen
        .strip_prefix("unix://")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .ok_or_else(|| format!("--listen {}: expected unix:///absolute/path", args.listen))?;
    let bin = match args.skiff {
        Some(b) => b,
        None => skiff::beside_me().ok_or("no skiff binary beside skiff-cri (give --skiff PATH)")?,
    };
    let dir = std::path::absolute(&args.dir).map_err(|e| format!("--dir {}: {e}", args.dir.display()))?;
    let skiff = skiff::Skiff { bin, dir, globals: args.globals };
    let records = records::Records::open(&skiff.cri_dir()).map_err(|e| e.to_string())?;
    let _lock = heal::ServerLock::take(&skiff.cri_dir())?;
    let runtime = runtime::Runtime { skiff: skiff.clone(), records, stage1: args.stage1 };
    let images = images::Images { skiff };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(async move {
        for what in runtime.heal().await.map_err(|e| format!("cannot heal the store: {e}"))? {
            eprintln!("skiff cri: removed what a killed server left: {what}");
        }
        let listener = bind(&path)?;
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
        let served = tonic::transport::Server::builder()
            .add_service(RuntimeServiceServer::new(runtime))
            .add_service(ImageServiceServer::new(images))
            .serve_with_incoming_shutdown(incoming, stop_signal())
            .await;
        let _ = std::fs::remove_file(&path);
        served.map_err(|e| format!("serving {}: {e}", path.display()))
    })
}

/// Listens on `path`, replacing a socket no server answers on (one left
/// by a server that was killed) but never a live one or another file.
fn bind(path: &Path) -> Result<tokio::net::UnixListener, String> {
    use std::os::unix::fs::FileTypeExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    if let Ok(md) = std::fs::symlink_metadata(path) {
        if !md.file_type().is_socket() {
            return Err(format!("{} exists and is not a socket", path.display()));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!("a server already listens on {}", path.display()));
        }
        std::fs::remove_file(path).map_err(|e| format!("cannot remove the stale {}: {e}", path.display()))?;
    }
    tokio::net::UnixListener::bind(path).map_err(|e| format!("cannot listen on {}: {e}", path.display()))
}

/// SIGTERM or SIGINT: stop serving (the pods go on).
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
