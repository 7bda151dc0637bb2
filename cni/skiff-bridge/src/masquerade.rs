//! The network's one masquerade rule: pods' traffic to outside the subnet
//! leaves with the host's address. Added by the first ADD after the host
//! booted (a marker in the data directory, holding the boot's ID, spares
//! every later ADD the iptables run), and removed by the plugin's GC once
//! the network has no lease left (`skiff gc` calls it), under the leases'
//! lock, so the two never race. Its comment names the data directory, so
//! two stores on one host each keep their own.

use std::path::Path;
use std::process::{Command, Stdio};

use skiff_rt::error::{Context, Error, Result};

use crate::ipam::{dotted, Subnet};

fn rule(subnet: &Subnet, data_dir: &Path) -> Vec<String> {
    let net = format!("{}/{}", dotted(subnet.base), subnet.prefix);
    let comment = format!("skiff network {}", data_dir.display());
    ["-s", &net, "!", "-d", &net, "-m", "comment", "--comment", &comment, "-j", "MASQUERADE"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// iptables from `PATH`, else where Debian installs it: CNI plugins may
/// be started with a bare environment.
fn iptables_path() -> std::path::PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs: Vec<&str> = path.split(':').chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"]).collect();
    dirs.iter()
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join("iptables"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| "iptables".into())
}

fn iptables(action: &str, rule: &[String]) -> Result<bool> {
    let status = Command::new(iptables_path())
        .args(["-w", "-t", "nat", action, "POSTROUTING"])
        .args(rule)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("cannot run iptables (Debian's iptables package)")?;
    Ok(status.success())
}

const MARKER: &str = "masquerade";

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default().trim().to_string()
}

/// Makes sure the rule is there; `dir` is the network's lease directory.
pub fn ensure(subnet: &Subnet, data_dir: &Path, dir: &Path) -> Result<()> {
    let marker = dir.join(MARKER);
    let boot = boot_id();
    if !boot.is_empty() && std::fs::read_to_string(&marker).is_ok_and(|m| m.trim() == boot) {
        return Ok(());
    }
    let r = rule(subnet, data_dir);
    // A rule already there (the marker lost) is kept, not doubled.
    if !(iptables("-C", &r)? || iptables("-A", &r)?) {
        return Err(Error::refused("cannot add the network's masquerade rule (iptables -t nat -A POSTROUTING)"));
    }
    std::fs::write(&marker, boot).context("cannot record the network's masquerade rule")
}

/// Removes the rule (best effort: what stays is removed by the next GC).
pub fn remove(subnet: &Subnet, data_dir: &Path, dir: &Path) {
    let r = rule(subnet, data_dir);
    while iptables("-D", &r).unwrap_or(false) {}
    let _ = std::fs::remove_file(dir.join(MARKER));
}
