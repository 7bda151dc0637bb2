//! Minimal pods for the unit tests of the crates that use these types
//! (feature `test-util`, enabled by their dev-dependencies only).

/// A minimal app spec for unit tests.
pub fn test_app(name: &str) -> crate::App {
    crate::App {
        name: name.into(),
        image: crate::manifest::ImageRef { name: "i".into(), id: "sha256:0".into() },
        rootfs: crate::manifest::Rootfs { layers_dir: "/".into(), layers: vec![] },
        exec: vec!["/bin/sh".into()],
        env: vec![],
        working_dir: "/".into(),
        user: "0".into(),
        group: None,
        groups_add: Vec::new(),
        isolation: Default::default(),
        mounts: Vec::new(),
        resources: Default::default(),
        oom_score_adj: None,
        init: false,
        restart: Default::default(),
        log_path: None,
    }
}

/// A minimal pod of one app for unit tests.
pub fn test_manifest() -> crate::PodManifest {
    crate::PodManifest {
        version: crate::manifest::MANIFEST_VERSION,
        uuid: "00000000-0000-4000-8000-000000000000".into(),
        created_at: String::new(),
        flavor: "ns".into(),
        name: None,
        hostname: "pod".into(),
        masked_paths: true,
        resolv_conf: None,
        exit_policy: Default::default(),
        stop_timeout_ms: crate::manifest::DEFAULT_STOP_TIMEOUT_MS,
        log: Default::default(),
        net: Default::default(),
        networks: Vec::new(),
        ports: Vec::new(),
        cni_path: vec![crate::manifest::DEFAULT_CNI_PLUGIN_DIR.into()],
        dns_from_network: false,
        hosts_entries: Vec::new(),
        labels: Default::default(),
        annotations: Default::default(),
        user_namespace: None,
        sandbox: false,
        cgroup_parent: None,
        apps: vec![test_app("a")],
    }
}
