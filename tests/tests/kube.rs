//! `skiff play kube` and `skiff generate kube` (docs/kube.md): real pods
//! from Kubernetes YAML.

use std::io::{Read, Write};
use std::process::Stdio;

use skiff_tests::{free_port, stderr, Skiff};

fn write(s: &Skiff, name: &str, yaml: &str) -> String {
    let p = s.tmp().join(name);
    std::fs::write(&p, yaml).unwrap();
    p.display().to_string()
}

/// The ConfigMap, Secret and Pod of most tests: `{image}` and `{port}`
/// filled in.
fn web_yaml(image: &str, port: u16) -> String {
    format!(
        r#"apiVersion: v1
kind: Secret
metadata: {{name: creds}}
data: {{password: aHVudGVyMg==}}
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {{app: web, tier: front}}
  annotations: {{owner: team-a}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 3
  volumes:
  - {{name: shared, emptyDir: {{}}}}
  - {{name: conf, configMap: {{name: settings, items: [{{key: GREETING, path: sub/greeting.txt}}]}}}}
  - {{name: keys, secret: {{secretName: creds, defaultMode: 0400}}}}
  containers:
  - name: server
    image: {image}
    command: [/bin/sh, -c]
    args:
    - |
      mkdir -p /www && echo "$GREETING $PASSWORD $(POD) $TIER $MEM_MI" > /www/index.html
      echo ready > /shared/flag
      exec httpd -f -p 80 -h /www
    env:
    - {{name: POD, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
    - {{name: PASSWORD, valueFrom: {{secretKeyRef: {{name: creds, key: password}}}}}}
    - {{name: TIER, valueFrom: {{fieldRef: {{fieldPath: "metadata.labels['tier']"}}}}}}
    - {{name: MEM_MI, valueFrom: {{resourceFieldRef: {{resource: limits.memory, divisor: 1Mi}}}}}}
    envFrom: [{{configMapRef: {{name: settings}}}}]
    ports: [{{containerPort: 80, hostPort: {port}}}]
    resources: {{limits: {{memory: 64Mi}}, requests: {{memory: 32Mi}}}}
    volumeMounts: [{{name: shared, mountPath: /shared}}]
  - name: checker
    image: {image}
    command: [/bin/sh, -c]
    args:
    - |
      while [ ! -e /shared/flag ]; do sleep 0.1; done
      id -u; grep CapBnd /proc/self/status
      touch /root-is-readonly 2>/dev/null || echo read-only
      cat /conf/sub/greeting.txt; echo; stat -c '%a %n' /keys/password
      sleep 60
    securityContext:
      runAsUser: 1000
      readOnlyRootFilesystem: true
      capabilities: {{drop: [ALL], add: [NET_BIND_SERVICE]}}
    volumeMounts: [{{name: shared, mountPath: /shared, readOnly: true}}, {{name: conf, mountPath: /conf}}, {{name: keys, mountPath: /keys}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings}}
data: {{GREETING: hello}}
"#
    )
}

#[test]
fn a_pod_with_its_configmap_and_secret_runs_as_kubernetes_would_run_it() {
    let s = Skiff::new();
    let port = free_port();
    let file = write(&s, "web.yaml", &web_yaml(&s.image, port));
    let mut pod = s.spawn(&["play", "kube", &file]);
    s.ok(&["status", "--wait-ready=30s", "web"]);
    // The hostPort, from the host.
    let mut body = String::new();
    s.wait_for("the hostPort to answer", || {
        let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
        let _ = c.write_all(b"GET / HTTP/1.0\r\n\r\n");
        body.clear();
        c.read_to_string(&mut body).is_ok() && body.contains("hello")
    });
    assert!(body.contains("hello hunter2 web front 64"), "env from the ConfigMap, the Secret and fieldRefs: {body}");
    let status = s.status_json("web");
    assert_eq!(status["labels"], serde_json::json!({"app": "web", "tier": "front"}));
    assert_eq!(status["annotations"], serde_json::json!({"owner": "team-a"}));
    let uuid = status["uuid"].as_str().unwrap().to_string();
    let limit = std::fs::read_to_string(format!("/sys/fs/cgroup/memory/skiff/{uuid}/server/memory.limit_in_bytes"));
    assert_eq!(limit.unwrap().trim(), (64u64 << 20).to_string());
    let soft = std::fs::read_to_string(format!("/sys/fs/cgroup/memory/skiff/{uuid}/server/memory.soft_limit_in_bytes"));
    assert_eq!(soft.unwrap().trim(), (32u64 << 20).to_string(), "requests.memory");
    s.wait_for("the checker's lines", || s.ok(&["logs", "web", "--app", "checker"]).lines().count() >= 5);
    let checker = s.ok(&["logs", "web", "--app", "checker"]);
    // The bounding set holds NET_BIND_SERVICE (bit 10) alone: the default
    // 14 dropped, one added (a non-root app has no effective capabilities).
    let lines: Vec<&str> = checker.lines().collect();
    assert_eq!(lines[0], "1000", "{checker}");
    assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["CapBnd:", "0000000000000400"], "{checker}");
    assert_eq!(lines[2], "read-only", "{checker}");
    assert_eq!(lines[3], "hello", "a configMap volume's item: {checker}");
    assert_eq!(lines[4], "400 /keys/password", "a secret volume's key, its defaultMode: {checker}");
    // Kept only in the pod directory, which only root may enter.
    let dir = s.dir.join("pods/run").join(&uuid).join("volumes");
    assert_eq!(std::fs::read_to_string(dir.join("keys/password")).unwrap(), "hunter2");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    let caps = s.ok(&["cat-manifest", "web"]);
    let m: serde_json::Value = serde_json::from_str(&caps).unwrap();
    assert_eq!(m["apps"][1]["isolation"]["capabilities"], serde_json::json!(["CAP_NET_BIND_SERVICE"]));
    s.ok(&["stop", "web"]);
    let code = pod.wait().unwrap().code();
    assert_eq!(code, Some(143), "httpd ends on SIGTERM");
}

#[test]
fn a_jobs_exit_code_is_plays_and_yaml_comes_from_stdin() {
    let s = Skiff::new();
    let yaml = format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: batch}}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - {{name: job, image: \"{}\", command: [/bin/sh, -c, \"echo working; exit 3\"]}}\n",
        s.image
    );
    let mut child = s
        .cmd(&["play", "kube", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(yaml.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "working\n");
    assert_eq!(s.status_json("batch")["apps"][0]["exit_code"], 3);
}

#[test]
fn what_skiff_does_not_honour_is_named_and_strict_refuses_it() {
    let s = Skiff::new();
    let yaml = format!(
        "kind: Pod\nmetadata: {{name: probed}}\nspec:\n  nodeSelector: {{disk: ssd}}\n  containers:\n  - name: a\n    image: \"{}\"\n    command: [/bin/true]\n    livenessProbe: {{exec: {{command: [\"true\"]}}}}\n",
        s.image
    );
    let file = write(&s, "probed.yaml", &yaml);
    let o = s.output(&["play", "kube", &file]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("not honoured: spec.containers[0].livenessProbe"), "{e}");
    assert!(e.contains("not honoured: spec.nodeSelector"), "{e}");
    s.ok(&["rm", "probed"]);
    let o = s.output(&["play", "kube", "--strict", &file]);
    assert_eq!(o.status.code(), Some(125));
    let e = stderr(&o);
    assert!(e.contains("spec.nodeSelector") && e.contains("spec.containers[0].livenessProbe"), "{e}");
    assert!(e.contains("--strict") && e.lines().count() == 1, "{e}");
    assert_eq!(s.list_json(), serde_json::json!([]), "nothing made");
}

#[test]
fn wrong_files_are_refused_with_where_and_what() {
    let s = Skiff::new();
    let cases = [
        ("kind: Service\nmetadata: {name: s}\n", "document 1: kind Service is not something skiff runs"),
        ("kind: Pod\nspec:\n  containers: [\n  - name: x\n", ":4:"),
        ("kind: Deployment\nmetadata: {name: d}\nspec: {replicas: 3, template: {spec: {containers: [{name: a, image: x}]}}}\n", "3 replicas"),
        ("kind: Pod\nspec: {containers: [{name: a, image: x, securityContext: {privileged: true}}]}\n", "privileged"),
        ("kind: Pod\nspec: {containers: [{name: a, image: x, volumeMounts: [{name: c, mountPath: /c}]}], volumes: [{name: c, nfs: {server: s, path: /}}]}\n", "cannot mount yet"),
    ];
    for (i, (yaml, want)) in cases.iter().enumerate() {
        let file = write(&s, &format!("bad{i}.yaml"), yaml);
        let o = s.output(&["play", "kube", &file]);
        assert_eq!(o.status.code(), Some(125), "{yaml}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(want) && e.contains(&file), "{yaml}: {e}");
        assert_eq!(e.lines().filter(|l| !l.contains("not honoured")).count(), 1, "one line: {e}");
    }
    assert_eq!(s.list_json(), serde_json::json!([]));
}

#[test]
fn a_generated_pod_plays_back_the_same() {
    let s = Skiff::new();
    let host = s.tmp().join("data");
    std::fs::create_dir(&host).unwrap();
    #[rustfmt::skip]
    s.ok(&[
        "prepare", "--name", "orig", "--net", "none", "--hostname", "box", "--hosts-entry", "192.0.2.1=db", "--stop-timeout", "7s",
        &s.image, "--app-name", "main", "--memory", "64M", "--memory-reservation", "16M", "--cpu", "500m", "--user", "1000:1000", "--group-add", "4000", "--readonly-rootfs",
        "--caps-remove", "NET_RAW", "--set-env", "MODE=prod", "--working-dir", "/tmp",
        "--volume", &format!("{}:/data:ro", host.display()), "--volume", "cache:/cache",
        "--exec", "/bin/sh", "--", "-c", "echo $MODE",
    ]);
    let yaml = s.ok(&["generate", "kube", "orig"]);
    assert!(yaml.starts_with("apiVersion: v1\nkind: Pod\n") || yaml.contains("kind: Pod"), "{yaml}");
    let file = write(&s, "gen.yaml", &yaml);
    s.ok(&["play", "kube", "--prepare", "--name", "copy", "--net", "none", &file]);
    let manifest = |name: &str| -> serde_json::Value { serde_json::from_str(&s.ok(&["cat-manifest", name])).unwrap() };
    let (a, b) = (manifest("orig"), manifest("copy"));
    for field in ["hostname", "hosts_entries", "stop_timeout_ms", "net"] {
        assert_eq!(a[field], b[field], "{field}\n{yaml}");
    }
    for field in
        ["name", "exec", "env", "working_dir", "user", "group", "groups_add", "isolation", "mounts", "resources"]
    {
        let (x, y) = (&a["apps"][0][field], &b["apps"][0][field]);
        if field == "env" {
            let strip = |v: &serde_json::Value| {
                v.as_array()
                    .unwrap()
                    .iter()
                    .filter(|e| !e.as_str().unwrap().starts_with("HOSTNAME="))
                    .cloned()
                    .collect::<Vec<_>>()
            };
            assert_eq!(strip(x), strip(y), "{field}\n{yaml}");
        } else {
            assert_eq!(x, y, "{field}\n{yaml}");
        }
    }
}

#[test]
fn init_containers_run_first_and_one_that_fails_fails_the_pod() {
    let s = Skiff::new();
    let yaml = |code: u8| {
        format!(
            "kind: Pod\nmetadata: {{name: staged}}\nspec:\n  volumes: [{{name: work, emptyDir: {{}}}}]\n  initContainers:\n  - {{name: fetch, image: \"{img}\", command: [/bin/sh, -c, \"echo fetched > /w/data\"], volumeMounts: [{{name: work, mountPath: /w}}]}}\n  - {{name: check, image: \"{img}\", command: [/bin/sh, -c, \"test -s /w/data && exit {code}\"], volumeMounts: [{{name: work, mountPath: /w}}]}}\n  containers:\n  - {{name: main, image: \"{img}\", command: [/bin/cat, /w/data], volumeMounts: [{{name: work, mountPath: /w}}]}}\n",
            img = s.image
        )
    };
    let file = write(&s, "staged.yaml", &yaml(0));
    let o = s.output(&["play", "kube", "--rm", &file]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "fetched\n");
    let file = write(&s, "staged.yaml", &yaml(4));
    let o = s.output(&["play", "kube", &file]);
    assert_eq!(o.status.code(), Some(4), "the failing init container's status: {}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "", "the app never started");
    let apps = s.status_json("staged")["apps"].clone();
    assert_eq!(apps[0]["exit_code"], 0);
    assert_eq!(apps[1]["exit_code"], 4);
    assert_eq!(apps[2]["exit_code"], serde_json::Value::Null);
}

#[test]
fn a_claim_is_a_named_volume_that_outlives_its_pod() {
    let s = Skiff::new();
    let yaml = |script: &str| {
        format!(
            "kind: Pod\nmetadata: {{name: db}}\nspec:\n  restartPolicy: Never\n  volumes: [{{name: data, persistentVolumeClaim: {{claimName: db-data}}}}]\n  containers:\n  - {{name: db, image: \"{}\", command: [/bin/sh, -c, \"{script}\"], volumeMounts: [{{name: data, mountPath: /var/lib/db}}, {{name: data, mountPath: /logs, subPath: logs}}]}}\n",
            s.image
        )
    };
    let file = write(&s, "db.yaml", &yaml("echo row1 >> /var/lib/db/table; echo started > /logs/log"));
    s.ok(&["play", "kube", "--rm", &file]);
    let file = write(&s, "db.yaml", &yaml("cat /var/lib/db/table /var/lib/db/logs/log; sleep 60"));
    let mut pod = s.spawn(&["play", "kube", &file]);
    s.ok(&["status", "--wait-ready=20s", "db"]);
    s.wait_for("the app's output", || s.ok(&["logs", "db"]).lines().count() >= 2);
    assert_eq!(s.ok(&["logs", "db"]), "row1\nstarted\n", "the data of the first pod, and its subPath");
    let list: serde_json::Value = serde_json::from_str(&s.ok(&["volume", "list", "--format", "json"])).unwrap();
    assert_eq!(list[0]["name"], "db-data");
    assert_eq!(list[0]["pods"].as_array().map(Vec::len), Some(1), "{list}");
    let o = s.output(&["volume", "rm", "db-data"]);
    assert_eq!(o.status.code(), Some(125), "in use by a live pod");
    assert!(stderr(&o).contains("in use by pod"), "{}", stderr(&o));
    s.ok(&["stop", "db"]);
    pod.wait().unwrap();
    assert_eq!(s.ok(&["volume", "rm", "db-data"]), "db-data\n");
    assert!(!s.dir.join("volumes/db-data").exists());
    assert_eq!(s.ok(&["volume", "list", "--no-legend"]), "");
}

#[test]
fn a_memory_emptydir_is_one_tmpfs_shared_by_the_containers() {
    let s = Skiff::new();
    let yaml = format!(
        "kind: Pod\nmetadata: {{name: mem}}\nspec:\n  restartPolicy: Never\n  volumes: [{{name: scratch, emptyDir: {{medium: Memory, sizeLimit: 8Mi}}}}]\n  initContainers:\n  - {{name: fill, image: \"{img}\", command: [/bin/sh, -c, \"echo shared > /s/x\"], volumeMounts: [{{name: scratch, mountPath: /s}}]}}\n  containers:\n  - {{name: read, image: \"{img}\", command: [/bin/sh, -c, \"cat /s/x; grep ' /s ' /proc/mounts | cut -d' ' -f3,4\"], volumeMounts: [{{name: scratch, mountPath: /s}}]}}\n",
        img = s.image
    );
    let file = write(&s, "mem.yaml", &yaml);
    let o = s.output(&["play", "kube", &file]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "shared", "{out}");
    assert!(lines[1].starts_with("tmpfs ") && lines[1].contains("size=8192k"), "{out}");
    let uuid = s.status_json("mem")["uuid"].as_str().unwrap().to_string();
    let dir = s.dir.join("pods/run").join(&uuid).join("volumes/scratch");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "nothing of it on disk");
}

#[test]
fn a_subpath_mounts_one_file_of_a_configmap() {
    let s = Skiff::new();
    let yaml = format!(
        "kind: ConfigMap\nmetadata: {{name: c}}\ndata: {{app.conf: \"listen 80\\n\", other: x}}\n---\nkind: Pod\nmetadata: {{name: one}}\nspec:\n  restartPolicy: Never\n  volumes: [{{name: conf, configMap: {{name: c}}}}]\n  containers:\n  - {{name: a, image: \"{}\", command: [/bin/sh, -c, \"cat /etc/app.conf; ls /etc | grep -c other\"], volumeMounts: [{{name: conf, mountPath: /etc/app.conf, subPath: app.conf}}]}}\n",
        s.image
    );
    let file = write(&s, "one.yaml", &yaml);
    let o = s.output(&["play", "kube", "--rm", &file]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "listen 80\n0\n", "{}", stderr(&o));
}

/// A root filesystem of busybox with `marker` in /etc/marker.
fn busybox_root(s: &Skiff, name: &str, marker: &str) -> String {
    let root = s.tmp().join(name);
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for a in ["sh", "cat"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
    }
    std::fs::write(root.join("etc/marker"), marker).unwrap();
    root.display().to_string()
}

#[test]
fn generate_pins_each_image_by_digest_and_play_runs_the_pinned_one() {
    let s = Skiff::new();
    let first = s.ok(&["image", "build", "-q", "--from-dir", &busybox_root(&s, "one", "first\n"), "--tag", "pin:1"]);
    s.ok(&["prepare", "--name", "orig", "--net", "none", "pin:1", "--exec", "/bin/cat", "--", "/etc/marker"]);
    let inspect: serde_json::Value = serde_json::from_str(&s.ok(&["image", "inspect", "pin:1"])).unwrap();
    let digest = inspect["manifest_digest"].as_str().unwrap().to_string();
    let yaml = s.ok(&["generate", "kube", "orig"]);
    assert!(yaml.contains(&format!("image: localhost/pin:1@{digest}")), "{yaml}");
    // The name moves to other content; the pin still runs the first.
    s.ok(&["image", "build", "-q", "--from-dir", &busybox_root(&s, "two", "second\n"), "--tag", "pin:1"]);
    let file = write(&s, "pinned.yaml", &yaml);
    assert_eq!(s.ok(&["play", "kube", "--net", "none", "--name", "copy", &file]), "first\n");
    let m: serde_json::Value = serde_json::from_str(&s.ok(&["cat-manifest", "copy"])).unwrap();
    assert_eq!(m["apps"][0]["image"]["id"], first.trim());
    // A digest nothing stored has is an error naming the reference.
    let gone = yaml.replace(&digest, &format!("sha256:{}", "0".repeat(64)));
    let o = s.output(&["play", "kube", "--net", "none", &write(&s, "gone.yaml", &gone)]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains(&format!("localhost/pin:1@sha256:{}", "0".repeat(64))), "{}", stderr(&o));
}
