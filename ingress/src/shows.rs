//! A short-lived in-process cache of shows, so that validating a booking does not
//! query PostgreSQL on every request. Loads are single-flight per show: ten thousand
//! requests for a cold hot show cause one query.

use contracts::{LayoutSeat, SeatId, ShowId};
use platform::catalog::{ShowRecord, load_show};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// A show with its seats indexed for validation.
#[derive(Debug)]
pub struct CachedShow {
    pub record: ShowRecord,
    pub seats: HashMap<SeatId, LayoutSeat>,
}

type Slot = Arc<OnceCell<Option<Arc<CachedShow>>>>;

#[derive(Clone)]
pub struct ShowCache {
    pool: PgPool,
    ttl: Duration,
    slots: Arc<Mutex<HashMap<ShowId, (Instant, Slot)>>>,
}

/// Most shows kept; past it the cache starts over (bounded memory).
const MAX_CACHED_SHOWS: usize = 10_000;

impl ShowCache {
    pub fn new(pool: PgPool, ttl: Duration) -> Self {
        Self {
            pool,
            ttl,
            slots: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The show, or `None` if it does not exist.
    pub async fn get(&self, show: ShowId) -> Result<Option<Arc<CachedShow>>, sqlx::Error> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let fresh = slots
                .get(&show)
                .filter(|(at, _)| now.duration_since(*at) < self.ttl)
                .map(|(_, s)| s.clone());
            match fresh {
                Some(s) => s,
                None => {
                    if slots.len() >= MAX_CACHED_SHOWS {
                        slots.clear();
                    }
                    let s: Slot = Arc::new(OnceCell::new());
                    slots.insert(show, (now, s.clone()));
                    s
                }
            }
        };
        let res = slot
            .get_or_try_init(|| async {
                Ok::<_, sqlx::Error>(load_show(&self.pool, show).await?.map(|record| {
                    let seats = record
                        .layout
                        .seats()
                        .map(|(id, s)| (id, s.clone()))
                        .collect();
                    Arc::new(CachedShow { record, seats })
                }))
            })
            .await;
        match res {
            Ok(v) => Ok(v.clone()),
            Err(e) => {
                // Do not cache failures.
                self.slots
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&show);
                Err(e)
            }
        }
    }
}
