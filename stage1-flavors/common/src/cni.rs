//! A CNI client (spec 1.0.0): runs the plugins of a network configuration
//! list against a pod's network namespace. ADD runs the plugins in order,
//! each getting the previous one's result; DEL runs them in reverse with
//! the cached result, and is harmless to repeat.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use skiff_pods::manifest::Net;

/// Where Debian's containernetworking-plugins live.
pub const DEFAULT_PLUGIN_DIR: &str = "/usr/lib/cni";

/// The `default` network: a bridge with host-local addresses and outbound
/// masquerading (docs/networking.md).
pub const DEFAULT_SUBNET: &str = "10.231.0.0/16";
pub const DEFAULT_BRIDGE: &str = "skiff0";

/// A pod's attachment to one network.
pub struct Attachment {
    pub conflist: serde_json::Value,
    pub plugin_dir: PathBuf,
    /// The pod's UUID.
    pub container_id: String,
    pub netns: PathBuf,
    pub ifname: String,
}

/// The configuration list of the `default` network; host-local keeps its
/// leases under `ipam_dir` (inside skiff's store).
pub fn default_conflist(ipam_dir: &Path) -> serde_json::Value {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "skiff-default",
        "plugins": [{
            "type": "bridge",
            "bridge": DEFAULT_BRIDGE,
            "isGateway": true,
            "ipMasq": true,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": DEFAULT_SUBNET}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": ipam_dir,
            }
        }]
    })
}

/// The conflist a manifest's network needs, or None for host/none.
pub fn conflist_for(net: Net, ipam_dir: &Path) -> Option<serde_json::Value> {
    match net {
        Net::Default => Some(default_conflist(ipam_dir)),
        Net::Host | Net::None => None,
    }
}

impl Attachment {
    fn plugins(&self) -> Result<Vec<serde_json::Value>, String> {
        let list = self.conflist["plugins"].as_array().ok_or("network configuration without plugins")?;
        let mut out = Vec::new();
        for p in list {
            let mut conf = p.clone();
            conf["name"] = self.conflist["name"].clone();
            conf["cniVersion"] = self.conflist["cniVersion"].clone();
            out.push(conf);
        }
        Ok(out)
    }

    fn exec(&self, command: &str, conf: &serde_json::Value) -> Result<serde_json::Value, String> {
        let kind = conf["type"].as_str().ok_or("a plugin without a type")?;
        let bin = self.plugin_dir.join(kind);
        if !bin.is_file() {
            return Err(format!(
                "CNI plugin {kind} not found in {} (Debian package containernetworking-plugins)",
                self.plugin_dir.display()
            ));
        }
        let mut child = Command::new(&bin)
            .env_clear()
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", &self.container_id)
            .env("CNI_NETNS", &self.netns)
            .env("CNI_IFNAME", &self.ifname)
            .env("CNI_PATH", &self.plugin_dir)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run CNI plugin {}: {e}", bin.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(conf.to_string().as_bytes());
        }
        let out = child.wait_with_output().map_err(|e| format!("CNI plugin {kind}: {e}"))?;
        let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        if !out.status.success() {
            // Errors are a JSON object with a message (CNI spec, "Error").
            let msg = parsed["msg"].as_str().map(str::to_string).unwrap_or_else(|| {
                String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or("no message").to_string()
            });
            return Err(format!("CNI plugin {kind} {command} failed: {msg}"));
        }
        Ok(parsed)
    }

    /// Attaches the pod; returns the final result. A failed ADD is undone.
    pub fn add(&self) -> Result<serde_json::Value, String> {
        let mut prev = serde_json::Value::Null;
        for conf in self.plugins()? {
            let mut conf = conf;
            if !prev.is_null() {
                conf["prevResult"] = prev.clone();
            }
            match self.exec("ADD", &conf) {
                Ok(r) => prev = r,
                Err(e) => {
                    let _ = self.del(&prev);
                    return Err(e);
                }
            }
        }
        Ok(prev)
    }

    /// Detaches the pod (reverse order, with the ADD result when known).
    pub fn del(&self, result: &serde_json::Value) -> Result<(), String> {
        let mut first_err = None;
        for conf in self.plugins()?.into_iter().rev() {
            let mut conf = conf;
            if !result.is_null() {
                conf["prevResult"] = result.clone();
            }
            if let Err(e) = self.exec("DEL", &conf) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_network() {
        let c = default_conflist(Path::new("/store/net/ipam"));
        assert_eq!(c["plugins"][0]["ipam"]["dataDir"], "/store/net/ipam");
        assert!(conflist_for(Net::Host, Path::new("/x")).is_none());
    }
}
