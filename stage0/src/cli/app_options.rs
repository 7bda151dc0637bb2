//! App options as `run` and `prepare` take them after each image (`IMAGE
//! [APP OPTIONS] [-- ARGS] --- IMAGE …`, rkt's placement) and as a pod
//! manifest file's `[[app]]` tables give them: one parser and one check for
//! both, resolved as far as they can be without the image.

use std::path::PathBuf;

use crate::spec::{AppSpec, PodSpec};
use anyhow::{bail, Context, Result};
use clap::{Args, CommandFactory, Parser};
use skiff_pods::cgroup::{size_text, Resources};

use crate::pod::prepare::{self, AppOverrides};
use crate::pod::resources;
use crate::pod::security;
use crate::pod::volume;

#[derive(Parser, Debug, Default)]
#[command(name = "app options", no_binary_name = true, disable_help_flag = true, help_template = "{options}")]
pub(super) struct AppOptions {
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
    /// pod-private volume NAME (empty at first, with the owner and mode of
    /// the image's directory at TARGET unless uid=, gid=, mode= say
    /// otherwise) at TARGET (repeatable). OPTIONS: ro, rw, uid=N, gid=N,
    /// mode=OCTAL, comma-separated.
    #[arg(long, value_name = "SOURCE:TARGET[:OPTIONS]")]
    volume: Vec<String>,
    #[command(flatten)]
    limits: LimitOptions,
    /// Write the app's log to FILE (absolute; its directory must exist;
    /// rotated to FILE.1, …) instead of the pod directory, in the same
    /// CRI format (what a kubelet reads). Needs the log driver file.
    #[arg(long, value_name = "FILE")]
    log_path: Option<PathBuf>,
    /// Keep exactly these capabilities (comma-separated, e.g. NET_ADMIN,CHOWN).
    #[arg(long, value_name = "CAPS")]
    caps_retain: Option<String>,
    /// Drop these from the default 14 capabilities.
    #[arg(long, value_name = "CAPS")]
    caps_remove: Option<String>,
    /// Replace the default seccomp profile: mode=remove (deny the listed
    /// syscalls) or mode=retain (allow only them), errno=NAME (default
    /// EPERM); or `unconfined`: no filter for this app.
    #[arg(long, value_name = "mode=remove|retain[,errno=NAME],SYSCALL,...|unconfined")]
    seccomp: Option<String>,
    /// Set no_new_privs, so setuid binaries and file capabilities grant
    /// nothing (default true).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    no_new_privileges: Option<bool>,
    /// Mount the app's root filesystem read-only.
    #[arg(long)]
    readonly_rootfs: bool,
    /// Another supplementary group (name in the image's /etc/group, or
    /// number), beside those /etc/group gives the user (repeatable).
    #[arg(long, value_name = "GROUP")]
    group_add: Vec<String>,
    /// An init app: the pod's init apps run one after another, each to its
    /// end, before its other apps start; one that fails ends the pod with
    /// its status (Kubernetes' init containers).
    #[arg(long)]
    init: bool,
}

/// The help text of the app options, rendered only when help is asked for
/// (building it costs about a millisecond, on every start otherwise).
pub fn app_help() -> String {
    let mut cmd = AppOptions::command();
    format!(
        "IMAGE is docker://[HOST/]NAME[:TAG|@DIGEST] (a registry), oci:PATH[:TAG] (an OCI image layout),\n\
         oci-archive:PATH[:TAG], docker-archive:PATH[:NAME], the name or short name of a stored image\n\
         (busybox, mytool:1; NAME@sha256:DIGEST pins the stored image whose manifest has that digest),\n\
         or an image ID or unique ID prefix as `skiff image list` prints it\n\
         (dd8b66f72df4, with or without sha256:, at least 4 hex digits).\n\
         A pod of several apps: IMAGE [APP OPTIONS] [-- ARGS] --- IMAGE [APP OPTIONS] [-- ARGS] ...\n\nApp options (after IMAGE, before --):\n{}\n\n\
         Mount, PID, UTS, IPC and network namespaces are the pod's own (the network: --net, docs/networking.md).\n\
         Exit codes: the app's own status; 128+N when the app died of signal N; 125 when skiff failed;\n\
         126 when the app's file cannot be executed; 127 when it does not exist (docs/exit-codes.md).",
        cmd.render_help().to_string().trim_end()
    )
}

/// Splits `IMAGE [APP OPTIONS] [-- ARGS] [--- IMAGE ...]` into apps.
pub(super) fn parse_apps(rest: &[String]) -> Result<Vec<(String, AppOverrides)>> {
    rest.split(|a| a == APP_SEPARATOR).map(parse_image_args).collect()
}

/// Separates the apps of a pod on the command line (rkt's).
const APP_SEPARATOR: &str = "---";

/// Splits `IMAGE [APP OPTIONS] [-- ARGS]`.
fn parse_image_args(rest: &[String]) -> Result<(String, AppOverrides)> {
    let Some((image, after)) = rest.split_first() else {
        bail!("no image given (before or after {APP_SEPARATOR})");
    };
    let (opts, args) = match after.iter().position(|a| a == "--") {
        Some(i) => (&after[..i], Some(after[i + 1..].to_vec())),
        None => (after, None),
    };
    if image.starts_with('-') {
        return Err(misplaced(image).unwrap_or_else(|| match long_name(image).filter(|_| AppOptions::takes(image)) {
            Some(name) => anyhow::anyhow!("--{name} is an app option: put it after the image it is for"),
            None => anyhow::anyhow!("unknown option {image}"),
        }));
    }
    let o: AppOptions = super::parse_with(<AppOptions as clap::CommandFactory>::command(), opts).map_err(|e| {
        let first = opts.iter().find(|o| o.starts_with('-') && !AppOptions::takes(o));
        if let Some(err) = first.and_then(|o| misplaced(o)) {
            return err;
        }
        let msg = e.to_string();
        anyhow::anyhow!(
            "app options for {image}: {}",
            msg.lines().next().unwrap_or("invalid").trim_start_matches("error: ")
        )
    })?;
    Ok((image.clone(), overrides(o, args)?))
}

/// The long name of an option as given (`--port=80:80` → `port`).
fn long_name(arg: &str) -> Option<&str> {
    arg.strip_prefix("--").map(|a| a.split_once('=').map_or(a, |(n, _)| n)).filter(|n| !n.is_empty())
}

/// The error for `arg`, an option among or before an image's app options,
/// when it is a pod option given in an app's place: which kind it is and
/// where it goes.
fn misplaced(arg: &str) -> Option<anyhow::Error> {
    let name = long_name(arg)?;
    // Built only on this error path: the subcommands' options are deferred.
    let mut cli = super::definition(false);
    cli.build();
    let is_pod_option = cli.find_subcommand("run")?.get_arguments().any(|a| a.get_long() == Some(name));
    is_pod_option.then(|| anyhow::anyhow!("--{name} is a pod option: put it before the (first) image"))
}

impl AppOptions {
    /// Whether `arg` (`--name` or `--name=value`) is an app option.
    fn takes(arg: &str) -> bool {
        let Some(name) = long_name(arg) else { return false };
        AppOptions::command().get_arguments().any(|a| a.get_long() == Some(name))
    }

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
            limits: LimitOptions {
                memory: a.memory.clone(),
                memory_reservation: a.memory_reservation.clone(),
                cpu: a.cpu.clone(),
                cpu_shares: a.cpu_shares.map(|v| v.to_string()),
                pids_limit: a.pids_limit.map(|v| v.to_string()),
                oom_score_adj: a.oom_score_adj.map(|v| v.to_string()),
            },
            log_path: None,
            caps_retain: a.caps_retain.as_ref().map(|c| c.join(",")),
            caps_remove: a.caps_remove.as_ref().map(|c| c.join(",")),
            seccomp: a.seccomp.clone(),
            no_new_privileges: a.no_new_privileges,
            readonly_rootfs: a.readonly_rootfs,
            init: a.init,
            group_add: a.groups_add.clone(),
        })
    }
}

/// Checks one app's options and resolves what can be resolved without its
/// image; `args` are the ones after `--`.
pub(super) fn overrides(o: AppOptions, args: Option<Vec<String>>) -> Result<AppOverrides> {
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
        o.volume.iter().map(|v| volume::parse(v)).collect::<Result<Vec<_>, _>>().map_err(anyhow::Error::msg)?;
    let (limits, oom_score_adj) = o.limits.resolve()?;
    if let Some(p) = &o.log_path {
        check_log_path(p)?;
    }
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
    let seccomp = o.seccomp.as_deref().map(security::parse_seccomp_choice).transpose().map_err(anyhow::Error::msg)?;
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
        log_path: o.log_path,
        caps,
        seccomp,
        no_new_privileges: o.no_new_privileges,
        readonly_rootfs: o.readonly_rootfs,
        init: o.init,
        groups_add: o.group_add,
    })
}

/// An app's limits, as `run`, `app add` and `app update` take them.
#[derive(Args, Debug, Clone, Default)]
pub(super) struct LimitOptions {
    /// Memory limit of the pod's cgroup, e.g. 256M or 1G; going over it gets
    /// the app OOM-killed (exit 137).
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// Memory the app keeps when the host runs short (a soft limit, at most
    /// --memory), e.g. 128M: memory.soft_limit_in_bytes on cgroup v1,
    /// memory.low on v2.
    #[arg(long, value_name = "SIZE")]
    memory_reservation: Option<String>,
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
}

impl LimitOptions {
    /// The limits given (None where not given), checked, and the
    /// oom_score_adj.
    pub(super) fn resolve(&self) -> Result<(Resources, Option<i32>)> {
        let num = |v: &Option<String>, what: &str, lo: i64, hi: i64| -> Result<Option<i64>> {
            v.as_deref().map(|s| resources::parse_in_range(s, what, lo, hi)).transpose().map_err(anyhow::Error::msg)
        };
        let limits = Resources {
            memory_bytes: self
                .memory
                .as_deref()
                .map(resources::parse_memory)
                .transpose()
                .map_err(anyhow::Error::msg)?,
            memory_reservation_bytes: self
                .memory_reservation
                .as_deref()
                .map(resources::parse_memory)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--memory-reservation: {e}"))?,
            cpu_millis: self.cpu.as_deref().map(resources::parse_cpu).transpose().map_err(anyhow::Error::msg)?,
            cpu_shares: num(&self.cpu_shares, "--cpu-shares", 2, 262_144)?.map(|v| v.unsigned_abs()),
            pids: num(&self.pids_limit, "--pids-limit", 1, 4_194_304)?.map(|v| v.unsigned_abs()),
        };
        check_reservation(&limits)?;
        let oom_score_adj =
            num(&self.oom_score_adj, "--oom-score-adj", -1000, 1000)?.and_then(|v| i32::try_from(v).ok());
        Ok((limits, oom_score_adj))
    }
}

/// A memory reservation is at most the memory limit.
pub(super) fn check_reservation(limits: &Resources) -> Result<()> {
    if let (Some(r), Some(m)) = (limits.memory_reservation_bytes, limits.memory_bytes) {
        if r > m {
            bail!("--memory-reservation {} is above --memory {}", size_text(r), size_text(m));
        }
    }
    Ok(())
}

/// `--log-path`: an absolute path of a file whose directory exists.
fn check_log_path(p: &std::path::Path) -> Result<()> {
    let dir = p.parent().filter(|d| p.is_absolute() && p.file_name().is_some() && d.is_dir());
    if dir.is_none() {
        bail!("--log-path {}: not an absolute path of a file in an existing directory", p.display());
    }
    if p.is_dir() {
        bail!("--log-path {}: is a directory", p.display());
    }
    Ok(())
}

/// Reads a pod manifest file: its pod-wide settings and its apps.
pub(super) fn read_pod_manifest(path: &std::path::Path) -> Result<(PodSpec, Vec<(String, AppOverrides)>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read pod manifest {}", path.display()))?;
    let spec = PodSpec::from_toml(&text).map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))?;
    let apps = apps_of(&spec, &path.display().to_string())?;
    Ok((spec, apps))
}

/// The apps of a pod manifest (`origin` names where it came from in
/// errors), checked as the command line's are.
pub(super) fn apps_of(spec: &PodSpec, origin: &str) -> Result<Vec<(String, AppOverrides)>> {
    spec.apps
        .iter()
        .enumerate()
        .map(|(i, a)| {
            AppOptions::from_spec(a)
                .and_then(|o| overrides(o, a.args.clone()))
                .map(|o| (a.image.clone(), o))
                .with_context(|| format!("{origin}: app {} ({})", i + 1, a.image))
        })
        .collect()
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
}
