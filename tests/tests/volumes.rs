//! Volumes: host binds (rw, ro, ro over nested mounts), pod-private
//! volumes, targets resolved inside the image's root.

use std::process::Command;

use skiff_tests::fixture::busybox_spec;
use skiff_tests::oci::{write_layout, Layer};
use skiff_tests::rawtar::{dir, link, tar_of};
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
