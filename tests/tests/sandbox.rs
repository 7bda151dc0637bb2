//! `skiff run --sandbox`: a pod with no apps that holds its namespaces,
//! hostname, network and cgroup until it is stopped (docs/stage1-abi.md,
//! feature `sandbox`).

use skiff_tests::{stderr, Skiff};

#[test]
fn a_sandbox_runs_until_it_is_stopped_and_holds_its_network() {
    let s = Skiff::new();
    let child = s.spawn(&["run", "--sandbox", "--name", "sb", "--net", "default", "--hostname", "box"]);
    s.wait_running(1);
    let o = s.output(&["status", "--wait-ready=10s", "sb"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let st = s.status_json("sb");
    assert_eq!(st["apps"], serde_json::json!([]));
    assert_eq!(st["state"], "running");
    let ip = st["ips"][0].as_str().expect("an address on the default network").to_string();
    let uuid = st["uuid"].as_str().unwrap().to_string();
    // The pod's namespaces are there to join: its hostname and address.
    let pid = st["pid"].as_i64().unwrap().to_string();
    let ns = |what: &str, cmd: &[&str]| {
        let o = std::process::Command::new("nsenter").args(["-t", &pid, what]).args(cmd).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(ns("--uts", &["hostname"]), "box\n");
    assert!(ns("--net", &["ip", "-o", "addr", "show", "eth0"]).contains(&ip), "{ip}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(s.status_json("sb")["state"], "running", "a sandbox does not end without apps");
    for cmd in [vec!["enter", "sb"], vec!["logs", "sb"]] {
        let o = s.output(&cmd);
        assert_eq!(o.status.code(), Some(125), "{cmd:?}");
        assert!(stderr(&o).contains(&format!("pod {uuid} has no apps (a sandbox)")), "{cmd:?}: {}", stderr(&o));
    }
    s.ok(&["stop", "sb"]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(s.status_json("sb")["state"], "exited");
    s.ok(&["gc", "--grace-period", "0"]);
    assert_eq!(s.list_json(), serde_json::json!([]));
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/memory/skiff/{uuid}")).exists());
}

#[test]
fn a_sandbox_takes_no_image_and_needs_a_flavor_that_has_sandboxes() {
    let s = Skiff::new();
    for (args, want) in [
        (vec!["run", "--sandbox", &s.image], "cannot be used with"),
        (vec!["run", "--sandbox", "--stage1", "fly"], "--sandbox"),
        (vec!["run", "--sandbox", "--stage1", "nspawn"], "--sandbox"),
    ] {
        let o = s.output(&args);
        assert_eq!(o.status.code(), Some(125), "{args:?}");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(s.list_json(), serde_json::json!([]));
}
