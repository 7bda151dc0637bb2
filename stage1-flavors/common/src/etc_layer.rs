//! An app's /etc files (stage2's [`etc::layer`]) as a layer of the
//! flavor's own on a tmpfs, to be the overlay's topmost lower layer:
//! read-only and in memory, so a pod's start writes none of them into its
//! upper directory (an app that changes one gets its own copy there).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use skiff_pods::manifest::UserNamespace;
use skiff_pods::netstate::NetState;
use skiff_pods::PodManifest;
use skiff_rt::error::{Context, Result};
use skiff_stage2::etc;

use crate::overlay::Overlay;

/// What the layer holds, worked out from the app's layer trees.
pub struct EtcLayer {
    attrs: etc::EtcDir,
    files: Vec<(&'static str, etc::Entry)>,
}

impl EtcLayer {
    /// None when only the mounted root can tell (stage2 then writes the
    /// files there).
    pub fn plan(overlay: &Overlay, manifest: &PodManifest, net: &NetState) -> Option<EtcLayer> {
        let dirs = overlay.layer_dirs();
        let layers: Vec<_> = dirs.iter().map(|(path, host_ids)| etc::LayerDir { path, host_ids: *host_ids }).collect();
        etc::layer(manifest, net, &layers).map(|(attrs, files)| EtcLayer { attrs, files })
    }

    /// Writes the layer at `top` (`top/etc/...`, on a tmpfs). The files are
    /// owned as stage2 would have written them, by the pod's root (`ids`:
    /// the pod's user namespace, if it has one), and `etc` has the owner
    /// and mode of the image's /etc, which the merged /etc takes from the
    /// topmost layer that has one.
    pub fn write(&self, top: &Path, ids: Option<&UserNamespace>) -> Result<()> {
        let host = |id: u32, map: fn(&UserNamespace, u32) -> u32| ids.map_or(id, |ns| map(ns, id));
        let (root_uid, root_gid) = (host(0, UserNamespace::host_uid), host(0, UserNamespace::host_gid));
        let a = &self.attrs;
        let (uid, gid) = match a.host_ids {
            true => (a.uid, a.gid),
            false => (host(a.uid, UserNamespace::host_uid), host(a.gid, UserNamespace::host_gid)),
        };
        let etc = top.join("etc");
        let made = || -> std::io::Result<()> {
            std::fs::create_dir_all(&etc)?;
            std::os::unix::fs::lchown(&etc, Some(uid), Some(gid))?;
            std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(a.mode))?;
            for (name, entry) in &self.files {
                let path = etc.join(name);
                match entry {
                    etc::Entry::File(text) => std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o644)
                        .open(&path)?
                        .write_all(text.as_bytes())?,
                    etc::Entry::Link(target) => std::os::unix::fs::symlink(target, &path)?,
                }
                std::os::unix::fs::lchown(&path, Some(root_uid), Some(root_gid))?;
            }
            Ok(())
        };
        made().with_context(|| format!("cannot write the pod's /etc files in {}", etc.display()))
    }
}
