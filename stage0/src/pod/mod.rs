//! Pods as stage0 handles them: preparing them on disk, handing them to a
//! stage1 flavor, and removing them again.

pub mod dns;
pub mod flavor;
pub mod gc;
pub mod handoff;
pub mod named_volume;
pub mod network;
pub mod plan;
pub mod prepare;
pub mod resources;
pub mod security;
pub mod unmount;
pub mod userns;
pub mod volume;
