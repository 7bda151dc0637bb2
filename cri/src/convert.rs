//! CRI requests as `skiff` command lines: a pod sandbox becomes
//! `skiff run --sandbox …`, a container `skiff app add …`. What skiff
//! cannot honour is refused here, naming the field, before anything is
//! made (docs/cri.md lists it).

use std::path::Path;

use k8s_cri::v1::{
    ContainerConfig, LinuxContainerResources, LinuxContainerSecurityContext, NamespaceMode, PodSandboxConfig, Protocol,
    SecurityProfile,
};

use crate::error::{CriError, Result};
use crate::records::{SandboxMeta, SANDBOX_KEY};

fn refuse(msg: impl Into<String>) -> CriError {
    CriError::InvalidArgument(msg.into())
}

/// `args`, unless one holds a NUL byte (valid in a protobuf string, but no
/// command line can carry it).
fn without_nul(args: Vec<String>) -> Result<Vec<String>> {
    match args.iter().find(|a| a.contains('\0')) {
        Some(a) => Err(refuse(format!("a string holds a NUL byte: {a:?}"))),
        None => Ok(args),
    }
}

/// `skiff run --sandbox` options for `c` (the UUID goes to `uuid_file`).
pub fn sandbox_args(c: &PodSandboxConfig, handler: &str, uuid_file: &Path) -> Result<Vec<String>> {
    let meta = c.metadata.as_ref().ok_or_else(|| refuse("config.metadata: missing"))?;
    if meta.name.is_empty() {
        return Err(refuse("config.metadata.name: empty"));
    }
    let mut a: Vec<String> = vec!["run".into(), "--sandbox".into()];
    a.extend(["--uuid-file-save".into(), uuid_file.display().to_string()]);
    if !c.hostname.is_empty() {
        a.extend(["--hostname".into(), c.hostname.clone()]);
    }
    if let Some(dns) = &c.dns_config {
        dns.servers.iter().for_each(|s| a.extend(["--dns".into(), s.clone()]));
        dns.searches.iter().for_each(|s| a.extend(["--dns-search".into(), s.clone()]));
        dns.options.iter().for_each(|s| a.extend(["--dns-opt".into(), s.clone()]));
    }
    let mut host_network = false;
    if let Some(linux) = &c.linux {
        if !linux.cgroup_parent.is_empty() {
            skiff_pods::cgroup::check_parent(&linux.cgroup_parent)
                .map_err(|e| refuse(format!("config.linux.cgroup_parent: {e}")))?;
            a.extend(["--cgroup-parent".into(), linux.cgroup_parent.clone()]);
        }
        if let Some(sc) = &linux.security_context {
            if sc.privileged {
                return Err(refuse("config.linux.security_context.privileged: skiff runs no privileged pods"));
            }
            if let Some(ns) = &sc.namespace_options {
                host_network = ns.network == NamespaceMode::Node as i32;
                if ns.pid == NamespaceMode::Node as i32 || ns.ipc == NamespaceMode::Node as i32 {
                    return Err(refuse("config.linux.security_context.namespace_options: skiff pods never share the host's PID or IPC namespace"));
                }
                if ns.userns_options.as_ref().is_some_and(|u| u.mode != NamespaceMode::Node as i32) {
                    return Err(refuse("config.linux.security_context.namespace_options.userns_options: pods with user namespaces are not served over CRI yet"));
                }
            }
        }
    }
    if host_network {
        a.extend(["--net".into(), "host".into()]);
    }
    for p in &c.port_mappings {
        // A mapping without a host port only documents the container's.
        if p.host_port == 0 {
            continue;
        }
        let proto = match Protocol::try_from(p.protocol) {
            Ok(Protocol::Tcp) => "tcp",
            Ok(Protocol::Udp) => "udp",
            _ => {
                return Err(refuse(format!(
                    "config.port_mappings: protocol {} is not supported (tcp, udp)",
                    p.protocol
                )))
            }
        };
        let host = if p.host_ip.is_empty() { String::new() } else { format!("{}:", p.host_ip) };
        a.extend(["--port".into(), format!("{host}{}:{}/{proto}", p.host_port, p.container_port)]);
    }
    for (k, v) in &c.labels {
        a.extend(["--label".into(), format!("{k}={v}")]);
    }
    for (k, v) in &c.annotations {
        if k.starts_with(crate::records::RESERVED_PREFIX) {
            return Err(refuse(format!("config.annotations: {k} is reserved for skiff")));
        }
        a.extend(["--annotation".into(), format!("{k}={v}")]);
    }
    let record = SandboxMeta {
        name: meta.name.clone(),
        uid: meta.uid.clone(),
        namespace: meta.namespace.clone(),
        attempt: meta.attempt,
        log_directory: c.log_directory.clone(),
        runtime_handler: handler.to_string(),
        cgroup_parent: c.linux.as_ref().map(|l| l.cgroup_parent.clone()).filter(|p| !p.is_empty()),
    };
    let json = serde_json::to_string(&record).map_err(|e| CriError::internal("cannot encode metadata", e))?;
    a.extend(["--annotation".into(), format!("{SANDBOX_KEY}={json}")]);
    without_nul(a)
}

/// The app's name in the sandbox: the container's name and attempt, so a
/// second container of that name and attempt is refused, as the kubelet
/// expects.
pub fn app_name(c: &ContainerConfig) -> Result<String> {
    let meta = c.metadata.as_ref().ok_or_else(|| refuse("config.metadata: missing"))?;
    if meta.name.is_empty() {
        return Err(refuse("config.metadata.name: empty"));
    }
    Ok(format!("{}-{}", meta.name, meta.attempt))
}

/// `skiff app add SANDBOX …` for container `c`, named `app`, logging to
/// `log_path` if the kubelet asked for a log.
pub fn container_args(sandbox: &str, c: &ContainerConfig, app: &str, log_path: Option<&Path>) -> Result<Vec<String>> {
    let image = c.image.as_ref().map(|i| i.image.as_str()).unwrap_or_default();
    if image.is_empty() {
        return Err(refuse("config.image.image: empty"));
    }
    if !c.devices.is_empty() || !c.cdi_devices.is_empty() {
        return Err(refuse("config.devices: skiff does not pass host devices into containers"));
    }
    if c.tty || c.stdin {
        return Err(refuse("config.stdin/tty: attaching to a container is not implemented (no Attach)"));
    }
    let mut a: Vec<String> =
        vec!["app".into(), "add".into(), "--pull-policy".into(), "never".into(), sandbox.into(), image.into()];
    a.extend(["--app-name".into(), app.into()]);
    if !c.working_dir.is_empty() {
        a.extend(["--working-dir".into(), c.working_dir.clone()]);
    }
    for kv in &c.envs {
        a.extend(["--set-env".into(), format!("{}={}", kv.key, kv.value)]);
    }
    for m in &c.mounts {
        if m.propagation != 0 {
            return Err(refuse(format!(
                "config.mounts[{}]: only private mount propagation is supported",
                m.container_path
            )));
        }
        if !m.uid_mappings.is_empty() || !m.gid_mappings.is_empty() || m.image.is_some() {
            return Err(refuse(format!(
                "config.mounts[{}]: idmapped and image mounts are not supported",
                m.container_path
            )));
        }
        let ro = if m.readonly { ":ro" } else { "" };
        a.extend(["--volume".into(), format!("{}:{}{ro}", m.host_path, m.container_path)]);
    }
    if let Some(p) = log_path {
        a.extend(["--log-path".into(), p.display().to_string()]);
    }
    if let Some(linux) = &c.linux {
        if let Some(r) = &linux.resources {
            a.extend(resources(r)?);
        }
        if let Some(sc) = &linux.security_context {
            a.extend(security(sc)?);
        }
    }
    // Kubernetes' rules (the kubelet has expanded $(VAR) already): command
    // replaces the image's entrypoint and drops its cmd; args alone
    // replace the cmd.
    match c.command.split_first() {
        Some((exec, rest)) => {
            a.extend(["--exec".into(), exec.clone(), "--".into()]);
            a.extend(rest.iter().cloned());
            a.extend(c.args.iter().cloned());
        }
        None if !c.args.is_empty() => {
            a.push("--".into());
            a.extend(c.args.iter().cloned());
        }
        None => {}
    }
    without_nul(a)
}

/// `linux.resources` as skiff's limits.
pub fn resources(r: &LinuxContainerResources) -> Result<Vec<String>> {
    let mut a = Vec::new();
    if r.cpu_quota > 0 {
        let period = if r.cpu_period > 0 { r.cpu_period } else { 100_000 };
        // In i128: a quota near i64::MAX overflows i64 (fuzzing found it).
        let millis = ((i128::from(r.cpu_quota) * 1000 + i128::from(period) - 1) / i128::from(period)).max(1);
        if millis > 1_000_000_000 {
            return Err(refuse(format!("linux.resources.cpu_quota {}: more than a million CPUs", r.cpu_quota)));
        }
        a.extend(["--cpu".into(), format!("{millis}m")]);
    }
    if r.cpu_shares > 0 {
        a.extend(["--cpu-shares".into(), r.cpu_shares.clamp(2, 262_144).to_string()]);
    }
    if r.memory_limit_in_bytes > 0 {
        a.extend(["--memory".into(), r.memory_limit_in_bytes.to_string()]);
    }
    // The kubelet asks for no swap as a swap limit equal to the memory
    // limit, which is what a memory limit alone means to skiff.
    if r.memory_swap_limit_in_bytes > 0 && r.memory_swap_limit_in_bytes != r.memory_limit_in_bytes {
        return Err(refuse(
            "linux.resources.memory_swap_limit_in_bytes: swap limits other than none are not supported",
        ));
    }
    if !(-1000..=1000).contains(&r.oom_score_adj) {
        return Err(refuse(format!("linux.resources.oom_score_adj {}: not in -1000..1000", r.oom_score_adj)));
    }
    if r.oom_score_adj != 0 {
        a.extend(["--oom-score-adj".into(), r.oom_score_adj.to_string()]);
    }
    if !r.cpuset_cpus.is_empty() || !r.cpuset_mems.is_empty() {
        return Err(refuse("linux.resources.cpuset_cpus/cpuset_mems: cpusets are not supported"));
    }
    if !r.hugepage_limits.is_empty() && r.hugepage_limits.iter().any(|h| h.limit > 0) {
        return Err(refuse("linux.resources.hugepage_limits: not supported"));
    }
    if !r.unified.is_empty() {
        return Err(refuse("linux.resources.unified: raw cgroup v2 settings are not supported"));
    }
    without_nul(a)
}

fn security(sc: &LinuxContainerSecurityContext) -> Result<Vec<String>> {
    let mut a = Vec::new();
    if sc.privileged {
        return Err(refuse("linux.security_context.privileged: skiff runs no privileged containers"));
    }
    if let Some(caps) = &sc.capabilities {
        let up = |l: &[String]| -> Vec<String> {
            l.iter().map(|c| c.trim().to_ascii_uppercase().trim_start_matches("CAP_").to_string()).collect()
        };
        let add = up(&caps.add_capabilities);
        let drop = up(&caps.drop_capabilities);
        if !add.is_empty() || !drop.is_empty() {
            let set = skiff_stage0::pod::security::add_and_drop(&add, &drop)
                .map_err(|e| refuse(format!("linux.security_context.capabilities: {e}")))?;
            a.extend(["--caps-retain".into(), set.join(",")]);
        }
    }
    let group = sc.run_as_group.as_ref().map(|g| g.value.to_string());
    let user = match (&sc.run_as_user, sc.run_as_username.as_str()) {
        (Some(u), _) => Some(u.value.to_string()),
        (None, "") => None,
        (None, name) => Some(name.to_string()),
    };
    if let Some(u) = user {
        a.extend(["--user".into(), u]);
    }
    if let Some(g) = group {
        a.extend(["--group".into(), g]);
    }
    for g in &sc.supplemental_groups {
        a.extend(["--group-add".into(), g.to_string()]);
    }
    if sc.readonly_rootfs {
        a.push("--readonly-rootfs".into());
    }
    a.push(format!("--no-new-privileges={}", sc.no_new_privs));
    match &sc.seccomp {
        None | Some(SecurityProfile { profile_type: 0, .. }) => {}
        Some(SecurityProfile { profile_type: 1, .. }) => a.extend(["--seccomp".into(), "unconfined".into()]),
        Some(p) => {
            return Err(refuse(format!(
                "linux.security_context.seccomp: profile type {} is not supported (RuntimeDefault, Unconfined)",
                p.profile_type
            )))
        }
    }
    // The deprecated field older kubelets still send.
    #[allow(deprecated)]
    let path = sc.seccomp_profile_path.as_str();
    if !path.is_empty() && path != "runtime/default" && path != "docker/default" {
        return Err(refuse("linux.security_context.seccomp_profile_path: only runtime/default is supported"));
    }
    if let Some(ns) = &sc.namespace_options {
        if ns.network == NamespaceMode::Container as i32 || ns.ipc == NamespaceMode::Container as i32 {
            return Err(refuse(
                "linux.security_context.namespace_options: a container's network and IPC are its pod's",
            ));
        }
        if ns.pid == NamespaceMode::Node as i32 || ns.pid == NamespaceMode::Target as i32 {
            return Err(refuse("linux.security_context.namespace_options.pid: only the pod's or the container's"));
        }
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use k8s_cri::v1::{
        Capability, ContainerMetadata, Device, DnsConfig, ImageSpec, Int64Value, KeyValue, LinuxContainerConfig,
        LinuxPodSandboxConfig, LinuxSandboxSecurityContext, Mount, NamespaceOption, PodSandboxMetadata, PortMapping,
    };

    use super::*;

    fn sandbox() -> PodSandboxConfig {
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: "web".into(),
                uid: "u1".into(),
                namespace: "ns".into(),
                attempt: 1,
            }),
            hostname: "web-0".into(),
            log_directory: "/var/log/pods/x".into(),
            dns_config: Some(DnsConfig {
                servers: vec!["10.0.0.10".into()],
                searches: vec!["svc".into()],
                options: vec!["ndots:5".into()],
            }),
            port_mappings: vec![
                PortMapping { protocol: 0, container_port: 80, host_port: 8080, host_ip: String::new() },
                PortMapping { protocol: 1, container_port: 53, host_port: 5353, host_ip: "127.0.0.1".into() },
                PortMapping { protocol: 0, container_port: 9, host_port: 0, host_ip: String::new() },
            ],
            labels: [("app".to_string(), "web".to_string())].into(),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: "/kubepods/besteffort/podu1".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_sandbox_is_a_sandbox_pod_with_its_metadata_in_an_annotation() {
        let a = sandbox_args(&sandbox(), "", Path::new("/u")).unwrap().join(" ");
        for want in [
            "run --sandbox --uuid-file-save /u --hostname web-0",
            "--dns 10.0.0.10 --dns-search svc --dns-opt ndots:5",
            "--cgroup-parent /kubepods/besteffort/podu1",
            "--port 8080:80/tcp --port 127.0.0.1:5353:53/udp --label app=web",
            r#"--annotation io.skiff.cri/sandbox={"name":"web","uid":"u1","namespace":"ns","attempt":1,"log_directory":"/var/log/pods/x""#,
        ] {
            assert!(a.contains(want), "{want} in {a}");
        }
        assert!(!a.contains(":9/"), "{a}");
    }

    #[test]
    fn sandboxes_skiff_cannot_make_are_refused_naming_the_field() {
        let with_sc = |sc: LinuxSandboxSecurityContext| PodSandboxConfig {
            linux: Some(LinuxPodSandboxConfig { security_context: Some(sc), ..Default::default() }),
            ..sandbox()
        };
        let host_pid = NamespaceOption { pid: NamespaceMode::Node as i32, ..Default::default() };
        let cases = [
            (PodSandboxConfig { metadata: None, ..sandbox() }, "metadata"),
            (
                PodSandboxConfig {
                    linux: Some(LinuxPodSandboxConfig {
                        cgroup_parent: "/kubepods/../etc".into(),
                        ..Default::default()
                    }),
                    ..sandbox()
                },
                "cgroup_parent",
            ),
            (with_sc(LinuxSandboxSecurityContext { privileged: true, ..Default::default() }), "privileged"),
            (with_sc(LinuxSandboxSecurityContext { namespace_options: Some(host_pid), ..Default::default() }), "PID"),
            (
                PodSandboxConfig {
                    port_mappings: vec![PortMapping {
                        protocol: 2,
                        container_port: 1,
                        host_port: 1,
                        host_ip: String::new(),
                    }],
                    ..sandbox()
                },
                "protocol 2",
            ),
            (
                PodSandboxConfig {
                    annotations: [("io.skiff.cri/sandbox".to_string(), "{}".to_string())].into(),
                    ..sandbox()
                },
                "reserved",
            ),
        ];
        for (c, want) in cases {
            let e = sandbox_args(&c, "", Path::new("/u")).unwrap_err();
            assert!(matches!(&e, CriError::InvalidArgument(m) if m.contains(want)), "{want}: {e}");
        }
        let host_net = NamespaceOption { network: NamespaceMode::Node as i32, ..Default::default() };
        let a = sandbox_args(
            &with_sc(LinuxSandboxSecurityContext { namespace_options: Some(host_net), ..Default::default() }),
            "",
            Path::new("/u"),
        )
        .unwrap();
        assert!(a.join(" ").contains("--net host"));
    }

    fn container() -> ContainerConfig {
        ContainerConfig {
            metadata: Some(ContainerMetadata { name: "app".into(), attempt: 2 }),
            image: Some(ImageSpec { image: "docker.io/library/busybox:latest".into(), ..Default::default() }),
            command: vec!["/bin/sh".into(), "-c".into()],
            args: vec!["echo $X".into()],
            envs: vec![KeyValue { key: "X".into(), value: "1 2".into() }],
            mounts: vec![Mount {
                container_path: "/data".into(),
                host_path: "/srv/d".into(),
                readonly: true,
                ..Default::default()
            }],
            linux: Some(LinuxContainerConfig {
                resources: Some(LinuxContainerResources {
                    cpu_period: 100_000,
                    cpu_quota: 50_000,
                    cpu_shares: 512,
                    memory_limit_in_bytes: 64 << 20,
                    memory_swap_limit_in_bytes: 64 << 20,
                    ..Default::default()
                }),
                security_context: Some(LinuxContainerSecurityContext {
                    capabilities: Some(Capability {
                        add_capabilities: vec!["NET_ADMIN".into()],
                        drop_capabilities: vec!["ALL".into()],
                        ..Default::default()
                    }),
                    run_as_user: Some(Int64Value { value: 1000 }),
                    run_as_group: Some(Int64Value { value: 2000 }),
                    supplemental_groups: vec![3000],
                    readonly_rootfs: true,
                    no_new_privs: true,
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_container_is_an_added_app_with_kubernetes_command_rules() {
        let c = container();
        assert_eq!(app_name(&c).unwrap(), "app-2");
        let a = container_args("S", &c, "app-2", Some(Path::new("/l/app/2.log"))).unwrap();
        let line = a.join(" ");
        for want in [
            "app add --pull-policy never S docker.io/library/busybox:latest --app-name app-2",
            "--set-env X=1 2 --volume /srv/d:/data:ro --log-path /l/app/2.log",
            "--cpu 500m --cpu-shares 512 --memory 67108864",
            "--caps-retain NET_ADMIN --user 1000 --group 2000 --group-add 3000 --readonly-rootfs --no-new-privileges=true",
        ] {
            assert!(line.contains(want), "{want} in {line}");
        }
        assert_eq!(a[a.len() - 5..], ["--exec", "/bin/sh", "--", "-c", "echo $X"]);
        // args alone keep the image's entrypoint.
        let only_args = ContainerConfig { command: vec![], ..container() };
        let a = container_args("S", &only_args, "a", None).unwrap();
        assert_eq!(a[a.len() - 2..], ["--", "echo $X"]);
        assert!(!a.contains(&"--exec".to_string()));
    }

    #[test]
    fn containers_skiff_cannot_run_are_refused_naming_the_field() {
        let sc = |f: fn(&mut LinuxContainerSecurityContext)| {
            let mut c = container();
            f(c.linux.as_mut().unwrap().security_context.as_mut().unwrap());
            c
        };
        let res = |f: fn(&mut LinuxContainerResources)| {
            let mut c = container();
            f(c.linux.as_mut().unwrap().resources.as_mut().unwrap());
            c
        };
        let cases = [
            (ContainerConfig { devices: vec![Device::default()], ..container() }, "devices"),
            (ContainerConfig { tty: true, ..container() }, "Attach"),
            (ContainerConfig { image: None, ..container() }, "image"),
            (ContainerConfig { working_dir: "/a\0b".into(), ..container() }, "NUL"),
            (sc(|s| s.privileged = true), "privileged"),
            (sc(|s| s.seccomp = Some(SecurityProfile { profile_type: 2, ..Default::default() })), "seccomp"),
            (sc(|s| s.capabilities.as_mut().unwrap().add_capabilities = vec!["ALL".into()]), "ALL"),
            (res(|r| r.cpuset_cpus = "0-1".into()), "cpuset"),
            (res(|r| r.cpu_quota = i64::MAX), "more than a million CPUs"),
            (res(|r| r.oom_score_adj = 1001), "oom_score_adj"),
            (res(|r| r.memory_swap_limit_in_bytes = 1 << 40), "swap"),
            (
                ContainerConfig {
                    mounts: vec![Mount { propagation: 2, container_path: "/m".into(), ..Default::default() }],
                    ..container()
                },
                "propagation",
            ),
        ];
        for (c, want) in cases {
            let e = container_args("S", &c, "a", None).unwrap_err();
            assert!(matches!(&e, CriError::InvalidArgument(m) if m.contains(want)), "{want}: {e}");
        }
    }
}
