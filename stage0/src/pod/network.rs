//! The pod's network as stage0 resolves it (docs/networking.md): `--net`
//! parsed, each CNI network's configuration list found (built in for
//! `default`, else in the configuration directories), published ports
//! parsed and checked. The result goes into the pod manifest whole, so the
//! flavor and gc need no configuration of their own.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

use std::fs::File;

use skiff_pods::layout::NETNS_FILE;
use skiff_pods::manifest::{Net, Network, PortMapping};
use skiff_pods::{Pod, PodState, StateDir, Store};

/// Where people put their networks' configuration lists.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/skiff/net.d";

/// The built-in network (unless a configuration list of this name exists).
pub const DEFAULT_NETWORK: &str = "default";
pub const DEFAULT_SUBNET: &str = "10.231.0.0/16";
pub const DEFAULT_BRIDGE: &str = "skiff0";

/// Configuration lists are small; a bigger file is not one.
const MAX_CONFLIST: u64 = 1 << 20;

/// `--net` as given: the host's, none, or CNI networks with their
/// `CNI_ARGS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetRequest {
    Host,
    None,
    Cni(Vec<(String, Vec<(String, String)>)>),
}

impl NetRequest {
    /// `host`, `none`, or `NAME[:K=V[;K=V…]][,NAME…]` (rkt's syntax).
    pub fn parse(s: &str) -> Result<NetRequest, String> {
        match s {
            "host" => return Ok(NetRequest::Host),
            "none" => return Ok(NetRequest::None),
            _ => {}
        }
        let mut nets: Vec<(String, Vec<(String, String)>)> = Vec::new();
        for item in s.split(',') {
            let (name, args) = item.split_once(':').unwrap_or((item, ""));
            check_name(name)?;
            if name == "host" || name == "none" {
                return Err(format!("--net {s:?}: {name} cannot be combined with other networks"));
            }
            if nets.iter().any(|(n, _)| n == name) {
                return Err(format!("--net {s:?}: network {name} is named twice"));
            }
            let mut parsed = Vec::new();
            for kv in args.split(';').filter(|kv| !kv.is_empty()) {
                parsed.push(parse_arg(name, kv)?);
            }
            nets.push((name.to_string(), parsed));
        }
        Ok(NetRequest::Cni(nets))
    }

    pub fn mode(&self) -> Net {
        match self {
            NetRequest::Host => Net::Host,
            NetRequest::None => Net::None,
            NetRequest::Cni(_) => Net::Cni,
        }
    }
}

/// CNI's rule for network names.
fn check_name(name: &str) -> Result<(), String> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !ok {
        return Err(format!(
            "invalid network name {name:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit"
        ));
    }
    Ok(())
}

fn parse_arg(net: &str, kv: &str) -> Result<(String, String), String> {
    let (k, v) = kv.split_once('=').ok_or_else(|| format!("network {net}: argument {kv:?} is not KEY=VALUE"))?;
    let ok = |x: &str| !x.is_empty() && !x.contains(|c: char| c == '=' || c.is_control());
    if !ok(k) || !ok(v) {
        return Err(format!("network {net}: invalid argument {kv:?}"));
    }
    if k == "IP" {
        v.parse::<IpAddr>().map_err(|_| format!("network {net}: IP={v} is not an IP address"))?;
    }
    Ok((k.to_string(), v.to_string()))
}

/// Where networks and plugins are found.
pub struct NetConfig {
    /// Searched in order for `*.conflist` files; the first list of a name
    /// wins.
    pub config_dirs: Vec<PathBuf>,
    /// host-local's leases of the built-in network.
    pub ipam_dir: PathBuf,
}

/// The built-in `default` network: skiff's own bridge plugin
/// (`skiff-bridge`, installed beside skiff: a bridge, a veth per pod,
/// addresses leased under `ipam_dir`, one outbound masquerade rule for the
/// network; docs/networking.md).
pub fn default_conflist(ipam_dir: &Path) -> serde_json::Value {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": DEFAULT_NETWORK,
        "plugins": [{
            "type": "skiff-bridge",
            "bridge": DEFAULT_BRIDGE,
            "subnet": DEFAULT_SUBNET,
            "dataDir": ipam_dir,
        }]
    })
}

/// `skiff gc`'s part in the built-in network: its plugin's CNI GC, which
/// removes the network's masquerade rule once no pod of the store holds an
/// address on it (docs/networking.md).
pub fn gc_default_network(ipam_dir: &Path, plugin_dir: &Path) -> Result<(), String> {
    if !ipam_dir.join(DEFAULT_NETWORK).is_dir() {
        return Ok(());
    }
    let mut conf = default_conflist(ipam_dir)["plugins"][0].clone();
    conf["cniVersion"] = "1.1.0".into();
    conf["name"] = DEFAULT_NETWORK.into();
    let plugin = plugin_dir.join("skiff-bridge");
    let mut child = std::process::Command::new(&plugin)
        .env_clear()
        .env("CNI_COMMAND", "GC")
        .env("CNI_PATH", plugin_dir)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", plugin.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = std::io::Write::write_all(&mut stdin, conf.to_string().as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| format!("{}: {e}", plugin.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("the default network's GC failed: {}", String::from_utf8_lossy(&out.stdout).trim()))
    }
}

/// A configuration list as the spec shapes it: a version, a name and a
/// non-empty list of plugins with a type each.
pub fn check_conflist(v: &serde_json::Value) -> Result<String, String> {
    let name = v["name"].as_str().ok_or("no \"name\"")?;
    check_name(name)?;
    v["cniVersion"].as_str().ok_or("no \"cniVersion\"")?;
    let plugins = v["plugins"].as_array().filter(|p| !p.is_empty()).ok_or("no \"plugins\" list")?;
    for p in plugins {
        p["type"].as_str().filter(|t| !t.is_empty()).ok_or("a plugin without a \"type\"")?;
    }
    Ok(name.to_string())
}

impl NetConfig {
    /// Every configuration list in the directories, by name; a file that is
    /// not one is an error naming it, and so is a name given twice.
    fn configured(&self) -> Result<Vec<(String, PathBuf, serde_json::Value)>, String> {
        let mut out: Vec<(String, PathBuf, serde_json::Value)> = Vec::new();
        for dir in &self.config_dirs {
            let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
                Ok(rd) => {
                    rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "conflist")).collect()
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("cannot read network configuration directory {}: {e}", dir.display())),
            };
            files.sort();
            for f in files {
                let bad = |why: String| format!("network configuration {}: {why}", f.display());
                let md = std::fs::metadata(&f).map_err(|e| bad(e.to_string()))?;
                if !md.is_file() || md.len() > MAX_CONFLIST {
                    return Err(bad("not a regular file of at most 1 MiB".into()));
                }
                let text = std::fs::read(&f).map_err(|e| bad(e.to_string()))?;
                let v: serde_json::Value = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
                let name = check_conflist(&v).map_err(bad)?;
                match out.iter().find(|(n, _, _)| *n == name) {
                    // An earlier directory's wins (--net-config-dir over
                    // /etc/skiff/net.d); within one, a name is given once.
                    Some((_, other, _)) if other.parent() == f.parent() => {
                        return Err(bad(format!("network {name} is also configured in {}", other.display())));
                    }
                    Some(_) => {}
                    None => out.push((name, f, v)),
                }
            }
        }
        Ok(out)
    }

    /// The manifest's view of `req`: its mode and its networks, with
    /// `ports` published on the first one.
    pub fn resolve(&self, req: &NetRequest, ports: &[PortMapping]) -> Result<(Net, Vec<Network>), String> {
        let NetRequest::Cni(nets) = req else {
            if !ports.is_empty() {
                return Err("--port needs a CNI network (--net default or a configured network)".into());
            }
            return Ok((req.mode(), Vec::new()));
        };
        let configured = self.configured()?;
        let mut out = Vec::new();
        for (i, (name, args)) in nets.iter().enumerate() {
            let conflist = match configured.iter().find(|(n, _, _)| n == name) {
                Some((_, _, v)) => v.clone(),
                None if name == DEFAULT_NETWORK => default_conflist(&self.ipam_dir),
                None => {
                    let dirs: Vec<String> = self.config_dirs.iter().map(|d| d.display().to_string()).collect();
                    let dirs = dirs.join(", ");
                    return Err(format!(
                        "network {name} is not configured: no configuration list named {name} in {dirs}"
                    ));
                }
            };
            let conflist = if i == 0 && !ports.is_empty() { with_portmap(conflist) } else { conflist };
            out.push(Network { name: name.clone(), ifname: format!("eth{i}"), conflist, args: args.clone() });
        }
        Ok((Net::Cni, out))
    }
}

/// The list with the portmap plugin at its end, unless a plugin of it
/// already takes port mappings.
fn with_portmap(mut conflist: serde_json::Value) -> serde_json::Value {
    let Some(plugins) = conflist["plugins"].as_array_mut() else { return conflist };
    if !plugins.iter().any(|p| p["capabilities"]["portMappings"] == true) {
        plugins.push(serde_json::json!({"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}));
    }
    conflist
}

/// `[HOST_IP:]HOST_PORT:POD_PORT[/tcp|/udp]`.
pub fn parse_port(s: &str) -> Result<PortMapping, String> {
    let bad = |why: &str| format!("--port {s:?}: {why}");
    let (spec, protocol) = match s.rsplit_once('/') {
        Some((spec, p @ ("tcp" | "udp"))) => (spec, p),
        Some(_) => return Err(bad("the protocol must be tcp or udp")),
        None => (s, "tcp"),
    };
    let (host, pod_port) = spec.rsplit_once(':').ok_or_else(|| bad("expected HOST_PORT:POD_PORT"))?;
    let (host_ip, host_port) = match host.rsplit_once(':') {
        Some((ip, port)) => {
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            ip.parse::<IpAddr>().map_err(|_| bad(&format!("{ip:?} is not an IP address")))?;
            (ip.to_string(), port)
        }
        None => (String::new(), host),
    };
    let port = |p: &str| {
        p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| bad(&format!("{p:?} is not a port (1-65535)")))
    };
    Ok(PortMapping { host_ip, host_port: port(host_port)?, pod_port: port(pod_port)?, protocol: protocol.to_string() })
}

fn overlaps(a: &PortMapping, b: &PortMapping) -> bool {
    a.host_port == b.host_port
        && a.protocol == b.protocol
        && (a.host_ip.is_empty() || b.host_ip.is_empty() || a.host_ip == b.host_ip)
}

fn describe(p: &PortMapping) -> String {
    match p.host_ip.as_str() {
        "" => format!("host port {}/{}", p.host_port, p.protocol),
        ip => format!("host port {ip}:{}/{}", p.host_port, p.protocol),
    }
}

/// Refuses ports that collide with each other, with `taken` (another
/// pod's, by UUID) or with a socket bound on the host.
pub fn check_ports(ports: &[PortMapping], taken: &[(String, PortMapping)]) -> Result<(), String> {
    check_collisions(ports, taken)?;
    ports.iter().try_for_each(check_free_on_host)
}

fn check_collisions(ports: &[PortMapping], taken: &[(String, PortMapping)]) -> Result<(), String> {
    for (i, p) in ports.iter().enumerate() {
        if ports[..i].iter().any(|q| overlaps(p, q)) {
            return Err(format!("{} is published twice", describe(p)));
        }
        if let Some((uuid, _)) = taken.iter().find(|(_, q)| overlaps(p, q)) {
            return Err(format!("{} is already published by pod {uuid}", describe(p)));
        }
    }
    Ok(())
}

/// The forwarded port must not shadow a host service: a socket that can be
/// bound there now is free (it is closed again at once).
fn check_free_on_host(p: &PortMapping) -> Result<(), String> {
    let ip: IpAddr =
        if p.host_ip.is_empty() { Ipv4Addr::UNSPECIFIED.into() } else { p.host_ip.parse().map_err(|_| describe(p))? };
    let addr = SocketAddr::new(ip, p.host_port);
    let bound = match p.protocol.as_str() {
        "udp" => UdpSocket::bind(addr).map(drop),
        _ => TcpListener::bind(addr).map(drop),
    };
    bound.map_err(|e| format!("{} is in use on the host: {e}", describe(p)))
}

/// The ports published by the store's other pods, each with who holds it
/// and what to do about it: those running (locked, perhaps not attached
/// yet) and those whose network is still attached (a killed flavor's that
/// [`super::gc::release_dead_networks`] could not release). Read while
/// holding [`lock_ports`].
pub fn published(store: &Store, except: &str) -> Vec<(String, PortMapping)> {
    let mut out = Vec::new();
    for pod in Pod::all(store) {
        if pod.uuid() == except || pod.state_dir() != StateDir::Run {
            continue;
        }
        let running = pod.state() == PodState::Running;
        if !running && !pod.path().join(NETNS_FILE).exists() {
            continue;
        }
        if let Ok(m) = pod.read_manifest() {
            let uuid = pod.uuid();
            let who = match (&m.name, running) {
                (Some(n), true) => format!("{uuid} ({n}), which is running: stop it with `skiff stop {n}`"),
                (None, true) => format!("{uuid}, which is running: stop it with `skiff stop {uuid}`"),
                (_, false) => format!("{uuid}, which has exited but whose network could not be released"),
            };
            out.extend(m.ports.into_iter().map(|p| (who.clone(), p)));
        }
    }
    out
}

/// Serialises the check of published ports with the move of the pod into
/// `run/`: held from before [`published`] until the pod is running.
pub fn lock_ports(store: &Store) -> Result<File, String> {
    let dir = store.root().join("net");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("ports.lock");
    let f = File::create(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    f.lock().map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_requests() {
        assert_eq!(NetRequest::parse("host").unwrap(), NetRequest::Host);
        assert_eq!(NetRequest::parse("none").unwrap(), NetRequest::None);
        let want = NetRequest::Cni(vec![
            ("default".into(), vec![]),
            ("lab".into(), vec![("IP".into(), "10.9.0.5".into()), ("K".into(), "v".into())]),
        ]);
        assert_eq!(NetRequest::parse("default,lab:IP=10.9.0.5;K=v").unwrap(), want);
        for bad in
            ["", "host,default", "a,a", "-x", "a b", "a:IP", "a:IP=notanip", "a:=v", "a:K=", "../x", "a,", "a:K=v=w"]
        {
            assert!(NetRequest::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports() {
        let p = parse_port("8080:80").unwrap();
        assert_eq!((p.host_ip.as_str(), p.host_port, p.pod_port, p.protocol.as_str()), ("", 8080, 80, "tcp"));
        let p = parse_port("127.0.0.1:53:5353/udp").unwrap();
        assert_eq!((p.host_ip.as_str(), p.host_port, p.pod_port, p.protocol.as_str()), ("127.0.0.1", 53, 5353, "udp"));
        assert_eq!(parse_port("[::1]:8080:80").unwrap().host_ip, "::1");
        for bad in ["80", "0:80", "80:0", "70000:80", "a:80", "x.y:80:80", "80:80/sctp", "80:80/", ":80", "80:"] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn port_collisions() {
        let p = |s: &str| parse_port(s).unwrap();
        // Collisions are decided without touching the host's ports.
        assert!(check_collisions(&[p("40001:80"), p("40001:81")], &[]).unwrap_err().contains("twice"));
        assert!(check_collisions(&[p("40001:80"), p("40001:80/udp")], &[]).is_ok(), "tcp and udp are apart");
        let taken = [("pod-a".to_string(), p("127.0.0.1:40002:80"))];
        assert!(check_collisions(&[p("40002:80")], &taken).unwrap_err().contains("pod-a"), "the wildcard covers it");
        assert!(check_collisions(&[p("127.0.0.2:40002:80")], &taken).is_ok(), "another address");
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = l.local_addr().unwrap().port();
        let err = check_ports(&[p(&format!("{busy}:80"))], &[]).unwrap_err();
        assert!(err.contains("in use on the host"), "{err}");
    }

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(d.path().join(name), text).unwrap();
        }
        d
    }

    #[test]
    fn networks_resolve_from_the_directories() {
        let lab = r#"{"cniVersion": "1.0.0", "name": "lab", "plugins": [{"type": "bridge", "bridge": "lab0"}]}"#;
        let d = dir_with(&[("10-lab.conflist", lab), ("README", "not a conflist")]);
        let cfg =
            NetConfig { config_dirs: vec![d.path().into(), "/nonexistent".into()], ipam_dir: "/s/net/ipam".into() };
        let req = NetRequest::parse("default,lab:IP=10.9.0.5").unwrap();
        let (mode, nets) = cfg.resolve(&req, &[parse_port("8080:80").unwrap()]).unwrap();
        assert_eq!(mode, Net::Cni);
        assert_eq!((nets[0].name.as_str(), nets[0].ifname.as_str()), ("default", "eth0"));
        assert_eq!(nets[0].conflist["plugins"][0]["type"], "skiff-bridge");
        assert_eq!(nets[0].conflist["plugins"][0]["dataDir"], "/s/net/ipam");
        assert_eq!(nets[0].conflist["plugins"][1]["type"], "portmap", "ports go to the first network");
        assert_eq!((nets[1].name.as_str(), nets[1].ifname.as_str()), ("lab", "eth1"));
        assert_eq!(nets[1].conflist["plugins"].as_array().unwrap().len(), 1);
        assert_eq!(nets[1].args, [("IP".to_string(), "10.9.0.5".to_string())]);
        let err = cfg.resolve(&NetRequest::parse("nope").unwrap(), &[]).unwrap_err();
        assert!(err.contains("nope") && err.contains("not configured"), "{err}");
        let err = cfg.resolve(&NetRequest::Host, &[parse_port("8080:80").unwrap()]).unwrap_err();
        assert!(err.contains("--port"), "{err}");
    }

    #[test]
    fn a_configured_default_replaces_the_built_in_one_and_earlier_directories_win() {
        let mine = r#"{"cniVersion": "1.0.0", "name": "default", "plugins": [{"type": "ptp"}]}"#;
        let theirs = r#"{"cniVersion": "1.0.0", "name": "default", "plugins": [{"type": "macvlan"}]}"#;
        let d = dir_with(&[("default.conflist", mine)]);
        let e = dir_with(&[("99-default.conflist", theirs)]);
        let cfg = NetConfig { config_dirs: vec![d.path().into(), e.path().into()], ipam_dir: "/x".into() };
        let (_, nets) = cfg.resolve(&NetRequest::parse("default").unwrap(), &[]).unwrap();
        assert_eq!(nets[0].conflist["plugins"][0]["type"], "ptp");
    }

    #[test]
    fn hostile_configuration_files_are_named() {
        let cases = [
            ("broken.conflist", "{not json"),
            ("noname.conflist", r#"{"cniVersion": "1.0.0", "plugins": [{"type": "bridge"}]}"#),
            ("badname.conflist", r#"{"cniVersion": "1.0.0", "name": "../x", "plugins": [{"type": "bridge"}]}"#),
            ("empty.conflist", r#"{"cniVersion": "1.0.0", "name": "e", "plugins": []}"#),
            ("notype.conflist", r#"{"cniVersion": "1.0.0", "name": "t", "plugins": [{"bridge": "x"}]}"#),
        ];
        for (file, text) in cases {
            let d = dir_with(&[(file, text)]);
            let cfg = NetConfig { config_dirs: vec![d.path().into()], ipam_dir: "/x".into() };
            let err = cfg.resolve(&NetRequest::parse("default").unwrap(), &[]).unwrap_err();
            assert!(err.contains(file), "{file}: {err}");
        }
        let a = r#"{"cniVersion": "1.0.0", "name": "twin", "plugins": [{"type": "bridge"}]}"#;
        let d = dir_with(&[("a.conflist", a), ("b.conflist", a)]);
        let cfg = NetConfig { config_dirs: vec![d.path().into()], ipam_dir: "/x".into() };
        let err = cfg.resolve(&NetRequest::parse("twin").unwrap(), &[]).unwrap_err();
        assert!(err.contains("a.conflist") && err.contains("b.conflist"), "{err}");
        let huge = dir_with(&[]);
        std::fs::create_dir(huge.path().join("dir.conflist")).unwrap();
        let cfg = NetConfig { config_dirs: vec![huge.path().into()], ipam_dir: "/x".into() };
        assert!(cfg.resolve(&NetRequest::parse("default").unwrap(), &[]).unwrap_err().contains("dir.conflist"));
    }
}
