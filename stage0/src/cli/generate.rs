//! `skiff generate systemd`: a unit file that runs a pod as a service.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use super::Ctx;

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum GenerateCommand {
    /// Print a systemd service unit that runs a pod: `skiff generate systemd
    /// [--name NAME] [--notify=started|app] [--] RUN OPTIONS IMAGE …` (what
    /// `skiff run` takes), or `--prepared POD`.
    Systemd(SystemdArgs),
    /// Print a pod as a Kubernetes v1 Pod (YAML) that `skiff play kube`
    /// runs the same way; what Kubernetes cannot say is named on stderr.
    Kube(KubeArgs),
    /// Write man pages (skiff.1, skiff-run.1, …) into DIR, made from the
    /// same definitions as --help.
    Man(ManArgs),
}

#[derive(Args, Debug)]
pub struct KubeArgs {
    #[command(flatten)]
    pod: super::pod_ref::PodRef,
}

fn kube(ctx: &Ctx, a: KubeArgs) -> Result<i32> {
    let pod = skiff_pods::Pod::find(&ctx.store, &a.pod.id()?)?;
    let manifest = pod.read_manifest()?;
    let mut digests = std::collections::BTreeMap::new();
    for app in &manifest.apps {
        let id = crate::image::digest::Digest::parse(&app.image.id).map_err(anyhow::Error::msg)?;
        if let Some(r) = crate::image::record::load(&ctx.images, &id)? {
            digests.insert(app.image.id.clone(), r.manifest_digest);
        }
    }
    let (k8s, lost) = crate::kube::generate::pod(&manifest, &digests);
    for l in lost {
        eprintln!("skiff: not in the YAML: {l}");
    }
    let text = crate::kube::generate::yaml(&k8s).map_err(|e| anyhow::anyhow!("cannot write the pod as YAML: {e}"))?;
    print!("{text}");
    Ok(0)
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Where the pages go (created if missing).
    #[arg(value_name = "DIR")]
    dir: std::path::PathBuf,
}

#[derive(Args, Debug)]
pub struct CompletionArgs {
    #[arg(value_enum)]
    shell: Shell,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

pub fn completion(a: CompletionArgs) -> Result<i32> {
    let shell = match a.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut super::definition(false), "skiff", &mut std::io::stdout());
    Ok(0)
}

/// Writes the page of `cmd` (named `name`, e.g. `skiff-image-list`) and of
/// each of its subcommands.
fn man_pages(cmd: clap::Command, name: &str, dir: &std::path::Path) -> Result<()> {
    let cmd = cmd.name(name.to_string());
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page).context("cannot render a man page")?;
    skiff_pods::atomic::write_atomic(dir, &format!("{name}.1"), &page)
        .with_context(|| format!("cannot write {}", dir.join(format!("{name}.1")).display()))?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        man_pages(sub.clone(), &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct SystemdArgs {
    /// The unit's name (NAME.service) and the pod's `--name` [default:
    /// skiff-<image or pod>].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Readiness: started (Type=notify, READY=1 once every app has
    /// started), app (Type=notify, the apps say when they are ready) or
    /// none (Type=exec).
    #[arg(long, value_enum, default_value = "started", value_name = "started|app|none")]
    notify: super::run_options::Notify,
    /// Run this prepared pod (its UUID or name) instead of a new one per start.
    #[arg(long, value_name = "POD", conflicts_with = "run")]
    prepared: Option<String>,
    /// `skiff run`'s options, image and app options, as `skiff run` takes
    /// them (`IMAGE --exec … -- ARGS`), or all after `--`.
    #[arg(
        value_name = "RUN ARGS",
        required_unless_present = "prepared",
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    run: Vec<String>,
}

/// `skiff run` as its own parser, to check the arguments now rather than
/// when the unit starts.
#[derive(Parser, Debug)]
#[command(no_binary_name = true)]
struct RunLine {
    #[command(flatten)]
    run: super::run::RunArgs,
}

/// One argument of ExecStart= as systemd reads it (systemd.service(5),
/// "Command lines"): quoted when it must be, with `\`, `"`, `%` and `$`
/// escaped.
fn quote(arg: &str) -> String {
    let escaped = arg.replace('\\', "\\\\").replace('"', "\\\"").replace('%', "%%").replace('$', "$$");
    if !arg.is_empty() && !arg.contains(|c: char| c.is_whitespace() || "\"'\\;".contains(c)) {
        escaped
    } else {
        format!("\"{escaped}\"")
    }
}

fn command_line(args: &[String]) -> String {
    args.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

/// A unit name from an image reference or pod: its last path element,
/// reduced to what unit names may hold.
fn default_name(from: &str) -> String {
    let last = from.rsplit('/').next().unwrap_or(from);
    let last = match last.strip_prefix("sha256:") {
        Some(id) => &id[..id.len().min(12)],
        None => last.split(':').next().unwrap_or(last),
    };
    let clean: String =
        last.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' }).collect();
    format!("skiff-{}", clean.trim_matches('-'))
}

pub fn run(ctx: &Ctx, a: GenerateCommand) -> Result<i32> {
    let a = match a {
        GenerateCommand::Systemd(a) => a,
        GenerateCommand::Kube(k) => return kube(ctx, k),
        GenerateCommand::Man(m) => {
            std::fs::create_dir_all(&m.dir).with_context(|| format!("cannot create {}", m.dir.display()))?;
            man_pages(super::definition(true), "skiff", &m.dir)?;
            return Ok(0);
        }
    };
    let skiff = std::env::current_exe().context("cannot find the skiff binary")?;
    let mut base = vec![skiff.display().to_string()];
    base.extend(ctx.globals.iter().cloned());
    let mut stop = base.clone();
    stop.push("rm".into());
    let (name, start, stop, what) = match &a.prepared {
        Some(pod) => {
            let uuid = skiff_pods::Pod::find(&ctx.store, pod)?.uuid().to_string();
            let name = a.name.clone().unwrap_or_else(|| format!("skiff-{}", &uuid[..8]));
            let mut start = base.clone();
            start.extend(["run-prepared".into(), notify_flag(a.notify)]);
            start.push(uuid.clone());
            stop.push(uuid.clone());
            (name, command_line(&start), command_line(&stop), format!("prepared pod {uuid}"))
        }
        None => {
            if let Some(bad) = a.run.iter().find(|x| ["--name", "--uuid-file-save", "--notify"].contains(&x.as_str())) {
                bail!("{bad} is set by generate systemd itself (use its --name and --notify)");
            }
            let parsed = RunLine::try_parse_from(&a.run).map_err(|e| {
                anyhow::anyhow!(
                    "run arguments: {}",
                    e.to_string().lines().next().unwrap_or("invalid").trim_start_matches("error: ")
                )
            })?;
            parsed.run.check_apps().context("run arguments")?;
            let image = parsed.run.first_image().unwrap_or_default();
            let name = a.name.clone().unwrap_or_else(|| default_name(&image));
            let mut start = base.clone();
            start.extend(["run".into(), format!("--name={name}"), notify_flag(a.notify)]);
            // %t: the unit's runtime directory (a specifier, so not quoted).
            let start = format!(
                "{} --uuid-file-save=%t/{name}.uuid {}",
                command_line(&start),
                command_line(&absolute_files(&a.run)?)
            );
            let stop = format!("{} --uuid-file=%t/{name}.uuid", command_line(&stop));
            (name, start, stop, format!("a pod of {image}"))
        }
    };
    check_unit_name(&name)?;
    let start_comment = if a.prepared.is_some() {
        "# The prepared pod runs once: ExecStopPost removes it."
    } else {
        "# A new pod per start; its UUID is saved (in the unit's runtime\n\
         # directory) as soon as it exists, for ExecStopPost."
    };
    let unit_type = if a.notify == super::run_options::Notify::None { "exec" } else { "notify" };
    print!(
        "# {name}.service: {what}, generated by `skiff generate systemd`.\n\
         [Unit]\n\
         Description=skiff pod {name}\n\
         # Images may have to be pulled from a registry.\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         # skiff run execs the pod's supervisor, so the pod is this unit's main\n\
         # process; with notify it says READY=1 once the pod is up.\n\
         Type={unit_type}\n\
         {start_comment}\n\
         ExecStart={start}\n\
         # SIGTERM to the main process stops every app gracefully (SIGKILL after\n\
         # the pod's --stop-timeout); only then does systemd kill what is left.\n\
         KillMode=mixed\n\
         # The pod and its writes go when the unit stops.\n\
         ExecStopPost=-{stop}\n\
         # Whether and when to restart is yours to say, e.g. Restart=on-failure.\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    );
    Ok(0)
}

fn notify_flag(n: super::run_options::Notify) -> String {
    let v = clap::ValueEnum::to_possible_value(&n).map(|v| v.get_name().to_string()).unwrap_or_default();
    format!("--notify={v}")
}

/// Unit names: letters, digits and `:-_.\`, at most 255 with `.service`.
fn check_unit_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 240
        && name.chars().all(|c| c.is_ascii_alphanumeric() || ":-_.".contains(c))
        && skiff_pods::names::check(name).is_ok();
    if !ok {
        bail!("invalid unit and pod name {name:?}: use letters, digits, '-', '_' and '.'");
    }
    Ok(())
}

/// The run arguments with the files they name made absolute (a unit runs
/// in /): image archives and layouts (`oci:` …) and the files and
/// directories of options, given relative to here. (`--volume` host paths
/// must be absolute already.)
fn absolute_files(args: &[String]) -> Result<Vec<String>> {
    let cwd = std::env::current_dir().context("cannot find the current directory")?;
    let abs = |p: &str| -> String {
        if p.starts_with('/') {
            p.to_string()
        } else {
            cwd.join(p).display().to_string()
        }
    };
    let takes_file = ["--pod-manifest", "--set-env-file", "--net-config-dir", "--cni-plugin-dir"];
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if takes_file.contains(&a.as_str()) {
            out.push(a.clone());
            if let Some(v) = it.next() {
                out.push(abs(v));
            }
            continue;
        }
        if let Some((opt, v)) = a.split_once('=').filter(|(o, _)| takes_file.contains(o)) {
            out.push(format!("{opt}={}", abs(v)));
            continue;
        }
        let converted = ["oci:", "oci-archive:", "docker-archive:"]
            .iter()
            .find_map(|t| a.strip_prefix(t).filter(|p| !p.starts_with('/')).map(|p| format!("{t}{}", abs(p))));
        out.push(converted.unwrap_or_else(|| a.clone()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_command_line_quoting() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote("echo $HOME 100%"), "\"echo $$HOME 100%%\"");
        assert_eq!(quote("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(default_name("oci:/srv/images/web-app:1.2"), "skiff-web-app");
        assert_eq!(default_name("sha256:0123456789abcdef0123"), "skiff-0123456789ab");
        assert_eq!(default_name("docker://registry.example/team/web"), "skiff-web");
    }
}
