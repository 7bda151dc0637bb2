//! `run`, `prepare` and `run-prepared`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use skiff_pods::{Pod, PodState, StateDir};

use super::app_options::{apps_of, parse_apps, read_pod_manifest};
use super::net_options::{asks_addresses, default_net, require_net, resolve_net, start_running, NetOptions};
use super::progress::CliProgress;
use super::run_options::RunOnlyOptions;
use super::Ctx;
use crate::config::Config;
use crate::image::fetch::PullPolicy;
use crate::image::reference::ImageReference;
use crate::pod::dns::{self, DnsOptions};
use crate::pod::flavor::{Flavor, DEFAULT_FLAVOR};
use crate::pod::handoff;
use crate::pod::network::{self, NetRequest};
use crate::pod::plan::{self, AppPlan, PodPlan, Stores, UserNsPlan};
use crate::pod::prepare::{self, AppOverrides};
use crate::pod::resources;
use crate::pod::security::{Insecure, SeccompChoice};
use crate::pod::userns::{self, PrivateUsers};
use crate::spec::PodSpec;
use skiff_pods::abi::feature;
use skiff_pods::cgroup::Resources;
use skiff_pods::logfile::{LogConfig, LogDriver};
use skiff_pods::manifest::{ExitPolicy, Net, PortMapping, RestartPolicy};

#[derive(Args, Debug, Clone)]
pub struct PodOptions {
    /// Hostname inside the pod [default: skiff-<first 8 characters of the UUID>].
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,
    /// Give the app a pseudo-terminal and pass your stdin to it (your
    /// terminal goes to raw mode until the pod ends). One app only.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Give the app a pseudo-terminal; its output comes to your stdout, and
    /// without -i your stdin is not passed. One app only.
    #[arg(short = 't', long)]
    tty: bool,
}

impl PodOptions {
    /// The flavor's `run` options for the app's stdio.
    fn stdio_args(&self) -> &'static [&'static str] {
        match (self.interactive, self.tty) {
            (true, _) => &["--interactive"],
            (false, true) => &["--tty"],
            (false, false) => &[],
        }
    }

    fn check_terminal(&self, n_apps: usize) -> Result<()> {
        if (self.interactive || self.tty) && n_apps > 1 {
            bail!("-i/--interactive and -t/--tty need a pod of one app (this one has {n_apps})");
        }
        Ok(())
    }
}

// Pod options of `run` and `prepare` only (fixed once a pod is prepared).
#[derive(Args, Debug, Clone)]
pub struct PrepareOptions {
    /// Name the pod (letters, digits, '_', '.', '-'): usable wherever a
    /// UUID is; no two live pods have one name.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Put the pod's cgroup under this cgroup (an absolute cgroup path,
    /// e.g. /kubepods/pod1; made if missing, and left in place) instead of
    /// /skiff.
    #[arg(long, value_name = "PATH", value_parser = parse_cgroup_parent)]
    cgroup_parent: Option<String>,
    /// Attach a label to the pod (shown by status and list; repeatable;
    /// wins over the pod manifest file's).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    label: Vec<(String, String)>,
    /// Attach an annotation to the pod (as --label).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    annotation: Vec<(String, String)>,
    /// Write the pod's UUID to FILE as soon as it is allocated.
    #[arg(long, value_name = "FILE")]
    uuid_file_save: Option<PathBuf>,
    /// The stage1 flavor that isolates the pod: ns, fly, nspawn, or an
    /// absolute path [default: the config file's, else ns].
    #[arg(long, value_name = "NAME|PATH")]
    stage1: Option<String>,
    /// When to pull a docker:// image: new (only when not in the store),
    /// update (always ask the registry), never [default: new].
    #[arg(long, value_enum)]
    pull_policy: Option<PullPolicy>,
    /// Lift default protections: seccomp (no filter), paths (no masked or
    /// read-only /proc and /sys paths); comma-separated.
    #[arg(long, value_name = "LIST", value_parser = Insecure::parse)]
    insecure_options: Option<Insecure>,
    #[command(flatten)]
    net: NetOptions,
    /// Publish POD_PORT on the host's HOST_PORT (on HOST_IP only, when
    /// given), through the pod's first network (repeatable).
    #[arg(long, value_name = "[HOST_IP:]HOST_PORT:POD_PORT[/tcp|/udp]", value_parser = network::parse_port)]
    port: Vec<PortMapping>,
    /// An extra line of the apps' /etc/hosts (repeatable).
    #[arg(long, value_name = "IP=NAME", value_parser = prepare::parse_hosts_entry)]
    hosts_entry: Vec<(String, String)>,
    /// When a pod of several apps ends: all (when every app has exited;
    /// one failing stops the others) or any (when the first app exits)
    /// [default: all].
    #[arg(long, value_name = "all|any", value_parser = ExitPolicy::parse)]
    exit_policy: Option<ExitPolicy>,
    /// When an app is started again after it exits: never, on-failure or
    /// always, after Kubernetes' back-off (10 s doubling to 5 min); restarts
    /// are counted in `status` [default: never].
    #[arg(long, value_name = "never|on-failure|always", value_parser = RestartPolicy::parse)]
    restart_policy: Option<RestartPolicy>,
    /// Give the pod a user namespace of its own: its root is an
    /// unprivileged range of host ids, from skiff's pool (auto, the flag
    /// alone) or BASE:COUNT; no: the host's [default: the config file's,
    /// else no].
    #[arg(long, value_name = "auto|no|BASE:COUNT", num_args = 0..=1, require_equals = true, default_missing_value = "auto", value_parser = PrivateUsers::parse)]
    private_users: Option<PrivateUsers>,
    /// Keep the apps' stdout and stderr in the pod directory for `skiff
    /// logs` (file; they still reach your stdout and stderr) or not (none)
    /// [default: file where the flavor can, none with -i/-t].
    #[arg(long, value_name = "file|none", value_parser = parse_log_driver)]
    log_driver: Option<LogDriver>,
    /// Rotate an app's log before it grows past SIZE [default: 1M].
    #[arg(long, value_name = "SIZE")]
    log_max_size: Option<String>,
    /// Log files kept per app, the current one included [default: 2].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    log_max_files: Option<u32>,
    /// How long apps get between SIGTERM and SIGKILL when the pod is
    /// stopped (by `skiff stop`, a SIGTERM to skiff, or the exit policy)
    /// [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    stop_timeout: Option<std::time::Duration>,
    /// Pass this process's environment to the apps, below their images'.
    #[arg(long)]
    inherit_env: bool,
    /// DNS server for the pod's resolv.conf (repeatable); `host` copies the
    /// host's file, `none` keeps the image's [default: the host's servers].
    #[arg(long, value_name = "IP|host|none")]
    dns: Vec<String>,
    /// DNS search domain (repeatable).
    #[arg(long, value_name = "DOMAIN")]
    dns_search: Vec<String>,
    /// resolv.conf option, e.g. ndots:2 (repeatable).
    #[arg(long, value_name = "OPT")]
    dns_opt: Vec<String>,
}

/// Pod-wide settings: the command line's, over a pod manifest file's.
#[derive(Debug, Default)]
struct PodWide {
    stage1: String,
    /// None: the flavor's default.
    net: Option<NetRequest>,
    ports: Vec<PortMapping>,
    hosts_entries: Vec<(String, String)>,
    /// Given, not defaulted (a flavor must support what is asked for).
    exit_policy_given: bool,
    hostname: Option<String>,
    pull_policy: PullPolicy,
    exit_policy: ExitPolicy,
    stop_timeout: Option<std::time::Duration>,
    /// None: the flavor's default.
    log_driver: Option<LogDriver>,
    log_max_size: u64,
    log_max_files: u32,
    insecure: Insecure,
    inherit_env: bool,
    dns: DnsOptions,
    private_users: PrivateUsers,
    name: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    volume_files: Vec<prepare::VolumeFiles>,
    restart_policy: RestartPolicy,
}

impl PodWide {
    fn new(pod: &PodOptions, cli: &PrepareOptions, file: Option<&PodSpec>, config: &Config) -> Result<PodWide> {
        let file = file.cloned().unwrap_or_default();
        let or_file = |cli: &Vec<String>, file: Vec<String>| if cli.is_empty() { file } else { cli.clone() };
        let pull_policy = match (cli.pull_policy, &file.pull_policy) {
            (Some(p), _) => p,
            (None, Some(p)) => PullPolicy::from_str(p, false).map_err(|_| {
                anyhow::anyhow!("invalid pull-policy {p:?} in the pod manifest: expected new, update or never")
            })?,
            (None, None) => PullPolicy::default(),
        };
        let insecure = match cli.insecure_options {
            Some(i) => i,
            None => Insecure::parse(&file.insecure_options.join(",")).map_err(anyhow::Error::msg)?,
        };
        let stage1 = cli.stage1.clone().or(file.stage1).or_else(|| config.stage1.clone());
        let net = match (&cli.net.net, &file.net) {
            (Some(n), _) => Some(n.clone()),
            (None, Some(n)) => Some(NetRequest::parse(n).map_err(|e| anyhow::anyhow!("in the pod manifest: {e}"))?),
            (None, None) => None,
        };
        let ports = if cli.port.is_empty() {
            let parsed = file.ports.iter().map(|p| network::parse_port(p)).collect::<Result<Vec<_>, _>>();
            parsed.map_err(|e| anyhow::anyhow!("in the pod manifest: {e}"))?
        } else {
            cli.port.clone()
        };
        let mut hosts_entries = cli.hosts_entry.clone();
        for e in &file.hosts_entries {
            hosts_entries.push(prepare::parse_hosts_entry(e).map_err(|e| anyhow::anyhow!("in the pod manifest: {e}"))?);
        }
        let wide = PodWide {
            stage1: stage1.unwrap_or_else(|| DEFAULT_FLAVOR.to_string()),
            net,
            ports,
            hosts_entries,
            exit_policy_given: cli.exit_policy.is_some() || file.exit_policy.is_some(),
            hostname: pod.hostname.clone().or(file.hostname),
            pull_policy,
            exit_policy: cli.exit_policy.or(file.exit_policy).unwrap_or_default(),
            log_driver: match (cli.log_driver, &file.log_driver) {
                (Some(d), _) => Some(d),
                (None, Some(d)) => Some(parse_log_driver(d).map_err(|e| anyhow::anyhow!("in the pod manifest: {e}"))?),
                (None, None) => None,
            },
            log_max_size: match cli.log_max_size.as_ref().or(file.log_max_size.as_ref()) {
                Some(s) => match resources::parse_size(s, "--log-max-size").map_err(anyhow::Error::msg)? {
                    n if n < 1024 => bail!("--log-max-size {s:?}: at least 1K"),
                    n => n,
                },
                None => skiff_pods::logfile::DEFAULT_MAX_SIZE,
            },
            log_max_files: match cli.log_max_files.or(file.log_max_files) {
                Some(0) => bail!("log max files must be at least 1"),
                Some(n) => n,
                None => skiff_pods::logfile::DEFAULT_MAX_FILES,
            },
            stop_timeout: match (cli.stop_timeout, &file.stop_timeout) {
                (Some(t), _) => Some(t),
                (None, Some(t)) => {
                    Some(super::parse_duration(t).map_err(|e| anyhow::anyhow!("in the pod manifest: {e}"))?)
                }
                (None, None) => None,
            },
            insecure,
            inherit_env: cli.inherit_env || file.inherit_env,
            name: cli.name.clone().or(file.name),
            labels: file.labels.into_iter().chain(cli.label.iter().cloned()).collect(),
            annotations: file.annotations.into_iter().chain(cli.annotation.iter().cloned()).collect(),
            volume_files: file.volume_files,
            restart_policy: match (cli.restart_policy, &file.restart_policy) {
                (Some(p), _) => p,
                (None, Some(p)) => RestartPolicy::parse(p).map_err(|e| anyhow::anyhow!("in the pod manifest: {e}"))?,
                (None, None) => RestartPolicy::Never,
            },
            private_users: match (cli.private_users, file.private_users.as_deref(), config.private_users.as_deref()) {
                (Some(p), _, _) => p,
                (None, Some(p), _) => {
                    PrivateUsers::parse(p).map_err(|e| anyhow::anyhow!("in the pod manifest: {e}"))?
                }
                (None, None, Some(p)) => {
                    PrivateUsers::parse(p).map_err(|e| anyhow::anyhow!("in the config file: {e}"))?
                }
                (None, None, None) => PrivateUsers::No,
            },
            dns: DnsOptions {
                servers: or_file(&cli.dns, file.dns),
                search: or_file(&cli.dns_search, file.dns_search),
                options: or_file(&cli.dns_opt, file.dns_opt),
            },
        };
        if let Some(h) = &wide.hostname {
            check_hostname(h)?;
        }
        Ok(wide)
    }

    /// The pod's log: as asked, else `file` where the flavor can keep one
    /// and the apps have no terminal (whose output is not lines).
    fn log_config(&self, flavor: &Flavor, terminal: bool) -> Result<LogConfig> {
        let driver = match self.log_driver {
            Some(LogDriver::File) if terminal => bail!("--log-driver file cannot log a pod with -i/-t"),
            Some(LogDriver::File) => {
                flavor.require(feature::LOGS, "--log-driver file")?;
                LogDriver::File
            }
            Some(LogDriver::None) => LogDriver::None,
            None if !terminal && flavor.description.supports(feature::LOGS) => LogDriver::File,
            None => LogDriver::None,
        };
        Ok(LogConfig { driver, max_size: self.log_max_size, max_files: self.log_max_files })
    }

    fn resolv_conf(&self) -> Result<Option<String>> {
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        dns::resolv_conf(&self.dns, &host).map_err(anyhow::Error::msg)
    }

    /// Environment every app of the pod starts from: TERM when run from a
    /// terminal or given one (-t/-i), and the caller's environment with
    /// --inherit-env.
    fn pod_env(&self, terminal: bool) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if terminal || std::io::stdin().is_terminal() {
            env.push(("TERM".to_string(), std::env::var("TERM").unwrap_or_else(|_| "xterm".into())));
        }
        if self.inherit_env {
            // Meant for skiff (and passed on as such), not for every app.
            let skiff_own = |k: &str| skiff_rt::activation::VARIABLES.contains(&k) || k == "NOTIFY_SOCKET";
            env.extend(std::env::vars().filter(|(k, _)| !skiff_own(k)));
        }
        env
    }
}

// What `run` and `prepare` both take: pod options, then the image with
// its app options and arguments.
#[derive(Args, Debug)]
pub struct PodSpecArgs {
    #[command(flatten)]
    pod: PodOptions,
    #[command(flatten)]
    image: PrepareOptions,
    /// Read the pod's apps (and pod options) from this TOML file
    /// (docs/pod-manifest.md); pod options given here win over the file's.
    #[arg(long, value_name = "FILE", conflicts_with = "rest")]
    pod_manifest: Option<PathBuf>,
    /// A pod sandbox: no apps, only the pod's namespaces, hostname,
    /// network and cgroup, held until the pod is stopped (Kubernetes' pod
    /// sandbox; no IMAGE).
    #[arg(long, conflicts_with_all = ["rest", "pod_manifest"])]
    sandbox: bool,
    #[arg(required_unless_present_any = ["pod_manifest", "sandbox"], num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true, value_name = "IMAGE [APP OPTIONS] [-- ARGS] [--- IMAGE ...]")]
    rest: Vec<String>,
    /// A pod manifest read by another command (`play kube`), and where it
    /// came from.
    #[arg(skip)]
    given: Option<(PodSpec, String)>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    run: RunOnlyOptions,
    #[command(flatten)]
    spec: PodSpecArgs,
}

impl RunArgs {
    /// Checks the images' app options as `run` will (pod options were
    /// checked by the parser).
    pub fn check_apps(&self) -> Result<()> {
        match &self.spec.pod_manifest {
            Some(path) => read_pod_manifest(path).map(|_| ()),
            None => parse_apps(&self.spec.rest).map(|_| ()),
        }
    }

    /// The first app's image (or the pod manifest file's name).
    pub fn first_image(&self) -> Option<String> {
        let file = || self.spec.pod_manifest.as_ref()?.file_stem().map(|s| s.to_string_lossy().into_owned());
        self.spec.rest.first().cloned().or_else(file)
    }
}

#[derive(Args, Debug)]
pub struct PrepareArgs {
    /// Print only the pod's UUID (no progress on stderr).
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    spec: PodSpecArgs,
}

#[derive(Args, Debug)]
pub struct RunPreparedArgs {
    #[command(flatten)]
    pod: PodOptions,
    #[command(flatten)]
    net: NetOptions,
    #[command(flatten)]
    run: RunOnlyOptions,
    /// A prepared pod.
    #[command(flatten)]
    pod_ref: super::pod_ref::PodRef,
}

fn parse_log_driver(s: &str) -> Result<LogDriver, String> {
    match s {
        "file" => Ok(LogDriver::File),
        "none" => Ok(LogDriver::None),
        _ => Err(format!("invalid log driver {s:?}: expected file or none")),
    }
}

fn parse_cgroup_parent(s: &str) -> Result<String, String> {
    skiff_pods::cgroup::check_parent(s).map(|()| s.to_string())
}

/// `KEY=VALUE` of `--label` and `--annotation`: a key that is not empty.
fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

fn check_hostname(h: &str) -> Result<()> {
    let ok = !h.is_empty()
        && h.len() <= 64
        && h.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !ok {
        bail!("invalid hostname {h:?}: use letters, digits, '-' and '.', at most 64 characters");
    }
    Ok(())
}

/// Refuses a pod that asks its flavor for something the flavor cannot do.
fn check_features(flavor: &Flavor, wide: &PodWide, apps: &[(String, AppOverrides)], pod: &PodOptions) -> Result<()> {
    if apps.len() > 1 {
        flavor.require(feature::MULTI_APP, &format!("a pod of {} apps", apps.len()))?;
    }
    if wide.exit_policy_given {
        flavor.require(feature::EXIT_POLICY, "--exit-policy")?;
    }
    if wide.hostname.is_some() {
        flavor.require(feature::HOSTNAME, "--hostname")?;
    }
    require_net(flavor, wide.net.as_ref().unwrap_or(&default_net(flavor)), &wide.ports)?;
    if pod.interactive || pod.tty {
        flavor.require(feature::TERMINAL, "-i/-t")?;
    }
    if !apps.is_empty() && apps.iter().all(|(_, o)| o.init) {
        bail!("every app of the pod is an --init app: a pod needs an app that runs after them");
    }
    if !wide.restart_policy.is_never() {
        flavor.require(feature::RESTART_POLICY, "--restart-policy")?;
        if pod.interactive || pod.tty {
            bail!("--restart-policy cannot restart an app on a terminal (-i/-t)");
        }
    }
    if wide.private_users != PrivateUsers::No {
        flavor.require(feature::USER_NAMESPACES, "--private-users")?;
    }
    for (image, o) in apps {
        let asks = [
            (
                o.resources != Resources::default(),
                feature::CGROUP_LIMITS,
                "--memory/--memory-reservation/--cpu/--cpu-shares/--pids-limit",
            ),
            (o.caps.is_some(), feature::CAPABILITIES, "--caps-retain/--caps-remove"),
            (matches!(o.seccomp, Some(SeccompChoice::Profile(_))), feature::SECCOMP, "--seccomp"),
            (o.no_new_privileges == Some(true), feature::NO_NEW_PRIVILEGES, "--no-new-privileges"),
            (o.readonly_rootfs, feature::READONLY_ROOTFS, "--readonly-rootfs"),
            (!o.mounts.is_empty(), feature::VOLUMES, "--volume"),
            (o.oom_score_adj.is_some(), feature::OOM_SCORE_ADJ, "--oom-score-adj"),
            (o.log_path.is_some(), feature::LOG_PATH, "--log-path"),
            (o.init, feature::INIT_APPS, "--init"),
            (!o.groups_add.is_empty(), feature::SUPPLEMENTARY_GROUPS, "--group-add"),
            (o.mounts.iter().any(|m| m.sub_path.is_some()), feature::VOLUME_SUB_PATHS, "--volume …:subpath="),
            (
                o.mounts.iter().any(|m| m.new_volume.is_some_and(|v| v.tmpfs.is_some())),
                feature::MEMORY_VOLUMES,
                "--volume …:tmpfs",
            ),
        ];
        for (asked, feature, option) in asks {
            if asked {
                flavor.require(feature, &format!("{option} of {image}"))?;
            }
        }
    }
    Ok(())
}

/// The pod `spec` asks for, as a plan (`pod::plan`), with the ports it
/// publishes and whether it asks for fixed addresses. `check` refuses what
/// the command's own options ask of the flavor, before anything is made.
fn plan_pod(
    ctx: &Ctx,
    spec: &PodSpecArgs,
    check: &dyn Fn(&Flavor) -> Result<()>,
) -> Result<(PodPlan, Vec<PortMapping>, bool)> {
    let (file, apps) = match (&spec.given, &spec.pod_manifest) {
        (Some((file, origin)), _) => (Some(file.clone()), apps_of(file, origin)?),
        (None, Some(path)) => {
            let (file, apps) = read_pod_manifest(path)?;
            (Some(file), apps)
        }
        (None, None) if spec.sandbox => (None, Vec::new()),
        (None, None) => (None, parse_apps(&spec.rest)?),
    };
    let wide = PodWide::new(&spec.pod, &spec.image, file.as_ref(), &ctx.config)?;
    spec.pod.check_terminal(apps.len())?;
    let flavor = ctx.flavor(&wide.stage1)?;
    check_features(&flavor, &wide, &apps, &spec.pod)?;
    if spec.sandbox {
        flavor.require(feature::SANDBOX, "--sandbox")?;
    }
    if spec.image.cgroup_parent.is_some() {
        flavor.require(feature::CGROUP_PARENT, "--cgroup-parent")?;
    }
    check(&flavor)?;
    let net_request = wide.net.clone().unwrap_or_else(|| default_net(&flavor));
    let net = resolve_net(ctx, &spec.image.net, &net_request, &wide.ports)?;
    let addresses = asks_addresses(&net.networks);
    let apps = apps
        .into_iter()
        .map(|(image, overrides)| {
            Ok(AppPlan { image: ImageReference::parse(&image).map_err(anyhow::Error::msg)?, overrides })
        })
        .collect::<Result<Vec<_>>>()?;
    let terminal = spec.pod.interactive || spec.pod.tty;
    let log = wide.log_config(&flavor, terminal)?;
    if log.driver != LogDriver::File && apps.iter().any(|a| a.overrides.log_path.is_some()) {
        bail!("--log-path needs the log driver file (this pod's is none)");
    }
    let plan = PodPlan {
        // Without --dns options the CNI result's DNS, when it has some,
        // wins over the host's servers.
        dns_from_network: wide.dns == DnsOptions::default() && net.net == Net::Cni,
        log,
        resolv_conf: wide.resolv_conf()?,
        pod_env: wide.pod_env(terminal),
        flavor,
        apps,
        sandbox: spec.sandbox,
        cgroup_parent: spec.image.cgroup_parent.clone(),
        name: wide.name,
        uuid_file: spec.image.uuid_file_save.clone(),
        hostname: wide.hostname,
        insecure: wide.insecure,
        exit_policy: wide.exit_policy,
        stop_timeout: wide.stop_timeout,
        net,
        hosts_entries: wide.hosts_entries,
        pull_policy: wide.pull_policy,
        user_namespace: user_namespace(&ctx.config, wide.private_users)?,
        labels: wide.labels,
        annotations: wide.annotations,
        volume_files: wide.volume_files,
        restart_policy: wide.restart_policy,
    };
    Ok((plan, wide.ports, addresses))
}

/// Where the pod's user-namespace range comes from.
fn user_namespace(config: &Config, asked: PrivateUsers) -> Result<Option<UserNsPlan>> {
    Ok(match asked {
        PrivateUsers::No => None,
        PrivateUsers::Auto => {
            let file = |f: &Option<PathBuf>, default: &str| f.clone().unwrap_or_else(|| PathBuf::from(default));
            let (subuid, subgid) =
                (file(&config.subuid_file, userns::SUBUID), file(&config.subgid_file, userns::SUBGID));
            Some(UserNsPlan::FromPool(userns::pool(&subuid, &subgid)?))
        }
        PrivateUsers::Range { .. } => asked.explicit().map(UserNsPlan::Exactly),
    })
}

/// Plans the pod `spec` asks for and creates it in `prepare/`, locked.
/// Returns the pod, its flavor, the ports it publishes and whether it asks
/// for fixed addresses.
fn create_pod(
    ctx: &Ctx,
    spec: &PodSpecArgs,
    purpose: prepare::Purpose,
    quiet: bool,
    progress: &CliProgress,
    check: &dyn Fn(&Flavor) -> Result<()>,
) -> Result<(Pod, Flavor, Vec<PortMapping>, bool)> {
    let (plan, ports, addresses) = plan_pod(ctx, spec, check)?;
    let stores = Stores { store: &ctx.store, images: &ctx.images, registry: &ctx.registry, trust: &ctx.trust };
    let pod = plan::create(&stores, &plan, purpose, progress, quiet)?;
    Ok((pod, plan.flavor, ports, addresses))
}

pub fn run(ctx: &Ctx, a: RunArgs) -> Result<i32> {
    let progress = CliProgress::terminal_only();
    let (mut pod, flavor, ports, addresses) =
        create_pod(ctx, &a.spec, prepare::Purpose::RunNow, true, &progress, &|f| a.run.check(f))?;
    if let Err(e) = start_running(ctx, &mut pod, &ports, addresses) {
        return Err(discard_refused(ctx, pod, a.run.rm, e));
    }
    let args = a.run.args(a.spec.pod.stdio_args(), &flavor);
    Err(handoff::exec_run(pod, &flavor, ctx.debug, &args, a.run.env_remove(&flavor)))
}

/// Runs (or with `prepare`, prepares) the pod `file` describes (read from
/// `origin`), with the command line's pod options over the file's: `skiff
/// play kube`.
pub fn play(
    ctx: &Ctx,
    run: RunOnlyOptions,
    pod: PodOptions,
    image: PrepareOptions,
    given: (PodSpec, String),
    prepare: bool,
) -> Result<i32> {
    let spec = PodSpecArgs { pod, image, pod_manifest: None, rest: Vec::new(), sandbox: false, given: Some(given) };
    if prepare {
        self::prepare(ctx, PrepareArgs { quiet: false, spec })
    } else {
        self::run(ctx, RunArgs { run, spec })
    }
}

pub fn prepare(ctx: &Ctx, a: PrepareArgs) -> Result<i32> {
    if a.spec.pod.interactive || a.spec.pod.tty {
        bail!("-i/--interactive and -t/--tty apply when the pod runs: give them to run-prepared");
    }
    let (mut pod, ..) =
        create_pod(ctx, &a.spec, prepare::Purpose::Later, a.quiet, &CliProgress::new(a.quiet), &|_| Ok(()))?;
    pod.transition(StateDir::Prepared)?;
    if !a.quiet {
        eprintln!("skiff: prepared pod {}", pod.uuid());
    }
    println!("{}", pod.uuid());
    Ok(0)
}

pub fn run_prepared(ctx: &Ctx, a: RunPreparedArgs) -> Result<i32> {
    if let Some(h) = &a.pod.hostname {
        check_hostname(h)?;
    }
    let mut pod = Pod::find(&ctx.store, &a.pod_ref.id()?)?;
    let state = pod.state();
    if state != PodState::Prepared {
        bail!("pod {} is {state}, not prepared", pod.uuid());
    }
    // The pod runs with the flavor it was prepared for.
    let mut manifest = pod.read_manifest()?;
    a.pod.check_terminal(manifest.apps.len())?;
    let flavor = ctx.flavor(&manifest.flavor)?;
    if a.pod.interactive || a.pod.tty {
        flavor.require(feature::TERMINAL, "-i/-t")?;
    }
    if a.pod.hostname.is_some() {
        flavor.require(feature::HOSTNAME, "--hostname")?;
    }
    a.run.check(&flavor)?;
    if let Some(net) = &a.net.net {
        require_net(&flavor, net, &manifest.ports)?;
    }
    pod.try_lock()?;
    // Changed while the pod is locked in prepared/: a failure leaves it
    // prepared as it was.
    let changed = a.pod.hostname.is_some() || a.net.net.is_some();
    if let Some(req) = &a.net.net {
        let net = resolve_net(ctx, &a.net, req, &manifest.ports)?;
        manifest.dns_from_network &= net.net == Net::Cni;
        (manifest.net, manifest.networks, manifest.cni_path) = (net.net, net.networks, net.cni_path);
    }
    if let Some(h) = &a.pod.hostname {
        let m = &mut manifest;
        let old = std::mem::replace(&mut m.hostname, h.clone());
        for app in &mut m.apps {
            for e in &mut app.env {
                if *e == format!("HOSTNAME={old}") {
                    *e = format!("HOSTNAME={h}");
                }
            }
        }
    }
    if changed {
        skiff_pods::atomic::write_atomic(&pod.path(), skiff_pods::manifest::MANIFEST_FILE, &manifest.to_json())
            .context("cannot update the pod manifest")?;
    }
    if let Err(e) = start_running(ctx, &mut pod, &manifest.ports, asks_addresses(&manifest.networks)) {
        let e = e.context(format!("pod {} was not started", pod.uuid()));
        return Err(discard_refused(ctx, pod, a.run.rm, e));
    }
    let args = a.run.args(a.pod.stdio_args(), &flavor);
    Err(handoff::exec_run(pod, &flavor, ctx.debug, &args, a.run.env_remove(&flavor)))
}

/// A pod refused before it started: with `--rm` ("nothing is left,
/// whatever happens") it is removed now, else it is left for `gc` (and
/// `list` shows why it never ran). Returns the refusal.
fn discard_refused(ctx: &Ctx, pod: Pod, rm: bool, refusal: anyhow::Error) -> anyhow::Error {
    if rm {
        let uuid = pod.uuid().to_string();
        if let Err(e) = crate::pod::gc::remove(&ctx.store, pod) {
            eprintln!("skiff: pod {uuid} is left for gc: {e:#}");
        }
    }
    refusal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert!(check_hostname("web-1.example").is_ok());
        for bad in ["", "-a", "a_b", "a..b", &"x".repeat(65)] {
            assert!(check_hostname(bad).is_err(), "{bad}");
        }
    }
}
