//! Shows: a movie's or an event's show times and a show's details, each time
//! answered in UTC and on the theater's clock.

use super::Catalog;
use super::filters::ShowFilter;
use crate::pagination::{Page, PageParams};
use crate::problem::ApiError;
use crate::timefmt::rfc3339;
use contracts::{EventKind, Price};
use platform::localtime::local_rfc3339;
use serde::{Deserialize, Serialize};
use sqlx::QueryBuilder;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct TheaterRef {
    pub id: Uuid,
    pub name: String,
    pub city: String,
    pub address: String,
    /// The theater's IANA time zone, e.g. `Asia/Kolkata`.
    pub time_zone: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScreenRef {
    pub id: Uuid,
    pub name: String,
}

/// An upcoming show of a movie or event.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "0193a000-0000-7000-8000-000000000002", "starts_at": "2026-12-02T19:00:00Z", "starts_at_local": "2026-12-03T00:30:00+05:30", "theater": {"id": "0193a000-0000-7000-8000-000000000003", "name": "PVR Phoenix", "city": "Mumbai", "address": "Lower Parel", "time_zone": "Asia/Kolkata"}, "screen": {"id": "0193a000-0000-7000-8000-000000000004", "name": "Screen 1"}, "prices": [{"seat_type": "regular", "amount": 20000, "currency": "INR"}]}))]
pub struct ShowSummary {
    pub id: Uuid,
    /// RFC 3339, UTC.
    pub starts_at: String,
    /// RFC 3339 with the theater's offset: the same instant on its clock.
    pub starts_at_local: String,
    pub theater: TheaterRef,
    pub screen: ScreenRef,
    pub prices: Vec<Price>,
}

/// A show with its theater and screen, as read.
#[derive(Debug, sqlx::FromRow)]
struct ShowRow {
    id: Uuid,
    starts_at: OffsetDateTime,
    theater_id: Uuid,
    theater_name: String,
    city: String,
    address: String,
    time_zone: String,
    screen_id: Uuid,
    screen_name: String,
    prices: sqlx::types::Json<Vec<Price>>,
}

/// The columns of [`ShowRow`], from `shows s`, `screens sc`, `theaters t`.
const SHOW_COLUMNS: &str = "s.id, s.starts_at, t.id as theater_id, t.name as theater_name, t.city,
    t.address, t.time_zone, sc.id as screen_id, sc.name as screen_name,
    (select coalesce(json_agg(json_build_object('seat_type', p.seat_type, 'amount', p.amount,
                                                'currency', p.currency) order by p.seat_type), '[]')
       from show_prices p where p.show_id = s.id) as prices";

fn show_summary(r: ShowRow) -> ShowSummary {
    ShowSummary {
        id: r.id,
        starts_at: rfc3339(r.starts_at),
        starts_at_local: local_rfc3339(r.starts_at, &r.time_zone),
        theater: TheaterRef {
            id: r.theater_id,
            name: r.theater_name,
            city: r.city,
            address: r.address,
            time_zone: r.time_zone,
        },
        screen: ScreenRef {
            id: r.screen_id,
            name: r.screen_name,
        },
        prices: r.prices.0,
    }
}

/// The sort key of the last show of a page: (starts_at in unix microseconds, id),
/// exact at PostgreSQL's precision.
#[derive(Debug, Serialize, Deserialize)]
struct StartCursor(i64, Uuid);

#[derive(Debug, Serialize, ToSchema)]
pub struct MovieRef {
    pub id: Uuid,
    pub title: String,
    pub duration_min: i32,
    pub rating: Option<String>,
    pub language: Option<String>,
}

/// What a show is of: a movie or an event of another kind (the same as `movie`,
/// which every show keeps answering, with its kind).
#[derive(Debug, Serialize, ToSchema)]
pub struct EventRef {
    pub id: Uuid,
    pub kind: EventKind,
    pub title: String,
}

/// A show with everything a buyer sees before picking seats.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "0193a000-0000-7000-8000-000000000002", "starts_at": "2026-11-25T18:30:00Z", "starts_at_local": "2026-11-26T00:00:00+05:30", "ends_at": "2026-11-25T21:31:00Z", "ends_at_local": "2026-11-26T03:01:00+05:30", "status": "on_sale", "on_sale": true, "movie": {"id": "0193a000-0000-7000-8000-000000000001", "title": "Avengers: Endgame", "duration_min": 181, "rating": "UA", "language": "English"}, "event": {"id": "0193a000-0000-7000-8000-000000000001", "kind": "movie", "title": "Avengers: Endgame"}, "theater": {"id": "0193a000-0000-7000-8000-000000000003", "name": "PVR Phoenix", "city": "Mumbai", "address": "Lower Parel", "time_zone": "Asia/Kolkata"}, "screen": {"id": "0193a000-0000-7000-8000-000000000004", "name": "Screen 1"}, "prices": [{"seat_type": "regular", "amount": 20000, "currency": "INR"}]}))]
pub struct ShowView {
    pub id: Uuid,
    pub starts_at: String,
    /// `starts_at` on the theater's clock (RFC 3339 with its offset).
    pub starts_at_local: String,
    pub ends_at: String,
    /// `ends_at` on the theater's clock.
    pub ends_at_local: String,
    /// `scheduled`, `on_sale` or `cancelled`.
    pub status: String,
    /// Takes bookings now: `on_sale` and not started.
    pub on_sale: bool,
    pub movie: MovieRef,
    pub event: EventRef,
    pub theater: TheaterRef,
    pub screen: ScreenRef,
    pub prices: Vec<Price>,
}

/// [`ShowRow`] and what a show's details add.
#[derive(Debug, sqlx::FromRow)]
struct ShowDetailRow {
    #[sqlx(flatten)]
    show: ShowRow,
    ends_at: OffsetDateTime,
    status: String,
    on_sale: bool,
    movie_id: Uuid,
    #[sqlx(try_from = "String")]
    kind: EventKind,
    title: String,
    duration_min: i32,
    rating: Option<String>,
    language: Option<String>,
}

impl Catalog {
    /// A movie's upcoming on-sale shows matching the filter, by start time then id;
    /// 404 for an event of another kind (`/v1/movies` is the movies view).
    pub async fn shows_of_movie(
        &self,
        movie_id: Uuid,
        filter: &ShowFilter,
        page: &PageParams,
    ) -> Result<Page<ShowSummary>, ApiError> {
        self.shows_of(movie_id, Some(EventKind::Movie), filter, page)
            .await
    }

    /// An event's (of any kind) upcoming on-sale shows matching the filter.
    pub async fn shows_of_event(
        &self,
        event_id: Uuid,
        filter: &ShowFilter,
        page: &PageParams,
    ) -> Result<Page<ShowSummary>, ApiError> {
        self.shows_of(event_id, None, filter, page).await
    }

    async fn shows_of(
        &self,
        event_id: Uuid,
        kind: Option<EventKind>,
        filter: &ShowFilter,
        page: &PageParams,
    ) -> Result<Page<ShowSummary>, ApiError> {
        let limit = page.limit()?;
        let after = page.cursor::<StartCursor>()?;
        let mut b = QueryBuilder::new("select ");
        b.push(SHOW_COLUMNS).push(
            " from shows s join screens sc on sc.id = s.screen_id
                   join theaters t on t.id = sc.theater_id",
        );
        if let Some(kind) = kind {
            b.push(" join movies m on m.id = s.movie_id and m.kind = ")
                .push_bind(kind.as_str());
        }
        b.push(" where s.movie_id = ")
            .push_bind(event_id)
            .push(" and");
        filter.push_conditions(&mut b);
        if let Some(StartCursor(us, id)) = after {
            b.push(" and (s.starts_at, s.id) > (")
                .push_bind(crate::pagination::from_unix_micros(us)?)
                .push(", ")
                .push_bind(id)
                .push(")");
        }
        b.push(" order by s.starts_at, s.id limit ")
            .push_bind(i64::from(limit) + 1);
        let rows: Vec<ShowRow> = b.build_query_as().fetch_all(&self.db).await?;
        if rows.is_empty() {
            // Tells "no shows" from "no such movie/event" (404).
            match kind {
                Some(_) => self.movie(event_id).await.map(drop)?,
                None => self.event(event_id).await.map(drop)?,
            }
        }
        let page = Page::from_rows(rows, limit, |r| {
            StartCursor(crate::pagination::unix_micros(r.starts_at), r.id)
        });
        Ok(page.map(show_summary))
    }

    /// A show with its movie, theater, screen and prices, or 404.
    pub async fn show(&self, show_id: Uuid) -> Result<ShowView, ApiError> {
        show_view(&self.db, show_id).await
    }
}

/// A show with its movie, theater, screen and prices, or 404.
async fn show_view(db: &sqlx::PgPool, show_id: Uuid) -> Result<ShowView, ApiError> {
    let mut b = QueryBuilder::new("select ");
    b.push(SHOW_COLUMNS).push(
        ", s.ends_at, s.status, s.status = 'on_sale' and s.starts_at > now() as on_sale,
                m.id as movie_id, m.kind, m.title, m.duration_min, m.rating, m.language
           from shows s join screens sc on sc.id = s.screen_id
                join theaters t on t.id = sc.theater_id
                join movies m on m.id = s.movie_id
          where s.id = ",
    );
    b.push_bind(show_id);
    let row: Option<ShowDetailRow> = b.build_query_as().fetch_optional(db).await?;
    let row = row.ok_or_else(|| ApiError::NotFound(format!("show {show_id} does not exist")))?;
    let ends_at_local = local_rfc3339(row.ends_at, &row.show.time_zone);
    let summary = show_summary(row.show);
    Ok(ShowView {
        id: summary.id,
        starts_at: summary.starts_at,
        starts_at_local: summary.starts_at_local,
        ends_at: rfc3339(row.ends_at),
        ends_at_local,
        status: row.status,
        on_sale: row.on_sale,
        movie: MovieRef {
            id: row.movie_id,
            title: row.title.clone(),
            duration_min: row.duration_min,
            rating: row.rating,
            language: row.language,
        },
        event: EventRef {
            id: row.movie_id,
            kind: row.kind,
            title: row.title,
        },
        theater: summary.theater,
        screen: summary.screen,
        prices: summary.prices,
    })
}
