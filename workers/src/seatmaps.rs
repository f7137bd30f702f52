//! Publishing live seat maps to Redis after each commit (see `platform::seatmap`).
//!
//! The runner holds every touched show's full state in memory, so it writes each
//! touched show's whole compact map (not a delta) with the version its commit gave
//! it: a lost or reordered write is healed by the next one, and the store refuses
//! anything older than what it holds. Redis is best effort here: the write runs in
//! its own task after the ack, and a failure only logs, counts, and deletes the keys
//! so that readers rebuild from PostgreSQL instead of trusting a map that missed a
//! commit.

use contracts::ShowId;
use platform::cache::Keys;
use platform::seatmap::{self, SeatMap};
use redis::aio::ConnectionManager;
use sequencer::{SeatStatus, ShowState};

/// Where and how long seat maps are written.
#[derive(Clone)]
pub struct SeatMapWriter {
    pub redis: ConnectionManager,
    pub keys: Keys,
    pub ttl_secs: u64,
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
    map
}

impl SeatMapWriter {
    /// Writes `maps` in one round trip, in the background: never delays the caller.
    pub fn publish(&self, maps: Vec<(ShowId, SeatMap)>) {
        if maps.is_empty() {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move { this.write(maps).await });
    }

    async fn write(mut self, maps: Vec<(ShowId, SeatMap)>) {
        let keyed: Vec<(String, &SeatMap)> = maps
            .iter()
            .map(|(show, map)| (self.keys.seatmap(*show), map))
            .collect();
        match seatmap::store_if_newer(&mut self.redis, &keyed, self.ttl_secs).await {
            Ok(stored) => {
                let refused = stored.iter().filter(|s| !**s).count();
                if refused > 0 {
                    // A newer map got there first (a reordered write or a rebuild).
                    metrics::counter!("seatmap_writes_refused_total").increment(refused as u64);
                }
            }
            Err(e) => {
                metrics::counter!("seatmap_write_failures_total").increment(1);
                let keys: Vec<String> = keyed.into_iter().map(|(k, _)| k).collect();
                let forgot = seatmap::forget(&mut self.redis, &keys).await;
                tracing::warn!(
                    error = %e,
                    shows = keys.len(),
                    forgot = forgot.is_ok(),
                    "seat map write failed; readers rebuild from PostgreSQL"
                );
            }
        }
    }
}
