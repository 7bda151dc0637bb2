//! What every skiff stage1 flavor shares (docs/stage1-abi.md): parsing the
//! entrypoints stage0 invokes, taking over the pod lock, reading the pod's
//! manifest and pid, and building an app's overlay root and volumes.
//! A flavor is a small `main` around [`entry::main`].

pub mod apifs;
pub mod dev;
pub mod enter;
pub mod entry;
pub mod escalation;
pub mod etc_layer;
pub mod fds;
pub mod logs;
pub mod network;
pub mod notify;
pub mod overlay;
pub mod recorder;
pub mod supervise;
pub mod userns;
pub mod volumes;
