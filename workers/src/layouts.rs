//! Which partitions this process runs, across changes of the partition count
//! (`docs/repartition.md`): the partitions of every layout generation not retired
//! whose root (their partition in the first layout) is among this process's
//! (`workers.partitions`, all by default). A generation `bookctl partitions grow`
//! declares gets its runners within a second (they wait for their parent's seal);
//! a retired one has its runners stopped.

use crate::runner::{RunnerCtx, run_partition};
use platform::layout::{LayoutState, generations};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How often the layouts are read.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Runs the runners of every live layout generation until `stop`, then gives them
/// `grace` to finish their batch before aborting them.
pub async fn supervise(
    ctx: Arc<RunnerCtx>,
    roots: Vec<u16>,
    grace: Duration,
    stop: CancellationToken,
) {
    let root = ctx.topology.clone();
    let mut running: HashMap<u16, CancellationToken> = HashMap::new();
    let mut runners = JoinSet::new();
    let mut failing = false;
    loop {
        match generations(&ctx.pool, root.partitions).await {
            Ok(gens) => {
                failing = false;
                // The first layout's count decides the roots (the layout table's, which
                // is `amqp.partitions` unless that setting changed since).
                let first = gens
                    .first()
                    .map_or(root.partitions, |g| g.layout.partitions);
                for g in gens {
                    let generation = g.layout.generation;
                    if g.state == LayoutState::Retired {
                        if let Some(token) = running.remove(&generation) {
                            tracing::info!(generation, "layout retired; its runners stop");
                            token.cancel();
                        }
                        continue;
                    }
                    if running.contains_key(&generation) {
                        continue;
                    }
                    let token = stop.child_token();
                    let topo = root.at_layout(generation, g.layout.partitions);
                    let mine: Vec<u16> = topo
                        .all_partitions()
                        .filter(|p| roots.contains(&(p % first)))
                        .collect();
                    tracing::info!(generation, partitions = ?mine, "running the partitions of a layout");
                    for p in mine {
                        runners.spawn(run_partition(ctx.clone(), topo.clone(), p, token.clone()));
                    }
                    running.insert(generation, token);
                }
            }
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "partition layouts unreadable; runners go on as they are");
            }
            Err(_) => {}
        }
        while runners.try_join_next().is_some() {}
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(WATCH_EVERY) => {}
        }
    }
    let drained = tokio::time::timeout(grace, async {
        while runners.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("runners did not stop within the grace period; aborting them");
        runners.abort_all();
    }
}
