//! The files every pod gets in its `/etc`: hostname, hosts (unless the
//! image has one), resolv.conf (from the CNI result's DNS, or as stage0
//! decided) and the mtab link.
//! Written from inside the pod, so image symlinks resolve in its root.

use std::io::Write;
use std::path::Path;

use skiff_pods::netstate::NetState;
use skiff_pods::PodManifest;
use skiff_rt::error::{Context, Result};

fn write(path: &Path, data: &str) -> std::io::Result<()> {
    let create = || std::fs::OpenOptions::new().write(true).create_new(true).open(path);
    let mut f = match create() {
        // Replace rather than write through: the image may ship a symlink.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match std::fs::symlink_metadata(path) {
            Ok(md) if !md.is_dir() => {
                std::fs::remove_file(path)?;
                create()?
            }
            _ => return Err(e),
        },
        r => r?,
    };
    f.write_all(data.as_bytes())
}

/// The /etc/hosts lines skiff adds: the pod's hostname on its addresses
/// (`ips`, CIDR, from its CNI network) and the manifest's entries.
fn hosts_lines(m: &PodManifest, ips: &[String]) -> String {
    let mut out = String::new();
    for ip in ips {
        out.push_str(&format!("{}\t{}\n", ip.split('/').next().unwrap_or(ip), m.hostname));
    }
    for (ip, name) in &m.hosts_entries {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    out
}

/// `net`: the pod's CNI networks, if it has any.
pub fn populate(root: &Path, m: &PodManifest, net: &NetState) -> Result<()> {
    let ips = &net.addresses();
    let etc = root.join("etc");
    std::fs::create_dir_all(&etc).context("cannot create /etc")?;
    let h = &m.hostname;
    write(&etc.join("hostname"), &format!("{h}\n")).context("cannot write /etc/hostname")?;
    let hosts = etc.join("hosts");
    let extra = hosts_lines(m, ips);
    if std::fs::symlink_metadata(&hosts).is_err() {
        // The hostname resolves to the pod's own address when it has one.
        let on_lo = if ips.is_empty() { format!(" {h}") } else { String::new() };
        let text = format!("127.0.0.1\tlocalhost{on_lo}\n::1\tlocalhost ip6-localhost ip6-loopback{on_lo}\n{extra}");
        write(&hosts, &text).context("cannot write /etc/hosts")?;
    } else if !extra.is_empty() {
        // The image's own file, with skiff's lines after it.
        let mut text = std::fs::read_to_string(&hosts).context("cannot read /etc/hosts")?;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&extra);
        write(&hosts, &text).context("cannot write /etc/hosts")?;
    }
    let from_network = net.dns().filter(|_| m.dns_from_network).map(|d| d.resolv_conf());
    if let Some(conf) = from_network.as_ref().or(m.resolv_conf.as_ref()) {
        write(&etc.join("resolv.conf"), conf).context("cannot write /etc/resolv.conf")?;
    }
    // An image's own mtab (file or link) is kept.
    match std::os::unix::fs::symlink("/proc/self/mounts", etc.join("mtab")) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e).context("cannot create /etc/mtab"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_files() {
        let d = tempfile::tempdir().unwrap();
        let mut m = skiff_pods::test_util::test_manifest();
        m.hostname = "web".into();
        m.hosts_entries = vec![("192.0.2.9".into(), "db".into())];
        let net: NetState = serde_json::from_value(serde_json::json!([{"network": "default", "ifname": "eth0",
            "result": {"ips": [{"address": "10.231.0.7/16"}], "dns": {"nameservers": ["10.231.0.1"]}}}]))
        .unwrap();
        m.resolv_conf = Some("nameserver 192.0.2.53\n".into());
        populate(d.path(), &m, &net).unwrap();
        let resolv = std::fs::read_to_string(d.path().join("etc/resolv.conf")).unwrap();
        assert_eq!(resolv, "nameserver 192.0.2.53\n", "the network's DNS only when asked for");
        m.dns_from_network = true;
        populate(d.path(), &m, &net).unwrap();
        let resolv = std::fs::read_to_string(d.path().join("etc/resolv.conf")).unwrap();
        assert_eq!(resolv, "nameserver 10.231.0.1\n");
        let hosts = std::fs::read_to_string(d.path().join("etc/hosts")).unwrap();
        assert!(hosts.contains("127.0.0.1\tlocalhost\n") && hosts.contains("10.231.0.7\tweb\n"), "{hosts}");
        assert!(hosts.ends_with("192.0.2.9\tdb\n"), "{hosts}");
        // An image's own file keeps its lines and gets skiff's after them.
        std::fs::write(d.path().join("etc/hosts"), "10.0.0.1 mine").unwrap();
        populate(d.path(), &m, &NetState::default()).unwrap();
        assert_eq!(std::fs::read_to_string(d.path().join("etc/hosts")).unwrap(), "10.0.0.1 mine\n192.0.2.9\tdb\n");
    }

    #[test]
    fn an_images_symlinks_are_replaced_not_written_through() {
        let d = tempfile::tempdir().unwrap();
        let outside = d.path().join("outside");
        std::fs::write(&outside, "keep").unwrap();
        std::fs::create_dir_all(d.path().join("root/etc")).unwrap();
        std::os::unix::fs::symlink(&outside, d.path().join("root/etc/hostname")).unwrap();
        let mut m = skiff_pods::test_util::test_manifest();
        m.hostname = "web".into();
        populate(&d.path().join("root"), &m, &NetState::default()).unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        let written = d.path().join("root/etc/hostname");
        assert!(std::fs::symlink_metadata(&written).unwrap().is_file());
        assert_eq!(std::fs::read_to_string(written).unwrap(), "web\n");
        // A directory where a file goes is an error, not removed.
        std::fs::remove_file(d.path().join("root/etc/hostname")).unwrap();
        std::fs::create_dir(d.path().join("root/etc/hostname")).unwrap();
        let err = populate(&d.path().join("root"), &m, &NetState::default()).unwrap_err().to_string();
        assert!(err.contains("/etc/hostname"), "{err}");
    }
}
