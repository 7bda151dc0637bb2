//! Default confinement and its overrides, observed from inside the pod.

use skiff_tests::{stderr, Skiff};

/// The 14 default capabilities as /proc/self/status prints them.
const DEFAULT_CAPS: &str = "00000000a80425fb";

fn status(s: &Skiff, opts: &[&str], pod_opts: &[&str]) -> std::collections::HashMap<String, String> {
    let mut args = vec!["run"];
    args.extend_from_slice(pod_opts);
    args.push(&s.image);
    args.extend_from_slice(opts);
    args.extend(["--exec", "/bin/cat", "--", "/proc/self/status"]);
    let out = s.ok(&args);
    out.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_string(), v.trim().to_string())).collect()
}

#[test]
fn defaults_capabilities_no_new_privs_and_seccomp() {
    let s = Skiff::new();
    let st = status(&s, &[], &[]);
    for k in ["CapInh", "CapPrm", "CapEff", "CapBnd"] {
        assert_eq!(st[k], DEFAULT_CAPS, "{k}");
    }
    assert_eq!(st["CapAmb"], "0000000000000000");
    assert_eq!(st["NoNewPrivs"], "1");
    assert_eq!(st["Seccomp"], "2");
    let out = s.ok_sh(
        &s.image,
        "unshare -U true 2>&1; mount -t tmpfs x /mnt 2>&1; mknod /tmp/sda b 8 0 2>&1; mkfifo /tmp/f && echo fifo-ok",
    );
    assert!(out.contains("unshare(0x10000000): Operation not permitted"), "{out}");
    assert!(out.contains("mount: permission denied"), "{out}");
    assert!(out.contains("mknod: /tmp/sda: Operation not permitted"), "{out}");
    assert!(out.ends_with("fifo-ok\n"), "{out}");
}

#[test]
fn a_non_root_app_has_no_effective_capabilities() {
    let s = Skiff::new();
    let st = status(&s, &["--user", "1000"], &[]);
    assert_eq!(st["CapEff"], "0000000000000000");
    assert_eq!(st["CapPrm"], "0000000000000000");
    assert_eq!(st["CapBnd"], DEFAULT_CAPS);
}

#[test]
fn capabilities_can_be_retained_or_removed() {
    let s = Skiff::new();
    let st = status(&s, &["--caps-remove=NET_RAW,mknod"], &[]);
    assert_eq!(st["CapBnd"], "00000000a00405fb", "bits 13 and 27 gone");
    let st = status(&s, &["--caps-retain=CAP_SYS_ADMIN"], &[]);
    assert_eq!(st["CapEff"], "0000000000200000");
    // With CAP_SYS_ADMIN the default profile lets mount through.
    let out = s.ok(&[
        "run",
        &s.image,
        "--caps-retain=sys_admin",
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "mount -t tmpfs x /mnt && echo mounted",
    ]);
    assert_eq!(out, "mounted\n");
}

#[test]
fn seccomp_and_no_new_privs_can_be_changed() {
    let s = Skiff::new();
    assert_eq!(status(&s, &["--no-new-privileges=false"], &[])["NoNewPrivs"], "0");
    assert_eq!(status(&s, &[], &["--insecure-options=seccomp"])["Seccomp"], "0");
    assert_eq!(status(&s, &["--seccomp", "unconfined"], &[])["Seccomp"], "0", "one app without a filter");
    assert_eq!(status(&s, &[], &[])["Seccomp"], "2", "the others keep theirs");
    let out = s.ok(&[
        "run",
        &s.image,
        "--seccomp",
        "mode=remove,errno=EXFULL,mkdir,mkdirat",
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "mkdir /tmp/x 2>&1; true",
    ]);
    assert!(out.contains("Exchange full") || out.contains("Invalid exchange"), "{out}");
}

#[test]
fn sensitive_proc_and_sys_paths_are_masked_or_read_only() {
    let s = Skiff::new();
    let script = "cat /proc/keys | wc -c; ls /sys/firmware | wc -l; echo x 2>&1 > /proc/sys/kernel/hostname; \
                  grep -c ' /proc/keys ' /proc/self/mountinfo";
    let out = s.ok_sh(&s.image, script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "/proc/keys is empty");
    assert_eq!(lines[1], "0", "/sys/firmware is empty");
    assert!(out.contains("Read-only file system"), "{out}");
    let out = s.ok(&[
        "run",
        "--insecure-options=paths",
        &s.image,
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "grep -c ' /proc/keys ' /proc/self/mountinfo || true",
    ]);
    assert_eq!(out.trim(), "0", "paths lifted: /proc/keys is not covered");
}

#[test]
fn a_readonly_rootfs_refuses_writes() {
    let s = Skiff::new();
    let out = s.ok(&[
        "run",
        &s.image,
        "--readonly-rootfs",
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "touch /x 2>&1; touch /dev/shm/ok && echo shm-ok",
    ]);
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("shm-ok"), "{out}");
}

#[test]
fn bad_security_options_are_refused() {
    let s = Skiff::new();
    for (args, needle) in [
        (vec!["run", &s.image, "--caps-retain=CAP_BOGUS"], "CAP_BOGUS"),
        (vec!["run", &s.image, "--caps-retain=chown", "--caps-remove=kill"], "cannot be combined"),
        (vec!["run", &s.image, "--seccomp", "mode=sometimes,read"], "mode"),
        (vec!["run", &s.image, "--seccomp", "mode=remove,not_a_syscall"], "not_a_syscall"),
        (vec!["run", "--insecure-options=everything", &s.image], "everything"),
        (vec!["run", "--insecure-options=seccomp", &s.image, "--seccomp", "mode=remove,read"], "contradict"),
    ] {
        let o = s.output(&args);
        assert_eq!(o.status.code(), Some(125), "{args:?}");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
}
