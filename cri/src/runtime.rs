//! The CRI RuntimeService: sandboxes are `skiff run --sandbox` pods,
//! containers the apps added to them, each call one or a few `skiff`
//! commands (docs/cri.md has the table).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use k8s_cri::v1::runtime_service_server::RuntimeService;
use k8s_cri::v1::*;
use tonic::{Request, Response, Status};

use crate::convert;
use crate::error::{reply, CriError, Reply, Result};
use crate::pods::{nanos, now_nanos, selected, AppJson, PodJson};
use crate::records::{new_id, ContainerRecord, Records};
use crate::skiff::Skiff;

pub struct Runtime {
    pub skiff: Skiff,
    pub records: Records,
    /// `--stage1` for new sandboxes (else skiff's default).
    pub stage1: Option<String>,
}

/// How long a sandbox may take to become ready.
const READY_TIMEOUT: &str = "60s";

/// A failpoint (docs/reliability.md) as a call's error.
fn failpoint(name: &str) -> Result<()> {
    skiff_rt::failpoint!("{name}").map_err(|e| CriError::internal("failpoint", e))
}

fn unimplemented<T>(what: &str) -> Reply<T> {
    Err(CriError::Unimplemented(format!("{what} is not implemented by skiff yet")).into())
}

impl Runtime {
    /// The CRI sandbox `id` (a pod UUID or a unique prefix of one).
    async fn sandbox(&self, id: &str) -> Result<PodJson> {
        if id.is_empty() {
            return Err(CriError::InvalidArgument("no pod sandbox ID given".into()));
        }
        let pod: PodJson = self.skiff.json(&["status", "--format", "json", id]).await?;
        match pod.sandbox() {
            Some(_) => Ok(pod),
            None => Err(CriError::NotFound(format!("pod {id} is not a CRI pod sandbox"))),
        }
    }

    /// The sandbox, None if it is gone.
    async fn sandbox_if_any(&self, id: &str) -> Result<Option<PodJson>> {
        match self.sandbox(id).await {
            Ok(p) => Ok(Some(p)),
            Err(CriError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn apps(&self, sandbox: &str) -> Result<Vec<AppJson>> {
        self.skiff.json(&["app", "list", "--format", "json", sandbox]).await
    }

    async fn app(&self, r: &ContainerRecord) -> Result<Option<AppJson>> {
        Ok(self.apps(&r.sandbox_id).await?.into_iter().find(|a| a.name == r.app))
    }

    async fn run_sandbox(&self, req: RunPodSandboxRequest) -> Result<String> {
        let config = req.config.ok_or_else(|| CriError::InvalidArgument("config: missing".into()))?;
        let runs = self.skiff.cri_dir().join("runs");
        std::fs::create_dir_all(&runs)
            .map_err(|e| CriError::internal(&format!("cannot create {}", runs.display()), e))?;
        let tag = new_id()?;
        let uuid_file = runs.join(format!("{}.uuid", &tag[..16]));
        let log = runs.join(format!("{}.log", &tag[..16]));
        let mut args = convert::sandbox_args(&config, &req.runtime_handler, &uuid_file)?;
        if let Some(s) = &self.stage1 {
            args.splice(1..1, ["--stage1".to_string(), s.clone()]);
        }
        let stderr =
            std::fs::File::create(&log).map_err(|e| CriError::internal("cannot create the sandbox's log", e))?;
        // Its own process group, and not killed with this server: the pod's
        // supervisor is the `skiff run` started here.
        let mut child = self
            .skiff
            .command(&args)
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0)
            .kill_on_drop(false)
            .spawn()
            .map_err(|e| self.skiff.cannot_run(e))?;
        let wait =
            ["status", &format!("--wait-ready={READY_TIMEOUT}"), "--uuid-file", &uuid_file.display().to_string()]
                .map(String::from);
        let ready = tokio::select! {
            _ = child.wait() => Err(CriError::from_skiff(&std::fs::read_to_string(&log).unwrap_or_default())),
            r = self.skiff.run(&wait) => r.map(|_| ()),
        }
        .and_then(|()| failpoint("cri.sandbox.ready"));
        let uuid = std::fs::read_to_string(&uuid_file).ok().map(|u| u.trim().to_string());
        let _ = std::fs::remove_file(&uuid_file);
        if let Err(e) = ready {
            // Nothing half-made stays: the pod, if one was made, goes.
            if let Some(u) = &uuid {
                let _ = self.skiff.run(&["stop", "--force", u.as_str()]).await;
                let _ = self.skiff.run(&["rm", u.as_str()]).await;
            }
            let _ = child.kill().await;
            let _ = std::fs::remove_file(&log);
            return Err(e);
        }
        let uuid = uuid.ok_or_else(|| CriError::Internal("the sandbox started without writing its UUID".into()))?;
        let _ = std::fs::rename(&log, runs.join(format!("{uuid}.log")));
        // Reaped here while this server lives; init reaps it otherwise.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(uuid)
    }

    /// Stops the sandbox's pod (its apps get their stop timeout); done
    /// if it is not running or gone.
    async fn stop_sandbox(&self, id: &str) -> Result<()> {
        match self.sandbox_if_any(id).await? {
            Some(p) if p.running() => self.skiff.run(&["stop", p.uuid.as_str()]).await.map(|_| ()),
            _ => Ok(()),
        }
    }

    async fn remove_sandbox(&self, id: &str) -> Result<()> {
        let uuid = match self.sandbox_if_any(id).await? {
            Some(pod) => {
                if pod.running() {
                    self.skiff.run(&["stop", pod.uuid.as_str()]).await?;
                }
                self.skiff.run(&["rm", pod.uuid.as_str()]).await?;
                failpoint("cri.sandbox.remove")?;
                pod.uuid
            }
            // Gone: what a removal that failed after its `rm` left goes now.
            None if skiff_pods::uuid::is_valid(id) => id.to_string(),
            None => return Ok(()),
        };
        for r in self.records.all().into_iter().filter(|r| r.sandbox_id == uuid) {
            self.records.remove(&r.id)?;
        }
        let _ = std::fs::remove_file(self.skiff.cri_dir().join("runs").join(format!("{uuid}.log")));
        Ok(())
    }

    fn sandbox_status(pod: &PodJson) -> PodSandboxStatus {
        let meta = pod.sandbox().unwrap_or_default();
        let mut ips = pod.addresses().into_iter();
        PodSandboxStatus {
            id: pod.uuid.clone(),
            metadata: Some(PodSandboxMetadata {
                name: meta.name,
                uid: meta.uid,
                namespace: meta.namespace,
                attempt: meta.attempt,
            }),
            state: sandbox_state(pod) as i32,
            created_at: nanos(pod.created_at.as_deref()),
            network: Some(PodSandboxNetworkStatus {
                ip: ips.next().unwrap_or_default(),
                additional_ips: ips.map(|ip| PodIp { ip }).collect(),
            }),
            linux: None,
            labels: pod.labels.clone().into_iter().collect(),
            annotations: pod.user_annotations(),
            runtime_handler: meta.runtime_handler,
        }
    }

    async fn list_sandboxes(&self, filter: Option<PodSandboxFilter>) -> Result<Vec<PodSandbox>> {
        let pods: Vec<PodJson> = self.skiff.json(&["list", "--format", "json"]).await?;
        let f = filter.unwrap_or_default();
        Ok(pods
            .iter()
            .filter(|p| p.sandbox().is_some() && p.uuid.starts_with(&f.id))
            .filter(|p| f.state.as_ref().is_none_or(|s| s.state == sandbox_state(p) as i32))
            .filter(|p| selected(|k| p.labels.get(k).map(String::as_str), &f.label_selector))
            .map(|p| {
                let s = Self::sandbox_status(p);
                PodSandbox {
                    id: s.id,
                    metadata: s.metadata,
                    state: s.state,
                    created_at: s.created_at,
                    labels: s.labels,
                    annotations: s.annotations,
                    runtime_handler: s.runtime_handler,
                }
            })
            .collect())
    }

    async fn create_container(&self, req: CreateContainerRequest) -> Result<String> {
        let config = req.config.ok_or_else(|| CriError::InvalidArgument("config: missing".into()))?;
        let pod = self.sandbox(&req.pod_sandbox_id).await?;
        if !pod.running() {
            return Err(CriError::FailedPrecondition(format!("pod sandbox {} is {}, not ready", pod.uuid, pod.state)));
        }
        let meta = pod.sandbox().unwrap_or_default();
        let app = convert::app_name(&config)?;
        let log_path = match (meta.log_directory.as_str(), config.log_path.as_str()) {
            (_, "") => None,
            (dir, rel) => Some(log_file(dir, rel)?),
        };
        let args = convert::container_args(&pod.uuid, &config, &app, log_path.as_deref())?;
        let c = config.metadata.unwrap_or_default();
        let record = ContainerRecord {
            id: new_id()?,
            sandbox_id: pod.uuid.clone(),
            app,
            name: c.name,
            attempt: c.attempt,
            image: config.image.map(|i| i.image).unwrap_or_default(),
            labels: config.labels.into_iter().collect(),
            annotations: config.annotations.into_iter().collect(),
            log_path: log_path.map(|p| p.display().to_string()).unwrap_or_default(),
            created_at: now_nanos(),
            cgroup_parent: meta.cgroup_parent.clone(),
        };
        // The record first: an app never comes without one.
        self.records.save(&record)?;
        let added = match failpoint("cri.container.record") {
            Ok(()) => self.skiff.run(&args).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = added {
            self.records.remove(&record.id)?;
            return Err(e);
        }
        Ok(record.id)
    }

    async fn stop_container(&self, id: &str, timeout: i64) -> Result<()> {
        let r = self.records.find(id)?;
        let Some(pod) = self.sandbox_if_any(&r.sandbox_id).await? else { return Ok(()) };
        if !pod.running() || self.app(&r).await?.is_none_or(|a| a.state != "running") {
            return Ok(());
        }
        let t = format!("{}s", timeout.max(0));
        self.skiff
            .run(&["app", "stop", r.sandbox_id.as_str(), "--app", r.app.as_str(), "--timeout", t.as_str()])
            .await?;
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        let r = match self.records.find(id) {
            Ok(r) => r,
            Err(CriError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if let Some(pod) = self.sandbox_if_any(&r.sandbox_id).await? {
            if pod.running() && self.app(&r).await?.is_some() {
                self.stop_container(&r.id, 0).await?;
                self.skiff.run(&["app", "rm", r.sandbox_id.as_str(), "--app", r.app.as_str()]).await?;
            }
        }
        failpoint("cri.container.remove")?;
        self.records.remove(&r.id)
    }

    /// Every container with its app, None for those whose app is not
    /// there (yet, or any more); `only` limits it to one sandbox.
    pub(crate) async fn containers(&self, only: Option<&str>) -> Result<Vec<(ContainerRecord, Option<AppJson>)>> {
        let mut apps: BTreeMap<String, Vec<AppJson>> = BTreeMap::new();
        let mut out = Vec::new();
        for r in self.records.all() {
            if only.is_some_and(|s| s != r.sandbox_id) {
                continue;
            }
            if !apps.contains_key(&r.sandbox_id) {
                let list = match self.apps(&r.sandbox_id).await {
                    Err(CriError::NotFound(_)) => Vec::new(),
                    other => other?,
                };
                apps.insert(r.sandbox_id.clone(), list);
            }
            let app = apps.get(&r.sandbox_id).and_then(|l| l.iter().find(|a| a.name == r.app)).cloned();
            out.push((r, app));
        }
        Ok(out)
    }

    async fn container_status(&self, id: &str) -> Result<ContainerStatus> {
        let r = self.records.find(id)?;
        let app = self.app(&r).await.ok().flatten();
        Ok(status_of(&r, app.as_ref()))
    }

    async fn exec_sync(&self, req: ExecSyncRequest) -> Result<ExecSyncResponse> {
        let r = self.records.find(&req.container_id)?;
        if req.cmd.is_empty() {
            return Err(CriError::InvalidArgument("cmd: empty".into()));
        }
        if self.app(&r).await?.is_none_or(|a| a.state != "running") {
            return Err(CriError::FailedPrecondition(format!("container {} is not running", r.id)));
        }
        let mut args = vec!["enter".to_string(), r.sandbox_id.clone(), "--app".into(), r.app.clone(), "--".into()];
        args.extend(req.cmd);
        let run = self.skiff.command(&args).output();
        let out = match req.timeout {
            t if t > 0 => tokio::time::timeout(Duration::from_secs(t.unsigned_abs()), run)
                .await
                .map_err(|_| CriError::DeadlineExceeded(format!("command timed out after {t}s")))?,
            _ => run.await,
        }
        .map_err(|e| self.skiff.cannot_run(e))?;
        Ok(ExecSyncResponse { stdout: out.stdout, stderr: out.stderr, exit_code: out.status.code().unwrap_or(128) })
    }

    async fn stats(&self, filter: ContainerStatsFilter) -> Result<Vec<ContainerStats>> {
        let listed =
            self.containers((!filter.pod_sandbox_id.is_empty()).then_some(filter.pod_sandbox_id.as_str())).await?;
        Ok(listed
            .into_iter()
            .filter(|(r, a)| r.id.starts_with(&filter.id) && a.as_ref().is_some_and(|a| a.state == "running"))
            .filter(|(r, _)| selected(|k| r.labels.get(k).map(String::as_str), &filter.label_selector))
            .map(|(r, _)| stats_of(&r))
            .collect())
    }
}

fn sandbox_state(p: &PodJson) -> PodSandboxState {
    if p.running() {
        PodSandboxState::SandboxReady
    } else {
        PodSandboxState::SandboxNotready
    }
}

/// The kubelet's log file: `rel` under the sandbox's log directory (or
/// absolute), its directory made.
fn log_file(dir: &str, rel: &str) -> Result<PathBuf> {
    let path = Path::new(dir).join(rel);
    if !path.is_absolute() || path.components().any(|c| c == std::path::Component::ParentDir) {
        return Err(CriError::InvalidArgument(format!("log path {}: not an absolute path without ..", path.display())));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| CriError::internal(&format!("cannot create {}", parent.display()), e))?;
    }
    Ok(path)
}

fn container_state(app: Option<&AppJson>) -> ContainerState {
    match app.map(|a| a.state.as_str()) {
        Some("created") => ContainerState::ContainerCreated,
        Some("running") => ContainerState::ContainerRunning,
        Some("exited") => ContainerState::ContainerExited,
        _ => ContainerState::ContainerUnknown,
    }
}

fn container_of(r: &ContainerRecord, app: Option<&AppJson>) -> Container {
    Container {
        id: r.id.clone(),
        pod_sandbox_id: r.sandbox_id.clone(),
        metadata: Some(ContainerMetadata { name: r.name.clone(), attempt: r.attempt }),
        image: Some(ImageSpec { image: r.image.clone(), ..Default::default() }),
        image_ref: app.and_then(|a| a.image_id.clone()).unwrap_or_default(),
        state: container_state(app) as i32,
        created_at: r.created_at,
        labels: r.labels.clone().into_iter().collect(),
        annotations: r.annotations.clone().into_iter().collect(),
        image_id: app.and_then(|a| a.image_id.clone()).unwrap_or_default(),
    }
}

fn status_of(r: &ContainerRecord, app: Option<&AppJson>) -> ContainerStatus {
    let c = container_of(r, app);
    let exit_code = app.and_then(|a| a.exit_code).unwrap_or(0);
    let exited = c.state == ContainerState::ContainerExited as i32;
    let reason = match (exited, exit_code) {
        (false, _) => "",
        (true, 0) => "Completed",
        (true, _) => "Error",
    };
    ContainerStatus {
        id: c.id,
        metadata: c.metadata,
        state: c.state,
        created_at: c.created_at,
        started_at: nanos(app.and_then(|a| a.started_at.as_deref())),
        finished_at: nanos(app.and_then(|a| a.exited_at.as_deref())),
        exit_code,
        image: c.image,
        image_ref: c.image_ref,
        reason: reason.into(),
        log_path: r.log_path.clone(),
        labels: c.labels,
        annotations: c.annotations,
        image_id: c.image_id,
        ..Default::default()
    }
}

fn stats_of(r: &ContainerRecord) -> ContainerStats {
    let pod = skiff_pods::cgroup::PodCgroup::for_pod_in(r.cgroup_parent.as_deref(), &r.sandbox_id);
    let u = pod.for_app(true, &r.app).usage();
    let now = now_nanos();
    let value = |v: Option<u64>| v.map(|value| UInt64Value { value });
    ContainerStats {
        attributes: Some(ContainerAttributes {
            id: r.id.clone(),
            metadata: Some(ContainerMetadata { name: r.name.clone(), attempt: r.attempt }),
            labels: r.labels.clone().into_iter().collect(),
            annotations: r.annotations.clone().into_iter().collect(),
        }),
        cpu: Some(CpuUsage { timestamp: now, usage_core_nano_seconds: value(u.cpu_nanos), usage_nano_cores: None }),
        memory: Some(MemoryUsage {
            timestamp: now,
            working_set_bytes: value(u.working_set_bytes),
            usage_bytes: value(u.memory_bytes),
            ..Default::default()
        }),
        writable_layer: None,
        swap: None,
    }
}

fn filtered(listed: Vec<(ContainerRecord, Option<AppJson>)>, f: &ContainerFilter) -> Vec<Container> {
    listed
        .iter()
        .filter(|(r, a)| a.is_some() && r.id.starts_with(&f.id))
        .filter(|(r, _)| f.pod_sandbox_id.is_empty() || r.sandbox_id.starts_with(&f.pod_sandbox_id))
        .filter(|(_, a)| f.state.as_ref().is_none_or(|s| s.state == container_state(a.as_ref()) as i32))
        .filter(|(r, _)| selected(|k| r.labels.get(k).map(String::as_str), &f.label_selector))
        .map(|(r, a)| container_of(r, a.as_ref()))
        .collect()
}

#[tonic::async_trait]
impl RuntimeService for Runtime {
    async fn version(&self, _: Request<VersionRequest>) -> Reply<VersionResponse> {
        Ok(Response::new(VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "skiff".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: "v1".into(),
        }))
    }

    async fn run_pod_sandbox(&self, r: Request<RunPodSandboxRequest>) -> Reply<RunPodSandboxResponse> {
        reply(self.run_sandbox(r.into_inner()).await.map(|pod_sandbox_id| RunPodSandboxResponse { pod_sandbox_id }))
    }

    async fn stop_pod_sandbox(&self, r: Request<StopPodSandboxRequest>) -> Reply<StopPodSandboxResponse> {
        reply(self.stop_sandbox(&r.into_inner().pod_sandbox_id).await.map(|()| StopPodSandboxResponse {}))
    }

    async fn remove_pod_sandbox(&self, r: Request<RemovePodSandboxRequest>) -> Reply<RemovePodSandboxResponse> {
        reply(self.remove_sandbox(&r.into_inner().pod_sandbox_id).await.map(|()| RemovePodSandboxResponse {}))
    }

    async fn pod_sandbox_status(&self, r: Request<PodSandboxStatusRequest>) -> Reply<PodSandboxStatusResponse> {
        let pod = self.sandbox(&r.into_inner().pod_sandbox_id).await.map_err(Status::from)?;
        Ok(Response::new(PodSandboxStatusResponse {
            status: Some(Self::sandbox_status(&pod)),
            info: HashMap::new(),
            containers_statuses: Vec::new(),
            timestamp: now_nanos(),
        }))
    }

    async fn list_pod_sandbox(&self, r: Request<ListPodSandboxRequest>) -> Reply<ListPodSandboxResponse> {
        reply(self.list_sandboxes(r.into_inner().filter).await.map(|items| ListPodSandboxResponse { items }))
    }

    async fn create_container(&self, r: Request<CreateContainerRequest>) -> Reply<CreateContainerResponse> {
        reply(self.create_container(r.into_inner()).await.map(|container_id| CreateContainerResponse { container_id }))
    }

    async fn start_container(&self, r: Request<StartContainerRequest>) -> Reply<StartContainerResponse> {
        let run = async {
            let rec = self.records.find(&r.get_ref().container_id)?;
            self.skiff.run(&["app", "start", rec.sandbox_id.as_str(), "--app", rec.app.as_str()]).await?;
            Ok(StartContainerResponse {})
        };
        reply(run.await)
    }

    async fn stop_container(&self, r: Request<StopContainerRequest>) -> Reply<StopContainerResponse> {
        let r = r.into_inner();
        reply(self.stop_container(&r.container_id, r.timeout).await.map(|()| StopContainerResponse {}))
    }

    async fn remove_container(&self, r: Request<RemoveContainerRequest>) -> Reply<RemoveContainerResponse> {
        reply(self.remove_container(&r.into_inner().container_id).await.map(|()| RemoveContainerResponse {}))
    }

    async fn list_containers(&self, r: Request<ListContainersRequest>) -> Reply<ListContainersResponse> {
        let f = r.into_inner().filter.unwrap_or_default();
        reply(self.containers(None).await.map(|l| ListContainersResponse { containers: filtered(l, &f) }))
    }

    async fn container_status(&self, r: Request<ContainerStatusRequest>) -> Reply<ContainerStatusResponse> {
        let status = self.container_status(&r.into_inner().container_id).await.map_err(Status::from)?;
        Ok(Response::new(ContainerStatusResponse { status: Some(status), info: HashMap::new() }))
    }

    async fn update_container_resources(
        &self,
        r: Request<UpdateContainerResourcesRequest>,
    ) -> Reply<UpdateContainerResourcesResponse> {
        let run = async {
            let r = r.into_inner();
            let rec = self.records.find(&r.container_id)?;
            let linux = r.linux.ok_or_else(|| CriError::InvalidArgument("linux: missing".into()))?;
            let mut args =
                ["app", "update", rec.sandbox_id.as_str(), "--app", rec.app.as_str()].map(String::from).to_vec();
            args.extend(convert::resources(&linux)?);
            self.skiff.run(&args).await?;
            Ok(UpdateContainerResourcesResponse {})
        };
        reply(run.await)
    }

    async fn reopen_container_log(&self, _: Request<ReopenContainerLogRequest>) -> Reply<ReopenContainerLogResponse> {
        Err(CriError::Unimplemented(
            "ReopenContainerLog: skiff rotates a container's log itself (--log-max-size), to PATH.1, PATH.2, …".into(),
        )
        .into())
    }

    async fn exec_sync(&self, r: Request<ExecSyncRequest>) -> Reply<ExecSyncResponse> {
        reply(self.exec_sync(r.into_inner()).await)
    }

    async fn exec(&self, _: Request<ExecRequest>) -> Reply<ExecResponse> {
        unimplemented("Exec (streaming; ExecSync works)")
    }

    async fn attach(&self, _: Request<AttachRequest>) -> Reply<AttachResponse> {
        unimplemented("Attach (streaming)")
    }

    async fn port_forward(&self, _: Request<PortForwardRequest>) -> Reply<PortForwardResponse> {
        unimplemented("PortForward (streaming)")
    }

    async fn container_stats(&self, r: Request<ContainerStatsRequest>) -> Reply<ContainerStatsResponse> {
        let run = async {
            let rec = self.records.find(&r.get_ref().container_id)?;
            Ok(ContainerStatsResponse { stats: Some(stats_of(&rec)) })
        };
        reply(run.await)
    }

    async fn list_container_stats(&self, r: Request<ListContainerStatsRequest>) -> Reply<ListContainerStatsResponse> {
        let f = r.into_inner().filter.unwrap_or_default();
        reply(self.stats(f).await.map(|stats| ListContainerStatsResponse { stats }))
    }

    async fn pod_sandbox_stats(&self, _: Request<PodSandboxStatsRequest>) -> Reply<PodSandboxStatsResponse> {
        unimplemented("PodSandboxStats")
    }

    async fn list_pod_sandbox_stats(
        &self,
        _: Request<ListPodSandboxStatsRequest>,
    ) -> Reply<ListPodSandboxStatsResponse> {
        unimplemented("ListPodSandboxStats")
    }

    async fn update_runtime_config(
        &self,
        _: Request<UpdateRuntimeConfigRequest>,
    ) -> Reply<UpdateRuntimeConfigResponse> {
        Err(CriError::Unimplemented(
            "UpdateRuntimeConfig: skiff's pod network comes from its CNI configuration, not from the kubelet".into(),
        )
        .into())
    }

    async fn status(&self, _: Request<StatusRequest>) -> Reply<StatusResponse> {
        let runtime = self.skiff.run(&["list", "--format", "json"]).await;
        let plugin = self.skiff.bin.parent().map(|d| d.join("skiff-bridge"));
        let network = plugin.as_ref().is_some_and(|p| p.is_file());
        let condition = |kind: &str, ok: bool, message: String| RuntimeCondition {
            r#type: kind.into(),
            status: ok,
            reason: if ok { String::new() } else { format!("{kind}NotReady").replace("ReadyNotReady", "NotReady") },
            message,
        };
        let conditions = vec![
            condition("RuntimeReady", runtime.is_ok(), runtime.err().map(|e| e.to_string()).unwrap_or_default()),
            condition(
                "NetworkReady",
                network,
                if network { String::new() } else { "skiff-bridge is not installed beside skiff".into() },
            ),
        ];
        Ok(Response::new(StatusResponse {
            status: Some(RuntimeStatus { conditions }),
            info: HashMap::new(),
            runtime_handlers: Vec::new(),
            features: None,
        }))
    }

    async fn checkpoint_container(&self, _: Request<CheckpointContainerRequest>) -> Reply<CheckpointContainerResponse> {
        unimplemented("CheckpointContainer")
    }

    type GetContainerEventsStream =
        std::pin::Pin<Box<dyn tokio_stream::Stream<Item = std::result::Result<ContainerEventResponse, Status>> + Send>>;

    async fn get_container_events(&self, _: Request<GetEventsRequest>) -> Reply<Self::GetContainerEventsStream> {
        unimplemented("GetContainerEvents (the kubelet falls back to listing)")
    }

    async fn list_metric_descriptors(
        &self,
        _: Request<ListMetricDescriptorsRequest>,
    ) -> Reply<ListMetricDescriptorsResponse> {
        unimplemented("ListMetricDescriptors")
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _: Request<ListPodSandboxMetricsRequest>,
    ) -> Reply<ListPodSandboxMetricsResponse> {
        unimplemented("ListPodSandboxMetrics")
    }

    async fn runtime_config(&self, _: Request<RuntimeConfigRequest>) -> Reply<RuntimeConfigResponse> {
        Ok(Response::new(RuntimeConfigResponse {
            linux: Some(LinuxRuntimeConfiguration { cgroup_driver: CgroupDriver::Cgroupfs as i32 }),
        }))
    }
}
