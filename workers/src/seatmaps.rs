//! Publishing live seat maps to Redis after each commit (see `platform::seatmap`).
//!
//! The runner holds every touched show's full state in memory, so it writes each
//! touched show's whole compact map (not a delta) with the version its commit gave
//! it: a lost or reordered write is healed by the next one, and the store refuses
//! anything older than what it holds. Redis is best effort here: the write runs in
//! its own task after the ack, and a failure only logs, counts, retries a few times
//! with backoff (a late retry is harmless: the store refuses it if something newer
//! landed), and finally deletes the keys so that readers rebuild from PostgreSQL
//! instead of trusting a map that missed a commit.
//!
//! A runner that dies between its commit and its write leaves maps behind; the
//! next owner of the partition rewrites the maps of the partition's recently
//! changed shows from PostgreSQL when it takes over ([`SeatMapWriter::refresh_recent`]).

use contracts::{ShowId, Topology};
use platform::cache::Keys;
use platform::cache::Redis;
use platform::seatmap::{self, SeatMap};
use sequencer::{SeatStatus, ShowState};
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Attempts of one write, and the first pause between them (doubling): about 6 s
/// in all, enough to ride out a Redis restart.
const WRITE_ATTEMPTS: u32 = 6;
const RETRY_FIRST_MS: u64 = 200;
/// Writes retrying at once, at most; past it a failed write is not retried (its
/// keys are deleted at once), so an outage cannot pile up tasks.
const RETRYING_MAX: usize = 64;
/// How far back (in events, across all shows) a new partition owner looks for
/// shows whose maps a dead runner may have left behind, and at most how many.
const RECENT_EVENTS: i64 = 10_000;
const REFRESH_SHOWS_MAX: i64 = 2_000;

/// Where and how long seat maps are written.
#[derive(Clone)]
pub struct SeatMapWriter {
    redis: Redis,
    keys: Keys,
    ttl_secs: u64,
    retrying: Arc<AtomicUsize>,
}

/// The compact map of `state` at `version`.
pub fn snapshot(state: &ShowState, version: i64) -> SeatMap {
    let mut map = SeatMap {
        version,
        ..SeatMap::default()
    };
    for (seat, status) in state.seats() {
        match status {
            SeatStatus::Held => map.held.push(seat.as_str().to_owned()),
            SeatStatus::Sold => map.sold.push(seat.as_str().to_owned()),
            SeatStatus::Available | SeatStatus::Blocked => {}
        }
    }
    map.zones = state
        .zones()
        .filter(|z| z.available < z.capacity)
        .map(|z| (z.id.to_owned(), z.capacity - z.available))
        .collect();
    map.zones.sort();
    map
}

impl SeatMapWriter {
    pub fn new(redis: Redis, keys: Keys, ttl_secs: u64) -> Self {
        Self {
            redis,
            keys,
            ttl_secs,
            retrying: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Writes `maps` in one round trip, in the background: never delays the caller.
    pub fn publish(&self, maps: Vec<(ShowId, SeatMap)>) {
        if maps.is_empty() {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move { this.write(maps).await });
    }

    /// Rewrites, in the background, the maps of partition `p`'s shows changed by
    /// the last [`RECENT_EVENTS`] events, from PostgreSQL (versions keep this from
    /// replacing anything newer).
    pub fn refresh_recent(&self, pool: PgPool, topology: Topology, p: u16) {
        let this = self.clone();
        tokio::spawn(async move {
            match recent_maps(&pool, &topology, p).await {
                Ok(maps) => this.write(maps).await,
                Err(e) => tracing::warn!(partition = p, error = %e, "seat maps not refreshed"),
            }
        });
    }

    async fn write(mut self, maps: Vec<(ShowId, SeatMap)>) {
        let keyed: Vec<(String, &SeatMap)> = maps
            .iter()
            .map(|(show, map)| (self.keys.seatmap(*show), map))
            .collect();
        if self.try_store(&keyed, 1).await {
            return;
        }
        // Take a retry slot, or give up at once when too many writes are retrying.
        if self.retrying.fetch_add(1, Ordering::SeqCst) < RETRYING_MAX {
            let mut delay = Duration::from_millis(RETRY_FIRST_MS);
            for attempt in 2..=WRITE_ATTEMPTS {
                tokio::time::sleep(delay).await;
                delay *= 2;
                if self.try_store(&keyed, attempt).await {
                    self.retrying.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
            }
        }
        self.retrying.fetch_sub(1, Ordering::SeqCst);
        self.forget(&keyed).await;
    }

    /// One attempt; `false` when Redis failed.
    async fn try_store(&mut self, keyed: &[(String, &SeatMap)], attempt: u32) -> bool {
        match seatmap::store_if_newer(&mut self.redis, keyed, self.ttl_secs).await {
            Ok(stored) => {
                let refused = stored.iter().filter(|s| !**s).count();
                if refused > 0 {
                    // A newer map got there first (a reordered write or a rebuild).
                    metrics::counter!("seatmap_writes_refused_total").increment(refused as u64);
                }
                true
            }
            Err(e) => {
                metrics::counter!("seatmap_write_failures_total").increment(1);
                tracing::warn!(error = %e, attempt, shows = keyed.len(), "seat map write failed");
                false
            }
        }
    }

    /// Best effort: readers rebuild from PostgreSQL rather than trust these maps.
    async fn forget(&mut self, keyed: &[(String, &SeatMap)]) {
        let keys: Vec<String> = keyed.iter().map(|(k, _)| k.clone()).collect();
        if let Err(e) = seatmap::forget(&mut self.redis, &keys).await {
            tracing::warn!(error = %e, shows = keys.len(), "stale seat maps not deleted");
        }
    }
}

/// The maps, as PostgreSQL has them, of partition `p`'s recently changed shows.
async fn recent_maps(
    pool: &PgPool,
    topology: &Topology,
    p: u16,
) -> Result<Vec<(ShowId, SeatMap)>, sqlx::Error> {
    let shows: Vec<uuid::Uuid> = sqlx::query_scalar(
        "select distinct show_id from booking_events
          where seq > (select coalesce(max(seq), 0) from booking_events) - $1
          limit $2",
    )
    .bind(RECENT_EVENTS)
    .bind(REFRESH_SHOWS_MAX)
    .fetch_all(pool)
    .await?;
    let mine: Vec<ShowId> = shows
        .into_iter()
        .map(ShowId)
        .filter(|s| topology.partition_of(*s) == p)
        .collect();
    if mine.is_empty() {
        return Ok(vec![]);
    }
    seatmap::rebuild_many(pool, &mine).await
}
