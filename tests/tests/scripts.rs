//! Pods for scripts: `--name` (unique among live pods, usable wherever a
//! UUID is), `--uuid-file-save` and `--uuid-file`, `run --rm`, `status
//! --wait-ready`, and a batch of pods started from a shell script.

use std::os::unix::process::ExitStatusExt;

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
fn a_name_whose_claimant_was_killed_is_free_without_gc() {
    let s = Skiff::new();
    let args = ["run", "--name", "job", "--net", "none", &s.image, "--exec", "/bin/true"];
    // Killed after its claim, at the manifest's write: it reads as an
    // aborted prepare, which holds no name.
    let o = s.cmd(&args).env("SKIFF_FAILPOINTS", "atomic.manifest.json=kill").output().unwrap();
    assert_eq!(o.status.signal(), Some(9));
    let dead = s.only_pod();
    assert_eq!(s.list_json()[0]["state"], "aborted-prepare");
    s.ok(&args);
    let st = s.status_json("job");
    assert!(st["uuid"] != dead.as_str() && st["state"] == "exited", "{st}");
}

#[test]
fn an_embryo_whose_creator_was_killed_reads_as_an_aborted_prepare_and_rm_takes_it() {
    let s = Skiff::new();
    let args = ["run", "--net", "none", &s.image, "--exec", "/bin/true"];
    // Killed right after its pod directory was made (pods/embryo/UUID).
    let o = s.cmd(&args).env("SKIFF_FAILPOINTS", "pod.create=kill").output().unwrap();
    assert_eq!(o.status.signal(), Some(9));
    let dead = s.only_pod();
    assert!(s.dir.join("pods/embryo").join(&dead).is_dir());
    assert_eq!(s.list_json()[0]["state"], "aborted-prepare");
    assert_eq!(s.ok(&["rm", &dead]).trim(), dead, "no need to wait for gc");
    assert_eq!(s.list_json(), serde_json::json!([]));
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
    // Only a regular file is replaced: a link (or /dev/stdout) is refused
    // and left as it is, and no pod is left either.
    let link = s.tmp().join("link.uuid");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let o = s.output(&["run", "--uuid-file-save", link.to_str().unwrap(), &s.image, "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(s.list_json(), serde_json::json!([]));
}

#[test]
fn rm_keeps_the_exit_code_and_leaves_nothing() {
    let s = Skiff::new();
    let o = s.output(&["run", "--rm", "--name", "once", &s.image, "--exec", "/bin/sh", "--", "-c", "echo out; exit 9"]);
    assert_eq!(o.status.code(), Some(9));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert_eq!(s.list_json(), serde_json::json!([]), "no pod left");
    for d in ["run", "garbage", "exited-garbage"] {
        assert_eq!(std::fs::read_dir(s.dir.join("pods").join(d)).unwrap().count(), 0, "{d} is empty");
    }
    assert!(!s.dir.join("pods/names/once").exists(), "nor its name");
    // On a flavor that cannot remove pods, --rm is refused before anything is made.
    let sh = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flavors/skiff-stage1-sh");
    let o = s.output(&["run", "--rm", "--stage1", sh.to_str().unwrap(), &s.image, "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("remove-on-exit"), "{}", stderr(&o));
    assert_eq!(s.list_json(), serde_json::json!([]));
    // run-prepared --rm too.
    let uuid = s.ok(&["prepare", "-q", &s.image, "--exec", "/bin/true"]);
    assert_eq!(s.output(&["run-prepared", "--rm", uuid.trim()]).status.code(), Some(0));
    assert_eq!(s.list_json(), serde_json::json!([]));
    let o = s.output(&["prepare", "-i", &s.image, "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125), "-i is for when the pod runs");
    assert!(stderr(&o).contains("run-prepared"), "{}", stderr(&o));
}

#[test]
fn wait_ready_returns_once_every_app_has_started() {
    let s = Skiff::new();
    let uuid = s.ok(&["prepare", "-q", "--name", "slow", &s.image, "--exec", "/bin/sleep", "--", "30"]);
    let o = s.output(&["status", "--wait-ready=100ms", "slow"]);
    assert_eq!(o.status.code(), Some(124), "prepared, not started");
    let pod = s.spawn(&["run-prepared", uuid.trim()]);
    let out = s.ok(&["status", "--wait-ready=20s", "slow"]);
    assert!(out.starts_with("state=running\n"), "{out}");
    assert!(s.dir.join("pods/run").join(uuid.trim()).join("ready").is_file());
    s.ok(&["stop", "--force", "slow"]);
    let o = pod.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(137), "{}", stderr(&o));
    // A pod whose app cannot start never becomes ready.
    let broken = s.ok(&["prepare", "-q", &s.image, "--user", "nosuchuser", "--exec", "/bin/true"]);
    assert_eq!(s.output(&["run-prepared", broken.trim()]).status.code(), Some(125));
    let o = s.output(&["status", "--wait-ready", broken.trim()]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("without starting"), "{}", stderr(&o));
}

#[test]
fn a_look_at_a_prepared_pod_does_not_stop_it_from_running() {
    let s = Skiff::new();
    let uuid = s.ok(&["prepare", "-q", &s.image, "--exec", "/bin/true"]);
    // What `status` and `list` do for a moment to read the state, held
    // long enough that `run-prepared` finds it.
    let look = std::fs::File::open(s.dir.join("pods/prepared").join(uuid.trim())).unwrap();
    look.lock_shared().unwrap();
    let pod = s.spawn(&["run-prepared", uuid.trim()]);
    std::thread::sleep(std::time::Duration::from_millis(30));
    drop(look);
    let o = pod.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn waiting_commands_wait_for_the_pod_to_appear() {
    let s = Skiff::new();
    let uuid_file = s.tmp().join("later.uuid");
    let uf = uuid_file.to_str().unwrap();
    // The waits start before the pod exists, as right after `skiff run … &`.
    let by_name = s.spawn(&["status", "--wait-ready=20s", "later"]);
    let by_file = s.spawn(&["status", "--wait=20s", "--uuid-file", uf]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut pod =
        s.spawn(&["run", "--name", "later", "--uuid-file-save", uf, &s.image, "--exec", "/bin/sleep", "--", "1"]);
    let o = by_name.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("state=running\n"));
    let o = by_file.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("state=exited\n"));
    assert_eq!(pod.wait().unwrap().code(), Some(0));
    // A pod that never comes: the wait ends at its timeout, saying so.
    let o = s.output(&["status", "--wait-ready=200ms", "never"]);
    assert_eq!(o.status.code(), Some(124));
    assert!(stderr(&o).contains(r#"no pod named or with UUID prefix "never" appeared in time"#), "{}", stderr(&o));
    // Without a wait, an unknown pod is an error at once, worded alike by
    // every command that takes a pod.
    for cmd in ["status", "stop", "enter", "logs", "rm", "cat-manifest"] {
        let o = s.output(&[cmd, "nosuchpod"]);
        assert_eq!(o.status.code(), Some(125), "{cmd}");
        assert!(stderr(&o).contains(r#"no pod named or with UUID prefix "nosuchpod""#), "{cmd}: {}", stderr(&o));
    }
}

#[test]
fn a_script_runs_fifty_pods_at_once_and_checks_every_status() {
    let s = Skiff::new();
    let skiff = format!("{} --dir {}", skiff_tests::skiff::bin_dir().join("skiff").display(), s.dir.display());
    let script = format!(
        r#"set -eu
for i in $(seq 1 50); do
  {skiff} run --name job-$i {img} --exec /bin/sh -- -c "exit $i" >/dev/null 2>&1 &
done
wait
bad=0
for i in $(seq 1 50); do
  code=$({skiff} status --format json job-$i | jq -r '.apps[0].exit_code')
  [ "$code" = "$i" ] || {{ echo "job-$i: $code" >&2; bad=1; }}
done
for i in $(seq 1 10); do {skiff} run --rm {img} --exec /bin/true & done
wait
exit $bad"#,
        img = s.image
    );
    let o = std::process::Command::new("bash").arg("-c").arg(&script).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let pods = s.list_json();
    assert_eq!(pods.as_array().map(Vec::len), Some(50), "the 10 --rm pods left nothing");
    assert!(pods.as_array().unwrap().iter().all(|p| p["state"] == "exited"));
}
