//! How the command line answers what people type: global options on either
//! side of the command, options in the wrong place named with where they
//! go, mistyped commands, `--format json`, and a closed stdout.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use skiff_tests::skiff::bin_dir;
use skiff_tests::{stderr, Skiff};

/// skiff without the test's own `--dir` in front.
fn bare(args: &[&str]) -> std::process::Output {
    Command::new(bin_dir().join("skiff")).args(args).stdin(Stdio::null()).output().expect("run skiff")
}

#[test]
fn global_options_are_taken_after_the_command_too() {
    let s = Skiff::new();
    let uuid = s.ok(&["prepare", "--quiet", &s.image, "--exec", "/bin/true"]);
    let dir = s.dir.to_str().unwrap();
    for args in [vec!["--dir", dir, "list", "--format", "json"], vec!["list", "--dir", dir, "--format", "json"]] {
        let o = bare(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let pods: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(pods[0]["uuid"], uuid.trim(), "{args:?}");
    }
    let o = bare(&["status", "--debug", uuid.trim(), "--dir", dir]);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("state=prepared"), "{}", stderr(&o));
    // skopeo's and podman's placement of the registry options.
    let o =
        bare(&["fetch", "--dir", dir, "--insecure-registry", "127.0.0.1:1", "--authfile", "/nonexistent", "oci:/no"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(!stderr(&o).contains("unexpected argument"), "{}", stderr(&o));
}

#[test]
fn options_in_the_wrong_place_say_where_they_go() {
    let s = Skiff::new();
    let cases: [(&[&str], &str); 7] = [
        (&["run", &s.image, "--port", "80:80"], "--port is a pod option: put it before the (first) image"),
        (&["run", &s.image, "--net=none"], "--net is a pod option"),
        (&["run", "--bogus", &s.image], "unknown option --bogus"),
        (&["run", "--volume", "v:/data", &s.image], "--volume is an app option: put it after the image it is for"),
        (&["run", "--exec=/bin/true", &s.image], "--exec is an app option: put it after the image it is for"),
        (&["run", &s.image, "--exec", "/bin/true", "---", "--hostname", "x", &s.image], "--hostname is a pod option"),
        (&["rn", &s.image], r#"unknown command "rn" (did you mean "run" or "rm"?)"#),
    ];
    for (args, want) in cases {
        let o = s.output(args);
        assert_eq!(o.status.code(), Some(125), "{args:?}");
        let err = stderr(&o);
        assert!(err.contains(want) && err.lines().count() == 1, "{args:?}: {err}");
    }
    assert!(s.list_json().as_array().unwrap().is_empty(), "nothing was made");
}

#[test]
fn cat_manifest_takes_format_json() {
    let s = Skiff::new();
    let uuid = s.ok(&["prepare", "--quiet", &s.image, "--exec", "/bin/true"]);
    let json = s.ok(&["cat-manifest", "--format", "json", uuid.trim()]);
    let m: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(m["uuid"], uuid.trim());
    assert_eq!(json, s.ok(&["cat-manifest", uuid.trim()]), "JSON is the default");
    assert_eq!(s.output(&["cat-manifest", "--format", "table", uuid.trim()]).status.code(), Some(125));
}

#[test]
fn a_closed_stdout_ends_skiff_quietly() {
    let s = Skiff::new();
    for _ in 0..60 {
        s.ok(&["prepare", "--quiet", &s.image, "--exec", "/bin/true"]);
    }
    // `skiff list --format json | head -1` with a pipe far smaller than the
    // list (about 40 KB, written at once: more than the pipe and the one
    // read of the reader hold).
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    rustix::pipe::fcntl_setpipe_size(&w, 4096).unwrap();
    let child = s.cmd(&["list", "--format", "json"]).stdout(Stdio::from(w)).stderr(Stdio::piped()).spawn().unwrap();
    let mut first = String::new();
    BufReader::new(std::fs::File::from(r)).read_line(&mut first).unwrap();
    assert_eq!(first, "[\n");
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.signal(), Some(libc_sigpipe()), "ended by SIGPIPE like coreutils: {:?}", o.status);
    assert!(o.stderr.is_empty(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn libc_sigpipe() -> i32 {
    rustix::process::Signal::PIPE.as_raw()
}
