//! Cgroup limits: set on the pod's own cgroup, enforced (OOM → 137), and
//! the cgroup gone after the pod, however it ended.

use std::path::PathBuf;

use skiff_tests::{stderr, Skiff};

/// The pod's directory in the hierarchy holding `file` (v1 or v2 layout).
fn cgroup_file(uuid: &str, v1_controller: &str, v1_file: &str, v2_file: &str) -> PathBuf {
    let v1 = PathBuf::from(format!("/sys/fs/cgroup/{v1_controller}/skiff/{uuid}/{v1_file}"));
    if v1.exists() {
        return v1;
    }
    PathBuf::from(format!("/sys/fs/cgroup/skiff/{uuid}/{v2_file}"))
}

fn skiff_cgroups() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let p = e.path();
        if p.join("skiff").exists() {
            out.push(p.join("skiff"));
        }
        if p.file_name().is_some_and(|n| n == "skiff") {
            out.push(p);
        }
    }
    out
}

/// Dirs of live pods of *this* test only.
fn pod_cgroups(uuid: &str) -> Vec<PathBuf> {
    skiff_cgroups().into_iter().map(|p| p.join(uuid)).filter(|p| p.exists()).collect()
}

#[test]
fn limits_are_set_on_the_pods_cgroup() {
    let s = Skiff::new();
    let mut child = s.spawn(&[
        "run",
        &s.image,
        "--memory",
        "48M",
        "--memory-reservation",
        "24M",
        "--pids-limit",
        "64",
        "--cpu",
        "500m",
        "--cpu-shares",
        "512",
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "cat /proc/self/cgroup > /tmp/cg.new; mv /tmp/cg.new /tmp/cg; exec sleep 60",
    ]);
    s.wait_running(1);
    let uuid = s.only_pod();
    s.wait_for("the app to start", || pod_cgroups(&uuid).iter().any(|d| d.join("cgroup.procs").exists()));
    let mem = std::fs::read_to_string(cgroup_file(&uuid, "memory", "memory.limit_in_bytes", "memory.max")).unwrap();
    assert_eq!(mem.trim(), (48u64 << 20).to_string());
    let soft =
        std::fs::read_to_string(cgroup_file(&uuid, "memory", "memory.soft_limit_in_bytes", "memory.low")).unwrap();
    assert_eq!(soft.trim(), (24u64 << 20).to_string());
    let pids = std::fs::read_to_string(cgroup_file(&uuid, "pids", "pids.max", "pids.max")).unwrap();
    assert_eq!(pids.trim(), "64");
    let quota = std::fs::read_to_string(cgroup_file(&uuid, "cpu", "cpu.cfs_quota_us", "cpu.max")).unwrap();
    assert!(quota.starts_with("50000"), "{quota}");
    // In every hierarchy but cpuset (v1 ones, which the init joins itself,
    // and the v2 one, where it is born), the app from its first instruction.
    let everywhere = |cg: &str| cg.lines().all(|l| l.contains(":cpuset:") || l.ends_with(&format!("/skiff/{uuid}")));
    let init = s.status_json(&uuid)["pid"].as_i64().unwrap();
    let of_init = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    assert!(everywhere(&of_init), "{of_init}");
    let inside = std::fs::read_to_string(s.wait_in_pod(&uuid, "/tmp/cg")).unwrap();
    assert!(everywhere(&inside) && inside.lines().count() > 1, "{inside}");
    let _ = std::process::Command::new("kill").arg(child.id().to_string()).status();
    child.wait().unwrap();
    assert!(pod_cgroups(&uuid).is_empty(), "the cgroup is gone with the pod");
}

#[test]
fn going_over_the_memory_limit_is_137_and_says_so() {
    let s = Skiff::new();
    let o = s.output(&[
        "run",
        &s.image,
        "--memory",
        "32M",
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "x=$(head -c 80000000 /dev/zero | tr '\\0' a); echo ${#x}",
    ]);
    assert_eq!(o.status.code(), Some(137));
    let err = stderr(&o);
    assert!(err.contains("exceeded its memory limit (--memory 32M)"), "{err}");
    assert!(pod_cgroups(&s.only_pod()).is_empty());
}

#[test]
fn gc_removes_the_cgroup_of_a_killed_supervisor() {
    let s = Skiff::new();
    let mut child = s.spawn(&["run", &s.image, "--memory", "64M", "--exec", "/bin/sleep", "--", "60"]);
    s.wait_running(1);
    let uuid = s.only_pod();
    s.wait_for("the cgroup", || !pod_cgroups(&uuid).is_empty());
    child.kill().unwrap();
    child.wait().unwrap();
    s.wait_for("the pod to exit", || s.status_json(&uuid)["state"] == "exited");
    s.wait_for("the pod's processes to leave the cgroup", || {
        pod_cgroups(&uuid)
            .iter()
            .all(|d| std::fs::read_to_string(d.join("cgroup.procs")).is_ok_and(|p| p.trim().is_empty()))
    });
    assert!(!pod_cgroups(&uuid).is_empty(), "nobody removed it yet");
    let dir = s.dir.join("pods/run").join(&uuid);
    assert!(!dir.join("released").exists(), "a killed flavor said nothing was left: gc must call its gc");
    s.ok(&["gc", "--grace-period", "0"]);
    assert!(pod_cgroups(&uuid).is_empty());
}

/// A pod whose run ended normally was released by its flavor (cgroups and
/// network gone, `released` written), so gc deletes it without running a
/// flavor process; a flavor that did not say so is still called (the
/// conformance suite's third-party flavor).
#[test]
fn a_pod_that_ended_normally_is_released_by_its_flavor() {
    let s = Skiff::new();
    let uuid_file = s.tmp().join("uuid");
    for flavor in ["ns", "fly", "nspawn"] {
        s.ok(&[
            "run",
            "--stage1",
            flavor,
            "--uuid-file-save",
            uuid_file.to_str().unwrap(),
            &s.image,
            "--exec",
            "/bin/true",
        ]);
        let uuid = std::fs::read_to_string(&uuid_file).unwrap();
        let dir = s.dir.join("pods/run").join(uuid.trim());
        assert!(dir.join("released").is_file(), "{flavor}");
        assert!(pod_cgroups(uuid.trim()).is_empty(), "{flavor}");
        // Were gc to call the pod's flavor, it would say it cannot find it.
        let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
        let moved = manifest.replace(&format!("\"flavor\": \"{flavor}\""), "\"flavor\": \"/nonexistent/flavor\"");
        assert_ne!(manifest, moved);
        std::fs::write(dir.join("manifest.json"), moved).unwrap();
    }
    let o = s.output(&["gc", "--grace-period", "0"]);
    assert!(o.status.success() && stderr(&o).is_empty(), "{}", stderr(&o));
    assert_eq!(s.list_json(), serde_json::json!([]));
}

#[test]
fn oom_score_adj_and_bad_values() {
    let s = Skiff::new();
    let out =
        s.ok(&["run", &s.image, "--oom-score-adj", "500", "--exec", "/bin/cat", "--", "/proc/self/oom_score_adj"]);
    assert_eq!(out, "500\n");
    for args in [
        ["--memory", "lots"],
        ["--cpu", "0"],
        ["--pids-limit", "0"],
        ["--oom-score-adj", "5000"],
        ["--cpu-shares", "1"],
    ] {
        let mut a = vec!["run", &s.image];
        a.extend_from_slice(&args);
        let o = s.output(&a);
        assert_eq!(o.status.code(), Some(125), "{args:?}");
        assert!(stderr(&o).contains(args[0]), "{args:?}");
    }
    let o = s.output(&["run", &s.image, "--memory", "16M", "--memory-reservation", "32M"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("--memory-reservation 32M is above --memory 16M"), "{}", stderr(&o));
    let o = s.output(&["run", &s.image, "--memory-reservation", "plenty"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("--memory-reservation"), "{}", stderr(&o));
    assert_eq!(s.list_json().as_array().map(Vec::len), Some(1), "no pod made but the first");
}

#[test]
fn cgroup_parent_puts_the_pod_under_a_cgroup_of_the_users() {
    let parent = skiff_tests::cri::CgroupParent::new("parent");
    let s = Skiff::new();
    #[rustfmt::skip]
    let mut child = s.spawn(&[
        "run", "--cgroup-parent", &parent.path, &s.image, "--memory", "32M",
        "--exec", "/bin/sh", "--", "-c", "cat /proc/self/cgroup > /tmp/cg.new; mv /tmp/cg.new /tmp/cg; exec sleep 60",
    ]);
    s.wait_running(1);
    let uuid = s.only_pod();
    let cg = std::fs::read_to_string(s.wait_in_pod(&uuid, "/tmp/cg")).unwrap();
    let wanted = format!("{}/{uuid}", parent.path);
    assert!(cg.lines().all(|l| l.contains(":cpuset:") || l.ends_with(&wanted)), "{cg}");
    let limit = parent.dirs().iter().find_map(|d| {
        let pod = d.join(&uuid);
        std::fs::read_to_string(pod.join("memory.limit_in_bytes"))
            .or_else(|_| std::fs::read_to_string(pod.join("memory.max")))
            .ok()
    });
    assert_eq!(limit.as_deref().map(str::trim), Some((32u64 << 20).to_string().as_str()));
    assert!(pod_cgroups(&uuid).is_empty(), "nothing under /skiff");
    let _ = std::process::Command::new("kill").arg(child.id().to_string()).status();
    child.wait().unwrap();
    assert!(parent.dirs().iter().all(|d| !d.join(&uuid).exists()), "the pod's cgroup is gone with it");
    assert!(parent.dirs().iter().any(|d| d.exists()), "the parent stays");
    for bad in ["relative", "/a/../b"] {
        let o = s.output(&["run", "--cgroup-parent", bad, &s.image, "--exec", "/bin/true"]);
        assert_eq!(o.status.code(), Some(125));
        assert!(stderr(&o).contains("expected an absolute path like /kubepods/pod1"), "{}", stderr(&o));
    }
    let o = s.output(&["run", "--stage1", "fly", "--cgroup-parent", &parent.path, &s.image, "--exec", "/bin/true"]);
    assert!(stderr(&o).contains("does not support cgroup-parent"), "{}", stderr(&o));
}
