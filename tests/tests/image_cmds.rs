//! skiff image build / list / inspect / rm / gc / export, and images made by
//! other tools (umoci, buildah) and read back by them (skopeo, umoci).

use std::path::Path;
use std::process::Command;

use skiff_tests::{stderr, Skiff};

fn tool(name: &str, args: &[&str]) -> String {
    let o =
        Command::new(name).args(args).output().unwrap_or_else(|e| panic!("{name}: {e} (installed by scripts/deps.sh)"));
    assert!(o.status.success(), "{name} {args:?}: {}", stderr(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A root filesystem with busybox, a hard link, a symlink and a FIFO.
fn rootfs(dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    for a in ["sh", "echo", "cat", "ls", "stat", "id", "pwd"] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(a)).unwrap();
    }
    std::fs::hard_link(dir.join("bin/busybox"), dir.join("bin/bb-hard")).unwrap();
    std::fs::write(dir.join("etc/motd"), b"built by skiff\n").unwrap();
    tool("mkfifo", &[dir.join("etc/fifo").to_str().unwrap()]);
}

#[test]
fn build_is_reproducible_and_applies_the_config() {
    let s = Skiff::new();
    let root = s.tmp().join("rootfs");
    rootfs(&root);
    let args = |tag: &'static str| {
        vec![
            "image",
            "build",
            "-q",
            "--from-dir",
            root.to_str().unwrap(),
            "--tag",
            tag,
            "--entrypoint",
            r#"["/bin/sh","-c"]"#,
            "--cmd",
            "cat /etc/motd; pwd; id -u; echo $GREETING",
            "--env",
            "GREETING=hi",
            "--workdir",
            "/etc",
            "--user",
            "1000",
        ]
    };
    let created = |tag: &str| {
        let v: serde_json::Value = serde_json::from_str(&s.ok(&["image", "inspect", tag])).unwrap();
        v["config"]["created"].as_str().unwrap_or("none").to_string()
    };
    let touch = |stamp: &str| {
        tool("find", &[root.to_str().unwrap(), "-exec", "touch", "-h", "-d", stamp, "{}", "+"]);
    };
    touch("2025-03-04T05:06:07Z");
    let a = s.ok(&args("mytool:1"));
    assert_eq!(created("mytool:1"), "2025-03-04T05:06:07Z", "the newest mtime in the tree");
    assert_eq!(s.ok(&args("mytool:1")), a, "same tree and options, same image ID");
    // Files' mtimes are not kept, so --created alone decides the digest.
    let mut pinned = args("mytool:2");
    pinned.extend(["--created", "2026-01-02T03:04:05Z"]);
    let b = s.ok(&pinned);
    assert_eq!(created("mytool:2"), "2026-01-02T03:04:05Z");
    touch("2025-09-09T09:09:09Z");
    assert_eq!(s.ok(&pinned), b, "touching files changes mtimes, not a pinned image");
    assert_ne!(s.ok(&args("mytool:3")), a, "unpinned, the creation time follows the tree");
    let mut bad = args("mytool:4");
    bad.extend(["--created", "yesterday"]);
    let o = s.output(&bad);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("--created \"yesterday\": expected RFC 3339"), "{}", stderr(&o));
    let out = s.ok(&["run", "mytool:1"]);
    assert_eq!(out, "built by skiff\n/etc\n1000\nhi\n");
    let out =
        s.ok_sh("localhost/mytool:2", "stat -c %i /bin/busybox /bin/bb-hard | uniq | wc -l; stat -c %F /etc/fifo");
    assert_eq!(out, "1\nfifo\n");
    let o = s.output(&["image", "build", "--from-dir", "/nonexistent", "--tag", "x"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("/nonexistent"));
}

/// A root made by debootstrap has device nodes in /dev: left out, said once.
#[test]
fn build_says_once_what_it_left_out() {
    let s = Skiff::new();
    let root = s.tmp().join("rootfs");
    rootfs(&root);
    std::fs::create_dir(root.join("dev")).unwrap();
    for (name, minor) in [("null", "3"), ("zero", "5"), ("full", "7")] {
        tool("mknod", &[root.join("dev").join(name).to_str().unwrap(), "c", "1", minor]);
    }
    let sock = std::os::unix::net::UnixListener::bind(root.join("dev/log")).unwrap();
    let o = s.output(&["image", "build", "-q", "--from-dir", root.to_str().unwrap(), "--tag", "devs:1"]);
    drop(sock);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("left out 4 device node(s) and socket(s)"), "{err}");
    assert_eq!(s.ok_sh("devs:1", "ls /dev/null /dev/log 2>&1 | wc -l").trim(), "2", "the pod's own /dev");
}

#[test]
fn list_inspect_rm_and_prepared_pods_survive() {
    let s = Skiff::new();
    let id = s.ok(&["fetch", "-q", &s.image]).trim().to_string();
    let root = s.tmp().join("rootfs");
    rootfs(&root);
    s.ok(&["image", "build", "-q", "--from-dir", root.to_str().unwrap(), "--tag", "layoutdir:1"]);
    let list: serde_json::Value = serde_json::from_str(&s.ok(&["image", "list", "--format", "json"])).unwrap();
    let e = list.as_array().unwrap().iter().find(|e| e["id"] == id.as_str()).unwrap();
    assert!(e["names"][0].as_str().unwrap().starts_with("oci:"));
    assert!(e["size"].as_u64().unwrap() > 500_000);
    let table = s.ok(&["image", "list"]);
    assert_eq!(
        table.lines().next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["ID", "NAMES", "SIZE", "CREATED", "LAST", "USED"]
    );
    let inspect: serde_json::Value = serde_json::from_str(&s.ok(&["image", "inspect", &id[..14]])).unwrap();
    assert_eq!(inspect["id"], id.as_str());
    assert_eq!(inspect["config"]["os"], "linux");
    assert_eq!(inspect["manifest"]["schemaVersion"], 2);
    assert_eq!(inspect["layers"].as_array().unwrap().len(), 1);
    // Every command that takes an image takes what `image list` prints.
    let short = table.lines().filter_map(|l| l.split_whitespace().next()).find(|c| id[7..].starts_with(c)).unwrap();
    assert_eq!(short.len(), 12, "{table}");
    // (The store's two images are reproducible builds: their IDs, and so
    // whether 4 digits tell them apart, are the same on every run.)
    for image in [short, &format!("sha256:{short}"), &id[7..11], &id] {
        let o = s.output(&["run", "--net", "none", image, "--exec", "/bin/echo", "--", "by id"]);
        assert!(o.status.success(), "run {image}: {}", stderr(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout), "by id\n");
        let same: serde_json::Value = serde_json::from_str(&s.ok(&["image", "inspect", image])).unwrap();
        assert_eq!(same["id"], id.as_str());
    }
    let o = s.output(&["run", "--net", "none", "0000000000ff", "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains(r#"no image matches "0000000000ff""#), "{}", stderr(&o));
    // A pod prepared from the image keeps working after the image is gone.
    let uuid = s.ok(&["prepare", "-q", &s.image, "--exec", "/bin/echo", "--", "still here"]).trim().to_string();
    assert_eq!(s.ok(&["image", "rm", &id[7..15]]), format!("{id}\n"));
    assert!(!s.ok(&["image", "list"]).contains(&id[7..19]));
    s.ok(&["image", "gc"]);
    assert_eq!(s.ok(&["run-prepared", &uuid]), "still here\n");
    // Once no pod needs them, gc frees the layers.
    s.ok(&["gc", "--grace-period", "0"]);
    s.ok(&["image", "rm", "layoutdir:1"]);
    s.ok(&["image", "gc"]);
    assert_eq!(std::fs::read_dir(s.dir.join("layers/sha256")).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(s.dir.join("cas/blobs/sha256")).unwrap().count(), 0);
    let o = s.output(&["image", "rm", "nope:1"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("nope:1"));
}

#[test]
fn removing_one_of_two_names_keeps_the_image() {
    let s = Skiff::new();
    let root = s.tmp().join("rootfs");
    rootfs(&root);
    let a = s.ok(&["image", "build", "-q", "--from-dir", root.to_str().unwrap(), "--tag", "one:1"]);
    let b = s.ok(&["image", "build", "-q", "--from-dir", root.to_str().unwrap(), "--tag", "two:1"]);
    assert_eq!(a, b);
    assert_eq!(s.ok(&["image", "rm", "one:1"]), "", "only a name went");
    assert_eq!(s.ok(&["run", "two:1", "--exec", "/bin/echo", "--", "ok"]), "ok\n");
    assert_eq!(s.ok(&["image", "rm", "two:1"]).trim(), a.trim());
}

#[test]
fn export_is_read_by_skopeo_and_umoci() {
    let s = Skiff::new();
    s.ok(&["fetch", "-q", &s.image]);
    let out = s.tmp().join("export.tar");
    s.ok(&["image", "export", &s.image, &format!("oci-archive:{}:exported", out.display())]);
    let inspect: serde_json::Value =
        serde_json::from_str(&tool("skopeo", &["inspect", &format!("oci-archive:{}:exported", out.display())]))
            .unwrap();
    assert_eq!(inspect["Architecture"], "amd64");
    let dir = s.tmp().join("exported-layout");
    std::fs::create_dir(&dir).unwrap();
    tool("tar", &["-C", dir.to_str().unwrap(), "-xf", out.to_str().unwrap()]);
    let bundle = s.tmp().join("bundle");
    tool("umoci", &["unpack", "--image", &format!("{}:exported", dir.display()), bundle.to_str().unwrap()]);
    assert!(bundle.join("rootfs/bin/busybox").is_file());
    // And skiff reads its own export back, to the same ID.
    let id = s.ok(&["fetch", "-q", &format!("oci-archive:{}:exported", out.display())]);
    assert_eq!(id, s.ok(&["fetch", "-q", &s.image]));
    let o = s.output(&["image", "export", &s.image, "/tmp/not-an-oci-archive.tar"]);
    assert_eq!(o.status.code(), Some(125));
}

/// skopeo's rule: the path ends at its first ':', the rest is the name,
/// written whole into the index; without one, the image's own name.
#[test]
fn export_writes_the_full_name() {
    let s = Skiff::new();
    let ref_names = |tar: &std::path::Path| {
        let dir = tar.with_extension("d");
        std::fs::create_dir(&dir).unwrap();
        tool("tar", &["-C", dir.to_str().unwrap(), "-xf", tar.to_str().unwrap(), "index.json"]);
        let index: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        let names: Vec<String> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap_or("").to_string())
            .collect();
        names
    };
    s.ok(&["fetch", "-q", &s.image]);
    let out = s.tmp().join("redis.tar");
    let dest = format!("oci-archive:{}:localhost/redis:1", out.display());
    s.ok(&["image", "export", &s.image, &dest]);
    assert_eq!(ref_names(&out), ["localhost/redis:1"]);
    let inspect: serde_json::Value = serde_json::from_str(&tool("skopeo", &["inspect", &dest])).unwrap();
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(s.ok(&["fetch", "-q", &dest]), s.ok(&["fetch", "-q", &s.image]));
    assert!(s.ok(&["image", "list"]).contains(&format!("{}:localhost/redis:1", out.display())));

    let root = s.tmp().join("root");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    s.ok(&["image", "build", "-q", "--from-dir", root.to_str().unwrap(), "--tag", "mytool:1"]);
    let own = s.tmp().join("own.tar");
    s.ok(&["image", "export", "mytool:1", &format!("oci-archive:{}", own.display())]);
    assert_eq!(ref_names(&own), ["localhost/mytool:1"]);

    let o = s.output(&["image", "export", "mytool:1", &format!("oci-archive:{}:bad name", own.display())]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("is not a tag or image name"), "{}", stderr(&o));
}

#[test]
fn images_made_by_umoci_run() {
    let s = Skiff::new();
    let l = s.tmp().join("umoci-layout");
    let lt = format!("{}:t", l.display());
    tool("umoci", &["init", "--layout", l.to_str().unwrap()]);
    tool("umoci", &["new", "--image", &lt]);
    let bundle = s.tmp().join("umoci-bundle");
    tool("umoci", &["unpack", "--image", &lt, bundle.to_str().unwrap()]);
    std::fs::create_dir_all(bundle.join("rootfs/bin")).unwrap();
    std::fs::copy("/bin/busybox", bundle.join("rootfs/bin/busybox")).unwrap();
    tool("umoci", &["repack", "--image", &lt, bundle.to_str().unwrap()]);
    tool(
        "umoci",
        &[
            "config",
            "--image",
            &lt,
            "--config.cmd",
            "/bin/busybox",
            "--config.cmd",
            "echo",
            "--config.cmd",
            "from umoci",
        ],
    );
    assert_eq!(s.ok(&["run", &format!("oci:{lt}")]), "from umoci\n");
}

#[test]
fn images_made_by_buildah_run() {
    let s = Skiff::new();
    let root = s.tmp().join("buildah-root");
    let run = s.tmp().join("buildah-run");
    let b = |args: &[&str]| {
        let mut all =
            vec!["--root", root.to_str().unwrap(), "--runroot", run.to_str().unwrap(), "--storage-driver", "vfs"];
        all.extend_from_slice(args);
        tool("buildah", &all).trim().to_string()
    };
    let ctr = b(&["from", "scratch"]);
    b(&["copy", &ctr, "/bin/busybox", "/bin/busybox"]);
    b(&["config", "--cmd", "/bin/busybox echo from buildah", &ctr]);
    let archive = s.tmp().join("buildah.tar");
    b(&["commit", "-q", &ctr, &format!("oci-archive:{}:b", archive.display())]);
    b(&["rm", &ctr]);
    assert_eq!(s.ok(&["run", &format!("oci-archive:{}:b", archive.display())]), "from buildah\n");
}
