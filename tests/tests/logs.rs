//! `skiff logs`: every app's stdout and stderr kept in the pod directory
//! (and still passed to the caller), rotated at a cap, followed live.

use std::io::{BufRead, BufReader};

use skiff_tests::{stderr, Skiff};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn output_reaches_the_caller_and_the_log_stream_by_stream() {
    let s = Skiff::new();
    let script = "echo one; echo two >&2; echo three; printf 'no newline'";
    let o = s.output(&["run", "--name", "job", &s.image, "--exec", "/bin/sh", "--", "-c", script]);
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("one\nthree\nno newline", "two\n"), "the caller's");
    let logs = s.output(&["logs", "job"]);
    assert_eq!((stdout(&logs).as_str(), stderr(&logs).as_str()), ("one\nthree\nno newline", "two\n"));
    // Two pipes: the order across streams is the order they were read in.
    s.ok(&["run", "--name", "lines", &s.image, "--exec", "/bin/sh", "--", "-c", "echo 1; echo 2; echo 3"]);
    assert_eq!(s.ok(&["logs", "--tail", "2", "lines"]), "2\n3\n", "the last two records");
    let stamped = s.ok(&["logs", "--timestamps", "job"]);
    let first = stamped.lines().next().unwrap();
    let (time, text) = first.split_once(' ').unwrap();
    assert!(time.ends_with('Z') && time.contains('T') && text == "one", "{stamped}");
    // The record format on disk is CRI's.
    let job = s.status_json("job")["uuid"].as_str().unwrap().to_string();
    let log = std::fs::read_to_string(s.dir.join("pods/run").join(job).join("apps/busybox/log")).unwrap();
    assert!(log.lines().any(|l| l.ends_with(" stderr F two")), "{log}");
    assert!(log.ends_with(" stdout P no newline\n"), "{log}");
}

#[test]
fn follow_shows_a_running_app_and_ends_with_the_pod() {
    let s = Skiff::new();
    let script = "i=0; while [ $i -lt 15 ]; do i=$((i+1)); echo line $i; sleep 0.1; done";
    let mut pod = s.spawn(&["run", "--name", "ticker", &s.image, "--exec", "/bin/sh", "--", "-c", script]);
    s.wait_running(1);
    let mut follow = s.spawn(&["logs", "--follow", "ticker"]);
    let lines: Vec<String> = BufReader::new(follow.stdout.take().unwrap()).lines().map_while(Result::ok).collect();
    assert_eq!(follow.wait().unwrap().code(), Some(0), "follow ends when the pod has exited");
    let want: Vec<String> = (1..=15).map(|i| format!("line {i}")).collect();
    assert_eq!(lines, want);
    assert_eq!(pod.wait().unwrap().code(), Some(0));
}

#[test]
fn rotation_keeps_the_cap() {
    let s = Skiff::new();
    let script = "i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo \"line $i of the rotation test\"; done";
    #[rustfmt::skip]
    let o = s.output(&[
        "run", "--log-max-size", "2K", "--log-max-files", "3",
        &s.image, "--exec", "/bin/sh", "--", "-c", script,
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o).lines().count(), 400, "the caller gets everything");
    let dir = s.dir.join("pods/run").join(s.only_pod()).join("apps/busybox");
    for f in ["log", "log.1", "log.2"] {
        let len = std::fs::metadata(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}")).len();
        assert!(len <= 2048, "{f} is {len} bytes");
    }
    assert!(!dir.join("log.3").exists(), "three files at most");
    let kept = s.ok(&["logs", &s.only_pod()]);
    assert!(kept.ends_with("line 400 of the rotation test\n"), "the newest are kept");
    assert!(!kept.starts_with("line 1 of"), "the oldest went");
    let n: usize = kept.lines().next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(kept.lines().count(), 400 - n + 1, "no gap in what is kept");
}

#[test]
fn without_a_log_the_apps_write_to_the_caller_directly() {
    let s = Skiff::new();
    let o = s.output(&["run", "--log-driver", "none", "--name", "direct", &s.image, "--exec", "/bin/echo", "--", "hi"]);
    assert_eq!(stdout(&o), "hi\n");
    let o = s.output(&["logs", "direct"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("keeps no log"), "{}", stderr(&o));
    // Flavors that cannot keep one default to none, and refuse file.
    let o = s.output(&["run", "--stage1", "nspawn", "--log-driver", "file", &s.image, "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("logs"), "{}", stderr(&o));
    let o = s.output(&["run", "-t", "--log-driver", "file", &s.image, "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("-i/-t"), "{}", stderr(&o));
}

#[test]
fn a_caller_that_does_not_read_blocks_the_app_not_the_pod() {
    let s = Skiff::new();
    let mut pod = s.spawn(&["run", "--name", "chatty", &s.image, "--exec", "/usr/bin/yes"]);
    s.wait_running(1);
    // Far more than any pipe holds, none of it read.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let _ = std::process::Command::new("kill").arg("-TERM").arg(pod.id().to_string()).status();
    // The supervisor still handles signals and reports: the app got the
    // SIGTERM and its exit is recorded while the caller has read nothing.
    s.wait_for("the app's exit to be recorded", || s.status_json("chatty")["apps"][0]["exit_code"] == 143);
    let mut out = pod.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()).unwrap());
    assert_eq!(pod.wait().unwrap().code(), Some(143));
    assert!(reader.join().unwrap() > 65536, "what was written still reaches the caller");
}

#[test]
fn log_path_puts_an_apps_log_where_asked_rotated_beside_it() {
    let s = Skiff::new();
    let dir = s.tmp().join("kubelet-logs");
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("0.log");
    let script = "for i in $(seq 1 300); do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxx; done";
    #[rustfmt::skip]
    let o = s.output(&[
        "run", "--name", "kept", "--label", "tier=batch", "--annotation", "note=a=b", "--log-max-size", "4K",
        &s.image, "--log-path", path.to_str().unwrap(), "--exec", "/bin/sh", "--", "-c", script,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let current = std::fs::read_to_string(&path).expect("the log at --log-path");
    assert!(current.lines().all(|l| l.contains(" stdout F line-")), "CRI format: {current}");
    assert!(dir.join("0.log.1").is_file(), "rotated to PATH.1");
    let logs = s.output(&["logs", "--tail", "1", "kept"]);
    assert_eq!(stdout(&logs), "line-300-xxxxxxxxxxxxxxxxxxxxxxxx\n", "skiff logs reads it there");
    let status = s.status_json("kept");
    assert_eq!(
        (status["labels"]["tier"].as_str(), status["annotations"]["note"].as_str()),
        (Some("batch"), Some("a=b"))
    );
    for (bad, want) in [
        ("relative.log", "--log-path relative.log: not an absolute path"),
        (
            "/nonexistent-dir/x.log",
            "--log-path /nonexistent-dir/x.log: not an absolute path of a file in an existing directory",
        ),
    ] {
        let o = s.output(&["run", &s.image, "--log-path", bad, "--exec", "/bin/true"]);
        assert_eq!(o.status.code(), Some(125));
        assert!(stderr(&o).contains(want), "{}", stderr(&o));
    }
    let o = s.output(&[
        "run",
        "--log-driver",
        "none",
        &s.image,
        "--log-path",
        path.to_str().unwrap(),
        "--exec",
        "/bin/true",
    ]);
    assert!(stderr(&o).contains("--log-path needs the log driver file"), "{}", stderr(&o));
    let o = s.output(&["run", "--label", "novalue", &s.image, "--exec", "/bin/true"]);
    assert!(stderr(&o).contains("\"novalue\" is not KEY=VALUE"), "{}", stderr(&o));
}
