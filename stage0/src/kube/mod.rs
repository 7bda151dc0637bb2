//! Kubernetes YAML (docs/kube.md): `skiff play kube` reads Pods, the pod
//! templates of Deployments and Jobs, and the ConfigMaps and Secrets they
//! use ([`documents`]), says which fields it does not honour
//! ([`fields`]), and turns the pod into the pod manifest file type that
//! `--pod-manifest` reads ([`to_spec`]), so everything after that is the
//! path of every other pod. `skiff generate kube` writes a pod back out
//! ([`generate`]).

pub mod documents;
pub mod fields;
pub mod generate;
pub mod quantity;
pub mod to_spec;
