//! `skiff generate kube`: a pod's manifest as a Kubernetes v1 Pod that
//! `skiff play kube` runs the same way. What Kubernetes cannot say (a user
//! by name, a custom seccomp profile, an idmapped volume) is left out with
//! a warning on stderr, never silently.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, HostAlias, HostPathVolumeSource, Pod,
    PodSecurityContext, PodSpec, ResourceRequirements, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_pods::manifest::{App, MountSource, Net};
use skiff_pods::PodManifest;

use crate::pod::security::DEFAULT_CAPS;

/// The Pod, and what could not be said in it (one line each).
/// `manifest_digests`: image ID → the digest of its manifest, for the
/// images still stored (each container names its image by name and
/// digest, as Kubernetes pins one).
pub fn pod(m: &PodManifest, manifest_digests: &BTreeMap<String, String>) -> (Pod, Vec<String>) {
    let mut lost = Vec::new();
    let mut volumes: Vec<Volume> = Vec::new();
    let mut containers: Vec<Container> =
        m.apps.iter().map(|a| container(a, manifest_digests, &mut volumes, &mut lost)).collect();
    if let Some(first) = containers.first_mut() {
        let ports = m.ports.iter().map(|p| ContainerPort {
            container_port: i32::from(p.pod_port),
            host_port: Some(i32::from(p.host_port)),
            host_ip: Some(p.host_ip.clone()).filter(|ip| !ip.is_empty() && ip != "0.0.0.0"),
            protocol: Some(p.protocol.to_ascii_uppercase()),
            ..ContainerPort::default()
        });
        first.ports = Some(ports.collect()).filter(|p: &Vec<_>| !p.is_empty());
    }
    let mut aliases: Vec<HostAlias> = Vec::new();
    for (ip, name) in &m.hosts_entries {
        match aliases.iter_mut().find(|a| a.ip == *ip) {
            Some(a) => a.hostnames.get_or_insert_with(Vec::new).push(name.clone()),
            None => aliases.push(HostAlias { ip: ip.clone(), hostnames: Some(vec![name.clone()]) }),
        }
    }
    // The host's servers are what a pod gets without --dns options.
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if m.resolv_conf != crate::pod::dns::resolv_conf(&Default::default(), &host).ok().flatten() {
        lost.push("the pod's resolv.conf (--dns…): give spec.dnsConfig yourself".into());
    }
    if m.user_namespace.is_some() {
        lost.push(
            "--private-users: Kubernetes says it with spec.hostUsers: false, which skiff does not read yet".into(),
        );
    }
    // Kubernetes' supplementalGroups are the pod's: said when every app has
    // the same numbers.
    let first = m.apps.first().map(|a| a.groups_add.clone()).unwrap_or_default();
    let numbers: Option<Vec<i64>> = first.iter().map(|g| g.parse().ok()).collect();
    let supplemental = match numbers {
        Some(n) if !n.is_empty() && m.apps.iter().all(|a| a.groups_add == first) => Some(n),
        _ => {
            if m.apps.iter().any(|a| !a.groups_add.is_empty()) {
                lost.push(
                    "the apps' --group-add (Kubernetes' supplementalGroups are numbers, the same for every container)"
                        .into(),
                );
            }
            None
        }
    };
    let default_hostname = crate::pod::prepare::default_hostname(&m.uuid);
    let spec = PodSpec {
        containers: std::mem::take(&mut containers),
        volumes: Some(volumes).filter(|v| !v.is_empty()),
        restart_policy: Some("Never".into()),
        termination_grace_period_seconds: Some(i64::try_from(m.stop_timeout_ms / 1000).unwrap_or(i64::MAX)),
        host_network: (m.net == Net::Host).then_some(true),
        hostname: Some(m.hostname.clone()).filter(|h| *h != default_hostname && m.net != Net::Host),
        host_aliases: Some(aliases).filter(|a| !a.is_empty()),
        security_context: supplemental
            .map(|groups| PodSecurityContext { supplemental_groups: Some(groups), ..PodSecurityContext::default() }),
        ..PodSpec::default()
    };
    let metadata = ObjectMeta {
        name: Some(m.name.clone().unwrap_or_else(|| default_hostname.clone())),
        labels: Some(m.labels.clone()).filter(|l| !l.is_empty()),
        annotations: Some(m.annotations.clone()).filter(|a| !a.is_empty()),
        ..ObjectMeta::default()
    };
    (Pod { metadata, spec: Some(spec), status: None }, lost)
}

fn container(
    a: &App,
    manifest_digests: &BTreeMap<String, String>,
    volumes: &mut Vec<Volume>,
    lost: &mut Vec<String>,
) -> Container {
    let env = a
        .env
        .iter()
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| *k != "HOSTNAME")
        .map(|(k, v)| EnvVar { name: k.to_string(), value: Some(v.to_string()), ..EnvVar::default() })
        .collect::<Vec<_>>();
    let mut mounts = Vec::new();
    for m in &a.mounts {
        let name = match &m.source {
            MountSource::Volume(v) => {
                if !volumes.iter().any(|x| x.name == *v) {
                    volumes.push(Volume {
                        name: v.clone(),
                        empty_dir: Some(EmptyDirVolumeSource::default()),
                        ..Volume::default()
                    });
                }
                v.clone()
            }
            MountSource::Host(p) => {
                let name = format!("host-{}", volumes.len());
                volumes.push(Volume {
                    name: name.clone(),
                    host_path: Some(HostPathVolumeSource { path: p.display().to_string(), type_: None }),
                    ..Volume::default()
                });
                name
            }
        };
        if m.idmap {
            lost.push(format!("app {}: the idmap of volume {}", a.name, m.target));
        }
        mounts.push(VolumeMount {
            name,
            mount_path: m.target.clone(),
            read_only: m.read_only.then_some(true),
            ..VolumeMount::default()
        });
    }
    Container {
        name: a.name.clone(),
        image: Some(pinned_image(a, manifest_digests, lost)),
        command: Some(a.exec.clone()),
        env: Some(env).filter(|e| !e.is_empty()),
        working_dir: Some(a.working_dir.clone()).filter(|w| w != "/"),
        security_context: security(a, lost),
        resources: resources(a),
        volume_mounts: Some(mounts).filter(|m| !m.is_empty()),
        ..Container::default()
    }
}

/// `NAME@sha256:…`: the app's image by the name it was asked for and the
/// digest of its manifest. Images of local transports (`oci:` …) have no
/// name a cluster could pull, and are written as they are.
fn pinned_image(a: &App, manifest_digests: &BTreeMap<String, String>, lost: &mut Vec<String>) -> String {
    let name = &a.image.name;
    let local = ["oci:", "oci-archive:", "docker-archive:", "sha256:"].iter().any(|t| name.starts_with(t));
    match manifest_digests.get(&a.image.id) {
        _ if local => {
            lost.push(format!("app {}: the digest of image {name} (not a registry name)", a.name));
            name.clone()
        }
        Some(d) => format!("{}@{d}", name.split_once('@').map_or(name.as_str(), |(n, _)| n)),
        None => {
            lost.push(format!("app {}: the digest of image {name} (no longer stored)", a.name));
            name.clone()
        }
    }
}

fn security(a: &App, lost: &mut Vec<String>) -> Option<SecurityContext> {
    let number = |s: &str| s.parse::<i64>().ok();
    let run_as_user = number(&a.user);
    if run_as_user.is_none() {
        lost.push(format!("app {}: user {:?} (Kubernetes takes numbers: add runAsUser)", a.name, a.user));
    }
    let run_as_group = a.group.as_deref().and_then(number);
    if a.group.is_some() && run_as_group.is_none() {
        lost.push(format!("app {}: group {:?} (Kubernetes takes numbers)", a.name, a.group.as_deref().unwrap_or("")));
    }
    // (The default profile for the app's capabilities is what it gets.)
    let caps = a.isolation.capabilities.clone().unwrap_or_default();
    if a.isolation.seccomp.as_ref().is_some_and(|s| *s != crate::pod::security::default_seccomp(&caps)) {
        lost.push(format!("app {}: its seccomp profile", a.name));
    }
    let capabilities = a.isolation.capabilities.as_ref().and_then(|caps| {
        let short = |c: &str| c.trim_start_matches("CAP_").to_string();
        let drop: Vec<String> =
            DEFAULT_CAPS.iter().filter(|d| !caps.iter().any(|c| c == *d)).map(|c| short(c)).collect();
        let add: Vec<String> = caps.iter().filter(|c| !DEFAULT_CAPS.contains(&c.as_str())).map(|c| short(c)).collect();
        (!drop.is_empty() || !add.is_empty()).then(|| Capabilities {
            add: Some(add).filter(|a| !a.is_empty()),
            drop: Some(drop).filter(|d| !d.is_empty()),
        })
    });
    Some(SecurityContext {
        run_as_user,
        run_as_group,
        read_only_root_filesystem: a.isolation.readonly_rootfs.then_some(true),
        allow_privilege_escalation: Some(!a.isolation.no_new_privileges),
        capabilities,
        ..SecurityContext::default()
    })
}

fn resources(a: &App) -> Option<ResourceRequirements> {
    let r = &a.resources;
    let mut limits = BTreeMap::new();
    if let Some(b) = r.memory_bytes {
        limits.insert("memory".to_string(), Quantity(b.to_string()));
    }
    if let Some(m) = r.cpu_millis {
        limits.insert("cpu".to_string(), Quantity(format!("{m}m")));
    }
    let mut requests = BTreeMap::new();
    if let Some(b) = r.memory_reservation_bytes {
        requests.insert("memory".to_string(), Quantity(b.to_string()));
    }
    if let Some(s) = r.cpu_shares {
        requests.insert("cpu".to_string(), Quantity(format!("{}m", (s * 1000).div_ceil(1024))));
    }
    (!limits.is_empty() || !requests.is_empty()).then(|| ResourceRequirements {
        limits: Some(limits).filter(|l| !l.is_empty()),
        requests: Some(requests).filter(|r| !r.is_empty()),
        ..ResourceRequirements::default()
    })
}

/// The Pod as YAML, with `apiVersion` and `kind`.
pub fn yaml(pod: &Pod) -> Result<String, String> {
    let mut v = serde_json::to_value(pod).map_err(|e| e.to_string())?;
    if let Some(o) = v.as_object_mut() {
        o.insert("apiVersion".into(), "v1".into());
        o.insert("kind".into(), "Pod".into());
    }
    // Long one-line values (an image pinned by digest, a command line)
    // stay on their line rather than folded (`>-`) onto the next ones.
    let options = serde_saphyr::ser_options! { folded_wrap_chars: usize::MAX };
    serde_saphyr::to_string_with_options(&v, options).map_err(|e| e.to_string())
}
