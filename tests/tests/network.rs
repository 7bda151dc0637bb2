//! `--net default`: each pod in a network namespace of its own on skiff's
//! bridge, through Debian's CNI plugins; pods reach each other; the network
//! is torn down when the pod ends, and by gc when its flavor was killed:
//! no lease, no iptables rule, no pinned namespace left.

use std::process::Command;

use skiff_tests::{stderr, Skiff};

/// iptables rules CNI added for pod `uuid`.
fn rules_of(uuid: &str) -> usize {
    let out = Command::new("iptables").args(["-t", "nat", "-S"]).output().expect("iptables");
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains(uuid)).count()
}

fn leases(s: &Skiff) -> usize {
    std::fs::read_dir(s.dir.join("net/ipam/skiff-default"))
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
    let result: serde_json::Value = serde_json::from_slice(&std::fs::read(&net).unwrap()).unwrap();
    let ip = result["ips"][0]["address"].as_str().unwrap().split('/').next().unwrap().to_string();
    assert!(ip.starts_with("10.231."), "{ip}");
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
    assert!(rules_of(&a) > 0, "masquerade rules of pod a while it runs");
    // SIGKILL: nothing can tear down but gc.
    server.kill().unwrap();
    server.wait().unwrap();
    s.wait_for("pod a to read as exited", || s.status_json(&a)["state"] == "exited");
    assert_eq!(pinned_namespaces(&s), 1, "pod a's namespace stays pinned for gc");
    s.ok(&["gc", "--grace-period", "0"]);
    assert_eq!((rules_of(&a), leases(&s), pinned_namespaces(&s)), (0, 0, 0), "gc tore everything down");
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
    assert!(stderr(&o).contains("net-default"), "{}", stderr(&o));
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
    let o = s
        .cmd(&["run", "--net", "default", &s.image, "--exec", "/bin/true"])
        .env("CNI_PATH", "/nonexistent/cni")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    let err = stderr(&o);
    assert!(err.contains("bridge") && err.contains("containernetworking-plugins"), "{err}");
    assert_eq!(pinned_namespaces(&s), 0, "the namespace is unpinned");
    s.ok(&["gc", "--grace-period", "0"]);
    assert_eq!(s.list_json().as_array().map(Vec::len), Some(0));
}
