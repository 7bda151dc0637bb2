//! The pod manifest people write: a TOML file given to `skiff run
//! --pod-manifest` / `skiff prepare --pod-manifest` (docs/pod-manifest.md).
//!
//! It says what the command line says, in the same words and with the same
//! value syntax (sizes like `256M`, volumes like `name:/target:ro`), so stage0
//! checks both through one path and resolves them into the [`PodManifest`]
//! that stages exchange.
//!
//! [`PodManifest`]: skiff_pods::PodManifest

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use skiff_pods::manifest::ExitPolicy;

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PodSpec {
    /// The pod's name, as `--name`.
    pub name: Option<String>,
    /// Kept with the pod and shown by `status` (Kubernetes' labels).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Kept with the pod and shown by `status` (Kubernetes' annotations).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The stage1 flavor: a name or an absolute path.
    pub stage1: Option<String>,
    pub hostname: Option<String>,
    /// `host`, `none` or `NAME[:ARGS][,NAME…]`, as `--net`.
    pub net: Option<String>,
    /// `[HOST_IP:]HOST_PORT:POD_PORT[/PROTO]`, as `--port`.
    #[serde(default)]
    pub ports: Vec<String>,
    /// `IP=NAME` lines, as `--hosts-entry`.
    #[serde(default)]
    pub hosts_entries: Vec<String>,
    pub exit_policy: Option<ExitPolicy>,
    /// `never`, `on-failure` or `always`, as `--restart-policy`.
    pub restart_policy: Option<String>,
    /// As `--stop-timeout`, e.g. `30s`.
    pub stop_timeout: Option<String>,
    /// `file` or `none`, as `--log-driver`.
    pub log_driver: Option<String>,
    /// As `--log-max-size`, e.g. `1M`.
    pub log_max_size: Option<String>,
    pub log_max_files: Option<u32>,
    /// `new`, `update` or `never`.
    pub pull_policy: Option<String>,
    /// `seccomp`, `paths`.
    #[serde(default)]
    pub insecure_options: Vec<String>,
    #[serde(default)]
    pub inherit_env: bool,
    /// `auto`, `no` or `BASE:COUNT`, as `--private-users`.
    pub private_users: Option<String>,
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub dns_search: Vec<String>,
    #[serde(default)]
    pub dns_opt: Vec<String>,
    /// `[[app]]` tables, in start order.
    #[serde(default, rename = "app")]
    pub apps: Vec<AppSpec>,
    /// What pod volumes start with; made by `play kube` (configMap and
    /// secret volumes), not read from TOML.
    #[serde(skip)]
    pub volume_files: Vec<crate::pod::prepare::VolumeFiles>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AppSpec {
    pub image: String,
    pub name: Option<String>,
    /// Program instead of the image's entrypoint and cmd.
    pub exec: Option<String>,
    /// Arguments (of `exec`, or replacing the image's cmd).
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub env_files: Vec<PathBuf>,
    pub working_dir: Option<String>,
    /// `USER[:GROUP]`, names or numbers.
    pub user: Option<String>,
    pub group: Option<String>,
    /// `SOURCE:TARGET[:ro|:rw]`, as `--volume`.
    #[serde(default)]
    pub volumes: Vec<String>,
    pub memory: Option<String>,
    /// As `--memory-reservation`.
    pub memory_reservation: Option<String>,
    pub cpu: Option<String>,
    pub cpu_shares: Option<u64>,
    pub pids_limit: Option<u64>,
    pub oom_score_adj: Option<i32>,
    pub caps_retain: Option<Vec<String>>,
    pub caps_remove: Option<Vec<String>>,
    /// `mode=remove|retain[,errno=NAME],SYSCALL,…`, as `--seccomp`.
    pub seccomp: Option<String>,
    pub no_new_privileges: Option<bool>,
    #[serde(default)]
    pub readonly_rootfs: bool,
    /// As `--group-add`.
    #[serde(default)]
    pub groups_add: Vec<String>,
    /// As `--init`: runs to its end before the pod's other apps start.
    #[serde(default)]
    pub init: bool,
}

/// A pod manifest that cannot be read, with the place that is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct SpecError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Reads any TOML file skiff takes (pod manifests, the config file), with
/// errors that point at the place.
pub fn from_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, SpecError> {
    toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map_or((1, 1), |s| line_column(text, s.start));
        SpecError { line, column, message: e.message().trim_end().replace('\n', " ") }
    })
}

impl PodSpec {
    pub fn from_toml(text: &str) -> Result<PodSpec, SpecError> {
        let spec: PodSpec = from_toml(text)?;
        if spec.apps.is_empty() {
            return Err(SpecError { line: 1, column: 1, message: "the pod has no [[app]]".into() });
        }
        Ok(spec)
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    (line, String::from_utf8_lossy(&before[line_start..]).chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
hostname = "web"
exit-policy = "any"
dns = ["10.0.0.1"]

[[app]]
name = "server"
image = "oci:/srv/busybox:latest"
exec = "/bin/httpd"
args = ["-f", "-p", "8080"]
env = { GREETING = "hi" }
volumes = ["shared:/data", "/srv:/srv:ro"]
memory = "64M"
pids-limit = 100

[[app]]
image = "oci:/srv/busybox:latest"
name = "job"
caps-remove = ["NET_RAW"]
"#;

    #[test]
    fn reads_a_pod() {
        let s = PodSpec::from_toml(SAMPLE).unwrap();
        assert_eq!(s.hostname.as_deref(), Some("web"));
        assert_eq!(s.exit_policy, Some(ExitPolicy::Any));
        assert_eq!(s.apps.len(), 2);
        assert_eq!(s.apps[0].args.as_deref(), Some(&["-f".to_string(), "-p".into(), "8080".into()][..]));
        assert_eq!(s.apps[0].env["GREETING"], "hi");
        assert_eq!(s.apps[0].pids_limit, Some(100));
        assert_eq!(s.apps[1].caps_remove.as_deref(), Some(&["NET_RAW".to_string()][..]));
    }

    #[test]
    fn unknown_keys_name_the_key_and_the_line() {
        let e = PodSpec::from_toml("hostname = \"a\"\n\n[[app]]\nimage = \"x\"\nmemroy = \"1G\"\n").unwrap_err();
        assert_eq!((e.line, e.column), (5, 1));
        assert!(e.message.contains("memroy"), "{e}");
        let e = PodSpec::from_toml("bogus = 1\n[[app]]\nimage = \"x\"\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.to_string().starts_with("1:1: ") && e.message.contains("bogus"), "{e}");
    }

    #[test]
    fn hostile_and_broken_input_is_an_error() {
        for bad in [
            "",
            "[[app]]\n",
            "[[app]]\nimage = 3\n",
            "exit-policy = \"sometimes\"\n[[app]]\nimage = \"x\"\n",
            "[[app]]\nimage = \"x\"\npids-limit = -1\n",
            "[[app]\nimage = \"x\"\n",
            "[[app]]\nimage = \"x\"\nimage = \"y\"\n",
            "\u{0}",
            "[[app]]\nimage = \"x\"\nenv = { A = 1 }\n",
        ] {
            assert!(PodSpec::from_toml(bad).is_err(), "{bad:?}");
        }
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("é\nx", 100), (2, 2));
    }
}
