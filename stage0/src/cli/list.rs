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
    let mut pods: Vec<PodInfo> = Pod::all(&ctx.store).iter().map(PodInfo::of).collect();
    pods.sort_by(|x, y| x.created_at.cmp(&y.created_at).then(x.uuid.cmp(&y.uuid)));
    if a.table.format == Format::Json {
        output::json(&serde_json::to_value(&pods)?)?;
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
