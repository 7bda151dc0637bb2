//! The files every pod gets in its `/etc`: hostname, hosts (unless the
//! image has one), resolv.conf (as stage0 decided) and the mtab link.
//! Written from inside the pod, so image symlinks resolve in its root.

use std::io::Write;
use std::path::Path;

use skiff_pods::PodManifest;

fn write(path: &Path, data: &str) -> std::io::Result<()> {
    // Replace rather than write through: the image may ship a symlink.
    match std::fs::symlink_metadata(path) {
        Ok(md) if !md.is_dir() => std::fs::remove_file(path)?,
        _ => {}
    }
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    f.write_all(data.as_bytes())
}

pub fn populate(root: &Path, m: &PodManifest) -> Result<(), String> {
    let etc = root.join("etc");
    std::fs::create_dir_all(&etc).map_err(|e| format!("cannot create /etc: {e}"))?;
    let h = &m.hostname;
    write(&etc.join("hostname"), &format!("{h}\n")).map_err(|e| format!("cannot write /etc/hostname: {e}"))?;
    if std::fs::symlink_metadata(etc.join("hosts")).is_err() {
        let hosts = format!("127.0.0.1\tlocalhost {h}\n::1\tlocalhost ip6-localhost ip6-loopback {h}\n");
        write(&etc.join("hosts"), &hosts).map_err(|e| format!("cannot write /etc/hosts: {e}"))?;
    }
    if let Some(conf) = &m.resolv_conf {
        write(&etc.join("resolv.conf"), conf).map_err(|e| format!("cannot write /etc/resolv.conf: {e}"))?;
    }
    if std::fs::symlink_metadata(etc.join("mtab")).is_err() {
        std::os::unix::fs::symlink("/proc/self/mounts", etc.join("mtab"))
            .map_err(|e| format!("cannot create /etc/mtab: {e}"))?;
    }
    Ok(())
}
