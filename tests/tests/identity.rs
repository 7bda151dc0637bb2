//! Who the app runs as, its environment, and the pod's /etc files.

use skiff_tests::fixture::busybox_spec;
use skiff_tests::oci::{write_layout, Layer};
use skiff_tests::rawtar::{dir, file, tar_of};
use skiff_tests::{stderr, Skiff};

/// The busybox image with accounts for a user `web` and its groups, an
/// image user of `web` when `as_web`, and its own /etc/hosts when asked.
fn accounts_image(s: &Skiff, name: &str, as_web: bool, hosts: bool) -> String {
    let mut entries = vec![
        dir("etc"),
        file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1000::/srv/web:/bin/sh\n"),
        file("etc/group", b"root:x:0:\nweb:x:1000:\nwheel:x:10:web,other\naudio:x:29:web\n"),
    ];
    if hosts {
        entries.push(file("etc/hosts", b"10.9.8.7 from-the-image\n"));
    }
    let mut spec = busybox_spec(vec![Layer::gz(tar_of(&entries))]);
    if as_web {
        spec.config["User"] = "web".into();
    }
    spec.config["Env"] = serde_json::json!(["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "FROM_IMAGE=yes", "A=image"]);
    let p = s.tmp().join(name);
    write_layout(&p, &spec);
    format!("oci:{}:latest", p.display())
}

const WHO: &str = "echo $(id -u) $(id -g) $(id -G) $HOME";

#[test]
fn users_and_groups_by_name() {
    let s = Skiff::new();
    let img = accounts_image(&s, "acc", false, false);
    let run = |opts: &[&str]| {
        let mut a = vec!["run", &img];
        a.extend_from_slice(opts);
        a.extend(["--exec", "/bin/sh", "--", "-c", WHO]);
        s.ok(&a)
    };
    assert_eq!(run(&["--user", "web"]), "1000 1000 1000 10 29 /srv/web\n");
    assert_eq!(run(&["--user", "web", "--group", "wheel"]), "1000 10 10 29 /srv/web\n");
    assert_eq!(run(&["--user", "web:audio"]), "1000 29 29 10 /srv/web\n");
    assert_eq!(run(&["--user", "4242:4343"]), "4242 4343 4343 /\n");
    assert_eq!(run(&[]), "0 0 0 /root\n");
    // The image's own User is a name too.
    let as_web = accounts_image(&s, "acc-web", true, false);
    assert_eq!(s.ok_sh(&as_web, WHO), "1000 1000 1000 10 29 /srv/web\n");
    for (opt, name) in [("--user", "nosuchuser"), ("--group", "nosuchgroup")] {
        let o = s.output(&["run", &img, opt, name, "--exec", "/bin/true"]);
        assert_eq!(o.status.code(), Some(125));
        assert!(stderr(&o).contains(name), "{}", stderr(&o));
    }
}

#[test]
fn environment_precedence() {
    let s = Skiff::new();
    let img = accounts_image(&s, "acc", false, false);
    let env_file = s.tmp().join("env");
    std::fs::write(&env_file, "# the file\nA=file\nB=file\n").unwrap();
    let out = s
        .cmd(&[
            "run",
            "--inherit-env",
            &img,
            "--set-env-file",
            env_file.to_str().unwrap(),
            "--set-env",
            "B=flag",
            "--exec",
            "/bin/sh",
            "--",
            "-c",
            "echo $A $B $FROM_IMAGE $CALLER ${TERM:-no-term}",
        ])
        .env("CALLER", "from-caller")
        .env("FROM_IMAGE", "caller-loses")
        .env_remove("TERM") // inherited otherwise; TERM without a terminal is the caller's business
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "file flag yes from-caller no-term\n");
    let out = s
        .cmd(&["run", &img, "--exec", "/bin/sh", "--", "-c", "echo ${CALLER:-not-inherited}"])
        .env("CALLER", "x")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "not-inherited\n");
    let o = s.output(&["run", &img, "--set-env-file", "/nonexistent/env", "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
}

#[test]
fn a_terminal_caller_gives_the_app_a_term() {
    let s = Skiff::new();
    let cmd = format!(
        "{} --dir {} run {} --exec /bin/sh -- -c 'echo term=$TERM'",
        skiff_tests::skiff::bin_dir().join("skiff").display(),
        s.dir.display(),
        s.image
    );
    let o = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .env("TERM", "vt220")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("term=vt220"), "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn etc_files() {
    let s = Skiff::new();
    let img = accounts_image(&s, "acc", false, false);
    // Without a network of its own the hostname is on the loopback lines
    // (tests/tests/network.rs has it on the pod's address).
    let out = s.ok(&[
        "run",
        "--net",
        "none",
        "--hostname",
        "web-7",
        &img,
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "cat /etc/hostname /etc/hosts; readlink /etc/mtab",
    ]);
    assert_eq!(
        out,
        "web-7\n127.0.0.1\tlocalhost web-7\n::1\tlocalhost ip6-localhost ip6-loopback web-7\n/proc/self/mounts\n"
    );
    let own = accounts_image(&s, "acc-hosts", false, true);
    assert_eq!(
        s.ok(&["run", "--net", "none", &own, "--exec", "/bin/cat", "--", "/etc/hosts"]),
        "10.9.8.7 from-the-image\n"
    );
    // resolv.conf: the host's servers by default, or what the options say.
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let want: String =
        host.lines().filter(|l| l.starts_with("nameserver")).map(|l| format!("{}\n", l.trim())).collect();
    let got = s.ok(&["run", &img, "--exec", "/bin/sh", "--", "-c", "grep ^nameserver /etc/resolv.conf || true"]);
    assert_eq!(got, want);
    let got = s.ok(&[
        "run",
        "--dns",
        "192.0.2.53",
        "--dns-search",
        "example.org",
        "--dns-opt",
        "ndots:3",
        &img,
        "--exec",
        "/bin/cat",
        "--",
        "/etc/resolv.conf",
    ]);
    assert_eq!(got, "nameserver 192.0.2.53\nsearch example.org\noptions ndots:3\n");
    let got = s.ok(&[
        "run",
        "--dns=none",
        &img,
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "test -e /etc/resolv.conf || echo kept-none",
    ]);
    assert_eq!(got, "kept-none\n");
    let o = s.output(&["run", "--dns", "not-an-ip", &img]);
    assert_eq!(o.status.code(), Some(125));
}

#[test]
fn group_add_gives_more_supplementary_groups() {
    let s = Skiff::new();
    for flavor in ["ns", "fly", "nspawn"] {
        #[rustfmt::skip]
        let out = s.ok(&[
            "run", "--rm", "--stage1", flavor, "--net", if flavor == "fly" { "host" } else { "none" },
            &s.image, "--user", "65534", "--group-add", "4000", "--group-add", "root", "--exec", "id", "--", "-G",
        ]);
        // (The kernel keeps the supplementary groups sorted.)
        let mut groups: Vec<u32> = out.split_whitespace().map(|g| g.parse().unwrap()).collect();
        assert_eq!(groups.remove(0), 65534, "{flavor}: the primary group first");
        groups.sort();
        assert_eq!(groups, [0, 4000], "{flavor}");
    }
    let o = s.output(&["run", "--rm", "--net", "none", &s.image, "--group-add", "nosuchgroup", "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(skiff_tests::stderr(&o).contains("nosuchgroup"), "{}", skiff_tests::stderr(&o));
}
