//! Volumes: host binds (rw, ro, ro over nested mounts), pod-private
//! volumes, targets resolved inside the image's root.

use std::process::Command;

use skiff_tests::fixture::busybox_spec;
use skiff_tests::oci::{write_layout, Layer};
use skiff_tests::rawtar::{dir, link, tar_of, Entry};
use skiff_tests::{stderr, Skiff};
use tar::EntryType;

#[test]
fn host_volumes_read_write_and_read_only() {
    let s = Skiff::new();
    let host = s.tmp().join("shared");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("from-host"), b"hello pod\n").unwrap();
    let rw = format!("{}:/srv/data", host.display());
    let out = s.ok(&[
        "run",
        &s.image,
        "--volume",
        &rw,
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "cat /srv/data/from-host; echo hi > /srv/data/from-pod",
    ]);
    assert_eq!(out, "hello pod\n");
    assert_eq!(std::fs::read(host.join("from-pod")).unwrap(), b"hi\n", "the host sees the pod's write");
    let ro = format!("{}:/srv/data:ro", host.display());
    let out = s.ok(&[
        "run",
        &s.image,
        "--volume",
        &ro,
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "cat /srv/data/from-host; touch /srv/data/x 2>&1; true",
    ]);
    assert!(out.starts_with("hello pod\n") && out.contains("Read-only file system"), "{out}");
    assert!(!host.join("x").exists());
    // Nested targets are created.
    let deep = format!("{}:/a/b/c", host.display());
    assert_eq!(
        s.ok(&["run", &s.image, "--volume", &deep, "--exec", "/bin/cat", "--", "/a/b/c/from-host"]),
        "hello pod\n"
    );
}

/// Unmounts on drop, so a failing test leaves no mount behind.
struct HostMount(std::path::PathBuf);

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn read_only_covers_mounts_under_the_source() {
    let s = Skiff::new();
    let host = s.tmp().join("tree");
    let nested = host.join("nested");
    std::fs::create_dir_all(&nested).unwrap();
    let st = Command::new("mount").args(["-t", "tmpfs", "skiff-test-nested"]).arg(&nested).status().unwrap();
    assert!(st.success());
    let _guard = HostMount(nested.clone());
    let ro = format!("{}:/t:ro", host.display());
    let out =
        s.ok(&["run", &s.image, "--volume", &ro, "--exec", "/bin/sh", "--", "-c", "touch /t/nested/x 2>&1; true"]);
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(!nested.join("x").exists());
    let rw = format!("{}:/t", host.display());
    s.ok(&["run", &s.image, "--volume", &rw, "--exec", "/bin/touch", "--", "/t/nested/y"]);
    assert!(nested.join("y").exists(), "recursive bind: the nested mount is visible and writable");
}

#[test]
fn a_symlink_in_the_image_cannot_send_a_volume_to_the_host() {
    let s = Skiff::new();
    let victim = s.tmp().join("victim");
    std::fs::create_dir(&victim).unwrap();
    let layer = tar_of(&[
        dir("mnt"),
        link("mnt/escape", EntryType::Symlink, victim.to_str().unwrap()),
        link("mnt/etc-link", EntryType::Symlink, "/etc"),
    ]);
    let p = s.tmp().join("sly");
    write_layout(&p, &busybox_spec(vec![Layer::gz(layer)]));
    let img = format!("oci:{}:latest", p.display());
    let src = s.tmp().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("payload"), b"x\n").unwrap();
    // The link resolves inside the pod's root, where its target does not
    // exist: refused, and the host directory is untouched.
    let v = format!("{}:/mnt/escape/inside", src.display());
    let o = s.output(&["run", &img, "--volume", &v, "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("/mnt/escape"), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0, "nothing was created or mounted in the host directory");
    assert!(!std::fs::read_to_string("/proc/self/mountinfo").unwrap().contains(victim.to_str().unwrap()));
    // A link to a directory the image has is followed inside the root.
    let v = format!("{}:/mnt/etc-link/vol", src.display());
    assert_eq!(s.ok(&["run", &img, "--volume", &v, "--exec", "/bin/cat", "--", "/etc/vol/payload"]), "x\n");
    assert!(!std::path::Path::new("/etc/vol").exists(), "not the host's /etc");
}

#[test]
fn pod_volumes_and_bad_volumes() {
    let s = Skiff::new();
    let uuid = s.ok(&[
        "prepare",
        "-q",
        &s.image,
        "--volume",
        "cache:/cache",
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "ls -A /cache | wc -l; echo kept > /cache/f",
    ]);
    let uuid = uuid.trim();
    assert_eq!(s.ok(&["run-prepared", uuid]).trim(), "0", "a pod volume starts empty");
    let pods = s.dir.join("pods/run").join(uuid).join("volumes/cache/f");
    assert_eq!(std::fs::read(&pods).unwrap(), b"kept\n", "its data lives in the pod directory");
    for (v, needle) in
        [("/nonexistent-src:/x", "nonexistent-src"), ("/tmp:relative", "absolute"), ("bad/name:/x", "volume name")]
    {
        let o = s.output(&["run", &s.image, "--volume", v, "--exec", "/bin/true"]);
        assert_eq!(o.status.code(), Some(125), "{v}");
        assert!(stderr(&o).contains(needle), "{v}: {}", stderr(&o));
    }
}

/// postgres' initdb as its own user: chmod of its data directory, then
/// files in it. The image made the directory 999:999 0700; a new pod
/// volume there looks the same (issue 15.5), for every flavor.
#[test]
fn a_new_pod_volume_takes_the_owner_and_mode_of_the_image_directory() {
    let s = Skiff::new();
    let layer = tar_of(&[
        dir("var/lib"),
        Entry { mode: 0o700, uid: 999, ..dir("var/lib/pg") },
        Entry { mode: 0o1777, ..dir("scratch") },
    ]);
    let p = s.tmp().join("pg");
    write_layout(&p, &busybox_spec(vec![Layer::gz(layer)]));
    let img = format!("oci:{}:latest", p.display());
    let stat = "stat -c '%u %g %a' /var/lib/pg /scratch /fresh";
    let initdb = format!("chmod 700 /var/lib/pg && echo 15 > /var/lib/pg/PG_VERSION && {stat}");
    for flavor in ["ns", "fly", "nspawn"] {
        let out = s.ok(&[
            "run",
            "--stage1",
            flavor,
            &img,
            "--volume",
            "pgdata:/var/lib/pg",
            "--volume",
            "scratch:/scratch",
            "--volume",
            "fresh:/fresh",
            "--user",
            "999",
            "--exec",
            "/bin/sh",
            "--",
            "-c",
            &initdb,
        ]);
        assert_eq!(out, "999 999 700\n0 0 1777\n0 0 755\n", "{flavor}");
    }
    // Explicit options win over the image's, field by field; a second app
    // mounting the volume elsewhere does not change it again.
    let out = s.ok(&[
        "run",
        &img,
        "--volume",
        "pgdata:/var/lib/pg:uid=1000,mode=0750",
        "--app-name",
        "db",
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "stat -c '%u %g %a' /var/lib/pg",
        "---",
        &img,
        "--volume",
        "pgdata:/scratch:gid=1001",
        "--app-name",
        "side",
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "stat -c '%u %g %a' /scratch",
    ]);
    assert_eq!(out, "1000 1001 750\n1000 1001 750\n");
    for (v, needle) in [
        ("data:/x:uid=root", "uid=\"root\": expected a number"),
        ("data:/x:mode=0800", "expected an octal mode"),
        ("/tmp:/x:uid=0", "applies to pod volumes, not to host paths"),
        ("data:/x:bogus", "unknown option \"bogus\""),
    ] {
        let o = s.output(&["run", &img, "--volume", v, "--exec", "/bin/true"]);
        assert_eq!(o.status.code(), Some(125), "{v}");
        assert!(stderr(&o).contains(needle), "{v}: {}", stderr(&o));
    }
    let o = s.output(&[
        "run",
        &img,
        "--volume",
        "d:/a:uid=1",
        "--exec",
        "/bin/true",
        "---",
        &img,
        "--volume",
        "d:/b:uid=2",
        "--exec",
        "/bin/true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("volume d is given uid=1 and uid=2"), "{}", stderr(&o));
}

#[test]
fn a_tmpfs_volume_is_shared_in_memory_and_leaves_nothing_on_disk() {
    let s = Skiff::new();
    for flavor in ["ns", "nspawn"] {
        #[rustfmt::skip]
        let o = s.output(&[
            "run", "--stage1", flavor, "--net", "none", "--uuid-file-save", s.tmp().join("u").to_str().unwrap(),
            &s.image, "--app-name", "reader", "--volume", "ram:/r:tmpfs,size=4M", "--exec", "/bin/sh", "--", "-c",
            "cat /r/x; grep ' /r ' /proc/mounts | cut -d' ' -f3,4",
            "---", &s.image, "--app-name", "writer", "--init", "--volume", "ram:/w", "--exec", "/bin/sh", "--", "-c", "echo in-memory > /w/x",
        ]);
        assert_eq!(o.status.code(), Some(0), "{flavor}: {}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(out.starts_with("in-memory\ntmpfs ") && out.contains("size=4096k"), "{flavor}: {out}");
        let uuid = std::fs::read_to_string(s.tmp().join("u")).unwrap().trim().to_string();
        let dir = s.dir.join("pods/run").join(&uuid).join("volumes/ram");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "{flavor}");
    }
    let o = s.output(&["run", "--stage1", "fly", &s.image, "--volume", "ram:/r:tmpfs", "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("memory-volumes"), "{}", stderr(&o));
}

#[test]
fn a_subpath_of_a_pod_volume_stays_inside_it() {
    let s = Skiff::new();
    #[rustfmt::skip]
    let o = s.output(&[
        "run", "--rm", "--net", "none",
        &s.image, "--app-name", "reader", "--volume", "v:/part:subpath=a/b,ro", "--exec", "/bin/sh", "--", "-c", "ls /part; touch /part/new 2>/dev/null || echo read-only",
        "---", &s.image, "--app-name", "writer", "--init", "--volume", "v:/v", "--exec", "/bin/sh", "--", "-c", "mkdir -p /v/a/b && touch /v/a/b/inside /v/outside",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "inside\nread-only\n");
    // A symlink in the volume cannot lead a subpath out: one planted in a
    // prepared pod's volume, pointing at the host's /etc.
    let uuid = s.ok(&[
        "prepare",
        "-q",
        "--net",
        "none",
        &s.image,
        "--volume",
        "v:/x:subpath=esc",
        "--exec",
        "/bin/ls",
        "--",
        "/x",
    ]);
    let volume = s.dir.join("pods/prepared").join(uuid.trim()).join("volumes/v");
    std::os::unix::fs::symlink("/etc", volume.join("esc")).unwrap();
    let o = s.output(&["run-prepared", uuid.trim()]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(125), "resolved inside the volume, where it leads nowhere: {out}");
    assert!(stderr(&o).contains("subpath esc"), "{}", stderr(&o));
    assert!(!out.contains("shadow") && !out.contains("hostname"), "the host's /etc: {out}");
}
