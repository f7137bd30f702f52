//! Growing the partition count under load: `bookctl partitions grow N`
//! (`docs/repartition.md`). Each step is recorded in PostgreSQL and idempotent, so
//! running the command again after a crash (of it, of the workers, of a broker
//! node) continues from where it stopped.
//!
//! 1. declare the new layout's queues, then record it `declared` (the workers start
//!    its runners, which wait);
//! 2. flip: the new layout `current`, the old one `retiring` (one transaction);
//! 3. wait [`STALE`] and a margin: no producer can still have a command routed by the
//!    old layout accepted;
//! 4. a seal marker into each old queue; each old runner commits what is before
//!    it, records its seal, and forwards whatever comes after;
//! 5. once every old partition is sealed: the old layout `retired` (its runners
//!    stop), what is still in its queues forwarded here, its queues deleted.

use crate::OpsError;
use contracts::topology::{SEAL_MARKER_TYPE, SealMarker};
use contracts::{CommandEnvelope, Topology};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection};
use platform::amqp::QueueShape;
use platform::layout::{Generation, Layout, LayoutState, STALE, generations};
use sqlx::PgPool;
use std::time::{Duration, Instant};

/// Added to [`STALE`] before the seal markers go out.
const MARGIN: Duration = Duration::from_secs(1);
/// How long a drained queue stays quiet before the broker is asked if it is empty.
const DRAIN_IDLE: Duration = Duration::from_millis(300);
/// Largest partition count accepted.
pub const MAX_PARTITIONS: u16 = 1024;

/// What to do and how long to wait.
#[derive(Debug, Clone)]
pub struct GrowOptions {
    pub target: u16,
    /// Stop after the flip (an operator checking the new layout takes traffic;
    /// the tests crash the workers there). Running `grow` again continues.
    pub stop_after_flip: bool,
    /// Longest wait for the old partitions' seals and their runners to stop.
    pub timeout: Duration,
}

/// Where the growth ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GrowReport {
    pub from_generation: u16,
    pub from_partitions: u16,
    pub generation: u16,
    pub partitions: u16,
    /// `flipped` (with `stop_after_flip`) or `done`.
    pub state: &'static str,
    /// Commands still in the old queues at the end, forwarded by this command.
    pub forwarded: usize,
}

fn bad(msg: impl Into<String>) -> OpsError {
    OpsError::Invalid(msg.into())
}

/// Grows `root`'s deployment to `opts.target` partitions, or continues a growth to
/// it; `progress` gets one line per step.
pub async fn grow(
    conn: &Connection,
    pool: &PgPool,
    root: &Topology,
    shape: QueueShape,
    opts: &GrowOptions,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<GrowReport, OpsError> {
    let target = opts.target;
    if target == 0 || target > MAX_PARTITIONS {
        return Err(bad(format!(
            "the partition count must be between 1 and {MAX_PARTITIONS}"
        )));
    }
    let gens = generations(pool, root.partitions).await?;
    let current = platform::layout::current(&gens).ok_or_else(|| bad("no current layout"))?;
    let find = |st: LayoutState| gens.iter().find(|g| g.state == st).map(|g| g.layout);
    let (old, new) = if let Some(old) = find(LayoutState::Retiring) {
        if current.partitions != target {
            return Err(bad(format!(
                "a growth to {} partitions is under way; run `grow {}` to finish it first",
                current.partitions, current.partitions
            )));
        }
        progress(&format!(
            "continuing: generation {} ({} partitions) is current, {} retiring",
            current.generation, current.partitions, old.generation
        ));
        (old, current)
    } else {
        let old = current;
        if target == old.partitions {
            finish_retired(conn, root, &gens, progress).await?;
            progress(&format!("already {target} partitions"));
            return Ok(report(old, old, "done", 0));
        }
        if target < old.partitions || !target.is_multiple_of(old.partitions) {
            return Err(bad(format!(
                "{target} is not a multiple of the current {} partitions: a new count must be \
                 one, so that every new partition takes its shows from exactly one old one",
                old.partitions
            )));
        }
        let new = match find(LayoutState::Declared) {
            Some(d) if d.partitions == target => d,
            Some(d) => {
                return Err(bad(format!(
                    "generation {} with {} partitions is declared; grow to it first",
                    d.generation, d.partitions
                )));
            }
            None => Layout {
                generation: gens.iter().map(|g| g.layout.generation).max().unwrap_or(1) + 1,
                partitions: target,
            },
        };
        declare(conn, pool, root, new, shape).await?;
        progress(&format!(
            "declared generation {} ({} queues); its runners wait for their parents",
            new.generation, new.partitions
        ));
        flip(pool, old, new).await?;
        progress(&format!(
            "flipped: generation {} is current; commands route to it",
            new.generation
        ));
        (old, new)
    };
    if opts.stop_after_flip {
        return Ok(report(old, new, "flipped", 0));
    }
    tokio::time::sleep(STALE + MARGIN).await;
    let old_topo = root.at_layout(old.generation, old.partitions);
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let done = sealed(pool, old).await?;
    for p in old_topo.all_partitions().filter(|p| !done.contains(p)) {
        let marker = SealMarker {
            generation: old.generation,
            partition: p,
            next_generation: new.generation,
            next_partitions: new.partitions,
        };
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_message_id(format!("seal-g{}-p{p}", old.generation).into())
            .with_type(SEAL_MARKER_TYPE.into())
            .with_content_type("application/json".into());
        let body = serde_json::to_vec(&marker).expect("a seal marker serializes");
        publish(&ch, "", &old_topo.partition_queue(p), &body, props).await?;
    }
    progress(&format!(
        "seal markers sent to the {} old queues",
        old.partitions
    ));
    let started = Instant::now();
    loop {
        let n = sealed(pool, old).await?.len();
        if n == usize::from(old.partitions) {
            break;
        }
        if started.elapsed() > opts.timeout {
            drop(ch.close(200, "grow timed out".into()).await);
            return Err(bad(format!(
                "{n} of {} old partitions sealed after {:?}: are the workers running? \
                 Run the command again to go on waiting",
                old.partitions, opts.timeout
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    progress("every old partition sealed");
    drop(ch.close(200, "grow".into()).await);
    sqlx::query(
        "update partition_layouts set state = 'retired', retired_at = now()
          where generation = $1 and state = 'retiring'",
    )
    .bind(i16::try_from(old.generation).unwrap_or(i16::MAX))
    .execute(pool)
    .await?;
    progress(&format!(
        "generation {} retired; its runners stop",
        old.generation
    ));
    let gens = generations(pool, root.partitions).await?;
    let forwarded = finish_retired_within(conn, root, &gens, opts.timeout, progress).await?;
    Ok(report(old, new, "done", forwarded))
}

fn report(old: Layout, new: Layout, state: &'static str, forwarded: usize) -> GrowReport {
    GrowReport {
        from_generation: old.generation,
        from_partitions: old.partitions,
        generation: new.generation,
        partitions: new.partitions,
        state,
        forwarded,
    }
}

async fn declare(
    conn: &Connection,
    pool: &PgPool,
    root: &Topology,
    new: Layout,
    shape: QueueShape,
) -> Result<(), OpsError> {
    let ch = conn.create_channel().await?;
    let topo = root.at_layout(new.generation, new.partitions);
    platform::amqp::declare_partitions(&ch, &topo, shape).await?;
    drop(ch.close(200, "declared".into()).await);
    sqlx::query(
        "insert into partition_layouts (generation, partitions, state)
         values ($1, $2, 'declared') on conflict do nothing",
    )
    .bind(i16::try_from(new.generation).unwrap_or(i16::MAX))
    .bind(i16::try_from(new.partitions).unwrap_or(i16::MAX))
    .execute(pool)
    .await?;
    Ok(())
}

async fn flip(pool: &PgPool, old: Layout, new: Layout) -> Result<(), OpsError> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "update partition_layouts set state = 'retiring'
          where generation = $1 and state = 'current'",
    )
    .bind(i16::try_from(old.generation).unwrap_or(i16::MAX))
    .execute(&mut *tx)
    .await?;
    let done = sqlx::query(
        "update partition_layouts set state = 'current', flipped_at = now()
          where generation = $1 and state = 'declared'",
    )
    .bind(i16::try_from(new.generation).unwrap_or(i16::MAX))
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(bad(format!(
            "generation {} was not declared any more (another grow?)",
            new.generation
        )));
    }
    tx.commit().await?;
    Ok(())
}

/// The sealed partitions of `old`.
async fn sealed(pool: &PgPool, old: Layout) -> Result<Vec<u16>, OpsError> {
    let rows: Vec<i16> =
        sqlx::query_scalar("select partition from partition_seals where generation = $1")
            .bind(i16::try_from(old.generation).unwrap_or(i16::MAX))
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|p| u16::try_from(p).ok())
        .collect())
}

async fn publish(
    ch: &Channel,
    exchange: &str,
    key: &str,
    body: &[u8],
    props: BasicProperties,
) -> Result<(), OpsError> {
    let confirm = ch
        .basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions::default(),
            body,
            props,
        )
        .await?
        .await?;
    if confirm.is_ack() {
        Ok(())
    } else {
        Err(bad(format!("the broker refused a message to {key}")))
    }
}

async fn finish_retired(
    conn: &Connection,
    root: &Topology,
    gens: &[Generation],
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<usize, OpsError> {
    finish_retired_within(conn, root, gens, Duration::from_secs(30), progress).await
}

/// Deletes the queues of retired layouts that still exist, once no runner consumes
/// them, forwarding what is left in them to the current layout first.
async fn finish_retired_within(
    conn: &Connection,
    root: &Topology,
    gens: &[Generation],
    timeout: Duration,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<usize, OpsError> {
    let Some(current) = platform::layout::current(gens) else {
        return Ok(0);
    };
    let to = root.at_layout(current.generation, current.partitions);
    let mut forwarded = 0;
    for g in gens.iter().filter(|g| g.state == LayoutState::Retired) {
        let topo = root.at_layout(g.layout.generation, g.layout.partitions);
        for p in topo.all_partitions() {
            let queue = topo.partition_queue(p);
            let started = Instant::now();
            loop {
                // A passive declare of a queue that is gone closes its channel.
                let probe = conn.create_channel().await?;
                let Ok((_, consumers)) = platform::amqp::queue_counts(&probe, &queue).await else {
                    break;
                };
                drop(probe.close(200, "probe".into()).await);
                if consumers == 0 {
                    forwarded += drain(conn, &queue, &to).await?;
                    let ch = conn.create_channel().await?;
                    ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                        .await?;
                    drop(ch.close(200, "deleted".into()).await);
                    break;
                }
                if started.elapsed() > timeout {
                    return Err(bad(format!(
                        "{queue} still has {consumers} consumer(s) after {timeout:?}: a workers \
                         process that did not see the retirement? Run the command again"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        progress(&format!(
            "the queues of generation {} are gone",
            g.layout.generation
        ));
    }
    Ok(forwarded)
}

/// Forwards what is left in a retired queue (no runner consumes it any more) to
/// its show's partition in `to`, each acked after its confirm; markers are dropped.
/// (A consumer, not `basic.get`: quorum queues with a single active consumer refuse
/// that.)
async fn drain(conn: &Connection, queue: &str, to: &Topology) -> Result<usize, OpsError> {
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    ch.basic_qos(64, BasicQosOptions::default()).await?;
    let mut consumer = ch
        .basic_consume(
            queue.into(),
            "bookctl-grow-drain".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut forwarded = 0;
    loop {
        let next = tokio::time::timeout(DRAIN_IDLE, consumer.next()).await;
        let d = match next {
            Ok(Some(d)) => d?,
            Ok(None) => break,
            Err(_) => {
                // Idle: done once the broker agrees the queue is empty.
                let (ready, _) = platform::amqp::queue_counts(&ch, queue).await?;
                if ready == 0 {
                    break;
                }
                continue;
            }
        };
        let is_marker = d
            .properties
            .kind()
            .as_ref()
            .is_some_and(|k| k.as_str() == SEAL_MARKER_TYPE);
        if !is_marker {
            let show = serde_json::from_slice::<CommandEnvelope>(&d.data)
                .map_err(|e| {
                    bad(format!(
                        "{queue} holds a message that is not a command: {e}"
                    ))
                })?
                .show_id;
            publish(
                &ch,
                &to.commands_exchange(),
                &to.partition_key(to.partition_of(show)),
                &d.data,
                d.properties.clone(),
            )
            .await?;
            forwarded += 1;
        }
        d.acker.ack(BasicAckOptions::default()).await?;
    }
    drop(ch.close(200, "drained".into()).await);
    Ok(forwarded)
}
