//! A pod's network when it is not the host's and not `none`: a network
//! namespace pinned in the pod directory, attached by CNI plugins before
//! any app runs and detached when the pod is over (or by gc).

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use skiff_pods::{atomic, PodManifest};

use crate::cni::{self, Attachment};
use crate::netns::{self, NETNS_FILE, RESULT_FILE};

/// host-local's leases live in skiff's store, beside the layer trees.
fn ipam_dir(m: &PodManifest) -> PathBuf {
    let layers = m.apps.first().map(|a| a.rootfs.layers_dir.clone()).unwrap_or_default();
    layers.parent().unwrap_or(Path::new("/")).join("net").join("ipam")
}

fn plugin_dir() -> PathBuf {
    std::env::var_os("CNI_PATH").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(cni::DEFAULT_PLUGIN_DIR))
}

pub struct PodNetwork {
    attachment: Attachment,
    result: serde_json::Value,
}

fn attachment(m: &PodManifest, pod_dir: &Path) -> Option<Attachment> {
    Some(Attachment {
        conflist: cni::conflist_for(m.net, &ipam_dir(m))?,
        plugin_dir: plugin_dir(),
        container_id: m.uuid.clone(),
        netns: pod_dir.join(NETNS_FILE),
        ifname: "eth0".into(),
    })
}

/// Creates and attaches the pod's network namespace (None: the manifest
/// asks for none). Returns it with an fd for the pod's init to `setns`.
pub fn attach(m: &PodManifest, pod_dir: &Path, lock: impl AsFd) -> Result<Option<(PodNetwork, OwnedFd)>, String> {
    let Some(att) = attachment(m, pod_dir) else { return Ok(None) };
    let fd = netns::create(&att.netns)?;
    let result = match att.add() {
        Ok(r) => r,
        Err(e) => {
            netns::remove(&att.netns);
            return Err(e);
        }
    };
    if let Err(e) = atomic::replace_at(lock, RESULT_FILE, result.to_string().as_bytes()) {
        let _ = att.del(&result);
        netns::remove(&att.netns);
        return Err(format!("cannot record the pod's network: {e}"));
    }
    Ok(Some((PodNetwork { attachment: att, result }, fd)))
}

impl PodNetwork {
    /// The pod's addresses (CIDR) on it.
    pub fn addresses(&self) -> Vec<String> {
        skiff_pods::pod::addresses_in(&self.result)
    }

    pub fn detach(self) -> Result<(), String> {
        let r = self.attachment.del(&self.result);
        netns::remove(&self.attachment.netns);
        r
    }
}

/// For gc: detaches what a killed flavor left attached. Harmless when
/// nothing is.
pub fn detach_leftover(m: &PodManifest, pod_dir: &Path) -> Result<(), String> {
    let Some(att) = attachment(m, pod_dir) else { return Ok(()) };
    if !att.netns.exists() {
        return Ok(());
    }
    let result = std::fs::read(pod_dir.join(RESULT_FILE))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or(serde_json::Value::Null);
    let r = att.del(&result);
    netns::remove(&att.netns);
    r
}
