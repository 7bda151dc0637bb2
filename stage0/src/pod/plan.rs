//! A new pod as a plain value, and making the pod from it. Whoever asks for
//! a pod (the command line, a TOML pod manifest file; Kubernetes YAML and a
//! CRI server next) decides everything in a [`PodPlan`] first; [`create`]
//! then fetches the images, resolves the apps and writes the pod, calling
//! back into nobody.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use skiff_pods::abi::feature;
use skiff_pods::id_ranges::Pool;
use skiff_pods::logfile::LogConfig;
use skiff_pods::manifest::{ExitPolicy, RestartPolicy, UserNamespace, MANIFEST_VERSION};
use skiff_pods::{App, Pod, PodManifest, Store};

use crate::image::catalog;
use crate::image::fetch::{fetch, FetchOptions, Fetched, PullPolicy};
use crate::image::import::Progress;
use crate::image::lock::StoreLock;
use crate::image::platform::Platform;
use crate::image::reference::ImageReference;
use crate::image::source::registry::RegistryOptions;
use crate::image::trust::TrustOptions;
use crate::image::ImageStore;
use crate::pod::flavor::Flavor;
use crate::pod::prepare::{self, AppContext, AppOverrides, PodNet, Purpose};
use crate::pod::security::Insecure;

/// One app: its image and what the user said about it.
#[derive(Clone, Debug)]
pub struct AppPlan {
    pub image: ImageReference,
    pub overrides: AppOverrides,
}

/// Everything a new pod is made from, decided before anything is fetched
/// or written.
pub struct PodPlan {
    pub flavor: Flavor,
    pub apps: Vec<AppPlan>,
    /// `--sandbox`: no apps, and the pod runs until it is stopped.
    pub sandbox: bool,
    /// `--cgroup-parent`.
    pub cgroup_parent: Option<String>,
    /// Claimed for the pod as soon as its UUID exists.
    pub name: Option<String>,
    /// Where the pod's UUID is written as soon as it exists.
    pub uuid_file: Option<PathBuf>,
    /// None: `skiff-<UUID prefix>` where the flavor gives the pod a UTS
    /// namespace, else the host's name.
    pub hostname: Option<String>,
    pub insecure: Insecure,
    /// The pod's /etc/resolv.conf; None keeps the image's.
    pub resolv_conf: Option<String>,
    pub exit_policy: ExitPolicy,
    /// None: the default.
    pub stop_timeout: Option<Duration>,
    pub log: LogConfig,
    pub net: PodNet,
    /// Take DNS servers from the CNI result when it has some.
    pub dns_from_network: bool,
    pub hosts_entries: Vec<(String, String)>,
    /// Every app's environment below its image's (TERM, `--inherit-env`).
    pub pod_env: Vec<(String, String)>,
    pub pull_policy: PullPolicy,
    /// None: the host's user namespace.
    pub user_namespace: Option<UserNsPlan>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// What pod volumes start with (Kubernetes' configMap and secret
    /// volumes).
    pub volume_files: Vec<prepare::VolumeFiles>,
    /// Every app's; an init app's `always` is `on-failure` (it must end).
    pub restart_policy: RestartPolicy,
}

/// The range of a pod's own user namespace.
#[derive(Clone, Copy, Debug)]
pub enum UserNsPlan {
    /// A slot of skiff's pool, claimed as the pod is made.
    FromPool(Pool),
    /// As the user gave it.
    Exactly(UserNamespace),
}

/// Where pods are made and images come from.
pub struct Stores<'a> {
    pub store: &'a Store,
    pub images: &'a ImageStore,
    pub registry: &'a RegistryOptions,
    pub trust: &'a TrustOptions,
}

/// Fetches the plan's images (when needed) and creates the pod in
/// `prepare/`, locked. `quiet`: no line per image on stderr.
pub fn create(at: &Stores, plan: &PodPlan, purpose: Purpose, progress: &dyn Progress, quiet: bool) -> Result<Pod> {
    at.images.ensure_dirs()?;
    // Held until the pod's manifest is written: from then on the pod
    // itself keeps its layer trees from `image gc`.
    let lock = StoreLock::shared(at.images)?;
    let opts = FetchOptions {
        platform: Platform::default(),
        progress,
        registry: at.registry.clone(),
        policy: plan.pull_policy,
        trust: at.trust,
    };
    let mut fetched: Vec<Fetched> = Vec::new();
    for app in &plan.apps {
        let f = fetch(at.images, &app.image, &opts, &lock)?;
        catalog::touch_used(at.images, &f.record.id_digest()?);
        if !quiet {
            eprintln!("skiff: image {} ({})", f.record.id, f.name);
        }
        fetched.push(f);
    }
    if let Some(n) = &plan.name {
        skiff_pods::names::check(n)?;
    }
    prepare::create(at.store, purpose, &plan.volume_files, |uuid| {
        if let Some(f) = &plan.uuid_file {
            save_uuid(f, uuid)?;
        }
        if let Some(n) = &plan.name {
            skiff_pods::name_claims::claim(at.store, n, uuid)?;
        }
        let user_namespace = match plan.user_namespace {
            None => None,
            Some(UserNsPlan::Exactly(u)) => Some(u),
            Some(UserNsPlan::FromPool(pool)) => Some(skiff_pods::id_ranges::claim(at.store, pool, uuid)?),
        };
        let hostname = hostname(plan, uuid);
        let cx = AppContext {
            images: at.images,
            hostname: &hostname,
            pod_env: &plan.pod_env,
            insecure: plan.insecure,
            flavor: &plan.flavor.description,
        };
        let apps = fetched
            .iter()
            .zip(&plan.apps)
            .map(|(f, app)| prepare::resolve_app(&f.record, &f.name, &app.overrides, &cx))
            .collect::<Result<Vec<_>>>()?;
        manifest(plan, uuid, hostname, apps, user_namespace)
    })
}

/// `--uuid-file-save`: written atomically, so a new file replaces what is
/// there: only a regular file may be (not `/dev/stdout`, say, or a link).
fn save_uuid(f: &Path, uuid: &str) -> Result<()> {
    if std::fs::symlink_metadata(f).is_ok_and(|md| !md.is_file()) {
        anyhow::bail!("--uuid-file-save {}: not a regular file (skiff replaces the file it names)", f.display());
    }
    let name = f.file_name().and_then(|n| n.to_str()).with_context(|| format!("{} is not a file name", f.display()))?;
    let dir = f.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    skiff_pods::atomic::write_atomic(dir, name, format!("{uuid}\n").as_bytes())
        .with_context(|| format!("cannot write --uuid-file-save {}", f.display()))
}

fn hostname(plan: &PodPlan, uuid: &str) -> String {
    match &plan.hostname {
        Some(h) => h.clone(),
        None if plan.flavor.supports(feature::HOSTNAME) => prepare::default_hostname(uuid),
        // The pod shares the host's UTS namespace: its /etc/hostname and
        // HOSTNAME say the host's name.
        None => nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".to_string()),
    }
}

/// The pod's manifest, from the plan and its resolved apps.
fn manifest(
    plan: &PodPlan,
    uuid: &str,
    hostname: String,
    mut apps: Vec<App>,
    user_namespace: Option<UserNamespace>,
) -> Result<PodManifest> {
    crate::pod::volume::assign_new_volumes(&mut apps).map_err(anyhow::Error::msg)?;
    for app in &mut apps {
        app.restart = match plan.restart_policy {
            RestartPolicy::Always if app.init => RestartPolicy::OnFailure,
            p => p,
        };
    }
    if let Some(m) = apps.iter().flat_map(|a| &a.mounts).find(|m| m.idmap && user_namespace.is_none()) {
        anyhow::bail!("--volume …:{}:idmap needs a pod with a user namespace of its own (--private-users)", m.target);
    }
    for (i, a) in apps.iter().enumerate() {
        if apps[..i].iter().any(|b| b.name == a.name) {
            anyhow::bail!("two apps of the pod are named {:?}: name them with --app-name", a.name);
        }
    }
    let net = plan.net.clone();
    Ok(PodManifest {
        version: MANIFEST_VERSION,
        uuid: uuid.to_string(),
        created_at: skiff_pods::time::now_rfc3339(),
        flavor: plan.flavor.id.clone(),
        name: plan.name.clone(),
        apps,
        masked_paths: !plan.insecure.paths && plan.flavor.supports(feature::MASKED_PATHS),
        resolv_conf: plan.resolv_conf.clone(),
        exit_policy: plan.exit_policy,
        stop_timeout_ms: plan.stop_timeout.map_or(skiff_pods::manifest::DEFAULT_STOP_TIMEOUT_MS, |t| {
            u64::try_from(t.as_millis()).unwrap_or(u64::MAX)
        }),
        log: plan.log.clone(),
        net: net.net,
        networks: net.networks,
        ports: net.ports,
        cni_path: net.cni_path,
        dns_from_network: plan.dns_from_network,
        hosts_entries: plan.hosts_entries.clone(),
        labels: plan.labels.clone(),
        annotations: plan.annotations.clone(),
        user_namespace,
        hostname,
        sandbox: plan.sandbox,
        cgroup_parent: plan.cgroup_parent.clone(),
    })
}
