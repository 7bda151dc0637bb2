//! `skiff-bridge`: the CNI plugin (spec 1.0.0) of skiff's `default`
//! network, which every pod of the ns and nspawn flavors gets unless told
//! otherwise. It does what the reference `bridge` plugin with host-local
//! addresses and `ipMasq` did for it, at a fraction of the cost
//! (docs/networking.md):
//!
//! - netlink requests from one static binary, not `ip`-like Go plugins;
//! - one masquerade rule for the whole network, added once per boot and
//!   removed by GC (`skiff gc`) when the network has no lease left, instead
//!   of a chain per pod (two thirds of a pod's start with the reference
//!   plugin were its iptables runs);
//! - DEL releases the address and leaves the veth to the kernel, which
//!   deletes it with the pod's network namespace, unpinned right after:
//!   deleting a veth waits for an RCU grace period (tens of ms here).
//!
//! Configuration: `{"type": "skiff-bridge", "bridge": "skiff0", "subnet":
//! "10.231.0.0/16", "dataDir": DIR}`.

#![cfg_attr(not(test), no_main)]

mod ipam;
mod masquerade;
mod netlink;

use std::io::Read;
use std::os::fd::AsFd;
use std::path::PathBuf;

use rustix::io::Errno;
use serde_json::json;
use skiff_rt::error::{Context, Error, Result};

use crate::ipam::{dotted, Leases, Subnet};
use crate::netlink::Netlink;

struct Config {
    cni_version: String,
    name: String,
    bridge: String,
    subnet: Subnet,
    data_dir: PathBuf,
}

impl Config {
    fn parse(data: &[u8]) -> Result<Config> {
        let v: serde_json::Value = serde_json::from_slice(data).context("the network configuration")?;
        let text = |k: &str| v[k].as_str().map(str::to_string);
        let missing = |k: &str| Error::refused(format!("the network configuration has no {k:?}"));
        let subnet = text("subnet").ok_or_else(|| missing("subnet"))?;
        Ok(Config {
            cni_version: text("cniVersion").unwrap_or_else(|| "1.0.0".into()),
            name: text("name").ok_or_else(|| missing("name"))?,
            bridge: text("bridge").filter(|b| !b.is_empty() && b.len() < 16).ok_or_else(|| missing("bridge"))?,
            subnet: Subnet::parse(&subnet).ok_or_else(|| Error::refused(format!("invalid subnet {subnet:?}")))?,
            data_dir: text("dataDir").map(PathBuf::from).ok_or_else(|| missing("dataDir"))?,
        })
    }
}

fn env(k: &str) -> Result<String> {
    std::env::var(k).map_err(|_| Error::refused(format!("{k} is not set")))
}

/// The host end of a pod's veth: `sk` and 8 hex digits of the container
/// ID and interface (host interface names are at most 15 bytes).
fn host_veth(container: &str, ifname: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in container.bytes().chain([0]).chain(ifname.bytes()) {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    format!("sk{h:08x}")
}

fn add(c: &Config, container: &str, netns: &str, ifname: &str) -> Result<serde_json::Value> {
    let owner = format!("{container}\n{ifname}");
    let leases = Leases::lock(&c.data_dir, &c.name).context("cannot lock the network's addresses")?;
    let ip = leases.allocate(&c.subnet, &owner).context("cannot lease an address")?;
    // In the host's namespace: `attach` ends in the pod's, and a failure
    // there is undone back in the host's.
    let host = std::fs::File::open("/proc/self/ns/net").context("cannot open the host's network namespace")?;
    let masqueraded = masquerade::ensure(&c.subnet, &c.data_dir, leases.dir());
    if let Err(e) = masqueraded.and_then(|()| attach(c, ip, netns, ifname, &host_veth(container, ifname))) {
        let _ = nix::sched::setns(&host, nix::sched::CloneFlags::CLONE_NEWNET);
        let _ = leases.release(&owner);
        return Err(e);
    }
    let address = format!("{}/{}", dotted(ip), c.subnet.prefix);
    Ok(json!({
        "cniVersion": c.cni_version,
        "interfaces": [{"name": host_veth(container, ifname)}, {"name": ifname, "sandbox": netns}],
        "ips": [{"address": address, "gateway": dotted(c.subnet.gateway()), "interface": 1}],
        "routes": [{"dst": "0.0.0.0/0", "gw": dotted(c.subnet.gateway())}],
    }))
}

/// The bridge (made once, with the gateway address), the veth pair, and
/// the pod's side configured inside its namespace.
fn attach(c: &Config, ip: u32, netns: &str, ifname: &str, veth: &str) -> Result<()> {
    let nl = Netlink::open().context("cannot open a netlink socket")?;
    let bridge = match nl.index(&c.bridge) {
        Ok(i) => i,
        Err(_) => {
            match nl.create_bridge(&c.bridge) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e).with_context(|| format!("cannot create bridge {}", c.bridge)),
            }
            let i = nl.index(&c.bridge).with_context(|| format!("bridge {}", c.bridge))?;
            // The gateway address on the bridge, and forwarding: pods reach
            // the host and, masqueraded, the world.
            match nl.add_address(i, c.subnet.gateway().to_be_bytes(), c.subnet.prefix) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e).with_context(|| format!("cannot give bridge {} its address", c.bridge)),
            }
            nl.set_up(i).with_context(|| format!("cannot bring bridge {} up", c.bridge))?;
            i
        }
    };
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").context("cannot enable IPv4 forwarding")?;
    let ns = std::fs::File::open(netns).with_context(|| format!("cannot open the pod's namespace {netns}"))?;
    nl.create_veth(veth, bridge, ifname, ns.as_fd()).with_context(|| format!("cannot create veth {veth}"))?;
    let host = nl.index(veth).with_context(|| format!("veth {veth}"))?;
    nl.set_hairpin(host).with_context(|| format!("cannot set hairpin mode on {veth}"))?;
    nl.set_up(host).with_context(|| format!("cannot bring {veth} up"))?;
    // This process is single-threaded: it moves into the pod's namespace
    // for the rest (it has nothing more to do in the host's).
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).context("cannot enter the pod's network namespace")?;
    let pod = Netlink::open().context("cannot open a netlink socket in the pod's namespace")?;
    let i = pod.index(ifname).with_context(|| format!("{ifname} in the pod"))?;
    pod.add_address(i, ip.to_be_bytes(), c.subnet.prefix)
        .with_context(|| format!("cannot give {ifname} address {}", dotted(ip)))?;
    pod.set_up(i).with_context(|| format!("cannot bring {ifname} up"))?;
    pod.add_default_route(i, c.subnet.gateway().to_be_bytes()).context("cannot add the pod's default route")
}

fn del(c: &Config, container: &str, ifname: &str) -> Result<()> {
    let leases = Leases::lock(&c.data_dir, &c.name).context("cannot lock the network's addresses")?;
    leases.release(&format!("{container}\n{ifname}")).context("cannot release the pod's address")
}

/// CNI GC: the masquerade rule goes once the network has no lease left.
fn gc(c: &Config) -> Result<()> {
    let leases = Leases::lock(&c.data_dir, &c.name).context("cannot lock the network's addresses")?;
    if leases.is_empty().context("cannot read the network's addresses")? {
        masquerade::remove(&c.subnet, &c.data_dir, leases.dir());
    }
    Ok(())
}

fn run() -> Result<Option<serde_json::Value>> {
    let mut data = Vec::new();
    std::io::stdin().read_to_end(&mut data).context("cannot read the network configuration")?;
    let command = env("CNI_COMMAND")?;
    if command == "VERSION" {
        return Ok(Some(json!({"cniVersion": "1.1.0", "supportedVersions": ["0.4.0", "1.0.0", "1.1.0"]})));
    }
    let c = Config::parse(&data)?;
    match command.as_str() {
        "ADD" => add(&c, &env("CNI_CONTAINERID")?, &env("CNI_NETNS")?, &env("CNI_IFNAME")?).map(Some),
        "DEL" => del(&c, &env("CNI_CONTAINERID")?, &env("CNI_IFNAME")?).map(|()| None),
        "GC" => gc(&c).map(|()| None),
        "CHECK" | "STATUS" => Ok(None),
        other => Err(Error::refused(format!("unknown CNI_COMMAND {other:?}"))),
    }
}

fn plugin_main() -> i32 {
    match run() {
        Ok(Some(result)) => {
            println!("{result}");
            0
        }
        Ok(None) => 0,
        Err(e) => {
            // The CNI error format, on stdout, exit status non-zero.
            println!("{}", json!({"cniVersion": "1.0.0", "code": 999, "msg": e.to_string()}));
            1
        }
    }
}

skiff_rt::main!(plugin_main);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_veth_names_fit_and_differ() {
        let a = host_veth("0f8e6e5e-aaaa-4bbb-8ccc-000000000001", "eth0");
        assert_eq!(a.len(), 10);
        assert_ne!(a, host_veth("0f8e6e5e-aaaa-4bbb-8ccc-000000000001", "eth1"));
        assert_ne!(a, host_veth("0f8e6e5e-aaaa-4bbb-8ccc-000000000002", "eth0"));
    }

    #[test]
    fn configurations() {
        let ok = br#"{"cniVersion":"1.0.0","name":"default","type":"skiff-bridge","bridge":"skiff0","subnet":"10.231.0.0/16","dataDir":"/x"}"#;
        let c = Config::parse(ok).unwrap();
        assert_eq!((c.name.as_str(), c.bridge.as_str(), c.subnet.prefix), ("default", "skiff0", 16));
        for bad in [
            &br#"{"name":"d","bridge":"skiff0","subnet":"10.231.0.0/16"}"#[..],
            br#"{"name":"d","bridge":"a-name-far-too-long","subnet":"10.231.0.0/16","dataDir":"/x"}"#,
            br#"{"name":"d","bridge":"skiff0","subnet":"10.231.0.0","dataDir":"/x"}"#,
            b"not json",
        ] {
            assert!(Config::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
