//! Image names: `images/names.json` maps each name to an image ID; many
//! names may point to one ID. Updated read-modify-write under
//! `images/.lock`, written atomically.

use std::collections::BTreeMap;
use std::fs::File;

use super::digest::Digest;
use super::{io_err, ImageError, ImageStore, Result};

const FILE: &str = "names.json";

pub type Names = BTreeMap<String, String>;

pub fn load(store: &ImageStore) -> Result<Names> {
    let p = store.images_dir().join(FILE);
    match std::fs::read(&p) {
        Ok(data) => {
            serde_json::from_slice(&data).map_err(|e| ImageError::Invalid(format!("{} is corrupt: {e}", p.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Names::new()),
        Err(e) => Err(io_err(format!("cannot read {}", p.display()))(e)),
    }
}

/// Runs `f` on the names with the lock held and saves the result.
pub fn update<T>(store: &ImageStore, f: impl FnOnce(&mut Names) -> T) -> Result<T> {
    let lock_path = store.images_dir().join(".lock");
    let lock = File::create(&lock_path).map_err(io_err(format!("cannot open {}", lock_path.display())))?;
    lock.lock().map_err(io_err("cannot lock the image names"))?;
    let mut names = load(store)?;
    let out = f(&mut names);
    let data = serde_json::to_vec_pretty(&names).map_err(|e| ImageError::Invalid(e.to_string()))?;
    skiff_pods::atomic::write_atomic(&store.images_dir(), FILE, &data)
        .map_err(io_err("cannot write the image names"))?;
    Ok(out)
}

/// Points `name` at `id` (moving it if it named another image).
pub fn set(store: &ImageStore, name: &str, id: &Digest) -> Result<()> {
    if load(store)?.get(name).map(String::as_str) == Some(id.to_string().as_str()) {
        return Ok(());
    }
    update(store, |n| {
        n.insert(name.to_string(), id.to_string());
    })
}

/// Every name of `id`, sorted.
pub fn names_of(names: &Names, id: &str) -> Vec<String> {
    names.iter().filter(|(_, v)| v.as_str() == id).map(|(k, _)| k.clone()).collect()
}

/// The forms a short name may be stored under, most specific first:
/// as given, with `:latest`, under `localhost/`, and Docker's normal form.
pub fn candidates(name: &str) -> Vec<String> {
    let tagged = |n: &str| {
        let last = n.rsplit('/').next().unwrap_or(n);
        if last.contains(':') || n.contains('@') {
            n.to_string()
        } else {
            format!("{n}:latest")
        }
    };
    let mut out = vec![name.to_string(), tagged(name), tagged(&format!("localhost/{name}"))];
    if let Ok(r) = super::reference::DockerRef::parse(name) {
        out.push(r.to_string());
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|n| seen.insert(n.clone()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_expand() {
        let c = candidates("mytool");
        assert_eq!(c[..3], ["mytool", "mytool:latest", "localhost/mytool:latest"]);
        assert!(c.contains(&"docker.io/library/mytool:latest".to_string()));
        let c = candidates("reg:5000/a/b:1");
        assert_eq!(c, ["reg:5000/a/b:1", "localhost/reg:5000/a/b:1"]);
    }
}
