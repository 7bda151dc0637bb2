//! The `skiff` command line. Flag placement follows rkt: global options
//! before the subcommand, pod options before the first image, app options
//! after the image they apply to, the app's arguments after `--`.

mod app;
mod app_options;
mod cri;
mod fetch;
mod generate;
mod image;
mod list;
mod logs;
mod net_options;
mod play;
mod pod_info;
mod pod_ref;
mod progress;
mod remove;
mod run;
mod run_options;
mod status;
mod stop;
mod trust;
mod volume;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use skiff_pods::Store;

use crate::config::Config;
use crate::image::source::registry::RegistryOptions;
use crate::image::trust::TrustOptions;
use crate::image::ImageStore;
use crate::pod::flavor::Flavor;

/// Exit code for skiff's own failures (see docs/exit-codes.md).
pub const EXIT_SKIFF_ERROR: i32 = 125;

#[derive(Parser, Debug)]
#[command(
    name = "skiff",
    version,
    about = "A daemonless, pod-native container executor",
    after_help = "Exit codes: the app's own status; 128+N when the app died of signal N; \
                  125 when skiff itself failed; 126 when the app cannot be executed; \
                  127 when it does not exist. See docs/exit-codes.md."
)]
pub struct Cli {
    /// Store directory holding images and pods.
    #[arg(id = "store_dir", long = "dir", global = true, env = "SKIFF_DIR", default_value = skiff_pods::layout::DEFAULT_DIR, value_name = "DIR")]
    dir: PathBuf,
    /// Print what each stage does to stderr.
    #[arg(long, global = true)]
    debug: bool,
    /// Registry (HOST[:PORT]) that may be reached over plain HTTP when HTTPS
    /// fails (repeatable). Loopback registries always may.
    #[arg(long = "insecure-registry", global = true, value_name = "HOST[:PORT]")]
    insecure_registries: Vec<String>,
    /// Credentials file in the format of Docker's and podman's auth.json
    /// [default: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
    /// ~/.docker/config.json].
    #[arg(long, global = true, value_name = "FILE")]
    authfile: Option<PathBuf>,
    /// Signature policy (containers-policy.json(5)) images must meet to
    /// enter the store [default: /etc/skiff/policy.json, else
    /// /etc/containers/policy.json, else every image is accepted].
    #[arg(long, global = true, value_name = "FILE")]
    signature_policy: Option<PathBuf>,
    /// Accept every image whatever the signature policy says (for tests;
    /// says so on stderr at every fetch).
    #[arg(long, global = true)]
    insecure_policy: bool,
    /// Directory of registries.d YAML files naming each registry's
    /// signature lookaside store [default: /etc/containers/registries.d].
    #[arg(long = "registries.d", global = true, value_name = "DIR")]
    registries_d: Option<PathBuf>,
    /// Configuration file [default: /etc/skiff/config.toml, if it exists].
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
// Each subcommand's options are built only when it is the one invoked (or
// when help, completions or man pages need them all): building every
// subcommand's options was a third of `skiff run`'s own instructions.
#[command(defer = true)]
enum Command {
    /// Fetch an image into the store and print its image ID.
    Fetch(fetch::FetchArgs),
    /// Prepare a pod and run it in the foreground.
    Run(run::RunArgs),
    /// Prepare a pod without running it; print its UUID.
    Prepare(run::PrepareArgs),
    /// Run a pod made by `skiff prepare`.
    RunPrepared(run::RunPreparedArgs),
    /// List pods.
    List(list::ListArgs),
    /// Show one pod's state, pid and app exit codes.
    Status(status::StatusArgs),
    /// Stop running pods: SIGTERM to every app, SIGKILL after --timeout.
    Stop(stop::StopArgs),
    /// Run a command in a running pod (default /bin/sh), as its app runs.
    Enter(stop::EnterArgs),
    /// Print a pod's resolved manifest.
    CatManifest(stop::CatManifestArgs),
    /// Print what an app of a pod wrote to stdout and stderr.
    Logs(logs::LogsArgs),
    /// Remove exited or prepared pods.
    Rm(remove::RmArgs),
    /// Remove exited pods after a grace period, and stale prepared ones.
    Gc(remove::GcArgs),
    /// Manage stored images: list, inspect, rm, gc, export, build.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Manage the store's named volumes: list, rm.
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    /// Apps of a running pod sandbox (run --sandbox): add, start, list.
    #[command(subcommand)]
    App(app::AppCommand),
    /// Run pods described in other formats: Kubernetes YAML.
    #[command(subcommand)]
    Play(play::PlayCommand),
    /// Generate files: systemd units for pods, Kubernetes YAML, man pages.
    #[command(subcommand)]
    Generate(generate::GenerateCommand),
    /// Print a shell completion script: bash, zsh or fish.
    Completion(generate::CompletionArgs),
    /// Serve the Kubernetes CRI (runtime.v1) on a unix socket, for a kubelet.
    Cri(cri::CriArgs),
}

/// Shared state of one invocation.
pub struct Ctx {
    pub store: Store,
    pub images: ImageStore,
    pub debug: bool,
    pub registry: RegistryOptions,
    pub trust: TrustOptions,
    pub config: Config,
    /// The global options as given (the store made absolute), for commands
    /// that print skiff command lines.
    pub globals: Vec<String>,
}

impl Ctx {
    /// Flavor `id`, described (docs/stage1-abi.md).
    pub fn flavor(&self, id: &str) -> anyhow::Result<Flavor> {
        Flavor::find(id, &crate::pod::flavor::cache_dir(&self.store))
    }
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    // Like coreutils: `skiff list | head -1` ends skiff quietly (SIGPIPE,
    // status 141 in the shell) instead of reporting EPIPE as an error. The
    // flavors, which must outlive a closed pipe, ignore SIGPIPE again.
    skiff_rt::process_start::restore_sigpipe();
    let cli = match parse() {
        Ok(c) => c,
        Err(e) if e.kind() == clap::error::ErrorKind::InvalidSubcommand => {
            eprintln!("skiff: {}", unknown_command(&e));
            return EXIT_SKIFF_ERROR;
        }
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_SKIFF_ERROR } else { 0 };
        }
    };
    crate::log::set_debug(cli.debug);
    // Paths under the store end up in pod manifests that stage1 reads from
    // another working directory: they must be absolute.
    let dir = match std::path::absolute(&cli.dir) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("skiff: invalid --dir {}: {e}", cli.dir.display());
            return EXIT_SKIFF_ERROR;
        }
    };
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skiff: {e:#}");
            return EXIT_SKIFF_ERROR;
        }
    };
    let mut globals = vec![format!("--dir={}", dir.display())];
    globals.extend(cli.insecure_registries.iter().map(|r| format!("--insecure-registry={r}")));
    let absolute = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
    globals.extend(cli.authfile.iter().map(|f| format!("--authfile={}", absolute(f).display())));
    globals.extend(cli.config.iter().map(|f| format!("--config={}", absolute(f).display())));
    globals.extend(cli.signature_policy.iter().map(|f| format!("--signature-policy={}", absolute(f).display())));
    if cli.insecure_policy {
        globals.push("--insecure-policy".into());
    }
    globals.extend(cli.registries_d.iter().map(|d| format!("--registries.d={}", absolute(d).display())));
    let ctx = Ctx {
        store: Store::new(&dir),
        images: ImageStore::new(&dir),
        debug: cli.debug,
        registry: RegistryOptions { insecure: cli.insecure_registries, authfile: cli.authfile },
        trust: TrustOptions {
            policy_file: cli.signature_policy.map(|f| absolute(&f)),
            insecure: cli.insecure_policy,
            registries_d: cli.registries_d.map(|d| absolute(&d)),
        },
        config,
        globals,
    };
    let result = match cli.command {
        Command::Fetch(a) => fetch::run(&ctx, a),
        Command::Run(a) => run::run(&ctx, a),
        Command::Prepare(a) => run::prepare(&ctx, a),
        Command::RunPrepared(a) => run::run_prepared(&ctx, a),
        Command::List(a) => list::run(&ctx, a),
        Command::Status(a) => status::run(&ctx, a),
        Command::Stop(a) => stop::stop(&ctx, a),
        Command::Enter(a) => stop::enter(&ctx, a),
        Command::CatManifest(a) => stop::cat_manifest(&ctx, a),
        Command::Rm(a) => remove::rm(&ctx, a),
        Command::Gc(a) => remove::gc(&ctx, a),
        Command::Image(c) => image::run(&ctx, c),
        Command::Play(c) => play::run(&ctx, c),
        Command::Volume(c) => volume::run(&ctx, c),
        Command::App(c) => app::run(&ctx, c),
        Command::Generate(c) => generate::run(&ctx, c),
        Command::Logs(a) => logs::run(&ctx, a),
        Command::Completion(a) => generate::completion(a),
        Command::Cri(a) => cri::run(&ctx, a),
    };
    match result {
        Ok(code) => code,
        // A full disk is most often the store's: say which directory that is.
        Err(e) if format!("{e:#}").contains("(os error 28)") => {
            eprintln!("skiff: {e:#} (store {})", ctx.store.root().display());
            EXIT_SKIFF_ERROR
        }
        Err(e) => {
            eprintln!("skiff: {e:#}");
            EXIT_SKIFF_ERROR
        }
    }
}

/// The whole command line's definition; with `full`, with the app options
/// of `run` and `prepare` (their own parser's) in their help, which costs
/// about a millisecond to render.
pub fn definition(full: bool) -> clap::Command {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    if full {
        for sub in ["run", "prepare"] {
            cmd = cmd.mut_subcommand(sub, |c| c.after_help(app_options::app_help()));
        }
    }
    cmd
}

fn parse() -> Result<Cli, clap::Error> {
    let args = skiff_rt::process_start::args_os();
    let help = args.iter().skip(1).any(|a| a == "-h" || a == "--help" || a == "help");
    parse_with(definition(help), args)
}

/// `T` from `args` parsed by `cmd`, whose definition and matches are left
/// for the process's end: skiff execs or exits soon after parsing, and
/// freeing clap's trees (and the copy of the matches that
/// `from_arg_matches` makes) was a tenth of `skiff run`'s own instructions.
pub(crate) fn parse_with<T, I>(cmd: clap::Command, args: impl IntoIterator<Item = I>) -> Result<T, clap::Error>
where
    T: clap::FromArgMatches,
    I: Into<std::ffi::OsString> + Clone,
{
    let cmd = Box::leak(Box::new(cmd));
    let matches = Box::leak(Box::new(cmd.try_get_matches_from_mut(args)?));
    T::from_arg_matches_mut(matches)
}

/// One line for a command skiff does not have, with the nearest one it has
/// (clap's own tip prefers `run-prepared` to `run` for `rn`).
fn unknown_command(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(given)) = e.get(ContextKind::InvalidSubcommand) else {
        return e.to_string().lines().next().unwrap_or("unknown command").trim_start_matches("error: ").to_string();
    };
    let cli = definition(false);
    let near: Vec<(usize, &str)> = cli
        .get_subcommands()
        .map(|c| (edit_distance(given, c.get_name()), c.get_name()))
        .filter(|(d, name)| *d <= name.len().max(given.len()) / 2)
        .collect();
    let best = near.iter().map(|(d, _)| *d).min();
    let names: Vec<String> = near.iter().filter(|(d, _)| Some(*d) == best).map(|(_, n)| format!("{n:?}")).collect();
    match names.as_slice() {
        [] => format!("unknown command {given:?} (skiff --help lists them)"),
        _ => format!("unknown command {given:?} (did you mean {}?)", names.join(" or ")),
    }
}

/// Levenshtein distance between two short words.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev + usize::from(ca != *cb);
            prev = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(prev + 1);
        }
    }
    row[b.len()]
}

/// Parses durations such as `30m`, `24h`, `1h30m` or `0`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    if s == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every subcommand's about as listed by its parent, and as the
    /// subcommand shows it once its deferred options are built.
    fn abouts(cmd: &clap::Command, prefix: &str, out: &mut Vec<(String, Option<String>)>) {
        // (`build` adds the generated `help` subcommands.)
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let name = format!("{prefix}{}", sub.get_name());
            out.push((name.clone(), sub.get_about().map(ToString::to_string)));
            abouts(sub, &format!("{name} "), out);
        }
    }

    #[test]
    fn a_mistyped_command_suggests_the_nearest() {
        assert_eq!(edit_distance("rn", "run"), 1);
        assert_eq!(edit_distance("run", "run-prepared"), 9);
        assert_eq!(edit_distance("", "ab"), 2);
        let err = |args: &[&str]| parse_with::<Cli, _>(definition(false), args.iter().copied()).unwrap_err();
        assert_eq!(unknown_command(&err(&["skiff", "rn"])), r#"unknown command "rn" (did you mean "run" or "rm"?)"#);
        assert_eq!(unknown_command(&err(&["skiff", "stauts"])), r#"unknown command "stauts" (did you mean "status"?)"#);
        assert!(unknown_command(&err(&["skiff", "xyzzyq"])).contains("--help"));
    }

    #[test]
    fn global_options_go_before_or_after_the_command() {
        for args in [&["skiff", "--dir", "/s", "list"][..], &["skiff", "list", "--dir", "/s"]] {
            let cli: Cli = parse_with(definition(false), args.iter().copied()).unwrap();
            assert_eq!(cli.dir, PathBuf::from("/s"), "{args:?}");
        }
        let args =
            ["skiff", "fetch", "--insecure-registry", "r:5000", "--authfile", "/a", "--debug", "docker://r:5000/x"];
        let cli: Cli = parse_with(definition(false), args).unwrap();
        assert_eq!(
            (cli.insecure_registries, cli.authfile, cli.debug),
            (vec!["r:5000".into()], Some("/a".into()), true)
        );
    }

    #[test]
    fn deferred_subcommands_keep_their_about() {
        let mut listed = Vec::new();
        abouts(&definition(false), "", &mut listed);
        let mut cmd = definition(false);
        cmd.build();
        let mut built = Vec::new();
        abouts(&cmd, "", &mut built);
        assert!(listed.iter().all(|(_, a)| a.is_some()), "{listed:?}");
        assert_eq!(listed, built);
    }
}
