//! The crash matrix (docs/reliability.md): every failpoint, passed by the
//! command that reaches it, killed there (SIGKILL) or failed there (EIO).
//! Whatever happened, the store reads consistently, the next command works,
//! and gc leaves nothing: no mount, cgroup, iptables rule, lease, pod
//! directory or temp file.

use std::os::unix::process::ExitStatusExt;

use skiff_tests::{stderr, Skiff};

/// How a row's command is set up and run.
#[derive(Clone, Copy)]
enum Cmd {
    /// `run` on skiff's default network (the flavor's network steps).
    RunNet,
    /// `run --net none`.
    Run,
    /// `prepare --net none`.
    Prepare,
    /// `fetch` of the test image.
    Fetch,
    /// `gc --grace-period 0` of an exited pod.
    Gc,
    /// `image gc` of a removed image.
    ImageGc,
}

const MATRIX: [(&str, Cmd); 16] = [
    ("pod.create", Cmd::Run),
    ("atomic.manifest.json", Cmd::Run),
    ("pod.transition.prepared", Cmd::Prepare),
    ("pod.transition.run", Cmd::Run),
    ("ns.cgroups", Cmd::RunNet),
    ("ns.network", Cmd::RunNet),
    ("ns.init", Cmd::RunNet),
    ("pod.transition.exited-garbage", Cmd::Gc),
    ("pod.transition.garbage", Cmd::Gc),
    ("gc.pod", Cmd::Gc),
    ("image.blob", Cmd::Fetch),
    ("image.unpack.layer", Cmd::Fetch),
    ("image.record", Cmd::Fetch),
    ("atomic.names.json", Cmd::Fetch),
    ("image.gc", Cmd::ImageGc),
    ("atomic.exit.json", Cmd::Run),
];

fn setup(s: &Skiff, cmd: Cmd) -> Vec<String> {
    let v = |a: &[&str]| a.iter().map(|x| x.to_string()).collect();
    match cmd {
        Cmd::RunNet => v(&["run", "--net", "default", &s.image, "--exec", "/bin/true"]),
        Cmd::Run => v(&["run", "--net", "none", &s.image, "--exec", "/bin/true"]),
        Cmd::Prepare => v(&["prepare", "--net", "none", &s.image, "--exec", "/bin/true"]),
        Cmd::Fetch => v(&["fetch", &s.image]),
        Cmd::Gc => {
            s.ok(&["run", "--net", "none", &s.image, "--exec", "/bin/true"]);
            v(&["gc", "--grace-period", "0"])
        }
        Cmd::ImageGc => {
            let id = s.ok(&["fetch", "--quiet", &s.image]);
            s.ok(&["image", "rm", id.trim()]);
            v(&["image", "gc"])
        }
    }
}

/// Runs one row: the outcome, or what went wrong.
fn row(point: &str, cmd: Cmd, action: &str) -> Result<String, String> {
    let s = Skiff::new();
    let args = setup(&s, cmd);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = s.cmd(&args).env("SKIFF_FAILPOINTS", format!("{point}={action}")).output().unwrap();
    let named = stderr(&o).contains("(os error 5)");
    let last = stderr(&o).trim().lines().last().unwrap_or_default().trim_start_matches("skiff: ").to_string();
    let outcome = match (action, o.status.signal(), o.status.code()) {
        ("kill", Some(9), _) => "killed".to_string(),
        ("eio", _, Some(125)) if named => format!("125: {last}"),
        // The app ran and its status is run's; only its record failed.
        ("eio", _, Some(0)) if named && point == "atomic.exit.json" => format!("0 (the app's): {last}"),
        _ => return Err(format!("not reached: {:?}, stderr {}", o.status, stderr(&o))),
    };
    // The store reads consistently.
    let list = s.output(&["list", "--format", "json"]);
    let pods: serde_json::Value =
        serde_json::from_slice(&list.stdout).map_err(|e| format!("list: {e}: {}", stderr(&list)))?;
    let pods = pods.as_array().cloned().unwrap_or_default();
    let uuids: Vec<String> = pods.iter().filter_map(|p| p["uuid"].as_str().map(String::from)).collect();
    if let Some(p) = pods.iter().find(|p| p["state"] == "running") {
        return Err(format!("a pod reads as running with no supervisor: {p}"));
    }
    let images = s.output(&["image", "list", "--format", "json"]);
    let images: serde_json::Value = serde_json::from_slice(&images.stdout).map_err(|e| format!("image list: {e}"))?;
    for id in images.as_array().into_iter().flatten().filter_map(|i| i["id"].as_str()) {
        let inspect = s.output(&["image", "inspect", id]);
        if !inspect.status.success() {
            return Err(format!("image {id} is listed but broken: {}", stderr(&inspect)));
        }
    }
    // The next command works.
    let again = s.output(&["run", "--rm", "--net", "default", &s.image, "--exec", "/bin/true"]);
    if !again.status.success() {
        return Err(format!("the next run failed: {}", stderr(&again)));
    }
    // gc heals the rest.
    for gc in [&["gc", "--grace-period", "0"][..], &["image", "gc"]] {
        let g = s.output(gc);
        if !g.status.success() {
            return Err(format!("{gc:?}: {}", stderr(&g)));
        }
    }
    let left = s.leftovers(&uuids);
    if !left.is_empty() {
        return Err(format!("left after gc: {left:?}"));
    }
    Ok(outcome)
}

#[test]
fn every_failpoint_ends_done_or_cleanly_undone() {
    let mut table = vec!["| failpoint | command | SIGKILL | EIO |".to_string(), "|---|---|---|---|".to_string()];
    let mut failures = Vec::new();
    for (point, cmd) in MATRIX {
        let mut cells = Vec::new();
        for action in ["kill", "eio"] {
            match row(point, cmd, action) {
                Ok(outcome) => cells.push(outcome),
                Err(e) => {
                    cells.push("FAILED".into());
                    failures.push(format!("{point}={action}: {e}"));
                }
            }
        }
        let name = match cmd {
            Cmd::RunNet => "run (default network)",
            Cmd::Run => "run --net none",
            Cmd::Prepare => "prepare --net none",
            Cmd::Fetch => "fetch",
            Cmd::Gc => "gc --grace-period 0",
            Cmd::ImageGc => "image gc",
        };
        table.push(format!("| `{point}` | {name} | {} | {} |", cells[0], cells[1].replace('|', "/")));
    }
    println!("{}", table.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
