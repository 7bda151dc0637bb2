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

#[test]
fn apps_are_added_to_a_running_sandbox_and_started() {
    let s = Skiff::new();
    let sandbox = s.spawn(&["run", "--sandbox", "--name", "sb", "--net", "none", "--hostname", "box"]);
    s.wait_running(1);
    s.ok(&["status", "--wait-ready=10s", "sb"]);
    let uuid = s.status_json("sb")["uuid"].as_str().unwrap().to_string();
    let add = |args: &[&str]| {
        let mut a = vec!["app", "add", "sb", &s.image];
        a.extend_from_slice(args);
        s.output(&a)
    };
    let script = "echo $$ $(hostname); grep -c /skiff/ /proc/self/cgroup; sleep 0.3; exit 3";
    let o = add(&["--app-name", "job", "--memory", "32M", "--exec", "/bin/sh", "--", "-c", script]);
    assert_eq!((o.status.code(), String::from_utf8_lossy(&o.stdout).as_ref()), (Some(0), "job\n"), "{}", stderr(&o));
    let list = |pod: &str| -> serde_json::Value {
        serde_json::from_str(&s.ok(&["app", "list", pod, "--format", "json"])).unwrap()
    };
    assert_eq!(list("sb")[0]["state"], "created");
    for (args, want) in [
        (vec!["--app-name", "job"], "has an app job already".to_string()),
        (
            vec!["--app-name", "mem", "--volume", "m:/m:tmpfs"],
            "memory volumes of added apps are not supported yet".to_string(),
        ),
    ] {
        let o = add(&args);
        assert_eq!(o.status.code(), Some(125), "{args:?}");
        assert!(stderr(&o).contains(&want), "{args:?}: {}", stderr(&o));
    }
    s.ok(&["app", "start", "sb", "--app", "job"]);
    s.wait_for("the job's exit", || list("sb")[0]["state"] == "exited");
    assert_eq!(list("sb")[0]["exit_code"], 3);
    let log = s.ok(&["logs", "sb", "--app", "job"]);
    let words: Vec<&str> = log.split_whitespace().collect();
    let pid: u32 = words[0].parse().unwrap();
    assert!(pid > 1 && pid < 100, "a PID of the pod's namespace: {log}");
    assert_eq!(words[1], "box", "the pod's hostname: {log}");
    assert!(words[2].parse::<u32>().unwrap() > 0, "in the pod's cgroups: {log}");
    let limit =
        std::fs::read_to_string(format!("/sys/fs/cgroup/memory/skiff/{uuid}/job/memory.limit_in_bytes")).unwrap();
    assert_eq!(limit.trim(), (32u64 << 20).to_string(), "the app's own cgroup");
    for (args, want) in [
        (vec!["app", "start", "sb", "--app", "job"], "has run already"),
        (vec!["app", "start", "sb", "--app", "nope"], "has no app \"nope\""),
    ] {
        let o = s.output(&args);
        assert_eq!(o.status.code(), Some(125), "{args:?}");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(s.status_json("sb")["state"], "running", "an app's exit does not end the sandbox");
    // An app that cannot be executed: each start says so (and leaves its root
    // neither attached in the pod nor unmountable), and it can be removed.
    s.ok(&["app", "add", "sb", &s.image, "--app-name", "bad", "--exec", "/no/such/file"]);
    let init_mounts = || std::fs::read_to_string(format!("/proc/{}/mountinfo", s.status_json("sb")["pid"])).unwrap();
    for _ in 0..2 {
        let o = s.output(&["app", "start", "sb", "--app", "bad"]);
        assert_eq!(o.status.code(), Some(125));
        assert!(stderr(&o).contains("app bad could not be executed"), "{}", stderr(&o));
        assert!(!init_mounts().contains("/apps/bad "), "its root stays attached: {}", init_mounts());
    }
    s.ok(&["app", "rm", "sb", "--app", "bad"]);
    // A second app, entered while it runs.
    s.ok(&["app", "add", "sb", &s.image, "--app-name", "sleeper", "--exec", "/bin/sleep", "--", "60"]);
    s.ok(&["app", "start", "sb", "--app", "sleeper"]);
    assert_eq!(list("sb")[1]["state"], "running");
    assert_eq!(s.ok(&["enter", "sb", "--app", "sleeper", "--", "cat", "/etc/hostname"]), "box\n");
    // Stopped (busybox sleep dies of SIGTERM), then removed; a third one
    // that ignores SIGTERM is killed after the timeout, and left running
    // until the sandbox ends.
    let o = s.output(&["app", "rm", "sb", "--app", "sleeper"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("app sleeper is running: stop it first"), "{}", stderr(&o));
    s.ok(&["app", "stop", "sb", "--app", "sleeper", "--timeout", "10s"]);
    assert_eq!(list("sb")[1]["exit_code"], 143);
    s.ok(&["app", "stop", "sb", "--app", "sleeper"]);
    s.ok(&["app", "rm", "sb", "--app", "sleeper"]);
    assert_eq!(list("sb").as_array().unwrap().len(), 1);
    assert!(!s.dir.join("pods/run").join(&uuid).join("apps/sleeper").exists());
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/memory/skiff/{uuid}/sleeper")).exists());
    let stubborn = "trap '' TERM; echo up; while true; do sleep 1; done";
    s.ok(&["app", "add", "sb", &s.image, "--app-name", "stubborn", "--exec", "/bin/sh", "--", "-c", stubborn]);
    s.ok(&["app", "start", "sb", "--app", "stubborn"]);
    s.wait_for("the stubborn app to trap TERM", || s.ok(&["logs", "sb", "--app", "stubborn"]).contains("up"));
    s.ok(&["app", "stop", "sb", "--app", "stubborn", "--timeout", "300ms"]);
    assert_eq!(list("sb")[1]["exit_code"], 137, "SIGKILL after the timeout");
    s.ok(&["app", "add", "sb", &s.image, "--app-name", "sleeper", "--exec", "/bin/sleep", "--", "60"]);
    s.ok(&["app", "start", "sb", "--app", "sleeper"]);
    s.ok(&["stop", "sb"]);
    let out = sandbox.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(list("sb")[2]["exit_code"], 137, "ended with the pod");
    assert!(!s.dir.join("pods/run").join(&uuid).join("control").exists(), "the control socket is gone");
    s.ok(&["gc", "--grace-period", "0"]);
    assert_eq!(s.list_json(), serde_json::json!([]));
    // Only sandboxes take apps.
    let o = s.output(&["run", "--name", "plain", &s.image, "--exec", "/bin/true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = s.output(&["app", "add", "plain", &s.image]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("is not a sandbox"), "{}", stderr(&o));
    // app list of any pod: its own apps, by the pod's life.
    assert_eq!((list("plain")[0]["state"].as_str(), list("plain")[0]["exit_code"].as_i64()), (Some("exited"), Some(0)));
    s.ok(&["prepare", "-q", "--name", "later", &s.image, "--exec", "/bin/true"]);
    assert_eq!(list("later")[0]["state"], "created");
    let table = s.ok(&["app", "list", "later"]);
    assert!(table.starts_with("NAME") && table.lines().nth(1).is_some_and(|l| l.contains("created")), "{table}");
}

#[test]
fn a_sandbox_whose_supervisor_is_killed_ends_with_its_apps_and_gc_cleans_it() {
    let s = Skiff::new();
    let mut sandbox = s.spawn(&["run", "--sandbox", "--name", "sb", "--net", "none"]);
    s.wait_running(1);
    s.ok(&["status", "--wait-ready=10s", "sb"]);
    let uuid = s.status_json("sb")["uuid"].as_str().unwrap().to_string();
    s.ok(&["app", "add", "sb", &s.image, "--app-name", "sleeper", "--exec", "/bin/sleep", "--", "60"]);
    s.ok(&["app", "start", "sb", "--app", "sleeper"]);
    let app_pid = s.status_json("sb")["pid"].as_i64().unwrap();
    assert!(app_pid > 0);
    nix_kill(sandbox.id() as i32);
    let _ = sandbox.wait();
    s.wait_for("the sandbox to read as exited", || s.status_json("sb")["state"] == "exited");
    let pids = || -> Vec<String> {
        let o = std::process::Command::new("pgrep").args(["-f", "^/bin/sleep 60$"]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect()
    };
    let cg = format!("/sys/fs/cgroup/pids/skiff/{uuid}/sleeper/cgroup.procs");
    s.wait_for("the added app to end with the pod", || {
        std::fs::read_to_string(&cg).map_or(true, |p| p.trim().is_empty())
    });
    assert!(pids()
        .iter()
        .all(|p| !std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap_or_default().contains(&uuid)));
    s.ok(&["gc", "--grace-period", "0"]);
    assert_eq!(s.list_json(), serde_json::json!([]));
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/pids/skiff/{uuid}")).exists(), "gc removed its cgroups");
    // A sandbox of its own user namespace takes no apps yet, and says so.
    let cfg = s.tmp().join("config.toml");
    std::fs::write(&cfg, format!("subuid-file = \"{0}/subuid\"\nsubgid-file = \"{0}/subgid\"\n", s.tmp().display()))
        .unwrap();
    let mut userns = s.spawn(&[
        "--config",
        cfg.to_str().unwrap(),
        "run",
        "--sandbox",
        "--name",
        "u",
        "--net",
        "none",
        "--private-users",
    ]);
    s.wait_running(1);
    s.ok(&["status", "--wait-ready=10s", "u"]);
    let o = s.output(&["app", "add", "u", &s.image]);
    assert_eq!(o.status.code(), Some(125), "{} {}", String::from_utf8_lossy(&o.stdout), s.ok(&["cat-manifest", "u"]));
    assert!(stderr(&o).contains("--private-users"), "{}", stderr(&o));
    s.ok(&["stop", "u"]);
    let _ = userns.wait();
    s.ok(&["gc", "--grace-period", "0"]);
}

fn nix_kill(pid: i32) {
    let o = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(o.success());
}

#[test]
fn added_apps_get_host_paths_and_pod_volumes() {
    let s = Skiff::new();
    let host = s.tmp().join("host");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("in"), "from the host\n").unwrap();
    let sandbox = s.spawn(&["run", "--sandbox", "--name", "sb", "--net", "none"]);
    s.wait_running(1);
    s.ok(&["status", "--wait-ready=10s", "sb"]);
    let h = format!("{}:/h:ro", host.display());
    let add_start = |name: &str, args: &[&str]| {
        let mut a = vec!["app", "add", "sb", &s.image, "--app-name", name];
        a.extend_from_slice(args);
        s.ok(&a);
        s.ok(&["app", "start", "sb", "--app", name]);
    };
    let writer = "cat /h/in > /shared/copy; echo sub > /part/x; touch /h/nope 2>/dev/null || echo read-only";
    add_start(
        "writer",
        &[
            "--volume",
            &h,
            "--volume",
            "shared:/shared",
            "--volume",
            "shared:/part:subpath=sub",
            "--exec",
            "/bin/sh",
            "--",
            "-c",
            writer,
        ],
    );
    s.wait_for("the writer's end", || s.ok(&["app", "list", "sb", "--format", "json"]).contains("\"exit_code\": 0"));
    assert_eq!(s.ok(&["logs", "sb", "--app", "writer"]), "read-only\n");
    add_start(
        "reader",
        &["--volume", "shared:/data:ro", "--exec", "/bin/sh", "--", "-c", "cat /data/copy /data/sub/x"],
    );
    s.wait_for("the reader's end", || s.ok(&["logs", "sb", "--app", "reader"]).contains("sub"));
    assert_eq!(s.ok(&["logs", "sb", "--app", "reader"]), "from the host\nsub\n");
    // The user and capabilities an added app is given, as a pod's own.
    let who = "id -u; grep CapBnd /proc/self/status";
    add_start("who", &["--user", "1000", "--caps-retain", "NET_BIND_SERVICE", "--exec", "/bin/sh", "--", "-c", who]);
    s.wait_for("who's end", || s.ok(&["logs", "sb", "--app", "who"]).contains("CapBnd"));
    assert_eq!(s.ok(&["logs", "sb", "--app", "who"]), "1000\nCapBnd:\t0000000000000400\n");
    assert!(!host.join("nope").exists());
    s.ok(&["stop", "sb"]);
    let out = sandbox.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    s.ok(&["gc", "--grace-period", "0"]);
}

#[test]
fn app_update_changes_a_running_apps_limits_and_a_created_ones_manifest() {
    let s = Skiff::new();
    let mut child = s.spawn(&["run", "--sandbox", "--name", "up", "--net", "none"]);
    s.ok(&["status", "--wait-ready=10s", "up"]);
    let uuid = s.status_json("up")["uuid"].as_str().unwrap().to_string();
    s.ok(&["app", "add", "up", &s.image, "--app-name", "svc", "--memory", "64M", "--exec", "/bin/sleep", "--", "60"]);
    s.ok(&["app", "add", "up", &s.image, "--app-name", "later", "--exec", "/bin/true"]);
    s.ok(&["app", "start", "up", "--app", "svc"]);
    s.wait_for("svc to run", || s.ok(&["app", "list", "--format", "json", "up"]).contains("running"));
    s.ok(&["app", "update", "up", "--app", "svc", "--memory", "96M", "--pids-limit", "50", "--oom-score-adj", "300"]);
    let cg = |file: &str, v2: &str| {
        let v1 = format!("/sys/fs/cgroup/memory/skiff/{uuid}/svc/{file}");
        std::fs::read_to_string(&v1)
            .or_else(|_| std::fs::read_to_string(format!("/sys/fs/cgroup/skiff/{uuid}/svc/{v2}")))
    };
    assert_eq!(cg("memory.limit_in_bytes", "memory.max").unwrap().trim(), (96u64 << 20).to_string());
    let pids = std::fs::read_to_string(format!("/sys/fs/cgroup/pids/skiff/{uuid}/svc/pids.max"))
        .or_else(|_| std::fs::read_to_string(format!("/sys/fs/cgroup/skiff/{uuid}/svc/pids.max")))
        .unwrap();
    assert_eq!(pids.trim(), "50");
    let procs = cg("cgroup.procs", "cgroup.procs").unwrap();
    let pid = procs.lines().next().expect("svc's process").trim().to_string();
    assert_eq!(std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap().trim(), "300");
    // One not started yet: only its manifest, which it starts with.
    s.ok(&["app", "update", "up", "--app", "later", "--cpu", "250m"]);
    let m: serde_json::Value = serde_json::from_str(&s.ok(&["cat-manifest", "up"])).unwrap();
    let app = |n: &str| m["apps"].as_array().unwrap().iter().find(|a| a["name"] == n).unwrap().clone();
    assert_eq!(
        (app("svc")["resources"]["memory_bytes"].as_u64(), app("svc")["oom_score_adj"].as_i64()),
        (Some(96 << 20), Some(300))
    );
    assert_eq!(app("later")["resources"]["cpu_millis"], 250);
    for (args, want) in [
        (vec!["--app", "nope", "--memory", "1G"], "has no app \"nope\""),
        (vec!["--app", "svc", "--memory-reservation", "1G"], "--memory-reservation 1G is above --memory 96M"),
        (vec!["--app", "svc", "--cpu-shares", "1"], "--cpu-shares"),
    ] {
        let mut full = vec!["app", "update", "up"];
        full.extend(args);
        let o = s.output(&full);
        assert_eq!(o.status.code(), Some(125));
        assert!(stderr(&o).contains(want), "{want}: {}", stderr(&o));
    }
    s.ok(&["stop", "up"]);
    child.wait().unwrap();
}
