//! The table of pod names (`--name`): `pods/names/<name>` is a symlink
//! whose target is the UUID of the pod that has the name (a
//! [`LinkTable`]). Changes to it are serialised by a lock on
//! `pods/names.lock`. Who may take a name is
//! decided in [`crate::name_claims`], which knows pods; this module knows
//! only the links, so that finding a pod by name needs nothing above it.

use crate::layout::Store;
use crate::link_table::LinkTable;
use crate::state::PodState;

#[derive(Debug, thiserror::Error)]
pub enum NameError {
    #[error(
        "invalid pod name {0:?}: use letters, digits, '_', '.' and '-' (at most 64), starting with a letter or digit"
    )]
    Invalid(String),
    #[error("pod name {name} is taken by pod {uuid}, which is {state}")]
    Taken { name: String, uuid: String, state: PodState },
    #[error("cannot record pod name {name}: {err}")]
    Io { name: String, err: std::io::Error },
}

pub fn check(name: &str) -> Result<(), NameError> {
    let ok = name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(NameError::Invalid(name.to_string()))
    }
}

pub(crate) fn table(store: &Store) -> LinkTable {
    LinkTable::new(store, "names")
}

/// The UUID the name points to, if it is a valid name that has a link.
pub fn lookup(store: &Store, name: &str) -> Option<String> {
    check(name).ok()?;
    table(store).lookup(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path());
        for bad in ["", "-x", "a/b", "..", ".hidden", &"x".repeat(65), "a b"] {
            assert!(matches!(check(bad), Err(NameError::Invalid(_))), "{bad}");
            assert_eq!(lookup(&store, bad), None);
        }
        assert!(check("web-1.a_b").is_ok());
    }
}
