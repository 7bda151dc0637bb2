//! The busybox image every test runs: Debian's busybox-static binary, one
//! symlink per applet, a passwd and group file.

use std::path::{Path, PathBuf};

use serde_json::json;
use tar::{EntryType, Header};

use crate::oci::{write_layout, ImageSpec, Layer};

pub const BUSYBOX: &str = "/bin/busybox";

fn header(path: &str, kind: EntryType, mode: u32, size: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_path(path).expect("fixture paths are valid");
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h
}

/// The busybox root filesystem as an uncompressed tar.
pub fn busybox_rootfs_tar() -> Vec<u8> {
    let bb = std::fs::read(BUSYBOX).unwrap_or_else(|e| panic!("{BUSYBOX}: {e} (apt-get install busybox-static)"));
    let mut b = tar::Builder::new(Vec::new());
    for d in [
        "bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "root", "tmp", "mnt", "var",
        "var/tmp",
    ] {
        let mode = if d.ends_with("tmp") { 0o1777 } else { 0o755 };
        let mut h = header(d, EntryType::Directory, mode, 0);
        h.set_cksum();
        b.append(&h, std::io::empty()).expect("tar");
    }
    let mut h = header("bin/busybox", EntryType::Regular, 0o755, bb.len() as u64);
    h.set_cksum();
    b.append(&h, &bb[..]).expect("tar");
    let list = std::process::Command::new(BUSYBOX).arg("--list-full").output().expect("busybox --list-full");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet == "bin/busybox" || applet == "linuxrc" || applet.is_empty() {
            continue;
        }
        let depth = applet.matches('/').count();
        let target = format!("{}bin/busybox", "../".repeat(depth));
        let mut h = header(applet, EntryType::Symlink, 0o777, 0);
        h.set_link_name(&target).expect("link");
        h.set_cksum();
        b.append(&h, std::io::empty()).expect("tar");
    }
    for (path, data) in [
        ("etc/passwd", &b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"[..]),
        ("etc/group", &b"root:x:0:\nnogroup:x:65534:\n"[..]),
    ] {
        let mut h = header(path, EntryType::Regular, 0o644, data.len() as u64);
        h.set_cksum();
        b.append(&h, data).expect("tar");
    }
    b.into_inner().expect("tar")
}

pub fn busybox_spec(extra_layers: Vec<Layer>) -> ImageSpec {
    let mut layers = vec![Layer::gz(busybox_rootfs_tar())];
    layers.extend(extra_layers);
    ImageSpec {
        layers,
        config: json!({"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "FROM_IMAGE=yes"], "Cmd": ["/bin/sh", "-c", "echo default cmd"], "WorkingDir": "/"}),
        tag: "latest".into(),
    }
}

/// Writes the busybox image as an OCI layout under `dir/busybox`; returns
/// the `oci:` reference.
pub fn busybox_image(dir: &Path) -> String {
    let layout: PathBuf = dir.join("busybox");
    write_layout(&layout, &busybox_spec(Vec::new()));
    format!("oci:{}:latest", layout.display())
}

/// Deterministic incompressible bytes (xorshift), so a layer stays big.
pub fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
