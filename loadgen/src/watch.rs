//! The watcher: notes when the loadgen first sees each accepted booking decided in
//! PostgreSQL.
//!
//! Two ways, chosen with `--watch`:
//!
//! - `tail` (the default): reads the new rows of `booking_events` by `seq` (a range
//!   scan of the primary key). A booking's first event (`booking.held` or
//!   `booking.rejected`) commits in the same transaction as its `bookings` row, so it
//!   becomes visible at the same moment. Sequence numbers are handed out before
//!   commit, so a transaction of one runner can become visible after a later number
//!   of another runner: each poll re-reads everything above the high-water mark of
//!   `--lookback-ms` ago, and once a second the pending bookings older than twice
//!   that are looked up by id, so nothing is missed for long.
//! - `probe`: looks up every pending id in `bookings` at each poll
//!   (`id = any($1)`). Simple, but each id is an index probe: with thousands pending
//!   it costs PostgreSQL tens of milliseconds per poll, CPU the system under test
//!   needs on a small machine.

use crate::fire::Accepted;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Tail,
    Probe,
}

/// A decision as the watcher saw it.
pub struct Decision {
    pub held: bool,
    /// When the request was sent, from the start of the run.
    pub submitted: Duration,
    /// When the watcher first saw the row, from the start of the run.
    pub seen: Duration,
}

pub struct Watched {
    pub decided: HashMap<Uuid, Decision>,
    /// Accepted bookings without a row when the wait ran out (id, submit time).
    pub undecided: Vec<(Uuid, Duration)>,
    /// Decisions other than held or rejected (none expected: the run never pays).
    pub other_statuses: HashMap<String, u64>,
    pub polls: u64,
    pub poll_time: Duration,
    pub poll_max: Duration,
    pub max_pending: usize,
    /// Decisions the tail missed (below its high-water mark) and the once-a-second
    /// lookup by id found: should be 0; if not, raise `--lookback-ms`.
    pub missed_by_tail: usize,
}

pub struct Options {
    pub mode: Mode,
    pub every: Duration,
    pub lookback: Duration,
    pub limit: Duration,
}

struct State {
    w: Watched,
    pending: HashMap<Uuid, Duration>,
    /// Decisions seen before their 202 reached the loadgen (id -> held, seen).
    early: HashMap<Uuid, (bool, Duration)>,
}

impl State {
    fn decide(&mut self, id: Uuid, status: &str, seen: Duration) -> bool {
        let held = match status {
            "held" | "booking.held" => true,
            "rejected" | "booking.rejected" => false,
            "queued" => return false,
            other => {
                *self.w.other_statuses.entry(other.to_owned()).or_default() += 1;
                false
            }
        };
        if let Some(submitted) = self.pending.remove(&id) {
            self.w.decided.insert(
                id,
                Decision {
                    held,
                    submitted,
                    seen,
                },
            );
            true
        } else {
            if !self.w.decided.contains_key(&id) {
                self.early.entry(id).or_insert((held, seen));
            }
            false
        }
    }

    fn accept(&mut self, a: Accepted) {
        match self.early.remove(&a.id) {
            Some((held, seen)) => {
                self.w.decided.insert(
                    a.id,
                    Decision {
                        held,
                        submitted: a.submitted,
                        seen,
                    },
                );
            }
            None => {
                self.pending.insert(a.id, a.submitted);
            }
        }
    }
}

async fn probe(pool: &sqlx::PgPool, ids: &[Uuid]) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as("select id, status from bookings where id = any($1) and status <> 'queued'")
        .bind(ids)
        .fetch_all(pool)
        .await
}

/// Polls every `every` (after the previous query returned) until the sender side
/// of `rx` is gone and nothing is pending, or `limit` has passed since the sender
/// went away.
pub async fn watch(
    pool: sqlx::PgPool,
    mut rx: mpsc::UnboundedReceiver<Accepted>,
    t0: Instant,
    opts: Options,
) -> anyhow::Result<Watched> {
    let mut s = State {
        w: Watched {
            decided: HashMap::new(),
            undecided: vec![],
            other_statuses: HashMap::new(),
            polls: 0,
            poll_time: Duration::ZERO,
            poll_max: Duration::ZERO,
            max_pending: 0,
            missed_by_tail: 0,
        },
        pending: HashMap::new(),
        early: HashMap::new(),
    };
    // The high-water mark of booking_events before the run, then after each poll.
    let start: i64 = sqlx::query_scalar("select coalesce(max(seq), 0) from booking_events")
        .fetch_one(&pool)
        .await?;
    let mut marks: VecDeque<(Instant, i64)> = VecDeque::from([(Instant::now(), start)]);
    let mut high = start;
    let mut last_sweep = Instant::now();
    let mut closed_at: Option<Instant> = None;
    loop {
        loop {
            match rx.try_recv() {
                Ok(a) => s.accept(a),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    closed_at.get_or_insert_with(Instant::now);
                    break;
                }
            }
        }
        s.w.max_pending = s.w.max_pending.max(s.pending.len());
        let started = Instant::now();
        match opts.mode {
            Mode::Probe => {
                if !s.pending.is_empty() {
                    let ids: Vec<Uuid> = s.pending.keys().copied().collect();
                    let rows = probe(&pool, &ids).await?;
                    let seen = t0.elapsed();
                    for (id, status) in rows {
                        s.decide(id, &status, seen);
                    }
                }
            }
            Mode::Tail => {
                // Re-read from the newest mark at least `lookback` old.
                let now = Instant::now();
                while marks.len() > 1 && now.duration_since(marks[1].0) >= opts.lookback {
                    marks.pop_front();
                }
                let floor = marks.front().map_or(start, |m| m.1);
                let rows: Vec<(i64, Uuid, String)> = sqlx::query_as(
                    "select seq, booking_id, type from booking_events
                      where seq > $1 and type in ('booking.held', 'booking.rejected')",
                )
                .bind(floor)
                .fetch_all(&pool)
                .await?;
                let seen = t0.elapsed();
                for (seq, id, kind) in rows {
                    high = high.max(seq);
                    s.decide(id, &kind, seen);
                }
                marks.push_back((Instant::now(), high));
                // The safety net: pending bookings old enough that the tail should
                // have seen them are looked up by id, once a second.
                if last_sweep.elapsed() >= Duration::from_secs(1) {
                    last_sweep = Instant::now();
                    let old = seen.saturating_sub(opts.lookback * 2);
                    let ids: Vec<Uuid> = s
                        .pending
                        .iter()
                        .filter(|(_, sub)| **sub < old)
                        .map(|(id, _)| *id)
                        .collect();
                    if !ids.is_empty() {
                        // With each decision's seq: one above the tail's high-water
                        // mark committed after the tail's query (a race, not a miss).
                        let rows: Vec<(Uuid, String, i64)> = sqlx::query_as(
                            "select e.booking_id, e.type, e.seq from booking_events e
                              where e.booking_id = any($1)
                                and e.type in ('booking.held', 'booking.rejected')",
                        )
                        .bind(&ids)
                        .fetch_all(&pool)
                        .await?;
                        let seen = t0.elapsed();
                        for (id, kind, seq) in rows {
                            if s.decide(id, &kind, seen) && seq <= high {
                                s.w.missed_by_tail += 1;
                            }
                        }
                    }
                }
            }
        }
        let took = started.elapsed();
        s.w.polls += 1;
        s.w.poll_time += took;
        s.w.poll_max = s.w.poll_max.max(took);
        if let Some(at) = closed_at {
            if s.pending.is_empty() {
                break;
            }
            if at.elapsed() > opts.limit {
                s.w.undecided = s.pending.drain().collect();
                break;
            }
        }
        tokio::time::sleep(opts.every).await;
    }
    Ok(s.w)
}
