//! `skiff volume …`: the store's named volumes (docs/kube.md:
//! persistentVolumeClaims).

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::json;

use super::Ctx;
use crate::output::{self, Format, TableArgs};
use crate::pod::named_volume;

#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// List the store's named volumes: NAME, PATH, PODS (those that mount
    /// it).
    List(ListArgs),
    /// Remove named volumes and their data, unless a live pod mounts them.
    Rm {
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    table: TableArgs,
}

pub fn run(ctx: &Ctx, c: VolumeCommand) -> Result<i32> {
    match c {
        VolumeCommand::List(a) => {
            let rows: Vec<(String, String, Vec<String>)> = named_volume::list(&ctx.store)
                .into_iter()
                .map(|(name, path)| {
                    let pods = named_volume::users(&ctx.store, &path).into_iter().map(|(u, _)| u).collect();
                    (name, path.display().to_string(), pods)
                })
                .collect();
            if a.table.format == Format::Json {
                let v: Vec<_> = rows.iter().map(|(n, p, pods)| json!({"name": n, "path": p, "pods": pods})).collect();
                output::json(&v)?;
            } else {
                let cells: Vec<Vec<String>> = rows
                    .into_iter()
                    .map(|(n, p, pods)| {
                        vec![n, p, pods.iter().map(|u| u[..8].to_string()).collect::<Vec<_>>().join(",")]
                    })
                    .collect();
                output::table(&["NAME", "PATH", "PODS"], &cells, a.table.no_legend)?;
            }
            Ok(0)
        }
        VolumeCommand::Rm { names } => {
            let mut failed = false;
            for n in &names {
                match named_volume::remove(&ctx.store, n) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("skiff: {e:#}");
                        failed = true;
                    }
                }
            }
            Ok(if failed { super::EXIT_SKIFF_ERROR } else { 0 })
        }
    }
}
