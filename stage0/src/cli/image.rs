//! `skiff image …`: what is in the store, and making images.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use serde_json::json;

use super::progress::CliProgress;
use super::Ctx;
use crate::image::build::{build, BuildSpec};
use crate::image::catalog::{self, Entry};
use crate::image::digest::Digest;
use crate::image::reference::{DockerRef, ImageReference};
use crate::image::{export, gc};
use crate::output::{self, Format, TableArgs};

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ImageCommand {
    /// List stored images: ID, NAMES, SIZE, CREATED, LAST USED.
    List(ListArgs),
    /// Print an image's manifest, config, layers and size as JSON.
    Inspect {
        /// Name or ID (prefix) of a stored image.
        image: String,
    },
    /// Remove names or images (by name, or by unambiguous ID prefix). Pods
    /// already prepared from them keep working; space is freed by `image gc`.
    Rm {
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
    /// Delete blobs and layer trees no image or pod references, and leftovers
    /// of interrupted fetches.
    Gc,
    /// Write a stored image as an OCI archive: oci-archive:PATH[:NAME], the
    /// name (a tag, or e.g. localhost/redis:1) in its index.
    Export {
        image: String,
        #[arg(value_name = "oci-archive:PATH[:NAME]")]
        dest: String,
    },
    /// Make a single-layer image from a root filesystem directory,
    /// reproducibly (same directory and options, same digest).
    Build(BuildArgs),
    /// The signature policy images must meet to enter the store: show, set.
    #[command(subcommand)]
    Trust(super::trust::TrustCommand),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    table: TableArgs,
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// The directory that becomes the image's root filesystem.
    #[arg(long, value_name = "DIR")]
    from_dir: PathBuf,
    /// Name of the image, e.g. mytool:1 (stored as localhost/mytool:1).
    #[arg(long, value_name = "NAME[:TAG]")]
    tag: String,
    /// Entrypoint: a JSON array (["/bin/tool","--flag"]) or one path.
    #[arg(long, value_name = "CMD")]
    entrypoint: Option<String>,
    /// Default arguments: a JSON array or one word.
    #[arg(long, value_name = "CMD")]
    cmd: Option<String>,
    /// Environment variable of the image (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Working directory of the image's apps.
    #[arg(long, value_name = "DIR")]
    workdir: Option<String>,
    /// User (UID[:GID]) the image's apps run as.
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// Keep the files' mtimes (the digest then changes when they do).
    #[arg(long)]
    keep_mtimes: bool,
    /// The image's creation time: RFC 3339 (2026-01-02T03:04:05Z) or
    /// seconds since the epoch [default: $SOURCE_DATE_EPOCH, else the
    /// newest mtime in DIR, so the same tree gives the same image].
    #[arg(long, value_name = "TIME")]
    created: Option<String>,
    /// Print only the image ID.
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(ctx: &Ctx, cmd: ImageCommand) -> Result<i32> {
    ctx.images.ensure_dirs()?;
    match cmd {
        ImageCommand::List(a) => list(ctx, a),
        ImageCommand::Inspect { image } => inspect(ctx, &image),
        ImageCommand::Rm { images } => rm(ctx, &images),
        ImageCommand::Gc => {
            let r = gc::gc(&ctx.images, &ctx.store)?;
            eprintln!("skiff: removed {} blobs, {} layer trees, {} scratch entries", r.blobs, r.layers, r.scratch);
            Ok(0)
        }
        ImageCommand::Export { image, dest } => export_cmd(ctx, &image, &dest),
        ImageCommand::Build(a) => build_cmd(ctx, a),
        ImageCommand::Trust(c) => super::trust::run(ctx, c),
    }
}

fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

fn json_of(e: &Entry) -> serde_json::Value {
    json!({
        "id": e.record.id,
        "names": e.names,
        "size": e.record.size,
        "created": e.record.created,
        "fetched_at": e.record.fetched_at,
        "last_used": e.last_used.map(|t| humantime::format_rfc3339_seconds(t).to_string()),
    })
}

fn list(ctx: &Ctx, a: ListArgs) -> Result<i32> {
    let entries = catalog::list(&ctx.images)?;
    if a.table.format == Format::Json {
        output::json(&serde_json::Value::Array(entries.iter().map(json_of).collect()))?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                e.record.id.trim_start_matches("sha256:")[..12].to_string(),
                if e.names.is_empty() { "-".into() } else { e.names.join(",") },
                human(e.record.size),
                output::short_time(e.record.created.as_deref()),
                e.last_used.map_or("-".into(), |t| output::short_time(Some(&humantime::format_rfc3339(t).to_string()))),
            ]
        })
        .collect();
    output::table(&["ID", "NAMES", "SIZE", "CREATED", "LAST USED"], &rows, a.table.no_legend)?;
    Ok(0)
}

fn inspect(ctx: &Ctx, image: &str) -> Result<i32> {
    let (e, _) = catalog::find(&ctx.images, image)?;
    let blob = |d: &str| -> Result<serde_json::Value> {
        let d = Digest::parse(d).map_err(anyhow::Error::msg)?;
        let data = std::fs::read(ctx.images.blob_path(&d))?;
        Ok(serde_json::from_slice(&data)?)
    };
    let mut v = json_of(&e);
    v["manifest_digest"] = json!(e.record.manifest_digest);
    // What the signature policy required and skiff verified at the fetch.
    v["signatures"] = json!(e.record.signatures);
    v["manifest"] = blob(&e.record.manifest_digest)?;
    v["config"] = blob(&e.record.id)?;
    v["layers"] = json!(e.record.layers);
    output::json(&v)?;
    Ok(0)
}

fn rm(ctx: &Ctx, images: &[String]) -> Result<i32> {
    let mut failed = false;
    for i in images {
        match catalog::remove(&ctx.images, i) {
            Ok(removed) => {
                for id in removed {
                    println!("{id}");
                }
            }
            Err(e) => {
                eprintln!("skiff: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { super::EXIT_SKIFF_ERROR } else { 0 })
}

fn export_cmd(ctx: &Ctx, image: &str, dest: &str) -> Result<i32> {
    let (path, tag) = match ImageReference::parse(dest).map_err(anyhow::Error::msg)? {
        ImageReference::OciArchive { path, tag } => (path, tag),
        _ => bail!("export destination {dest:?} must be oci-archive:PATH[:NAME]"),
    };
    let (e, _) = catalog::find(&ctx.images, image)?;
    // Without a name, the archive carries the image's own registry-style
    // name (what `podman load` then calls it).
    let own = e.names.iter().find(|n| DockerRef::parse(n).is_ok());
    export::export(&ctx.images, &e.record, &path, tag.as_deref().or(own.map(String::as_str)))?;
    Ok(0)
}

/// `--created`: RFC 3339, or seconds since the epoch.
fn parse_time(s: &str) -> Result<i64> {
    if let Ok(secs) = s.parse::<u32>() {
        return Ok(i64::from(secs));
    }
    let t = humantime::parse_rfc3339_weak(s).map_err(|_| {
        anyhow::anyhow!("--created {s:?}: expected RFC 3339 in UTC (2026-01-02T03:04:05Z) or seconds since the epoch")
    })?;
    let secs =
        t.duration_since(std::time::UNIX_EPOCH).map_err(|_| anyhow::anyhow!("--created {s:?} is before 1970"))?;
    Ok(i64::try_from(secs.as_secs()).unwrap_or(i64::MAX))
}

/// `--entrypoint`/`--cmd`: a JSON array, or a single word.
fn argv(s: &str, what: &str) -> Result<Vec<String>> {
    if s.trim_start().starts_with('[') {
        serde_json::from_str(s).map_err(|e| anyhow::anyhow!("--{what} {s:?} is not a JSON array of strings: {e}"))
    } else {
        Ok(vec![s.to_string()])
    }
}

/// `mytool:1` is stored as `localhost/mytool:1`; names with a registry
/// host keep it.
fn image_name(tag: &str) -> Result<String> {
    let r = DockerRef::parse(tag).map_err(anyhow::Error::msg)?;
    if r.digest.is_some() {
        bail!("--tag {tag:?} may not contain a digest");
    }
    let has_host = tag.split_once('/').is_some_and(|(h, _)| h.contains(['.', ':']) || h == "localhost");
    Ok(if has_host {
        r.to_string()
    } else {
        format!("localhost/{}:{}", tag.split(':').next().unwrap_or(tag), r.tag.unwrap_or_default())
    })
}

fn build_cmd(ctx: &Ctx, a: BuildArgs) -> Result<i32> {
    let name = image_name(&a.tag)?;
    for kv in &a.env {
        if !kv.contains('=') {
            bail!("--env {kv:?}: expected KEY=VALUE");
        }
    }
    let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => Some(v.parse::<i64>().map_err(|_| anyhow::anyhow!("SOURCE_DATE_EPOCH={v:?} is not a number"))?),
        Err(_) => None,
    };
    let spec = BuildSpec {
        from_dir: a.from_dir,
        entrypoint: a.entrypoint.as_deref().map(|s| argv(s, "entrypoint")).transpose()?,
        cmd: a.cmd.as_deref().map(|s| argv(s, "cmd")).transpose()?,
        env: a.env,
        workdir: a.workdir,
        user: a.user,
        keep_mtimes: a.keep_mtimes,
        epoch,
        created: a.created.as_deref().map(parse_time).transpose()?,
    };
    let progress = CliProgress::new(true);
    let _lock = crate::image::lock::StoreLock::shared(&ctx.images)?;
    let built = build(&ctx.images, &spec, &name, &progress)?;
    if built.skipped_special > 0 {
        eprintln!(
            "skiff: image build: left out {} device node(s) and socket(s) of {} (images do not carry them; pods get their own /dev)",
            built.skipped_special,
            spec.from_dir.display()
        );
    }
    if !a.quiet {
        eprintln!("skiff: built {name}");
    }
    println!("{}", built.record.id);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_names() {
        assert_eq!(image_name("mytool:1").unwrap(), "localhost/mytool:1");
        assert_eq!(image_name("mytool").unwrap(), "localhost/mytool:latest");
        assert_eq!(image_name("team/tool:2").unwrap(), "localhost/team/tool:2");
        assert_eq!(image_name("reg.example:5000/team/tool:2").unwrap(), "reg.example:5000/team/tool:2");
        assert!(image_name("Bad Name").is_err());
    }

    #[test]
    fn argv_forms() {
        assert_eq!(argv(r#"["/bin/sh","-c"]"#, "cmd").unwrap(), ["/bin/sh", "-c"]);
        assert_eq!(argv("/bin/tool", "cmd").unwrap(), ["/bin/tool"]);
        assert!(argv("[not json", "cmd").is_err());
    }
}
