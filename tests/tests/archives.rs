//! Archives: oci-archive and docker-archive, as skopeo writes them and as
//! classic `docker save` does (layer directories, symlinked repeats, the
//! `repositories` file).

use std::process::Command;

use skiff_tests::fixture::busybox_rootfs_tar;
use skiff_tests::oci::sha256;
use skiff_tests::rawtar::{dir, file, tar_of};
use skiff_tests::{stderr, Skiff};

fn skopeo(args: &[&str]) {
    let o = Command::new("skopeo").args(args).output().expect("skopeo is installed (apt-get install skopeo)");
    assert!(o.status.success(), "skopeo {args:?}: {}", stderr(&o));
}

#[test]
fn skopeo_archives_are_fetched_and_run() {
    let s = Skiff::new();
    let src = s.image.trim_start_matches("oci:").to_string();
    let oa = s.tmp().join("bb-oci.tar");
    let da = s.tmp().join("bb-docker.tar");
    skopeo(&["copy", "-q", &format!("oci:{src}"), &format!("oci-archive:{}:v2", oa.display())]);
    skopeo(&["copy", "-q", &format!("oci:{src}"), &format!("docker-archive:{}:localhost/bb:9", da.display())]);
    let id_layout = s.ok(&["fetch", "-q", &s.image]);
    let id_oa = s.ok(&["fetch", "-q", &format!("oci-archive:{}:v2", oa.display())]);
    assert_eq!(id_oa, id_layout, "same config, same ID");
    let id_da = s.ok(&["fetch", "-q", &format!("docker-archive:{}", da.display())]);
    assert!(id_da.starts_with("sha256:"));
    assert_eq!(s.ok(&["run", &format!("oci-archive:{}:v2", oa.display()), "--exec", "/bin/echo", "--", "oa"]), "oa\n");
    // The archive's RepoTag becomes the image's name in the store.
    assert_eq!(s.ok(&["run", "localhost/bb:9", "--exec", "/bin/echo", "--", "da"]), "da\n");
    assert_eq!(s.ok(&["run", "bb:9", "--exec", "/bin/echo", "--", "short"]), "short\n");
    let o = s.output(&["fetch", &format!("docker-archive:{}:other:1", da.display())]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("localhost/bb:9"), "lists the names: {}", stderr(&o));
}

/// A `docker save` archive of the classic format, written by hand.
fn classic_docker_archive(path: &std::path::Path) -> String {
    let base = busybox_rootfs_tar();
    let extra = tar_of(&[dir("opt"), file("opt/hello", b"from a classic save\n")]);
    let diff = [sha256(&base), sha256(&extra), sha256(&base)];
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/cat", "/opt/hello"]},
        "rootfs": {"type": "layers", "diff_ids": diff},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_name = format!("{}.json", &sha256(&config)[7..]);
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": null,
        "Layers": ["aaa/layer.tar", "bbb/layer.tar", "ccc/layer.tar"],
    }]);
    let repositories = br#"{"example.org/classic":{"v1":"ccc"}}"#;
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    add("aaa/layer.tar", &base);
    add("bbb/layer.tar", &extra);
    add(&config_name, &config);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    add("repositories", repositories);
    // docker save writes a repeated layer once and links to it.
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "ccc/layer.tar", "../aaa/layer.tar").unwrap();
    b.finish().unwrap();
    sha256(&config)
}

#[test]
fn classic_docker_save_archives_are_read_in_place() {
    let s = Skiff::new();
    let path = s.tmp().join("classic.tar");
    let id = classic_docker_archive(&path);
    assert_eq!(s.ok(&["fetch", "-q", &format!("docker-archive:{}", path.display())]), format!("{id}\n"));
    // Named from the legacy repositories file.
    assert_eq!(s.ok(&["run", "example.org/classic:v1"]), "from a classic save\n");
    // Nothing of the archive was unpacked to the store's scratch space.
    assert_eq!(std::fs::read_dir(s.dir.join("tmp")).unwrap().count(), 0);
}

#[test]
fn broken_archives_are_refused_cleanly() {
    let s = Skiff::new();
    let not_tar = s.tmp().join("not.tar");
    std::fs::write(&not_tar, b"this is not a tar archive at all, just some text that is long enough").unwrap();
    for img in [format!("docker-archive:{}", not_tar.display()), format!("oci-archive:{}", not_tar.display())] {
        let o = s.output(&["fetch", "-q", &img]);
        assert_eq!(o.status.code(), Some(125), "{img}");
        assert_eq!(stderr(&o).lines().count(), 1, "{img}: {}", stderr(&o));
    }
    let o = s.output(&["fetch", "-q", "docker-archive:/nonexistent.tar"]);
    assert!(stderr(&o).contains("/nonexistent.tar"), "{}", stderr(&o));
}
