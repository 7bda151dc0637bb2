//! Helpers for skiff's end-to-end tests: image fixtures built here from the
//! host's busybox-static (no network), raw (possibly hostile) tar layers,
//! and a private store directory per test that is cleaned even on failure.

pub mod cosign;
pub mod cri;
pub mod fixture;
pub mod flaky_registry;
pub mod oci;
pub mod pty;
pub mod rawtar;
pub mod registry;
pub mod skiff;

pub use fixture::busybox_image;
pub use skiff::Skiff;

/// A command's stderr, as text (for assertions and their messages).
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
