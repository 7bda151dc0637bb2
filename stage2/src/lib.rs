//! stage2: the app side of a pod.
//!
//! [`init`] is the pod's PID 1 (reaps every zombie, forwards signals to the
//! app, reports each app's exit to the stage1 flavor); [`app`] turns one
//! resolved app spec into an `execve`. Both run inside the pod, after the
//! flavor has built the root filesystem, and hold no host file descriptors.

pub mod app;
pub mod app_root;
pub mod etc;
pub mod handover;
pub mod identity;
pub mod init;
pub mod report;
pub mod seccomp;
pub mod terminal;

/// A minimal app spec for unit tests.
#[cfg(test)]
pub(crate) fn test_app(name: &str) -> skiff_pods::App {
    skiff_pods::App {
        name: name.into(),
        image: skiff_pods::manifest::ImageRef { name: "i".into(), id: "sha256:0".into() },
        rootfs: skiff_pods::manifest::Rootfs { layers_dir: "/".into(), layers: vec![] },
        exec: vec!["/bin/sh".into()],
        env: vec![],
        working_dir: "/".into(),
        user: "0".into(),
        group: None,
        isolation: Default::default(),
        mounts: Vec::new(),
        resources: Default::default(),
        oom_score_adj: None,
    }
}

/// A minimal pod of one app for unit tests.
#[cfg(test)]
pub(crate) fn test_manifest() -> skiff_pods::PodManifest {
    skiff_pods::PodManifest {
        version: skiff_pods::manifest::MANIFEST_VERSION,
        uuid: "00000000-0000-4000-8000-000000000000".into(),
        created_at: String::new(),
        flavor: "ns".into(),
        name: None,
        hostname: "pod".into(),
        masked_paths: true,
        resolv_conf: None,
        exit_policy: Default::default(),
        stop_timeout_ms: skiff_pods::manifest::DEFAULT_STOP_TIMEOUT_MS,
        log: Default::default(),
        net: Default::default(),
        networks: Vec::new(),
        ports: Vec::new(),
        cni_path: vec![skiff_pods::manifest::DEFAULT_CNI_PLUGIN_DIR.into()],
        dns_from_network: false,
        hosts_entries: Vec::new(),
        apps: vec![test_app("a")],
    }
}
