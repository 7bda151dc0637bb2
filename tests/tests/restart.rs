//! Restart policies (`--restart-policy`, Kubernetes' `restartPolicy`): apps
//! started again after they exit, with Kubernetes' back-off (10 s, 20 s…),
//! their restarts counted.

use skiff_tests::{stderr, Skiff};

/// An app that fails until its third run (the count kept in a pod volume).
const THIRD_TIME: &str = "n=$(cat /v/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /v/n; echo run $n; [ $n -ge 3 ]";

#[test]
fn on_failure_restarts_after_the_backoff_until_the_app_succeeds() {
    let s = Skiff::new();
    let yaml = format!(
        "kind: Job\nmetadata: {{name: flaky}}\nspec:\n  template:\n    spec:\n      restartPolicy: OnFailure\n      volumes: [{{name: v, emptyDir: {{}}}}]\n      containers:\n      - {{name: job, image: \"{}\", command: [/bin/sh, -c, \"{THIRD_TIME}\"], volumeMounts: [{{name: v, mountPath: /v}}]}}\n",
        s.image
    );
    let file = s.tmp().join("flaky.yaml");
    std::fs::write(&file, yaml).unwrap();
    let started = std::time::Instant::now();
    let o = s.output(&["play", "kube", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "run 1\nrun 2\nrun 3\n");
    // The back-off: 10 s, then 20 s (a bound, not a timing assertion: it
    // cannot have been quicker).
    assert!(started.elapsed() >= std::time::Duration::from_secs(30), "{:?}", started.elapsed());
    let app = &s.status_json("flaky")["apps"][0];
    assert_eq!((app["exit_code"].as_i64(), app["restarts"].as_i64()), (Some(0), Some(2)), "{app}");
}

#[test]
fn a_stop_while_an_app_waits_to_restart_ends_the_pod_with_its_last_status() {
    let s = Skiff::new();
    #[rustfmt::skip]
    let mut pod = s.spawn(&[
        "run", "--name", "looping", "--net", "none", "--restart-policy", "always",
        &s.image, "--exec", "/bin/sh", "--", "-c", "echo up; exit 5",
    ]);
    s.ok(&["status", "--wait-ready=20s", "looping"]);
    s.wait_for("its first exit", || s.status_json("looping")["apps"][0]["exit_code"] == 5);
    s.ok(&["stop", "looping"]);
    assert_eq!(pod.wait().unwrap().code(), Some(5), "no restart after the stop");
    assert_eq!(s.status_json("looping")["apps"][0]["restarts"], 0);
    // What cannot restart is refused before anything is made.
    for (args, want) in [
        (vec!["run", "--stage1", "fly", "--restart-policy", "always", &s.image], "restart-policy"),
        (vec!["run", "-t", "--restart-policy", "on-failure", &s.image], "terminal"),
        (vec!["run", "--restart-policy", "sometimes", &s.image], "expected never, on-failure or always"),
    ] {
        let o = s.output(&args);
        assert_eq!(o.status.code(), Some(125), "{args:?}");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
}
