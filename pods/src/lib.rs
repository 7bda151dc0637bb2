//! The on-disk pod store shared by every skiff stage.
//!
//! A pod's state is the directory it lives in plus whether its directory is
//! flock'ed (see `docs/pod-store.md`). There is no daemon: every transition is
//! an atomic `rename(2)` and "running" means "some process holds the lock".

pub mod abi;
pub mod app_api;
pub mod app_status;
pub mod atomic;
pub mod cgroup;
pub mod claims;
pub mod id_ranges;
pub mod layout;
mod link_table;
pub mod logfile;
pub mod manifest;
pub mod name_claims;
pub mod names;
pub mod netstate;
pub mod pod;
pub mod reserve;
pub mod small_file;
pub mod state;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;
pub mod time;
pub mod uuid;

pub use layout::Store;
pub use manifest::{App, PodManifest};
pub use pod::{Pod, PodError};
pub use state::{PodState, StateDir};
