//! `--private-users`: pods whose root is an unprivileged range of host ids
//! (docs/user-namespaces.md). Each test gives skiff its own subuid and
//! subgid files (`subuid-file` in a config file), so the host's are never
//! touched.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use skiff_tests::{stderr, Skiff};

/// skiff's range when the files have none (stage0's DEFAULT_POOL).
const POOL_BASE: u32 = 0x7000_0000;

/// A config file whose subuid and subgid files are in the test's temp
/// directory (absent at first: skiff adds its default range); its path.
fn config(s: &Skiff, extra: &str) -> String {
    let cfg = s.tmp().join("config.toml");
    let t = s.tmp().display();
    std::fs::write(&cfg, format!("subuid-file = \"{t}/subuid\"\nsubgid-file = \"{t}/subgid\"\n{extra}")).unwrap();
    cfg.display().to_string()
}

/// `skiff --config CFG run --rm --private-users --net none IMAGE APP_ARGS…`.
fn run_in_userns(s: &Skiff, cfg: &str, app_args: &[&str]) -> std::process::Output {
    let mut args = vec!["--config", cfg, "run", "--rm", "--private-users", "--net", "none", &s.image];
    args.extend_from_slice(app_args);
    s.output(&args)
}

fn with_config<'a>(cfg: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--config", cfg];
    v.extend_from_slice(args);
    v
}

/// The pod's directory (in any state).
fn pod_dir(s: &Skiff, uuid: &str) -> PathBuf {
    ["run", "exited-garbage", "prepared"]
        .iter()
        .map(|d| s.dir.join("pods").join(d).join(uuid))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| panic!("pod {uuid} not found"))
}

fn uid_map_of_init(s: &Skiff, uuid: &str) -> String {
    let pid = s.status_json(uuid)["pid"].as_i64().expect("a running pod's pid");
    std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap().split_whitespace().collect::<Vec<_>>().join(" ")
}

fn userns_slots(s: &Skiff) -> Vec<String> {
    let dir = s.dir.join("pods/userns");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn layer_file(s: &Skiff, rel: &str) -> PathBuf {
    let layers = s.dir.join("layers/sha256");
    std::fs::read_dir(&layers)
        .unwrap()
        .flatten()
        .map(|e| e.path().join(rel))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no layer has {rel}"))
}

#[test]
fn the_pods_root_is_an_unprivileged_range_and_the_image_stays_as_it_was() {
    let s = Skiff::new();
    let cfg = config(&s, "");
    let script = "id -u; cat /proc/self/uid_map /proc/self/gid_map; echo changed >> /etc/passwd; \
                  touch /by-root; mkdir /home; touch /home/by-1000; chown 1000:1000 /home/by-1000; \
                  stat -c '%u %g' /bin/busybox /";
    let out = s.ok(&with_config(
        &cfg,
        &[
            "run",
            "--uuid-file-save",
            s.tmp().join("uuid").to_str().unwrap(),
            "--net",
            "none",
            "--private-users",
            &s.image,
            "--exec",
            "/bin/sh",
            "--",
            "-c",
            script,
        ],
    ));
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["0"], "{out}");
    let base = POOL_BASE.to_string();
    assert_eq!(lines[1], ["0", base.as_str(), "65536"], "{out}");
    assert_eq!(lines[2], ["0", base.as_str(), "65536"], "{out}");
    assert_eq!(lines[3], ["0", "0"], "the image's files are the pod root's: {out}");
    assert_eq!(lines[4], ["0", "0"], "so is its /: {out}");
    // skiff's range was added to the (absent) files.
    let want = format!("skiff:{POOL_BASE}:{}\n", 2048 * 65536);
    assert_eq!(std::fs::read_to_string(s.tmp().join("subuid")).unwrap(), want);
    assert_eq!(std::fs::read_to_string(s.tmp().join("subgid")).unwrap(), want);
    // What the pod wrote is the range's on the host, in its upper dir.
    let uuid = std::fs::read_to_string(s.tmp().join("uuid")).unwrap().trim().to_string();
    let upper = pod_dir(&s, &uuid).join("apps/busybox/upper");
    let owner = |p: &Path| {
        let md = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        (md.uid(), md.gid())
    };
    assert_eq!(owner(&upper.join("by-root")), (POOL_BASE, POOL_BASE));
    assert_eq!(owner(&upper.join("home/by-1000")), (POOL_BASE + 1000, POOL_BASE + 1000));
    assert_eq!(owner(&upper.join("etc/passwd")), (POOL_BASE, POOL_BASE), "copied up");
    // The shared layer on disk is untouched: no chown, no write.
    let layer = layer_file(&s, "etc/passwd");
    assert_eq!(owner(&layer), (0, 0));
    assert!(!std::fs::read_to_string(&layer).unwrap().contains("changed"));
}

#[test]
fn live_pods_get_disjoint_ranges_from_one_image_and_gc_frees_them() {
    let s = Skiff::new();
    let cfg = config(&s, "");
    let run = |name: &'static str| {
        s.spawn(&with_config(
            &cfg,
            &["run", "--name", name, "--private-users", "--net", "none", &s.image, "--exec", "/bin/sleep", "--", "60"],
        ))
    };
    let (mut a, mut b) = (run("pa"), run("pb"));
    // (Its init joins the user namespace once it has built the pod's root.)
    for pod in ["pa", "pb"] {
        s.ok(&["status", "--wait-ready=20s", pod]);
    }
    let (ma, mb) = (uid_map_of_init(&s, "pa"), uid_map_of_init(&s, "pb"));
    assert_ne!(ma, mb);
    let mut bases: Vec<u64> = [&ma, &mb].iter().map(|m| m.split(' ').nth(1).unwrap().parse().unwrap()).collect();
    bases.sort();
    assert_eq!(bases, [u64::from(POOL_BASE), u64::from(POOL_BASE) + 65536], "{ma} / {mb}");
    // enter joins the pod's user namespace, as its root.
    let o = s.ok(&["enter", "pa", "--", "/bin/sh", "-c", "id -u; cat /proc/self/uid_map"]);
    assert_eq!(o.split_whitespace().collect::<Vec<_>>().join(" "), format!("0 {ma}"));
    s.ok(&["stop", "pa", "pb"]);
    a.wait().unwrap();
    b.wait().unwrap();
    assert_eq!(userns_slots(&s), ["0", "1"], "exited pods keep their ranges (their files are the range's)");
    s.ok(&["gc", "--grace-period", "0"]);
    assert!(userns_slots(&s).is_empty(), "{:?}", userns_slots(&s));
    // The range is free for the next pod.
    let o = s.ok(&with_config(
        &cfg,
        &[
            "run",
            "--rm",
            "--private-users",
            "--net",
            "none",
            &s.image,
            "--exec",
            "/bin/cat",
            "--",
            "/proc/self/uid_map",
        ],
    ));
    assert_eq!(o.split_whitespace().nth(1), Some(POOL_BASE.to_string().as_str()));
    assert!(userns_slots(&s).is_empty(), "--rm frees it too");
}

#[test]
fn host_paths_are_seen_as_the_pods_range_unless_idmapped() {
    let s = Skiff::new();
    let cfg = config(&s, "");
    let host = s.tmp().join("host");
    std::fs::create_dir(&host).unwrap();
    std::fs::set_permissions(&host, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    std::fs::write(host.join("secret"), "s3cret\n").unwrap();
    std::fs::set_permissions(host.join("secret"), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let h = host.display().to_string();
    let run = |opts: &str, script: &str| {
        run_in_userns(&s, &cfg, &["--volume", &format!("{h}:/h{opts}"), "--exec", "/bin/sh", "--", "-c", script])
    };
    // The host's root is nobody in the pod: its root-only file stays closed.
    let o = run("", "cat /h/secret");
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    let o = run("", "touch /h/plain");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::metadata(host.join("plain")).unwrap().uid(), POOL_BASE);
    // idmap: the pod's root acts as the host's on it.
    let o = run(":idmap", "cat /h/secret && touch /h/mapped && stat -c %u /h/secret");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "s3cret\n0\n");
    assert_eq!(std::fs::metadata(host.join("mapped")).unwrap().uid(), 0);
    // A new pod volume is the pod root's (or as asked, in the pod's ids).
    let stat =
        ["--volume", "v:/v", "--volume", "w:/w:uid=1000", "--exec", "/bin/stat", "--", "-c", "%u %g", "/v", "/w"];
    let o = run_in_userns(&s, &cfg, &stat);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "0 0\n1000 0\n", "{}", stderr(&o));
}

#[test]
fn the_pods_root_binds_low_ports_on_the_default_network_and_without_one() {
    let s = Skiff::new();
    let cfg = config(&s, "");
    let script = "nc -l -p 80 -w 1 </dev/null & sleep 0.3; netstat -ltn | grep -c ':80 '; ip -4 addr | grep -c 'inet '";
    for (net, addresses) in [("none", "1"), ("default", "2")] {
        let o = s.output(&with_config(
            &cfg,
            &["run", "--rm", "--private-users", "--net", net, &s.image, "--exec", "/bin/sh", "--", "-c", script],
        ));
        assert_eq!(String::from_utf8_lossy(&o.stdout), format!("1\n{addresses}\n"), "--net {net}: {}", stderr(&o));
    }
}

#[test]
fn the_config_file_makes_it_the_default_and_the_flag_turns_it_off() {
    let s = Skiff::new();
    let cfg = config(&s, "private-users = \"auto\"\n");
    let map = |extra: &[&str]| {
        let mut args = vec!["run", "--rm", "--net", "none"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&s.image, "--exec", "/bin/cat", "--", "/proc/self/uid_map"]);
        s.ok(&with_config(&cfg, &args)).split_whitespace().collect::<Vec<_>>().join(" ")
    };
    assert_eq!(map(&[]), format!("0 {POOL_BASE} 65536"));
    assert_eq!(map(&["--private-users=no"]), "0 0 4294967295");
    assert_eq!(map(&["--private-users=300000:1000"]), "0 300000 1000", "an explicit range");
    // A pod manifest file says it for its pod.
    let file = s.tmp().join("pod.toml");
    let toml = format!(
        "private-users = \"no\"\n[[app]]\nimage = \"{}\"\nexec = \"/bin/cat\"\nargs = [\"/proc/self/uid_map\"]\n",
        s.image
    );
    std::fs::write(&file, toml).unwrap();
    let o = s.ok(&with_config(&cfg, &["run", "--rm", "--net", "none", "--pod-manifest", file.to_str().unwrap()]));
    assert_eq!(o.split_whitespace().collect::<Vec<_>>().join(" "), "0 0 4294967295");
}

#[test]
fn what_cannot_be_done_is_refused_clearly_and_leaves_nothing() {
    let s = Skiff::new();
    let cfg = config(&s, "");
    let fail = |args: &[&str], needle: &str| {
        let o = s.output(&with_config(&cfg, args));
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", stderr(&o));
        // (A value the option's parser refuses gets clap's hint below.)
        let e = stderr(&o);
        assert!(e.contains(needle), "{args:?}: {e}");
    };
    fail(&["run", "--private-users=0:65536", &s.image], "--private-users");
    fail(&["run", "--private-users=many", &s.image], "--private-users \"many\"");
    fail(&["run", "--stage1", "fly", "--private-users", &s.image], "user-namespaces");
    let tmp = s.tmp().display().to_string();
    fail(&["run", "--net", "none", &s.image, "--volume", &format!("{tmp}:/h:idmap")], "--private-users");
    // /proc cannot be idmapped: the mount is named, the pod ends, gc cleans.
    fail(
        &[
            "run",
            "--private-users",
            "--net",
            "none",
            &s.image,
            "--volume",
            "/proc/sys/kernel:/k:idmap",
            "--exec",
            "/bin/true",
        ],
        "cannot mount /proc/sys/kernel idmapped",
    );
    s.ok(&["gc", "--grace-period", "0"]);
    assert_eq!(s.list_json(), serde_json::json!([]));
    assert!(userns_slots(&s).is_empty());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(s.dir.to_str().unwrap()), "{mounts}");
}

#[test]
fn a_pod_of_two_apps_keeps_its_limits_users_and_logs() {
    let s = Skiff::new();
    let cfg = config(&s, "");
    #[rustfmt::skip]
    let o = s.output(&with_config(&cfg, &[
        "run", "--name", "pair", "--private-users", "--net", "none",
        &s.image, "--app-name", "a", "--memory", "64M", "--exec", "/bin/sh", "--", "-c", "cat /proc/self/cgroup | grep -c /skiff/; id -u",
        "---", &s.image, "--app-name", "b", "--user", "65534", "--exec", "/bin/sh", "--", "-c", "id -u; touch /tmp/x && stat -c %u /tmp/x",
    ]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let status = s.status_json("pair");
    let uuid = status["uuid"].as_str().unwrap().to_string();
    assert_eq!(s.ok(&["logs", "pair", "--app", "b"]), "65534\n65534\n");
    let a = s.ok(&["logs", "pair", "--app", "a"]);
    assert!(a.ends_with("\n0\n") && a != "0\n0\n", "in its own cgroups: {a}");
    let limit = std::fs::read_to_string(format!("/sys/fs/cgroup/memory/skiff/{uuid}/a/memory.limit_in_bytes"));
    assert!(limit.is_err(), "removed with the pod");
    let upper = pod_dir(&s, &uuid).join("apps/b/upper/tmp/x");
    assert_eq!(std::fs::metadata(upper).unwrap().uid(), POOL_BASE + 65534);
}

#[test]
fn the_nspawn_flavor_runs_them_on_no_network() {
    let s = Skiff::new();
    let cfg = config(&s, "");
    let script = "id -u; cat /proc/self/uid_map; touch /by-root; stat -c '%u %g' /bin/busybox";
    #[rustfmt::skip]
    let o = s.output(&with_config(&cfg, &[
        "run", "--stage1", "nspawn", "--net", "none", "--private-users", "--uuid-file-save", s.tmp().join("u").to_str().unwrap(),
        &s.image, "--exec", "/bin/sh", "--", "-c", script,
    ]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(out, ["0".to_string(), format!("0 {POOL_BASE} 65536"), "0 0".to_string()]);
    let uuid = std::fs::read_to_string(s.tmp().join("u")).unwrap().trim().to_string();
    let md = std::fs::metadata(pod_dir(&s, &uuid).join("apps/busybox/upper/by-root")).unwrap();
    assert_eq!((md.uid(), md.gid()), (POOL_BASE, POOL_BASE));
    let o = s
        .output(&with_config(&cfg, &["run", "--stage1", "nspawn", "--private-users", &s.image, "--exec", "/bin/true"]));
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("only with --net none"), "{}", stderr(&o));
}

#[test]
fn the_pod_dies_with_its_supervisor_even_as_the_root_of_its_namespace() {
    let s = Skiff::new();
    let cfg = config(&s, "");
    // A sleep no other test runs, to look for.
    let secs = format!("{}", 3000 + std::process::id() % 1000);
    let mut pod = s.spawn(&with_config(
        &cfg,
        &["run", "--name", "orphan", "--private-users", "--net", "none", &s.image, "--exec", "/bin/sleep", "--", &secs],
    ));
    s.ok(&["status", "--wait-ready=20s", "orphan"]);
    let sleeping = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == format!("/bin/sleep\0{secs}\0").as_bytes())
            })
            .count()
    };
    assert_eq!(sleeping(), 1);
    // SIGKILL to the supervisor: the init's death signal must still be armed
    // after it became the namespace's root (a change of credentials disarms
    // it).
    pod.kill().unwrap();
    pod.wait().unwrap();
    s.wait_for("the app to die with the pod", || sleeping() == 0);
}
