//! Choosing a flavor: `--stage1`, the config file, the pod manifest file;
//! flavors that are missing or speak another ABI are refused clearly; a
//! pod keeps its flavor.

use skiff_tests::{stderr, Skiff};

fn write(s: &Skiff, name: &str, text: &str) -> String {
    let p = s.tmp().join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn the_config_file_chooses_the_default_flavor() {
    let s = Skiff::new();
    let config = write(&s, "config.toml", "stage1 = \"fly\"\n");
    let probe = ["--exec", "/bin/sh", "--", "-c", "ls /proc | grep -c '^[0-9]'"];
    let mut a = vec!["--config", config.as_str(), "run", s.image.as_str()];
    a.extend(probe);
    let out = s.ok(&a);
    let host_procs: u32 = out.trim().parse().unwrap();
    assert!(host_procs > 10, "fly sees the host's processes: {out}");
    let m: serde_json::Value = serde_json::from_str(&s.ok(&["cat-manifest", &s.only_pod()])).unwrap();
    assert_eq!(m["flavor"], "fly");
    assert_eq!(m["apps"][0]["isolation"]["capabilities"], serde_json::Value::Null);
    // --stage1 wins over the config file.
    s.ok(&["gc", "--grace-period", "0"]);
    let mut a = vec!["--config", config.as_str(), "run", "--stage1", "ns", s.image.as_str()];
    a.extend(["--exec", "/bin/true"]);
    s.ok(&a);
    let m: serde_json::Value = serde_json::from_str(&s.ok(&["cat-manifest", &s.only_pod()])).unwrap();
    assert_eq!(m["flavor"], "ns");
    let bad = write(&s, "bad.toml", "stage1 = \"fly\"\nstgae2 = 1\n");
    let o = s.output(&["--config", &bad, "list"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains(&format!("{bad}:2:1:")) && stderr(&o).contains("stgae2"), "{}", stderr(&o));
}

#[test]
fn a_pod_manifest_file_names_its_flavor() {
    let s = Skiff::new();
    let file =
        write(&s, "pod.toml", &format!("stage1 = \"fly\"\n[[app]]\nimage = \"{}\"\nexec = \"/bin/true\"\n", s.image));
    s.ok(&["run", "--pod-manifest", &file]);
    let m: serde_json::Value = serde_json::from_str(&s.ok(&["cat-manifest", &s.only_pod()])).unwrap();
    assert_eq!(m["flavor"], "fly");
}

#[test]
fn missing_and_foreign_flavors_are_refused() {
    let s = Skiff::new();
    let o = s.output(&["run", "--stage1", "nope", &s.image, "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("\"nope\" is not installed"), "{}", stderr(&o));
    let old = write(&s, "old-flavor", "#!/bin/sh\necho '{\"name\":\"old\",\"abi_version\":1,\"features\":[]}'\n");
    std::fs::set_permissions(&old, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let o = s.output(&["run", "--stage1", &old, &s.image, "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("ABI 1"), "{}", stderr(&o));
    let o = s.output(&["run", "--stage1", "Not/Valid", &s.image, "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert_eq!(s.list_json().as_array().map(Vec::len), Some(0), "nothing created");
}

#[test]
fn a_prepared_pod_runs_with_its_own_flavor() {
    let s = Skiff::new();
    let uuid = s.ok(&["prepare", "-q", "--stage1", "fly", &s.image, "--exec", "/bin/sh", "--", "-c", "exit 9"]);
    let config = write(&s, "config.toml", "stage1 = \"ns\"\n");
    let o = s.output(&["--config", &config, "run-prepared", uuid.trim()]);
    assert_eq!(o.status.code(), Some(9));
    let uuid = s.ok(&["prepare", "-q", "--stage1", "fly", &s.image, "--exec", "/bin/true"]);
    let o = s.output(&["run-prepared", "-t", uuid.trim()]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("does not support terminal"), "{}", stderr(&o));
    assert_eq!(s.status_json(uuid.trim())["state"], "prepared", "still prepared");
}

#[test]
fn nspawn_without_systemd_nspawn_names_the_package() {
    let s = Skiff::new();
    let o = s
        .cmd(&["run", "--stage1", "nspawn", &s.image, "--exec", "/bin/true"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("systemd-container"), "{}", stderr(&o));
    s.ok(&["gc", "--grace-period", "0"]);
    assert_eq!(s.list_json().as_array().map(Vec::len), Some(0));
}

/// What reaches the caller's stderr is the app's, not systemd-nspawn's own
/// chatter (on this machine kind, whose /run is on disk, it complained at
/// every pod's end), and nspawn leaves nothing under the host's /run.
#[test]
fn an_nspawn_pods_stderr_is_the_apps_own() {
    let s = Skiff::new();
    let o = s.output(&[
        "run",
        "--rm",
        "--stage1",
        "nspawn",
        "--net",
        "none",
        &s.image,
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "echo out; echo err >&2",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!((String::from_utf8_lossy(&o.stdout).as_ref(), stderr(&o).as_str()), ("out\n", "err\n"));
    let left = std::fs::read_dir("/run/systemd/nspawn/propagate")
        .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("skiff-")).count());
    assert_eq!(left.unwrap_or(0), 0, "no propagate directory of a skiff pod is left");
}

/// skiff's flavors mount an app's root with overlayfs's `volatile`
/// (docs/pod-store.md): its writes reach the upper directory, unsynced.
#[test]
fn the_built_in_flavors_mount_app_roots_volatile() {
    let s = Skiff::new();
    for flavor in ["ns", "fly", "nspawn"] {
        let script = "grep ' overlay ' /proc/self/mountinfo | grep -c volatile; echo kept > /written";
        let net: &[&str] = if flavor == "fly" { &[] } else { &["--net", "none"] };
        let mut args = vec!["run", "--stage1", flavor];
        args.extend(net);
        args.extend([s.image.as_str(), "--exec", "/bin/sh", "--", "-c", script]);
        let out = s.ok(&args);
        assert_ne!(out.trim(), "0", "{flavor}: {out}");
        let uuid = s.only_pod();
        let apps = s.dir.join("pods/run").join(&uuid).join("apps");
        let app = std::fs::read_dir(&apps).unwrap().next().unwrap().unwrap().path();
        assert_eq!(std::fs::read_to_string(app.join("upper/written")).unwrap(), "kept\n", "{flavor}");
        s.ok(&["rm", &uuid]);
    }
}

/// The busybox image with a layer on top holding `entries`.
fn image_with(s: &Skiff, name: &str, entries: &[skiff_tests::rawtar::Entry<'_>]) -> String {
    use skiff_tests::oci::{write_layout, Layer};
    let spec = skiff_tests::fixture::busybox_spec(vec![Layer::gz(skiff_tests::rawtar::tar_of(entries))]);
    let p = s.tmp().join(name);
    write_layout(&p, &spec);
    format!("oci:{}:latest", p.display())
}

/// The upper directory of the (exited) pod whose UUID `uuid_file` holds.
fn upper_of_last_pod(s: &Skiff, uuid_file: &std::path::Path) -> std::path::PathBuf {
    let uuid = std::fs::read_to_string(uuid_file).unwrap().trim().to_string();
    let app = s.status_json(&uuid)["apps"][0]["name"].as_str().unwrap().to_string();
    s.dir.join("pods/run").join(&uuid).join("apps").join(app).join("upper")
}

/// An image whose /etc/hosts is a symlink (to hosts.real, beside it).
fn linked_hosts_image(s: &Skiff) -> String {
    use skiff_tests::rawtar::{dir, file, link};
    let hosts = [
        dir("etc"),
        file("etc/hosts.real", b"10.9.8.7 from-the-image\n"),
        link("etc/hosts", tar::EntryType::Symlink, "hosts.real"),
    ];
    image_with(s, "linked", &hosts)
}

#[test]
fn fly_gives_the_pod_its_etc_files_and_keeps_the_images_layers_as_they_are() {
    use skiff_tests::rawtar::{dir, file};
    let s = Skiff::new();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    let script = "cat /etc/hostname /etc/hosts /etc/resolv.conf; readlink /etc/mtab; stat -c '%a %u %g' /etc";
    let uuid_file = s.tmp().join("uuid");
    let saved = uuid_file.to_str().unwrap();
    let run = |image: &str| {
        let args = ["run", "--stage1", "fly", "--uuid-file-save", saved, "--hosts-entry", "192.0.2.9=db", "--dns"];
        s.ok(&[&args[..], &["192.0.2.53", image, "--exec", "/bin/sh", "--", "-c", script]].concat())
    };
    // The merged /etc keeps the image's owner and mode.
    let mode = skiff_tests::rawtar::Entry { mode: 0o750, ..dir("etc") };
    let plain = image_with(&s, "plain", &[mode, file("etc/passwd", b"root:x:0:0::/:/bin/sh\n")]);
    assert_eq!(
        run(&plain),
        format!(
            "{host}\n127.0.0.1\tlocalhost {host}\n::1\tlocalhost ip6-localhost ip6-loopback {host}\n192.0.2.9\tdb\n\
             nameserver 192.0.2.53\n/proc/self/mounts\n750 0 0\n"
        )
    );
    // Served from a layer of the flavor's own: nothing written at start.
    let upper = upper_of_last_pod(&s, &uuid_file);
    assert_eq!(std::fs::read_dir(&upper).unwrap().count(), 0, "{} is empty", upper.display());
    // A symlinked /etc/hosts resolves in the app's root, not the host's
    // (written from inside the mounted root, into the upper directory).
    let linked = linked_hosts_image(&s);
    let out = run(&linked);
    assert!(out.contains("\n10.9.8.7 from-the-image\n192.0.2.9\tdb\nnameserver 192.0.2.53\n"), "{out}");
    assert!(upper_of_last_pod(&s, &uuid_file).join("etc/hosts").is_file());
    // None went into the image's layers.
    let layers = s.dir.join("layers");
    let written = std::process::Command::new("find").arg(&layers).args(["-path", "*/etc/hostname"]).output().unwrap();
    assert!(written.stdout.is_empty(), "{}", String::from_utf8_lossy(&written.stdout));
}

#[test]
fn ns_serves_the_etc_files_from_a_layer_of_its_own_and_writes_none_at_start() {
    use skiff_tests::rawtar::{dir, file};
    let s = Skiff::new();
    let script = "cat /etc/hostname /etc/hosts /etc/resolv.conf; readlink /etc/mtab; stat -c '%a %u %g' /etc";
    let uuid_file = s.tmp().join("uuid");
    let run = |image: &str, script: &str| {
        let args = ["run", "--net", "none", "--hostname", "web", "--hosts-entry", "192.0.2.9=db", "--dns"];
        let file = uuid_file.to_str().unwrap();
        let rest = ["192.0.2.53", "--uuid-file-save", file, image, "--exec", "/bin/sh", "--", "-c", script];
        s.ok(&[&args[..], &rest[..]].concat())
    };
    let upper_of_last_pod = || upper_of_last_pod(&s, &uuid_file);
    // The merged /etc keeps the image's owner and mode, and the start wrote
    // nothing into the pod's upper directory.
    let mode = skiff_tests::rawtar::Entry { mode: 0o750, ..dir("etc") };
    let plain = image_with(&s, "plain", &[mode, file("etc/passwd", b"root:x:0:0::/:/bin/sh\n")]);
    assert_eq!(
        run(&plain, script),
        "web\n127.0.0.1\tlocalhost web\n::1\tlocalhost ip6-localhost ip6-loopback web\n192.0.2.9\tdb\n\
         nameserver 192.0.2.53\n/proc/self/mounts\n750 0 0\n"
    );
    let upper = upper_of_last_pod();
    assert_eq!(std::fs::read_dir(&upper).unwrap().count(), 0, "{} is empty", upper.display());
    // What the app changes is its own, as before.
    assert_eq!(run(&plain, "echo 10.1.1.1 more >> /etc/hosts; tail -1 /etc/hosts"), "10.1.1.1 more\n");
    assert!(upper_of_last_pod().join("etc/hosts").is_file(), "copied up");
    // An image's own hosts file gets skiff's lines after its own.
    let own = image_with(&s, "own", &[dir("etc"), file("etc/hosts", b"10.9.8.7 from-the-image\n")]);
    let out = run(&own, "cat /etc/hosts");
    assert_eq!(out, "10.9.8.7 from-the-image\n192.0.2.9\tdb\n");
    // A symlinked /etc/hosts resolves in the app's root, not the host's
    // (written from inside the mounted root).
    let linked = linked_hosts_image(&s);
    let out = run(&linked, script);
    assert!(out.contains("\n10.9.8.7 from-the-image\n192.0.2.9\tdb\nnameserver 192.0.2.53\n"), "{out}");
}
