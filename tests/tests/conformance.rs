//! One suite for every stage1 flavor (docs/stage1-abi.md): the contract all
//! flavors keep (exit codes, argv, environment, working directory, user,
//! stdin, status files, pod states, stop, gc), then every feature: a flavor
//! that declares it in `--describe` must do it, and for one that does not,
//! skiff must refuse the pod, naming the feature. Run against `ns`, `fly`,
//! `nspawn` and `sh`, a third-party flavor written as a shell script from the ABI
//! document alone (tests/flavors/skiff-stage1-sh).

use std::io::Write;
use std::process::{Command, Output, Stdio};

use skiff_tests::skiff::bin_dir;
use skiff_tests::{stderr, Skiff};

struct Flavor {
    id: String,
    features: Vec<String>,
}

impl Flavor {
    fn new(id: &str) -> Flavor {
        let bin = if id.starts_with('/') { id.into() } else { bin_dir().join(format!("skiff-stage1-{id}")) };
        let out = std::process::Command::new(&bin).arg("--describe").output().expect("run --describe");
        assert!(out.status.success(), "{id} --describe: {}", stderr(&out));
        let d: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--describe JSON");
        assert_eq!(d["abi_version"], 2, "{id}");
        let features = d["features"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect();
        Flavor { id: id.to_string(), features }
    }

    fn has(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }
}

fn script_flavor() -> String {
    format!("{}/flavors/skiff-stage1-sh", env!("CARGO_MANIFEST_DIR"))
}

/// `skiff run --stage1 F POD_OPTS... IMAGE APP_ARGS...`.
fn run(s: &Skiff, f: &Flavor, pod: &[&str], app: &[&str]) -> Output {
    s.output(&args(s, f, pod, app))
}

fn args<'a>(s: &'a Skiff, f: &'a Flavor, pod: &[&'a str], app: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["run", "--stage1", f.id.as_str()];
    a.extend_from_slice(pod);
    a.push(&s.image);
    a.extend_from_slice(app);
    a
}

fn sh<'a>(script: &'a str, opts: &[&'a str]) -> Vec<&'a str> {
    let mut a = opts.to_vec();
    a.extend(["--exec", "/bin/sh", "--", "-c", script]);
    a
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn exit_codes(f: &Flavor) {
    let s = Skiff::new();
    for (script, code) in [("exit 0", 0), ("exit 3", 3), ("kill -KILL $$", 137)] {
        let o = run(&s, f, &[], &sh(script, &[]));
        assert_eq!(o.status.code(), Some(code), "{}: {script}: {}", f.id, stderr(&o));
    }
    let o = run(&s, f, &[], &["--exec", "/etc/passwd"]);
    assert_eq!(o.status.code(), Some(126), "{}: {}", f.id, stderr(&o));
    let o = run(&s, f, &[], &["--exec", "/no/such/program"]);
    assert_eq!(o.status.code(), Some(127), "{}: {}", f.id, stderr(&o));
}

fn process(f: &Flavor) {
    let s = Skiff::new();
    let script = "echo \"$0 $1\" A=$A IMG=$FROM_IMAGE $(pwd) $(id -u):$(id -g)";
    let mut app = vec!["--set-env", "A=b c", "--working-dir", "/tmp/wd", "--user", "1000:1001"];
    app.extend(["--exec", "/bin/sh", "--", "-c", script, "first", "second"]);
    let o = run(&s, f, &[], &app);
    assert_eq!(o.status.code(), Some(0), "{}: {}", f.id, stderr(&o));
    assert_eq!(stdout(&o), "first second A=b c IMG=yes /tmp/wd 1000:1001\n", "{}", f.id);
    let mut child =
        s.cmd(&args(&s, f, &[], &["--exec", "/bin/cat"])).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"from stdin\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "from stdin\n", "{}", f.id);
}

fn states(f: &Flavor) {
    let s = Skiff::new();
    let uuid = s.ok(&["prepare", "-q", "--stage1", &f.id, &s.image, "--exec", "/bin/sh", "--", "-c", "exit 4"]);
    let uuid = uuid.trim();
    assert_eq!(s.status_json(uuid)["state"], "prepared");
    assert_eq!(s.output(&["run-prepared", uuid]).status.code(), Some(4), "{}", f.id);
    let st = s.status_json(uuid);
    assert_eq!((st["state"].clone(), st["apps"][0]["exit_code"].clone()), ("exited".into(), 4.into()), "{}", f.id);
    s.ok(&["rm", uuid]);
    assert_eq!(s.list_json().as_array().map(Vec::len), Some(0));
    run(&s, f, &[], &["--exec", "/bin/true"]);
    s.ok(&["gc", "--grace-period", "0"]);
    assert_eq!(s.list_json().as_array().map(Vec::len), Some(0), "{}: gc", f.id);
}

/// A `sleep` argument no other process has, to find the app's processes.
fn unique_sleep() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("60.{}{nanos:09}", std::process::id())
}

/// Processes whose command line holds `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    out
}

fn stop(f: &Flavor) {
    let s = Skiff::new();
    let secs = unique_sleep();
    let mut child = s.spawn(&args(&s, f, &[], &["--exec", "/bin/sleep", "--", &secs]));
    s.wait_running(1);
    let uuid = s.only_pod();
    s.wait_for("the app", || s.status_json(&uuid)["pid"].as_i64().is_some());
    let run_dir = s.dir.join("pods/run").join(&uuid);
    s.wait_for("the ready marker", || run_dir.join("ready").is_file());
    assert!(run_dir.join("started").is_file(), "{}", f.id);
    s.ok(&["stop", &uuid]);
    assert_eq!(child.wait().unwrap().code(), Some(143), "{}", f.id);
    assert_eq!(s.status_json(&uuid)["apps"][0]["exit_code"], 143, "{}", f.id);
    assert_eq!(processes_with(&secs), Vec::<String>::new(), "{}: the app outlived the pod", f.id);
}

/// A SIGTERM to the flavor process (systemd's KillMode=mixed, or a shell's
/// kill) is passed on to the app; an app that ignores it is killed once the
/// pod's stop timeout has passed.
fn sigterm_escalates(f: &Flavor) {
    let s = Skiff::new();
    let secs = unique_sleep();
    // The line says the app's trap is set (`ready` only says the flavor
    // handles signals, not that the shell has run its first command).
    let script = format!("trap '' TERM; echo trapped; sleep {secs}");
    let mut child = s.spawn(&args(&s, f, &["--stop-timeout", "1s"], &sh(&script, &[])));
    let mut line = String::new();
    // Kept open until the pod is over: a closed pipe would end it by SIGPIPE.
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "trapped\n", "{}", f.id);
    // And the flavor handles SIGTERM (it writes `ready` once it does).
    s.wait_running(1);
    let uuid = s.only_pod();
    s.wait_for("the ready marker", || s.dir.join("pods/run").join(&uuid).join("ready").is_file());
    let _ = std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    assert_eq!(child.wait().unwrap().code(), Some(137), "{}: killed after the stop timeout", f.id);
    drop(out);
    assert_eq!(processes_with(&secs), Vec::<String>::new(), "{}: the app outlived the pod", f.id);
}

/// Asserts that skiff refused the pod because the flavor lacks `feature`.
fn refused(f: &Flavor, feature: &str, o: &Output) {
    assert_eq!(o.status.code(), Some(125), "{}: {feature} should be refused", f.id);
    let err = stderr(o);
    assert!(err.contains(feature) && err.contains("does not support"), "{}: {err}", f.id);
}

fn features(f: &Flavor) {
    let s = Skiff::new();
    let ok = |o: &Output, what: &str| {
        assert_eq!(o.status.code(), Some(0), "{}: {what}: {}", f.id, stderr(o));
        stdout(o)
    };
    // Intrinsic: nothing to ask for, so only checked where declared.
    if f.has("pid-namespace") {
        let out = ok(&run(&s, f, &[], &sh("ls /proc | grep -c '^[0-9]'", &[])), "pid-namespace");
        assert!(out.trim().parse::<u32>().unwrap() < 10, "{}: sees {out} processes", f.id);
    }
    if f.has("mount-namespace") {
        let host_only = s.tmp().display().to_string();
        let script = format!("[ -e {host_only} ] && echo host-visible; echo done");
        assert_eq!(ok(&run(&s, f, &[], &sh(&script, &[])), "mount-namespace"), "done\n");
    }
    if f.has("masked-paths") {
        assert_eq!(ok(&run(&s, f, &[], &sh("wc -c < /proc/keys", &[])), "masked-paths").trim(), "0");
    }
    // Asked for with options.
    let o = run(&s, f, &["--hostname", "conformance"], &sh("hostname", &[]));
    if f.has("hostname") {
        assert_eq!(ok(&o, "hostname"), "conformance\n");
    } else {
        refused(f, "hostname", &o);
    }
    let o = run(&s, f, &["--net", "none"], &sh("grep -c : /proc/net/dev; cat /sys/class/net/lo/flags", &[]));
    if f.has("net-none") {
        assert_eq!(ok(&o, "net-none"), "1\n0x9\n", "only lo, and up");
    } else {
        refused(f, "net-none", &o);
    }
    let o = run(
        &s,
        f,
        &["--net", "default"],
        &sh("ip -o -4 addr show eth0; ping -c1 -W5 10.231.0.1 >/dev/null && echo reached", &[]),
    );
    if f.has("net-cni") {
        let out = ok(&o, "net-cni");
        assert!(out.contains("inet 10.231.") && out.ends_with("reached\n"), "{}: {out}", f.id);
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let pinned = info.lines().filter(|l| l.contains(s.dir.to_str().unwrap()) && l.contains(" nsfs ")).count();
        assert_eq!(pinned, 0, "{}: the pod's network namespace is unpinned when it ends", f.id);
    } else {
        refused(f, "net-cni", &o);
    }
    let before = s.list_json().as_array().map(Vec::len);
    let o = run(&s, f, &["--rm"], &sh("exit 3", &[]));
    if f.has("remove-on-exit") {
        assert_eq!(o.status.code(), Some(3), "{}: --rm keeps the status: {}", f.id, stderr(&o));
        assert_eq!(s.list_json().as_array().map(Vec::len), before, "{}: --rm leaves no pod", f.id);
    } else {
        refused(f, "remove-on-exit", &o);
    }
    let img = s.image.as_str();
    let two = ["--app-name", "a", "--exec", "/bin/true", "---", img, "--app-name", "b", "--exec", "/bin/true"];
    let o = run(&s, f, &[], &two);
    if f.has("multi-app") {
        ok(&o, "multi-app");
    } else {
        refused(f, "multi-app", &o);
    }
    let o = run(&s, f, &["--exit-policy", "any"], &["--exec", "/bin/true"]);
    if f.has("exit-policy") {
        ok(&o, "exit-policy");
    } else {
        refused(f, "exit-policy", &o);
    }
    let o = run(&s, f, &[], &sh("x=$(head -c 80000000 /dev/zero | tr '\\0' a); echo ${#x}", &["--memory", "32M"]));
    if f.has("cgroup-limits") {
        assert_eq!(o.status.code(), Some(137), "{}: over --memory", f.id);
    } else {
        refused(f, "cgroup-limits", &o);
    }
    let o = run(&s, f, &[], &sh("grep CapEff /proc/self/status", &["--caps-retain", "CAP_CHOWN"]));
    if f.has("capabilities") {
        assert_eq!(ok(&o, "capabilities"), "CapEff:\t0000000000000001\n");
    } else {
        refused(f, "capabilities", &o);
    }
    let o = run(&s, f, &[], &sh("mkdir /tmp/x 2>&1; true", &["--seccomp", "mode=remove,mkdir,mkdirat"]));
    if f.has("seccomp") {
        assert!(ok(&o, "seccomp").contains("Operation not permitted"), "{}", stdout(&o));
    } else {
        refused(f, "seccomp", &o);
    }
    let o = run(&s, f, &[], &sh("grep NoNewPrivs /proc/self/status", &["--no-new-privileges"]));
    if f.has("no-new-privileges") {
        assert_eq!(ok(&o, "no-new-privileges"), "NoNewPrivs:\t1\n");
    } else {
        refused(f, "no-new-privileges", &o);
    }
    let o = run(&s, f, &[], &sh("touch /x 2>/dev/null || echo refused", &["--readonly-rootfs"]));
    if f.has("readonly-rootfs") {
        assert_eq!(ok(&o, "readonly-rootfs"), "refused\n");
    } else {
        refused(f, "readonly-rootfs", &o);
    }
    let host = s.tmp().join("vol");
    std::fs::create_dir(&host).unwrap();
    let spec = format!("{}:/data", host.display());
    let o = run(&s, f, &[], &sh("echo in-pod > /data/f", &["--volume", &spec]));
    if f.has("volumes") {
        ok(&o, "volumes");
        assert_eq!(std::fs::read_to_string(host.join("f")).unwrap(), "in-pod\n");
    } else {
        refused(f, "volumes", &o);
    }
    let o = run(&s, f, &[], &sh("cat /proc/self/oom_score_adj", &["--oom-score-adj", "500"]));
    if f.has("oom-score-adj") {
        assert_eq!(ok(&o, "oom-score-adj"), "500\n");
    } else {
        refused(f, "oom-score-adj", &o);
    }
    let o = run(&s, f, &["-t"], &sh("tty", &[]));
    if f.has("terminal") {
        assert!(ok(&o, "terminal").starts_with("/dev/pts/"), "{}", stdout(&o));
    } else {
        refused(f, "terminal", &o);
    }
}

fn enter(f: &Flavor) {
    let s = Skiff::new();
    let secs = unique_sleep();
    let mut child = s.spawn(&args(&s, f, &[], &["--set-env", "SEEN=by-enter", "--exec", "/bin/sleep", "--", &secs]));
    s.wait_running(1);
    let uuid = s.only_pod();
    s.wait_for("the app", || s.status_json(&uuid)["pid"].as_i64().is_some());
    let o = s.output(&["enter", &uuid, "--", "/bin/sh", "-c", "echo $SEEN; exit 6"]);
    if f.has("enter") {
        assert_eq!((o.status.code(), stdout(&o)), (Some(6), "by-enter\n".to_string()), "{}: {}", f.id, stderr(&o));
        if f.has("net-none") {
            // enter joins the pod's own network namespace too.
            let secs = unique_sleep();
            let mut none = s.spawn(&args(&s, f, &["--net", "none"], &["--exec", "/bin/sleep", "--", &secs]));
            s.wait_for("the second pod", || {
                s.list_json().as_array().is_some_and(|a| a.iter().filter(|p| p["state"] == "running").count() == 2)
            });
            let list = s.list_json();
            let other = list.as_array().unwrap().iter().find(|p| p["uuid"] != uuid.as_str()).unwrap();
            let other = other["uuid"].as_str().unwrap().to_string();
            s.wait_for("its app", || s.dir.join("pods/run").join(&other).join("ready").is_file());
            let out = s.ok(&["enter", &other, "--", "/bin/sh", "-c", "grep -c : /proc/net/dev"]);
            assert_eq!(out, "1\n", "{}: enter sees only the pod's lo", f.id);
            s.ok(&["stop", "--force", &other]);
            none.wait().unwrap();
        }
    } else {
        refused(f, "enter", &o);
    }
    s.ok(&["stop", "--force", &uuid]);
    assert_eq!(child.wait().unwrap().code(), Some(137), "{}", f.id);
    assert_eq!(processes_with(&secs), Vec::<String>::new(), "{}: the app outlived the pod", f.id);
}

/// After SIGKILL of the flavor, the pod reads as exited and gc leaves no pod
/// and no mount; with its own PID namespace, no process of the pod outlives
/// the flavor either (flavors without one may leave the app running: the
/// test ends it, by its unique command line).
fn sigkilled_flavor(f: &Flavor) {
    let s = Skiff::new();
    let secs = unique_sleep();
    let mut child = s.spawn(&args(&s, f, &[], &["--exec", "/bin/sleep", "--", &secs]));
    s.wait_running(1);
    let uuid = s.only_pod();
    s.wait_for("the ready marker", || s.dir.join("pods/run").join(&uuid).join("ready").is_file());
    child.kill().unwrap();
    child.wait().unwrap();
    if f.has("pid-namespace") {
        s.wait_for("the pod's processes to end", || processes_with(&secs).is_empty());
    } else {
        for pid in processes_with(&secs) {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
    }
    s.wait_for("the pod to read as exited", || s.status_json(&uuid)["state"] == "exited");
    s.ok(&["gc", "--grace-period", "0"]);
    assert_eq!(s.list_json().as_array().map(Vec::len), Some(0), "{}", f.id);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(s.dir.to_str().unwrap()), "{}: a mount is left", f.id);
}

macro_rules! conformance {
    ($($flavor:ident => $id:expr;)*) => {$(
        mod $flavor {
            fn f() -> super::Flavor {
                super::Flavor::new(&$id)
            }
            #[test]
            fn exit_codes() {
                super::exit_codes(&f())
            }
            #[test]
            fn argv_env_workdir_user_stdin() {
                super::process(&f())
            }
            #[test]
            fn states_status_rm_gc() {
                super::states(&f())
            }
            #[test]
            fn stop() {
                super::stop(&f())
            }
            #[test]
            fn sigterm_to_the_flavor_escalates_after_the_stop_timeout() {
                super::sigterm_escalates(&f())
            }
            #[test]
            fn declared_features_work_and_others_are_refused() {
                super::features(&f())
            }
            #[test]
            fn sigkill_of_the_flavor_ends_the_pod() {
                super::sigkilled_flavor(&f())
            }
            #[test]
            fn enter_where_declared() {
                super::enter(&f())
            }
        }
    )*};
}

conformance! {
    ns => "ns";
    fly => "fly";
    nspawn => "nspawn";
    third_party_sh => super::script_flavor();
}
