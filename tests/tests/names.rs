//! Pods for scripts: `--name` (unique among live pods, usable wherever a
//! UUID is), `--uuid-file-save` and `--uuid-file`.

use skiff_tests::{stderr, Skiff};

#[test]
fn a_name_finds_its_pod_and_belongs_to_one_live_pod() {
    let s = Skiff::new();
    let mut web = s.spawn(&["run", "--name", "web", "--net", "none", &s.image, "--exec", "/bin/sleep", "--", "60"]);
    s.wait_running(1);
    let uuid = s.only_pod();
    let st = s.status_json("web");
    assert_eq!((st["uuid"].as_str(), st["name"].as_str()), (Some(uuid.as_str()), Some("web")));
    assert_eq!(s.list_json()[0]["name"], "web");
    let o = s.output(&["run", "--name", "web", &s.image, "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains(&format!("pod name web is taken by pod {uuid}, which is running")), "{}", stderr(&o));
    let m: serde_json::Value = serde_json::from_str(&s.ok(&["cat-manifest", "web"])).unwrap();
    assert_eq!(m["name"], "web");
    s.ok(&["stop", "web"]);
    assert_eq!(web.wait().unwrap().code(), Some(143));
    // Exited, it is still found by its name, until another pod takes it.
    assert_eq!(s.status_json("web")["state"], "exited");
    let second = s.ok(&["prepare", "-q", "--name", "web", &s.image, "--exec", "/bin/true"]);
    assert_eq!(s.status_json("web")["uuid"], second.trim());
    let o = s.output(&["run", "--name", "no/slash", &s.image, "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("invalid pod name"), "{}", stderr(&o));
    s.ok(&["rm", "web", &uuid]);
    assert_eq!(s.output(&["status", "web"]).status.code(), Some(125), "gone with its pod");
}

#[test]
fn of_two_pods_asking_for_one_name_at_once_exactly_one_gets_it() {
    let s = Skiff::new();
    for round in 0..3 {
        let name = format!("job-{round}");
        let args = ["prepare", "-q", "--name", &name, &s.image, "--exec", "/bin/true"];
        let (a, b) = (s.cmd(&args).spawn().unwrap(), s.cmd(&args).spawn().unwrap());
        let codes = [a.wait_with_output().unwrap().status.code(), b.wait_with_output().unwrap().status.code()];
        let mut sorted = codes;
        sorted.sort();
        assert_eq!(sorted, [Some(0), Some(125)], "round {round}: {codes:?}");
    }
}

#[test]
fn uuid_files_name_pods_for_scripts() {
    let s = Skiff::new();
    let file = s.tmp().join("pod.uuid");
    let f = file.to_str().unwrap();
    let o =
        s.output(&["run", "--uuid-file-save", f, "--net", "none", &s.image, "--exec", "/bin/sh", "--", "-c", "exit 6"]);
    assert_eq!(o.status.code(), Some(6));
    let uuid = std::fs::read_to_string(&file).unwrap();
    assert_eq!(uuid.trim(), s.only_pod());
    let st: serde_json::Value = serde_json::from_str(&s.ok(&["status", "--format", "json", "--uuid-file", f])).unwrap();
    assert_eq!(st["apps"][0]["exit_code"], 6);
    assert!(s.ok(&["cat-manifest", "--uuid-file", f]).contains(uuid.trim()));
    std::fs::write(s.tmp().join("bad.uuid"), "not a uuid\n").unwrap();
    let o = s.output(&["status", "--uuid-file", s.tmp().join("bad.uuid").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("does not hold a pod UUID"), "{}", stderr(&o));
    assert_eq!(s.ok(&["rm", "--uuid-file", f]).trim(), uuid.trim());
}
