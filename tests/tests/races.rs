//! Commands racing each other on one store (docs/reliability.md): every
//! one either does its work or fails with a clear one-line error and exit
//! 125, and afterwards gc leaves nothing.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Output};
use std::sync::atomic::{AtomicBool, Ordering};

use skiff_tests::{stderr, Skiff};

/// Waits for `children`; each output, with a description of any that
/// neither succeeded nor failed clearly.
fn outcomes(children: Vec<Child>) -> (Vec<Output>, Vec<String>) {
    let mut bad = Vec::new();
    let outs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for o in &outs {
        let err = stderr(o);
        let clear = o.status.code() == Some(125) && err.lines().count() == 1 && err.starts_with("skiff: ");
        if !o.status.success() && !clear {
            bad.push(format!("{:?} (signal {:?}): {err}", o.status.code(), o.status.signal()));
        }
    }
    (outs, bad)
}

fn spawn_piped(s: &Skiff, args: &[&str]) -> Child {
    s.cmd(args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
}

fn uuids(s: &Skiff) -> Vec<String> {
    s.list_json().as_array().into_iter().flatten().filter_map(|p| p["uuid"].as_str().map(String::from)).collect()
}

#[test]
fn fifty_runs_while_gc_and_image_rm_loop_each_start_or_fail_clearly() {
    let s = Skiff::new();
    s.ok(&["fetch", &s.image]);
    let stop = AtomicBool::new(false);
    let mut seen = Vec::new();
    std::thread::scope(|scope| {
        // The loop: gc, image gc and image rm of the image the runs use.
        // (Skiff is not shared between threads: the loop builds its own
        // commands for the same store.)
        let (dir, image) = (s.dir.clone(), s.image.clone());
        let stop = &stop;
        let looper = scope.spawn(move || {
            let mut rounds = 0;
            while !stop.load(Ordering::Relaxed) {
                for args in [&["gc", "--grace-period", "0"][..], &["image", "gc"], &["image", "rm", &image]] {
                    let o = std::process::Command::new(skiff_tests::skiff::bin_dir().join("skiff"))
                        .arg("--dir")
                        .arg(&dir)
                        .args(args)
                        .output()
                        .unwrap();
                    // image rm of an image already removed says so.
                    assert!(o.status.success() || o.status.code() == Some(125), "{args:?}: {}", stderr(&o));
                }
                rounds += 1;
            }
            rounds
        });
        // In five waves of ten, so the loop goes round between them too.
        let mut outs = Vec::new();
        let mut bad = Vec::new();
        for wave in 0..5 {
            let children: Vec<Child> = (0..10)
                .map(|i| {
                    let name = format!("r{wave}-{i}");
                    spawn_piped(
                        &s,
                        &[
                            "run", "--name", &name, "--net", "none", &s.image, "--exec", "/bin/sh", "--", "-c",
                            "echo ran",
                        ],
                    )
                })
                .collect();
            let (o, b) = outcomes(children);
            outs.extend(o);
            bad.extend(b);
        }
        stop.store(true, Ordering::Relaxed);
        let rounds = looper.join().unwrap();
        assert!(bad.is_empty(), "runs that failed unclearly: {bad:#?}");
        for o in outs.iter().filter(|o| o.status.success()) {
            assert_eq!(String::from_utf8_lossy(&o.stdout), "ran\n", "a run that started ran the image");
        }
        assert!(rounds > 0);
        let ran = outs.iter().filter(|o| o.status.success()).count();
        println!("{ran} of 50 runs ran, {} failed clearly, {rounds} rounds of gc, image gc and image rm", 50 - ran);
        seen = uuids(&s);
    });
    // Whatever happened, the store reads and a run works.
    s.ok(&["run", "--rm", "--net", "none", &s.image, "--exec", "/bin/true"]);
    s.ok(&["gc", "--grace-period", "0"]);
    s.ok(&["image", "gc"]);
    assert_eq!(s.leftovers(&seen), Vec::<String>::new());
}

#[test]
fn two_fetches_and_an_image_gc_at_once_leave_the_image_whole() {
    let s = Skiff::new();
    for _ in 0..5 {
        let children = vec![
            spawn_piped(&s, &["fetch", &s.image]),
            spawn_piped(&s, &["fetch", &s.image]),
            spawn_piped(&s, &["image", "gc"]),
        ];
        let (outs, bad) = outcomes(children);
        assert!(bad.is_empty(), "{bad:#?}");
        assert!(outs[0].status.success() && outs[1].status.success(), "fetches wait for gc, gc for them");
        let id = String::from_utf8_lossy(&outs[0].stdout).trim().to_string();
        assert_eq!(id, String::from_utf8_lossy(&outs[1].stdout).trim());
        s.ok(&["image", "inspect", &id]);
        s.ok(&["run", "--rm", "--net", "none", &id, "--exec", "/bin/true"]);
        s.ok(&["image", "rm", &id]);
    }
    s.ok(&["image", "gc"]);
    assert_eq!(s.leftovers(&[]), Vec::<String>::new());
}

#[test]
fn stop_and_rm_of_one_pod_at_once() {
    let s = Skiff::new();
    for i in 0..5 {
        let name = format!("p{i}");
        let mut pod = s.spawn(&["run", "--name", &name, "--net", "none", &s.image, "--exec", "/bin/sleep", "--", "60"]);
        let st = s.output(&["status", "--wait-ready=20s", &name]);
        assert!(st.status.success(), "{}", stderr(&st));
        let (outs, bad) = outcomes(vec![spawn_piped(&s, &["stop", &name]), spawn_piped(&s, &["rm", &name])]);
        assert!(bad.is_empty(), "{bad:#?}");
        assert!(outs[0].status.success(), "stop: {}", stderr(&outs[0]));
        pod.wait().unwrap();
        // rm lost the race to a running pod, or removed the stopped one.
        let left = s.output(&["status", "--format", "json", &name]);
        match outs[1].status.success() {
            true => assert!(!left.status.success(), "rm succeeded: the pod is gone"),
            false => assert!(
                stderr(&outs[1]).contains("running") || stderr(&outs[1]).contains("busy"),
                "{}",
                stderr(&outs[1])
            ),
        }
    }
    let seen = uuids(&s);
    s.ok(&["gc", "--grace-period", "0"]);
    assert_eq!(s.leftovers(&seen), Vec::<String>::new());
}
