//! Reads of the catalog that more than one process needs (ingress validates a
//! booking against a show; the sequencer runner loads a show to allocate its seats).

use contracts::{Millis, Price, ScreenLayout, ShowId, ShowStatus};
use sqlx::PgPool;

/// A show as booking needs it.
#[derive(Debug, Clone)]
pub struct ShowRecord {
    pub show_id: ShowId,
    pub status: ShowStatus,
    pub starts_at: Millis,
    pub layout: ScreenLayout,
    pub prices: Vec<Price>,
    /// Most tickets one user may hold or have bought for this show (its event's
    /// `max_tickets_per_user`); `None`: only the per-booking limit.
    pub max_tickets_per_user: Option<u32>,
    /// Demand pricing, if the show has any.
    pub pricing: Option<contracts::Pricing>,
    /// See [`ShowInfo::blocked_seats`].
    pub blocked_seats: Vec<String>,
}

impl ShowRecord {
    /// On sale at `now`: status `on_sale` and not started yet.
    pub fn on_sale_at(&self, now: Millis) -> bool {
        on_sale(self.status, self.starts_at, now)
    }
}

fn on_sale(status: ShowStatus, starts_at: Millis, now: Millis) -> bool {
    status == ShowStatus::OnSale && now < starts_at
}

/// A show without its screen's layout: what changes (status, prices) apart from
/// what does not (the layout, shared by every show of the screen).
#[derive(Debug, Clone)]
pub struct ShowInfo {
    pub show_id: ShowId,
    pub status: ShowStatus,
    pub starts_at: Millis,
    pub screen_id: uuid::Uuid,
    pub prices: Vec<Price>,
    /// See [`ShowRecord::max_tickets_per_user`].
    pub max_tickets_per_user: Option<u32>,
    /// Demand pricing, if the show has any.
    pub pricing: Option<contracts::Pricing>,
    /// Seats blocked beside the layout's own: blocks of its screen from a time at
    /// or before its start (`seat_blocks`), sorted.
    pub blocked_seats: Vec<String>,
}

impl ShowInfo {
    /// On sale at `now`: status `on_sale` and not started yet.
    pub fn on_sale_at(&self, now: Millis) -> bool {
        on_sale(self.status, self.starts_at, now)
    }
}

/// Loads a show, its screen's layout and its prices; `None` if there is no such show.
#[tracing::instrument(skip(pool), fields(show_id = %show))]
pub async fn load_show(pool: &PgPool, show: ShowId) -> Result<Option<ShowRecord>, sqlx::Error> {
    let Some(info) = load_show_info(pool, show).await? else {
        return Ok(None);
    };
    let Some(layout) = load_layout(pool, info.screen_id).await? else {
        return Ok(None);
    };
    Ok(Some(ShowRecord {
        show_id: show,
        status: info.status,
        starts_at: info.starts_at,
        layout,
        prices: info.prices,
        max_tickets_per_user: info.max_tickets_per_user,
        pricing: info.pricing,
        blocked_seats: info.blocked_seats,
    }))
}

/// Loads a show's status, start, screen and prices; `None` if there is no such show.
pub async fn load_show_info(pool: &PgPool, show: ShowId) -> Result<Option<ShowInfo>, sqlx::Error> {
    type Row = (
        String,
        i64,
        uuid::Uuid,
        Option<i32>,
        Option<sqlx::types::Json<contracts::Pricing>>,
    );
    let row: Option<Row> = sqlx::query_as(
        "select s.status, (extract(epoch from s.starts_at) * 1000)::bigint, s.screen_id,
                m.max_tickets_per_user, s.pricing
           from shows s join movies m on m.id = s.movie_id where s.id = $1",
    )
    .bind(show.0)
    .fetch_optional(pool)
    .await?;
    let Some((status, starts_at, screen_id, max_tickets_per_user, pricing)) = row else {
        return Ok(None);
    };
    let status: ShowStatus = crate::db::parse_text(&status)?;
    let prices: Vec<(String, i64, String)> = sqlx::query_as(
        "select seat_type, amount, currency from show_prices where show_id = $1 order by seat_type",
    )
    .bind(show.0)
    .fetch_all(pool)
    .await?;
    let blocked_seats: Vec<String> = sqlx::query_scalar(
        "select distinct seat from shows s
           join seat_blocks b on b.screen_id = s.screen_id and b.from_at <= s.starts_at
           cross join unnest(b.seat_ids) seat
          where s.id = $1 order by seat",
    )
    .bind(show.0)
    .fetch_all(pool)
    .await?;
    Ok(Some(ShowInfo {
        blocked_seats,
        show_id: show,
        status,
        starts_at: Millis(starts_at),
        screen_id,
        max_tickets_per_user: max_tickets_per_user.and_then(|n| u32::try_from(n).ok()),
        pricing: pricing.map(|p| p.0),
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

/// Loads a screen's seat layout; `None` if there is no such screen.
pub async fn load_layout(
    pool: &PgPool,
    screen: uuid::Uuid,
) -> Result<Option<ScreenLayout>, sqlx::Error> {
    let layout: Option<sqlx::types::Json<ScreenLayout>> =
        sqlx::query_scalar("select layout from screens where id = $1")
            .bind(screen)
            .fetch_optional(pool)
            .await?;
    Ok(layout.map(|l| l.0))
}
