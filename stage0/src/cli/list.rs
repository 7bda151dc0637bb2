//! `skiff list`: every pod of the store, as a table or JSON.

use anyhow::Result;
use clap::Args;
use skiff_pods::Pod;

use super::pod_info::PodInfo;
use super::Ctx;
use crate::output::{self, Format, TableArgs};

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    table: TableArgs,
}

/// Columns: UUID, APP, IMAGE, STATE, NETWORKS, CREATED, STARTED; oldest pod
/// first.
pub fn run(ctx: &Ctx, a: ListArgs) -> Result<i32> {
    let read = if a.table.format == Format::Json { PodInfo::of } else { PodInfo::without_exits };
    let mut pods = infos(&Pod::all(&ctx.store), read);
    pods.sort_by(|x, y| x.created_at.cmp(&y.created_at).then(x.uuid.cmp(&y.uuid)));
    if a.table.format == Format::Json {
        output::json(&pods)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = pods
        .iter()
        .map(|p| {
            let first = p.apps.first();
            vec![
                p.uuid.clone(),
                first.map_or("-".into(), |a| a.name.clone()),
                first.map_or("-".into(), |a| a.image_name.clone()),
                p.state.clone(),
                p.networks_column(),
                output::short_time(p.created_at.as_deref()),
                output::short_time(p.started_at.as_deref()),
            ]
        })
        .collect();
    output::table(&["UUID", "APP", "IMAGE", "STATE", "NETWORKS", "CREATED", "STARTED"], &rows, a.table.no_legend)?;
    Ok(0)
}

/// Each pod's information. Reading it is a few small files per pod, mostly
/// waiting on the kernel: a store of many pods is read by a thread per CPU.
fn infos(pods: &[Pod], read: fn(&Pod) -> PodInfo) -> Vec<PodInfo> {
    const PER_THREAD: usize = 64;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(pods.len() / PER_THREAD).max(1);
    if threads == 1 {
        return pods.iter().map(read).collect();
    }
    let chunk = pods.len().div_ceil(threads);
    std::thread::scope(|s| {
        let parts: Vec<_> =
            pods.chunks(chunk).map(|part| s.spawn(move || part.iter().map(read).collect::<Vec<_>>())).collect();
        // A thread that panicked (it cannot: reading is infallible here)
        // would lose its pods rather than the listing.
        parts.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    })
}
