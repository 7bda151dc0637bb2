//! stage0: the `skiff` command. Fetches and verifies images into the store,
//! prepares pods on disk, and hands each pod to its stage1 flavor by `exec`.

pub mod cli;
pub mod config;
pub mod image;
pub mod kube;
pub mod log;
pub mod output;
pub mod pod;
pub mod spec;
