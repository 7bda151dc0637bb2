//! The pod's network as its flavor recorded it in `net.json`: one entry per
//! attached CNI network, with the plugin chain's final result (ABI,
//! docs/stage1-abi.md). Read by `status`/`list`, by the pod's init (for
//! /etc/hosts and resolv.conf) and by gc (for CNI DEL).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::layout::NET_RESULT_FILE;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Attached {
    /// The network's name (`networks[].name` of the manifest).
    pub network: String,
    pub ifname: String,
    /// The CNI result of the last plugin of the network's list.
    pub result: serde_json::Value,
}

/// DNS settings a CNI result carries (spec: `dns`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dns {
    pub nameservers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
    pub domain: Option<String>,
}

impl Dns {
    /// As /etc/resolv.conf.
    pub fn resolv_conf(&self) -> String {
        let mut out = String::new();
        for n in &self.nameservers {
            out.push_str(&format!("nameserver {n}\n"));
        }
        if let Some(d) = &self.domain {
            out.push_str(&format!("domain {d}\n"));
        }
        if !self.search.is_empty() {
            out.push_str(&format!("search {}\n", self.search.join(" ")));
        }
        if !self.options.is_empty() {
            out.push_str(&format!("options {}\n", self.options.join(" ")));
        }
        out
    }
}

/// Every network of one pod, in the order they were attached.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NetState(pub Vec<Attached>);

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

impl Attached {
    /// The pod's addresses (CIDR) on this network.
    pub fn addresses(&self) -> Vec<String> {
        let ips = self.result["ips"].as_array().map(Vec::as_slice).unwrap_or_default();
        ips.iter().filter_map(|i| i["address"].as_str().map(str::to_string)).collect()
    }
}

impl NetState {
    /// What the pod directory `dir` holds; empty when it holds nothing
    /// readable (host or none network, or before the flavor attached it).
    pub fn read(dir: &Path) -> NetState {
        Self::from_file(rustix::fs::CWD, &dir.join(NET_RESULT_FILE))
    }

    /// [`NetState::read`] of the open pod directory `dir`.
    pub fn read_at<Fd: std::os::fd::AsFd>(dir: Fd) -> NetState {
        Self::from_file(dir, NET_RESULT_FILE.as_ref())
    }

    fn from_file<Fd: std::os::fd::AsFd>(at: Fd, path: &Path) -> NetState {
        crate::small_file::read_at(at, path).ok().and_then(|d| serde_json::from_slice(&d).ok()).unwrap_or_default()
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Every address (CIDR) of the pod, network by network.
    pub fn addresses(&self) -> Vec<String> {
        self.0.iter().flat_map(Attached::addresses).collect()
    }

    /// The DNS settings of the first network whose result names
    /// nameservers.
    pub fn dns(&self) -> Option<Dns> {
        self.0.iter().map(|a| &a.result["dns"]).find(|d| !strings(&d["nameservers"]).is_empty()).map(|d| Dns {
            nameservers: strings(&d["nameservers"]),
            search: strings(&d["search"]),
            options: strings(&d["options"]),
            domain: d["domain"].as_str().map(str::to_string),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_dns_from_results() {
        let s: NetState = serde_json::from_value(serde_json::json!([
            {"network": "a", "ifname": "eth0", "result": {"ips": [{"address": "10.1.0.2/24"}], "dns": {}}},
            {"network": "b", "ifname": "eth1", "result": {
                "ips": [{"address": "10.2.0.2/24"}, {"address": "fd00::2/64"}],
                "dns": {"nameservers": ["10.2.0.53"], "search": ["b.example"], "options": ["ndots:2"]}}},
        ]))
        .unwrap();
        assert_eq!(s.addresses(), ["10.1.0.2/24", "10.2.0.2/24", "fd00::2/64"]);
        assert_eq!(s.dns().unwrap().resolv_conf(), "nameserver 10.2.0.53\nsearch b.example\noptions ndots:2\n");
        // Whatever a result holds, nothing panics and nothing is made up.
        let odd: NetState = serde_json::from_value(serde_json::json!([
            {"network": "c", "ifname": "eth0", "result": {"ips": "x", "dns": {"nameservers": [1, 2]}}},
            {"network": "d", "ifname": "eth1", "result": null},
        ]))
        .unwrap();
        assert!(odd.addresses().is_empty() && odd.dns().is_none());
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(NET_RESULT_FILE), b"{not json").unwrap();
        assert_eq!(NetState::read(d.path()), NetState::default());
    }
}
