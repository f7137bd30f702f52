//! What the database says about a run once its requests are answered: when each
//! booking was decided, how many were paid, and the oversell check.

use crate::report::{histogram, micros};
use crate::watch;
use hdrhistogram::Histogram;
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Submit -> decided, as loadgen saw it and by the database's clock.
pub struct Decisions {
    pub decided: usize,
    pub held: usize,
    pub rejected: usize,
    pub decided_us: Histogram<u64>,
    pub held_us: Histogram<u64>,
    pub db_decided_us: Histogram<u64>,
    pub first_submit: Duration,
    pub last_seen: Duration,
    /// Start (unix seconds) of the last deciding transaction; `f64::MIN` when none.
    pub db_last: f64,
}

pub async fn decisions(
    pool: &PgPool,
    w: &watch::Watched,
    t0_epoch: f64,
) -> anyhow::Result<Decisions> {
    let mut decided_us = histogram();
    let mut held_us = histogram();
    let mut first_submit = Duration::MAX;
    let mut last_seen = Duration::ZERO;
    let mut held = 0usize;
    for d in w.decided.values() {
        let lat = micros(d.seen.saturating_sub(d.submitted));
        decided_us.saturating_record(lat);
        if d.held {
            held += 1;
            held_us.saturating_record(lat);
        }
        first_submit = first_submit.min(d.submitted);
        last_seen = last_seen.max(d.seen);
    }
    // The database's own clock: the first event of each booking was recorded in the
    // transaction that decided it (`recorded_at` = that transaction's start).
    let ids: Vec<Uuid> = w.decided.keys().copied().collect();
    let recorded: Vec<(Uuid, f64)> = sqlx::query_as(
        "select booking_id, extract(epoch from min(recorded_at))::float8
           from booking_events where booking_id = any($1) group by booking_id",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    let mut db_decided_us = histogram();
    let mut db_last = f64::MIN;
    for (id, at) in &recorded {
        if let Some(d) = w.decided.get(id) {
            let submit_epoch = t0_epoch + d.submitted.as_secs_f64();
            db_decided_us.saturating_record(((at - submit_epoch).max(0.0) * 1e6) as u64);
            db_last = db_last.max(*at);
        }
    }
    let decided = w.decided.len();
    Ok(Decisions {
        decided,
        held,
        rejected: decided - held,
        decided_us,
        held_us,
        db_decided_us,
        first_submit,
        last_seen,
        db_last,
    })
}

/// held -> payment_pending -> confirmed (or failed), for a run that pays.
pub struct Payments {
    pub held: usize,
    pub confirmed: usize,
    pub confirmed_us: Histogram<u64>,
    /// First submit to the last confirmation, in seconds.
    pub window_s: f64,
    /// Held bookings still `held` or `payment_pending` when waiting stopped.
    pub unpaid: i64,
}

impl Payments {
    /// Nothing paid (yet): `held` bookings, none confirmed.
    pub fn none(held: usize) -> Self {
        Payments {
            held,
            confirmed: 0,
            confirmed_us: histogram(),
            window_s: 0.0,
            unpaid: 0,
        }
    }
}

/// Waits (up to `wait`) until every held booking is paid or failed, then reads when
/// each was confirmed.
pub async fn payments(
    pool: &PgPool,
    w: &watch::Watched,
    t0_epoch: f64,
    first_submit: Duration,
    wait: Duration,
) -> anyhow::Result<Payments> {
    let held_ids: Vec<Uuid> = w
        .decided
        .iter()
        .filter(|(_, d)| d.held)
        .map(|(id, _)| *id)
        .collect();
    let mut out = Payments::none(held_ids.len());
    if held_ids.is_empty() {
        return Ok(out);
    }
    let deadline = Instant::now() + wait;
    loop {
        out.unpaid = sqlx::query_scalar(
            "select count(*) from bookings
              where id = any($1) and status in ('held', 'payment_pending')",
        )
        .bind(&held_ids)
        .fetch_one(pool)
        .await?;
        if out.unpaid == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows: Vec<(Uuid, f64)> = sqlx::query_as(
        "select booking_id, extract(epoch from recorded_at)::float8 from booking_events
          where booking_id = any($1) and type = 'booking.confirmed'",
    )
    .bind(&held_ids)
    .fetch_all(pool)
    .await?;
    let first_submit_epoch = t0_epoch + first_submit.as_secs_f64();
    let mut last = first_submit_epoch;
    let mut confirmed_us = histogram();
    for (id, at) in &rows {
        if let Some(d) = w.decided.get(id) {
            let submit_epoch = t0_epoch + d.submitted.as_secs_f64();
            confirmed_us.saturating_record(((at - submit_epoch).max(0.0) * 1e6) as u64);
            last = last.max(*at);
        }
    }
    out.confirmed = rows.len();
    out.confirmed_us = confirmed_us;
    out.window_s = last - first_submit_epoch;
    Ok(out)
}

/// The oversell check: no seat live twice, no show over its capacity.
pub struct Oversell {
    pub doubled: i64,
    pub over_capacity: Vec<(Uuid, i64)>,
    pub live_seats: i64,
    pub total_capacity: usize,
    pub full_shows: usize,
}

impl Oversell {
    pub fn ok(&self) -> bool {
        self.doubled == 0 && self.over_capacity.is_empty()
    }
}

pub async fn oversell(pool: &PgPool, capacity: &HashMap<Uuid, usize>) -> anyhow::Result<Oversell> {
    let show_ids: Vec<Uuid> = capacity.keys().copied().collect();
    let doubled: i64 = sqlx::query_scalar(
        "select count(*) from (
             select show_id, seat_id from booking_seats
              where released_at is null and show_id = any($1)
              group by 1, 2 having count(*) > 1) x",
    )
    .bind(&show_ids)
    .fetch_one(pool)
    .await?;
    let live: Vec<(Uuid, i64)> = sqlx::query_as(
        "select show_id, count(*) from booking_seats
          where released_at is null and show_id = any($1) group by 1",
    )
    .bind(&show_ids)
    .fetch_all(pool)
    .await?;
    let seats = |n: i64| usize::try_from(n).unwrap_or(usize::MAX);
    Ok(Oversell {
        doubled,
        live_seats: live.iter().map(|(_, n)| n).sum(),
        over_capacity: live
            .iter()
            .filter(|(s, n)| seats(*n) > capacity[s])
            .copied()
            .collect(),
        total_capacity: capacity.values().sum(),
        full_shows: live
            .iter()
            .filter(|(s, n)| seats(*n) == capacity[s])
            .count(),
    })
}
