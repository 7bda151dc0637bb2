//! skiff enter: a command in a running pod, as its app runs.

use skiff_tests::{stderr, Skiff};

#[test]
fn enter_joins_the_pod_as_its_app() {
    let s = Skiff::new();
    let mut child = s.spawn(&[
        "run",
        "--hostname",
        "entered",
        &s.image,
        "--set-env",
        "SECRET=from-pod",
        "--user",
        "1000",
        "--working-dir",
        "/tmp",
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "echo mark > /tmp/mark.new; mv /tmp/mark.new /tmp/mark; exec sleep 60",
    ]);
    s.wait_running(1);
    let uuid = s.only_pod();
    s.wait_in_pod(&uuid, "/tmp/mark");
    let out = s.ok(&[
        "enter", &uuid[..8], "--", "/bin/sh", "-c",
        "echo $SECRET $(hostname) $(id -u) $(pwd); cat /tmp/mark; ps -o comm | grep -c sleep; grep CapEff /proc/self/status",
    ]);
    assert_eq!(out, "from-pod entered 1000 /tmp\nmark\n1\nCapEff:\t0000000000000000\n");
    let o = s.output(&["enter", &uuid, "--", "/bin/sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7), "the command's exit code");
    let o = s.output(&["enter", &uuid, "--app", "nope"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("nope"));
    s.ok(&["stop", &uuid]);
    child.wait().unwrap();
    let o = s.output(&["enter", &uuid]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("not running"));
}

#[test]
fn apps_can_be_named() {
    let s = Skiff::new();
    let uuid = s.ok(&["prepare", "-q", &s.image, "--app-name", "web", "--exec", "/bin/sh", "--", "-c", "exit 6"]);
    let o = s.output(&["run-prepared", uuid.trim()]);
    assert_eq!(o.status.code(), Some(6));
    assert!(s.ok(&["status", uuid.trim()]).contains("\napp-web=6\n"));
    let o = s.output(&["run", &s.image, "--app-name", "Not_Valid", "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("Not_Valid"));
}
