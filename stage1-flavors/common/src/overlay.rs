//! An app's root filesystem as an overlay of its image's layer trees
//! (lower, read-only, shared) and the pod's `apps/<name>/upper`.

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use skiff_pods::{App, PodManifest};
use skiff_rt::error::{Context, Error, Result};

use crate::userns::PodUserns;

/// overlayfs takes its options in one page; longer lists fail at mount.
const MOUNT_DATA_MAX: usize = 4095;

/// overlayfs's `volatile` (Linux 5.10): no sync of the upper filesystem,
/// neither the apps' fsyncs nor the whole-filesystem sync at unmount, which
/// was a millisecond of every pod's exit here (ext4 without a journal writes
/// out all its dirty metadata). This is overlayfs's option for containers
/// whose upper layer is thrown away after a host crash, which skiff's are:
/// a pod's root is mounted exactly once, and a pod that a crash ended is
/// garbage. (Data that must survive belongs in volumes, which are bind
/// mounts and keep their fsyncs.) After a crash overlayfs refuses to mount
/// that upper again, which nothing does.
const VOLATILE: &str = ",volatile";

/// Computed before `fork`, so the child only makes syscalls.
pub struct Overlay {
    app: String,
    layers_dir: PathBuf,
    /// The image's layers, relative to `layers_dir`, topmost first.
    lowers: Vec<String>,
    /// `apps/<name>` of the pod directory (its `upper` and `work`).
    app_dir: PathBuf,
    data: String,
}

impl Overlay {
    pub fn for_app(manifest: &PodManifest, app: &App, pod_dir: &Path) -> Result<Overlay> {
        let app_dir = pod_dir.join("apps").join(&app.name);
        let data = options(&app.rootfs.layers, &app_dir).map_err(|e| match e {
            OptionsError::NoLayers => format!("app {}: the image has no layers", app.name),
            OptionsError::Layer(l) => format!("pod {}: invalid layer name {l:?} in the manifest", manifest.uuid),
            OptionsError::TooLong => format!(
                "app {}: cannot build the overlay mount options ({} layers; pod directory {})",
                app.name,
                app.rootfs.layers.len(),
                pod_dir.display()
            ),
        })?;
        let lowers = app.rootfs.layers.iter().rev().cloned().collect();
        Ok(Overlay { app: app.name.clone(), layers_dir: app.rootfs.layers_dir.clone(), lowers, app_dir, data })
    }

    /// The app's layer trees as skiff_stage2::etc::layer reads them: its
    /// upper directory, then the image's layers, topmost first.
    pub fn layer_dirs(&self) -> Vec<(PathBuf, bool)> {
        let lowers = self.lowers.iter().map(|l| (self.layers_dir.join(l), false));
        std::iter::once((self.app_dir.join("upper"), true)).chain(lowers).collect()
    }

    /// Mounts the app's root on `target`, with `top` (an absolute path) as
    /// the topmost lower layer if given and it fits the options; changes the
    /// working directory. Whether `top` is in it.
    pub fn mount(&self, target: &Path, top: Option<&Path>) -> Result<bool> {
        self.mount_via(target, &self.layers_dir, top)
    }

    /// [`Overlay::mount`] for a pod of its own user namespace `userns`
    /// (docs/user-namespaces.md): the layer store seen through it, an
    /// idmapped mount at `scratch/<app>` only while the overlay is made
    /// (the overlay keeps its own references to its layers), and the upper
    /// directory given to the pod's root, so what the pod writes has the
    /// range's ids. Needs the host's root.
    pub fn mount_idmapped(&self, target: &Path, scratch: &Path, userns: PodUserns, top: Option<&Path>) -> Result<bool> {
        let upper = self.app_dir.join("upper");
        std::os::unix::fs::chown(&upper, Some(userns.ids.host_uid(0)), Some(userns.ids.host_gid(0)))
            .with_context(|| format!("cannot give {} to the pod's root", upper.display()))?;
        let layers = scratch.join(&self.app);
        std::fs::create_dir_all(&layers).with_context(|| format!("cannot create {}", layers.display()))?;
        crate::userns::idmapped_bind(&self.layers_dir, &layers, userns.fd)?;
        let mounted = self.mount_via(target, &layers, top);
        nix::mount::umount2(&layers, nix::mount::MntFlags::MNT_DETACH)
            .context("cannot detach the idmapped layer store")?;
        mounted
    }

    fn mount_via(&self, target: &Path, layers_dir: &Path, top: Option<&Path>) -> Result<bool> {
        std::env::set_current_dir(layers_dir)
            .with_context(|| format!("cannot enter the layer store {}", layers_dir.display()))?;
        let with_top = top.and_then(|t| with_top_layer(&self.data, t));
        let data = with_top.as_deref().unwrap_or(&self.data);
        let overlay = |data: &str| mount(Some("overlay"), target, Some("overlay"), MsFlags::empty(), Some(data));
        overlay(data)
            .or_else(|e| match e {
                // A kernel before 5.10 does not know the option; the error
                // is its first one if the retry fails as well.
                nix::errno::Errno::EINVAL => overlay(without_volatile(data)).map_err(|_| e),
                e => Err(e),
            })
            .with_context(|| {
                format!("cannot mount the root filesystem of app {} (overlay on {})", self.app, target.display())
            })?;
        Ok(with_top.is_some())
    }
}

fn without_volatile(data: &str) -> &str {
    data.strip_suffix(VOLATILE).unwrap_or(data)
}

/// `data` (see [`options`]) with `top` as its topmost lower layer; None if
/// the path cannot be one (a `:` or `,` in it) or the options would no
/// longer fit in a page.
fn with_top_layer(data: &str, top: &Path) -> Option<String> {
    let top = top.to_str().filter(|t| t.starts_with('/') && !t.contains([':', ',']))?;
    let rest = data.strip_prefix("lowerdir=")?;
    let data = format!("lowerdir={top}:{rest}");
    (data.len() <= MOUNT_DATA_MAX).then_some(data)
}

/// An app's root as a detached overlay mount (the new mount API), made
/// where the store is in sight and attached later with `move_mount`
/// inside the pod's mount namespace (an app added to a running sandbox).
/// Layers are given one by one (`lowerdir+`, Linux 6.8): each option is
/// one path, so no list outgrows a page.
pub fn detached(app: &App, pod_dir: &Path) -> Result<std::os::fd::OwnedFd> {
    use rustix::mount::{fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen};
    use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};
    let what = || format!("cannot build the root filesystem of app {}", app.name);
    if app.rootfs.layers.is_empty() {
        return Err(Error::refused(format!("app {}: the image has no layers", app.name)));
    }
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).with_context(what)?;
    for layer in app.rootfs.layers.iter().rev() {
        if layer.starts_with('/') || layer.split('/').any(|c| c == "..") {
            return Err(Error::refused(format!("app {}: invalid layer name {layer:?}", app.name)));
        }
        fsconfig_set_string(&fs, "lowerdir+", app.rootfs.layers_dir.join(layer)).with_context(what)?;
    }
    let app_dir = pod_dir.join("apps").join(&app.name);
    fsconfig_set_string(&fs, "upperdir", app_dir.join("upper")).with_context(what)?;
    fsconfig_set_string(&fs, "workdir", app_dir.join("work")).with_context(what)?;
    fsconfig_set_flag(&fs, "volatile").with_context(what)?;
    fsconfig_create(&fs).with_context(what)?;
    fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty()).with_context(what)
}

/// Lets the app directory `app_dir` be mounted again as a [`detached`]
/// root once its last mount is gone. A volatile overlay marks its work
/// directory (`work/incompat/volatile`) and the kernel refuses a second
/// mount over it, since a crash may have lost writes that were never
/// synced. This host did not crash since, so the mark may go
/// (Documentation/filesystems/overlayfs.rst, "Volatile mount").
pub fn reuse_work(app_dir: &Path) {
    let _ = std::fs::remove_dir_all(app_dir.join("work").join("work").join("incompat"));
}

#[derive(Debug, PartialEq, Eq)]
enum OptionsError {
    NoLayers,
    Layer(String),
    TooLong,
}

/// The mount options of an app's overlay: `layers` (lowest first, relative
/// to the layer store), the app directory holding `upper` and `work`.
fn options(layers: &[String], app_dir: &Path) -> Result<String, OptionsError> {
    if layers.is_empty() {
        return Err(OptionsError::NoLayers);
    }
    // Layer paths are given relative to layers_dir (the mount runs with it
    // as cwd) so that long layer lists still fit in one page.
    let lower: Vec<&str> = layers.iter().rev().map(String::as_str).collect();
    if let Some(l) =
        lower.iter().find(|l| l.contains([':', ',']) || l.starts_with('/') || l.split('/').any(|c| c == ".."))
    {
        return Err(OptionsError::Layer(l.to_string()));
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}{VOLATILE}",
        lower.join(":"),
        app_dir.join("upper").display(),
        app_dir.join("work").display()
    );
    // A comma in the pod directory's path would split the options.
    if data.len() > MOUNT_DATA_MAX || data.matches(',').count() != 3 {
        return Err(OptionsError::TooLong);
    }
    Ok(data)
}

/// `rootfs/name` as a directory to mount on. The image controls the root,
/// so a symlink there (which would resolve against the host's root at this
/// point) is refused rather than followed.
pub fn mountpoint(rootfs: &Path, name: &str) -> Result<PathBuf> {
    let p = rootfs.join(name);
    match std::fs::symlink_metadata(&p) {
        Ok(md) if md.is_dir() => Ok(p),
        Ok(_) => Err(Error::refused(format!("the image's /{name} is not a directory"))),
        Err(_) => {
            std::fs::create_dir(&p).with_context(|| format!("cannot create /{name} in the pod"))?;
            Ok(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(names: &[&str]) -> Vec<String> {
        names.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn a_top_layer_goes_first_only_when_it_fits() {
        let data = options(&layers(&["sha256/base"]), Path::new("/p/apps/a")).unwrap();
        assert_eq!(
            with_top_layer(&data, Path::new("/p/stage1/.etc/a")).unwrap(),
            "lowerdir=/p/stage1/.etc/a:sha256/base,upperdir=/p/apps/a/upper,workdir=/p/apps/a/work,volatile"
        );
        assert_eq!(with_top_layer(&data, Path::new("/p:x/.etc/a")), None, "a ':' would split the list");
        assert_eq!(with_top_layer(&data, Path::new("/p,x/.etc/a")), None, "a ',' would split the options");
        assert_eq!(with_top_layer(&data, Path::new("relative")), None);
        let long = format!("/{}", "d".repeat(MOUNT_DATA_MAX));
        assert_eq!(with_top_layer(&data, Path::new(&long)), None, "past a page");
    }

    #[test]
    fn options_put_the_top_layer_first_and_are_volatile() {
        let data = options(&layers(&["sha256/base", "sha256/top"]), Path::new("/p/apps/a")).unwrap();
        assert_eq!(data, "lowerdir=sha256/top:sha256/base,upperdir=/p/apps/a/upper,workdir=/p/apps/a/work,volatile");
        assert_eq!(
            without_volatile(&data),
            "lowerdir=sha256/top:sha256/base,upperdir=/p/apps/a/upper,workdir=/p/apps/a/work"
        );
    }

    #[test]
    fn hostile_layer_names_long_lists_and_odd_pod_paths_are_refused() {
        let dir = Path::new("/p/apps/a");
        for bad in ["/abs", "a,b", "a:b", "..", "../up", "sha256/../../x"] {
            assert_eq!(options(&layers(&["sha256/ok", bad]), dir), Err(OptionsError::Layer(bad.into())));
        }
        assert_eq!(options(&[], dir), Err(OptionsError::NoLayers));
        let many: Vec<String> = (0..100).map(|i| format!("sha256/{i:064}")).collect();
        assert_eq!(options(&many, dir), Err(OptionsError::TooLong));
        assert_eq!(options(&layers(&["sha256/ok"]), Path::new("/p,x/apps/a")), Err(OptionsError::TooLong));
    }
}
