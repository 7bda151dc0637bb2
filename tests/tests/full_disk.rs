//! A full disk (docs/reliability.md): the store on a small filesystem made
//! for the test. A fetch that does not fit fails naming the store and keeps
//! no partial blob; a pod that fills the disk gets ENOSPC inside, its status
//! is still run's and its exit is recorded out of the store's reserve;
//! freeing space is all the repair there is.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::Digest;
use skiff_tests::{stderr, Skiff};

/// An ext4 of `mb` MiB (no blocks reserved for root: skiff runs as root)
/// loop-mounted on the test's store directory, lazily unmounted on drop.
struct SmallFs {
    mountpoint: PathBuf,
}

impl SmallFs {
    fn on_store(s: &Skiff, mb: u64) -> SmallFs {
        let image = s.tmp().join("fs.img");
        std::fs::File::create(&image).unwrap().set_len(mb << 20).unwrap();
        let run = |c: &mut Command| {
            let o = c.output().unwrap();
            assert!(o.status.success(), "{c:?}: {}", String::from_utf8_lossy(&o.stderr));
        };
        run(Command::new("mkfs.ext4").args(["-q", "-F", "-m", "0"]).arg(&image));
        std::fs::create_dir_all(&s.dir).unwrap();
        run(Command::new("mount").args(["-o", "loop"]).arg(&image).arg(&s.dir));
        SmallFs { mountpoint: s.dir.clone() }
    }

    fn free_bytes(&self) -> u64 {
        let st = rustix::fs::statvfs(&self.mountpoint).unwrap();
        st.f_bavail * st.f_frsize
    }

    /// Fills it until `leave` bytes are free.
    fn fill(&self, leave: u64) -> PathBuf {
        let filler = self.mountpoint.join("filler");
        let size = self.free_bytes().saturating_sub(leave);
        let f = std::fs::File::create(&filler).unwrap();
        rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, size).unwrap();
        filler
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mountpoint).status();
    }
}

/// Every stored blob's content hashes to its name.
fn blobs_are_whole(store: &Path) -> bool {
    let dir = store.join("cas/blobs/sha256");
    std::fs::read_dir(dir).into_iter().flatten().flatten().all(|e| {
        let data = std::fs::read(e.path()).unwrap();
        let hex: String = sha2::Sha256::digest(&data).iter().map(|b| format!("{b:02x}")).collect();
        hex == e.file_name().to_string_lossy()
    })
}

fn scratch_is_empty(store: &Path) -> bool {
    std::fs::read_dir(store.join("tmp")).map_or(true, |mut d| d.next().is_none())
}

#[test]
fn a_fetch_that_does_not_fit_fails_naming_the_store_and_keeps_nothing_partial() {
    let s = Skiff::new();
    let fs = SmallFs::on_store(&s, 32);
    s.ok(&["image", "list"]); // the store's layout
    let filler = fs.fill(256 << 10);
    let o = s.output(&["fetch", &s.image]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.trim_end().ends_with(&format!("(store {})", s.dir.display())), "{err}");
    assert!(blobs_are_whole(&s.dir) && scratch_is_empty(&s.dir), "no partial blob or layer");
    assert_eq!(s.ok(&["image", "list", "--format", "json"]).trim(), "[]");
    // Freeing space is the whole repair.
    std::fs::remove_file(filler).unwrap();
    s.ok(&["fetch", &s.image]);
    s.ok(&["run", "--rm", "--net", "none", &s.image, "--exec", "/bin/true"]);
    drop(fs);
}

#[test]
fn a_pod_that_fills_the_disk_gets_enospc_and_its_status_is_still_runs() {
    let s = Skiff::new();
    let fs = SmallFs::on_store(&s, 48);
    s.ok(&["fetch", &s.image]);
    let before = fs.free_bytes();
    // dd leaves a few blocks that ext4 kept for its delayed allocation;
    // small files take them too, to the last one.
    let script = "dd if=/dev/zero of=/fill bs=1M 2>/dev/null; echo dd ended $?; \
                  i=0; while echo x 2>/dev/null >/f$i; do i=$((i+1)); done; exit 3";
    let o = s.output(&["run", "--net", "none", &s.image, "--exec", "/bin/sh", "--", "-c", script]);
    assert_eq!(o.status.code(), Some(3), "the app's status: {}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "dd ended 1\n", "dd saw ENOSPC");
    // The exit record came out of the store's reserve, and the rest of it
    // is free now.
    let reserve = s.dir.join(".reserve");
    assert!(!reserve.exists() && fs.free_bytes() < 256 << 10, "the disk was full");
    let pods = s.list_json();
    assert_eq!(pods.as_array().map(Vec::len), Some(1));
    assert_eq!(pods[0]["state"], "exited");
    let status = s.status_json(pods[0]["uuid"].as_str().unwrap());
    assert_eq!(status["apps"][0]["exit_code"], 3, "the exit was recorded on the full disk: {status}");
    s.ok(&["gc", "--grace-period", "0"]);
    assert!(fs.free_bytes() + (1 << 20) >= before, "gc gave the space back");
    assert_eq!(std::fs::metadata(&reserve).map(|m| m.len()).ok(), Some(256 << 10), "and made the reserve again");
    s.ok(&["run", "--rm", "--net", "none", &s.image, "--exec", "/bin/true"]);
    drop(fs);
}
