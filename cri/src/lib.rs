//! skiff-cri: the Kubernetes Container Runtime Interface (CRI v1,
//! `runtime.v1`) over a unix socket, for a kubelet's
//! `--container-runtime-endpoint`; `skiff cri` runs it. A front only: every
//! change goes through the `skiff` CLI, so no pod depends on this process,
//! and a restarted server finds every sandbox and container in the store
//! (docs/cri.md).

pub mod convert;
pub mod error;
pub mod heal;
pub mod images;
pub mod pods;
pub mod records;
pub mod runtime;
pub mod serve;
pub mod skiff;
