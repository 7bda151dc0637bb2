//! skiff under systemd: socket activation (`LISTEN_FDS`), readiness
//! (`NOTIFY_SOCKET`), and generated units.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use skiff_tests::skiff::bin_dir;
use skiff_tests::{free_port, Skiff};

/// Kills (by PID) and reaps a helper the test started, however the test ends.
struct Helper(Child);

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One connection through `systemd-socket-activate --accept` to a pod of
/// `flavor` (`userns`: its `--private-users`): what the app printed on the
/// socket it got as fd 3.
fn socket_activated(s: &Skiff, flavor: &str, userns: &str) -> Vec<String> {
    let addr = format!("127.0.0.1:{}", free_port());
    let script =
        r#"echo "fds=$LISTEN_FDS pid=$LISTEN_PID me=$$ names=$LISTEN_FDNAMES" >&3; ls /proc/self/fd | tr '\n' ' ' >&3"#;
    let helper = Command::new("systemd-socket-activate")
        .args(["--accept", "--fdname=web", "-l", &addr])
        .arg(bin_dir().join("skiff"))
        .arg("--dir")
        .arg(&s.dir)
        .args([
            "run", "--rm", "--stage1", flavor, userns, "--net", "host", &s.image, "--exec", "/bin/sh", "--", "-c",
            script,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("systemd-socket-activate (Debian package systemd)");
    let _helper = Helper(helper);
    let mut conn = None;
    s.wait_for("systemd-socket-activate to listen", || {
        conn = std::net::TcpStream::connect(&addr).ok();
        conn.is_some()
    });
    let lines: Vec<String> = BufReader::new(conn.unwrap()).lines().map_while(Result::ok).collect();
    s.wait_for("the --rm pod to go", || s.list_json().as_array().is_some_and(|a| a.is_empty()));
    lines
}

#[test]
fn a_socket_activated_app_gets_the_descriptors_at_their_numbers() {
    let s = Skiff::new();
    for (flavor, userns) in
        [("ns", "--private-users=no"), ("fly", "--private-users=no"), ("ns", "--private-users=300000:65536")]
    {
        let lines = socket_activated(&s, flavor, userns);
        let words: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(words[0], "fds=1", "{flavor}: {lines:?}");
        let (pid, me) = (words[1].trim_start_matches("pid="), words[2].trim_start_matches("me="));
        assert_eq!(pid, me, "{flavor}: LISTEN_PID is the app's: {lines:?}");
        assert_eq!(words[3], "names=web", "{flavor}: {lines:?}");
        // stdio, the socket and ls's own directory: nothing of skiff's.
        assert_eq!(lines[1].split_whitespace().count(), 5, "{flavor}: {lines:?}");
    }
    // A flavor that cannot pass them refuses the pod rather than drop them.
    let o = Command::new("sh")
        .arg("-c")
        .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$@\" 3</dev/null")
        .arg("sh")
        .arg(bin_dir().join("skiff"))
        .arg("--dir")
        .arg(&s.dir)
        .args(["run", "--stage1", "nspawn", &s.image, "--exec", "/bin/true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("socket-activation") && err.contains("LISTEN_FDS"), "{err}");
}

/// systemd's end of `NOTIFY_SOCKET`, in the test's directory.
fn notify_listener(s: &Skiff) -> (std::os::unix::net::UnixDatagram, String) {
    let path = s.tmp().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    (sock, path.to_str().unwrap().to_string())
}

fn recv(sock: &std::os::unix::net::UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("a notification");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn ready_is_sent_once_every_app_has_started() {
    let s = Skiff::new();
    let (sock, path) = notify_listener(&s);
    for flavor in ["ns", "fly"] {
        let mut pod = s.cmd(&["run", "--stage1", flavor, &s.image, "--exec", "/bin/sleep", "--", "30"]);
        let pod = Helper(pod.env("NOTIFY_SOCKET", &path).spawn().unwrap());
        assert_eq!(recv(&sock), "READY=1", "{flavor}");
        drop(pod);
    }
    // --notify=none, or no NOTIFY_SOCKET: nothing.
    s.ok(&["run", "--notify", "none", &s.image, "--exec", "/bin/true"]);
    let o = s.cmd(&["run", "--notify", "none", &s.image, "--exec", "/bin/true"]).env("NOTIFY_SOCKET", &path).output();
    assert_eq!(o.unwrap().status.code(), Some(0));
    sock.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    assert!(sock.recv(&mut buf).is_err(), "nothing was sent");
    let o = s.output(&["run", "--stage1", "nspawn", "--notify", "started", &s.image, "--exec", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("notify"), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A static `systemd-notify` of the test's own for the busybox image:
/// sends argv[1] to $NOTIFY_SOCKET.
fn notify_tool(s: &Skiff) -> std::path::PathBuf {
    let dir = s.tmp().join("tool");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("notify.c");
    std::fs::write(
        &src,
        r#"#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
int main(int argc, char **argv) {
    const char *p = getenv("NOTIFY_SOCKET");
    if (!p || argc < 2) return 2;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, p, sizeof a.sun_path - 1);
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    socklen_t len = offsetof(struct sockaddr_un, sun_path) + strlen(p);
    return sendto(s, argv[1], strlen(argv[1]), 0, (struct sockaddr *)&a, len) < 0 ? 3 : 0;
}
"#,
    )
    .unwrap();
    let o = Command::new("gcc").args(["-static", "-O1", "-o"]).arg(dir.join("notify")).arg(&src).output().unwrap();
    assert!(o.status.success(), "gcc: {}", String::from_utf8_lossy(&o.stderr));
    dir
}

#[test]
fn with_notify_app_the_apps_own_notifications_reach_systemd_from_the_main_pid() {
    let s = Skiff::new();
    let (sock, path) = notify_listener(&s);
    let tool = notify_tool(&s);
    let volume = format!("{}:/opt/tool:ro", tool.display());
    let script = r#"/opt/tool/notify "$(printf 'READY=1\nSTATUS=serving\nMAINPID=1')"; test "$NOTIFY_SOCKET" = /run/skiff/notify && sleep 30"#;
    // (Also from the root of a pod's own user namespace: a host uid of its
    // range.)
    for (flavor, userns) in
        [("ns", "--private-users=no"), ("fly", "--private-users=no"), ("ns", "--private-users=300000:65536")]
    {
        #[rustfmt::skip]
        let mut pod = s.cmd(&[
            "run", "--stage1", flavor, "--notify", "app", userns,
            &s.image, "--volume", &volume, "--exec", "/bin/sh", "--", "-c", script,
        ]);
        let mut pod = Helper(pod.env("NOTIFY_SOCKET", &path).spawn().unwrap());
        let got = recv(&sock);
        assert_eq!(got, format!("READY=1\nSTATUS=serving\nMAINPID={}", pod.0.id()), "{flavor} {userns}");
        assert_eq!(pod.0.try_wait().unwrap(), None, "{flavor}: the app runs on");
        drop(pod);
    }
}

#[test]
fn generated_units_pass_systemd_analyze_verify() {
    let s = Skiff::new();
    let verify = |unit: &str, text: &str| {
        let path = s.tmp().join(format!("{unit}.service"));
        std::fs::write(&path, text).unwrap();
        let o = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .expect("systemd-analyze (Debian package systemd)");
        assert!(o.status.success(), "{text}\n{}", String::from_utf8_lossy(&o.stderr));
    };
    #[rustfmt::skip]
    let unit = s.ok(&[
        "generate", "systemd", "--name", "web", "--",
        "--net", "none", &s.image, "--exec", "/bin/sh", "--", "-c", "echo \"$HOME\" 100%; sleep 1",
    ]);
    verify("web", &unit);
    // The run arguments as `skiff run` takes them, without a leading `--`.
    #[rustfmt::skip]
    let plain = s.ok(&[
        "generate", "systemd", "--name", "web", "--net", "none", &s.image,
        "--exec", "/bin/sh", "--", "-c", "echo \"$HOME\" 100%; sleep 1",
    ]);
    assert_eq!(plain, unit, "with and without the leading --");
    let line = |key: &str| unit.lines().find(|l| l.starts_with(key)).unwrap_or_default().to_string();
    assert_eq!(line("Type="), "Type=notify");
    assert_eq!(line("KillMode="), "KillMode=mixed");
    let start = line("ExecStart=");
    assert!(start.contains(" run --name=web --notify=started --uuid-file-save=%t/web.uuid --net none "), "{start}");
    assert!(start.ends_with(r#"-c "echo \"$$HOME\" 100%%; sleep 1""#), "systemd's quoting: {start}");
    assert!(line("ExecStopPost=").ends_with(" rm --uuid-file=%t/web.uuid"), "{unit}");
    assert!(!unit.lines().any(|l| l.starts_with("Restart=")), "restarting is the user's call");
    // A prepared pod, without readiness.
    let uuid = s.ok(&["prepare", "-q", &s.image, "--exec", "/bin/true"]);
    let unit = s.ok(&["generate", "systemd", "--notify", "none", "--prepared", uuid.trim()]);
    verify("skiff-prepared", &unit);
    assert!(unit.contains(&format!(" run-prepared --notify=none {}\n", uuid.trim())), "{unit}");
    assert!(unit.contains("Type=exec\n"), "{unit}");
    // Bad run arguments are refused now, not when the unit starts.
    let o = s.output(&["generate", "systemd", "--", "--bogus", &s.image]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--bogus"), "{}", String::from_utf8_lossy(&o.stderr));
}
