//! A pod's network when it is not the host's and not `none`: a network
//! namespace pinned in the pod directory, attached to each of the
//! manifest's CNI networks in order before any app runs, and detached in
//! reverse order when the pod is over, however the flavor's run ends (or
//! by gc, when the flavor was killed).

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use skiff_pods::manifest::Net;
use skiff_pods::netstate::{Attached, NetState};
use skiff_pods::{atomic, PodManifest};

use super::cni_client::Attachment;
use super::pinned_namespace::{self, NETNS_FILE, RESULT_FILE};
use skiff_rt::error::{Context, Result};

/// The pod's attached networks; detached when dropped, or by
/// [`PodNetwork::detach`] to see the error.
pub struct PodNetwork {
    manifest: PodManifest,
    netns: PathBuf,
    state: NetState,
    /// Where the plugins that detach it run: the namespace the flavor was
    /// in when it attached the network, entered again first.
    home: (File, CloneFlags),
    attached: bool,
}

/// Which namespace of its own the flavor makes after attaching the network
/// and must leave again to detach it: its PID namespace (ns: the plugins
/// cannot be forked once the pod's PID namespace is gone) or its mount
/// namespace (nspawn: the namespace pin is in the host's).
#[derive(Clone, Copy)]
pub enum Home {
    Pid,
    Mount,
}

/// The CNI attachments of the manifest's networks; published ports go to
/// the first network.
fn attachments<'a>(m: &'a PodManifest, netns: &'a Path) -> Vec<Attachment<'a>> {
    m.networks
        .iter()
        .enumerate()
        .map(|(i, network)| {
            let mut runtime_config = serde_json::Map::new();
            if i == 0 && !m.ports.is_empty() {
                let ports = m.ports.iter().map(|p| {
                    serde_json::json!({
                        "hostPort": p.host_port, "containerPort": p.pod_port,
                        "protocol": p.protocol, "hostIP": p.host_ip,
                    })
                });
                runtime_config.insert("portMappings".into(), ports.collect());
            }
            Attachment { network, cni_path: &m.cni_path, container_id: &m.uuid, netns, runtime_config }
        })
        .collect()
}

/// Detaches the first `count` networks of the manifest, last first, with
/// the results `state` recorded for them, and unpins the namespace. DEL is
/// harmless for a network that was never (or only partly) attached, so gc
/// asks for every network: a flavor killed during an ADD recorded nothing
/// of that network.
fn detach_first(m: &PodManifest, netns: &Path, state: &NetState, count: usize) -> Result<()> {
    let mut first_err = None;
    for att in attachments(m, netns).iter().take(count).rev() {
        let recorded = state.0.iter().find(|a| a.network == att.network.name);
        let result = recorded.map(|a| a.result.clone()).unwrap_or_default();
        if let Err(e) = att.del(&result) {
            first_err.get_or_insert(e);
        }
    }
    pinned_namespace::remove(netns);
    first_err.map_or(Ok(()), Err)
}

/// Creates and attaches the pod's network namespace (None: the manifest
/// asks for none). Returns it with an fd for the pod's init to `setns`.
/// Whatever fails is undone: no namespace, lease or rule is left.
/// `made`: the pod's network namespace when the flavor made it already
/// (with its user namespace); else it is made here.
pub fn attach(
    m: &PodManifest,
    pod_dir: &Path,
    lock: impl AsFd,
    home: Home,
    made: Option<OwnedFd>,
) -> Result<Option<(PodNetwork, OwnedFd)>> {
    if m.net != Net::Cni {
        return Ok(None);
    }
    let (name, flags) = match home {
        Home::Pid => ("pid", CloneFlags::CLONE_NEWPID),
        Home::Mount => ("mnt", CloneFlags::CLONE_NEWNS),
    };
    let home = File::open(format!("/proc/self/ns/{name}"))
        .with_context(|| format!("cannot open the flavor's {name} namespace"))?;
    let path = pod_dir.join(NETNS_FILE);
    let fd = match made {
        Some(netns) => pinned_namespace::pin(netns, &path)?,
        None => pinned_namespace::create(&path)?,
    };
    let mut state = NetState::default();
    for att in attachments(m, &path) {
        let record = |state: &NetState| atomic::replace_at(&lock, RESULT_FILE, &state.to_json());
        let added = att.add().and_then(|result| {
            state.0.push(Attached { network: att.network.name.clone(), ifname: att.network.ifname.clone(), result });
            record(&state).context("cannot record the pod's network")
        });
        if let Err(e) = added {
            // A failed ADD undid itself; the networks attached before it go,
            // and this one too when only recording it failed.
            let _ = detach_first(m, &path, &state, state.0.len());
            return Err(e);
        }
    }
    let home = (home, flags);
    Ok(Some((PodNetwork { manifest: m.clone(), netns: path, state, home, attached: true }, fd)))
}

impl PodNetwork {
    pub fn state(&self) -> &NetState {
        &self.state
    }

    pub fn detach(mut self) -> Result<()> {
        self.detach_once()
    }

    fn detach_once(&mut self) -> Result<()> {
        if !std::mem::take(&mut self.attached) {
            return Ok(());
        }
        nix::sched::setns(&self.home.0, self.home.1)
            .context("cannot return to the namespace the pod's network was attached from")?;
        detach_first(&self.manifest, &self.netns, &self.state, self.manifest.networks.len())
    }
}

/// However the flavor's run ends (a forked child ends with `exit`, which
/// drops nothing, so only the flavor itself detaches).
impl Drop for PodNetwork {
    fn drop(&mut self) {
        if let Err(e) = self.detach_once() {
            eprintln!("skiff: {e}");
        }
    }
}

/// For gc: detaches what a killed flavor left attached. Harmless when
/// nothing is.
pub fn detach_leftover(m: &PodManifest, pod_dir: &Path) -> Result<()> {
    let netns = pod_dir.join(NETNS_FILE);
    if m.net != Net::Cni || !netns.exists() {
        return Ok(());
    }
    detach_first(m, &netns, &NetState::read(pod_dir), m.networks.len())
}
