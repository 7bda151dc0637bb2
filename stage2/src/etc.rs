//! The files every pod gets in its `/etc`: hostname, hosts (unless the
//! image has one), resolv.conf (from the CNI result's DNS, or as stage0
//! decided) and the mtab link.
//!
//! Two ways to give them: [`layer`] works them out from the image's layer
//! trees before the root is mounted, for a flavor to serve from a small
//! layer of its own on top of the image's (a tmpfs, so a pod start writes
//! five inodes fewer into its upper directory, each a millisecond on an
//! aged ext4); [`populate`] writes them from inside the mounted root, where
//! image symlinks resolve in the pod's root. `populate` leaves what is in
//! place already, so after a layer it writes nothing.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use skiff_pods::netstate::NetState;
use skiff_pods::PodManifest;
use skiff_rt::error::{Context, Error, Result};

/// The files [`populate`] manages, under `/etc`.
const NAMES: [&str; 4] = ["hostname", "hosts", "resolv.conf", "mtab"];

/// Where /etc/mtab points.
const MTAB_TARGET: &str = "/proc/self/mounts";

fn write(path: &Path, data: &str) -> std::io::Result<()> {
    // What is there already is kept: a restarted app, or a flavor's layer.
    // (Read only when the size matches: an image's file may be huge.)
    if std::fs::symlink_metadata(path).is_ok_and(|md| md.is_file() && md.len() == data.len() as u64)
        && std::fs::read(path).is_ok_and(|old| old == data.as_bytes())
    {
        return Ok(());
    }
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

/// One file of /etc as the pod gets it.
#[derive(Debug, PartialEq, Eq)]
pub enum Entry {
    File(String),
    Link(&'static str),
}

/// What the image's /etc has of [`NAMES`] that decides skiff's files.
struct Found {
    /// The image's /etc/hosts, if it has one (read only when needed: it
    /// may be a dangling link).
    hosts: Option<PathBuf>,
    mtab: bool,
}

/// The files skiff gives the pod's /etc (`name`, what), given what the
/// image has: hostname and resolv.conf replace the image's, hosts and mtab
/// only where it has none (an image's hosts gets skiff's lines after its
/// own, unless it ends with them already).
fn wanted(m: &PodManifest, net: &NetState, found: Found) -> Result<Vec<(&'static str, Entry)>> {
    let ips = &net.addresses();
    let h = &m.hostname;
    let mut out = vec![("hostname", Entry::File(format!("{h}\n")))];
    let extra = hosts_lines(m, ips);
    match found.hosts {
        None => {
            // The hostname resolves to the pod's own address when it has one.
            let on_lo = if ips.is_empty() { format!(" {h}") } else { String::new() };
            out.push((
                "hosts",
                Entry::File(format!(
                    "127.0.0.1\tlocalhost{on_lo}\n::1\tlocalhost ip6-localhost ip6-loopback{on_lo}\n{extra}"
                )),
            ));
        }
        Some(_) if extra.is_empty() => {}
        Some(path) => {
            let mut text = read_hosts(&path)?;
            if !text.ends_with(&extra) {
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(&extra);
                out.push(("hosts", Entry::File(text)));
            }
        }
    }
    let from_network = net.dns().filter(|_| m.dns_from_network).map(|d| d.resolv_conf());
    if let Some(conf) = from_network.or_else(|| m.resolv_conf.clone()) {
        out.push(("resolv.conf", Entry::File(conf)));
    }
    // An image's own mtab (file or link) is kept.
    if !found.mtab {
        out.push(("mtab", Entry::Link(MTAB_TARGET)));
    }
    Ok(out)
}

/// The largest image /etc/hosts skiff adds its lines to: the file is read
/// whole into the init's memory, and an image is not trusted.
const HOSTS_MAX: u64 = 1 << 20;

fn read_hosts(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut text = String::new();
    let f = std::fs::File::open(path).context("cannot read /etc/hosts")?;
    f.take(HOSTS_MAX + 1).read_to_string(&mut text).context("cannot read /etc/hosts")?;
    if text.len() as u64 > HOSTS_MAX {
        return Err(Error::refused(format!("the image's /etc/hosts is larger than {HOSTS_MAX} bytes")));
    }
    Ok(text)
}

/// `net`: the pod's CNI networks, if it has any.
pub fn populate(root: &Path, m: &PodManifest, net: &NetState) -> Result<()> {
    let etc = root.join("etc");
    std::fs::create_dir_all(&etc).context("cannot create /etc")?;
    let exists = |name| std::fs::symlink_metadata(etc.join(name)).is_ok();
    let found = Found { hosts: exists("hosts").then(|| etc.join("hosts")), mtab: exists("mtab") };
    for (name, entry) in wanted(m, net, found)? {
        match entry {
            Entry::File(text) => write(&etc.join(name), &text).with_context(|| format!("cannot write /etc/{name}"))?,
            Entry::Link(target) => match std::os::unix::fs::symlink(target, etc.join(name)) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    return Err(e).with_context(|| format!("cannot create /etc/{name}"))
                }
                _ => {}
            },
        }
    }
    Ok(())
}

/// One layer tree of an app's root, as [`layer`] reads it.
pub struct LayerDir<'a> {
    pub path: &'a Path,
    /// Whether its owners are the pod's (an upper directory of a pod with
    /// a user namespace holds host ids) or the image's own (a lower layer).
    pub host_ids: bool,
}

/// Owner and mode the layer's /etc takes: overlayfs shows a merged
/// directory with the attributes of its topmost layer's.
#[derive(Debug, PartialEq, Eq)]
pub struct EtcDir {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    /// Whether `uid` and `gid` are host ids already (else the image's).
    pub host_ids: bool,
}

/// [`populate`]'s files for an app whose root is the overlay of `layers`
/// (its upper directory first, then its lower layers, topmost first),
/// looked up in the trees as overlayfs would, before they are mounted.
/// None where only the mounted root gives the answer: an /etc that is not
/// a plain directory, a hosts file that is a symlink, a directory where a
/// file goes (populate reports that), an overlayfs redirect.
pub fn layer(m: &PodManifest, net: &NetState, layers: &[LayerDir]) -> Option<(EtcDir, Vec<(&'static str, Entry)>)> {
    let (etc_dirs, attrs) = etc_dirs(layers)?;
    let mut found = Found { hosts: None, mtab: false };
    for name in NAMES {
        let Some(md) = lookup(&etc_dirs, name)? else { continue };
        let ft = md.1.file_type();
        match name {
            "hosts" if ft.is_file() => found.hosts = Some(md.0),
            "mtab" => found.mtab = true,
            _ if ft.is_file() || (ft.is_symlink() && name != "hosts") => {}
            _ => return None,
        }
    }
    Some((attrs, wanted(m, net, found).ok()?))
}

fn is_whiteout(md: &std::fs::Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = [0u8; 64];
    rustix::fs::lgetxattr(path, name, &mut buf).ok().map(|n| buf[..n].to_vec())
}

/// The `etc` directories of `layers` that the merged /etc is made of, top
/// first, and the attributes of the topmost; an /etc that no layer has is
/// made (root's, 0755). None: the merged /etc is not a directory, or an
/// overlayfs redirect would make it another's.
fn etc_dirs(layers: &[LayerDir]) -> Option<(Vec<PathBuf>, EtcDir)> {
    let mut dirs = Vec::new();
    let mut attrs = None;
    for l in layers {
        let etc = l.path.join("etc");
        let md = match std::fs::symlink_metadata(&etc) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(_) => return None,
            Ok(md) => md,
        };
        if !md.is_dir() {
            // A whiteout or a file over what is below: the image has no
            // /etc (below a directory above, nothing more of it).
            if dirs.is_empty() && !is_whiteout(&md) {
                return None;
            }
            break;
        }
        if xattr(&etc, "trusted.overlay.redirect").is_some() {
            return None;
        }
        attrs.get_or_insert(EtcDir { uid: md.uid(), gid: md.gid(), mode: md.mode() & 0o7777, host_ids: l.host_ids });
        dirs.push(etc.clone());
        if xattr(&etc, "trusted.overlay.opaque").as_deref() == Some(b"y") {
            break;
        }
    }
    let attrs = attrs.unwrap_or(EtcDir { uid: 0, gid: 0, mode: 0o755, host_ids: false });
    Some((dirs, attrs))
}

/// `name` in the merged directory of `dirs` (top first): Some(None) when
/// it is not there, None when the lookup failed.
fn lookup(dirs: &[PathBuf], name: &str) -> Option<Option<(PathBuf, std::fs::Metadata)>> {
    for d in dirs {
        let p = d.join(name);
        match std::fs::symlink_metadata(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(_) => return None,
            Ok(md) if is_whiteout(&md) => return Some(None),
            Ok(md) => return Some(Some((p, md))),
        }
    }
    Some(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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

    /// Layer trees under `d` (names, topmost first) as `layer` takes them.
    fn layers<'a>(d: &Path, names: &'a [&'a str]) -> Vec<PathBuf> {
        names.iter().map(|n| d.join(n)).collect()
    }

    fn layer_of(m: &PodManifest, net: &NetState, trees: &[PathBuf]) -> Option<(EtcDir, Vec<(&'static str, Entry)>)> {
        let dirs: Vec<LayerDir> = trees.iter().map(|p| LayerDir { path: p, host_ids: false }).collect();
        layer(m, net, &dirs)
    }

    fn whiteout(p: &Path) {
        use nix::sys::stat::{mknod, Mode, SFlag};
        mknod(p, SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
    }

    fn names(files: &[(&'static str, Entry)]) -> Vec<&'static str> {
        files.iter().map(|(n, _)| *n).collect()
    }

    #[test]
    fn a_layer_has_every_file_an_image_without_etc_lacks() {
        let d = tempfile::tempdir().unwrap();
        let trees = layers(d.path(), &["upper", "top", "base"]);
        trees.iter().for_each(|t| std::fs::create_dir(t).unwrap());
        let mut m = skiff_pods::test_util::test_manifest();
        m.hostname = "web".into();
        m.resolv_conf = Some("nameserver 192.0.2.53\n".into());
        let (attrs, files) = layer_of(&m, &NetState::default(), &trees).unwrap();
        assert_eq!(attrs, EtcDir { uid: 0, gid: 0, mode: 0o755, host_ids: false });
        assert_eq!(names(&files), ["hostname", "hosts", "resolv.conf", "mtab"]);
        assert_eq!(files[0].1, Entry::File("web\n".into()));
        assert_eq!(files[3].1, Entry::Link("/proc/self/mounts"));
        // What populate then finds in place, it leaves.
        let root = d.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        for (name, e) in &files {
            match e {
                Entry::File(t) => std::fs::write(root.join("etc").join(name), t).unwrap(),
                Entry::Link(t) => std::os::unix::fs::symlink(t, root.join("etc").join(name)).unwrap(),
            }
        }
        let ino = |n: &str| std::fs::symlink_metadata(root.join("etc").join(n)).unwrap().ino();
        let before: Vec<u64> = NAMES.iter().map(|n| ino(n)).collect();
        populate(&root, &m, &NetState::default()).unwrap();
        assert_eq!(before, NAMES.iter().map(|n| ino(n)).collect::<Vec<_>>(), "nothing written again");
    }

    #[test]
    fn a_layer_keeps_the_images_hosts_and_mtab_and_its_etc_attributes() {
        let d = tempfile::tempdir().unwrap();
        let trees = layers(d.path(), &["upper", "top", "base"]);
        std::fs::create_dir(&trees[0]).unwrap();
        std::fs::create_dir_all(trees[1].join("etc")).unwrap();
        std::fs::create_dir_all(trees[2].join("etc")).unwrap();
        std::fs::set_permissions(trees[1].join("etc"), std::fs::Permissions::from_mode(0o750)).unwrap();
        std::fs::write(trees[2].join("etc/hosts"), "10.0.0.1 mine").unwrap();
        std::os::unix::fs::symlink("../proc/mounts", trees[2].join("etc/mtab")).unwrap();
        let mut m = skiff_pods::test_util::test_manifest();
        let (attrs, files) = layer_of(&m, &NetState::default(), &trees).unwrap();
        assert_eq!(attrs.mode, 0o750, "the topmost /etc's");
        assert_eq!(names(&files), ["hostname"], "the image's hosts and mtab stay");
        m.hosts_entries = vec![("192.0.2.9".into(), "db".into())];
        let (_, files) = layer_of(&m, &NetState::default(), &trees).unwrap();
        assert_eq!(files[1], ("hosts", Entry::File("10.0.0.1 mine\n192.0.2.9\tdb\n".into())));
    }

    #[test]
    fn whiteouts_and_opaque_directories_hide_what_is_below() {
        let d = tempfile::tempdir().unwrap();
        let trees = layers(d.path(), &["upper", "top", "base"]);
        for t in &trees {
            std::fs::create_dir_all(t.join("etc")).unwrap();
        }
        std::fs::write(trees[2].join("etc/hosts"), "10.0.0.1 mine\n").unwrap();
        std::fs::write(trees[2].join("etc/mtab"), "").unwrap();
        whiteout(&trees[1].join("etc/hosts"));
        let m = skiff_pods::test_util::test_manifest();
        let (_, files) = layer_of(&m, &NetState::default(), &trees).unwrap();
        assert_eq!(names(&files), ["hostname", "hosts"], "hosts whited out, mtab kept");
        assert!(matches!(&files[1].1, Entry::File(t) if t.starts_with("127.0.0.1\tlocalhost")));
        // An opaque /etc in the upper directory hides all of the image's.
        rustix::fs::setxattr(trees[0].join("etc"), "trusted.overlay.opaque", b"y", rustix::fs::XattrFlags::empty())
            .unwrap();
        let (_, files) = layer_of(&m, &NetState::default(), &trees).unwrap();
        assert_eq!(names(&files), ["hostname", "hosts", "mtab"]);
        // A whiteout of /etc itself: no /etc below it.
        let trees = layers(d.path(), &["upper2", "top"]);
        std::fs::create_dir(&trees[0]).unwrap();
        whiteout(&trees[0].join("etc"));
        let (_, files) = layer_of(&m, &NetState::default(), &trees).unwrap();
        assert_eq!(names(&files), ["hostname", "hosts", "mtab"]);
    }

    #[test]
    fn a_huge_image_hosts_file_is_refused_not_read_whole() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        let hosts = std::fs::File::create(d.path().join("etc/hosts")).unwrap();
        hosts.set_len(64 << 30).unwrap(); // sparse: 64 GiB of nothing
        let mut m = skiff_pods::test_util::test_manifest();
        m.hosts_entries = vec![("192.0.2.9".into(), "db".into())];
        let err = populate(d.path(), &m, &NetState::default()).unwrap_err().to_string();
        assert!(err.contains("/etc/hosts is larger than"), "{err}");
        // Without lines to add it is left alone, as is a huge hostname
        // replaced without being read.
        m.hosts_entries.clear();
        std::fs::File::create(d.path().join("etc/hostname")).unwrap().set_len(64 << 30).unwrap();
        populate(d.path(), &m, &NetState::default()).unwrap();
        assert_eq!(std::fs::read_to_string(d.path().join("etc/hostname")).unwrap(), format!("{}\n", m.hostname));
    }

    #[test]
    fn what_only_the_mounted_root_can_answer_gets_no_layer() {
        let d = tempfile::tempdir().unwrap();
        let m = skiff_pods::test_util::test_manifest();
        let net = NetState::default();
        // /etc a symlink (which would resolve in the pod's root), a hosts
        // link, a directory where a file goes, a redirect.
        let trees = layers(d.path(), &["a", "b"]);
        std::fs::create_dir_all(&trees[0]).unwrap();
        std::fs::create_dir_all(trees[1].join("etc")).unwrap();
        std::os::unix::fs::symlink("/usr/etc", trees[0].join("etc")).unwrap();
        assert!(layer_of(&m, &net, &trees).is_none(), "etc link");
        std::fs::remove_file(trees[0].join("etc")).unwrap();
        std::os::unix::fs::symlink("/outside/hosts", trees[1].join("etc/hosts")).unwrap();
        assert!(layer_of(&m, &net, &trees).is_none(), "hosts link");
        std::fs::remove_file(trees[1].join("etc/hosts")).unwrap();
        std::fs::create_dir(trees[1].join("etc/hostname")).unwrap();
        assert!(layer_of(&m, &net, &trees).is_none(), "hostname a directory");
        std::fs::remove_dir(trees[1].join("etc/hostname")).unwrap();
        std::fs::create_dir(trees[0].join("etc")).unwrap();
        rustix::fs::setxattr(trees[0].join("etc"), "trusted.overlay.redirect", b"/x", rustix::fs::XattrFlags::empty())
            .unwrap();
        assert!(layer_of(&m, &net, &trees).is_none(), "redirect");
        // A file /etc under a directory above it is hidden, not refused.
        let trees = layers(d.path(), &["c", "e"]);
        std::fs::create_dir_all(trees[0].join("etc")).unwrap();
        std::fs::create_dir_all(&trees[1]).unwrap();
        std::fs::write(trees[1].join("etc"), "").unwrap();
        assert!(layer_of(&m, &net, &trees).is_some());
    }
}
