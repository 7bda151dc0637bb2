//! The CRI ImageService: the same image store as the CLI, through
//! `skiff fetch`, `image list`, `image inspect` and `image rm`.

use std::collections::HashMap;
use std::path::Path;

use k8s_cri::v1::image_service_server::ImageService;
use k8s_cri::v1::*;
use serde::Deserialize;
use tonic::Request;

use crate::error::{reply, CriError, Reply, Result};
use crate::pods::now_nanos;
use crate::skiff::Skiff;

pub struct Images {
    pub skiff: Skiff,
}

#[derive(Debug, Deserialize)]
struct ImageJson {
    id: String,
    #[serde(default)]
    names: Vec<String>,
    size: u64,
    #[serde(default)]
    manifest_digest: Option<String>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

fn spec_image(s: Option<ImageSpec>) -> Result<String> {
    match s.map(|s| s.image) {
        Some(i) if !i.is_empty() => Ok(i),
        _ => Err(CriError::InvalidArgument("image.image: empty".into())),
    }
}

/// A kubelet's image name (`docker.io/library/busybox:1`) as skiff fetches
/// it: a registry image unless it names a transport already.
fn pull_reference(image: &str) -> String {
    const TRANSPORTS: [&str; 4] = ["docker://", "oci:", "oci-archive:", "docker-archive:"];
    if TRANSPORTS.iter().any(|t| image.starts_with(t)) {
        image.to_string()
    } else {
        format!("docker://{image}")
    }
}

/// The registry host of a registry image name (Docker's rule: a first
/// component with a '.' or ':', or `localhost`; else Docker Hub).
fn registry_of(image: &str) -> String {
    let name = image.trim_start_matches("docker://");
    match name.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => first.to_string(),
        _ => "docker.io".to_string(),
    }
}

/// The image's user as the kubelet wants it: a number, or a name.
fn user_of(config: Option<&serde_json::Value>) -> (Option<Int64Value>, String) {
    let user = config.and_then(|c| c["config"]["User"].as_str()).unwrap_or_default();
    let user = user.split(':').next().unwrap_or_default();
    match user.parse::<i64>() {
        Ok(value) => (Some(Int64Value { value }), String::new()),
        Err(_) if user.is_empty() => (Some(Int64Value { value: 0 }), String::new()),
        Err(_) => (None, user.to_string()),
    }
}

fn image_of(j: ImageJson) -> Image {
    let digests = j
        .manifest_digest
        .as_ref()
        .map(|d| {
            j.names
                .iter()
                .map(|n| {
                    let repo = match n.rsplit_once(':') {
                        Some((r, tag)) if !tag.contains('/') => r,
                        _ => n.as_str(),
                    };
                    format!("{repo}@{d}")
                })
                .collect()
        })
        .unwrap_or_default();
    let (uid, username) = user_of(j.config.as_ref());
    Image {
        id: j.id,
        repo_tags: j.names,
        repo_digests: digests,
        size: j.size,
        uid,
        username,
        spec: None,
        pinned: false,
    }
}

impl Images {
    async fn status(&self, image: &str) -> Result<Option<Image>> {
        match self.skiff.json::<ImageJson, _>(&["image", "inspect", image]).await {
            Ok(j) => Ok(Some(image_of(j))),
            Err(CriError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn pull(&self, req: PullImageRequest) -> Result<String> {
        let image = spec_image(req.image)?;
        let reference = pull_reference(&image);
        let mut args = vec!["fetch".to_string(), "--quiet".into()];
        // Credentials of this request only, in a file only root reads,
        // gone with the call.
        let authfile = match req.auth.filter(|a| !a.username.is_empty() || !a.auth.is_empty()) {
            Some(a) => {
                let server = if a.server_address.is_empty() { registry_of(&reference) } else { a.server_address };
                let token = if a.auth.is_empty() {
                    base64::Engine::encode(
                        &base64::engine::general_purpose::STANDARD,
                        format!("{}:{}", a.username, a.password),
                    )
                } else {
                    a.auth
                };
                let body = serde_json::json!({"auths": {server: {"auth": token}}});
                let file = tempfile::Builder::new()
                    .prefix("auth-")
                    .tempfile_in(self.skiff.cri_dir())
                    .map_err(|e| CriError::internal("cannot make a credentials file", e))?;
                std::fs::write(file.path(), body.to_string())
                    .map_err(|e| CriError::internal("cannot write credentials", e))?;
                args.extend(["--authfile".into(), file.path().display().to_string()]);
                Some(file)
            }
            None => None,
        };
        args.push(reference);
        let out = self.skiff.run(&args).await;
        drop(authfile);
        let id = String::from_utf8_lossy(&out?).trim().to_string();
        Ok(id)
    }

    async fn fs_info(&self) -> Result<ImageFsInfoResponse> {
        let mut used = 0u64;
        let mut inodes = 0u64;
        for sub in ["cas", "layers", "images"] {
            walk(&self.skiff.dir.join(sub), &mut used, &mut inodes);
        }
        Ok(ImageFsInfoResponse {
            image_filesystems: vec![FilesystemUsage {
                timestamp: now_nanos(),
                fs_id: Some(FilesystemIdentifier { mountpoint: self.skiff.dir.join("layers").display().to_string() }),
                used_bytes: Some(UInt64Value { value: used }),
                inodes_used: Some(UInt64Value { value: inodes }),
            }],
            container_filesystems: Vec::new(),
        })
    }
}

/// Adds the disk use (allocated blocks) and inodes under `dir`, not
/// following symlinks.
fn walk(dir: &Path, bytes: &mut u64, inodes: &mut u64) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let Ok(md) = e.path().symlink_metadata() else { continue };
        *inodes += 1;
        *bytes += md.blocks() * 512;
        if md.is_dir() {
            walk(&e.path(), bytes, inodes);
        }
    }
}

#[tonic::async_trait]
impl ImageService for Images {
    async fn list_images(&self, r: Request<ListImagesRequest>) -> Reply<ListImagesResponse> {
        let wanted = r.into_inner().filter.and_then(|f| f.image).map(|i| i.image).filter(|i| !i.is_empty());
        let run = async {
            let images = match wanted {
                Some(i) => self.status(&i).await?.into_iter().collect(),
                None => {
                    let list: Vec<ImageJson> = self.skiff.json(&["image", "list", "--format", "json"]).await?;
                    list.into_iter().map(image_of).collect()
                }
            };
            Ok(ListImagesResponse { images })
        };
        reply(run.await)
    }

    async fn image_status(&self, r: Request<ImageStatusRequest>) -> Reply<ImageStatusResponse> {
        let run = async {
            let image = spec_image(r.into_inner().image)?;
            Ok(ImageStatusResponse { image: self.status(&image).await?, info: HashMap::new() })
        };
        reply(run.await)
    }

    async fn pull_image(&self, r: Request<PullImageRequest>) -> Reply<PullImageResponse> {
        reply(self.pull(r.into_inner()).await.map(|image_ref| PullImageResponse { image_ref }))
    }

    async fn remove_image(&self, r: Request<RemoveImageRequest>) -> Reply<RemoveImageResponse> {
        let run = async {
            let image = spec_image(r.into_inner().image)?;
            match self.skiff.run(&["image", "rm", image.as_str()]).await {
                Ok(_) | Err(CriError::NotFound(_)) => Ok(RemoveImageResponse {}),
                Err(e) => Err(e),
            }
        };
        reply(run.await)
    }

    async fn image_fs_info(&self, _: Request<ImageFsInfoRequest>) -> Reply<ImageFsInfoResponse> {
        reply(self.fs_info().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_names_become_registry_references() {
        assert_eq!(pull_reference("docker.io/library/busybox:1"), "docker://docker.io/library/busybox:1");
        assert_eq!(pull_reference("oci:/srv/x:1"), "oci:/srv/x:1");
        assert_eq!(registry_of("docker://127.0.0.1:5000/a/b:1"), "127.0.0.1:5000");
        assert_eq!(registry_of("docker://localhost/a"), "localhost");
        assert_eq!(registry_of("docker://library/busybox"), "docker.io");
        assert_eq!(registry_of("docker://busybox"), "docker.io");
    }

    #[test]
    fn an_images_user_is_a_number_or_a_name() {
        let c = |u: &str| serde_json::json!({"config": {"User": u}});
        assert_eq!(user_of(Some(&c("1000:1000"))), (Some(Int64Value { value: 1000 }), String::new()));
        assert_eq!(user_of(Some(&c("nginx"))), (None, "nginx".to_string()));
        assert_eq!(user_of(Some(&c(""))), (Some(Int64Value { value: 0 }), String::new()));
        assert_eq!(user_of(None), (Some(Int64Value { value: 0 }), String::new()));
    }

    #[test]
    fn repo_digests_pair_each_name_with_the_manifest() {
        let j = ImageJson {
            id: "sha256:c".into(),
            names: vec!["127.0.0.1:5000/a:1".into(), "localhost/b".into()],
            size: 1,
            manifest_digest: Some("sha256:m".into()),
            config: None,
        };
        assert_eq!(image_of(j).repo_digests, ["127.0.0.1:5000/a@sha256:m", "localhost/b@sha256:m"]);
    }
}
