//! A Kubernetes pod as skiff's pod manifest file type ([`PodSpec`]): the
//! same meaning, in the options `--pod-manifest` takes, so stage0 checks
//! and resolves it like any other pod (docs/kube.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use k8s_openapi::api::core::v1::{Container, EnvVar, KeyToPath, PodSpec as KubeSpec, ResourceFieldSelector, Volume};
use serde_json::Value;
use skiff_pods::Store;

use super::documents::{KubePod, Sources};
use super::quantity;
use crate::pod::named_volume;
use crate::pod::prepare::VolumeFiles;
use crate::spec::{AppSpec, PodSpec};

/// `pod` (with the ConfigMaps and Secrets of its file) as a pod manifest
/// file would say it. Refuses what cannot mean the same on skiff.
/// A persistentVolumeClaim is the store's named volume of its claim's
/// name (made if new, in `store`).
pub fn to_spec(pod: &KubePod, sources: &Sources, store: &Store) -> Result<PodSpec> {
    let spec: KubeSpec = serde_json::from_value(pod.spec.clone()).map_err(|e| anyhow!("{}: {e}", pod.spec_path))?;
    let meta = Meta::of(&pod.metadata);
    if spec.containers.is_empty() {
        bail!("{}.containers: the pod has no containers", pod.spec_path);
    }
    let (volumes, volume_files) = volumes(spec.volumes.as_deref().unwrap_or_default(), pod.spec_path, sources, store)?;
    let mut out = PodSpec {
        name: meta.name.clone(),
        labels: meta.labels.clone(),
        annotations: meta.annotations.clone(),
        hostname: spec.hostname.clone(),
        stop_timeout: spec.termination_grace_period_seconds.map(|s| format!("{}s", s.max(0))),
        volume_files,
        restart_policy: match spec.restart_policy.as_deref() {
            None => None,
            Some("Never") => Some("never".into()),
            Some("OnFailure") => Some("on-failure".into()),
            Some("Always") => Some("always".into()),
            Some(other) => bail!("{}.restartPolicy {other:?}: expected Always, OnFailure or Never", pod.spec_path),
        },
        ..PodSpec::default()
    };
    if spec.host_network == Some(true) {
        out.net = Some("host".into());
    }
    for alias in spec.host_aliases.iter().flatten() {
        for name in alias.hostnames.iter().flatten() {
            out.hosts_entries.push(format!("{}={name}", alias.ip));
        }
    }
    if let Some(dns) = &spec.dns_config {
        out.dns = dns.nameservers.clone().unwrap_or_default();
        out.dns_search = dns.searches.clone().unwrap_or_default();
        out.dns_opt = dns
            .options
            .iter()
            .flatten()
            .filter_map(|o| o.name.as_ref().map(|n| o.value.as_ref().map_or(n.clone(), |v| format!("{n}:{v}"))))
            .collect();
    }
    let pod_security = spec.security_context.as_ref();
    let mut pull: Option<&str> = None;
    // Init containers are init apps: they run, in order, before the others.
    let inits =
        spec.init_containers.iter().flatten().enumerate().map(|(i, c)| (c, format!("initContainers[{i}]"), true));
    let containers = spec.containers.iter().enumerate().map(|(i, c)| (c, format!("containers[{i}]"), false));
    for (c, field, init) in inits.chain(containers) {
        let at = format!("{}.{field}", pod.spec_path);
        let host_network = spec.host_network == Some(true);
        let cx = ContainerContext {
            at: &at,
            host_network,
            meta: &meta,
            sources,
            volumes: &volumes,
            pod_security,
            spec: &spec,
        };
        let (mut app, ports) = container(c, &cx)?;
        app.init = init;
        out.ports.extend(ports);
        out.apps.push(app);
        pull = eagerest(pull, c.image_pull_policy.as_deref());
    }
    out.pull_policy = match pull {
        Some("Always") => Some("update".into()),
        Some("Never") => Some("never".into()),
        Some("IfNotPresent") => Some("new".into()),
        Some(other) => bail!("imagePullPolicy {other:?}: expected Always, IfNotPresent or Never"),
        None => None,
    };
    Ok(out)
}

/// Of two `imagePullPolicy`s the one that pulls most (skiff pulls per pod).
fn eagerest<'a>(a: Option<&'a str>, b: Option<&'a str>) -> Option<&'a str> {
    let rank = |p: Option<&str>| match p {
        Some("Always") => 3,
        Some("IfNotPresent") => 2,
        Some("Never") => 1,
        Some(_) => 4,
        None => 0,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// What a pod's metadata gives it.
struct Meta {
    name: Option<String>,
    namespace: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

impl Meta {
    fn of(v: &Value) -> Meta {
        let map = |k: &str| {
            v[k].as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().map_or(v.to_string(), str::to_string))).collect())
                .unwrap_or_default()
        };
        Meta {
            name: v["name"].as_str().map(str::to_string),
            namespace: v["namespace"].as_str().unwrap_or("default").to_string(),
            labels: map("labels"),
            annotations: map("annotations"),
        }
    }
}

/// A pod volume, as skiff mounts it.
enum Source {
    /// A host path (after its `type` was checked or made), and whether
    /// every mount of it is read-only.
    Host(String, bool),
    /// A volume of the pod's own (`emptyDir`).
    Pod(String),
    /// A volume of the pod's own in memory (a tmpfs), of this size.
    Memory(String, Option<u64>),
    /// A volume of the pod's own made of a ConfigMap's or Secret's keys,
    /// mounted read-only.
    Filled(String),
    /// One skiff cannot mount (yet).
    Unsupported,
}

fn volumes(
    list: &[Volume],
    spec_path: &str,
    sources: &Sources,
    store: &Store,
) -> Result<(BTreeMap<String, Source>, Vec<VolumeFiles>)> {
    let mut out = BTreeMap::new();
    let mut files = Vec::new();
    for (i, v) in list.iter().enumerate() {
        let at = format!("{spec_path}.volumes[{i}]");
        let filled =
            |kind: &str, table: &BTreeMap<String, BTreeMap<String, String>>, name: &str, items, mode, optional| {
                let data = match (table.get(name), optional) {
                    (Some(d), _) => d.clone(),
                    (None, Some(true)) => BTreeMap::new(),
                    (None, _) => bail!("{at}: no {kind} {name} in the file"),
                };
                key_files(&v.name, &data, items, mode).with_context(|| format!("{at} ({kind} {name})"))
            };
        let source = if let Some(h) = &v.host_path {
            let kind = h.type_.as_deref().unwrap_or("");
            Source::Host(host_path(&h.path, kind).with_context(|| format!("{at}.hostPath"))?, false)
        } else if let Some(e) = &v.empty_dir {
            match (e.medium.as_deref().unwrap_or(""), &e.size_limit) {
                ("", None) => Source::Pod(v.name.clone()),
                ("Memory", None) => Source::Memory(v.name.clone(), None),
                ("Memory", Some(q)) => {
                    let size = quantity::bytes(&q.0).map_err(|e| anyhow!("{at}.emptyDir.sizeLimit: {e}"))?;
                    Source::Memory(v.name.clone(), Some(size))
                }
                ("", Some(_)) => {
                    bail!("{at}.emptyDir.sizeLimit: skiff cannot limit a volume on disk (medium: Memory can)")
                }
                (other, _) => bail!("{at}.emptyDir.medium {other:?}: expected Memory or nothing"),
            }
        } else if let Some(c) = &v.config_map {
            files.push(filled(
                "ConfigMap",
                &sources.config_maps,
                &c.name,
                c.items.as_deref(),
                c.default_mode,
                c.optional,
            )?);
            Source::Filled(v.name.clone())
        } else if let Some(c) = &v.secret {
            let name = c.secret_name.clone().with_context(|| format!("{at}.secret.secretName: missing"))?;
            files.push(filled("Secret", &sources.secrets, &name, c.items.as_deref(), c.default_mode, c.optional)?);
            Source::Filled(v.name.clone())
        } else if let Some(c) = &v.persistent_volume_claim {
            let path =
                named_volume::ensure(store, &c.claim_name).with_context(|| format!("{at}.persistentVolumeClaim"))?;
            Source::Host(path.display().to_string(), c.read_only == Some(true))
        } else {
            Source::Unsupported
        };
        if out.insert(v.name.clone(), source).is_some() {
            bail!("{at}: a second volume named {}", v.name);
        }
    }
    Ok((out, files))
}

/// The files of a configMap or secret volume: each key (or each of
/// `items`, at its path) with `defaultMode` (0644) or the item's mode.
fn key_files(
    volume: &str,
    data: &BTreeMap<String, String>,
    items: Option<&[KeyToPath]>,
    default_mode: Option<i32>,
) -> Result<VolumeFiles> {
    let mode = |m: Option<i32>| -> Result<u32> {
        let m = m.or(default_mode).unwrap_or(0o644);
        u32::try_from(m).ok().filter(|m| *m <= 0o777).ok_or_else(|| anyhow!("mode {m}: expected 0 to 0777"))
    };
    let mut files = Vec::new();
    match items {
        None => {
            for (k, v) in data {
                files.push((PathBuf::from(k), v.clone().into_bytes(), mode(None)?));
            }
        }
        Some(items) => {
            for it in items {
                let v = data.get(&it.key).with_context(|| format!("no key {}", it.key))?;
                files.push((PathBuf::from(&it.path), v.clone().into_bytes(), mode(it.mode)?));
            }
        }
    }
    for (p, _, _) in &files {
        if p.is_absolute() || p.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
            bail!("path {}: must stay inside the volume", p.display());
        }
    }
    Ok(VolumeFiles { volume: volume.to_string(), files })
}

/// `sub` of the host directory `dir`, made if missing (as the kubelet
/// does); it may not climb out of `dir`.
fn sub_path(dir: &str, sub: &str) -> Result<String> {
    let rel = Path::new(sub);
    if rel.is_absolute() || rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
        bail!("{sub:?} must be a relative path inside the volume");
    }
    let path = Path::new(dir).join(rel);
    if std::fs::symlink_metadata(&path).is_err() {
        std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
    }
    let real = path.canonicalize().with_context(|| format!("{}", path.display()))?;
    let base = Path::new(dir).canonicalize().with_context(|| dir.to_string())?;
    if !real.starts_with(&base) {
        bail!("{} leads out of the volume {dir}", path.display());
    }
    let s = real.display().to_string();
    if s.contains([':', ',']) {
        bail!("path {s:?}: skiff binds paths without ':' or ','");
    }
    Ok(s)
}

/// Checks (or makes) a hostPath as its `type` says; the path.
fn host_path(path: &str, kind: &str) -> Result<String> {
    use std::os::unix::fs::FileTypeExt;
    let p = Path::new(path);
    if !p.is_absolute() || path.contains(':') || path.contains(',') {
        bail!("path {path:?}: skiff binds absolute paths without ':' or ','");
    }
    let md = std::fs::metadata(p);
    let is = |want: &dyn Fn(&std::fs::Metadata) -> bool, what: &str| match &md {
        Ok(m) if want(m) => Ok(()),
        Ok(_) => bail!("{path} is not a {what} (type {kind})"),
        Err(e) => bail!("{path}: {e} (type {kind})"),
    };
    match kind {
        "" => {}
        "Directory" => is(&|m| m.is_dir(), "directory")?,
        "File" => is(&|m| m.is_file(), "file")?,
        "Socket" => is(&|m| m.file_type().is_socket(), "socket")?,
        "CharDevice" => is(&|m| m.file_type().is_char_device(), "character device")?,
        "BlockDevice" => is(&|m| m.file_type().is_block_device(), "block device")?,
        "DirectoryOrCreate" if md.is_err() => std::fs::create_dir_all(p).with_context(|| format!("cannot create {path}"))?,
        "DirectoryOrCreate" => is(&|m| m.is_dir(), "directory")?,
        "FileOrCreate" if md.is_err() => {
            std::fs::OpenOptions::new().write(true).create_new(true).open(p).with_context(|| format!("cannot create {path}"))?;
        }
        "FileOrCreate" => is(&|m| m.is_file(), "file")?,
        other => bail!("type {other:?}: expected Directory, DirectoryOrCreate, File, FileOrCreate, Socket, CharDevice or BlockDevice"),
    }
    Ok(path.to_string())
}

struct ContainerContext<'a> {
    at: &'a str,
    /// The whole pod (resourceFieldRef may name another container).
    spec: &'a KubeSpec,
    /// The pod is on the host's network (its address is the host's).
    host_network: bool,
    meta: &'a Meta,
    sources: &'a Sources,
    volumes: &'a BTreeMap<String, Source>,
    pod_security: Option<&'a k8s_openapi::api::core::v1::PodSecurityContext>,
}

/// One container as an app, and the ports it publishes.
fn container(c: &Container, cx: &ContainerContext) -> Result<(AppSpec, Vec<String>)> {
    let at = cx.at;
    let image = c.image.clone().with_context(|| format!("{at}.image: missing"))?;
    let env = environment(c, cx)?;
    let expand_all = |v: &[String]| v.iter().map(|s| expand(s, &env)).collect::<Vec<_>>();
    // Kubernetes' rules: command replaces the image's entrypoint and drops
    // its cmd; args alone replace the cmd.
    let (exec, args) = match (c.command.as_deref(), c.args.as_deref()) {
        (Some([first, rest @ ..]), args) => {
            let mut all = expand_all(rest);
            all.extend(expand_all(args.unwrap_or_default()));
            (Some(expand(first, &env)), Some(all))
        }
        (Some([]), _) => bail!("{at}.command: empty"),
        (None, Some(args)) => (None, Some(expand_all(args))),
        (None, None) => (None, None),
    };
    let mut app = AppSpec {
        image,
        name: Some(c.name.clone()),
        exec,
        args,
        env: env.into_iter().collect(),
        working_dir: c.working_dir.clone(),
        ..AppSpec::default()
    };
    security(c, cx, &mut app)?;
    if let Some(r) = &c.resources {
        let limit = |k: &str| r.limits.as_ref().and_then(|l| l.get(k)).map(|q| q.0.clone());
        if let Some(m) = limit("memory") {
            app.memory =
                Some(quantity::bytes(&m).map_err(|e| anyhow!("{at}.resources.limits.memory: {e}"))?.to_string());
        }
        if let Some(cpu) = limit("cpu") {
            let m = quantity::millicpus(&cpu).map_err(|e| anyhow!("{at}.resources.limits.cpu: {e}"))?;
            app.cpu = Some(format!("{m}m"));
        }
        if let Some(req) = r.requests.as_ref().and_then(|l| l.get("memory")) {
            let b = quantity::bytes(&req.0).map_err(|e| anyhow!("{at}.resources.requests.memory: {e}"))?;
            app.memory_reservation = Some(b.to_string());
        }
        if let Some(req) = r.requests.as_ref().and_then(|l| l.get("cpu")) {
            // The kubelet's mapping of a CPU request to cgroup shares.
            let m = quantity::millicpus(&req.0).map_err(|e| anyhow!("{at}.resources.requests.cpu: {e}"))?;
            app.cpu_shares = Some((m * 1024 / 1000).max(2));
        }
    }
    for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
        let mut read_only = m.read_only == Some(true);
        let mut opts: Vec<String> = Vec::new();
        let sub = m.sub_path.as_deref().filter(|s| !s.is_empty());
        let source = match cx.volumes.get(&m.name) {
            Some(Source::Host(p, ro)) => {
                read_only |= *ro;
                match sub {
                    None => p.clone(),
                    Some(sub) => sub_path(p, sub).with_context(|| format!("{at}.volumeMounts[{i}].subPath"))?,
                }
            }
            Some(Source::Pod(name)) => name.clone(),
            Some(Source::Memory(name, size)) => {
                opts.push("tmpfs".to_string());
                opts.extend(size.map(|s| format!("size={s}")));
                name.clone()
            }
            // As Kubernetes mounts them.
            Some(Source::Filled(name)) => {
                read_only = true;
                name.clone()
            }
            Some(Source::Unsupported) => bail!(
                "{at}.volumeMounts[{i}]: volume {} is of a kind skiff cannot mount yet (it mounts hostPath, emptyDir, configMap, secret and persistentVolumeClaim volumes)",
                m.name
            ),
            None => bail!("{at}.volumeMounts[{i}]: no volume named {}", m.name),
        };
        if m.mount_path.contains(':') {
            bail!("{at}.volumeMounts[{i}].mountPath {:?}: skiff mounts paths without ':'", m.mount_path);
        }
        if let (Some(sub), Some(Source::Pod(_) | Source::Memory(..) | Source::Filled(_))) =
            (sub, cx.volumes.get(&m.name))
        {
            if sub.contains([',', ':']) {
                bail!("{at}.volumeMounts[{i}].subPath {sub:?}: skiff takes paths without ',' or ':'");
            }
            opts.push(format!("subpath={sub}"));
        }
        if read_only {
            opts.push("ro".to_string());
        }
        let opts = if opts.is_empty() { String::new() } else { format!(":{}", opts.join(",")) };
        app.volumes.push(format!("{source}:{}{opts}", m.mount_path));
    }
    let mut ports = Vec::new();
    for (i, p) in c.ports.iter().flatten().enumerate() {
        let Some(host) = p.host_port else { continue };
        let proto = match p.protocol.as_deref().unwrap_or("TCP") {
            "TCP" => "tcp",
            "UDP" => "udp",
            other => bail!("{at}.ports[{i}].protocol {other}: skiff publishes TCP and UDP"),
        };
        let ip = p.host_ip.as_ref().map_or(String::new(), |ip| format!("{ip}:"));
        ports.push(format!("{ip}{host}:{}/{proto}", p.container_port));
    }
    Ok((app, ports))
}

/// The container's user, groups and confinement.
fn security(c: &Container, cx: &ContainerContext, app: &mut AppSpec) -> Result<()> {
    let sc = c.security_context.as_ref();
    let at = cx.at;
    if sc.and_then(|s| s.privileged) == Some(true) {
        bail!("{at}.securityContext.privileged: skiff runs no privileged containers (its nearest: --caps-retain of what the app needs, --insecure-options, or --stage1 fly)");
    }
    let user = sc.and_then(|s| s.run_as_user).or(cx.pod_security.and_then(|s| s.run_as_user));
    let group = sc.and_then(|s| s.run_as_group).or(cx.pod_security.and_then(|s| s.run_as_group));
    match (user, group) {
        (Some(u), g) => app.user = Some(g.map_or(u.to_string(), |g| format!("{u}:{g}"))),
        (None, Some(g)) => app.group = Some(g.to_string()),
        (None, None) => {}
    }
    if let Some(groups) = cx.pod_security.and_then(|s| s.supplemental_groups.as_ref()) {
        app.groups_add = groups.iter().map(|g| g.to_string()).collect();
    }
    let Some(sc) = sc else { return Ok(()) };
    app.readonly_rootfs = sc.read_only_root_filesystem == Some(true);
    if let Some(escalate) = sc.allow_privilege_escalation {
        app.no_new_privileges = Some(!escalate);
    }
    if let Some(caps) = &sc.capabilities {
        let up = |list: &Option<Vec<String>>| -> Vec<String> {
            list.iter()
                .flatten()
                .map(|c| c.trim().to_ascii_uppercase().trim_start_matches("CAP_").to_string())
                .collect()
        };
        let set = crate::pod::security::add_and_drop(&up(&caps.add), &up(&caps.drop))
            .map_err(|e| anyhow::anyhow!("{at}.securityContext.capabilities.add: {e}"))?;
        app.caps_retain = Some(set);
    }
    Ok(())
}

/// The container's environment, as the kubelet makes it: `envFrom` in
/// order, then `env`, each value's `$(VAR)` expanded from what came before.
fn environment(c: &Container, cx: &ContainerContext) -> Result<Vec<(String, String)>> {
    let at = cx.at;
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, k: String, v: String| {
        env.retain(|(x, _)| *x != k);
        env.push((k, v));
    };
    for (i, from) in c.env_from.iter().flatten().enumerate() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (table, name, optional, kind) = match (&from.config_map_ref, &from.secret_ref) {
            (Some(r), None) => (&cx.sources.config_maps, &r.name, r.optional, "ConfigMap"),
            (None, Some(r)) => (&cx.sources.secrets, &r.name, r.optional, "Secret"),
            _ => bail!("{at}.envFrom[{i}]: give one of configMapRef and secretRef"),
        };
        match table.get(name) {
            Some(data) => {
                for (k, v) in data {
                    set(&mut env, format!("{prefix}{k}"), v.clone());
                }
            }
            None if optional == Some(true) => {}
            None => bail!("{at}.envFrom[{i}]: no {kind} {name} in the file"),
        }
    }
    for (i, e) in c.env.iter().flatten().enumerate() {
        let value = env_value(e, c, cx).with_context(|| format!("{at}.env[{i}] ({})", e.name))?;
        if let Some(v) = value {
            let v = expand(&v, &env);
            set(&mut env, e.name.clone(), v);
        }
    }
    Ok(env)
}

/// One `env` entry's value (of container `this`); None: an optional
/// reference to nothing.
fn env_value(e: &EnvVar, this: &Container, cx: &ContainerContext) -> Result<Option<String>> {
    let Some(from) = &e.value_from else { return Ok(Some(e.value.clone().unwrap_or_default())) };
    let lookup = |table: &BTreeMap<String, BTreeMap<String, String>>,
                  name: &str,
                  key: &str,
                  optional: Option<bool>,
                  kind: &str| {
        match table.get(name).and_then(|d| d.get(key)) {
            Some(v) => Ok(Some(v.clone())),
            None if optional == Some(true) => Ok(None),
            None => Err(anyhow!("no key {key} in {kind} {name} of the file")),
        }
    };
    if let Some(r) = &from.config_map_key_ref {
        return lookup(&cx.sources.config_maps, &r.name, &r.key, r.optional, "ConfigMap");
    }
    if let Some(r) = &from.secret_key_ref {
        return lookup(&cx.sources.secrets, &r.name, &r.key, r.optional, "Secret");
    }
    if let Some(f) = &from.field_ref {
        let path = f.field_path.as_str();
        let key = |prefix: &str| path.strip_prefix(prefix).and_then(|r| r.strip_suffix("']")).map(str::to_string);
        let value = match path {
            "metadata.name" => cx.meta.name.clone().unwrap_or_default(),
            "metadata.namespace" => cx.meta.namespace.clone(),
            "spec.nodeName" => nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default(),
            // Known before the pod runs only when it is the host's.
            "status.podIP" | "status.hostIP" if cx.host_network || path == "status.hostIP" => host_address()?,
            "status.podIP" => bail!("fieldRef status.podIP: the pod's own address is known only once it runs (with hostNetwork it is the host's)"),
            _ => match (key("metadata.labels['"), key("metadata.annotations['")) {
                (Some(k), _) => cx.meta.labels.get(&k).cloned().unwrap_or_default(),
                (_, Some(k)) => cx.meta.annotations.get(&k).cloned().unwrap_or_default(),
                _ => bail!("fieldRef {path}: skiff knows metadata.name, metadata.namespace, metadata.labels['K'], metadata.annotations['K'] and spec.nodeName"),
            },
        };
        return Ok(Some(value));
    }
    if let Some(r) = &from.resource_field_ref {
        return resource_field(r, this, cx.spec).map(Some);
    }
    bail!("valueFrom: skiff knows configMapKeyRef, secretKeyRef, fieldRef and resourceFieldRef")
}

/// A container's limit or request as the downward API gives it: in units
/// of `divisor`, rounded up. A request not given is its limit, else 0; a
/// limit not given is what the host has (its CPUs, its memory), as the
/// kubelet gives the node's allocatable.
fn resource_field(r: &ResourceFieldSelector, this: &Container, spec: &KubeSpec) -> Result<String> {
    let target = match r.container_name.as_deref().filter(|n| !n.is_empty()) {
        None => this,
        Some(n) => spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .find(|c| c.name == n)
            .ok_or_else(|| anyhow!("resourceFieldRef: no container named {n}"))?,
    };
    let given = |kind: &str, key: &str| {
        let res = target.resources.as_ref();
        let map = res.and_then(|r| if kind == "limits" { r.limits.as_ref() } else { r.requests.as_ref() });
        map.and_then(|m| m.get(key)).map(|q| q.0.clone())
    };
    let Some((kind, key)) = r.resource.split_once('.').filter(|(k, _)| matches!(*k, "limits" | "requests")) else {
        bail!(
            "resourceFieldRef {}: skiff knows limits.cpu, limits.memory, requests.cpu and requests.memory",
            r.resource
        )
    };
    let value = given(kind, key).or_else(|| if kind == "requests" { given("limits", key) } else { None });
    let divisor = r.divisor.as_ref().map_or("1", |q| q.0.as_str());
    let (amount, unit) = match key {
        "cpu" => {
            let millis = match value {
                Some(q) => quantity::millicpus(&q).map_err(|e| anyhow!("resources.{kind}.cpu: {e}"))?,
                None if kind == "limits" => host_cpus() * 1000,
                None => 0,
            };
            (millis, quantity::millicpus(divisor))
        }
        "memory" => {
            let bytes = match value {
                Some(q) => quantity::bytes(&q).map_err(|e| anyhow!("resources.{kind}.memory: {e}"))?,
                None if kind == "limits" => host_memory()?,
                None => 0,
            };
            (bytes, quantity::bytes(divisor))
        }
        _ => bail!(
            "resourceFieldRef {}: skiff knows limits.cpu, limits.memory, requests.cpu and requests.memory",
            r.resource
        ),
    };
    let unit = unit.map_err(|e| anyhow!("resourceFieldRef divisor: {e}"))?;
    if unit == 0 {
        bail!("resourceFieldRef divisor: must be above 0");
    }
    Ok(amount.div_ceil(unit).to_string())
}

fn host_cpus() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

/// MemTotal of /proc/meminfo, in bytes.
fn host_memory() -> Result<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").context("cannot read /proc/meminfo")?;
    info.lines()
        .find_map(|l| l.strip_prefix("MemTotal:")?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .context("no MemTotal in /proc/meminfo")
}

/// The host's address on its default route (the kernel picks it for a
/// UDP socket "connected" to a documentation address; nothing is sent).
fn host_address() -> Result<String> {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").context("cannot find the host's address")?;
    sock.connect("192.0.2.1:9").context("cannot find the host's address: no default route")?;
    Ok(sock.local_addr().context("cannot find the host's address")?.ip().to_string())
}

/// Kubernetes' `$(VAR)` expansion: a variable defined before is replaced,
/// `$$` is a `$`, anything else stays as written.
fn expand(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(end) = after.strip_prefix('(').and_then(|a| a.find(')')) {
            let name = &after[1..=end];
            match env.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&rest[i..i + end + 3]),
            }
            rest = &after[end + 2..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_of(yaml: &str) -> Result<PodSpec> {
        let store = tempfile::tempdir()?;
        spec_in(yaml, &Store::new(store.path()))
    }

    fn spec_in(yaml: &str, store: &Store) -> Result<PodSpec> {
        let (pod, sources) = super::super::documents::read(yaml, "t")?;
        to_spec(&pod, &sources, store)
    }

    #[test]
    fn claims_are_named_volumes_and_subpaths_stay_inside() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path());
        let host = d.path().join("host");
        std::fs::create_dir(&host).unwrap();
        std::os::unix::fs::symlink("/etc", host.join("out")).unwrap();
        let yaml = |sub: &str| {
            format!(
                "kind: Pod\nspec:\n  volumes:\n  - {{name: data, persistentVolumeClaim: {{claimName: pg-data}}}}\n  - {{name: h, hostPath: {{path: {}}}}}\n  containers:\n  - {{name: a, image: i, volumeMounts: [{{name: data, mountPath: /d}}, {{name: h, mountPath: /s, subPath: {sub}}}]}}\n",
                host.display()
            )
        };
        let s = spec_in(&yaml("logs/app"), &store).unwrap();
        let claim = d.path().join("volumes/pg-data");
        assert!(claim.is_dir(), "made in the store");
        assert_eq!(
            s.apps[0].volumes,
            [format!("{}:/d", claim.display()), format!("{}:/s", host.join("logs/app").display())]
        );
        for bad in ["../x", "/abs", "out"] {
            let e = format!("{:#}", spec_in(&yaml(bad), &store).unwrap_err());
            assert!(e.contains("subPath"), "{bad}: {e}");
        }
    }

    #[test]
    fn command_and_args_follow_kubernetes_not_docker() {
        let s = spec_of("kind: Pod\nspec:\n  containers:\n  - {name: a, image: i, command: [/bin/sh, -c], args: [echo $(X) $$(X)], env: [{name: X, value: x}]}\n  - {name: b, image: i, args: [one]}\n").unwrap();
        assert_eq!(s.apps[0].exec.as_deref(), Some("/bin/sh"));
        assert_eq!(s.apps[0].args, Some(vec!["-c".to_string(), "echo x $(X)".to_string()]));
        assert_eq!((s.apps[1].exec.as_deref(), s.apps[1].args.as_deref()), (None, Some(&["one".to_string()][..])));
    }

    #[test]
    fn environment_from_every_source_in_the_kubelets_order() {
        let s = spec_of(
            "kind: ConfigMap\nmetadata: {name: c}\ndata: {A: from-map, B: b}\n---\nkind: Secret\nmetadata: {name: s}\nstringData: {PW: hunter2}\n---\n\
             kind: Pod\nmetadata: {name: web, labels: {tier: front}}\nspec:\n  containers:\n  - name: a\n    image: i\n    envFrom: [{configMapRef: {name: c}, prefix: P_}]\n    env:\n    - {name: A, value: $(P_A)!}\n    - {name: PW, valueFrom: {secretKeyRef: {name: s, key: PW}}}\n    - {name: ME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}\n    - {name: T, valueFrom: {fieldRef: {fieldPath: \"metadata.labels['tier']\"}}}\n    - {name: O, valueFrom: {configMapKeyRef: {name: c, key: none, optional: true}}}\n",
        )
        .unwrap();
        let env = &s.apps[0].env;
        assert_eq!(env["A"], "from-map!");
        assert_eq!(
            (env["P_B"].as_str(), env["PW"].as_str(), env["ME"].as_str(), env["T"].as_str()),
            ("b", "hunter2", "web", "front")
        );
        assert!(!env.contains_key("O"));
        assert_eq!(s.name.as_deref(), Some("web"));
    }

    #[test]
    fn resource_field_refs_are_in_divisor_units_rounded_up() {
        let env = |e: &str| {
            spec_of(&format!("kind: Pod\nspec:\n  containers:\n  - name: a\n    image: i\n    resources: {{limits: {{memory: 64Mi, cpu: 500m}}, requests: {{memory: 16Mi}}}}\n    env: [{e}]\n  - {{name: b, image: i}}\n"))
                .map(|s| s.apps[0].env.clone())
        };
        let one =
            |r: &str| env(&format!("{{name: V, valueFrom: {{resourceFieldRef: {{{r}}}}}}}")).map(|e| e["V"].clone());
        assert_eq!(one("resource: limits.memory, divisor: 1Mi").unwrap(), "64");
        assert_eq!(one("resource: limits.cpu").unwrap(), "1", "500m in CPUs, rounded up");
        assert_eq!(one("resource: limits.cpu, divisor: 1m").unwrap(), "500");
        assert_eq!(one("resource: requests.memory").unwrap(), "16777216");
        assert_eq!(one("resource: requests.cpu, divisor: 1m").unwrap(), "500", "a request not given is its limit");
        let host_cpus = std::thread::available_parallelism().unwrap().get().to_string();
        assert_eq!(one("containerName: b, resource: limits.cpu").unwrap(), host_cpus, "no limit: the host's");
        assert_eq!(one("containerName: b, resource: requests.cpu").unwrap(), "0");
        for (bad, want) in [
            ("resource: limits.ephemeral-storage", "skiff knows limits.cpu"),
            ("resource: memory", "skiff knows limits.cpu"),
            ("containerName: nope, resource: limits.cpu", "no container named nope"),
            ("resource: limits.memory, divisor: 0", "divisor"),
        ] {
            let e = format!("{:#}", one(bad).unwrap_err());
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn limits_users_capabilities_ports_and_volumes() {
        let d = tempfile::tempdir().unwrap();
        let made = d.path().join("made");
        let s = spec_of(&format!(
            "kind: Pod\nspec:\n  securityContext: {{runAsUser: 1000, supplementalGroups: [4000, 5000]}}\n  terminationGracePeriodSeconds: 5\n  hostAliases: [{{ip: 192.0.2.1, hostnames: [db, db2]}}]\n  volumes:\n  - {{name: h, hostPath: {{path: {}, type: DirectoryOrCreate}}}}\n  - {{name: e, emptyDir: {{}}}}\n  containers:\n  - name: a\n    image: i\n    resources: {{limits: {{memory: 64Mi, cpu: 500m}}, requests: {{cpu: 250m, memory: 16Mi}}}}\n    securityContext: {{runAsGroup: 2000, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: {{drop: [ALL], add: [NET_ADMIN, chown]}}}}\n    ports: [{{containerPort: 80, hostPort: 8080}}, {{containerPort: 53, hostPort: 5353, protocol: UDP, hostIP: 127.0.0.1}}, {{containerPort: 9}}]\n    volumeMounts: [{{name: h, mountPath: /h, readOnly: true}}, {{name: e, mountPath: /e}}]\n",
            made.display()
        ))
        .unwrap();
        let a = &s.apps[0];
        assert_eq!((a.memory.as_deref(), a.cpu.as_deref(), a.cpu_shares), (Some("67108864"), Some("500m"), Some(256)));
        assert_eq!(a.memory_reservation.as_deref(), Some("16777216"));
        assert_eq!((a.user.as_deref(), a.readonly_rootfs, a.no_new_privileges), (Some("1000:2000"), true, Some(true)));
        assert_eq!(a.caps_retain, Some(vec!["CHOWN".to_string(), "NET_ADMIN".to_string()]));
        assert_eq!(a.groups_add, ["4000", "5000"]);
        assert_eq!(s.ports, ["8080:80/tcp", "127.0.0.1:5353:53/udp"]);
        assert_eq!(a.volumes, [format!("{}:/h:ro", made.display()), "e:/e".to_string()]);
        assert!(made.is_dir(), "DirectoryOrCreate made it");
        assert_eq!(s.stop_timeout.as_deref(), Some("5s"));
        assert_eq!(s.hosts_entries, ["192.0.2.1=db", "192.0.2.1=db2"]);
    }

    #[test]
    fn configmap_and_secret_volumes_are_files_of_the_pod() {
        let s = spec_of(
            "kind: ConfigMap\nmetadata: {name: c}\ndata: {a.conf: x, b: y}\n---\nkind: Secret\nmetadata: {name: s}\nstringData: {pw: z}\n---\n\
             kind: Pod\nspec:\n  volumes:\n  - {name: conf, configMap: {name: c, items: [{key: a.conf, path: etc/a.conf, mode: 0600}]}}\n  - {name: creds, secret: {secretName: s, defaultMode: 0400}}\n  - {name: none, configMap: {name: absent, optional: true}}\n  containers:\n  - {name: a, image: i, volumeMounts: [{name: conf, mountPath: /conf}, {name: creds, mountPath: /creds, readOnly: false}]}\n",
        )
        .unwrap();
        assert_eq!(s.apps[0].volumes, ["conf:/conf:ro", "creds:/creds:ro"]);
        type Files = Vec<(String, String, u32)>;
        let files: Vec<(String, Files)> = s
            .volume_files
            .iter()
            .map(|v| {
                let f = v
                    .files
                    .iter()
                    .map(|(p, d, m)| (p.display().to_string(), String::from_utf8_lossy(d).into_owned(), *m));
                (v.volume.clone(), f.collect())
            })
            .collect();
        assert_eq!(
            files,
            [
                ("conf".to_string(), vec![("etc/a.conf".to_string(), "x".to_string(), 0o600)]),
                ("creds".to_string(), vec![("pw".to_string(), "z".to_string(), 0o400)]),
                ("none".to_string(), vec![]),
            ]
        );
        let e = spec_of("kind: ConfigMap\nmetadata: {name: c}\ndata: {k: v}\n---\nkind: Pod\nspec:\n  volumes: [{name: v, configMap: {name: c, items: [{key: k, path: ../../etc/passwd}]}}]\n  containers: [{name: a, image: i}]\n");
        assert!(format!("{:#}", e.err().unwrap()).contains("must stay inside the volume"));
    }

    #[test]
    fn a_subpath_of_a_pod_volume_goes_to_the_flavor() {
        let s = spec_of("kind: ConfigMap\nmetadata: {name: c}\ndata: {app.conf: x}\n---\nkind: Pod\nspec:\n  volumes: [{name: conf, configMap: {name: c}}, {name: e, emptyDir: {}}]\n  containers: [{name: a, image: i, volumeMounts: [{name: conf, mountPath: /etc/app.conf, subPath: app.conf}, {name: e, mountPath: /logs, subPath: logs/a}]}]\n").unwrap();
        assert_eq!(s.apps[0].volumes, ["conf:/etc/app.conf:subpath=app.conf,ro", "e:/logs:subpath=logs/a"]);
    }

    #[test]
    fn the_pods_address_is_known_only_on_the_hosts_network() {
        let pod = |host: bool| {
            spec_of(&format!("kind: Pod\nspec:\n  hostNetwork: {host}\n  containers: [{{name: a, image: i, env: [{{name: IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}]}}]\n"))
        };
        let e = format!("{:#}", pod(false).unwrap_err());
        assert!(e.contains("known only once it runs"), "{e}");
        match pod(true) {
            Ok(s) => assert!(s.apps[0].env["IP"].parse::<std::net::IpAddr>().is_ok(), "{:?}", s.apps[0].env),
            Err(e) => assert!(format!("{e:#}").contains("no default route"), "{e:#}"),
        }
    }

    #[test]
    fn memory_volumes_are_tmpfs_pod_volumes() {
        let s = spec_of("kind: Pod\nspec:\n  volumes: [{name: m, emptyDir: {medium: Memory, sizeLimit: 16Mi}}, {name: m2, emptyDir: {medium: Memory}}]\n  containers: [{name: a, image: i, volumeMounts: [{name: m, mountPath: /m, readOnly: true}, {name: m2, mountPath: /n}]}]\n").unwrap();
        assert_eq!(s.apps[0].volumes, ["m:/m:tmpfs,size=16777216,ro", "m2:/n:tmpfs"]);
        let e = spec_of("kind: Pod\nspec:\n  volumes: [{name: d, emptyDir: {sizeLimit: 1Gi}}]\n  containers: [{name: a, image: i}]\n").unwrap_err();
        assert!(format!("{e:#}").contains("cannot limit a volume on disk"), "{e:#}");
    }

    #[test]
    fn what_cannot_mean_the_same_is_refused() {
        let cases = [
            ("containers: [{name: a, image: i, securityContext: {privileged: true}}]", "privileged"),
            ("containers: [{name: a, image: i, volumeMounts: [{name: v, mountPath: /v}]}]\n  volumes: [{name: v, nfs: {server: s, path: /}}]", "cannot mount yet"),
            ("containers: [{name: a, image: i}]\n  volumes: [{name: v, configMap: {name: c}}]", "no ConfigMap c"),
            ("containers: [{name: a, image: i}]\n  volumes: [{name: v, secret: {secretName: s, items: [{key: k, path: ../x}]}}]", "no Secret s"),
            ("containers: [{name: a, image: i, volumeMounts: [{name: nope, mountPath: /v}]}]", "no volume named nope"),
            ("containers: [{name: a, image: i, env: [{name: X, valueFrom: {secretKeyRef: {name: s, key: k}}}]}]", "no key k in Secret s"),
            ("containers: [{name: a, image: i, ports: [{containerPort: 1, hostPort: 2, protocol: SCTP}]}]", "SCTP"),
            ("containers: [{name: a, image: i, resources: {limits: {memory: lots}}}]", "memory quantity"),
            ("containers: [{name: a}]", "image: missing"),
            ("containers: []", "no containers"),
            ("volumes: [{name: h, hostPath: {path: /nonexistent-skiff, type: Directory}}]\n  containers: [{name: a, image: i}]", "nonexistent-skiff"),
            ("containers: [{name: a, image: i, ports: [{containerPort: x}]}]", "spec"),
        ];
        for (spec, want) in cases {
            let e =
                spec_of(&format!("kind: Pod\nspec:\n  {spec}\n")).err().map(|e| format!("{e:#}")).unwrap_or_default();
            assert!(e.contains(want), "{spec}: {e}");
        }
    }
}
