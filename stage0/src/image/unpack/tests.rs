//! Hostile and ordinary layers. These tests chown and mknod, so they expect
//! to run as root (as the whole suite does).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use skiff_tests::rawtar::{entry as e, file, link, tar_of, Entry as E};
use tar::EntryType;

use super::*;

struct Fixture {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
    outside: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&root).unwrap();
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"host data").unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o750)).unwrap();
    Fixture { _tmp: tmp, root, outside }
}

impl Fixture {
    fn unpack(&self, entries: &[E<'_>]) -> std::result::Result<Stats, UnpackError> {
        unpack_layer(&tar_of(entries)[..], &self.root).map(|(s, _)| s)
    }

    /// The outside directory is exactly as the fixture made it.
    fn assert_outside_untouched(&self) {
        let names: Vec<_> = std::fs::read_dir(&self.outside).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("secret")], "something was created outside the root");
        assert_eq!(std::fs::read(self.outside.join("secret")).unwrap(), b"host data");
        let md = std::fs::metadata(self.outside.join("secret")).unwrap();
        assert_eq!(md.nlink(), 1, "the outside file gained a hard link");
        assert_eq!(std::fs::metadata(&self.outside).unwrap().permissions().mode() & 0o7777, 0o750);
    }

    fn out(&self) -> String {
        self.outside.display().to_string()
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[test]
fn ordinary_layer_keeps_modes_owners_and_mtimes() {
    if !is_root() {
        return;
    }
    let f = fixture();
    let stats = f
        .unpack(&[
            E { mode: 0o755, ..e("bin/", EntryType::Directory) },
            E { mode: 0o4755, uid: 1000, ..file("bin/tool", b"#!/bin/sh\n") },
            link("bin/sh", EntryType::Symlink, "tool"),
            link("bin/hard", EntryType::Link, "bin/tool"),
            E { mode: 0o555, mtime: 1_234_567_890, ..e("ro/", EntryType::Directory) },
            file("ro/inner", b"x"),
            file("implicit/parents/file", b"y"),
            e("dev/sda", EntryType::Block),
            e("fifo", EntryType::Fifo),
        ])
        .unwrap();
    assert_eq!(stats.skipped_devices, 1);
    let md = std::fs::metadata(f.root.join("bin/tool")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o4755, "setuid bit survives chown");
    assert_eq!((md.uid(), md.gid()), (1000, 1000));
    assert_eq!(md.mtime(), 1_600_000_000);
    assert_eq!(std::fs::read_link(f.root.join("bin/sh")).unwrap(), Path::new("tool"));
    assert_eq!(std::fs::metadata(f.root.join("bin/hard")).unwrap().ino(), md.ino());
    let ro = std::fs::metadata(f.root.join("ro")).unwrap();
    assert_eq!((ro.mode() & 0o7777, ro.mtime()), (0o555, 1_234_567_890), "dir metadata applied last");
    assert_eq!(std::fs::read(f.root.join("implicit/parents/file")).unwrap(), b"y");
    assert!(!f.root.join("dev/sda").exists(), "device nodes are skipped");
    assert!(std::fs::symlink_metadata(f.root.join("fifo")).unwrap().file_type().is_fifo_like());
}

trait FifoLike {
    fn is_fifo_like(&self) -> bool;
}
impl FifoLike for std::fs::FileType {
    fn is_fifo_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_fifo()
    }
}

#[test]
fn dotdot_is_refused() {
    let f = fixture();
    for name in ["../outside/pwned", "a/../../outside/pwned", "/../outside/pwned"] {
        let err = f.unpack(&[file(name, b"x")]).unwrap_err();
        assert!(err.to_string().contains("'..'"), "{name}: {err}");
    }
    f.assert_outside_untouched();
}

#[test]
fn absolute_paths_stay_inside() {
    if !is_root() {
        return;
    }
    let f = fixture();
    let abs = format!("{}/pwned", f.out());
    f.unpack(&[file(&abs, b"x")]).unwrap();
    f.assert_outside_untouched();
    assert!(f.root.join(abs.trim_start_matches('/')).exists());
}

#[test]
fn writing_through_an_absolute_symlink_stays_inside() {
    if !is_root() {
        return;
    }
    let f = fixture();
    let out = f.out();
    // The link resolves inside the layer root, where nothing exists: the
    // entry is refused rather than its directories invented.
    let err = f.unpack(&[link("esc", EntryType::Symlink, &out), file("esc/pwned", b"x")]).unwrap_err();
    assert!(err.to_string().contains("esc"), "{err}");
    f.assert_outside_untouched();
    // A link to a directory the layer does have is followed inside the root.
    let g = fixture();
    g.unpack(&[e("dir/", EntryType::Directory), link("esc", EntryType::Symlink, "/dir"), file("esc/pwned", b"x")])
        .unwrap();
    g.assert_outside_untouched();
    assert!(g.root.join("dir/pwned").exists());
}

#[test]
fn writing_through_a_relative_symlink_stays_inside() {
    if !is_root() {
        return;
    }
    let f = fixture();
    f.unpack(&[link("up", EntryType::Symlink, "../../../../../../.."), file("up/outside-pwned", b"x")]).unwrap();
    f.assert_outside_untouched();
    assert!(f.root.join("outside-pwned").exists());
}

#[test]
fn a_file_replaces_a_symlink_instead_of_writing_through_it() {
    if !is_root() {
        return;
    }
    let f = fixture();
    let target = format!("{}/secret", f.out());
    f.unpack(&[link("s", EntryType::Symlink, &target), file("s", b"mine")]).unwrap();
    f.assert_outside_untouched();
    assert_eq!(std::fs::read(f.root.join("s")).unwrap(), b"mine");
}

#[test]
fn hard_links_cannot_reach_outside_files() {
    if !is_root() {
        return;
    }
    let f = fixture();
    let abs = format!("{}/secret", f.out());
    assert!(f.unpack(&[link("h", EntryType::Link, &abs)]).is_err());
    assert!(f.unpack(&[link("h2", EntryType::Link, "../outside/secret")]).is_err());
    let out = f.out();
    assert!(f.unpack(&[link("d", EntryType::Symlink, &out), link("h3", EntryType::Link, "d/secret")]).is_err());
    f.assert_outside_untouched();
}

#[test]
fn replacing_a_directory_with_a_symlink_does_not_redirect_its_chmod() {
    if !is_root() {
        return;
    }
    // RUSTSEC-2026-0067 in tar's own unpack: dir entry, then a symlink of
    // the same name, then the deferred chmod followed the symlink.
    let f = fixture();
    let out = f.out();
    f.unpack(&[E { mode: 0o777, ..e("x/", EntryType::Directory) }, link("x", EntryType::Symlink, &out)]).unwrap();
    f.assert_outside_untouched();
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    if !is_root() {
        return;
    }
    let f = fixture();
    f.unpack(&[e("data/", EntryType::Directory), file("data/.wh.gone", b""), file("data/opq/.wh..wh..opq", b"")])
        .unwrap();
    let md = std::fs::symlink_metadata(f.root.join("data/gone")).unwrap();
    use std::os::unix::fs::FileTypeExt;
    assert!(md.file_type().is_char_device());
    assert_eq!(md.rdev(), 0);
    let mut buf = [0u8; 4];
    let n = rustix::fs::getxattr(f.root.join("data/opq"), whiteout::OPAQUE_XATTR, &mut buf[..]).unwrap();
    assert_eq!(&buf[..n], b"y");
    assert!(!f.root.join("data/opq/.wh..wh..opq").exists());
}

#[test]
fn the_owner_that_means_unchanged_is_refused() {
    // Found by the unpack_layer fuzz target (a seed of scripts/fuzz-seeds.py).
    let f = fixture();
    // (rawtar gives the gid the uid's value.)
    let err = f.unpack(&[E { uid: u32::MAX.into(), ..file("f", b"x") }]).unwrap_err();
    assert!(err.to_string().contains("uid 4294967295 is not an owner"), "{err}");
    f.assert_outside_untouched();
}

#[test]
fn hostile_whiteouts_and_sparse_files_are_refused() {
    let f = fixture();
    assert!(f.unpack(&[file(".wh..", b"")]).is_err());
    assert!(f.unpack(&[e("sparse", EntryType::GNUSparse)]).is_err());
    f.assert_outside_untouched();
}

#[test]
fn truncated_streams_fail() {
    let f = fixture();
    let mut t = tar_of(&[file("big", &[7u8; 5000])]);
    t.truncate(1000);
    assert!(unpack_layer(&t[..], &f.root).is_err());
}
