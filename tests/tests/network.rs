//! `--net default`: each pod in a network namespace of its own on skiff's
//! bridge, through Debian's CNI plugins; pods reach each other; the network
//! is torn down when the pod ends, and by gc when its flavor was killed:
//! no lease, no iptables rule, no pinned namespace left.

use std::process::Command;

use skiff_tests::{free_port, http_get, stderr, Skiff};

/// iptables rules CNI added for pod `uuid`.
fn rules_of(uuid: &str) -> usize {
    let out = Command::new("iptables").args(["-t", "nat", "-S"]).output().expect("iptables");
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains(uuid)).count()
}

/// The default network's one masquerade rule of `s`'s store (skiff-bridge
/// names its data directory in the rule's comment).
fn masquerade_rules(s: &Skiff) -> usize {
    let out = Command::new("iptables").args(["-t", "nat", "-S", "POSTROUTING"]).output().expect("iptables");
    let ipam = s.dir.join("net/ipam");
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains(ipam.to_str().unwrap())).count()
}

fn leases(s: &Skiff) -> usize {
    std::fs::read_dir(s.dir.join("net/ipam/default"))
        .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("10.")).count())
        .unwrap_or(0)
}

fn pinned_namespaces(s: &Skiff) -> usize {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines().filter(|l| l.contains(s.dir.to_str().unwrap()) && l.contains("netns")).count()
}

#[test]
fn pods_reach_each_other_and_leave_nothing() {
    let s = Skiff::new();
    let mut server = s.spawn(&["run", "--net", "default", &s.image, "--exec", "/bin/sleep", "--", "60"]);
    s.wait_running(1);
    let a = s.only_pod();
    let net = s.dir.join("pods/run").join(&a).join("net.json");
    s.wait_for("pod a's network", || net.is_file());
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(&net).unwrap()).unwrap();
    assert_eq!((state[0]["network"].as_str(), state[0]["ifname"].as_str()), (Some("default"), Some("eth0")));
    let result = &state[0]["result"];
    let ip = result["ips"][0]["address"].as_str().unwrap().split('/').next().unwrap().to_string();
    assert!(ip.starts_with("10.231."), "{ip}");
    let veth = result["interfaces"][0]["name"].as_str().unwrap().to_string();
    let veth_exists = || Command::new("ip").args(["link", "show", &veth]).output().unwrap().status.success();
    assert!(veth_exists(), "the host end of pod a's veth, {veth}");
    let st = s.status_json(&a);
    assert_eq!((st["net"].as_str(), st["ips"][0].as_str()), (Some("default"), result["ips"][0]["address"].as_str()));
    assert!(s.ok(&["status", &a]).contains(&format!("\nip={ip}/")), "status text shows the address");
    let o = s.output(&[
        "run",
        "--net",
        "default",
        &s.image,
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        &format!("ping -c1 -W5 {ip}"),
    ]);
    assert_eq!(o.status.code(), Some(0), "pod b reaches pod a: {}", stderr(&o));
    assert_eq!(masquerade_rules(&s), 1, "one masquerade rule for the network while pods run");
    // SIGKILL: nothing can tear down but gc.
    server.kill().unwrap();
    server.wait().unwrap();
    s.wait_for("pod a to read as exited", || s.status_json(&a)["state"] == "exited");
    assert_eq!(pinned_namespaces(&s), 1, "pod a's namespace stays pinned for gc");
    s.ok(&["gc", "--grace-period", "0"]);
    assert_eq!(
        (rules_of(&a), masquerade_rules(&s), leases(&s), pinned_namespaces(&s)),
        (0, 0, 0, 0),
        "gc tore everything down"
    );
    // The veth goes with the namespace, which the kernel frees on its own.
    s.wait_for("pod a's veth to go", || !veth_exists());
}

#[test]
fn twenty_killed_pods_leave_nothing_after_gc() {
    let s = Skiff::new();
    let mut children = Vec::new();
    for _ in 0..20 {
        children.push(s.spawn(&["run", "--net", "default", &s.image, "--exec", "/bin/sleep", "--", "60"]));
    }
    s.wait_running(20);
    s.wait_for("20 leases", || leases(&s) == 20);
    for c in &mut children {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    let uuids: Vec<String> =
        s.list_json().as_array().unwrap().iter().map(|p| p["uuid"].as_str().unwrap().to_string()).collect();
    s.wait_for("every pod to read as exited", || {
        s.list_json().as_array().unwrap().iter().all(|p| p["state"] == "exited")
    });
    s.ok(&["gc", "--grace-period", "0"]);
    assert_eq!(leases(&s), 0);
    assert_eq!(masquerade_rules(&s), 0);
    assert_eq!(pinned_namespaces(&s), 0);
    for u in &uuids {
        assert_eq!(rules_of(u), 0, "iptables rules of {u}");
    }
}

#[test]
fn run_prepared_takes_a_network() {
    let s = Skiff::new();
    let script = "grep -c : /proc/net/dev";
    let uuid = s.ok(&["prepare", "-q", &s.image, "--exec", "/bin/sh", "--", "-c", script]);
    let uuid = uuid.trim();
    assert_eq!(s.ok(&["run-prepared", "--net", "none", uuid]), "1\n", "only lo");
    let m: serde_json::Value = serde_json::from_str(&s.ok(&["cat-manifest", uuid])).unwrap();
    assert_eq!(m["net"], "none");
    let fly = s.ok(&["prepare", "-q", "--stage1", "fly", &s.image, "--exec", "/bin/true"]);
    let o = s.output(&["run-prepared", "--net", "default", fly.trim()]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("net-cni"), "{}", stderr(&o));
    assert_eq!(s.status_json(fly.trim())["state"], "prepared", "left as it was");
}

#[test]
fn the_hostname_resolves_to_the_pods_address_and_entries_are_added() {
    let s = Skiff::new();
    #[rustfmt::skip]
    let out = s.ok(&[
        "run", "--net", "default", "--hostname", "web", "--hosts-entry", "192.0.2.7=db.example",
        &s.image, "--exec", "/bin/sh", "--", "-c",
        "ip=$(ip -o -4 addr show eth0 | sed 's/.*inet \\([0-9.]*\\).*/\\1/'); grep -c \"^$ip\tweb$\" /etc/hosts; tail -1 /etc/hosts",
    ]);
    assert_eq!(out, "1\n192.0.2.7\tdb.example\n");
    let o = s.output(&["run", "--hosts-entry", "nonsense", &s.image, "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("--hosts-entry"), "{}", stderr(&o));
}

#[test]
fn a_missing_plugin_is_named_with_its_package_and_nothing_is_left() {
    let s = Skiff::new();
    // The default network's own plugin is skiff's; a published port needs
    // Debian's portmap.
    let port = format!("{}:80", free_port());
    let o = s
        .cmd(&["run", "--net", "default", "--port", &port, &s.image, "--exec", "/bin/true"])
        .env("CNI_PATH", "/nonexistent/cni")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    let err = stderr(&o);
    assert!(err.contains("portmap") && err.contains("containernetworking-plugins"), "{err}");
    assert_eq!(leases(&s), 0, "the failed attach was undone");
    assert_eq!(pinned_namespaces(&s), 0, "the namespace is unpinned");
    s.ok(&["gc", "--grace-period", "0"]);
    assert_eq!(s.list_json().as_array().map(Vec::len), Some(0));
    assert_eq!(masquerade_rules(&s), 0, "the network's rule goes at gc, with no pod left on it");
}

/// A network of the test's own: a bridge and a /24 that no other test
/// uses, as a configuration list in a directory of its own; the bridge is
/// deleted when the test ends, however it ends. host-local keeps its
/// leases in `s`'s directory: the pods' gc, when `s` is dropped (after the
/// LabNet), releases them there and recreates its lock file, which must go
/// with `s`'s directory rather than outlive the test.
struct LabNet {
    dir: tempfile::TempDir,
    bridge: String,
    prefix: String,
}

impl LabNet {
    fn new(s: &Skiff, name: &str, third: u8, dns: bool) -> LabNet {
        let dir = tempfile::tempdir().unwrap();
        let bridge = format!("sktest{third}");
        let prefix = format!("10.232.{third}");
        let mut conf = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": name,
            "plugins": [{
                "type": "bridge", "bridge": bridge, "isGateway": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": format!("{prefix}.0/24")}]],
                    "dataDir": s.tmp().join(format!("ipam-{name}")),
                },
            }],
        });
        if dns {
            conf["plugins"][0]["dns"] =
                serde_json::json!({"nameservers": [format!("{prefix}.53")], "search": ["lab.example"]});
        }
        std::fs::write(dir.path().join(format!("{name}.conflist")), conf.to_string()).unwrap();
        LabNet { dir, bridge, prefix }
    }

    fn dir(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }
}

impl Drop for LabNet {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.bridge]).stderr(std::process::Stdio::null()).status();
    }
}

/// A pod's shell pipeline printing its IPv4 address on `ifname`.
fn addr_of(ifname: &str) -> String {
    format!("ip -o -4 addr show {ifname} | sed 's/.*inet \\([0-9.]*\\).*/\\1/'")
}

#[test]
fn configured_networks_in_order_with_a_requested_address_and_their_dns() {
    let s = Skiff::new();
    let lab = LabNet::new(&s, "lab", 11, true);
    let want = format!("{}.77", lab.prefix);
    #[rustfmt::skip]
    let out = s.ok(&[
        "run", "--net-config-dir", lab.dir(), "--net", &format!("default,lab:IP={want}"),
        &s.image, "--exec", "/bin/sh", "--", "-c",
        &format!("{}; {}; cat /etc/resolv.conf", addr_of("eth0"), addr_of("eth1")),
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("10.231."), "eth0 on default: {out}");
    assert_eq!(lines[1], want, "eth1 on lab, at the address asked for: {out}");
    assert_eq!(&lines[2..], [format!("nameserver {}.53", lab.prefix).as_str(), "search lab.example"], "{out}");
    // The address is the pod's only while it runs.
    s.ok(&["gc", "--grace-period", "0"]);
    let with_lab_ip = |exec: &[&str]| -> Vec<String> {
        let pod = ["run", "--net-config-dir", lab.dir(), "--net", &format!("lab:IP={want}"), &s.image, "--exec"];
        pod.iter().chain(exec).map(|a| a.to_string()).collect()
    };
    let holder_args = with_lab_ip(&["/bin/sleep", "--", "60"]);
    let mut holder = s.spawn(&holder_args.iter().map(String::as_str).collect::<Vec<_>>());
    s.wait_running(1);
    let uuid = s.only_pod();
    s.wait_for("the holder's address", || s.status_json(&uuid)["ips"][0].as_str().is_some());
    let st = s.status_json(&uuid);
    assert_eq!(st["net"], "lab");
    assert_eq!(st["networks"][0]["name"], "lab");
    assert_eq!(st["networks"][0]["ifname"], "eth0");
    assert_eq!(st["networks"][0]["ips"][0], format!("{want}/24"));
    let table = s.ok(&["list", "--no-legend"]);
    assert!(table.contains(&format!("lab:{want}")), "{table}");
    let o = s.output(&with_lab_ip(&["/bin/true"]).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(125));
    let err = stderr(&o);
    assert!(err.contains(&want) && err.contains("network lab"), "the conflict is named: {err}");
    // A holder whose supervisor was killed gives the address to the next
    // pod that asks for it (a unit's restart), and keeps its own status.
    holder.kill().unwrap();
    holder.wait().unwrap();
    s.wait_for("the holder to read as exited", || s.status_json(&uuid)["state"] == "exited");
    let again = with_lab_ip(&["/bin/sh", "--", "-c", &addr_of("eth0")]);
    assert_eq!(s.ok(&again.iter().map(String::as_str).collect::<Vec<_>>()).trim(), want);
    assert_eq!(s.status_json(&uuid)["state"], "exited");
}

#[test]
fn unknown_and_broken_networks_are_named() {
    let s = Skiff::new();
    let lab = LabNet::new(&s, "lab", 12, false);
    let o = s.output(&["run", "--net-config-dir", lab.dir(), "--net", "nosuch", &s.image, "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("network nosuch is not configured"), "{}", stderr(&o));
    std::fs::write(lab.dir.path().join("bad.conflist"), "{").unwrap();
    let o = s.output(&["run", "--net-config-dir", lab.dir(), "--net", "lab", &s.image, "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("bad.conflist"), "{}", stderr(&o));
    let o = s.output(&["run", "--net", "lab:IP=notanip", &s.image, "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("notanip"), "{}", stderr(&o));
    assert_eq!(s.list_json().as_array().map(Vec::len), Some(0), "nothing was created");
}

#[test]
fn pods_are_on_the_default_network_unless_told_otherwise() {
    let s = Skiff::new();
    let count = "grep -c : /proc/net/dev";
    let out = s.ok(&["run", &s.image, "--exec", "/bin/sh", "--", "-c", &format!("{count}; {}", addr_of("eth0"))]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "2", "lo and eth0: {out}");
    assert!(lines[1].starts_with("10.231."), "{out}");
    // The host's own network namespace (interfaces come and go with the
    // other tests' pods, the namespace does not).
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    let out = s.ok(&["run", "--net", "host", &s.image, "--exec", "/bin/readlink", "--", "/proc/self/ns/net"]);
    assert_eq!(out.trim(), host.to_str().unwrap(), "the host's network namespace");
    let m: serde_json::Value =
        serde_json::from_str(&s.ok(&["cat-manifest", s.list_json()[0]["uuid"].as_str().unwrap()])).unwrap();
    assert_eq!(m["networks"][0]["name"], "default");
}

#[test]
fn dns_options_win_over_the_networks() {
    let s = Skiff::new();
    let lab = LabNet::new(&s, "lab", 13, true);
    #[rustfmt::skip]
    let out = s.ok(&[
        "run", "--net-config-dir", lab.dir(), "--net", "lab",
        "--dns", "192.0.2.53", "--dns-search", "a.example", "--dns-opt", "ndots:3",
        &s.image, "--exec", "/bin/cat", "--", "/etc/resolv.conf",
    ]);
    assert_eq!(out, "nameserver 192.0.2.53\nsearch a.example\noptions ndots:3\n");
    // The built-in network has no DNS of its own: the host's servers.
    let host: Vec<String> = std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("nameserver"))
        .map(|l| l.trim().to_string())
        .collect();
    let out = s.ok(&["run", &s.image, "--exec", "/bin/sh", "--", "-c", "grep ^nameserver /etc/resolv.conf || true"]);
    assert_eq!(out.lines().map(str::to_string).collect::<Vec<_>>(), host);
}

#[test]
fn published_ports_reach_the_pod_and_collisions_are_refused() {
    let s = Skiff::new();
    let port = free_port();
    let serve = "mkdir -p /www && echo hello from the pod > /www/index.html && exec httpd -f -p 8080 -h /www";
    let mut server =
        s.spawn(&["run", "--port", &format!("{port}:8080"), &s.image, "--exec", "/bin/sh", "--", "-c", serve]);
    s.wait_running(1);
    let uuid = s.only_pod();
    assert_eq!(http_get(&s, &format!("127.0.0.1:{port}")), "hello from the pod\n", "through loopback");
    assert_eq!(http_get(&s, &format!("10.231.0.1:{port}")), "hello from the pod\n", "through the bridge's address");
    assert!(rules_of(&uuid) > 0, "the port's rules while it runs");
    let o = s.output(&["run", "--port", &format!("127.0.0.1:{port}:80"), &s.image, "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains(&format!("already published by pod {uuid}")), "{}", stderr(&o));
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let o = s.output(&["run", "--port", &format!("{busy_port}:80"), &s.image, "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains(&format!("host port {busy_port}/tcp is in use on the host")), "{}", stderr(&o));
    let o = s.output(&["run", "--net", "host", "--port", "8081:80", &s.image, "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("--port needs a CNI network"), "{}", stderr(&o));
    s.ok(&["stop", &uuid]);
    server.wait().unwrap();
    assert_eq!(rules_of(&uuid), 0, "the port's rules went with the pod");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "nothing answers any more");
}

#[test]
fn a_pod_whose_supervisor_was_killed_does_not_block_its_restart() {
    let s = Skiff::new();
    let port = free_port().to_string();
    let publish = format!("{port}:80");
    let args = ["run", "--name", "web", "--port", &publish, &s.image, "--exec", "/bin/sleep", "--", "60"];
    // What a node crash, an OOM kill of the supervisor, or systemd's
    // SIGKILL after a stop timeout leaves.
    let mut first = s.spawn(&args);
    s.wait_running(1);
    let dead = s.only_pod();
    s.wait_for("the port's rules", || rules_of(&dead) > 0);
    first.kill().unwrap();
    first.wait().unwrap();
    s.wait_for("the pod to read as exited", || s.status_json(&dead)["state"] == "exited");
    assert!(rules_of(&dead) > 0 && leases(&s) == 1, "the dead pod still holds its network");
    // The next start (a unit's Restart=) takes the port, name and all.
    let mut second = s.spawn(&args);
    s.wait_for("the restarted pod to run", || {
        s.list_json().as_array().unwrap().iter().any(|p| p["uuid"] != dead.as_str() && p["state"] == "running")
    });
    assert_eq!(rules_of(&dead), 0, "the dead pod's rules were released");
    assert_eq!(s.status_json(&dead)["state"], "exited", "and the pod itself is kept, with its status");
    let live = s.status_json("web")["uuid"].as_str().unwrap().to_string();
    assert_ne!(live, dead);
    // A port held by a live pod says which and how to stop it.
    let o = s.output(&["run", "--port", &publish, &s.image, "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    let want = format!("already published by pod {live} (web), which is running: stop it with `skiff stop web`");
    assert!(stderr(&o).contains(&want), "{}", stderr(&o));
    s.ok(&["stop", "web"]);
    second.wait().unwrap();
    s.ok(&["gc", "--grace-period", "0"]);
    assert_eq!((rules_of(&dead), rules_of(&live), leases(&s), pinned_namespaces(&s)), (0, 0, 0, 0));
}

#[test]
fn a_rm_pod_refused_before_it_starts_leaves_nothing() {
    let s = Skiff::new();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = format!("{}:80", busy.local_addr().unwrap().port());
    let o = s.output(&["run", "--rm", "--name", "refused", "--port", &port, &s.image, "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("in use on the host"), "{}", stderr(&o));
    assert_eq!(s.list_json(), serde_json::json!([]), "--rm: nothing is left");
    let uuid = s.ok(&["prepare", "-q", "--name", "later", "--port", &port, &s.image, "--exec", "/bin/true"]);
    let o = s.output(&["run-prepared", "--rm", uuid.trim()]);
    assert_eq!(o.status.code(), Some(125));
    assert_eq!(s.list_json(), serde_json::json!([]), "run-prepared --rm too");
    // Without --rm the refused pod stays for gc, showing it never ran.
    let o = s.output(&["run", "--port", &port, &s.image, "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert_eq!(s.list_json()[0]["state"], "aborted-prepare");
}

#[test]
fn of_two_pods_started_at_once_with_one_port_exactly_one_runs() {
    let s = Skiff::new();
    let port = free_port().to_string();
    let args = ["run", "--port", &format!("{port}:80"), &s.image, "--exec", "/bin/sleep", "--", "30"];
    let mut a = s.spawn(&args);
    let mut b = s.spawn(&args);
    // The loser ends at once with 125; the winner runs until killed.
    let (loser, winner) = loop {
        if let Some(st) = a.try_wait().unwrap() {
            break (st, &mut b);
        }
        if let Some(st) = b.try_wait().unwrap() {
            break (st, &mut a);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(loser.code(), Some(125), "the second pod is refused");
    s.wait_for("the winner to run", || {
        s.list_json().as_array().unwrap().iter().any(|p| p["state"] == "running" && p["pid"].is_i64())
    });
    assert_eq!(winner.try_wait().unwrap(), None, "the first pod still runs");
    winner.kill().unwrap();
    winner.wait().unwrap();
}
