//! The signature policy (containers-policy.json(5)): what may enter the
//! store, per transport and scope, and `skiff image trust show|set`
//! (docs/trust.md).

use std::path::{Path, PathBuf};
use std::process::Command;

use skiff_tests::cosign;
use skiff_tests::fixture::busybox_spec;
use skiff_tests::oci::{write_layout, Layer};
use skiff_tests::rawtar::{file, tar_of};
use skiff_tests::registry::Registry;
use skiff_tests::{stderr, Skiff};

fn policy(s: &Skiff, json: &str) -> String {
    let p = s.tmp().join("policy.json");
    std::fs::write(&p, json).unwrap();
    p.display().to_string()
}

#[test]
fn the_most_specific_scope_decides_what_enters_the_store() {
    let s = Skiff::new();
    let reg = Registry::start(s.tmp(), false);
    let layout = s.tmp().join("layouts/bb");
    write_layout(&layout, &busybox_spec(Vec::new()));
    let oci = format!("oci:{}:latest", layout.display());
    for repo in ["test/bb:1", "test/bb:2", "other/bb:1", "signed/bb:1"] {
        reg.push(&oci, repo);
    }
    let a = &reg.addr;
    let file = policy(
        &s,
        &format!(
            r#"{{"default": [{{"type": "reject"}}],
                "transports": {{
                  "docker": {{"{a}/test": [{{"type": "insecureAcceptAnything"}}], "{a}/test/bb:2": [{{"type": "reject"}}],
                              "{a}/signed": [{{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/nonexistent.gpg"}}]}},
                  "oci": {{"{layouts}": [{{"type": "insecureAcceptAnything"}}]}}
                }}}}"#,
            layouts = s.tmp().join("layouts").display()
        ),
    );
    let fetch = |image: &str| s.output(&["--signature-policy", &file, "fetch", "-q", image]);
    let o = fetch(&format!("docker://{a}/test/bb:1"));
    assert!(o.status.success(), "{}", stderr(&o));
    for (image, scope) in [
        (format!("docker://{a}/other/bb:1"), "the default: reject".to_string()),
        (format!("docker://{a}/test/bb:2"), format!("scope docker:{a}/test/bb:2: reject")),
    ] {
        let o = fetch(&image);
        assert_eq!(o.status.code(), Some(125), "{image}");
        let e = stderr(&o);
        assert!(e.contains(&format!("image {image} is rejected by the signature policy ({file}, {scope})")), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    // A signature requirement that cannot be met refuses the image.
    let signed = fetch(&format!("docker://{a}/signed/bb:1"));
    assert_eq!(signed.status.code(), Some(125));
    assert!(
        stderr(&signed).contains("requires signedBy: cannot read key file /nonexistent.gpg"),
        "{}",
        stderr(&signed)
    );
    // A pull by `run` is checked the same way, and leaves no pod.
    let o = s.output(&["--signature-policy", &file, "run", &format!("docker://{a}/other/bb:1"), "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("rejected by the signature policy"), "{}", stderr(&o));
    assert_eq!(s.list_json(), serde_json::json!([]));
    // Local transports by path: the layout's directory is in scope; a
    // copy elsewhere falls to the default.
    let o = s.output(&["--signature-policy", &file, "fetch", "-q", &oci]);
    assert!(o.status.success(), "{}", stderr(&o));
    let elsewhere = s.tmp().join("bb2");
    write_layout(&elsewhere, &busybox_spec(Vec::new()));
    let o = s.output(&["--signature-policy", &file, "fetch", "-q", &format!("oci:{}:latest", elsewhere.display())]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("rejected"), "{}", stderr(&o));
    let images = s.ok(&["image", "list", "--format", "json"]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&images).unwrap().as_array().unwrap().len(), 1, "{images}");
    // --insecure-policy lets anything in, and says so.
    let o = s.output(&[
        "--signature-policy",
        &file,
        "--insecure-policy",
        "fetch",
        "-q",
        &format!("docker://{a}/other/bb:1"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("--insecure-policy"), "{}", stderr(&o));
}

#[test]
fn a_bad_policy_is_an_error_naming_the_file_and_the_field() {
    let s = Skiff::new();
    let file = policy(&s, r#"{"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPth": "/k"}]}"#);
    let o = s.output(&["--signature-policy", &file, "fetch", &s.image]);
    assert_eq!(o.status.code(), Some(125));
    let e = stderr(&o);
    assert!(e.contains(&format!("signature policy {file}")) && e.contains("unknown field `keyPth`"), "{e}");
    let missing = s.tmp().join("none.json");
    let o = s.output(&["--signature-policy", missing.to_str().unwrap(), "fetch", &s.image]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("cannot read the signature policy"), "{}", stderr(&o));
    // Images already stored are not read again: no policy is consulted.
    s.ok(&["fetch", "-q", &s.image]);
    let stored = s.ok(&["image", "list", "--format", "json"]);
    let id = serde_json::from_str::<serde_json::Value>(&stored).unwrap()[0]["id"].as_str().unwrap().to_string();
    let o = s.output(&["--signature-policy", &file, "run", &id, "--exec", "/bin/true"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn trust_set_edits_the_policy_file_and_show_prints_it() {
    let s = Skiff::new();
    let file = s.tmp().join("etc/skiff-policy.json");
    let f = file.to_str().unwrap();
    let key = s.tmp().join("cosign.pub");
    std::fs::write(&key, "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n").unwrap();
    s.ok(&["--signature-policy", f, "image", "trust", "set", "--type", "reject", "default"]);
    s.ok(&["--signature-policy", f, "image", "trust", "set", "--type", "accept", "registry.example:5000/team"]);
    s.ok(&[
        "--signature-policy",
        f,
        "image",
        "trust",
        "set",
        "--type",
        "sigstoreSigned",
        "--pubkey",
        key.to_str().unwrap(),
        "*.example.com",
    ]);
    s.ok(&["--signature-policy", f, "image", "trust", "set", "--type", "accept", "oci:/srv/images"]);
    let v: serde_json::Value =
        serde_json::from_str(&s.ok(&["--signature-policy", f, "image", "trust", "show", "--format", "json"])).unwrap();
    assert_eq!(v["file"], f);
    assert_eq!(v["policy"]["default"], serde_json::json!([{"type": "reject"}]));
    let docker = &v["policy"]["transports"]["docker"];
    assert_eq!(docker["registry.example:5000/team"], serde_json::json!([{"type": "insecureAcceptAnything"}]));
    assert_eq!(
        docker["*.example.com"],
        serde_json::json!([{"type": "sigstoreSigned", "keyPath": key.to_str().unwrap()}])
    );
    assert_eq!(
        v["policy"]["transports"]["oci"]["/srv/images"],
        serde_json::json!([{"type": "insecureAcceptAnything"}])
    );
    let table = s.ok(&["--signature-policy", f, "image", "trust", "show"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("TRANSPORT") && lines[1].starts_with("*") && lines[1].ends_with("reject"), "{table}");
    assert!(table.contains(&format!("sigstoreSigned {}", key.display())), "{table}");
    // Bad requests change nothing.
    let before = std::fs::read(&file).unwrap();
    for (args, want) in [
        (vec!["--type", "signedBy", "r.example/x"], "needs --pubkey"),
        (vec!["--type", "reject", "--pubkey", key.to_str().unwrap(), "r.example/x"], "--pubkey is for"),
        (vec!["--type", "reject", "busybox"], "starts with a registry host"),
        (vec!["--type", "reject", "oci:relative"], "absolute"),
        (vec!["--type", "sigstoreSigned", "--pubkey", "/nonexistent.pub", "r.example/x"], "/nonexistent.pub"),
    ] {
        let mut a = vec!["--signature-policy", f, "image", "trust", "set"];
        a.extend(args.iter());
        let o = s.output(&a);
        assert_eq!(o.status.code(), Some(125), "{args:?}");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(std::fs::read(&file).unwrap(), before);
}

/// A GnuPG home of the test's own, with keys made here; its gpg-agent
/// (started by gpg and by skopeo's signing) is ended on drop.
struct GnuPg {
    home: PathBuf,
}

impl GnuPg {
    fn new(dir: &Path) -> GnuPg {
        let home = dir.join("gnupg");
        std::fs::create_dir(&home).unwrap();
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        GnuPg { home }
    }

    fn gpg(&self, args: &[&str]) -> Vec<u8> {
        let o = Command::new("gpg")
            .env("GNUPGHOME", &self.home)
            .args(["--batch", "--quiet"])
            .args(args)
            .output()
            .expect("gpg (gnupg) is installed by scripts/deps.sh");
        assert!(o.status.success(), "gpg {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    }

    /// A new signing key for `email`: its fingerprint, and its public key
    /// exported to `FILE` (binary, as `gpg --export` writes it).
    fn key(&self, email: &str, file: &Path) -> String {
        self.gpg(&[
            "--passphrase",
            "",
            "--quick-gen-key",
            &format!("skiff test <{email}>"),
            "default",
            "default",
            "never",
        ]);
        let list = String::from_utf8(self.gpg(&["--with-colons", "--list-keys", email])).unwrap();
        let fpr = list.lines().find_map(|l| l.strip_prefix("fpr:")).unwrap().trim_matches(':').to_string();
        std::fs::write(file, self.gpg(&["--export", email])).unwrap();
        fpr
    }
}

impl Drop for GnuPg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf").env("GNUPGHOME", &self.home).args(["--kill", "gpg-agent"]).status();
    }
}

#[test]
fn gpg_signatures_made_by_skopeo_are_verified() {
    let s = Skiff::new();
    let reg = Registry::start(s.tmp(), false);
    let a = reg.addr.clone();
    let gpg = GnuPg::new(s.tmp());
    let (trusted_key, other_key) = (s.tmp().join("trusted.gpg"), s.tmp().join("other.gpg"));
    let trusted = gpg.key("signer@example.com", &trusted_key);
    let other = gpg.key("other@example.com", &other_key);
    let sigs = s.tmp().join("sigstore");
    let regd = s.tmp().join("registries.d");
    std::fs::create_dir_all(&regd).unwrap();
    std::fs::write(
        regd.join("local.yaml"),
        format!("docker:\n  {a}:\n    lookaside: file://{0}\n    lookaside-staging: file://{0}\n", sigs.display()),
    )
    .unwrap();
    let one = s.tmp().join("one");
    write_layout(&one, &busybox_spec(Vec::new()));
    let two = s.tmp().join("two");
    write_layout(&two, &busybox_spec(vec![Layer::gz(tar_of(&[file("etc/two", b"2\n")]))]));
    let push = |layout: &Path, dest: &str, key: Option<&str>| {
        let mut c = Command::new("skopeo");
        c.env("GNUPGHOME", &gpg.home).args(["copy", "-q", "--dest-tls-verify=false", "--registries.d"]).arg(&regd);
        if let Some(k) = key {
            c.args(["--sign-by", k]);
        }
        let o = c.arg(format!("oci:{}:latest", layout.display())).arg(format!("docker://{a}/{dest}")).output().unwrap();
        assert!(o.status.success(), "skopeo copy to {dest}: {}", String::from_utf8_lossy(&o.stderr));
    };
    push(&one, "signed/bb:1", Some(&trusted));
    push(&one, "unsigned/bb:1", None);
    push(&one, "wrongkey/bb:1", Some(&other));
    push(&two, "copied/bb:1", None);
    push(&one, "renamed/bb:1", None);
    let file = policy(
        &s,
        &format!(
            r#"{{"default": [{{"type": "reject"}}], "transports": {{"docker": {{"{a}": [{{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "{}"}}]}}}}}}"#,
            trusted_key.display()
        ),
    );
    let regd_arg = regd.display().to_string();
    let fetch = |image: &str| {
        s.output(&[
            "--signature-policy",
            &file,
            "--registries.d",
            &regd_arg,
            "fetch",
            "-q",
            &format!("docker://{a}/{image}"),
        ])
    };
    let o = fetch("signed/bb:1");
    assert!(o.status.success(), "{}", stderr(&o));
    let inspect: serde_json::Value =
        serde_json::from_str(&s.ok(&["image", "inspect", &format!("{a}/signed/bb:1")])).unwrap();
    assert_eq!(
        inspect["signatures"],
        serde_json::json!([{"type": "signedBy", "key": trusted, "identity": format!("{a}/signed/bb:1")}]),
        "{inspect}"
    );
    let digest = |image: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(
            &String::from_utf8(
                Command::new("skopeo")
                    .args(["inspect", "--tls-verify=false", &format!("docker://{a}/{image}")])
                    .output()
                    .unwrap()
                    .stdout,
            )
            .unwrap(),
        )
        .unwrap();
        v["Digest"].as_str().unwrap().replace(':', "=")
    };
    let signed_dir = sigs.join(format!("signed/bb@{}", digest("signed/bb:1")));
    // A signature of another image, put where this image's would be: it
    // names the other manifest; and one of the same manifest under another
    // repository names the other image.
    for (image, repo) in [("copied/bb:1", "copied/bb"), ("renamed/bb:1", "renamed/bb")] {
        let dir = sigs.join(format!("{repo}@{}", digest(image)));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(signed_dir.join("signature-1"), dir.join("signature-1")).unwrap();
    }
    for (image, want) in [
        ("unsigned/bb:1", "no signature in".to_string()),
        ("wrongkey/bb:1", "signature 1: no trusted key made it".to_string()),
        ("copied/bb:1", format!("signature 1: it signs manifest {}", digest("signed/bb:1").replace('=', ":"))),
        ("renamed/bb:1", format!("signature 1: it signs image {a}/signed/bb:1, which does not match")),
    ] {
        let o = fetch(image);
        assert_eq!(o.status.code(), Some(125), "{image}");
        let e = stderr(&o);
        assert!(
            e.contains(&format!(
                "image docker://{a}/{image}: the signature policy ({file}, scope docker:{a}) requires signedBy: {want}"
            )),
            "{image}: {e}"
        );
        assert!(e.trim_end().ends_with("nothing stored") && e.lines().count() == 1, "{e}");
    }
    let images: serde_json::Value = serde_json::from_str(&s.ok(&["image", "list", "--format", "json"])).unwrap();
    assert_eq!(images.as_array().unwrap().len(), 1, "only the signed image: {images}");
    // The lookaside store over HTTP (python's http.server on loopback,
    // ended by its PID): the same signatures, the same verdicts.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string(), "--directory", sigs.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let http_d = s.tmp().join("http.d");
    std::fs::create_dir(&http_d).unwrap();
    std::fs::write(http_d.join("h.yaml"), format!("docker:\n  {a}/signed:\n    lookaside: http://127.0.0.1:{port}\n"))
        .unwrap();
    let over_http = || {
        s.output(&[
            "--signature-policy",
            &file,
            "--registries.d",
            http_d.to_str().unwrap(),
            "fetch",
            "-q",
            &format!("docker://{a}/signed/bb:1"),
        ])
    };
    let mut o = over_http();
    for _ in 0..50 {
        if o.status.success() || !stderr(&o).contains("Connection refused") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        o = over_http();
    }
    // A manifest changed after signing: the tag now names other content,
    // whose digest no signature names.
    push(&two, "signed/bb:1", None);
    let changed = over_http();
    let _ = server.kill();
    let _ = server.wait();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(changed.status.code(), Some(125));
    let want =
        format!("requires signedBy: no signature in http://127.0.0.1:{port}/signed/bb@{}", digest("signed/bb:1"));
    assert!(stderr(&changed).contains(&want), "{}", stderr(&changed));
    // Trusting the other key too (keyPaths) lets its image in.
    let both = policy(
        &s,
        &format!(
            r#"{{"default": [{{"type": "signedBy", "keyType": "GPGKeys", "keyPaths": ["{}", "{}"]}}]}}"#,
            trusted_key.display(),
            other_key.display()
        ),
    );
    let o = s.output(&[
        "--signature-policy",
        &both,
        "--registries.d",
        &regd_arg,
        "fetch",
        "-q",
        &format!("docker://{a}/wrongkey/bb:1"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn signatures_by_revoked_or_expired_keys_are_refused() {
    let s = Skiff::new();
    let reg = Registry::start(s.tmp(), false);
    let a = reg.addr.clone();
    let gpg = GnuPg::new(s.tmp());
    let one = s.tmp().join("one");
    write_layout(&one, &busybox_spec(Vec::new()));
    reg.push(&format!("oci:{}:latest", one.display()), "app/bb:1");
    let digest = {
        let o = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", &format!("docker://{a}/app/bb:1")])
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["Digest"].as_str().unwrap().to_string()
    };
    let payload = s.tmp().join("payload.json");
    std::fs::write(
        &payload,
        format!(r#"{{"critical":{{"identity":{{"docker-reference":"{a}/app/bb:1"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"atomic container signature"}},"optional":{{}}}}"#),
    )
    .unwrap();
    let sigs = s.tmp().join("sigstore");
    let regd = s.tmp().join("registries.d");
    std::fs::create_dir_all(&regd).unwrap();
    std::fs::write(regd.join("a.yaml"), format!("default-docker:\n  lookaside: file://{}\n", sigs.display())).unwrap();
    let sig_dir = sigs.join(format!("app/bb@{}", digest.replace(':', "=")));
    std::fs::create_dir_all(&sig_dir).unwrap();
    let check = |key: &Path, want: &str| {
        let file = policy(
            &s,
            &format!(
                r#"{{"default": [{{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "{}"}}]}}"#,
                key.display()
            ),
        );
        let o = s.output(&[
            "--signature-policy",
            &file,
            "--registries.d",
            regd.to_str().unwrap(),
            "fetch",
            "-q",
            &format!("docker://{a}/app/bb:1"),
        ]);
        assert_eq!(o.status.code(), Some(125), "{want}");
        assert!(stderr(&o).contains(want), "{want}: {}", stderr(&o));
    };
    // A key made in 2020 that expired a day later, and a signature of then.
    let old = s.tmp().join("old.gpg");
    gpg.gpg(&[
        "--faked-system-time",
        "20200101T000000!",
        "--passphrase",
        "",
        "--quick-gen-key",
        "old <old@example.com>",
        "default",
        "default",
        "1d",
    ]);
    gpg.gpg(&[
        "--faked-system-time",
        "20200101T120000!",
        "--yes",
        "--local-user",
        "old@example.com",
        "--output",
        sig_dir.join("signature-1").to_str().unwrap(),
        "--sign",
        payload.to_str().unwrap(),
    ]);
    std::fs::write(&old, gpg.gpg(&["--export", "old@example.com"])).unwrap();
    check(&old, "signature 1: it was made by key");
    check(&old, "which has expired");
    // A key revoked after it signed (its revocation certificate, which gpg
    // writes at creation, imported; the exported key carries it).
    let revoked = s.tmp().join("revoked.gpg");
    let fpr = gpg.key("revoked@example.com", &revoked);
    gpg.gpg(&[
        "--yes",
        "--local-user",
        &fpr,
        "--output",
        sig_dir.join("signature-1").to_str().unwrap(),
        "--sign",
        payload.to_str().unwrap(),
    ]);
    let cert = std::fs::read_to_string(gpg.home.join(format!("openpgp-revocs.d/{fpr}.rev"))).unwrap();
    // gpg guards the certificate with a leading ':' against accidents.
    let cert_file = s.tmp().join("revoke.asc");
    std::fs::write(
        &cert_file,
        cert.replace(":-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----BEGIN PGP PUBLIC KEY BLOCK-----"),
    )
    .unwrap();
    gpg.gpg(&["--import", cert_file.to_str().unwrap()]);
    std::fs::write(&revoked, gpg.gpg(&["--export", &fpr])).unwrap();
    check(&revoked, &format!("it was made by key {fpr}, which is revoked"));
    let images: serde_json::Value = serde_json::from_str(&s.ok(&["image", "list", "--format", "json"])).unwrap();
    assert_eq!(images, serde_json::json!([]));
}

#[test]
fn cosign_signatures_are_verified() {
    let s = Skiff::new();
    let reg = Registry::start(s.tmp(), false);
    let a = reg.addr.clone();
    let keys = s.tmp().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let (key, public) = cosign::key_pair(&keys, "cosign", 7);
    let (other, _) = cosign::key_pair(&keys, "other", 9);
    let regd = s.tmp().join("registries.d");
    std::fs::create_dir_all(&regd).unwrap();
    std::fs::write(regd.join("attach.yaml"), "default-docker:\n  use-sigstore-attachments: true\n").unwrap();
    let one = s.tmp().join("one");
    write_layout(&one, &busybox_spec(Vec::new()));
    let two = s.tmp().join("two");
    write_layout(&two, &busybox_spec(vec![Layer::gz(tar_of(&[file("etc/two", b"2\n")]))]));
    for (layout, repo) in [
        (&one, "signed/bb:1"),
        (&one, "unsigned/bb:1"),
        (&one, "wrongkey/bb:1"),
        (&two, "copied/bb:1"),
        (&one, "renamed/bb:1"),
    ] {
        reg.push(&format!("oci:{}:latest", layout.display()), repo);
    }
    let digest = |image: &str| -> String {
        let o = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", &format!("docker://{a}/{image}")])
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["Digest"].as_str().unwrap().to_string()
    };
    let (d1, d2) = (digest("signed/bb:1"), digest("copied/bb:1"));
    let signed = format!("{a}/signed/bb:1");
    cosign::attach(&key, &signed, &d1, &a, "signed/bb", s.tmp());
    cosign::attach(&other, &format!("{a}/wrongkey/bb:1"), &d1, &a, "wrongkey/bb", s.tmp());
    // signed/bb:1's signature attached to another manifest, and to the
    // same manifest in another repository.
    cosign::attach(&key, &signed, &d1, &a, "copied/bb", &s.tmp().join("c"));
    let copied_tag = format!("{}.sig", d2.replace(':', "-"));
    let o = Command::new("skopeo")
        .args(["copy", "-q", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(format!("docker://{a}/copied/bb:{}.sig", d1.replace(':', "-")))
        .arg(format!("docker://{a}/copied/bb:{copied_tag}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    cosign::attach(&key, &signed, &d1, &a, "renamed/bb", &s.tmp().join("r"));
    let file = policy(
        &s,
        &format!(
            r#"{{"default": [{{"type": "reject"}}], "transports": {{"docker": {{"{a}": [{{"type": "sigstoreSigned", "keyPath": "{}"}}]}}}}}}"#,
            public.display()
        ),
    );
    let fetch_with = |dir: &Path, image: &str| {
        s.output(&[
            "--signature-policy",
            &file,
            "--registries.d",
            dir.to_str().unwrap(),
            "fetch",
            "-q",
            &format!("docker://{a}/{image}"),
        ])
    };
    let o = fetch_with(&regd, "signed/bb:1");
    assert!(o.status.success(), "{}", stderr(&o));
    let inspect: serde_json::Value = serde_json::from_str(&s.ok(&["image", "inspect", &signed])).unwrap();
    assert_eq!(
        inspect["signatures"],
        serde_json::json!([{"type": "sigstoreSigned", "key": public.display().to_string(), "identity": signed}])
    );
    let no_attachments = s.tmp().join("empty.d");
    std::fs::create_dir(&no_attachments).unwrap();
    for (dir, image, want) in [
        (&regd, "unsigned/bb:1", format!("no signature attached to {a}/unsigned/bb@{d1}")),
        (&regd, "wrongkey/bb:1", "signature 1: no trusted key made it".to_string()),
        (&regd, "copied/bb:1", format!("signature 1: it signs manifest {d1}, not {d2}")),
        (&regd, "renamed/bb:1", format!("signature 1: it signs image {signed}, which does not match")),
        (&no_attachments, "signed/bb:1", "use-sigstore-attachments is not enabled".to_string()),
    ] {
        let o = fetch_with(dir, image);
        assert_eq!(o.status.code(), Some(125), "{image}");
        let e = stderr(&o);
        let head = format!(
            "image docker://{a}/{image}: the signature policy ({file}, scope docker:{a}) requires sigstoreSigned: "
        );
        assert!(e.contains(&head) && e.contains(&want), "{image}: {e}");
        assert!(e.trim_end().ends_with("nothing stored") && e.lines().count() == 1, "{e}");
    }
    let images: serde_json::Value = serde_json::from_str(&s.ok(&["image", "list", "--format", "json"])).unwrap();
    assert_eq!(images.as_array().unwrap().len(), 1, "only the signed image: {images}");
}
