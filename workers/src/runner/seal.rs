//! A partition across a change of the partition count (`docs/repartition.md`).
//!
//! - A partition of a later layout generation does not consume until its parent (the
//!   partition of the previous layout its shows came from) is sealed: everything of
//!   its shows from before is then committed, and its runner loads them from
//!   PostgreSQL on first touch as always.
//! - An old partition meets the seal marker `bookctl partitions grow` put in its
//!   queue after no producer could still have a command accepted for it. The runner
//!   commits what came before the marker, records the seal fenced by its epoch, and
//!   from then on forwards whatever it is handed (a command whose confirm came too
//!   late to be accepted, or a redelivery) to the partition of its show in the new
//!   layout, with confirms, before acking it: nothing is dropped, and the inbox of
//!   the new partition makes a copy already applied harmless.

use super::{Partition, RunnerCtx, SessionEnd, acquire, dead_letter_to, process_batch};
use contracts::topology::{SEAL_MARKER_TYPE, SealMarker};
use lapin::Channel;
use lapin::message::Delivery;
use lapin::options::BasicAckOptions;
use platform::amqp::Parcel;
use sequencer_store::{self as store, PartitionRef, StoreError, Successor};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a waiting partition looks for its parent's seal.
const PARENT_POLL: Duration = Duration::from_millis(250);

fn is_marker(d: &Delivery) -> bool {
    d.properties
        .kind()
        .as_ref()
        .is_some_and(|k| k.as_str() == SEAL_MARKER_TYPE)
}

/// Takes one batch: applied as usual before the partition's seal marker, forwarded
/// after it.
pub(crate) async fn process(
    ctx: &RunnerCtx,
    ch: &Channel,
    part: &mut Partition,
    mut batch: Vec<Delivery>,
    shutdown: &CancellationToken,
) -> Result<(), SessionEnd> {
    if part.epoch.is_none() {
        take(ctx, part, shutdown).await?;
    }
    if part.sealed.is_none() {
        let Some(at) = batch.iter().position(is_marker) else {
            return process_batch(ctx, ch, part, batch, shutdown).await;
        };
        let rest = batch.split_off(at);
        if !batch.is_empty() {
            process_batch(ctx, ch, part, batch, shutdown).await?;
        }
        batch = rest;
        seal(ctx, part, &batch[0], shutdown).await?;
    }
    forward(ctx, ch, part, batch).await
}

/// A session's first batch: takes the partition (bumps its epoch), then reads its
/// seal. In that order: a seal recorded by the runner before is then visible, and
/// one that runner tries to record later is fenced. So a standby that takes over a
/// sealed partition forwards what it is handed and never applies it. A transient
/// failure retries with the deliveries held (never redelivered towards the
/// delivery limit).
async fn take(
    ctx: &RunnerCtx,
    part: &mut Partition,
    shutdown: &CancellationToken,
) -> Result<(), SessionEnd> {
    let mut delay = Duration::from_millis(ctx.settings.retry_initial_ms);
    let max = Duration::from_millis(ctx.settings.retry_max_ms);
    loop {
        let res = async {
            acquire(ctx, part).await?;
            Ok::<_, StoreError>(store::seal_of(&ctx.pool, part.key()).await?)
        }
        .await;
        match res {
            Ok(next) => {
                part.sealed = next.map(|n| part.topo.at_layout(n.generation, n.partitions));
                return Ok(());
            }
            Err(e) => {
                part.epoch = None;
                tracing::warn!(partition = %part.label, error = %e, retry_in = ?delay, "taking the partition failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return Err(SessionEnd::Shutdown),
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(max);
            }
        }
    }
}

/// Records the seal `marker` names, once everything before it is committed.
async fn seal(
    ctx: &RunnerCtx,
    part: &mut Partition,
    marker: &Delivery,
    shutdown: &CancellationToken,
) -> Result<(), SessionEnd> {
    let m: SealMarker = serde_json::from_slice(&marker.data)
        .map_err(|e| anyhow::anyhow!("unreadable seal marker: {e}"))?;
    if m.generation != part.topo.generation
        || m.partition != part.p
        || m.next_generation <= m.generation
        || m.next_partitions == 0
        || !m.next_partitions.is_multiple_of(part.topo.partitions)
    {
        // Never written by `bookctl`: refuse it rather than seal on it.
        return Err(SessionEnd::Failed(anyhow::anyhow!(
            "seal marker {m:?} does not match partition {} of {} in generation {}",
            part.p,
            part.topo.partitions,
            part.topo.generation
        )));
    }
    let next = Successor {
        generation: m.next_generation,
        partitions: m.next_partitions,
    };
    let mut delay = Duration::from_millis(ctx.settings.retry_initial_ms);
    let max = Duration::from_millis(ctx.settings.retry_max_ms);
    loop {
        let res = async {
            let epoch = acquire(ctx, part).await?;
            store::seal_partition(&ctx.pool, part.key(), epoch, next, &ctx.owner).await
        }
        .await;
        match res {
            Ok(()) => break,
            Err(StoreError::Fenced { epoch, .. }) => {
                part.epoch = None;
                return Err(SessionEnd::Failed(anyhow::anyhow!(
                    "fenced at epoch {epoch} while sealing"
                )));
            }
            Err(e) => {
                tracing::warn!(partition = %part.label, error = %e, retry_in = ?delay, "recording the seal failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return Err(SessionEnd::Shutdown),
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(max);
            }
        }
    }
    tracing::info!(
        partition = %part.label,
        next_generation = next.generation,
        next_partitions = next.partitions,
        "partition sealed; what follows is forwarded"
    );
    part.sealed = Some(part.topo.at_layout(next.generation, next.partitions));
    Ok(())
}

/// Sends each command of `batch` on to its show's partition in the layout that
/// replaced this one, then acks the batch. Markers are acked; what cannot be parsed
/// is dead-lettered as any poison command.
async fn forward(
    ctx: &RunnerCtx,
    ch: &Channel,
    part: &Partition,
    batch: Vec<Delivery>,
) -> Result<(), SessionEnd> {
    let next = part
        .sealed
        .as_ref()
        .expect("forward is only called on a sealed partition");
    let Some(last) = batch.iter().map(|d| d.delivery_tag).max() else {
        return Ok(());
    };
    for d in batch.iter().filter(|d| !is_marker(d)) {
        let parcel = Parcel::of(d);
        match serde_json::from_slice::<contracts::CommandEnvelope>(&d.data) {
            Ok(env) => {
                let props = platform::amqp::json_properties(&parcel.message_id, parcel.headers);
                ctx.dead_letters
                    .publish(
                        &next.commands_exchange(),
                        &next.partition_key(next.partition_of(env.show_id)),
                        &d.data,
                        props,
                    )
                    .await
                    .map_err(anyhow::Error::from)?;
                metrics::counter!("runner_forwarded_total", "partition" => part.label.clone())
                    .increment(1);
            }
            Err(e) => {
                let to = dead_letter_to(&part.topo, part.p);
                platform::amqp::dead_letter(
                    &ctx.dead_letters,
                    &to,
                    parcel,
                    &format!("unparseable command: {e}"),
                )
                .await
                .map_err(anyhow::Error::from)?;
            }
        }
    }
    ch.basic_ack(last, BasicAckOptions { multiple: true })
        .await?;
    Ok(())
}

/// Waits until the parent of a later layout's partition is sealed (at once for the
/// first layout).
pub(crate) async fn wait_for_parent(
    ctx: &RunnerCtx,
    part: &Partition,
    shutdown: &CancellationToken,
) -> Result<(), SessionEnd> {
    let generation = part.topo.generation;
    if generation <= 1 {
        return Ok(());
    }
    let mut logged = false;
    loop {
        let prev: Option<i16> =
            sqlx::query_scalar("select partitions from partition_layouts where generation = $1")
                .bind(i16::try_from(generation - 1).unwrap_or(i16::MAX))
                .fetch_optional(&ctx.pool)
                .await
                .map_err(anyhow::Error::from)?;
        let prev = prev
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| anyhow::anyhow!("layout generation {} is missing", generation - 1))?;
        let parent = PartitionRef {
            generation: generation - 1,
            partition: part.p % prev,
        };
        if store::seal_of(&ctx.pool, parent)
            .await
            .map_err(anyhow::Error::from)?
            .is_some()
        {
            return Ok(());
        }
        if !logged {
            tracing::info!(partition = %part.label, parent = parent.partition, "waiting for the parent partition's seal");
            logged = true;
        }
        tokio::select! {
            () = shutdown.cancelled() => return Err(SessionEnd::Shutdown),
            () = tokio::time::sleep(PARENT_POLL) => {}
        }
    }
}
