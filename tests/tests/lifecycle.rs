//! Pods through every state: prepare, run-prepared, list, status, rm, gc,
//! and what a SIGKILLed supervisor leaves behind (nothing).

use std::time::{Duration, Instant};

use skiff_tests::{stderr, Skiff};

fn code(o: &std::process::Output) -> i32 {
    o.status.code().expect("exited normally")
}

#[test]
fn prepare_then_run_prepared() {
    let s = Skiff::new();
    let uuid = s.ok(&["prepare", "--quiet", &s.image, "--exec", "/bin/sh", "--", "-c", "exit 7"]).trim().to_string();
    assert!(skiff_pods_uuid_like(&uuid), "{uuid}");
    assert_eq!(s.status_json(&uuid)["state"], "prepared");
    let text = s.ok(&["status", &uuid]);
    assert!(text.starts_with("state=prepared\n"), "{text}");
    let o = s.output(&["run-prepared", &uuid[..8]]);
    assert_eq!(code(&o), 7);
    let st = s.status_json(&uuid);
    assert_eq!(st["state"], "exited");
    assert_eq!(st["apps"][0]["exit_code"], 7);
    assert!(s.ok(&["status", &uuid]).contains("\napp-busybox=7\n"));
    // A pod runs once.
    let o = s.output(&["run-prepared", &uuid]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("not prepared"));
}

fn skiff_pods_uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|&c| c == '-').count() == 4
}

#[test]
fn list_shows_pods_in_table_and_json() {
    let s = Skiff::new();
    s.ok(&["run", &s.image, "--exec", "/bin/true"]);
    let prepared = s.ok(&["prepare", "-q", &s.image]).trim().to_string();
    let table = s.ok(&["list"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["UUID", "APP", "IMAGE", "STATE", "NETWORKS", "CREATED", "STARTED"]);
    assert_eq!(lines.count(), 2);
    assert_eq!(s.ok(&["list", "--no-legend"]).lines().count(), 2);
    let l = s.list_json();
    let pods = l.as_array().unwrap();
    let p = pods.iter().find(|p| p["uuid"] == prepared.as_str()).unwrap();
    assert_eq!(p["state"], "prepared");
    assert_eq!(p["started_at"], serde_json::Value::Null);
    assert_eq!(p["apps"][0]["name"], "busybox");
    assert!(p["apps"][0]["image_id"].as_str().unwrap().starts_with("sha256:"));
    let e = pods.iter().find(|p| p["uuid"] != prepared.as_str()).unwrap();
    assert_eq!(e["state"], "exited");
    assert_eq!(e["apps"][0]["exit_code"], 0);
    assert!(e["started_at"].as_str().is_some());
}

#[test]
fn status_wait_blocks_until_exit_and_times_out() {
    let s = Skiff::new();
    let mut child = s.spawn_sh("sleep 1; exit 4");
    s.wait_running(1);
    let uuid = s.only_pod();
    assert!(s.status_json(&uuid)["pid"].as_i64().is_some(), "a running pod has a pid");
    let o = s.output(&["status", "--wait=50ms", &uuid]);
    assert_eq!(code(&o), 124, "still running after the timeout");
    let start = Instant::now();
    let out = s.ok(&["status", "--wait", &uuid]);
    assert!(out.starts_with("state=exited\n"), "{out}");
    assert!(out.contains("app-busybox=4"), "{out}");
    assert!(start.elapsed() < Duration::from_secs(15));
    assert_eq!(child.wait().unwrap().code(), Some(4));
    assert!(s.output(&["status", "--wait=xyz", &uuid]).status.code() == Some(125));
}

#[test]
fn rm_refuses_running_pods_and_removes_the_rest() {
    let s = Skiff::new();
    let mut child = s.spawn(&["run", &s.image, "--exec", "/bin/sleep", "--", "60"]);
    s.wait_running(1);
    let running = s.only_pod();
    let o = s.output(&["rm", &running]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("running"));
    let _ = std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    assert_eq!(child.wait().unwrap().code(), Some(143));
    let prepared = s.ok(&["prepare", "-q", &s.image]).trim().to_string();
    let out = s.ok(&["rm", &running, &prepared]);
    assert_eq!(out, format!("{running}\n{prepared}\n"));
    assert_eq!(s.list_json(), serde_json::json!([]));
    assert!(!s.dir.join("pods/run").join(&running).exists());
    let o = s.output(&["rm", &running]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("no pod named or with UUID prefix"));
}

#[test]
fn gc_marks_then_sweeps_after_the_grace_period() {
    let s = Skiff::new();
    s.ok(&["run", &s.image, "--exec", "/bin/true"]);
    let exited = s.only_pod();
    let prepared = s.ok(&["prepare", "-q", &s.image]).trim().to_string();
    s.ok(&["gc"]);
    assert_eq!(s.status_json(&exited)["state"], "exited-garbage", "marked, kept for the grace period");
    assert_eq!(s.status_json(&prepared)["state"], "prepared", "not expired yet");
    assert_eq!(s.status_json(&exited)["apps"][0]["exit_code"], 0, "still inspectable");
    let out = s.ok(&["gc", "--grace-period", "0"]);
    assert_eq!(out.trim(), exited);
    assert_eq!(s.list_json().as_array().unwrap().len(), 1);
    s.ok(&["gc", "--expire-prepared", "0s"]);
    assert_eq!(s.list_json(), serde_json::json!([]));
    for d in ["embryo", "prepare", "prepared", "run", "exited-garbage", "garbage"] {
        assert_eq!(std::fs::read_dir(s.dir.join("pods").join(d)).unwrap().count(), 0, "{d} is empty");
    }
}

/// A pod made by `run` has its manifest replaced atomically but not fsynced
/// (docs/pod-store.md): after a host crash it may be empty. Such a pod must
/// not break list or status, and gc must remove it.
#[test]
fn a_pod_whose_manifest_a_crash_emptied_is_listed_and_collected() {
    let s = Skiff::new();
    s.ok(&["run", &s.image, "--exec", "/bin/true"]);
    let uuid = s.only_pod();
    let manifest = s.dir.join("pods/run").join(&uuid).join("manifest.json");
    std::fs::write(&manifest, b"").unwrap();
    let listed = s.list_json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["uuid"], uuid.as_str());
    let o = s.cmd(&["status", &uuid]).output().unwrap();
    assert!(o.status.success() || o.status.code() == Some(125), "{o:?}");
    assert!(o.stderr.len() < 300 && !String::from_utf8_lossy(&o.stderr).contains("panicked"), "{o:?}");
    s.ok(&["gc", "--grace-period", "0"]);
    assert_eq!(s.list_json(), serde_json::json!([]));
    assert!(!manifest.exists());
}

#[test]
fn killing_the_supervisor_kills_the_pod_and_gc_cleans_it() {
    let s = Skiff::new();
    let mut child = s.spawn_sh("sleep 300 & sleep 300");
    s.wait_running(1);
    let uuid = s.only_pod();
    let init = s.status_json(&uuid)["pid"].as_i64().unwrap();
    s.wait_for("the app processes", || {
        std::fs::read_to_string(format!("/proc/{init}/task/{init}/children")).is_ok_and(|c| !c.trim().is_empty())
    });
    let app = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children")).unwrap();
    let app: i64 = app.split_whitespace().next().unwrap().parse().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    s.wait_for("the pod's processes to die", || {
        !std::path::Path::new(&format!("/proc/{init}")).exists()
            && !std::path::Path::new(&format!("/proc/{app}")).exists()
    });
    assert_eq!(s.status_json(&uuid)["state"], "exited");
    s.ok(&["gc", "--grace-period", "0"]);
    assert_eq!(s.list_json(), serde_json::json!([]));
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mi.contains(&uuid), "a mount of the pod survived");
    assert!(!mi.contains(s.dir.to_str().unwrap()));
}

#[test]
fn two_pods_run_at_once() {
    let s = Skiff::new();
    let script = "touch /tmp/started; while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 5";
    let mut a = s.spawn_sh(script);
    let mut b = s.spawn_sh(script);
    s.wait_running(2);
    // Each pod has its own /tmp: release them one by one through their roots.
    for p in s.list_json().as_array().unwrap() {
        let started = s.wait_in_pod(p["uuid"].as_str().unwrap(), "/tmp/started");
        std::fs::write(started.with_file_name("go"), b"").unwrap();
    }
    assert_eq!(a.wait().unwrap().code(), Some(5));
    assert_eq!(b.wait().unwrap().code(), Some(5));
}

#[test]
fn run_prepared_can_set_the_hostname() {
    let s = Skiff::new();
    let uuid = s.ok(&[
        "prepare",
        "-q",
        "--hostname",
        "first",
        &s.image,
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "hostname; echo $HOSTNAME",
    ]);
    let out = s.ok(&["run-prepared", "--hostname", "second", uuid.trim()]);
    assert_eq!(out, "second\nsecond\n");
    let uuid = s.ok(&["prepare", "-q", "--hostname", "kept", &s.image, "--exec", "/bin/hostname"]);
    assert_eq!(s.ok(&["run-prepared", uuid.trim()]), "kept\n");
    let o = s.output(&["prepare", "--hostname", "bad_name", &s.image]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("bad_name"));
}

#[test]
fn a_relative_store_directory_works() {
    let s = Skiff::new();
    let o = std::process::Command::new(skiff_tests::skiff::bin_dir().join("skiff"))
        .current_dir(s.tmp())
        .args(["--dir", "relstore", "run", &s.image, "--exec", "/bin/echo", "--", "ok"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "ok\n", "{}", stderr(&o));
    let o = std::process::Command::new(skiff_tests::skiff::bin_dir().join("skiff"))
        .current_dir(s.tmp())
        .args(["--dir", "relstore", "gc", "--grace-period", "0"])
        .output()
        .unwrap();
    assert!(o.status.success());
}

/// Makes a pod's manifest immutable (so deleting the pod fails) and clears
/// the flag again on drop, wherever gc has moved the pod by then.
struct Immutable {
    pods: std::path::PathBuf,
    uuid: String,
}

impl Immutable {
    fn manifest(&self) -> Option<std::path::PathBuf> {
        std::fs::read_dir(&self.pods)
            .ok()?
            .map(|d| d.ok().map(|d| d.path().join(&self.uuid).join("manifest.json")))
            .find(|p| p.as_ref().is_some_and(|p| p.exists()))?
    }

    fn chattr(&self, flag: &str) -> bool {
        let Some(p) = self.manifest() else {
            return false;
        };
        std::process::Command::new("chattr").arg(flag).arg(p).status().is_ok_and(|s| s.success())
    }

    fn set(s: &Skiff, uuid: &str) -> Immutable {
        let i = Immutable { pods: s.dir.join("pods"), uuid: uuid.to_string() };
        assert!(i.chattr("+i"), "chattr +i on the manifest of {uuid}");
        i
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        self.chattr("-i");
    }
}

#[test]
fn gc_collects_what_it_can_and_reports_the_rest() {
    let s = Skiff::new();
    s.ok(&["run", &s.image, "--exec", "/bin/true"]);
    let stuck = s.only_pod();
    s.ok(&["run", &s.image, "--exec", "/bin/true"]);
    let guard = Immutable::set(&s, &stuck);
    let o = s.output(&["gc", "--grace-period", "0"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains(&stuck), "{}", stderr(&o));
    let left: Vec<String> =
        s.list_json().as_array().unwrap().iter().map(|p| p["uuid"].as_str().unwrap().to_string()).collect();
    assert_eq!(left, std::slice::from_ref(&stuck), "the other pod was collected");
    drop(guard);
    assert_eq!(s.ok(&["gc", "--grace-period", "0"]).trim(), stuck, "the next gc finishes the job");
}

#[test]
fn stop_terms_then_kills() {
    let s = Skiff::new();
    let mut child = s.spawn_sh("exec sleep 60");
    s.wait_running(1);
    let uuid = s.only_pod();
    assert_eq!(s.ok(&["stop", &uuid[..8]]), format!("{uuid}\n"));
    assert_eq!(child.wait().unwrap().code(), Some(143), "the app got SIGTERM");
    assert_eq!(s.ok(&["stop", &uuid]), format!("{uuid}\n"), "stopping an exited pod is fine");
    s.ok(&["rm", &uuid]);

    // An app that ignores SIGTERM is killed after the timeout.
    let mut child = s.spawn_sh("trap '' TERM; touch /tmp/trapped; while true; do sleep 0.1; done");
    s.wait_running(1);
    let uuid = s.only_pod();
    s.wait_in_pod(&uuid, "/tmp/trapped");
    let start = Instant::now();
    s.ok(&["stop", "--timeout", "500ms", &uuid]);
    assert!(start.elapsed() >= Duration::from_millis(400));
    assert_eq!(child.wait().unwrap().code(), Some(137));
    s.ok(&["rm", &uuid]);

    let mut child = s.spawn_sh("exec sleep 60");
    s.wait_running(1);
    let uuid = s.only_pod();
    s.ok(&["stop", "--force", &uuid]);
    assert_eq!(child.wait().unwrap().code(), Some(137), "--force kills at once");
    let prepared = s.ok(&["prepare", "-q", &s.image]).trim().to_string();
    let o = s.output(&["stop", &prepared]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("not running"));
}

#[test]
fn stop_force_records_the_sigkill_as_the_apps_end() {
    let s = Skiff::new();
    for flavor in ["ns", "fly", "nspawn"] {
        let mut child =
            s.spawn(&["run", "--stage1", flavor, "--net", "host", &s.image, "--exec", "/bin/sleep", "--", "60"]);
        s.wait_running(1);
        let uuid = s.only_pod();
        s.ok(&["stop", "--force", &uuid]);
        assert_eq!(child.wait().unwrap().code(), Some(137), "{flavor}");
        let json = s.status_json(&uuid);
        let app = &json["apps"][0];
        assert_eq!((app["exit_code"].as_i64(), app["signal"].as_i64()), (Some(137), Some(9)), "{flavor}: {json}");
        assert!(app["exited_at"].is_string(), "{flavor}: {json}");
        let name = app["name"].as_str().unwrap();
        assert!(s.ok(&["status", &uuid]).contains(&format!("\napp-{name}=137\n")), "{flavor}");
        s.ok(&["rm", &uuid]);
    }
}

/// A `stop` that comes while the flavor is still starting the pod (it has
/// no pid yet) waits for the pid and sends SIGTERM, instead of finding
/// nothing to stop and leaving the pod to SIGKILL at the deadline. The
/// script flavor holds its start (SKIFF_SH_HOLD) to make that window wide.
#[test]
fn a_stop_during_the_start_waits_for_the_pid_and_terms() {
    let s = Skiff::new();
    let hold = s.tmp().join("hold");
    let flavor = format!("{}/flavors/skiff-stage1-sh", env!("CARGO_MANIFEST_DIR"));
    let mut cmd = s.cmd(&["run", "--stage1", &flavor, &s.image, "--exec", "/bin/sleep", "--", "60"]);
    cmd.env("SKIFF_SH_HOLD", &hold);
    let mut run = s.spawn_cmd(cmd);
    s.wait_for("a running pod", || {
        s.list_json().as_array().is_some_and(|a| a.len() == 1 && a[0]["state"] == "running")
    });
    let uuid = s.only_pod();
    assert!(s.status_json(&uuid)["pid"].is_null(), "the pod's start is held before its pid");
    let stop = s.spawn(&["stop", "--timeout", "20s", &uuid]);
    // Released once the stop is under way (if it were not yet, the stop
    // would find the pid at once: the test would pass without testing).
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&hold, "").unwrap();
    let o = stop.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), format!("{uuid}\n"));
    assert_eq!(run.wait().unwrap().code(), Some(143), "the app got SIGTERM, not SIGKILL at the deadline");
}

#[test]
fn cat_manifest_prints_the_resolved_pod() {
    let s = Skiff::new();
    let uuid = s.ok(&["prepare", "-q", &s.image, "--exec", "/bin/echo", "--", "a b"]).trim().to_string();
    let m: serde_json::Value = serde_json::from_str(&s.ok(&["cat-manifest", &uuid])).unwrap();
    assert_eq!(m["uuid"], uuid.as_str());
    assert_eq!(m["apps"][0]["exec"], serde_json::json!(["/bin/echo", "a b"]));
    assert_eq!(m["apps"][0]["isolation"]["no_new_privileges"], true);
    assert_eq!(code(&s.output(&["cat-manifest", "ffffffff"])), 125);
}

/// docs/pod-store.md: the store's layout is made once and marked; pod state
/// directories removed by hand later are made again by the next pod.
#[test]
fn a_store_whose_pod_directories_were_removed_still_runs_pods() {
    let s = Skiff::new();
    s.ok(&["run", &s.image, "--exec", "/bin/true"]);
    assert!(s.dir.join(".layout").is_file());
    std::fs::remove_dir_all(s.dir.join("pods")).unwrap();
    let o = s.output(&["run", &s.image, "--exec", "/bin/sh", "--", "-c", "exit 3"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let l = s.list_json();
    assert_eq!(l.as_array().unwrap().len(), 1, "{l}");
    assert_eq!(l[0]["state"], "exited");
}

/// A store directory that cannot be made is named in the one-line error.
#[test]
fn a_store_directory_that_cannot_be_made_is_named() {
    let s = Skiff::new();
    std::fs::create_dir_all(&s.dir).unwrap();
    std::fs::write(s.dir.join("images"), "a file where a directory goes").unwrap();
    let o = s.output(&["run", &s.image, "--exec", "/bin/true"]);
    assert_eq!(code(&o), 125);
    let err = stderr(&o);
    assert!(err.contains(&format!("{}: File exists", s.dir.join("images").display())), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!s.dir.join(".layout").exists());
}
