//! `run`, `prepare` and `run-prepared`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, CommandFactory, Parser, ValueEnum};
use skiff_pods::{Pod, PodState, StateDir};

use super::progress::CliProgress;
use super::Ctx;
use crate::config::Config;
use crate::image::catalog;
use crate::image::fetch::{fetch, FetchOptions, PullPolicy};
use crate::image::lock::StoreLock;
use crate::image::platform::Platform;
use crate::image::reference::ImageReference;
use crate::pod::dns::{self, DnsOptions};
use crate::pod::flavor::{Flavor, DEFAULT_FLAVOR};
use crate::pod::handoff;
use crate::pod::network::{self, NetRequest};
use crate::pod::prepare::{self, AppOverrides};
use crate::pod::resources;
use crate::pod::security::{self, Insecure};
use skiff_pods::abi::feature;
use skiff_pods::cgroup::Resources;
use skiff_pods::logfile::{LogConfig, LogDriver};
use skiff_pods::manifest::{ExitPolicy, Net, PortMapping};
use skiff_pods::spec::{AppSpec, PodSpec};

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

/// Pod options of `run` and `prepare` only (fixed once a pod is prepared).
#[derive(Args, Debug, Clone)]
pub struct PrepareOptions {
    /// Name the pod (letters, digits, '_', '.', '-'): usable wherever a
    /// UUID is; no two live pods have one name.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
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

/// Where a pod's network comes from (`run`, `prepare`, `run-prepared`).
#[derive(Args, Debug, Clone)]
pub struct NetOptions {
    /// The pod's network: default (its own namespace on skiff's bridge
    /// skiff0, through CNI), NAME[,NAME...] (configured CNI networks, in
    /// order; NAME:IP=ADDR asks for an address), host (the host's network
    /// namespace) or none (its own with only lo) [default: default where
    /// the flavor can do it, else host].
    #[arg(long, value_name = "default|NAME[:K=V;...][,...]|host|none", value_parser = NetRequest::parse)]
    net: Option<NetRequest>,
    /// A directory of CNI configuration lists (*.conflist), searched before
    /// /etc/skiff/net.d (repeatable).
    #[arg(long, value_name = "DIR")]
    net_config_dir: Vec<PathBuf>,
    /// Where the CNI plugins are [default: $CNI_PATH, else /usr/lib/cni].
    #[arg(long, value_name = "DIR")]
    cni_plugin_dir: Option<PathBuf>,
}

impl NetOptions {
    fn config(&self, ctx: &Ctx) -> network::NetConfig {
        let mut config_dirs = self.net_config_dir.clone();
        config_dirs.push(PathBuf::from(network::DEFAULT_CONFIG_DIR));
        network::NetConfig { config_dirs, ipam_dir: ctx.store.root().join("net").join("ipam") }
    }

    fn cni_path(&self) -> Vec<PathBuf> {
        if let Some(d) = &self.cni_plugin_dir {
            return vec![d.clone()];
        }
        match std::env::var_os("CNI_PATH") {
            Some(p) if !p.is_empty() => std::env::split_paths(&p).collect(),
            _ => vec![PathBuf::from(skiff_pods::manifest::DEFAULT_CNI_PLUGIN_DIR)],
        }
    }
}

/// The network a flavor gets when none is asked for: its own on the
/// `default` network where the flavor can attach one, else the host's.
fn default_net(flavor: &Flavor) -> NetRequest {
    if flavor.description.supports(feature::NET_CNI) {
        NetRequest::Cni(vec![(network::DEFAULT_NETWORK.to_string(), Vec::new())])
    } else {
        NetRequest::Host
    }
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
            let skiff_own = |k: &str| skiff_stage2::activation::VARIABLES.contains(&k) || k == "NOTIFY_SOCKET";
            env.extend(std::env::vars().filter(|(k, _)| !skiff_own(k)));
        }
        env
    }
}

#[derive(Parser, Debug, Default)]
#[command(name = "app options", no_binary_name = true, disable_help_flag = true, help_template = "{options}")]
struct AppOptions {
    /// Name of the app in the pod (lowercase letters, digits, '-')
    /// [default: derived from the image name].
    #[arg(long, value_name = "NAME")]
    app_name: Option<String>,
    /// Program to run instead of the image's entrypoint and cmd; its
    /// arguments follow `--`.
    #[arg(long, value_name = "PATH")]
    exec: Option<String>,
    /// Set an environment variable in the app (repeatable); wins over the
    /// image's environment.
    #[arg(long = "set-env", value_name = "KEY=VALUE")]
    set_env: Vec<String>,
    /// Working directory of the app (absolute, inside the image).
    #[arg(long, value_name = "DIR")]
    working_dir: Option<String>,
    /// User (and group) to run the app as: names from the image's
    /// /etc/passwd and /etc/group, or numbers.
    #[arg(long, value_name = "USER[:GROUP]")]
    user: Option<String>,
    /// Group to run the app as (name or number); default: the user's.
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
    /// Environment variables from a file of KEY=VALUE lines (repeatable);
    /// below --set-env, above the image's.
    #[arg(long, value_name = "FILE")]
    set_env_file: Vec<PathBuf>,
    /// Mount a host path (recursively; ro also for mounts under it) or a
    /// pod-private volume NAME (empty at first) at TARGET (repeatable).
    #[arg(long, value_name = "SOURCE:TARGET[:ro]")]
    volume: Vec<String>,
    /// Memory limit of the pod's cgroup, e.g. 256M or 1G; going over it gets
    /// the app OOM-killed (exit 137).
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// CPU quota in CPUs, e.g. 500m or 1.5.
    #[arg(long, value_name = "CPUS")]
    cpu: Option<String>,
    /// Relative CPU weight (cgroup v1 cpu.shares scale, 2..262144).
    #[arg(long, value_name = "N")]
    cpu_shares: Option<String>,
    /// Most processes and threads the pod may have.
    #[arg(long, value_name = "N")]
    pids_limit: Option<String>,
    /// The app's oom_score_adj (-1000..1000; lowering it needs CAP_SYS_RESOURCE).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    oom_score_adj: Option<String>,
    /// Keep exactly these capabilities (comma-separated, e.g. NET_ADMIN,CHOWN).
    #[arg(long, value_name = "CAPS")]
    caps_retain: Option<String>,
    /// Drop these from the default 14 capabilities.
    #[arg(long, value_name = "CAPS")]
    caps_remove: Option<String>,
    /// Replace the default seccomp profile: mode=remove (deny the listed
    /// syscalls) or mode=retain (allow only them), errno=NAME (default EPERM).
    #[arg(long, value_name = "mode=remove|retain[,errno=NAME],SYSCALL,...")]
    seccomp: Option<String>,
    /// Set no_new_privs, so setuid binaries and file capabilities grant
    /// nothing (default true).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    no_new_privileges: Option<bool>,
    /// Mount the app's root filesystem read-only.
    #[arg(long)]
    readonly_rootfs: bool,
}

/// The help text of the app options, rendered only when help is asked for
/// (building it costs about a millisecond, on every start otherwise).
pub fn app_help() -> String {
    let mut cmd = AppOptions::command();
    format!(
        "IMAGE is oci:PATH[:TAG] (an OCI image layout) or sha256:ID (a fetched image).\n\
         A pod of several apps: IMAGE [APP OPTIONS] [-- ARGS] --- IMAGE [APP OPTIONS] [-- ARGS] ...\n\nApp options (after IMAGE, before --):\n{}\n\n\
         Mount, PID, UTS, IPC and network namespaces are the pod's own (the network: --net, docs/networking.md).\n\
         Exit codes: the app's own status; 128+N when the app died of signal N; 125 when skiff failed;\n\
         126 when the app's file cannot be executed; 127 when it does not exist (docs/exit-codes.md).",
        cmd.render_help().to_string().trim_end()
    )
}

/// What `run` and `prepare` both take: pod options, then the image with
/// its app options and arguments.
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
    #[arg(required_unless_present = "pod_manifest", num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true, value_name = "IMAGE [APP OPTIONS] [-- ARGS] [--- IMAGE ...]")]
    rest: Vec<String>,
}

/// Options of `run` and `run-prepared` only.
#[derive(Args, Debug)]
pub struct RunOnlyOptions {
    /// Remove the pod as soon as it has exited (`run` still exits with
    /// its status).
    #[arg(long)]
    rm: bool,
    /// With NOTIFY_SOCKET (systemd's Type=notify): started (READY=1 once
    /// every app has started), app (the apps' own notifications reach
    /// systemd) or none [default: started when NOTIFY_SOCKET is set and the
    /// flavor can notify, else none].
    #[arg(long, value_enum, value_name = "started|app|none")]
    notify: Option<Notify>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Notify {
    Started,
    App,
    None,
}

impl RunOnlyOptions {
    fn check(&self, flavor: &Flavor) -> Result<()> {
        if self.rm {
            flavor.require(feature::REMOVE_ON_EXIT, "--rm")?;
        }
        // exec keeps the PID: descriptors passed to skiff are the flavor's.
        if skiff_stage2::activation::Activation::inherited().is_some() {
            flavor.require(feature::SOCKET_ACTIVATION, "LISTEN_FDS")?;
        }
        if let Some(n @ (Notify::Started | Notify::App)) = self.notify {
            let what = if n == Notify::App { "--notify=app" } else { "--notify=started" };
            flavor.require(feature::NOTIFY, what)?;
        }
        Ok(())
    }

    fn notify(&self, flavor: &Flavor) -> Notify {
        let asked = self.notify.unwrap_or(Notify::Started);
        let can = flavor.description.supports(feature::NOTIFY);
        if std::env::var_os("NOTIFY_SOCKET").is_none() || !can {
            Notify::None
        } else {
            asked
        }
    }

    /// The flavor's `run` options, after the stdio ones.
    fn args<'a>(&self, stdio: &'a [&'a str], flavor: &Flavor) -> Vec<&'a str> {
        let mut v = stdio.to_vec();
        if self.rm {
            v.push("--rm");
        }
        if self.notify(flavor) == Notify::App {
            v.push("--notify-app");
        }
        v
    }

    /// What the flavor must not inherit: systemd's socket when nothing is
    /// to be sent.
    fn env_remove(&self, flavor: &Flavor) -> &'static [&'static str] {
        if self.notify(flavor) == Notify::None {
            &["NOTIFY_SOCKET"]
        } else {
            &[]
        }
    }
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

/// Splits `IMAGE [APP OPTIONS] [-- ARGS] [--- IMAGE ...]` into apps.
fn parse_apps(rest: &[String]) -> Result<Vec<(String, AppOverrides)>> {
    rest.split(|a| a == APP_SEPARATOR).map(parse_image_args).collect()
}

/// Separates the apps of a pod on the command line (rkt's).
const APP_SEPARATOR: &str = "---";

/// Splits `IMAGE [APP OPTIONS] [-- ARGS]`.
fn parse_image_args(rest: &[String]) -> Result<(String, AppOverrides)> {
    let Some((image, after)) = rest.split_first() else {
        bail!("no image given (before or after {APP_SEPARATOR})");
    };
    if image.starts_with('-') {
        bail!("expected an image before app options, got {image:?}");
    }
    let (opts, args) = match after.iter().position(|a| a == "--") {
        Some(i) => (&after[..i], Some(after[i + 1..].to_vec())),
        None => (after, None),
    };
    let o = AppOptions::try_parse_from(opts).map_err(|e| {
        let msg = e.to_string();
        anyhow::anyhow!(
            "app options for {image}: {}",
            msg.lines().next().unwrap_or("invalid").trim_start_matches("error: ")
        )
    })?;
    Ok((image.clone(), overrides(o, args)?))
}

impl AppOptions {
    /// The same options, from an `[[app]]` of a pod manifest file.
    fn from_spec(a: &AppSpec) -> Result<AppOptions> {
        let mut set_env = Vec::new();
        for (k, v) in &a.env {
            if k.is_empty() || k.contains('=') {
                bail!("invalid environment variable name {k:?}");
            }
            set_env.push(format!("{k}={v}"));
        }
        Ok(AppOptions {
            app_name: a.name.clone(),
            exec: a.exec.clone(),
            set_env,
            working_dir: a.working_dir.clone(),
            user: a.user.clone(),
            group: a.group.clone(),
            set_env_file: a.env_files.clone(),
            volume: a.volumes.clone(),
            memory: a.memory.clone(),
            cpu: a.cpu.clone(),
            cpu_shares: a.cpu_shares.map(|v| v.to_string()),
            pids_limit: a.pids_limit.map(|v| v.to_string()),
            oom_score_adj: a.oom_score_adj.map(|v| v.to_string()),
            caps_retain: a.caps_retain.as_ref().map(|c| c.join(",")),
            caps_remove: a.caps_remove.as_ref().map(|c| c.join(",")),
            seccomp: a.seccomp.clone(),
            no_new_privileges: a.no_new_privileges,
            readonly_rootfs: a.readonly_rootfs,
        })
    }
}

/// Checks one app's options and resolves what can be resolved without its
/// image; `args` are the ones after `--`.
fn overrides(o: AppOptions, args: Option<Vec<String>>) -> Result<AppOverrides> {
    let mut set_env = Vec::new();
    for kv in &o.set_env {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() && !k.contains('\0') => set_env.push((k.to_string(), v.to_string())),
            _ => bail!("--set-env {kv:?}: expected KEY=VALUE"),
        }
    }
    let user = o.user.as_deref().map(prepare::parse_user).transpose().map_err(anyhow::Error::msg)?;
    let group = match o.group.as_deref() {
        Some(g) => Some(prepare::parse_user(g).map_err(anyhow::Error::msg)?.0),
        None => None,
    };
    let mounts =
        o.volume.iter().map(|v| prepare::parse_volume(v)).collect::<Result<Vec<_>, _>>().map_err(anyhow::Error::msg)?;
    let num = |v: &Option<String>, what: &str, lo: i64, hi: i64| -> Result<Option<i64>> {
        v.as_deref().map(|s| resources::parse_in_range(s, what, lo, hi)).transpose().map_err(anyhow::Error::msg)
    };
    let limits = Resources {
        memory_bytes: o.memory.as_deref().map(resources::parse_memory).transpose().map_err(anyhow::Error::msg)?,
        cpu_millis: o.cpu.as_deref().map(resources::parse_cpu).transpose().map_err(anyhow::Error::msg)?,
        cpu_shares: num(&o.cpu_shares, "--cpu-shares", 2, 262_144)?.map(|v| v.unsigned_abs()),
        pids: num(&o.pids_limit, "--pids-limit", 1, 4_194_304)?.map(|v| v.unsigned_abs()),
    };
    let oom_score_adj = num(&o.oom_score_adj, "--oom-score-adj", -1000, 1000)?.and_then(|v| i32::try_from(v).ok());
    if let Some(n) = &o.app_name {
        prepare::check_app_name(n).map_err(anyhow::Error::msg)?;
    }
    let mut env_file = Vec::new();
    for f in &o.set_env_file {
        env_file.extend(prepare::parse_env_file(f).map_err(anyhow::Error::msg)?);
    }
    let caps = match (&o.caps_retain, &o.caps_remove) {
        (None, None) => None,
        (retain, remove) => {
            Some(security::resolve_caps(retain.as_deref(), remove.as_deref()).map_err(anyhow::Error::msg)?)
        }
    };
    let seccomp = o.seccomp.as_deref().map(security::parse_seccomp).transpose().map_err(anyhow::Error::msg)?;
    Ok(AppOverrides {
        exec: o.exec,
        args,
        set_env,
        working_dir: o.working_dir,
        user,
        group,
        env_file,
        mounts,
        app_name: o.app_name,
        resources: limits,
        oom_score_adj,
        caps,
        seccomp,
        no_new_privileges: o.no_new_privileges,
        readonly_rootfs: o.readonly_rootfs,
    })
}

/// Reads a pod manifest file: its pod-wide settings and its apps.
fn read_pod_manifest(path: &std::path::Path) -> Result<(PodSpec, Vec<(String, AppOverrides)>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read pod manifest {}", path.display()))?;
    let spec = PodSpec::from_toml(&text).map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))?;
    let apps = spec
        .apps
        .iter()
        .enumerate()
        .map(|(i, a)| {
            AppOptions::from_spec(a)
                .and_then(|o| overrides(o, a.args.clone()))
                .map(|o| (a.image.clone(), o))
                .with_context(|| format!("{}: app {} ({})", path.display(), i + 1, a.image))
        })
        .collect::<Result<_>>()?;
    Ok((spec, apps))
}

fn parse_log_driver(s: &str) -> Result<LogDriver, String> {
    match s {
        "file" => Ok(LogDriver::File),
        "none" => Ok(LogDriver::None),
        _ => Err(format!("invalid log driver {s:?}: expected file or none")),
    }
}

/// A file's directory and name, for an atomic write.
fn split_path(f: &std::path::Path) -> Result<(&std::path::Path, &str)> {
    let name = f.file_name().and_then(|n| n.to_str()).with_context(|| format!("{} is not a file name", f.display()))?;
    let dir = f.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    Ok((dir, name))
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

fn require_net(flavor: &Flavor, net: &NetRequest, ports: &[PortMapping]) -> Result<()> {
    match net {
        NetRequest::None => flavor.require(feature::NET_NONE, "--net none")?,
        NetRequest::Cni(nets) => {
            let names: Vec<&str> = nets.iter().map(|(n, _)| n.as_str()).collect();
            flavor.require(feature::NET_CNI, &format!("--net {}", names.join(",")))?;
        }
        NetRequest::Host => {}
    }
    if !ports.is_empty() {
        flavor.require(feature::NET_CNI, "--port")?;
    }
    Ok(())
}

/// The manifest's network fields for `req`.
fn resolve_net(ctx: &Ctx, opts: &NetOptions, req: &NetRequest, ports: &[PortMapping]) -> Result<prepare::PodNet> {
    let (net, networks) = opts.config(ctx).resolve(req, ports).map_err(anyhow::Error::msg)?;
    Ok(prepare::PodNet { net, networks, ports: ports.to_vec(), cni_path: opts.cni_path() })
}

/// Moves a pod into `run/`, unless a port it publishes is taken: checked
/// and moved under the store's ports lock, so of two pods asking for one
/// port exactly one runs.
fn start_running(ctx: &Ctx, pod: &mut Pod, ports: &[PortMapping]) -> Result<()> {
    if ports.is_empty() {
        return Ok(pod.transition(StateDir::Run)?);
    }
    let _lock = network::lock_ports(&ctx.store).map_err(anyhow::Error::msg)?;
    network::check_ports(ports, &network::published(&ctx.store, pod.uuid())).map_err(anyhow::Error::msg)?;
    Ok(pod.transition(StateDir::Run)?)
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
    for (image, o) in apps {
        let asks = [
            (o.resources != Resources::default(), feature::CGROUP_LIMITS, "--memory/--cpu/--cpu-shares/--pids-limit"),
            (o.caps.is_some(), feature::CAPABILITIES, "--caps-retain/--caps-remove"),
            (o.seccomp.is_some(), feature::SECCOMP, "--seccomp"),
            (o.no_new_privileges == Some(true), feature::NO_NEW_PRIVILEGES, "--no-new-privileges"),
            (o.readonly_rootfs, feature::READONLY_ROOTFS, "--readonly-rootfs"),
            (!o.mounts.is_empty(), feature::VOLUMES, "--volume"),
            (o.oom_score_adj.is_some(), feature::OOM_SCORE_ADJ, "--oom-score-adj"),
        ];
        for (asked, feature, option) in asks {
            if asked {
                flavor.require(feature, &format!("{option} of {image}"))?;
            }
        }
    }
    Ok(())
}

/// Fetches (if needed) and creates a pod in `prepare/`, locked.
/// Returns the pod, its flavor and the ports it publishes. `check` refuses
/// what the command's own options ask of the flavor, before anything is made.
fn create_pod(
    ctx: &Ctx,
    spec: &PodSpecArgs,
    quiet: bool,
    progress: &CliProgress,
    check: &dyn Fn(&Flavor) -> Result<()>,
) -> Result<(Pod, Flavor, Vec<PortMapping>)> {
    let (file, apps) = match &spec.pod_manifest {
        Some(path) => {
            let (file, apps) = read_pod_manifest(path)?;
            (Some(file), apps)
        }
        None => (None, parse_apps(&spec.rest)?),
    };
    let wide = PodWide::new(&spec.pod, &spec.image, file.as_ref(), &ctx.config)?;
    spec.pod.check_terminal(apps.len())?;
    let flavor = ctx.flavor(&wide.stage1)?;
    check_features(&flavor, &wide, &apps, &spec.pod)?;
    check(&flavor)?;
    let net_request = wide.net.clone().unwrap_or_else(|| default_net(&flavor));
    let net = resolve_net(ctx, &spec.image.net, &net_request, &wide.ports)?;
    // Without --dns options the CNI result's DNS, when it has some, wins
    // over the host's servers.
    let dns_from_network = wide.dns == DnsOptions::default() && net.net == Net::Cni;
    let references = apps
        .iter()
        .map(|(image, _)| ImageReference::parse(image).map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    ctx.images.ensure_dirs()?;
    // Held until the pod's manifest is written: from then on the pod
    // itself keeps its layer trees from `image gc`.
    let _lock = StoreLock::shared(&ctx.images)?;
    let opts = FetchOptions {
        platform: Platform::default(),
        progress,
        registry: ctx.registry.clone(),
        policy: wide.pull_policy,
    };
    let mut fetched = Vec::new();
    for reference in &references {
        let f = fetch(&ctx.images, reference, &opts)?;
        catalog::touch_used(&ctx.images, &f.record.id_digest()?);
        if !quiet {
            eprintln!("skiff: image {} ({})", f.record.id, f.name);
        }
        fetched.push(f);
    }
    if let Some(n) = &spec.image.name {
        skiff_pods::names::check(n)?;
    }
    let pod = prepare::create(&ctx.store, |uuid| {
        if let Some(f) = &spec.image.uuid_file_save {
            let (dir, file) = split_path(f)?;
            skiff_pods::atomic::write_atomic(dir, file, format!("{uuid}\n").as_bytes())
                .with_context(|| format!("cannot write --uuid-file-save {}", f.display()))?;
        }
        if let Some(n) = &spec.image.name {
            skiff_pods::names::claim(&ctx.store, n, uuid)?;
        }
        let insecure = wide.insecure;
        let pod_env = wide.pod_env(spec.pod.interactive || spec.pod.tty);
        let settings = prepare::PodSettings {
            name: spec.image.name.clone(),
            hostname: wide.hostname.as_deref(),
            insecure,
            resolv_conf: wide.resolv_conf()?,
            exit_policy: wide.exit_policy,
            stop_timeout: wide.stop_timeout,
            log: wide.log_config(&flavor, spec.pod.interactive || spec.pod.tty)?,
            net: net.clone(),
            dns_from_network,
            hosts_entries: wide.hosts_entries.clone(),
            flavor: (&wide.stage1, &flavor.description),
        };
        prepare::manifest(uuid, settings, |hostname| {
            let cx = prepare::AppContext {
                images: &ctx.images,
                hostname,
                pod_env: &pod_env,
                insecure,
                flavor: &flavor.description,
            };
            fetched.iter().zip(&apps).map(|(f, (_, o))| prepare::resolve_app(&f.record, &f.name, o, &cx)).collect()
        })
    })?;
    Ok((pod, flavor, wide.ports))
}

pub fn run(ctx: &Ctx, a: RunArgs) -> Result<i32> {
    let progress = CliProgress::terminal_only();
    let (mut pod, flavor, ports) = create_pod(ctx, &a.spec, true, &progress, &|f| a.run.check(f))?;
    start_running(ctx, &mut pod, &ports)?;
    let args = a.run.args(a.spec.pod.stdio_args(), &flavor);
    Err(handoff::exec_run(pod, &flavor, ctx.debug, &args, a.run.env_remove(&flavor)))
}

pub fn prepare(ctx: &Ctx, a: PrepareArgs) -> Result<i32> {
    if a.spec.pod.interactive || a.spec.pod.tty {
        bail!("-i/--interactive and -t/--tty apply when the pod runs: give them to run-prepared");
    }
    let (mut pod, _, _) = create_pod(ctx, &a.spec, a.quiet, &CliProgress::new(a.quiet), &|_| Ok(()))?;
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
    start_running(ctx, &mut pod, &manifest.ports).with_context(|| format!("pod {} was not started", pod.uuid()))?;
    let args = a.run.args(a.pod.stdio_args(), &flavor);
    Err(handoff::exec_run(pod, &flavor, ctx.debug, &args, a.run.env_remove(&flavor)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn app_options_follow_the_image_and_args_follow_dashdash() {
        let (img, o) =
            parse_image_args(&v(&["oci:x", "--exec", "/bin/sh", "--set-env", "A=1=2", "--", "-c", "exit 3"])).unwrap();
        assert_eq!(img, "oci:x");
        assert_eq!(o.exec.as_deref(), Some("/bin/sh"));
        assert_eq!(o.set_env, vec![("A".to_string(), "1=2".to_string())]);
        assert_eq!(o.args, Some(v(&["-c", "exit 3"])));
        let (_, o) = parse_image_args(&v(&["oci:x"])).unwrap();
        assert_eq!(o, AppOverrides::default());
    }

    #[test]
    fn apps_are_separated_by_three_dashes() {
        let apps = parse_apps(&v(&["oci:a", "--exec", "/x", "--", "1", "---", "oci:b", "--", "--", "2"])).unwrap();
        assert_eq!(apps.len(), 2);
        assert_eq!((apps[0].0.as_str(), apps[0].1.args.clone()), ("oci:a", Some(v(&["1"]))));
        assert_eq!((apps[1].0.as_str(), apps[1].1.args.clone()), ("oci:b", Some(v(&["--", "2"]))));
        assert!(parse_apps(&v(&["oci:a", "---"])).is_err());
        assert!(parse_apps(&v(&["---", "oci:a"])).is_err());
    }

    #[test]
    fn bad_app_options_are_one_line_errors() {
        assert!(parse_image_args(&v(&["oci:x", "--bogus"])).is_err());
        assert!(parse_image_args(&v(&["oci:x", "--set-env", "NOEQUALS"])).is_err());
        assert!(parse_image_args(&v(&["--exec", "x"])).is_err());
        assert!(parse_image_args(&v(&["oci:x", "--user", "no body"])).is_err());
        assert!(parse_image_args(&v(&["oci:x", "--caps-retain", "CAP_NOPE"])).is_err());
    }

    #[test]
    fn hostnames() {
        assert!(check_hostname("web-1.example").is_ok());
        for bad in ["", "-a", "a_b", "a..b", &"x".repeat(65)] {
            assert!(check_hostname(bad).is_err(), "{bad}");
        }
    }
}
