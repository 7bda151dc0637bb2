//! The signature policy (containers-policy.json(5)): what may enter the
//! store, per transport and scope, and `skiff image trust show|set`
//! (docs/trust.md).

use skiff_tests::fixture::busybox_spec;
use skiff_tests::oci::write_layout;
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
    for repo in ["test/bb:1", "test/bb:2", "other/bb:1"] {
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
    // Signatures skiff cannot verify yet refuse the image: never weaker.
    let signed = fetch(&format!("docker://{a}/signed/bb:1"));
    assert_eq!(signed.status.code(), Some(125));
    assert!(
        stderr(&signed).contains("requires signedBy signatures, which skiff cannot verify yet"),
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
