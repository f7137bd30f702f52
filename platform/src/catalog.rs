//! Reads of the catalog that more than one process needs (ingress validates a
//! booking against a show; the sequencer runner loads a show to allocate its seats).

use contracts::{Millis, Price, ScreenLayout, ShowId};
use sqlx::PgPool;

/// A show as booking needs it.
#[derive(Debug, Clone)]
pub struct ShowRecord {
    pub show_id: ShowId,
    /// `scheduled`, `on_sale` or `cancelled`.
    pub status: String,
    pub starts_at: Millis,
    pub layout: ScreenLayout,
    pub prices: Vec<Price>,
}

impl ShowRecord {
    /// On sale at `now`: status `on_sale` and not started yet.
    pub fn on_sale_at(&self, now: Millis) -> bool {
        self.status == "on_sale" && now < self.starts_at
    }
}

/// Loads a show, its screen's layout and its prices; `None` if there is no such show.
#[tracing::instrument(skip(pool), fields(show_id = %show))]
pub async fn load_show(pool: &PgPool, show: ShowId) -> Result<Option<ShowRecord>, sqlx::Error> {
    let row: Option<(String, i64, sqlx::types::Json<ScreenLayout>)> = sqlx::query_as(
        "select s.status, (extract(epoch from s.starts_at) * 1000)::bigint, sc.layout
           from shows s join screens sc on sc.id = s.screen_id
          where s.id = $1",
    )
    .bind(show.0)
    .fetch_optional(pool)
    .await?;
    let Some((status, starts_at, layout)) = row else {
        return Ok(None);
    };
    let prices: Vec<(String, i64, String)> = sqlx::query_as(
        "select seat_type, amount, currency from show_prices where show_id = $1 order by seat_type",
    )
    .bind(show.0)
    .fetch_all(pool)
    .await?;
    Ok(Some(ShowRecord {
        show_id: show,
        status,
        starts_at: Millis(starts_at),
        layout: layout.0,
        prices: prices
            .into_iter()
            .map(|(seat_type, amount, currency)| Price {
                seat_type,
                amount,
                currency,
            })
            .collect(),
    }))
}
