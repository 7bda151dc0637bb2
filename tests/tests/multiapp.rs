//! Pods of several apps: `IMG --- IMG`, one PID/UTS/IPC namespace, a root
//! filesystem per app, shared pod volumes, exit policies, `enter --app`,
//! a cgroup per app.

use std::time::{Duration, Instant};

use skiff_tests::{stderr, Skiff};

#[test]
fn apps_share_namespaces_and_volumes_but_not_roots() {
    let s = Skiff::new();
    let img = s.image.as_str();
    #[rustfmt::skip]
    let o = s.output(&[
        "run", "--hostname", "duo",
        img, "--app-name", "writer", "--volume", "shared:/data", "--exec", "/bin/sh", "--", "-c",
        "echo mine > /only-writer; echo $$ > /data/pid; while [ ! -e /data/done ]; do sleep 0.05; done",
        "---",
        img, "--app-name", "reader", "--volume", "shared:/shared", "--exec", "/bin/sh", "--", "-c",
        "while [ ! -s /shared/pid ]; do sleep 0.05; done; \
         w=$(cat /shared/pid); \
         echo host=$(hostname) writer-visible=$([ -d /proc/$w ] && echo yes) \
              own-root=$([ -e /only-writer ] && echo no || echo yes) comm=$(cat /proc/$w/comm); \
         touch /shared/done",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "host=duo writer-visible=yes own-root=yes comm=sh\n");
    let st = s.status_json(&s.only_pod());
    let codes: Vec<_> =
        st["apps"].as_array().unwrap().iter().map(|a| (a["name"].clone(), a["exit_code"].clone())).collect();
    assert_eq!(codes, [("writer".into(), 0.into()), ("reader".into(), 0.into())]);
}

#[test]
fn exit_policy_all_waits_for_every_app() {
    let s = Skiff::new();
    let img = s.image.as_str();
    #[rustfmt::skip]
    let o = s.output(&[
        "run",
        img, "--app-name", "quick", "--exec", "/bin/true", "---",
        img, "--app-name", "slow", "--exec", "/bin/sh", "--", "-c", "sleep 0.5; echo slow-done",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "slow-done\n");
}

#[test]
fn exit_policy_all_stops_the_others_when_one_fails() {
    let s = Skiff::new();
    let img = s.image.as_str();
    let start = Instant::now();
    #[rustfmt::skip]
    let o = s.output(&[
        "run",
        img, "--app-name", "fails", "--exec", "/bin/sh", "--", "-c", "sleep 0.2; exit 3", "---",
        img, "--app-name", "server", "--exec", "/bin/sleep", "--", "60",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(start.elapsed() < Duration::from_secs(30), "the server was stopped, not waited for");
    let st = s.status_json(&s.only_pod());
    let codes: Vec<_> = st["apps"].as_array().unwrap().iter().map(|a| a["exit_code"].clone()).collect();
    assert_eq!(codes, [serde_json::json!(3), serde_json::json!(143)]);
}

#[test]
fn exit_policy_any_ends_the_pod_with_the_first_exit() {
    let s = Skiff::new();
    let img = s.image.as_str();
    #[rustfmt::skip]
    let o = s.output(&[
        "run", "--exit-policy", "any",
        img, "--app-name", "job", "--exec", "/bin/sh", "--", "-c", "sleep 0.2; echo job-done", "---",
        img, "--app-name", "sidecar", "--exec", "/bin/sleep", "--", "60",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "job-done\n");
    let o = s.output(&["run", "--exit-policy", "some", img, "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("some"), "{}", stderr(&o));
}

#[test]
fn app_names_are_unique_and_apps_are_entered_by_name() {
    let s = Skiff::new();
    let img = s.image.as_str();
    let o = s.output(&["run", img, "--exec", "/bin/true", "---", img, "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("--app-name"), "{}", stderr(&o));
    let o = s.output(&["run", img, "--exec", "/bin/true", "---"]);
    assert_eq!(o.status.code(), Some(125));
    #[rustfmt::skip]
    let mut child = s.spawn(&[
        "run",
        img, "--app-name", "a", "--set-env", "WHO=a", "--exec", "/bin/sh", "--", "-c", "touch /a-root; exec sleep 60",
        "---",
        img, "--app-name", "b", "--set-env", "WHO=b", "--memory", "40M", "--exec", "/bin/sh", "--", "-c",
        "touch /b-root; exec sleep 60",
    ]);
    s.wait_running(1);
    let uuid = s.only_pod();
    s.wait_in_app(&uuid, "a", "/a-root");
    s.wait_in_app(&uuid, "b", "/b-root");
    let probe = "echo $WHO $(ls / | grep -- -root) $(cut -d: -f3 /proc/self/cgroup | grep skiff | sort -u)";
    let out = s.ok(&["enter", "--app", "b", &uuid, "--", "/bin/sh", "-c", probe]);
    assert_eq!(out, format!("b b-root /skiff/{uuid}/b\n"));
    let out = s.ok(&["enter", "--app", "a", &uuid, "--", "/bin/sh", "-c", probe]);
    assert_eq!(out, format!("a a-root /skiff/{uuid}/a\n"));
    let o = s.output(&["enter", &uuid, "--", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("choose one with --app (a, b)"), "the apps are listed: {}", stderr(&o));
    // Each app's limits are its own cgroup's.
    let v1 = std::path::PathBuf::from(format!("/sys/fs/cgroup/memory/skiff/{uuid}/b/memory.limit_in_bytes"));
    let mem = if v1.exists() { v1 } else { format!("/sys/fs/cgroup/skiff/{uuid}/b/memory.max").into() };
    assert_eq!(std::fs::read_to_string(mem).unwrap().trim(), (40u64 << 20).to_string());
    s.ok(&["stop", &uuid]);
    assert_eq!(child.wait().unwrap().code(), Some(143));
    s.ok(&["gc", "--grace-period", "0"]);
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        assert!(!h.path().join("skiff").join(&uuid).exists(), "cgroup left in {}", h.path().display());
    }
}

#[test]
fn init_apps_run_first_and_a_failing_one_ends_the_pod() {
    let s = Skiff::new();
    for flavor in ["ns", "nspawn"] {
        #[rustfmt::skip]
        let o = s.output(&[
            "run", "--rm", "--stage1", flavor, "--net", "none",
            &s.image, "--app-name", "main", "--volume", "v:/v", "--exec", "/bin/cat", "--", "/v/x",
            "---", &s.image, "--app-name", "setup", "--init", "--volume", "v:/v", "--exec", "/bin/sh", "--", "-c", "echo made > /v/x",
        ]);
        assert_eq!(o.status.code(), Some(0), "{flavor}: {}", stderr(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout), "made\n", "{flavor}: the init app ran before main");
        #[rustfmt::skip]
        let o = s.output(&[
            "run", "--rm", "--stage1", flavor, "--net", "none",
            &s.image, "--app-name", "main", "--exec", "/bin/echo", "--", "never",
            "---", &s.image, "--app-name", "setup", "--init", "--exec", "/bin/sh", "--", "-c", "exit 6",
        ]);
        assert_eq!(o.status.code(), Some(6), "{flavor}: {}", stderr(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout), "", "{flavor}: main never started");
    }
    let o = s.output(&["run", "--stage1", "fly", &s.image, "--exec", "/bin/true", "---", &s.image, "--init"]);
    assert_eq!(o.status.code(), Some(125));
    let o = s.output(&["run", &s.image, "--init", "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("every app of the pod is an --init app"), "{}", stderr(&o));
}
