//! The sequencer runner of one partition.
//!
//! ```text
//! loop:
//!   take 1..=batch_size_max deliveries (waiting only for the first)
//!   classify: poison ones (unparseable, wrong partition) are set aside with a reason
//!   apply and commit (database only, no broker IO):
//!     on first batch: acquire the partition (bump its epoch), load nothing yet
//!     drop messages the inbox has seen; load shows on first touch (a show that
//!       cannot be loaded sets its commands aside with a reason)
//!     apply each command to its show state (pure, in memory)
//!     commit everything in ONE transaction, fenced by the epoch
//!   settle: dead-letter what was set aside (with its reason), ack the batch
//!     (multiple), hand the events to the publisher
//! ```
//! A crash before the commit redelivers the batch; after it, the inbox makes the
//! redelivery a no-op. A transient failure (database down) keeps the deliveries
//! unacked and retries with bounded backoff: it never dead-letters. A fenced commit
//! (another runner took the partition) ends the session without acking.
//!
//! The runner does not use `platform::amqp::consume` (one delivery at a time): it
//! takes deliveries in batches and acks a batch at once after ONE database commit,
//! which is what makes a partition fast. It shares the one dead-letter function.

mod seal;

use crate::seatmaps::{SeatMapWriter, snapshot};
use contracts::topology::REQUEST_ID_HEADER;
use contracts::{CommandEnvelope, ShowId, Topology};
use futures::{FutureExt, StreamExt};
use lapin::Channel;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use platform::amqp::{ConfirmedPublisher, DeadLetterTo, Parcel};
use platform::settings::WorkerSettings;
use sequencer::ShowState;
use sequencer_store::{self as store, Committed, OutboxRow, StoreError};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Where a test can make a runner "crash" (drop its channel without acking), and the
/// saga's and the notifier's failures: armed through [`crate::faults`].
#[derive(Debug, Default)]
pub struct Faults {
    /// Crash this many times right before committing a batch.
    pub crash_before_commit: AtomicU32,
    /// Crash this many times after committing a batch, before acking it.
    pub crash_after_commit: AtomicU32,
    /// The notifier's (its record step).
    pub notifier: Arc<notifier::record::Faults>,
    /// Fail this many of the payment saga's command sends after the gateway
    /// settled a payment or a refund, as a broker away at that moment does.
    pub saga_send_fail: AtomicU32,
}

impl Faults {
    /// Arms `more` failures of each kind (see [`crate::faults`]).
    pub fn add(&self, more: contracts::faults::FaultCounts) {
        let add = |c: &AtomicU32, n: u32| {
            c.fetch_add(n, Ordering::SeqCst);
        };
        add(&self.crash_before_commit, more.crash_before_commit);
        add(&self.crash_after_commit, more.crash_after_commit);
        add(&self.saga_send_fail, more.saga_send_fail);
        add(&self.notifier.fail_record, more.notifier_fail_record);
    }

    /// The failures of each kind still to come.
    pub fn left(&self) -> contracts::faults::FaultCounts {
        contracts::faults::FaultCounts {
            crash_before_commit: self.crash_before_commit.load(Ordering::SeqCst),
            crash_after_commit: self.crash_after_commit.load(Ordering::SeqCst),
            saga_send_fail: self.saga_send_fail.load(Ordering::SeqCst),
            notifier_fail_record: self.notifier.fail_record.load(Ordering::SeqCst),
        }
    }

    pub(crate) fn take(counter: &AtomicU32) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// What every runner of a process shares.
pub struct RunnerCtx {
    pub pool: PgPool,
    pub topology: Topology,
    pub amqp_url: String,
    pub settings: WorkerSettings,
    /// Identifies this process in `partitions.owner` and in consumer tags.
    pub owner: String,
    pub events: mpsc::Sender<Vec<OutboxRow>>,
    pub faults: Arc<Faults>,
    /// Live seat maps for browsing clients, written after each commit.
    pub seatmaps: SeatMapWriter,
    /// Publishes the copies of commands that can never be applied to the commands
    /// dead-letter exchange.
    pub dead_letters: ConfirmedPublisher,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionEnd {
    #[error("shutdown")]
    Shutdown,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<lapin::Error> for SessionEnd {
    fn from(e: lapin::Error) -> Self {
        SessionEnd::Failed(e.into())
    }
}

/// Longest pause between two sessions of a runner: a session that ended because the
/// broker went away starts again within this of the broker's return (a refused
/// connection costs nothing; a long pause only lengthens the outage).
const SESSION_RETRY_MAX: Duration = Duration::from_secs(1);

/// Runs partition `p` of `topo`'s layout until `shutdown`, reconnecting after
/// failures.
pub async fn run_partition(
    ctx: Arc<RunnerCtx>,
    topo: Topology,
    p: u16,
    shutdown: CancellationToken,
) {
    let label = topo.partition_label(p);
    let mut delay = Duration::from_millis(ctx.settings.retry_initial_ms).min(SESSION_RETRY_MAX);
    let max = Duration::from_millis(ctx.settings.retry_max_ms).min(SESSION_RETRY_MAX);
    loop {
        let started = Instant::now();
        match run_session(&ctx, &topo, p, &shutdown).await {
            Ok(()) | Err(SessionEnd::Shutdown) => return,
            Err(SessionEnd::Failed(e)) => {
                tracing::warn!(partition = %label, error = %e, retry_in = ?delay, "runner session ended");
            }
        }
        if started.elapsed() > max {
            delay = Duration::from_millis(ctx.settings.retry_initial_ms).min(max);
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(max);
    }
}

/// The in-memory side of a partition session.
pub(crate) struct Partition {
    pub(crate) p: u16,
    /// The names of its layout generation.
    pub(crate) topo: Topology,
    /// How logs and metrics name it.
    pub(crate) label: String,
    pub(crate) epoch: Option<i64>,
    shows: HashMap<ShowId, (ShowState, Instant)>,
    /// Once sealed (an old layout's partition past its seal marker): the layout its
    /// commands are forwarded to.
    pub(crate) sealed: Option<Topology>,
}

impl Partition {
    pub(crate) fn key(&self) -> store::PartitionRef {
        store::PartitionRef {
            generation: self.topo.generation,
            partition: self.p,
        }
    }
}

async fn run_session(
    ctx: &RunnerCtx,
    topo: &Topology,
    p: u16,
    shutdown: &CancellationToken,
) -> Result<(), SessionEnd> {
    let name = format!("{}-{}", ctx.owner, topo.partition_key(p));
    let conn = platform::amqp::connect(&ctx.amqp_url, &name).await?;
    let res = consume(ctx, topo, p, shutdown, &conn).await;
    drop(conn.close(200, "runner session over".into()).await);
    res
}

async fn consume(
    ctx: &RunnerCtx,
    topo: &Topology,
    p: u16,
    shutdown: &CancellationToken,
    conn: &lapin::Connection,
) -> Result<(), SessionEnd> {
    let mut part = Partition {
        p,
        topo: topo.clone(),
        label: topo.partition_label(p),
        epoch: None,
        shows: HashMap::new(),
        sealed: None,
    };
    // A partition of a later layout waits for its parent's seal (see `seal`).
    seal::wait_for_parent(ctx, &part, shutdown).await?;
    let ch = conn.create_channel().await?;
    ch.basic_qos(ctx.settings.prefetch, BasicQosOptions::default())
        .await?;
    let queue = topo.partition_queue(p);
    let tag = format!("{}-{}", ctx.owner, topo.partition_key(p));
    // Its own consumer, not `platform::amqp::consume`: a partition is consumed in
    // batches, acked at once after one database commit (see the module doc).
    let mut consumer = ch
        .basic_consume(
            queue.clone().into(),
            tag.clone().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(partition = %part.label, queue = %queue, "runner consuming (active when the broker says so)");
    let idle = Duration::from_secs(ctx.settings.show_idle_secs);
    // How often idle show states are looked for.
    let sweep_every = idle.min(Duration::from_secs(30));
    let mut last_sweep = Instant::now();
    loop {
        if last_sweep.elapsed() >= sweep_every {
            let now = Instant::now();
            part.shows
                .retain(|_, (_, used)| now.duration_since(*used) < idle);
            last_sweep = now;
        }
        let first = tokio::select! {
            () = shutdown.cancelled() => {
                drop(ch.basic_cancel(tag.clone().into(), BasicCancelOptions::default()).await);
                // Unacked deliveries (none between batches) go back to the queue.
                drop(ch.close(200, "shutdown".into()).await);
                return Err(SessionEnd::Shutdown);
            }
            () = tokio::time::sleep(sweep_every) => continue,
            d = consumer.next() => d,
        };
        let first = first.ok_or_else(|| anyhow::anyhow!("consumer stream ended"))??;
        let mut batch = vec![first];
        while batch.len() < ctx.settings.batch_size_max {
            match consumer.next().now_or_never() {
                Some(Some(Ok(d))) => batch.push(d),
                Some(Some(Err(e))) => return Err(e.into()),
                Some(None) | None => break,
            }
        }
        seal::process(ctx, &ch, &mut part, batch, shutdown).await?;
    }
}

/// Why a message cannot ever be applied.
pub(crate) fn poison_reason(
    d: &Delivery,
    topo: &Topology,
    p: u16,
) -> Result<CommandEnvelope, String> {
    let env: CommandEnvelope =
        serde_json::from_slice(&d.data).map_err(|e| format!("unparseable command: {e}"))?;
    let want = topo.partition_of(env.show_id);
    if want != p {
        return Err(format!(
            "command for show {} belongs to partition {want}, not {p}",
            env.show_id
        ));
    }
    Ok(env)
}

/// Where partition `p`'s commands that can never be applied go.
pub(crate) fn dead_letter_to(topo: &Topology, p: u16) -> DeadLetterTo {
    DeadLetterTo {
        exchange: topo.commands_dlx(),
        routing_key: topo.partition_key(p),
        source_queue: topo.partition_queue(p),
        metric_label: ("partition", topo.partition_label(p)),
    }
}

/// A batch after the apply-and-commit step: what was committed, and the commands
/// whose show cannot be loaded (with the reason), which the settle step dead-letters.
struct Applied {
    committed: Committed,
    unloadable: Vec<(CommandEnvelope, String)>,
}

pub(crate) async fn process_batch(
    ctx: &RunnerCtx,
    ch: &Channel,
    part: &mut Partition,
    batch: Vec<Delivery>,
    shutdown: &CancellationToken,
) -> Result<(), SessionEnd> {
    let p = part.p;
    let last_tag = batch.iter().map(|d| d.delivery_tag).max().unwrap_or(0);
    let mut commands = Vec::with_capacity(batch.len());
    let mut poison = Vec::new();
    for d in &batch {
        match poison_reason(d, &part.topo, p) {
            Ok(env) => commands.push(env),
            Err(reason) => poison.push((d, reason)),
        }
    }
    metrics::histogram!("runner_batch_size", "partition" => part.label.clone())
        .record(batch.len() as f64);

    if Faults::take(&ctx.faults.crash_before_commit) {
        return Err(SessionEnd::Failed(anyhow::anyhow!(
            "injected crash before commit"
        )));
    }
    let applied = commit_with_retry(ctx, part, &commands, shutdown).await?;
    if Faults::take(&ctx.faults.crash_after_commit) {
        return Err(SessionEnd::Failed(anyhow::anyhow!(
            "injected crash after commit"
        )));
    }
    // Settle. Dead-lettering comes after the commit and before the ack: a failure
    // here ends the session unacked, and the redelivery finds the committed commands
    // in the inbox and sets the same ones aside again.
    let to = dead_letter_to(&part.topo, p);
    for (d, reason) in poison {
        platform::amqp::dead_letter(&ctx.dead_letters, &to, Parcel::of(d), &reason)
            .await
            .map_err(anyhow::Error::from)?;
    }
    for (cmd, reason) in &applied.unloadable {
        let body = serde_json::to_vec(cmd).unwrap_or_default();
        let mut headers = FieldTable::default();
        if let Some(rid) = &cmd.request_id {
            headers.insert(
                REQUEST_ID_HEADER.into(),
                AMQPValue::LongString(LongString::from(rid.clone())),
            );
        }
        let parcel = Parcel::new(cmd.message_id.to_string(), &body).with_headers(headers);
        platform::amqp::dead_letter(&ctx.dead_letters, &to, parcel, reason)
            .await
            .map_err(anyhow::Error::from)?;
    }
    ch.basic_ack(last_tag, BasicAckOptions { multiple: true })
        .await?;
    let Committed { outbox, versions } = applied.committed;
    ctx.seatmaps.publish(
        versions
            .into_iter()
            .filter_map(|(show, version)| {
                let (state, _) = part.shows.get(&show)?;
                Some((show, snapshot(state, version)))
            })
            .collect(),
    );
    if !outbox.is_empty() && ctx.events.send(outbox).await.is_err() {
        tracing::warn!("event publisher gone; the outbox relay will publish");
    }
    Ok(())
}

/// Applies and commits `commands`, retrying a transient failure with bounded
/// backoff until it commits, the partition is fenced, or shutdown.
async fn commit_with_retry(
    ctx: &RunnerCtx,
    part: &mut Partition,
    commands: &[CommandEnvelope],
    shutdown: &CancellationToken,
) -> Result<Applied, SessionEnd> {
    let mut delay = Duration::from_millis(ctx.settings.retry_initial_ms);
    let max = Duration::from_millis(ctx.settings.retry_max_ms);
    loop {
        match try_commit(ctx, part, commands).await {
            Ok(applied) => return Ok(applied),
            Err(StoreError::Fenced { epoch, .. }) => {
                tracing::warn!(
                    partition = %part.label,
                    epoch,
                    "fenced: another runner owns this partition"
                );
                part.epoch = None;
                part.shows.clear();
                return Err(SessionEnd::Failed(anyhow::anyhow!(
                    "fenced at epoch {epoch}"
                )));
            }
            Err(e) => {
                // Transient (or unknown): the in-memory states may be ahead of the
                // database; reload them on the next try. Never dead-letter here.
                part.shows.clear();
                metrics::counter!("runner_commit_retries_total", "partition" => part.label.clone())
                    .increment(1);
                tracing::warn!(partition = %part.label, error = %e, retry_in = ?delay, "batch commit failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return Err(SessionEnd::Shutdown),
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(max);
            }
        }
    }
}

/// This session's epoch of the partition: acquired on its first batch.
pub(crate) async fn acquire(ctx: &RunnerCtx, part: &mut Partition) -> Result<i64, StoreError> {
    if let Some(e) = part.epoch {
        return Ok(e);
    }
    let e = store::acquire_partition(&ctx.pool, part.key(), &ctx.owner).await?;
    tracing::info!(partition = %part.label, epoch = e, owner = %ctx.owner, "partition acquired");
    ctx.seatmaps
        .refresh_recent(ctx.pool.clone(), part.topo.clone(), part.p);
    part.shows.clear();
    part.epoch = Some(e);
    Ok(e)
}

/// Acquires the partition if needed, applies the not-yet-processed commands, and
/// commits: database work only. Commands for a show that cannot be loaded are
/// returned with the reason, for the caller to dead-letter.
async fn try_commit(
    ctx: &RunnerCtx,
    part: &mut Partition,
    commands: &[CommandEnvelope],
) -> Result<Applied, StoreError> {
    let epoch = acquire(ctx, part).await?;
    let ids: Vec<Uuid> = commands.iter().map(|c| c.message_id.0).collect();
    let seen: std::collections::HashSet<Uuid> = if ids.is_empty() {
        Default::default()
    } else {
        store::already_processed(&ctx.pool, &ids)
            .await?
            .into_iter()
            .collect()
    };
    // Time spent in the pure sequencer only (show loads excluded).
    let mut apply_time = Duration::ZERO;
    let mut events = Vec::new();
    let mut applied = Vec::with_capacity(commands.len());
    let mut unloadable = Vec::new();
    // Message ids met in this batch (a duplicate within one batch applies once).
    let mut seen_now = std::collections::HashSet::with_capacity(commands.len());
    let now = Instant::now();
    for cmd in commands {
        if seen.contains(&cmd.message_id.0) || !seen_now.insert(cmd.message_id.0) {
            continue;
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = part.shows.entry(cmd.show_id) {
            match store::load_show_state(&ctx.pool, cmd.show_id).await {
                Ok(Some(state)) => {
                    slot.insert((state, now));
                }
                Ok(None) | Err(StoreError::BadShow(..)) => {
                    // A show that does not exist (or whose layout is broken) can never
                    // take this command: set it aside with the reason and move on. Not
                    // recorded in the inbox: a replay after the show is fixed applies it.
                    let reason = format!("show {} cannot be loaded", cmd.show_id);
                    unloadable.push((cmd.clone(), reason));
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        let (state, used) = part.shows.get_mut(&cmd.show_id).expect("loaded just above");
        *used = now;
        let span = tracing::info_span!("sequencer.apply", partition = %part.label, booking_id = %cmd.command.booking_id());
        platform::trace::attach(&span, cmd.trace);
        let _entered = span.enter();
        let apply_started = Instant::now();
        let out = state.apply(cmd);
        apply_time += apply_started.elapsed();
        if let Some(rid) = &cmd.request_id {
            tracing::debug!(request_id = %rid, booking_id = %cmd.command.booking_id(), "applied");
        }
        for e in &out {
            tracing::info!(
                partition = %part.label,
                booking_id = %e.booking_id,
                event = e.event.routing_key(),
                request_id = cmd.request_id.as_deref().unwrap_or(""),
                trace_id = %cmd.trace.map(|t| t.trace_id_hex()).unwrap_or_default(),
                "booking decided"
            );
        }
        events.extend(out);
        applied.push(cmd.message_id.0);
    }
    metrics::histogram!("sequencer_apply_seconds", "partition" => part.label.clone())
        .record(apply_time.as_secs_f64());
    let started = Instant::now();
    let committed = store::commit_batch(
        &ctx.pool,
        part.key(),
        epoch,
        &ctx.topology.events_exchange(),
        &applied,
        &events,
    )
    .await?;
    metrics::histogram!("runner_commit_seconds", "partition" => part.label.clone())
        .record(started.elapsed().as_secs_f64());
    Ok(Applied {
        committed,
        unloadable,
    })
}
