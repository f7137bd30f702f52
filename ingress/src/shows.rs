//! Short-lived in-process caches of shows and screen layouts, so that validating a
//! booking or drawing a seat map does not query PostgreSQL on every request.
//!
//! A show's own row (status, start, prices) is small and may change (a show goes off
//! sale, is cancelled): it is trusted for `ingress.show_cache_ttl_secs`. Its screen's
//! layout is large and shared by every show of the screen (47,000 shows use 800
//! layouts in the large catalog): it is cached per screen, indexed once, for a
//! minute. Both loads are single-flight: ten thousand requests for a cold show cause
//! one query of each kind. Neither cache decides anything: the sequencer checks every
//! booking against its own state, loaded from PostgreSQL.

use crate::memo::Memo;
use contracts::{LayoutSeat, ScreenLayout, SeatId, ShowId};
use platform::catalog::{ShowInfo, load_layout, load_show_info};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A screen's layout with its seats indexed for validation.
#[derive(Debug)]
pub struct CachedScreen {
    pub layout: ScreenLayout,
    pub seats: HashMap<SeatId, LayoutSeat>,
}

/// A show with its screen.
#[derive(Debug)]
pub struct CachedShow {
    pub info: Arc<ShowInfo>,
    pub screen: Arc<CachedScreen>,
}

/// Most shows and screens kept; past it a cache starts over (bounded memory).
const MAX_CACHED_SHOWS: usize = 100_000;
const MAX_CACHED_SCREENS: usize = 10_000;
/// How long a screen's layout is trusted. A layout can only change while none of
/// the screen's shows has live seats, so a stale one can only make ingress refuse
/// or accept a seat id the sequencer then decides on correctly.
const SCREEN_TTL: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct ShowCache {
    pool: PgPool,
    shows: Memo<ShowId, Option<Arc<ShowInfo>>>,
    screens: Memo<uuid::Uuid, Option<Arc<CachedScreen>>>,
}

impl ShowCache {
    pub fn new(pool: PgPool, ttl: Duration) -> Self {
        Self {
            pool,
            shows: Memo::new(ttl, MAX_CACHED_SHOWS),
            screens: Memo::new(SCREEN_TTL, MAX_CACHED_SCREENS),
        }
    }

    /// The show, or `None` if it does not exist.
    pub async fn get(&self, show: ShowId) -> Result<Option<Arc<CachedShow>>, sqlx::Error> {
        let info = self
            .shows
            .get_or_try_load(show, || async {
                Ok::<_, sqlx::Error>(load_show_info(&self.pool, show).await?.map(Arc::new))
            })
            .await?;
        let Some(info) = info else {
            return Ok(None);
        };
        let screen_id = info.screen_id;
        let screen = self
            .screens
            .get_or_try_load(screen_id, || async {
                Ok::<_, sqlx::Error>(load_layout(&self.pool, screen_id).await?.map(|layout| {
                    let seats = layout.seats().map(|(id, s)| (id, s.clone())).collect();
                    Arc::new(CachedScreen { layout, seats })
                }))
            })
            .await?;
        Ok(screen.map(|screen| {
            Arc::new(CachedShow {
                info: info.clone(),
                screen,
            })
        }))
    }
}
