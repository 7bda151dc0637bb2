//! The pod network options of `run`, `prepare` and `run-prepared`, and
//! what they ask of the flavor and of the store's published ports.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use skiff_pods::abi::feature;
use skiff_pods::manifest::PortMapping;
use skiff_pods::{Pod, StateDir};

use super::Ctx;
use crate::pod::flavor::Flavor;
use crate::pod::gc;
use crate::pod::network::{self, NetRequest};
use crate::pod::prepare;

// Where a pod's network comes from (`run`, `prepare`, `run-prepared`).
#[derive(Args, Debug, Clone)]
pub struct NetOptions {
    /// The pod's network: default (its own namespace on skiff's bridge
    /// skiff0, through CNI), NAME[,NAME...] (configured CNI networks, in
    /// order; NAME:IP=ADDR asks for an address), host (the host's network
    /// namespace) or none (its own with only lo) [default: default where
    /// the flavor can do it, else host].
    #[arg(long, value_name = "default|NAME[:K=V;...][,...]|host|none", value_parser = NetRequest::parse)]
    pub(super) net: Option<NetRequest>,
    /// A directory of CNI configuration lists (*.conflist), searched before
    /// /etc/skiff/net.d (repeatable).
    #[arg(long, value_name = "DIR")]
    net_config_dir: Vec<PathBuf>,
    /// Where the CNI plugins are [default: $CNI_PATH, else /usr/lib/cni].
    #[arg(long, value_name = "DIR")]
    cni_plugin_dir: Option<PathBuf>,
}

impl NetOptions {
    pub(super) fn config(&self, ctx: &Ctx) -> network::NetConfig {
        let mut config_dirs = self.net_config_dir.clone();
        config_dirs.push(PathBuf::from(network::DEFAULT_CONFIG_DIR));
        network::NetConfig { config_dirs, ipam_dir: ctx.store.root().join("net").join("ipam") }
    }

    /// Where the flavor finds CNI plugins: the directories asked for (or
    /// Debian's), then skiff's own, which holds the default network's
    /// `skiff-bridge`.
    pub(super) fn cni_path(&self) -> Vec<PathBuf> {
        let mut dirs = match (&self.cni_plugin_dir, std::env::var_os("CNI_PATH")) {
            (Some(d), _) => vec![d.clone()],
            (None, Some(p)) if !p.is_empty() => std::env::split_paths(&p).collect(),
            _ => vec![PathBuf::from(skiff_pods::manifest::DEFAULT_CNI_PLUGIN_DIR)],
        };
        if let Ok(own) = crate::pod::flavor::skiff_dir() {
            if !dirs.contains(&own) {
                dirs.push(own);
            }
        }
        dirs
    }
}

/// The network a flavor gets when none is asked for: its own on the
/// `default` network where the flavor can attach one, else the host's.
pub(super) fn default_net(flavor: &Flavor) -> NetRequest {
    if flavor.description.supports(feature::NET_CNI) {
        NetRequest::Cni(vec![(network::DEFAULT_NETWORK.to_string(), Vec::new())])
    } else {
        NetRequest::Host
    }
}

pub(super) fn require_net(flavor: &Flavor, net: &NetRequest, ports: &[PortMapping]) -> Result<()> {
    match net {
        NetRequest::None => flavor.require(feature::NET_NONE, "--net none")?,
        NetRequest::Cni(nets) => {
            let names: Vec<&str> = nets.iter().map(|(n, _)| n.as_str()).collect();
            flavor.require(feature::NET_CNI, &format!("--net {}", names.join(",")))?;
        }
        NetRequest::Host => {}
    }
    if !ports.is_empty() {
        flavor.require(feature::NET_CNI, "--port")?;
    }
    Ok(())
}

/// The manifest's network fields for `req`.
pub(super) fn resolve_net(
    ctx: &Ctx,
    opts: &NetOptions,
    req: &NetRequest,
    ports: &[PortMapping],
) -> Result<prepare::PodNet> {
    let (net, networks) = opts.config(ctx).resolve(req, ports).map_err(anyhow::Error::msg)?;
    Ok(prepare::PodNet { net, networks, ports: ports.to_vec(), cni_path: opts.cni_path() })
}

/// Whether a pod's networks ask for fixed addresses (`NAME:IP=…`), which a
/// dead pod's lease may still hold.
pub(super) fn asks_addresses(networks: &[skiff_pods::manifest::Network]) -> bool {
    networks.iter().any(|n| n.args.iter().any(|(k, _)| k == "IP"))
}

/// Moves a pod into `run/`, unless a port it publishes is taken: checked
/// and moved under the store's ports lock, so of two pods asking for one
/// port exactly one runs. A pod that claims ports or addresses first
/// releases what pods whose supervisor died still hold (a `Restart=`
/// unit's next start must not wait for `skiff gc`).
pub(super) fn start_running(ctx: &Ctx, pod: &mut Pod, ports: &[PortMapping], addresses: bool) -> Result<()> {
    if ports.is_empty() && !addresses {
        return Ok(pod.transition(StateDir::Run)?);
    }
    let _lock = network::lock_ports(&ctx.store).map_err(anyhow::Error::msg)?;
    for (uuid, e) in gc::release_dead_networks(&ctx.store) {
        crate::debug!("pod {uuid}: cannot release its network: {e:#}");
    }
    network::check_ports(ports, &network::published(&ctx.store, pod.uuid())).map_err(anyhow::Error::msg)?;
    Ok(pod.transition(StateDir::Run)?)
}
