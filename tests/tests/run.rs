//! `skiff run`: exit codes, the app's spec, PID 1, isolation, stdio.

use std::io::Write;
use std::process::Stdio;

use skiff_tests::{stderr, Skiff};

fn code(o: &std::process::Output) -> i32 {
    o.status.code().expect("skiff exited normally")
}

#[test]
fn exit_codes_are_the_apps() {
    let s = Skiff::new();
    let o = s.run_sh("echo hi; exit 3");
    assert_eq!(code(&o), 3);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hi\n");
    assert_eq!(code(&s.run_sh("true")), 0);
    assert_eq!(code(&s.run_sh("kill -9 $$")), 137, "128 + SIGKILL");
    assert_eq!(code(&s.run_sh("kill -TERM $$")), 143, "128 + SIGTERM");
}

#[test]
fn missing_and_unexecutable_programs() {
    let s = Skiff::new();
    let o = s.output(&["run", &s.image, "--exec", "/no/such/tool"]);
    assert_eq!(code(&o), 127);
    assert!(stderr(&o).contains("/no/such/tool"), "message names the path");
    let o = s.output(&["run", &s.image, "--exec", "/etc/passwd"]);
    assert_eq!(code(&o), 126);
    assert!(stderr(&o).contains("/etc/passwd"));
    let o = s.output(&["run", &s.image, "--exec", "no-such-name"]);
    assert_eq!(code(&o), 127, "bare names are searched in PATH");
}

#[test]
fn skiff_errors_exit_125_with_one_line() {
    let s = Skiff::new();
    for args in [
        vec!["run", "oci:/nonexistent/layout"],
        vec!["run", "docker.io/busybox"],
        vec!["run", &s.image, "--bogus-option"],
        vec!["run", &s.image, "--user", "no-such-user"],
        vec!["status", "ffffffff"],
        vec!["--bogus-global"],
    ] {
        let o = s.output(&args);
        assert_eq!(code(&o), 125, "{args:?}");
        let err = stderr(&o);
        assert!(!err.trim().is_empty(), "{args:?} explains itself");
        assert!(o.stdout.is_empty(), "{args:?} prints nothing on stdout");
    }
}

#[test]
fn image_config_is_the_default_and_options_override_it() {
    let s = Skiff::new();
    let o = s.output(&["run", &s.image]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "default cmd\n", "image Cmd runs by default");
    let out = s.ok(&[
        "run",
        &s.image,
        "--exec",
        "/bin/sh",
        "--set-env",
        "FOO=bar baz",
        "--set-env",
        "FROM_IMAGE=overridden",
        "--working-dir",
        "/tmp/work",
        "--user",
        "1000:2000",
        "--",
        "-c",
        "echo \"$FOO|$FROM_IMAGE|$(pwd)|$(id -u):$(id -g)|$(id -G)|$HOME|$0\"",
        "arg0",
    ]);
    assert_eq!(out, "bar baz|overridden|/tmp/work|1000:2000|2000|/|arg0\n");
    let out = s.ok_sh(&s.image, "echo $FROM_IMAGE $PATH $HOME");
    assert_eq!(out, "yes /usr/sbin:/usr/bin:/sbin:/bin /root\n");
}

#[test]
fn pid1_is_skiffs_init_and_the_app_is_its_child() {
    let s = Skiff::new();
    let out = s.ok_sh(&s.image, "cat /proc/1/comm; echo $$; grep PPid /proc/self/status | tr -d '\\t'");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "skiff-init");
    // ps shows the command line, which is the init's own too.
    for flavor in ["ns", "nspawn"] {
        let out = s.ok(&["run", "--stage1", flavor, &s.image, "--exec", "/bin/ps", "--", "-o", "pid,args"]);
        let init = out.lines().find(|l| l.split_whitespace().next() == Some("1"));
        assert_eq!(init.map(|l| l.trim()), Some("1 skiff-init"), "{flavor}: {out}");
    }
    assert_eq!(lines[1], "2", "the app is the first process after init");
    // the grep runs in a subshell whose parent is the app (pid 2)
    assert_eq!(lines[2], "PPid:2");
    let out = s.ok_sh(&s.image, "grep PPid /proc/$$/status | tr -d '\\t'");
    assert_eq!(out, "PPid:1\n");
}

#[test]
fn init_reaps_orphans() {
    let s = Skiff::new();
    // The orphaned sleep is reparented to init; when it exits it must be
    // reaped, not left a zombie.
    let out = s.ok_sh(&s.image, "(sh -c 'sleep 0.2 &') ; sleep 0.6; ps -o stat,comm | grep -c '^Z' || true");
    assert_eq!(out.trim(), "0");
}

#[test]
fn hostname_defaults_to_the_uuid_and_can_be_set() {
    let s = Skiff::new();
    let out = s.ok(&["run", &s.image, "--exec", "/bin/hostname"]);
    let uuid = s.only_pod();
    assert_eq!(out.trim(), format!("skiff-{}", &uuid[..8]));
    let out =
        s.ok(&["run", "--hostname", "web-1", &s.image, "--exec", "/bin/sh", "--", "-c", "hostname; echo $HOSTNAME"]);
    assert_eq!(out, "web-1\nweb-1\n");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host.trim(), "web-1", "the host's hostname is untouched");
}

#[test]
fn stdin_is_the_callers() {
    let s = Skiff::new();
    let mut child =
        s.cmd(&["run", &s.image, "--exec", "/bin/cat"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"x\nfrom the host\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "x\nfrom the host\n");
}

#[test]
fn pod_has_minimal_dev_proc_and_readonly_sys() {
    let s = Skiff::new();
    let out = s.ok_sh(
        &s.image,
        "ls /dev | tr '\\n' ' '; touch /sys/x 2>/dev/null && echo sys-writable; ls /proc/1/ >/dev/null && echo proc-ok",
    );
    assert_eq!(out, "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero proc-ok\n");
}

#[test]
fn mounts_made_in_the_pod_stay_in_the_pod() {
    let s = Skiff::new();
    let mut child = s.spawn(&[
        "run",
        &s.image,
        "--caps-retain=sys_admin", // mounting needs it; the default set lacks it
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "mount -t tmpfs skiffmarker /mnt && touch /mnt/ready && exec sleep 60",
    ]);
    s.wait_for("the pod to mount its tmpfs", || {
        s.list_json()[0]["state"] == "running"
            && std::fs::read_to_string(format!("/proc/{}/mountinfo", pid_of_app(&s)))
                .is_ok_and(|m| m.contains("skiffmarker"))
    });
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!host.contains("skiffmarker"), "pod mount leaked to the host");
    // Only the pod's pinned network namespace (docs/networking.md) is
    // mounted in the store on the host.
    let store = s.dir.to_str().unwrap();
    let leaked: Vec<&str> = host.lines().filter(|l| l.contains(store) && !l.contains(" nsfs ")).collect();
    assert!(leaked.is_empty(), "pod root filesystem is mounted on the host: {leaked:?}");
    // SIGTERM to the supervisor is forwarded: sleep dies of it.
    let _ = std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
}

/// The app's process: the init's child (the app has a mount namespace of
/// its own).
fn pid_of_app(s: &Skiff) -> i32 {
    let init = s.list_json()[0]["uuid"].as_str().map(|u| s.status_json(u)["pid"].as_i64().unwrap_or(0)).unwrap_or(0);
    std::fs::read_to_string(format!("/proc/{init}/task/{init}/children"))
        .ok()
        .and_then(|c| c.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn writes_stay_in_the_pod_and_the_image_is_untouched() {
    let s = Skiff::new();
    s.ok_sh(&s.image, "echo changed > /etc/passwd; rm /bin/ls");
    let out = s.ok_sh(&s.image, "head -c 4 /etc/passwd; test -e /bin/ls && echo ls-here");
    assert_eq!(out, "rootls-here\n");
}

#[test]
fn debug_goes_to_stderr_only() {
    let s = Skiff::new();
    let o = s.output(&["--debug", "run", &s.image, "--exec", "/bin/echo", "--", "data"]);
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "data\n");
    let err = stderr(&o);
    assert!(err.contains("skiff: debug: layer sha256:"), "{err}");
    assert!(err.contains("stage1 ns: pod"), "{err}");
    let quiet = s.output(&["run", &s.image, "--exec", "/bin/true"]);
    assert!(quiet.stderr.is_empty(), "{}", String::from_utf8_lossy(&quiet.stderr));
}

#[test]
fn the_app_starts_with_default_signal_dispositions() {
    let s = Skiff::new();
    let out = s.ok_sh(&s.image, "grep -E '^Sig(Ign|Blk)' /proc/self/status | tr -d '\\t'");
    let mask = |name: &str| {
        let line = out.lines().find(|l| l.starts_with(name)).expect(name);
        u64::from_str_radix(&line[name.len() + 1..], 16).expect("hex mask")
    };
    assert_eq!(mask("SigBlk"), 0, "no signal is blocked: {out}");
    // SIGPIPE (13) must not be ignored, or `yes | head` never ends `yes`.
    assert_eq!(mask("SigIgn") & (1 << 12), 0, "SIGPIPE is ignored: {out}");
}

/// `skiff ARGS` started by a shell that ignores SIGINT, SIGQUIT and SIGHUP,
/// as a script's background job or `nohup` starts it.
fn with_signals_ignored(s: &Skiff, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new("/bin/sh");
    c.arg("-c").arg(r#"trap "" INT QUIT HUP; exec "$0" "$@""#).arg(skiff_tests::skiff::bin_dir().join("skiff"));
    c.arg("--dir").arg(&s.dir).args(args).stdin(std::process::Stdio::null());
    c
}

#[test]
fn apps_start_with_default_signals_whatever_the_caller_ignored() {
    let s = Skiff::new();
    // (grep itself: a shell in between sets dispositions of its own.)
    let show = ["/bin/grep", "--", "-E", "^Sig(Ign|Blk)", "/proc/self/status"];
    let want = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n";
    for flavor in ["ns", "fly", "nspawn"] {
        let o =
            with_signals_ignored(&s, &[&["run", "--rm", "--stage1", flavor, &s.image, "--exec"][..], &show].concat())
                .output()
                .unwrap();
        assert!(o.status.success(), "{flavor}: {}", stderr(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout), want, "{flavor}");
    }
    // A shell app's trap fires on the SIGINT skiff forwards to it.
    let script = "trap 'echo got INT; exit 7' INT; touch /tmp/up; while :; do sleep 0.1; done";
    let cmd = with_signals_ignored(&s, &["run", "--net", "none", &s.image, "--exec", "/bin/sh", "--", "-c", script]);
    let child = s.spawn_cmd(cmd);
    s.wait_running(1);
    let uuid = s.only_pod();
    s.wait_in_pod(&uuid, "/tmp/up");
    // enter's command starts the same way, from the same kind of caller.
    let enter = [&["enter", &uuid, "--"][..], &show[..1], &show[2..]].concat();
    let o = with_signals_ignored(&s, &enter).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), want, "enter: {}", stderr(&o));
    let _ = std::process::Command::new("kill").arg("-INT").arg(child.id().to_string()).status();
    let o = child.wait_with_output().unwrap();
    assert_eq!((o.status.code(), String::from_utf8_lossy(&o.stdout).as_ref()), (Some(7), "got INT\n"));
}

#[test]
fn a_closed_stdin_reaches_the_app_as_dev_null() {
    // skiff's binaries fill closed fds 0-2 with /dev/null before they open
    // anything, or the store's files would take those numbers (stderr is
    // closed too; the app's is its log pipe).
    let s = Skiff::new();
    for flavor in ["ns", "fly"] {
        let o = std::process::Command::new("sh")
            .args(["-c", "exec \"$0\" \"$@\" 0<&- 2>&-"])
            .arg(skiff_tests::skiff::bin_dir().join("skiff"))
            .arg("--dir")
            .arg(s.tmp().join("store"))
            .args(["run", "--stage1", flavor, &s.image, "--exec", "/bin/sh", "--", "-c"])
            .arg("readlink /proc/self/fd/0")
            .output()
            .expect("run sh");
        assert_eq!(code(&o), 0, "{flavor}: {}", stderr(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout), "/dev/null\n", "{flavor}");
    }
}

#[test]
fn run_help_documents_app_options_and_exit_codes() {
    let s = Skiff::new();
    let help = s.ok(&["run", "--help"]);
    for needle in [
        "--hostname",
        "unique ID prefix as `skiff image list` prints it",
        "--exec",
        "--set-env",
        "--working-dir",
        "--user",
        "--caps-retain",
        "--caps-remove",
        "--seccomp",
        "--no-new-privileges",
        "--readonly-rootfs",
        "--insecure-options",
        "128+N",
        "125",
        "126",
        "127",
        "host's",
    ] {
        assert!(help.contains(needle), "run --help lacks {needle}:\n{help}");
    }
}
