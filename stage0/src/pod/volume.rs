//! `--volume`: parsing one, and deciding which mount of a pod volume gives
//! the new volume its owner and mode (docs/manifest.md `new_volume`).

use skiff_pods::manifest::{Mount, MountSource, NewVolume, Tmpfs};
use skiff_pods::App;

/// Parses `--volume SOURCE:TARGET[:OPTIONS]`: SOURCE is an absolute host
/// path (which must exist) or the name of a pod-private volume; OPTIONS is
/// a comma-separated list of `ro`, `rw`, for pod volumes `uid=N`,
/// `gid=N`, `mode=OCTAL` (rkt's options of an empty volume), and for host
/// paths `idmap` (seen through the pod's user namespace).
pub fn parse(spec: &str) -> Result<Mount, String> {
    let bad = |why: &str| format!("--volume {spec:?}: {why}");
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, target, options) = match parts.as_slice() {
        [s, t] => (*s, *t, None),
        [s, t, o] => (*s, *t, Some(*o)),
        _ => return Err(bad("expected SOURCE:TARGET[:OPTIONS]")),
    };
    if !target.starts_with('/') || target.split('/').any(|c| c == "..") {
        return Err(bad("the target must be an absolute path without '..'"));
    }
    let source = if src.starts_with('/') {
        std::fs::metadata(src).map_err(|e| bad(&format!("source {src}: {e}")))?;
        MountSource::Host(src.into())
    } else if valid_volume_name(src) {
        MountSource::Volume(src.to_string())
    } else {
        return Err(bad("the source must be an absolute host path or a volume name ([A-Za-z0-9_.-])"));
    };
    let mut read_only = false;
    let mut idmap = false;
    let mut sub_path = None;
    let mut owner = NewVolume::default();
    for opt in options.into_iter().flat_map(|o| o.split(',')) {
        match opt.split_once('=') {
            None if opt == "ro" => read_only = true,
            None if opt == "rw" => read_only = false,
            None if opt == "tmpfs" => {
                if matches!(source, MountSource::Host(_)) {
                    return Err(bad("tmpfs applies to pod volumes, not to host paths"));
                }
                owner.tmpfs.get_or_insert_with(Tmpfs::default);
            }
            Some(("subpath", value)) => {
                let rel = std::path::Path::new(value);
                if matches!(source, MountSource::Host(_)) {
                    return Err(bad("subpath= applies to pod volumes (give a host path itself)"));
                }
                if value.is_empty() || rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
                    return Err(bad(&format!("subpath={value:?}: a relative path inside the volume")));
                }
                sub_path = Some(value.to_string());
            }
            Some(("size", value)) => {
                if matches!(source, MountSource::Host(_)) {
                    return Err(bad("size= applies to tmpfs pod volumes"));
                }
                let size = super::resources::parse_size(value, "size=").map_err(|e| bad(&e))?;
                owner.tmpfs = Some(Tmpfs { size: Some(size) });
            }
            None if opt == "idmap" => {
                if matches!(source, MountSource::Volume(_)) {
                    return Err(bad("idmap applies to host paths, not to pod volumes"));
                }
                idmap = true;
            }
            Some((key @ ("uid" | "gid" | "mode"), value)) => {
                if matches!(source, MountSource::Host(_)) {
                    return Err(bad(&format!("{key}= applies to pod volumes, not to host paths")));
                }
                let (slot, parsed) = match key {
                    "uid" => (&mut owner.uid, value.parse::<u32>().ok()),
                    "gid" => (&mut owner.gid, value.parse::<u32>().ok()),
                    _ => (&mut owner.mode, u32::from_str_radix(value, 8).ok().filter(|m| *m <= 0o7777)),
                };
                let what = if key == "mode" { "an octal mode up to 7777" } else { "a number" };
                *slot = Some(parsed.ok_or_else(|| bad(&format!("{key}={value:?}: expected {what}")))?);
            }
            _ => {
                return Err(bad(&format!(
                    "unknown option {opt:?} (expected ro, rw, idmap, tmpfs, size=SIZE, subpath=PATH, uid=N, gid=N or mode=OCTAL)"
                )))
            }
        }
    }
    let new_volume = (owner != NewVolume::default()).then_some(owner);
    Ok(Mount { source, target: target.to_string(), read_only, idmap, sub_path, new_volume })
}

pub(crate) fn valid_volume_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Gives each pod volume's owner and mode to its first mount (in app
/// order), where the flavor sets them before mounting it: what any of its
/// mounts asked for explicitly, the rest from the image at that target.
/// Two mounts asking for different values of one field are refused.
pub fn assign_new_volumes(apps: &mut [App]) -> Result<(), String> {
    let mut seen: Vec<(String, NewVolume)> = Vec::new();
    for mount in apps.iter().flat_map(|a| &a.mounts) {
        let MountSource::Volume(name) = &mount.source else { continue };
        let asked = mount.new_volume.unwrap_or_default();
        match seen.iter_mut().find(|(n, _)| n == name) {
            None => seen.push((name.clone(), asked)),
            Some((_, merged)) => {
                let fields = [
                    ("uid", &mut merged.uid, asked.uid, false),
                    ("gid", &mut merged.gid, asked.gid, false),
                    ("mode", &mut merged.mode, asked.mode, true),
                ];
                match (merged.tmpfs, asked.tmpfs) {
                    (Some(a), Some(b)) if a != b => {
                        return Err(format!("volume {name} is given two tmpfs sizes: give it once"));
                    }
                    (None, Some(b)) => merged.tmpfs = Some(b),
                    _ => {}
                }
                for (key, have, want, octal) in fields {
                    match (*have, want) {
                        (Some(a), Some(b)) if a != b => {
                            let show = |v: u32| if octal { format!("{v:o}") } else { v.to_string() };
                            return Err(format!(
                                "volume {name} is given {key}={} and {key}={}: give it once",
                                show(a),
                                show(b)
                            ));
                        }
                        (None, Some(b)) => *have = Some(b),
                        _ => {}
                    }
                }
            }
        }
    }
    for app in apps.iter_mut() {
        for mount in &mut app.mounts {
            mount.new_volume = None;
            let MountSource::Volume(name) = &mount.source else { continue };
            if let Some(i) = seen.iter().position(|(n, _)| n == name) {
                mount.new_volume = Some(seen.remove(i).1);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes() {
        let v = parse("/tmp:/data:ro").unwrap();
        assert_eq!((v.source, v.target.as_str(), v.read_only), (MountSource::Host("/tmp".into()), "/data", true));
        assert_eq!(parse("cache:/var/cache").unwrap().source, MountSource::Volume("cache".into()));
        assert!(parse("/tmp:/t:idmap,ro").unwrap().idmap);
        assert!(!parse("/tmp:/t").unwrap().idmap);
        assert!(parse("v:/t:idmap").unwrap_err().contains("idmap applies to host paths"));
        let t = parse("v:/t:tmpfs,size=64M").unwrap().new_volume.and_then(|v| v.tmpfs);
        assert_eq!(t, Some(Tmpfs { size: Some(64 << 20) }));
        assert_eq!(parse("v:/t:tmpfs").unwrap().new_volume.and_then(|v| v.tmpfs), Some(Tmpfs::default()));
        assert!(parse("/tmp:/t:tmpfs").unwrap_err().contains("tmpfs applies to pod volumes"));
        assert!(parse("/tmp:/t:size=1M").unwrap_err().contains("size= applies"));
        assert!(parse("v:/t:size=lots").is_err());
        assert_eq!(parse("v:/t:subpath=a/b,ro").unwrap().sub_path.as_deref(), Some("a/b"));
        for bad in ["v:/t:subpath=../x", "v:/t:subpath=/abs", "v:/t:subpath=", "/tmp:/t:subpath=x"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let v = parse("pg:/var/lib/pg:uid=999,gid=998,mode=0700,ro").unwrap();
        assert_eq!(v.new_volume, Some(NewVolume { uid: Some(999), gid: Some(998), mode: Some(0o700), tmpfs: None }));
        assert!(v.read_only);
        assert_eq!(parse("pg:/x:mode=1777").unwrap().new_volume.and_then(|n| n.mode), Some(0o1777));
        assert_eq!(parse("pg:/x:rw").unwrap().new_volume, None);
        for bad in [
            "/tmp",
            "/tmp:data",
            "/tmp:/a/../b",
            "/nonexistent-skiff:/x",
            "../x:/y",
            "a/b:/y",
            "/tmp:/x:maybe",
            ":/x",
            "/tmp:/x:uid=0",
            "v:/x:uid=root",
            "v:/x:uid=-1",
            "v:/x:gid=4294967296",
            "v:/x:mode=0800",
            "v:/x:mode=17777",
            "v:/x:mode=",
            "v:/x:owner=1",
            "v:/x:ro:rw",
            "v:/x:ro,,uid=1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    fn app(mounts: &[&str]) -> App {
        let mut a = skiff_pods::test_util::test_app("a");
        a.mounts = mounts.iter().map(|s| parse(s).unwrap()).collect();
        a
    }

    #[test]
    fn the_first_mount_of_each_volume_makes_it() {
        let mut apps =
            vec![app(&["/tmp:/t", "a:/a", "b:/b:mode=0700"]), app(&["b:/c:uid=5", "a:/d:gid=7", "c:/e", "/tmp:/u"])];
        assign_new_volumes(&mut apps).unwrap();
        let got: Vec<Vec<Option<NewVolume>>> =
            apps.iter().map(|a| a.mounts.iter().map(|m| m.new_volume).collect()).collect();
        let nv = |uid, gid, mode| Some(NewVolume { uid, gid, mode, tmpfs: None });
        assert_eq!(
            got,
            vec![
                vec![None, nv(None, Some(7), None), nv(Some(5), None, Some(0o700))],
                vec![None, None, nv(None, None, None), None],
            ]
        );
        let mut clash = vec![app(&["a:/a:uid=1"]), app(&["a:/b:uid=2"])];
        let e = assign_new_volumes(&mut clash).unwrap_err();
        assert!(e.contains("volume a is given uid=1 and uid=2"), "{e}");
        let mut same = vec![app(&["a:/a:mode=0750"]), app(&["a:/b:mode=750"])];
        assert!(assign_new_volumes(&mut same).is_ok());
    }
}
