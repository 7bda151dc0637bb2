//! `skiff cri`: the CRI server, driven over its socket by a client
//! generated from the CRI proto, as a kubelet drives it.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;

use k8s_cri::v1::*;
use skiff_tests::cri::{CgroupParent, Cri};
use skiff_tests::registry::Registry;
use skiff_tests::skiff::Skiff;
use skiff_tests::{crash_matrix, free_port, http_get, stderr};
use tonic::Code;

fn sandbox_config(s: &Skiff, name: &str) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: format!("{name}-host"),
        log_directory: s.tmp().join("pod-logs").join(name).display().to_string(),
        labels: HashMap::from([("app".to_string(), name.to_string())]),
        annotations: HashMap::from([("note".to_string(), "kept".to_string())]),
        ..Default::default()
    }
}

fn container_config(name: &str, image: &str, script: &str) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata { name: name.into(), attempt: 0 }),
        image: Some(ImageSpec { image: image.into(), ..Default::default() }),
        command: vec!["/bin/sh".into(), "-c".into()],
        args: vec![script.into()],
        log_path: format!("{name}/0.log"),
        labels: HashMap::from([("container".to_string(), name.to_string())]),
        ..Default::default()
    }
}

fn run_sandbox(c: &mut Cri, config: PodSandboxConfig) -> String {
    let req = RunPodSandboxRequest { config: Some(config), runtime_handler: String::new() };
    c.rt.block_on(c.runtime.run_pod_sandbox(req)).expect("RunPodSandbox").into_inner().pod_sandbox_id
}

fn create(c: &mut Cri, sandbox: &str, config: ContainerConfig) -> String {
    let req = CreateContainerRequest { pod_sandbox_id: sandbox.into(), config: Some(config), sandbox_config: None };
    c.rt.block_on(c.runtime.create_container(req)).expect("CreateContainer").into_inner().container_id
}

fn start(c: &mut Cri, id: &str) {
    c.rt.block_on(c.runtime.start_container(StartContainerRequest { container_id: id.into() }))
        .expect("StartContainer");
}

fn status(c: &mut Cri, id: &str) -> ContainerStatus {
    let req = ContainerStatusRequest { container_id: id.into(), verbose: false };
    c.rt.block_on(c.runtime.container_status(req)).expect("ContainerStatus").into_inner().status.expect("a status")
}

fn wait_state(s: &Skiff, c: &mut Cri, id: &str, state: ContainerState) -> ContainerStatus {
    let mut last = None;
    s.wait_for(&format!("container {id} {state:?}"), || {
        let st = status(c, id);
        let done = st.state == state as i32;
        last = Some(st);
        done
    });
    last.expect("a status")
}

fn containers(c: &mut Cri, filter: Option<ContainerFilter>) -> Vec<Container> {
    c.rt.block_on(c.runtime.list_containers(ListContainersRequest { filter }))
        .expect("ListContainers")
        .into_inner()
        .containers
}

fn sandboxes(c: &mut Cri) -> Vec<PodSandbox> {
    c.rt.block_on(c.runtime.list_pod_sandbox(ListPodSandboxRequest { filter: None }))
        .expect("ListPodSandbox")
        .into_inner()
        .items
}

fn remove_sandbox(c: &mut Cri, id: &str) {
    let stop = StopPodSandboxRequest { pod_sandbox_id: id.into() };
    c.rt.block_on(c.runtime.stop_pod_sandbox(stop)).expect("StopPodSandbox");
    let rm = RemovePodSandboxRequest { pod_sandbox_id: id.into() };
    c.rt.block_on(c.runtime.remove_pod_sandbox(rm)).expect("RemovePodSandbox");
}

#[test]
fn a_sandbox_and_its_containers_live_their_whole_lives_through_the_cri() {
    let parent = CgroupParent::new("web");
    let s = Skiff::new();
    let image = s.ok(&["fetch", "--quiet", &s.image]).trim().to_string();
    let mut c = Cri::start(&s);
    let v = c.rt.block_on(c.runtime.version(VersionRequest { version: "v1".into() })).unwrap().into_inner();
    assert_eq!((v.runtime_name.as_str(), v.runtime_api_version.as_str()), ("skiff", "v1"));
    let st = c.rt.block_on(c.runtime.status(StatusRequest { verbose: false })).unwrap().into_inner();
    assert!(st.status.unwrap().conditions.iter().all(|c| c.status), "runtime and network ready");

    let port = free_port();
    let mut config = sandbox_config(&s, "web");
    config.port_mappings =
        vec![PortMapping { protocol: 0, container_port: 8080, host_port: port.into(), host_ip: String::new() }];
    config.linux = Some(LinuxPodSandboxConfig { cgroup_parent: parent.path.clone(), ..Default::default() });
    let sandbox = run_sandbox(&mut c, config);
    let listed = sandboxes(&mut c);
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].id.as_str(), listed[0].state), (sandbox.as_str(), PodSandboxState::SandboxReady as i32));
    assert_eq!(listed[0].metadata.as_ref().unwrap().uid, "uid-web");
    assert_eq!(listed[0].labels.get("app").map(String::as_str), Some("web"));
    assert_eq!(
        listed[0].annotations,
        HashMap::from([("note".to_string(), "kept".to_string())]),
        "the server's own annotation is hidden"
    );
    let req = PodSandboxStatusRequest { pod_sandbox_id: sandbox.clone(), verbose: false };
    let ps = c.rt.block_on(c.runtime.pod_sandbox_status(req)).unwrap().into_inner().status.unwrap();
    assert!(ps.network.unwrap().ip.starts_with("10.231."), "the pod's address on the default network");

    // A web server with limits, its log where the kubelet asked.
    let serve = "echo started; echo $GREETING > /tmp/index.html && exec httpd -f -p 8080 -h /tmp";
    let mut web = container_config("web", &image, serve);
    web.envs = vec![KeyValue { key: "GREETING".into(), value: "hello over cri".into() }];
    web.linux = Some(LinuxContainerConfig {
        resources: Some(LinuxContainerResources {
            memory_limit_in_bytes: 64 << 20,
            cpu_shares: 512,
            ..Default::default()
        }),
        security_context: Some(LinuxContainerSecurityContext { no_new_privs: true, ..Default::default() }),
    });
    let web_id = create(&mut c, &sandbox, web);
    assert_eq!(status(&mut c, &web_id).state, ContainerState::ContainerCreated as i32);
    start(&mut c, &web_id);
    let st = wait_state(&s, &mut c, &web_id, ContainerState::ContainerRunning);
    assert!(st.started_at >= st.created_at && st.created_at > 0, "{st:?}");
    assert_eq!(
        http_get(&s, &format!("127.0.0.1:{port}")),
        "hello over cri\n",
        "the port mapping reaches the container"
    );
    let log = s.tmp().join("pod-logs/web/web/0.log");
    assert_eq!(st.log_path, log.display().to_string());
    let text = std::fs::read_to_string(&log).expect("the container's log at the kubelet's path");
    assert!(text.lines().any(|l| l.ends_with(" stdout F started")), "CRI log format: {text}");
    let limit = parent
        .dirs()
        .iter()
        .find_map(|d| {
            let app = d.join(&sandbox).join("web-0");
            let v1 = std::fs::read_to_string(app.join("memory.limit_in_bytes"));
            v1.or_else(|_| std::fs::read_to_string(app.join("memory.max"))).ok()
        })
        .expect("the container's memory cgroup, under the sandbox's cgroup parent");
    assert_eq!(limit.trim(), (64u64 << 20).to_string());
    let update = UpdateContainerResourcesRequest {
        container_id: web_id.clone(),
        linux: Some(LinuxContainerResources { memory_limit_in_bytes: 96 << 20, ..Default::default() }),
        ..Default::default()
    };
    c.rt.block_on(c.runtime.update_container_resources(update)).expect("UpdateContainerResources");
    let limit = parent
        .dirs()
        .iter()
        .find_map(|d| std::fs::read_to_string(d.join(&sandbox).join("web-0/memory.limit_in_bytes")).ok())
        .or_else(|| {
            parent.dirs().iter().find_map(|d| std::fs::read_to_string(d.join(&sandbox).join("web-0/memory.max")).ok())
        })
        .unwrap();
    assert_eq!(limit.trim(), (96u64 << 20).to_string(), "the running container's limit changed");
    let manifest: serde_json::Value = serde_json::from_str(&s.ok(&["cat-manifest", &sandbox])).unwrap();
    let app = manifest["apps"].as_array().unwrap().iter().find(|a| a["name"] == "web-0").unwrap().clone();
    assert_eq!(app["resources"]["memory_bytes"], 96u64 << 20, "and its manifest");

    let exec = ExecSyncRequest {
        container_id: web_id.clone(),
        cmd: vec!["/bin/sh".into(), "-c".into(), "echo out; echo err >&2; exit 3".into()],
        timeout: 10,
    };
    let out = c.rt.block_on(c.runtime.exec_sync(exec)).unwrap().into_inner();
    assert_eq!((out.stdout.as_slice(), out.stderr.as_slice(), out.exit_code), (&b"out\n"[..], &b"err\n"[..], 3));
    let stats =
        c.rt.block_on(c.runtime.container_stats(ContainerStatsRequest { container_id: web_id.clone() }))
            .unwrap()
            .into_inner();
    let memory = stats.stats.unwrap().memory.unwrap();
    assert!(memory.usage_bytes.is_some_and(|u| u.value > 0), "{memory:?}");

    // A job that fails: its exit code and reason.
    let job = create(&mut c, &sandbox, container_config("job", &image, "exit 7"));
    start(&mut c, &job);
    let st = wait_state(&s, &mut c, &job, ContainerState::ContainerExited);
    assert_eq!((st.exit_code, st.reason.as_str()), (7, "Error"));
    assert!(st.finished_at >= st.started_at && st.started_at > 0, "{st:?}");

    assert_eq!(containers(&mut c, None).len(), 2);
    let running = ContainerFilter {
        state: Some(ContainerStateValue { state: ContainerState::ContainerRunning as i32 }),
        ..Default::default()
    };
    let only = containers(&mut c, Some(running));
    assert_eq!(only.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(), [web_id.as_str()]);
    let by_label = ContainerFilter {
        label_selector: HashMap::from([("container".to_string(), "job".to_string())]),
        ..Default::default()
    };
    assert_eq!(containers(&mut c, Some(by_label)).len(), 1);

    c.rt.block_on(c.runtime.stop_container(StopContainerRequest { container_id: web_id.clone(), timeout: 5 })).unwrap();
    let st = status(&mut c, &web_id);
    assert_eq!(st.state, ContainerState::ContainerExited as i32, "{st:?}");
    for id in [&web_id, &job] {
        c.rt.block_on(c.runtime.remove_container(RemoveContainerRequest { container_id: id.to_string() })).unwrap();
    }
    assert!(containers(&mut c, None).is_empty());
    remove_sandbox(&mut c, &sandbox);
    assert!(sandboxes(&mut c).is_empty());
    assert!(s.list_json().as_array().unwrap().is_empty(), "no pod is left");
}

#[test]
fn pods_outlive_a_killed_server_and_a_new_one_finds_them() {
    let s = Skiff::new();
    let image = s.ok(&["fetch", "--quiet", &s.image]).trim().to_string();
    let mut c = Cri::start(&s);
    let mut config = sandbox_config(&s, "lasting");
    config.linux = Some(LinuxPodSandboxConfig {
        security_context: Some(LinuxSandboxSecurityContext {
            namespace_options: Some(NamespaceOption { network: NamespaceMode::Node as i32, ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    });
    let sandbox = run_sandbox(&mut c, config);
    let id = create(&mut c, &sandbox, container_config("sleeper", &image, "exec sleep 600"));
    start(&mut c, &id);
    wait_state(&s, &mut c, &id, ContainerState::ContainerRunning);

    c.restart_after_kill(&s);
    assert_eq!(s.status_json(&sandbox)["state"], "running", "the pod did not notice");
    // One server serves a store: a second one would heal the first's work.
    let other = format!("unix://{}", s.tmp().join("other.sock").display());
    let second = s.output(&["cri", "--listen", &other]);
    assert_eq!(second.status.code(), Some(125));
    assert!(stderr(&second).contains("another skiff cri serves this store"), "{}", stderr(&second));
    let listed = containers(&mut c, None);
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].id.as_str(), listed[0].state), (id.as_str(), ContainerState::ContainerRunning as i32));
    c.rt.block_on(c.runtime.stop_container(StopContainerRequest { container_id: id.clone(), timeout: 1 })).unwrap();
    let st = status(&mut c, &id);
    assert_eq!((st.state, st.exit_code), (ContainerState::ContainerExited as i32, 143), "SIGTERM ended it");
    remove_sandbox(&mut c, &sandbox);
    assert!(containers(&mut c, None).is_empty() && sandboxes(&mut c).is_empty());
}

#[test]
fn bad_requests_get_the_right_codes_and_leave_nothing() {
    let s = Skiff::new();
    let image = s.ok(&["fetch", "--quiet", &s.image]).trim().to_string();
    let mut c = Cri::start(&s);
    let code = |r: Result<tonic::Response<_>, tonic::Status>| -> Code {
        r.map(|_: tonic::Response<()>| ()).err().map_or(Code::Ok, |e| e.code())
    };
    let unit =
        |r: Result<tonic::Response<PodSandboxStatusResponse>, tonic::Status>| r.map(|_| tonic::Response::new(()));
    assert_eq!(
        code(unit(c.rt.block_on(
            c.runtime.pod_sandbox_status(PodSandboxStatusRequest { pod_sandbox_id: "0123abcd".into(), verbose: false })
        ))),
        Code::NotFound
    );
    let e = c.rt.block_on(c.runtime.create_container(CreateContainerRequest {
        pod_sandbox_id: "0123abcd".into(),
        config: Some(container_config("x", &image, "true")),
        sandbox_config: None,
    }));
    assert_eq!(e.unwrap_err().code(), Code::NotFound);
    let mut privileged = sandbox_config(&s, "priv");
    privileged.linux = Some(LinuxPodSandboxConfig {
        security_context: Some(LinuxSandboxSecurityContext { privileged: true, ..Default::default() }),
        ..Default::default()
    });
    let e =
        c.rt.block_on(
            c.runtime
                .run_pod_sandbox(RunPodSandboxRequest { config: Some(privileged), runtime_handler: String::new() }),
        )
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("privileged"), "{}", e.message());

    // On the host's network: one test of this file at a time is on skiff's
    // default network, whose addresses each store leases on its own.
    let mut strict = sandbox_config(&s, "strict");
    strict.linux = Some(LinuxPodSandboxConfig {
        security_context: Some(LinuxSandboxSecurityContext {
            namespace_options: Some(NamespaceOption { network: NamespaceMode::Node as i32, ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    });
    let sandbox = run_sandbox(&mut c, strict);
    let mut with_device = container_config("dev", &image, "true");
    with_device.devices =
        vec![Device { container_path: "/dev/x".into(), host_path: "/dev/null".into(), permissions: "rw".into() }];
    let e =
        c.rt.block_on(c.runtime.create_container(CreateContainerRequest {
            pod_sandbox_id: sandbox.clone(),
            config: Some(with_device),
            sandbox_config: None,
        }))
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e =
        c.rt.block_on(c.runtime.create_container(CreateContainerRequest {
            pod_sandbox_id: sandbox.clone(),
            config: Some(container_config("missing", "localhost/no-such-image:1", "true")),
            sandbox_config: None,
        }))
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{}", e.message());
    assert!(containers(&mut c, None).is_empty(), "no container was half-made");
    assert_eq!(s.ok(&["app", "list", "--format", "json", &sandbox]).trim(), "[]");
    // Twice the same name and attempt: the second is refused.
    let first = create(&mut c, &sandbox, container_config("twin", &image, "true"));
    let e =
        c.rt.block_on(c.runtime.create_container(CreateContainerRequest {
            pod_sandbox_id: sandbox.clone(),
            config: Some(container_config("twin", &image, "true")),
            sandbox_config: None,
        }))
        .unwrap_err();
    assert!(e.message().contains("twin-0"), "{}", e.message());
    assert_eq!(containers(&mut c, None).iter().map(|x| x.id.as_str()).collect::<Vec<_>>(), [first.as_str()]);
    let e = c.rt.block_on(c.runtime.exec(ExecRequest::default())).unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);

    remove_sandbox(&mut c, &sandbox);
    // A container of a removed sandbox is gone with it.
    assert_eq!(
        c.rt.block_on(c.runtime.container_status(ContainerStatusRequest { container_id: first, verbose: false }))
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    // Stopping and removing what is gone is done already.
    remove_sandbox(&mut c, &sandbox);
    let st = c.rt.block_on(c.images.image_status(ImageStatusRequest {
        image: Some(ImageSpec { image: "localhost/no-such-image:1".into(), ..Default::default() }),
        verbose: false,
    }));
    assert!(st.unwrap().into_inner().image.is_none(), "an unknown image has no status");
    let e =
        c.rt.block_on(c.images.pull_image(PullImageRequest {
            image: Some(ImageSpec { image: "Not A Reference".into(), ..Default::default() }),
            ..Default::default()
        }))
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
    assert!(s.list_json().as_array().unwrap().is_empty());
}

#[test]
fn images_are_pulled_with_credentials_listed_and_removed() {
    let s = Skiff::new();
    let reg = Registry::start(s.tmp(), true);
    let dest = reg.push(&s.image, "cri/bb:1");
    let name = dest.trim_start_matches("docker://").to_string();
    let mut c = Cri::start(&s);
    let spec = ImageSpec { image: name.clone(), ..Default::default() };
    let without =
        c.rt.block_on(c.images.pull_image(PullImageRequest { image: Some(spec.clone()), ..Default::default() }));
    assert!(without.is_err(), "the registry wants credentials");
    let auth = AuthConfig { username: "skiff".into(), password: "s3cret".into(), ..Default::default() };
    let pulled =
        c.rt.block_on(c.images.pull_image(PullImageRequest {
            image: Some(spec.clone()),
            auth: Some(auth),
            sandbox_config: None,
        }))
        .unwrap()
        .into_inner();
    assert!(pulled.image_ref.starts_with("sha256:"), "{pulled:?}");
    let listed = c.rt.block_on(c.images.list_images(ListImagesRequest { filter: None })).unwrap().into_inner().images;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].id.as_str(), listed[0].repo_tags.as_slice()),
        (pulled.image_ref.as_str(), &[name.clone()][..])
    );
    let st =
        c.rt.block_on(c.images.image_status(ImageStatusRequest { image: Some(spec.clone()), verbose: false }))
            .unwrap()
            .into_inner();
    let img = st.image.expect("the pulled image");
    assert!(img.size > 0 && img.repo_digests[0].contains("@sha256:"), "{img:?}");
    let fs = c.rt.block_on(c.images.image_fs_info(ImageFsInfoRequest {})).unwrap().into_inner();
    assert!(fs.image_filesystems[0].used_bytes.as_ref().is_some_and(|u| u.value > 0));
    c.rt.block_on(c.images.remove_image(RemoveImageRequest { image: Some(spec.clone()) })).unwrap();
    let st =
        c.rt.block_on(c.images.image_status(ImageStatusRequest { image: Some(spec.clone()), verbose: false }))
            .unwrap()
            .into_inner();
    assert!(st.image.is_none());
    c.rt.block_on(c.images.remove_image(RemoveImageRequest { image: Some(spec) }))
        .expect("removing a removed image is done");
}

/// A sandbox on the host's network: these tests are not about networks, and
/// two test stores on skiff's default network could lease one address.
fn host_sandbox_config(s: &Skiff, name: &str) -> PodSandboxConfig {
    let mut config = sandbox_config(s, name);
    config.linux = Some(LinuxPodSandboxConfig {
        security_context: Some(LinuxSandboxSecurityContext {
            namespace_options: Some(NamespaceOption { network: NamespaceMode::Node as i32, ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    });
    config
}

/// One row of the server's crash matrix: the calls up to the one that
/// passes `point`, that call killed (then a new server) or failed there,
/// and what the server must list and do next.
fn cri_row(point: &str, action: &str) -> Result<String, String> {
    let s = Skiff::new();
    let image = s.ok(&["fetch", "--quiet", &s.image]).trim().to_string();
    // Once: a server that failed a call serves the next one as it is.
    let mut c = Cri::start_failing(&s, &format!("{point}={action}*1"));
    let job = || container_config("job", &image, "exit 0");
    let (mut sandbox, mut id) = (None, None);
    if point != "cri.sandbox.ready" {
        sandbox = Some(run_sandbox(&mut c, host_sandbox_config(&s, "f")));
    }
    if point == "cri.container.remove" || point == "cri.sandbox.remove" {
        id = Some(create(&mut c, sandbox.as_deref().unwrap_or_default(), job()));
    }
    let sb = sandbox.clone().unwrap_or_default();
    let call: Result<(), tonic::Status> = c.rt.block_on(async {
        let rt = &mut c.runtime;
        match point {
            "cri.sandbox.ready" => {
                let req = RunPodSandboxRequest { config: Some(host_sandbox_config(&s, "f")), ..Default::default() };
                rt.run_pod_sandbox(req).await.map(|_| ())
            }
            "cri.container.record" => {
                let req = CreateContainerRequest { pod_sandbox_id: sb, config: Some(job()), sandbox_config: None };
                rt.create_container(req).await.map(|_| ())
            }
            "cri.container.remove" => {
                rt.remove_container(RemoveContainerRequest { container_id: id.clone().unwrap() }).await.map(|_| ())
            }
            _ => rt.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: sb }).await.map(|_| ()),
        }
    });
    let outcome = match (action, call) {
        ("kill", Err(e)) if c.server.wait().is_ok_and(|st| st.signal() == Some(9)) => {
            format!("killed ({:?})", e.code())
        }
        ("eio", Err(e)) if e.code() == Code::Internal && e.message().contains("(os error 5)") => {
            format!("INTERNAL: {}", e.message())
        }
        (_, r) => return Err(format!("not reached: {r:?}")),
    };
    if action == "kill" {
        c.restart_after_kill(&s);
    }
    // What the server lists is whole: no container without its app.
    let listed = containers(&mut c, None);
    if let Some(x) = listed.iter().find(|x| x.state == ContainerState::ContainerUnknown as i32) {
        return Err(format!("a container without its app is listed: {x:?}"));
    }
    let uuids: Vec<String> =
        s.list_json().as_array().into_iter().flatten().filter_map(|p| p["uuid"].as_str().map(String::from)).collect();
    // The call, again, works.
    match point {
        "cri.sandbox.ready" => {
            let new = run_sandbox(&mut c, host_sandbox_config(&s, "f"));
            if !sandboxes(&mut c).iter().any(|x| x.id == new && x.state == PodSandboxState::SandboxReady as i32) {
                return Err(format!("the new sandbox {new} is not listed ready"));
            }
        }
        "cri.container.record" if sandboxes(&mut c).is_empty() => return Err("the sandbox is gone".into()),
        "cri.container.record" => {
            let again = create(&mut c, &sb_of(&sandbox), job());
            start(&mut c, &again);
            wait_state(&s, &mut c, &again, ContainerState::ContainerExited);
        }
        "cri.container.remove" => {
            let req = RemoveContainerRequest { container_id: id.clone().unwrap() };
            c.rt.block_on(c.runtime.remove_container(req)).map_err(|e| format!("RemoveContainer again: {e}"))?;
        }
        _ => remove_sandbox(&mut c, &sb_of(&sandbox)),
    }
    for x in sandboxes(&mut c) {
        remove_sandbox(&mut c, &x.id);
    }
    let cri = s.dir.join("cri");
    let files: Vec<_> = ["containers", "runs"]
        .iter()
        .flat_map(|d| std::fs::read_dir(cri.join(d)).into_iter().flatten().flatten())
        .map(|e| e.path().display().to_string())
        .collect();
    if !containers(&mut c, None).is_empty() || !files.is_empty() {
        return Err(format!("left after every sandbox was removed: {files:?}"));
    }
    s.ok(&["gc", "--grace-period", "0"]);
    let left = s.leftovers(&uuids);
    if !left.is_empty() {
        return Err(format!("left after gc: {left:?}"));
    }
    Ok(outcome)
}

fn sb_of(sandbox: &Option<String>) -> String {
    sandbox.clone().unwrap_or_default()
}

#[test]
fn a_server_killed_or_failing_at_any_step_leaves_what_the_next_one_heals() {
    let rows = [
        ("cri.sandbox.ready", "RunPodSandbox"),
        ("cri.container.record", "CreateContainer"),
        ("cri.container.remove", "RemoveContainer"),
        ("cri.sandbox.remove", "RemovePodSandbox"),
    ];
    crash_matrix("call", &rows, cri_row);
}
