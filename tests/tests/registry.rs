//! Pulling from a real registry (Debian's docker-registry on loopback).

use std::process::Output;

use skiff_tests::fixture::{busybox_spec, noise};
use skiff_tests::flaky_registry::FlakyRegistry;
use skiff_tests::oci::{write_layout, Layer};
use skiff_tests::rawtar::{dir, file, tar_of};
use skiff_tests::registry::Registry;
use skiff_tests::{stderr, Skiff};

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

/// The busybox image plus `extra` layers, as a local layout `oci:` ref.
fn layout(s: &Skiff, name: &str, extra: Vec<Vec<u8>>) -> (String, String) {
    let p = s.tmp().join(name);
    let id = write_layout(&p, &busybox_spec(extra.into_iter().map(Layer::gz).collect()));
    (format!("oci:{}:latest", p.display()), id)
}

#[test]
fn pull_run_and_dedup_layers() {
    let s = Skiff::new();
    let reg = Registry::start(s.tmp(), false);
    let (base, base_id) = layout(&s, "base", vec![]);
    let l2 = tar_of(&[dir("data"), file("data/new", b"layer two\n"), file("bin/.wh.vi", b"")]);
    let (more, more_id) = layout(&s, "more", vec![l2]);
    reg.push(&base, "test/bb:1");
    reg.push(&more, "test/more:1");
    let img = format!("docker://{}/test/bb:1", reg.addr);
    assert_eq!(s.ok(&["fetch", "-q", &img]), format!("{base_id}\n"));
    assert_eq!(s.ok(&["run", &img, "--exec", "/bin/echo", "--", "pulled"]), "pulled\n");
    // The shared busybox layer is not downloaded again.
    let o = s.output(&["fetch", &format!("docker://{}/test/more:1", reg.addr)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), format!("{more_id}\n"));
    assert_eq!(stderr(&o).matches("already in the store").count(), 1, "{}", stderr(&o));
    assert_eq!(stderr(&o).matches(" bytes in ").count(), 1, "{}", stderr(&o));
    let out = s.ok_sh(&format!("docker://{}/test/more:1", reg.addr), "cat /data/new; test -e /bin/vi || echo no-vi");
    assert_eq!(out, "layer two\nno-vi\n");
    // Pinned by digest, and listed under the normalised name.
    let inspect: serde_json::Value = serde_json::from_str(&s.ok(&["image", "inspect", &img[9..]])).unwrap();
    let digest = inspect["manifest_digest"].as_str().unwrap();
    let pinned = format!("docker://{}/test/bb@{digest}", reg.addr);
    assert_eq!(s.ok(&["fetch", "-q", &pinned]), format!("{base_id}\n"));
    let list = s.ok(&["image", "list"]);
    assert!(list.contains(&format!("{}/test/bb:1", reg.addr)), "{list}");
}

#[test]
fn registry_errors_are_one_line_and_store_nothing() {
    let s = Skiff::new();
    let reg = Registry::start(s.tmp(), false);
    let (base, _) = layout(&s, "base", vec![]);
    reg.push(&base, "test/bb:1");
    let cases = [
        (format!("docker://{}/test/missing:1", reg.addr), "not found"),
        (format!("docker://{}/test/bb:nope", reg.addr), "test/bb:nope"),
        ("docker://127.0.0.1:1/test/bb:1".to_string(), "127.0.0.1:1"),
        ("docker://Not/A/Valid/Ref".to_string(), "invalid image reference"),
    ];
    for (img, needle) in &cases {
        let o = s.output(&["fetch", "-q", img]);
        assert_eq!(code(&o), 125, "{img}");
        assert_eq!(stderr(&o).lines().count(), 1, "{img}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{img}: {}", stderr(&o));
    }
    let o = s.output(&["fetch", "-q", "--platform", "linux/arm64", &format!("docker://{}/test/bb:1", reg.addr)]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("linux/arm64"), "{}", stderr(&o));
    assert!(s.ok(&["image", "list", "--no-legend"]).is_empty());
}

#[test]
fn a_corrupt_blob_in_the_registry_is_named() {
    let s = Skiff::new();
    let reg = Registry::start(s.tmp(), false);
    let l2 = tar_of(&[file("payload", &[42u8; 50_000])]);
    let (img, _) = layout(&s, "corrupt", vec![l2]);
    reg.push(&img, "test/corrupt:1");
    // Flip a byte in the biggest blob the registry stores (a layer).
    let blob = reg.blob_files().into_iter().max_by_key(|p| std::fs::metadata(p).unwrap().len()).unwrap();
    let digest = blob.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned();
    let mut data = std::fs::read(&blob).unwrap();
    let i = data.len() / 2;
    data[i] ^= 0xff;
    std::fs::write(&blob, &data).unwrap();
    let o = s.output(&["fetch", "-q", &format!("docker://{}/test/corrupt:1", reg.addr)]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains(&digest), "names the blob {digest}: {}", stderr(&o));
    assert!(stderr(&o).contains("digest mismatch"), "{}", stderr(&o));
    assert!(!s.dir.join("cas/blobs/sha256").join(&digest).exists());
    assert_eq!(std::fs::read_dir(s.dir.join("tmp")).unwrap().count(), 0);
    assert!(s.ok(&["image", "list", "--no-legend"]).is_empty());
}

#[test]
fn credentials_from_an_auth_file() {
    let s = Skiff::new();
    let reg = Registry::start(s.tmp(), true);
    let (base, id) = layout(&s, "base", vec![]);
    reg.push(&base, "private/bb:1");
    let img = format!("docker://{}/private/bb:1", reg.addr);
    let o = s.output(&["fetch", "-q", &img]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("auth.json"), "says how to log in: {}", stderr(&o));

    use base64::Engine;
    let write_auth = |name: &str, creds: &str| {
        let p = s.tmp().join(name);
        let b64 = base64::engine::general_purpose::STANDARD.encode(creds);
        std::fs::write(&p, format!(r#"{{"auths":{{"{}":{{"auth":"{b64}"}}}}}}"#, reg.addr)).unwrap();
        p
    };
    let good = write_auth("good.json", "skiff:s3cret");
    let bad = write_auth("bad.json", "skiff:wrong");
    let o = s.output(&["--authfile", bad.to_str().unwrap(), "fetch", "-q", &img]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("credentials"), "{}", stderr(&o));
    assert_eq!(s.ok(&["--authfile", good.to_str().unwrap(), "fetch", "-q", &img]), format!("{id}\n"));
    // REGISTRY_AUTH_FILE, as podman and skopeo read it.
    let s2 = Skiff::new();
    let o = s2.cmd(&["fetch", "-q", &img]).env("REGISTRY_AUTH_FILE", &good).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn pull_policies() {
    let s = Skiff::new();
    let (base, _) = layout(&s, "base", vec![]);
    let img;
    {
        let reg = Registry::start(s.tmp(), false);
        reg.push(&base, "test/bb:1");
        img = format!("docker://{}/test/bb:1", reg.addr);
        let o = s.output(&["run", "--pull-policy", "never", &img, "--exec", "/bin/true"]);
        assert_eq!(code(&o), 125);
        assert!(stderr(&o).contains("never"), "{}", stderr(&o));
        s.ok(&["run", &img, "--exec", "/bin/true"]);
    } // the registry is gone from here on
    assert_eq!(s.ok(&["run", &img, "--exec", "/bin/echo", "--", "cached"]), "cached\n");
    assert_eq!(s.ok(&["run", "--pull-policy", "never", &img, "--exec", "/bin/echo", "--", "never"]), "never\n");
    let o = s.output(&["run", "--pull-policy", "update", &img, "--exec", "/bin/true"]);
    assert_eq!(code(&o), 125, "update asks the registry, which is gone");
}

#[test]
fn concurrent_fetches_store_the_image_once() {
    let s = Skiff::new();
    let reg = Registry::start(s.tmp(), false);
    let l2 = tar_of(&[file("big", &vec![7u8; 5_000_000])]);
    let (img, id) = layout(&s, "big", vec![l2]);
    reg.push(&img, "test/big:1");
    let r = format!("docker://{}/test/big:1", reg.addr);
    let a = s.cmd(&["fetch", "-q", &r]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let b = s.cmd(&["fetch", "-q", &r]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    for c in [a, b] {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success());
        assert_eq!(String::from_utf8_lossy(&o.stdout), format!("{id}\n"));
    }
    assert_eq!(s.ok(&["image", "list", "--no-legend"]).lines().count(), 1);
    assert_eq!(std::fs::read_dir(s.dir.join("tmp")).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(s.dir.join("layers/sha256")).unwrap().count(), 2);
}

#[test]
fn a_killed_pull_leaves_nothing_and_the_next_one_completes() {
    let s = Skiff::new();
    let reg = Registry::start(s.tmp(), false);
    let l2 = tar_of(&[file("noise", &noise(60_000_000))]);
    let (img, id) = layout(&s, "noisy", vec![l2]);
    reg.push(&img, "test/noisy:1");
    let r = format!("docker://{}/test/noisy:1", reg.addr);
    let mut child = s.spawn(&["fetch", "-q", &r]);
    let tmp = s.dir.join("tmp");
    s.wait_for("the pull to write scratch files", || {
        std::fs::read_dir(&tmp).is_ok_and(|d| d.flatten().any(|e| e.metadata().is_ok_and(|m| m.len() > 0)))
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(s.ok(&["image", "list", "--no-legend"]).is_empty(), "no image after a killed pull");
    assert_eq!(s.ok(&["fetch", "-q", &r]), format!("{id}\n"));
    s.ok(&["image", "gc"]);
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "image gc removes the leftovers");
    assert_eq!(s.ok(&["run", &r, "--exec", "/bin/sh", "--", "-c", "wc -c < /noise"]).trim(), "60000000");
}

#[test]
fn https_is_verified_against_the_trusted_roots() {
    let s = Skiff::new();
    let (reg, ca) = Registry::start_tls(s.tmp());
    let (base, id) = layout(&s, "base", vec![]);
    reg.push(&base, "tls/bb:1");
    let img = format!("docker://{}/tls/bb:1", reg.addr);
    // Not in the roots: refused, and not retried over plain HTTP.
    let o = s.cmd(&["fetch", "-q", &img]).env("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt").output().unwrap();
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("certificate"), "{}", stderr(&o));
    // With the CA among the roots, the same pull works over HTTPS.
    let o = s.cmd(&["fetch", "-q", &img]).env("SSL_CERT_FILE", &ca).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), format!("{id}\n"));
}

#[test]
fn a_terminal_gets_progress_bars() {
    let s = Skiff::new();
    let reg = Registry::start(s.tmp(), false);
    let (base, _) = layout(&s, "base", vec![]);
    reg.push(&base, "test/bb:1");
    let cmd = format!(
        "{} --dir {} fetch docker://{}/test/bb:1",
        skiff_tests::skiff::bin_dir().join("skiff").display(),
        s.dir.display(),
        reg.addr
    );
    // script(1) gives skiff a pseudo-terminal as stdout and stderr.
    let o = std::process::Command::new("script").args(["-q", "-e", "-c", &cmd, "/dev/null"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let tty = String::from_utf8_lossy(&o.stdout);
    assert!(tty.contains("sha256:") && tty.contains("[") && tty.contains("MiB"), "no progress bar: {tty:?}");
}

#[test]
fn bearer_tokens_retries_and_resumed_downloads() {
    use std::sync::atomic::Ordering;
    let s = Skiff::new();
    let (_, id) = layout(&s, "img", vec![tar_of(&[file("noise", &noise(3_000_000))])]);
    let reg = FlakyRegistry::start(&s.tmp().join("img"));
    reg.faults.bearer.store(true, Ordering::Relaxed);
    reg.faults.unavailable.store(2, Ordering::Relaxed);
    reg.faults.cut_blobs_after.store(100_000, Ordering::Relaxed);
    let img = format!("docker://{}/test/img:latest", reg.addr);
    assert_eq!(s.ok(&["fetch", "-q", &img]), format!("{id}\n"));
    assert!(reg.faults.range_requests.load(Ordering::Relaxed) >= 1, "a cut download was resumed with Range");
    assert_eq!(s.ok_sh(&img, "wc -c < /noise").trim(), "3000000");
}

#[test]
fn a_registry_that_stays_down_is_given_up_on() {
    use std::sync::atomic::Ordering;
    let s = Skiff::new();
    layout(&s, "img", vec![]);
    let reg = FlakyRegistry::start(&s.tmp().join("img"));
    reg.faults.unavailable.store(1000, Ordering::Relaxed);
    let o = s.output(&["fetch", "-q", &format!("docker://{}/test/img:latest", reg.addr)]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("503") && stderr(&o).contains("3 attempts"), "{}", stderr(&o));
    assert_eq!(reg.faults.requests.load(Ordering::Relaxed), 3, "bounded retries");
}
