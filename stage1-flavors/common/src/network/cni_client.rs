//! A CNI client (spec 1.0.0): runs the plugins of a network configuration
//! list against a pod's network namespace. ADD runs the plugins in order,
//! each getting the previous one's result; DEL runs them in reverse with
//! the cached result, and is harmless to repeat.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use skiff_pods::manifest::Network;
use skiff_rt::error::{Context, Error, Result};

/// A pod's attachment to one network.
pub struct Attachment<'a> {
    pub network: &'a Network,
    /// Directories holding the plugins, searched in order.
    pub cni_path: &'a [PathBuf],
    /// The pod's UUID.
    pub container_id: &'a str,
    pub netns: &'a Path,
    /// What the runtime offers plugins that declare a capability
    /// (`portMappings` for the pod's first network).
    pub runtime_config: serde_json::Map<String, serde_json::Value>,
}

impl Attachment<'_> {
    /// Each plugin's own configuration: its entry of the list with the
    /// list's name and version, and `runtimeConfig` for the capabilities it
    /// declares (spec: "Deriving runtimeConfig").
    fn plugins(&self) -> Result<Vec<serde_json::Value>> {
        let list = &self.network.conflist;
        let plugins = list["plugins"].as_array().filter(|p| !p.is_empty());
        let plugins =
            plugins.ok_or_else(|| format!("network {}: no plugins in its configuration", self.network.name))?;
        let mut out = Vec::new();
        for p in plugins {
            let mut conf = p.clone();
            conf["name"] = list["name"].clone();
            conf["cniVersion"] = list["cniVersion"].clone();
            let mut rc = serde_json::Map::new();
            if let Some(caps) = p["capabilities"].as_object() {
                for (cap, on) in caps {
                    if let (Some(true), Some(v)) = (on.as_bool(), self.runtime_config.get(cap)) {
                        rc.insert(cap.clone(), v.clone());
                    }
                }
            }
            if !rc.is_empty() {
                conf["runtimeConfig"] = rc.into();
            }
            out.push(conf);
        }
        Ok(out)
    }

    /// `CNI_ARGS`: the network's arguments, with IgnoreUnknown so that a
    /// plugin that does not know a key (bridge does not know IP) accepts it.
    fn cni_args(&self) -> String {
        if self.network.args.is_empty() {
            return String::new();
        }
        let mut s = String::from("IgnoreUnknown=1");
        for (k, v) in &self.network.args {
            s.push_str(&format!(";{k}={v}"));
        }
        s
    }

    fn exec(&self, command: &str, conf: &serde_json::Value) -> Result<serde_json::Value> {
        let net = &self.network.name;
        let kind = conf["type"].as_str().filter(|k| !k.is_empty() && !k.contains('/') && *k != "..");
        let kind = kind.ok_or_else(|| format!("network {net}: a plugin without a valid type"))?;
        let Some(bin) = self.cni_path.iter().map(|d| d.join(kind)).find(|b| b.is_file()) else {
            let dirs: Vec<String> = self.cni_path.iter().map(|d| d.display().to_string()).collect();
            let from = if kind.starts_with("skiff-") {
                "installed beside skiff"
            } else {
                "Debian package containernetworking-plugins"
            };
            return Err(Error::refused(format!(
                "network {net}: CNI plugin {kind} not found in {} ({from})",
                dirs.join(":")
            )));
        };
        let mut child = Command::new(&bin)
            .env_clear()
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", self.container_id)
            .env("CNI_NETNS", self.netns)
            .env("CNI_IFNAME", &self.network.ifname)
            .env("CNI_ARGS", self.cni_args())
            .env("CNI_PATH", std::env::join_paths(self.cni_path).unwrap_or_default())
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("network {net}: cannot run CNI plugin {}", bin.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(conf.to_string().as_bytes());
        }
        let out = child.wait_with_output().with_context(|| format!("network {net}: CNI plugin {kind}"))?;
        let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        if !out.status.success() {
            // Errors are a JSON object with a message (CNI spec, "Error").
            let msg = parsed["msg"].as_str().map(str::to_string).unwrap_or_else(|| {
                String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or("no message").to_string()
            });
            let details = parsed["details"].as_str().filter(|d| !d.is_empty() && !msg.contains(d));
            let msg = match details {
                Some(d) => format!("{msg}: {d}"),
                None => msg,
            };
            return Err(Error::refused(format!("network {net}: CNI plugin {kind} {command} failed: {msg}")));
        }
        Ok(parsed)
    }

    /// Attaches the pod; returns the final result. A failed ADD is undone.
    pub fn add(&self) -> Result<serde_json::Value> {
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
    pub fn del(&self, result: &serde_json::Value) -> Result<()> {
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

    fn network(conflist: serde_json::Value, args: &[(&str, &str)]) -> Network {
        Network {
            name: "n".into(),
            ifname: "eth0".into(),
            conflist,
            args: args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn attachment(n: &Network) -> Attachment<'_> {
        let mut rc = serde_json::Map::new();
        rc.insert("portMappings".into(), serde_json::json!([{"hostPort": 8080, "containerPort": 80}]));
        static PATH: [PathBuf; 0] = [];
        Attachment { network: n, cni_path: &PATH, container_id: "c", netns: Path::new("/n"), runtime_config: rc }
    }

    #[test]
    fn plugin_configs_carry_the_list_name_and_only_declared_capabilities() {
        let n = network(
            serde_json::json!({"cniVersion": "1.0.0", "name": "web", "plugins": [
                {"type": "bridge"},
                {"type": "portmap", "capabilities": {"portMappings": true, "bandwidth": true}},
                {"type": "tuning", "capabilities": {"portMappings": false}},
            ]}),
            &[],
        );
        let p = attachment(&n).plugins().unwrap();
        assert_eq!((p[0]["name"].as_str(), p[0]["cniVersion"].as_str()), (Some("web"), Some("1.0.0")));
        assert!(p[0].get("runtimeConfig").is_none());
        assert_eq!(p[1]["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
        assert!(p[1]["runtimeConfig"].get("bandwidth").is_none(), "nothing offered for it");
        assert!(p[2].get("runtimeConfig").is_none(), "declared false");
        assert_eq!(attachment(&n).cni_args(), "");
        let n = network(n.conflist.clone(), &[("IP", "10.1.2.3")]);
        assert_eq!(attachment(&n).cni_args(), "IgnoreUnknown=1;IP=10.1.2.3");
    }

    #[test]
    fn hostile_configurations_are_errors() {
        for bad in [
            serde_json::json!({"name": "x"}),
            serde_json::json!({"name": "x", "plugins": []}),
            serde_json::json!({"name": "x", "plugins": "bridge"}),
        ] {
            assert!(attachment(&network(bad.clone(), &[])).plugins().is_err(), "{bad}");
        }
        for kind in ["../../bin/sh", "", ".."] {
            let n = network(serde_json::json!({"name": "x", "plugins": [{"type": kind}]}), &[]);
            let err = attachment(&n).add().unwrap_err().to_string();
            assert!(err.contains("valid type"), "{err}");
        }
    }
}
