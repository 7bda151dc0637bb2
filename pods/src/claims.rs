//! What a pod holds in the store's tables beyond its directory: its name
//! ([`crate::name_claims`]) and its user-namespace range
//! ([`crate::id_ranges`]). Released together when the pod is removed, and
//! swept together by gc (for pods whose removal was cut short).

use crate::layout::Store;
use crate::PodManifest;

/// Frees what pod `manifest.uuid` holds (it is being removed).
pub fn release(store: &Store, manifest: &PodManifest) {
    if let Some(name) = &manifest.name {
        crate::name_claims::release(store, name, &manifest.uuid);
    }
    if let Some(userns) = &manifest.user_namespace {
        crate::id_ranges::release(store, userns, &manifest.uuid);
    }
}

/// Frees what pods that are gone still hold.
pub fn sweep(store: &Store) {
    crate::name_claims::sweep(store);
    crate::id_ranges::sweep(store);
}
