//! An app's root filesystem as an overlay of its image's layer trees
//! (lower, read-only, shared) and the pod's `apps/<name>/upper`.

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use skiff_pods::{App, PodManifest};

/// overlayfs takes its options in one page; longer lists fail at mount.
const MOUNT_DATA_MAX: usize = 4095;

/// Computed before `fork`, so the child only makes syscalls.
pub struct Overlay {
    app: String,
    layers_dir: PathBuf,
    data: String,
}

impl Overlay {
    pub fn for_app(manifest: &PodManifest, app: &App, pod_dir: &Path) -> Result<Overlay, String> {
        let app_dir = pod_dir.join("apps").join(&app.name);
        if app.rootfs.layers.is_empty() {
            return Err(format!("app {}: the image has no layers", app.name));
        }
        // Layer paths are given relative to layers_dir (the mount runs with
        // it as cwd) so that long layer lists still fit in one page.
        let lower: Vec<&str> = app.rootfs.layers.iter().rev().map(String::as_str).collect();
        for l in &lower {
            if l.contains([':', ',']) || l.starts_with('/') || l.split('/').any(|c| c == "..") {
                return Err(format!("pod {}: invalid layer name {l:?} in the manifest", manifest.uuid));
            }
        }
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            app_dir.join("upper").display(),
            app_dir.join("work").display()
        );
        if data.len() > MOUNT_DATA_MAX || data.matches(',').count() != 2 {
            return Err(format!(
                "app {}: cannot build the overlay mount options ({} layers; pod directory {})",
                app.name,
                lower.len(),
                pod_dir.display()
            ));
        }
        Ok(Overlay { app: app.name.clone(), layers_dir: app.rootfs.layers_dir.clone(), data })
    }

    /// Mounts the app's root on `target`; changes the working directory.
    pub fn mount(&self, target: &Path) -> Result<(), String> {
        std::env::set_current_dir(&self.layers_dir)
            .map_err(|e| format!("cannot enter the layer store {}: {e}", self.layers_dir.display()))?;
        mount(Some("overlay"), target, Some("overlay"), MsFlags::empty(), Some(self.data.as_str())).map_err(|e| {
            format!("cannot mount the root filesystem of app {} (overlay on {}): {e}", self.app, target.display())
        })
    }
}

/// `rootfs/name` as a directory to mount on. The image controls the root,
/// so a symlink there (which would resolve against the host's root at this
/// point) is refused rather than followed.
pub fn mountpoint(rootfs: &Path, name: &str) -> Result<PathBuf, String> {
    let p = rootfs.join(name);
    match std::fs::symlink_metadata(&p) {
        Ok(md) if md.is_dir() => Ok(p),
        Ok(_) => Err(format!("the image's /{name} is not a directory")),
        Err(_) => {
            std::fs::create_dir(&p).map_err(|e| format!("cannot create /{name} in the pod: {e}"))?;
            Ok(p)
        }
    }
}
