//! The pod's network, for flavors that give it a namespace of its own:
//! [`pod_network`] attaches it (and detaches it at the end, or for gc);
//! it pins the namespace in the pod directory ([`pinned_namespace`]), runs
//! the CNI plugins ([`cni_client`]), and brings `lo` up ([`loopback`]).

pub mod cni_client;
pub mod loopback;
pub mod pinned_namespace;
pub mod pod_network;

pub use pod_network::{attach, detach_leftover, Home, PodNetwork};
