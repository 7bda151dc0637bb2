//! `skiff run -i` / `-t`: a real pseudo-terminal for the app, from the
//! pod's own devpts, with the caller's window size (and its changes), the
//! caller's terminal in raw mode while the pod runs and restored after.

use std::io::Write;

use rustix::termios::LocalModes;
use skiff_tests::pty::Pty;
use skiff_tests::{stderr, Skiff};

#[test]
fn interactive_pod_on_a_terminal() {
    let s = Skiff::new();
    let pty = Pty::new(37, 101);
    let before = pty.local_modes();
    assert!(before.contains(LocalModes::ICANON | LocalModes::ECHO));
    let mut out = pty.reader();
    let mut child = s.spawn_on_terminal(&["run", "-i", &s.image, "--exec", "/bin/sh"], &pty.slave);
    let mut master = pty.master.try_clone().unwrap();
    master.write_all(b"echo T=$(tty) S=$(stty size) TERM=$TERM\n").unwrap();
    assert!(out.wait_for("T=/dev/pts/0 S=37 101 TERM=", 20), "{:?}", out.seen);
    // While the pod runs, the caller's terminal is raw: keys go to the app's.
    assert!(!pty.local_modes().contains(LocalModes::ICANON), "raw mode");
    // A resize reaches the app's terminal (SIGWINCH → TIOCSWINSZ).
    pty.resize(50, 120);
    let mut resized = false;
    for i in 0..40 {
        master.write_all(format!("echo R{i}=$(stty size)\n").as_bytes()).unwrap();
        if out.wait_for(&format!("R{i}=50 120"), 1) {
            resized = true;
            break;
        }
    }
    assert!(resized, "{:?}", out.seen);
    // ^C is a key, turned into SIGINT by the pod's terminal.
    // (Output is told from the terminal's echo of the input by $((…)).)
    master.write_all(b"sleep 30; echo after-$((1+1))\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    master.write_all(&[0x03]).unwrap();
    master.write_all(b"echo int-$((2+3))\n").unwrap();
    assert!(out.wait_for("int-5\r\n", 20), "{:?}", out.seen);
    master.write_all(b"exit 5\n").unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(5), "{:?}", out.seen);
    assert!(!out.seen.contains("after-2"), "{:?}", out.seen);
    assert_eq!(pty.local_modes(), before, "the caller's terminal is restored");
}

#[test]
fn tty_without_stdin() {
    let s = Skiff::new();
    let o = s.output(&[
        "run",
        "-t",
        &s.image,
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "t=$(tty); [ -t 0 ] && a=stdin-tty; [ -t 1 ] && b=stdout-tty; [ -n \"$TERM\" ] && c=term; echo $t $a $b $c; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    // The pod's terminal turns \n into \r\n, as any terminal does.
    assert_eq!(String::from_utf8_lossy(&o.stdout), "/dev/pts/0 stdin-tty stdout-tty term\r\n");
}

#[test]
fn interactive_with_a_pipe_ends_at_eof() {
    let s = Skiff::new();
    let mut c = s.cmd(&["run", "-i", &s.image, "--exec", "/bin/sh", "--", "-c", "read line; echo got:$line"]);
    let mut child = c
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The pod's terminal echoes the input, then the app's answer.
    assert!(String::from_utf8_lossy(&o.stdout).ends_with("got:hello\r\n"), "{:?}", o.stdout);
}

#[test]
fn a_terminal_needs_a_pod_of_one_app() {
    let s = Skiff::new();
    let o = s.output(&["run", "-t", &s.image, "--app-name", "a", "---", &s.image, "--app-name", "b"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("one app"));
    assert_eq!(s.list_json().as_array().map(Vec::len), Some(0), "nothing created");
}
