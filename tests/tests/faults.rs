//! The crash matrix (docs/reliability.md): every failpoint, passed by the
//! command that reaches it, killed there (SIGKILL) or failed there (EIO).
//! Whatever happened, the store reads consistently, the next command works,
//! and gc leaves nothing: no mount, cgroup, iptables rule, lease, pod
//! directory or temp file.

use std::os::unix::process::ExitStatusExt;

use skiff_tests::{crash_matrix, stderr, Skiff};

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

const MATRIX: [(&str, Cmd); 17] = [
    ("pod.create", Cmd::Run),
    ("atomic.manifest.json", Cmd::Run),
    ("pod.transition.prepared", Cmd::Prepare),
    ("pod.transition.run", Cmd::Run),
    ("ns.cgroups", Cmd::RunNet),
    ("ns.network", Cmd::RunNet),
    ("ns.init", Cmd::RunNet),
    ("ns.release", Cmd::RunNet),
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
        // The app ran and its status is run's; only its record, or the
        // pod's release, failed.
        ("eio", _, Some(0)) if named && ["atomic.exit.json", "ns.release"].contains(&point) => {
            format!("0 (the app's): {last}")
        }
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
    let name = |cmd| match cmd {
        Cmd::RunNet => "run (default network)",
        Cmd::Run => "run --net none",
        Cmd::Prepare => "prepare --net none",
        Cmd::Fetch => "fetch",
        Cmd::Gc => "gc --grace-period 0",
        Cmd::ImageGc => "image gc",
    };
    let rows: Vec<(&str, &str)> = MATRIX.iter().map(|(point, cmd)| (*point, name(*cmd))).collect();
    crash_matrix("command", &rows, |point, action| {
        let cmd = MATRIX.iter().find(|(p, _)| *p == point).map(|(_, c)| *c).expect("a row of the matrix");
        row(point, cmd, action)
    });
}

/// The app API's failpoints (`skiff app`, a sandbox's flavor), each with
/// the command that passes it.
const APP_MATRIX: [(&str, &str); 3] = [("app.add", "app add"), ("app.start", "app start"), ("app.remove", "app rm")];

/// Where an added app's cgroups are, in every hierarchy that has them.
fn app_cgroups(uuid: &str, app: &str) -> Vec<String> {
    let roots = std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten().map(|e| e.path().join("skiff").join(uuid));
    roots.map(|r| r.join(app)).filter(|d| d.exists()).map(|d| d.display().to_string()).collect()
}

/// One row of the app API's matrix: a sandbox, an app added (and for
/// `app rm` run and ended), the command killed or failed at `point`.
fn app_row(point: &str, action: &str) -> Result<String, String> {
    let s = Skiff::new();
    // Once: the flavor passes app.start, so the sandbox's run carries it,
    // and its next start must work.
    let spec = format!("{point}={action}*1");
    let mut run = s.cmd(&["run", "--sandbox", "--name", "sb", "--net", "none"]);
    if point == "app.start" {
        run.env("SKIFF_FAILPOINTS", &spec);
    }
    let mut sandbox = s.spawn_cmd(run);
    s.wait_running(1);
    let uuid = s.only_pod();
    let add = ["app", "add", "sb", &s.image, "--app-name", "job", "--exec", "/bin/true"];
    let start = ["app", "start", "sb", "--app", "job"];
    let ended = |s: &Skiff| s.ok(&["app", "list", "sb", "--format", "json"]).contains("\"exit_code\": 0");
    let args: &[&str] = match point {
        "app.add" => &add,
        "app.start" => {
            s.ok(&add);
            &start
        }
        _ => {
            s.ok(&add);
            s.ok(&start);
            s.wait_for("the app's end", || ended(&s));
            &["app", "rm", "sb", "--app", "job"]
        }
    };
    let mut cmd = s.cmd(args);
    if point != "app.start" {
        cmd.env("SKIFF_FAILPOINTS", &spec);
    }
    let o = cmd.output().unwrap();
    let result = app_outcome(&s, point, action, &o, &uuid);
    // Stopped by its own pod's stop or end.
    let _ = s.output(&["stop", "sb"]);
    sandbox.wait().unwrap();
    result
}

/// The rest of [`app_row`], once its command ran (`o`).
fn app_outcome(s: &Skiff, point: &str, action: &str, o: &std::process::Output, uuid: &str) -> Result<String, String> {
    let add = ["app", "add", "sb", &s.image, "--app-name", "job", "--exec", "/bin/true"];
    let start = ["app", "start", "sb", "--app", "job"];
    let ended = |s: &Skiff| s.ok(&["app", "list", "sb", "--format", "json"]).contains("\"exit_code\": 0");
    let last = stderr(o).trim().lines().last().unwrap_or_default().trim_start_matches("skiff: ").to_string();
    let outcome = match (action, point, o.status.signal(), o.status.code()) {
        ("kill", "app.start", _, Some(125)) => format!("the supervisor killed; app start 125: {last}"),
        ("kill", _, Some(9), _) => "killed".to_string(),
        ("eio", _, _, Some(125)) if last.contains("(os error 5)") => format!("125: {last}"),
        _ => return Err(format!("not reached: {:?}, stderr {}", o.status, stderr(o))),
    };
    if point == "app.start" && action == "kill" {
        // The pod ended with its supervisor: gc takes it all.
        s.wait_for("the pod's end", || s.list_json()[0]["state"] != "running");
    } else {
        // The sandbox goes on, and the app's next step works.
        let cgroups = app_cgroups(uuid, "job");
        match point {
            "app.add" => {
                if !s.ok(&["app", "list", "sb"]).contains("job") {
                    s.ok(&add);
                }
                s.ok(&start);
                s.wait_for("the app's end", || ended(s));
            }
            "app.start" if !cgroups.is_empty() => return Err(format!("a failed start left {cgroups:?}")),
            "app.start" => {
                s.ok(&start);
                s.wait_for("the app's end", || ended(s));
            }
            _ => {
                s.ok(&["app", "rm", "sb", "--app", "job"]);
                if s.ok(&["app", "list", "sb"]).contains("job") {
                    return Err("app rm did not remove the app".into());
                }
            }
        }
        s.ok(&["stop", "sb"]);
    }
    s.ok(&["gc", "--grace-period", "0"]);
    let left = s.leftovers(&[uuid.to_string()]);
    if !left.is_empty() {
        return Err(format!("left after gc: {left:?}"));
    }
    Ok(outcome)
}

#[test]
fn every_app_api_failpoint_ends_done_or_cleanly_undone() {
    crash_matrix("command", &APP_MATRIX, app_row);
}
