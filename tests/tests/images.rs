//! Images: IDs, layers and whiteouts, hostile layers, corrupt blobs, and an
//! image written by an outside tool (skopeo).

use std::path::Path;
use std::process::Command;

use skiff_tests::fixture::busybox_spec;
use skiff_tests::oci::{write_layout, Layer};
use skiff_tests::rawtar::{dir, entry, file, link, tar_of, Entry};
use skiff_tests::{stderr, Skiff};
use tar::EntryType;

fn code(o: &std::process::Output) -> i32 {
    o.status.code().expect("exited normally")
}

/// The busybox image plus `extra` layers, as an `oci:` reference.
fn image_with(s: &Skiff, name: &str, extra: Vec<Vec<u8>>) -> (String, String) {
    let layers = extra.into_iter().map(Layer::gz).collect();
    let p = s.tmp().join(name);
    let id = write_layout(&p, &busybox_spec(layers));
    (format!("oci:{}:latest", p.display()), id)
}

#[test]
fn fetch_prints_the_config_digest_and_run_accepts_it() {
    let s = Skiff::new();
    let (img, id) = image_with(&s, "plain", vec![]);
    assert_eq!(s.ok(&["fetch", &img]), format!("{id}\n"));
    assert_eq!(s.ok(&["fetch", &img]), format!("{id}\n"), "fetching again is a no-op");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&s.dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the store is root's alone");
    let out = s.ok(&["run", &id[..19], "--exec", "/bin/echo", "--", "by id"]);
    assert_eq!(out, "by id\n");
    let o = s.output(&["run", "sha256:0000", "--exec", "/bin/true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("sha256:0000"));
}

#[test]
fn layers_whiteouts_and_opaque_directories() {
    let s = Skiff::new();
    let l2 = tar_of(&[
        dir("data"),
        dir("data/a"),
        file("data/a/old", b"1"),
        dir("data/b"),
        file("data/b/kept", b"2"),
        file("bin/.wh.vi", b""),
    ]);
    let l3 = tar_of(&[dir("data/a"), file("data/a/.wh..wh..opq", b""), file("data/a/new", b"3")]);
    let (img, _) = image_with(&s, "layered", vec![l2, l3]);
    let out = s.ok_sh(&img, "ls /data/a; ls /data/b; test -e /bin/vi || echo vi-gone");
    assert_eq!(out, "new\nkept\nvi-gone\n");
}

struct Outside {
    dir: std::path::PathBuf,
}

impl Outside {
    fn new(s: &Skiff) -> Outside {
        let dir = s.tmp().join("outside");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("shadow"), b"secret").unwrap();
        Outside { dir }
    }

    fn assert_untouched(&self) {
        let names: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["shadow"], "a hostile layer wrote outside the root");
        assert_eq!(std::fs::read(self.dir.join("shadow")).unwrap(), b"secret");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(self.dir.join("shadow")).unwrap().nlink(), 1);
    }
}

fn assert_refused(s: &Skiff, img: &str, what: &str) {
    let o = s.output(&["fetch", "--quiet", img]);
    assert_eq!(code(&o), 125, "{what} must be refused");
    assert!(stderr(&o).lines().count() == 1, "{what}: one-line error, got {}", stderr(&o));
    assert_store_clean(s);
}

/// No image record, no unpacked tree and no scratch file of a failed fetch.
fn assert_store_clean(s: &Skiff) {
    let count = |p: &str| {
        std::fs::read_dir(s.dir.join(p))
            .map(|d| d.filter(|e| !e.as_ref().unwrap().file_name().to_string_lossy().starts_with('.')).count())
            .unwrap_or(0)
    };
    assert_eq!(count("images"), 0, "an image record was written");
    assert_eq!(count("tmp"), 0, "scratch files were left");
}

#[test]
fn hostile_layers_never_touch_the_host() {
    let s = Skiff::new();
    let out = Outside::new(&s);
    let o = out.dir.display().to_string();
    let shadow = format!("{o}/shadow");
    let refused: Vec<(&str, Vec<Entry>)> = vec![
        ("dotdot", vec![file("../../../../../../outside/pwned", b"x")]),
        ("symlink-escape", vec![link("esc", EntryType::Symlink, &o), file("esc/pwned", b"x")]),
        ("hardlink-out", vec![link("h", EntryType::Link, &shadow)]),
        ("hardlink-dotdot", vec![link("h", EntryType::Link, "../../../../../../../etc/shadow")]),
    ];
    for (name, entries) in refused {
        let (img, _) = image_with(&s, name, vec![tar_of(&entries)]);
        assert_refused(&s, &img, name);
    }
    out.assert_untouched();

    // Contained rather than refused: these land inside the image's root.
    let abs = format!("{o}/abs-pwned");
    let l = tar_of(&[
        file(&abs, b"abs"),
        link("up", EntryType::Symlink, "../../../../../../../.."),
        file("up/tmp/through-up", b"up"),
        entry("lib/sda", EntryType::Block),
    ]);
    let (img, _) = image_with(&s, "contained", vec![l]);
    let seen = s.ok_sh(&img, &format!("cat {abs} /tmp/through-up; echo; test -e /lib/sda || echo no-sda"));
    assert_eq!(seen, "absup\nno-sda\n");
    out.assert_untouched();
    assert!(!Path::new("/tmp/through-up").exists());
}

#[test]
fn corrupt_blobs_leave_no_partial_image() {
    let s = Skiff::new();
    let (img, _) = image_with(&s, "corrupt", vec![tar_of(&[file("f", b"data")])]);
    // Flip one byte in the last layer blob, keeping its size.
    let layout = s.tmp().join("corrupt");
    let idx: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let m = idx["manifests"][0]["digest"].as_str().unwrap()[7..].to_string();
    let man: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(m)).unwrap()).unwrap();
    let layer = man["layers"][1]["digest"].as_str().unwrap()[7..].to_string();
    let p = layout.join("blobs/sha256").join(&layer);
    let mut data = std::fs::read(&p).unwrap();
    let last = data.len() - 10;
    data[last] ^= 0xff;
    std::fs::write(&p, &data).unwrap();
    let o = s.output(&["fetch", &img]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("digest mismatch"), "{}", stderr(&o));
    assert_store_clean(&s);
    assert!(!s.dir.join("cas/blobs/sha256").join(&layer).exists(), "the bad blob entered the store");
}

#[test]
fn wrong_diff_ids_are_refused() {
    let s = Skiff::new();
    let layout = s.tmp().join("badiff");
    let spec = busybox_spec(vec![]);
    let good = skiff_tests::oci::sha256(&spec.layers[0].tar);
    write_layout(&layout, &spec);
    // Replace the diff_id inside the config blob and re-chain the digests.
    let cfg_path = find_blob_containing(&layout, &good);
    let cfg = std::fs::read_to_string(&cfg_path).unwrap().replace(&good[7..], &"0".repeat(64));
    relink_config(&layout, &cfg_path, cfg.as_bytes());
    let o = s.output(&["fetch", &format!("oci:{}:latest", layout.display())]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("diff_id"), "{}", stderr(&o));
    assert_store_clean(&s);
}

/// Rewrites the layout's manifest with `edit`, and the index to match.
fn edit_manifest(layout: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let blobs = layout.join("blobs/sha256");
    let idx_path = layout.join("index.json");
    let mut idx: serde_json::Value = serde_json::from_slice(&std::fs::read(&idx_path).unwrap()).unwrap();
    let man_path = blobs.join(&idx["manifests"][0]["digest"].as_str().unwrap()[7..]);
    let mut man: serde_json::Value = serde_json::from_slice(&std::fs::read(&man_path).unwrap()).unwrap();
    edit(&mut man);
    let man_bytes = serde_json::to_vec(&man).unwrap();
    let man_digest = skiff_tests::oci::sha256(&man_bytes);
    std::fs::write(blobs.join(&man_digest[7..]), &man_bytes).unwrap();
    idx["manifests"][0]["digest"] = man_digest.into();
    idx["manifests"][0]["size"] = man_bytes.len().into();
    std::fs::write(idx_path, serde_json::to_vec(&idx).unwrap()).unwrap();
}

#[test]
fn unknown_and_encrypted_layer_types_are_refused_and_nothing_is_stored() {
    let s = Skiff::new();
    for (i, (media_type, want)) in [
        ("application/vnd.acme.unknown.layer.v1+weird", "\"application/vnd.acme.unknown.layer.v1+weird\""),
        ("application/vnd.oci.image.layer.v1.tar+gzip+encrypted", "is encrypted"),
    ]
    .into_iter()
    .enumerate()
    {
        let layout = s.tmp().join(format!("odd-{i}"));
        write_layout(&layout, &busybox_spec(vec![]));
        edit_manifest(&layout, |m| m["layers"][0]["mediaType"] = media_type.into());
        let o = s.output(&["fetch", &format!("oci:{}:latest", layout.display())]);
        assert_eq!(code(&o), 125, "{media_type}");
        assert!(stderr(&o).contains(want), "{media_type}: {}", stderr(&o));
        assert_store_clean(&s);
        let blobs = std::fs::read_dir(s.dir.join("cas/blobs/sha256")).map(|d| d.count()).unwrap_or(0);
        assert_eq!(blobs, 0, "no blob of {media_type} was stored");
    }
}

fn find_blob_containing(layout: &Path, needle: &str) -> std::path::PathBuf {
    std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            std::fs::metadata(p).unwrap().len() < 100_000
                && std::fs::read_to_string(p).is_ok_and(|c| c.contains(needle) && c.contains("rootfs"))
        })
        .unwrap()
}

/// Stores a new config blob and points the manifest and index at it.
fn relink_config(layout: &Path, old_cfg: &Path, cfg: &[u8]) {
    let old = format!("sha256:{}", old_cfg.file_name().unwrap().to_string_lossy());
    let new = skiff_tests::oci::sha256(cfg);
    std::fs::write(layout.join("blobs/sha256").join(&new[7..]), cfg).unwrap();
    edit_manifest(layout, |man| {
        assert_eq!(man["config"]["digest"], old.as_str());
        man["config"]["digest"] = new.into();
        man["config"]["size"] = cfg.len().into();
    });
}

#[test]
fn an_image_rewritten_by_skopeo_runs() {
    let s = Skiff::new();
    let src = s.image.trim_start_matches("oci:").to_string();
    let archive = s.tmp().join("bb-docker.tar");
    let back = s.tmp().join("bb-from-skopeo");
    let run = |args: &[&str]| {
        let o = Command::new("skopeo").args(args).output().expect("skopeo is installed (apt-get install skopeo)");
        assert!(o.status.success(), "skopeo {args:?}: {}", stderr(&o));
    };
    // Through Docker's archive format and back: skopeo writes the manifest,
    // the index and (uncompressed) layers itself.
    run(&["copy", "-q", &format!("oci:{src}"), &format!("docker-archive:{}:localhost/bb:latest", archive.display())]);
    run(&["copy", "-q", &format!("docker-archive:{}", archive.display()), &format!("oci:{}:v1", back.display())]);
    let out = s.ok(&[
        "run",
        &format!("oci:{}:v1", back.display()),
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "echo $FROM_IMAGE; cat /etc/group | head -1",
    ]);
    assert_eq!(out, "yes\nroot:x:0:\n");
    let o = s.output(&["fetch", &format!("oci:{}:nope", back.display())]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("v1"), "the error lists the tags: {}", stderr(&o));
}

/// Wraps the layout's manifest in a nested image index next to a manifest
/// for another platform, as multi-arch images are published.
fn nest_in_index(layout: &Path, with_amd64: bool) {
    let blobs = layout.join("blobs/sha256");
    let idx_path = layout.join("index.json");
    let idx: serde_json::Value = serde_json::from_slice(&std::fs::read(&idx_path).unwrap()).unwrap();
    let mut amd64 = idx["manifests"][0].clone();
    amd64.as_object_mut().unwrap().remove("annotations");
    amd64["platform"] = serde_json::json!({"os": "linux", "architecture": "amd64"});
    let mut arm64 = amd64.clone();
    arm64["platform"] = serde_json::json!({"os": "linux", "architecture": "arm64", "variant": "v8"});
    arm64["digest"] = format!("sha256:{}", "a".repeat(64)).into();
    let manifests = if with_amd64 { vec![arm64, amd64] } else { vec![arm64] };
    let nested = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }))
    .unwrap();
    let d = skiff_tests::oci::sha256(&nested);
    std::fs::write(blobs.join(&d[7..]), &nested).unwrap();
    let top = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": d,
            "size": nested.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }],
    });
    std::fs::write(idx_path, serde_json::to_vec(&top).unwrap()).unwrap();
}

#[test]
fn linux_amd64_is_picked_from_an_index() {
    let s = Skiff::new();
    let (_, id) = image_with(&s, "multi", vec![]);
    nest_in_index(&s.tmp().join("multi"), true);
    let img = format!("oci:{}:multi", s.tmp().join("multi").display());
    assert_eq!(s.ok(&["fetch", &img]), format!("{id}\n"));
    let (_, _) = image_with(&s, "armonly", vec![]);
    nest_in_index(&s.tmp().join("armonly"), false);
    let o = s.output(&["fetch", &format!("oci:{}:multi", s.tmp().join("armonly").display())]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("linux/arm64"), "lists what is there: {}", stderr(&o));
}

#[test]
fn a_fifo_planted_as_a_blob_is_refused_not_waited_on() {
    let s = Skiff::new();
    let (img, _) = image_with(&s, "fifo", vec![]);
    let blobs = s.tmp().join("fifo/blobs/sha256");
    let biggest = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    std::fs::remove_file(&biggest).unwrap();
    let st = Command::new("mkfifo").arg(&biggest).status().unwrap();
    assert!(st.success());
    let o = s.output(&["fetch", &img]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    assert_store_clean(&s);
}

#[test]
fn a_pod_shows_the_name_its_image_was_run_by() {
    let s = Skiff::new();
    let (a, id) = image_with(&s, "first", vec![]);
    let (b, id_b) = image_with(&s, "second", vec![]);
    assert_eq!(id, id_b, "same content, same ID");
    s.ok(&["run", &a, "--exec", "/bin/true"]);
    s.ok(&["run", &b, "--exec", "/bin/true"]);
    s.ok(&["run", &a, "--exec", "/bin/true"]);
    let names: Vec<String> = s
        .list_json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["apps"][0]["image_name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, [a.clone(), b, a]);
}

#[test]
fn zstd_and_uncompressed_layers() {
    use skiff_tests::oci::Compression;
    let s = Skiff::new();
    let mut spec = busybox_spec(vec![]);
    spec.layers.push(Layer { tar: tar_of(&[file("zstd-file", b"from zstd\n")]), compression: Compression::Zstd });
    spec.layers.push(Layer { tar: tar_of(&[file("plain-file", b"from plain\n")]), compression: Compression::None });
    let p = s.tmp().join("mixed");
    write_layout(&p, &spec);
    let out = s.ok_sh(&format!("oci:{}:latest", p.display()), "cat /zstd-file /plain-file");
    assert_eq!(out, "from zstd\nfrom plain\n");
}

#[test]
fn a_lost_tree_or_blob_is_restored_by_the_next_fetch() {
    let s = Skiff::new();
    let id = s.ok(&["fetch", "-q", &s.image]);
    let one = |dir: &str| std::fs::read_dir(s.dir.join(dir)).unwrap().next().unwrap().unwrap().path();
    let tree = one("layers/sha256");
    std::fs::remove_dir_all(&tree).unwrap();
    assert_eq!(s.ok(&["fetch", "-q", &s.image]), id, "unpacked again from the stored blob");
    assert!(tree.is_dir());
    let inspect: serde_json::Value = serde_json::from_str(&s.ok(&["image", "inspect", id.trim()])).unwrap();
    let layer = inspect["layers"][0]["digest"].as_str().unwrap()[7..].to_string();
    let blob = s.dir.join("cas/blobs/sha256").join(&layer);
    std::fs::remove_file(&blob).unwrap();
    assert_eq!(s.ok(&["fetch", "-q", &s.image]), id, "the blob is copied again");
    assert!(blob.is_file());
    assert_eq!(s.ok(&["run", &s.image, "--exec", "/bin/echo", "--", "whole"]), "whole\n");
}
