//! `--pod-manifest FILE`: pods described in TOML (docs/pod-manifest.md).

use skiff_tests::{stderr, Skiff};

fn write(s: &Skiff, text: &str) -> String {
    let p = s.tmp().join("pod.toml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn a_pod_of_two_apps_from_a_file() {
    let s = Skiff::new();
    let env_file = s.tmp().join("env");
    std::fs::write(&env_file, "FROM_FILE=yes\n").unwrap();
    let file = write(
        &s,
        &format!(
            r#"
hostname = "from-toml"
net = "none"
exit-policy = "any"
dns = ["192.0.2.53"]

[[app]]
name = "job"
image = "{img}"
exec = "/bin/sh"
args = ["-c", "sleep 0.3; echo $GREETING $FROM_FILE $(hostname) $(id -u) $(cat /data/x) $(grep -c 192.0.2.53 /etc/resolv.conf)"]
env = {{ GREETING = "hello" }}
env-files = ["{env}"]
user = "1000"
volumes = ["shared:/data"]

[[app]]
name = "sidecar"
image = "{img}"
exec = "/bin/sh"
args = ["-c", "echo side > /v/x; exec sleep 60"]
volumes = ["shared:/v"]
memory = "48M"
memory-reservation = "24M"
"#,
            img = s.image,
            env = env_file.display()
        ),
    );
    let o = s.output(&["run", "--pod-manifest", &file]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hello yes from-toml 1000 side 1\n");
    let m: serde_json::Value = serde_json::from_str(&s.ok(&["cat-manifest", &s.only_pod()])).unwrap();
    assert_eq!(m["exit_policy"], "any");
    assert_eq!(m["net"], "none");
    assert_eq!(m["apps"][1]["resources"]["memory_bytes"], 48u64 << 20);
    assert_eq!(m["apps"][1]["resources"]["memory_reservation_bytes"], 24u64 << 20);
    // Options given on the command line win over the file's.
    let o = s.output(&["run", "--hostname", "from-cli", "--pod-manifest", &file]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains(" from-cli "));
}

#[test]
fn prepare_takes_a_pod_manifest_too() {
    let s = Skiff::new();
    let file =
        write(&s, &format!("[[app]]\nimage = \"{}\"\nexec = \"/bin/sh\"\nargs = [\"-c\", \"exit 4\"]\n", s.image));
    let uuid = s.ok(&["prepare", "-q", "--pod-manifest", &file]);
    let o = s.output(&["run-prepared", uuid.trim()]);
    assert_eq!(o.status.code(), Some(4));
}

#[test]
fn a_file_names_and_labels_its_pod() {
    let s = Skiff::new();
    let file = write(
        &s,
        &format!("name = \"tagged\"\nlabels = {{ app = \"web\" }}\nannotations = {{ owner = \"a\" }}\n[[app]]\nimage = \"{}\"\nexec = \"/bin/true\"\n", s.image),
    );
    s.ok(&["prepare", "-q", "--pod-manifest", &file]);
    let status = s.status_json("tagged");
    assert_eq!(status["labels"], serde_json::json!({"app": "web"}));
    assert_eq!(status["annotations"], serde_json::json!({"owner": "a"}));
    // --name wins over the file's.
    s.ok(&["prepare", "-q", "--name", "other", "--pod-manifest", &file]);
    assert_eq!(s.status_json("other")["labels"]["app"], "web");
}

#[test]
fn mistakes_name_the_file_line_and_key_and_create_nothing() {
    let s = Skiff::new();
    let file = write(&s, &format!("hostname = \"x\"\n\n[[app]]\nimage = \"{}\"\nmemroy = \"1G\"\n", s.image));
    let o = s.output(&["run", "--pod-manifest", &file]);
    assert_eq!(o.status.code(), Some(125));
    let err = stderr(&o);
    assert!(err.contains(&format!("{file}:5:1:")) && err.contains("memroy"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    let file = write(&s, &format!("[[app]]\nimage = \"{}\"\nmemory = \"lots\"\n", s.image));
    let err = stderr(&s.output(&["run", "--pod-manifest", &file]));
    assert!(err.contains("app 1") && err.contains("lots"), "{err}");
    let o = s.output(&["run", "--pod-manifest", &file, &s.image]);
    assert_eq!(o.status.code(), Some(125));
    let o = s.output(&["run", "--pod-manifest", "/nonexistent/pod.toml"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("/nonexistent/pod.toml"));
    assert_eq!(s.list_json().as_array().map(Vec::len), Some(0));
}
